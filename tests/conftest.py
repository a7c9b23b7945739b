"""Fixtures that give a test its bus and databases, for each backend.

``embedded``: SQLite files and the SQLite log bus under the test's tmp dir.
``kafka``: the real broker and PostgreSQL named by VCREDIT_TEST_KAFKA and
VCREDIT_TEST_DATABASE_URL (``scripts/test.sh`` starts both on loopback); without them,
testcontainers when a Docker engine answers. Each test gets its own topic prefix and its
own databases, so tests never see each other's events or rows.

With VCREDIT_REQUIRE_INTEGRATION=1 (set by scripts/test.sh, hence by CI) a missing real
component fails the test that needs it instead of skipping it (``missing``), and the run
fails when an integration test did not pass or none ran.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import NoReturn

import pytest
from sqlalchemy.engine import make_url

# Re-exported: tests import TOKEN and Infra from here (tests/support/infra.py).
from shared.events import catalogue
from tests.support.event_schemas import CHECKED
from tests.support.infra import TOKEN, Infra, new_topic_prefix

__all__ = ["TOKEN", "Infra"]


def _docker_available() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "info"], capture_output=True, timeout=20).returncode == 0


def missing(component: str) -> NoReturn:
    """A real component the test needs is absent: a failure where CI requires integration
    tests (VCREDIT_REQUIRE_INTEGRATION=1), a skip on a developer's machine."""
    if os.environ.get("VCREDIT_REQUIRE_INTEGRATION") == "1":
        pytest.fail(f"{component}, and VCREDIT_REQUIRE_INTEGRATION=1 forbids skipping", pytrace=False)
    pytest.skip(component)


@pytest.fixture(scope="session")
def real_servers() -> Iterator[tuple[str, str] | None]:
    """(kafka bootstrap, postgres admin URL), or None when neither env nor Docker has them."""
    kafka = os.environ.get("VCREDIT_TEST_KAFKA")
    database = os.environ.get("VCREDIT_TEST_DATABASE_URL")
    if kafka and database:
        yield kafka, database
        return
    if not _docker_available():
        yield None
        return
    from testcontainers.kafka import KafkaContainer
    from testcontainers.postgres import PostgresContainer

    with KafkaContainer("apache/kafka:3.9.1").with_kraft() as k, PostgresContainer("postgres:16") as pg:
        url = make_url(pg.get_connection_url()).set(drivername="postgresql+asyncpg")
        yield k.get_bootstrap_server(), url.render_as_string(hide_password=False)


@pytest.fixture
def servers(real_servers: tuple[str, str] | None) -> tuple[str, str]:
    """(kafka bootstrap, postgres admin URL) for a test that cannot run without them."""
    if real_servers is None:
        missing("no Kafka/PostgreSQL: set VCREDIT_TEST_KAFKA and VCREDIT_TEST_DATABASE_URL (scripts/test.sh does)")
    return real_servers


BACKENDS = [
    pytest.param("embedded", id="embedded"),
    pytest.param("kafka", id="kafka", marks=pytest.mark.integration),
]


@pytest.fixture(params=BACKENDS)
async def infra(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Infra]:
    if request.param == "embedded":
        yield Infra("embedded", tmp_path, new_topic_prefix())
        return
    async with _real_infra(request.getfixturevalue("servers"), tmp_path) as infra:
        yield infra


@pytest.fixture
async def postgresql_infra(servers: tuple[str, str], tmp_path: Path) -> AsyncIterator[Infra]:
    """The Kafka + PostgreSQL backend alone: for a path only PostgreSQL takes, which the
    embedded backend would have to skip."""
    async with _real_infra(servers, tmp_path) as infra:
        yield infra


@contextlib.asynccontextmanager
async def _real_infra(servers: tuple[str, str], tmp_path: Path) -> AsyncIterator[Infra]:
    kafka, pg = servers
    infra = Infra("kafka", tmp_path, new_topic_prefix(), kafka=kafka, pg_admin_url=pg)
    try:
        yield infra
    finally:
        await infra.drop_databases()


# --- CI guard: integration tests must have run ---------------------------------------------

_integration_items: set[str] = set()
_integration_outcomes: dict[str, str] = {}


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # trylast: runs after -k/-m deselection, so a deselected test is not counted as selected.
    _integration_items.update(i.nodeid for i in items if i.get_closest_marker("integration"))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.nodeid not in _integration_items:
        return
    if report.when == "call" or report.outcome != "passed":
        previous = _integration_outcomes.get(report.nodeid, "passed")
        _integration_outcomes[report.nodeid] = report.outcome if previous == "passed" else previous


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    # How many emitted events the run held to their JSON Schemas (tests/support/event_schemas.py).
    if CHECKED:
        terminalreporter.write_line(
            f"emitted events checked against their JSON Schemas: {CHECKED.total()} of {len(CHECKED)} event types"
        )
        unseen = sorted(name for name, t in catalogue().items() if t.public and name not in CHECKED)
        if unseen:
            terminalreporter.write_line(f"  event types no test emitted: {', '.join(unseen)}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if os.environ.get("VCREDIT_REQUIRE_INTEGRATION") != "1":
        return
    ran = sum(1 for o in _integration_outcomes.values() if o == "passed")
    not_run = sorted(_integration_items - {n for n, o in _integration_outcomes.items() if o == "passed"})
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"integration tests (real Kafka + PostgreSQL): {ran} passed, {len(not_run)} not passed")
    if ran == 0 or not_run:
        if reporter is not None:
            reporter.write_line("VCREDIT_REQUIRE_INTEGRATION=1: every integration test must run and pass: FAILED")
            for n in not_run[:20]:
                reporter.write_line(f"  {_integration_outcomes.get(n, 'not run')}: {n}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
