"""Tracing (issue 10) on both backends: a trace started by an HTTP call reaches the spans of
the services that consume the resulting events, hop after hop; dead letters and their
replay stay in the trace; a malformed traceparent costs the event nothing."""

from __future__ import annotations

import asyncio
import contextlib
import random
import uuid
from collections.abc import Sequence
from contextlib import AsyncExitStack

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bench.probe import PROBE_TYPE, ProbeHandler, applied_count, create_probe_db, probe_consumer, probe_event
from shared.bus.base import Record
from shared.messaging import H_EVENT_ID, H_EVENT_TYPE, list_dead_letters, replay_dead_letters
from shared.tracing import Tracing, export_to, new_provider
from tests.conftest import Infra
from tests.support.http_server import serve
from tests.support.system import System, resident_id
from tests.support.waiting import wait_until as _wait_until

TOWNSHIP, VILLAGE = "410102002", "410102002003"


def _traced(service: str) -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = new_provider(service)
    export_to(provider, exporter, batched=False)
    return provider, exporter


def _traceparent() -> tuple[int, int, str]:
    trace_id, span_id = random.getrandbits(128) | 1, random.getrandbits(64) | 1
    return trace_id, span_id, f"00-{trace_id:032x}-{span_id:016x}-01"


def _spans(exporter: InMemorySpanExporter, kind: SpanKind, trace_id: int, event_type: str) -> list[ReadableSpan]:
    return [
        s
        for s in exporter.get_finished_spans()
        if s.kind == kind
        and s.context is not None
        and s.context.trace_id == trace_id
        and (s.attributes or {}).get("vcredit.event_type") == event_type
    ]


async def _one(
    exporter: InMemorySpanExporter, kind: SpanKind, trace_id: int, event_type: str, what: str
) -> ReadableSpan:
    async def found() -> bool:
        return bool(_spans(exporter, kind, trace_id, event_type))

    await _wait_until(found, seconds=30, what=what)
    [span] = _spans(exporter, kind, trace_id, event_type)
    return span


def _parent_id(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def _span_id(span: ReadableSpan) -> int:
    assert span.context is not None
    return int(span.context.span_id)


async def test_a_trace_started_over_http_reaches_the_services_consuming_its_events(infra: Infra) -> None:
    traced = {name: _traced(name) for name in ("registry", "scoring", "notify")}
    exporters = {name: exporter for name, (_, exporter) in traced.items()}
    providers = {name: provider for name, (provider, _) in traced.items()}
    async with System(infra, ["registry", "scoring", "notify"], tracer_providers=providers) as system:
        registry = system["registry"]
        assert (await registry.post("/v1/townships", json={"code": TOWNSHIP, "name": "南湾乡"})).status_code == 201
        r = await registry.post("/v1/villages", json={"code": VILLAGE, "name": "七里村", "township_code": TOWNSHIP})
        assert r.status_code == 201

        trace_id, caller_span_id, traceparent = _traceparent()
        id_number = resident_id(7)
        body = {
            "id_number": id_number,
            "name": "农户7",
            "village_code": VILLAGE,
            "poor_household": True,
            "profile": {"head_healthy": True, "income_project": True},
        }
        r = await registry.post("/v1/households", json=body, headers={"traceparent": traceparent})
        assert r.status_code == 201, r.text

        # Registry's server span continues the caller's trace.
        [server] = [
            s
            for s in exporters["registry"].get_finished_spans()
            if s.kind == SpanKind.SERVER and s.context is not None and s.context.trace_id == trace_id
        ]
        assert _parent_id(server) == caller_span_id
        assert server.resource.attributes["service.name"] == "vcredit-registry"

        # Hop 1: registry's relay publishes under the request's span; scoring applies under it.
        registered = "registry.household.registered"
        publish = await _one(exporters["registry"], SpanKind.PRODUCER, trace_id, registered, "registry's publish span")
        assert _parent_id(publish) == _span_id(server)
        process = await _one(exporters["scoring"], SpanKind.CONSUMER, trace_id, registered, "scoring's process span")
        assert _parent_id(process) == _span_id(publish)
        assert process.resource.attributes["service.name"] == "vcredit-scoring"
        attributes = process.attributes or {}
        assert attributes["messaging.destination.name"] == infra.topic_prefix + "registry.events"
        assert attributes["messaging.consumer.group.name"] == f"{infra.topic_prefix}vcredit-scoring"
        assert attributes["vcredit.event_id"] == (publish.attributes or {})["vcredit.event_id"]

        # Hop 2: the rating scoring emitted while applying it reaches notify in the same trace.
        changed = "scoring.rating.changed"
        publish2 = await _one(exporters["scoring"], SpanKind.PRODUCER, trace_id, changed, "scoring's publish span")
        assert _parent_id(publish2) == _span_id(process)
        process2 = await _one(exporters["notify"], SpanKind.CONSUMER, trace_id, changed, "notify's process span")
        assert _parent_id(process2) == _span_id(publish2)
        assert process2.resource.attributes["service.name"] == "vcredit-notify"

        # Tracing leaves no personal data in span attributes: a lookup by ID number is masked.
        r = await registry.get("/v1/households", params={"id_number": id_number})
        assert r.status_code == 200, r.text
        for span in exporters["registry"].get_finished_spans():
            assert all(id_number not in str(v) for v in (span.attributes or {}).values()), span.attributes


async def test_a_call_to_another_service_carries_the_trace(infra: Infra, monkeypatch: pytest.MonkeyPatch) -> None:
    """Registry gathers a subject's query log from scoring and loans over HTTP."""
    traced = {name: _traced(name) for name in ("registry", "scoring")}
    providers = {name: provider for name, (provider, _) in traced.items()}
    async with (
        System(infra, ["registry", "scoring", "loans"], tracer_providers=providers) as system,
        AsyncExitStack() as stack,
    ):
        monkeypatch.setenv(
            "VCREDIT_REGISTRY_SCORING_URL", await stack.enter_async_context(serve(system.apps["scoring"]))
        )
        monkeypatch.setenv("VCREDIT_REGISTRY_LOANS_URL", await stack.enter_async_context(serve(system.apps["loans"])))
        registry = system["registry"]
        assert (await registry.post("/v1/townships", json={"code": TOWNSHIP, "name": "南湾乡"})).status_code == 201
        r = await registry.post("/v1/villages", json={"code": VILLAGE, "name": "七里村", "township_code": TOWNSHIP})
        assert r.status_code == 201
        body = {"id_number": resident_id(8), "name": "农户8", "village_code": VILLAGE, "profile": {}}
        r = await registry.post("/v1/households", json=body)
        assert r.status_code == 201, r.text
        household = r.json()["household_id"]

        trace_id, _, traceparent = _traceparent()
        r = await registry.get(f"/v1/households/{household}/queries", headers={"traceparent": traceparent})
        assert r.status_code == 200, r.text
        calls = {
            _span_id(s)
            for s in traced["registry"][1].get_finished_spans()
            if s.kind == SpanKind.CLIENT and s.context is not None and s.context.trace_id == trace_id
        }
        [served] = [
            s
            for s in traced["scoring"][1].get_finished_spans()
            if s.kind == SpanKind.SERVER and s.context is not None and s.context.trace_id == trace_id
        ]
        assert len(calls) == 2, "scoring and loans"
        assert _parent_id(served) in calls


async def test_a_dead_letter_and_its_replay_stay_in_the_trace(infra: Infra) -> None:
    provider, exporter = _traced("probe")
    bus = infra.bus()
    await bus.start()
    topic = infra.topic_prefix + "registry.events"
    await bus.ensure_topics([topic, topic + ".dlq"])
    engine, sessions = await create_probe_db(await infra.database_url("probe"))
    handler = ProbeHandler()
    consumer = probe_consumer(
        sessions,
        bus,
        handler,
        infra.topic_prefix,
        max_attempts=2,
        backoff_seconds=0.01,
        tracing=Tracing("probe", provider),
    )
    task = asyncio.create_task(consumer.run())
    try:
        trace_id, parent_id, traceparent = _traceparent()
        poison = probe_event("V9", 1, poison=True)
        healthy = probe_event("V9", 2)
        await bus.publish(
            [
                Record(topic, poison.key, poison.to_bytes(), _headers(poison.event_id, traceparent=traceparent)),
                # Not a traceparent: the event is applied all the same, in a trace of its own.
                Record(topic, healthy.key, healthy.to_bytes(), _headers(healthy.event_id, traceparent="00-zz-1-01")),
            ]
        )

        async def parked_span() -> bool:
            return bool(_parked(exporter, poison.event_id))

        await _wait_until(parked_span, what="the poison event's span")
        # A batch it came in failed on it (a span of its own), then it was tried alone and parked.
        [parked] = _parked(exporter, poison.event_id)
        assert parked.context is not None and parked.context.trace_id == trace_id
        assert _parent_id(parked) == parent_id
        assert parked.status.status_code == StatusCode.ERROR
        assert [e.name for e in parked.events] == ["exception", "exception"], "each failed try is on the span"

        await _wait_until(lambda: _applied(sessions, 1), what="the healthy event")
        [root] = _by_event(exporter, healthy.event_id)
        assert root.parent is None and root.context is not None and root.context.trace_id != trace_id

        [letter] = await list_dead_letters(bus, "probe", ["registry.events"], topic_prefix=infra.topic_prefix)
        assert letter.message.headers["traceparent"] == traceparent

        handler.refuse_poison = False
        await replay_dead_letters(bus, "probe", ["registry.events"], topic_prefix=infra.topic_prefix)
        await _wait_until(lambda: _applied(sessions, 2), what="the replayed event")
        replayed = [s for s in _by_event(exporter, poison.event_id) if s.status.status_code != StatusCode.ERROR]
        assert [(s.context.trace_id if s.context else None, _parent_id(s)) for s in replayed] == [(trace_id, parent_id)]
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await bus.stop()
        await engine.dispose()
        provider.shutdown()


def _headers(event_id: uuid.UUID, *, traceparent: str) -> dict[str, str]:
    return {H_EVENT_TYPE: PROBE_TYPE, H_EVENT_ID: str(event_id), "traceparent": traceparent}


def _by_event(exporter: InMemorySpanExporter, event_id: uuid.UUID) -> Sequence[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if (s.attributes or {}).get("vcredit.event_id") == str(event_id)]


def _parked(exporter: InMemorySpanExporter, event_id: uuid.UUID) -> list[ReadableSpan]:
    return [s for s in _by_event(exporter, event_id) if (s.attributes or {}).get("vcredit.dead_lettered") is True]


async def _applied(sessions: async_sessionmaker[AsyncSession], n: int) -> bool:
    return await applied_count(sessions) >= n
