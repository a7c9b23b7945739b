"""import reports: every error counted, by field, beside the errors listed in full

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 10:00:00.000000

An import's report lists its first VCREDIT_REGISTRY_IMPORT_REPORT_MAX_ERRORS errors (issue 21:
100,000 bad rows stored 17 MB); these columns count them all. Reports stored before listed
every error, so they are counted from the list.
"""

import json
from collections import Counter
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("imports", schema=None) as batch_op:
        batch_op.add_column(sa.Column("errors_total", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("errors_by_field", sa.Text(), server_default="{}", nullable=False))
    imports = sa.table(
        "imports",
        sa.column("id", sa.String),
        sa.column("report", sa.Text),
        sa.column("errors_total", sa.Integer),
        sa.column("errors_by_field", sa.Text),
    )
    connection = op.get_bind()
    for import_id, report in connection.execute(sa.select(imports.c.id, imports.c.report)).all():
        errors = json.loads(report)
        connection.execute(
            imports.update()
            .where(imports.c.id == import_id)
            .values(
                errors_total=len(errors),
                errors_by_field=json.dumps(Counter(e["field"] for e in errors), ensure_ascii=False),
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("imports", schema=None) as batch_op:
        batch_op.drop_column("errors_by_field")
        batch_op.drop_column("errors_total")
