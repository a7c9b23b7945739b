"""Schemathesis against every service's OpenAPI (issue 9, "Fuzzing"): the five services run
as ``vcredit up`` runs them (embedded mode, one process, real HTTP on loopback), and every
operation of each service's schema gets generated requests, valid and invalid, sent with
the bootstrap token. Two properties hold for every answer:

- no 5xx (``not_a_server_error``);
- every error (4xx) is ``application/problem+json`` with the RFC 9457 members and a ``code``.

Bounded so that CI spends about two minutes on it: VCREDIT_FUZZ_EXAMPLES examples per
operation (default 12), derandomized (the same cases on every run, so a red CI is a real
regression and not a new draw). For a deeper, random run:
``VCREDIT_FUZZ_EXAMPLES=200 VCREDIT_FUZZ_RANDOM=1 pytest tests/fuzz``.

Left out: ``GET /v1/stream`` (Server-Sent Events never end; tests/integration/test_notify.py
covers it) and ``POST /v1/cob``, which closes business days one by one up to the date it
is given (as many as VCREDIT_LOANS_COB_MAX_DAYS, 366), and is tested on its own
(tests/integration/test_loans.py, test_cob_control.py). Its run endpoints are fuzzed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from shared.bus.embedded import EmbeddedBus
from shared.runtime import ServiceRuntime, create_app
from shared.settings import SERVICE_NAMES, CommonSettings
from vcredit.cluster import free_ports
from vcredit.services import load_spec

TOKEN = "fuzz-token"
EXAMPLES = int(os.environ.get("VCREDIT_FUZZ_EXAMPLES", "12"))
RANDOM = os.environ.get("VCREDIT_FUZZ_RANDOM") == "1"
PROBLEM_MEMBERS = {"type", "title", "status", "code", "detail"}
NEVER_ENDS = "^/v1/stream$"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _openapi(service: str) -> dict[str, Any]:
    """The service's schema as its app serves it at /openapi.json (the app is not started)."""
    tmp = Path(os.environ.get("TMPDIR", "/tmp"))
    runtime = ServiceRuntime(
        load_spec(service), "sqlite+aiosqlite://", EmbeddedBus(tmp / "unused.db"), CommonSettings()
    )
    schema: dict[str, Any] = create_app(runtime, TOKEN, manage_runtime=False).openapi()
    return schema


def _schema(service: str) -> schemathesis.BaseSchema:
    schema = schemathesis.openapi.from_dict(_openapi(service)).exclude(path_regex=NEVER_ENDS)
    if service == "loans":
        return schema.exclude(method="POST", path="/v1/cob")
    return schema


@schemathesis.serializer(XLSX)
def _xlsx(_ctx: Any, value: Any) -> bytes:
    # The sheet import's body is the file's bytes, sent as they are (invalid ones included).
    return value if isinstance(value, bytes) else str(value).encode()


@schemathesis.check
def problem_json(ctx: Any, response: Any, case: Any) -> bool | None:
    """Every 4xx/5xx is an RFC 9457 problem with the stable ``code`` of API.md."""
    if response.status_code < 400:
        return None
    content_type = response.headers.get("content-type", [""])
    content_type = content_type[0] if isinstance(content_type, list) else content_type
    assert content_type.split(";")[0] == "application/problem+json", (
        f"{response.status_code} answered as {content_type!r}: {response.text[:300]}"
    )
    body = response.json()
    missing = PROBLEM_MEMBERS - set(body)
    assert not missing, f"problem without {sorted(missing)}: {body}"
    assert body["status"] == response.status_code, body
    return True


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Base URL of each service of a fresh ``vcredit up``."""
    data = tmp_path_factory.mktemp("fuzz")
    ports = dict(zip(SERVICE_NAMES, free_ports(len(SERVICE_NAMES)), strict=True))
    env = {**os.environ, "VCREDIT_DATA_DIR": str(data), "VCREDIT_BOOTSTRAP_TOKEN": TOKEN}
    env.update({f"VCREDIT_{name.upper()}_PORT": str(port) for name, port in ports.items()})
    env["VCREDIT_NOTIFY_RISK_URL"] = f"http://127.0.0.1:{ports['risk']}"
    log = (data / "up.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "vcredit", "up"], env=env, stdout=log, stderr=subprocess.STDOUT)
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    try:
        deadline = time.monotonic() + 60
        for url in urls.values():
            while True:
                assert proc.poll() is None, (data / "up.log").read_text()[-3000:]
                assert time.monotonic() < deadline, "vcredit up not ready within 60 s"
                try:
                    if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
        yield urls
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        errors = [line for line in (data / "up.log").read_text().splitlines() if "Traceback" in line or "ERROR" in line]
        if errors:
            print(f"vcredit up logged {len(errors)} error lines; see {data / 'up.log'}")


FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize=not RANDOM,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
    print_blob=True,
)


def _run(case: Any, base_url: str) -> None:
    case.call_and_validate(
        base_url=base_url,
        headers={"Authorization": f"Bearer {TOKEN}"},
        checks=[not_a_server_error, problem_json],
        timeout=30,
    )


registry = _schema("registry")
scoring = _schema("scoring")
loans = _schema("loans")
risk = _schema("risk")
notify = _schema("notify")


@registry.parametrize()
@FUZZ
def test_registry(case: Any, system: dict[str, str]) -> None:
    _run(case, system["registry"])


@scoring.parametrize()
@FUZZ
def test_scoring(case: Any, system: dict[str, str]) -> None:
    _run(case, system["scoring"])


@loans.parametrize()
@FUZZ
def test_loans(case: Any, system: dict[str, str]) -> None:
    _run(case, system["loans"])


@risk.parametrize()
@FUZZ
def test_risk(case: Any, system: dict[str, str]) -> None:
    _run(case, system["risk"])


@notify.parametrize()
@FUZZ
def test_notify(case: Any, system: dict[str, str]) -> None:
    _run(case, system["notify"])


class _Answer:
    """The few members of a response the problem_json check reads."""

    def __init__(self, status: int, content_type: str, body: str) -> None:
        self.status_code = status
        self.headers = {"content-type": [content_type]}
        self.text = body

    def json(self) -> Any:
        return json.loads(self.text)


def test_the_problem_check_refuses_errors_that_are_not_problems() -> None:
    problem = '{"type": "t", "title": "Not found", "status": 404, "code": "NOT_FOUND", "detail": "d"}'
    assert problem_json(None, _Answer(404, "application/problem+json", problem), None) is True
    assert problem_json(None, _Answer(200, "application/json", "[]"), None) is None
    for answer in (
        _Answer(404, "application/json", '{"detail": "Not Found"}'),
        _Answer(413, "text/plain", "Content Too Large"),
        _Answer(404, "application/problem+json", '{"title": "Not found", "status": 404}'),
        _Answer(422, "application/problem+json", problem),
    ):
        with pytest.raises(AssertionError):
            problem_json(None, answer, None)
