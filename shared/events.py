"""The event envelope of API.md and the catalogue of event types.

Every event type is registered once with its version and payload model, so a producer
cannot emit a payload the catalogue does not describe, and the AsyncAPI document can be
generated from the same registry.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

Source = Literal["registry", "scoring", "loans", "risk", "notify"]
P = TypeVar("P", bound=BaseModel)


class Envelope(BaseModel):
    # Malformed envelopes are logged and dead-lettered: errors without the payload's values.
    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    event_id: uuid.UUID
    type: str = Field(pattern=r"^(registry|scoring|loans|risk|notify)\.[a-z_]+\.[a-z_]+$")
    version: int = Field(ge=1)
    occurred_at: AwareDatetime
    source: Source
    # Partition key: the village code, so each village's events stay in order (API.md).
    key: str = Field(min_length=1)
    payload: dict[str, Any]

    @property
    def topic(self) -> str:
        return topic_of(self.source)

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> Envelope:
        return cls.model_validate_json(raw)


def topic_of(source: str) -> str:
    return f"{source}.events"


def dlq_topic_of(topic: str) -> str:
    return f"{topic}.dlq"


@dataclass(frozen=True)
class PartitionKey:
    """What the events of a type carry as ``key``, the topic's partition key: events with one
    key stay in order. The emitters choose it (``new_event``'s ``key``); this says which, for
    the AsyncAPI document (shared/asyncapi.py), and the integration tests hold every emitted
    event to it (tests/support/event_schemas.py).

    ``fields``: payload fields, the first one set is the key; ``constant``: one key for the
    whole stream; neither: ``description`` says where it comes from (the payload lacks it)."""

    description: str
    fields: tuple[str, ...] = ()
    constant: str | None = None

    def of(self, payload: Mapping[str, Any]) -> str | None:
        """The key an event with this payload carries; None when the payload does not say."""
        if self.constant is not None:
            return self.constant
        return next((str(payload[f]) for f in self.fields if payload.get(f)), None)


# API.md: "Partition key is the village code, so each village's events stay in order".
BY_VILLAGE = PartitionKey("The village code (行政村), so each village's events stay in order.", ("village_code",))


@dataclass(frozen=True)
class EventType:
    name: str
    version: int
    payload: type[BaseModel]
    description: str
    public: bool = True
    key: PartitionKey = BY_VILLAGE

    @property
    def source(self) -> Source:
        source = self.name.split(".", 1)[0]
        assert source in ("registry", "scoring", "loans", "risk", "notify"), source
        return source  # type: ignore[return-value]


_CATALOGUE: dict[str, EventType] = {}


class UnknownEventType(LookupError):
    pass


def register(event_type: EventType) -> EventType:
    existing = _CATALOGUE.get(event_type.name)
    if existing is not None and existing != event_type:
        raise ValueError(f"event type {event_type.name} registered twice with different definitions")
    _CATALOGUE[event_type.name] = event_type
    return event_type


def catalogue() -> dict[str, EventType]:
    return dict(_CATALOGUE)


def lookup(name: str) -> EventType:
    try:
        return _CATALOGUE[name]
    except KeyError:
        raise UnknownEventType(name) from None


def new_event(type_name: str, key: str, payload: BaseModel, *, occurred_at: datetime | None = None) -> Envelope:
    """Build an envelope for a registered type, validating the payload against the catalogue."""
    event_type = lookup(type_name)
    if not isinstance(payload, event_type.payload):
        raise TypeError(f"{type_name} takes {event_type.payload.__name__}, not {type(payload).__name__}")
    return Envelope(
        event_id=uuid.uuid4(),
        type=type_name,
        version=event_type.version,
        occurred_at=occurred_at or datetime.now(UTC),
        source=event_type.source,
        key=key,
        payload=payload.model_dump(mode="json"),
    )


def parse_payload(envelope: Envelope, model: type[P]) -> P:
    return model.model_validate(envelope.payload)
