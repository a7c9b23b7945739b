"""credit lists: list entries, red list discount and forfeited subsidy on loans

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "list_entries",
        sa.Column("entry_id", sa.String(length=64), nullable=False),
        sa.Column("list", sa.String(length=8), nullable=False),
        sa.Column("subject_kind", sa.String(length=16), nullable=False),
        sa.Column("subject_id", sa.String(length=36), nullable=False),
        sa.Column("cause", sa.String(length=64), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("listed_on", sa.Date(), nullable=True),
        sa.Column("delisted_on", sa.Date(), nullable=True),
        sa.PrimaryKeyConstraint("entry_id", name=op.f("pk_list_entries")),
    )
    with op.batch_alter_table("list_entries", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_list_entries_subject_id"), ["subject_id"], unique=False)

    # Loans drawn before the lists had no discount and forfeited nothing.
    with op.batch_alter_table("loans", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("red_list_discount", sa.Numeric(precision=10, scale=6), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("subsidy_forfeited", sa.Numeric(precision=16, scale=2), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("loans", schema=None) as batch_op:
        batch_op.drop_column("subsidy_forfeited")
        batch_op.drop_column("red_list_discount")

    with op.batch_alter_table("list_entries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_list_entries_subject_id"))

    op.drop_table("list_entries")
