"""A loan as close of business and a repayment see it, without I/O: plain ``LoanDay`` /
``InstalmentDay`` rows driven as services/loans/cob.py and the repayment endpoint drive them
(tests/unit/loans/test_billing.py, test_penalty.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from services.loans.domain import close_of_business, loan_state, repayment
from services.loans.domain.schedule import build_schedule


@dataclass
class Pure:
    """A loan as close of business and a repayment see it, without I/O."""

    loan: loan_state.LoanDay
    instalments: list[loan_state.InstalmentDay]
    accruals: close_of_business.Accruals = field(default_factory=close_of_business.Accruals)

    @classmethod
    def drawn(
        cls, amount: Decimal, rate: Decimal, subsidy_rate: Decimal, term: int, method: str, on: date, day_count: str
    ) -> Pure:
        plan = build_schedule(amount, rate, term, method, on, day_count, subsidy_rate)  # type: ignore[arg-type]
        loan = loan_state.LoanDay(
            id="loan",
            subject_id="s",
            subject_kind="household",
            village_code="V",
            township_code="T",
            principal=amount,
            annual_rate=rate,
            subsidy_rate=subsidy_rate,
            day_count=day_count,
            term_months=term,
            disbursed_on=on,
            **loan_state.opening_state(plan, amount, on),
        )
        return cls(loan, [loan_state.InstalmentDay(loan.id, i.number, i.due_on, i.principal, None) for i in plan])

    def pay(self, amount: Decimal, day: date) -> repayment.Applied:
        """As ``loans.repay`` does: the billed instalments only when the payment leaves arrears."""
        billed = [i for i in self.instalments if i.billed is not None]
        schedule = billed if repayment.payment_leaves_arrears(self.loan, amount) else None
        return repayment.apply_repayment(self.loan, amount, day, schedule)

    def close(self, day: date) -> None:
        """As cob.py does: the instalments only when ``needs_schedule``."""
        schedule = self.instalments if close_of_business.needs_schedule(self.loan, day) else None
        close_of_business.close_loan_day(self.loan, day, self.accruals, schedule=schedule)

    @property
    def billed(self) -> dict[int, Decimal]:
        return {i.number: i.billed for i in self.instalments if i.billed is not None}
