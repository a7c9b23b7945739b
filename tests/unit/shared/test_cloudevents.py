"""An envelope's CloudEvents headers, read back by the CloudEvents SDK (Kafka and HTTP
binary mode), the new core API and the older v1 one."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from cloudevents.core.bindings import http as ce_http
from cloudevents.core.bindings import kafka as ce_kafka
from cloudevents.core.formats.json import JSONFormat
from cloudevents.v1 import kafka as ce_kafka_v1

from shared.catalogue import VillageCreated
from shared.cloudevents import http_headers, is_kafka_header, kafka_headers
from shared.events import Envelope, new_event

# Beijing time: the envelope may carry any offset; CloudEvents' time is sent in UTC.
CST = timezone(timedelta(hours=8))


def _event(key: str = "410100001001", occurred_at: datetime | None = None) -> Envelope:
    return new_event(
        "registry.village.created",
        key,
        VillageCreated(code="410100001001", name="东村", township_code="410100001"),
        occurred_at=occurred_at,
    )


def test_kafka_headers_are_a_binary_mode_cloudevent_with_the_envelope_as_data() -> None:
    event = _event(occurred_at=datetime(2026, 5, 1, 8, 30, 0, 123456, tzinfo=CST))
    headers = kafka_headers(event)
    assert headers["ce_time"] == "2026-05-01T00:30:00.123456Z"
    message = ce_kafka.KafkaMessage(
        headers={k: v.encode() for k, v in headers.items()}, key=event.key.encode(), value=event.to_bytes()
    )
    ce = ce_kafka.from_binary(message, JSONFormat())
    assert ce.get_attributes() == {
        "specversion": "1.0",
        "id": str(event.event_id),
        "source": "/vcredit/registry",
        "type": "registry.village.created",
        "dataschema": "urn:vcredit:event:registry.village.created:v1",
        "time": event.occurred_at,
        "datacontenttype": "application/json",
        "partitionkey": event.key,
    }
    assert ce.get_data() == json.loads(event.to_bytes())
    # The SDK reads the partition key from the record key; the header says the same.
    assert headers["ce_partitionkey"] == event.key
    # The older v1 API of the same SDK reads it too.
    old = ce_kafka_v1.from_binary(ce_kafka_v1.KafkaMessage(message.headers, message.key, message.value))
    assert (old["id"], old["type"], old["source"]) == (str(event.event_id), event.type, "/vcredit/registry")


def test_a_utc_time_without_microseconds_is_still_rfc3339_utc() -> None:
    headers = kafka_headers(_event(occurred_at=datetime(2026, 5, 1, tzinfo=UTC)))
    assert headers["ce_time"] == "2026-05-01T00:00:00Z"


def test_http_headers_percent_encode_what_a_header_may_not_carry() -> None:
    # A partition key is any non-empty string; a header value is printable ASCII only.
    key = '东村 "1"%'
    event = _event(key=key)
    headers = http_headers(event)
    assert headers["ce-partitionkey"] == "%E4%B8%9C%E6%9D%91%20%221%22%25"
    headers["ce-partitionkey"].encode("ascii")
    ce = ce_http.from_http(ce_http.HTTPMessage(headers=headers, body=event.to_bytes()), JSONFormat())
    assert ce.get_extension("partitionkey") == key
    assert (ce.get_id(), ce.get_type(), ce.get_time()) == (str(event.event_id), event.type, event.occurred_at)
    assert ce.get_datacontenttype() == "application/json" and headers["Content-Type"] == "application/json"
    assert ce.get_data() == json.loads(event.to_bytes())


@pytest.mark.parametrize(
    ("name", "kept"),
    [("ce_id", True), ("ce_partitionkey", True), ("content-type", True), ("vcredit.error", False), ("ce-id", False)],
)
def test_the_headers_that_carry_the_cloudevent_are_recognised(name: str, kept: bool) -> None:
    assert is_kafka_header(name) is kept
