"""Prometheus metrics of one service: what an operator watches (issue 10).

Each service has its own ``CollectorRegistry``, not prometheus_client's global one:
``vcredit up`` runs all five services in one process, and each answers ``/metrics`` for
itself alone. Counters count in the process; gauges that describe shared state (outbox
backlog, consumer lag, dead letters, the programme's own figures) are read when scraped,
so they are never stale and cost nothing between scrapes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property

from fastapi import APIRouter, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.logs import bind_request_id, bind_service
from shared.web import scope

# Close of business takes minutes for a million loans (bench/cob.py); the default buckets
# stop at 10 s.
COB_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200)
# A scrape that waits longer than this on the database or the broker reports what it has.
SAMPLE_TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True)
class SampledGauge:
    """A figure of the programme read from the service's own database at scrape time."""

    name: str
    documentation: str
    # A count, or money in whole fen: Prometheus holds float64, exact for integers below 2**53
    # fen (90 trillion yuan), where yuan with fractions would not be.
    read: Callable[[AsyncSession], Awaitable[int]]


class ServiceMetrics:
    def __init__(self, service: str, gauges: Sequence[SampledGauge] = ()) -> None:
        self.service = service
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        r = self.registry
        self.http_duration = Histogram(
            "vcredit_http_request_duration_seconds",
            "HTTP requests by route template and status, from first byte in to last byte out",
            ["method", "route", "status"],
            registry=r,
        )
        self.events_produced = Counter(
            "vcredit_events_produced",
            "Events the outbox relay published and the bus acknowledged",
            ["topic", "type"],
            registry=r,
        )
        self.events_consumed = Counter(
            "vcredit_events_consumed",
            "Events taken by this service's consumer: applied, duplicate (already in the inbox) or dead_lettered",
            ["topic", "type", "outcome"],
            registry=r,
        )
        self.handler_retries = Counter(
            "vcredit_event_handler_retries", "Failed handler tries that were tried again", ["topic", "type"], registry=r
        )
        self.consumer_lag = Gauge(
            "vcredit_consumer_lag",
            "Events in the partitions this member holds that it has not yet read",
            ["topic", "partition"],
            registry=r,
        )
        self.consumer_stalls = Counter(
            "vcredit_consumer_stalls",
            "Group members the consumer's watchdog found stalled and replaced",
            registry=r,
        )
        self.outbox_backlog = Gauge(
            "vcredit_outbox_backlog", "Events committed to the outbox and not yet published", registry=r
        )
        self.dead_letters = Gauge(
            "vcredit_dlq_messages",
            "Events held in each dead-letter topic this service parks into, replayed or not "
            "(a topic is shared by every consumer of its source; `vcredit dlq list` tells whose)",
            ["topic"],
            registry=r,
        )
        self.sampled = {g.name: (g, Gauge(g.name, g.documentation, registry=r)) for g in gauges}

    @cached_property
    def cob_duration(self) -> Histogram:
        # Created on first use, so only loans (which closes business days) exposes it.
        return Histogram(
            "vcredit_cob_duration_seconds",
            "Close of business of one business day",
            buckets=COB_BUCKETS,
            registry=self.registry,
        )

    def set_lag(self, lag: Mapping[tuple[str, int], int]) -> None:
        self.consumer_lag.clear()  # partitions move between members on a rebalance
        for (topic, partition), behind in lag.items():
            self.consumer_lag.labels(topic, str(partition)).set(behind)

    def set_dead_letters(self, sizes: Mapping[str, int]) -> None:
        for topic, size in sizes.items():
            self.dead_letters.labels(topic).set(size)

    async def sample(self, session: AsyncSession) -> None:
        for gauge, metric in self.sampled.values():
            metric.set(await asyncio.wait_for(gauge.read(session), SAMPLE_TIMEOUT_SECONDS))


class HttpMetrics:
    """ASGI middleware: the request id of every request and its latency by route template.

    Raw paths would make a time series per household; unmatched paths share one label."""

    def __init__(self, app: ASGIApp, *, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        bind_service(self.metrics.service)
        headers = dict(scope.get("headers") or ())
        request_id = bind_request_id(headers.get(b"x-request-id", b"").decode("latin-1"))
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.http_duration.labels(scope["method"], template, str(status)).observe(
                time.perf_counter() - started
            )


def metrics_router() -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get(
        "/metrics",
        summary="Prometheus metrics of this service (text exposition format)",
        response_class=Response,
        responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}},
        dependencies=[scope("metrics:read")],
    )
    async def metrics(request: Request) -> Response:
        runtime = request.app.state.runtime
        await runtime.sample_metrics()
        return Response(generate_latest(runtime.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return router
