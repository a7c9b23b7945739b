"""loans: dated rate and subsidy policies (issue 24): what priced each loan at drawdown, and
the subsidy shares each billed instalment's days earned

Revision ID: 0024d_dated_policies
Revises: 0024c_recoveries
Create Date: 2027-01-10 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0024d_dated_policies"
down_revision: str | None = "0024c_recoveries"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("loans") as batch:
        # Loans drawn before: priced by the (undated) benchmark table, the only rule there was.
        batch.add_column(sa.Column("pricing_rule", sa.String(length=16), server_default="benchmark", nullable=False))
        batch.add_column(sa.Column("benchmark_from", sa.Date(), nullable=True))
        batch.add_column(sa.Column("benchmark_rate", sa.Numeric(precision=10, scale=6), nullable=True))
        batch.add_column(sa.Column("lpr_from", sa.Date(), nullable=True))
        batch.add_column(sa.Column("lpr_rate", sa.Numeric(precision=10, scale=6), nullable=True))
    with op.batch_alter_table("instalments") as batch:
        batch.add_column(sa.Column("subsidy_policy", sa.String(length=400), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("instalments") as batch:
        batch.drop_column("subsidy_policy")
    with op.batch_alter_table("loans") as batch:
        for name in ("lpr_rate", "lpr_from", "benchmark_rate", "benchmark_from", "pricing_rule"):
            batch.drop_column(name)
