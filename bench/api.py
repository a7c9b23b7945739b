"""Repayments per second through the loans HTTP API, next to a bare FastAPI endpoint doing
one INSERT on the same PostgreSQL database, both driven the same way: httpx over ASGI in
this process (the full FastAPI stack, no sockets), 16 requests in flight.

    python -m bench.api [--repayments 3000]

A vcredit repayment does in one transaction: idempotency claim, two row locks (loan, line),
allocation, the repayment row, a balanced ledger posting, events into the outbox.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import httpx
from fastapi import FastAPI
from sqlalchemy import Column, DateTime, Integer, MetaData, Numeric, String, Table, insert

from bench.databases import add_database_argument, temporary_database
from services.loans.models import RatingView
from shared.bus.embedded import EmbeddedBus
from shared.cli import load_spec
from shared.db import create_engine
from shared.migrations import upgrade
from shared.runtime import ServiceRuntime, create_app
from shared.settings import CommonSettings

TOKEN = "bench"
CONCURRENCY = 16


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


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repayments", type=int, default=3000)
    add_database_argument(parser)
    args = parser.parse_args()
    async with temporary_database(args.database_url, f"bench_api_{uuid.uuid4().hex[:8]}") as url:
        with tempfile.TemporaryDirectory() as tmp:
            spec = load_spec("loans")
            await asyncio.to_thread(upgrade, spec.migrations_dir, url)
            common = CommonSettings(data_dir=Path(tmp), start_date=date(2026, 1, 15))
            runtime = ServiceRuntime(spec, url, EmbeddedBus(Path(tmp) / "bus.db"), common)
            app = create_app(runtime, TOKEN, manage_runtime=False)
            await runtime.start()
            loans = []
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app),
                base_url="http://loans",
                headers={"Authorization": f"Bearer {TOKEN}"},
                timeout=60,
            ) as client:
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
                for i in range(64):
                    line = (await client.post("/v1/credit-lines", json={"household_id": f"h{i}"})).json()
                    loan = (
                        await client.post(
                            "/v1/loans",
                            json={"credit_line_id": line["credit_line_id"], "amount": "50000.00", "term_months": 12},
                        )
                    ).json()
                    loans.append(loan["loan_id"])
                work = [(f"/v1/loans/{loans[i % 64]}/repayments", {"amount": "1.00"}) for i in range(args.repayments)]
                vcredit = await _drive(client, work)
            await runtime.stop()

        bare, _table = bare_app(url)
        async with bare.state.engine.begin() as c:
            await c.run_sync(bare.state.metadata.create_all)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=bare), base_url="http://bare") as client:
            anchor = await _drive(
                client, [("/repay", {"loan_id": loans[i % 64], "amount": "1.00"}) for i in range(args.repayments)]
            )
        await bare.state.engine.dispose()
    print(f"\nAPI benchmark: {args.repayments} repayments, {CONCURRENCY} in flight, PostgreSQL, {os.cpu_count()} cores")
    print(f"{'figure':<52} {'req/s':>8}")
    print(f"{'anchor: bare FastAPI endpoint, one INSERT':<52} {anchor:>8,.0f}")
    print(f"{'vcredit POST /v1/loans/{id}/repayments':<52} {vcredit:>8,.0f}   ratio {vcredit / anchor:.0%}")


if __name__ == "__main__":
    asyncio.run(main())
