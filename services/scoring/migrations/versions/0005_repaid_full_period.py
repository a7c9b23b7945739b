"""subjects.repaid_full_period: loans repaid that ran a full instalment period (issue 19)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07 05:50:00.000000

Rule set hubin-2017-r2 counts a repayment bonus only for a loan that ran at least one full
instalment period (services/scoring/domain/repayment.py). Scoring never kept disbursement
dates, so which of the loans already counted in ``repaid_on_time`` ran a full period cannot be
told from its own tables. The upgrade carries those counts over as earned (product choice: a
rule-set revision judges repayments from now on and does not take back, on the next re-rating,
a point an honest borrower earned under the rules then in force); every repayment after the
upgrade is judged by the new rule. A district that wants the past judged too recomputes the
counts from the loans ledger (disbursed_on, the day repaid in full, ever_overdue) and re-rates.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("subjects", schema=None) as batch_op:
        batch_op.add_column(sa.Column("repaid_full_period", sa.Integer(), server_default="0", nullable=False))
    op.execute("UPDATE subjects SET repaid_full_period = repaid_on_time")


def downgrade() -> None:
    with op.batch_alter_table("subjects", schema=None) as batch_op:
        batch_op.drop_column("repaid_full_period")
