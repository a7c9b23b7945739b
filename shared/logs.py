"""Structured logs: one JSON object per line, carrying the service, the request id, the
event id and the trace of whatever the line is about (issue 10).

Personal data never reaches a line: ``shared.redaction`` scrubs every record when it is
created, and the formatter scrubs the tracebacks it formats itself."""

from __future__ import annotations

import logging
import re
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Literal

from opentelemetry import trace
from pythonjsonlogger.json import JsonFormatter

from shared.redaction import install_log_redaction, redact

LogFormat = Literal["json", "text"]

_service: ContextVar[str | None] = ContextVar("vcredit_service", default=None)
_request_id: ContextVar[str | None] = ContextVar("vcredit_request_id", default=None)
_event_id: ContextVar[str | None] = ContextVar("vcredit_event_id", default=None)

# A caller's X-Request-ID is kept only if it cannot smuggle anything into a log line.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")

FIELDS = ("service", "request_id", "event_id", "trace_id", "span_id")
_EMITTED = {"time", "level", "logger", "message", "exc_info", "stack_info", *FIELDS}


def bind_service(name: str) -> None:
    """Name the service for the rest of the current task (its relay, consumer, requests)."""
    _service.set(name)


def bind_request_id(candidate: str) -> str:
    """The request's id for the rest of the current task: the caller's, if sane, else new."""
    # An id number is a fine-looking request id too: what redaction would touch is refused.
    sane = _REQUEST_ID.fullmatch(candidate) and redact(candidate) == candidate
    request_id = candidate if sane else uuid.uuid4().hex
    _request_id.set(request_id)
    return request_id


@contextmanager
def event_context(event_id: str) -> Iterator[None]:
    """Lines logged while handling an event carry its id."""
    token = _event_id.set(event_id)
    try:
        yield
    finally:
        _event_id.reset(token)


class ContextFilter(logging.Filter):
    """Puts the ids of the current task on every record that passes the handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.service = _service.get()
        record.request_id = _request_id.get()
        record.event_id = _event_id.get()
        span = trace.get_current_span().get_span_context()
        record.trace_id = format(span.trace_id, "032x") if span.is_valid else None
        record.span_id = format(span.span_id, "016x") if span.is_valid else None
        return True


class RedactingJsonFormatter(JsonFormatter):
    """The named fields only: ``extra`` values pass no redaction, so they never reach a line
    (uvicorn's ``color_message`` among them)."""

    def add_fields(self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]) -> None:
        super().add_fields(log_data, record, message_dict)
        for key in set(log_data) - _EMITTED:
            del log_data[key]

    # python-json-logger formats exc_info itself rather than using the redacted exc_text.
    def formatException(self, ei: Any) -> str | list[str]:  # type: ignore[override]  # the library's own signature
        return _redacted(super().formatException(ei))

    def formatStack(self, stack_info: str) -> str | list[str]:  # type: ignore[override]
        return _redacted(super().formatStack(stack_info))


def _redacted(text: str | list[str]) -> str | list[str]:
    return redact(text) if isinstance(text, str) else [redact(line) for line in text]


def formatter(fmt: LogFormat) -> logging.Formatter:
    if fmt == "json":
        return RedactingJsonFormatter(
            ["levelname", "name", "message", *FIELDS],
            rename_fields={"levelname": "level", "name": "logger"},
            timestamp="time",  # ISO 8601 in UTC with microseconds
            # Chinese names stay readable, and greppable by the tests that prove they are absent.
            json_ensure_ascii=False,
        )
    return logging.Formatter(
        "%(asctime)s %(levelname)s %(name)s [%(service)s %(request_id)s %(event_id)s]: %(message)s"
    )


def configure_logging(fmt: LogFormat, level: str) -> None:
    """Send every logger of the process, uvicorn's included, to stderr in ``fmt``."""
    install_log_redaction()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(fmt))
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        # uvicorn's own handlers would print a second, unstructured copy.
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
