"""credit lists

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21 13:44:17.391562
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "businesses",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("village_code", sa.String(length=32), nullable=False),
        sa.Column("township_code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("credit_code_masked", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_businesses")),
    )
    with op.batch_alter_table("businesses", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_businesses_village_code"), ["village_code"], unique=False)

    op.create_table(
        "list_entries",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("list", sa.String(length=8), nullable=False),
        sa.Column("subject_kind", sa.String(length=16), nullable=False),
        sa.Column("subject_id", sa.String(length=36), nullable=False),
        sa.Column("village_code", sa.String(length=32), nullable=False),
        sa.Column("township_code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("identifier_masked", sa.String(length=32), nullable=False),
        sa.Column("cause", sa.String(length=64), nullable=False),
        sa.Column("tier", sa.String(length=16), nullable=True),
        sa.Column("legal_basis", sa.Text(), nullable=False),
        sa.Column("evidence", sa.Text(), nullable=True),
        sa.Column("proposed_by", sa.String(length=200), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("decided_by_role", sa.String(length=32), nullable=True),
        sa.Column("decision_reasons", sa.Text(), nullable=True),
        sa.Column("listed_on", sa.Date(), nullable=True),
        sa.Column("publication_ends_on", sa.Date(), nullable=True),
        sa.Column("earliest_repair_on", sa.Date(), nullable=True),
        sa.Column("ended_on", sa.Date(), nullable=True),
        sa.Column("end_reason", sa.String(length=32), nullable=True),
        sa.Column("act_ended_on", sa.Date(), nullable=True),
        sa.Column("retention_ends_on", sa.Date(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_list_entries")),
    )
    with op.batch_alter_table("list_entries", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_list_entries_publication_ends_on"), ["publication_ends_on"], unique=False)
        batch_op.create_index(batch_op.f("ix_list_entries_retention_ends_on"), ["retention_ends_on"], unique=False)
        batch_op.create_index(batch_op.f("ix_list_entries_status"), ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_list_entries_subject_id"), ["subject_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_list_entries_village_code"), ["village_code"], unique=False)

    op.create_table(
        "credit_repairs",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("entry_id", sa.String(length=36), nullable=False),
        sa.Column("statement", sa.Text(), nullable=False),
        sa.Column("obligations_fulfilled_on", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("applied_by", sa.String(length=200), nullable=False),
        sa.Column("applied_on", sa.Date(), nullable=False),
        sa.Column("reviewed_by", sa.String(length=200), nullable=True),
        sa.Column("review_note", sa.Text(), nullable=True),
        sa.Column("decided_by_role", sa.String(length=32), nullable=True),
        sa.Column("reasons", sa.Text(), nullable=True),
        sa.Column("decided_on", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(
            ["entry_id"], ["list_entries.id"], name=op.f("fk_credit_repairs_entry_id_list_entries"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credit_repairs")),
    )
    with op.batch_alter_table("credit_repairs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_credit_repairs_entry_id"), ["entry_id"], unique=False)

    with op.batch_alter_table("households", schema=None) as batch_op:
        batch_op.add_column(sa.Column("head_name", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("id_number_masked", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("households", schema=None) as batch_op:
        batch_op.drop_column("id_number_masked")
        batch_op.drop_column("head_name")

    with op.batch_alter_table("credit_repairs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_credit_repairs_entry_id"))

    op.drop_table("credit_repairs")
    with op.batch_alter_table("list_entries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_list_entries_village_code"))
        batch_op.drop_index(batch_op.f("ix_list_entries_subject_id"))
        batch_op.drop_index(batch_op.f("ix_list_entries_status"))
        batch_op.drop_index(batch_op.f("ix_list_entries_retention_ends_on"))
        batch_op.drop_index(batch_op.f("ix_list_entries_publication_ends_on"))

    op.drop_table("list_entries")
    with op.batch_alter_table("businesses", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_businesses_village_code"))

    op.drop_table("businesses")
