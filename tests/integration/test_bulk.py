"""shared/bulk.py on both backends: PostgreSQL takes rows as arrays through ``unnest``,
SQLite as executemany; both must leave the same rows and answer the same."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import Boolean, Column, Date, MetaData, Numeric, String, Table, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.bulk import among, insert_rows, update_rows
from shared.db import create_engine, create_sessionmaker
from tests.conftest import Infra

D = Decimal
metadata = MetaData()
accounts = Table(
    "accounts",
    metadata,
    Column("code", String(32), primary_key=True),
    Column("day", Date, primary_key=True),
    Column("balance", Numeric(16, 2), nullable=False),
    Column("closed", Boolean, nullable=False),
    Column("note", String(100), nullable=True),
)


@pytest.fixture
async def sessions(infra: Infra) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(await infra.database_url("bulk"))
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    yield create_sessionmaker(engine)
    await engine.dispose()


def _row(code: str, balance: str, *, closed: bool = False, note: str | None = None) -> dict[str, object]:
    return {"code": code, "day": date(2026, 3, 1), "balance": D(balance), "closed": closed, "note": note}


async def _all(session: AsyncSession) -> list[tuple[object, ...]]:
    rows = await session.execute(select(accounts).order_by(accounts.c.code))
    return [tuple(r) for r in rows]


async def test_insert_update_and_conflicts(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as session, session.begin():
        assert await insert_rows(session, accounts, []) == []
        await insert_rows(session, accounts, [_row("A", "1.10"), _row("B", "2.20", note="东村")])
        inserted = await insert_rows(
            session, accounts, [_row("B", "9.99"), _row("C", "3.30")], conflict="ignore", returning=accounts.c.code
        )
        assert inserted == ["C"]  # B was there: ignored, not returned
        await insert_rows(session, accounts, [_row("A", "1.11", closed=True), _row("D", "0.00")], conflict="update")
        await update_rows(session, accounts, [{"code": "B", "day": date(2026, 3, 1), "balance": D("2.21")}])
        await update_rows(session, accounts, [])
    async with sessions() as session:
        assert await _all(session) == [
            ("A", date(2026, 3, 1), D("1.11"), True, None),
            ("B", date(2026, 3, 1), D("2.21"), False, "东村"),  # columns not named are left alone
            ("C", date(2026, 3, 1), D("3.30"), False, None),
            ("D", date(2026, 3, 1), D("0.00"), False, None),
        ]
        found = await session.execute(select(accounts.c.code).where(among(session, accounts.c.code, {"B", "D", "X"})))
        assert sorted(found.scalars()) == ["B", "D"]
        assert list(await session.execute(select(accounts).where(among(session, accounts.c.code, [])))) == []


async def test_a_plain_insert_of_a_key_already_there_fails(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as session, session.begin():
        await insert_rows(session, accounts, [_row("A", "1.00")])
    with pytest.raises(IntegrityError):
        async with sessions() as session, session.begin():
            await insert_rows(session, accounts, [_row("B", "1.00"), _row("A", "2.00")])
    async with sessions() as session:
        assert await _all(session) == [("A", date(2026, 3, 1), D("1.00"), False, None)]


async def test_many_rows_keep_their_values_exactly(sessions: async_sessionmaker[AsyncSession]) -> None:
    rows = [_row(f"V{i:05d}", f"{i * 1234567}.{i % 100:02d}", closed=i % 3 == 0) for i in range(3000)]
    async with sessions() as session, session.begin():
        await insert_rows(session, accounts, rows)
        await update_rows(
            session, accounts, [{"code": r["code"], "day": r["day"], "note": f"n{r['code']}"} for r in rows[::2]]
        )
    async with sessions() as session:
        got = await _all(session)
    expected = [
        (r["code"], r["day"], r["balance"], r["closed"], None if i % 2 else f"n{r['code']}") for i, r in enumerate(rows)
    ]
    assert got == expected
