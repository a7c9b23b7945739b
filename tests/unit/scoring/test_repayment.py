"""The repayment bonus that cannot be gamed (issue 19, defect 6; DOMAIN.md §2): only a loan that
ran at least one full instalment period and never had a day past due earns +1. Rule set
hubin-2017-r2 says so; hubin-2017 stays as it was, so the ratings that name it stay explicable."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from services.registry.domain.provenance import FactRefused, check_sources
from services.scoring.domain.engine import RULESETS_DIR, RuleSet
from services.scoring.domain.repayment import earns_repayment_bonus
from services.scoring.settings import ScoringSettings
from shared.migrations import upgrade
from shared.periods import add_months
from vcredit.services import load_spec

OLD, NEW = RuleSet.load("hubin-2017"), RuleSet.load("hubin-2017-r2")
# A poor household with an income project: 80 + 3 (project) + 3 (poor) = 86, grade A, 50,000.
POOR_86 = {"income_project": True}


def _raw(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((RULESETS_DIR / f"{name}.json").read_text(encoding="utf-8"))
    return loaded


# --- the rule -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("disbursed", "repaid", "on_time", "earns"),
    [
        (date(2026, 3, 10), date(2026, 3, 10), True, False),  # drawn and repaid the same day
        (date(2026, 3, 10), date(2026, 4, 9), True, False),  # the day before the first due date
        (date(2026, 3, 10), date(2026, 4, 10), True, True),  # on the first due date
        (date(2026, 3, 10), date(2027, 3, 10), True, True),  # at maturity
        (date(2026, 3, 10), date(2026, 6, 1), False, False),  # ran the period but was past due once
        (date(2026, 1, 31), date(2026, 2, 27), True, False),  # first due 28 Feb (clamped to the month's end)
        (date(2026, 1, 31), date(2026, 2, 28), True, True),
        (date(2028, 1, 31), date(2028, 2, 28), True, False),  # leap year: first due 29 Feb
        (date(2028, 1, 31), date(2028, 2, 29), True, True),
        (date(2026, 12, 31), date(2027, 1, 31), True, True),  # across the year end
    ],
)
def test_only_a_loan_that_ran_a_full_period_and_was_never_past_due_earns(
    disbursed: date, repaid: date, on_time: bool, earns: bool
) -> None:
    # The first due date as loans states it on loans.loan.repaid (shared/periods, as the schedule).
    first_due = add_months(disbursed, 1)
    assert earns_repayment_bonus(on_time=on_time, first_due_on=first_due, repaid_on=repaid) is earns


def test_a_repayment_event_without_a_first_due_date_earns_nothing() -> None:
    assert not earns_repayment_bonus(on_time=True, first_due_on=None, repaid_on=date(2030, 1, 1))


# --- the rule set revision -----------------------------------------------------------------


def test_the_revision_is_the_rule_set_in_force() -> None:
    assert ScoringSettings().rule_set == "hubin-2017-r2"
    assert NEW.version.startswith("hubin-2017-r2@") and NEW.version != OLD.version


def test_the_old_rule_set_is_unchanged_so_its_ratings_still_name_it() -> None:
    # A rating stores its rule_set (id@first 12 hex of the file's SHA-256); ratings made before
    # the revision name this one, and the file they name is still here, byte for byte.
    assert OLD.version == "hubin-2017@892a25c8d97a"


def test_the_revision_changes_only_the_repayment_rule_and_says_so() -> None:
    old, new = _raw("hubin-2017"), _raw("hubin-2017-r2")
    r1_old = next(r for r in old["rules"] if r["id"] == "R1.repaid_on_time")
    r1_new = next(r for r in new["rules"] if r["id"] == "R1.repaid_on_time")
    assert r1_new["field"] == "repaid_full_period_count" and r1_old["field"] == "repaid_on_time_count"
    assert (r1_new["points_each"], r1_new["cap"]) == (1, 3)
    assert "first due date" in r1_new["text"]["en"] and "full instalment period" in r1_new["text"]["en"]
    assert "首个还款日" in r1_new["text"]["zh"] and "从未逾期" in r1_new["text"]["zh"]
    assert "full instalment period" in r1_new["source"]
    # Everything else is the same card, so tests/unit/scoring/test_engine.py's proofs hold for both.
    strip = lambda raw: {  # noqa: E731
        **{k: v for k, v in raw.items() if k not in ("id", "title", "rules")},
        "rules": [r for r in raw["rules"] if r["id"] != "R1.repaid_on_time"],
    }
    assert strip(old) == strip(new)


@pytest.mark.parametrize(
    ("full_period", "on_time", "score", "grade", "limit"),
    [
        (0, 0, 86, "A", "50000.00"),
        (0, 1, 86, "A", "50000.00"),  # repaid on time but before the first due date: nothing
        (0, 3, 86, "A", "50000.00"),
        (1, 1, 87, "AA", "100000.00"),
        (2, 5, 88, "AA", "100000.00"),
        (3, 3, 89, "AA", "100000.00"),
        (5, 5, 89, "AA", "100000.00"),  # at most +3
    ],
)
def test_the_revision_counts_only_full_period_repayments(
    full_period: int, on_time: int, score: int, grade: str, limit: str
) -> None:
    profile = {**POOR_86, "repaid_full_period_count": full_period, "repaid_on_time_count": on_time}
    result = NEW.evaluate(profile, poor_household=True)
    assert (result.score, result.grade, result.credit_limit) == (score, grade, Decimal(limit))
    r1 = [r.points for r in result.reasons if r.rule == "R1.repaid_on_time"]
    assert r1 == ([min(full_period, 3)] if full_period else [])


def test_the_old_rule_set_still_reads_what_it_read() -> None:
    # The gamed case under the old card: 86 -> 87, A -> AA. Kept as it was for its ratings.
    result = OLD.evaluate({**POOR_86, "repaid_on_time_count": 1, "repaid_full_period_count": 0}, poor_household=True)
    assert (result.score, result.grade) == (87, "AA")


def test_the_upgrade_carries_earned_bonuses_over(tmp_path: Path) -> None:
    """Migration 0005: scoring never kept disbursement dates, so a count already earned is kept
    as earned (no honest borrower loses a point at the next re-rating); new repayments are
    judged by the new rule."""
    spec = load_spec("scoring")
    upgrade(spec.migrations_dir, f"sqlite+aiosqlite:///{tmp_path}/scoring.db", revision="0004")
    engine = sa.create_engine(f"sqlite:///{tmp_path}/scoring.db")
    columns = "id, kind, village_code, township_code, name, poor_household, profile, overdue_occurrences, "
    columns += "npl_occurrences, repaid_on_time, updated_at, fact_ends"
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                f"INSERT INTO subjects ({columns}) VALUES ('s1', 'household', 'V', 'T', 'n', 1, '{{}}', 0, 0, 2, "
                "'2026-01-01 00:00:00', '{}')"
            )
        )
    upgrade(spec.migrations_dir, f"sqlite+aiosqlite:///{tmp_path}/scoring.db")
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT repaid_on_time, repaid_full_period FROM subjects")).one() == (2, 2)
    engine.dispose()


def test_the_count_is_derived_from_loan_events_never_typed_in() -> None:
    # DOMAIN.md §2: loan-ledger facts come from loan events; registry refuses them from anyone.
    with pytest.raises(FactRefused) as refused:
        check_sources(["repaid_full_period_count"], "collector")
    assert not refused.value.forbidden, "never accepted from any source (422), not a wrong supplier (403)"
