"""notify's request and response bodies."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, field_validator

import shared.catalogue  # noqa: F401  (the catalogue the event types are checked against)
from services.notify.domain.signing import MIN_KEY_BYTES, SECRET_PREFIX, decode_standard_secret
from shared.events import catalogue
from shared.timestamps import UtcDateTime


class SubscriptionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # HttpUrl accepts http and https only (no file:, ftp: or javascript:).
    url: HttpUrl
    events: list[str] = Field(min_length=1, max_length=200)
    # Long enough that it cannot be guessed; the receiver keeps a copy to verify signatures.
    # Best a Standard Webhooks secret, ``whsec_`` + base64 of 24+ random bytes (signing.py).
    secret: str = Field(min_length=16, max_length=255)

    @field_validator("secret")
    @classmethod
    def _standard_secret_well_formed(cls, secret: str) -> str:
        # A secret that says it is a Standard Webhooks one must be one: otherwise notify would
        # sign with its text while the receiver's library signs with what it decodes.
        if secret.startswith(SECRET_PREFIX):
            key = decode_standard_secret(secret)
            if key is None or len(key) < MIN_KEY_BYTES:
                raise ValueError(
                    f"a secret starting with {SECRET_PREFIX} is base64 of at least {MIN_KEY_BYTES} bytes "
                    "(Standard Webhooks)"
                )
        return secret

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
