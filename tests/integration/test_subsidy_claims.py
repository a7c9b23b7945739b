"""Subsidy claims (贴息资金拨付, issue 25 item 1, DOMAIN.md §7) through the HTTP API on both
backends: a quarter of a small district end to end. The bank files the quarter's claim computed
from the ledger, the district finance (a second principal) returns it, the bank files again,
the finance approves part and pays in two payments; at every step the ledger's
``subsidy_claimed`` is the claims approved less their payments, and a refusal changes nothing.

The district (business date 2027-01-01, every loan drawn that day, 12 months, interest only,
30/360, so each period is a calendar month and Q1 is exactly periods 1-3):
- A, a poor household, 12,000.00 at 4.35%, fully subsidised: a period's subsidy is
  12,000.00 × 0.0435 / 12 = 43.50; Q1 3 × 43.50 = 130.50 over 31 + 28 + 31 = 90 days.
- B, a poor household, 6,000.00: 6,000.00 × 0.0435 / 12 = 21.75 a period; black-listed
  2027-02-10 to 02-19 (delisted 02-20): days 10..19 of period 2's 28 earn nothing (seed 001),
  day k's share being round(21.75 × k / 28) - round(21.75 × (k-1) / 28), so the 10 days forfeit
  round(21.75 × 19 / 28) - round(21.75 × 9 / 28) = round(14.758…) - round(6.991…) = 14.76 - 6.99
  = 7.77; claimed 3 × 21.75 - 7.77 = 57.48.
- C, a business, 100,000.00 at 4.35% × 1.1 = 4.785%, subsidised 3% a year: 100,000.00 × 0.03 /
  12 = 250.00 a period, 750.00 for Q1; it pays none of its net interest (398.75 - 250.00 =
  148.75 a month), so compound interest (复利) accrues from 02-01: excluded, never claimed.
- D, an ordinary household, 5,000.00 at 4.35%, no subsidy: not in the claim.
Claimed 130.50 + 57.48 + 750.00 = 937.98. The finance approves C at 500.00 only: approved
687.98, disallowed 250.00; paid 400.00, then 287.98.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import AsyncIterator
from datetime import date
from decimal import Decimal
from typing import Any

import httpx
import openpyxl
import pytest
from sqlalchemy import func, select

from services.loans.models import ListEntry, SubsidyClaim
from shared.auth import add_credential
from shared.catalogue import SubjectDelisted, SubjectListed
from shared.events import new_event
from shared.messaging import outbox
from tests.conftest import Infra
from tests.support.loans import ledger_matches_loans
from tests.support.system import System, certified_line
from tests.support.waiting import wait_until

VILLAGE, TOWNSHIP = "410102003001", "410102003"
START = date(2027, 1, 1)
Q1 = {"period_start": "2027-01-01", "period_end": "2027-03-31"}
D = Decimal
Keys = dict[str, dict[str, str]]


@pytest.fixture
async def district(infra: Infra) -> AsyncIterator[tuple[System, Keys]]:
    credentials = infra.tmp / f"credentials-{uuid.uuid4().hex}.json"
    keys: Keys = {}
    # The bank files, the district finance (government) reviews and pays; one key holding
    # both roles (a bank acting as the district's agent) shows that four eyes go by the name.
    for name, roles in (("bank", ("bank",)), ("finance", ("government",)), ("both", ("bank", "government"))):
        token, _ = add_credential(credentials, f"as-{name}", "api_key", roles)
        keys[name] = {"Authorization": f"Bearer {token}", "X-Query-Purpose": "subsidy claim test"}
    async with System(infra, ["loans"], credentials_file=credentials, start_date=START) as system:
        yield system, keys


async def _draw(system: System, kind: str, amount: str) -> dict[str, Any]:
    """A certified line for a new subject (``poor``, ``household`` or ``business``) and a
    12-month interest-only loan on it."""
    subject, line = await certified_line(
        system,
        VILLAGE,
        TOWNSHIP,
        limit="500000.00",
        poor_household=kind == "poor",
        subject_kind="business" if kind == "business" else "household",
    )
    client = system["loans"]
    r = await client.post(
        "/v1/loans",
        json={
            "credit_line_id": line,
            "amount": amount,
            "term_months": 12,
            "repayment_method": "interest_only",
        },
    )
    assert r.status_code == 201, r.text
    return dict(r.json()) | {"subject_id": subject}


async def _black_list(system: System, subject: str, listed_on: date, delisted_on: date) -> None:
    entry = str(uuid.uuid4())
    common = {"entry_id": entry, "list": "black", "subject_kind": "household", "subject_id": subject}
    place = {"village_code": VILLAGE, "township_code": TOWNSHIP, "decided_by_role": "government"}
    await system.publish(
        new_event(
            "risk.subject.listed",
            VILLAGE,
            SubjectListed(
                **common,
                **place,
                cause="malicious_evasion",
                tier="serious",
                legal_basis="seed 001",
                listed_on=listed_on,
            ),
        ),
        new_event(
            "risk.subject.delisted",
            VILLAGE,
            SubjectDelisted(
                **common, **place, reason="repaired", legal_basis="credit repair decision", delisted_on=delisted_on
            ),
        ),
    )

    async def arrived() -> bool:
        async with system.runtimes["loans"].read_sessions() as session:
            row = await session.get(ListEntry, entry)
        return row is not None and row.listed_on == listed_on and row.delisted_on == delisted_on

    await wait_until(arrived, what="the black-list entry to reach loans")


async def _cob(client: httpx.AsyncClient, day: date) -> None:
    r = await client.post("/v1/cob", json={"date": str(day)})
    assert r.status_code == 200, r.text


async def _balances(client: httpx.AsyncClient) -> dict[str, D]:
    accounts = (await client.get("/v1/ledger/trial-balance")).json()["accounts"]
    return {k: D(v) for k, v in accounts.items()}


async def _claimed_is_approved_less_paid(system: System) -> None:
    """The invariant at every step: the ledger's subsidy_claimed is, over all claims, what was
    approved less what was paid; and the receivables match the loans (the subsidy receivable
    less what reviews settled)."""
    client = system["loans"]
    claims = (await client.get("/v1/subsidy-claims")).json()
    owed = sum((D(c["approved"]) - D(c["paid"]) for c in claims if c["approved"] is not None), D("0.00"))
    assert (await _balances(client)).get("subsidy_claimed", D("0.00")) == owed
    await ledger_matches_loans(system)


async def _unchanged(system: System) -> tuple[Any, ...]:
    """What a refusal must leave as it was: the claims, the ledger, the outbox."""
    client = system["loans"]
    async with system.runtimes["loans"].read_sessions() as session:
        count = await session.scalar(select(func.count()).select_from(SubsidyClaim))
        events = await session.scalar(select(func.count()).select_from(outbox))
    claims = (await client.get("/v1/subsidy-claims")).json()
    return count, events, claims, await _balances(client)


async def _events(system: System, event_type: str) -> list[tuple[str, dict[str, Any]]]:
    async with system.runtimes["loans"].read_sessions() as session:
        rows = await session.execute(
            select(outbox.c.key, outbox.c.envelope).where(outbox.c.type == event_type).order_by(outbox.c.id)
        )
        return [(key, json.loads(envelope)["payload"]) for key, envelope in rows]


def _line(claim: dict[str, Any], loan_id: str) -> dict[str, Any]:
    return next(x for x in claim["lines"] if x["loan_id"] == loan_id)


async def test_a_quarter_of_a_small_district_claimed_part_approved_and_paid(district: tuple[System, Keys]) -> None:
    system, keys = district
    client = system["loans"]
    a = await _draw(system, "poor", "12000.00")
    b = await _draw(system, "poor", "6000.00")
    c = await _draw(system, "business", "100000.00")
    d = await _draw(system, "household", "5000.00")
    assert (a["subsidy_rate"], c["annual_rate"], c["subsidy_rate"], d["subsidy_rate"]) == (
        "0.043500",
        "0.047850",
        "0.030000",
        "0.000000",
    )
    await _black_list(system, b["subject_id"], date(2027, 2, 10), date(2027, 2, 20))

    await _cob(client, date(2027, 3, 31))
    # Its last day is not closed yet; a month is not the configured period (a quarter).
    r = await client.post("/v1/subsidy-claims", json=Q1, headers=keys["bank"])
    assert (r.status_code, r.json()["code"]) == (422, "SUBSIDY_PERIOD_NOT_CLOSED"), r.text
    month = {"period_start": "2027-01-01", "period_end": "2027-01-31"}
    r = await client.post("/v1/subsidy-claims", json=month, headers=keys["bank"])
    assert (r.status_code, r.json()["code"], r.json()["expected_end"]) == (422, "SUBSIDY_PERIOD_INVALID", "2027-03-31")
    # The government does not file claims, the bank does not review them (scopes).
    assert (await client.post("/v1/subsidy-claims", json=Q1, headers=keys["finance"])).status_code == 403

    await _cob(client, date(2027, 4, 1))
    loan_c = (await client.get(f"/v1/loans/{c['loan_id']}")).json()
    penalty_c = D(loan_c["penalty_accrued"]) + D(loan_c["compound_accrued"])
    assert penalty_c > 0, "the business's unpaid interest compounds"
    loan_b = (await client.get(f"/v1/loans/{b['loan_id']}")).json()
    assert loan_b["subsidy_forfeited"] == "7.77"
    # B owes the 7.77 forfeited (billed 03-01, unpaid): its compound interest, if any, is excluded too.
    penalty_b = D(loan_b["penalty_accrued"]) + D(loan_b["compound_accrued"])

    r = await client.post("/v1/subsidy-claims", json=Q1, headers=keys["bank"] | {"Idempotency-Key": "q1-first"})
    assert r.status_code == 201, r.text
    first = r.json()
    by_hand = {a["loan_id"]: ("130.50", 90), b["loan_id"]: ("57.48", 90), c["loan_id"]: ("750.00", 90)}
    assert {x["loan_id"]: (x["subsidy"], x["days"]) for x in first["lines"]} == by_hand
    assert (first["status"], first["filed_by"], first["filed_on"], first["loans"]) == (
        "filed",
        "as-bank",
        "2027-04-01",
        3,
    )
    assert (first["claimed"], first["forfeited"]) == ("937.98", "7.77")
    assert D(first["penalty_excluded"]) == penalty_b + penalty_c
    assert D(first["claimed"]) == sum(D(x["subsidy"]) for x in first["lines"])
    line_a, line_c = _line(first, a["loan_id"]), _line(first, c["loan_id"])
    assert (line_a["policy"], line_a["principal"], line_a["disbursed_on"], line_a["maturity_on"]) == (
        "全额贴息",
        "12000.00",
        "2027-01-01",
        "2028-01-01",
    )
    assert line_c["policy"] == "年贴息率3%"
    assert line_a["borrower"] == f"{a['subject_id'][:4]}****{a['subject_id'][-4:]}"
    assert a["subject_id"] not in json.dumps(first), "the borrower is masked"
    excluded = {x["loan_id"]: (x["forfeited_days"], x["forfeited"], x["penalty"]) for x in first["excluded"]}
    assert excluded == {b["loan_id"]: (10, "7.77", f"{penalty_b:.2f}"), c["loan_id"]: (0, "0.00", f"{penalty_c:.2f}")}
    # The same key replays the filing; nothing is filed twice.
    again = await client.post("/v1/subsidy-claims", json=Q1, headers=keys["bank"] | {"Idempotency-Key": "q1-first"})
    assert (again.status_code, again.json()["claim_id"]) == (201, first["claim_id"])
    await _claimed_is_approved_less_paid(system)

    # A second claim for the same days is refused and changes nothing.
    before = await _unchanged(system)
    r = await client.post("/v1/subsidy-claims", json=Q1, headers=keys["bank"])
    assert (r.status_code, r.json()["code"], r.json()["claim_ids"]) == (
        409,
        "SUBSIDY_DAYS_CLAIMED",
        [first["claim_id"]],
    )
    assert await _unchanged(system) == before

    # Returned with reasons: nothing posted, and its days may be claimed again.
    review = f"/v1/subsidy-claims/{first['claim_id']}/review"
    r = await client.post(
        review, json={"decision": "return", "reasons": "清单未经乡镇审核盖章"}, headers=keys["finance"]
    )
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["reviewed_by"], r.json()["approved"]) == ("returned", "as-finance", None)
    assert (await _balances(client)) == before[3], "a returned claim posts nothing"
    await _claimed_is_approved_less_paid(system)
    r = await client.post(
        f"/v1/subsidy-claims/{first['claim_id']}/payments",
        json={"amount": "1.00", "reference": "x"},
        headers=keys["finance"],
    )
    assert (r.status_code, r.json()["code"]) == (409, "SUBSIDY_CLAIM_NOT_PAYABLE")

    r = await client.post("/v1/subsidy-claims", json=Q1, headers=keys["both"])
    assert r.status_code == 201, r.text
    claim = r.json()
    assert {x["loan_id"]: (x["subsidy"], x["days"]) for x in claim["lines"]} == by_hand
    review = f"/v1/subsidy-claims/{claim['claim_id']}/review"
    part = {
        "decision": "approve_part",
        "reasons": "企业贴息按带贫人数核减",
        "lines": [{"loan_id": c["loan_id"], "approved": "500.00", "reason": "带贫人数不足, 按2/3核定"}],
    }
    # Its filer may not review it, whatever roles its key holds (four eyes).
    before = await _unchanged(system)
    r = await client.post(review, json=part, headers=keys["both"])
    assert (r.status_code, r.json()["code"]) == (409, "FOUR_EYES_REQUIRED")
    bad = part | {"lines": [{"loan_id": d["loan_id"], "approved": "1.00", "reason": "x"}]}  # D is not a line
    r = await client.post(review, json=bad, headers=keys["finance"])
    assert (r.status_code, r.json()["code"]) == (422, "SUBSIDY_REVIEW_INVALID")
    assert await _unchanged(system) == before

    r = await client.post(review, json=part, headers=keys["finance"])
    assert r.status_code == 200, r.text
    reviewed = r.json()
    assert (reviewed["status"], reviewed["approved"], reviewed["disallowed"], reviewed["outstanding"]) == (
        "part_approved",
        "687.98",
        "250.00",
        "687.98",
    )
    assert (_line(reviewed, c["loan_id"])["approved"], _line(reviewed, a["loan_id"])["approved"]) == (
        "500.00",
        "130.50",
    )
    balances = await _balances(client)
    assert (balances["subsidy_claimed"], balances["subsidy_disallowed"], balances["subsidy_receivable"]) == (
        D("687.98"),
        D("250.00"),
        D("0.00"),  # all Q1's subsidy settled; nothing of Q2 accrued yet (business date 04-01)
    )
    await _claimed_is_approved_less_paid(system)
    r = await client.post(review, json={"decision": "approve"}, headers=keys["finance"])
    assert (r.status_code, r.json()["code"]) == (409, "SUBSIDY_CLAIM_DECIDED")

    # Paid in two payments, on two business days; never more than approved.
    payments = f"/v1/subsidy-claims/{claim['claim_id']}/payments"
    r = await client.post(
        payments, json={"amount": "400.00", "reference": "财贴〔2027〕12号-1"}, headers=keys["finance"]
    )
    assert r.status_code == 201, r.text
    assert (r.json()["status"], r.json()["paid"], r.json()["outstanding"]) == ("part_approved", "400.00", "287.98")
    await _claimed_is_approved_less_paid(system)
    await _cob(client, date(2027, 4, 2))
    await _claimed_is_approved_less_paid(system)
    before = await _unchanged(system)
    r = await client.post(payments, json={"amount": "287.99", "reference": "多付"}, headers=keys["finance"])
    assert (r.status_code, r.json()["code"]) == (409, "SUBSIDY_OVERPAID")
    assert await _unchanged(system) == before
    r = await client.post(
        payments,
        json={"amount": "287.98", "reference": "财贴〔2027〕12号-2", "paid_on": "2027-04-01"},
        headers=keys["finance"],
    )
    assert r.status_code == 201, r.text
    paid = r.json()
    assert (paid["status"], paid["paid"], paid["outstanding"]) == ("paid", "687.98", "0.00")
    assert [(p["amount"], p["paid_on"], p["business_date"]) for p in paid["payments"]] == [
        ("400.00", "2027-04-01", "2027-04-01"),
        ("287.98", "2027-04-01", "2027-04-02"),
    ]
    balances = await _balances(client)
    # Settlement is credit-normal (what the bank's core has put out, net): money the district
    # finance pays in brings it down by the 287.98.
    assert (balances["subsidy_claimed"], balances["settlement"] - before[3]["settlement"]) == (D("0.00"), D("-287.98"))
    await _claimed_is_approved_less_paid(system)
    r = await client.post(payments, json={"amount": "0.01", "reference": "x"}, headers=keys["finance"])
    assert (r.status_code, r.json()["code"]) == (409, "SUBSIDY_CLAIM_NOT_PAYABLE")

    # The events carry totals only, keyed by the district.
    filed = await _events(system, "loans.subsidy_claim.filed")
    assert [(k, p["claimed"], p["loans"]) for k, p in filed] == [("district", "937.98", 3), ("district", "937.98", 3)]
    assert [p["status"] for _, p in await _events(system, "loans.subsidy_claim.reviewed")] == [
        "returned",
        "part_approved",
    ]
    assert [p["paid"] for _, p in await _events(system, "loans.subsidy_claim.paid")] == ["400.00", "687.98"]
    for _, payload in filed:
        assert not {"lines", "subject_id", "borrower"} & set(payload)

    await _sheets_agree(client, paid)

    # Q2 is its snapshot at 06-30 less the one at 03-31: each poor loan 3 whole periods again
    # (B no longer listed: 3 × 21.75 = 65.25), C 3 × 250.00, over 30 + 31 + 30 = 91 days; and
    # what Q1 and Q2 claimed is every fen each loan accrued, none twice.
    await _cob(client, date(2027, 7, 1))
    r = await client.post(
        "/v1/subsidy-claims", json={"period_start": "2027-04-01", "period_end": "2027-06-30"}, headers=keys["bank"]
    )
    assert r.status_code == 201, r.text
    q2 = r.json()
    assert {x["loan_id"]: (x["subsidy"], x["days"]) for x in q2["lines"]} == {
        a["loan_id"]: ("130.50", 91),
        b["loan_id"]: ("65.25", 91),
        c["loan_id"]: ("750.00", 91),
    }
    for loan in (a, b, c):
        accrued = (await client.get(f"/v1/loans/{loan['loan_id']}")).json()["subsidy_accrued"]
        assert D(_line(paid, loan["loan_id"])["subsidy"]) + D(_line(q2, loan["loan_id"])["subsidy"]) == D(accrued)
    await _claimed_is_approved_less_paid(system)


async def _sheets_agree(client: httpx.AsyncClient, claim: dict[str, Any]) -> None:
    """The XLSX opened with openpyxl and the CSV read back: their 合计 is the JSON's total and
    the sum of their lines."""
    url = f"/v1/subsidy-claims/{claim['claim_id']}"
    lines_total = sum(D(x["subsidy"]) for x in claim["lines"])
    assert lines_total == D(claim["claimed"])

    r = await client.get(url, params={"format": "xlsx"})
    assert r.status_code == 200, r.text
    assert r.headers["content-disposition"] == 'attachment; filename="subsidy-claim-2027-01-01-2027-03-31.xlsx"'
    book = openpyxl.load_workbook(io.BytesIO(r.content))
    sheet = book["贴息资金拨付申请表"]
    rows = [list(row) for row in sheet.iter_rows(values_only=True)]
    heading = {row[0]: row[1] for row in rows[:6]}
    assert (heading["贷款银行"], heading["贴息期间"], heading["申报日期"]) == (
        "合作银行",
        "2027-01-01 至 2027-03-31",
        "2027-04-01",
    )
    titles = next(row for row in rows if row[0] == "序号")
    assert "身份证号" not in titles  # loans holds no ID numbers
    at = {title: i for i, title in enumerate(titles)}
    body = rows[rows.index(titles) + 1 :]
    lines, totals = body[:-1], body[-1]
    assert totals[at["借款人"]] == "合计"
    assert [row[at["序号"]] for row in lines] == [1, 2, 3]
    assert D(str(totals[at["贴息金额"]])) == D(claim["claimed"]) == sum(D(str(row[at["贴息金额"]])) for row in lines)
    assert D(str(totals[at["核准金额"]])) == D(claim["approved"]) == sum(D(str(row[at["核准金额"]])) for row in lines)
    assert {row[at["贷款编号"]]: D(str(row[at["贴息金额"]])) for row in lines} == {
        x["loan_id"]: D(x["subsidy"]) for x in claim["lines"]
    }
    excluded = [list(row) for row in book["不予贴息明细"].iter_rows(values_only=True)]
    assert D(str(excluded[-1][4])) == D(claim["forfeited"]) and excluded[-1][1] == "合计"

    r = await client.get(url, params={"format": "csv"})
    assert r.status_code == 200, r.text
    assert r.content.startswith("\ufeff".encode())
    table = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    csv_lines = [row for row in table if row["row"] == "line"]
    (csv_totals,) = [row for row in table if row["row"] == "totals"]
    assert D(csv_totals["subsidy"]) == D(claim["claimed"]) == sum(D(row["subsidy"]) for row in csv_lines)
    assert {row["loan_id"]: row["subsidy"] for row in csv_lines} == {x["loan_id"]: x["subsidy"] for x in claim["lines"]}


async def test_a_claim_needs_the_snapshots_of_its_end(district: tuple[System, Keys]) -> None:
    """Q4 2026 ended before the business date but was never closed here (the system started on
    2027-01-01): no month-end snapshot, so nothing can be claimed from the ledger for it."""
    system, keys = district
    client = system["loans"]
    await _draw(system, "poor", "12000.00")
    await _cob(client, date(2027, 1, 2))
    q4 = {"period_start": "2026-10-01", "period_end": "2026-12-31"}
    r = await client.post("/v1/subsidy-claims", json=q4, headers=keys["bank"])
    assert (r.status_code, r.json()["code"]) == (422, "SUBSIDY_HISTORY_MISSING"), r.text
    assert (await client.get("/v1/subsidy-claims")).json() == []
