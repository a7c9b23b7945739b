"""Prometheus /metrics (issue 10) on both backends: after real traffic the counters move,
the shared-state gauges are read at scrape time, and only metrics:read may scrape."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, timedelta

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from shared.auth import add_credential
from shared.bus.base import Record
from tests.conftest import Infra
from tests.support.system import System
from tests.support.waiting import wait_until

TOWNSHIP = "410102007"
VILLAGES = ("410102007001", "410102007002", "410102007003")
START = date(2026, 3, 2)

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(client: httpx.AsyncClient, **headers: str) -> Samples:
    r = await client.get("/metrics", headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(r.text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sum over every series of ``name`` whose labels include ``labels``; 0 if none."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


def series(samples: Samples, name: str) -> list[dict[str, str]]:
    return [dict(ls) for (n, ls) in samples if n == name]


@pytest.fixture
async def system(infra: Infra) -> AsyncIterator[System]:
    async with System(infra, ["registry", "loans", "risk"], start_date=START) as s:
        yield s


async def test_counters_move_after_traffic(system: System) -> None:
    registry, risk, loans = system["registry"], system["risk"], system["loans"]
    before = {name: await scrape(system[name]) for name in ("registry", "risk", "loans")}

    assert (await registry.post("/v1/townships", json={"code": TOWNSHIP, "name": "城关镇"})).status_code == 201
    for n, code in enumerate(VILLAGES):
        body = {"code": code, "name": f"村{n}", "township_code": TOWNSHIP}
        assert (await registry.post("/v1/villages", json=body)).status_code == 201
    assert (await registry.get("/v1/townships/000000000")).status_code == 404

    async def risk_has_them() -> bool:
        return bool((await risk.get(f"/v1/townships/{TOWNSHIP}")).json().get("villages") == len(VILLAGES))

    await wait_until(risk_has_them, what="the hierarchy to reach risk")
    after = {name: await scrape(system[name]) for name in ("registry", "risk", "loans")}

    # HTTP: one observation per request, labelled by route template and status.
    hist = "vcredit_http_request_duration_seconds_count"
    b, a = before["registry"], after["registry"]
    assert value(a, hist, method="POST", route="/v1/villages", status="201") - value(
        b, hist, method="POST", route="/v1/villages", status="201"
    ) == len(VILLAGES)
    assert value(a, hist, method="GET", route="/v1/townships/{code}", status="404") == 1
    assert not [s for s in series(a, hist) if TOWNSHIP in s["route"]], "route templates, never raw paths"

    # Events: registry's relay published them, risk consumed them.
    produced = "vcredit_events_produced_total"
    assert value(a, produced, topic="registry.events", type="registry.village.created") - value(
        b, produced, topic="registry.events", type="registry.village.created"
    ) == len(VILLAGES)
    consumed = "vcredit_events_consumed_total"
    applied = value(after["risk"], consumed, type="registry.village.created", outcome="applied")
    assert applied - value(before["risk"], consumed, type="registry.village.created", outcome="applied") == len(
        VILLAGES
    )
    assert value(after["risk"], consumed, outcome="dead_lettered") == 0

    # Gauges read at scrape time.
    assert value(after["registry"], "vcredit_outbox_backlog") == 0
    assert value(after["risk"], "vcredit_fund_balance_fen") == 1_000_000_000, "10,000,000.00 yuan"
    assert value(after["risk"], "vcredit_frozen_villages") == 0
    assert value(after["risk"], "vcredit_halted_townships") == 0
    lag = series(after["risk"], "vcredit_consumer_lag")
    assert {s["topic"] for s in lag} >= {"registry.events"}, "risk holds registry.events partitions"
    assert value(after["risk"], "vcredit_consumer_lag", topic="registry.events") == 0
    assert {s["topic"] for s in series(after["risk"], "vcredit_dlq_messages")} >= {"registry.events.dlq"}
    assert value(after["registry"], "process_resident_memory_bytes") > 0

    # Close of business: one observation per business day closed, on loans only.
    r = await loans.post("/v1/cob", json={"date": str(START + timedelta(days=2))})
    assert r.status_code == 200, r.text
    cob = await scrape(loans)
    assert value(cob, "vcredit_cob_duration_seconds_count") == 2
    assert value(cob, "vcredit_cob_duration_seconds_sum") > 0
    assert "vcredit_cob_duration_seconds_count" not in {n for n, _ in after["risk"]}


async def test_backlog_and_dead_letters_are_counted(system: System) -> None:
    """A record that is no event is parked and shows on the counters and the dead-letter
    gauge; events committed to an outbox and not yet published show as its backlog."""
    risk = system["risk"]
    before = await scrape(risk)
    bus = system.runtimes["risk"].bus
    await bus.publish([Record(system.infra.topic_prefix + "registry.events", "x", b"{not an envelope")])

    async def parked() -> bool:
        return value(await scrape(risk), "vcredit_events_consumed_total", type="malformed") == 1

    await wait_until(parked, what="the malformed record to be dead-lettered")
    after = await scrape(risk)
    assert value(before, "vcredit_events_consumed_total", outcome="dead_lettered") == 0
    assert value(after, "vcredit_events_consumed_total", outcome="dead_lettered") == 1
    assert value(after, "vcredit_dlq_messages", topic="registry.events.dlq") >= 1

    runtime = system.runtimes["registry"]
    relay = next(t for t in runtime._tasks if t.get_name() == "registry-relay")
    relay.cancel()
    assert value(await scrape(system["registry"]), "vcredit_outbox_backlog") == 0
    r = await system["registry"].post("/v1/townships", json={"code": "410102008", "name": "北镇"})
    assert r.status_code == 201
    assert value(await scrape(system["registry"]), "vcredit_outbox_backlog") == 1


async def test_only_metrics_read_may_scrape(infra: Infra) -> None:
    credentials = infra.tmp / "metrics-credentials.json"
    monitoring, _ = add_credential(credentials, "prometheus", "api_key", ("monitoring",))
    bank, _ = add_credential(credentials, "bank", "api_key", ("bank",))
    async with System(infra, ["registry"], credentials_file=credentials) as other:
        registry = other["registry"]
        assert await scrape(registry, Authorization=f"Bearer {monitoring}")
        r = await registry.get("/metrics", headers={"Authorization": f"Bearer {bank}"})
        assert r.status_code == 403 and r.json()["code"] == "FORBIDDEN"
        r = await registry.get("/v1/townships", headers={"Authorization": f"Bearer {monitoring}"})
        assert r.status_code == 403, "the monitoring key reads metrics and nothing else"
        r = await registry.get("/metrics", headers={"Authorization": ""})
        assert r.status_code == 401


async def test_every_answer_carries_its_request_id(system: System) -> None:
    registry = system["registry"]
    mine = await registry.get("/v1/townships", headers={"X-Request-ID": "bank-core:0001"})
    assert mine.headers["x-request-id"] == "bank-core:0001"
    fresh = [(await registry.get("/v1/townships/000000000")).headers["x-request-id"] for _ in range(2)]
    assert len(set(fresh)) == 2 and all(len(f) == 32 for f in fresh), "one new id per request"
    planted = await registry.get("/healthz", headers={"X-Request-ID": "11010119900307663X"})
    assert planted.headers["x-request-id"] != "11010119900307663X"
