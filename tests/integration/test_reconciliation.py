"""The bank's daily reconciliation file (对账文件, issue 25 item 3, DOMAIN.md §7) on both
backends: a business date with disbursements, repayments allocated to penalty, interest and
principal, a write-off and a recovery, closed by close of business. The file equals an
independent sum of that date's events read back from loans' topic (Kafka on the distributed
backend, the embedded bus's log otherwise); the ``loans.reconciliation.ready`` event carries
the same totals and checksum; the CSV read back with the csv module agrees. The subsidy accrued
is not in any per-day event (the accrual posts a district total), so it is checked against the
ledger's rows summed by plain SQL. A bank file missing one repayment is reported as exactly one
difference naming that loan, kept open until resolved."""

from __future__ import annotations

import asyncio
import csv
import io
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import text

from services.loans import recoveries
from shared.auth import add_credential
from shared.events import Envelope
from tests.conftest import Infra
from tests.support.loans import TOWNSHIP, VILLAGE
from tests.support.risk import run_cob
from tests.support.system import System, certified_line, read_events
from tests.support.waiting import until_a_session_waits_on_a_lock, wait_until

START = date(2027, 3, 20)
D = Decimal
ZERO = D("0.00")
KINDS = ("disbursement", "repayment", "write_off", "recovery")
Keys = dict[str, dict[str, str]]


@pytest.fixture
async def system(infra: Infra) -> AsyncIterator[tuple[System, Keys]]:
    keys: Keys = {}
    credentials = infra.tmp / f"credentials-{uuid.uuid4().hex}.json"
    for name, roles in (("bank", ("bank",)), ("government", ("government",))):
        token, _ = add_credential(credentials, name, "api_key", roles)  # type: ignore[arg-type]
        keys[name] = {"Authorization": f"Bearer {token}"}
    async with System(infra, ["loans"], credentials_file=credentials, start_date=START) as s:
        yield s, keys


async def _draw(s: System, amount: str, *, poor: bool = False) -> tuple[str, date]:
    _, line = await certified_line(s, VILLAGE, TOWNSHIP, limit="100000.00", poor_household=poor)
    r = await s["loans"].post(
        "/v1/loans",
        json={"credit_line_id": line, "amount": amount, "term_months": 12, "repayment_method": "equal_instalment"},
    )
    assert r.status_code == 201, r.text
    return r.json()["loan_id"], date.fromisoformat(r.json()["schedule"][0]["due_on"])


async def _repay(s: System, loan_id: str, amount: str) -> dict[str, Any]:
    r = await s["loans"].post(f"/v1/loans/{loan_id}/repayments", json={"amount": amount})
    assert r.status_code == 201, r.text
    return dict(r.json())


def _money(value: object) -> Decimal:
    return D(str(value)).quantize(D("0.01"))


def _sum_events(events: list[Envelope], day: date) -> tuple[Counter[tuple[str, ...]], dict[str, dict[str, Any]]]:
    """The day's movements as the events tell them, summed without the service's code: each
    as (kind, loan, amount, principal, interest, penalty), and per kind a count and sums."""
    lines: Counter[tuple[str, ...]] = Counter()
    for e in events:
        p = e.payload
        if e.type == "loans.loan.disbursed" and p["disbursed_on"] == day.isoformat():
            line = ("disbursement", p["loan_id"], p["amount"], "0.00", "0.00", "0.00")
        elif e.type == "loans.repayment.received" and p["business_date"] == day.isoformat():
            line = ("repayment", p["loan_id"], p["amount"], p["principal"], p["interest"], p["penalty"])
        elif e.type == "loans.loan.written_off" and p["business_date"] == day.isoformat():
            line = ("write_off", p["loan_id"], p["loss"], p["principal"], p["interest"], "0.00")
        elif e.type == "loans.loan.recovered" and p["business_date"] == day.isoformat():
            line = ("recovery", p["loan_id"], p["amount"], "0.00", "0.00", "0.00")
        else:
            continue
        lines[line] += 1
    totals: dict[str, dict[str, Any]] = {
        kind: {"count": 0, "amount": ZERO, "principal": ZERO, "interest": ZERO, "penalty": ZERO} for kind in KINDS
    }
    for (kind, _, amount, principal, interest, penalty), n in lines.items():
        t = totals[kind]
        t["count"] += n
        for name, value in (("amount", amount), ("principal", principal), ("interest", interest), ("penalty", penalty)):
            t[name] += n * _money(value)
    return lines, totals


def _file_totals(out: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        t["kind"]: {"count": t["count"], **{k: _money(t[k]) for k in ("amount", "principal", "interest", "penalty")}}
        for t in out["totals"]
    }


async def test_the_days_file_is_the_sum_of_its_events_and_a_missing_repayment_is_reported(
    system: tuple[System, Keys], infra: Infra
) -> None:
    s, keys = system
    loans, bank = s["loans"], keys["bank"]
    # On the first day: W (to be written off), P (to pay penalty), Q (repaid twice on the day),
    # and a registered poor household's loan, fully subsidised, so the days accrue subsidy.
    w, first_due = await _draw(s, "10000.00")
    p, _ = await _draw(s, "6000.00")
    q, _ = await _draw(s, "3000.00")
    await _draw(s, "8000.00", poor=True)
    # Nothing paid: 91 days past the first due date W is substandard, non-performing. The
    # day before, Q pays once (a movement of another date, not in the day's file).
    day = first_due + timedelta(days=91)
    await run_cob(s, day - timedelta(days=1))
    await _repay(s, q, "100.00")
    await run_cob(s, day)

    # The day: two disbursements, P's repayment (penalty first, then interest, then
    # principal), Q's two, W written off and a recovery on it.
    r1, _ = await _draw(s, "5000.00")
    r2, _ = await _draw(s, "7000.50")
    paid = await _repay(s, p, "1000.00")
    assert D(paid["penalty"]) > 0 and D(paid["interest"]) > 0 and D(paid["principal"]) > 0, paid
    await _repay(s, q, "150.00")
    await _repay(s, q, "250.25")
    r = await loans.post(f"/v1/loans/{w}/write-off")
    assert r.status_code == 201, r.text
    r = await loans.post(f"/v1/loans/{w}/recoveries", json={"amount": "500.00"}, headers=bank)
    assert r.status_code == 201, r.text

    url = f"/v1/reconciliation/{day}"
    # The business date itself is still open; after it, nothing has happened; before the
    # ledger's first day no close of business closed it; a date past year 9999 is no date.
    r = await loans.get(url)
    assert (r.status_code, r.json()["code"]) == (409, "RECONCILIATION_DATE_OPEN"), r.text
    for far in ("9999-12-31", str(day + timedelta(days=1))):
        r = await loans.get(f"/v1/reconciliation/{far}")
        assert (r.status_code, r.json()["code"]) == (422, "RECONCILIATION_DATE_IN_FUTURE"), r.text
    for bad in ("10000-01-01", "2027-02-30", "yesterday"):
        r = await loans.get(f"/v1/reconciliation/{bad}")
        assert (r.status_code, r.json()["code"]) == (422, "VALIDATION_FAILED"), r.text
    r = await loans.get(f"/v1/reconciliation/{START - timedelta(days=1)}")
    assert (r.status_code, r.json()["code"]) == (404, "RECONCILIATION_DATE_UNKNOWN"), r.text

    await run_cob(s, day + timedelta(days=1))
    r = await loans.get(url)
    assert r.status_code == 200, r.text
    out = r.json()
    assert (await loans.get(url, headers=keys["government"])).json() == out, "settlement:read, the government too"

    # The day's events, read back from loans' topic, summed independently.
    topic = infra.topic_prefix + "loans.events"
    found: dict[str, Any] = {}

    async def announced() -> bool:
        events = await read_events(s.runtimes["loans"].bus, topic)
        ready = [
            e.payload
            for e in events
            if e.type == "loans.reconciliation.ready" and e.payload["business_date"] == day.isoformat()
        ]
        found.update(events=events, ready=ready)
        return bool(ready)

    await wait_until(announced, what="loans.reconciliation.ready on loans' topic")
    lines, summed = _sum_events(found["events"], day)
    assert _file_totals(out) == summed
    assert (
        Counter(
            (x["kind"], x["loan_id"], x["amount"], x["principal"], x["interest"], x["penalty"]) for x in out["lines"]
        )
        == lines
    )
    assert {x["loan_id"] for x in out["lines"] if x["kind"] == "disbursement"} == {r1, r2}
    assert [(t["kind"], t["count"]) for t in out["totals"]] == [
        ("disbursement", 2),
        ("repayment", 3),
        ("write_off", 1),
        ("recovery", 1),
    ]
    # The event: the file's totals and checksum, once.
    (ready,) = found["ready"]
    assert ready["checksum"] == out["checksum"] and len(out["checksum"]) == 64
    assert (ready["totals"], ready["subsidy_accrued"], ready["lines"]) == (
        out["totals"],
        out["subsidy_accrued"],
        len(out["lines"]),
    )
    # The subsidy accrued: no event carries a day's; the ledger's rows, summed by plain SQL.
    async with s.runtimes["loans"].read_sessions() as session:
        ledger_subsidy = await session.scalar(
            text(
                "SELECT SUM(debit) - SUM(credit) FROM ledger_entries "
                "WHERE account = 'subsidy_receivable' AND kind = 'accrual' AND business_date = :day"
            ),
            {"day": day},
        )
    assert _money(out["subsidy_accrued"]) == _money(ledger_subsidy) > 0

    # The CSV, read back: a row per movement, a subsidy_accrued row, a totals row.
    r = await loans.get(url, params={"format": "csv"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv"), r.text
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    body, (totals_row,) = [x for x in rows if x["row"] == "line"], [x for x in rows if x["row"] == "totals"]
    assert Counter(x["kind"] for x in body) == {
        **{k: v["count"] for k, v in summed.items() if v["count"]},
        "subsidy_accrued": 1,
    }
    money_columns = [c for c in totals_row if c not in ("row", "kind", "loan_id", "village_code")]
    for column in money_columns:
        assert _money(totals_row[column]) == sum((_money(x[column] or "0") for x in body), ZERO), column
    assert (
        _money(totals_row["disbursed"]),
        _money(totals_row["repaid"]),
        _money(totals_row["repaid_principal"]),
        _money(totals_row["repaid_interest"]),
        _money(totals_row["repaid_penalty"]),
        _money(totals_row["written_off"]),
        _money(totals_row["recovered"]),
        _money(totals_row["subsidy_accrued"]),
    ) == (
        summed["disbursement"]["amount"],
        summed["repayment"]["amount"],
        summed["repayment"]["principal"],
        summed["repayment"]["interest"],
        summed["repayment"]["penalty"],
        summed["write_off"]["amount"],
        summed["recovery"]["amount"],
        _money(out["subsidy_accrued"]),
    )

    # The bank's file: everything but P's repayment.
    bank_lines = [
        {"loan_id": x["loan_id"], "kind": x["kind"], "amount": x["amount"]}
        for x in out["lines"]
        if not (x["kind"] == "repayment" and x["loan_id"] == p)
    ]

    def bank_file(lines: list[dict[str, str]], **extra: Any) -> dict[str, Any]:
        totals = {
            kind: {
                "count": sum(1 for x in lines if x["kind"] == kind),
                "amount": str(sum((D(x["amount"]) for x in lines if x["kind"] == kind), ZERO)),
            }
            for kind in KINDS
        }
        return {"totals": totals, "subsidy_accrued": out["subsidy_accrued"], "lines": lines, **extra}

    post = f"/v1/reconciliation/{day}/bank-file"
    # Refused, storing nothing: totals that are not its lines; a date still open; a role
    # without reconciliation:submit.
    wrong = bank_file(bank_lines)
    wrong["totals"]["repayment"]["amount"] = "1.00"
    r = await loans.post(post, json=wrong, headers=bank)
    assert (r.status_code, r.json()["code"]) == (422, "BANK_FILE_INCONSISTENT"), r.text
    r = await loans.post(f"/v1/reconciliation/{day + timedelta(days=1)}/bank-file", json=bank_file([]), headers=bank)
    assert (r.status_code, r.json()["code"]) == (409, "RECONCILIATION_DATE_OPEN"), r.text
    r = await loans.post(post, json=bank_file(bank_lines), headers=keys["government"])
    assert r.status_code == 403, r.text
    assert (await loans.get("/v1/reconciliation/differences")).json() == []

    headers = {**bank, "Idempotency-Key": f"bank-file-{day}-1"}
    r = await loans.post(post, json=bank_file(bank_lines), headers=headers)
    again = await loans.post(post, json=bank_file(bank_lines), headers=headers)
    assert r.status_code == again.status_code == 201, r.text
    assert r.json() == again.json(), "the same key answers the same comparison"
    compared = r.json()
    p_line = next(x for x in out["lines"] if x["kind"] == "repayment" and x["loan_id"] == p)
    (difference,) = compared["differences"]
    assert {k: difference[k] for k in difference if k != "difference_id" and k != "opened_at"} == {
        "business_date": day.isoformat(),
        "kind": "repayment",
        "loan_id": p,
        "village_code": VILLAGE,
        "ours_count": 1,
        "ours_amount": p_line["amount"],
        "theirs_count": 0,
        "theirs_amount": "0.00",
        "status": "open",
        "resolved_by": None,
        "resolved_at": None,
        "reason": None,
    }
    assert [(t["kind"], t["matches"]) for t in compared["totals"]] == [
        ("disbursement", True),
        ("repayment", False),
        ("write_off", True),
        ("recovery", True),
        ("subsidy_accrued", True),
    ]
    assert compared["checksum"] == out["checksum"] and compared["checksum_matches"] is None

    # Kept: listed open, by date and by loan, until resolved.
    listed = (await loans.get("/v1/reconciliation/differences", params={"status": "open"})).json()
    assert [x["difference_id"] for x in listed] == [difference["difference_id"]]
    assert (await loans.get("/v1/reconciliation/differences", params={"loan_id": p, "date": str(day)})).json() == listed
    assert (await loans.get("/v1/reconciliation/differences", params={"status": "resolved"})).json() == []
    # The same file again (a new key) replaces the date's open difference: still exactly one.
    r = await loans.post(post, json=bank_file(bank_lines), headers=bank)
    assert r.status_code == 201, r.text
    listed = (await loans.get("/v1/reconciliation/differences", params={"status": "open"})).json()
    assert [(x["loan_id"], x["kind"]) for x in listed] == [(p, "repayment")]
    difference_id = listed[0]["difference_id"]

    resolve = f"/v1/reconciliation/differences/{difference_id}/resolve"
    for refused in ({}, {"reason": ""}, {"reason": "   "}, {"reason": "x", "extra": 1}):
        r = await loans.post(resolve, json=refused, headers=bank)
        assert r.status_code == 422, (refused, r.text)
    r = await loans.post("/v1/reconciliation/differences/no-such/resolve", json={"reason": "posted late"}, headers=bank)
    assert (r.status_code, r.json()["code"]) == (404, "DIFFERENCE_NOT_FOUND"), r.text
    reason = "core system posted P's repayment on the next day; corrected"
    r = await loans.post(resolve, json={"reason": reason}, headers=bank)
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["reason"], r.json()["resolved_by"]) == ("resolved", reason, "bank")
    r = await loans.post(resolve, json={"reason": reason}, headers=bank)
    assert (r.status_code, r.json()["code"]) == (409, "DIFFERENCE_RESOLVED"), r.text
    assert (await loans.get("/v1/reconciliation/differences", params={"status": "open"})).json() == []
    resolved = (await loans.get("/v1/reconciliation/differences", params={"status": "resolved"})).json()
    assert [(x["difference_id"], x["reason"]) for x in resolved] == [(difference_id, reason)]

    # The bank's corrected file, with the checksum it computed: nothing differs, the resolved
    # difference stays as it was.
    full = [{"loan_id": x["loan_id"], "kind": x["kind"], "amount": x["amount"]} for x in out["lines"]]
    r = await loans.post(post, json=bank_file(full, checksum=out["checksum"]), headers=bank)
    assert r.status_code == 201, r.text
    assert (r.json()["differences"], r.json()["checksum_matches"]) == ([], True)
    assert all(t["matches"] for t in r.json()["totals"])
    assert (await loans.get("/v1/reconciliation/differences", params={"status": "resolved"})).json() == resolved


async def test_a_booking_under_way_when_the_day_closes_is_in_the_days_event(
    system: tuple[System, Keys], infra: Infra
) -> None:
    """A recovery that has read the business date when the close of business moves the date
    on: the close waits for it (PostgreSQL: the booking holds the date row shared, the close
    takes it exclusively), so the day's event counts it as the day's file does. Before, the
    close went ahead and the recovery, committed after, was in the file but not in the event.
    A written-off loan is not in the close's chunks, so only the date row can hold the close."""
    s, keys = system
    loans = s["loans"]
    w, first_due = await _draw(s, "10000.00")
    day = first_due + timedelta(days=91)
    await run_cob(s, day)
    r = await loans.post(f"/v1/loans/{w}/write-off")
    assert r.status_code == 201, r.text
    runtime = s.runtimes["loans"]
    async with runtime.sessions() as session, session.begin():
        booked = await recoveries.recover(session, w, D("321.00"), "bank")
        assert booked.recovery.business_date == day
        closing = asyncio.create_task(run_cob(s, day + timedelta(days=1)))
        if infra.backend != "embedded":
            await until_a_session_waits_on_a_lock(runtime.read_sessions, "the close to wait for the recovery's hold")
        assert not closing.done()
    await closing
    out = (await loans.get(f"/v1/reconciliation/{day}", headers=keys["bank"])).json()
    topic = infra.topic_prefix + "loans.events"
    ready: list[dict[str, Any]] = []

    async def announced() -> bool:
        events = await read_events(runtime.bus, topic)
        ready[:] = [
            e.payload
            for e in events
            if e.type == "loans.reconciliation.ready" and e.payload["business_date"] == day.isoformat()
        ]
        return bool(ready)

    await wait_until(announced, what="the day's loans.reconciliation.ready")
    recovery = {t["kind"]: t for t in ready[0]["totals"]}["recovery"]
    assert (recovery["count"], recovery["amount"]) == (1, "321.00")
    assert ready[0]["checksum"] == out["checksum"]
