"""Negative facts expire from scoring 5 years after they end (征信业管理条例 §16), on both
backends: the police state a vice record and the day it ended at the registry, scoring vetoes
the household until close of business moves the business date past the fifth anniversary,
then rates it; a loan's overdue spell likewise. Close of business and loan events are
published as the loans service publishes them."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import date, timedelta
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from shared.auth import add_credential
from shared.catalogue import BusinessDateAdvanced, LoanClassified, LoanRepaid
from shared.events import new_event
from tests.conftest import Infra
from tests.support.system import System, read_events, resident_id
from tests.support.waiting import wait_until

TOWNSHIP, VILLAGE = "410102005", "410102005001"
START = date(2026, 3, 2)
ENDED = date(2021, 3, 4)  # the fifth anniversary, 2026-03-04, is the last day it counts
AA_PROFILE = {
    "head_party_member": True,
    "head_healthy": True,
    "income_project": True,
    "certificates": ["land_contract", "homestead"],
    "family_harmony": True,
    "commercial_insurance": True,
}


@pytest.fixture
async def system(infra: Infra) -> AsyncIterator[tuple[System, dict[str, dict[str, str]]]]:
    keys = {}
    credentials = infra.tmp / f"credentials-{uuid.uuid4().hex}.json"
    for name, roles, village in (
        ("police", ("police",), None),
        ("court", ("court",), None),
        ("collector", ("collector",), VILLAGE),
    ):
        token, _ = add_credential(credentials, name, "api_key", roles, village)  # type: ignore[arg-type]
        keys[name] = {"Authorization": f"Bearer {token}", "X-Evidence-Ref": quote("(2021)湖公结字第7号")}
    async with System(infra, ["registry", "scoring"], credentials_file=credentials, start_date=START) as s:
        registry = s["registry"]
        assert (await registry.post("/v1/townships", json={"code": TOWNSHIP, "name": "北岗乡"})).status_code == 201
        r = await registry.post("/v1/villages", json={"code": VILLAGE, "name": "柳树村", "township_code": TOWNSHIP})
        assert r.status_code == 201
        yield s, keys


async def _register(system: System, n: int) -> str:
    body = {"id_number": resident_id(n), "name": f"农户{n}", "village_code": VILLAGE, "profile": AA_PROFILE}
    r = await system["registry"].post("/v1/households", json=body)
    assert r.status_code == 201, r.text
    return str(r.json()["household_id"])


async def _rating(client: httpx.AsyncClient, household_id: str, **expected: Any) -> dict[str, Any]:
    found: dict[str, Any] = {}

    async def matches() -> bool:
        r = await client.get(f"/v1/households/{household_id}/rating")
        if r.status_code != 200:
            return False
        found.clear()
        found.update(r.json())
        return all(found.get(k) == v for k, v in expected.items())

    await wait_until(matches, seconds=20, what=f"rating {expected}")
    return found


async def _close_of_business(system: System, day: date) -> None:
    await system.publish(
        new_event(
            "loans.business_date.advanced",
            "district",
            BusinessDateAdvanced(closed_date=day - timedelta(days=1), business_date=day),
        )
    )

    async def arrived() -> bool:
        r = await system["scoring"].get("/v1/business-date")
        return bool(r.json()["business_date"] == str(day))

    await wait_until(arrived, what=f"business date {day} at scoring")


async def test_a_vetoed_household_becomes_rateable_when_its_vice_record_expires(
    system: tuple[System, dict[str, dict[str, str]]], infra: Infra
) -> None:
    s, keys = system
    registry, scoring = s["registry"], s["scoring"]
    hid = await _register(s, 1)
    await _rating(scoring, hid, grade="AA", vetoed=False)  # 80 + 10 (not a poor household)
    r = await registry.patch(f"/v1/households/{hid}/profile", json={"vice_record": True}, headers=keys["police"])
    assert r.status_code == 200, r.text
    vetoed = await _rating(scoring, hid, vetoed=True)
    assert [x["rule"] for x in vetoed["reasons"]] == ["V1.vice"]

    r = await registry.put(
        f"/v1/households/{hid}/facts/vice_record/ended-on", json={"ended_on": str(ENDED)}, headers=keys["police"]
    )
    assert r.status_code == 200, r.text
    assert (r.json()["value"], r.json()["ended_on"], r.json()["source"]) == (True, str(ENDED), "police")
    assert (await registry.get(f"/v1/households/{hid}")).json()["fact_ends"] == {"vice_record": str(ENDED)}

    # Two days before, and on, the fifth anniversary: still counted.
    await _close_of_business(s, date(2026, 3, 4))
    rating = (await scoring.get(f"/v1/households/{hid}/rating")).json()
    assert (rating["vetoed"], rating["score"], rating["rating_id"]) == (True, 0, vetoed["rating_id"])

    # The day after: the record no longer counts and close of business re-rated the household.
    await _close_of_business(s, date(2026, 3, 5))
    rating = await _rating(scoring, hid, vetoed=False)
    assert "V1.vice" not in [x["rule"] for x in rating["reasons"]]
    assert (rating["score"], rating["grade"], rating["status"]) == (90, "AA", "pending_notice")
    assert rating["notice_starts"] == "2026-03-05"
    assert rating["history"][0]["business_date"] == "2026-03-05"
    assert [h["vetoed"] for h in rating["history"]] == [False, True, False]

    await s.runtimes["registry"].relay.relay_once()
    events = await read_events(s.runtimes["registry"].bus, infra.topic_prefix + "registry.events")
    changes = [e.payload for e in events if e.type == "registry.household.profile_changed"]
    assert [(c["changed"], c["fact_ends"]) for c in changes] == [
        ({"vice_record": True}, {}),
        ({}, {"vice_record": str(ENDED)}),
    ]


async def test_a_fact_that_ended_long_ago_never_counts_and_a_recent_one_still_does(
    system: tuple[System, dict[str, dict[str, str]]],
) -> None:
    s, keys = system
    registry, scoring = s["registry"], s["scoring"]
    old, recent = await _register(s, 2), await _register(s, 3)
    for hid, ended in ((old, date(2019, 6, 1)), (recent, date(2025, 6, 1))):
        path = f"/v1/households/{hid}"
        r = await registry.patch(f"{path}/profile", json={"currently_under_enforcement": True}, headers=keys["court"])
        assert r.status_code == 200, r.text
        await _rating(scoring, hid, vetoed=True)
        r = await registry.put(
            f"{path}/facts/currently_under_enforcement/ended-on", json={"ended_on": str(ended)}, headers=keys["court"]
        )
        assert r.status_code == 200, r.text
    rating = await _rating(scoring, old, vetoed=False)
    assert rating["score"] == 90 and rating["notice_starts"] == str(START), "expired already on the business date"
    assert (await _rating(scoring, recent, vetoed=True))["score"] == 0


async def test_stating_an_end_date_is_validated_and_changes_nothing_when_refused(
    system: tuple[System, dict[str, dict[str, str]]],
) -> None:
    s, keys = system
    registry = s["registry"]
    hid = await _register(s, 4)
    url = f"/v1/households/{hid}/facts"

    async def history() -> list[dict[str, Any]]:
        return list((await registry.get(url)).json())

    def put(field: str, ended: Any, who: str = "police") -> Any:
        return registry.put(f"{url}/{field}/ended-on", json={"ended_on": ended}, headers=keys[who])

    r = await put("vice_record", str(ENDED))
    assert (r.status_code, r.json()["code"]) == (409, "NO_NEGATIVE_FACT"), "nothing stated yet"
    r = await registry.patch(f"/v1/households/{hid}/profile", json={"vice_record": True}, headers=keys["police"])
    assert r.status_code == 200
    before = await history()

    refusals = [
        (await put("income_project", str(ENDED), "collector"), 422, "NOT_A_NEGATIVE_FACT"),
        (await put("favourite_colour", str(ENDED)), 422, "NOT_A_NEGATIVE_FACT"),
        (await put("vice_record", str(date.today() + timedelta(days=1))), 422, "END_DATE_IN_FUTURE"),
        (await put("vice_record", "2021-02-30"), 422, "VALIDATION_FAILED"),
        (await put("vice_record", str(ENDED), "collector"), 403, "FACT_SOURCE_NOT_ALLOWED"),
        (await put("vice_record", str(ENDED), "court"), 403, "FACT_SOURCE_NOT_ALLOWED"),
    ]
    for r, status, code in refusals:
        assert (r.status_code, r.json()["code"]) == (status, code), r.text
        assert r.headers["content-type"] == "application/problem+json"
    r = await registry.put(
        "/v1/households/nobody/facts/vice_record/ended-on", json={"ended_on": str(ENDED)}, headers=keys["police"]
    )
    assert (r.status_code, r.json()["code"]) == (404, "HOUSEHOLD_NOT_FOUND")
    assert await history() == before, "a refusal writes nothing"

    first = await put("vice_record", str(ENDED))
    assert first.status_code == 200
    again = await put("vice_record", str(ENDED))
    same = ("fact_id", "ended_on", "current")
    assert [again.json()[k] for k in same] == [first.json()[k] for k in same], "the same date: the same statement"
    corrected = await put("vice_record", "2021-05-01")
    assert corrected.status_code == 200 and corrected.json()["fact_id"] != first.json()["fact_id"]
    vice = [(f["ended_on"], f["current"]) for f in await history() if f["field"] == "vice_record"]
    assert vice == [(None, False), (str(ENDED), False), ("2021-05-01", True)], "facts are superseded, never edited"

    # A disputed fact is decided before anything else is stated about it (异议).
    r = await registry.post(f"/v1/facts/{corrected.json()['fact_id']}/objections", json={"reason": "已撤销"})
    assert r.status_code == 201, r.text
    objection = r.json()["objection_id"]
    r = await put("vice_record", "2021-06-01")
    assert (r.status_code, r.json()["code"]) == (409, "FACT_DISPUTED")
    r = await registry.post(
        f"/v1/objections/{objection}/decision", json={"outcome": "upheld", "note": "核实无误"}, headers=keys["police"]
    )
    assert r.status_code == 200, r.text
    assert (await put("vice_record", "2021-06-01")).status_code == 200, "decided: the end can be stated"

    # A new statement of the value ends nothing: retracting the record drops its end date.
    r = await registry.patch(f"/v1/households/{hid}/profile", json={"vice_record": False}, headers=keys["police"])
    assert r.json()["fact_ends"] == {}
    r = await put("vice_record", str(ENDED))
    assert (r.status_code, r.json()["code"]) == (409, "NO_NEGATIVE_FACT"), "only a fact stated true ends"


async def test_an_overdue_spell_stops_counting_five_years_after_the_loan_was_repaid(
    system: tuple[System, dict[str, dict[str, str]]],
) -> None:
    s, _ = system
    scoring = s["scoring"]
    hid = await _register(s, 5)
    await _rating(scoring, hid, score=90)
    subject = {"subject_kind": "household", "subject_id": hid, "village_code": VILLAGE, "township_code": TOWNSHIP}
    await s.publish(
        new_event(
            "loans.loan.classified",
            VILLAGE,
            LoanClassified(
                loan_id="loan-5",
                business_date=START + timedelta(days=1),
                days_past_due=1,
                classification="special_mention",
                previous_classification="normal",
                non_performing=False,
                principal_outstanding="20000.00",
                **subject,
            ),
        )
    )
    await _rating(scoring, hid, vetoed=True)
    repaid_on = date(2026, 3, 12)
    await s.publish(
        new_event(
            "loans.loan.repaid",
            VILLAGE,
            LoanRepaid(loan_id="loan-5", business_date=repaid_on, on_time=False, **subject),
        )
    )
    rating = await _rating(scoring, hid, vetoed=False)
    assert (rating["score"], {r["rule"]: r["points"] for r in rating["reasons"]}["D3.overdue"]) == (85, -5)

    await _close_of_business(s, date(2031, 3, 12))  # the fifth anniversary of the repayment
    assert (await scoring.get(f"/v1/households/{hid}/rating")).json()["score"] == 85
    await _close_of_business(s, date(2031, 3, 13))
    rating = await _rating(scoring, hid, score=90)
    assert "D3.overdue" not in [r["rule"] for r in rating["reasons"]]
