from __future__ import annotations

import uuid
from datetime import datetime

import pytest
from pydantic import BaseModel, ValidationError

from shared.catalogue import TownshipCreated, VillageCreated
from shared.events import Envelope, EventType, UnknownEventType, catalogue, new_event, parse_payload, register


def test_envelope_round_trips_through_bytes() -> None:
    event = new_event(
        "registry.village.created",
        "410100001001",
        VillageCreated(code="410100001001", name="东村", township_code="410100001"),
    )
    again = Envelope.from_bytes(event.to_bytes())
    assert again == event
    assert again.topic == "registry.events"
    assert again.source == "registry" and again.version == 1
    assert parse_payload(again, VillageCreated).township_code == "410100001"


def test_envelope_refuses_naive_time_unknown_source_and_extra_fields() -> None:
    base = {
        "event_id": str(uuid.uuid4()),
        "type": "loans.loan.classified",
        "version": 1,
        "occurred_at": "2026-11-21T08:00:00+08:00",
        "source": "loans",
        "key": "V1",
        "payload": {},
    }
    Envelope.model_validate(base)
    for bad in (
        {"occurred_at": datetime(2026, 11, 21, 8)},
        {"source": "bank"},
        {"type": "loans"},
        {"key": ""},
        {"version": 0},
        {"extra": 1},
    ):
        with pytest.raises(ValidationError):
            Envelope.model_validate(base | bad)


def test_new_event_checks_the_catalogue() -> None:
    with pytest.raises(UnknownEventType):
        new_event("registry.nothing.happened", "V1", TownshipCreated(code="T", name="n"))
    with pytest.raises(TypeError, match="takes VillageCreated"):
        new_event("registry.village.created", "V1", TownshipCreated(code="T", name="n"))


def test_register_refuses_a_conflicting_redefinition() -> None:
    class Other(BaseModel):
        x: int

    existing = catalogue()["registry.township.created"]
    assert register(existing) is existing  # re-registering the same definition is harmless
    with pytest.raises(ValueError, match="registered twice"):
        register(EventType("registry.township.created", 2, Other, "conflict"))


def test_every_registered_type_names_its_source_topic() -> None:
    for name, event_type in catalogue().items():
        assert name.startswith(event_type.source + ".")
