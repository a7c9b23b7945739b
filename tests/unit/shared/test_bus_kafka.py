"""The Kafka bus's topic settings, without a broker (the bus itself: tests/integration/test_kafka_bus.py)."""

from __future__ import annotations

import pytest

from shared.bus.kafka import KafkaBus, capped_min_insync


@pytest.mark.parametrize(
    ("replicas", "wanted", "given"),
    [(3, 2, 2), (3, 3, 3), (3, 1, 1), (1, 2, 1), (2, 2, 2), (2, 3, 2), (5, 2, 2)],
)
def test_the_in_sync_minimum_is_the_wanted_one_capped_at_the_replicas(replicas: int, wanted: int, given: int) -> None:
    assert capped_min_insync(replicas, wanted) == given


def test_a_bus_of_one_replica_asks_for_one_in_sync() -> None:
    assert KafkaBus("k:9092", replication_factor=1).min_insync_replicas == 1
    assert KafkaBus("k:9092", replication_factor=3).min_insync_replicas == 2
