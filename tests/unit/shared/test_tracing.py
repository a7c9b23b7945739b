"""shared/tracing.py on its own: off means no SDK at all, the stored carrier round-trips,
settings are validated, and nothing a header or an exporter does fails the work traced."""

from __future__ import annotations

import json
from collections.abc import Sequence

import pytest
from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode
from pydantic import ValidationError

from shared.bus.base import Message, Record
from shared.settings import CommonSettings
from shared.tracing import (
    Tracing,
    context_of,
    current_carrier,
    export_to,
    new_provider,
    parse_carrier,
    provider_from_settings,
)

TRACE_ID = 0x0AF7651916CD43DD8448EB211C80319C
PARENT_ID = 0xB7AD6B7169203331
TRACEPARENT = f"00-{TRACE_ID:032x}-{PARENT_ID:016x}-01"


def _traced(service: str = "scoring", ratio: float = 1.0) -> tuple[Tracing, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = new_provider(service, ratio)
    export_to(provider, exporter, batched=False)
    return Tracing(service, provider), exporter


def _message(headers: dict[str, str]) -> Message:
    return Message(topic="registry.events", partition=2, offset=41, key="V1", value=b"{}", headers=headers)


def _consume(tracing: Tracing, headers: dict[str, str]) -> None:
    with tracing.consuming(_message(headers), "vcredit-scoring", "registry.household.registered", "e-1"):
        pass


def test_off_by_default_builds_no_sdk_provider_and_instruments_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VCREDIT_TRACING", raising=False)
    common = CommonSettings()
    assert (common.tracing, common.tracing_sample_ratio) == ("off", 1.0)
    assert provider_from_settings("registry", common) is None
    tracing = Tracing.from_settings("registry", common)
    assert not tracing.enabled

    app = FastAPI()
    build = app.build_middleware_stack
    tracing.instrument_app(app)
    assert app.build_middleware_stack == build, "no middleware: off costs nothing per request"
    assert not getattr(app, "_is_instrumented_by_opentelemetry", False)

    records = [Record("registry.events", "V1", b"{}", {"vcredit.type": "x"})]
    with tracing.publishing(records, [None]) as published:
        assert published == records
    with tracing.consuming(_message({"traceparent": TRACEPARENT}), "g", "t", "e"):
        assert not trace.get_current_span().get_span_context().is_valid, "no span is made"
    tracing.shutdown()


def test_settings_choose_the_exporter_and_name_the_service(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VCREDIT_TRACING", "console")
    monkeypatch.setenv("VCREDIT_TRACING_SAMPLE_RATIO", "0.25")
    provider = provider_from_settings("loans", CommonSettings())
    assert isinstance(provider, TracerProvider)
    try:
        assert provider.resource.attributes["service.name"] == "vcredit-loans"
        assert "TraceIdRatioBased{0.25}" in provider.sampler.get_description()
        assert provider is not trace.get_tracer_provider(), "each service has its own, not the global one"
    finally:
        provider.shutdown()
    monkeypatch.setenv("VCREDIT_TRACING", "otlp")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    otlp = provider_from_settings("loans", CommonSettings())
    assert otlp is not None
    otlp.shutdown()


@pytest.mark.parametrize(
    ("variable", "value"), [("VCREDIT_TRACING_SAMPLE_RATIO", "1.5"), ("VCREDIT_TRACING", "jaeger")]
)
def test_invalid_tracing_settings_are_refused(monkeypatch: pytest.MonkeyPatch, variable: str, value: str) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError, match=variable.removeprefix("VCREDIT_").lower()):
        CommonSettings()


def test_sample_ratio_is_validated_and_a_sampled_caller_is_followed() -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        new_provider("risk", -0.1)
    tracing, exporter = _traced("risk", ratio=0.0)
    _consume(tracing, {})
    assert exporter.get_finished_spans() == (), "ratio 0: new traces are dropped"
    _consume(tracing, {"traceparent": TRACEPARENT})
    [span] = exporter.get_finished_spans()
    assert span.context is not None and span.context.trace_id == TRACE_ID, "a sampled caller's trace is kept"


def test_the_stored_carrier_round_trips() -> None:
    assert current_carrier() is None, "outside a span nothing is stored"
    tracing, _ = _traced()
    provider = tracing.provider
    assert provider is not None
    with provider.get_tracer("t").start_as_current_span("request") as span:
        stored = current_carrier()
    assert stored is not None
    assert set(json.loads(stored)) == {"traceparent"}
    restored = trace.get_current_span(context_of(parse_carrier(stored))).get_span_context()
    assert (restored.trace_id, restored.span_id, restored.is_remote) == (
        span.get_span_context().trace_id,
        span.get_span_context().span_id,
        True,
    )


@pytest.mark.parametrize("stored", [None, "", "not json", "[1, 2]", '{"traceparent": 7}', '{"baggage": "k=v"}'])
def test_an_unreadable_stored_carrier_is_no_carrier(stored: str | None) -> None:
    assert parse_carrier(stored) == {}


def test_the_relay_publishes_each_record_under_a_producer_span_child_of_its_stored_context() -> None:
    tracing, exporter = _traced("registry")
    stored = json.dumps({"traceparent": TRACEPARENT})
    records = [
        Record("registry.events", "V1", b"{}", {"vcredit.type": "registry.village.created", "vcredit.event_id": "e-1"}),
        Record("registry.events", "V2", b"{}", {"vcredit.type": "registry.village.created", "vcredit.event_id": "e-2"}),
    ]
    with tracing.publishing(records, [stored, None]) as published:
        assert exporter.get_finished_spans() == (), "the spans last until the bus acknowledged"
    first, second = sorted(exporter.get_finished_spans(), key=lambda s: str((s.attributes or {})["vcredit.event_id"]))
    assert first.kind == SpanKind.PRODUCER and first.name == "registry.events publish"
    assert first.context is not None and first.context.trace_id == TRACE_ID
    assert first.parent is not None and first.parent.span_id == PARENT_ID
    assert second.parent is None, "an event emitted outside any trace starts one"
    assert published[0].headers["traceparent"] == f"00-{TRACE_ID:032x}-{first.context.span_id:016x}-01"
    assert published[0].headers["vcredit.type"] == "registry.village.created"

    off = Tracing("registry")
    with off.publishing(records, [stored, None]) as forwarded:
        assert forwarded[0].headers["traceparent"] == TRACEPARENT, "rows stored while tracing was on keep it"
        assert forwarded[1] is records[1]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"traceparent": "garbage"},
        {"traceparent": "00-00000000000000000000000000000000-0000000000000000-01"},
        {"traceparent": TRACEPARENT.replace("00-", "zz-", 1), "tracestate": "=,=,\x00"},
    ],
)
def test_a_missing_or_malformed_traceparent_starts_a_new_trace(headers: dict[str, str]) -> None:
    tracing, exporter = _traced()
    _consume(tracing, headers)
    [span] = exporter.get_finished_spans()
    assert span.parent is None and span.context is not None and span.context.trace_id != TRACE_ID
    assert span.kind == SpanKind.CONSUMER and span.name == "registry.events process"
    assert (span.attributes or {})["messaging.kafka.message.offset"] == 41


class _BrokenExporter(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        raise ConnectionError("collector away")


def test_an_exporter_error_does_not_fail_the_handler() -> None:
    provider = new_provider("scoring")
    export_to(provider, _BrokenExporter(), batched=False)
    tracing = Tracing("scoring", provider)
    applied = []
    with tracing.consuming(_message({"traceparent": TRACEPARENT}), "g", "t", "e"):
        applied.append(1)
    assert applied == [1]


def test_a_handler_error_goes_on_and_is_recorded_without_personal_data() -> None:
    tracing, exporter = _traced()
    with (
        pytest.raises(RuntimeError, match="110101199003074514"),
        tracing.consuming(_message({"traceparent": TRACEPARENT}), "g", "t", "e"),
    ):
        raise RuntimeError("no household 110101199003074514")
    [span] = exporter.get_finished_spans()
    assert span.status.status_code == StatusCode.ERROR
    [event] = span.events
    assert event.name == "exception"
    recorded = json.dumps([dict(event.attributes or {}), span.status.description])
    assert "110101199003074514" not in recorded and "no household" in recorded


def test_every_exported_span_is_redacted_whoever_recorded_what() -> None:
    """Instrumentation records URLs and unhandled exceptions as it sees them (FastAPI's on a
    500); the exporter wrapper masks ID numbers in attributes, events and the status."""
    id_number = "11010119900307663X"
    tracing, exporter = _traced()
    assert tracing.provider is not None
    tracer = tracing.provider.get_tracer("test")
    with tracer.start_as_current_span("GET /v1/households", record_exception=False) as span:
        span.set_attribute("url.query", f"id_number={id_number}")
        span.set_attribute("vcredit.ids", [id_number, "plain"])
        span.set_attribute("http.response.status_code", 500)
        span.record_exception(ValueError(f"duplicate {id_number}"))
        span.set_status(Status(StatusCode.ERROR, f"ValueError: duplicate {id_number}"))
    (exported,) = exporter.get_finished_spans()
    assert id_number not in repr(
        (dict(exported.attributes or {}), [dict(e.attributes or {}) for e in exported.events], exported.status)
    )
    assert (exported.attributes or {})["url.query"] == "id_number=110***********663X"
    assert (exported.attributes or {})["vcredit.ids"] == ("110***********663X", "plain")
    assert (exported.attributes or {})["http.response.status_code"] == 500
    assert "duplicate 110***********663X" in str((exported.events[0].attributes or {})["exception.message"])
    assert exported.status.description == "ValueError: duplicate 110***********663X"
    assert exported.context == span.get_span_context(), "the same span, only its strings masked"
