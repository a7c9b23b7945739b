"""platform tables: outbox, inbox, idempotency keys, query log, adopted where they exist

Revision ID: platform_0001
Revises:
Create Date: 2026-12-08 09:00:00.000000

The first revision of the platform branch (shared/migrations.py). Until it, each service's
chain created and altered these tables itself (0001, the query log in 0003, the outbox's
trace context in a copy per service); those revisions now leave them alone. A database
migrated by the old chains already has them, so this revision adopts what exists and
creates only what is missing, in the shape the old chains ended with: a database at the old
heads is left unchanged, one at an older revision of its chain gets what that revision
lacked (the outbox's trace context, the query log). Offline (SQL script) mode cannot look,
and writes the tables out whole.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op

from shared.migrations import declares

revision: str = "platform_0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = ("platform",)
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _columns() -> dict[str, set[str]]:
    """The tables there are and their columns (none offline)."""
    if context.is_offline_mode():
        return {}
    inspector = sa.inspect(op.get_bind())
    return {t: {c["name"] for c in inspector.get_columns(t)} for t in inspector.get_table_names()}


def upgrade() -> None:
    existing = _columns()
    if declares("outbox"):
        if "outbox" not in existing:
            op.create_table(
                "outbox",
                sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
                sa.Column("event_id", sa.String(36), nullable=False),
                sa.Column("topic", sa.String(255), nullable=False),
                sa.Column("key", sa.String(255), nullable=False),
                sa.Column("type", sa.String(255), nullable=False),
                sa.Column("envelope", sa.Text(), nullable=False),
                sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
                sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
                sa.Column("trace_context", sa.Text(), nullable=True),
                sa.PrimaryKeyConstraint("id", name="pk_outbox"),
                sa.UniqueConstraint("event_id", name="uq_outbox_event_id"),
            )
            op.create_index(
                "ix_outbox_unsent",
                "outbox",
                ["id"],
                postgresql_where=sa.text("sent_at IS NULL"),
                sqlite_where=sa.text("sent_at IS NULL"),
            )
        elif "trace_context" not in existing["outbox"]:
            with op.batch_alter_table("outbox", schema=None) as batch_op:
                batch_op.add_column(sa.Column("trace_context", sa.Text(), nullable=True))
    if declares("inbox") and "inbox" not in existing:
        op.create_table(
            "inbox",
            sa.Column("consumer", sa.String(255), nullable=False),
            sa.Column("event_id", sa.String(36), nullable=False),
            sa.Column("topic", sa.String(255), nullable=False),
            sa.Column("partition", sa.Integer(), nullable=False),
            sa.Column("offset", BIG_ID, nullable=False),
            sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint("consumer", "event_id", name="pk_inbox"),
        )
    if declares("idempotency_keys") and "idempotency_keys" not in existing:
        op.create_table(
            "idempotency_keys",
            sa.Column("scope", sa.String(255), nullable=False),
            sa.Column("key", sa.String(255), nullable=False),
            sa.Column("request_hash", sa.String(64), nullable=False),
            sa.Column("status_code", sa.Integer(), nullable=True),
            sa.Column("response", sa.Text(), nullable=True),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint("scope", "key", name="pk_idempotency_keys"),
        )
    if declares("query_log") and "query_log" not in existing:
        op.create_table(
            "query_log",
            sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
            sa.Column("subject_kind", sa.String(16), nullable=False),
            sa.Column("subject_id", sa.String(36), nullable=False),
            sa.Column("principal", sa.Text(), nullable=False),
            sa.Column("roles", sa.Text(), nullable=False),
            sa.Column("endpoint", sa.String(200), nullable=False),
            sa.Column("resource_id", sa.String(64), nullable=False),
            sa.Column("purpose", sa.String(200), nullable=False),
            sa.Column("queried_at", sa.DateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint("id", name="pk_query_log"),
        )
        op.create_index("ix_query_log_subject", "query_log", ["subject_id", "id"])


def downgrade() -> None:
    for table in ("query_log", "idempotency_keys", "inbox", "outbox"):
        if declares(table):
            op.drop_table(table)
