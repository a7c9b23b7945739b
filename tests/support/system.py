"""Services of the real system wired in one test process: migrated databases, runtimes
(relay + consumer) on the test's bus, and an HTTP client per service."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from services.registry.domain.identifiers import resident_id_check_char
from shared.bus.base import Bus, Record
from shared.catalogue import RatingCertified
from shared.cloudevents import kafka_headers
from shared.events import Envelope, new_event
from shared.migrations import upgrade
from shared.platform_tables import outbox
from shared.runtime import ServiceRuntime, create_app
from tests.conftest import TOKEN, Infra
from tests.support import event_schemas
from tests.support.waiting import wait_until
from vcredit.services import load_spec

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider


class System:
    def __init__(
        self,
        infra: Infra,
        services: list[str],
        *,
        database_urls: Mapping[str, str] | None = None,
        tracer_providers: Mapping[str, TracerProvider] | None = None,
        **settings: Any,
    ) -> None:
        """``database_urls`` restarts services on the databases of an earlier System (of the
        same ``infra``) instead of new ones; ``tracer_providers`` traces services (by name)."""
        self.infra = infra
        self.services = services
        self.database_urls = dict(database_urls or {})
        self.tracer_providers = dict(tracer_providers or {})
        self.common = infra.common(**settings)
        self.runtimes: dict[str, ServiceRuntime] = {}
        self.clients: dict[str, httpx.AsyncClient] = {}
        self.apps: dict[str, FastAPI] = {}

    async def __aenter__(self) -> System:
        for name in self.services:
            spec = load_spec(name)
            url = self.database_urls.get(name) or await self.infra.database_url(name)
            await asyncio.to_thread(upgrade, spec.migrations_dir, url)
            runtime = ServiceRuntime(
                spec, url, self.infra.bus(f"test-{name}"), self.common, tracer_provider=self.tracer_providers.get(name)
            )
            app = create_app(runtime, TOKEN, manage_runtime=False)
            await runtime.start()
            self.runtimes[name] = runtime
            self.apps[name] = app
            self.clients[name] = httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app),
                base_url=f"http://{name}",
                # Reads of credit data state their purpose (issue 9, query audit).
                headers={"Authorization": f"Bearer {TOKEN}", "X-Query-Purpose": "vcredit test suite"},
            )
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for client in self.clients.values():
            await client.aclose()
        # Held to their published schemas only when the test passed: a failing test's own
        # error says more than whatever state it left behind.
        problems = await self.check_emitted_events() if exc_type is None else []
        for runtime in self.runtimes.values():
            await runtime.stop()
        if problems:
            shown = "\n".join(problems[:20])
            raise AssertionError(f"{len(problems)} emitted event(s) break their published schema:\n{shown}")

    async def check_emitted_events(self) -> list[str]:
        """Every event the services wrote to their outboxes, against its JSON Schema and
        partition key (tests/support/event_schemas.py)."""
        problems: list[str] = []
        for runtime in self.runtimes.values():
            async with runtime.read_sessions() as session:
                result = await session.execute(
                    select(outbox.c.event_id, outbox.c.topic, outbox.c.key, outbox.c.type, outbox.c.envelope)
                )
                rows = [event_schemas.OutboxRow(*row) for row in result.all()]
            problems += event_schemas.check(rows)
        return problems

    def __getitem__(self, service: str) -> httpx.AsyncClient:
        return self.clients[service]

    async def publish(self, *events: Envelope) -> None:
        """Put events on the bus as the services that own them would (on the test's topics)."""
        bus = next(iter(self.runtimes.values())).bus
        prefix = self.infra.topic_prefix
        await bus.publish([Record(prefix + e.topic, e.key, e.to_bytes(), kafka_headers(e)) for e in events])


async def read_events(bus: Bus, topic: str, *, idle_ms: int = 2000) -> list[Envelope]:
    """Every event on a topic so far, read by a fresh consumer group until the topic is quiet."""
    consumer = bus.consumer(f"reader-{uuid.uuid4().hex[:8]}", [topic])
    await consumer.start()
    events: list[Envelope] = []
    try:
        while batch := await consumer.getmany(timeout_ms=idle_ms, max_records=500):
            events.extend(Envelope.from_bytes(m.value) for m in batch)
    finally:
        await consumer.stop()
    return events


def resident_id(n: int, birth: str = "19800101", region: str = "410102") -> str:
    """A valid resident ID number (GB 11643), distinct for each n < 1000."""
    first17 = f"{region}{birth}{n % 1000:03d}"
    return first17 + resident_id_check_char(first17)


async def certified_line(
    system: System,
    village: str,
    township: str,
    *,
    household: str | None = None,
    limit: str = "100000.00",
    poor_household: bool = False,
    subject_kind: Literal["household", "business"] = "household",
) -> tuple[str, str]:
    """A household (a new one unless given; a business with ``subject_kind``) certified AA for
    ``limit`` by a published scoring event, and the credit line loans opens for it once the
    event has arrived: (subject id, credit line id)."""
    household = household or str(uuid.uuid4())
    await system.publish(
        new_event(
            "scoring.rating.certified",
            village,
            RatingCertified(
                subject_kind=subject_kind,
                subject_id=household,
                village_code=village,
                township_code=township,
                rating_id=1,
                grade="AA",
                credit_limit=limit,
                certificate_no=f"HB-2026-{household[:6]}",
                poor_household=poor_household,
            ),
        )
    )
    opened: dict[str, Any] = {}

    async def opens() -> bool:
        r = await system["loans"].post("/v1/credit-lines", json={f"{subject_kind}_id": household})
        opened.update(r.json())
        return r.status_code == 201

    await wait_until(opens, what="the certified rating to reach loans")
    return household, str(opened["credit_line_id"])
