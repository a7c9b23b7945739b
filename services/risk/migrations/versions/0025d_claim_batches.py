"""insurer claims in batches (issue 25 item 2, DOMAIN §7): a period's batch of claims on a
party's shares of losses and its lines, each decided and, once the batch is settled, settled

Revision ID: 0025d_claim_batches
Revises: 0024c_recoveries
Create Date: 2026-12-20 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0025d_claim_batches"
down_revision: str | None = "0024c_recoveries"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_HOLDING = sa.text("holding")
_MONEY = sa.Numeric(precision=16, scale=2)


def upgrade() -> None:
    op.create_table(
        "claim_batches",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("party", sa.String(length=16), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("filed_by", sa.String(length=100), nullable=False),
        sa.Column("filed_on", sa.Date(), nullable=False),
        sa.Column("filed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reference", sa.String(length=200), nullable=True),
        sa.Column("settled_by", sa.String(length=100), nullable=True),
        sa.Column("settled_on", sa.Date(), nullable=True),
        sa.Column("settled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("settled_total", _MONEY, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_claim_batches")),
        sa.UniqueConstraint("party", "month", name=op.f("uq_claim_batches_party_month")),
    )
    with op.batch_alter_table("claim_batches", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_claim_batches_status"), ["status"], unique=False)
    op.create_table(
        "claim_batch_lines",
        sa.Column("batch_id", sa.String(length=36), nullable=False),
        sa.Column("loan_id", sa.String(length=36), nullable=False),
        sa.Column("party", sa.String(length=16), nullable=False),
        sa.Column("village_code", sa.String(length=32), nullable=False),
        sa.Column("village_name", sa.String(length=100), nullable=False),
        sa.Column("township_code", sa.String(length=32), nullable=False),
        sa.Column("township_name", sa.String(length=100), nullable=False),
        sa.Column("written_off_on", sa.Date(), nullable=False),
        sa.Column("loss", _MONEY, nullable=False),
        sa.Column("share", _MONEY, nullable=False),
        sa.Column("recovered", _MONEY, nullable=False),
        sa.Column("payable", _MONEY, nullable=False),
        sa.Column("decision", sa.String(length=16), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("decided_by", sa.String(length=100), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("settled_amount", _MONEY, nullable=True),
        sa.Column("holding", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["batch_id"], ["claim_batches.id"], name=op.f("fk_claim_batch_lines_batch_id_claim_batches")
        ),
        sa.PrimaryKeyConstraint("batch_id", "loan_id", name=op.f("pk_claim_batch_lines")),
    )
    # A claim is in one open batch at most, even when two batches are filed at once.
    op.create_index(
        "uq_claim_batch_lines_holding",
        "claim_batch_lines",
        ["loan_id", "party"],
        unique=True,
        postgresql_where=_HOLDING,
        sqlite_where=_HOLDING,
    )


def downgrade() -> None:
    op.drop_index(
        "uq_claim_batch_lines_holding",
        table_name="claim_batch_lines",
        postgresql_where=_HOLDING,
        sqlite_where=_HOLDING,
    )
    op.drop_table("claim_batch_lines")
    with op.batch_alter_table("claim_batches", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_claim_batches_status"))
    op.drop_table("claim_batches")
