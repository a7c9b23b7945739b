"""The event contract documents (shared/asyncapi.py): the committed docs/asyncapi.json is
what the services serve, every public event type, version, topic and partition key is in
it, and each type's JSON Schema accepts the events ``new_event`` builds and refuses the
envelopes a consumer must not trust. The official parser's verdict on the document:
tests/unit/project/test_asyncapi_document.py."""

from __future__ import annotations

import copy
import json
import tomllib
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from jsonschema import Draft202012Validator

from shared.asyncapi import contract_router, document, json_schema, message_id, render
from shared.catalogue import BusinessDateAdvanced, RatingChanged, ReasonOut, TitleAwarded, TownshipCreated
from shared.events import catalogue, dlq_topic_of, new_event, topic_of
from shared.settings import SERVICE_NAMES
from shared.web import install_problem_handlers
from vcredit.cli import TOPICS_FILE

ROOT = Path(__file__).resolve().parents[3]
COMMITTED = ROOT / "docs" / "asyncapi.json"
PUBLIC = {name: t for name, t in catalogue().items() if t.public}


def _valid(schema: dict[str, Any], instance: Any) -> bool:
    validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    return validator.is_valid(instance)


def test_the_committed_document_is_the_generated_one() -> None:
    # A contract change shows in docs/asyncapi.json's diff. To regenerate it:
    #   PYTHONPATH=. python -m shared.asyncapi > docs/asyncapi.json
    assert COMMITTED.read_text(encoding="utf-8") == render(document()), (
        "docs/asyncapi.json is stale: PYTHONPATH=. python -m shared.asyncapi > docs/asyncapi.json"
    )


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    install_problem_handlers(app)
    app.include_router(contract_router())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://svc") as c:
        yield c


async def test_the_served_document_and_schemas(client: httpx.AsyncClient) -> None:
    served = await client.get("/asyncapi.json")
    assert served.status_code == 200
    assert served.json() == json.loads(COMMITTED.read_text(encoding="utf-8"))

    current = await client.get("/v1/schemas/loans.loan.classified")
    assert current.status_code == 200
    assert current.headers["content-type"] == "application/schema+json"
    assert current.json() == json_schema("loans.loan.classified")
    assert (await client.get("/v1/schemas/loans.loan.classified/1")).json() == current.json()


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/v1/schemas/loans.loan.vanished", 404, "UNKNOWN_EVENT_TYPE"),
        ("/v1/schemas/registry.probe.happened", 404, "UNKNOWN_EVENT_TYPE"),  # bench's, not public
        ("/v1/schemas/%2E%2E", 404, "UNKNOWN_EVENT_TYPE"),
        ("/v1/schemas/loans.loan.classified/2", 404, "UNKNOWN_EVENT_VERSION"),
        ("/v1/schemas/loans.loan.classified/0", 404, "UNKNOWN_EVENT_VERSION"),
        ("/v1/schemas/loans.loan.classified/-1", 404, "UNKNOWN_EVENT_VERSION"),
        ("/v1/schemas/loans.loan.classified/one", 422, "VALIDATION_FAILED"),
    ],
)
async def test_unknown_types_and_versions_are_problems(
    client: httpx.AsyncClient, path: str, status: int, code: str
) -> None:
    r = await client.get(path)
    assert (r.status_code, r.headers["content-type"], r.json()["code"]) == (status, "application/problem+json", code)


def test_every_public_event_type_is_a_message_on_its_source_topic() -> None:
    doc = document()
    messages = doc["components"]["messages"]
    for name, t in PUBLIC.items():
        message = messages[message_id(t)]
        assert (message["name"], message["x-event-version"]) == (name, t.version)
        payload = message["payload"]["properties"]
        assert payload["type"]["const"] == name and payload["version"]["const"] == t.version
        assert payload["source"]["const"] == t.source
        assert message["bindings"]["kafka"]["key"]["description"] == t.key.description
        channel = doc["channels"][topic_of(t.source)]
        assert channel["messages"][message_id(t)] == {"$ref": f"#/components/messages/{message_id(t)}"}
        published = doc["operations"][f"{t.source}.publish"]["messages"]
        assert {"$ref": f"#/channels/{topic_of(t.source)}/messages/{message_id(t)}"} in published
    assert set(messages) == {message_id(t) for t in PUBLIC.values()} | {"dead_letter"}
    assert len(PUBLIC) >= 39, "the catalogue lost event types"


def test_the_channels_are_the_topics_of_topics_toml() -> None:
    topics = tomllib.loads((ROOT / TOPICS_FILE).read_text(encoding="utf-8"))["topic"]
    channels = document()["channels"]
    assert set(channels) == {t["name"] for t in topics}
    assert set(channels) == {topic_of(s) for s in SERVICE_NAMES} | {dlq_topic_of(topic_of(s)) for s in SERVICE_NAMES}
    for t in topics:
        binding = channels[t["name"]]["bindings"]["kafka"]
        assert channels[t["name"]]["address"] == binding["topic"] == t["name"]
        assert binding["topicConfiguration"] == {
            "cleanup.policy": [t["cleanup_policy"]],
            "retention.ms": t["retention_ms"],
        }


def test_the_special_partition_keys_are_documented() -> None:
    keys = {name: t.key for name, t in PUBLIC.items()}
    assert keys["loans.business_date.advanced"].constant == "district"
    assert keys["risk.fund.capacity_changed"].constant == "fund"
    assert keys["registry.township.created"].of({"code": "410102001", "name": "x"}) == "410102001"
    assert keys["risk.township.halted"].of({"township_code": "410102001"}) == "410102001"
    awarded = keys["risk.title.awarded"]
    assert awarded.of({"village_code": "V1", "township_code": "T1", "code": "H1"}) == "V1"
    assert awarded.of({"village_code": None, "township_code": "T1", "code": "T1"}) == "T1"
    assert awarded.of({"village_code": None, "township_code": None, "code": "C1"}) == "C1"
    assert keys["risk.claim.settled"].of({"loan_id": "L1"}) is None  # documented, not in the payload
    assert keys["loans.loan.classified"].of({"village_code": "410102001001"}) == "410102001001"
    schema = json_schema("loans.business_date.advanced")
    assert schema["properties"]["key"]["const"] == "district"


def test_every_key_field_is_a_field_of_its_payload() -> None:
    for name, t in PUBLIC.items():
        missing = set(t.key.fields) - set(t.payload.model_fields)
        assert not missing, f"{name} is keyed by {sorted(missing)}, which its payload lacks"
        assert t.key.fields or t.key.constant or "payload does not carry" in t.key.description, name


def test_each_schema_is_a_valid_2020_12_schema_that_accepts_what_new_event_builds() -> None:
    for name, t in PUBLIC.items():
        schema = json_schema(name, t.version)
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        Draft202012Validator.check_schema(schema)
    advanced = BusinessDateAdvanced(closed_date=date(2026, 1, 1), business_date=date(2026, 1, 2))
    township_title = TitleAwarded(year=2026, kind="credit_township", code="T1", township_code="T1", figures={"a": "1"})
    events = [
        json.loads(
            new_event("registry.township.created", "410102001", TownshipCreated(code="4101", name="城关镇")).to_bytes()
        ),
        json.loads(new_event("loans.business_date.advanced", "district", advanced).to_bytes()),
        json.loads(new_event("risk.title.revoked", "T1", township_title).to_bytes()),
        _rating_changed(),
    ]
    for event in events:
        assert _valid(json_schema(event["type"]), event), event["type"]


def _rating_changed() -> dict[str, Any]:
    reasons = [ReasonOut(rule="r", points=3, text="好", text_en="good", source="004 §5")]
    payload = RatingChanged(
        subject_kind="household", subject_id="H1", village_code="V1", township_code="T1", rating_id=1, score=90,
        grade="AA", credit_limit="50000.00", vetoed=False, rule_set="r@1", reasons=reasons, status="noticed",
    )  # fmt: skip
    result: dict[str, Any] = json.loads(new_event("scoring.rating.changed", "V1", payload).to_bytes())
    return result


def _with(event: dict[str, Any], path: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(event)
    target: Any = changed
    for step in path[:-1]:
        target = target[step]
    if value is _DROP:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return changed


_DROP = object()


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("type",), "scoring.rating.certified"),  # another type's schema governs that
        (("version",), 2),
        (("source",), "loans"),
        (("key",), ""),
        (("event_id",), "not-a-uuid"),
        (("occurred_at",), "2026-01-01T08:00:00"),  # no offset
        (("occurred_at",), "yesterday"),
        (("extra",), 1),
        (("payload",), _DROP),
        (("payload", "score"), "90"),
        (("payload", "grade"), None),
        (("payload", "subject_kind"), "cooperative"),
        (("payload", "unexpected"), "x"),
        (("payload", "reasons", 0, "points"), 1.5),
        (("payload", "reasons", 0, "extra"), "x"),
        (("payload", "village_code"), _DROP),
    ],
)
def test_the_schema_refuses_a_broken_envelope(path: tuple[str | int, ...], value: Any) -> None:
    event = _rating_changed()
    schema = json_schema("scoring.rating.changed")
    assert _valid(schema, event)
    assert not _valid(schema, _with(event, path, value))


def test_the_business_date_key_is_held_to_its_constant() -> None:
    event = json.loads(
        new_event(
            "loans.business_date.advanced",
            "district",
            BusinessDateAdvanced(closed_date=date(2026, 1, 1), business_date=date(2026, 1, 2)),
        ).to_bytes()
    )
    schema = json_schema("loans.business_date.advanced")
    assert _valid(schema, event)
    assert not _valid(schema, event | {"key": "410102001001"})
    assert not _valid(schema, _with(event, ("payload", "business_date"), "2026-02-30"))


def test_the_served_copies_cannot_be_changed_by_a_caller() -> None:
    document()["info"]["title"] = "changed"
    json_schema("loans.loan.classified")["title"] = "changed"
    assert document()["info"]["title"] == "vcredit events"
    assert json_schema("loans.loan.classified")["title"] == "loans.loan.classified v1"
