"""Close of business under control (issue 19, defects 2 and 3): one run at a time per loans
database, only forward, in bounded steps, cancellable at a day boundary, stopped at a day
boundary by the service's shutdown hook, and resumable after all of these; on both backends.

Runs are held at a day boundary by a gate on ``close_day`` (the test opens it), never by
sleeping: the machine running CI is busy."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update

from services.loans import cob, context
from services.loans.models import BusinessDate, CobJob, CobLease, CobRun, Loan, Repayment
from shared.db import create_engine, create_sessionmaker
from shared.messaging import outbox
from tests.conftest import TOKEN, Infra
from tests.support.loans import ledger_matches_loans, open_certified_line
from tests.support.system import System
from tests.support.waiting import wait_until
from vcredit.cluster import free_ports

START = date(2026, 3, 2)
ADVANCED = "loans.business_date.advanced"


@pytest.fixture
async def loans(infra: Infra) -> AsyncIterator[System]:
    async with System(infra, ["loans"], start_date=START) as system:
        yield system


async def _loan(system: System, infra: Infra, amount: str = "30000.00") -> str:
    line = await open_certified_line(system, infra, limit="200000.00")
    body = {"credit_line_id": line, "amount": amount, "term_months": 12, "repayment_method": "equal_instalment"}
    r = await system["loans"].post("/v1/loans", json=body)
    assert r.status_code == 201, r.text
    return str(r.json()["loan_id"])


async def _business_date(client: httpx.AsyncClient) -> date:
    return date.fromisoformat((await client.get("/v1/business-date")).json()["business_date"])


async def _advanced(system: System) -> Counter[str]:
    """How many ``loans.business_date.advanced`` events loans wrote for each closed date."""
    async with system.runtimes["loans"].read_sessions() as session:
        envelopes = await session.scalars(select(outbox.c.envelope).where(outbox.c.type == ADVANCED))
        return Counter(json.loads(e)["payload"]["closed_date"] for e in envelopes)


def _days(first: date, count: int) -> list[str]:
    return [str(first + timedelta(days=n)) for n in range(count)]


class Gate:
    """Wraps ``cob.close_day``: after closing ``hold_after`` it waits until opened, so a
    test acts while a run is between two days."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, hold_after: date) -> None:
        self.real = cob.close_day
        self.hold_after = hold_after
        self.reached = asyncio.Event()
        self.opened = asyncio.Event()
        monkeypatch.setattr(cob, "close_day", self)

    async def __call__(self, sessions: Any, day: date, run_id: str) -> int:
        processed = await self.real(sessions, day, run_id)
        if day == self.hold_after:
            self.reached.set()
            await self.opened.wait()
        return processed


async def _running(client: httpx.AsyncClient) -> dict[str, Any]:
    runs = (await client.get("/v1/cob/runs")).json()
    running = [r for r in runs if r["status"] == "running"]
    assert len(running) == 1, runs
    return dict(running[0])


async def test_ten_concurrent_cobs_close_each_day_once_and_only_forward(loans: System, infra: Infra) -> None:
    await _loan(loans, infra)
    client = loans["loans"]
    target = START + timedelta(days=5)
    answers = await asyncio.gather(*(client.post("/v1/cob", json={"date": str(target)}) for _ in range(10)))
    codes = Counter((r.status_code, r.json().get("code")) for r in answers)
    assert set(codes) <= {(200, None), (409, "COB_RUNNING")}, [r.text for r in answers]
    assert codes[(200, None)] >= 1
    for r in answers:
        if r.status_code == 200:
            assert r.json()["business_date"] == str(target)
        else:
            assert r.headers["content-type"].startswith("application/problem+json")
            assert r.json()["run_id"], "names the run that holds the ledger"
    # Exactly one call closed the five days, each once.
    closed = [d for r in answers if r.status_code == 200 for d in r.json()["closed"]]
    assert sorted(closed) == _days(START, 5)
    assert await _business_date(client) == target
    assert await _advanced(loans) == Counter(_days(START, 5))
    async with loans.runtimes["loans"].read_sessions() as session:
        runs = list(await session.scalars(select(CobRun).order_by(CobRun.business_date)))
        lease = await session.get(CobLease, 1)
    assert [(str(r.business_date), r.status, r.loans_processed) for r in runs] == [
        (d, "done", 1) for d in _days(START, 5)
    ]
    assert lease is not None and lease.holder is None, "the lease is free again"
    await ledger_matches_loans(loans)
    # The next close of business works.
    r = await client.post("/v1/cob", json={"date": str(target + timedelta(days=1))})
    assert r.status_code == 200, r.text
    assert r.json()["closed"] == [str(target)]
    assert await _advanced(loans) == Counter(_days(START, 6))


async def test_a_second_run_is_refused_while_one_is_running(
    loans: System, infra: Infra, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deterministic form of the race above: the first run is held between two days."""
    client = loans["loans"]
    gate = Gate(monkeypatch, hold_after=START)
    first = asyncio.create_task(client.post("/v1/cob", json={"date": str(START + timedelta(days=3))}))
    await asyncio.wait_for(gate.reached.wait(), 60)
    for day in (START + timedelta(days=3), START + timedelta(days=2)):
        r = await client.post("/v1/cob", json={"date": str(day)})
        assert (r.status_code, r.json()["code"]) == (409, "COB_RUNNING"), r.text
        assert r.json()["run_id"] == (await _running(client))["run_id"]
    gate.opened.set()
    r = await first
    assert r.status_code == 200, r.text
    assert r.json()["closed"] == _days(START, 3) and r.json()["status"] == "done"
    assert await _advanced(loans) == Counter(_days(START, 3))


async def test_a_step_past_the_limit_or_into_the_past_is_refused_and_changes_nothing(
    loans: System, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = loans["loans"]
    # Refused at once; before the limit it ran ~45 days a second towards the year 9999.
    r = await asyncio.wait_for(client.post("/v1/cob", json={"date": "9999-12-31"}), 60)
    assert r.status_code == 422, r.text
    body = r.json()
    assert (body["code"], body["field"], body["limit"]) == ("COB_STEP_TOO_LARGE", "date", 366)
    assert "366" in body["detail"] and "VCREDIT_LOANS_COB_MAX_DAYS" in body["detail"]
    monkeypatch.setattr(context.settings(), "cob_max_days", 3)
    r = await client.post("/v1/cob", json={"date": str(START + timedelta(days=4))})
    assert (r.status_code, r.json()["code"], r.json()["limit"]) == (422, "COB_STEP_TOO_LARGE", 3), r.text
    assert await _business_date(client) == START
    async with loans.runtimes["loans"].read_sessions() as session:
        assert await session.scalar(select(func.count()).select_from(CobRun)) == 0
        assert await session.scalar(select(func.count()).select_from(CobJob)) == 0
        lease = await session.get(CobLease, 1)
    assert lease is not None and lease.holder is None
    assert await _advanced(loans) == Counter()

    r = await client.post("/v1/cob", json={"date": str(START + timedelta(days=3))})
    assert r.status_code == 200 and r.json()["closed"] == _days(START, 3), r.text
    today = START + timedelta(days=3)
    # Into the past: refused, the date stays.
    r = await client.post("/v1/cob", json={"date": str(START + timedelta(days=1))})
    assert (r.status_code, r.json()["code"], r.json()["field"]) == (422, "DATE_IN_THE_PAST", "date"), r.text
    assert await _business_date(client) == today
    # The business date itself: closes nothing (the contract as it was).
    r = await client.post("/v1/cob", json={"date": str(today)})
    assert r.status_code == 200 and r.json()["closed"] == [] and r.json()["business_date"] == str(today), r.text
    assert await _advanced(loans) == Counter(_days(START, 3))


async def test_a_cancelled_run_stops_at_a_day_boundary_and_a_later_one_resumes(
    loans: System, infra: Infra, monkeypatch: pytest.MonkeyPatch
) -> None:
    loan = await _loan(loans, infra)
    client = loans["loans"]
    gate = Gate(monkeypatch, hold_after=START + timedelta(days=2))
    target = START + timedelta(days=30)
    run = asyncio.create_task(client.post("/v1/cob", json={"date": str(target)}))
    await asyncio.wait_for(gate.reached.wait(), 60)
    running = await _running(client)
    assert (running["target"], running["from_date"], running["requested_by"]) == (str(target), str(START), "bootstrap")
    r = await client.post(f"/v1/cob/runs/{running['run_id']}/cancel")
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["cancel_requested"]) == ("running", True)
    gate.opened.set()
    r = await run
    assert (r.status_code, r.json()["code"]) == (409, "COB_CANCELLED"), r.text
    assert r.json()["closed"] == _days(START, 3)
    stopped = START + timedelta(days=3)
    assert r.json()["business_date"] == str(stopped)
    assert await _business_date(client) == stopped
    run_state = (await client.get(f"/v1/cob/runs/{running['run_id']}")).json()
    assert (run_state["status"], run_state["days_closed"], run_state["current_day"]) == ("cancelled", 3, str(stopped))
    assert run_state["cancelled_by"] == "bootstrap" and run_state["finished_at"]
    r = await client.post(f"/v1/cob/runs/{running['run_id']}/cancel")
    assert (r.status_code, r.json()["code"]) == (409, "COB_RUN_FINISHED")
    assert (await client.get(f"/v1/cob/runs/{uuid.uuid4()}")).status_code == 404
    assert await _advanced(loans) == Counter(_days(START, 3))
    state = (await client.get(f"/v1/loans/{loan}")).json()
    await ledger_matches_loans(loans)

    r = await client.post("/v1/cob", json={"date": str(target)})
    assert r.status_code == 200, r.text
    assert r.json()["closed"] == _days(stopped, 27)
    assert await _advanced(loans) == Counter(_days(START, 30))
    later = (await client.get(f"/v1/loans/{loan}")).json()
    assert Decimal(later["interest_outstanding"]) > Decimal(state["interest_outstanding"])
    await ledger_matches_loans(loans)


async def test_the_shutdown_hook_stops_a_run_at_a_day_boundary_and_a_restart_resumes(
    infra: Infra, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = Gate(monkeypatch, hold_after=START + timedelta(days=1))
    target = START + timedelta(days=10)
    async with System(infra, ["loans"], start_date=START) as first:
        await _loan(first, infra)
        client = first["loans"]
        run = asyncio.create_task(client.post("/v1/cob", json={"date": str(target)}))
        await asyncio.wait_for(gate.reached.wait(), 60)
        run_id = (await _running(client))["run_id"]
        # What SIGTERM/SIGINT call first (vcredit/cli.py), before uvicorn waits for requests.
        first.runtimes["loans"].begin_stop()
        gate.opened.set()
        r = await run
        assert (r.status_code, r.json()["code"]) == (503, "COB_INTERRUPTED"), r.text
        assert r.json()["closed"] == _days(START, 2) and r.json()["business_date"] == str(START + timedelta(days=2))
        state = (await client.get(f"/v1/cob/runs/{run_id}")).json()
        assert (state["status"], state["days_closed"]) == ("interrupted", 2)
        urls = {"loans": first.runtimes["loans"].database_url}
    async with System(infra, ["loans"], start_date=START, database_urls=urls) as second:
        client = second["loans"]
        assert await _business_date(client) == START + timedelta(days=2)
        r = await client.post("/v1/cob", json={"date": str(target)})
        assert r.status_code == 200, r.text
        assert r.json()["closed"] == _days(START + timedelta(days=2), 8)
        assert await _advanced(second) == Counter(_days(START, 10))
        await ledger_matches_loans(second)


async def test_a_restart_after_a_done_day_left_behind_completes(loans: System, infra: Infra) -> None:
    """Issue 19's wedge: ``cob_runs`` says the business date's day is done while the date
    was not moved past it (racing runs put it back). Close of business looped on it for
    ever; now it moves the date on without closing or announcing the day again."""
    await _loan(loans, infra)
    client = loans["loans"]
    r = await client.post("/v1/cob", json={"date": str(START + timedelta(days=2))})
    assert r.status_code == 200, r.text
    async with loans.runtimes["loans"].sessions() as session, session.begin():
        # What the race left: day START+1 closed, the date put back onto it.
        await session.execute(update(BusinessDate).values(current=START + timedelta(days=1)))
    r = await asyncio.wait_for(client.post("/v1/cob", json={"date": str(START + timedelta(days=4))}), 120)
    assert r.status_code == 200, r.text
    assert r.json()["business_date"] == str(START + timedelta(days=4))
    assert await _business_date(client) == START + timedelta(days=4)
    assert await _advanced(loans) == Counter(_days(START, 4)), "the day left behind is not announced twice"
    async with loans.runtimes["loans"].read_sessions() as session:
        rows = (await session.execute(select(CobRun.business_date, CobRun.loans_processed))).all()
        processed = {day: n for day, n in rows}
    assert processed == {START + timedelta(days=n): 1 for n in range(4)}, "no day was closed twice"
    await ledger_matches_loans(loans)


async def test_a_crashed_holder_s_lease_lapses_and_a_stale_holder_writes_nothing(
    loans: System, infra: Infra, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _loan(loans, infra)
    client = loans["loans"]
    sessions = loans.runtimes["loans"].sessions
    now = datetime.now(UTC)

    async def lease(holder: str | None, expires_at: datetime | None) -> None:
        async with sessions() as session, session.begin():
            await session.execute(update(CobLease).values(holder=holder, expires_at=expires_at))

    # A live holder elsewhere (another replica): refused, with when it lapses.
    await lease("another-replica-run", now + timedelta(minutes=5))
    r = await client.post("/v1/cob", json={"date": str(START + timedelta(days=1))})
    assert (r.status_code, r.json()["code"], r.json()["run_id"]) == (409, "COB_RUNNING", "another-replica-run")
    assert r.json()["lease_expires_at"]
    # Its process died: the lease lapsed, the next run takes over.
    await lease("another-replica-run", now - timedelta(seconds=1))
    r = await client.post("/v1/cob", json={"date": str(START + timedelta(days=1))})
    assert r.status_code == 200, r.text

    # A run that stalled past its lease, which another took: its next chunk is refused and
    # rolls back (the fence), so it closes nothing.
    await lease("someone-else", now + timedelta(minutes=5))
    with pytest.raises(cob.LeaseLost):
        await cob.close_day(sessions, START + timedelta(days=1), "the-stalled-run")
    async with loans.runtimes["loans"].read_sessions() as session:
        assert await session.get(CobRun, START + timedelta(days=1)) is None
        closed_through = set(await session.scalars(select(Loan.closed_through)))
    assert closed_through == {START}
    assert await _business_date(client) == START + timedelta(days=1)


async def test_a_cob_racing_repayments_on_the_same_loan_leaves_it_consistent(loans: System, infra: Infra) -> None:
    loan = await _loan(loans, infra, amount="12000.00")
    client = loans["loans"]
    target = START + timedelta(days=40)
    cob_call = asyncio.create_task(client.post("/v1/cob", json={"date": str(target)}))
    answers: list[httpx.Response] = []
    while not cob_call.done() or not answers:
        answers.append(await client.post(f"/v1/loans/{loan}/repayments", json={"amount": "10.00"}))
    r = await cob_call
    assert r.status_code == 200, r.text
    assert {a.status_code for a in answers} <= {201}, [a.text for a in answers if a.status_code != 201]
    assert await _business_date(client) == target
    await ledger_matches_loans(loans)
    async with loans.runtimes["loans"].read_sessions() as session:
        row = await session.get(Loan, loan)
        paid = await session.scalar(select(func.sum(Repayment.amount)).where(Repayment.loan_id == loan))
    assert row is not None
    assert row.principal_outstanding == row.principal - row.principal_paid
    # The loan falls past due during the 40 days, so some of the money paid penalty (issue 24).
    assert paid == row.principal_paid + row.interest_paid + row.penalty_paid == Decimal("10.00") * len(answers)
    assert row.closed_through == target - timedelta(days=1)
    assert await _advanced(loans) == Counter(_days(START, 40))


def _serve_loans(infra: Infra, db: str, port: int, day_seconds: float) -> subprocess.Popen[bytes]:
    """Loans alone in a process of its own, run as ``vcredit serve`` runs it (bench/probe.py)."""
    args = ["--db", db, "--prefix", infra.topic_prefix, *infra.bus_args(), "--port", str(port)]
    args += ["--data-dir", str(infra.tmp), "--start-date", str(START), "--day-seconds", str(day_seconds)]
    args += ["--token", TOKEN]
    return subprocess.Popen(
        [sys.executable, "-m", "bench.probe", "serve-loans", *args],
        cwd=Path(__file__).parents[2],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


async def _ready(client: httpx.AsyncClient, proc: subprocess.Popen[bytes]) -> None:
    async def ready() -> bool:
        assert proc.poll() is None, (proc.stdout.read() if proc.stdout else b"").decode()[-3000:]
        try:
            return (await client.get("/readyz")).status_code == 200
        except httpx.TransportError:
            return False

    await wait_until(ready, seconds=60, what="loans to be ready")


async def test_sigterm_stops_a_long_cob_at_a_day_boundary_and_the_next_start_resumes(infra: Infra) -> None:
    db = await infra.database_url("loans_serve")
    port = free_ports(1)[0]
    headers = {"Authorization": f"Bearer {TOKEN}"}
    target = START + timedelta(days=300)
    proc = _serve_loans(infra, db, port, day_seconds=0.2)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=300) as client:
            await _ready(client, proc)
            run = asyncio.create_task(client.post("/v1/cob", json={"date": str(target)}))

            async def two_days_closed() -> bool:
                runs = (await client.get("/v1/cob/runs")).json()
                return bool(runs) and runs[0]["status"] == "running" and runs[0]["days_closed"] >= 2

            await wait_until(two_days_closed, seconds=60, what="the run to close two days")
            proc.send_signal(signal.SIGTERM)
            r = await run
        assert (r.status_code, r.json()["code"]) == (503, "COB_INTERRUPTED"), r.text
        closed = r.json()["closed"]
        assert 2 <= len(closed) < 300 and closed == _days(START, len(closed))
        stopped = START + timedelta(days=len(closed))
        assert r.json()["business_date"] == str(stopped)
        # uvicorn re-raises the signal once it has shut down gracefully: death by SIGTERM.
        assert await asyncio.to_thread(proc.wait, 60) in (0, -signal.SIGTERM), "stopped by the signal"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    proc = _serve_loans(infra, db, port, day_seconds=0)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=300) as client:
            await _ready(client, proc)
            assert await _business_date(client) == stopped
            interrupted = (await client.get("/v1/cob/runs")).json()[0]
            assert (interrupted["status"], interrupted["days_closed"]) == ("interrupted", len(closed))
            r = await client.post("/v1/cob", json={"date": str(stopped + timedelta(days=3))})
            assert r.status_code == 200, r.text
            assert r.json()["closed"] == _days(stopped, 3)
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.to_thread(proc.wait, 60)
    engine = create_engine(db)
    try:
        async with create_sessionmaker(engine)() as session:
            envelopes = await session.scalars(select(outbox.c.envelope).where(outbox.c.type == ADVANCED))
            advanced = Counter(json.loads(e)["payload"]["closed_date"] for e in envelopes)
    finally:
        await engine.dispose()
    assert advanced == Counter(_days(START, len(closed) + 3)), "each day announced once"


async def test_closing_an_earlier_day_never_moves_the_business_date_back(loans: System, infra: Infra) -> None:
    """Issue 19: racing runs set the date to "the day I closed + 1", backwards when another
    had gone further. run_cob only closes the business date, so this drives close_day with a
    day behind it (as a run resumed from a stale cursor would) and the lease held."""
    await _loan(loans, infra)
    client = loans["loans"]
    sessions = loans.runtimes["loans"].sessions
    r = await client.post("/v1/cob", json={"date": str(START + timedelta(days=3))})
    assert r.status_code == 200, r.text
    async with sessions() as session, session.begin():
        await session.execute(update(CobRun).where(CobRun.business_date == START).values(status="running"))
        await session.execute(update(CobLease).values(holder="resumed-run", expires_at=None))
    await cob.close_day(sessions, START, "resumed-run")
    assert await _business_date(client) == START + timedelta(days=3)


async def test_a_repayment_waits_for_the_chunk_that_closes_its_loan(
    loans: System, infra: Infra, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The deterministic form of the race: the chunk holding the loan is held between its
    read and its write while a repayment on the loan is made. The repayment must wait for
    the chunk (its rows are locked FOR UPDATE; SQLite's BEGIN IMMEDIATE), else the chunk
    writes back the balances it read and the repayment is lost from the loan."""
    loan = await _loan(loans, infra, amount="12000.00")
    client = loans["loans"]
    # Some interest accrued first: the repayment then pays interest, which the chunk writes too.
    assert (await client.post("/v1/cob", json={"date": str(START + timedelta(days=3))})).status_code == 200
    real = cob._write_loans
    reached, opened = asyncio.Event(), asyncio.Event()

    async def held(session: Any, rows: Any, loans_: Any) -> None:
        # The first chunk, the loan's: on PostgreSQL the loan only accrues today and was
        # written by the chunk's statement for plain accruals already (cob_accrual.py), so
        # ``loans_`` is empty there; the chunk still holds the row until it commits.
        if not reached.is_set():
            reached.set()
            await opened.wait()
        await real(session, rows, loans_)

    monkeypatch.setattr(cob, "_write_loans", held)
    run = asyncio.create_task(client.post("/v1/cob", json={"date": str(START + timedelta(days=4))}))
    await asyncio.wait_for(reached.wait(), 60)
    repayment = asyncio.create_task(client.post(f"/v1/loans/{loan}/repayments", json={"amount": "1.00"}))
    # Give a repayment that does not wait the time to finish (not needed when it waits).
    await asyncio.wait({repayment}, timeout=1)
    opened.set()
    assert (await run).status_code == 200
    r = await repayment
    assert r.status_code == 201, r.text
    await ledger_matches_loans(loans)
    async with loans.runtimes["loans"].read_sessions() as session:
        row = await session.get(Loan, loan)
    assert row is not None
    assert (row.interest_paid, row.principal_paid) == (Decimal("1.00"), Decimal("0.00"))
    assert row.principal_outstanding == row.principal - row.principal_paid
