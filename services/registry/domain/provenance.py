"""Who may state which fact about a household or business. Pure rules.

DOMAIN.md §2: facts from the court (D6, V2) come from the court's feed; loan history
(D3, D3b, V3) is derived from loan events, never typed in; 004 §5(3) and 004 annex 1 §2(3)
name the information suppliers (court, police, bank, insurer, village collectors).
"""

from __future__ import annotations

from collections.abc import Iterable

from shared.profile import LOAN_HISTORY_FIELDS, PROFILE_FIELDS

COLLECTOR_SOURCES = frozenset({"collector", "government"})

# field -> roles whose statement of it is accepted
SOURCES: dict[str, frozenset[str]] = {
    # 004 annex 3 D6, 004 annex 3 V2: enforcement and the dishonest-debtor list, from the court feed only.
    "court_enforcement_within_3y": frozenset({"court"}),
    "currently_under_enforcement": frozenset({"court"}),
    "dishonest_debtor_list": frozenset({"court"}),
    # 004 annex 3 V1: public-security records (公安).
    "vice_record": frozenset({"police"}),
    # 004 annex 3 D4, 004 annex 3 D5, 004 annex 3 V4: guarantees and mortgages given, from the lenders' records.
    "guarantees_given_total": frozenset({"bank"}),
    "mortgages_given_total": frozenset({"bank"}),
    "guarantee_currently_overdue": frozenset({"bank"}),
    # 004 annex 3 A10: the insurer verifies policies; collectors may record one shown to them.
    "commercial_insurance": frozenset({"insurer"}) | COLLECTOR_SOURCES,
}
for _field in PROFILE_FIELDS:
    if _field not in LOAN_HISTORY_FIELDS:
        SOURCES.setdefault(_field, COLLECTOR_SOURCES)

SOURCE_ROLES = frozenset().union(*SOURCES.values())


class FactRefused(ValueError):
    def __init__(self, field: str, reason: str, *, forbidden: bool) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason
        self.forbidden = forbidden  # 403 (wrong supplier) rather than 422 (never accepted)


def check_sources(fields: Iterable[str], source: str) -> None:
    """Refuse the first field that ``source`` may not state."""
    for field in fields:
        if field in LOAN_HISTORY_FIELDS:
            raise FactRefused(field, "loan history is derived from loan events, not recorded here", forbidden=False)
        allowed = SOURCES[field]
        if source not in allowed:
            raise FactRefused(
                field, f"only {', '.join(sorted(allowed))} may supply this fact, not {source}", forbidden=True
            )


def choose_source(roles: frozenset[str], requested: str | None) -> str:
    """The role a fact is recorded under. A principal with several roles (the bootstrap
    token) speaks as collector unless it names another with ``X-Fact-Source``."""
    candidates = roles & SOURCE_ROLES
    if requested is not None:
        if requested not in candidates:
            raise ValueError(f"you cannot supply facts as {requested!r}")
        return requested
    if len(candidates) == 1:
        return next(iter(candidates))
    if "collector" in candidates:
        return "collector"  # what village data entry is, unless the caller says otherwise
    if not candidates:
        raise ValueError("your roles supply no facts")
    raise ValueError(f"say which source you speak for with X-Fact-Source: one of {', '.join(sorted(candidates))}")
