"""An event's CloudEvents 1.0 attributes, and how they travel in binary content mode.

Binary mode keeps the message body exactly as before (the envelope of API.md), so every
existing consumer and webhook receiver reads what it read; the CloudEvents attributes ride
beside it in headers, where a CloudEvents SDK (or a broker-side router) finds them:

- Kafka (protocol binding 1.0, §3.2): ``ce_<attribute>`` headers and ``content-type``; the
  record key is the partition key, also sent as ``ce_partitionkey`` (partitioning extension).
- HTTP (webhooks, protocol binding 1.0, §3.1): ``ce-<attribute>`` headers and
  ``Content-Type``, values percent-encoded where the binding says so (§3.1.3.2).

The attributes, from the envelope:

- ``id``: the envelope's ``event_id`` (a UUID, so unique with any source).
- ``source``: ``/vcredit/<service>``, the producing service (the envelope's ``source``). A
  URI-reference naming the producer, which CloudEvents allows; stable across deployments,
  because the same service in two deployments produces the same kinds of event and the id
  alone is already unique.
- ``type``: the envelope's ``type`` as it is (``loans.loan.repaid``), the name subscriptions,
  the catalogue and the envelope use; no reverse-DNS prefix, so one name means one thing.
- ``dataschema``: ``urn:vcredit:event:<type>:v<version>``. The version is not in ``type``:
  a routing rule on the type keeps working across a payload version, and the URN names the
  exact payload schema (the AsyncAPI document's schema for that type and version).
- ``time``: the envelope's ``occurred_at`` in UTC, RFC 3339 with ``Z``.
- ``datacontenttype``: ``application/json`` (the envelope is JSON).
- ``partitionkey``: the envelope's ``key`` (the village code), the record key on Kafka.
"""

from __future__ import annotations

from datetime import UTC
from typing import Final
from urllib.parse import quote

from shared.events import Envelope

SPECVERSION: Final = "1.0"
CONTENT_TYPE: Final = "application/json"
KAFKA_PREFIX: Final = "ce_"
HTTP_PREFIX: Final = "ce-"
KAFKA_CONTENT_TYPE: Final = "content-type"

# HTTP binding §3.1.3.2: printable ASCII (U+0021-U+007E) goes as is, except space, double
# quote and percent; everything else is percent-encoded UTF-8.
_HTTP_SAFE: Final = "".join(c for c in map(chr, range(0x21, 0x7F)) if c not in ' "%')


def source_of(service: str) -> str:
    return f"/vcredit/{service}"


def dataschema_of(event_type: str, version: int) -> str:
    return f"urn:vcredit:event:{event_type}:v{version}"


def attributes(envelope: Envelope) -> dict[str, str]:
    """The event's context attributes (all but ``datacontenttype``), as strings."""
    occurred = envelope.occurred_at.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return {
        "specversion": SPECVERSION,
        "id": str(envelope.event_id),
        "source": source_of(envelope.source),
        "type": envelope.type,
        "dataschema": dataschema_of(envelope.type, envelope.version),
        "time": occurred,
        "partitionkey": envelope.key,
    }


def kafka_headers(envelope: Envelope) -> dict[str, str]:
    """The Kafka record headers of the event in binary mode (the value is the envelope)."""
    return {KAFKA_PREFIX + name: value for name, value in attributes(envelope).items()} | {
        KAFKA_CONTENT_TYPE: CONTENT_TYPE
    }


def is_kafka_header(name: str) -> bool:
    """Whether a record header carries the CloudEvent (kept when the record is moved)."""
    return name.startswith(KAFKA_PREFIX) or name == KAFKA_CONTENT_TYPE


def http_headers(envelope: Envelope) -> dict[str, str]:
    """The HTTP request headers of the event in binary mode (the body is the envelope)."""
    return {HTTP_PREFIX + name: quote(value, safe=_HTTP_SAFE) for name, value in attributes(envelope).items()} | {
        "Content-Type": CONTENT_TYPE
    }
