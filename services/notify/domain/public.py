"""Which events leave notify for anyone with a token (the SSE stream), and which ones
feed the village notices and district bulletins.

The stream is an allow-list, not a deny-list: a new event type is private until someone
decides otherwise here. Chosen:

- the hierarchy (townships, villages, communities created or renamed) and the business date;
- risk's public decisions: village freezes and lifts, township halts and resumptions, the
  risk fund's capacity, credit titles, district bulletins. These carry aggregates (ratios,
  outstanding totals of a village), no person. A 信用户 title names a household only by its
  opaque id.
- ``scoring.notice.started`` / ``.ended``: the 7-day public notice (公示, DOMAIN.md §4) exists
  so that the village can see who was rated what and object. It carries the household
  head's name, grade and limit, but never an ID number, and the stream still needs a token.
  This is a deliberate product choice; remove the two types here to keep 公示 on paper only.

Not streamed: anything about one subject's loans, repayments, ratings or profile (loans.*
except the business date, registry households and businesses and objections, scoring
ratings, risk loss splits and claims). Webhook subscribers (government or operator only)
may subscribe to those.
"""

from __future__ import annotations

STREAMED: frozenset[str] = frozenset(
    {
        "registry.township.created",
        "registry.township.renamed",
        "registry.village.created",
        "registry.village.renamed",
        "registry.community.created",
        "loans.business_date.advanced",
        "risk.village.frozen",
        "risk.village.unfrozen",
        "risk.township.halted",
        "risk.township.resumed",
        "risk.fund.capacity_changed",
        "risk.title.awarded",
        "risk.title.revoked",
        "risk.bulletin.issued",
        "scoring.notice.started",
        "scoring.notice.ended",
    }
)

# Events that become a village notice (GET /v1/notices) and the notice kind they make.
NOTICE_KINDS: dict[str, str] = {
    "risk.village.frozen": "village_frozen",
    "risk.village.unfrozen": "village_unfrozen",
    "risk.title.awarded": "title_awarded",
    "risk.title.revoked": "title_revoked",
    "scoring.notice.started": "rating_notice",
}

BULLETIN = "risk.bulletin.issued"


def is_streamed(event_type: str) -> bool:
    return event_type in STREAMED


def subscription_matches(subscribed: list[str], event_type: str) -> bool:
    """A subscription lists exact event types, or ``"*"`` for every type."""
    return "*" in subscribed or event_type in subscribed
