"""Per-run databases and topic prefix, without pytest, so harnesses that also run outside
pytest (vcredit/cluster.py, benchmarks) can use them. Here, not in tests/, because bench/
imports nothing from tests/ (tests/unit/project/test_architecture.py). What only tests use
(their bus, settings and token) is tests/support/infra.py; the fixtures, tests/conftest.py."""

from __future__ import annotations

import asyncio
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

# The tests' Kafka topics have this many partitions, and so do those of bench/probe.py's
# serve-loans, which runs beside them.
TEST_PARTITIONS = 3
# asyncpg's own default, stated: tests/system/test_timeouts.py scans vcredit/ as well.
CONNECT_SECONDS = 60


def new_topic_prefix() -> str:
    """A topic prefix no other test uses; it also names the test's databases."""
    return f"t{uuid.uuid4().hex[:12]}."


@dataclass
class Infra:
    backend: str
    tmp: Path
    topic_prefix: str
    kafka: str | None = None
    pg_admin_url: str | None = None
    _databases: list[str] = field(default_factory=list)

    async def database_url(self, name: str) -> str:
        if self.backend == "embedded":
            return f"sqlite+aiosqlite:///{self.tmp / name}.db"
        assert self.pg_admin_url
        db = f"{self.topic_prefix.rstrip('.')}_{name}".lower()
        admin = make_url(self.pg_admin_url)
        conn = await asyncpg.connect(_asyncpg_dsn(self.pg_admin_url), timeout=CONNECT_SECONDS)
        try:
            await conn.execute(f'CREATE DATABASE "{db}"')
        finally:
            await conn.close()
        self._databases.append(db)
        return admin.set(database=db).render_as_string(hide_password=False)

    async def drop_databases(self) -> None:
        """Clean-up, not part of any test's verdict: retried, then left with a warning."""
        if not self._databases or not self.pg_admin_url:
            return
        conn = await asyncpg.connect(_asyncpg_dsn(self.pg_admin_url), timeout=CONNECT_SECONDS)
        try:
            for db in self._databases:
                for attempt in range(5):
                    try:
                        await conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
                        break
                    except asyncpg.PostgresError as exc:
                        if attempt == 4:
                            warnings.warn(f"test database {db} left behind: {exc}", stacklevel=1)
                        await asyncio.sleep(0.5)
        finally:
            await conn.close()


def _asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
