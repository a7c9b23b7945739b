from __future__ import annotations

import datetime as dt
from datetime import date
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PlainSerializer, WithJsonSchema, model_validator

from services.loans.domain.classification import Classification
from services.loans.domain.schedule import DayCount
from shared.money import Money, format_money
from shared.timestamps import UtcDateTime


def _positive(amount: Decimal) -> Decimal:
    if amount <= 0:
        raise ValueError("amount must be greater than zero")
    return amount


PositiveMoney = Annotated[Money, AfterValidator(_positive)]
Method = Literal["equal_instalment", "equal_principal", "interest_only"]
# services/loans/domain/repayment.py repaid, loans.py written_off.
LoanStatus = Literal["active", "repaid", "written_off"]


class CreditLineIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    household_id: str | None = Field(default=None, min_length=1, max_length=36)
    business_id: str | None = Field(default=None, min_length=1, max_length=36)

    @model_validator(mode="after")
    def _one_subject(self) -> CreditLineIn:
        if (self.household_id is None) == (self.business_id is None):
            raise ValueError("give exactly one of household_id or business_id")
        return self

    @property
    def subject_id(self) -> str:
        return self.household_id or self.business_id or ""


class CreditLineOut(BaseModel):
    credit_line_id: str
    household_id: str | None
    business_id: str | None
    limit: Money
    available: Money
    outstanding: Money
    status: str
    priority: bool  # red-listed (守信红名单): served first in the bank's queues (seed 001)


class LoanIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    credit_line_id: str = Field(min_length=1, max_length=36)
    amount: PositiveMoney
    term_months: int = Field(ge=1, le=36)  # DOMAIN.md §4: term <= 3 years
    repayment_method: Method = "equal_instalment"


# Output only: a balance that may be negative (interest paid before it was billed).
SignedMoney = Annotated[
    Decimal,
    PlainSerializer(format_money, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "pattern": r"^-?[0-9]+\.[0-9]{2}$", "examples": ["-12.08"]}),
]

InstalmentState = Literal["paid", "partly_paid", "due", "overdue", "written_off", "upcoming", "prepaid"]


class BillOut(BaseModel):
    """What fell due on an instalment's due date (services/loans/domain/statement.py)."""

    principal: Money
    interest: Money = Field(description="gross interest charged for the period")
    subsidy: Money = Field(description="the district finance's share (贴息), a receivable of its own")
    net_due: Money = Field(description="principal + interest - subsidy: what the borrower was billed")


class InstalmentOut(BaseModel):
    number: int
    due_on: date
    # As scheduled at drawdown.
    principal: Money
    interest: Money
    subsidy: Money
    net_due: Money  # what the borrower pays: principal + interest - subsidy (never netted silently)
    # Added (issue 22): the bill once it fell due, what of it is paid, and its state as of the
    # business date (definitions in services/loans/domain/statement.py).
    billed: BillOut | None = Field(description="the bill, once the instalment fell due; null before")
    paid_principal: Money
    paid_interest: Money = Field(description="net interest paid (the subsidy is the district finance's)")
    outstanding: Money = Field(description="of the bill, not paid yet")
    state: InstalmentState = Field(
        description="paid; partly_paid or due (due on the business date, paid in part or not at all); overdue "
        "(its due date passed, not paid in full); written_off; upcoming (not billed yet); prepaid (the loan was "
        "repaid before it fell due)"
    )


class LoanOut(BaseModel):
    loan_id: str
    credit_line_id: str
    status: LoanStatus
    principal: Money
    annual_rate: str
    subsidy_rate: str
    red_list_discount: str  # taken off the rate at drawdown for a red-listed subject (0 otherwise)
    day_count: DayCount
    repayment_method: Method
    term_months: int
    disbursed_on: date
    maturity_on: date
    principal_outstanding: Money
    interest_outstanding: Money  # borrower's accrued, unpaid interest (net of subsidy)
    subsidy_accrued: Money  # receivable from the district finance
    subsidy_forfeited: Money  # subsidy not granted for days on the black list (seed 001)
    # Penalty (罚息) on principal in arrears and compound interest (复利) on interest in arrears,
    # never subsidised (DOMAIN.md §7, docs/loan-lifecycle.md): charged so far, paid, owed now.
    penalty_accrued: Money
    compound_accrued: Money
    penalty_paid: Money
    penalty_outstanding: Money
    amount_due: Money  # everything due up to the business date, penalty included
    days_past_due: int
    classification: Classification
    non_performing: bool
    priority: bool  # the subject is red-listed now
    schedule: list[InstalmentOut]


class RepaymentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    amount: PositiveMoney
    date: dt.date | None = None


class RepaymentOut(BaseModel):
    repayment_id: str
    loan_id: str
    amount: Money
    interest: Money
    principal: Money
    penalty: Money  # penalty and compound interest paid (amount = interest + principal + penalty)
    business_date: date
    principal_outstanding: Money
    interest_outstanding: Money
    penalty_outstanding: Money


MAX_BATCH_REPAYMENTS = 1000


class RepaymentEntryOut(BaseModel):
    """A repayment as received, with its allocation (in the bank's order: penalty, interest,
    principal by default)."""

    repayment_id: str = Field(description="the repayment's reference")
    loan_id: str
    value_date: date = Field(description="the business date it was taken on")
    received_at: UtcDateTime
    amount: Money
    interest: Money
    principal: Money
    penalty: Money  # penalty and compound interest


class StatementBalanceOut(BaseModel):
    principal: SignedMoney
    interest: SignedMoney = Field(
        description="interest billed net of subsidy less interest paid; negative when paid before it was billed"
    )
    total: SignedMoney


class StatementLineOut(BaseModel):
    value_date: date
    kind: Literal["drawdown", "billing", "interest", "repayment", "write_off"]
    instalment: int | None
    reference: str | None = Field(description="the repayment's id, the loan's for a drawdown or write-off")
    received_at: UtcDateTime | None
    drawn: Money
    principal_due: Money
    interest: Money
    subsidy: Money
    net_due: Money
    paid: Money
    paid_principal: Money
    paid_interest: Money
    written_off: Money
    balance_principal: SignedMoney
    balance_interest: SignedMoney
    balance: SignedMoney
    # Issue 24, last so the CSV's earlier columns keep their places: a repayment's part that paid
    # penalty and compound interest (罚息, 复利), shown apart; ``paid`` is the rest of it.
    paid_penalty: Money = Field(default=Decimal("0.00"))


class StatementTotalsOut(BaseModel):
    """The sums of the lines' columns: closing = opening + drawn + interest - subsidy - paid - written_off."""

    drawn: Money
    principal_due: Money
    interest: Money = Field(description="interest charged")
    subsidy: Money
    net_due: Money
    paid: Money
    paid_principal: Money
    paid_interest: Money
    written_off: Money
    paid_penalty: Money = Field(default=Decimal("0.00"), description="penalty and compound interest paid")


class StatementOut(BaseModel):
    """A borrower's statement (对账单) of ``from``..``to``, both included, on the billed basis
    (services/loans/domain/statement.py)."""

    model_config = ConfigDict(populate_by_name=True)
    loan_id: str
    credit_line_id: str
    household_id: str | None
    business_id: str | None
    from_: date = Field(alias="from")
    to: date
    business_date: date
    currency: Literal["CNY"] = "CNY"
    opening_balance: StatementBalanceOut
    lines: list[StatementLineOut]
    totals: StatementTotalsOut
    closing_balance: StatementBalanceOut


class RepaymentBatchItem(BaseModel):
    model_config = ConfigDict(extra="forbid")
    loan_id: str = Field(min_length=1, max_length=36)
    amount: PositiveMoney


class RepaymentBatchIn(BaseModel):
    """A bank's debit run (批量扣款): the day's repayments in one request."""

    model_config = ConfigDict(extra="forbid")
    date: dt.date | None = None
    repayments: list[RepaymentBatchItem] = Field(min_length=1, max_length=MAX_BATCH_REPAYMENTS)


class RepaymentResult(BaseModel):
    loan_id: str
    status: int  # 201 applied; otherwise what POST /v1/loans/{id}/repayments would have answered
    repayment: RepaymentOut | None = None
    # The refusal, as the single endpoint's problem body: sent as it is (a dict, so no member is
    # added or dropped), documented as the Problem every error is, so a generated client
    # parses it as one (it read an untyped object before).
    problem: Annotated[
        dict[str, Any] | None,
        WithJsonSchema({"anyOf": [{"$ref": "#/components/schemas/Problem"}, {"type": "null"}]}),
    ] = None


class RepaymentBatchOut(BaseModel):
    business_date: date
    applied: int
    refused: int
    results: list[RepaymentResult]  # one per item, in the request's order


class WriteOffOut(BaseModel):
    loan_id: str
    loss: Money
    business_date: date


class CobIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    date: dt.date


class CobOut(BaseModel):
    closed: list[date]
    business_date: date
    # Extensions (issue 19): the run that closed the days (GET /v1/cob/runs/{run_id}); null
    # when the date was the business date already and nothing was closed.
    run_id: str | None = None
    status: Literal["done"] = "done"


CobStatus = Literal["running", "done", "cancelled", "interrupted", "failed"]


class CobRunOut(BaseModel):
    run_id: str
    status: CobStatus
    target: date = Field(description="the business date the run was asked to reach")
    from_date: date = Field(description="the business date when it started")
    current_day: date = Field(description="the business day it is closing, or where it stopped")
    days_closed: int
    cancel_requested: bool
    requested_by: str
    cancelled_by: str | None
    detail: str | None
    started_at: UtcDateTime
    finished_at: UtcDateTime | None


class BusinessDateOut(BaseModel):
    business_date: date


class TrialBalanceOut(BaseModel):
    business_date: date
    accounts: dict[str, str]  # signed, two places: assets and expenses debit-positive
    debits_equal_credits: bool
