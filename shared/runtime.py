"""What every service is made of at run time: its database, the outbox relay, the consumer
of its subscribed topics, and the FastAPI app around them."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from sqlalchemy import MetaData
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.api_docs import docs_router
from shared.asyncapi import contract_router
from shared.auth import Authenticator, CredentialStore
from shared.bodylimit import BodySizeLimit
from shared.bus.base import Bus
from shared.db import DbTimeouts, create_engine, create_sessionmaker, ping, read_only
from shared.deadlines import within
from shared.jsonbody import DuplicateKeys
from shared.messaging import Consumer, Finish, Handler, Prefetch, Relay, session_class_for
from shared.metrics import SAMPLE_TIMEOUT_SECONDS, HttpMetrics, SampledGauge, ServiceMetrics, metrics_router
from shared.oauth import token_router
from shared.openapi import install as install_openapi
from shared.ratelimit import RateLimiter
from shared.redaction import install_log_redaction
from shared.security_headers import SecurityHeaders
from shared.settings import CommonSettings
from shared.tokens import TokenKeys, load_signing_keys
from shared.tracing import Tracing
from shared.web import declared_scope, health_router, install_problem_handlers

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

log = logging.getLogger(__name__)

STOP_SECONDS = 10


@dataclass(frozen=True)
class ServiceSpec:
    """A service as the platform sees it; each ``services/<name>/app.py`` declares one."""

    name: str
    title: str
    description: str
    metadata: MetaData
    migrations_dir: Path
    routers: Callable[[], list[APIRouter]]
    # Routers served without a token (e.g. notify's dashboard page; its data still needs one).
    public_routers: Callable[[], list[APIRouter]] = list
    handlers: Mapping[str, Handler] = field(default_factory=dict)
    # Runs once per start, before the relay, in the service's own transaction.
    on_start: Callable[[AsyncSession], Awaitable[None]] | None = None
    prefetch: Prefetch | None = None
    finish: Finish | None = None
    # A long-running task of the service (e.g. notify's webhook dispatcher), started after the
    # relay and consumer and cancelled with them on stop.
    background: Callable[[ServiceRuntime], Coroutine[Any, Any, None]] | None = None
    # Routes that take files ("POST /v1/..."): their bodies may be up to
    # VCREDIT_MAX_UPLOAD_BYTES instead of VCREDIT_MAX_BODY_BYTES.
    uploads: tuple[str, ...] = ()
    # Figures of the programme on /metrics, read from the service's database when scraped.
    gauges: tuple[SampledGauge, ...] = ()

    def consumer(self, sessions: async_sessionmaker[AsyncSession], bus: Bus, **options: Any) -> Consumer:
        """The consumer of this service's events, with every hook the spec declares (a
        replay built by hand once missed ``finish`` and diverged from the live projection)."""
        return Consumer(self.name, sessions, bus, self.handlers, prefetch=self.prefetch, finish=self.finish, **options)


def _freeze_startup_objects() -> None:
    """Move what exists once a service has started (modules, mapped classes, schemas, the
    app) out of the garbage collector's sight. A consumer applying thousands of events per
    batch keeps enough objects alive across collections to set off a full collection every
    batch or two, and each scanned the whole heap: 0.1-0.3 s pauses, several a second under
    load, measured on the risk projections (issue 8). These objects live as long as the
    process anyway; garbage made later is collected as before. Once per process: what a
    later start would add (another service of ``vcredit up``, a test's fixtures) is not
    worth making uncollectable."""
    if gc.get_freeze_count():
        return
    gc.collect()
    gc.freeze()


class ServiceRuntime:
    def __init__(
        self,
        spec: ServiceSpec,
        database_url: str,
        bus: Bus,
        common: CommonSettings,
        *,
        tracer_provider: TracerProvider | None = None,
    ) -> None:
        """``tracer_provider``: the service's own (tests pass one with an in-memory exporter);
        by default as VCREDIT_TRACING says, none when it is off (shared/tracing.py)."""
        self.spec = spec
        self.database_url = database_url
        self.bus = bus
        self.common = common
        self.metrics = ServiceMetrics(spec.name, spec.gauges)
        self.engine = create_engine(database_url, timeouts=DbTimeouts.of(common))
        self.tracing = (
            Tracing(spec.name, tracer_provider) if tracer_provider else Tracing.from_settings(spec.name, common)
        )
        self.relay = Relay(
            spec.name,
            # Sessions of this service wake the relay when they commit outbox rows, so an
            # event leaves within milliseconds instead of the next poll.
            create_sessionmaker(self.engine, session_class_for(lambda: self.relay.wake()), {"settings": common}),
            bus,
            topic_prefix=common.topic_prefix,
            batch_size=common.relay_batch_size,
            pipeline_batches=common.relay_pipeline_batches,
            linger_seconds=common.relay_linger_seconds,
            idle_seconds=common.relay_idle_seconds,
            retention=timedelta(hours=common.outbox_retention_hours),
            metrics=self.metrics,
            tracing=self.tracing,
        )
        self.sessions = self.relay.sessions
        self.read_sessions = create_sessionmaker(read_only(self.engine), info={"settings": common})
        self.consumer = spec.consumer(
            self.sessions,
            bus,
            topic_prefix=common.topic_prefix,
            max_attempts=common.consumer_max_attempts,
            backoff_seconds=common.consumer_backoff_seconds,
            backoff_max_seconds=common.consumer_backoff_max_seconds,
            max_batch=common.consumer_max_batch,
            stall_seconds=common.consumer_stall_seconds,
            stall_restarts=common.consumer_stall_restarts,
            metrics=self.metrics,
            tracing=self.tracing,
        )
        self._tasks: list[asyncio.Task[None]] = []
        # Set when the service is told to stop (SIGTERM/SIGINT, before the server waits for
        # its requests to finish): long work in a request, e.g. a close of business, polls
        # it at its safe points and ends there. A plain flag: signal handlers may set it.
        self.stopping = False

    def begin_stop(self) -> None:
        """The shutdown hook: called from the signal handler, before in-flight requests are
        waited for (uvicorn then the lifespan's ``stop``)."""
        self.stopping = True

    async def start(self) -> None:
        await self.bus.start()
        topics = [self.common.topic_prefix + t for t in (f"{self.spec.name}.events", *self.consumer.topics)]
        await self.bus.ensure_topics(topics + [t + ".dlq" for t in topics])
        if self.spec.on_start is not None:
            async with self.sessions() as session, session.begin():
                await self.spec.on_start(session)
        _freeze_startup_objects()
        self._tasks = [asyncio.create_task(self.relay.run(), name=f"{self.spec.name}-relay")]
        if self.consumer.topics:
            self._tasks.append(asyncio.create_task(self.consumer.run(), name=f"{self.spec.name}-consumer"))
        if self.spec.background is not None:
            self._tasks.append(asyncio.create_task(self.spec.background(self), name=f"{self.spec.name}-background"))

    async def stop(self) -> None:
        self.begin_stop()
        # Every step is bounded: a shutdown that waits forever on a broker or a database is
        # a pod that never leaves, so overrunning steps are logged and abandoned.
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            _, stuck = await asyncio.wait(self._tasks, timeout=STOP_SECONDS)
            for task in stuck:
                log.error("%s did not stop within %ss; abandoning it", task.get_name(), STOP_SECONDS)
        self._tasks = []
        for name, step in (
            ("bus", self.bus.stop()),
            ("database", self.engine.dispose()),
            ("tracing", asyncio.to_thread(self.tracing.shutdown)),
        ):
            try:
                await asyncio.wait_for(step, STOP_SECONDS)
            except TimeoutError:
                log.error("%s of %s did not close within %ss", name, self.spec.name, STOP_SECONDS)

    async def __aenter__(self) -> ServiceRuntime:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def sample_metrics(self) -> None:
        """Refresh the gauges that describe shared state, just before a scrape reads them."""
        self.metrics.outbox_backlog.set(await asyncio.wait_for(self.relay.backlog(), SAMPLE_TIMEOUT_SECONDS))
        if self.spec.gauges:
            async with self.read_sessions() as session:
                await self.metrics.sample(session)
        await self.consumer.sample_bus()

    async def check_ready(self) -> dict[str, str]:
        checks: dict[str, str] = {}
        for name, probe in (("database", ping(self.engine)), ("bus", self.bus.ping())):
            try:
                await within(probe, 5)
                checks[name] = "ok"
            except Exception as exc:
                checks[name] = f"unreachable ({type(exc).__name__})"
        checks.update(self.check_alive())
        return checks

    def check_alive(self) -> dict[str, str]:
        """What makes this process useless until it is started again: a task of the runtime
        that ended (each loops until stopped, retrying its own failures), a consumer whose
        group members keep stalling. Empty when alive; /healthz, the liveness probe, answers
        503 otherwise, so the orchestrator restarts the process."""
        problems: dict[str, str] = {}
        for task in self._tasks:
            # Cancelled counts too unless this runtime is stopping: a CancelledError nobody
            # asked for (aiokafka re-raises its own tasks') ended the consumer silently once.
            if task.done() and not self.stopping:
                problems[task.get_name()] = "cancelled" if task.cancelled() else "stopped"
        if self.consumer.stalled is not None:
            problems[f"{self.spec.name}-consumer"] = self.consumer.stalled
        return problems


def scoped_routers(spec: ServiceSpec) -> list[APIRouter]:
    """Every router of the service that needs a token: the platform's and its own."""
    return [metrics_router(), *spec.routers()]


def create_app(runtime: ServiceRuntime, bootstrap_token: str, *, manage_runtime: bool = True) -> FastAPI:
    """The service's FastAPI app. With ``manage_runtime`` the app's lifespan starts and stops
    the runtime (uvicorn); tests that drive the runtime themselves pass False."""
    spec = runtime.spec
    install_log_redaction(bootstrap_token)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if not manage_runtime:
            yield
            return
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    # FastAPI's /docs and /redoc load their viewers from a CDN: ours are served locally.
    app = FastAPI(
        title=f"vcredit {spec.title}",
        description=spec.description,
        version="1",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
    )
    app.state.runtime = runtime
    common = runtime.common
    keys = TokenKeys(load_signing_keys(common.jwt_signing_keys, common.data_dir), common.jwt_verification_keys)
    app.state.authenticator = Authenticator(bootstrap_token, CredentialStore(common.credentials_path), keys)
    app.state.rate_limiter = RateLimiter.from_settings(spec.name, runtime.common)
    # Inside the size limit, which bounds the body it reads.
    app.add_middleware(DuplicateKeys)
    app.add_middleware(
        BodySizeLimit,
        max_bytes=runtime.common.max_body_bytes,
        upload_max_bytes=runtime.common.max_upload_bytes,
        uploads=spec.uploads,
    )
    # Outermost, so the latency and the request id cover every answer, 413s and 429s included.
    app.add_middleware(HttpMetrics, metrics=runtime.metrics)
    # Around everything else, so no answer (a 413, a 429, a 404 of no route) leaves without them.
    app.add_middleware(SecurityHeaders)
    install_problem_handlers(app)
    app.state.tracing = runtime.tracing
    runtime.tracing.instrument_app(app)
    app.include_router(health_router())
    app.include_router(docs_router(app.title))
    app.include_router(token_router())
    # The event contract (AsyncAPI, JSON Schemas): public like /openapi.json.
    app.include_router(contract_router())
    for router in spec.public_routers():
        app.include_router(router)
    for router in scoped_routers(spec):
        for route in router.routes:
            # An endpoint without a declared scope would be open to any token: refuse to start.
            if isinstance(route, APIRoute) and declared_scope(route) is None:
                raise RuntimeError(f"{spec.name}: {route.methods} {route.path} declares no scope")
        app.include_router(router)
    install_openapi(app)
    return app
