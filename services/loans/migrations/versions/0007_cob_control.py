"""loans: close-of-business run control: the lease (one run at a time per loans database,
across replicas) and the runs an operator starts, follows and cancels (issue 19)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 06:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    lease = op.create_table(
        "cob_lease",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("holder", sa.String(length=36), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cob_lease")),
    )
    # The one row every run takes with a conditional UPDATE; never deleted.
    op.bulk_insert(lease, [{"id": 1, "holder": None, "expires_at": None}])
    op.create_table(
        "cob_jobs",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("target", sa.Date(), nullable=False),
        sa.Column("from_date", sa.Date(), nullable=False),
        sa.Column("current_day", sa.Date(), nullable=False),
        sa.Column("days_closed", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.Column("requested_by", sa.String(length=128), nullable=False),
        sa.Column("cancelled_by", sa.String(length=128), nullable=True),
        sa.Column("detail", sa.String(length=500), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cob_jobs")),
    )
    with op.batch_alter_table("cob_jobs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_cob_jobs_started_at"), ["started_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("cob_jobs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cob_jobs_started_at"))
    op.drop_table("cob_jobs")
    op.drop_table("cob_lease")
