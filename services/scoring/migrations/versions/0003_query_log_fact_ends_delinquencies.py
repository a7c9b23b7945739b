"""negative facts' end dates, delinquency spells (the query log is on the platform branch now)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21 10:40:50.281556
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "delinquencies",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("subject_id", sa.String(length=36), nullable=False),
        sa.Column("loan_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("started_on", sa.Date(), nullable=False),
        sa.Column("ended_on", sa.Date(), nullable=True),
        sa.Column("expires_on", sa.Date(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_delinquencies")),
    )
    with op.batch_alter_table("delinquencies", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_delinquencies_expires_on"), ["expires_on"], unique=False)
        batch_op.create_index(batch_op.f("ix_delinquencies_loan_id"), ["loan_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_delinquencies_subject_id"), ["subject_id"], unique=False)

    with op.batch_alter_table("subjects", schema=None) as batch_op:
        batch_op.add_column(sa.Column("fact_ends", sa.Text(), server_default="{}", nullable=False))
        batch_op.add_column(sa.Column("next_expiry", sa.Date(), nullable=True))
        batch_op.create_index(batch_op.f("ix_subjects_next_expiry"), ["next_expiry"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("subjects", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_subjects_next_expiry"))
        batch_op.drop_column("next_expiry")
        batch_op.drop_column("fact_ends")

    with op.batch_alter_table("delinquencies", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_delinquencies_subject_id"))
        batch_op.drop_index(batch_op.f("ix_delinquencies_loan_id"))
        batch_op.drop_index(batch_op.f("ix_delinquencies_expires_on"))

    op.drop_table("delinquencies")
