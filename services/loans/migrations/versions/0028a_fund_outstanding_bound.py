"""loans: an upper bound of the programme's outstanding on the fund row (issue 27), so a
drawdown well within the fund's capacity checks it without summing every credit line

Revision ID: 0028a_fund_outstanding_bound
Revises: 0025a_subsidy_claims
Create Date: 2027-02-01 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0028a_fund_outstanding_bound"
down_revision: str | None = "0025a_subsidy_claims"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MONEY = sa.Numeric(precision=16, scale=2)


# NULL on the existing row: the next drawdown sums the lines once and sets it.
def upgrade() -> None:
    with op.batch_alter_table("fund_view", schema=None) as batch_op:
        batch_op.add_column(sa.Column("outstanding_bound", MONEY, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("fund_view", schema=None) as batch_op:
        batch_op.drop_column("outstanding_bound")
