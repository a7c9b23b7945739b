"""loans: subsidy claims (issue 25, 004 §4(1)5): month-end subsidy snapshots, day counters on
loans, claims, their lines and payments

Revision ID: 0025a_subsidy_claims
Revises: 0024a_penalty
Create Date: 2027-01-05 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0025a_subsidy_claims"
down_revision: str | None = "0025c_accounting_periods"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MONEY = sa.Numeric(precision=16, scale=2)
RATE = sa.Numeric(precision=10, scale=6)


# Loans drawn before this revision count their days from it (0 now): their first claim's line
# shows the days since, while its amounts count from the drawdown (domain/subsidy_claims.py).
def upgrade() -> None:
    with op.batch_alter_table("loans", schema=None) as batch_op:
        batch_op.add_column(sa.Column("accrual_days", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("forfeited_days", sa.Integer(), nullable=False, server_default="0"))
    op.create_table(
        "loan_subsidy_snapshots",
        sa.Column("loan_id", sa.String(length=36), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("subsidy_accrued", MONEY, nullable=False),
        sa.Column("subsidy_forfeited", MONEY, nullable=False),
        sa.Column("penalty_accrued", MONEY, nullable=False),
        sa.Column("accrual_days", sa.Integer(), nullable=False),
        sa.Column("forfeited_days", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("loan_id", "as_of", name=op.f("pk_loan_subsidy_snapshots")),
    )
    with op.batch_alter_table("loan_subsidy_snapshots", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_loan_subsidy_snapshots_as_of"), ["as_of"], unique=False)
    op.create_table(
        "subsidy_snapshot_months",
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("loans", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("as_of", name=op.f("pk_subsidy_snapshot_months")),
    )
    op.create_table(
        "subsidy_claims",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("policy", sa.String(length=400), nullable=False),
        sa.Column("loans", sa.Integer(), nullable=False),
        sa.Column("claimed", MONEY, nullable=False),
        sa.Column("forfeited", MONEY, nullable=False),
        sa.Column("penalty", MONEY, nullable=False),
        sa.Column("approved", MONEY, nullable=True),
        sa.Column("paid", MONEY, nullable=False),
        sa.Column("filed_by", sa.String(length=128), nullable=False),
        sa.Column("filed_on", sa.Date(), nullable=False),
        sa.Column("reviewed_by", sa.String(length=128), nullable=True),
        sa.Column("reviewed_on", sa.Date(), nullable=True),
        sa.Column("review_reasons", sa.String(length=1000), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subsidy_claims")),
    )
    with op.batch_alter_table("subsidy_claims", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_subsidy_claims_period_start"), ["period_start"], unique=False)
        batch_op.create_index(batch_op.f("ix_subsidy_claims_status"), ["status"], unique=False)
    op.create_table(
        "subsidy_claim_lines",
        sa.Column("claim_id", sa.String(length=36), nullable=False),
        sa.Column("loan_id", sa.String(length=36), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("subject_kind", sa.String(length=16), nullable=False),
        sa.Column("subject_id", sa.String(length=36), nullable=False),
        sa.Column("village_code", sa.String(length=32), nullable=False),
        sa.Column("principal", MONEY, nullable=False),
        sa.Column("disbursed_on", sa.Date(), nullable=False),
        sa.Column("maturity_on", sa.Date(), nullable=False),
        sa.Column("annual_rate", RATE, nullable=False),
        sa.Column("subsidy_rate", RATE, nullable=False),
        sa.Column("days", sa.Integer(), nullable=False),
        sa.Column("forfeited_days", sa.Integer(), nullable=False),
        sa.Column("subsidy", MONEY, nullable=False),
        sa.Column("forfeited", MONEY, nullable=False),
        sa.Column("penalty", MONEY, nullable=False),
        sa.Column("approved", MONEY, nullable=True),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.ForeignKeyConstraint(
            ["claim_id"], ["subsidy_claims.id"], name=op.f("fk_subsidy_claim_lines_claim_id_subsidy_claims")
        ),
        sa.PrimaryKeyConstraint("claim_id", "loan_id", name=op.f("pk_subsidy_claim_lines")),
    )
    op.create_table(
        "subsidy_payments",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("claim_id", sa.String(length=36), nullable=False),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("reference", sa.String(length=100), nullable=False),
        sa.Column("paid_on", sa.Date(), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("recorded_by", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["claim_id"], ["subsidy_claims.id"], name=op.f("fk_subsidy_payments_claim_id_subsidy_claims")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subsidy_payments")),
    )
    with op.batch_alter_table("subsidy_payments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_subsidy_payments_claim_id"), ["claim_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("subsidy_payments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_subsidy_payments_claim_id"))
    op.drop_table("subsidy_payments")
    op.drop_table("subsidy_claim_lines")
    with op.batch_alter_table("subsidy_claims", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_subsidy_claims_status"))
        batch_op.drop_index(batch_op.f("ix_subsidy_claims_period_start"))
    op.drop_table("subsidy_claims")
    op.drop_table("subsidy_snapshot_months")
    with op.batch_alter_table("loan_subsidy_snapshots", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_loan_subsidy_snapshots_as_of"))
    op.drop_table("loan_subsidy_snapshots")
    with op.batch_alter_table("loans", schema=None) as batch_op:
        batch_op.drop_column("forfeited_days")
        batch_op.drop_column("accrual_days")
