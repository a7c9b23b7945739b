"""Scoring tables: the inputs (projected from registry and loans events), every rating ever
computed, the workflow state per subject (notice, objections, certificate)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Boolean, Date, DateTime, ForeignKey, Index, Integer, Numeric, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from shared.audit import include_query_log
from shared.db import Base, BigIntPK, include_shared_tables, new_metadata

metadata = new_metadata()
include_shared_tables(metadata)
include_query_log(metadata)

Money = Numeric(14, 2)


class ScoringBase(Base):
    __abstract__ = True
    metadata = metadata


class Subject(ScoringBase):
    """A household or business as scoring knows it: the registry's profile plus loan history."""

    __tablename__ = "subjects"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    village_code: Mapped[str] = mapped_column(String(32), index=True)
    township_code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(200))
    poor_household: Mapped[bool] = mapped_column(Boolean)
    profile: Mapped[str] = mapped_column(Text)  # JSON, as in the registry's events
    overdue_occurrences: Mapped[int] = mapped_column(Integer)
    npl_occurrences: Mapped[int] = mapped_column(Integer)
    repaid_on_time: Mapped[int] = mapped_column(Integer)
    # Of those, the loans that ran at least one full instalment period (domain/repayment.py):
    # what the repayment bonus counts from rule set hubin-2017-r2 on.
    repaid_full_period: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # End dates of negative facts, JSON {field: "YYYY-MM-DD"} from the registry's events, and
    # the first business date on which one of them stops counting (征信业管理条例 §16), so
    # close of business finds the subjects to re-rate through an index.
    fact_ends: Mapped[str] = mapped_column(Text, default="{}", server_default="{}")
    next_expiry: Mapped[date | None] = mapped_column(Date, nullable=True, index=True)


class LoanState(ScoringBase):
    """Per loan: is it overdue / non-performing now (V3, and occurrences for D3/D3b)."""

    __tablename__ = "loan_states"

    loan_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    subject_id: Mapped[str] = mapped_column(String(36), index=True)
    overdue: Mapped[bool] = mapped_column(Boolean)
    non_performing: Mapped[bool] = mapped_column(Boolean)
    ever_non_performing: Mapped[bool] = mapped_column(Boolean)


class Delinquency(ScoringBase):
    """One overdue or non-performing spell of a loan (D3, D3b), dated from the loan events so
    it stops counting 5 years after it ended (征信业管理条例 §16)."""

    __tablename__ = "delinquencies"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    subject_id: Mapped[str] = mapped_column(String(36), index=True)
    loan_id: Mapped[str] = mapped_column(String(36), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # overdue | non_performing
    started_on: Mapped[date] = mapped_column(Date)
    ended_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    # The first business date it no longer counts: close of business finds it by index.
    expires_on: Mapped[date | None] = mapped_column(Date, nullable=True, index=True)


class Rating(ScoringBase):
    """One computed rating with everything needed to explain it later."""

    __tablename__ = "ratings"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    subject_id: Mapped[str] = mapped_column(String(36))
    score: Mapped[int] = mapped_column(Integer)
    grade: Mapped[str] = mapped_column(String(8))
    credit_limit: Mapped[Decimal] = mapped_column(Money)
    vetoed: Mapped[bool] = mapped_column(Boolean)
    rule_set: Mapped[str] = mapped_column(String(64))
    reasons: Mapped[str] = mapped_column(Text)  # JSON list
    inputs: Mapped[str] = mapped_column(Text)  # JSON: profile + loan history + poor flag
    computed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    business_date: Mapped[date] = mapped_column(Date)

    __table_args__ = (Index("ix_ratings_subject", "subject_id", "id"),)


class RatingState(ScoringBase):
    """Where a subject stands in the workflow (DOMAIN.md §3)."""

    __tablename__ = "rating_states"

    subject_id: Mapped[str] = mapped_column(ForeignKey("subjects.id"), primary_key=True)
    current_rating_id: Mapped[int] = mapped_column(ForeignKey("ratings.id"))
    # The rating in force for lending; None until one is certified.
    effective_rating_id: Mapped[int | None] = mapped_column(ForeignKey("ratings.id"), nullable=True)
    status: Mapped[str] = mapped_column(String(16), index=True)  # pending_notice objected certified rejected
    notice_starts: Mapped[date | None] = mapped_column(Date, nullable=True)
    notice_ends: Mapped[date | None] = mapped_column(Date, nullable=True, index=True)
    certificate_no: Mapped[str | None] = mapped_column(String(40), nullable=True)
    reason_code: Mapped[str | None] = mapped_column(String(40), nullable=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Who rejected the rating, by credential name and role (issue 21): the bank's principal,
    # or whoever sustained an objection; null for a rejection scoring decided (no grade).
    decided_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    decided_by_role: Mapped[str | None] = mapped_column(String(32), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class NoticeObjection(ScoringBase):
    """An objection raised during the public notice (004 annex 2 step 4)."""

    __tablename__ = "notice_objections"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    subject_id: Mapped[str] = mapped_column(ForeignKey("subjects.id"), index=True)
    rating_id: Mapped[int] = mapped_column(ForeignKey("ratings.id"))
    reason: Mapped[str] = mapped_column(Text)
    raised_by: Mapped[str] = mapped_column(String(100))
    raised_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(16))  # open sustained dismissed
    resolution_note: Mapped[str | None] = mapped_column(Text, nullable=True)
    resolved_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    resolved_by_role: Mapped[str | None] = mapped_column(String(32), nullable=True)  # issue 21
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class CertificateCounter(ScoringBase):
    __tablename__ = "certificate_counters"

    village_code: Mapped[str] = mapped_column(String(32), primary_key=True)
    last_number: Mapped[int] = mapped_column(Integer)


class BusinessDate(ScoringBase):
    """The business date as last announced by the loans service's close of business."""

    __tablename__ = "business_date"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    current: Mapped[date] = mapped_column(Date)


class RerateJob(ScoringBase):
    """Re-rating every subject after a rule-set change; resumable from ``last_subject_id``."""

    __tablename__ = "rerate_jobs"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    rule_set: Mapped[str] = mapped_column(String(64))
    total: Mapped[int] = mapped_column(Integer)
    done: Mapped[int] = mapped_column(Integer)
    last_subject_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
