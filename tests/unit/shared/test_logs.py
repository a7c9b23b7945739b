"""Structured logs (shared/logs.py): one JSON object per line with the ids of the work it is
about, and no personal data, tracebacks included."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from shared.logs import ContextFilter, bind_request_id, bind_service, event_context, formatter
from shared.redaction import install_log_redaction

ID_NUMBER = "11010119900307663X"


@pytest.fixture
def lines() -> Iterator[io.StringIO]:
    install_log_redaction()
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter("json"))
    handler.addFilter(ContextFilter())
    logger = logging.getLogger("vcredit.test.logs")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield out
    finally:
        logger.removeHandler(handler)


def records(out: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_a_line_is_json_with_the_ids_of_its_work(lines: io.StringIO) -> None:
    async def request() -> None:
        bind_service("loans")
        bind_request_id("req-42")
        with event_context("9b1d3c1e-0000-4000-8000-000000000001"):
            logging.getLogger("vcredit.test.logs").info("applied %s", "a repayment")
        logging.getLogger("vcredit.test.logs").warning("after the event")

    asyncio.run(request())
    first, second = records(lines)
    assert first["message"] == "applied a repayment"
    assert (first["level"], first["logger"], first["service"]) == ("INFO", "vcredit.test.logs", "loans")
    assert first["request_id"] == "req-42"
    assert first["event_id"] == "9b1d3c1e-0000-4000-8000-000000000001"
    assert str(first["time"]).endswith("+00:00")
    assert second["event_id"] is None, "the event's id ends with its handling"
    assert second["request_id"] == "req-42"


def test_tasks_do_not_share_ids(lines: io.StringIO) -> None:
    async def one(request_id: str) -> None:
        bind_request_id(request_id)
        await asyncio.sleep(0)
        logging.getLogger("vcredit.test.logs").info("served")

    async def both() -> None:
        await asyncio.gather(one("a"), one("b"))

    asyncio.run(both())
    assert sorted(str(r["request_id"]) for r in records(lines)) == ["a", "b"]


def test_the_current_trace_is_on_the_line(lines: io.StringIO) -> None:
    context = SpanContext(
        trace_id=0x4BF92F3577B34DA6A3CE929D0E0E4736,
        span_id=0x00F067AA0BA902B7,
        is_remote=False,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
    )
    with trace.use_span(NonRecordingSpan(context)):
        logging.getLogger("vcredit.test.logs").info("traced")
    logging.getLogger("vcredit.test.logs").info("untraced")
    traced, untraced = records(lines)
    assert (traced["trace_id"], traced["span_id"]) == ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7")
    assert (untraced["trace_id"], untraced["span_id"]) == (None, None)


def test_no_personal_data_in_messages_or_tracebacks(lines: io.StringIO) -> None:
    log = logging.getLogger("vcredit.test.logs")
    log.info("household %s registered", ID_NUMBER)
    try:
        raise ValueError(f"duplicate id number {ID_NUMBER}")
    except ValueError:
        log.exception("import failed for %s", ID_NUMBER)
    log.info("stack", stack_info=True, extra={"note": ID_NUMBER})
    text = lines.getvalue()
    assert ID_NUMBER not in text
    registered, failed, stack = records(lines)
    assert "note" not in stack and "stack_info" in stack, "extras pass no redaction: they are dropped"
    assert registered["message"] == "household 110***********663X registered"
    assert "ValueError: duplicate id number 110***********663X" in str(failed["exc_info"])


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("0af7651916cd43dd8448eb211c80319c", True),
        ("bank-core:2026-11-21.000017", True),
        ("", False),
        ("a" * 65, False),
        ("line\nbreak", False),
        ('quote"d', False),
        (ID_NUMBER, False),  # a caller must not plant personal data in every line of a request
    ],
)
def test_a_callers_request_id_is_kept_only_if_safe(given: str, kept: bool) -> None:
    async def bind() -> str:
        return bind_request_id(given)

    got = asyncio.run(bind())
    assert (got == given) is kept
    if not kept:
        assert len(got) == 32 and got.isalnum()


def test_text_format_for_a_terminal() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello", None, None)
    ContextFilter().filter(record)
    assert formatter("text").format(record).endswith("INFO x [None None None]: hello")
