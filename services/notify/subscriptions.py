"""Webhook subscriptions: registering one (its secret kept encrypted), deactivating it, and
queueing one of its deliveries again. The dispatcher (dispatcher.py) sends what is queued."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from services.notify.models import Delivery, Subscription
from shared.pii import PiiCipher
from shared.problems import Problem


async def subscription_or_404(session: AsyncSession, subscription_id: str) -> Subscription:
    sub = await session.get(Subscription, subscription_id)
    if sub is None:
        raise Problem(404, "SUBSCRIPTION_NOT_FOUND", "Subscription not found", f"No subscription {subscription_id}.")
    return sub


async def subscribe(
    session: AsyncSession, cipher: PiiCipher, url: str, events: list[str], secret: str, created_by: str
) -> Subscription:
    sub = Subscription(
        id=str(uuid.uuid4()),
        url=url,
        events=events,
        secret_encrypted=cipher.encrypt(secret),
        active=True,
        created_by=created_by,
        created_at=datetime.now(UTC),
    )
    session.add(sub)
    await session.flush()
    return sub


async def deactivate(session: AsyncSession, subscription_id: str) -> Subscription:
    """Kept for its delivery log: no new deliveries, pending ones are not sent."""
    sub = await subscription_or_404(session, subscription_id)
    if sub.active:
        sub.active, sub.deactivated_at = False, datetime.now(UTC)
    return sub


async def redeliver(session: AsyncSession, delivery_id: int) -> Delivery:
    """A dead (or delivered) delivery queued again, with a fresh set of tries."""
    delivery = await session.get(Delivery, delivery_id, with_for_update=True)
    if delivery is None:
        raise Problem(404, "DELIVERY_NOT_FOUND", "Delivery not found", f"No delivery {delivery_id}.")
    if delivery.status == "pending":
        raise Problem(409, "DELIVERY_PENDING", "Delivery still pending", "It is queued or being sent already.")
    if not (await subscription_or_404(session, delivery.subscription_id)).active:
        raise Problem(409, "SUBSCRIPTION_INACTIVE", "Subscription inactive", "Its subscription was deactivated.")
    delivery.status, delivery.attempts, delivery.redeliveries = "pending", 0, delivery.redeliveries + 1
    delivery.next_attempt_at, delivery.delivered_at = datetime.now(UTC), None
    return delivery
