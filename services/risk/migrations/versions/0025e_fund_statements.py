"""fund statements (issue 25 item 5): every movement of the businesses' mutual guarantee
accounts, for their statements, with the history already in the database backfilled

The draws and the recoveries' parts back are rebuilt exactly (date, loan, recovery) from the
losses and loss_recoveries rows. Contributions were kept only as each account's total, so each
account gets one contribution carried forward, without a loan, dated at the business's first
disbursement that risk knows (else risk's business date): the account's totals then equal the
sums of its movements. ``vcredit rebuild risk`` replaces these rows with the contribution of
each loan from the topics (docs/settlement.md, "Fund statements").

Revision ID: 0025e_fund_statements
Revises: 0024c_recoveries
Create Date: 2026-12-15 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0025e_fund_statements"
down_revision: str | None = "0025d_claim_batches"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = "business_id, kind, amount, loan_id, recovery_id, business_date"


def upgrade() -> None:
    op.create_table(
        "mutual_guarantee_movements",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("business_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("amount", sa.Numeric(precision=16, scale=2), nullable=False),
        sa.Column("loan_id", sa.String(length=36), nullable=True),
        sa.Column("recovery_id", sa.String(length=36), nullable=True),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mutual_guarantee_movements")),
    )
    op.create_index(
        "ix_mutual_guarantee_movements_business",
        "mutual_guarantee_movements",
        ["business_id", "business_date"],
        unique=False,
    )
    # The carried-forward contributions first, so on their date they come before the draws.
    op.execute(
        f"INSERT INTO mutual_guarantee_movements ({_COLUMNS}) "
        "SELECT a.business_id, 'contribution', a.contributed, NULL, NULL, COALESCE("
        "(SELECT MIN(p.disbursed_on) FROM loan_positions p WHERE p.subject_id = a.business_id), "
        "(SELECT c.business_date FROM clock c WHERE c.id = 1), CURRENT_DATE) "
        "FROM mutual_guarantee_accounts a WHERE a.contributed <> 0 ORDER BY a.business_id"
    )
    op.execute(
        f"INSERT INTO mutual_guarantee_movements ({_COLUMNS}) "
        "SELECT l.subject_id, 'draw', -l.mutual_guarantee, l.loan_id, NULL, l.business_date "
        "FROM losses l WHERE l.subject_kind = 'business' AND l.mutual_guarantee <> 0 "
        "ORDER BY l.business_date, l.loan_id"
    )
    op.execute(
        f"INSERT INTO mutual_guarantee_movements ({_COLUMNS}) "
        "SELECT l.subject_id, 'recovery', r.mutual_guarantee, r.loan_id, r.recovery_id, r.business_date "
        "FROM loss_recoveries r JOIN losses l ON l.loan_id = r.loan_id WHERE r.mutual_guarantee <> 0 "
        "ORDER BY r.business_date, r.recovery_id"
    )


def downgrade() -> None:
    op.drop_index("ix_mutual_guarantee_movements_business", table_name="mutual_guarantee_movements")
    op.drop_table("mutual_guarantee_movements")
