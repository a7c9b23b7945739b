"""The ``cluster`` fixture: all five services as separate processes (vcredit/cluster.py).

A test module changes how the cluster starts by overriding ``cluster_options`` (keyword
arguments of ``Cluster``). When a test fails, the services' log tails are added to its
report, taken before the cluster stops."""

from __future__ import annotations

from collections.abc import AsyncIterator, Generator
from pathlib import Path
from typing import Any

import pytest

from vcredit.cluster import Cluster


@pytest.fixture
def cluster_options() -> dict[str, Any]:
    return {}


@pytest.fixture
async def cluster(tmp_path: Path, servers: tuple[str, str], cluster_options: dict[str, Any]) -> AsyncIterator[Cluster]:
    kafka, pg = servers
    async with Cluster(kafka, pg, tmp_path, **cluster_options) as running:
        yield running


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    running = getattr(item, "funcargs", {}).get("cluster")
    if report.when == "call" and report.failed and isinstance(running, Cluster):
        report.sections.append(("cluster logs", running.report()))
