"""loans: fillfactor 50, so close of business's daily rewrite of each loan is a HOT update (models.Loan)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-21 19:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# PostgreSQL only (SQLite has no such parameter). Rows already there move to pages with room
# as they are next updated; no rewrite of the table is needed.
def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE loans SET (fillfactor = 50)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE loans RESET (fillfactor)")
