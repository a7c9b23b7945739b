"""loans: closed accounting periods (issue 25 item 4): the closing date every posting checks,
each closed month's trial balance as it was closed, and corrections' references on ledger
entries. Existing entries are no corrections (NULL); no month is closed yet.

Revision ID: 0025c_accounting_periods
Revises: 0024a_penalty
Create Date: 2027-02-01 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0025c_accounting_periods"
down_revision: str | None = "0025b_reconciliation"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MONEY = sa.Numeric(precision=16, scale=2)


def upgrade() -> None:
    with op.batch_alter_table("ledger_entries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("corrects_txn_id", sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column("reason", sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column("recorded_by", sa.String(length=128), nullable=True))
        batch_op.create_index("ix_ledger_txn_id", ["txn_id"], unique=False)
    ledger_close = op.create_table(
        "ledger_close",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("closed_through", sa.Date(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_close")),
    )
    # The one row postings lock (services/loans/ledger.py closed_through).
    op.bulk_insert(ledger_close, [{"id": 1, "closed_through": None}])
    op.create_table(
        "accounting_periods",
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("first_day", sa.Date(), nullable=False),
        sa.Column("last_day", sa.Date(), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_by", sa.String(length=128), nullable=False),
        sa.Column("debit", MONEY, nullable=False),
        sa.Column("credit", MONEY, nullable=False),
        sa.Column("opening_debit_normal", MONEY, nullable=False),
        sa.Column("opening_credit_normal", MONEY, nullable=False),
        sa.Column("debit_normal", MONEY, nullable=False),
        sa.Column("credit_normal", MONEY, nullable=False),
        sa.PrimaryKeyConstraint("period", name=op.f("pk_accounting_periods")),
    )
    op.create_table(
        "accounting_period_balances",
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("account", sa.String(length=32), nullable=False),
        sa.Column("account_type", sa.String(length=16), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("opening", MONEY, nullable=False),
        sa.Column("debit", MONEY, nullable=False),
        sa.Column("credit", MONEY, nullable=False),
        sa.Column("closing", MONEY, nullable=False),
        sa.ForeignKeyConstraint(
            ["period"],
            ["accounting_periods.period"],
            name=op.f("fk_accounting_period_balances_period_accounting_periods"),
        ),
        sa.PrimaryKeyConstraint("period", "account", name=op.f("pk_accounting_period_balances")),
    )


def downgrade() -> None:
    op.drop_table("accounting_period_balances")
    op.drop_table("accounting_periods")
    op.drop_table("ledger_close")
    with op.batch_alter_table("ledger_entries", schema=None) as batch_op:
        batch_op.drop_index("ix_ledger_txn_id")
        batch_op.drop_column("recorded_by")
        batch_op.drop_column("reason")
        batch_op.drop_column("corrects_txn_id")
