"""Risk's batch rows (services/risk/rows.py) without a database; their write-back is pinned on
both backends by tests/integration/test_risk_batch.py."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

from services.risk.models import LoanPosition, Village
from services.risk.rows import Position, VillageRow, finish, rows_of
from shared.db import create_engine, create_sessionmaker


def test_records_mirror_their_tables() -> None:
    # Loaded as SELECT of every column in table order, then Record(*row).
    for record, model in ((Position, LoanPosition), (VillageRow, Village)):
        assert [f.name for f in fields(record)] == [c.name for c in model.__table__.columns]


async def test_a_transaction_has_its_rows_until_finish(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/risk.db")
    async with create_sessionmaker(engine)() as session:
        rows = rows_of(session)
        assert rows_of(session) is rows
        await finish(session)  # nothing changed: nothing to write
        assert rows_of(session) is not rows  # the next batch of a rebuild starts afresh
    await engine.dispose()
