"""Billing, daily accrual and subsidy (DOMAIN §4, "Interest and billing", issue 19) without a
database: the close of business (``close_of_business.close_loan_day``) and the repayment rule
(``repayment.apply_repayment``) driven day by day on plain ``LoanDay`` / ``InstalmentDay`` rows,
as cob.py and the repayment endpoint drive them, against the independent reference model
(tests/reference/loan_model.py) and against amounts computed by hand."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from fractions import Fraction

import numpy_financial as npf
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from services.loans.domain import loan_state
from services.loans.domain.schedule import build_schedule
from tests.reference import payments
from tests.reference.loan_model import DAY, ReferenceLoan, Refused, equal_payment, fen, money
from tests.support.loan_rows import Pure

D = Decimal
METHODS = ("equal_instalment", "equal_principal", "interest_only")
DAY_COUNTS = ("30/360", "ACT/360", "ACT/365")


def _model(
    amount: Decimal, rate: Decimal, subsidy_rate: Decimal, term: int, method: str, on: date, dc: str
) -> ReferenceLoan:
    return ReferenceLoan(Fraction(amount), Fraction(rate), Fraction(subsidy_rate), term, method, on, dc)


def _state(model: ReferenceLoan, on: date) -> tuple[object, ...]:
    return (
        model.status,
        money(model.principal_outstanding),
        money(model.interest_outstanding),
        money(model.subsidy_accrued),
        {k: money(v) for k, v in model.billed.items()},
        model.days_past_due(on),
        money(model.penalty_accrued),
        money(model.compound_accrued),
        money(model.penalty_outstanding),
    )


def _pure_state(pure: Pure) -> tuple[object, ...]:
    loan = pure.loan
    return (
        loan.status,
        loan.principal_outstanding,
        loan.interest_outstanding,
        loan.subsidy_accrued,
        pure.billed,
        loan.days_past_due,
        loan.penalty_accrued,
        loan.compound_accrued,
        loan.penalty_outstanding,
    )


def simulate(
    amount: Decimal,
    rate: Decimal,
    subsidy_rate: Decimal,
    term: int,
    method: str,
    on: date,
    day_count: str,
    behaviours: list[payments.Behaviour],
) -> tuple[ReferenceLoan, Pure]:
    """Both the model and the code under test through the same days and payments; their
    bills, balances, subsidy, status and days past due compared after every repayment and
    every day's close (and the schedules first)."""
    model = _model(amount, rate, subsidy_rate, term, method, on, day_count)
    pure = Pure.drawn(amount, rate, subsidy_rate, term, method, on, day_count)
    plan = build_schedule(amount, rate, term, method, on, day_count, subsidy_rate)  # type: ignore[arg-type]
    assert [(i.due_on, i.principal, i.interest, i.subsidy) for i in plan] == [
        (p.due, money(p.principal), money(p.interest), money(p.subsidy)) for p in model.plan
    ], "the schedule shown at drawdown"
    days = payments.plan_days(model, behaviours)
    day = on
    while day <= payments.last_day(model):
        for kind, parameter, number in days.get(day, []):
            for attempt in payments.attempts(model, kind, parameter, number):
                try:
                    expected = model.pay(attempt)
                except Refused:
                    with pytest.raises(ValueError, match="overpayment"):
                        pure.pay(money(attempt), day)
                    continue
                applied = pure.pay(money(attempt), day)
                assert (applied.interest, applied.principal, applied.penalty) == tuple(map(money, expected)), day
                assert _pure_state(pure) == _state(model, day), f"{day}: paid, {kind_of(behaviours)}"
        model.close(day)
        pure.close(day)
        assert _pure_state(pure) == _state(model, day + DAY), f"{day}: {kind_of(behaviours)}"
        if model.status != "active":
            break
        day += DAY
    return model, pure


def kind_of(behaviours: list[payments.Behaviour]) -> str:
    return ", ".join(f"{k}:{p}" for k, p in behaviours)


# --- the reference's payment against numpy-financial -------------------------------------------


@pytest.mark.parametrize("rate", ["0.0435", "0.0475", "0.04785", "0.05225", "0.001", "0.12", "0.3"])
@pytest.mark.parametrize("term", [1, 2, 3, 6, 12, 24, 36])
@pytest.mark.parametrize("principal", ["1.00", "999.99", "10000.00", "123456.78", "5000000.00"])
def test_the_reference_payment_agrees_with_numpy_financial(rate: str, term: int, principal: str) -> None:
    ours = equal_payment(Fraction(principal), Fraction(rate), term)
    theirs = -npf.pmt(float(rate) / 12, term, float(principal))  # floating point: to within a fen
    assert abs(float(ours) - theirs) <= 0.005 + 1e-6, (ours, theirs)
    # and the service's schedule pays the same A (its last instalment takes the remainder)
    plan = build_schedule(D(principal), D(rate), term, "equal_instalment", date(2027, 3, 20))
    assert plan[0].principal + plan[0].interest == money(ours) or plan[0].principal == D(principal)


def test_the_reference_rounds_half_up_exactly() -> None:
    assert fen(Fraction("39.875")) == Fraction("39.88")  # 11000 × 0.0435 / 12, a true half fen
    assert fen(Fraction("-0.005")) == Fraction("-0.01")
    assert fen(Fraction(1, 3)) == Fraction("0.33")


# --- by hand ------------------------------------------------------------------------------------

ON = date(2027, 3, 20)
RATE = D("0.0435")
ON_TIME = [("on_time", 0)] * 12


def test_equal_instalment_paid_on_time_is_billed_its_schedule() -> None:
    # 10,000.00 at 4.35% for 12 months, 30/360; r = 0.0435 / 12 = 0.003625.
    # A = 10000 × 0.003625 × 1.003625^12 / (1.003625^12 − 1) = 853.0990… -> 853.10.
    # Period 1: 10000 × 0.003625 = 36.25 interest, principal 853.10 − 36.25 = 816.85.
    # Period 2: opening 10000 − 816.85 = 9183.15; 9183.15 × 0.003625 = 33.2889… -> 33.29;
    #   principal 853.10 − 33.29 = 819.81 (today's billing charged 36.25 again: 856.06).
    # Period 3: 9183.15 − 819.81 = 8363.34; × 0.003625 = 30.3171… -> 30.32; principal 822.78.
    # Period 12: opening 850.01 (all that remains); 850.01 × 0.003625 = 3.0813 -> 3.08; 853.09.
    model, pure = simulate(D("10000.00"), RATE, D(0), 12, "equal_instalment", ON, "30/360", ON_TIME)
    assert pure.billed == {**dict.fromkeys(range(1, 12), D("853.10")), 12: D("853.09")}
    assert pure.loan.status == "repaid" and pure.loan.interest_paid == D("237.19") == sum(
        (i.interest for i in build_schedule(D("10000.00"), RATE, 12, "equal_instalment", ON)), D(0)
    )
    assert model.status == "repaid"


def test_equal_principal_paid_on_time_is_billed_its_schedule() -> None:
    # Principal 10000 / 12 = 833.333… -> 833.33 a month; the last 10000 − 11 × 833.33 = 833.37.
    # Period 1: 10000 × 0.003625 = 36.25 -> 869.58.
    # Period 2: 9166.67 × 0.003625 = 33.2291… -> 33.23 -> 866.56 (today's billing: 869.58).
    # Period 3: 8333.34 × 0.003625 = 30.2083… -> 30.21 -> 863.54.
    # Period 12: 833.37 × 0.003625 = 3.0209… -> 3.02 -> 836.39.
    _, pure = simulate(D("10000.00"), RATE, D(0), 12, "equal_principal", ON, "30/360", ON_TIME)
    assert [pure.billed[k] for k in (1, 2, 3, 12)] == [D("869.58"), D("866.56"), D("863.54"), D("836.39")]
    assert pure.loan.status == "repaid"


@pytest.mark.parametrize(
    ("method", "subsidy"),
    [
        # 36.25 + 33.29 + 30.32 + 27.33 + 24.34 + 21.34 + 18.32 + 15.30 + 12.26 + 9.21 + 6.15 + 3.08
        ("equal_instalment", "237.19"),
        # 36.25 + 33.23 + 30.21 + 27.19 + 24.17 + 21.15 + 18.13 + 15.10 + 12.08 + 9.06 + 6.04 + 3.02
        ("equal_principal", "235.63"),
    ],
)
def test_a_poor_household_paying_on_time_accrues_its_schedules_subsidy(method: str, subsidy: str) -> None:
    # 全额贴息: subsidy_rate == annual rate, so each period's subsidy is its interest and the
    # borrower is billed the principal alone. Today's billing accrued 270.36 (equal instalment).
    _, pure = simulate(D("10000.00"), RATE, RATE, 12, method, ON, "30/360", ON_TIME)
    plan = build_schedule(D("10000.00"), RATE, 12, method, ON, "30/360", RATE)  # type: ignore[arg-type]
    assert pure.loan.subsidy_accrued == D(subsidy) == sum((i.subsidy for i in plan), D(0))
    assert pure.billed == {i.number: i.principal for i in plan}
    assert pure.loan.status == "repaid" and pure.loan.interest_paid == D("0.00")


def test_a_business_paying_on_time_accrues_3_percent_of_its_balances() -> None:
    # 4.785% (benchmark + 10%), subsidy 3% a year: period 1 interest 10000 × 0.04785 / 12 =
    # 39.875 -> 39.88 (half up), subsidy 10000 × 0.03 / 12 = 25.00; A = 854.91…
    rate, subsidy_rate = D("0.04785"), D("0.03")
    _, pure = simulate(D("10000.00"), rate, subsidy_rate, 12, "equal_instalment", ON, "30/360", ON_TIME)
    plan = build_schedule(D("10000.00"), rate, 12, "equal_instalment", ON, "30/360", subsidy_rate)
    assert (plan[0].interest, plan[0].subsidy) == (D("39.88"), D("25.00"))
    assert pure.billed == {i.number: i.net_due for i in plan}
    assert pure.loan.subsidy_accrued == sum((i.subsidy for i in plan), D(0))


def test_a_repayment_on_the_drawdown_day_counts_for_period_1() -> None:
    # 1000.00 of 10,000.00 repaid the day it is drawn: period 1 charges 9000 × 0.003625 =
    # 32.625 -> 32.63, not 36.25; it bills its scheduled principal 816.85 and that interest:
    # 849.48, which the 1000.00 paid ahead covers (nothing in arrears); the interest is owed.
    pure = Pure.drawn(D("10000.00"), RATE, D(0), 12, "equal_instalment", ON, "30/360")
    pure.pay(D("1000.00"), ON)
    day = ON
    while day < date(2027, 4, 20):
        pure.close(day)
        day += DAY
    assert pure.billed == {1: D("816.85") + D("32.63")}
    assert loan_state.arrears(pure.loan) == D("0.00")
    assert (pure.loan.principal_outstanding, pure.loan.interest_outstanding) == (D("9000.00"), D("32.63"))


# --- at random ------------------------------------------------------------------------------------


def _behaviour() -> st.SearchStrategy[payments.Behaviour]:
    return st.sampled_from(payments.KINDS).flatmap(
        lambda kind: st.tuples(st.just(kind), st.integers(*payments.PARAMETER.get(kind, (0, 0))))
    )


@st.composite
def _loans(draw: st.DrawFn) -> tuple[Decimal, Decimal, Decimal, int, date, list[payments.Behaviour]]:
    amount = D(draw(st.integers(100, 50_000_000))).scaleb(-2)
    rate = D(draw(st.sampled_from([4350, 4750, 4785, 5225, 0, 1, 99_999]))).scaleb(-6)
    subsidy_rate = draw(st.sampled_from([D(0), rate, min(rate, D("0.03"))]))
    term = draw(st.integers(1, 12))
    on = draw(st.dates(date(2026, 1, 1), date(2028, 12, 31)))
    # A whole pattern (on time, early, partial, late, prepaid, never), or one mixing them.
    if draw(st.booleans()):
        behaviours = [draw(_behaviour())] * term
    else:
        behaviours = draw(st.lists(_behaviour(), min_size=term, max_size=term))
    if draw(st.integers(0, 4)) == 0:  # one in five: instalment 1's net due paid the day it is drawn
        behaviours = [("ahead", 0), *behaviours[1:]]
    return amount, rate, subsidy_rate, term, on, behaviours


@pytest.mark.parametrize("day_count", DAY_COUNTS)
@pytest.mark.parametrize("method", METHODS)
@settings(max_examples=200, deadline=None, derandomize=True)
@given(case=_loans())
def test_billing_balances_and_subsidy_follow_the_reference(
    method: str, day_count: str, case: tuple[Decimal, Decimal, Decimal, int, date, list[payments.Behaviour]]
) -> None:
    amount, rate, subsidy_rate, term, on, behaviours = case
    model, _ = simulate(amount, rate, subsidy_rate, term, method, on, day_count, behaviours)
    # --hypothesis-show-statistics: what the patterns led to
    event(f"{model.status}, {'bills unpaid' if model.arrears else 'nothing unpaid'} at the end")
