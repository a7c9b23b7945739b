"""The query audit's pure parts: the stated purpose (X-Query-Purpose), and the subject's
log gathered from several services in pages (every row exactly once, newest first)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.registry.domain.query_log import BadCursor, Cursor, decode, encode, merge
from shared.audit import MAX_PURPOSE, QueryOut, QueryPage, parse_after, parse_purpose
from shared.problems import Problem

SOURCES = ("registry", "scoring", "loans")


def _refusal(raw: str | None) -> str:
    with pytest.raises(Problem) as caught:
        parse_purpose(raw)
    assert caught.value.status == 422 and caught.value.extra == {"field": "X-Query-Purpose"}
    return caught.value.code


def test_purpose_is_required_and_not_blank() -> None:
    assert _refusal(None) == "QUERY_PURPOSE_REQUIRED"
    assert _refusal("") == "QUERY_PURPOSE_REQUIRED"
    assert _refusal("   ") == "QUERY_PURPOSE_REQUIRED"
    assert _refusal("%20%20") == "QUERY_PURPOSE_INVALID", "blank once decoded"


def test_purpose_is_percent_decoded_utf8_or_raw_utf8() -> None:
    assert parse_purpose(quote("贷前审查")) == "贷前审查"
    assert parse_purpose(" loan%20review ") == "loan review"
    # A raw UTF-8 header arrives decoded as Latin-1 by the server.
    assert parse_purpose("贷后管理".encode().decode("latin-1")) == "贷后管理"
    assert parse_purpose("100% sure") == "100% sure", "a stray % that is no escape stays"
    assert _refusal("%FF%FE") == "QUERY_PURPOSE_INVALID"
    assert _refusal("caf\xe9") == "QUERY_PURPOSE_INVALID", "Latin-1 that is not UTF-8"


def test_purpose_is_bounded_and_single_line() -> None:
    assert parse_purpose("x" * MAX_PURPOSE) == "x" * MAX_PURPOSE
    assert _refusal("x" * (MAX_PURPOSE + 1)) == "QUERY_PURPOSE_INVALID"
    assert parse_purpose(quote("审" * MAX_PURPOSE)) == "审" * MAX_PURPOSE, "characters, not bytes"
    assert _refusal(quote("审" * (MAX_PURPOSE + 1))) == "QUERY_PURPOSE_INVALID"
    for forged in ("a%0Ab", "a%0Db", "a%00b", "a%E2%80%AEb"):  # newline, CR, NUL, right-to-left override
        assert _refusal(forged) == "QUERY_PURPOSE_INVALID", forged


def test_own_cursor_is_a_row_number() -> None:
    assert parse_after(None) is None and parse_after("17") == 17
    for bad in ("-1", "1.5", "x", "", "²", "١٢", "１２", " 12", "1_2", str(2**63)):
        with pytest.raises(Problem):  # "²" passed isdigit() and int() raised: a 500
            parse_after(bad)


# --- the gathered log -----------------------------------------------------------------------

T0 = datetime(2026, 11, 21, 8, tzinfo=UTC)


def _row(service: str, query_id: int, second: int) -> QueryOut:
    return QueryOut(
        service=service,
        query_id=query_id,
        queried_at=T0 + timedelta(seconds=second),
        principal="bank",
        roles=["bank"],
        endpoint="GET /v1/x/{id}",
        resource_id="r",
        purpose="p",
    )


def _own_page(log: list[QueryOut], limit: int, after: str | None) -> QueryPage:
    """What a service's own endpoint answers: its rows newest (highest id) first."""
    rows = [r for r in sorted(log, key=lambda r: -r.query_id) if after is None or r.query_id < int(after)]
    more = len(rows) > limit
    rows = rows[:limit]
    return QueryPage(items=rows, next_after=str(rows[-1].query_id) if more else None)


def _walk(logs: dict[str, list[QueryOut]], limit: int) -> list[list[QueryOut]]:
    pages, token = [], None
    for _ in range(1000):
        cursor = decode(token, SOURCES)
        fetched = {s: _own_page(logs[s], limit, cursor.after.get(s)) for s in SOURCES if s not in cursor.done}
        page = merge(fetched, cursor, limit, SOURCES)
        assert len(page.items) <= limit
        pages.append(page.items)
        token = page.next_after
        if token is None:
            return pages
    raise AssertionError("paging never ended")


def test_merge_interleaves_services_by_time() -> None:
    logs = {
        "registry": [_row("registry", 1, 0), _row("registry", 2, 30)],
        "scoring": [_row("scoring", 1, 10), _row("scoring", 2, 40)],
        "loans": [_row("loans", 1, 20)],
    }
    (only,) = _walk(logs, 10)
    assert [(r.service, r.query_id) for r in only] == [
        ("scoring", 2),
        ("registry", 2),
        ("loans", 1),
        ("scoring", 1),
        ("registry", 1),
    ]
    pages = _walk(logs, 2)
    assert [[(r.service, r.query_id) for r in p] for p in pages] == [
        [("scoring", 2), ("registry", 2)],
        [("loans", 1), ("scoring", 1)],
        [("registry", 1)],
    ]


def test_empty_log_is_one_empty_last_page() -> None:
    assert _walk({s: [] for s in SOURCES}, 5) == [[]]


@settings(max_examples=300)
@given(
    st.dictionaries(
        st.sampled_from(SOURCES), st.lists(st.integers(min_value=0, max_value=20), max_size=25), min_size=0
    ),
    st.integers(min_value=1, max_value=7),
)
def test_paging_yields_every_row_once_newest_first(seconds: dict[str, list[int]], limit: int) -> None:
    # Each service numbers its rows in time order; equal seconds across services are ties.
    logs = {s: [_row(s, i + 1, sec) for i, sec in enumerate(sorted(seconds.get(s, [])))] for s in SOURCES}
    rows = [r for page in _walk(logs, limit) for r in page]
    assert sorted((r.service, r.query_id) for r in rows) == sorted(
        (r.service, r.query_id) for log in logs.values() for r in log
    )
    times = [r.queried_at for r in rows]
    assert times == sorted(times, reverse=True)


def test_cursor_round_trips_and_refuses_forgeries() -> None:
    cursor = Cursor({"scoring": "12", "registry": "3"}, frozenset({"loans"}))
    again = decode(encode(cursor), SOURCES)
    assert (dict(again.after), again.done) == ({"scoring": "12", "registry": "3"}, frozenset({"loans"}))
    forged = [Cursor({"loans": v}) for v in ("-1", "²", "١٢", str(2**63), "9" * 5000)]
    for bad in ("x", "e30", encode(Cursor({"risk": "1"})), *map(encode, forged)):
        with pytest.raises(BadCursor):
            decode(bad, SOURCES)
