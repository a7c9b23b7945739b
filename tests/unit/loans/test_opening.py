"""The one rule of opening a credit line (domain/opening.py): the order of its checks and the
case each refusal names, as the single and the whole-village opening both answer them."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from services.loans.domain.opening import Facts, Rating, Workflow, opening_refusal

CERTIFIED = Rating(certified=True, grade="A", credit_limit=Decimal("50000.00"))
CLEAR = Facts(CERTIFIED, None, (), False, False, False, False)


def _why(**changes: object) -> tuple[str, str] | None:
    facts = Facts(**{**CLEAR.__dict__, **changes})
    refusal = opening_refusal(facts, "410102007003", "410102007")
    return None if refusal is None else (refusal.code, refusal.reason_code)


def test_a_certified_rating_with_nothing_against_it_opens() -> None:
    assert _why() is None


def test_without_a_certified_rating_the_case_comes_from_the_workflow() -> None:
    in_notice = Workflow("pending_notice", False, date(2026, 2, 6), None)
    assert _why(rating=None, workflow=in_notice) == ("RATING_NOT_CERTIFIED", "NOTICE_NOT_ENDED")
    objected = Workflow("objected", False, date(2026, 2, 6), None)
    assert _why(rating=None, workflow=objected) == ("RATING_NOT_CERTIFIED", "NOTICE_NOT_ENDED")
    vetoed = Workflow("rejected", True, None, None)
    assert _why(rating=None, workflow=vetoed) == ("RATING_NOT_CERTIFIED", "VETOED")
    no_grade = Workflow("rejected", False, None, None)
    assert _why(rating=None, workflow=no_grade) == ("RATING_NOT_CERTIFIED", "NO_CREDIT_GRADE")
    by_the_bank = Workflow("rejected", False, None, "INSUFFICIENT_INCOME")
    assert _why(rating=None, workflow=by_the_bank) == ("RATING_NOT_CERTIFIED", "RATING_REJECTED")
    assert _why(rating=None) == ("RATING_NOT_CERTIFIED", "RATING_NOT_CERTIFIED")
    # Downgraded to nothing: loans' view is no longer certified; scoring says why.
    downgraded = Rating(certified=False, grade="NONE", credit_limit=Decimal(0))
    assert _why(rating=downgraded, workflow=vetoed) == ("RATING_NOT_CERTIFIED", "VETOED")


def test_a_certified_rating_in_force_opens_whatever_a_newer_rating_in_notice_says() -> None:
    # The raise waits for its notice; the limit in force is certified (004 annex 2 step 6).
    assert _why(workflow=Workflow("pending_notice", False, date(2026, 2, 6), None)) is None


def test_the_checks_run_in_order_the_first_that_applies_answers() -> None:
    everything = {
        "black_entries": (("e-1", "court_dishonest_debtor"),),
        "village_frozen": True,
        "township_halted": True,
        "fund_full": True,
        "line_open": True,
    }
    expected = [
        ("BLACKLISTED", "BLACKLISTED"),
        ("VILLAGE_FROZEN", "VILLAGE_FROZEN"),
        ("TOWNSHIP_HALTED", "TOWNSHIP_HALTED"),
        ("FUND_CAPACITY_EXCEEDED", "FUND_CAPACITY_EXCEEDED"),
        ("CREDIT_LINE_EXISTS", "CREDIT_LINE_EXISTS"),
    ]
    facts = dict(everything)
    for name, answer in zip(everything, expected, strict=True):
        assert _why(**facts) == answer
        facts[name] = () if name == "black_entries" else False
    assert _why(**facts) is None
    no_grade = Rating(certified=True, grade="NONE", credit_limit=Decimal(0))
    assert _why(rating=no_grade, **everything) == ("NO_CREDIT_GRADE", "NO_CREDIT_GRADE")
