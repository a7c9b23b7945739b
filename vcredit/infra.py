"""Per-test bus and databases, without pytest, so harnesses that also run outside pytest
(vcredit/cluster.py, benchmarks) can use them. Fixtures are in tests/conftest.py. Here, not
in tests/, because bench/ imports nothing from tests/ (tests/unit/test_architecture.py)."""

from __future__ import annotations

import asyncio
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

from shared.bus.base import Bus
from shared.bus.embedded import EmbeddedBus
from shared.bus.kafka import KafkaBus
from shared.settings import CommonSettings

TOKEN = "test-token"
TEST_PARTITIONS = 3
# asyncpg's own default, stated: tests/unit/test_timeouts.py scans vcredit/ as well.
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
    _embedded_bus: EmbeddedBus | None = None

    def bus(self, client_id: str = "test") -> Bus:
        if self.backend == "embedded":
            # One log file per test, as all services of `vcredit up` share one.
            if self._embedded_bus is None:
                self._embedded_bus = EmbeddedBus(self.tmp / "bus.db", poll_seconds=0.05)
            return self._embedded_bus
        assert self.kafka
        return KafkaBus(self.kafka, client_id=client_id, partitions=TEST_PARTITIONS, replication_factor=1)

    def bus_args(self) -> list[str]:
        """How a subprocess reaches the same bus (bench/probe.py)."""
        if self.backend == "embedded":
            return ["--embedded-bus", str(self.tmp / "bus.db")]
        assert self.kafka
        return ["--kafka", self.kafka]

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

    def common(self, **overrides: Any) -> CommonSettings:
        values: dict[str, Any] = {
            "data_dir": self.tmp,
            "bootstrap_token": TOKEN,
            "kafka_bootstrap_servers": self.kafka or "unused:9092",
            "topic_prefix": self.topic_prefix,
            "topic_partitions": TEST_PARTITIONS,
            "topic_replication_factor": 1,
            "consumer_backoff_seconds": 0.01,
            "relay_idle_seconds": 0.05,
        }
        values.update(overrides)
        return CommonSettings.model_validate(values)

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
