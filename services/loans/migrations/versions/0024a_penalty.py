"""loans: penalty and compound interest (罚息, 复利; 银发〔2003〕251号 art. 3, issue 24): each loan's
penalty outstanding, accrued (on principal / compound on interest) and paid, and each
repayment's penalty part. Existing rows start at 0.00: no penalty was ever charged before.

Revision ID: 0024a_penalty
Revises: 0024d_dated_policies
Create Date: 2027-01-10 06:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0024a_penalty"
down_revision: str | None = "0024d_dated_policies"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LOAN_COLUMNS = ("penalty_outstanding", "penalty_accrued", "compound_accrued", "penalty_paid")


def upgrade() -> None:
    with op.batch_alter_table("loans") as batch:
        for name in LOAN_COLUMNS:
            batch.add_column(sa.Column(name, sa.Numeric(16, 2), nullable=False, server_default="0.00"))
    with op.batch_alter_table("repayments") as batch:
        batch.add_column(sa.Column("penalty", sa.Numeric(16, 2), nullable=False, server_default="0.00"))


def downgrade() -> None:
    with op.batch_alter_table("repayments") as batch:
        batch.drop_column("penalty")
    with op.batch_alter_table("loans") as batch:
        for name in LOAN_COLUMNS:
            batch.drop_column(name)
