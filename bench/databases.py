"""The PostgreSQL every benchmark measures against: the tests' server by default (its
``--database-url`` option is in bench/suite.py), and a database of its own for each run,
dropped afterwards even when the run fails."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from sqlalchemy.engine import make_url

LOOPBACK = "postgresql+asyncpg://vcredit:vcredit@127.0.0.1:5432/vcredit"


def asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@asynccontextmanager
async def temporary_database(admin_url: str, name: str) -> AsyncIterator[str]:
    """Create database ``name`` and yield its SQLAlchemy URL; drop it on the way out."""
    conn = await asyncpg.connect(asyncpg_dsn(admin_url), timeout=10)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
        try:
            yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
        finally:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()
