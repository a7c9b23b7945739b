"""Repayments per second through the loans HTTP API, next to a bare FastAPI endpoint doing
one INSERT on the same PostgreSQL database, both driven the same way: httpx over ASGI in
this process (the full FastAPI stack, no sockets), 16 requests in flight.

    python -m bench.api [--repayments 3000]

Target (issue 27): at least 0.6 of the bare endpoint's rate.

A vcredit repayment does in one transaction: idempotency claim, two row locks (loan, line),
allocation, the repayment row, a balanced ledger posting, events into the outbox.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import httpx
from fastapi import FastAPI
from sqlalchemy import Column, DateTime, Integer, MetaData, Numeric, String, Table, insert

from bench.databases import temporary_database
from bench.report import Figure, Target
from bench.suite import Benchmark, Servers, main_one
from services.loans.models import RatingView
from shared.bus.embedded import EmbeddedBus
from shared.db import create_engine
from shared.migrations import upgrade
from shared.runtime import ServiceRuntime, create_app
from shared.settings import CommonSettings
from vcredit.services import load_spec

TOKEN = "bench"
CONCURRENCY = 16
SHARE_OF_BARE = Target(">=", 0.6, ">= 0.6x the bare endpoint", on_ratio=True)  # issue 27


async def _drive(client: httpx.AsyncClient, requests: list[tuple[str, dict[str, str]]]) -> float:
    queue = list(reversed(requests))

    async def worker() -> None:
        while queue:
            url, body = queue.pop()
            r = await client.post(url, json=body, headers={"Idempotency-Key": str(uuid.uuid4())})
            assert r.status_code in (200, 201), r.text

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return len(requests) / (time.perf_counter() - started)


def bare_app(url: str) -> tuple[FastAPI, Table]:
    metadata = MetaData()
    table = Table(
        "bare_repayments",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("loan_id", String(36)),
        Column("amount", Numeric(16, 2)),
        Column("received_at", DateTime(timezone=True)),
    )
    engine = create_engine(url)
    app = FastAPI()

    @app.post("/repay")
    async def repay(body: dict[str, str]) -> dict[str, str]:
        async with engine.begin() as conn:
            await conn.execute(
                insert(table).values(
                    loan_id=body["loan_id"], amount=Decimal(body["amount"]), received_at=datetime.now(UTC)
                )
            )
        return {"ok": "yes"}

    app.state.engine = engine
    app.state.metadata = metadata
    return app, table


@dataclass(frozen=True)
class Sizes:
    repayments: int


async def measure(servers: Servers, sizes: Sizes) -> list[Figure]:
    async with temporary_database(servers.database_url, f"bench_api_{uuid.uuid4().hex[:8]}") as url:
        with tempfile.TemporaryDirectory() as tmp:
            spec = load_spec("loans")
            await asyncio.to_thread(upgrade, spec.migrations_dir, url)
            common = CommonSettings(data_dir=Path(tmp), start_date=date(2026, 1, 15))
            runtime = ServiceRuntime(spec, url, EmbeddedBus(Path(tmp) / "bus.db"), common)
            app = create_app(runtime, TOKEN, manage_runtime=False)
            await runtime.start()
            try:
                loans = await _open_loans(runtime, app)
                work = [(f"/v1/loans/{loans[i % 64]}/repayments", {"amount": "1.00"}) for i in range(sizes.repayments)]
                async with _client(app, "http://loans", TOKEN) as client:
                    vcredit = await _drive(client, work)
            finally:
                await runtime.stop()

        bare, _table = bare_app(url)
        try:
            async with bare.state.engine.begin() as c:
                await c.run_sync(bare.state.metadata.create_all)
            work = [("/repay", {"loan_id": loans[i % 64], "amount": "1.00"}) for i in range(sizes.repayments)]
            async with _client(bare, "http://bare") as client:
                anchor = await _drive(client, work)
        finally:
            await bare.state.engine.dispose()
    return [
        Figure(
            f"POST /v1/loans/{{id}}/repayments, {sizes.repayments:,} repayments, {CONCURRENCY} in flight, PostgreSQL",
            vcredit,
            "req/s",
            SHARE_OF_BARE,
            "bare FastAPI endpoint, one INSERT",
            anchor,
        )
    ]


def _client(app: FastAPI, base_url: str, token: str | None = None) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base_url, headers=headers, timeout=60)


async def _open_loans(runtime: ServiceRuntime, app: FastAPI) -> list[str]:
    """64 certified households with a line and a loan each: repayments spread over 64 rows."""
    async with runtime.sessions() as session, session.begin():
        for i in range(64):
            session.add(
                RatingView(
                    subject_id=f"h{i}",
                    subject_kind="household",
                    village_code="V",
                    township_code="T",
                    poor_household=False,
                    grade="AA",
                    credit_limit=Decimal("100000.00"),
                    certified=True,
                )
            )
    loans = []
    async with _client(app, "http://loans", TOKEN) as client:
        for i in range(64):
            r = await client.post("/v1/credit-lines", json={"household_id": f"h{i}"})
            r.raise_for_status()
            r = await client.post(
                "/v1/loans",
                json={"credit_line_id": r.json()["credit_line_id"], "amount": "50000.00", "term_months": 12},
            )
            r.raise_for_status()
            loans.append(str(r.json()["loan_id"]))
    return loans


BENCHMARK = Benchmark("api", full=Sizes(repayments=3_000), quick=Sizes(repayments=200), measure=measure)

if __name__ == "__main__":
    main_one(BENCHMARK, __doc__)
