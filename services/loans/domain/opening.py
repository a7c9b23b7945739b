"""Whether a subject's credit line may open (一次授信, DOMAIN.md §4-§5): one rule for the single
opening (``POST /v1/credit-lines``, which raises it as a 409) and the whole-village one
(``POST /v1/villages/{code}/credit-lines``, which lists it as a skip). Pure: the callers read
the facts, one subject at a time or a village at a time.

The checks run in one order, the first that applies is the answer:

1. a certified rating in force, with a credit grade (004 annex 2 step 6: the certificate);
2. not on the black list (seed 001: no new credit);
3. the village not frozen, the township not halted (004 §6(3));
4. programme lending under 10x the fund (004 §6(2));
5. no line open already (一次授信: one revolving line per subject).

``code`` is the single opening's problem code (API.md; unchanged), ``reason_code`` says which
case of it applies: a rating still on its public notice and a vetoed one are both
``RATING_NOT_CERTIFIED`` to the single opening, ``NOTICE_NOT_ENDED`` and ``VETOED`` here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal


@dataclass(frozen=True)
class Refusal:
    code: str  # the single opening's 409 code
    reason_code: str  # the case: equal to code, or a finer one (module docstring)
    title: str
    detail: str
    extra: dict[str, list[str]] = field(default_factory=dict)  # problem members, e.g. entries


@dataclass(frozen=True)
class Rating:
    """The rating in force as loans knows it (rating_view): None when nothing certified."""

    certified: bool
    grade: str
    credit_limit: Decimal


@dataclass(frozen=True)
class Workflow:
    """Where the subject's latest rating stands in scoring's workflow (rating_status_view)."""

    status: str  # pending_notice objected certified rejected
    vetoed: bool
    notice_ends: date | None
    reason_code: str | None  # the bank's or the objection's, for a rejected rating


@dataclass(frozen=True)
class Facts:
    rating: Rating | None
    workflow: Workflow | None
    black_entries: tuple[tuple[str, str | None], ...]  # (entry id, cause) of active black entries
    village_frozen: bool
    township_halted: bool
    fund_full: bool
    line_open: bool


def _not_certified(workflow: Workflow | None) -> Refusal:
    # 004 annex 2 steps 4-6: a certificate only after the notice, with no sustained objection.
    def refused(reason_code: str, detail: str) -> Refusal:
        return Refusal("RATING_NOT_CERTIFIED", reason_code, "Rating not certified", detail)

    if workflow is None:
        return refused("RATING_NOT_CERTIFIED", "A credit line needs a certified rating (after its public notice).")
    if workflow.status in ("pending_notice", "objected"):
        ends = f" (it ends {workflow.notice_ends})" if workflow.notice_ends else ""
        held = "; an objection to it is open" if workflow.status == "objected" else ""
        return refused("NOTICE_NOT_ENDED", f"The rating is on its public notice (公示){ends}{held}.")
    if workflow.vetoed:
        return refused("VETOED", "The rating is vetoed (一票否决): no credit grade.")
    if workflow.status == "rejected" and workflow.reason_code not in (None, "NO_CREDIT_GRADE", "VETOED"):
        return refused("RATING_REJECTED", f"The rating was rejected ({workflow.reason_code}).")
    if workflow.status == "rejected":
        return refused("NO_CREDIT_GRADE", "The rating gives no credit grade (无信).")
    return refused("RATING_NOT_CERTIFIED", "A credit line needs a certified rating (after its public notice).")


def blacklist_refusal(black_entries: tuple[tuple[str, str | None], ...]) -> Refusal | None:
    # Seed 001: no new credit while on the black list.
    if not black_entries:
        return None
    named = ", ".join(f"{entry} ({cause})" for entry, cause in black_entries)
    return Refusal(
        "BLACKLISTED",
        "BLACKLISTED",
        "Blacklisted",
        f"On the black list (失信黑名单), entry {named}: no new credit until delisted (seed 001).",
        {"entries": [entry for entry, _ in black_entries]},
    )


def breaker_refusal(
    village_frozen: bool, township_halted: bool, village_code: str, township_code: str
) -> Refusal | None:
    # 004 §6(3): no new credit in a frozen village or a halted township.
    if village_frozen:
        return Refusal(
            "VILLAGE_FROZEN",
            "VILLAGE_FROZEN",
            "Village frozen",
            f"Village {village_code}'s NPL ratio is over the line: no new credit (004 §6(3)).",
        )
    if township_halted:
        return Refusal(
            "TOWNSHIP_HALTED",
            "TOWNSHIP_HALTED",
            "Township halted",
            f"Lending to township {township_code} is halted (004 §6(3)).",
        )
    return None


def new_credit_refusal(
    black_entries: tuple[tuple[str, str | None], ...],
    village_frozen: bool,
    township_halted: bool,
    village_code: str,
    township_code: str,
) -> Refusal | None:
    """DOMAIN §5: new credit (a line, a raise, a drawdown) is stopped by the black list (seed
    001) and by the circuit breaker (004 §6(3))."""
    return blacklist_refusal(black_entries) or breaker_refusal(
        village_frozen, township_halted, village_code, township_code
    )


def village_wide_refusal(
    village_frozen: bool, township_halted: bool, fund_full: bool, village_code: str, township_code: str
) -> Refusal | None:
    """What refuses every subject of the village with a certified rating alike (steps 3-4)."""
    stopped = breaker_refusal(village_frozen, township_halted, village_code, township_code)
    if stopped is None and fund_full:
        # 004 §6(2): programme lending at most 10x the risk compensation fund.
        return Refusal(
            "FUND_CAPACITY_EXCEEDED",
            "FUND_CAPACITY_EXCEEDED",
            "Fund capacity reached",
            "Programme lending is at 10x the risk compensation fund (004 §6(2)).",
        )
    return stopped


def opening_refusal(facts: Facts, village_code: str, township_code: str) -> Refusal | None:
    """Why the subject's line may not open, or None: it may (order: module docstring)."""
    rating = facts.rating
    if rating is None or not rating.certified:
        return _not_certified(facts.workflow)
    if rating.credit_limit <= 0 or rating.grade == "NONE":
        return Refusal("NO_CREDIT_GRADE", "NO_CREDIT_GRADE", "No credit grade", "The rating in force gives no credit.")
    stopped = blacklist_refusal(facts.black_entries) or village_wide_refusal(
        facts.village_frozen, facts.township_halted, facts.fund_full, village_code, township_code
    )
    if stopped is not None:
        return stopped
    if facts.line_open:
        return Refusal(
            "CREDIT_LINE_EXISTS", "CREDIT_LINE_EXISTS", "Credit line exists", "One revolving line per subject."
        )
    return None
