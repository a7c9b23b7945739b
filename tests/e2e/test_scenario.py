"""The circuit breaker end to end (issue 8) with the five services as separate processes on
real Kafka and PostgreSQL (vcredit/cluster.py); the scenario is tests/e2e/breaker_scenario.py."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e import breaker_scenario
from vcredit.cluster import Cluster

# A dozen or more cross-service waits of up to breaker_scenario.SECONDS and closes of business
# of up to 120 s: their bounds add up past pyproject's 300 s per test.
pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.timeout(900)]


@pytest.fixture
def cluster_options() -> dict[str, Any]:
    return {"start_date": breaker_scenario.START}


async def test_a_village_over_3_percent_freezes_halts_its_township_and_a_write_off_lifts_it(
    cluster: Cluster,
) -> None:
    await breaker_scenario.run(cluster)
