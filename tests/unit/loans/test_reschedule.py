"""Extension (展期) and re-planning (services/loans/domain/reschedule.py), every amount worked
out by hand: the limits of 贷款通则 art. 12 and the programme's 36 months, the re-plan of the
remaining principal from the period in progress, and that period's interest neither lost nor
charged twice when the extension falls in its middle."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest

from services.loans.domain.close_of_business import Accruals, close_loan_day, needs_schedule
from services.loans.domain.loan_state import opening_state
from services.loans.domain.repayment import apply_repayment
from services.loans.domain.reschedule import (
    Extendable,
    ExtensionLimit,
    ExtensionNotAllowed,
    check_extension,
    cumulative_cap,
    extend,
    replan,
)
from services.loans.domain.schedule import build_schedule, plan_periods
from services.loans.models import Instalment, Loan

D = Decimal
DAY = timedelta(days=1)


def test_the_remaining_8000_over_14_months_by_hand() -> None:
    """12,000.00 at 4.35%, equal principal, drawn 2026-01-15; instalments 1-4 (1,000.00 each)
    paid, extended by 6 months: 12,000.00 − 4 × 1,000.00 = 8,000.00 over (12 − 4) + 6 = 14
    periods, 5..18, still due on the 15th. Principal 8,000.00 / 14 = 571.428… → 571.43, the
    last 8,000.00 − 13 × 571.43 = 571.41; interest = opening × 0.0435 / 12 = opening × 0.003625."""
    rate = D("0.0435") / 12
    expected = []
    opening = D("8000.00")
    for number in range(5, 19):
        principal = D("571.43") if number < 18 else D("8000.00") - 13 * D("571.43")
        expected.append((number, opening, principal, (opening * rate).quantize(D("0.01"))))
        opening -= principal
    # Written out: 8000.00 × 0.003625 = 29.00; 7428.57 × 0.003625 = 26.9285… → 26.93; …
    interest = ["29.00", "26.93", "24.86", "22.79", "20.71", "18.64", "16.57", "14.50", "12.43", "10.36"]
    interest += ["8.29", "6.21", "4.14", "2.07"]
    assert [e[3] for e in expected] == [D(x) for x in interest]
    assert expected[-1][1:3] == (D("571.41"), D("571.41"))
    plan = plan_periods(D("8000.00"), D("0.0435"), 5, 18, "equal_principal", date(2026, 1, 15))
    assert [(p.number, p.opening_principal, p.principal, p.interest) for p in plan] == expected
    assert (plan[0].start, plan[0].due_on, plan[-1].due_on) == (date(2026, 5, 15), date(2026, 6, 15), date(2027, 7, 15))
    assert sum((p.principal for p in plan), D(0)) == D("8000.00")


def test_plan_periods_from_1_is_the_drawdown_schedule() -> None:
    for method in ("equal_instalment", "equal_principal", "interest_only"):
        whole = build_schedule(D("10000.00"), D("0.0435"), 12, method, date(2026, 1, 31))  # type: ignore[arg-type]
        assert plan_periods(D("10000.00"), D("0.0435"), 1, 12, method, date(2026, 1, 31)) == whole  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("original", "cap"),
    [(1, 1), (6, 6), (12, 12), (13, 6), (15, 7), (24, 12), (36, 18), (60, 30), (61, 36)],
)
def test_the_cumulative_cap_of_art_12(original: int, cap: int) -> None:
    """Up to a year: the original term; up to five years: half of it, rounded down; beyond: 3 years."""
    assert cumulative_cap(original) == cap


def _loan(term: int, extended: int = 0, extensions: int = 0, unbilled: int = 1, status: str = "active") -> Extendable:
    return Extendable(status, term, extended, extensions, unbilled)


def test_the_limits() -> None:
    check_extension(_loan(12), 12, 1)  # a 12-month loan by 12 months: 24 in all
    with pytest.raises(ExtensionLimit) as refused:
        check_extension(_loan(12), 13, 1)
    assert refused.value.extra == {"rule": "cumulative", "max_months": 12}
    check_extension(_loan(24), 12, 1)  # half of 24
    with pytest.raises(ExtensionLimit) as refused:
        check_extension(_loan(24), 13, 1)
    assert refused.value.extra == {"rule": "cumulative", "max_months": 12}
    # 30 months may take 15 by art. 12, but 30 + 7 = 37 is over the programme's 36.
    check_extension(_loan(30), 6, 1)
    with pytest.raises(ExtensionLimit) as refused:
        check_extension(_loan(30), 7, 1)
    assert refused.value.extra == {"rule": "programme_term", "max_months": 6}
    # One extension by default; a second one by setting still within the cumulative cap.
    with pytest.raises(ExtensionLimit) as refused:
        check_extension(_loan(18, extended=6, extensions=1), 1, 1)
    assert refused.value.extra == {"rule": "count", "max_extensions": 1}
    check_extension(_loan(18, extended=6, extensions=1), 6, 2)  # 12-month loan: 6 + 6 = 12
    with pytest.raises(ExtensionLimit):
        check_extension(_loan(18, extended=6, extensions=1), 7, 2)


def test_only_an_active_loan_not_yet_all_due_is_extended() -> None:
    for status in ("repaid", "written_off"):
        with pytest.raises(ExtensionNotAllowed):
            check_extension(_loan(12, status=status), 1, 1)
    with pytest.raises(ExtensionNotAllowed):
        check_extension(_loan(12, unbilled=0), 1, 1)


def _drawn(amount: str, rate: str, term: int, method: str, on: date) -> tuple[Loan, list[Instalment]]:
    plan = build_schedule(D(amount), D(rate), term, method, on)  # type: ignore[arg-type]
    loan = Loan(
        id="L1",
        credit_line_id="C1",
        subject_id="S1",
        subject_kind="household",
        village_code="V1",
        township_code="T1",
        principal=D(amount),
        annual_rate=D(rate),
        subsidy_rate=D(0),
        red_list_discount=D(0),
        day_count="30/360",
        method=method,
        term_months=term,
        disbursed_on=on,
        maturity_on=plan[-1].due_on,
        version=1,
        extended_months=0,
        **opening_state(plan, D(amount), on),
    )
    rows = [
        Instalment(loan_id="L1", number=p.number, start=p.start, due_on=p.due_on, principal=p.principal) for p in plan
    ]
    for row in rows:
        row.billed = None
    return loan, rows


def _close_until(loan: Loan, rows: list[Instalment], start: date, end: date, accruals: Accruals) -> None:
    day = start
    while day < end:
        close_loan_day(loan, day, accruals, schedule=rows if needs_schedule(loan, day) else None)
        day += DAY


def _write(rows: list[Instalment], plan: list) -> None:  # type: ignore[type-arg]
    """As services/loans/extensions.write_plan: replace the unbilled rows, add the new ones."""
    by_number = {r.number: r for r in rows}
    for p in plan:
        row = by_number.get(p.number)
        if row is None:
            row = Instalment(loan_id="L1", number=p.number, billed=None)
            rows.append(row)
        row.start, row.due_on, row.principal, row.interest, row.subsidy = (
            p.start,
            p.due_on,
            p.principal,
            p.interest,
            p.subsidy,
        )


def test_an_extension_in_the_middle_of_a_period_keeps_its_interest() -> None:
    """1,200.00 at 10%, equal principal over 2 months from 2026-01-01 (30/360). Period 1's
    interest, 1,200.00 × 10% / 12 = 10.00, is fixed when 2026-01-01 closes and accrues over
    January's 31 days; by the close of 2026-01-15, round(10.00 × 15 / 31) = 4.84 is accrued.
    Extended by 2 months on 2026-01-16: the 1,200.00 not billed over periods 1..4, 300.00
    each. Period 1 keeps its dates and its 10.00 (not re-priced, nothing accrued twice), the
    next periods charge 900.00 × 10% / 12 = 7.50, 600.00 → 5.00, 300.00 → 2.50. Paid on each
    due date: bills 310.00, 307.50, 305.00, 302.50, and 25.00 of interest in all."""
    loan, rows = _drawn("1200.00", "0.10", 2, "equal_principal", date(2026, 1, 1))
    accruals = Accruals()
    _close_until(loan, rows, date(2026, 1, 1), date(2026, 1, 16), accruals)
    assert (loan.period_interest, loan.period_accrued) == (D("10.00"), D("4.84"))
    plan = extend(loan, 2, floor="special_mention", subsidised=True)
    assert [(p.number, p.principal, p.interest) for p in plan] == [
        (1, D("300.00"), D("10.00")),
        (2, D("300.00"), D("7.50")),
        (3, D("300.00"), D("5.00")),
        (4, D("300.00"), D("2.50")),
    ]
    assert (loan.term_months, loan.extended_months, loan.maturity_on) == (4, 2, date(2026, 5, 1))
    assert (loan.period_interest, loan.period_accrued, loan.period_end) == (D("10.00"), D("4.84"), date(2026, 2, 1))
    _write(rows, plan)
    day = date(2026, 1, 16)
    for due, bill in (
        (date(2026, 2, 1), D("310.00")),
        (date(2026, 3, 1), D("307.50")),
        (date(2026, 4, 1), D("305.00")),
        (date(2026, 5, 1), D("302.50")),
    ):
        _close_until(loan, rows, day, due, accruals)
        day = due
        number = next(r.number for r in rows if r.due_on == due)
        assert next(r.billed for r in rows if r.number == number) == bill
        apply_repayment(loan, bill, due)
    assert loan.status == "repaid"
    assert accruals.gross == D("25.00") == loan.interest_paid


def test_a_prepayment_for_a_lower_instalment_bills_it_now_and_replans_the_rest() -> None:
    """1,200.00 at 10%, equal principal over 4 months from 2026-01-01: 300.00 a month. On the
    first due date the borrower pays the bill, 300.00 + 10.00, and 300.00 ahead. A shorter
    term would leave instalment 2 covered by it; a lower instalment bills the 300.00 with
    instalment 2 (paid already) and re-plans 1,200.00 − 300.00 − 300.00 = 600.00 over
    periods 2..4: 200.00 each, and 2 charges interest on the 600.00 outstanding at its
    start: 600.00 × 10% / 12 = 5.00."""
    loan, rows = _drawn("1200.00", "0.10", 4, "equal_principal", date(2026, 1, 1))
    accruals = Accruals()
    _close_until(loan, rows, date(2026, 1, 1), date(2026, 2, 1), accruals)
    assert rows[0].billed == D("310.00")
    apply_repayment(loan, D("610.00"), date(2026, 2, 1))
    ahead = loan.principal_paid - loan.principal_billed
    assert ahead == D("300.00")
    plan = replan(loan, loan.term_months, subsidy_until=None, ahead=ahead)
    assert [(p.number, p.principal, p.interest) for p in plan] == [
        (2, D("500.00"), D("5.00")),  # 300.00 paid ahead + 200.00; interest on 600.00 (not fixed yet)
        (3, D("200.00"), D("3.33")),  # 400.00 × 10% / 12 = 3.333… → 3.33
        (4, D("200.00"), D("1.67")),  # 200.00 × 10% / 12 = 1.666… → 1.67
    ]
    _write(rows, plan)
    _close_until(loan, rows, date(2026, 2, 1), date(2026, 3, 1), accruals)
    # Billed 500.00 + 5.00, 300.00 of it paid ahead: 205.00 due, the lower instalment.
    assert rows[1].billed == D("505.00")
    assert loan.principal_billed + loan.interest_billed - loan.principal_paid - loan.interest_paid == D("205.00")
