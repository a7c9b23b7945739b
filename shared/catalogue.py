"""Payload models of every public event, registered with their versions.

Consumers in other services parse payloads with these models, so a field renamed here is a
contract change: add a new version instead (API.md: extend, never break).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from shared.events import EventType, register


class _Payload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TownshipCreated(_Payload):
    code: str
    name: str


class VillageCreated(_Payload):
    code: str
    name: str
    township_code: str


REGISTRY_TOWNSHIP_CREATED = register(
    EventType("registry.township.created", 1, TownshipCreated, "A township (乡/涉农街道) was registered.")
)
REGISTRY_VILLAGE_CREATED = register(
    EventType("registry.village.created", 1, VillageCreated, "An administrative village (行政村) was registered.")
)
