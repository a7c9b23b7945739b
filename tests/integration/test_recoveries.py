"""Recoveries after write-off (核销后清收, issue 24 item 4, 004 §4(1)6) with loans and risk
on both backends: the bank records money collected on a written-off loan; loans books it as
income of its own (the written-off principal stays written off) and announces it; risk returns
it to those who bore the loss pro rata, in fen by largest remainder, raising the fund and its
capacity, reducing the insurer's open claim or, once settled, owing it back; a rebuild replays
it exactly. Registry and scoring appear as the events they publish."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select

from services.loans.models import FundView
from services.risk.rebuild import dump, rebuild
from shared.auth import add_credential
from shared.messaging import inbox, outbox
from tests.conftest import Infra
from tests.support.loans import ledger_matches_loans
from tests.support.risk import START, TOWNSHIP, V1, publish_hierarchy, run_cob
from tests.support.system import System, certified_line, read_events
from tests.support.waiting import wait_until

Keys = dict[str, dict[str, str]]


@pytest.fixture
async def system(infra: Infra) -> AsyncIterator[tuple[System, Keys]]:
    keys: Keys = {}
    credentials = infra.tmp / f"credentials-{uuid.uuid4().hex}.json"
    for name, roles in (("bank", ("bank",)), ("government", ("government",))):
        token, _ = add_credential(credentials, name, "api_key", roles)  # type: ignore[arg-type]
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


async def _loss_row(system: System, loan_id: str) -> dict[str, Any]:
    (row,) = (await system["risk"].get("/v1/losses", params={"loan_id": loan_id})).json()
    return dict(row)


async def _claims(system: System, loan_id: str) -> dict[str, dict[str, Any]]:
    return {c["party"]: c for c in (await system["risk"].get("/v1/claims", params={"loan_id": loan_id})).json()}


async def _outbox_count(system: System, service: str, event_type: str | None = None) -> int:
    query = select(func.count()).select_from(outbox)
    if event_type is not None:
        query = query.where(outbox.c.type == event_type)
    async with system.runtimes[service].read_sessions() as session:
        return int(await session.scalar(query) or 0)


async def test_a_recovery_goes_back_pro_rata_to_those_who_bore_the_loss(
    system: tuple[System, Keys], infra: Infra
) -> None:
    s, keys = system
    loans, risk, bank = s["loans"], s["risk"], keys["bank"]
    await publish_hierarchy(s)
    # A registered poor household: the benchmark rate fully subsidised (004 §3(2)), so the
    # borrower owes no interest of its own and the loss written off is the principal alone.
    _, line = await certified_line(s, V1, TOWNSHIP, poor_household=True)
    r = await loans.post(
        "/v1/loans",
        json={"credit_line_id": line, "amount": "12345.67", "term_months": 12, "repayment_method": "equal_principal"},
    )
    assert r.status_code == 201, r.text
    loan_id = r.json()["loan_id"]
    first_due = date.fromisoformat(r.json()["schedule"][0]["due_on"])
    url = f"/v1/loans/{loan_id}/recoveries"

    # Refusals before the write-off: an active loan is repaid, not recovered; an unknown loan;
    # a role that does not collect. Each changes nothing.
    r = await loans.post(url, json={"amount": "100.00"}, headers=bank)
    assert (r.status_code, r.json()["code"]) == (409, "LOAN_NOT_WRITTEN_OFF"), r.text
    r = await loans.post("/v1/loans/no-such-loan/recoveries", json={"amount": "100.00"}, headers=bank)
    assert (r.status_code, r.json()["code"]) == (404, "LOAN_NOT_FOUND"), r.text
    assert (await loans.post(url, json={"amount": "100.00"}, headers=keys["government"])).status_code == 403

    # Day 91 past the first due date: substandard, non-performing; written off.
    await run_cob(s, first_due + timedelta(days=91))
    state = (await loans.get(f"/v1/loans/{loan_id}")).json()
    assert (state["principal_outstanding"], state["interest_outstanding"]) == ("12345.67", "0.00")
    r = await loans.post(f"/v1/loans/{loan_id}/write-off")
    assert (r.status_code, r.json()["loss"]) == (201, "12345.67"), r.text

    async def split() -> bool:
        return bool((await risk.get("/v1/losses", params={"loan_id": loan_id})).json())

    await wait_until(split, what="the loss to reach risk")
    # The loss, 1,234,567 fen, split 30/20/50: exact 370,370.1 / 246,913.4 / 617,283.5 fen,
    # floors 370,370 + 246,913 + 617,283 = 1,234,566, 1 fen left; remainders .1 / .4 / .5:
    # the insurer's is largest -> 3,703.70 / 2,469.13 / 6,172.84 (sum 12,345.67).
    row = await _loss_row(s, loan_id)
    assert (row["government"], row["bank"], row["insurer"], row["mutual_guarantee"]) == (
        "3703.70",
        "2469.13",
        "6172.84",
        "0.00",
    )
    assert (row["recovered"], row["net"]) == ("0.00", "12345.67")

    # Bad amounts: 422, nothing recorded.
    for bad in (
        {"amount": "0.00"},
        {"amount": "-1.00"},
        {"amount": "1.001"},
        {"amount": 0.1},
        {},
        {"amount": "1.00", "x": 1},
    ):
        r = await loans.post(url, json=bad, headers=bank)
        assert r.status_code == 422, (bad, r.text)
    # More than the loss: 12,345.68 > 12,345.67.
    r = await loans.post(url, json={"amount": "12345.68"}, headers=bank)
    assert (r.status_code, r.json()["code"]) == (409, "RECOVERY_EXCEEDS_LOSS"), r.text

    # The hand-computed example: 10,000.00 recovered, 1,000,000 fen, against the loss of
    # 1,234,567 fen. Each party's exact part is 1,000,000 x its share / 1,234,567:
    #   government 1,000,000 x 370,370 / 1,234,567 = 299,999.919 fen
    #   bank       1,000,000 x 246,913 / 1,234,567 = 199,999.676 fen
    #   insurer    1,000,000 x 617,284 / 1,234,567 = 500,000.405 fen
    # Floors 299,999 + 199,999 + 500,000 = 999,998, so 2 fen are left over; they go to the two
    # largest remainders, .919 (government) and .676 (bank), not .405 (insurer):
    #   government 300,000 fen = 3,000.00; bank 200,000 = 2,000.00; insurer 500,000 = 5,000.00.
    first = {"amount": "10000.00"}
    headers = {**bank, "Idempotency-Key": f"recovery-{loan_id}-1"}
    r = await loans.post(url, json=first, headers=headers)
    again = await loans.post(url, json=first, headers=headers)
    assert r.status_code == again.status_code == 201, r.text
    assert r.json() == again.json(), "the same key answers the same recovery"
    assert {k: r.json()[k] for k in ("amount", "loss", "recovered", "net")} == {
        "amount": "10000.00",
        "loss": "12345.67",
        "recovered": "10000.00",
        "net": "2345.67",
    }
    assert await _outbox_count(s, "loans", "loans.loan.recovered") == 1, "recorded once"
    state = (await loans.get(f"/v1/loans/{loan_id}")).json()
    assert (state["status"], state["principal_outstanding"]) == ("written_off", "0.00"), "not reopened"

    await _caught_up(s)
    row = await _loss_row(s, loan_id)
    assert {k: row[k] for k in row if k.startswith("recovered")} == {
        "recovered": "10000.00",
        "recovered_mutual_guarantee": "0.00",
        "recovered_government": "3000.00",
        "recovered_bank": "2000.00",
        "recovered_insurer": "5000.00",
    }
    assert (row["loss"], row["net"]) == ("12345.67", "2345.67"), "gross, net of recoveries"
    # The fund: 10,000,000.00 - 3,703.70 (the loss) + 3,000.00 (the recovery) = 9,999,296.30,
    # capacity 10 x that = 99,992,963.00 (004 §6(2)).
    fund = (await risk.get("/v1/fund")).json()
    assert (fund["balance"], fund["capacity"]) == ("9999296.30", "99992963.00")
    entries = (await risk.get("/v1/fund/entries")).json()
    assert [(e["kind"], e["amount"], e["loan_id"]) for e in entries] == [
        ("opening", "10000000.00", None),
        ("loss", "-3703.70", loan_id),
        ("recovery", "3000.00", loan_id),
    ]
    # The insurer's open claim is reduced: 6,172.84 - 5,000.00 = 1,172.84; the bank's
    # 2,469.13 - 2,000.00 = 469.13.
    claims = await _claims(s, loan_id)
    assert {p: (c["status"], c["amount"], c["recovered"], c["payable"]) for p, c in claims.items()} == {
        "insurer": ("open", "1172.84", "5000.00", "0.00"),
        "bank": ("open", "469.13", "2000.00", "0.00"),
    }

    # Risk published its allocation.
    async def allocation() -> dict[str, Any] | None:
        events = await read_events(s.runtimes["risk"].bus, infra.topic_prefix + "risk.events")
        found = [e.payload for e in events if e.type == "risk.loss.recovered"]
        return found[0] if found else None

    await wait_until(allocation, what="risk.loss.recovered on risk's topic")
    published = await allocation()
    assert published is not None
    assert {k: published[k] for k in ("amount", "mutual_guarantee", "government", "bank", "insurer", "net")} == {
        "amount": "10000.00",
        "mutual_guarantee": "0.00",
        "government": "3000.00",
        "bank": "2000.00",
        "insurer": "5000.00",
        "net": "2345.67",
    }

    # The ledger: cash in against write-off recoveries; the written-off principal is not
    # reopened and the loss account keeps the gross loss. Balanced.
    balances = (await loans.get("/v1/ledger/trial-balance", headers=bank)).json()
    assert balances["debits_equal_credits"] is True
    accounts = balances["accounts"]
    assert (accounts["write_off_loss"], accounts["write_off_recoveries"], accounts["loans_principal"]) == (
        "12345.67",
        "10000.00",
        "0.00",
    )
    await ledger_matches_loans(s)

    # The insurer settles what it still owes, 1,172.84; then the rest of the loss is recovered,
    # 12,345.67 - 10,000.00 = 2,345.67, split by what each still bears, 703.70 / 469.13 /
    # 1,172.84 (sum 2,345.67): each has back exactly its part, and the insurer, already paid,
    # is owed its 1,172.84 back.
    r = await risk.post(f"/v1/claims/{loan_id}/insurer/settle", json={"reference": "PICC-2026-017"})
    assert (r.status_code, r.json()["amount"], r.json()["status"]) == (200, "1172.84", "settled"), r.text
    r = await loans.post(url, json={"amount": "2345.67"}, headers=bank)
    assert (r.status_code, r.json()["recovered"], r.json()["net"]) == (201, "12345.67", "0.00"), r.text
    r = await loans.post(url, json={"amount": "0.01"}, headers=bank)
    assert (r.status_code, r.json()["code"]) == (409, "RECOVERY_EXCEEDS_LOSS"), "nothing is left to recover"

    await _caught_up(s)
    row = await _loss_row(s, loan_id)
    assert (
        row["recovered_government"],
        row["recovered_bank"],
        row["recovered_insurer"],
        row["recovered"],
        row["net"],
    ) == ("3703.70", "2469.13", "6172.84", "12345.67", "0.00")
    fund = (await risk.get("/v1/fund")).json()
    assert (fund["balance"], fund["capacity"]) == ("10000000.00", "100000000.00"), "the fund has its part back"
    claims = await _claims(s, loan_id)
    assert {p: (c["status"], c["amount"], c["recovered"], c["payable"]) for p, c in claims.items()} == {
        "insurer": ("settled", "1172.84", "6172.84", "1172.84"),
        "bank": ("open", "0.00", "2469.13", "0.00"),
    }
    balances = (await loans.get("/v1/ledger/trial-balance", headers=bank)).json()
    assert balances["debits_equal_credits"] is True
    assert balances["accounts"]["write_off_recoveries"] == "12345.67"
    await ledger_matches_loans(s)

    async def capacity_reached_loans() -> bool:
        async with s.runtimes["loans"].read_sessions() as session:
            view = await session.get(FundView, 1)
        return view is not None and view.capacity == Decimal("100000000.00")

    await wait_until(capacity_reached_loans, what="the recovered capacity to reach loans")

    # A rebuild from the topics replays the recoveries: the same projections, fund entries
    # included, and nothing published.
    runtime = s.runtimes["risk"]
    async with runtime.read_sessions() as session:
        live = await dump(session)
    assert '"recovery"' in live and '"loss_recoveries"' in live

    async def relayed() -> bool:
        return not await runtime.relay.backlog()

    await wait_until(relayed, what="risk's outbox to be published")
    emitted = await _outbox_count(s, "risk")
    bus = infra.bus("test-rebuild")
    await bus.start()
    try:
        await rebuild(runtime.sessions, bus, topic_prefix=infra.topic_prefix)
    finally:
        await bus.stop()
    async with runtime.read_sessions() as session:
        assert await dump(session) == live
    assert await _outbox_count(s, "risk") == emitted
