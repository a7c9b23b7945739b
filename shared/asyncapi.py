"""The event contract as documents, generated from the catalogue (shared/catalogue.py): an
AsyncAPI 3.0 document of every topic, event type and version, and a JSON Schema (2020-12)
per event type and version, the envelope holding that type's payload. Every service serves
both, without a token like /openapi.json (they describe the contract, never data):
``GET /asyncapi.json`` and ``GET /v1/schemas/{event_type}[/{version}]``.

docs/asyncapi.json is this document committed, so a contract change shows in a diff
(tests/unit/shared/test_asyncapi.py holds them equal; ``python -m shared.asyncapi >
docs/asyncapi.json`` regenerates it), and the official AsyncAPI parser validates it
(tools/asyncapi/validate.mjs, run by tests/unit/project/test_asyncapi_document.py).
"""

from __future__ import annotations

import copy
import json
from functools import cache
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

import shared.catalogue  # noqa: F401  (registers every event type)
from shared.bus.kafka import DLQ_TOPIC_CONFIG, EVENT_TOPIC_CONFIG
from shared.cloudevents import CONTENT_TYPE, KAFKA_CONTENT_TYPE, KAFKA_PREFIX, SPECVERSION
from shared.events import Envelope, EventType, catalogue, dlq_topic_of, topic_of
from shared.messaging.headers import (
    H_ATTEMPTS,
    H_CONSUMER,
    H_ERROR,
    H_EVENT_ID,
    H_EVENT_TYPE,
    H_FAILED_AT,
    H_ORIGINAL_OFFSET,
    H_ORIGINAL_PARTITION,
    H_ORIGINAL_TOPIC,
)
from shared.openapi import problems
from shared.problems import Problem
from shared.settings import SERVICE_NAMES
from shared.tracing import TRACE_HEADERS

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
# The Kafka bindings' schema version that @asyncapi/parser 3.x validates (tools/asyncapi).
KAFKA_BINDING_VERSION = "0.5.0"
SCHEMA_MEDIA_TYPE = "application/schema+json"

_DESCRIPTION = """\
The events of vcredit's five services. Each service is the only producer of its topic
`<service>.events`; every message's value is the JSON envelope of API.md, `payload` holding
the event type's payload at the envelope's `version`. Topics are named with
`VCREDIT_TOPIC_PREFIX` in front (empty by default; tests and tenants set one). The embedded
bus (`vcredit up`) carries the same envelopes on the same topic names.

The partition key (the Kafka message key, equal to the envelope's `key`) keeps the events
that must stay in order on one partition: the village code for almost every event type; each
message's `bindings.kafka.key` says which.

Versions: a payload model changes only by optional additions; anything else is a new version
of the type (extend, never break). The JSON Schema (2020-12) of one type and version, the
envelope with its payload, is at `GET /v1/schemas/{event_type}/{version}` on every service.

A consumer that cannot handle an event after its retries parks it, byte for byte with its
headers, in `<topic>.dlq` with headers saying why (`vcredit dlq list|replay`)."""


def _public_types() -> list[EventType]:
    # Test-only types (bench's probe) are registered as not public: not part of the contract.
    return sorted((t for t in catalogue().values() if t.public), key=lambda t: t.name)


def message_id(event_type: EventType) -> str:
    return f"{event_type.name}.v{event_type.version}"


def _payload_schemas(ref_template: str) -> tuple[dict[type[BaseModel], dict[str, Any]], dict[str, Any]]:
    """A reference to each payload model's schema, and the definitions (of the payload
    models and the models they nest), references made by ``ref_template``. In validation
    mode: what a consumer accepts, so a field added later with a default is optional, as
    events published before it lack it."""
    models = sorted({t.payload for t in _public_types()}, key=lambda m: m.__name__)
    keyed, defs = models_json_schema([(m, "validation") for m in models], ref_template=ref_template)
    return {m: keyed[(m, "validation")] for m in models}, defs.get("$defs", {})


def _envelope(event_type: EventType, payload: dict[str, Any]) -> dict[str, Any]:
    """The envelope's schema (from shared.events.Envelope) narrowed to one type and version."""
    schema = Envelope.model_json_schema()
    schema.pop("title")
    properties = schema["properties"]
    for prop in properties.values():
        prop.pop("title", None)
    properties["type"] = {"const": event_type.name, "description": event_type.description}
    properties["version"] = {"const": event_type.version}
    properties["source"] = {"const": event_type.source, "description": "The producing service."}
    key = event_type.key
    properties["key"] = {"type": "string", "minLength": 1, "description": f"The partition key. {key.description}"}
    if key.constant is not None:
        properties["key"]["const"] = key.constant
    properties["occurred_at"]["description"] = "When the change happened, with its UTC offset."
    properties["event_id"]["description"] = "Unique per event; consumers drop redeliveries by it."
    properties["payload"] = payload
    return schema


@cache
def _json_schemas() -> dict[tuple[str, int], dict[str, Any]]:
    payloads, defs = _payload_schemas("#/$defs/{model}")
    schemas = {}
    for t in _public_types():
        schema = {
            "$schema": JSON_SCHEMA_DIALECT,
            "title": f"{t.name} v{t.version}",
            **_envelope(t, copy.deepcopy(payloads[t.payload])),
        }
        # Only the definitions this payload uses, so each schema stands alone and stays small.
        used = _referenced(schema, defs)
        if used:
            schema["$defs"] = {name: defs[name] for name in sorted(used)}
        schemas[(t.name, t.version)] = schema
    return schemas


def _referenced(schema: Any, defs: dict[str, Any], prefix: str = "#/$defs/") -> set[str]:
    """Names of the definitions ``schema`` refers to, directly or through one another."""
    found: set[str] = set()
    pending = [schema]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith(prefix) and (name := ref[len(prefix) :]) not in found:
                found.add(name)
                pending.append(defs[name])
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
    return found


def json_schema(event_type: str, version: int | None = None) -> dict[str, Any]:
    """The JSON Schema (2020-12) of an event type's envelope at ``version`` (default: the
    current one); a 404 Problem for a type or version the catalogue does not publish."""
    schemas = _json_schemas()
    versions = sorted(v for name, v in schemas if name == event_type)
    if not versions:
        raise Problem(404, "UNKNOWN_EVENT_TYPE", "Unknown event type", f"No event type {event_type}.")
    if version is None:
        version = versions[-1]
    if (event_type, version) not in schemas:
        detail = f"{event_type} has no version {version}; published: {', '.join(map(str, versions))}."
        raise Problem(404, "UNKNOWN_EVENT_VERSION", "Unknown event version", detail)
    return copy.deepcopy(schemas[(event_type, version)])


# CloudEvents 1.0 in Kafka binary mode (shared/cloudevents.py): the value is the envelope.
_CLOUDEVENT_HEADERS: dict[str, Any] = {
    KAFKA_PREFIX + "specversion": {"type": "string", "const": SPECVERSION, "description": "CloudEvents version."},
    KAFKA_PREFIX + "id": {"type": "string", "format": "uuid", "description": "The envelope's `event_id`."},
    KAFKA_PREFIX + "source": {"type": "string", "description": "`/vcredit/<service>`, the producing service."},
    KAFKA_PREFIX + "type": {"type": "string", "description": "The envelope's `type`."},
    KAFKA_PREFIX + "dataschema": {"type": "string", "description": "`urn:vcredit:event:<type>:v<version>`."},
    KAFKA_PREFIX + "time": {"type": "string", "format": "date-time", "description": "`occurred_at`, UTC, with `Z`."},
    KAFKA_PREFIX + "partitionkey": {"type": "string", "description": "The envelope's `key`, also the record key."},
    KAFKA_CONTENT_TYPE: {"type": "string", "const": CONTENT_TYPE, "description": "The value's media type."},
}


def _event_headers() -> dict[str, Any]:
    trace = {h: {"type": "string", "description": "W3C trace context, when tracing is on."} for h in TRACE_HEADERS}
    return {
        "type": "object",
        "description": "Kafka record headers (UTF-8 strings). Others may be added; consumers ignore unknown ones.",
        "required": [H_EVENT_TYPE, H_EVENT_ID, *_CLOUDEVENT_HEADERS],
        "properties": {
            H_EVENT_TYPE: {"type": "string", "description": "The envelope's `type`."},
            H_EVENT_ID: {"type": "string", "format": "uuid", "description": "The envelope's `event_id`."},
            **_CLOUDEVENT_HEADERS,
            **trace,
        },
    }


def _dead_letter_headers() -> dict[str, Any]:
    headers = _event_headers()
    text = "string"
    headers["description"] = "The original message's headers, and why and where from it was parked."
    headers["required"] = [*headers["required"], H_CONSUMER, H_ERROR, H_ATTEMPTS, H_ORIGINAL_TOPIC]
    headers["required"] += [H_ORIGINAL_PARTITION, H_ORIGINAL_OFFSET, H_FAILED_AT]
    headers["properties"] |= {
        H_CONSUMER: {"type": text, "description": "The consuming service that gave up."},
        H_ERROR: {"type": text, "description": "Its last error, masked like the logs (at most 4000 characters)."},
        H_ATTEMPTS: {"type": text, "description": "How many times it tried (a decimal integer)."},
        H_ORIGINAL_TOPIC: {"type": text, "description": "The topic the message came from, without the prefix."},
        H_ORIGINAL_PARTITION: {"type": text, "description": "Its partition there (a decimal integer)."},
        H_ORIGINAL_OFFSET: {"type": text, "description": "Its offset there (a decimal integer)."},
        H_FAILED_AT: {"type": text, "format": "date-time", "description": "When it was parked."},
    }
    return headers


def _topic_binding(topic: str, config: dict[str, str]) -> dict[str, Any]:
    """The topic's settings as a service creates it (shared/bus/kafka.py, the same as
    deploy/k8s/topics.toml, which also gives partitions and replicas)."""
    return {
        "kafka": {
            "topic": topic,
            "topicConfiguration": {
                "cleanup.policy": config["cleanup.policy"].split(","),
                "retention.ms": int(config["retention.ms"]),
            },
            "bindingVersion": KAFKA_BINDING_VERSION,
        }
    }


@cache
def _document() -> dict[str, Any]:
    payloads, defs = _payload_schemas("#/components/schemas/{model}")
    schemas: dict[str, Any] = dict(defs)
    messages: dict[str, Any] = {}
    for t in _public_types():
        envelope = _envelope(t, payloads[t.payload])
        messages[message_id(t)] = {
            "name": t.name,
            "title": f"{t.name} v{t.version}",
            "summary": t.description,
            "contentType": "application/json",
            "headers": {"$ref": "#/components/schemas/EventHeaders"},
            "payload": envelope,
            "bindings": {
                "kafka": {
                    "key": {"type": "string", "description": t.key.description}
                    | ({"const": t.key.constant} if t.key.constant is not None else {}),
                    "bindingVersion": KAFKA_BINDING_VERSION,
                }
            },
            "x-event-type": t.name,
            "x-event-version": t.version,
            "x-json-schema": f"/v1/schemas/{t.name}/{t.version}",
        }
    schemas["EventHeaders"] = _event_headers()
    schemas["DeadLetterHeaders"] = _dead_letter_headers()
    messages["dead_letter"] = {
        "name": "dead_letter",
        "title": "A parked message",
        "summary": "A message a consumer could not handle after its retries, kept for an operator.",
        "headers": {"$ref": "#/components/schemas/DeadLetterHeaders"},
        "payload": {
            "description": "The original message's value, byte for byte: normally an envelope of the source "
            "topic, but anything at all when that value is why it was parked (not JSON, not an envelope).",
        },
        "bindings": {
            "kafka": {
                "key": {"type": "string", "description": "The original message's key."},
                "bindingVersion": KAFKA_BINDING_VERSION,
            }
        },
    }

    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for service in SERVICE_NAMES:
        topic = topic_of(service)
        own = [t for t in _public_types() if t.source == service]
        channels[topic] = {
            "address": topic,
            "title": f"{service}'s events",
            "description": f"Every event {service} publishes, in its outbox's commit order per partition key. "
            "Kept forever: every read-side projection is rebuilt by replaying it from offset 0."
            + ("" if own else f" {service} publishes no event type yet."),
            "messages": {message_id(t): {"$ref": f"#/components/messages/{message_id(t)}"} for t in own},
            "bindings": _topic_binding(topic, EVENT_TOPIC_CONFIG),
        }
        dlq = dlq_topic_of(topic)
        channels[dlq] = {
            "address": dlq,
            "title": f"{service}'s dead letters",
            "description": f"Messages of {topic} a consumer parked; kept 30 days.",
            "messages": {"dead_letter": {"$ref": "#/components/messages/dead_letter"}},
            "bindings": _topic_binding(dlq, DLQ_TOPIC_CONFIG),
        }
        if own:
            operations[f"{service}.publish"] = {
                "action": "send",
                "title": f"{service} publishes its events",
                "summary": "Through its transactional outbox: an event exists if and only if its change committed.",
                "channel": {"$ref": f"#/channels/{topic}"},
                "messages": [{"$ref": f"#/channels/{topic}/messages/{message_id(t)}"} for t in own],
            }
        operations[f"{service}.dead_letter"] = {
            "action": "send",
            "title": f"A consumer parks a message of {topic}",
            "channel": {"$ref": f"#/channels/{dlq}"},
            "messages": [{"$ref": f"#/channels/{dlq}/messages/dead_letter"}],
        }
    return {
        "asyncapi": "3.0.0",
        "id": "urn:vcredit:events",
        "info": {"title": "vcredit events", "version": "1", "description": _DESCRIPTION},
        "defaultContentType": "application/json",
        "servers": {
            "kafka": {
                "host": "{bootstrap}",
                "protocol": "kafka",
                "description": "The deployment's Kafka cluster.",
                "variables": {
                    "bootstrap": {
                        "default": "localhost:9092",
                        "description": "Bootstrap servers, as VCREDIT_KAFKA_BOOTSTRAP_SERVERS says.",
                    }
                },
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {"schemas": dict(sorted(schemas.items())), "messages": messages},
    }


def document() -> dict[str, Any]:
    """The AsyncAPI 3.0 document of every public event (a fresh copy)."""
    return copy.deepcopy(_document())


def render(doc: dict[str, Any]) -> str:
    """The document as committed in docs/asyncapi.json (stable order, readable diffs)."""
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def contract_router() -> APIRouter:
    """``/asyncapi.json`` and ``/v1/schemas/...``: served without a token, like /openapi.json."""
    router = APIRouter(tags=["events"])
    responses: dict[int | str, dict[str, Any]] = {
        200: {"content": {SCHEMA_MEDIA_TYPE: {}}},
        **problems({404: ["UNKNOWN_EVENT_TYPE", "UNKNOWN_EVENT_VERSION"]}),
    }

    @router.get("/asyncapi.json", summary="The AsyncAPI 3.0 document of every event and topic")
    async def asyncapi() -> dict[str, Any]:
        return _document()

    @router.get(
        "/v1/schemas/{event_type}",
        summary="JSON Schema (2020-12) of an event type's envelope, current version",
        response_class=JSONResponse,
        responses=responses,
    )
    async def current_schema(event_type: str) -> JSONResponse:
        return JSONResponse(json_schema(event_type), media_type=SCHEMA_MEDIA_TYPE)

    @router.get(
        "/v1/schemas/{event_type}/{version}",
        summary="JSON Schema (2020-12) of an event type's envelope at a version",
        response_class=JSONResponse,
        responses=responses,
    )
    async def versioned_schema(event_type: str, version: int) -> JSONResponse:
        return JSONResponse(json_schema(event_type, version), media_type=SCHEMA_MEDIA_TYPE)

    return router


if __name__ == "__main__":
    print(render(document()), end="")
