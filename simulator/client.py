"""The simulator's view of a running system: its public HTTP API and nothing else.

Every POST that creates something or moves money carries an ``Idempotency-Key`` derived
from the run's seed and the action, so a request retried after a timeout or a dropped
connection is applied once (API.md conventions) and a rerun of the same seed against the
same system replays instead of doubling.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import httpx

from shared.settings import DEFAULT_PORTS

# The services' default ports (shared/settings.py), where vcredit up serves them.
PORTS = dict(DEFAULT_PORTS)
# 429: a rate limit refused the request before doing anything, so any request may be retried.
RETRIED_STATUS = frozenset({429, 502, 503, 504})
MAX_RETRY_AFTER_SECONDS = 60.0
ATTEMPTS = 8
PURPOSE = "loan servicing and rating checks (district simulation)"


class ApiError(RuntimeError):
    def __init__(self, response: httpx.Response) -> None:
        try:
            body = response.json()
        except ValueError:
            body = {"detail": response.text[:500]}
        super().__init__(f"{response.request.method} {response.request.url} → {response.status_code} {body}")


def problem_code(response: httpx.Response) -> str:
    """The problem response's machine ``code`` (API.md conventions), or "" for any other body."""
    try:
        body = response.json()
    except ValueError:
        return ""
    return str(body.get("code", "")) if isinstance(body, dict) else ""


def retry_after(response: httpx.Response) -> float:
    """The server's Retry-After in seconds (0 when absent or a date), capped."""
    try:
        return min(float(response.headers.get("retry-after", 0)), MAX_RETRY_AFTER_SECONDS)
    except ValueError:
        return 0.0


@dataclass
class Calls:
    """What the run asked of the system, for the summary."""

    by_endpoint: Counter[str] = field(default_factory=Counter)
    seconds_by_endpoint: defaultdict[str, float] = field(
        default_factory=lambda: defaultdict(float)
    )  # queueing included
    retries: int = 0

    @property
    def total(self) -> int:
        return sum(self.by_endpoint.values())


class Api:
    def __init__(self, urls: dict[str, str], token: str, *, concurrency: int = 16, timeout: float = 120) -> None:
        self.urls = urls
        self._client = httpx.AsyncClient(
            # Every read of a household's credit data states why (征信业管理条例 §18): the
            # simulated bank services its loans and checks ratings.
            headers={"Authorization": f"Bearer {token}", "X-Query-Purpose": PURPOSE},
            timeout=timeout,
            limits=httpx.Limits(max_connections=concurrency * 2, max_keepalive_connections=concurrency * 2),
        )
        self._slots = asyncio.Semaphore(concurrency)
        self.calls = Calls()

    async def aclose(self) -> None:
        await self._client.aclose()

    async def request(
        self,
        service: str,
        method: str,
        path: str,
        *,
        endpoint: str | None = None,
        key: str | None = None,
        json: Any = None,
        content: bytes | None = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """One call, retried on transport errors and 502/503/504 with back-off, and on 429
        after the server's Retry-After. Returns any final response; callers decide which
        statuses are outcomes and which are errors."""
        sent = dict(headers or {})
        if key is not None:
            sent["Idempotency-Key"] = key
        name = f"{service} {method} {endpoint or path}"
        self.calls.by_endpoint[name] += 1
        delay = 0.2
        began = time.monotonic()
        async with self._slots:
            for attempt in range(ATTEMPTS):
                last = attempt == ATTEMPTS - 1
                wait = delay
                try:
                    response = await self._client.request(
                        method, self.urls[service] + path, json=json, content=content, params=params, headers=sent
                    )
                except httpx.TransportError:
                    # A retry without an idempotency key could apply a request twice.
                    if last or (method == "POST" and key is None):
                        raise
                else:
                    if response.status_code not in RETRIED_STATUS or last:
                        self.calls.seconds_by_endpoint[name] += time.monotonic() - began
                        return response
                    wait = max(delay, retry_after(response))
                self.calls.retries += 1
                await asyncio.sleep(wait)
                delay = min(delay * 2, 5.0)
        raise AssertionError("unreachable")

    async def get(self, service: str, path: str, *, endpoint: str | None = None, **params: Any) -> Any:
        response = await self.request(service, "GET", path, endpoint=endpoint, params=params or None)
        if response.status_code != 200:
            raise ApiError(response)
        return response.json()

    async def post(
        self, service: str, path: str, body: Any = None, *, endpoint: str | None = None, key: str | None = None
    ) -> Any:
        response = await self.request(service, "POST", path, endpoint=endpoint, key=key, json=body)
        if response.status_code not in (200, 201):
            raise ApiError(response)
        return response.json()

    async def cursor_pages(self, service: str, path: str, **params: Any) -> list[Any]:
        """Every item of a list that pages with ``next_after`` (registry)."""
        items: list[Any] = []
        while True:
            page = await self.get(service, path, **params)
            items.extend(page["items"])
            if not page.get("next_after"):
                return items
            params["after"] = page["next_after"]

    async def offset_pages(self, service: str, path: str, limit: int = 1000, **params: Any) -> list[Any]:
        """Every item of a list that pages with ``limit`` and ``offset`` (risk)."""
        items: list[Any] = []
        while True:
            page = await self.get(service, path, limit=limit, offset=len(items), **params)
            items.extend(page)
            if len(page) < limit:
                return items
