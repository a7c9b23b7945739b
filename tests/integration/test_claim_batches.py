"""Insurer claims in monthly batches (issue 25 item 2, DOMAIN §7) with loans and risk on both
backends: three loans written off in May, one partly recovered before the batch; the bank files
May's batch in June; the insurer accepts two lines and disputes one with its reason; the batch
is settled at the accepted lines' amounts net of recoveries; the disputed claim is open again
and lands in June's batch; a claim in an open batch is not settled one by one; the XLSX opens
in openpyxl with its totals; a rebuild keeps the batches (records, like claim settlements)."""

from __future__ import annotations

import io
import uuid
from collections.abc import AsyncIterator
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from services.risk.rebuild import rebuild
from shared.auth import add_credential
from shared.messaging import inbox, outbox
from tests.conftest import Infra
from tests.support.risk import START, TOWNSHIP, V1, V2, publish_hierarchy, run_cob
from tests.support.system import System, certified_line, read_events
from tests.support.waiting import wait_until

Keys = dict[str, dict[str, str]]


@pytest.fixture
async def system(infra: Infra) -> AsyncIterator[tuple[System, Keys]]:
    keys: Keys = {}
    credentials = infra.tmp / f"credentials-{uuid.uuid4().hex}.json"
    for name in ("bank", "government", "insurer"):
        token, _ = add_credential(credentials, name, "api_key", (name,))  # type: ignore[arg-type]
        keys[name] = {"Authorization": f"Bearer {token}"}
    async with System(infra, ["loans", "risk"], credentials_file=credentials, start_date=START) as s:
        yield s, keys


async def _caught_up(system: System) -> None:
    """Risk has applied every event loans emitted that it handles (a positive witness)."""
    handled = set(system.runtimes["risk"].consumer.handlers)

    async def applied_all() -> bool:
        async with system.runtimes["loans"].read_sessions() as session:
            emitted = set(await session.scalars(select(outbox.c.event_id).where(outbox.c.type.in_(handled))))
        async with system.runtimes["risk"].read_sessions() as session:
            applied = set(await session.scalars(select(inbox.c.event_id)))
        return emitted <= applied

    await wait_until(applied_all, what="risk to apply every event loans emitted")


async def _insurer_claim(system: System, loan_id: str) -> dict[str, Any]:
    r = await system["risk"].get("/v1/claims", params={"loan_id": loan_id, "party": "insurer"})
    (claim,) = r.json()
    return dict(claim)


async def test_a_month_of_insurer_claims_filed_decided_and_settled_in_one_batch(
    system: tuple[System, Keys], infra: Infra
) -> None:
    s, keys = system
    loans, risk = s["loans"], s["risk"]
    bank, insurer, government = keys["bank"], keys["insurer"], keys["government"]
    await publish_hierarchy(s)

    # Three registered poor households: the benchmark rate fully subsidised (004 §3(2)), so
    # the borrower owes no interest of its own and each loss written off is the principal.
    loan_ids: list[str] = []
    for village, amount in ((V1, "10000.00"), (V2, "8000.02"), (V1, "6000.00")):
        _, line = await certified_line(s, village, TOWNSHIP, poor_household=True)
        r = await loans.post(
            "/v1/loans",
            json={"credit_line_id": line, "amount": amount, "term_months": 12, "repayment_method": "equal_principal"},
        )
        assert r.status_code == 201, r.text
        loan_ids.append(r.json()["loan_id"])
        first_due = date.fromisoformat(r.json()["schedule"][0]["due_on"])
    l1, l2, l3 = loan_ids

    # Day 91 past the first due date (in May): non-performing; all three written off.
    written_off_on = first_due + timedelta(days=91)
    assert (written_off_on.year, written_off_on.month) == (2026, 5)
    await run_cob(s, written_off_on)
    for loan_id in loan_ids:
        r = await loans.post(f"/v1/loans/{loan_id}/write-off")
        assert r.status_code == 201, r.text
    # 1,000.01 of the third recovered before any batch.
    r = await loans.post(f"/v1/loans/{l3}/recoveries", json={"amount": "1000.01"}, headers=bank)
    assert r.status_code == 201, r.text
    await _caught_up(s)

    # The losses split 30/20/50 in fen by largest remainder (004 §6(1)):
    #   l1 1,000,000 fen: 300,000 / 200,000 / 500,000 exactly: insurer 5,000.00.
    #   l2   800,002 fen: exact 240,000.6 / 160,000.4 / 400,001; floors leave 1 fen, to the
    #      largest remainder .6 (government): 2,400.01 / 1,600.00 / 4,000.01: insurer 4,000.01.
    #   l3   600,000 fen: 180,000 / 120,000 / 300,000: insurer 3,000.00.
    # l3's recovery, 100,001 fen, split by what each still bears (180,000 / 120,000 / 300,000 of
    # 600,000): exact 30,000.3 / 20,000.2 / 50,000.5, floors 100,000, the 1 fen left to the
    # largest remainder, .5 (the insurer): 300.00 / 200.00 / 500.01. The insurer's open claim
    # on l3 is 3,000.00 - 500.01 = 2,499.99.
    assert (await _insurer_claim(s, l3))["amount"] == "2499.99"

    # May has not ended on its 91st day's business date: 422, nothing filed.
    may = {"party": "insurer", "month": "2026-05"}
    r = await risk.post("/v1/claim-batches", json=may, headers=bank)
    assert (r.status_code, r.json()["code"]) == (422, "CLAIM_BATCH_PERIOD_NOT_ENDED"), r.text

    await run_cob(s, date(2026, 6, 1))
    await _caught_up(s)
    # Refusals, each changing nothing: a malformed month, a month with no open claim, the
    # insurer filing against itself, the bank's share (not batched).
    for body, status, code in (
        ({"party": "insurer", "month": "2026-13"}, 422, "CLAIM_BATCH_PERIOD_INVALID"),
        ({"party": "insurer", "month": "2026-04"}, 409, "CLAIM_BATCH_EMPTY"),
        ({"party": "insurer", "month": "2026-06"}, 422, "CLAIM_BATCH_PERIOD_NOT_ENDED"),
    ):
        r = await risk.post("/v1/claim-batches", json=body, headers=bank)
        assert (r.status_code, r.json()["code"]) == (status, code), (body, r.text)
    assert (await risk.post("/v1/claim-batches", json=may, headers=insurer)).status_code == 403
    r = await risk.post("/v1/claim-batches", json={"party": "bank", "month": "2026-05"}, headers=bank)
    assert r.status_code == 422, r.text
    assert (await risk.get("/v1/claim-batches", headers=bank)).json() == []

    # May's batch, filed by the bank; the same key answers the same batch.
    headers = {**bank, "Idempotency-Key": "insurer-2026-05"}
    r = await risk.post("/v1/claim-batches", json=may, headers=headers)
    again = await risk.post("/v1/claim-batches", json=may, headers=headers)
    assert r.status_code == again.status_code == 201, r.text
    assert r.json() == again.json()
    batch = r.json()
    batch_id = batch["batch_id"]
    r = await risk.post("/v1/claim-batches", json=may, headers=government)
    assert (r.status_code, r.json()["code"]) == (409, "CLAIM_BATCH_EXISTS"), r.text
    lines = {line["loan_id"]: line for line in batch["lines"]}
    assert {k: (v["village_code"], v["township_name"], v["written_off_on"]) for k, v in lines.items()} == {
        l1: (V1, "城关镇", str(written_off_on)),
        l2: (V2, "城关镇", str(written_off_on)),
        l3: (V1, "城关镇", str(written_off_on)),
    }
    assert {k: (v["loss"], v["share"], v["recovered"], v["payable"]) for k, v in lines.items()} == {
        l1: ("10000.00", "5000.00", "0.00", "5000.00"),
        l2: ("8000.02", "4000.01", "0.00", "4000.01"),
        l3: ("6000.00", "3000.00", "500.01", "2499.99"),
    }
    # Totals: loss 24,000.02; share 12,000.01; recovered 500.01; payable 11,500.00.
    assert (batch["line_count"], batch["loss"], batch["share"], batch["recovered"], batch["payable"]) == (
        3,
        "24000.02",
        "12000.01",
        "500.01",
        "11500.00",
    )
    assert (batch["status"], batch["undecided"], batch["settled_total"]) == ("filed", 3, None)

    # A claim in the open batch is not settled one by one (it would be paid twice).
    r = await risk.post(f"/v1/claims/{l1}/insurer/settle", json={"reference": "PICC-ONE"}, headers=insurer)
    assert (r.status_code, r.json()["code"], r.json()["batch_id"]) == (409, "CLAIM_IN_BATCH", batch_id), r.text
    # The bank's share is not batched: still settled one by one.
    r = await risk.post(f"/v1/claims/{l1}/bank/settle", json={"reference": "BANK-1"}, headers=bank)
    assert (r.status_code, r.json()["amount"]) == (200, "2000.00"), r.text

    # Not settled while a line is undecided.
    url = f"/v1/claim-batches/{batch_id}"
    r = await risk.post(f"{url}/settle", json={"reference": "PICC-2026-05"}, headers=insurer)
    assert (r.status_code, r.json()["code"]) == (409, "CLAIM_BATCH_UNDECIDED"), r.text
    assert sorted(r.json()["loan_ids"]) == sorted(loan_ids)

    # The insurer decides: a dispute needs its reason; the bank does not decide for it.
    r = await risk.post(f"{url}/lines/{l2}/decision", json={"decision": "dispute"}, headers=insurer)
    assert (r.status_code, r.json()["code"]) == (422, "DISPUTE_REASON_REQUIRED"), r.text
    r = await risk.post(f"{url}/lines/{l2}/decision", json={"decision": "dispute", "reason": "  "}, headers=insurer)
    assert (r.status_code, r.json()["code"]) == (422, "DISPUTE_REASON_REQUIRED"), r.text
    assert (await risk.post(f"{url}/lines/{l1}/decision", json={"decision": "accept"}, headers=bank)).status_code == 403
    r = await risk.post(f"{url}/lines/no-such-loan/decision", json={"decision": "accept"}, headers=insurer)
    assert (r.status_code, r.json()["code"]) == (404, "CLAIM_LINE_NOT_FOUND"), r.text
    reason = "核销前未见催收记录 (no collection record before the write-off)"
    for loan_id, decision in ((l1, {"decision": "accept"}), (l2, {"decision": "dispute", "reason": reason})):
        r = await risk.post(f"{url}/lines/{loan_id}/decision", json=decision, headers=insurer)
        assert (r.status_code, r.json()["decision"], r.json()["decided_by"]) == (200, decision["decision"], "insurer")
    r = await risk.post(f"{url}/lines/{l3}/decision", json={"decision": "accept"}, headers=insurer)
    assert r.status_code == 200, r.text
    # Final once made: the same decision again is a no-op, another refused.
    assert (
        await risk.post(f"{url}/lines/{l3}/decision", json={"decision": "accept"}, headers=insurer)
    ).status_code == 200
    r = await risk.post(f"{url}/lines/{l3}/decision", json={"decision": "dispute", "reason": "x"}, headers=insurer)
    assert (r.status_code, r.json()["code"]) == (409, "CLAIM_LINE_DECIDED"), r.text

    # Settled: the accepted lines at their amounts net of recoveries, 5,000.00 + 2,499.99 =
    # 7,499.99; the disputed one open again.
    r = await risk.post(f"{url}/settle", json={"reference": "PICC-2026-05"}, headers=insurer)
    assert r.status_code == 200, r.text
    settled = r.json()
    assert (settled["status"], settled["settled_total"], settled["accepted"], settled["disputed"]) == (
        "settled",
        "7499.99",
        2,
        1,
    )
    assert {line["loan_id"]: line["settled_amount"] for line in settled["lines"]} == {
        l1: "5000.00",
        l2: None,
        l3: "2499.99",
    }
    assert sum(Decimal(line["settled_amount"] or 0) for line in settled["lines"]) == Decimal(settled["settled_total"])
    claims = {loan_id: await _insurer_claim(s, loan_id) for loan_id in loan_ids}
    assert {k: (c["status"], c["amount"], c["reference"]) for k, c in claims.items()} == {
        l1: ("settled", "5000.00", "PICC-2026-05"),
        l2: ("open", "4000.01", None),
        l3: ("settled", "2499.99", "PICC-2026-05"),
    }
    r = await risk.post(f"{url}/lines/{l2}/decision", json={"decision": "accept"}, headers=insurer)
    assert (r.status_code, r.json()["code"]) == (409, "CLAIM_BATCH_SETTLED"), r.text
    r = await risk.post(f"{url}/settle", json={"reference": "PICC-2026-05"}, headers=insurer)
    assert (r.status_code, r.json()["code"]) == (409, "CLAIM_BATCH_SETTLED"), r.text

    # A recovery after the settlement is owed back to the insurer, as one by one: 0.02 on l1,
    # 2 fen by what each still bears (300,000 / 200,000 / 500,000 fen): exact 0.6 / 0.4 / 1.0,
    # floors 0 / 0 / 1, the fen left to .6 (government): the insurer's part is 0.01, owed back.
    r = await loans.post(f"/v1/loans/{l1}/recoveries", json={"amount": "0.02"}, headers=bank)
    assert r.status_code == 201, r.text
    await _caught_up(s)
    assert (await _insurer_claim(s, l1))["payable"] == "0.01"

    # The XLSX the insurer works from: heading lines, titles, three lines and 合计.
    r = await risk.get(url, params={"format": "xlsx"}, headers=insurer)
    assert r.status_code == 200, r.text
    sheet = load_workbook(io.BytesIO(r.content)).active
    rows = [list(row) for row in sheet.iter_rows(values_only=True)]
    assert ["月份 month", "2026-05"] in [row[:2] for row in rows]
    titles = next(row for row in rows if row[0] == "序号")
    assert titles == [
        "序号",
        "贷款编号",
        "村",
        "乡镇",
        "核销日期",
        "损失金额",
        "保险分担 (50%)",
        "已追回",
        "应付金额",
        "处理结果",
        "理由",
        "结算金额",
    ]
    column = {title: i for i, title in enumerate(titles)}
    body = rows[rows.index(titles) + 1 :]
    assert [row[column["贷款编号"]] for row in body] == [*sorted(loan_ids), "合计"]
    lines_by_loan = {row[column["贷款编号"]]: row for row in body[:-1]}
    assert lines_by_loan[l2][column["处理结果"]] == "争议" and lines_by_loan[l2][column["理由"]] == reason
    assert lines_by_loan[l3][column["村"]] == "东村"
    totals = body[-1]
    for title, expected in (
        ("损失金额", "24000.02"),
        ("保险分担 (50%)", "12000.01"),
        ("已追回", "500.01"),
        ("应付金额", "11500.00"),
        ("结算金额", "7499.99"),
    ):
        assert Decimal(str(totals[column[title]])) == Decimal(expected), title
        if title != "结算金额":
            assert sum(Decimal(str(row[column[title]])) for row in body[:-1]) == Decimal(expected), title
    r = await risk.get(url, params={"format": "csv"}, headers=government)
    assert r.status_code == 200 and r.content.startswith("\ufeff".encode()), r.text
    assert r.text.splitlines()[-1] == "totals,,合计,,,,24000.02,12000.01,500.01,11500.00,,,7499.99", r.text

    # June's batch takes the disputed claim back; settled one by one it is refused there too.
    await run_cob(s, date(2026, 7, 1))
    await _caught_up(s)
    r = await risk.post("/v1/claim-batches", json={"party": "insurer", "month": "2026-06"}, headers=government)
    assert r.status_code == 201, r.text
    june = r.json()
    assert [(line["loan_id"], line["payable"], line["decision"]) for line in june["lines"]] == [(l2, "4000.01", None)]
    r = await risk.post(f"/v1/claims/{l2}/insurer/settle", json={"reference": "PICC-ONE"}, headers=insurer)
    assert (r.status_code, r.json()["code"]) == (409, "CLAIM_IN_BATCH"), r.text
    listed = (await risk.get("/v1/claim-batches", headers=insurer)).json()
    assert [(b["month"], b["status"], b["settled_total"]) for b in listed] == [
        ("2026-05", "settled", "7499.99"),
        ("2026-06", "filed", None),
    ]

    # Risk published the totals.
    async def published() -> dict[str, dict[str, Any]]:
        events = await read_events(s.runtimes["risk"].bus, infra.topic_prefix + "risk.events")
        return {
            e.type: e.payload
            for e in events
            if e.type.startswith("risk.claim_batch.") and e.payload["month"] == "2026-05"
        }

    async def both() -> bool:
        return {"risk.claim_batch.filed", "risk.claim_batch.settled"} <= set(await published())

    await wait_until(both, what="the batch's events on risk's topic")
    events = await published()
    assert (events["risk.claim_batch.filed"]["lines"], events["risk.claim_batch.filed"]["payable"]) == (3, "11500.00")
    assert (events["risk.claim_batch.settled"]["settled"], events["risk.claim_batch.settled"]["disputed"]) == (
        "7499.99",
        1,
    )

    # A rebuild replays the projections and keeps the batches, records of decisions like the
    # claim settlements: the same answers after it.
    runtime = s.runtimes["risk"]
    before = [(await risk.get(f"/v1/claim-batches/{b['batch_id']}", headers=insurer)).json() for b in listed]

    async def relayed() -> bool:
        return not await runtime.relay.backlog()

    await wait_until(relayed, what="risk's outbox to be published")
    bus = infra.bus("test-rebuild")
    await bus.start()
    try:
        await rebuild(runtime.sessions, bus, topic_prefix=infra.topic_prefix)
    finally:
        await bus.stop()
    after = [(await risk.get(f"/v1/claim-batches/{b['batch_id']}", headers=insurer)).json() for b in listed]
    assert after == before
    assert (await _insurer_claim(s, l2))["status"] == "open"
