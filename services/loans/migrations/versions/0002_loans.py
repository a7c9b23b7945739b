"""credit lines, loans, ledger, cob, projections

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21 06:50:32.359642
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "business_date",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("current", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_business_date")),
    )
    op.create_table(
        "cob_runs",
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("last_loan_id", sa.String(length=36), nullable=True),
        sa.Column("loans_processed", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("business_date", name=op.f("pk_cob_runs")),
    )
    op.create_table(
        "credit_lines",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("subject_id", sa.String(length=36), nullable=False),
        sa.Column("subject_kind", sa.String(length=16), nullable=False),
        sa.Column("village_code", sa.String(length=32), nullable=False),
        sa.Column("township_code", sa.String(length=32), nullable=False),
        sa.Column("limit", sa.Numeric(precision=16, scale=2), nullable=False),
        sa.Column("outstanding", sa.Numeric(precision=16, scale=2), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("opened_on", sa.Date(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credit_lines")),
        sa.UniqueConstraint("subject_id", name=op.f("uq_credit_lines_subject_id")),
    )
    with op.batch_alter_table("credit_lines", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_credit_lines_village_code"), ["village_code"], unique=False)

    op.create_table(
        "fund_view",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("capacity", sa.Numeric(precision=16, scale=2), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fund_view")),
    )
    op.create_table(
        "ledger_entries",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("txn_id", sa.String(length=36), nullable=False),
        sa.Column("account", sa.String(length=32), nullable=False),
        sa.Column("loan_id", sa.String(length=36), nullable=True),
        sa.Column("debit", sa.Numeric(precision=16, scale=2), nullable=False),
        sa.Column("credit", sa.Numeric(precision=16, scale=2), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_entries")),
    )
    with op.batch_alter_table("ledger_entries", schema=None) as batch_op:
        batch_op.create_index("ix_ledger_account_date", ["account", "business_date"], unique=False)

    op.create_table(
        "rating_view",
        sa.Column("subject_id", sa.String(length=36), nullable=False),
        sa.Column("subject_kind", sa.String(length=16), nullable=False),
        sa.Column("village_code", sa.String(length=32), nullable=False),
        sa.Column("township_code", sa.String(length=32), nullable=False),
        sa.Column("poor_household", sa.Boolean(), nullable=False),
        sa.Column("grade", sa.String(length=8), nullable=False),
        sa.Column("credit_limit", sa.Numeric(precision=16, scale=2), nullable=False),
        sa.Column("certified", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("subject_id", name=op.f("pk_rating_view")),
    )
    op.create_table(
        "township_view",
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("halted", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_township_view")),
    )
    op.create_table(
        "village_view",
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("frozen", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_village_view")),
    )
    op.create_table(
        "loans",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("credit_line_id", sa.String(length=36), nullable=False),
        sa.Column("subject_id", sa.String(length=36), nullable=False),
        sa.Column("subject_kind", sa.String(length=16), nullable=False),
        sa.Column("village_code", sa.String(length=32), nullable=False),
        sa.Column("township_code", sa.String(length=32), nullable=False),
        sa.Column("principal", sa.Numeric(precision=16, scale=2), nullable=False),
        sa.Column("annual_rate", sa.Numeric(precision=10, scale=6), nullable=False),
        sa.Column("subsidy_rate", sa.Numeric(precision=10, scale=6), nullable=False),
        sa.Column("day_count", sa.String(length=8), nullable=False),
        sa.Column("method", sa.String(length=20), nullable=False),
        sa.Column("term_months", sa.Integer(), nullable=False),
        sa.Column("disbursed_on", sa.Date(), nullable=False),
        sa.Column("maturity_on", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("principal_outstanding", sa.Numeric(precision=16, scale=2), nullable=False),
        sa.Column("interest_outstanding", sa.Numeric(precision=16, scale=2), nullable=False),
        sa.Column("subsidy_accrued", sa.Numeric(precision=16, scale=2), nullable=False),
        sa.Column("principal_billed", sa.Numeric(precision=16, scale=2), nullable=False),
        sa.Column("interest_billed", sa.Numeric(precision=16, scale=2), nullable=False),
        sa.Column("principal_paid", sa.Numeric(precision=16, scale=2), nullable=False),
        sa.Column("interest_paid", sa.Numeric(precision=16, scale=2), nullable=False),
        sa.Column("period_number", sa.Integer(), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("period_interest", sa.Numeric(precision=16, scale=2), nullable=False),
        sa.Column("period_subsidy", sa.Numeric(precision=16, scale=2), nullable=False),
        sa.Column("period_accrued", sa.Numeric(precision=16, scale=2), nullable=False),
        sa.Column("period_subsidy_accrued", sa.Numeric(precision=16, scale=2), nullable=False),
        sa.Column("overdue_since", sa.Date(), nullable=True),
        sa.Column("days_past_due", sa.Integer(), nullable=False),
        sa.Column("ever_overdue", sa.Boolean(), nullable=False),
        sa.Column("classification", sa.String(length=16), nullable=False),
        sa.Column("closed_through", sa.Date(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["credit_line_id"], ["credit_lines.id"], name=op.f("fk_loans_credit_line_id_credit_lines")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_loans")),
    )
    with op.batch_alter_table("loans", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_loans_credit_line_id"), ["credit_line_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_loans_status"), ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_loans_subject_id"), ["subject_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_loans_village_code"), ["village_code"], unique=False)

    op.create_table(
        "instalments",
        sa.Column("loan_id", sa.String(length=36), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("start", sa.Date(), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("principal", sa.Numeric(precision=16, scale=2), nullable=False),
        sa.Column("interest", sa.Numeric(precision=16, scale=2), nullable=False),
        sa.Column("subsidy", sa.Numeric(precision=16, scale=2), nullable=False),
        sa.Column("billed", sa.Numeric(precision=16, scale=2), nullable=True),
        sa.ForeignKeyConstraint(["loan_id"], ["loans.id"], name=op.f("fk_instalments_loan_id_loans")),
        sa.PrimaryKeyConstraint("loan_id", "number", name=op.f("pk_instalments")),
    )
    op.create_table(
        "repayments",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("loan_id", sa.String(length=36), nullable=False),
        sa.Column("amount", sa.Numeric(precision=16, scale=2), nullable=False),
        sa.Column("interest", sa.Numeric(precision=16, scale=2), nullable=False),
        sa.Column("principal", sa.Numeric(precision=16, scale=2), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["loan_id"], ["loans.id"], name=op.f("fk_repayments_loan_id_loans")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_repayments")),
    )
    with op.batch_alter_table("repayments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_repayments_loan_id"), ["loan_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("repayments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_repayments_loan_id"))

    op.drop_table("repayments")
    op.drop_table("instalments")
    with op.batch_alter_table("loans", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_loans_village_code"))
        batch_op.drop_index(batch_op.f("ix_loans_subject_id"))
        batch_op.drop_index(batch_op.f("ix_loans_status"))
        batch_op.drop_index(batch_op.f("ix_loans_credit_line_id"))

    op.drop_table("loans")
    op.drop_table("village_view")
    op.drop_table("township_view")
    op.drop_table("rating_view")
    with op.batch_alter_table("ledger_entries", schema=None) as batch_op:
        batch_op.drop_index("ix_ledger_account_date")

    op.drop_table("ledger_entries")
    op.drop_table("fund_view")
    with op.batch_alter_table("credit_lines", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_credit_lines_village_code"))

    op.drop_table("credit_lines")
    op.drop_table("cob_runs")
    op.drop_table("business_date")
