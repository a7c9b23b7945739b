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


# Whole-village credit (services/loans/village_credit.py): domain/opening.py's cases.
SkipReason = Literal[
    "RATING_NOT_CERTIFIED",
    "NOTICE_NOT_ENDED",
    "VETOED",
    "NO_CREDIT_GRADE",
    "RATING_REJECTED",
    "BLACKLISTED",
    "CREDIT_LINE_EXISTS",
]


class VillageLineOpened(BaseModel):
    household_id: str
    credit_line_id: str
    limit: Money


class VillageLineSkipped(BaseModel):
    household_id: str
    reason_code: SkipReason
    detail: str


class VillageCreditOut(BaseModel):
    """Every household of the village loans knows, each opened or skipped, in household order."""

    village_code: str
    business_date: date
    opened: list[VillageLineOpened]
    skipped: list[VillageLineSkipped]


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


class SubsidyShareOut(BaseModel):
    """Days of a period that earned one share of the subsidy (issue 24, dated subsidy policy)."""

    first_day: date
    last_day: date
    share: str = Field(description="of the subsidy at the loan's subsidy rate, 0 to 1 (0.7 is 70%)")


class PricingOut(BaseModel):
    """What fixed the loan's rate at drawdown (issue 24, services/loans/domain/policies.py)."""

    rule: Literal["benchmark", "lpr_cap"] = Field(
        description="benchmark: the benchmark table; lpr_cap: at most the LPR of the matching tenor"
    )
    benchmark_from: date | None = Field(
        description="effective date of the benchmark table entry in force at drawdown; null: drawn before dated tables"
    )
    benchmark_rate: str | None = Field(description="the benchmark rate of the loan's term in that entry")
    lpr_from: date | None = Field(description="under lpr_cap, the LPR fixing in force at drawdown; null: none")
    lpr_rate: str | None = Field(description="that fixing's rate of the loan's tenor (1-year or 5-year-plus)")


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
    subsidy_policy: list[SubsidyShareOut] | None = Field(
        default=None, description="the subsidy shares its days earned, recorded when it billed; null before"
    )
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
    pricing: PricingOut | None = None  # added (issue 24)
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
    # Added (issue 24): term_months includes them; the original term is the difference.
    extended_months: int = Field(default=0, description="months added by approved extensions (展期)")
    # Added (issue 26): whose loan, masked as on a subsidy claim (a village's list shows its
    # borrowers without naming them; the full id is the household's or business's filter).
    subject_kind: Literal["household", "business"] | None = None
    subject_masked: str | None = Field(default=None, description="the borrower's id, first and last four kept")
    schedule: list[InstalmentOut]


class RepaymentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    amount: PositiveMoney
    date: dt.date | None = None
    # Added (issue 24): what principal paid ahead does (services/loans/loans.py repay).
    prepayment: Literal["shorter_term", "lower_instalment"] = Field(
        default="shorter_term",
        description="principal paid beyond what is billed: shorter_term (it covers the next bills, the loan ends "
        "sooner) or lower_instalment (the remaining principal is re-planned over the same instalments)",
    )


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


class ExtensionIn(BaseModel):
    """An extension (展期) proposed by the bank (DOMAIN.md §7)."""

    model_config = ConfigDict(extra="forbid")
    months: int = Field(ge=1, le=36, description="months added to the loan's term")
    reason: str = Field(min_length=1, max_length=500, description="why the borrower cannot repay on time")


class ExtensionDecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reasons: str | None = Field(default=None, min_length=1, max_length=500)


class ExtensionRejectionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reasons: str = Field(min_length=1, max_length=500)


class ExtensionOut(BaseModel):
    extension_id: str
    loan_id: str
    months: int
    reason: str
    status: Literal["proposed", "approved", "rejected"]
    proposed_by: str
    proposed_on: date = Field(description="the business date of the proposal")
    decided_by: str | None
    decided_on: date | None
    decision_reasons: str | None
    maturity_before: date | None = Field(description="the loan's maturity before the extension, once approved")
    maturity_after: date | None = Field(description="its maturity after it, once approved")
    loan: LoanOut | None = Field(default=None, description="the loan after the decision (approval, rejection)")


class WriteOffOut(BaseModel):
    loan_id: str
    loss: Money
    business_date: date


class RecoveryIn(BaseModel):
    """Money collected on a written-off loan (核销后清收, 004 §4(1)6)."""

    model_config = ConfigDict(extra="forbid")
    amount: PositiveMoney


class RecoveryOut(BaseModel):
    recovery_id: str
    loan_id: str
    amount: Money
    business_date: date
    loss: Money = Field(description="the loss written off")
    recovered: Money = Field(description="the loan's recoveries so far, this one included")
    net: Money = Field(description="the loss not recovered: loss - recovered")


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


class PortfolioOut(BaseModel):
    """The lending figures of an area (issue 26): counts and sums, no subject."""

    business_date: date
    township_code: str | None
    village_code: str | None
    credit_lines: int = Field(description="credit lines opened")
    credit_limit: Money = Field(description="their limits, summed")
    loans_outstanding: int = Field(description="active loans: neither repaid nor written off")
    principal_outstanding: Money


AccountType = Literal["asset", "liability", "income", "expense"]


class TrialBalanceLine(BaseModel):
    account: str
    type: AccountType
    normal_side: Literal["debit", "credit"]
    opening: SignedMoney = Field(
        description="the balance before the window (0.00 without `period`), signed by the normal side"
    )
    debit: Money = Field(description="the window's debits")
    credit: Money = Field(description="the window's credits")
    balance: SignedMoney = Field(description="the balance at the window's end, signed by the normal side")


class TrialBalanceTotals(BaseModel):
    debit: Money = Field(description="the window's debits, all accounts")
    credit: Money
    opening_debit_normal: SignedMoney = Field(description="the opening balances of the assets and expenses")
    opening_credit_normal: SignedMoney = Field(description="the opening balances of the liabilities and income")
    debit_normal: SignedMoney = Field(description="the closing balances of the assets and expenses")
    credit_normal: SignedMoney = Field(description="the closing balances of the liabilities and income")
    balanced: bool = Field(description="debit == credit and each debit-normal total equals its credit-normal total")


class TrialBalanceOut(BaseModel):
    business_date: date
    accounts: dict[str, str] = Field(
        description="each account's balance at the window's end, two places, signed by its normal side: assets and "
        "expenses debit-positive, liabilities and income credit-positive (`settlement`, the clearing account with "
        "the bank's core, is a liability since issue 25: it was debit-signed, negative while loans were out)"
    )
    debits_equal_credits: bool
    # Added (issue 25): the window, the closing date of the ledger, and the lines.
    period: str | None = Field(default=None, description="the month asked for (YYYY-MM), if any")
    from_: date | None = Field(
        default=None, alias="from", description="the window's first day (the month's first day with `period`)"
    )
    as_of: date = Field(description="the window's last day: entries dated on or before it count")
    closed_through: date | None = Field(description="the last day of the last accounting month closed")
    lines: list[TrialBalanceLine]
    totals: TrialBalanceTotals

    model_config = ConfigDict(populate_by_name=True)


# --- reconciliation (对账, services/loans/reconciliation.py) ------------------------------------

ReconciliationKind = Literal["disbursement", "repayment", "write_off", "recovery"]
DifferenceKind = Literal["disbursement", "repayment", "write_off", "recovery", "subsidy_accrued"]
DifferenceStatus = Literal["open", "resolved"]


class ReconciliationLineOut(BaseModel):
    kind: ReconciliationKind
    loan_id: str
    village_code: str
    amount: Money = Field(description="disbursed, repaid, the loss written off, or recovered")
    principal: Money = Field(description="of a repayment or write-off: the principal (a disbursement: 0)")
    interest: Money = Field(description="of a repayment or write-off: the contract interest")
    penalty: Money = Field(description="of a repayment: the penalty and compound interest paid")


class ReconciliationTotalOut(BaseModel):
    kind: ReconciliationKind
    count: int
    amount: Money
    principal: Money
    interest: Money
    penalty: Money


class ReconciliationFileOut(BaseModel):
    business_date: date
    checksum: str = Field(description="SHA-256 (hex) of the canonical text (docs/settlement.md)")
    totals: list[ReconciliationTotalOut] = Field(description="every kind, even with no line")
    subsidy_accrued: Money = Field(description="the day's accrual to the subsidy receivable, a district total")
    lines: list[ReconciliationLineOut] = Field(description="in canonical order")


class BankKindTotalIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    count: int = Field(ge=0, le=10_000_000)
    amount: Money


class BankTotalsIn(BaseModel):
    """The bank's own totals of the day, every kind stated (a zero one too)."""

    model_config = ConfigDict(extra="forbid")
    disbursement: BankKindTotalIn
    repayment: BankKindTotalIn
    write_off: BankKindTotalIn
    recovery: BankKindTotalIn


class BankLineIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    loan_id: str = Field(min_length=1, max_length=36)
    kind: ReconciliationKind
    amount: PositiveMoney


class BankFileIn(BaseModel):
    """The bank's core system's file of a business date (对账): its totals, subsidy accrued and
    lines; its checksum, if it computed one, is compared with ours."""

    model_config = ConfigDict(extra="forbid")
    totals: BankTotalsIn
    subsidy_accrued: Money
    lines: list[BankLineIn]
    checksum: str | None = Field(default=None, pattern="^[0-9a-f]{64}$")


class KindComparisonOut(BaseModel):
    kind: DifferenceKind
    ours_count: int | None
    ours_amount: Money
    theirs_count: int | None
    theirs_amount: Money
    matches: bool


class DifferenceOut(BaseModel):
    difference_id: str
    business_date: date
    kind: DifferenceKind
    loan_id: str | None = Field(description="none for the day's subsidy accrued")
    village_code: str | None
    ours_count: int | None
    ours_amount: Money
    theirs_count: int | None
    theirs_amount: Money
    status: DifferenceStatus
    opened_at: UtcDateTime
    resolved_by: str | None
    resolved_at: UtcDateTime | None
    reason: str | None


class BankFileOut(BaseModel):
    submission_id: str
    business_date: date
    checksum: str = Field(description="ours")
    bank_checksum: str | None
    checksum_matches: bool | None = Field(description="none when the bank sent no checksum")
    totals: list[KindComparisonOut] = Field(description="each kind's count and amount, then the subsidy accrued")
    differences: list[DifferenceOut] = Field(description="kept open until resolved")


class ResolveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=500, pattern=r"\S", description="how it was resolved")


class PeriodOut(BaseModel):
    """A closed accounting month's trial balance, as stored at its close (never changed)."""

    period: str
    first_day: date
    last_day: date
    business_date: date = Field(description="the business date when it was closed")
    closed_at: UtcDateTime
    closed_by: str
    lines: list[TrialBalanceLine]
    totals: TrialBalanceTotals


class CorrectionLegIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    account: str = Field(min_length=1, max_length=32)
    debit: Money = Decimal("0.00")
    credit: Money = Decimal("0.00")

    @model_validator(mode="after")
    def _one_side(self) -> CorrectionLegIn:
        if (self.debit > 0) == (self.credit > 0):
            raise ValueError("a leg is a debit or a credit: give exactly one of them, greater than zero")
        return self


class CorrectionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    corrects: str = Field(min_length=1, max_length=36, description="the ledger transaction (txn_id) corrected")
    reason: str = Field(min_length=1, max_length=500)
    legs: list[CorrectionLegIn] | None = Field(
        default=None,
        min_length=2,
        max_length=20,
        description="balanced legs; omitted: the exact reverse of the transaction corrected",
    )
    date: dt.date | None = Field(default=None, description="the business date by default; never in a closed month")


class CorrectionLegOut(BaseModel):
    account: str
    debit: Money
    credit: Money


class CorrectionOut(BaseModel):
    txn_id: str
    corrects: str
    reason: str
    business_date: date
    recorded_by: str
    legs: list[CorrectionLegOut]


# --- subsidy claims (贴息资金拨付, issue 25, services/loans/subsidy_claims.py) ---------------------

SubsidyClaimStatus = Literal["filed", "approved", "part_approved", "returned", "paid"]


class SubsidyClaimIn(BaseModel):
    """The days to claim: one whole configured period (VCREDIT_LOANS_SUBSIDY_CLAIM_PERIOD)."""

    model_config = ConfigDict(extra="forbid")
    period_start: date
    period_end: date


class SubsidyClaimLineOut(BaseModel):
    number: int = Field(description="序号")
    loan_id: str
    borrower: str = Field(description="the borrower's subject id, masked (loans holds no names)")
    subject_kind: Literal["household", "business"]
    village_code: str
    principal: Money
    disbursed_on: date
    maturity_on: date
    annual_rate: str
    subsidy_rate: str = Field(description="annual subsidy rate (a poor household's equals its annual rate: 全额贴息)")
    policy: str = Field(description="全额贴息, or 年贴息率 for a business, with the dated shares of the period")
    days: int = Field(description="days contract interest accrued in the period (计息天数)")
    subsidy: Money = Field(description="claimed")
    approved: Money | None
    reason: str | None = Field(description="why less was approved")


class SubsidyExcludedOut(BaseModel):
    """Not claimed: subsidy forfeited on days on the black list (seed 001), and penalty and
    compound interest (never subsidised)."""

    loan_id: str
    borrower: str
    village_code: str
    forfeited_days: int
    forfeited: Money
    penalty: Money = Field(description="penalty and compound interest accrued in the period")


class SubsidyPaymentOut(BaseModel):
    payment_id: str
    amount: Money
    reference: str
    paid_on: date
    business_date: date
    recorded_by: str


class SubsidyClaimOut(BaseModel):
    claim_id: str
    period_start: date
    period_end: date
    status: SubsidyClaimStatus
    filed_by: str
    filed_on: date
    reviewed_by: str | None
    reviewed_on: date | None
    review_reasons: str | None
    policy: str = Field(description="the dated subsidy shares of the period's days (first..last=share)")
    loans: int = Field(description="lines claimed")
    claimed: Money
    forfeited: Money = Field(description="excluded: subsidy of days on the black list")
    penalty_excluded: Money = Field(description="excluded: penalty and compound interest")
    approved: Money | None
    disallowed: Money | None = Field(description="claimed - approved, once reviewed (not when returned)")
    paid: Money
    outstanding: Money | None = Field(description="approved - paid: the subsidy_claimed receivable of this claim")
    lines: list[SubsidyClaimLineOut] | None = Field(default=None, description="with a single claim only")
    excluded: list[SubsidyExcludedOut] | None = None
    payments: list[SubsidyPaymentOut] | None = None


class SubsidyReviewLineIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    loan_id: str = Field(min_length=1, max_length=36)
    approved: Money
    reason: str = Field(min_length=1, max_length=500)


class SubsidyReviewIn(BaseModel):
    """``approve`` all, ``approve_part`` (``lines``: the reduced lines, each with its reason;
    the others are approved in full) or ``return`` (with ``reasons``)."""

    model_config = ConfigDict(extra="forbid")
    decision: Literal["approve", "approve_part", "return"]
    reasons: str | None = Field(default=None, min_length=1, max_length=1000)
    lines: list[SubsidyReviewLineIn] = Field(default_factory=list, max_length=100_000)


class SubsidyPaymentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    amount: PositiveMoney
    reference: str = Field(min_length=1, max_length=100, description="the finance's payment reference")
    paid_on: date | None = Field(default=None, description="the day the finance paid; default the business date")
