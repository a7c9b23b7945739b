"""outbox trace context (now on the platform branch)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21 12:40:00.000000

Kept, empty, so the chain of databases already past it stays whole: the platform tables
are created and changed by the platform branch (shared/platform_migrations).
"""

from collections.abc import Sequence

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
