"""subjects, ratings, workflow

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21 06:06:00.676023
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
        "certificate_counters",
        sa.Column("village_code", sa.String(length=32), nullable=False),
        sa.Column("last_number", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("village_code", name=op.f("pk_certificate_counters")),
    )
    op.create_table(
        "loan_states",
        sa.Column("loan_id", sa.String(length=36), nullable=False),
        sa.Column("subject_id", sa.String(length=36), nullable=False),
        sa.Column("overdue", sa.Boolean(), nullable=False),
        sa.Column("non_performing", sa.Boolean(), nullable=False),
        sa.Column("ever_non_performing", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("loan_id", name=op.f("pk_loan_states")),
    )
    with op.batch_alter_table("loan_states", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_loan_states_subject_id"), ["subject_id"], unique=False)

    op.create_table(
        "ratings",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("subject_id", sa.String(length=36), nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("grade", sa.String(length=8), nullable=False),
        sa.Column("credit_limit", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("vetoed", sa.Boolean(), nullable=False),
        sa.Column("rule_set", sa.String(length=64), nullable=False),
        sa.Column("reasons", sa.Text(), nullable=False),
        sa.Column("inputs", sa.Text(), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ratings")),
    )
    with op.batch_alter_table("ratings", schema=None) as batch_op:
        batch_op.create_index("ix_ratings_subject", ["subject_id", "id"], unique=False)

    op.create_table(
        "rerate_jobs",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("rule_set", sa.String(length=64), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("done", sa.Integer(), nullable=False),
        sa.Column("last_subject_id", sa.String(length=36), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rerate_jobs")),
    )
    op.create_table(
        "subjects",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("village_code", sa.String(length=32), nullable=False),
        sa.Column("township_code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("poor_household", sa.Boolean(), nullable=False),
        sa.Column("profile", sa.Text(), nullable=False),
        sa.Column("overdue_occurrences", sa.Integer(), nullable=False),
        sa.Column("npl_occurrences", sa.Integer(), nullable=False),
        sa.Column("repaid_on_time", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subjects")),
    )
    with op.batch_alter_table("subjects", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_subjects_village_code"), ["village_code"], unique=False)

    op.create_table(
        "notice_objections",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("subject_id", sa.String(length=36), nullable=False),
        sa.Column("rating_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("raised_by", sa.String(length=100), nullable=False),
        sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("resolution_note", sa.Text(), nullable=True),
        sa.Column("resolved_by", sa.String(length=100), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["rating_id"], ["ratings.id"], name=op.f("fk_notice_objections_rating_id_ratings")),
        sa.ForeignKeyConstraint(["subject_id"], ["subjects.id"], name=op.f("fk_notice_objections_subject_id_subjects")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notice_objections")),
    )
    with op.batch_alter_table("notice_objections", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_notice_objections_subject_id"), ["subject_id"], unique=False)

    op.create_table(
        "rating_states",
        sa.Column("subject_id", sa.String(length=36), nullable=False),
        sa.Column("current_rating_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("effective_rating_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("notice_starts", sa.Date(), nullable=True),
        sa.Column("notice_ends", sa.Date(), nullable=True),
        sa.Column("certificate_no", sa.String(length=40), nullable=True),
        sa.Column("reason_code", sa.String(length=40), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["current_rating_id"], ["ratings.id"], name=op.f("fk_rating_states_current_rating_id_ratings")
        ),
        sa.ForeignKeyConstraint(
            ["effective_rating_id"], ["ratings.id"], name=op.f("fk_rating_states_effective_rating_id_ratings")
        ),
        sa.ForeignKeyConstraint(["subject_id"], ["subjects.id"], name=op.f("fk_rating_states_subject_id_subjects")),
        sa.PrimaryKeyConstraint("subject_id", name=op.f("pk_rating_states")),
    )
    with op.batch_alter_table("rating_states", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_rating_states_notice_ends"), ["notice_ends"], unique=False)
        batch_op.create_index(batch_op.f("ix_rating_states_status"), ["status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("rating_states", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rating_states_status"))
        batch_op.drop_index(batch_op.f("ix_rating_states_notice_ends"))

    op.drop_table("rating_states")
    with op.batch_alter_table("notice_objections", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notice_objections_subject_id"))

    op.drop_table("notice_objections")
    with op.batch_alter_table("subjects", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_subjects_village_code"))

    op.drop_table("subjects")
    op.drop_table("rerate_jobs")
    with op.batch_alter_table("ratings", schema=None) as batch_op:
        batch_op.drop_index("ix_ratings_subject")

    op.drop_table("ratings")
    with op.batch_alter_table("loan_states", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_loan_states_subject_id"))

    op.drop_table("loan_states")
    op.drop_table("certificate_counters")
    op.drop_table("business_date")
