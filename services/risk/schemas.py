"""Risk's request and response bodies. Money out is a string with two places and ratios a
string with four (API.md); a fund can be overdrawn, so balances are signed."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from services.risk.settings import ListTier
from shared.money import Money, RatioText
from shared.timestamps import UtcDateTime


def _positive(amount: Decimal) -> Decimal:
    if amount <= 0:
        raise ValueError("amount must be greater than zero")
    return amount


def _ratio(value: Decimal) -> Decimal:
    if not 0 <= value <= 1:
        raise ValueError("a ratio is between 0 and 1, e.g. 0.9500")
    if value != value.quantize(Decimal("0.0001")):
        raise ValueError("a ratio has at most four decimal places")
    return value


Ratio = Annotated[RatioText, AfterValidator(_ratio)]


TitleKind = Literal["credit_village", "credit_township", "credit_household", "credit_community"]


class VillageOut(BaseModel):
    code: str
    name: str
    township_code: str
    npl_ratio: str
    outstanding: str
    non_performing: str
    over_threshold: bool
    frozen: bool
    frozen_since: date | None
    manual_override: Literal["frozen", "unfrozen"] | None
    override_reason: str | None


class VillageDayOut(BaseModel):
    business_date: date
    outstanding: str
    non_performing: str
    npl_ratio: str


class TownshipOut(BaseModel):
    code: str
    name: str
    npl_ratio: str
    outstanding: str
    non_performing: str
    villages: int
    villages_over_threshold: int
    villages_frozen: int
    halted: bool


class ReasonIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=5, max_length=500, description="why, in writing (DOMAIN §5)")


class DecisionOut(BaseModel):
    kind: str
    code: str
    manual: bool
    reason: str
    decided_by: str
    business_date: date | None
    figures: dict[str, Any]
    event_id: str
    decided_at: UtcDateTime


class LossOut(BaseModel):
    loan_id: str
    subject_kind: Literal["household", "business"]
    subject_id: str
    village_code: str
    township_code: str
    business_date: date
    loss: str
    mutual_guarantee: str
    government: str
    bank: str
    insurer: str
    # Recoveries after the write-off (004 §4(1)6), issue 24: additive.
    recovered: str = Field(description="recoveries so far: the sum of the four recovered_* parts")
    net: str = Field(description="the loss net of recoveries: loss - recovered")
    recovered_mutual_guarantee: str
    recovered_government: str = Field(description="returned to the risk compensation fund")
    recovered_bank: str
    recovered_insurer: str


class ClaimOut(BaseModel):
    loan_id: str
    party: Literal["bank", "insurer"]
    amount: str = Field(description="open: the share net of recoveries so far; settled: what was settled")
    status: Literal["open", "settled"]
    village_code: str
    business_date: date
    reference: str | None
    settled_on: date | None
    settled_by: str | None
    # Issue 24 (004 §4(1)6): additive.
    recovered: str = Field(description="the party's part of the recoveries on the loan so far")
    payable: str = Field(description="owed back to the party: its part of the recoveries after its settlement")


class SettleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reference: str = Field(min_length=1, max_length=200, description="the payment or claim reference")


class FundOut(BaseModel):
    balance: str
    capacity: str
    outstanding: str
    available: str  # capacity left for new programme principal
    leverage: int


class FundEntryOut(BaseModel):
    kind: Literal["opening", "top_up", "loss", "recovery"]
    amount: str
    loan_id: str | None
    reason: str
    decided_by: str
    business_date: date
    recorded_at: UtcDateTime


class TopUpIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    amount: Annotated[Money, AfterValidator(_positive)]
    reason: str = Field(min_length=5, max_length=500)


class MutualGuaranteeOut(BaseModel):
    business_id: str
    village_code: str
    contributed: str
    drawn: str
    balance: str


class FundMovementOut(BaseModel):
    business_date: date
    kind: Literal["opening", "top_up", "loss", "recovery"]
    loan_id: str | None
    reason: str
    decided_by: str
    amount: str  # signed: a loss is negative
    balance: str  # the fund's balance after this movement


class FundStatementOut(BaseModel):
    """The risk compensation fund over a period (004 §6(2)): opening + movements = closing."""

    from_: date = Field(alias="from")
    to: date
    opening_balance: str
    totals: dict[str, str]  # by kind (opening, top_up, loss, recovery), signed, zero if none
    movements: list[FundMovementOut]
    closing_balance: str

    model_config = ConfigDict(populate_by_name=True)


class MutualGuaranteeMovementOut(BaseModel):
    business_date: date
    kind: Literal["contribution", "draw", "recovery"]
    loan_id: str | None  # none only for contributions carried forward by migration 0025e
    recovery_id: str | None
    amount: str  # signed: a draw is negative
    balance: str  # the account's balance after this movement


class MutualGuaranteeStatementOut(BaseModel):
    """A business's mutual guarantee account over a period: opening + movements = closing."""

    business_id: str
    village_code: str
    from_: date = Field(alias="from")
    to: date
    opening_balance: str
    totals: dict[str, str]  # by kind (contribution, draw, recovery), signed, zero if none
    movements: list[MutualGuaranteeMovementOut]
    closing_balance: str

    model_config = ConfigDict(populate_by_name=True)


class EvaluationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    year: int = Field(ge=2000, le=2100)


class EvaluationOut(BaseModel):
    year: int
    titles: dict[str, int]
    awarded: int
    revoked: int


class TitleOut(BaseModel):
    year: int
    kind: TitleKind
    code: str
    village_code: str | None
    township_code: str | None
    figures: dict[str, str]
    awarded_at: UtcDateTime


class AssessmentIn(BaseModel):
    """Seed 000 §4(6): figures from the financial institutions for one year."""

    model_config = ConfigDict(extra="forbid")
    year: int = Field(ge=2000, le=2100)
    loan_recovery: Ratio = Field(description="small guaranteed loans' principal and interest recovery, >= 0.90")
    npl_ratio: Ratio = Field(description="financial institutions' NPL ratio in the community, <= 0.05")
    new_loan_interest_recovery: Ratio = Field(description="interest recovery on the year's new loans, >= 0.95")
    malicious_evasion: bool = Field(description="any malicious evasion of debts to financial institutions")


class AssessmentOut(BaseModel):
    community_code: str
    year: int
    failed: list[str]


class IndicatorsOut(BaseModel):
    code: str
    name: str
    households: int
    rated_a_or_better: int
    coverage: str  # seed 003 annex 1: credit-household coverage
    coverage_points: str  # out of 3
    outstanding: str
    non_performing: str
    npl_ratio: str
    villages: int
    villages_over_threshold: int
    halted: bool | None = None


class DistrictIndicatorsOut(BaseModel):
    business_date: date
    district: IndicatorsOut
    townships: list[IndicatorsOut]
    # Added (issue 26): the lines the figures are held against (004 §6(3)), so a chart or a
    # colour band draws risk's own threshold rather than a copy of it.
    village_npl_threshold: str = Field(description="a village over this NPL ratio is frozen (default 0.0300)")
    township_share_threshold: str = Field(
        description="a township with this share of its villages over the line, or more, is halted (default 0.3000)"
    )


# --- credit lists and repair (issue 11) ------------------------------------------------------


class BlackListProposalIn(BaseModel):
    """A bank's report of malicious debt evasion (恶意逃废债务, seed 000 §4(6)), with evidence."""

    model_config = ConfigDict(extra="forbid")

    subject_kind: Literal["household", "business"]
    subject_id: str = Field(min_length=1, max_length=36)
    evidence: str = Field(min_length=10, max_length=4000, description="What was evaded and how it is known")


class ListDecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    approve: bool
    reasons: str = Field(min_length=2, max_length=4000)


class ListEntryOut(BaseModel):
    entry_id: str
    list: Literal["red", "black"]
    subject_kind: Literal["household", "business"]
    subject_id: str
    name: str
    identifier_masked: str
    village_code: str
    township_code: str
    cause: str
    tier: ListTier | None
    legal_basis: str
    evidence: str | None
    proposed_by: str | None
    status: Literal["proposed", "active", "rejected", "ended"]
    decided_by_role: str | None
    # The deciding principal's credential name (issue 21): never the proposer's. Null for the
    # court's feed, for risk's own expiry, and for decisions taken before it was recorded.
    decided_by: str | None = None
    decision_reasons: str | None
    listed_on: date | None
    publication_ends_on: date | None
    earliest_repair_on: date | None
    ended_on: date | None
    end_reason: str | None
    # 征信业管理条例 §16 (shared/periods.py): the last day the record is kept; it is deleted on
    # the first business date after it.
    retention_ends_on: date | None = Field(
        description="Last day the record is kept (5 years from the end of the act); deleted the day after."
    )


class PublicListEntryOut(BaseModel):
    """What the public sees (issue 11): entries in force, identifiers masked, no evidence."""

    entry_id: str
    list: Literal["red", "black"]
    subject_kind: Literal["household", "business"]
    name: str
    identifier_masked: str
    village_code: str
    township_code: str
    cause: str
    tier: ListTier | None
    legal_basis: str
    decided_by_role: str | None
    listed_on: date | None
    publication_ends_on: date | None


class RedListEvaluationOut(BaseModel):
    business_date: date
    listed: int
    delisted: int
    on_list: int


class RepairIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    entry_id: str = Field(min_length=1, max_length=36)
    statement: str = Field(min_length=10, max_length=4000, description="How the obligations were fulfilled")
    obligations_fulfilled_on: date


class RepairReviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str = Field(min_length=2, max_length=4000)


class RepairDecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: Literal["granted", "refused"]
    reasons: str = Field(min_length=2, max_length=4000)


class RepairOut(BaseModel):
    repair_id: str
    entry_id: str
    subject_kind: Literal["household", "business"]
    subject_id: str
    name: str
    identifier_masked: str
    village_code: str
    statement: str
    obligations_fulfilled_on: date
    status: Literal["applied", "under_review", "granted", "refused"]
    applied_by: str
    applied_on: date
    earliest_repair_on: date | None
    review_note: str | None
    decided_by_role: str | None
    reasons: str | None
    decided_on: date | None
    # Who reviewed and who decided, by credential name (issue 21): never the applicant.
    reviewed_by: str | None = None
    decided_by: str | None = None


class PublicRepairOut(BaseModel):
    repair_id: str
    entry_id: str
    subject_kind: Literal["household", "business"]
    name: str
    identifier_masked: str
    village_code: str
    decision: Literal["granted", "refused"]
    reasons: str
    decided_by_role: str
    decided_on: date


# --- insurer claims in batches (issue 25 item 2, DOMAIN §7) -----------------------------------


class ClaimBatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    party: Literal["insurer"] = Field(description="whose shares are claimed: the insurer's (DOMAIN §7)")
    month: str = Field(
        pattern=r"^[0-9]{4}-[0-9]{2}$",
        description="the period's first month, YYYY-MM; a month by default (VCREDIT_RISK_CLAIM_BATCH_MONTHS)",
    )


class ClaimDecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    decision: Literal["accept", "dispute"]
    reason: str | None = Field(default=None, max_length=500, description="required for a dispute")


class ClaimBatchLineOut(BaseModel):
    loan_id: str
    village_code: str
    village_name: str
    township_code: str
    township_name: str
    written_off_on: date
    loss: str
    share: str = Field(description="the party's share of the loss (004 §6(1))")
    recovered: str = Field(description="the party's part of the recoveries on the loan when the batch was filed")
    payable: str = Field(description="share less recovered, when the batch was filed")
    decision: Literal["accept", "dispute"] | None
    reason: str | None
    decided_by: str | None
    decided_at: UtcDateTime | None
    settled_amount: str | None = Field(
        description="an accepted line, once settled: the share net of the recoveries at the settlement (004 §4(1)6)"
    )


class ClaimBatchOut(BaseModel):
    batch_id: str
    party: Literal["insurer"]
    month: str
    period_start: date
    period_end: date
    status: Literal["filed", "settled"]
    filed_by: str
    filed_on: date
    line_count: int
    loss: str
    share: str
    recovered: str
    payable: str
    accepted: int
    disputed: int
    undecided: int
    settled_total: str | None = Field(description="the sum of the accepted lines' settled amounts")
    reference: str | None
    settled_by: str | None
    settled_on: date | None


class ClaimBatchDetailOut(ClaimBatchOut):
    lines: list[ClaimBatchLineOut]
