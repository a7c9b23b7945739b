"""notify's request and response bodies."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, field_validator

import shared.catalogue  # noqa: F401  (the catalogue the event types are checked against)
from shared.events import catalogue
from shared.timestamps import UtcDateTime


class SubscriptionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # HttpUrl accepts http and https only (no file:, ftp: or javascript:).
    url: HttpUrl
    events: list[str] = Field(min_length=1, max_length=200)
    # Long enough that it cannot be guessed; the receiver keeps a copy to verify signatures.
    secret: str = Field(min_length=16, max_length=255)

    @field_validator("events")
    @classmethod
    def _known_types(cls, events: list[str]) -> list[str]:
        known = {name for name, t in catalogue().items() if t.public and t.source != "notify"}
        unknown = [e for e in events if e != "*" and e not in known]
        if unknown:
            raise ValueError(f"unknown event types: {', '.join(unknown)} (see the catalogue, or '*' for all)")
        return list(dict.fromkeys(events))


class SubscriptionOut(BaseModel):
    subscription_id: str
    url: str
    events: list[str]
    active: bool
    created_by: str
    created_at: UtcDateTime
    deactivated_at: UtcDateTime | None


DeliveryStatus = Literal["pending", "delivered", "dead"]


class DeliveryOut(BaseModel):
    delivery_id: int
    subscription_id: str
    event_id: str
    event_type: str
    status: DeliveryStatus
    attempts: int
    last_status_code: int | None
    last_error: str | None
    created_at: UtcDateTime
    last_attempt_at: UtcDateTime | None
    next_attempt_at: UtcDateTime | None  # only while pending
    delivered_at: UtcDateTime | None
    redeliveries: int


class BulletinOut(BaseModel):
    bulletin_id: str
    kind: str
    township_code: str
    township_name: str
    business_date: date | None
    issued_at: UtcDateTime
    villages: int
    villages_over_threshold: int
    villages_over: list[dict[str, str]]
    text_zh: str
    text_en: str


class NoticeOut(BaseModel):
    notice_id: int
    kind: str
    village_code: str | None
    township_code: str | None
    occurred_at: UtcDateTime
    notice_ends: date | None
    details: dict[str, Any]
