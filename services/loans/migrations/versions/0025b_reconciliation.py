"""loans: the bank's daily reconciliation (对账): its submitted files and the differences kept until resolved (issue 25)

Revision ID: 0025b_reconciliation
Revises: 0024a_penalty
Create Date: 2027-01-10 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0025b_reconciliation"
down_revision: str | None = "0024a_penalty"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "reconciliation_submissions",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("submitted_by", sa.String(length=128), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lines", sa.Integer(), nullable=False),
        sa.Column("checksum", sa.String(length=64), nullable=False),
        sa.Column("bank_checksum", sa.String(length=64), nullable=True),
        sa.Column("differences", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reconciliation_submissions")),
    )
    with op.batch_alter_table("reconciliation_submissions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_reconciliation_submissions_business_date"), ["business_date"], unique=False
        )
    op.create_table(
        "reconciliation_differences",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("submission_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("loan_id", sa.String(length=36), nullable=True),
        sa.Column("village_code", sa.String(length=32), nullable=True),
        sa.Column("ours_count", sa.Integer(), nullable=True),
        sa.Column("ours_amount", sa.Numeric(precision=16, scale=2), nullable=False),
        sa.Column("theirs_count", sa.Integer(), nullable=True),
        sa.Column("theirs_amount", sa.Numeric(precision=16, scale=2), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_by", sa.String(length=128), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.ForeignKeyConstraint(
            ["submission_id"],
            ["reconciliation_submissions.id"],
            name=op.f("fk_reconciliation_differences_submission_id_reconciliation_submissions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reconciliation_differences")),
    )
    with op.batch_alter_table("reconciliation_differences", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_reconciliation_differences_business_date"), ["business_date"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_reconciliation_differences_loan_id"), ["loan_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_reconciliation_differences_status"), ["status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("reconciliation_differences", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reconciliation_differences_status"))
        batch_op.drop_index(batch_op.f("ix_reconciliation_differences_loan_id"))
        batch_op.drop_index(batch_op.f("ix_reconciliation_differences_business_date"))
    op.drop_table("reconciliation_differences")
    with op.batch_alter_table("reconciliation_submissions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reconciliation_submissions_business_date"))
    op.drop_table("reconciliation_submissions")
