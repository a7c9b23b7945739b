"""Payload models of every public event, registered with their versions.

Consumers in other services parse payloads with these models, so a field renamed here is a
contract change: add a new version instead (API.md: extend, never break).
"""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

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


class UnitRenamed(_Payload):
    code: str
    old_name: str
    new_name: str


class CommunityCreated(_Payload):
    code: str
    name: str
    township_code: str


class HouseholdRegistered(_Payload):
    household_id: str
    village_code: str
    township_code: str
    poor_household: bool
    head_name: str
    id_number_masked: str
    members: int
    profile: dict[str, Any]  # Profile in JSON form, known fields only


class ProfileChanged(_Payload):
    """One per committed change. ``changed`` holds the new value of every field that
    changed (null = no longer known); ``profile`` is the whole profile after the change, so
    a consumer never needs to call back."""

    subject_kind: Literal["household", "business"]
    subject_id: str
    village_code: str
    township_code: str
    poor_household: bool | None = None
    changed: dict[str, Any]
    profile: dict[str, Any]
    disputed_fields: list[str]
    source: str
    supplied_by: str


class BusinessRegistered(_Payload):
    business_id: str
    credit_code: str
    name: str
    kind: str
    village_code: str
    township_code: str
    profile: dict[str, Any]


class ObjectionOpened(_Payload):
    objection_id: str
    subject_kind: Literal["household", "business"]
    subject_id: str
    village_code: str
    fact_id: int
    field: str
    due_on: date


class ObjectionDecided(_Payload):
    objection_id: str
    subject_kind: Literal["household", "business"]
    subject_id: str
    village_code: str
    field: str
    outcome: Literal["corrected", "upheld", "unresolved"]
    decided_by: str


for _name, _model, _text in (
    ("registry.township.renamed", UnitRenamed, "A township was renamed; the old name is kept in its history."),
    ("registry.village.renamed", UnitRenamed, "A village was renamed; the old name is kept in its history."),
    ("registry.community.created", CommunityCreated, "An urban community (社区) was registered."),
    ("registry.household.registered", HouseholdRegistered, "A household (农户) was registered with its profile."),
    ("registry.household.profile_changed", ProfileChanged, "Facts about a household changed."),
    ("registry.business.registered", BusinessRegistered, "An agricultural business (带贫经营主体) was registered."),
    ("registry.business.profile_changed", ProfileChanged, "Facts about a business changed."),
    ("registry.objection.opened", ObjectionOpened, "A subject disputes a fact (异议); it is marked disputed."),
    ("registry.objection.decided", ObjectionDecided, "An objection was decided: corrected, upheld or unresolved."),
):
    register(EventType(_name, 1, _model, _text))
