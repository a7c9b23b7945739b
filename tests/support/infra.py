"""What only tests add to a run's infrastructure (vcredit/infra.py): the bus a test's
services share, their settings and the bootstrap token the tests send. Fixtures that
hand it out: tests/conftest.py."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.bus.base import Bus
from shared.bus.embedded import EmbeddedBus
from shared.bus.kafka import KafkaBus
from shared.settings import CommonSettings
from vcredit import infra as harness
from vcredit.infra import TEST_PARTITIONS, new_topic_prefix

__all__ = ["TOKEN", "Infra", "new_topic_prefix"]

TOKEN = "test-token"


@dataclass
class Infra(harness.Infra):
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
