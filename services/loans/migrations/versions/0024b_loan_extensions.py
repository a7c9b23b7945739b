"""loans: extension (展期, issue 24): the extensions proposed and decided, and on each loan the
months it was extended by, its classification floor and the day its subsidy ends

Revision ID: 0024b_loan_extensions
Revises: 0007
Create Date: 2027-01-10 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0024b_loan_extensions"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("loans", schema=None) as batch_op:
        batch_op.add_column(sa.Column("extended_months", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(
            sa.Column("classification_floor", sa.String(length=16), server_default="normal", nullable=False)
        )
        batch_op.add_column(sa.Column("subsidy_ends_on", sa.Date(), nullable=True))
    op.create_table(
        "loan_extensions",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("loan_id", sa.String(length=36), nullable=False),
        sa.Column("months", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("proposed_by", sa.String(length=128), nullable=False),
        sa.Column("proposed_on", sa.Date(), nullable=False),
        sa.Column("decided_by", sa.String(length=128), nullable=True),
        sa.Column("decided_on", sa.Date(), nullable=True),
        sa.Column("decision_reasons", sa.String(length=500), nullable=True),
        sa.Column("maturity_before", sa.Date(), nullable=True),
        sa.Column("maturity_after", sa.Date(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["loan_id"], ["loans.id"], name=op.f("fk_loan_extensions_loan_id_loans")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_loan_extensions")),
    )
    with op.batch_alter_table("loan_extensions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_loan_extensions_loan_id"), ["loan_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("loan_extensions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_loan_extensions_loan_id"))
    op.drop_table("loan_extensions")
    with op.batch_alter_table("loans", schema=None) as batch_op:
        batch_op.drop_column("subsidy_ends_on")
        batch_op.drop_column("classification_floor")
        batch_op.drop_column("extended_months")
