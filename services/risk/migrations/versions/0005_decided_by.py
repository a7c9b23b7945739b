"""who decided: the deciding principal's name beside its role (issue 21, four eyes)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable: decisions taken before this revision recorded only the role.
    with op.batch_alter_table("list_entries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("decided_by", sa.String(length=200), nullable=True))
    with op.batch_alter_table("credit_repairs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("decided_by", sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("credit_repairs", schema=None) as batch_op:
        batch_op.drop_column("decided_by")
    with op.batch_alter_table("list_entries", schema=None) as batch_op:
        batch_op.drop_column("decided_by")
