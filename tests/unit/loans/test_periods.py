"""Accounting months, the closing rule, trial balance lines and corrections
(services/loans/domain/periods.py), by hand."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from services.loans import ledger
from services.loans.domain.periods import (
    CorrectionRefused,
    Month,
    check_correction,
    closable,
    lines,
    reverse,
    totals,
)

D = Decimal


def test_a_month_is_yyyy_mm_with_its_first_and_last_day() -> None:
    assert Month.parse("2027-02") == Month(2027, 2)
    assert (Month(2027, 2).first, Month(2027, 2).last) == (date(2027, 2, 1), date(2027, 2, 28))
    assert Month(2028, 2).last == date(2028, 2, 29)
    assert Month(2027, 12).last == date(2027, 12, 31)
    assert (Month(2027, 1).previous, Month(2027, 3).previous) == (Month(2026, 12), Month(2027, 2))
    assert str(Month(2027, 1)) == "2027-01" and Month.of(date(2027, 1, 31)) == Month(2027, 1)
    for bad in ("2027-13", "2027-00", "2027-1", "27-01", "2027-01-01", "0000-01", "２０２７-01", ""):
        with pytest.raises(ValueError, match="YYYY-MM"):
            Month.parse(bad)


def test_a_month_closes_once_every_day_of_it_is_and_after_the_month_before() -> None:
    jan, feb = Month(2027, 1), Month(2027, 2)
    first = date(2027, 1, 1)
    # The business date is the day not yet closed: on Jan 31 that day is still open.
    assert closable(jan, date(2027, 1, 31), None, first) == "PERIOD_NOT_ENDED"
    assert closable(jan, date(2027, 2, 1), None, first) is None  # December had nothing posted
    assert closable(feb, date(2027, 3, 1), None, first) == "PREVIOUS_PERIOD_OPEN"
    assert closable(feb, date(2027, 3, 1), date(2027, 1, 31), first) is None
    assert closable(jan, date(2027, 3, 1), date(2027, 1, 31), first) == "PERIOD_ALREADY_CLOSED"
    assert closable(jan, date(2027, 3, 1), date(2027, 2, 28), first) == "PERIOD_ALREADY_CLOSED"
    # Nothing posted before March: February may close without January.
    assert closable(feb, date(2027, 3, 1), None, date(2027, 3, 2)) is None
    assert closable(feb, date(2027, 3, 1), None, None) is None


def test_every_balance_is_positive_on_its_normal_side_and_the_two_sides_agree() -> None:
    """10,000.00 lent, 500.00 back the same day; 34.44 interest accrued in January, paid in
    February. The settlement account (a liability) and interest income are both positive."""
    before = {
        "loans_principal": (D("10000.00"), D("500.00")),
        "settlement": (D("500.00"), D("10000.00")),
        "interest_receivable": (D("34.44"), D("0")),
        "interest_income": (D("0"), D("34.44")),
    }
    within = {"settlement": (D("34.44"), D("0")), "interest_receivable": (D("0"), D("34.44"))}
    found = {x.account: x for x in lines(ledger.ACCOUNTS, before, within)}
    assert [a for a in found] == ["loans_principal", "interest_receivable", "settlement", "interest_income"]
    s = found["settlement"]
    assert (s.type, s.normal_side, s.opening, s.debit, s.credit, s.closing) == (
        "liability",
        "credit",
        D("9500.00"),
        D("34.44"),
        D("0.00"),
        D("9465.56"),
    )
    assert (found["interest_income"].normal_side, found["interest_income"].closing) == ("credit", D("34.44"))
    assert (found["interest_receivable"].opening, found["interest_receivable"].closing) == (D("34.44"), D("0.00"))
    t = totals(found.values())
    assert (t.debit, t.credit) == (D("34.44"), D("34.44"))
    assert (t.opening_debit_normal, t.opening_credit_normal) == (D("9534.44"), D("9534.44"))
    assert (t.debit_normal, t.credit_normal) == (D("9500.00"), D("9500.00"))
    assert t.balanced
    lopsided = totals(lines(ledger.ACCOUNTS, {}, {"settlement": (D("1.00"), D("0"))}))
    assert not lopsided.balanced


def test_every_account_posted_to_has_a_type_and_the_settlement_account_is_a_liability() -> None:
    constants = {v for k, v in vars(ledger).items() if k.isupper() and isinstance(v, str)}
    assert constants == set(ledger.ACCOUNTS)
    assert ledger.ACCOUNTS[ledger.SETTLEMENT] == "liability"
    assert ledger.SETTLEMENT not in ledger.DEBIT_NORMAL and ledger.LOANS in ledger.DEBIT_NORMAL
    assert set(ledger.ACCOUNTS) > ledger.SUBLEDGER
    assert set(ledger.ACCOUNTS) - ledger.SUBLEDGER == {"settlement", "interest_income", "penalty_income"}


def test_a_reversal_undoes_each_accounts_net_movement() -> None:
    legs = [
        ("interest_income", D("1.00"), D("0")),
        ("penalty_income", D("0"), D("0.60")),
        ("settlement", D("0"), D("0.40")),
    ]
    assert reverse(legs) == [
        ("interest_income", D("0"), D("1.00")),
        ("penalty_income", D("0.60"), D("0")),
        ("settlement", D("0.40"), D("0")),
    ]
    assert reverse([("settlement", D("1.00"), D("0")), ("settlement", D("0"), D("1.00"))]) == []


@pytest.mark.parametrize(
    ("legs", "code", "field"),
    [
        ([("cash", D("1"), D("0")), ("settlement", D("0"), D("1"))], "UNKNOWN_ACCOUNT", "legs[0].account"),
        (
            [("settlement", D("1"), D("0")), ("loans_principal", D("0"), D("1"))],
            "ACCOUNT_NOT_CORRECTABLE",
            "legs[1].account",
        ),
        ([("settlement", D("1.00"), D("0")), ("interest_income", D("0"), D("0.99"))], "UNBALANCED_CORRECTION", "legs"),
        ([], "EMPTY_CORRECTION", "legs"),
    ],
)
def test_a_correction_refused(legs: list[tuple[str, Decimal, Decimal]], code: str, field: str) -> None:
    with pytest.raises(CorrectionRefused) as refused:
        check_correction(legs, ledger.ACCOUNTS, ledger.SUBLEDGER)
    assert (refused.value.code, refused.value.field) == (code, field)


def test_a_balanced_correction_on_correctable_accounts_passes() -> None:
    check_correction(
        [("interest_income", D("1.00"), D("0")), ("penalty_income", D("0"), D("1.00"))],
        ledger.ACCOUNTS,
        ledger.SUBLEDGER,
    )
