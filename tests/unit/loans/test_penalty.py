"""Penalty interest (罚息), compound interest (复利), the grace period (宽限期) and the repayment
order (issue 24, DOMAIN.md §7, 银发〔2003〕251号 art. 3; services/loans/domain/penalty.py), driven
day by day on plain rows as cob.py and the repayment endpoint drive them, against amounts
computed by hand and against the reference model (tests/reference/loan_model.py)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction

import pytest

from services.loans.domain import penalty
from services.loans.domain.close_of_business import close_loan_day, needs_schedule
from services.loans.domain.penalty import OverduePolicy
from services.loans.domain.repayment import allocate_in_order, apply_repayment, check_order
from services.loans.settings import LoansSettings
from services.scoring.domain.repayment import earns_repayment_bonus
from tests.reference.loan_model import DAY, ReferenceLoan, money
from tests.support.loan_rows import Pure

D = Decimal
ON = date(2027, 3, 20)
DUE = date(2027, 4, 20)
RATE = D("0.0435")


def _run(pure: Pure, until: date, policy: OverduePolicy = penalty.DEFAULT_POLICY) -> list[str]:
    """Close every day from the loan's next unclosed day to ``until`` - 1; the event types."""
    kinds = []
    day = pure.loan.closed_through + DAY
    while day < until:
        schedule = pure.instalments if needs_schedule(pure.loan, day) else None
        kinds += [e.type for e in close_loan_day(pure.loan, day, pure.accruals, schedule=schedule, policy=policy)]
        day += DAY
    return kinds


def _one_month() -> Pure:
    # 12,000.00 at 4.35% for 1 month (30/360): interest 12000 × 0.0435 / 12 = 43.50, billed with
    # the principal at the close of 2027-04-19: 12,043.50 due on 2027-04-20.
    return Pure.drawn(D("12000.00"), RATE, D(0), 1, "equal_instalment", ON, "30/360")


def test_a_40_day_arrear_accrues_penalty_and_compound_interest_by_hand() -> None:
    pure = _one_month()
    _run(pure, DUE + DAY)
    assert pure.billed == {1: D("12043.50")}
    # Missed. Penalty rate 4.35% × (1 + 50%) = 6.525% a year; a day: / 360.
    #   penalty on the principal 12,000.00: 12000 × 0.06525 / 360 = 2.175 -> 2.18 a day (half up)
    #   compound on the interest 43.50:     43.50 × 0.06525 / 360 = 0.0078843… -> 0.01 a day
    # The closes of 2027-04-20 .. 2027-05-29 are 40 days (the loan is 1..40 days past due the day after each);
    # the loan matured on 2027-04-20, so no contract interest accrues after it.
    paid_on = DUE + timedelta(days=40)
    assert paid_on == date(2027, 5, 30)
    _run(pure, paid_on)
    loan = pure.loan
    assert loan.days_past_due == 40
    assert loan.penalty_accrued == 40 * D("2.18") == D("87.20")
    assert loan.compound_accrued == 40 * D("0.01") == D("0.40")
    assert loan.penalty_outstanding == D("87.60")
    assert loan.interest_outstanding == D("43.50")  # the contract interest, unchanged
    assert pure.accruals.penalty == D("87.60")  # what the ledger's penalty_receivable is debited
    # Paid in full: 12,000.00 + 43.50 + 87.60 = 12,131.10, penalty first, then interest, principal.
    applied = pure.pay(D("12131.10"), paid_on)
    assert (applied.penalty, applied.interest, applied.principal) == (D("87.60"), D("43.50"), D("12000.00"))
    assert loan.status == "repaid" and loan.penalty_paid == D("87.60") and loan.penalty_outstanding == D("0.00")
    repaid = [e for e in applied.events if e.type == "loans.loan.repaid"]
    assert repaid[0].payload["on_time"] is False


def test_the_reference_model_computes_the_same_40_days() -> None:
    model = ReferenceLoan(Fraction("12000"), Fraction("0.0435"), Fraction(0), 1, "equal_instalment", ON, "30/360")
    day = ON
    while day < DUE + timedelta(days=40):
        model.close(day)
        day += DAY
    assert (money(model.penalty_accrued), money(model.compound_accrued)) == (D("87.20"), D("0.40"))


def test_principal_in_arrears_bears_penalty_instead_of_contract_interest() -> None:
    # 12,000.00 at 4.35%, 12 months, equal principal: 1,000.00 a month. Instalment 1 (1,000.00 +
    # 12000 × 0.0435 / 12 = 43.50) missed.
    pure = Pure.drawn(D("12000.00"), RATE, D(0), 12, "equal_principal", ON, "30/360")
    _run(pure, date(2027, 5, 30))
    # Period 2 charges contract interest on 12000 − 1000 (in arrears) = 11,000.00: 11000 × 0.0435 / 12 =
    # 39.875 -> 39.88 (not 43.50 on 12,000.00): instalment 2 billed 1,000.00 + 39.88 = 1,039.88.
    assert pure.billed == {1: D("1043.50"), 2: D("1039.88")}
    # 2027-04-20 .. 2027-05-19 (30 days): penalty 1000 × 0.06525 / 360 = 0.18125 -> 0.18; compound 0.01.
    # 2027-05-20 .. 2027-05-29 (10 days): on 2,000.00: 0.3625 -> 0.36; on 43.50 + 39.88 = 83.38:
    #   83.38 × 0.06525 / 360 = 0.015112… -> 0.02.
    assert pure.loan.penalty_accrued == 30 * D("0.18") + 10 * D("0.36") == D("9.00")
    assert pure.loan.compound_accrued == 30 * D("0.01") + 10 * D("0.02") == D("0.50")
    # Period 3 on 12000 − 2000 = 10,000.00: 10000 × 0.0435 / 12 = 36.25.
    assert pure.loan.period_interest == D("36.25")


def test_compound_interest_can_be_switched_off() -> None:
    pure = _one_month()
    _run(pure, DUE + timedelta(days=40), OverduePolicy(compound=False))
    assert (pure.loan.penalty_accrued, pure.loan.compound_accrued) == (D("87.20"), D("0.00"))


def test_a_30_percent_markup() -> None:
    # 4.35% × 1.3 = 5.655%; 12000 × 0.05655 / 360 = 1.885 -> 1.89 a day; 10 days 18.90.
    pure = _one_month()
    _run(pure, DUE + timedelta(days=10), OverduePolicy(markup=D("0.30"), compound=False))
    assert pure.loan.penalty_accrued == D("18.90")


@pytest.mark.parametrize("markup", [D("0.29"), D("0.51")])
def test_a_markup_outside_251_is_refused(markup: Decimal) -> None:
    with pytest.raises(ValueError, match=r"0\.30 and 0\.50"):
        OverduePolicy(markup=markup)
    with pytest.raises(ValueError):
        LoansSettings(penalty_markup=markup)


# --- grace ---------------------------------------------------------------------------------------


def test_a_payment_within_grace_is_on_time_for_classification_scoring_and_penalty() -> None:
    grace = OverduePolicy(grace_days=5)
    pure = _one_month()
    # Five days of grace: the closes of 2027-04-20 .. 04-24 leave it 0 days past due.
    kinds = _run(pure, DUE + timedelta(days=5), grace)
    assert pure.loan.days_past_due == 0 and pure.loan.classification == "normal"
    assert "loans.loan.classified" not in kinds  # scoring's V3/D3 learn lateness from this event
    assert pure.loan.penalty_outstanding == D("0.00")
    applied = pure.pay(D("12043.50"), DUE + timedelta(days=5))
    (repaid,) = [e for e in applied.events if e.type == "loans.loan.repaid"]
    assert repaid.payload["on_time"] is True and pure.loan.ever_overdue is False
    # scoring's repayment bonus (DOMAIN §2) counts it
    assert earns_repayment_bonus(on_time=repaid.payload["on_time"], first_due_on=DUE, repaid_on=DUE + timedelta(days=5))


def test_a_payment_the_day_after_grace_is_late_and_pays_one_days_penalty() -> None:
    pure = _one_month()
    kinds = _run(pure, DUE + timedelta(days=6), OverduePolicy(grace_days=5))
    # The close of 2027-04-25 (the 5th grace day over) leaves it 1 day past due: one day's
    # penalty 2.18 + compound 0.01.
    assert (pure.loan.days_past_due, pure.loan.classification) == (1, "special_mention")
    assert "loans.loan.classified" in kinds
    assert pure.loan.penalty_outstanding == D("2.19")
    applied = pure.pay(D("12045.69"), DUE + timedelta(days=6))  # 12,043.50 + 2.19
    assert applied.penalty == D("2.19") and pure.loan.status == "repaid"


def test_without_grace_one_day_late_is_past_due() -> None:
    pure = _one_month()
    _run(pure, DUE + DAY)
    assert pure.loan.days_past_due == 1 and pure.loan.penalty_outstanding == D("2.19")


# --- allocation order ----------------------------------------------------------------------------


def test_a_repayment_pays_in_the_configured_order() -> None:
    due = {
        "penalty_due": D("87.60"),
        "interest_due": D("43.50"),
        "principal_in_arrears": D("12000.00"),
        "principal_outstanding": D("12000.00"),
    }
    # Default: penalty, interest, principal: 12,000.00 pays 87.60 + 43.50 + 11,868.90.
    split = allocate_in_order(D("12000.00"), **due)
    assert (split.penalty, split.interest, split.principal) == (D("87.60"), D("43.50"), D("11868.90"))
    # A bank collecting principal first (先本后息): all 12,000.00 to principal.
    split = allocate_in_order(D("12000.00"), **due, order=("principal", "interest", "penalty"))
    assert (split.penalty, split.interest, split.principal) == (D("0.00"), D("0.00"), D("12000.00"))
    # Interest, then penalty, then principal: 100.00 = 43.50 + 56.50.
    split = allocate_in_order(D("100.00"), **due, order=("interest", "penalty", "principal"))
    assert (split.penalty, split.interest, split.principal) == (D("56.50"), D("43.50"), D("0.00"))
    with pytest.raises(ValueError, match="overpayment"):
        allocate_in_order(D("12131.11"), **due)  # 87.60 + 43.50 + 12,000.00 = 12,131.10


def test_a_principal_first_order_applies_to_a_loan() -> None:
    pure = _one_month()
    _run(pure, DUE + timedelta(days=40))
    applied = apply_repayment(
        pure.loan, D("12000.00"), DUE + timedelta(days=40), pure.instalments, order=("principal", "interest", "penalty")
    )
    assert (applied.penalty, applied.interest, applied.principal) == (D("0.00"), D("0.00"), D("12000.00"))
    # What is left in arrears: the interest 43.50 (still 40 days past due) and the penalty.
    assert (pure.loan.interest_outstanding, pure.loan.penalty_outstanding) == (D("43.50"), D("87.60"))


@pytest.mark.parametrize("order", [["principal", "interest"], ["penalty", "penalty", "principal"], ["fee"]])
def test_an_order_must_name_each_part_once(order: list[str]) -> None:
    with pytest.raises(ValueError, match="once each"):
        check_order(order)
    with pytest.raises(ValueError):
        LoansSettings(repayment_order=order)


def test_the_reference_model_pays_in_the_configured_order() -> None:
    model = ReferenceLoan(
        Fraction("12000"),
        Fraction("0.0435"),
        Fraction(0),
        1,
        "equal_instalment",
        ON,
        "30/360",
        order=("principal", "interest", "penalty"),
    )
    day = ON
    while day < DUE + timedelta(days=40):
        model.close(day)
        day += DAY
    assert model.pay(Fraction("12000")) == (0, Fraction("12000"), 0)
