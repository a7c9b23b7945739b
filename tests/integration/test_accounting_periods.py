"""Closed accounting periods and the trial balance (issue 25 item 4) through the HTTP API on
both backends: a loan lent and repaid across January and February, January closed, its
snapshot against an independent sum of the ledger's rows (plain SQL); a posting into it
refused and the correction shown in February; the signs by hand."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import date
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text

from services.loans import ledger
from services.loans.context import business_date
from services.loans.models import LedgerEntry
from shared.auth import add_credential
from shared.messaging import outbox
from shared.problems import Problem
from shared.runtime import ServiceRuntime
from tests.conftest import Infra
from tests.support.loans import ledger_matches_loans, open_certified_line
from tests.support.system import System
from tests.support.waiting import until_a_session_waits_on_a_lock

START = date(2027, 1, 1)
D = Decimal
Keys = dict[str, dict[str, str]]
NORMAL_SIDE = {"asset": "debit", "expense": "debit", "liability": "credit", "income": "credit"}


@pytest.fixture
async def system(infra: Infra) -> AsyncIterator[tuple[System, Keys]]:
    keys: Keys = {}
    credentials = infra.tmp / f"credentials-{uuid.uuid4().hex}.json"
    for name, roles in (("bank", ("bank",)), ("government", ("government",))):
        token, _ = add_credential(credentials, name, "api_key", roles)  # type: ignore[arg-type]
        keys[name] = {"Authorization": f"Bearer {token}"}
    async with System(infra, ["loans"], credentials_file=credentials, start_date=START) as s:
        yield s, keys


async def _cob(system: System, day: date) -> None:
    r = await system["loans"].post("/v1/cob", json={"date": str(day)})
    assert r.status_code == 200, r.text


async def _rows(system: System) -> int:
    async with system.runtimes["loans"].read_sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(LedgerEntry)) or 0)


async def _sql_lines(system: System, first: date, last: date) -> list[dict[str, str]]:
    """The month's trial balance summed from the ledger's rows by plain SQL, signed here by
    the chart's types: the independent witness of the stored snapshot."""
    query = text(
        "SELECT account,"
        " SUM(CASE WHEN business_date < :first THEN debit ELSE 0 END),"
        " SUM(CASE WHEN business_date < :first THEN credit ELSE 0 END),"
        " SUM(CASE WHEN business_date >= :first THEN debit ELSE 0 END),"
        " SUM(CASE WHEN business_date >= :first THEN credit ELSE 0 END)"
        " FROM ledger_entries WHERE business_date <= :last GROUP BY account"
    )
    async with system.runtimes["loans"].read_sessions() as session:
        rows = (await session.execute(query, {"first": first, "last": last})).all()
    out = []
    for account, od, oc, d, c in rows:
        od, oc, d, c = (D(x or 0).quantize(D("0.01")) for x in (od, oc, d, c))
        debit_normal = NORMAL_SIDE[ledger.ACCOUNTS[account]] == "debit"
        out.append(
            {
                "account": account,
                "type": ledger.ACCOUNTS[account],
                "normal_side": NORMAL_SIDE[ledger.ACCOUNTS[account]],
                "opening": f"{(od - oc) if debit_normal else (oc - od):.2f}",
                "debit": f"{d:.2f}",
                "credit": f"{c:.2f}",
                "balance": f"{(od + d - oc - c) if debit_normal else (oc + c - od - d):.2f}",
            }
        )
    return sorted(out, key=lambda x: list(ledger.ACCOUNTS).index(x["account"]))


def _by_account(body: dict[str, Any]) -> dict[str, dict[str, str]]:
    return {x["account"]: x for x in body["lines"]}


async def test_a_posting_into_a_closed_month_is_refused_and_its_correction_shows_in_the_next(
    system: tuple[System, Keys],
) -> None:
    s, keys = system
    client, bank = s["loans"], keys["bank"]
    # 10,000.00 lent on 1 January (household: the 4.35% benchmark, no subsidy), interest
    # only; 500.00 back the same day, so period 1's interest is 9,500.00 × 4.35% / 12 =
    # 34.4375 -> 34.44, accrued over January's 31 days and billed on the 31st, due 1 February.
    line = await open_certified_line(s, s.infra)
    r = await client.post(
        "/v1/loans",
        json={"credit_line_id": line, "amount": "10000.00", "term_months": 12, "repayment_method": "interest_only"},
    )
    assert r.status_code == 201, r.text
    loan_id = r.json()["loan_id"]
    assert r.json()["annual_rate"].rstrip("0") == "0.0435"
    r = await client.post(f"/v1/loans/{loan_id}/repayments", json={"amount": "500.00"})
    assert (r.status_code, r.json()["principal"]) == (201, "500.00"), r.text

    await _cob(s, date(2027, 1, 31))
    r = await client.post("/v1/ledger/periods/2027-01/close", headers=bank)
    assert (r.status_code, r.json()["code"]) == (409, "PERIOD_NOT_ENDED"), "31 January is not closed yet"
    await _cob(s, date(2027, 2, 1))
    r = await client.post(f"/v1/loans/{loan_id}/repayments", json={"amount": "34.44"})
    assert (r.status_code, r.json()["interest"], r.json()["principal"]) == (201, "34.44", "0.00"), r.text
    await _cob(s, date(2027, 2, 3))

    # The signs, by hand: every balance positive on its normal side, the sides equal.
    january = (await client.get("/v1/ledger/trial-balance", params={"as_of": "2027-01-31"}, headers=bank)).json()
    assert january["accounts"] == {
        "loans_principal": "9500.00",
        "interest_receivable": "34.44",
        "settlement": "9500.00",
        "interest_income": "34.44",
    }
    assert (_by_account(january)["settlement"]["type"], _by_account(january)["settlement"]["normal_side"]) == (
        "liability",
        "credit",
    )
    assert (_by_account(january)["settlement"]["debit"], _by_account(january)["settlement"]["credit"]) == (
        "500.00",
        "10000.00",
    )
    totals = january["totals"]
    assert (totals["debit_normal"], totals["credit_normal"], totals["balanced"]) == ("9534.44", "9534.44", True)
    assert (january["as_of"], january["from"], january["closed_through"]) == ("2027-01-31", None, None)

    # January closes: its snapshot is the plain-SQL sum of its rows.
    r = await client.post("/v1/ledger/periods/2027-01/close", headers=keys["government"])
    assert r.status_code == 403, "the bank (or the operator) closes its books"
    r = await client.post("/v1/ledger/periods/2027-01/close", headers=bank)
    assert r.status_code == 201, r.text
    closed = r.json()
    independent = await _sql_lines(s, date(2027, 1, 1), date(2027, 1, 31))
    assert closed["lines"] == independent
    assert closed["lines"] == january["lines"]
    assert (closed["period"], closed["first_day"], closed["last_day"], closed["business_date"]) == (
        "2027-01",
        "2027-01-01",
        "2027-01-31",
        "2027-02-03",
    )
    # Debits: 10,000.00 lent + 500.00 back + 34.44 accrued.
    assert closed["totals"] == january["totals"]
    assert (closed["totals"]["debit"], closed["totals"]["credit"]) == ("10534.44", "10534.44")
    r = await client.post("/v1/ledger/periods/2027-01/close", headers=bank)
    assert (r.status_code, r.json()["code"]) == (409, "PERIOD_ALREADY_CLOSED")
    r = await client.post("/v1/ledger/periods/2027-02/close", headers=bank)
    assert (r.status_code, r.json()["code"]) == (409, "PERIOD_NOT_ENDED")
    async with s.runtimes["loans"].read_sessions() as session:
        published = list(await session.scalars(select(outbox.c.envelope).where(outbox.c.type == "loans.period.closed")))
    assert len(published) == 1
    envelope = json.loads(published[0])
    assert envelope["key"] == "district"
    event = envelope["payload"]
    assert (event["period"], event["debit_normal"], event["credit_normal"]) == ("2027-01", "9534.44", "9534.44")
    assert {a["account"]: a["closing"] for a in event["accounts"]} == january["accounts"]

    # A posting into January is refused, nothing written; the correction goes in February.
    async with s.runtimes["loans"].read_sessions() as session:
        accrual = await session.scalar(
            select(LedgerEntry.txn_id).where(
                LedgerEntry.kind == "accrual", LedgerEntry.business_date == date(2027, 1, 31)
            )
        )
    assert accrual is not None
    correction = {
        "corrects": accrual,
        "reason": "1.00 of January's interest was compound interest",
        "legs": [
            {"account": "interest_income", "debit": "1.00"},
            {"account": "penalty_income", "credit": "1.00"},
        ],
    }
    before = await _rows(s)
    r = await client.post("/v1/ledger/corrections", json=correction | {"date": "2027-01-31"}, headers=bank)
    assert (r.status_code, r.json()["code"], r.json()["closed_through"]) == (409, "PERIOD_CLOSED", "2027-01-31")
    assert await _rows(s) == before, "nothing written"
    once = bank | {"Idempotency-Key": "correction-1"}
    r = await client.post("/v1/ledger/corrections", json=correction, headers=once)
    assert r.status_code == 201, r.text
    made = r.json()
    replayed = await client.post("/v1/ledger/corrections", json=correction, headers=once)
    assert (replayed.status_code, replayed.json()) == (201, made), "a retry posts nothing twice"
    assert (made["corrects"], made["business_date"], made["recorded_by"]) == (accrual, "2027-02-03", "bank")
    assert made["legs"] == [
        {"account": "interest_income", "debit": "1.00", "credit": "0.00"},
        {"account": "penalty_income", "debit": "0.00", "credit": "1.00"},
    ]
    assert await _rows(s) == before + 2
    listed = (await client.get("/v1/ledger/corrections", params={"period": "2027-02"}, headers=bank)).json()
    assert listed == [made]
    assert (await client.get("/v1/ledger/corrections", params={"period": "2027-01"}, headers=bank)).json() == []
    # Paged by transaction: a page holds a correction with both its legs, the next none.
    paged = {"period": "2027-02", "limit": 1}
    assert (await client.get("/v1/ledger/corrections", params=paged, headers=bank)).json() == [made]
    paged["offset"] = 1
    assert (await client.get("/v1/ledger/corrections", params=paged, headers=bank)).json() == []

    # February's view: January's closing is its opening, the correction among its movements.
    february = (await client.get("/v1/ledger/trial-balance", params={"period": "2027-02"}, headers=bank)).json()
    assert (february["period"], february["from"], february["as_of"], february["closed_through"]) == (
        "2027-02",
        "2027-02-01",
        "2027-02-28",
        "2027-01-31",
    )
    lines = _by_account(february)
    assert {a: lines[a]["opening"] for a in january["accounts"]} == january["accounts"]
    assert (lines["penalty_income"]["opening"], lines["penalty_income"]["credit"]) == ("0.00", "1.00")
    assert lines["interest_income"]["debit"] == "1.00"
    assert february["lines"] == await _sql_lines(s, date(2027, 2, 1), date(2027, 2, 28))
    assert february["totals"]["balanced"] is True
    now = (await client.get("/v1/ledger/trial-balance", params={"as_of": "2027-02-03"}, headers=bank)).json()
    assert now["accounts"]["penalty_income"] == "1.00"
    # January as closed: the stored snapshot, and the ledger as of its end, unchanged.
    assert (await client.get("/v1/ledger/periods/2027-01", headers=bank)).json() == closed
    assert (await client.get("/v1/ledger/periods", headers=bank)).json() == [closed]
    again = (await client.get("/v1/ledger/trial-balance", params={"as_of": "2027-01-31"}, headers=bank)).json()
    assert again["lines"] == january["lines"]

    # The correction reversed (legs omitted): penalty income back to nothing.
    r = await client.post(
        "/v1/ledger/corrections", json={"corrects": made["txn_id"], "reason": "reclassified by mistake"}, headers=bank
    )
    assert r.status_code == 201, r.text
    assert (r.json()["corrects"], r.json()["legs"]) == (
        made["txn_id"],
        [
            {"account": "interest_income", "debit": "0.00", "credit": "1.00"},
            {"account": "penalty_income", "debit": "1.00", "credit": "0.00"},
        ],
    )
    now = (await client.get("/v1/ledger/trial-balance", headers=bank)).json()
    assert now["accounts"]["penalty_income"] == "0.00"
    await ledger_matches_loans(s)

    # Refusals: each changes nothing.
    async with s.runtimes["loans"].read_sessions() as session:
        disbursement = await session.scalar(select(LedgerEntry.txn_id).where(LedgerEntry.kind == "disbursement"))
    before = await _rows(s)
    refused = [
        ({"corrects": disbursement, "reason": "x"}, 422, "ACCOUNT_NOT_CORRECTABLE"),
        (correction | {"corrects": "no-such-txn"}, 404, "TRANSACTION_NOT_FOUND"),
        (correction | {"legs": [{"account": "cash", "debit": "1.00"}, correction["legs"][1]]}, 422, "UNKNOWN_ACCOUNT"),
        (
            correction | {"legs": [correction["legs"][0], {"account": "penalty_income", "credit": "0.99"}]},
            422,
            "UNBALANCED_CORRECTION",
        ),
        (correction | {"date": "2027-02-04"}, 422, "DATE_IN_THE_FUTURE"),
    ]
    for body, status, code in refused:
        r = await client.post("/v1/ledger/corrections", json=body, headers=bank)
        assert (r.status_code, r.json()["code"]) == (status, code), (body, r.text)
    assert (await client.post("/v1/ledger/corrections", json=correction, headers=keys["government"])).status_code == 403
    assert await _rows(s) == before
    for params, code in (
        ({"period": "2027-13"}, "INVALID_PERIOD"),
        ({"period": "9999-12"}, "PERIOD_IN_THE_FUTURE"),
        ({"as_of": "9999-12-31"}, "DATE_IN_THE_FUTURE"),
        ({"period": "2027-02", "as_of": "2027-01-31"}, "AS_OF_BEFORE_PERIOD"),
    ):
        r = await client.get("/v1/ledger/trial-balance", params=params, headers=bank)
        assert (r.status_code, r.json()["code"]) == (422, code), params
    r = await client.get("/v1/ledger/trial-balance", params={"as_of": "2027-02-30"}, headers=bank)
    assert r.status_code == 422
    r = await client.get("/v1/ledger/periods/2027-02", headers=bank)
    assert (r.status_code, r.json()["code"]) == (404, "PERIOD_NOT_CLOSED")


SEVEN_YUAN_INCOME = [(ledger.SETTLEMENT, D("0"), D("7.00")), (ledger.INTEREST_INCOME, D("7.00"), D("0"))]


async def _a_close_held_back(
    client: httpx.AsyncClient, bank: dict[str, str], runtime: ServiceRuntime, infra: Infra, what: str
) -> asyncio.Task[httpx.Response]:
    """January's close, begun while the caller's transaction holds what it must wait for; on
    PostgreSQL returned once it is seen waiting on the lock (SQLite's writer lock cannot be seen)."""
    closing = asyncio.create_task(client.post("/v1/ledger/periods/2027-01/close", headers=bank))
    if infra.backend != "embedded":
        await until_a_session_waits_on_a_lock(runtime.read_sessions, what)
    assert not closing.done()
    return closing


async def test_a_close_waits_for_a_posting_under_way_and_a_later_one_is_refused(
    system: tuple[System, Keys], infra: Infra
) -> None:
    """A posting dated in January begun before the close (its transaction open) is in the
    snapshot: the close waits for it. After the close the same posting is refused."""
    s, keys = system
    client, bank = s["loans"], keys["bank"]
    await _cob(s, date(2027, 2, 1))
    runtime = s.runtimes["loans"]
    async with runtime.sessions() as session, session.begin():
        await ledger.post(session, ledger.posting("test", None, date(2027, 1, 31), SEVEN_YUAN_INCOME))
        closing = await _a_close_held_back(client, bank, runtime, infra, "the close to wait for the posting's lock")
    r = await closing
    assert r.status_code == 201, r.text
    assert _by_account(r.json())["settlement"]["balance"] == "7.00"
    assert r.json()["lines"] == await _sql_lines(s, date(2027, 1, 1), date(2027, 1, 31))
    async with runtime.sessions() as session, session.begin():
        with pytest.raises(Problem, match="PERIOD_CLOSED"):
            await ledger.post(session, ledger.posting("test", None, date(2027, 1, 31), SEVEN_YUAN_INCOME))
    assert await _sql_lines(s, date(2027, 1, 1), date(2027, 1, 31)) == r.json()["lines"]


async def test_a_booking_holds_the_closing_date_with_the_business_date(
    system: tuple[System, Keys], infra: Infra
) -> None:
    """A booking's hold on the business date (context.business_date, hold=True) takes the
    ledger's closing date shared in the same statement (issue 27): a close waits for the
    transaction, and the transaction's postings check the date it read then. After the close,
    the next transaction's hold reads the new date and its posting is refused."""
    s, keys = system
    client, bank = s["loans"], keys["bank"]
    await _cob(s, date(2027, 2, 1))
    runtime = s.runtimes["loans"]
    async with runtime.sessions() as session, session.begin():
        assert await business_date(session, hold=True) == date(2027, 2, 1)
        closing = await _a_close_held_back(client, bank, runtime, infra, "the close to wait for the hold's lock")
        await ledger.post(session, ledger.posting("test", None, date(2027, 1, 31), SEVEN_YUAN_INCOME))
    r = await closing
    assert r.status_code == 201, r.text
    assert _by_account(r.json())["settlement"]["balance"] == "7.00"
    async with runtime.sessions() as session, session.begin():
        assert await business_date(session, hold=True) == date(2027, 2, 1)
        with pytest.raises(Problem, match="PERIOD_CLOSED"):
            await ledger.post(session, ledger.posting("test", None, date(2027, 1, 31), SEVEN_YUAN_INCOME))
