"""Registry tables: the district hierarchy, households and businesses, and every fact
about them with its provenance. Facts are never updated in place: a new statement of a
field supersedes the previous one, so the full history stays readable."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, Date, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from shared.audit import include_query_log
from shared.db import Base, BigIntPK, include_shared_tables, new_metadata

metadata = new_metadata()
include_shared_tables(metadata)
include_query_log(metadata)


class RegistryBase(Base):
    __abstract__ = True
    metadata = metadata


class Township(RegistryBase):
    __tablename__ = "townships"

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Village(RegistryBase):
    __tablename__ = "villages"

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    township_code: Mapped[str] = mapped_column(ForeignKey("townships.code"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Community(RegistryBase):
    """Urban community (社区), evaluated as a credit community (seed 000)."""

    __tablename__ = "communities"

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    township_code: Mapped[str] = mapped_column(ForeignKey("townships.code"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class NameChange(RegistryBase):
    """Renames keep history: official documents cite units by the name they had then."""

    __tablename__ = "name_changes"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))  # township | village | community
    code: Mapped[str] = mapped_column(String(32))
    old_name: Mapped[str] = mapped_column(String(100))
    new_name: Mapped[str] = mapped_column(String(100))
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    changed_by: Mapped[str] = mapped_column(String(100))

    __table_args__ = (Index("ix_name_changes_kind_code", "kind", "code"),)


class Household(RegistryBase):
    __tablename__ = "households"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    village_code: Mapped[str] = mapped_column(ForeignKey("villages.code"), index=True)
    township_code: Mapped[str] = mapped_column(String(32), index=True)
    head_name: Mapped[str] = mapped_column(String(100))
    poor_household: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    version: Mapped[int] = mapped_column(Integer)


class Person(RegistryBase):
    """Head or member of a household. The ID number is kept only encrypted; ``id_hash`` (a
    keyed HMAC) finds a person without decrypting, and makes one person one household."""

    __tablename__ = "persons"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    household_id: Mapped[str] = mapped_column(ForeignKey("households.id"), index=True)
    is_head: Mapped[bool] = mapped_column(Boolean)
    name: Mapped[str] = mapped_column(String(100))
    relation: Mapped[str | None] = mapped_column(String(32), nullable=True)
    id_masked: Mapped[str] = mapped_column(String(18))
    id_encrypted: Mapped[str] = mapped_column(Text)


class Business(RegistryBase):
    """Agricultural business that leads poor households (带贫农业经营主体, 004 annex 2 art. 11)."""

    __tablename__ = "businesses"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    credit_code: Mapped[str] = mapped_column(String(18), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32))
    village_code: Mapped[str] = mapped_column(ForeignKey("villages.code"), index=True)
    township_code: Mapped[str] = mapped_column(String(32), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    version: Mapped[int] = mapped_column(Integer)


class Fact(RegistryBase):
    """One statement of one profile field about a household or business, with provenance."""

    __tablename__ = "facts"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    subject_kind: Mapped[str] = mapped_column(String(16))  # household | business
    subject_id: Mapped[str] = mapped_column(String(36))
    field: Mapped[str] = mapped_column(String(64))
    value: Mapped[str] = mapped_column(Text)  # canonical JSON; "null" retracts the fact
    source: Mapped[str] = mapped_column(String(16))  # role: collector, court, police, bank, insurer, government
    supplied_by: Mapped[str] = mapped_column(String(100))
    evidence_ref: Mapped[str | None] = mapped_column(String(200), nullable=True)
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    current: Mapped[bool] = mapped_column(Boolean)
    disputed: Mapped[bool] = mapped_column(Boolean)
    # A negative fact's 不良行为或者事件终止之日: scoring stops counting it 5 years later
    # (征信业管理条例 §16). Stating it is a new statement of the same value.
    ended_on: Mapped[date | None] = mapped_column(Date, nullable=True)

    __table_args__ = (Index("ix_facts_subject", "subject_id", "current"),)


class Objection(RegistryBase):
    """异议: a subject disputes a fact; decided within 20 days (征信业管理条例 §25)."""

    __tablename__ = "objections"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    fact_id: Mapped[int] = mapped_column(ForeignKey("facts.id"), index=True)
    subject_kind: Mapped[str] = mapped_column(String(16))
    subject_id: Mapped[str] = mapped_column(String(36), index=True)
    village_code: Mapped[str] = mapped_column(String(32), index=True)
    field: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    raised_by: Mapped[str] = mapped_column(String(100))
    opened_on: Mapped[date] = mapped_column(Date)
    due_on: Mapped[date] = mapped_column(Date, index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)  # open | corrected | upheld | unresolved
    decision_note: Mapped[str | None] = mapped_column(Text, nullable=True)
    subject_statement: Mapped[str | None] = mapped_column(Text, nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    decided_by: Mapped[str | None] = mapped_column(String(100), nullable=True)


class Import(RegistryBase):
    """A collection sheet imported for a village, with its per-row report."""

    __tablename__ = "imports"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    village_code: Mapped[str] = mapped_column(ForeignKey("villages.code"), index=True)
    file_sha256: Mapped[str] = mapped_column(String(64))
    filename: Mapped[str | None] = mapped_column(String(255), nullable=True)
    rows: Mapped[int] = mapped_column(Integer)
    registered: Mapped[int] = mapped_column(Integer)
    updated: Mapped[int] = mapped_column(Integer)
    unchanged: Mapped[int] = mapped_column(Integer)
    failed: Mapped[int] = mapped_column(Integer)
    # JSON list of the first VCREDIT_REGISTRY_IMPORT_REPORT_MAX_ERRORS errors by row (issue 21:
    # unbounded, 100,000 bad rows stored 17 MB); every error is counted in the two below.
    report: Mapped[str] = mapped_column(Text)
    errors_total: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    errors_by_field: Mapped[str] = mapped_column(Text, default="{}", server_default="{}")  # JSON {field: count}
    imported_by: Mapped[str] = mapped_column(String(100))
    imported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
