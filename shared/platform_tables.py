"""The tables every service has (outbox, inbox, idempotency keys), and the SQLAlchemy
basics they are made of (naming convention, 64-bit keys).

A leaf: it imports only SQLAlchemy, so ``shared.db`` can copy the tables into a service's
metadata without importing the modules that use them (``shared.messaging``,
``shared.idempotency``), which themselves import ``shared.db``.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    text,
)

# Names constraints deterministically so Alembic migrations can refer to them.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL wants 64 bits for logs.
BigIntPK = BigInteger().with_variant(Integer(), "sqlite")
# The largest value of a BigIntPK (and of any SQLite integer): a client's id past it is
# refused as invalid input; handed to the driver it would overflow (a 500).
BIGINT_MAX = 2**63 - 1


def new_metadata() -> MetaData:
    return MetaData(naming_convention=NAMING_CONVENTION)


# Tables every service has, defined once here and copied into each service's metadata
# (shared.db.include_shared_tables); migrated once, on the platform branch
# (shared/platform_migrations).
SHARED_TABLES = new_metadata()

# --- messaging: the transactional outbox and the consumers' inbox ----------------------------

outbox = Table(
    "outbox",
    SHARED_TABLES,
    Column("id", BigIntPK, primary_key=True, autoincrement=True),
    Column("event_id", String(36), nullable=False, unique=True),
    Column("topic", String(255), nullable=False),
    Column("key", String(255), nullable=False),
    Column("type", String(255), nullable=False),
    Column("envelope", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("sent_at", DateTime(timezone=True), nullable=True),
    # The W3C context of the emitting span (JSON): the relay publishes later, outside it.
    Column("trace_context", Text, nullable=True),
    Index(
        "ix_outbox_unsent",
        "id",
        postgresql_where=text("sent_at IS NULL"),
        sqlite_where=text("sent_at IS NULL"),
    ),
)

inbox = Table(
    "inbox",
    SHARED_TABLES,
    Column("consumer", String(255), nullable=False),
    Column("event_id", String(36), nullable=False),
    Column("topic", String(255), nullable=False),
    Column("partition", Integer, nullable=False),
    Column("offset", BigIntPK, nullable=False),
    Column("processed_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("consumer", "event_id"),
)

# --- idempotency: Idempotency-Key claims and their stored responses -------------------------

MAX_IDEMPOTENCY_KEY_LENGTH = 255
# The scope (who sent the key, and to which route: shared.idempotency._scope) is part of the
# primary key, so one principal's key never finds another's answer.
IDEMPOTENCY_SCOPE_LENGTH = 255

idempotency_keys = Table(
    "idempotency_keys",
    SHARED_TABLES,
    Column("scope", String(IDEMPOTENCY_SCOPE_LENGTH), nullable=False),
    Column("key", String(MAX_IDEMPOTENCY_KEY_LENGTH), nullable=False),
    Column("request_hash", String(64), nullable=False),
    Column("status_code", Integer, nullable=True),  # null while the first request runs
    Column("response", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("scope", "key"),
)
