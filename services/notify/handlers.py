"""notify consumes every public event of the four other services with one handler.

It runs in the consumer's inbox transaction, so for each event, all at once or not at all:
one delivery row per matching active subscription (the dispatcher sends them later; a crash
before the commit means the event comes again, after it means the rows are there), the
stream row if the type is streamed, and the bulletin or notice it makes."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

import shared.catalogue  # noqa: F401  (registers every event type before we list them)
from services.notify.domain.public import BULLETIN, NOTICE_KINDS, is_streamed, subscription_matches
from services.notify.models import Bulletin, Delivery, Notice, StreamEvent, Subscription
from shared.events import Envelope, catalogue
from shared.messaging import Handler

_SUBSCRIPTIONS = "notify_active_subscriptions"


async def _active_subscriptions(session: AsyncSession) -> list[tuple[str, list[str]]]:
    # Loaded once per transaction: a consumer batch applies hundreds of events in one.
    cached: list[tuple[str, list[str]]] | None = session.info.get(_SUBSCRIPTIONS)
    if cached is None:
        rows = await session.execute(select(Subscription.id, Subscription.events).where(Subscription.active.is_(True)))
        cached = [(r.id, list(r.events)) for r in rows]
        session.info[_SUBSCRIPTIONS] = cached
    return cached


def _village_of(event: Envelope) -> str | None:
    p = event.payload
    if event.type.startswith("risk.title.") and p.get("kind") == "credit_village":
        return str(p["code"])
    value = p.get("village_code")
    return str(value) if value else None


async def on_event(session: AsyncSession, event: Envelope) -> None:
    now = datetime.now(UTC)
    raw = event.model_dump_json()
    event_id = str(event.event_id)
    deliveries: list[dict[str, Any]] = [
        {
            "subscription_id": sub_id,
            "event_id": event_id,
            "event_type": event.type,
            "envelope": raw,
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
            "redeliveries": 0,
        }
        for sub_id, types in await _active_subscriptions(session)
        if subscription_matches(types, event.type)
    ]
    if deliveries:
        await session.execute(insert(Delivery), deliveries)
    if is_streamed(event.type):
        session.add(StreamEvent(event_id=event_id, type=event.type, envelope=raw, received_at=now))
    if event.type == BULLETIN:
        p = event.payload
        session.add(
            Bulletin(
                bulletin_id=str(p["bulletin_id"]),
                event_id=event_id,
                kind=str(p["kind"]),
                township_code=str(p["township_code"]),
                issued_at=event.occurred_at,
                payload=p,
            )
        )
    if (kind := NOTICE_KINDS.get(event.type)) is not None:
        ends = event.payload.get("notice_ends")
        session.add(
            Notice(
                event_id=event_id,
                kind=kind,
                village_code=_village_of(event),
                township_code=event.payload.get("township_code"),
                occurred_at=event.occurred_at,
                notice_ends=date.fromisoformat(ends) if ends else None,
                payload=event.payload,
            )
        )
    # No flush per event: the batch's rows go in a few multi-row INSERTs at commit. A bad
    # row fails the batch there, and the one-by-one replay that follows pins it down.


def handlers() -> dict[str, Handler]:
    """Every public type of the other services (a type added to the catalogue is forwarded
    to webhooks without a change here)."""
    return {name: on_event for name, t in catalogue().items() if t.public and t.source != "notify"}
