"""who decided: the resolver's role beside its name, and who rejected a rating (issue 21)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-08 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable: decisions taken before this revision recorded less.
    with op.batch_alter_table("notice_objections", schema=None) as batch_op:
        batch_op.add_column(sa.Column("resolved_by_role", sa.String(length=32), nullable=True))
    with op.batch_alter_table("rating_states", schema=None) as batch_op:
        batch_op.add_column(sa.Column("decided_by", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("decided_by_role", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("rating_states", schema=None) as batch_op:
        batch_op.drop_column("decided_by_role")
        batch_op.drop_column("decided_by")
    with op.batch_alter_table("notice_objections", schema=None) as batch_op:
        batch_op.drop_column("resolved_by_role")
