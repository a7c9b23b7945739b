"""Settlement as a district runs it (issue 25), checked against the simulator's own record.

After each close of business the simulator asks for the day's reconciliation file (对账文件)
and compares it, kind by kind, with what it did itself that day: the disbursements and
repayments it sent, the write-offs and recoveries it booked. At each month end it closes the
accounting month, checks the trial balance and has the insurer's claims of the month filed,
accepted and settled in a batch; at each quarter end it files the subsidy claim (贴息资金拨付),
has the second principal approve it in full and record its payment, and checks that nothing
approved is left unpaid (``subsidy_claimed`` 0.00). What the system answers is read back;
every disagreement is an anomaly of the run.

The second principal (``--approver-token``) needs the roles government (subsidy:review) and
insurer (claims:decide) beside bank; a step it is refused (403) is skipped and counted.
"""

from __future__ import annotations

import asyncio
import calendar
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from simulator.client import Api, ApiError, problem_code

KINDS = ("disbursement", "repayment", "write_off", "recovery")
ZERO = Decimal("0.00")
QUARTER_END_MONTHS = frozenset({3, 6, 9, 12})  # VCREDIT_LOANS_SUBSIDY_CLAIM_PERIOD=quarter, the default
RISK_DATE_WAIT_S = 60.0  # risk learns the business date from loans' event, within seconds


def month_end(day: date) -> bool:
    return day.day == calendar.monthrange(day.year, day.month)[1]


def month_of(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def quarter_ending(day: date) -> tuple[date, date] | None:
    """The calendar quarter whose last day is ``day``, as (first, last); None on other days."""
    if not (month_end(day) and day.month in QUARTER_END_MONTHS):
        return None
    return date(day.year, day.month - 2, 1), day


@dataclass
class DayBook:
    """What the simulator moved, by business date and kind: (count, amount)."""

    days: defaultdict[date, dict[str, tuple[int, Decimal]]] = field(default_factory=lambda: defaultdict(dict))

    def add(self, day: date, kind: str, amount: Decimal) -> None:
        assert kind in KINDS, kind
        count, total = self.days[day].get(kind, (0, ZERO))
        self.days[day][kind] = (count + 1, total + amount)

    def totals(self, day: date) -> dict[str, tuple[int, Decimal]]:
        """Every kind, a zero one too."""
        got = self.days.get(day, {})
        return {kind: got.get(kind, (0, ZERO)) for kind in KINDS}


def reconciliation_mismatches(day: date, ours: dict[str, tuple[int, Decimal]], file: dict[str, Any]) -> list[str]:
    """Each kind whose count or amount in the reconciliation file differs from the simulator's."""
    theirs = {t["kind"]: (int(t["count"]), Decimal(t["amount"])) for t in file["totals"]}
    found = []
    for kind in sorted(set(ours) | set(theirs)):
        mine, file_has = ours.get(kind, (0, ZERO)), theirs.get(kind, (0, ZERO))
        if mine != file_has:
            found.append(
                f"{day}: reconciliation {kind}: the file has {file_has[0]} for {file_has[1]}, "
                f"the simulator made {mine[0]} for {mine[1]}"
            )
    return found


def trial_balance_problem(trial: dict[str, Any], what: str) -> str | None:
    """The trial balance's debit-normal closing total must equal its credit-normal one."""
    totals = trial["totals"]
    debit, credit = Decimal(totals["debit_normal"]), Decimal(totals["credit_normal"])
    if debit != credit:
        return f"trial balance {what}: debit-normal {debit} != credit-normal {credit}"
    return None


@dataclass
class SettlementTally:
    days_reconciled: int = 0
    reconciliation_mismatches: int = 0
    months_closed: list[str] = field(default_factory=list)
    trial_balances_checked: int = 0
    subsidy_claims_filed: int = 0
    subsidy_claimed: Decimal = ZERO
    subsidy_claims_approved: int = 0
    subsidy_approved: Decimal = ZERO
    subsidy_claims_paid: int = 0
    subsidy_paid: Decimal = ZERO
    subsidy_nothing_to_claim: int = 0
    insurer_batches_filed: int = 0
    insurer_batches_empty: int = 0
    insurer_lines_accepted: int = 0
    insurer_batches_settled: int = 0
    insurer_settled: Decimal = ZERO
    skipped: Counter[str] = field(default_factory=Counter)  # approver's steps refused (403) or without one
    seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "days_reconciled": self.days_reconciled,
            "reconciliation_mismatches": self.reconciliation_mismatches,
            "months_closed": list(self.months_closed),
            "trial_balances_checked": self.trial_balances_checked,
            "subsidy_claims": {
                "filed": self.subsidy_claims_filed,
                "claimed": str(self.subsidy_claimed),
                "approved": self.subsidy_claims_approved,
                "approved_amount": str(self.subsidy_approved),
                "paid": self.subsidy_claims_paid,
                "paid_amount": str(self.subsidy_paid),
                "nothing_to_claim": self.subsidy_nothing_to_claim,
            },
            "insurer_batches": {
                "filed": self.insurer_batches_filed,
                "empty_months": self.insurer_batches_empty,
                "lines_accepted": self.insurer_lines_accepted,
                "settled": self.insurer_batches_settled,
                "settled_amount": str(self.insurer_settled),
            },
            "steps_skipped": dict(self.skipped),
            "seconds": round(self.seconds, 1),
        }


class Settlement:
    def __init__(self, api: Api, approver: Api | None, key: Callable[..., str], anomalies: list[str]) -> None:
        self.api = api
        self.approver = approver
        self._key = key
        self.anomalies = anomalies
        self.book = DayBook()
        self.tally = SettlementTally()

    async def after_close(self, closed: date) -> None:
        """The district's settlement once close of business has closed ``closed``."""
        began = time.monotonic()
        try:
            await self._step(self.reconcile(closed))
            if month_end(closed):
                await self._step(self.close_month(closed))
                if (quarter := quarter_ending(closed)) is not None:
                    await self._step(self.claim_subsidy(*quarter))
                await self._step(self.insurer_batch(closed))
        finally:
            self.tally.seconds += time.monotonic() - began

    async def _step(self, work: Any) -> None:
        try:
            await work
        except ApiError as error:
            # Surfaced in the summary; one refusal must not end the run.
            self.anomalies.append(str(error))

    async def reconcile(self, day: date) -> None:
        file = await self.api.get("loans", f"/v1/reconciliation/{day}", endpoint="/v1/reconciliation/{date}")
        found = reconciliation_mismatches(day, self.book.totals(day), file)
        self.tally.days_reconciled += 1
        self.tally.reconciliation_mismatches += len(found)
        self.anomalies.extend(found)

    async def _trial_balance(self, what: str) -> dict[str, Any]:
        trial: dict[str, Any] = await self.api.get("loans", "/v1/ledger/trial-balance")
        self.tally.trial_balances_checked += 1
        if (problem := trial_balance_problem(trial, what)) is not None:
            self.anomalies.append(problem)
        return trial

    async def close_month(self, last: date) -> None:
        month = month_of(last)
        await self.api.post(
            "loans",
            f"/v1/ledger/periods/{month}/close",
            endpoint="/v1/ledger/periods/{period}/close",
            key=self._key("period-close", month),
        )
        self.tally.months_closed.append(month)
        await self._trial_balance(f"after closing {month}")

    async def _as_approver(
        self, step: str, service: str, path: str, endpoint: str, key: str, body: Any
    ) -> dict[str, Any] | None:
        """The second principal's POST; None (the step skipped and counted) without one or on 403."""
        if self.approver is None:
            self.tally.skipped[f"{step} (no approver)"] += 1
            return None
        response = await self.approver.request(service, "POST", path, endpoint=endpoint, key=key, json=body)
        if response.status_code == 403:
            self.tally.skipped[f"{step} (approver lacks the scope)"] += 1
            return None
        if response.status_code not in (200, 201):
            raise ApiError(response)
        answer: dict[str, Any] = response.json()
        return answer

    async def claim_subsidy(self, first: date, last: date) -> None:
        """The quarter's subsidy claim: filed by the bank, approved in full and paid by the
        district finance (the second principal); afterwards nothing approved is unpaid."""
        response = await self.api.request(
            "loans",
            "POST",
            "/v1/subsidy-claims",
            key=self._key("subsidy-claim", first),
            json={"period_start": str(first), "period_end": str(last)},
        )
        if response.status_code == 422 and problem_code(response) == "SUBSIDY_NOTHING_TO_CLAIM":
            self.tally.subsidy_nothing_to_claim += 1
            return
        if response.status_code != 201:
            raise ApiError(response)
        claim = response.json()
        self.tally.subsidy_claims_filed += 1
        self.tally.subsidy_claimed += Decimal(claim["claimed"])
        base = f"/v1/subsidy-claims/{claim['claim_id']}"
        reviewed = await self._as_approver(
            "subsidy review",
            "loans",
            f"{base}/review",
            "/v1/subsidy-claims/{id}/review",
            self._key("subsidy-review", first),
            {"decision": "approve"},
        )
        if reviewed is None:
            return
        approved = Decimal(reviewed["approved"])
        if approved != Decimal(claim["claimed"]):
            self.anomalies.append(f"subsidy claim {first}..{last} approved in full: {approved} of {claim['claimed']}")
        self.tally.subsidy_claims_approved += 1
        self.tally.subsidy_approved += approved
        paid = await self._as_approver(
            "subsidy payment",
            "loans",
            f"{base}/payments",
            "/v1/subsidy-claims/{id}/payments",
            self._key("subsidy-payment", first),
            {"amount": str(approved), "reference": f"财政拨付 {first}..{last}"},
        )
        if paid is None:
            return
        self.tally.subsidy_claims_paid += 1
        self.tally.subsidy_paid += approved
        trial = await self._trial_balance(f"after paying the subsidy claim {first}..{last}")
        left = Decimal(trial["accounts"].get("subsidy_claimed", ZERO))
        if left != 0:
            self.anomalies.append(f"subsidy_claimed is {left} after the claim {first}..{last} was paid in full")

    async def insurer_batch(self, last: date) -> None:
        """The month's batch of the insurer's open claims: filed by the bank, every line
        accepted by the insurer (the second principal), settled."""
        month = month_of(last)
        deadline = time.monotonic() + RISK_DATE_WAIT_S
        while True:
            response = await self.api.request(
                "risk",
                "POST",
                "/v1/claim-batches",
                key=self._key("claim-batch", month),
                json={"party": "insurer", "month": month},
            )
            code = problem_code(response)
            # Risk learns of the close of business from loans' event: a moment later.
            if code != "CLAIM_BATCH_PERIOD_NOT_ENDED" or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        if response.status_code == 409 and code == "CLAIM_BATCH_EMPTY":
            self.tally.insurer_batches_empty += 1
            return
        if response.status_code != 201:
            raise ApiError(response)
        batch = response.json()
        self.tally.insurer_batches_filed += 1
        base = f"/v1/claim-batches/{batch['batch_id']}"
        for line in batch["lines"]:
            decided = await self._as_approver(
                "insurer line decision",
                "risk",
                f"{base}/lines/{line['loan_id']}/decision",
                "/v1/claim-batches/{id}/lines/{loan_id}/decision",
                self._key("claim-decision", month, line["loan_id"]),
                {"decision": "accept"},
            )
            if decided is None:
                return  # the batch stays filed, undecided
            self.tally.insurer_lines_accepted += 1
        settled = await self.api.post(
            "risk",
            f"{base}/settle",
            {"reference": f"保险理赔 {month}"},
            endpoint="/v1/claim-batches/{id}/settle",
            key=self._key("claim-settle", month),
        )
        self.tally.insurer_batches_settled += 1
        self.tally.insurer_settled += Decimal(settled["settled_total"] or ZERO)
