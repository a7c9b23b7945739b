"""hierarchy projection

Revision ID: 0001
Revises:
Create Date: 2026-11-21

The outbox, inbox and idempotency keys it once created are the platform branch's
(shared/platform_migrations).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "townships",
        sa.Column("code", sa.String(32), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.PrimaryKeyConstraint("code", name="pk_townships"),
    )
    op.create_table(
        "villages",
        sa.Column("code", sa.String(32), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("township_code", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("code", name="pk_villages"),
    )
    op.create_index("ix_villages_township_code", "villages", ["township_code"])


def downgrade() -> None:
    op.drop_table("villages")
    op.drop_table("townships")
