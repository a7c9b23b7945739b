"""Risk (issue 6) with loans, on both backends: a loan turning non-performing freezes its
village and halts its township, loans refuses new credit there, a write-off is split
30/20/50 against the fund and lifts the freeze, and a rebuild from the topics reproduces the
projections exactly. Registry and scoring appear as the events they publish."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from services.loans.models import FundView, TownshipView, VillageView
from services.risk.models import SubjectGrade
from services.risk.rebuild import dump, rebuild
from shared.messaging import inbox, outbox
from tests.conftest import Infra
from tests.support.risk import START, TOWNSHIP, V1, V2, V3, publish_hierarchy, run_cob, village_line
from tests.support.system import System, read_events
from tests.support.waiting import wait_until


@pytest.fixture
async def system(infra: Infra) -> AsyncIterator[System]:
    async with System(infra, ["loans", "risk"], start_date=START) as s:
        yield s


async def _quiet(system: System) -> None:
    """Risk has applied everything loans emitted that it handles: a positive witness (every
    such event id of loans' outbox is in risk's inbox) instead of "nothing processed for
    0.5 s", which a busy machine satisfies with events still on their way."""
    handled = set(system.runtimes["risk"].consumer.handlers)

    async def caught_up() -> bool:
        async with system.runtimes["loans"].read_sessions() as session:
            emitted = set(await session.scalars(select(outbox.c.event_id).where(outbox.c.type.in_(handled))))
        async with system.runtimes["risk"].read_sessions() as session:
            applied = set(await session.scalars(select(inbox.c.event_id)))
        return emitted <= applied

    await wait_until(caught_up, what="risk to apply every event loans emitted")


async def _loans_view(system: System, village: str, *, frozen: bool, halted: bool) -> None:
    """Loans' own view of the circuit breaker (a read; polling with drawdowns lent 1,000.00
    per poll until the state arrived)."""

    async def seen() -> bool:
        async with system.runtimes["loans"].read_sessions() as session:
            v = await session.get(VillageView, village)
            t = await session.get(TownshipView, TOWNSHIP)
        return (v is not None and v.frozen, t is not None and t.halted) == (frozen, halted)

    await wait_until(seen, what=f"loans to see {village} frozen={frozen}, its township halted={halted}")


async def test_npl_freezes_halts_refuses_splits_the_loss_and_lifts(system: System, infra: Infra) -> None:
    risk, loans = system["risk"], system["loans"]
    await publish_hierarchy(system)
    borrower, line = await village_line(system, V1)
    good_household, good_line = await village_line(system, V1)
    _, neighbour_line = await village_line(system, V2)
    r = await loans.post(
        "/v1/loans",
        json={"credit_line_id": line, "amount": "12000.00", "term_months": 12, "repayment_method": "equal_principal"},
    )
    assert r.status_code == 201, r.text
    loan_id = r.json()["loan_id"]
    first_due = date.fromisoformat(r.json()["schedule"][0]["due_on"])

    async def outstanding_seen() -> bool:
        return bool((await risk.get(f"/v1/villages/{V1}")).json()["outstanding"] == "12000.00")

    await wait_until(outstanding_seen, what="the disbursement to reach risk")
    village = (await risk.get(f"/v1/villages/{V1}")).json()
    assert (village["npl_ratio"], village["frozen"], village["non_performing"]) == ("0.0000", False, "0.00")

    # 90 days past due is special mention: performing, nothing frozen.
    await run_cob(system, first_due + timedelta(days=90))
    await _quiet(system)
    assert (await risk.get(f"/v1/villages/{V1}")).json()["frozen"] is False

    # Day 91: substandard, non-performing; 12,000 / 12,000 = 100% > 3%.
    await run_cob(system, first_due + timedelta(days=91))

    async def frozen() -> bool:
        return bool((await risk.get(f"/v1/villages/{V1}")).json()["frozen"])

    await wait_until(frozen, what="the village to freeze")
    village = (await risk.get(f"/v1/villages/{V1}")).json()
    assert village["npl_ratio"] == "1.0000" and village["non_performing"] == "12000.00"
    assert village["frozen_since"] == str(first_due + timedelta(days=91))  # the loan's classification date

    risk_events = await read_events(system.runtimes["risk"].bus, infra.topic_prefix + "risk.events")
    loan_events = await read_events(system.runtimes["risk"].bus, infra.topic_prefix + "loans.events")
    classified = next(
        e for e in loan_events if e.type == "loans.loan.classified" and e.payload["classification"] == "substandard"
    )
    freeze = next(e for e in risk_events if e.type == "risk.village.frozen")
    assert freeze.payload["village_code"] == V1 and freeze.payload["manual"] is False
    assert freeze.payload["npl_ratio"] == "1.0000"
    latency = (freeze.occurred_at - classified.occurred_at).total_seconds()
    # The < 1 s target is bench/'s to measure (a busy CI machine is no benchmark).
    print(f"\n    classified → frozen after {latency:.3f}s ({infra.backend})")

    # One village of three (33%) is over: the township halts, with a bulletin naming it.
    halted = next(e for e in risk_events if e.type == "risk.township.halted")
    assert halted.payload["village_codes_over"] == [V1] and halted.payload["villages"] == 3
    bulletin = next(e for e in risk_events if e.type == "risk.bulletin.issued")
    assert bulletin.payload["township_name"] == "城关镇" and "东村" in bulletin.payload["text_zh"]
    assert (await risk.get(f"/v1/townships/{TOWNSHIP}")).json()["halted"] is True

    # Loans refuses the next drawdown in the frozen village, and in the halted township.
    await _loans_view(system, V1, frozen=True, halted=True)
    await _loans_view(system, V2, frozen=False, halted=True)
    for credit_line, code in ((good_line, "VILLAGE_FROZEN"), (neighbour_line, "TOWNSHIP_HALTED")):
        r = await loans.post("/v1/loans", json={"credit_line_id": credit_line, "amount": "1000.00", "term_months": 6})
        assert (r.status_code, r.json()["code"]) == (409, code), r.text
    decisions = (await risk.get("/v1/decisions", params={"code": V1})).json()
    assert decisions[0]["kind"] == "village_frozen"
    assert decisions[0]["figures"] == {"npl_ratio": "1.0000", "outstanding": "12000.00", "non_performing": "12000.00"}

    # Titles for 2026: V1 ended the year non-performing; the household that never fell
    # behind is a credit household, the borrower is not. Titles read the grades, which come
    # on scoring's topic: the waits above were on loans' events, so wait for the grades too.
    async def graded() -> bool:
        async with system.runtimes["risk"].read_sessions() as session:
            found = set(await session.scalars(select(SubjectGrade.subject_id)))
        return {borrower, good_household} <= found

    await wait_until(graded, what="the grades to reach risk")
    r = await risk.post("/v1/titles/evaluations", json={"year": 2026})
    assert r.status_code == 200, r.text
    households = (await risk.get("/v1/titles", params={"year": 2026, "kind": "credit_household"})).json()
    assert borrower not in {t["code"] for t in households} and good_household in {t["code"] for t in households}
    villages = (await risk.get("/v1/titles", params={"year": 2026, "kind": "credit_village"})).json()
    assert V1 not in {t["code"] for t in villages}

    # Write-off: the loss is split 30/20/50, the fund pays the government's share, the
    # freeze and the halt lift, and loans learns the fund's new capacity.
    await run_cob(system, first_due + timedelta(days=361))
    state = (await loans.get(f"/v1/loans/{loan_id}")).json()
    r = await loans.post(f"/v1/loans/{loan_id}/write-off")
    assert r.status_code == 201, r.text
    loss = Decimal(r.json()["loss"])
    assert loss == Decimal(state["principal_outstanding"]) + Decimal(state["interest_outstanding"])

    async def split() -> bool:
        return bool((await risk.get("/v1/losses", params={"loan_id": loan_id})).json())

    await wait_until(split, what="the loss to reach risk")
    (row,) = (await risk.get("/v1/losses", params={"loan_id": loan_id})).json()
    parts = {k: Decimal(row[k]) for k in ("government", "bank", "insurer")}
    assert sum(parts.values()) == loss and Decimal(row["loss"]) == loss
    for party, share in (("government", "0.30"), ("bank", "0.20"), ("insurer", "0.50")):
        assert abs(parts[party] - loss * Decimal(share)) <= Decimal("0.01"), party
    fund = (await risk.get("/v1/fund")).json()
    balance = Decimal("10000000.00") - parts["government"]
    assert (Decimal(fund["balance"]), Decimal(fund["capacity"])) == (balance, balance * 10)
    assert fund["outstanding"] == "0.00"
    claims = (await risk.get("/v1/claims", params={"loan_id": loan_id})).json()
    assert {(c["party"], c["status"]) for c in claims} == {("bank", "open"), ("insurer", "open")}
    r = await risk.post(f"/v1/claims/{loan_id}/insurer/settle", json={"reference": "PICC-2027-001"})
    assert (r.status_code, r.json()["status"]) == (200, "settled")
    r = await risk.post(f"/v1/claims/{loan_id}/insurer/settle", json={"reference": "PICC-2027-001b"})
    assert (r.status_code, r.json()["code"]) == (409, "CLAIM_SETTLED")

    async def lifted() -> bool:
        v = (await risk.get(f"/v1/villages/{V1}")).json()
        t = (await risk.get(f"/v1/townships/{TOWNSHIP}")).json()
        return v["frozen"] is False and t["halted"] is False

    await wait_until(lifted, what="the freeze and the halt to lift")

    async def capacity_reached_loans() -> bool:
        async with system.runtimes["loans"].read_sessions() as session:
            view = await session.get(FundView, 1)
        return view is not None and view.capacity == balance * 10

    await wait_until(capacity_reached_loans, what="the fund's capacity to reach loans")
    await _loans_view(system, V1, frozen=False, halted=False)
    assert await _drawdown_ok(system, good_line), "V1 lends again"

    # A rebuild from the topics gives the same projections, byte for byte, and publishes nothing.
    await _quiet(system)
    runtime = system.runtimes["risk"]
    async with runtime.read_sessions() as session:
        live = await dump(session)
    assert '"written_off"' in live and V1 in live

    async def relayed() -> bool:
        return not await runtime.relay.backlog()

    await wait_until(relayed, what="risk's outbox to be published")
    published = len(await read_events(runtime.bus, infra.topic_prefix + "risk.events"))
    emitted = await _outbox_size(system, "risk")
    assert emitted == published, "every event risk emitted is on its topic"
    bus = infra.bus("test-rebuild")
    await bus.start()
    try:
        applied = await rebuild(runtime.sessions, bus, topic_prefix=infra.topic_prefix)
    finally:
        await bus.stop()
    assert applied > 10
    async with runtime.read_sessions() as session:
        rebuilt = await dump(session)
    assert rebuilt == live
    # Nothing published: every event goes through the outbox, and the rebuild added none
    # (read at once; no pause to see whether something turns up).
    assert await _outbox_size(system, "risk") == emitted


async def _outbox_size(system: System, service: str) -> int:
    async with system.runtimes[service].read_sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(outbox)) or 0)


async def _drawdown_ok(system: System, credit_line: str) -> bool:
    body = {"credit_line_id": credit_line, "amount": "1000.00", "term_months": 6}
    r = await system["loans"].post("/v1/loans", json=body)
    assert r.status_code in (201, 409), r.text
    return r.status_code == 201


async def test_manual_freeze_and_lift_are_recorded_and_reach_loans(system: System, infra: Infra) -> None:
    risk = system["risk"]
    await publish_hierarchy(system)
    _, line = await village_line(system, V3)
    r = await risk.post(f"/v1/villages/{V3}/freeze", json={"reason": "村干部违规发放,暂停核查"})
    assert r.status_code == 200, r.text
    assert (r.json()["frozen"], r.json()["manual_override"]) == (True, "frozen")
    r = await risk.post(f"/v1/villages/{V3}/freeze", json={"reason": "again, by mistake"})
    assert (r.status_code, r.json()["code"]) == (409, "ALREADY_FROZEN")
    for bad in ({}, {"reason": ""}, {"reason": "ok", "extra": 1}):
        assert (await risk.post(f"/v1/villages/{V3}/freeze", json=bad)).status_code == 422
    assert (await risk.post("/v1/villages/nowhere/freeze", json={"reason": "no such village"})).status_code == 404
    await _loans_view(system, V3, frozen=True, halted=False)
    assert await _refused_frozen(system, line), "the manual freeze reached loans"

    r = await risk.post(f"/v1/villages/{V3}/unfreeze", json={"reason": "核查完毕,恢复放贷"})
    assert (r.status_code, r.json()["frozen"], r.json()["manual_override"]) == (200, False, None)
    r = await risk.post(f"/v1/villages/{V3}/unfreeze", json={"reason": "once more"})
    assert (r.status_code, r.json()["code"]) == (409, "NOT_FROZEN")
    await _loans_view(system, V3, frozen=False, halted=False)
    assert await _drawdown_ok(system, line), "the lift reached loans"
    decisions = (await risk.get("/v1/decisions", params={"code": V3})).json()
    assert [(d["kind"], d["manual"], d["decided_by"]) for d in decisions] == [
        ("village_unfrozen", True, "bootstrap"),
        ("village_frozen", True, "bootstrap"),
    ]
    assert decisions[1]["reason"] == "村干部违规发放,暂停核查"


async def _refused_frozen(system: System, credit_line: str) -> bool:
    body = {"credit_line_id": credit_line, "amount": "1000.00", "term_months": 6}
    r = await system["loans"].post("/v1/loans", json=body)
    return r.status_code == 409 and r.json()["code"] == "VILLAGE_FROZEN"


async def test_top_ups_raise_capacity_and_bad_ones_change_nothing(system: System, infra: Infra) -> None:
    risk = system["risk"]
    before = (await risk.get("/v1/fund")).json()
    assert (before["balance"], before["capacity"]) == ("10000000.00", "100000000.00")
    for bad in (
        {"amount": "-5.00", "reason": "negative"},
        {"amount": 0.1, "reason": "a float"},
        {"amount": "0.00", "reason": "nothing at all"},
        {"amount": "1.001", "reason": "a tenth of a fen"},
        {"amount": "5.00"},
    ):
        r = await risk.post("/v1/fund/top-ups", json=bad)
        assert r.status_code == 422, (bad, r.text)
    assert (await risk.get("/v1/fund")).json() == before
    headers = {"Idempotency-Key": "topup-2026-1"}
    body = {"amount": "2500000.00", "reason": "区财政追加风险补偿金"}
    first = await risk.post("/v1/fund/top-ups", json=body, headers=headers)
    again = await risk.post("/v1/fund/top-ups", json=body, headers=headers)
    assert first.status_code == again.status_code == 201 and first.json() == again.json()
    assert (first.json()["balance"], first.json()["capacity"]) == ("12500000.00", "125000000.00")
    entries = (await risk.get("/v1/fund/entries")).json()
    assert [(e["kind"], e["amount"]) for e in entries] == [("opening", "10000000.00"), ("top_up", "2500000.00")]

    async def reached_loans() -> bool:
        async with system.runtimes["loans"].read_sessions() as session:
            view = await session.get(FundView, 1)
        return view is not None and view.capacity == Decimal("125000000.00")

    await wait_until(reached_loans, what="the new capacity to reach loans")
