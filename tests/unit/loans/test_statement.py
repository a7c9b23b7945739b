"""domain/statement.py's rules on hand-made instalments (no service): the instalment states a
request cannot easily reach (written off, prepaid, paid ahead) and the balance identity."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from services.loans.domain.statement import Bill, Line, ScheduledInstalment, progress, statement

D = Decimal
PLAN = [
    ScheduledInstalment(1, date(2026, 1, 15), date(2026, 2, 15), D("500.00"), D("510.00")),
    ScheduledInstalment(2, date(2026, 2, 15), date(2026, 3, 15), D("500.00"), None),
]
BILLS = {1: Bill(1, date(2026, 2, 15), D("500.00"), D("12.00"), D("2.00"))}  # net due 510.00


def test_states_of_a_written_off_and_a_prepaid_loan() -> None:
    today = date(2026, 3, 1)
    off = progress(PLAN, BILLS, D("100.00"), "written_off", today)
    # 100.00 paid: net interest 10.00 first, then 90.00 of principal; 410.00 left, written off.
    assert [(p.state, p.paid_interest, p.paid_principal, p.outstanding) for p in off] == [
        ("written_off", D("10.00"), D("90.00"), D("410.00")),
        ("written_off", D(0), D(0), D(0)),
    ]
    repaid = progress(PLAN, BILLS, D("1015.00"), "repaid", today)
    assert [p.state for p in repaid] == ["paid", "prepaid"]
    # Paid ahead (600.00 > 510.00) shows on no instalment until it bills.
    active = progress(PLAN, BILLS, D("600.00"), "active", today)
    assert [(p.state, p.outstanding) for p in active] == [("paid", D(0)), ("upcoming", D(0))]


def test_closing_is_opening_plus_drawn_and_net_interest_less_paid_and_written_off() -> None:
    lines = [
        Line(date(2026, 1, 15), "drawdown", drawn=D("1000.00")),
        Line(date(2026, 2, 15), "repayment", paid=D("100.00"), paid_principal=D("90.00"), paid_interest=D("10.00")),
        # A bill and a repayment the same day: the bill comes first whatever the input order.
        Line(date(2026, 2, 15), "billing", instalment=1, principal_due=D("500.00"), interest=D("12.00"),
             subsidy=D("2.00"), net_due=D("510.00")),
        Line(date(2026, 3, 1), "write_off", written_off=D("910.00"), written_off_principal=D("910.00")),
    ]  # fmt: skip
    made = statement(lines, date(2026, 2, 15), date(2026, 2, 28))
    assert [s.line.kind for s in made.lines] == ["billing", "repayment"]
    assert (made.opening.total, made.closing.total) == (D("1000.00"), D("910.00"))  # 1000 + 12 - 2 - 100
    assert [s.balance.total for s in made.lines] == [D("1010.00"), D("910.00")]
    whole = statement(lines, date(2026, 1, 1), date(2026, 3, 1))
    assert whole.closing.total == 0 and whole.totals["written_off"] == D("910.00")
