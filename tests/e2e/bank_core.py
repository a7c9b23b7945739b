"""A bank core sending repayments to loans the way a real one does while the system is being
broken on purpose: every repayment with its own ``Idempotency-Key``, retried with the same
key on 5xx answers and transport errors until the system gives a definitive one (2xx or
4xx). What it was told is the reference the ledger is checked against."""

from __future__ import annotations

import asyncio
import itertools
import random
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

import httpx

RETRY_DELAY = 0.2
RETRY_DELAY_MAX = 2.0


class NoDefinitiveAnswer(AssertionError):
    """A repayment was still answered only with 5xx or transport errors at its deadline."""


@dataclass(frozen=True)
class Accepted:
    key: str
    loan_id: str
    amount: Decimal
    repayment_id: str
    # The answer was a stored one: an earlier attempt had been applied though its answer
    # never arrived (a dropped connection, a killed process).
    replayed: bool


@dataclass
class Tally:
    """The bank core's side of the books, over every stream it ran."""

    sent: int = 0  # repayments (distinct keys), not attempts
    retried: int = 0  # attempts after the first
    accepted: list[Accepted] = field(default_factory=list)
    refused: Counter[str] = field(default_factory=Counter)  # 4xx, by problem code
    # Every answer that made the bank core try again, by status (or "transport").
    transient: Counter[str] = field(default_factory=Counter)

    @property
    def accepted_total(self) -> Decimal:
        return sum((a.amount for a in self.accepted), Decimal("0.00"))

    @property
    def replayed(self) -> int:
        return sum(1 for a in self.accepted if a.replayed)

    def copy(self) -> Tally:
        return Tally(self.sent, self.retried, list(self.accepted), Counter(self.refused), Counter(self.transient))

    def since(self, earlier: Tally) -> Tally:
        """What happened after ``earlier`` (a ``copy()``)."""
        return Tally(
            self.sent - earlier.sent,
            self.retried - earlier.retried,
            self.accepted[len(earlier.accepted) :],
            self.refused - earlier.refused,
            self.transient - earlier.transient,
        )

    def summary(self) -> str:
        transient = ", ".join(f"{k}: {v}" for k, v in sorted(self.transient.items())) or "none"
        return (
            f"requests sent {self.sent} / accepted {len(self.accepted)} (of which replayed {self.replayed})"
            f" / refused {sum(self.refused.values())} / retried {self.retried} (transient answers: {transient})"
        )


class BankCore:
    def __init__(self, loans_url: str, token: str, *, deadline_seconds: float = 150) -> None:
        self.tally = Tally()
        self.deadline_seconds = deadline_seconds
        # A short timeout: a request stuck on a dead process is retried, as a real core would.
        self._http = httpx.AsyncClient(
            base_url=loans_url, headers={"Authorization": f"Bearer {token}"}, timeout=httpx.Timeout(15, connect=2)
        )
        self._rng = random.Random(9)

    async def aclose(self) -> None:
        await self._http.aclose()

    def amount(self) -> Decimal:
        # Small against loans of tens of thousands: no repayment is refused as an overpayment.
        return Decimal(self._rng.randint(100, 5000)) / 100

    async def repay(self, loan_id: str, amount: Decimal) -> httpx.Response:
        """One repayment, retried with its key until a definitive answer; that answer."""
        key = f"fault-{uuid.uuid4()}"
        self.tally.sent += 1
        deadline = time.monotonic() + self.deadline_seconds
        delay = RETRY_DELAY
        for attempt in itertools.count():
            if attempt:
                self.tally.retried += 1
            try:
                r = await self._http.post(
                    f"/v1/loans/{loan_id}/repayments",
                    json={"amount": f"{amount:.2f}"},
                    headers={"Idempotency-Key": key},
                )
            except httpx.TransportError as exc:
                self.tally.transient[f"transport ({type(exc).__name__})"] += 1
            else:
                if r.status_code < 500:
                    self._record(key, loan_id, amount, r)
                    return r
                self.tally.transient[f"{r.status_code} {_code(r)}"] += 1
            if time.monotonic() > deadline:
                raise NoDefinitiveAnswer(
                    f"repayment {key} on {loan_id}: no definitive answer in {self.deadline_seconds}s"
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_DELAY_MAX)
        raise AssertionError("unreachable")

    def _record(self, key: str, loan_id: str, amount: Decimal, r: httpx.Response) -> None:
        if r.status_code == 201:
            body = r.json()
            assert Decimal(body["amount"]) == amount, r.text
            replayed = r.headers.get("Idempotent-Replayed") == "true"
            self.tally.accepted.append(Accepted(key, loan_id, amount, body["repayment_id"], replayed))
        else:
            self.tally.refused[_code(r) or str(r.status_code)] += 1

    async def stream(self, loans: Sequence[str], stop: asyncio.Event, *, workers: int = 4, pause: float = 0.02) -> None:
        """Repay round the loans from ``workers`` tasks until ``stop`` is set; every repayment
        begun is finished (definitively answered) before this returns."""

        async def worker(n: int) -> None:
            for i in itertools.count(n):
                if stop.is_set():
                    return
                await self.repay(loans[i % len(loans)], self.amount())
                await asyncio.sleep(pause)

        async with asyncio.TaskGroup() as group:
            for n in range(workers):
                group.create_task(worker(n))


def _code(r: httpx.Response) -> str:
    try:
        body = r.json()
    except ValueError:
        return ""
    return str(body.get("code", "")) if isinstance(body, dict) else ""
