"""Penalty interest (罚息), compound interest (复利) and the grace period (宽限期) on a loan in
arrears: pure, no I/O (close_of_business.close_loan_day accrues, repayment.apply_repayment pays).

The rules (DOMAIN.md §7, 银发〔2003〕251号 art. 3; docs/loan-lifecycle.md, "Penalty interest and
grace"):
- Penalty rate = the loan's contract rate × (1 + markup), markup 30%-50% (default 50%).
- A loan is past due once its oldest unpaid instalment is unpaid at the end of its due date
  plus the grace days (default 0): ``loan_state.age`` counts days past due after the grace.
  Within the grace the payment is on time (classification, scoring, penalty).
- The close of every day after which the loan is past due accrues, for that day:
  penalty  = billed unpaid principal × penalty rate / 360, rounded half up to the fen;
  compound = billed unpaid interest (net of subsidy) × penalty rate / 360, to the fen
  (when compounding is on, the default). Rounding is per day, each day on that day's
  balances: a partial payment changes the next day's base, and the daily amounts are what
  a bank's core system posts (日罚息). The PBoC daily rate (年利率 / 360) applies whatever
  the loan's day count. Penalty is not charged on unpaid penalty.
- The principal in arrears bears the penalty rate *instead of* the contract rate: the
  period's interest is charged on the principal outstanding at its start less the principal
  billed and unpaid then (``contract_base``), so it is never charged twice.
- Penalty and compound interest are never subsidised: the borrower owes them in full, a
  receivable of their own (ledger ``penalty_receivable``, income ``penalty_income``).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from shared.money import to_fen

if TYPE_CHECKING:
    from services.loans.domain.loan_state import LoanState

ZERO = Decimal("0.00")
DAYS_A_YEAR = 360  # PBoC: 日利率 = 年利率 / 360

# 银发〔2003〕251号 art. 3: 在借款合同载明的贷款利率水平上加收30%-50%
MARKUP_MIN, MARKUP_MAX = Decimal("0.30"), Decimal("0.50")


@dataclass(frozen=True)
class OverduePolicy:
    """The bank's penalty settings (services/loans/settings.py)."""

    markup: Decimal = MARKUP_MAX
    compound: bool = True  # 251号 art. 3: 对不能按时支付的利息，按罚息利率计收复利
    grace_days: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.markup, Decimal) or not MARKUP_MIN <= self.markup <= MARKUP_MAX:
            raise ValueError(f"the penalty markup must be between 0.30 and 0.50 (251号 art. 3), got {self.markup}")
        if isinstance(self.grace_days, bool) or not isinstance(self.grace_days, int) or self.grace_days < 0:
            raise ValueError(f"grace days must be a whole number, 0 or more, got {self.grace_days!r}")

    def rate(self, annual_rate: Decimal) -> Decimal:
        """The penalty rate a year."""
        return annual_rate * (1 + self.markup)


DEFAULT_POLICY = OverduePolicy()


def principal_in_arrears(loan: LoanState) -> Decimal:
    """Principal billed and not paid (principal paid ahead covers none of a later bill here:
    what is paid ahead is not in arrears)."""
    return max(ZERO, loan.principal_billed - loan.principal_paid)


def interest_in_arrears(loan: LoanState) -> Decimal:
    """Interest billed (net of subsidy) and not paid."""
    return max(ZERO, loan.interest_billed - loan.interest_paid)


def contract_base(loan: LoanState) -> Decimal:
    """The principal a period charges contract interest on: outstanding less in arrears
    (which bears penalty instead). The same as outstanding for a borrower who is up to date."""
    return loan.principal_outstanding - principal_in_arrears(loan)


def daily(base: Decimal, annual_rate: Decimal, policy: OverduePolicy) -> Decimal:
    """One day's penalty on ``base``, half up to the fen."""
    return to_fen(base * policy.rate(annual_rate) / DAYS_A_YEAR)


def accrue(
    loan: LoanState, policy: OverduePolicy, principal_base: Decimal, interest_base: Decimal
) -> tuple[Decimal, Decimal]:
    """The close of a day for a loan already aged as of the next day: (penalty, compound)
    for the day when it is past due, added to the loan's balances; (0, 0) otherwise. The
    bases are the principal and interest in arrears at the day's end *before* the day's
    billing: an instalment billed today falls due tomorrow and is not in arrears today."""
    if loan.status != "active" or loan.days_past_due == 0:
        return ZERO, ZERO
    penalty = daily(principal_base, loan.annual_rate, policy)
    compound = daily(interest_base, loan.annual_rate, policy) if policy.compound else ZERO
    loan.penalty_accrued += penalty
    loan.compound_accrued += compound
    loan.penalty_outstanding += penalty + compound
    return penalty, compound
