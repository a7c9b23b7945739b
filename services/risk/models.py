"""Risk tables.

Two kinds, and the difference matters for ``vcredit rebuild risk``:

- **projections** (``PROJECTIONS``), derived only from other services' events: the hierarchy,
  loan positions, village and township figures, losses, grades. A rebuild empties them and
  replays the topics from the beginning; the result is identical to the live one.
- **records of commands** made here (manual overrides, fund top-ups, claim settlements,
  community assessments, titles awarded, decisions taken): kept as they are by a rebuild.

Risk never asks another service synchronously, so no outage elsewhere can stop the
circuit breaker.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base, BigIntPK, include_shared_tables, new_metadata

metadata = new_metadata()
include_shared_tables(metadata)

Money = Numeric(16, 2)
Ratio = Numeric(8, 4)


class RiskBase(Base):
    __abstract__ = True
    metadata = metadata


# --- projections --------------------------------------------------------------------------


class Clock(RiskBase):
    """The business date, followed from ``loans.business_date.advanced``."""

    __tablename__ = "clock"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    business_date: Mapped[date] = mapped_column(Date)


class Township(RiskBase):
    __tablename__ = "townships"

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), default="")
    halted: Mapped[bool] = mapped_column(Boolean, default=False)


class Village(RiskBase):
    """A village's programme figures. A loan event may arrive before the registry's
    ``village.created`` (another topic), so each source writes only its own columns."""

    __tablename__ = "villages"

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), default="")
    township_code: Mapped[str] = mapped_column(String(32), index=True)
    outstanding: Mapped[Decimal] = mapped_column(Money, default=Decimal("0.00"))
    non_performing: Mapped[Decimal] = mapped_column(Money, default=Decimal("0.00"))
    npl_ratio: Mapped[Decimal] = mapped_column(Ratio, default=Decimal("0.0000"))
    over: Mapped[bool] = mapped_column(Boolean, default=False)  # ratio exceeds the threshold
    over_since: Mapped[date | None] = mapped_column(Date, nullable=True)
    frozen: Mapped[bool] = mapped_column(Boolean, default=False)  # over, or a manual override


class VillageDay(RiskBase):
    """A village's figures at the end of each business date on which they changed: the
    trend chart and the yearly ratio (the last day on or before 31 December)."""

    __tablename__ = "village_days"

    village_code: Mapped[str] = mapped_column(String(32), primary_key=True)
    business_date: Mapped[date] = mapped_column(Date, primary_key=True)
    outstanding: Mapped[Decimal] = mapped_column(Money)
    non_performing: Mapped[Decimal] = mapped_column(Money)


class LoanPosition(RiskBase):
    __tablename__ = "loan_positions"

    loan_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    subject_kind: Mapped[str] = mapped_column(String(16))
    subject_id: Mapped[str] = mapped_column(String(36), index=True)
    village_code: Mapped[str] = mapped_column(String(32), index=True)
    township_code: Mapped[str] = mapped_column(String(32))
    disbursed_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    outstanding: Mapped[Decimal] = mapped_column(Money)
    non_performing: Mapped[bool] = mapped_column(Boolean)
    classification: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))  # active, repaid, written_off


class Loss(RiskBase):
    """A realised loss and who bears it (004 §6(1))."""

    __tablename__ = "losses"

    loan_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    subject_kind: Mapped[str] = mapped_column(String(16))
    subject_id: Mapped[str] = mapped_column(String(36))
    village_code: Mapped[str] = mapped_column(String(32), index=True)
    township_code: Mapped[str] = mapped_column(String(32))
    business_date: Mapped[date] = mapped_column(Date)
    loss: Mapped[Decimal] = mapped_column(Money)
    mutual_guarantee: Mapped[Decimal] = mapped_column(Money)
    government: Mapped[Decimal] = mapped_column(Money)
    bank: Mapped[Decimal] = mapped_column(Money)
    insurer: Mapped[Decimal] = mapped_column(Money)
    # 004 §4(1)6: what recoveries after the write-off returned to each (LossRecovery rows'
    # sums); the loss net of recoveries is loss less the four.
    recovered_mutual_guarantee: Mapped[Decimal] = mapped_column(Money, default=Decimal("0.00"), server_default="0")
    recovered_government: Mapped[Decimal] = mapped_column(Money, default=Decimal("0.00"), server_default="0")
    recovered_bank: Mapped[Decimal] = mapped_column(Money, default=Decimal("0.00"), server_default="0")
    recovered_insurer: Mapped[Decimal] = mapped_column(Money, default=Decimal("0.00"), server_default="0")


class LossRecovery(RiskBase):
    """A recovery on a written-off loan (``loans.loan.recovered``) and whom it went back to
    (004 §4(1)6), in proportion to what each still bore (services/risk/domain/recovery.py)."""

    __tablename__ = "loss_recoveries"

    recovery_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    loan_id: Mapped[str] = mapped_column(String(36), index=True)
    business_date: Mapped[date] = mapped_column(Date)
    amount: Mapped[Decimal] = mapped_column(Money)
    mutual_guarantee: Mapped[Decimal] = mapped_column(Money)
    government: Mapped[Decimal] = mapped_column(Money)
    bank: Mapped[Decimal] = mapped_column(Money)
    insurer: Mapped[Decimal] = mapped_column(Money)


class MutualGuaranteeAccount(RiskBase):
    """A business's 10% contributions (004 §6(2)) and what its own losses drew from them."""

    __tablename__ = "mutual_guarantee_accounts"

    business_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    village_code: Mapped[str] = mapped_column(String(32))
    contributed: Mapped[Decimal] = mapped_column(Money, default=Decimal("0.00"))
    drawn: Mapped[Decimal] = mapped_column(Money, default=Decimal("0.00"))


class MutualGuaranteeMovement(RiskBase):
    """Every movement of a business's mutual guarantee account, for its statement: a
    contribution per loan (+), a draw per loss (-), a recovery's part back (+). Written by the
    handlers that change ``MutualGuaranteeAccount``, from the event alone, so the account's
    ``contributed`` is the sum of its contributions, its ``drawn`` minus the sum of its draws
    and recoveries, and a rebuild writes the same rows."""

    __tablename__ = "mutual_guarantee_movements"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    business_id: Mapped[str] = mapped_column(String(36))
    kind: Mapped[str] = mapped_column(String(16))  # contribution, draw, recovery
    amount: Mapped[Decimal] = mapped_column(Money)  # signed: a draw is negative
    # Null only for the contributions carried forward by migration 0025e (docs/settlement.md).
    loan_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    recovery_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    business_date: Mapped[date] = mapped_column(Date)

    __table_args__ = (Index("ix_mutual_guarantee_movements_business", "business_id", "business_date"),)


class SubjectGrade(RiskBase):
    """The certified grade in force per subject, from scoring (credit households, coverage)."""

    __tablename__ = "subject_grades"

    subject_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    subject_kind: Mapped[str] = mapped_column(String(16))
    village_code: Mapped[str] = mapped_column(String(32), index=True)
    township_code: Mapped[str] = mapped_column(String(32), index=True)
    grade: Mapped[str] = mapped_column(String(8))


class Household(RiskBase):
    """Registered households, the denominator of credit-household coverage (seed 003)."""

    __tablename__ = "households"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    village_code: Mapped[str] = mapped_column(String(32), index=True)
    township_code: Mapped[str] = mapped_column(String(32), index=True)
    # For the public lists (issue 11): the head's name and the ID number as registry masked it.
    head_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    id_number_masked: Mapped[str | None] = mapped_column(String(32), nullable=True)


class Business(RiskBase):
    """Registered businesses, for the public lists (issue 11)."""

    __tablename__ = "businesses"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    village_code: Mapped[str] = mapped_column(String(32), index=True)
    township_code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(200))
    credit_code_masked: Mapped[str] = mapped_column(String(32))


class Community(RiskBase):
    __tablename__ = "communities"

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    township_code: Mapped[str] = mapped_column(String(32))


class OverdueYear(RiskBase):
    """A subject had something past due during ``year`` (not a credit household that year)."""

    __tablename__ = "overdue_years"

    subject_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True)


# The fund's own movements are split: losses are projections, the opening balance and
# top-ups are records (see FundEntry.kind).


# The fund's entries that loans' events decide, projections like the loss rows (a rebuild
# replays them); the opening and top-ups are records of commands, kept.
DERIVED_FUND_ENTRIES = ("loss", "recovery")


class FundEntry(RiskBase):
    """Every movement of the risk compensation fund; the balance is their sum."""

    __tablename__ = "fund_entries"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    # opening, top_up (records) or loss, recovery (projections)
    kind: Mapped[str] = mapped_column(String(16))
    amount: Mapped[Decimal] = mapped_column(Money)  # signed: a loss is negative
    loan_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    reason: Mapped[str] = mapped_column(String(500))
    decided_by: Mapped[str] = mapped_column(String(100))
    business_date: Mapped[date] = mapped_column(Date)
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    # One opening entry, even when two replicas start at once.
    __table_args__ = (
        Index(
            "uq_fund_entries_opening",
            "kind",
            unique=True,
            postgresql_where=text("kind = 'opening'"),
            sqlite_where=text("kind = 'opening'"),
        ),
        # One loss entry per loan; a loan may have several recoveries (004 §4(1)6).
        Index(
            "uq_fund_entries_loss_loan",
            "loan_id",
            unique=True,
            postgresql_where=text("kind = 'loss'"),
            sqlite_where=text("kind = 'loss'"),
        ),
    )


# --- records of commands ------------------------------------------------------------------


class VillageOverride(RiskBase):
    """A manual freeze or lift. It holds until the automatic state changes (product choice),
    and is deleted then, so a rebuild finds only those still in force."""

    __tablename__ = "village_overrides"

    village_code: Mapped[str] = mapped_column(String(32), primary_key=True)
    override: Mapped[str] = mapped_column(String(16))  # frozen or unfrozen
    over_when_set: Mapped[bool] = mapped_column(Boolean)
    since: Mapped[date] = mapped_column(Date)
    reason: Mapped[str] = mapped_column(String(500))
    decided_by: Mapped[str] = mapped_column(String(100))
    decided_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Decision(RiskBase):
    """Every freeze, lift, halt and resumption with the figures that caused it."""

    __tablename__ = "decisions"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32))  # village_frozen, village_unfrozen, township_halted, ...
    code: Mapped[str] = mapped_column(String(32))
    manual: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[str] = mapped_column(String(500))
    decided_by: Mapped[str] = mapped_column(String(100))
    business_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    figures: Mapped[dict[str, Any]] = mapped_column(JSON)
    event_id: Mapped[str] = mapped_column(String(36))
    decided_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_decisions_code", "code", "id"),)


class ClaimSettlement(RiskBase):
    """The bank's or insurer's share of a loss, settled. A claim without a row is open."""

    __tablename__ = "claim_settlements"

    loan_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    party: Mapped[str] = mapped_column(String(16), primary_key=True)
    reference: Mapped[str] = mapped_column(String(200))
    settled_by: Mapped[str] = mapped_column(String(100))
    settled_on: Mapped[date] = mapped_column(Date)
    settled_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # What was settled: the share net of the recoveries before it (004 §4(1)6); recoveries
    # after it are owed back to the party. Null: settled before recoveries were recorded,
    # so the whole share.
    amount: Mapped[Decimal | None] = mapped_column(Money, nullable=True)


class ClaimBatch(RiskBase):
    """A period's batch of claims on a party's shares of losses (DOMAIN §7: the insurer's, by
    month), filed by the bank or the government, decided line by line by the party, then
    settled. A record of commands: a rebuild keeps it, like ``ClaimSettlement``."""

    __tablename__ = "claim_batches"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    party: Mapped[str] = mapped_column(String(16))
    month: Mapped[str] = mapped_column(String(7))  # the period's first month, YYYY-MM
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16), index=True)  # filed, settled
    filed_by: Mapped[str] = mapped_column(String(100))
    filed_on: Mapped[date] = mapped_column(Date)
    filed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    reference: Mapped[str | None] = mapped_column(String(200), nullable=True)
    settled_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    settled_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    settled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    settled_total: Mapped[Decimal | None] = mapped_column(Money, nullable=True)

    # One batch per party and period, even when two requests file it at once.
    __table_args__ = (UniqueConstraint("party", "month", name="uq_claim_batches_party_month"),)


class ClaimBatchLine(RiskBase):
    """A claim in a batch: the loss as it stood when the batch was filed, the party's decision
    and, once settled, what was settled. ``holding`` while its batch is open: the claim is then
    in no other batch and is not settled one by one (409 CLAIM_IN_BATCH)."""

    __tablename__ = "claim_batch_lines"

    batch_id: Mapped[str] = mapped_column(String(36), ForeignKey("claim_batches.id"), primary_key=True)
    loan_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    party: Mapped[str] = mapped_column(String(16))
    village_code: Mapped[str] = mapped_column(String(32))
    village_name: Mapped[str] = mapped_column(String(100))
    township_code: Mapped[str] = mapped_column(String(32))
    township_name: Mapped[str] = mapped_column(String(100))
    written_off_on: Mapped[date] = mapped_column(Date)
    loss: Mapped[Decimal] = mapped_column(Money)
    share: Mapped[Decimal] = mapped_column(Money)  # the party's share of the loss
    recovered: Mapped[Decimal] = mapped_column(Money)  # the party's part of recoveries at filing
    payable: Mapped[Decimal] = mapped_column(Money)  # share less recovered, at filing
    decision: Mapped[str | None] = mapped_column(String(16), nullable=True)  # accept, dispute
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    decided_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # An accepted line's settlement: the share net of recoveries at the settlement (004 §4(1)6).
    settled_amount: Mapped[Decimal | None] = mapped_column(Money, nullable=True)
    holding: Mapped[bool] = mapped_column(Boolean)

    __table_args__ = (
        Index(
            "uq_claim_batch_lines_holding",
            "loan_id",
            "party",
            unique=True,
            postgresql_where=text("holding"),
            sqlite_where=text("holding"),
        ),
    )


class CommunityAssessment(RiskBase):
    """Figures for a credit community (seed 000 §4(6)) that the programme ledger does not hold
    (small guaranteed loans are another product), entered by the government."""

    __tablename__ = "community_assessments"

    community_code: Mapped[str] = mapped_column(String(32), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    loan_recovery: Mapped[Decimal] = mapped_column(Ratio)
    npl_ratio: Mapped[Decimal] = mapped_column(Ratio)
    new_loan_interest_recovery: Mapped[Decimal] = mapped_column(Ratio)
    malicious_evasion: Mapped[bool] = mapped_column(Boolean)
    assessed_by: Mapped[str] = mapped_column(String(100))
    assessed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Title(RiskBase):
    __tablename__ = "titles"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    year: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(32))
    code: Mapped[str] = mapped_column(String(36))
    village_code: Mapped[str | None] = mapped_column(String(32), nullable=True)
    township_code: Mapped[str | None] = mapped_column(String(32), nullable=True)
    figures: Mapped[dict[str, str]] = mapped_column(JSON)
    awarded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (UniqueConstraint("year", "kind", "code"), Index("ix_titles_year_kind", "year", "kind"))


class ListEntry(RiskBase):
    """A red- or black-list entry (issue 11). A record of decisions, not a projection: a
    rebuild keeps it; it is deleted when its retention ends (征信业管理条例 §16)."""

    __tablename__ = "list_entries"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    list: Mapped[str] = mapped_column(String(8))  # red, black
    subject_kind: Mapped[str] = mapped_column(String(16))
    subject_id: Mapped[str] = mapped_column(String(36), index=True)
    village_code: Mapped[str] = mapped_column(String(32), index=True)
    township_code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(200))
    identifier_masked: Mapped[str] = mapped_column(String(32))
    cause: Mapped[str] = mapped_column(String(64))
    tier: Mapped[str | None] = mapped_column(String(16), nullable=True)
    legal_basis: Mapped[str] = mapped_column(Text)
    evidence: Mapped[str | None] = mapped_column(Text, nullable=True)
    proposed_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    status: Mapped[str] = mapped_column(String(16), index=True)  # proposed, active, rejected, ended
    decided_by_role: Mapped[str | None] = mapped_column(String(32), nullable=True)
    # Who decided, by credential name (issue 21): null for the court's feed and for what risk
    # decides by itself (expiry), where no principal decided.
    decided_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    decision_reasons: Mapped[str | None] = mapped_column(Text, nullable=True)
    listed_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    publication_ends_on: Mapped[date | None] = mapped_column(Date, nullable=True, index=True)
    earliest_repair_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    ended_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    end_reason: Mapped[str | None] = mapped_column(String(32), nullable=True)
    act_ended_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    retention_ends_on: Mapped[date | None] = mapped_column(Date, nullable=True, index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Repair(RiskBase):
    """A credit repair (信用修复) application and its decision (issue 11)."""

    __tablename__ = "credit_repairs"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    entry_id: Mapped[str] = mapped_column(String(36), ForeignKey("list_entries.id", ondelete="CASCADE"), index=True)
    statement: Mapped[str] = mapped_column(Text)
    obligations_fulfilled_on: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16))  # applied, under_review, granted, refused
    applied_by: Mapped[str] = mapped_column(String(200))
    applied_on: Mapped[date] = mapped_column(Date)
    reviewed_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    review_note: Mapped[str | None] = mapped_column(Text, nullable=True)
    decided_by_role: Mapped[str | None] = mapped_column(String(32), nullable=True)
    decided_by: Mapped[str | None] = mapped_column(String(200), nullable=True)  # credential name (issue 21)
    reasons: Mapped[str | None] = mapped_column(Text, nullable=True)
    decided_on: Mapped[date | None] = mapped_column(Date, nullable=True)


PROJECTIONS: tuple[type[RiskBase], ...] = (
    Clock,
    Township,
    Village,
    VillageDay,
    LoanPosition,
    Loss,
    LossRecovery,
    MutualGuaranteeAccount,
    MutualGuaranteeMovement,
    SubjectGrade,
    Household,
    Business,
    Community,
    OverdueYear,
)
