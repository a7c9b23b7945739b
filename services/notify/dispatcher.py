"""Sends queued webhook deliveries.

- **Lease instead of lock**: claiming a delivery moves its ``next_attempt_at`` past the
  longest a call can take, in the claiming transaction. The result of the call then sets
  the real state. If the process dies mid-call, the lease runs out and the delivery is due
  again: at-least-once (receivers deduplicate on ``webhook-id``, the event id). On PostgreSQL
  replicas skip rows another replica is claiming (``FOR UPDATE SKIP LOCKED``).
- **Isolation**: each call is its own task; the loop never awaits a subscriber. At most
  ``per_subscriber_concurrency`` calls go to one subscriber and ``max_concurrency`` in all,
  and saturated subscribers are left out of the claim query, so a slow or dead subscriber
  holds only its own slots and never delays the others' deliveries.
- Every call is bounded by ``webhook_timeout_seconds`` in total (connect to last byte).
- **Where calls go**: only to addresses the rule allows, checked on every connection
  (egress.py); a refused address is a failed try with no connection made. The log keeps
  the status and a short sanitised excerpt of a failed answer (domain/excerpt.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import select, update

from services.notify import context
from services.notify.domain.excerpt import READ_BYTES, excerpt
from services.notify.domain.retry import after_attempt, is_success
from services.notify.domain.signing import signature_header, standard_headers
from services.notify.egress import AddressRefused, webhook_client
from services.notify.models import Delivery, Subscription
from services.notify.settings import NotifySettings
from shared.cloudevents import http_headers
from shared.db import dialect_of
from shared.events import Envelope
from shared.pii import PiiCipher, load_cipher
from shared.runtime import ServiceRuntime

log = logging.getLogger(__name__)

LEASE_MARGIN_SECONDS = 30.0
USER_AGENT = "vcredit-notify/1"


@dataclass(frozen=True)
class Claimed:
    id: int
    subscription_id: str
    event_id: str
    event_type: str
    envelope: str
    attempts: int
    url: str
    secret_encrypted: str


def signed_headers(secret: str, envelope: Envelope, body: bytes, timestamp: int) -> dict[str, str]:
    """The request's headers: the event as a CloudEvent in HTTP binary mode (``ce-*``, the
    body is the envelope), signed per Standard Webhooks (``webhook-*``), and the deprecated
    ``X-Vcredit-*`` headers of before (removed in the next release: docs/webhooks.md)."""
    event_id = str(envelope.event_id)
    return {
        "User-Agent": USER_AGENT,
        **http_headers(envelope),
        **standard_headers(secret, event_id, timestamp, body),
        "X-Vcredit-Event-Id": event_id,
        "X-Vcredit-Event-Type": envelope.type,
        "X-Vcredit-Timestamp": str(timestamp),
        "X-Vcredit-Signature": signature_header(secret, timestamp, body),
    }


def cipher_for(runtime: ServiceRuntime) -> PiiCipher:
    return load_cipher(runtime.common)


class Dispatcher:
    def __init__(self, runtime: ServiceRuntime, settings: NotifySettings, cipher: PiiCipher) -> None:
        self.runtime = runtime
        self.settings = settings
        self.cipher = cipher
        self._per_subscriber: Counter[str] = Counter()
        self._tasks: set[asyncio.Task[None]] = set()
        self._slot_freed = asyncio.Event()

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    async def run(self) -> None:
        settings = self.settings
        client = webhook_client(
            settings.webhook_allowed_networks, settings.webhook_timeout_seconds, settings.max_concurrency
        )
        async with client:
            try:
                while True:
                    try:
                        claimed = await self.dispatch_once(client)
                    except asyncio.CancelledError:
                        raise
                    except Exception:
                        log.exception("webhook dispatcher round failed; retrying")
                        claimed = 0
                    if claimed == 0:
                        # Wait for new rows (poll) or for a slot to free up, whichever first.
                        self._slot_freed.clear()
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(self._slot_freed.wait(), self.settings.poll_seconds)
            finally:
                for task in self._tasks:
                    task.cancel()
                if self._tasks:
                    await asyncio.wait(self._tasks, timeout=5)

    async def dispatch_once(self, client: httpx.AsyncClient) -> int:
        free = self.settings.max_concurrency - self.in_flight
        if free <= 0:
            return 0
        per_sub = self.settings.per_subscriber_concurrency
        saturated = [s for s, n in self._per_subscriber.items() if n >= per_sub]
        now = datetime.now(UTC)
        async with self.runtime.sessions() as session, session.begin():
            query = (
                select(
                    Delivery.id,
                    Delivery.subscription_id,
                    Delivery.event_id,
                    Delivery.event_type,
                    Delivery.envelope,
                    Delivery.attempts,
                    Subscription.url,
                    Subscription.secret_encrypted,
                )
                .join(Subscription, Subscription.id == Delivery.subscription_id)
                .where(Delivery.status == "pending", Delivery.next_attempt_at <= now, Subscription.active.is_(True))
                .order_by(Delivery.next_attempt_at, Delivery.id)
                .limit(free * 4)
            )
            if saturated:
                query = query.where(Delivery.subscription_id.not_in(saturated))
            if dialect_of(session) == "postgresql":
                query = query.with_for_update(of=Delivery, skip_locked=True)
            picked: list[Claimed] = []
            taking: Counter[str] = Counter()
            for row in await session.execute(query):
                if len(picked) >= free:
                    break
                if self._per_subscriber[row.subscription_id] + taking[row.subscription_id] >= per_sub:
                    continue
                taking[row.subscription_id] += 1
                picked.append(Claimed(*row))
            if not picked:
                return 0
            lease = now + timedelta(seconds=self.settings.webhook_timeout_seconds + LEASE_MARGIN_SECONDS)
            await session.execute(
                update(Delivery).where(Delivery.id.in_([c.id for c in picked])).values(next_attempt_at=lease)
            )
        for claimed in picked:
            self._per_subscriber[claimed.subscription_id] += 1
            task = asyncio.create_task(self._deliver(client, claimed), name=f"webhook-{claimed.id}")
            self._tasks.add(task)
            task.add_done_callback(functools.partial(self._done, claimed=claimed))
        return len(picked)

    def _done(self, task: asyncio.Task[None], *, claimed: Claimed) -> None:
        self._tasks.discard(task)
        self._per_subscriber[claimed.subscription_id] -= 1
        if self._per_subscriber[claimed.subscription_id] <= 0:
            del self._per_subscriber[claimed.subscription_id]
        self._slot_freed.set()
        if not task.cancelled() and task.exception() is not None:
            log.error("webhook delivery %s failed to record its result", claimed.id, exc_info=task.exception())

    async def _deliver(self, client: httpx.AsyncClient, claimed: Claimed) -> None:
        body = claimed.envelope.encode()
        status_code: int | None = None
        error: str | None = None
        try:
            secret = self.cipher.decrypt(claimed.secret_encrypted)
            envelope = Envelope.from_bytes(body)
            headers = signed_headers(secret, envelope, body, int(time.time()))
            async with (
                asyncio.timeout(self.settings.webhook_timeout_seconds),
                client.stream("POST", claimed.url, content=body, headers=headers) as response,
            ):
                status_code = response.status_code
                answer = await _head(response, READ_BYTES)
            if not is_success(status_code):
                said = excerpt(answer)
                error = f"HTTP {status_code}: {said}" if said else f"HTTP {status_code}"
        except TimeoutError:
            error = f"timed out after {self.settings.webhook_timeout_seconds}s"
        except AddressRefused as refused:
            error = excerpt(f"refused: {refused}, not a webhook receiver (VCREDIT_NOTIFY_WEBHOOK_ALLOWED_NETWORKS)")
        except httpx.HTTPError as exc:
            error = excerpt(f"{type(exc).__name__}: {exc}")
        outcome = after_attempt(
            claimed.attempts,
            status_code,
            max_attempts=self.settings.max_attempts,
            base=self.settings.retry_base_seconds,
            cap=self.settings.retry_max_seconds,
        )
        now = datetime.now(UTC)
        async with self.runtime.sessions() as session, session.begin():
            # Only a delivery still pending is ours to update (an operator may have acted).
            await session.execute(
                update(Delivery)
                .where(Delivery.id == claimed.id, Delivery.status == "pending")
                .values(
                    status=outcome.status,
                    attempts=outcome.attempts,
                    last_status_code=status_code,
                    last_error=error,
                    last_attempt_at=now,
                    delivered_at=now if outcome.status == "delivered" else None,
                    next_attempt_at=now + timedelta(seconds=outcome.retry_in or 0.0),
                )
            )
        if outcome.status == "dead":
            # The origin only: webhook URLs often carry their credential in the path or query.
            origin = httpx.URL(claimed.url).copy_with(path="/", query=None, fragment=None, username=None, password=None)
            log.warning(
                "webhook delivery %s (subscription %s, %s) is dead after %d tries",
                claimed.id,
                claimed.subscription_id,
                str(origin).rstrip("/"),
                outcome.attempts,
            )


async def _head(response: httpx.Response, limit: int) -> bytes:
    """The first ``limit`` bytes of the answer's body (decoded from its content encoding);
    the rest is never read."""
    head = b""
    async for chunk in response.aiter_bytes():
        head += chunk
        if len(head) >= limit:
            break
    return head[:limit]


async def run_dispatcher(runtime: ServiceRuntime) -> None:
    settings = context.settings()
    await Dispatcher(runtime, settings, cipher_for(runtime)).run()
