"""Whole-village credit (整村授信, issue 24 item 6) on both backends: registry, scoring and loans
running, the households rated and certified by scoring's own events, a black listing as risk
publishes it. One call opens the lines of the village's certified households and says why
each other one is skipped; a repeat opens nothing new; two calls at once open each line once."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from services.loans.context import settings
from services.loans.models import CreditLine, ListEntry, RatingStatusView, RatingView, VillageView
from shared.catalogue import LoanClassified, RatingCertified, SubjectListed, VillageFreeze
from shared.events import new_event
from shared.platform_tables import outbox
from tests.conftest import Infra
from tests.support.system import System, resident_id
from tests.support.waiting import wait_until

TOWNSHIP, VILLAGE = "410102007", "410102007003"
# Registered on 24 January; the 7-day notice (DOMAIN.md §3 step 4) is over on 31 January.
START, CERTIFIED_ON = date(2026, 1, 24), date(2026, 1, 31)

# Each profile's score by DOMAIN.md §2, written out:
PROFILES: dict[str, tuple[bool, dict[str, Any]]] = {
    # 80 + 3 (project) + 3 (poor household) = 86: A, 50,000.
    "a": (True, {"income_project": True}),
    # 80 + 3 (project) + 1 (party member) + 1 (healthy) + 2 (two certificates) + 1 (family
    # harmony) + 2 (commercial insurance) = 90: AA, 100,000.
    "aa": (
        False,
        {
            "income_project": True,
            "head_party_member": True,
            "head_healthy": True,
            "certificates": ["land_contract", "homestead"],
            "family_harmony": True,
            "commercial_insurance": True,
        },
    ),
    "black": (True, {"income_project": True}),  # 86, A, 50,000, then on the black list
    "open": (True, {"income_project": True}),  # 86, A, 50,000, its line opened singly before
    # 86, then a loan of it overdue (V3, as loans publishes it): score 0, no grade, vetoed.
    "vetoed": (True, {"income_project": True}),
    "none": (False, {"income_project": False}),  # 80 - 8 (no project) = 72: no grade (<= 79), no veto
}


@pytest.fixture
async def system(infra: Infra) -> AsyncIterator[System]:
    async with System(infra, ["registry", "scoring", "loans"], start_date=START) as s:
        registry = s["registry"]
        assert (await registry.post("/v1/townships", json={"code": TOWNSHIP, "name": "东湖乡"})).status_code == 201
        r = await registry.post("/v1/villages", json={"code": VILLAGE, "name": "杏花村", "township_code": TOWNSHIP})
        assert r.status_code == 201, r.text
        yield s


async def _register(system: System, n: int, poor: bool, profile: dict[str, Any]) -> str:
    body = {
        "id_number": resident_id(n),
        "name": f"农户{n}",
        "village_code": VILLAGE,
        "poor_household": poor,
        "profile": profile,
    }
    r = await system["registry"].post("/v1/households", json=body)
    assert r.status_code == 201, r.text
    return str(r.json()["household_id"])


async def _scoring_says(system: System, household: str, **expected: Any) -> dict[str, Any]:
    found: dict[str, Any] = {}

    async def matches() -> bool:
        r = await system["scoring"].get(f"/v1/households/{household}/rating")
        found.update(r.json() if r.status_code == 200 else {})
        return r.status_code == 200 and all(found.get(k) == v for k, v in expected.items())

    await wait_until(matches, seconds=30, what=f"scoring: {household} {expected}")
    return found


async def _loans_knows(system: System, statuses: dict[str, str], black: set[str]) -> None:
    """Loans' projections caught up with scoring's workflow and risk's black list."""

    async def caught_up() -> bool:
        async with system.runtimes["loans"].read_sessions() as session:
            rows = await session.scalars(select(RatingStatusView).where(RatingStatusView.village_code == VILLAGE))
            known = {r.subject_id: r.status for r in rows}
            listed = set(await session.scalars(select(ListEntry.subject_id).where(ListEntry.active)))
        return known == statuses and black <= listed

    await wait_until(caught_up, seconds=30, what="scoring's and risk's events to reach loans")


async def _open_village(client: httpx.AsyncClient, village: str = VILLAGE, **headers: str) -> httpx.Response:
    return await client.post(f"/v1/villages/{village}/credit-lines", headers=headers)


async def test_a_village_opens_its_certified_households_and_says_why_not_the_others(system: System) -> None:
    loans = system["loans"]
    ids = {name: await _register(system, n, *PROFILES[name]) for n, name in enumerate(PROFILES, start=1)}
    for name in ("a", "black", "open"):
        await _scoring_says(system, ids[name], status="pending_notice", grade="A", credit_limit="50000.00")
    await _scoring_says(system, ids["aa"], status="pending_notice", score=90, grade="AA", credit_limit="100000.00")
    await _scoring_says(system, ids["vetoed"], status="pending_notice")
    overdue = LoanClassified(
        loan_id=str(uuid.uuid4()),
        subject_kind="household",
        subject_id=ids["vetoed"],
        village_code=VILLAGE,
        township_code=TOWNSHIP,
        business_date=START,
        days_past_due=1,
        classification="special_mention",
        previous_classification="normal",
        non_performing=False,
        principal_outstanding="10000.00",
    )
    await system.publish(new_event("loans.loan.classified", VILLAGE, overdue))
    await _scoring_says(system, ids["vetoed"], status="rejected", vetoed=True, grade="NONE")
    await _scoring_says(system, ids["none"], status="rejected", vetoed=False, score=72, grade="NONE")

    assert (await loans.post("/v1/cob", json={"date": str(CERTIFIED_ON)})).status_code == 200
    for name in ("a", "aa", "black", "open"):
        await _scoring_says(system, ids[name], status="certified")
    # Registered after the others' notice ended: its seven days run 31 January to 6 February.
    ids["pending"] = await _register(system, 7, True, {"income_project": True})
    await _scoring_says(system, ids["pending"], status="pending_notice")
    entry = str(uuid.uuid4())
    await system.publish(
        new_event(
            "risk.subject.listed",
            VILLAGE,
            SubjectListed(
                entry_id=entry,
                list="black",
                subject_kind="household",
                subject_id=ids["black"],
                village_code=VILLAGE,
                township_code=TOWNSHIP,
                cause="court_dishonest_debtor",
                tier="serious",
                legal_basis="Opinions on joint punishment of dishonest subjects (seed 001)",
                decided_by_role="government",
                listed_on=CERTIFIED_ON,
            ),
        )
    )
    statuses = {ids[n]: "certified" for n in ("a", "aa", "black", "open")}
    statuses |= {ids["vetoed"]: "rejected", ids["none"]: "rejected", ids["pending"]: "pending_notice"}
    await _loans_knows(system, statuses, {ids["black"]})
    single = await loans.post("/v1/credit-lines", json={"household_id": ids["open"]})
    assert single.status_code == 201, single.text

    first = await _open_village(loans, **{"Idempotency-Key": "village-day-1"})
    assert first.status_code == 200, first.text
    answer = first.json()
    assert (answer["village_code"], answer["business_date"]) == (VILLAGE, str(CERTIFIED_ON))
    opened = {o["household_id"]: o["limit"] for o in answer["opened"]}
    assert opened == {ids["a"]: "50000.00", ids["aa"]: "100000.00"}
    skipped = {s["household_id"]: s["reason_code"] for s in answer["skipped"]}
    assert skipped == {
        ids["black"]: "BLACKLISTED",
        ids["vetoed"]: "VETOED",
        ids["none"]: "NO_CREDIT_GRADE",
        ids["open"]: "CREDIT_LINE_EXISTS",
        ids["pending"]: "NOTICE_NOT_ENDED",
    }
    details = {s["household_id"]: s["detail"] for s in answer["skipped"]}
    assert entry in details[ids["black"]] and "2026-02-06" in details[ids["pending"]]

    # The lines are what the single opening gives: the certified limit, nothing drawn, and the
    # same loans.credit_line.opened event, one per line.
    for household, limit in opened.items():
        line_id = next(o["credit_line_id"] for o in answer["opened"] if o["household_id"] == household)
        line = (await loans.get(f"/v1/credit-lines/{line_id}")).json()
        assert (line["household_id"], line["limit"], line["available"], line["outstanding"], line["status"]) == (
            household,
            limit,
            limit,
            "0.00",
            "active",
        )
        assert (await _scoring_says(system, household))["credit_limit"] == limit
    assert single.json()["limit"] == "50000.00" and single.json()["available"] == "50000.00"
    async with system.runtimes["loans"].read_sessions() as session:
        events = list(
            await session.scalars(select(outbox.c.envelope).where(outbox.c.type == "loans.credit_line.opened"))
        )
    assert len(events) == 3, "the single one and the village's two"

    # The single opening refuses the skipped ones by the same rule: its codes (API.md), the case.
    for name, code, reason in (
        ("black", "BLACKLISTED", "BLACKLISTED"),
        ("vetoed", "RATING_NOT_CERTIFIED", "VETOED"),
        ("none", "RATING_NOT_CERTIFIED", "NO_CREDIT_GRADE"),
        ("pending", "RATING_NOT_CERTIFIED", "NOTICE_NOT_ENDED"),
        ("a", "CREDIT_LINE_EXISTS", "CREDIT_LINE_EXISTS"),
    ):
        r = await loans.post("/v1/credit-lines", json={"household_id": ids[name]})
        assert (r.status_code, r.json()["code"], r.json()["reason_code"]) == (409, code, reason), name

    replay = await _open_village(loans, **{"Idempotency-Key": "village-day-1"})
    assert (replay.status_code, replay.json()) == (200, answer)
    again = await _open_village(loans)
    assert again.status_code == 200 and again.json()["opened"] == []
    assert {s["household_id"]: s["reason_code"] for s in again.json()["skipped"]} == skipped | {
        ids["a"]: "CREDIT_LINE_EXISTS",
        ids["aa"]: "CREDIT_LINE_EXISTS",
    }
    async with system.runtimes["loans"].read_sessions() as session:
        assert await session.scalar(select(func.count()).select_from(CreditLine)) == 3

    missing = await _open_village(loans, "410102007999")
    assert (missing.status_code, missing.json()["code"]) == (404, "VILLAGE_NOT_FOUND")


async def test_a_frozen_village_is_refused_whole_and_nothing_is_written(infra: Infra) -> None:
    async with System(infra, ["loans"], start_date=START) as system:
        households = sorted(str(uuid.uuid4()) for _ in range(3))
        await system.publish(*(_certified(h, "50000.00") for h in households))
        await _loans_has(system, len(households))
        freeze = VillageFreeze(
            village_code=VILLAGE,
            township_code=TOWNSHIP,
            npl_ratio="0.0400",
            outstanding="100000.00",
            non_performing="4000.00",
            manual=False,
            reason="npl over 3%",
        )
        await system.publish(new_event("risk.village.frozen", VILLAGE, freeze))
        await _village_frozen_in_loans(system, True)
        loans = system["loans"]
        r = await _open_village(loans, **{"Idempotency-Key": "frozen-day"})
        assert (r.status_code, r.json()["code"]) == (409, "VILLAGE_FROZEN")
        async with system.runtimes["loans"].read_sessions() as session:
            assert await session.scalar(select(func.count()).select_from(CreditLine)) == 0

        # Lifted, the same key opens them: a refused call left no answer behind it.
        await system.publish(new_event("risk.village.unfrozen", VILLAGE, freeze))
        await _village_frozen_in_loans(system, False)
        r = await _open_village(loans, **{"Idempotency-Key": "frozen-day"})
        assert r.status_code == 200, r.text
        assert sorted(o["household_id"] for o in r.json()["opened"]) == households


async def _village_frozen_in_loans(system: System, frozen: bool) -> None:
    async def arrived() -> bool:
        async with system.runtimes["loans"].read_sessions() as session:
            village = await session.get(VillageView, VILLAGE)
        return village is not None and village.frozen is frozen

    await wait_until(arrived, what=f"risk's {'freeze' if frozen else 'lifting'} to reach loans")


def _certified(household: str, limit: str) -> Any:
    return new_event(
        "scoring.rating.certified",
        VILLAGE,
        RatingCertified(
            subject_kind="household",
            subject_id=household,
            village_code=VILLAGE,
            township_code=TOWNSHIP,
            rating_id=1,
            grade="A" if limit == "50000.00" else "AA",
            credit_limit=limit,
            certificate_no=f"HB-2026-{household[:6]}",
        ),
    )


async def _loans_has(system: System, n: int) -> None:
    async def all_there() -> bool:
        async with system.runtimes["loans"].read_sessions() as session:
            count = await session.scalar(
                select(func.count()).select_from(RatingView).where(RatingView.village_code == VILLAGE)
            )
        return count == n

    await wait_until(all_there, seconds=60, what=f"{n} certified ratings to reach loans")


async def test_two_calls_at_once_open_each_line_once_in_rounds(infra: Infra, monkeypatch: pytest.MonkeyPatch) -> None:
    # 300 households read and written 64 at a time: five rounds (64 x 4 + 44), one transaction.
    monkeypatch.setattr(settings(), "village_credit_chunk", 64)
    async with System(infra, ["loans"], start_date=START) as system:
        limits = {str(uuid.uuid4()): ("50000.00" if i % 2 else "100000.00") for i in range(300)}
        await system.publish(*(_certified(h, limit) for h, limit in limits.items()))
        await _loans_has(system, len(limits))
        loans = system["loans"]
        # The business date's row written before, so that the two calls meet on the village's
        # rows, not on the first write of the business date.
        assert (await loans.post("/v1/cob", json={"date": str(CERTIFIED_ON)})).status_code == 200
        one, other = await asyncio.gather(_open_village(loans), _open_village(loans))
        assert one.status_code == other.status_code == 200, (one.text, other.text)
        opened = [o for r in (one, other) for o in r.json()["opened"]]
        assert sorted(o["household_id"] for o in opened) == sorted(limits), "each household opened once"
        assert {o["household_id"]: o["limit"] for o in opened} == limits
        # The call that waited found every line open.
        assert sorted(len(r.json()["opened"]) for r in (one, other)) == [0, 300]
        async with system.runtimes["loans"].read_sessions() as session:
            assert await session.scalar(select(func.count()).select_from(CreditLine)) == 300
