"""Payload models of every public event, registered with their versions.

Consumers in other services parse payloads with these models, so a field renamed here is a
contract change: add a new version instead (API.md: extend, never break).

Over 400 lines on purpose: this is the event contract, one payload model per event type, kept
in one file so it is read and reviewed whole, like API.md's list of events; its sections
follow the emitting service.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.events import BY_VILLAGE, EventType, PartitionKey, register


def _register_all(
    entries: tuple[tuple[str, type[BaseModel], str] | tuple[str, type[BaseModel], str, PartitionKey], ...],
) -> None:
    for name, model, text, *key in entries:
        register(EventType(name, 1, model, text, key=key[0] if key else BY_VILLAGE))


# The partition keys other than the village code (BY_VILLAGE), as the emitters choose them.
# A unit's own events (created, renamed) carry its code as ``code``.
OWN_TOWNSHIP_CODE = PartitionKey("The township's code (`code`), so a township's events stay in order.", ("code",))
OWN_VILLAGE_CODE = PartitionKey("The village's code (`code`), so a village's events stay in order.", ("code",))
OWN_COMMUNITY_CODE = PartitionKey("The community's code (`code`).", ("code",))
BY_TOWNSHIP = PartitionKey(
    "The township code, so a township's halts, resumptions and bulletins stay in order.", ("township_code",)
)
# One business date for the district: every close of business in one order.
DISTRICT = PartitionKey(
    "The constant `district`: the business date is one sequence for the whole district.", constant="district"
)
# One risk compensation fund: its balance changes in one order.
FUND = PartitionKey(
    "The constant `fund`: the district's one risk compensation fund, its changes in one order.", constant="fund"
)
# A village title is keyed by its village, a township title by its township, a community title by its code.
BY_TITLE_HOLDER = PartitionKey(
    "The village code for a village's or a household's title, else the township code for a township's, "
    "else the community code: the first of village_code, township_code, code that is set.",
    ("village_code", "township_code", "code"),
)
# A party's claim batches in one order.
BY_PARTY = PartitionKey("The party (`party`) the batch claims from, so its batches stay in order.", ("party",))
# The claim's payload names the loan only; its loss's village (risk.loss.split) keys it.
BY_LOSS_VILLAGE = PartitionKey(
    "The village code of the loan's borrower, as on the risk.loss.split event of the same loan_id "
    "(the payload does not carry it), so a loss and its settlements stay in order."
)


class _Payload(BaseModel):
    # A payload that fails to parse is logged and dead-lettered: its error names the field,
    # never quotes the value (head names, which no log pattern can recognise).
    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)


class TownshipCreated(_Payload):
    code: str
    name: str


class VillageCreated(_Payload):
    code: str
    name: str
    township_code: str


REGISTRY_TOWNSHIP_CREATED = register(
    EventType(
        "registry.township.created",
        1,
        TownshipCreated,
        "A township (乡/涉农街道) was registered.",
        key=OWN_TOWNSHIP_CODE,
    )
)
REGISTRY_VILLAGE_CREATED = register(
    EventType(
        "registry.village.created",
        1,
        VillageCreated,
        "An administrative village (行政村) was registered.",
        key=OWN_VILLAGE_CODE,
    )
)


class UnitRenamed(_Payload):
    code: str
    old_name: str
    new_name: str


class CommunityCreated(_Payload):
    code: str
    name: str
    township_code: str


class HouseholdRegistered(_Payload):
    household_id: str
    village_code: str
    township_code: str
    poor_household: bool
    head_name: str
    id_number_masked: str
    members: int
    profile: dict[str, Any]  # Profile in JSON form, known fields only


class ProfileChanged(_Payload):
    """One per committed change. ``changed`` holds the new value of every field that
    changed (null = no longer known); ``profile`` is the whole profile after the change, so
    a consumer never needs to call back."""

    subject_kind: Literal["household", "business"]
    subject_id: str
    village_code: str
    township_code: str
    poor_household: bool | None = None
    changed: dict[str, Any]
    profile: dict[str, Any]
    disputed_fields: list[str]
    source: str
    supplied_by: str
    # Added after v1, optional (extend, never break): the day each current negative fact
    # ended (征信业管理条例 §16), for the facts that have one. Absent in older events = none.
    fact_ends: dict[str, date] = Field(default_factory=dict)


class BusinessRegistered(_Payload):
    business_id: str
    credit_code: str
    name: str
    kind: str
    village_code: str
    township_code: str
    profile: dict[str, Any]


class ObjectionOpened(_Payload):
    objection_id: str
    subject_kind: Literal["household", "business"]
    subject_id: str
    village_code: str
    fact_id: int
    field: str
    due_on: date


class ObjectionDecided(_Payload):
    objection_id: str
    subject_kind: Literal["household", "business"]
    subject_id: str
    village_code: str
    field: str
    outcome: Literal["corrected", "upheld", "unresolved"]
    decided_by: str


_register_all(
    (
        (
            "registry.township.renamed",
            UnitRenamed,
            "A township was renamed; the old name is kept in its history.",
            OWN_TOWNSHIP_CODE,
        ),
        (
            "registry.village.renamed",
            UnitRenamed,
            "A village was renamed; the old name is kept in its history.",
            OWN_VILLAGE_CODE,
        ),
        (
            "registry.community.created",
            CommunityCreated,
            "An urban community (社区) was registered.",
            OWN_COMMUNITY_CODE,
        ),
        ("registry.household.registered", HouseholdRegistered, "A household (农户) was registered with its profile."),
        ("registry.household.profile_changed", ProfileChanged, "Facts about a household changed."),
        ("registry.business.registered", BusinessRegistered, "An agricultural business (带贫经营主体) was registered."),
        ("registry.business.profile_changed", ProfileChanged, "Facts about a business changed."),
        ("registry.objection.opened", ObjectionOpened, "A subject disputes a fact (异议); it is marked disputed."),
        ("registry.objection.decided", ObjectionDecided, "An objection was decided: corrected, upheld or unresolved."),
    )
)


# --- loans (consumed by scoring and risk; emitted by loans, issue 5) ------------------------

Classification = Literal["normal", "special_mention", "substandard", "doubtful", "loss"]


class BusinessDateAdvanced(_Payload):
    """Close of business finished ``closed_date``; the business date is now ``business_date``."""

    closed_date: date
    business_date: date


class LoanClassified(_Payload):
    """A loan's days past due or classification changed (DOMAIN.md §4 five categories)."""

    loan_id: str
    subject_kind: Literal["household", "business"]
    subject_id: str
    village_code: str
    township_code: str
    business_date: date
    days_past_due: int
    classification: Classification
    previous_classification: Classification
    non_performing: bool
    principal_outstanding: str  # money


class LoanRepaid(_Payload):
    """A loan was repaid in full."""

    loan_id: str
    subject_kind: Literal["household", "business"]
    subject_id: str
    village_code: str
    township_code: str
    business_date: date
    on_time: bool  # never past due during its life
    # Additive (still version 1): the loan's first due date, its disbursement date plus one
    # calendar month clamped to the month's end (the schedule's add_months). Scoring counts a
    # repayment bonus only for a loan repaid on or after it (DOMAIN.md §2). Absent on events
    # published before it was added.
    first_due_on: date | None = None


class _LoanSubject(_Payload):
    subject_kind: Literal["household", "business"]
    subject_id: str
    village_code: str
    township_code: str


class CreditLineOpened(_LoanSubject):
    credit_line_id: str
    limit: str  # money


class CreditLineChanged(_LoanSubject):
    credit_line_id: str
    limit: str
    available: str
    status: str
    cause: str


class LoanDisbursed(_LoanSubject):
    loan_id: str
    credit_line_id: str
    amount: str
    annual_rate: str
    subsidy_rate: str
    term_months: int
    repayment_method: str
    disbursed_on: date
    maturity_on: date
    # Businesses pay 10% of each loan into the mutual guarantee fund (004 §6(2)); risk books it.
    mutual_guarantee_contribution: str


class RepaymentReceived(_LoanSubject):
    loan_id: str
    repayment_id: str
    amount: str
    interest: str
    principal: str
    principal_outstanding: str
    business_date: date
    # Additive (still version 1, issue 24): the part that paid penalty and compound interest
    # (罚息, 复利); amount = interest + principal + penalty. Absent on events published before.
    penalty: str | None = None


class InstalmentOverdue(_LoanSubject):
    loan_id: str
    instalment: int
    due_on: date
    amount_overdue: str


class LoanWrittenOff(_LoanSubject):
    """Realised loss = outstanding principal + accrued unpaid interest (API.md)."""

    loan_id: str
    loss: str
    principal: str
    interest: str
    business_date: date


class LoanExtended(_LoanSubject):
    """An extension (展期) was approved (DOMAIN.md §7): the loan's remaining principal is
    re-planned over its remaining and added months; no money moved. The summary of the new
    schedule: instalments ``first_instalment``..``term_months``, the first due
    ``first_due_on`` (``first_net_due``), the last on ``maturity_on``."""

    loan_id: str
    extension_id: str
    months: int
    extended_months: int  # in all, this one included
    term_months: int  # the loan's whole term now
    maturity_before: date
    maturity_on: date
    rescheduled_principal: str  # money: the principal not yet billed, re-planned
    first_instalment: int
    first_due_on: date
    first_net_due: str  # money
    subsidised: bool  # the added periods earn subsidy (VCREDIT_LOANS_EXTENSION_SUBSIDY)
    classification: Classification
    proposed_by: str
    approved_by: str
    business_date: date


class LoanRecovered(_LoanSubject):
    """004 §4(1)6: money collected on a written-off loan (核销后清收). ``recovered`` is the
    loan's recoveries so far, this one included; never more than ``loss``."""

    loan_id: str
    recovery_id: str
    amount: str
    recovered: str
    loss: str
    business_date: date


class ReconciliationTotal(_Payload):
    """One kind's line of a reconciliation file: how many movements, their sums (money)."""

    kind: Literal["disbursement", "repayment", "write_off", "recovery"]
    count: int
    amount: str
    principal: str
    interest: str
    penalty: str


class ReconciliationReady(_Payload):
    """A closed business date's reconciliation file (对账文件), its totals and checksum only:
    the lines are at ``GET /v1/reconciliation/{date}`` (docs/settlement.md)."""

    business_date: date
    lines: int
    totals: list[ReconciliationTotal]  # every kind, in the file's order
    subsidy_accrued: str
    checksum: str  # SHA-256 (hex) of the file's canonical text


class PeriodAccount(_Payload):
    """One account of a closed month's trial balance; money signed by the normal side."""

    account: str
    type: Literal["asset", "liability", "income", "expense"]
    normal_side: Literal["debit", "credit"]
    opening: str  # money, signed
    debit: str  # money: the month's debits
    credit: str
    closing: str  # money, signed


class PeriodClosed(_Payload):
    """An accounting month (``period``, YYYY-MM) was closed: its trial balance as stored,
    never changed afterwards; nothing is posted into it any more (issue 25). The totals:
    the month's debits and credits, and the debit-normal and credit-normal balances at its
    start and end (each pair equal)."""

    period: str
    first_day: date
    last_day: date
    business_date: date
    closed_by: str
    accounts: list[PeriodAccount]
    debit: str
    credit: str
    opening_debit_normal: str
    opening_credit_normal: str
    debit_normal: str
    credit_normal: str


class SubsidyClaimFiled(_Payload):
    """The bank filed its claim for a period's interest subsidy (贴息, 004 §4(1)5): totals only;
    the per-loan list is read from ``GET /v1/subsidy-claims/{id}``."""

    claim_id: str
    period_start: date
    period_end: date
    loans: int  # lines claimed
    claimed: str  # money
    forfeited: str  # excluded: subsidy not granted for days on the black list (seed 001)
    penalty_excluded: str  # excluded: penalty and compound interest, never subsidised
    filed_by: str
    business_date: date


class SubsidyClaimReviewed(_Payload):
    """The district finance reviewed a claim: ``approved`` (all), ``part_approved`` or
    ``returned`` (nothing approved; its days may be claimed again)."""

    claim_id: str
    period_start: date
    period_end: date
    status: Literal["approved", "part_approved", "returned"]
    claimed: str
    approved: str
    disallowed: str  # claimed - approved, the bank's expense (0.00 when returned)
    filed_by: str
    reviewed_by: str
    business_date: date


class SubsidyClaimPaid(_Payload):
    """The district finance paid (part of) an approved claim; ``paid`` is all paid so far."""

    claim_id: str
    payment_id: str
    amount: str
    paid: str
    approved: str
    reference: str
    paid_on: date
    business_date: date


_register_all(
    (
        ("loans.business_date.advanced", BusinessDateAdvanced, "Close of business moved the business date.", DISTRICT),
        ("loans.loan.classified", LoanClassified, "A loan's days past due or five-category classification changed."),
        ("loans.loan.repaid", LoanRepaid, "A loan was repaid in full."),
        ("loans.credit_line.opened", CreditLineOpened, "A revolving credit line was opened (一次授信)."),
        ("loans.credit_line.changed", CreditLineChanged, "A credit line's limit or status changed."),
        ("loans.loan.disbursed", LoanDisbursed, "A loan was drawn on a credit line."),
        ("loans.repayment.received", RepaymentReceived, "A repayment was received and allocated."),
        ("loans.instalment.overdue", InstalmentOverdue, "An instalment became overdue."),
        ("loans.loan.written_off", LoanWrittenOff, "A non-performing loan was written off; the loss is realised."),
        ("loans.loan.extended", LoanExtended, "A loan's extension (展期) was approved; its schedule re-planned."),
        ("loans.loan.recovered", LoanRecovered, "Money was collected on a written-off loan (核销后清收)."),
        (
            "loans.reconciliation.ready",
            ReconciliationReady,
            "A business date closed: its reconciliation file's totals and checksum (对账文件).",
            DISTRICT,
        ),
        (
            "loans.period.closed",
            PeriodClosed,
            "An accounting month was closed; its trial balance snapshot is published.",
            DISTRICT,
        ),
        ("loans.subsidy_claim.filed", SubsidyClaimFiled, "The bank filed a period's subsidy claim (贴息).", DISTRICT),
        (
            "loans.subsidy_claim.reviewed",
            SubsidyClaimReviewed,
            "A subsidy claim was approved, part or all, or returned.",
            DISTRICT,
        ),
        (
            "loans.subsidy_claim.paid",
            SubsidyClaimPaid,
            "The district finance paid (part of) a subsidy claim.",
            DISTRICT,
        ),
    )
)


# --- risk (consumed by loans for its refusals; emitted by risk, issue 6) ----------------------


class VillageFreeze(_Payload):
    village_code: str
    township_code: str
    npl_ratio: str  # four places
    outstanding: str
    non_performing: str
    manual: bool
    reason: str
    business_date: date | None = None
    decided_by: str = "risk"  # the principal's name for a manual decision


class TownshipHalt(_Payload):
    township_code: str
    villages: int
    villages_over_threshold: int
    village_codes_over: list[str]
    township_name: str = ""
    business_date: date | None = None


class FundCapacityChanged(_Payload):
    balance: str
    capacity: str
    cause: str = ""  # opening, top_up, loss or recovery
    amount: str | None = None  # the movement that changed the balance


class LossSplit(_Payload):
    """004 §6(1): who bears a realised loss. Parts sum exactly to ``loss``."""

    loan_id: str
    subject_kind: Literal["household", "business"]
    subject_id: str
    village_code: str
    township_code: str
    business_date: date
    loss: str
    mutual_guarantee: str  # drawn first from the business's mutual guarantee contributions
    government: str  # booked against the risk compensation fund
    bank: str
    insurer: str


class LossRecovered(_Payload):
    """004 §4(1)6: a recovery on a written-off loan returned to those who bore the loss, pro
    rata to what each still bore. The four parts sum exactly to ``amount``; ``recovered`` and
    ``net`` are the loss's totals after it (``net`` = loss - recovered)."""

    loan_id: str
    recovery_id: str
    village_code: str
    township_code: str
    business_date: date
    amount: str
    mutual_guarantee: str  # back to the business's mutual guarantee contributions
    government: str  # back into the risk compensation fund
    bank: str
    insurer: str  # reduces an open claim; owed back to the insurer if settled
    recovered: str
    net: str


class ClaimSettled(_Payload):
    loan_id: str
    party: Literal["bank", "insurer"]
    amount: str
    reference: str
    settled_by: str
    # Issue 25: the claim batch that settled it (risk.claim_batch.settled); null one by one.
    batch_id: str | None = None


class ClaimBatchFiled(_Payload):
    """A period's batch of claims on a party's shares of losses (DOMAIN §7), totals only: the
    lines are read from risk (GET /v1/claim-batches/{batch_id})."""

    batch_id: str
    party: Literal["insurer"]
    month: str  # the period's first month, YYYY-MM
    period_start: date
    period_end: date
    lines: int
    loss: str
    share: str
    recovered: str
    payable: str  # share less recovered, at filing
    filed_by: str
    filed_on: date


class ClaimBatchSettled(_Payload):
    """A batch settled: its accepted lines' claims settled (each also risk.claim.settled),
    its disputed ones open again."""

    batch_id: str
    party: Literal["insurer"]
    month: str
    accepted: int
    disputed: int
    settled: str  # the accepted lines' amounts net of recoveries at the settlement
    reference: str
    settled_by: str
    settled_on: date


class TitleAwarded(_Payload):
    """004 §6(4): credit village, township and household; seed 000: credit community."""

    year: int
    kind: Literal["credit_village", "credit_township", "credit_household", "credit_community"]
    code: str  # village, township or community code, or the household id
    village_code: str | None = None
    township_code: str | None = None
    figures: dict[str, str]


class BulletinIssued(_Payload):
    """A district-wide bulletin (通报, 004 §6(3)) naming a halted township and its villages."""

    bulletin_id: str
    kind: Literal["township_halted", "township_resumed"]
    township_code: str
    township_name: str
    business_date: date | None
    villages: int
    villages_over_threshold: int
    villages_over: list[dict[str, str]]  # code, name, npl_ratio, outstanding, non_performing
    text_zh: str
    text_en: str


class SubjectListed(_Payload):
    """A subject entered the red list (守信红名单) or the black list (失信黑名单) (seeds 001,
    002: joint rewards and punishment). The legal basis, the deciding role and the dates go
    with every listing and delisting."""

    entry_id: str
    list: Literal["red", "black"]
    subject_kind: Literal["household", "business"]
    subject_id: str
    village_code: str
    township_code: str
    cause: str  # e.g. court_dishonest_debtor, malicious_debt_evasion, trustworthy
    tier: Literal["minor", "general", "serious"] | None = None  # black entries
    legal_basis: str
    decided_by_role: str
    listed_on: date
    publication_ends_on: date | None = None
    # The deciding principal's credential name (issue 21); null when no principal decided
    # (the court's feed, risk's own expiry).
    decided_by: str | None = None


class SubjectDelisted(_Payload):
    entry_id: str
    list: Literal["red", "black"]
    subject_kind: Literal["household", "business"]
    subject_id: str
    village_code: str
    township_code: str
    # repaired, court_removed, publication_ended, no_longer_eligible, blacklisted, rejected
    reason: str
    legal_basis: str
    decided_by_role: str
    delisted_on: date
    decided_by: str | None = None  # as in SubjectListed


class RepairDecided(_Payload):
    """A credit repair (信用修复) decision, published with its reasons."""

    repair_id: str
    entry_id: str
    subject_kind: Literal["household", "business"]
    subject_id: str
    village_code: str
    decision: Literal["granted", "refused"]
    reasons: str
    decided_by_role: str
    decided_on: date
    decided_by: str | None = None  # the deciding principal's credential name (issue 21)


_register_all(
    (
        ("risk.subject.listed", SubjectListed, "A subject entered the red or the black list."),
        ("risk.subject.delisted", SubjectDelisted, "A subject left the red or the black list."),
        ("risk.repair.decided", RepairDecided, "A credit repair application was granted or refused."),
        ("risk.village.frozen", VillageFreeze, "A village's NPL ratio exceeds 3% (or was frozen by hand)."),
        ("risk.village.unfrozen", VillageFreeze, "A village's freeze was lifted."),
        (
            "risk.township.halted",
            TownshipHalt,
            "30% or more of a township's villages exceed 3%: lending stops.",
            BY_TOWNSHIP,
        ),
        ("risk.township.resumed", TownshipHalt, "A township's lending halt was lifted.", BY_TOWNSHIP),
        (
            "risk.fund.capacity_changed",
            FundCapacityChanged,
            "The risk fund's balance, hence its capacity, changed.",
            FUND,
        ),
        ("risk.loss.split", LossSplit, "A written-off loss was split 30/20/50 (after the mutual guarantee fund)."),
        (
            "risk.loss.recovered",
            LossRecovered,
            "A recovery on a written-off loan was returned pro rata to those who bore the loss.",
        ),
        ("risk.claim.settled", ClaimSettled, "The bank's or insurer's share of a loss was settled.", BY_LOSS_VILLAGE),
        (
            "risk.claim_batch.filed",
            ClaimBatchFiled,
            "A period's batch of claims on the insurer's shares of losses was filed (totals).",
            BY_PARTY,
        ),
        (
            "risk.claim_batch.settled",
            ClaimBatchSettled,
            "A claim batch was settled: accepted lines settled, disputed ones open again (totals).",
            BY_PARTY,
        ),
        (
            "risk.title.awarded",
            TitleAwarded,
            "A yearly credit title was awarded (信用村/乡/户, 信用社区).",
            BY_TITLE_HOLDER,
        ),
        (
            "risk.title.revoked",
            TitleAwarded,
            "A re-evaluation of the year no longer supports a title.",
            BY_TITLE_HOLDER,
        ),
        (
            "risk.bulletin.issued",
            BulletinIssued,
            "A district-wide bulletin (通报), e.g. a township halted.",
            BY_TOWNSHIP,
        ),
    )
)


# --- scoring ---------------------------------------------------------------------------------


class _Subject(_Payload):
    subject_kind: Literal["household", "business"]
    subject_id: str
    village_code: str
    township_code: str


class ReasonOut(_Payload):
    rule: str
    points: int
    text: str
    text_en: str
    source: str


class RatingChanged(_Subject):
    rating_id: int
    score: int
    grade: str
    credit_limit: str  # money
    vetoed: bool
    rule_set: str
    reasons: list[ReasonOut]
    status: str


class NoticeStarted(_Subject):
    rating_id: int
    head_name: str
    grade: str
    credit_limit: str
    notice_starts: date
    notice_ends: date


class NoticeEnded(_Subject):
    rating_id: int
    outcome: Literal["certified", "superseded", "rejected"]


class ScoringObjectionRaised(_Subject):
    objection_id: str
    rating_id: int


class ScoringObjectionResolved(_Subject):
    objection_id: str
    outcome: Literal["sustained", "dismissed"]
    # Who resolved it, by credential name and role (issue 21); never the objector.
    resolved_by: str | None = None
    resolved_by_role: str | None = None


class RatingCertified(_Subject):
    rating_id: int
    grade: str
    credit_limit: str
    certificate_no: str
    poor_household: bool = False  # loans prices the subsidy by it (004 §5.6)


class RatingDowngraded(_Subject):
    """Takes effect at once (it protects the bank): limits drop now, no notice."""

    rating_id: int
    grade: str
    credit_limit: str
    previous_grade: str
    previous_limit: str
    certificate_no: str | None
    poor_household: bool = False


class RatingRejected(_Subject):
    rating_id: int
    reason_code: str
    reason: str
    # Who rejected it (issue 21): the bank's principal, or whoever sustained an objection.
    decided_by: str | None = None
    decided_by_role: str | None = None


_register_all(
    (
        ("scoring.rating.changed", RatingChanged, "A subject's rating was recomputed with a different result."),
        ("scoring.notice.started", NoticeStarted, "A raised rating entered its 7-day public notice (公示)."),
        ("scoring.notice.ended", NoticeEnded, "A public notice ended: certified, superseded or rejected."),
        ("scoring.objection.raised", ScoringObjectionRaised, "An objection during notice suspends the rating."),
        ("scoring.objection.resolved", ScoringObjectionResolved, "An objection during notice was decided."),
        (
            "scoring.rating.certified",
            RatingCertified,
            "A rating was certified; the credit certificate (贷款信用证) issued.",
        ),
        ("scoring.rating.downgraded", RatingDowngraded, "A lower rating took effect at once."),
        ("scoring.rating.rejected", RatingRejected, "A rating was rejected (objection sustained, bank, or no grade)."),
    )
)
