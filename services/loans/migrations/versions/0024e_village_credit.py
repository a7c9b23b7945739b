"""whole-village credit: scoring's workflow status per subject, rating_view by village

Revision ID: 0024e_village_credit
Revises: 0024b_loan_extensions
Create Date: 2026-12-01 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0024e_village_credit"
down_revision: str | None = "0024b_loan_extensions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# Subjects rated before this revision have no status row until their next scoring event; the
# whole-village opening still finds the certified ones (rating_view) and opens their lines.
def upgrade() -> None:
    op.create_table(
        "rating_status_view",
        sa.Column("subject_id", sa.String(length=36), nullable=False),
        sa.Column("subject_kind", sa.String(length=16), nullable=False),
        sa.Column("village_code", sa.String(length=32), nullable=False),
        sa.Column("township_code", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("vetoed", sa.Boolean(), nullable=False),
        sa.Column("notice_ends", sa.Date(), nullable=True),
        sa.Column("reason_code", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("subject_id", name=op.f("pk_rating_status_view")),
    )
    with op.batch_alter_table("rating_status_view", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_rating_status_view_village_code"), ["village_code"], unique=False)
    with op.batch_alter_table("rating_view", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_rating_view_village_code"), ["village_code"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("rating_view", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rating_view_village_code"))
    with op.batch_alter_table("rating_status_view", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rating_status_view_village_code"))
    op.drop_table("rating_status_view")
