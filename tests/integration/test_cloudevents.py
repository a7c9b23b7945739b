"""Every record on the topics is a CloudEvent (issue 22): after a flow through registry, loans
and risk on each backend, every record the topics hold is read raw (Kafka: straight from the
broker) and converted by the CloudEvents SDK's Kafka binding, and it is the envelope it
carries: same id, type, source, time and partition key, the envelope as its data."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from cloudevents.core.bindings.kafka import KafkaMessage, from_binary
from cloudevents.core.formats.json import JSONFormat

from shared.events import Envelope, dlq_topic_of, topic_of
from shared.messaging import H_EVENT_TYPE, read_to_end
from tests.conftest import Infra
from tests.support.loans import TOWNSHIP, VILLAGE, open_certified_line
from tests.support.system import System
from tests.support.waiting import wait_until

SERVICES = ("registry", "scoring", "loans", "risk", "notify")


@dataclass(frozen=True)
class Raw:
    topic: str
    headers: list[tuple[str, bytes]]
    key: bytes | None
    value: bytes


async def _raw_records(infra: Infra) -> list[Raw]:
    """Everything on the test's topics (events and dead letters of every service)."""
    topics = [infra.topic_prefix + t for s in SERVICES for t in (topic_of(s), dlq_topic_of(topic_of(s)))]
    if infra.backend == "embedded":
        messages = await read_to_end(infra.bus(), f"ce-reader-{uuid.uuid4().hex[:8]}", topics, idle_ms=500)
        return [
            Raw(m.topic, [(k, v.encode()) for k, v in m.headers.items()], (m.key or "").encode(), m.value)
            for m in messages
        ]
    assert infra.kafka
    admin = AIOKafkaAdminClient(bootstrap_servers=infra.kafka, request_timeout_ms=10_000)
    await admin.start()
    try:
        existing = [t for t in await admin.list_topics() if t in topics]
        described = await admin.describe_topics(existing)
    finally:
        await admin.close()
    reader = AIOKafkaConsumer(bootstrap_servers=infra.kafka, enable_auto_commit=False, request_timeout_ms=10_000)
    await reader.start()
    records: list[Raw] = []
    try:
        partitions = [TopicPartition(d["topic"], p["partition"]) for d in described for p in d["partitions"]]
        assert partitions, existing
        reader.assign(partitions)
        await reader.seek_to_beginning(*partitions)
        ends = await reader.end_offsets(partitions)
        # Up to the end offsets taken now: the flow is over and every outbox was drained.
        while [tp for tp in partitions if await reader.position(tp) < ends[tp]]:
            for batch in (await reader.getmany(timeout_ms=1000)).values():
                records.extend(Raw(r.topic, list(r.headers), r.key, r.value) for r in batch)
    finally:
        await reader.stop()
    return records


async def _drained(system: System) -> bool:
    return all([await runtime.relay.backlog() == 0 for runtime in system.runtimes.values()])


@pytest.fixture
async def system(infra: Infra) -> System:
    return System(infra, ["registry", "loans", "risk"])


async def test_every_record_on_the_topics_is_the_cloudevent_of_its_envelope(system: System, infra: Infra) -> None:
    async with system:
        registry, loans, risk = system["registry"], system["loans"], system["risk"]
        r = await registry.post("/v1/townships", json={"code": TOWNSHIP, "name": "湖滨镇"})
        assert r.status_code == 201, r.text
        r = await registry.post("/v1/villages", json={"code": VILLAGE, "name": "东村", "township_code": TOWNSHIP})
        assert r.status_code == 201, r.text
        line = await open_certified_line(system, infra)
        r = await loans.post(
            "/v1/loans",
            json={"credit_line_id": line, "amount": "6000.00", "term_months": 6, "repayment_method": "interest_only"},
        )
        assert r.status_code == 201, r.text
        r = await loans.post(f"/v1/loans/{r.json()['loan_id']}/repayments", json={"amount": "1000.00"})
        assert r.status_code == 201, r.text

        async def risk_saw_repayment() -> bool:
            return bool((await risk.get(f"/v1/villages/{VILLAGE}")).json().get("outstanding") == "5000.00")

        await wait_until(risk_saw_repayment, what="the repayment to reach risk")
        await wait_until(lambda: _drained(system), what="every outbox to be published")
        records = await _raw_records(infra)

    # The relay's own records, not only those the test put on the bus for scoring.
    relayed = {r.topic.removeprefix(infra.topic_prefix) for r in records if H_EVENT_TYPE in dict(r.headers)}
    assert {"registry.events", "loans.events", "risk.events"} <= relayed, relayed
    assert len(records) >= 5
    for record in records:
        names = [name for name, _ in record.headers]
        assert len(names) == len(set(names)), f"a header twice on {record.topic}: {names}"
        envelope = Envelope.from_bytes(record.value)
        ce = from_binary(KafkaMessage(dict(record.headers), record.key, record.value), JSONFormat())
        assert (ce.get_specversion(), ce.get_id(), ce.get_type(), ce.get_source()) == (
            "1.0",
            str(envelope.event_id),
            envelope.type,
            f"/vcredit/{envelope.source}",
        ), record.topic
        assert ce.get_time() == envelope.occurred_at
        assert ce.get_datacontenttype() == "application/json"
        assert ce.get_dataschema() == f"urn:vcredit:event:{envelope.type}:v{envelope.version}"
        assert ce.get_data() == json.loads(record.value)
        # Partitioning extension: the record key, and the same value in ce_partitionkey.
        assert record.key == envelope.key.encode()
        assert dict(record.headers)["ce_partitionkey"] == envelope.key.encode()
