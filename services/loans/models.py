"""Loans tables: credit lines, loans and their schedules, repayments, the double-entry
ledger, close-of-business runs, and local projections of scoring and risk state (so a
drawdown is decided in one local transaction, never by calling another service)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Boolean, Date, DateTime, ForeignKey, Index, Integer, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column

from shared.audit import include_query_log
from shared.db import Base, BigIntPK, include_shared_tables, new_metadata

metadata = new_metadata()
include_shared_tables(metadata)
include_query_log(metadata)

Money = Numeric(16, 2)
Rate = Numeric(10, 6)


class LoansBase(Base):
    __abstract__ = True
    metadata = metadata


class BusinessDate(LoansBase):
    __tablename__ = "business_date"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    current: Mapped[date] = mapped_column(Date)


class RatingView(LoansBase):
    """Scoring's certified rating per subject, from scoring.events."""

    __tablename__ = "rating_view"

    subject_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    subject_kind: Mapped[str] = mapped_column(String(16))
    village_code: Mapped[str] = mapped_column(String(32), index=True)  # a village's lines open at once
    township_code: Mapped[str] = mapped_column(String(32))
    poor_household: Mapped[bool] = mapped_column(Boolean)
    grade: Mapped[str] = mapped_column(String(8))
    credit_limit: Mapped[Decimal] = mapped_column(Money)  # in force (0 = none)
    certified: Mapped[bool] = mapped_column(Boolean)


class RatingStatusView(LoansBase):
    """Where each subject's latest rating stands in scoring's workflow (DOMAIN.md §3), from
    scoring.events: in notice, certified or rejected, and whether vetoed. Only the reasons a
    line does not open read it (domain/opening.py); the limit in force is ``RatingView``'s."""

    __tablename__ = "rating_status_view"

    subject_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    subject_kind: Mapped[str] = mapped_column(String(16))
    village_code: Mapped[str] = mapped_column(String(32), index=True)
    township_code: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))  # pending_notice objected certified rejected
    vetoed: Mapped[bool] = mapped_column(Boolean)
    notice_ends: Mapped[date | None] = mapped_column(Date, nullable=True)
    reason_code: Mapped[str | None] = mapped_column(String(64), nullable=True)


class VillageView(LoansBase):
    """Risk's circuit-breaker state per village, from risk.events."""

    __tablename__ = "village_view"

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    frozen: Mapped[bool] = mapped_column(Boolean)


class TownshipView(LoansBase):
    __tablename__ = "township_view"

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    halted: Mapped[bool] = mapped_column(Boolean)


class FundView(LoansBase):
    """Risk fund capacity (10x balance), from risk.events; one row, locked by drawdowns."""

    __tablename__ = "fund_view"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    capacity: Mapped[Decimal] = mapped_column(Money)
    # Not less than the programme's outstanding principal as of the last committed drawdown
    # (NULL: not known yet). Only a drawdown raises a line's outstanding, and each raises
    # this by its amount under the row's lock, so a drawdown that keeps it within the
    # capacity needs no sum over every line (credit_lines.within_capacity).
    outstanding_bound: Mapped[Decimal | None] = mapped_column(Money, nullable=True)


class ListEntry(LoansBase):
    """Risk's red and black list entries (seeds 001, 002), from risk.events. A subject is
    blacklisted while any of its black entries is active (the court's and the bank's are
    separate entries), red-listed while its red entry is. A delisted entry stays delisted."""

    __tablename__ = "list_entries"

    entry_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    list: Mapped[str] = mapped_column(String(8))  # red black
    subject_kind: Mapped[str] = mapped_column(String(16))
    subject_id: Mapped[str] = mapped_column(String(36), index=True)
    cause: Mapped[str | None] = mapped_column(String(64), nullable=True)
    active: Mapped[bool] = mapped_column(Boolean)
    listed_on: Mapped[date | None] = mapped_column(Date, nullable=True)  # null if the delisting came first
    delisted_on: Mapped[date | None] = mapped_column(Date, nullable=True)


class CreditLine(LoansBase):
    __tablename__ = "credit_lines"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    subject_id: Mapped[str] = mapped_column(String(36), unique=True)
    subject_kind: Mapped[str] = mapped_column(String(16))
    village_code: Mapped[str] = mapped_column(String(32), index=True)
    township_code: Mapped[str] = mapped_column(String(32))
    limit: Mapped[Decimal] = mapped_column(Money)
    outstanding: Mapped[Decimal] = mapped_column(Money)  # principal outstanding of its loans
    status: Mapped[str] = mapped_column(String(16))
    opened_on: Mapped[date] = mapped_column(Date)
    version: Mapped[int] = mapped_column(Integer)


class Loan(LoansBase):
    __tablename__ = "loans"
    # Close of business rewrites every active loan once a day, each page's rows in one
    # statement: half of each page left free holds their new versions, so the update is HOT
    # (no index entries; yesterday's versions are pruned in place when the page is read).
    # Measured on 3,400 loans after 12 days: 18 ms of server time a day and 667 pages, against
    # 316 ms and 1,435 pages (and growing) full; at 80, a third of the updates were not HOT.
    __table_args__ = {"postgresql_with": {"fillfactor": 50}}  # noqa: RUF012  # as SQLAlchemy declares it

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    credit_line_id: Mapped[str] = mapped_column(ForeignKey("credit_lines.id"), index=True)
    subject_id: Mapped[str] = mapped_column(String(36), index=True)
    subject_kind: Mapped[str] = mapped_column(String(16))
    village_code: Mapped[str] = mapped_column(String(32), index=True)
    township_code: Mapped[str] = mapped_column(String(32))
    principal: Mapped[Decimal] = mapped_column(Money)
    annual_rate: Mapped[Decimal] = mapped_column(Rate)
    subsidy_rate: Mapped[Decimal] = mapped_column(Rate)
    red_list_discount: Mapped[Decimal] = mapped_column(Rate)  # taken off annual_rate at drawdown
    # What priced it at drawdown (issue 24, domain/policies.py): the rule, the benchmark table
    # entry in force and, under lpr_cap, the LPR fixing of the matching tenor. Null
    # benchmark_from: drawn before issue 24 (the undated table).
    pricing_rule: Mapped[str] = mapped_column(String(16), server_default="benchmark")
    benchmark_from: Mapped[date | None] = mapped_column(Date, nullable=True)
    benchmark_rate: Mapped[Decimal | None] = mapped_column(Rate, nullable=True)
    lpr_from: Mapped[date | None] = mapped_column(Date, nullable=True)
    lpr_rate: Mapped[Decimal | None] = mapped_column(Rate, nullable=True)
    day_count: Mapped[str] = mapped_column(String(8))
    method: Mapped[str] = mapped_column(String(20))
    term_months: Mapped[int] = mapped_column(Integer)
    disbursed_on: Mapped[date] = mapped_column(Date)
    maturity_on: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16), index=True)  # active repaid written_off
    # Balances, each mirrored by a ledger account (tested at every business date).
    principal_outstanding: Mapped[Decimal] = mapped_column(Money)
    interest_outstanding: Mapped[Decimal] = mapped_column(Money)  # borrower's accrued, unpaid (net of subsidy)
    subsidy_accrued: Mapped[Decimal] = mapped_column(Money)  # receivable from the district finance
    subsidy_forfeited: Mapped[Decimal] = mapped_column(Money)  # not granted: days on the black list
    # Billing: what fell due so far, and what of it was paid.
    principal_billed: Mapped[Decimal] = mapped_column(Money)
    interest_billed: Mapped[Decimal] = mapped_column(Money)
    principal_paid: Mapped[Decimal] = mapped_column(Money)
    interest_paid: Mapped[Decimal] = mapped_column(Money)
    # Penalty (罚息) and compound (复利) interest, domain/penalty.py: never subsidised, its
    # own receivable (ledger penalty_receivable); accrued = charged so far, each kind apart.
    penalty_outstanding: Mapped[Decimal] = mapped_column(Money, server_default="0.00")
    penalty_accrued: Mapped[Decimal] = mapped_column(Money, server_default="0.00")  # on principal in arrears
    compound_accrued: Mapped[Decimal] = mapped_column(Money, server_default="0.00")  # on interest in arrears
    penalty_paid: Mapped[Decimal] = mapped_column(Money, server_default="0.00")
    # The current period: interest is charged on the principal at its start and accrued
    # day by day, so the due date recognises exactly the period's interest.
    period_number: Mapped[int] = mapped_column(Integer)
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)
    period_interest: Mapped[Decimal] = mapped_column(Money)
    period_subsidy: Mapped[Decimal] = mapped_column(Money)
    period_accrued: Mapped[Decimal] = mapped_column(Money)
    period_subsidy_accrued: Mapped[Decimal] = mapped_column(Money)
    overdue_since: Mapped[date | None] = mapped_column(Date, nullable=True)
    days_past_due: Mapped[int] = mapped_column(Integer)
    ever_overdue: Mapped[bool] = mapped_column(Boolean)
    classification: Mapped[str] = mapped_column(String(16))
    closed_through: Mapped[date] = mapped_column(Date)  # last business day COB processed for it
    version: Mapped[int] = mapped_column(Integer)
    # Extension (展期, issue 24, domain/reschedule.py): months added to the original term (which
    # is term_months - extended_months), the class it may not be better than, and the first day
    # without subsidy when the district does not subsidise the extension (None: to the end).
    extended_months: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    classification_floor: Mapped[str] = mapped_column(String(16), default="normal", server_default="normal")
    subsidy_ends_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    # Subsidy claims (issue 25, domain/subsidy_claims.py): days contract interest accrued and,
    # of those, days on the black list (no subsidy), cumulative like the amounts above, so a
    # claim's line shows its days from two month-end snapshots.
    accrual_days: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    forfeited_days: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class Instalment(LoansBase):
    __tablename__ = "instalments"

    loan_id: Mapped[str] = mapped_column(ForeignKey("loans.id"), primary_key=True)
    number: Mapped[int] = mapped_column(Integer, primary_key=True)
    start: Mapped[date] = mapped_column(Date)
    due_on: Mapped[date] = mapped_column(Date)
    principal: Mapped[Decimal] = mapped_column(Money)
    interest: Mapped[Decimal] = mapped_column(Money)  # as projected at disbursement
    subsidy: Mapped[Decimal] = mapped_column(Money)
    billed: Mapped[Decimal | None] = mapped_column(Money, nullable=True)  # what fell due, once it did
    # The subsidy shares its days earned, recorded when it billed (domain/policies.describe).
    subsidy_policy: Mapped[str | None] = mapped_column(String(400), nullable=True)


class LoanExtension(LoansBase):
    """An extension (展期) of a loan: proposed by the bank, approved or rejected by a second
    principal (four eyes, shared.web.ensure_second_principal)."""

    __tablename__ = "loan_extensions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    loan_id: Mapped[str] = mapped_column(ForeignKey("loans.id"), index=True)
    months: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(16))  # proposed approved rejected
    proposed_by: Mapped[str] = mapped_column(String(128))
    proposed_on: Mapped[date] = mapped_column(Date)  # business date
    decided_by: Mapped[str | None] = mapped_column(String(128), nullable=True)
    decided_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    decision_reasons: Mapped[str | None] = mapped_column(String(500), nullable=True)
    maturity_before: Mapped[date | None] = mapped_column(Date, nullable=True)  # set when approved
    maturity_after: Mapped[date | None] = mapped_column(Date, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Repayment(LoansBase):
    __tablename__ = "repayments"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    loan_id: Mapped[str] = mapped_column(ForeignKey("loans.id"), index=True)
    amount: Mapped[Decimal] = mapped_column(Money)
    interest: Mapped[Decimal] = mapped_column(Money)
    principal: Mapped[Decimal] = mapped_column(Money)
    penalty: Mapped[Decimal] = mapped_column(Money, server_default="0.00")  # penalty and compound interest
    business_date: Mapped[date] = mapped_column(Date)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Recovery(LoansBase):
    """Money collected on a written-off loan (核销后清收, 004 §4(1)6): income of its own in
    the ledger, not a repayment (the written-off principal is not reopened)."""

    __tablename__ = "recoveries"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    loan_id: Mapped[str] = mapped_column(ForeignKey("loans.id"), index=True)
    amount: Mapped[Decimal] = mapped_column(Money)
    business_date: Mapped[date] = mapped_column(Date)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    recorded_by: Mapped[str] = mapped_column(String(100))


class LedgerEntry(LoansBase):
    """One leg of a balanced posting; a transaction's legs share ``txn_id``."""

    __tablename__ = "ledger_entries"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    txn_id: Mapped[str] = mapped_column(String(36))
    account: Mapped[str] = mapped_column(String(32))
    loan_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    debit: Mapped[Decimal] = mapped_column(Money)
    credit: Mapped[Decimal] = mapped_column(Money)
    business_date: Mapped[date] = mapped_column(Date)
    kind: Mapped[str] = mapped_column(String(24))
    # A correction (kind "correction", issue 25): the transaction it corrects, why, and who
    # posted it; None on every other posting.
    corrects_txn_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    reason: Mapped[str | None] = mapped_column(String(500), nullable=True)
    recorded_by: Mapped[str | None] = mapped_column(String(128), nullable=True)

    __table_args__ = (
        Index("ix_ledger_account_date", "account", "business_date"),
        Index("ix_ledger_txn_id", "txn_id"),
    )


class LedgerClose(LoansBase):
    """One row: the last day of the last accounting month closed (None: none is). Postings
    read it under a shared lock, a close under an exclusive one (ledger.closed_through)."""

    __tablename__ = "ledger_close"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    closed_through: Mapped[date | None] = mapped_column(Date, nullable=True)


class AccountingPeriod(LoansBase):
    """A closed month and its trial balance's totals as they were closed; never changed
    afterwards (nothing may be posted into it)."""

    __tablename__ = "accounting_periods"

    period: Mapped[str] = mapped_column(String(7), primary_key=True)  # YYYY-MM
    first_day: Mapped[date] = mapped_column(Date)
    last_day: Mapped[date] = mapped_column(Date)
    business_date: Mapped[date] = mapped_column(Date)  # when it was closed
    closed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    closed_by: Mapped[str] = mapped_column(String(128))
    debit: Mapped[Decimal] = mapped_column(Money)  # the month's debits, all accounts
    credit: Mapped[Decimal] = mapped_column(Money)
    opening_debit_normal: Mapped[Decimal] = mapped_column(Money)
    opening_credit_normal: Mapped[Decimal] = mapped_column(Money)
    debit_normal: Mapped[Decimal] = mapped_column(Money)
    credit_normal: Mapped[Decimal] = mapped_column(Money)


class AccountingPeriodBalance(LoansBase):
    """One account of a closed month's trial balance, with the account's type as it was then."""

    __tablename__ = "accounting_period_balances"

    period: Mapped[str] = mapped_column(ForeignKey("accounting_periods.period"), primary_key=True)
    account: Mapped[str] = mapped_column(String(32), primary_key=True)
    account_type: Mapped[str] = mapped_column(String(16))
    position: Mapped[int] = mapped_column(Integer)  # the chart's order
    opening: Mapped[Decimal] = mapped_column(Money)
    debit: Mapped[Decimal] = mapped_column(Money)
    credit: Mapped[Decimal] = mapped_column(Money)
    closing: Mapped[Decimal] = mapped_column(Money)


class CobRun(LoansBase):
    """Close of one business day; ``last_loan_id`` lets a crashed run resume."""

    __tablename__ = "cob_runs"

    business_date: Mapped[date] = mapped_column(Date, primary_key=True)
    status: Mapped[str] = mapped_column(String(16))  # running done
    last_loan_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    loans_processed: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class CobLease(LoansBase):
    """One row: which close-of-business run may write, until when. Taken with a conditional
    UPDATE (free or expired), renewed in every chunk's own transaction (services/loans/cob.py)."""

    __tablename__ = "cob_lease"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    holder: Mapped[str | None] = mapped_column(String(36), nullable=True)  # cob_jobs.id
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class CobJob(LoansBase):
    """A close of business as an operator asked for it (``POST /v1/cob``): from the business
    date to ``target``, one ``cob_runs`` row per day it closes. ``GET /v1/cob/runs``."""

    __tablename__ = "cob_jobs"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    target: Mapped[date] = mapped_column(Date)
    from_date: Mapped[date] = mapped_column(Date)
    current_day: Mapped[date] = mapped_column(Date)  # the business date it is closing (or reached)
    days_closed: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))  # running done cancelled interrupted failed
    cancel_requested: Mapped[bool] = mapped_column(Boolean)
    requested_by: Mapped[str] = mapped_column(String(128))
    cancelled_by: Mapped[str | None] = mapped_column(String(128), nullable=True)
    detail: Mapped[str | None] = mapped_column(String(500), nullable=True)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class ReconciliationSubmission(LoansBase):
    """A bank's own file for a business date (对账, docs/settlement.md): its totals and how it
    compared. A date's later submission replaces the open differences of an earlier one."""

    __tablename__ = "reconciliation_submissions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    business_date: Mapped[date] = mapped_column(Date, index=True)
    submitted_by: Mapped[str] = mapped_column(String(128))
    submitted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    lines: Mapped[int] = mapped_column(Integer)
    checksum: Mapped[str] = mapped_column(String(64))  # ours, when it was compared
    bank_checksum: Mapped[str | None] = mapped_column(String(64), nullable=True)  # as the bank stated it
    differences: Mapped[int] = mapped_column(Integer)


class ReconciliationDifference(LoansBase):
    """Ours and the bank's count and amount for one (loan, kind) of a business date, or the
    date's subsidy accrued (no loan, no counts); open until someone resolves it with a reason."""

    __tablename__ = "reconciliation_differences"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    business_date: Mapped[date] = mapped_column(Date, index=True)
    submission_id: Mapped[str] = mapped_column(ForeignKey("reconciliation_submissions.id"))
    kind: Mapped[str] = mapped_column(String(24))  # disbursement repayment write_off recovery subsidy_accrued
    loan_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    village_code: Mapped[str | None] = mapped_column(String(32), nullable=True)
    ours_count: Mapped[int | None] = mapped_column(Integer, nullable=True)
    ours_amount: Mapped[Decimal] = mapped_column(Money)
    theirs_count: Mapped[int | None] = mapped_column(Integer, nullable=True)
    theirs_amount: Mapped[Decimal] = mapped_column(Money)
    status: Mapped[str] = mapped_column(String(16), index=True)  # open resolved
    opened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    resolved_by: Mapped[str | None] = mapped_column(String(128), nullable=True)
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    reason: Mapped[str | None] = mapped_column(String(500), nullable=True)


class LoanSubsidySnapshot(LoansBase):
    """A loan's cumulative subsidy figures at a month end, written by the close of that day
    (services/loans/subsidy_claims.snapshot_month): a claim's line is the difference of two.
    Written for the loans active that day and those that closed during the month, so a loan
    without one at a month end has not changed since its last one."""

    __tablename__ = "loan_subsidy_snapshots"

    loan_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    as_of: Mapped[date] = mapped_column(Date, primary_key=True, index=True)
    subsidy_accrued: Mapped[Decimal] = mapped_column(Money)
    subsidy_forfeited: Mapped[Decimal] = mapped_column(Money)
    penalty_accrued: Mapped[Decimal] = mapped_column(Money)  # penalty and compound interest
    accrual_days: Mapped[int] = mapped_column(Integer)
    forfeited_days: Mapped[int] = mapped_column(Integer)


class SubsidySnapshotMonth(LoansBase):
    """A month end whose snapshots were written (months closed before they existed have none:
    no claim can end there)."""

    __tablename__ = "subsidy_snapshot_months"

    as_of: Mapped[date] = mapped_column(Date, primary_key=True)
    loans: Mapped[int] = mapped_column(Integer)


class SubsidyClaim(LoansBase):
    """The bank's claim on the district finance for a period's subsidy (贴息资金拨付, 004
    §4(1)5): filed, then approved, approved in part or returned by a second principal, then
    paid (``paid`` once the approved amount is paid in full)."""

    __tablename__ = "subsidy_claims"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    period_start: Mapped[date] = mapped_column(Date, index=True)
    period_end: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16), index=True)  # filed approved part_approved returned paid
    policy: Mapped[str] = mapped_column(String(400))  # the dated subsidy shares of its days
    loans: Mapped[int] = mapped_column(Integer)  # lines claimed
    claimed: Mapped[Decimal] = mapped_column(Money)
    forfeited: Mapped[Decimal] = mapped_column(Money)  # excluded: black-list days (seed 001)
    penalty: Mapped[Decimal] = mapped_column(Money)  # excluded: penalty and compound interest
    approved: Mapped[Decimal | None] = mapped_column(Money, nullable=True)
    paid: Mapped[Decimal] = mapped_column(Money)
    filed_by: Mapped[str] = mapped_column(String(128))
    filed_on: Mapped[date] = mapped_column(Date)  # business date
    reviewed_by: Mapped[str | None] = mapped_column(String(128), nullable=True)
    reviewed_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    review_reasons: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class SubsidyClaimLine(LoansBase):
    """One loan's part of a claim: what it claims, and what is excluded (forfeited subsidy,
    penalty); the loan's terms as they were when the claim was filed."""

    __tablename__ = "subsidy_claim_lines"

    claim_id: Mapped[str] = mapped_column(ForeignKey("subsidy_claims.id"), primary_key=True)
    loan_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    number: Mapped[int] = mapped_column(Integer)  # 序号, in the claim's order
    subject_kind: Mapped[str] = mapped_column(String(16))
    subject_id: Mapped[str] = mapped_column(String(36))
    village_code: Mapped[str] = mapped_column(String(32))
    principal: Mapped[Decimal] = mapped_column(Money)
    disbursed_on: Mapped[date] = mapped_column(Date)
    maturity_on: Mapped[date] = mapped_column(Date)
    annual_rate: Mapped[Decimal] = mapped_column(Rate)
    subsidy_rate: Mapped[Decimal] = mapped_column(Rate)
    days: Mapped[int] = mapped_column(Integer)
    forfeited_days: Mapped[int] = mapped_column(Integer)
    subsidy: Mapped[Decimal] = mapped_column(Money)  # claimed
    forfeited: Mapped[Decimal] = mapped_column(Money)
    penalty: Mapped[Decimal] = mapped_column(Money)
    approved: Mapped[Decimal | None] = mapped_column(Money, nullable=True)
    reason: Mapped[str | None] = mapped_column(String(500), nullable=True)  # why approved less


class SubsidyPayment(LoansBase):
    """A payment of a claim by the district finance; several may pay one claim."""

    __tablename__ = "subsidy_payments"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    claim_id: Mapped[str] = mapped_column(ForeignKey("subsidy_claims.id"), index=True)
    amount: Mapped[Decimal] = mapped_column(Money)
    reference: Mapped[str] = mapped_column(String(100))
    paid_on: Mapped[date] = mapped_column(Date)
    business_date: Mapped[date] = mapped_column(Date)
    recorded_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
