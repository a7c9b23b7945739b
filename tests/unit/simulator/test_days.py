"""The simulator's business days against a mocked system: each day is closed once, in order;
its snapshot is taken beside its close; an ordinary day's reconciliation runs beside the next
day's requests but always after its own close and before the next close; a month end's
settlement is done before the next day starts (issue 27: fewer waits in line per day)."""

from __future__ import annotations

import asyncio
import itertools
import json
from datetime import date, timedelta
from typing import Any

import httpx

from simulator.client import Api
from simulator.district import Options, generate
from simulator.run import Simulation

START = date(2027, 1, 20)  # one month: Jan 31 is a month end, no quarter end


def _file() -> dict[str, Any]:
    kinds = ("disbursement", "repayment", "write_off", "recovery")
    return {"totals": [{"kind": k, "count": 0, "amount": "0.00"} for k in kinds]}


class System:
    """Answers the calls a quiet district makes and logs when each began and ended."""

    def __init__(self) -> None:
        self.log: list[tuple[int, str, str]] = []  # (tick, "begin"/"end", call)
        self._tick = itertools.count()

    def mark(self, edge: str, call: str) -> None:
        self.log.append((next(self._tick), edge, call))

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        call = f"{request.method} {path}"
        self.mark("begin", call)
        # A moment in each call, so that what may overlap does.
        await asyncio.sleep(0.002)
        answer: tuple[int, Any]
        if path == "/v1/business-date":
            answer = 200, {"business_date": START.isoformat()}
        elif path == "/v1/cob":
            closed_to = json.loads(request.content)["date"]
            answer = 200, {"closed": [], "business_date": closed_to}
        elif path == "/v1/townships":
            answer = 200, []
        elif path == "/v1/fund":
            answer = 200, {"balance": "0.00", "capacity": "0.00", "outstanding": "0.00", "available": "0.00"}
        elif path.startswith("/v1/reconciliation/"):
            answer = 200, _file()
        elif path.endswith("/credit-lines"):
            answer = 200, {"opened": [], "skipped": []}
        elif path == "/v1/ledger/periods/2027-01/close":
            answer = 200, {"period": "2027-01"}
        elif path == "/v1/ledger/trial-balance":
            answer = 200, {"totals": {"debit_normal": "1.00", "credit_normal": "1.00"}, "accounts": {}}
        elif path == "/v1/claim-batches":
            answer = 409, {"code": "CLAIM_BATCH_EMPTY"}
        else:
            raise AssertionError(call)
        self.mark("end", call)
        return httpx.Response(answer[0], json=answer[1])

    def when(self, edge: str, call: str) -> int:
        ticks = [t for t, e, c in self.log if e == edge and c == call]
        assert len(ticks) == 1, (edge, call, ticks)
        return ticks[0]


async def test_each_day_is_closed_once_in_order_and_settled_between_its_close_and_the_next() -> None:
    system = System()
    api = Api({s: f"http://{s}" for s in ("registry", "scoring", "loans", "risk", "notify")}, "token")
    api._client = httpx.AsyncClient(transport=httpx.MockTransport(system))
    sim = Simulation(api, generate(Options(townships=1, villages=1, households=5)), months=1)

    async def customer(day: date) -> None:
        system.mark("begin", f"customer {day}")

    for day in (date(2027, 1, 22), date(2027, 2, 1)):
        sim._inflows[day].append(customer)
    try:
        await sim.run_days()
    finally:
        await api.aclose()

    days = [START + timedelta(days=n) for n in range((date(2027, 2, 20) - START).days)]
    assert [s.business_date for s in sim.snapshots] == days
    assert sim.settlement.tally.days_reconciled == len(days) and sim.tally.anomalies == []
    closes = [c for _, e, c in system.log if e == "begin" and c == "POST /v1/cob"]
    assert len(closes) == len(days)
    for n, day in enumerate(days):
        cob_begin, cob_end = _nth(system, "POST /v1/cob", n)
        reconciled = f"GET /v1/reconciliation/{day}"
        # Its reconciliation once the day is closed, and done before the next day is.
        assert system.when("begin", reconciled) > cob_end
        if n + 1 < len(days):
            next_begin, _ = _nth(system, "POST /v1/cob", n + 1)
            assert system.when("end", reconciled) < next_begin
        # Its snapshot taken after the previous day's close, before the next one.
        snap_begin, snap_end = _nth(system, "GET /v1/townships", n)
        assert snap_begin > (_nth(system, "POST /v1/cob", n - 1)[1] if n else -1)
        assert snap_end < (_nth(system, "POST /v1/cob", n + 1)[0] if n + 1 < len(days) else 10**9)
        assert cob_begin < cob_end
    # The month end's steps, in line: done before the next day's close begins.
    month_closed = system.when("end", "POST /v1/ledger/periods/2027-01/close")
    feb_1 = days.index(date(2027, 2, 1))
    assert system.when("begin", "POST /v1/ledger/periods/2027-01/close") > _nth(system, "POST /v1/cob", feb_1 - 1)[1]
    assert system.when("end", "POST /v1/claim-batches") < _nth(system, "POST /v1/cob", feb_1)[0]
    assert month_closed < system.when("begin", "customer 2027-02-01")


def _nth(system: System, call: str, n: int) -> tuple[int, int]:
    """When the n-th ``call`` began and ended (calls of one kind do not overlap here)."""
    begins = [t for t, e, c in system.log if e == "begin" and c == call]
    ends = [t for t, e, c in system.log if e == "end" and c == call]
    return begins[n], ends[n]
