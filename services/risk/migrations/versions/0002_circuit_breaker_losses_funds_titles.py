"""circuit breaker, losses, funds, titles

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21 07:15:51.021689
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
        "claim_settlements",
        sa.Column("loan_id", sa.String(length=36), nullable=False),
        sa.Column("party", sa.String(length=16), nullable=False),
        sa.Column("reference", sa.String(length=200), nullable=False),
        sa.Column("settled_by", sa.String(length=100), nullable=False),
        sa.Column("settled_on", sa.Date(), nullable=False),
        sa.Column("settled_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("loan_id", "party", name=op.f("pk_claim_settlements")),
    )
    op.create_table(
        "clock",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_clock")),
    )
    op.create_table(
        "communities",
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("township_code", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_communities")),
    )
    op.create_table(
        "community_assessments",
        sa.Column("community_code", sa.String(length=32), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("loan_recovery", sa.Numeric(precision=8, scale=4), nullable=False),
        sa.Column("npl_ratio", sa.Numeric(precision=8, scale=4), nullable=False),
        sa.Column("new_loan_interest_recovery", sa.Numeric(precision=8, scale=4), nullable=False),
        sa.Column("malicious_evasion", sa.Boolean(), nullable=False),
        sa.Column("assessed_by", sa.String(length=100), nullable=False),
        sa.Column("assessed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("community_code", "year", name=op.f("pk_community_assessments")),
    )
    op.create_table(
        "decisions",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("manual", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("decided_by", sa.String(length=100), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=True),
        sa.Column("figures", sa.JSON(), nullable=False),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_decisions")),
    )
    with op.batch_alter_table("decisions", schema=None) as batch_op:
        batch_op.create_index("ix_decisions_code", ["code", "id"], unique=False)

    op.create_table(
        "fund_entries",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("amount", sa.Numeric(precision=16, scale=2), nullable=False),
        sa.Column("loan_id", sa.String(length=36), nullable=True),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("decided_by", sa.String(length=100), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fund_entries")),
        sa.UniqueConstraint("loan_id", name=op.f("uq_fund_entries_loan_id")),
    )
    with op.batch_alter_table("fund_entries", schema=None) as batch_op:
        batch_op.create_index(
            "uq_fund_entries_opening",
            ["kind"],
            unique=True,
            postgresql_where=sa.text("kind = 'opening'"),
            sqlite_where=sa.text("kind = 'opening'"),
        )

    op.create_table(
        "households",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("village_code", sa.String(length=32), nullable=False),
        sa.Column("township_code", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_households")),
    )
    with op.batch_alter_table("households", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_households_township_code"), ["township_code"], unique=False)
        batch_op.create_index(batch_op.f("ix_households_village_code"), ["village_code"], unique=False)

    op.create_table(
        "loan_positions",
        sa.Column("loan_id", sa.String(length=36), nullable=False),
        sa.Column("subject_kind", sa.String(length=16), nullable=False),
        sa.Column("subject_id", sa.String(length=36), nullable=False),
        sa.Column("village_code", sa.String(length=32), nullable=False),
        sa.Column("township_code", sa.String(length=32), nullable=False),
        sa.Column("disbursed_on", sa.Date(), nullable=True),
        sa.Column("outstanding", sa.Numeric(precision=16, scale=2), nullable=False),
        sa.Column("non_performing", sa.Boolean(), nullable=False),
        sa.Column("classification", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("loan_id", name=op.f("pk_loan_positions")),
    )
    with op.batch_alter_table("loan_positions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_loan_positions_subject_id"), ["subject_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_loan_positions_village_code"), ["village_code"], unique=False)

    op.create_table(
        "losses",
        sa.Column("loan_id", sa.String(length=36), nullable=False),
        sa.Column("subject_kind", sa.String(length=16), nullable=False),
        sa.Column("subject_id", sa.String(length=36), nullable=False),
        sa.Column("village_code", sa.String(length=32), nullable=False),
        sa.Column("township_code", sa.String(length=32), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("loss", sa.Numeric(precision=16, scale=2), nullable=False),
        sa.Column("mutual_guarantee", sa.Numeric(precision=16, scale=2), nullable=False),
        sa.Column("government", sa.Numeric(precision=16, scale=2), nullable=False),
        sa.Column("bank", sa.Numeric(precision=16, scale=2), nullable=False),
        sa.Column("insurer", sa.Numeric(precision=16, scale=2), nullable=False),
        sa.PrimaryKeyConstraint("loan_id", name=op.f("pk_losses")),
    )
    with op.batch_alter_table("losses", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_losses_village_code"), ["village_code"], unique=False)

    op.create_table(
        "mutual_guarantee_accounts",
        sa.Column("business_id", sa.String(length=36), nullable=False),
        sa.Column("village_code", sa.String(length=32), nullable=False),
        sa.Column("contributed", sa.Numeric(precision=16, scale=2), nullable=False),
        sa.Column("drawn", sa.Numeric(precision=16, scale=2), nullable=False),
        sa.PrimaryKeyConstraint("business_id", name=op.f("pk_mutual_guarantee_accounts")),
    )
    op.create_table(
        "overdue_years",
        sa.Column("subject_id", sa.String(length=36), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("subject_id", "year", name=op.f("pk_overdue_years")),
    )
    op.create_table(
        "subject_grades",
        sa.Column("subject_id", sa.String(length=36), nullable=False),
        sa.Column("subject_kind", sa.String(length=16), nullable=False),
        sa.Column("village_code", sa.String(length=32), nullable=False),
        sa.Column("township_code", sa.String(length=32), nullable=False),
        sa.Column("grade", sa.String(length=8), nullable=False),
        sa.PrimaryKeyConstraint("subject_id", name=op.f("pk_subject_grades")),
    )
    with op.batch_alter_table("subject_grades", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_subject_grades_township_code"), ["township_code"], unique=False)
        batch_op.create_index(batch_op.f("ix_subject_grades_village_code"), ["village_code"], unique=False)

    op.create_table(
        "titles",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("code", sa.String(length=36), nullable=False),
        sa.Column("village_code", sa.String(length=32), nullable=True),
        sa.Column("township_code", sa.String(length=32), nullable=True),
        sa.Column("figures", sa.JSON(), nullable=False),
        sa.Column("awarded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_titles")),
        sa.UniqueConstraint("year", "kind", "code", name=op.f("uq_titles_year")),
    )
    with op.batch_alter_table("titles", schema=None) as batch_op:
        batch_op.create_index("ix_titles_year_kind", ["year", "kind"], unique=False)

    op.create_table(
        "village_days",
        sa.Column("village_code", sa.String(length=32), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("outstanding", sa.Numeric(precision=16, scale=2), nullable=False),
        sa.Column("non_performing", sa.Numeric(precision=16, scale=2), nullable=False),
        sa.PrimaryKeyConstraint("village_code", "business_date", name=op.f("pk_village_days")),
    )
    op.create_table(
        "village_overrides",
        sa.Column("village_code", sa.String(length=32), nullable=False),
        sa.Column("override", sa.String(length=16), nullable=False),
        sa.Column("over_when_set", sa.Boolean(), nullable=False),
        sa.Column("since", sa.Date(), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("decided_by", sa.String(length=100), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("village_code", name=op.f("pk_village_overrides")),
    )
    with op.batch_alter_table("townships", schema=None) as batch_op:
        batch_op.add_column(sa.Column("halted", sa.Boolean(), nullable=False, server_default=sa.false()))

    with op.batch_alter_table("villages", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("outstanding", sa.Numeric(precision=16, scale=2), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("non_performing", sa.Numeric(precision=16, scale=2), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("npl_ratio", sa.Numeric(precision=8, scale=4), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("over", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column("over_since", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("frozen", sa.Boolean(), nullable=False, server_default=sa.false()))

    # ### end Alembic commands ###


def downgrade() -> None:
    with op.batch_alter_table("villages", schema=None) as batch_op:
        batch_op.drop_column("frozen")
        batch_op.drop_column("over_since")
        batch_op.drop_column("over")
        batch_op.drop_column("npl_ratio")
        batch_op.drop_column("non_performing")
        batch_op.drop_column("outstanding")

    with op.batch_alter_table("townships", schema=None) as batch_op:
        batch_op.drop_column("halted")

    op.drop_table("village_overrides")
    op.drop_table("village_days")
    with op.batch_alter_table("titles", schema=None) as batch_op:
        batch_op.drop_index("ix_titles_year_kind")

    op.drop_table("titles")
    with op.batch_alter_table("subject_grades", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_subject_grades_village_code"))
        batch_op.drop_index(batch_op.f("ix_subject_grades_township_code"))

    op.drop_table("subject_grades")
    op.drop_table("overdue_years")
    op.drop_table("mutual_guarantee_accounts")
    with op.batch_alter_table("losses", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_losses_village_code"))

    op.drop_table("losses")
    with op.batch_alter_table("loan_positions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_loan_positions_village_code"))
        batch_op.drop_index(batch_op.f("ix_loan_positions_subject_id"))

    op.drop_table("loan_positions")
    with op.batch_alter_table("households", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_households_village_code"))
        batch_op.drop_index(batch_op.f("ix_households_township_code"))

    op.drop_table("households")
    with op.batch_alter_table("fund_entries", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_fund_entries_opening",
            postgresql_where=sa.text("kind = 'opening'"),
            sqlite_where=sa.text("kind = 'opening'"),
        )

    op.drop_table("fund_entries")
    with op.batch_alter_table("decisions", schema=None) as batch_op:
        batch_op.drop_index("ix_decisions_code")

    op.drop_table("decisions")
    op.drop_table("community_assessments")
    op.drop_table("communities")
    op.drop_table("clock")
    op.drop_table("claim_settlements")
    # ### end Alembic commands ###
