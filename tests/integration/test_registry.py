"""Registry (issue 3) through its HTTP API, on both backends."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from shared.auth import add_credential
from tests.conftest import Infra
from tests.support.system import System, read_events, resident_id
from tests.support.waiting import wait_until

TOWNSHIP, VILLAGE, OTHER_VILLAGE = "410102001", "410102001001", "410102001002"


@pytest.fixture
async def registry(infra: Infra) -> AsyncIterator[tuple[System, dict[str, dict[str, str]]]]:
    keys = {}
    credentials = infra.tmp / f"credentials-{uuid.uuid4().hex}.json"
    for name, roles, village in (
        ("collector", ("collector",), VILLAGE),
        ("court", ("court",), None),
        ("bank", ("bank",), None),
        ("public", ("public",), None),
    ):
        token, _ = add_credential(credentials, name, "api_key", roles, village)  # type: ignore[arg-type]
        keys[name] = {"Authorization": f"Bearer {token}"}
    async with System(infra, ["registry"], credentials_file=credentials) as system:
        client = system["registry"]
        assert (await client.post("/v1/townships", json={"code": TOWNSHIP, "name": "城关镇"})).status_code == 201
        for code, name in ((VILLAGE, "东村"), (OTHER_VILLAGE, "西村")):
            r = await client.post("/v1/villages", json={"code": code, "name": name, "township_code": TOWNSHIP})
            assert r.status_code == 201
        yield system, keys


def household(n: int, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id_number": resident_id(n),
        "name": f"户主{n}",
        "village_code": VILLAGE,
        "poor_household": n % 3 == 0,
        "profile": {
            "head_party_member": True,
            "income_project": True,
            "certificates": ["land_contract", "homestead"],
            "homestead_house_value": "210000.00",
        },
    }
    body.update(overrides)
    return body


async def _count(client: httpx.AsyncClient) -> int:
    return len((await client.get("/v1/households", params={"limit": 500})).json()["items"])


async def test_register_read_masked_and_page(registry: tuple[System, dict[str, dict[str, str]]]) -> None:
    system, keys = registry
    client = system["registry"]
    r = await client.post(
        "/v1/households",
        json=household(
            1,
            members=[
                {"name": "配偶", "relation": "配偶", "id_number": resident_id(2, birth="19820202")},
                {"name": "孙子", "relation": "孙子"},
            ],
        ),
    )
    assert r.status_code == 201, r.text
    created = r.json()
    number = resident_id(1)
    assert created["id_number"] == number[:3] + "*" * 11 + number[-4:]
    assert number not in r.text, "the full ID number never leaves the registry"
    assert created["profile"] == {
        "certificates": ["land_contract", "homestead"],
        "head_party_member": True,
        "homestead_house_value": "210000.00",
        "income_project": True,
    }
    assert created["township_code"] == TOWNSHIP
    assert [m["name"] for m in created["members"]] == ["配偶"]

    again = await client.post("/v1/households", json=household(1))
    assert (again.status_code, again.json()["code"]) == (409, "ID_NUMBER_REGISTERED")
    member_as_head = await client.post("/v1/households", json=household(2, id_number=resident_id(2, birth="19820202")))
    assert member_as_head.status_code == 409, "one person, one household"

    for n in range(3, 8):
        assert (await client.post("/v1/households", json=household(n))).status_code == 201
    page1 = (await client.get("/v1/households", params={"limit": 4})).json()
    page2 = (await client.get("/v1/households", params={"limit": 4, "after": page1["next_after"]})).json()
    assert len(page1["items"]) == 4 and len(page2["items"]) == 2 and page2["next_after"] is None
    poor = (await client.get("/v1/households", params={"poor_household": True})).json()["items"]
    assert sorted(h["name"] for h in poor) == ["户主3", "户主6"]
    found = (await client.get("/v1/households", params={"id_number": resident_id(5)})).json()["items"]
    assert [h["name"] for h in found] == ["户主5"]
    assert (await client.get("/v1/households", headers=keys["public"])).status_code == 403


@pytest.mark.parametrize(
    ("change", "status", "field"),
    [
        ({"id_number": resident_id(1)[:-1] + ("0" if resident_id(1)[-1] != "0" else "1")}, 422, "id_number"),
        ({"village_code": "999999999999"}, 422, "village_code"),
        ({"profile": {"homestead_house_value": "-1.00"}}, 422, "profile.homestead_house_value"),
        ({"profile": {"homestead_house_value": 2000.5}}, 422, "profile.homestead_house_value"),
        ({"profile": {"certificates": ["forest", "driving_licence"]}}, 422, "profile.certificates.1"),
        ({"profile": {"currently_overdue": True}}, 422, "currently_overdue"),
        ({"profile": {"currently_under_enforcement": False}}, 403, "currently_under_enforcement"),
    ],
)
async def test_bad_input_names_the_field_and_writes_nothing(
    registry: tuple[System, dict[str, dict[str, str]]], change: dict[str, Any], status: int, field: str
) -> None:
    system, keys = registry
    client = system["registry"]
    # A collector is refused any village but its own before the village is even looked up.
    who = {} if "village_code" in change else keys["collector"]
    r = await client.post("/v1/households", json=household(1) | change, headers=who)
    assert r.status_code == status, r.text
    body = r.json()
    assert r.headers["content-type"] == "application/problem+json"
    named = body.get("field") or ",".join(e["field"] for e in body.get("errors", []))
    assert field in named
    assert await _count(client) == 0


async def test_court_facts_only_from_the_court_and_one_event_per_change(
    registry: tuple[System, dict[str, dict[str, str]]], infra: Infra
) -> None:
    system, keys = registry
    client = system["registry"]
    hid = (await client.post("/v1/households", json=household(1), headers=keys["collector"])).json()["household_id"]
    path = f"/v1/households/{hid}/profile"

    r = await client.patch(path, json={"currently_under_enforcement": True}, headers=keys["collector"])
    assert (r.status_code, r.json()["field"]) == (403, "currently_under_enforcement")
    r = await client.patch(
        path,
        json={"currently_under_enforcement": True},
        headers=keys["court"] | {"X-Evidence-Ref": quote("(2026)豫0102执123号")},
    )
    assert r.status_code == 200 and r.json()["profile"]["currently_under_enforcement"] is True
    r = await client.patch(path, json={"family_harmony": True, "income_project": True}, headers=keys["collector"])
    assert r.status_code == 200 and r.json()["version"] == 3
    # Restating what is known is not a change: no new version, no event.
    r = await client.patch(path, json={"family_harmony": True}, headers=keys["collector"])
    assert r.json()["version"] == 3
    r = await client.patch(path, json={"honour_level": "township"}, headers=keys["bank"])
    assert (r.status_code, r.json()["field"]) == (403, "honour_level")
    other = household(2, village_code=OTHER_VILLAGE)
    r = await client.post("/v1/households", json=other, headers=keys["collector"])
    assert (r.status_code, r.json()["code"]) == (403, "OUTSIDE_YOUR_VILLAGE")

    history = (await client.get(f"/v1/households/{hid}/facts")).json()
    court = [f for f in history if f["field"] == "currently_under_enforcement"]
    assert [(f["source"], f["supplied_by"], f["evidence_ref"]) for f in court] == [
        ("court", "court", "(2026)豫0102执123号")
    ]

    await system.runtimes["registry"].relay.relay_once()
    events = await read_events(system.runtimes["registry"].bus, infra.topic_prefix + "registry.events")
    changes = [e.payload for e in events if e.type == "registry.household.profile_changed"]
    assert [c["changed"] for c in changes] == [{"currently_under_enforcement": True}, {"family_harmony": True}]
    assert all(c["subject_id"] == hid and c["village_code"] == VILLAGE for c in changes)
    assert changes[1]["profile"]["currently_under_enforcement"] is True, "each event carries the whole profile"
    assert [e.key for e in events if e.type.startswith("registry.household")] == [VILLAGE] * 3


def _sheet(rows: list[dict[str, str]], encoding: str = "utf-8") -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=["身份证号", "姓名", "贫困户", "增收项目", "党员", "证书", "自建房价值"])
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode(encoding)


def _row(n: int) -> dict[str, str]:
    return {
        "身份证号": resident_id(n, birth=f"19{50 + n // 10 % 40:02d}0{1 + n % 9}1{n % 9}"),
        "姓名": f"农户{n}",
        "贫困户": "是" if n % 4 == 0 else "否",
        "增收项目": "是",
        "党员": "否",
        "证书": "承包证、宅基地证",
        "自建房价值": "20万",
    }


async def test_import_97_of_100_reports_the_3_and_is_idempotent(
    registry: tuple[System, dict[str, dict[str, str]]],
) -> None:
    system, keys = registry
    client = system["registry"]
    rows = [_row(n) for n in range(100)]
    rows[9]["身份证号"] = rows[9]["身份证号"][:-1] + ("1" if rows[9]["身份证号"][-1] == "0" else "0")  # row 11
    rows[40]["贫困户"] = "也许"  # row 42
    rows[70]["自建房价值"] = "-5"  # row 72
    sheet = _sheet(rows, "gbk")
    url = f"/v1/villages/{VILLAGE}/households/import"
    r = await client.post(url, content=sheet, params={"filename": "东村.csv"}, headers=keys["collector"])
    assert r.status_code == 200, r.text
    report = r.json()
    assert (report["rows"], report["registered"], report["failed"]) == (100, 97, 3)
    assert [(e["row"], e["field"]) for e in report["errors"]] == [
        (11, "id_number"),
        (42, "poor_household"),
        (72, "profile.homestead_house_value"),
    ]
    assert "check digit" in report["errors"][0]["reason"]
    assert await _count(client) == 97

    again = (await client.post(url, content=sheet, headers=keys["collector"])).json()
    assert (again["registered"], again["updated"], again["unchanged"], again["failed"]) == (0, 0, 97, 3)
    assert await _count(client) == 97

    rows[0]["自建房价值"] = "25万"
    third = (await client.post(url, content=_sheet(rows), headers=keys["collector"])).json()
    assert (third["registered"], third["updated"], third["unchanged"]) == (0, 1, 96)

    elsewhere = await client.post(
        f"/v1/villages/{OTHER_VILLAGE}/households/import", content=sheet, headers=keys["collector"]
    )
    assert elsewhere.status_code == 403
    unreadable = await client.post(url, content=b"\x00\x01garbage", headers=keys["collector"])
    assert (unreadable.status_code, unreadable.json()["code"]) == (422, "UNREADABLE_SHEET")


async def test_objection_marks_disputed_and_is_decided_within_20_days(
    registry: tuple[System, dict[str, dict[str, str]]],
) -> None:
    system, keys = registry
    client = system["registry"]
    hid = (await client.post("/v1/households", json=household(1))).json()["household_id"]
    await client.patch(
        f"/v1/households/{hid}/profile", json={"court_enforcement_within_3y": True}, headers=keys["court"]
    )
    fact = next(
        f
        for f in (await client.get(f"/v1/households/{hid}/facts")).json()
        if f["field"] == "court_enforcement_within_3y"
    )
    r = await client.post(
        f"/v1/facts/{fact['fact_id']}/objections", json={"reason": "案件已于2024年执行完毕"}, headers=keys["collector"]
    )
    assert r.status_code == 201, r.text
    objection = r.json()
    assert objection["status"] == "open" and not objection["overdue"]
    assert (await client.get(f"/v1/households/{hid}")).json()["disputed_fields"] == ["court_enforcement_within_3y"]
    dup = await client.post(f"/v1/facts/{fact['fact_id']}/objections", json={"reason": "again"})
    assert dup.status_code == 409

    from datetime import date, timedelta

    late = (date.fromisoformat(objection["due_on"]) + timedelta(days=1)).isoformat()
    overdue = (await client.get("/v1/objections", params={"overdue": True, "as_of": late})).json()
    assert [o["objection_id"] for o in overdue] == [objection["objection_id"]]
    assert (await client.get("/v1/objections", params={"overdue": True})).json() == []

    decision = {"outcome": "corrected", "corrected_value": False, "note": "法院核实：已结案"}
    r = await client.post(
        f"/v1/objections/{objection['objection_id']}/decision", json=decision, headers=keys["collector"]
    )
    assert (r.status_code, r.json()["field"]) == (403, "court_enforcement_within_3y"), "only the court corrects it"
    r = await client.post(f"/v1/objections/{objection['objection_id']}/decision", json=decision, headers=keys["court"])
    assert r.status_code == 200 and r.json()["status"] == "corrected"
    view = (await client.get(f"/v1/households/{hid}")).json()
    assert view["profile"]["court_enforcement_within_3y"] is False and view["disputed_fields"] == []
    history = [
        f
        for f in (await client.get(f"/v1/households/{hid}/facts")).json()
        if f["field"] == "court_enforcement_within_3y"
    ]
    assert [(f["value"], f["current"]) for f in history] == [(True, False), (False, True)]


async def test_renames_keep_history_and_businesses_are_registered(
    registry: tuple[System, dict[str, dict[str, str]]],
) -> None:
    system, keys = registry
    client = system["registry"]
    r = await client.patch(f"/v1/villages/{VILLAGE}", json={"name": "东风村"})
    assert r.json()["name"] == "东风村" and [f["name"] for f in r.json()["former_names"]] == ["东村"]
    assert (
        await client.patch(f"/v1/villages/{VILLAGE}", json={"name": "新村"}, headers=keys["collector"])
    ).status_code == 403

    business = {
        "credit_code": "91350100M000100Y43",
        "name": "东风食用菌专业合作社",
        "kind": "cooperative",
        "village_code": VILLAGE,
        "profile": {"income_project": True},
    }
    r = await client.post("/v1/businesses", json=business)
    assert r.status_code == 201, r.text
    assert r.json()["profile"] == {"income_project": True}
    assert (await client.post("/v1/businesses", json=business)).status_code == 409
    bad = await client.post("/v1/businesses", json=business | {"credit_code": "91350100M000100Y44"})
    assert (bad.status_code, bad.json()["errors"][0]["field"]) == (422, "credit_code")


async def test_xlsx_sheet_imports_through_the_endpoint(registry: tuple[System, dict[str, dict[str, str]]]) -> None:
    import openpyxl  # type: ignore[import-untyped, unused-ignore]

    system, keys = registry
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["东村农户信息采集表"])  # a title row above the header, as village sheets have
    sheet.append(["身份证号", "姓名", "贫困户", "证书"])
    sheet.append([resident_id(1), "张三", "是", "林权证、承包证"])
    sheet.append([resident_id(2), "李四", False, None])
    buffer = io.BytesIO()
    book.save(buffer)
    r = await system["registry"].post(
        f"/v1/villages/{VILLAGE}/households/import",
        content=buffer.getvalue(),
        params={"filename": "东村.xlsx"},
        headers=keys["collector"],
    )
    assert r.status_code == 200, r.text
    assert (r.json()["registered"], r.json()["failed"]) == (2, 0)
    zhang = (await system["registry"].get("/v1/households", params={"id_number": resident_id(1)})).json()["items"][0]
    assert zhang["poor_household"] is True and zhang["profile"] == {"certificates": ["forest", "land_contract"]}


async def test_communities_are_registered_under_a_township(registry: tuple[System, dict[str, dict[str, str]]]) -> None:
    system, _ = registry
    client = system["registry"]
    body = {"code": "410102001500", "name": "城关社区", "township_code": TOWNSHIP}
    r = await client.post("/v1/communities", json=body)
    assert (r.status_code, r.json()) == (201, body)
    again = await client.post("/v1/communities", json=body)
    assert (again.status_code, again.json()["code"], again.json()["title"]) == (
        409,
        "DUPLICATE_CODE",
        "Community exists",
    )
    r = await client.post("/v1/communities", json=body | {"code": "X1", "township_code": "NOPE"})
    assert (r.status_code, r.json()["code"], r.json()["field"]) == (422, "UNKNOWN_TOWNSHIP", "township_code")
    assert [c["code"] for c in (await client.get("/v1/communities")).json()] == ["410102001500"]


async def test_collectors_see_their_village_and_subjects_their_own_household(
    registry: tuple[System, dict[str, dict[str, str]]], infra: Infra
) -> None:
    system, keys = registry
    client = system["registry"]
    mine = (await client.post("/v1/households", json=household(11))).json()["household_id"]
    theirs = (await client.post("/v1/households", json=household(12, village_code=OTHER_VILLAGE))).json()[
        "household_id"
    ]
    credentials = system.common.credentials_path
    subject_key, _ = add_credential(credentials, f"subject-{mine}", "api_key", ("subject",), household=mine)
    subject = {"Authorization": f"Bearer {subject_key}"}

    async def key_known() -> bool:  # the store rereads its file every CHECK_SECONDS (later when busy)
        return (await client.get(f"/v1/households/{mine}", headers=subject)).status_code != 401

    await wait_until(key_known, what="the subject's key to be read")

    for path in (f"/v1/households/{mine}", f"/v1/households/{mine}/facts"):
        assert (await client.get(path, headers=subject)).status_code == 200
        assert (await client.get(path, headers=keys["collector"])).status_code == 200
    # Another's household answers as a missing one (issue 21; tests/integration/test_bound_answers.py).
    for path in (f"/v1/households/{theirs}", f"/v1/households/{theirs}/facts"):
        r = await client.get(path, headers=subject)
        assert (r.status_code, r.json()["code"]) == (404, "HOUSEHOLD_NOT_FOUND")
        r = await client.get(path, headers=keys["collector"])
        assert (r.status_code, r.json()["code"]) == (404, "HOUSEHOLD_NOT_FOUND")
    # A subject never lists; a collector's list is its own village whatever it asks for.
    r = await client.get("/v1/households", headers=subject)
    assert (r.status_code, r.json()["code"]) == (403, "NOT_YOUR_HOUSEHOLD")
    listed = (await client.get("/v1/households", headers=keys["collector"])).json()["items"]
    assert mine in {h["household_id"] for h in listed} and theirs not in {h["household_id"] for h in listed}
    r = await client.get("/v1/households", params={"village_code": OTHER_VILLAGE}, headers=keys["collector"])
    assert (r.status_code, r.json()["code"]) == (403, "OUTSIDE_YOUR_VILLAGE")
    # The public sees published aggregates only, never a household.
    r = await client.get(f"/v1/households/{mine}", headers=keys["public"])
    assert (r.status_code, r.json()["code"]) == (403, "FORBIDDEN")


async def test_a_collector_decides_objections_of_its_own_village_only(
    registry: tuple[System, dict[str, dict[str, str]]],
) -> None:
    system, keys = registry
    client = system["registry"]
    theirs = (await client.post("/v1/households", json=household(21, village_code=OTHER_VILLAGE))).json()
    hid = theirs["household_id"]
    await client.patch(f"/v1/households/{hid}/profile", json={"family_harmony": False})
    fact = next(f for f in (await client.get(f"/v1/households/{hid}/facts")).json() if f["field"] == "family_harmony")
    objection = (await client.post(f"/v1/facts/{fact['fact_id']}/objections", json={"reason": "邻里误会"})).json()
    decision = {"outcome": "corrected", "corrected_value": True, "note": "村委会核实"}
    url = f"/v1/objections/{objection['objection_id']}/decision"
    r = await client.post(url, json=decision, headers=keys["collector"])
    # Another village's objection answers as a missing one (issue 21).
    assert (r.status_code, r.json()["code"]) == (404, "OBJECTION_NOT_FOUND")
    assert (await client.get(f"/v1/objections/{objection['objection_id']}")).json()["status"] == "open"
    r = await client.post(url, json=decision)
    assert r.status_code == 200 and r.json()["status"] == "corrected"
