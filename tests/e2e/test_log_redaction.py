"""Nothing personal in what `vcredit serve` writes (issue 9), as JSON lines (issue 10): registry and scoring as separate
processes on real Kafka and PostgreSQL, the flow of tests/support/pii_flow.py through their HTTP
APIs, then every line the processes wrote to stdout and stderr, from start to shutdown,
grepped for the ID numbers, names and tokens the flow used."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import pytest

from tests.support import pii_flow
from vcredit.cluster import Cluster, eventually

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


async def test_served_processes_log_no_id_number_name_or_token(tmp_path: Path, servers: tuple[str, str]) -> None:
    async def wait(request: Callable[[], Awaitable[httpx.Response]]) -> httpx.Response:
        return await eventually(request, lambda r: r.is_success, what="a success", seconds=60)

    kafka, pg = servers
    async with Cluster(kafka, pg, tmp_path, services=("registry", "scoring")) as cluster:
        registry, scoring = cluster.client("registry"), cluster.client("scoring")
        exposure = await pii_flow.run(registry, scoring, cluster.token, tmp_path / "credentials.json", wait)
    logs = {service: cluster.log(service) for service in cluster.services}
    entries = {service: [json.loads(line) for line in text.splitlines()] for service, text in logs.items()}
    # Structured (issue 10): every line is a JSON object; each request's line carries its id.
    access = [e for e in entries["registry"] if e["logger"] == "uvicorn.access"]
    assert access and all(e["request_id"] and e["service"] == "registry" for e in access)

    # The capture is real: uvicorn's access lines, query strings included, and the shutdown.
    registry_log = "\n".join(e["message"] for e in entries["registry"])
    assert '"POST /v1/households HTTP/1.1" 201' in registry_log
    assert '"POST /v1/villages/410102005001/households/import?filename=' in registry_log
    assert '"GET /v1/households?id_number=[REDACTED] HTTP/1.1" 200' in registry_log
    assert '"GET /v1/households?id_number=[REDACTED]&access_token=[REDACTED] HTTP/1.1" 401' in registry_log
    assert '"GET /v1/households/410***********' in registry_log
    assert '"POST /v1/oauth/token HTTP/1.1" 200' in registry_log
    scoring_log = "\n".join(e["message"] for e in entries["scoring"])
    assert '"GET /v1/households/' in scoring_log and "Application shutdown complete" in scoring_log
    for service, text in logs.items():
        found = pii_flow.leaks(text, exposure)
        assert not found, f"{service}: " + "\n".join(found + pii_flow.lines_with(text, [f.split()[-1] for f in found]))
    assert not pii_flow.response_leaks(exposure)
