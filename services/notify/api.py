from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.notify import context, egress, subscriptions
from services.notify.dispatcher import cipher_for
from services.notify.models import Bulletin, Delivery, Notice, StreamEvent, Subscription
from services.notify.schemas import (
    BulletinOut,
    DeliveryOut,
    DeliveryStatus,
    NoticeOut,
    SubscriptionIn,
    SubscriptionOut,
)
from services.notify.settings import NotifySettings
from shared.db import BIGINT_MAX
from shared.idempotency import IDEMPOTENCY_KEY, idempotent
from shared.openapi import problems
from shared.paging import MAX_PAGE, Limit, Offset
from shared.problems import Problem
from shared.web import CurrentPrincipal, ReadSession, Session, scope

router = APIRouter(prefix="/v1")

# --- subscriptions --------------------------------------------------------------------------


def _subscription_out(s: Subscription) -> SubscriptionOut:
    return SubscriptionOut(
        subscription_id=s.id,
        url=s.url,
        events=list(s.events),
        active=s.active,
        created_by=s.created_by,
        created_at=s.created_at,
        deactivated_at=s.deactivated_at,
    )


@router.post(
    "/subscriptions",
    status_code=201,
    response_model=SubscriptionOut,
    tags=["webhooks"],
    dependencies=[scope("subscriptions:manage"), IDEMPOTENCY_KEY],
    responses=problems({422: ["WEBHOOK_ADDRESS_REFUSED"]}),
)
async def create_subscription(
    body: SubscriptionIn, request: Request, session: Session, principal: CurrentPrincipal
) -> SubscriptionOut | JSONResponse:
    """Register a webhook. Each matching event is POSTed as a CloudEvent in HTTP binary mode:
    the body is its envelope JSON, ``ce-id``, ``ce-source``, ``ce-type``, ``ce-time``,
    ``ce-dataschema``, ``ce-partitionkey`` and ``ce-specversion: 1.0`` are headers. It is signed
    per Standard Webhooks 1.0: ``webhook-id`` (the event id), ``webhook-timestamp`` and
    ``webhook-signature: v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>``; the key is
    the secret's bytes (``whsec_<base64>``: the decoded bytes). Reject timestamps more than 5
    minutes old (replay protection); deduplicate on ``webhook-id``. Deprecated, removed in the
    next release: ``X-Vcredit-Event-Id``, ``X-Vcredit-Event-Type``, ``X-Vcredit-Timestamp``,
    ``X-Vcredit-Signature``. 422 ``VALIDATION_FAILED`` for a ``whsec_`` secret that is not base64
    of 24+ bytes; 422 ``WEBHOOK_ADDRESS_REFUSED`` for a URL whose host is not a public address
    (egress.py). See docs/webhooks.md."""
    settings = context.settings()
    # Before the transaction: a DNS lookup holds no database lock.
    await egress.check_subscription_url(
        str(body.url), settings.webhook_allowed_networks, settings.webhook_timeout_seconds
    )
    cipher = cipher_for(request.app.state.runtime)

    async def subscribed() -> SubscriptionOut:
        sub = await subscriptions.subscribe(session, cipher, str(body.url), body.events, body.secret, principal.name)
        return _subscription_out(sub)

    return await idempotent(session, request, body, subscribed, status=201)


@router.get(
    "/subscriptions",
    response_model=list[SubscriptionOut],
    tags=["webhooks"],
    dependencies=[scope("subscriptions:manage")],
)
async def list_subscriptions(
    session: ReadSession,
    active: bool | None = None,
    limit: Limit = MAX_PAGE,
    offset: Offset = 0,
) -> list[SubscriptionOut]:
    query = select(Subscription).order_by(Subscription.created_at, Subscription.id).limit(limit).offset(offset)
    if active is not None:
        query = query.where(Subscription.active.is_(active))
    return [_subscription_out(s) for s in await session.scalars(query)]


@router.get(
    "/subscriptions/{subscription_id}",
    response_model=SubscriptionOut,
    tags=["webhooks"],
    dependencies=[scope("subscriptions:manage")],
    responses=problems({404: ["SUBSCRIPTION_NOT_FOUND"]}),
)
async def get_subscription(subscription_id: str, session: ReadSession) -> SubscriptionOut:
    return _subscription_out(await subscriptions.subscription_or_404(session, subscription_id))


@router.delete(
    "/subscriptions/{subscription_id}",
    response_model=SubscriptionOut,
    tags=["webhooks"],
    dependencies=[scope("subscriptions:manage")],
    responses=problems({404: ["SUBSCRIPTION_NOT_FOUND"]}),
)
async def deactivate_subscription(subscription_id: str, session: Session) -> SubscriptionOut:
    """Deactivate (kept for its delivery log): no new deliveries, pending ones are not sent."""
    async with session.begin():
        return _subscription_out(await subscriptions.deactivate(session, subscription_id))


# --- deliveries -----------------------------------------------------------------------------


def _delivery_out(d: Delivery) -> DeliveryOut:
    return DeliveryOut(
        delivery_id=d.id,
        subscription_id=d.subscription_id,
        event_id=d.event_id,
        event_type=d.event_type,
        status=d.status,
        attempts=d.attempts,
        last_status_code=d.last_status_code,
        last_error=d.last_error,
        created_at=d.created_at,
        last_attempt_at=d.last_attempt_at,
        next_attempt_at=d.next_attempt_at if d.status == "pending" else None,
        delivered_at=d.delivered_at,
        redeliveries=d.redeliveries,
    )


@router.get(
    "/subscriptions/{subscription_id}/deliveries",
    response_model=list[DeliveryOut],
    tags=["webhooks"],
    dependencies=[scope("subscriptions:manage")],
    responses=problems({404: ["SUBSCRIPTION_NOT_FOUND"]}),
)
async def subscription_deliveries(
    subscription_id: str,
    session: ReadSession,
    status: DeliveryStatus | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[DeliveryOut]:
    await subscriptions.subscription_or_404(session, subscription_id)
    query = select(Delivery).where(Delivery.subscription_id == subscription_id)
    if status is not None:
        query = query.where(Delivery.status == status)
    query = query.order_by(Delivery.id.desc()).limit(limit).offset(offset)
    return [_delivery_out(d) for d in await session.scalars(query)]


@router.get(
    "/deliveries", response_model=list[DeliveryOut], tags=["webhooks"], dependencies=[scope("subscriptions:manage")]
)
async def list_deliveries(
    session: ReadSession,
    status: DeliveryStatus | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[DeliveryOut]:
    query = select(Delivery)
    if status is not None:
        query = query.where(Delivery.status == status)
    query = query.order_by(Delivery.id.desc()).limit(limit).offset(offset)
    return [_delivery_out(d) for d in await session.scalars(query)]


@router.post(
    "/deliveries/{delivery_id}/redeliver",
    response_model=DeliveryOut,
    tags=["webhooks"],
    dependencies=[scope("subscriptions:manage")],
    responses=problems(
        {404: ["DELIVERY_NOT_FOUND", "SUBSCRIPTION_NOT_FOUND"], 409: ["DELIVERY_PENDING", "SUBSCRIPTION_INACTIVE"]}
    ),
)
async def redeliver(delivery_id: Annotated[int, Path(ge=1, le=BIGINT_MAX)], session: Session) -> DeliveryOut:
    """Queue a dead (or delivered) delivery again, with a fresh set of tries."""
    async with session.begin():
        return _delivery_out(await subscriptions.redeliver(session, delivery_id))


# --- the live stream ------------------------------------------------------------------------


def _resume_point(header: str | None, query: int | None) -> int:
    if header is None:
        return query or 0
    try:
        value = int(header)
    except ValueError:
        raise Problem(422, "VALIDATION_FAILED", "Invalid request", "Last-Event-ID must be an integer.") from None
    if not 0 <= value <= BIGINT_MAX:
        raise Problem(422, "VALIDATION_FAILED", "Invalid request", f"Last-Event-ID must be 0 to {BIGINT_MAX}.")
    return value


async def _sse(
    request: Request, sessions: async_sessionmaker[AsyncSession], after: int, settings: NotifySettings
) -> AsyncIterator[str]:
    # Tells EventSource how long to wait before reconnecting; it then sends Last-Event-ID.
    yield "retry: 2000\n\n"
    last_sent = time.monotonic()
    while not await request.is_disconnected():
        async with sessions() as session:
            rows = (
                await session.execute(
                    select(StreamEvent.seq, StreamEvent.type, StreamEvent.envelope)
                    .where(StreamEvent.seq > after)
                    .order_by(StreamEvent.seq)
                    .limit(500)
                )
            ).all()
        for row in rows:
            # The envelope JSON is one line (no raw newlines), as one data: field requires.
            yield f"id: {row.seq}\nevent: {row.type}\ndata: {row.envelope}\n\n"
            after = row.seq
        if rows:
            last_sent = time.monotonic()
            if len(rows) == 500:
                continue
        elif time.monotonic() - last_sent >= settings.keepalive_seconds:
            # A comment line: keeps proxies from closing an idle connection.
            yield ": keep-alive\n\n"
            last_sent = time.monotonic()
        await asyncio.sleep(settings.poll_seconds)


@router.get("/stream", tags=["stream"], response_class=StreamingResponse, dependencies=[scope("events:read")])
async def stream(
    request: Request,
    last_event_id: int | None = Query(default=None, ge=0, le=BIGINT_MAX),
    last_event_id_header: str | None = Header(default=None, alias="Last-Event-ID"),
) -> StreamingResponse:
    """Server-Sent Events of the public events (services/notify/domain/public.py): ``id`` is
    notify's sequence number, ``event`` the type, ``data`` the envelope. Resume strictly after
    an id with the ``Last-Event-ID`` header or ``?last_event_id=``; 0 replays everything kept."""
    after = _resume_point(last_event_id_header, last_event_id)
    sessions = request.app.state.runtime.read_sessions
    return StreamingResponse(
        _sse(request, sessions, after, context.settings()),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


# --- bulletins and notices ------------------------------------------------------------------


@router.get("/bulletins", response_model=list[BulletinOut], tags=["bulletins"], dependencies=[scope("bulletins:read")])
async def list_bulletins(
    session: ReadSession,
    township_code: str | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[BulletinOut]:
    """District bulletins (通报), newest first. Any authenticated role."""
    query = select(Bulletin).order_by(Bulletin.issued_at.desc(), Bulletin.bulletin_id).limit(limit).offset(offset)
    if township_code is not None:
        query = query.where(Bulletin.township_code == township_code)
    out: list[BulletinOut] = []
    for b in await session.scalars(query):
        p = b.payload
        out.append(
            BulletinOut(
                bulletin_id=b.bulletin_id,
                kind=b.kind,
                township_code=b.township_code,
                township_name=p.get("township_name", ""),
                business_date=p.get("business_date"),
                issued_at=b.issued_at,
                villages=p.get("villages", 0),
                villages_over_threshold=p.get("villages_over_threshold", 0),
                villages_over=p.get("villages_over", []),
                text_zh=p.get("text_zh", ""),
                text_en=p.get("text_en", ""),
            )
        )
    return out


@router.get("/notices", response_model=list[NoticeOut], tags=["bulletins"], dependencies=[scope("bulletins:read")])
async def list_notices(
    session: ReadSession,
    village_code: str | None = None,
    kind: str | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[NoticeOut]:
    """Village notices, newest first: freezes and lifts, titles, and rating notices (公示)
    with the date their notice period ends. Any authenticated role."""
    query = select(Notice).order_by(Notice.occurred_at.desc(), Notice.id.desc()).limit(limit).offset(offset)
    if village_code is not None:
        query = query.where(Notice.village_code == village_code)
    if kind is not None:
        query = query.where(Notice.kind == kind)
    return [
        NoticeOut(
            notice_id=n.id,
            kind=n.kind,
            village_code=n.village_code,
            township_code=n.township_code,
            occurred_at=n.occurred_at,
            notice_ends=n.notice_ends,
            details=n.payload,
        )
        for n in await session.scalars(query)
    ]
