"""Services of the real system wired in one test process: migrated databases, runtimes
(relay + consumer) on the test's bus, and an HTTP client per service."""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Any

import httpx

from shared.cli import load_spec
from shared.migrations import upgrade
from shared.runtime import ServiceRuntime, create_app
from tests.conftest import TOKEN, Infra


class System:
    def __init__(self, infra: Infra, services: list[str], **settings: Any) -> None:
        self.infra = infra
        self.services = services
        self.common = infra.common(**settings)
        self.runtimes: dict[str, ServiceRuntime] = {}
        self.clients: dict[str, httpx.AsyncClient] = {}

    async def __aenter__(self) -> System:
        for name in self.services:
            spec = load_spec(name)
            url = await self.infra.database_url(name)
            await asyncio.to_thread(upgrade, spec.migrations_dir, url)
            runtime = ServiceRuntime(spec, url, self.infra.bus(f"test-{name}"), self.common)
            app = create_app(runtime, TOKEN, manage_runtime=False)
            await runtime.start()
            self.runtimes[name] = runtime
            self.clients[name] = httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app),
                base_url=f"http://{name}",
                headers={"Authorization": f"Bearer {TOKEN}"},
            )
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for client in self.clients.values():
            await client.aclose()
        for runtime in self.runtimes.values():
            await runtime.stop()

    def __getitem__(self, service: str) -> httpx.AsyncClient:
        return self.clients[service]
