"""recoveries after write-off (issue 24, 004 §4(1)6): each loss's recovered parts, the
recoveries themselves, a settled claim's amount, and several fund entries per loan (one loss,
any number of recoveries)

Revision ID: 0024c_recoveries
Revises: 0005
Create Date: 2026-12-08 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0024c_recoveries"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OPENING = sa.text("kind = 'opening'")
_LOSS = sa.text("kind = 'loss'")
_RECOVERED = ("recovered_mutual_guarantee", "recovered_government", "recovered_bank", "recovered_insurer")


def upgrade() -> None:
    op.create_table(
        "loss_recoveries",
        sa.Column("recovery_id", sa.String(length=36), nullable=False),
        sa.Column("loan_id", sa.String(length=36), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("amount", sa.Numeric(precision=16, scale=2), nullable=False),
        sa.Column("mutual_guarantee", sa.Numeric(precision=16, scale=2), nullable=False),
        sa.Column("government", sa.Numeric(precision=16, scale=2), nullable=False),
        sa.Column("bank", sa.Numeric(precision=16, scale=2), nullable=False),
        sa.Column("insurer", sa.Numeric(precision=16, scale=2), nullable=False),
        sa.PrimaryKeyConstraint("recovery_id", name=op.f("pk_loss_recoveries")),
    )
    with op.batch_alter_table("loss_recoveries", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_loss_recoveries_loan_id"), ["loan_id"], unique=False)
    # Losses written off before this revision had no recoveries: 0 is their truth.
    with op.batch_alter_table("losses", schema=None) as batch_op:
        for column in _RECOVERED:
            batch_op.add_column(
                sa.Column(column, sa.Numeric(precision=16, scale=2), server_default="0", nullable=False)
            )
    # Nullable: a claim settled before this revision settled the whole share.
    with op.batch_alter_table("claim_settlements", schema=None) as batch_op:
        batch_op.add_column(sa.Column("amount", sa.Numeric(precision=16, scale=2), nullable=True))
    # The partial index is dropped around the batch (SQLite copies the table) and made again.
    op.drop_index(
        "uq_fund_entries_opening", table_name="fund_entries", postgresql_where=_OPENING, sqlite_where=_OPENING
    )
    with op.batch_alter_table("fund_entries", schema=None) as batch_op:
        batch_op.drop_constraint("uq_fund_entries_loan_id", type_="unique")
    op.create_index(
        "uq_fund_entries_opening",
        "fund_entries",
        ["kind"],
        unique=True,
        postgresql_where=_OPENING,
        sqlite_where=_OPENING,
    )
    op.create_index(
        "uq_fund_entries_loss_loan",
        "fund_entries",
        ["loan_id"],
        unique=True,
        postgresql_where=_LOSS,
        sqlite_where=_LOSS,
    )


def downgrade() -> None:
    op.drop_index("uq_fund_entries_loss_loan", table_name="fund_entries", postgresql_where=_LOSS, sqlite_where=_LOSS)
    op.drop_index(
        "uq_fund_entries_opening", table_name="fund_entries", postgresql_where=_OPENING, sqlite_where=_OPENING
    )
    op.execute("DELETE FROM fund_entries WHERE kind = 'recovery'")
    with op.batch_alter_table("fund_entries", schema=None) as batch_op:
        batch_op.create_unique_constraint("uq_fund_entries_loan_id", ["loan_id"])
    op.create_index(
        "uq_fund_entries_opening",
        "fund_entries",
        ["kind"],
        unique=True,
        postgresql_where=_OPENING,
        sqlite_where=_OPENING,
    )
    with op.batch_alter_table("claim_settlements", schema=None) as batch_op:
        batch_op.drop_column("amount")
    with op.batch_alter_table("losses", schema=None) as batch_op:
        for column in reversed(_RECOVERED):
            batch_op.drop_column(column)
    with op.batch_alter_table("loss_recoveries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_loss_recoveries_loan_id"))
    op.drop_table("loss_recoveries")
