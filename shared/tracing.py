"""OpenTelemetry tracing (issue 10): one trace from an API call to every service its events
reach. Off by default (VCREDIT_TRACING=off); VCREDIT_TRACING=console|otlp turns it on.

How the trace context travels:
- HTTP: each service's FastAPI app makes a SERVER span per request, child of an incoming W3C
  ``traceparent``; calls to other services (``instrument_client``) carry it on.
- ``emit()`` stores the current context in the outbox row (``outbox.trace_context``, the W3C
  carrier as JSON): the relay publishes the row later, from another task, where the
  request's context is gone.
- The relay makes a PRODUCER span "<topic> publish" per record, child of the stored
  context, and sends that span's context as the record's ``traceparent``/``tracestate``
  headers.
- The consumer makes a CONSUMER span "<topic> process" per event, child of the headers'
  context; events its handler emits are stored with that span's context, and so on.
- Dead letters keep the headers, and replaying them keeps them too.

Each service has its own TracerProvider (resource ``service.name=vcredit-<service>``), never
the global one: ``vcredit up`` runs all five in one process, and they must still show up as
five services. Off, no SDK provider exists and nothing is instrumented: what remains is a
context lookup per ``emit()`` and a shared null context manager per consumed event.

Tracing never fails the work it observes: a malformed header starts a new root span, and
span processors catch their exporter's errors.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import traceback
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import TextMapPropagator
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from shared.bus.base import Message, Record
from shared.redaction import redact

if TYPE_CHECKING:
    import httpx
    from fastapi import FastAPI, Request
    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

    from shared.settings import CommonSettings

log = logging.getLogger(__name__)

TRACE_HEADERS = ("traceparent", "tracestate")
# W3C trace context only, whatever OTEL_PROPAGATORS says: baggage could carry anything into
# event headers and outbox rows, which outlive the request by days.
PROPAGATOR: TextMapPropagator = TraceContextTextMapPropagator()
# The embedded bus keeps Kafka's model (topics, partitions, offsets, groups).
MESSAGING_SYSTEM = "kafka"
# Probes every few seconds would drown the traces (regexes, searched in the URL).
DEFAULT_EXCLUDED_URLS = "/healthz,/readyz"

_NOT_TRACED: contextlib.AbstractContextManager[None] = contextlib.nullcontext()


def current_carrier() -> str | None:
    """The current trace context as ``outbox.trace_context`` stores it; None outside a span."""
    if not trace.get_current_span().get_span_context().is_valid:
        return None
    carrier: dict[str, str] = {}
    PROPAGATOR.inject(carrier)
    return json.dumps(carrier, separators=(",", ":")) if carrier else None


def parse_carrier(stored: str | None) -> dict[str, str]:
    """The trace headers of a stored carrier; {} for None or anything unreadable."""
    if not stored:
        return {}
    try:
        value = json.loads(stored)
    except ValueError:
        return {}
    if not isinstance(value, dict):
        return {}
    return {k: v for k, v in value.items() if k in TRACE_HEADERS and isinstance(v, str)}


def trace_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The W3C trace headers among a message's."""
    return {k: v for k, v in headers.items() if k in TRACE_HEADERS}


def context_of(headers: Mapping[str, str]) -> Context:
    """The remote parent the headers name; an empty context (so a new root) when they name
    none or cannot be read."""
    try:
        # Extracted onto an empty context, never the current one: no headers, no parent.
        return PROPAGATOR.extract(trace_headers(headers), context=Context())
    except Exception:
        log.debug("unreadable trace headers %r; starting a new trace", headers, exc_info=True)
        return Context()


def provider_from_settings(service: str, common: CommonSettings) -> TracerProvider | None:
    """The service's provider as VCREDIT_TRACING says; None when tracing is off."""
    if common.tracing == "off":
        return None
    # Imported here: with tracing off the SDK and exporters are never loaded.
    from opentelemetry.sdk.trace.export import ConsoleSpanExporter

    exporter: SpanExporter
    if common.tracing == "console":
        exporter = ConsoleSpanExporter(service_name=f"vcredit-{service}")
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter()
    provider = new_provider(service, common.tracing_sample_ratio)
    export_to(provider, exporter)
    return provider


def new_provider(service: str, sample_ratio: float = 1.0) -> TracerProvider:
    """A provider without processors, named for the service (tests export to memory)."""
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    if not 0 <= sample_ratio <= 1:
        raise ValueError(f"sample ratio {sample_ratio} is not between 0 and 1")
    return TracerProvider(
        resource=Resource.create({SERVICE_NAME: f"vcredit-{service}"}),
        # ParentBased: a trace started upstream is kept or dropped whole, not per service.
        sampler=ParentBased(TraceIdRatioBased(sample_ratio)),
        # ServiceRuntime.stop flushes it; an atexit hook per provider would flush again.
        shutdown_on_exit=False,
    )


def export_to(provider: TracerProvider, exporter: SpanExporter, *, batched: bool = True) -> None:
    """Send the provider's spans to ``exporter``, redacted. Batched, in the SDK's thread, an
    exporter that is slow or away never holds a request; tests export synchronously."""
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    # Duck-typed: subclassing SpanExporter would load the SDK with tracing off.
    redacting = cast("SpanExporter", RedactingExporter(exporter))
    provider.add_span_processor(BatchSpanProcessor(redacting) if batched else SimpleSpanProcessor(redacting))


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, tuple | list):
        return type(value)(_clean(v) for v in value)
    return value


def _redacted(span: ReadableSpan) -> ReadableSpan:
    """A copy of the span whose strings are masked as log lines are: a URL may hold an ID
    number (``?id_number=``), an exception that instrumentation recorded may quote one."""
    from opentelemetry.sdk.trace import Event, ReadableSpan

    def attrs(values: Mapping[str, Any] | None) -> dict[str, Any]:
        return {k: _clean(v) for k, v in (values or {}).items()}

    status = span.status
    return ReadableSpan(
        name=span.name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=attrs(span.attributes),
        events=[Event(e.name, attrs(e.attributes), e.timestamp) for e in span.events],
        links=span.links,
        kind=span.kind,
        status=Status(status.status_code, _clean(status.description)) if status.description else status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


class RedactingExporter:
    """Wraps an exporter: every span leaves redacted, whatever instrumentation put on it."""

    def __init__(self, inner: SpanExporter) -> None:
        self.inner = inner

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self.inner.export([_redacted(span) for span in spans])

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)


class Tracing:
    """One service's tracing. ``provider`` None: off, and every method is a cheap no-op."""

    def __init__(self, service: str, provider: TracerProvider | None = None) -> None:
        self.service = service
        self.provider = provider
        self._tracer = provider.get_tracer("vcredit") if provider is not None else None
        self._shut_down = False

    @classmethod
    def from_settings(cls, service: str, common: CommonSettings) -> Tracing:
        return cls(service, provider_from_settings(service, common))

    @property
    def enabled(self) -> bool:
        return self._tracer is not None

    def instrument_app(self, app: FastAPI) -> None:
        """SERVER spans for the app's requests, children of an incoming ``traceparent``."""
        if self.provider is None:
            return  # no middleware at all: off costs nothing per request
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
        from opentelemetry.metrics import NoOpMeterProvider

        FastAPIInstrumentor.instrument_app(
            app,
            tracer_provider=self.provider,
            # Traces only: the service's metrics are its own (not OpenTelemetry's).
            meter_provider=NoOpMeterProvider(),
            excluded_urls=os.environ.get("OTEL_PYTHON_FASTAPI_EXCLUDED_URLS", DEFAULT_EXCLUDED_URLS),
            # Not a span per ASGI message: notify's SSE stream sends one every event.
            exclude_spans=["receive", "send"],
        )

    def instrument_client(self, client: httpx.AsyncClient) -> None:
        """CLIENT spans for the client's calls, which carry the trace to the callee."""
        if self.provider is None:
            return
        from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
        from opentelemetry.metrics import NoOpMeterProvider

        HTTPXClientInstrumentor.instrument_client(
            client,
            tracer_provider=self.provider,
            meter_provider=NoOpMeterProvider(),
        )

    @contextlib.contextmanager
    def publishing(self, records: Sequence[Record], stored: Sequence[str | None]) -> Iterator[list[Record]]:
        """The records with trace headers, inside a PRODUCER span each (child of the context
        its outbox row stored) that ends when the block does, i.e. once the bus acknowledged."""
        if self._tracer is None:
            if not any(stored):
                yield list(records)
                return
            # Rows written while tracing was on still carry their trace on.
            yield [
                dataclasses.replace(r, headers={**r.headers, **carrier}) if (carrier := parse_carrier(s)) else r
                for r, s in zip(records, stored, strict=True)
            ]
            return
        spans: list[trace.Span] = []
        traced: list[Record] = []
        try:
            for record, row_context in zip(records, stored, strict=True):
                span = self._tracer.start_span(
                    f"{record.topic} publish",
                    context=context_of(parse_carrier(row_context)),
                    kind=SpanKind.PRODUCER,
                    attributes=_producer_attributes(record),
                )
                spans.append(span)
                headers = dict(record.headers)
                PROPAGATOR.inject(headers, context=trace.set_span_in_context(span))
                traced.append(dataclasses.replace(record, headers=headers))
        except Exception:
            log.warning("could not trace a relay batch; publishing it untraced", exc_info=True)
            traced = list(records)
        try:
            yield traced
        except Exception as exc:
            for span in spans:
                _record(span, exc, set_status=True)
            raise
        finally:
            for span in spans:
                span.end()

    def consuming(
        self, message: Message, group: str, event_type: str | None, event_id: str | None
    ) -> contextlib.AbstractContextManager[None]:
        """A CONSUMER span around applying one event, current in the block so the events the
        handler emits continue the trace. Exceptions are recorded on it and go on."""
        if self._tracer is None:
            return _NOT_TRACED
        return self._consuming(message, group, event_type, event_id)

    @contextlib.contextmanager
    def _consuming(self, message: Message, group: str, event_type: str | None, event_id: str | None) -> Iterator[None]:
        assert self._tracer is not None
        attributes: dict[str, str | int] = {
            "messaging.system": MESSAGING_SYSTEM,
            "messaging.operation.type": "process",
            "messaging.destination.name": message.topic,
            "messaging.destination.partition.id": str(message.partition),
            "messaging.kafka.message.offset": message.offset,
            "messaging.consumer.group.name": group,
        }
        if event_type is not None:
            attributes["vcredit.event_type"] = event_type
        if event_id is not None:
            attributes["vcredit.event_id"] = event_id
            attributes["messaging.message.id"] = event_id
        with self._tracer.start_as_current_span(
            f"{message.topic} process",
            context=context_of(message.headers),
            kind=SpanKind.CONSUMER,
            attributes=attributes,
            # Recorded below, redacted.
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                yield
            except Exception as exc:
                _record(span, exc, set_status=True)
                raise

    def shutdown(self) -> None:
        """Flush and close the exporter (blocking: run it in a thread)."""
        if self.provider is None or self._shut_down:
            return
        self._shut_down = True
        self.provider.shutdown()


def _producer_attributes(record: Record) -> dict[str, str]:
    attributes = {
        "messaging.system": MESSAGING_SYSTEM,
        "messaging.operation.type": "send",
        "messaging.destination.name": record.topic,
    }
    # The relay's headers (shared.messaging.H_EVENT_TYPE, H_EVENT_ID; it imports this module).
    for header, attribute in (("vcredit.type", "vcredit.event_type"), ("vcredit.event_id", "vcredit.event_id")):
        if header in record.headers:
            attributes[attribute] = record.headers[header]
    return attributes


def failed_try(exc: BaseException) -> None:
    """Note a failed try of a handler on the current span; the event is retried, so the
    span's status waits for the outcome (``dead_lettered``)."""
    _record(trace.get_current_span(), exc, set_status=False)


def dead_lettered(error: str) -> None:
    """Mark the current span: its event was parked in the dead-letter topic."""
    span = trace.get_current_span()
    if span.is_recording():
        span.set_attribute("vcredit.dead_lettered", True)
        span.set_status(Status(StatusCode.ERROR, redact(error)[:500]))


def _record(span: trace.Span, exc: BaseException, *, set_status: bool) -> None:
    """The exception as an event of the span, redacted as logs are: a handler's error may
    quote personal data."""
    if not span.is_recording():
        return
    try:
        message = redact(str(exc))
        stacktrace = redact("".join(traceback.format_exception(exc)))
        span.record_exception(exc, attributes={"exception.message": message, "exception.stacktrace": stacktrace})
        if set_status:
            span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {message}"[:500]))
    except Exception:
        log.debug("could not record a failure on a span", exc_info=True)


def instrument_client_for(request: Request, client: httpx.AsyncClient) -> None:
    """Calls made while serving ``request`` carry its trace on (create_app keeps the
    service's Tracing in ``app.state.tracing``)."""
    tracing = getattr(request.app.state, "tracing", None)
    if isinstance(tracing, Tracing):
        tracing.instrument_client(client)
