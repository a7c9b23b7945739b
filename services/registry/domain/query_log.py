"""One subject's query log gathered from several services, newest first, in pages. Pure.

Each service pages its own log by its row numbers; the gathered listing is a merge of those
sequences by time, and its cursor remembers where it stands in each of them, so every row
appears exactly once however the pages fall, even when two services logged at the same
instant.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from shared.audit import QueryOut, QueryPage
from shared.db import BIGINT_MAX


@dataclass(frozen=True)
class Cursor:
    after: Mapping[str, str] = field(default_factory=dict)  # source -> its own `after`; absent = from the top
    done: frozenset[str] = frozenset()  # sources with nothing left


class BadCursor(ValueError):
    pass


def encode(cursor: Cursor) -> str:
    raw = json.dumps({"after": dict(sorted(cursor.after.items())), "done": sorted(cursor.done)}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _row_number(value: object) -> bool:
    # ASCII digits (isdigit() is also true of "²", which int() refuses) within a bigint.
    return (
        isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 19 and int(value) <= BIGINT_MAX
    )


def decode(text: str | None, sources: Sequence[str]) -> Cursor:
    if text is None:
        return Cursor()
    try:
        data = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        after, done = data["after"], data["done"]
    except (ValueError, TypeError, KeyError, binascii.Error):
        raise BadCursor("not a cursor this endpoint issued") from None
    if (
        not isinstance(after, dict)
        or not isinstance(done, list)
        or not set(after) | set(done) <= set(sources)
        or not all(_row_number(v) for v in after.values())
    ):
        raise BadCursor("not a cursor this endpoint issued")
    return Cursor(after, frozenset(done))


def merge(pages: Mapping[str, QueryPage], cursor: Cursor, limit: int, sources: Sequence[str]) -> QueryPage:
    """Take the ``limit`` newest rows from the sources' next pages. ``pages`` has one page
    (of at least ``limit`` rows unless it is the source's last) per source not done."""
    rank = {s: i for i, s in enumerate(sources)}
    heads = {s: 0 for s in pages}
    taken: list[QueryOut] = []
    while len(taken) < limit:
        live = [s for s in pages if heads[s] < len(pages[s].items)]
        if not live:
            break
        # Newest first; at the same instant, a fixed order of sources decides.
        best = max(live, key=lambda s: (pages[s].items[heads[s]].queried_at, -rank[s]))
        taken.append(pages[best].items[heads[best]])
        heads[best] += 1
    after = dict(cursor.after)
    done = set(cursor.done)
    for source, page in pages.items():
        used = heads[source]
        if used == len(page.items) and page.next_after is None:
            done.add(source)
            after.pop(source, None)
        elif used:
            after[source] = str(page.items[used - 1].query_id)
    more = any(s not in done for s in sources)
    return QueryPage(items=taken, next_after=encode(Cursor(after, frozenset(done))) if more else None)
