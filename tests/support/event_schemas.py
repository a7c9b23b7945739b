"""Every event the services emit in a test, held to the contract they publish: the JSON Schema
of its type and version (``GET /v1/schemas/...``, shared/asyncapi.py) and the partition key
the catalogue declares (shared/events.py ``PartitionKey``), on the topic of its source.

``System`` (tests/support/system.py) reads every service's outbox when a test leaves it
without an error and checks each event here, once: the outbox is where every emitted event
passes, whichever code path emitted it. The counts are printed at the end of the run
(tests/conftest.py), so a run that checked nothing shows it.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from shared.asyncapi import json_schema
from shared.events import catalogue, topic_of

# Event types per number of events checked, across the run.
CHECKED: Counter[str] = Counter()
_seen: set[str] = set()


@dataclass(frozen=True)
class OutboxRow:
    event_id: str
    topic: str
    key: str
    type: str
    envelope: str


@cache
def _validator(event_type: str, version: int) -> Draft202012Validator:
    schema = json_schema(event_type, version)
    Draft202012Validator.check_schema(schema)
    # Formats asserted too (uuid, date, date-time), as a consumer in another language would.
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def problems_of(row: OutboxRow) -> list[str]:
    """What is wrong with one emitted event; [] when it keeps the contract."""
    where = f"{row.type} {row.event_id}"
    try:
        envelope: dict[str, Any] = json.loads(row.envelope)
    except ValueError as exc:
        return [f"{where}: not JSON: {exc}"]
    event_type = catalogue().get(row.type)
    if event_type is None or not event_type.public:
        return [f"{where}: not a published event type"]
    version = envelope.get("version")
    if not isinstance(version, int):
        return [f"{where}: no integer version"]
    error = best_match(_validator(row.type, version).iter_errors(envelope))
    if error is not None:
        return [f"{where}: at /{'/'.join(map(str, error.absolute_path))}: {error.message}"]
    found = []
    if row.topic != topic_of(event_type.source):
        found.append(f"{where}: on topic {row.topic}, not {topic_of(event_type.source)}")
    if row.key != envelope["key"]:
        found.append(f"{where}: message key {row.key!r} differs from the envelope's {envelope['key']!r}")
    expected = event_type.key.of(envelope["payload"])
    if expected is not None and envelope["key"] != expected:
        found.append(
            f"{where}: keyed {envelope['key']!r}, the catalogue says {expected!r} ({event_type.key.description})"
        )
    return found


def check(rows: Iterable[OutboxRow]) -> list[str]:
    """The problems of the rows not checked before (a restarted service's outbox holds its
    earlier events too), counting each checked event."""
    found: list[str] = []
    for row in rows:
        if row.event_id in _seen:
            continue
        _seen.add(row.event_id)
        found += problems_of(row)
        CHECKED[row.type] += 1
    return found
