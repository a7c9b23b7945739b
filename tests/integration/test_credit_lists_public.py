"""Public disclosure of the credit lists (issue 11) through notify, on both backends: real
entries made through registry and risk (a court listing, a bank's proposal the government
approves, one it has not yet decided, a refused repair), read with a PUBLIC-role key from
notify's /v1/dashboard/credit-lists and risk's public endpoints, and on the dashboard page in
a real browser. Never a full ID number, never an unpublished entry; name and village search."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import date
from typing import Any

import httpx
import pytest

from shared.auth import add_credential
from tests.conftest import Infra
from tests.support.credit_lists import propose_black_listing as propose
from tests.support.credit_lists import register_household as register
from tests.support.dashboard import chromium, open_dashboard
from tests.support.http_server import serve
from tests.support.settings_env import service_env
from tests.support.system import System, resident_id
from tests.support.waiting import wait_until

TOWNSHIP = "410102011"
VILLAGE, OTHER_VILLAGE = "410102011001", "410102011002"
START = date(2026, 5, 11)
# Any 18-character resident ID number, masked or not, has no '*': this finds a full one anywhere.
FULL_ID = re.compile(r"(?<![0-9])[0-9]{17}[0-9Xx](?![0-9])")
MASKED_ID = re.compile(r"^[0-9]{3}\*{11}[0-9]{3}[0-9X]$")
# Registry takes any name; a public page must show this one as text.
MARKUP = '<img src=x onerror="document.title=1">孙标记'

# A bank's evidence names people; it is the government's to read, never the public's.
EVIDENCE = f"转移财产逃废债务, 担保人身份证 {resident_id(9)}"

Keys = dict[str, dict[str, str]]


@pytest.fixture
async def system(infra: Infra, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[System, Keys]]:
    credentials = infra.tmp / f"credentials-{uuid.uuid4().hex}.json"
    keys: Keys = {}
    for role in ("court", "bank", "government", "public", "monitoring"):
        token, _ = add_credential(credentials, f"as-{role}", "api_key", (role,))
        keys[role] = {"Authorization": f"Bearer {token}"}
    # A second government principal: the one that applied for a repair never decides it (issue 21).
    token, _ = add_credential(credentials, "as-district", "api_key", ("government",))
    keys["district"] = {"Authorization": f"Bearer {token}"}
    # The court's cause as a minor entry: repair may be applied for (and refused) at once.
    with service_env(monkeypatch, VCREDIT_RISK_LIST_TIERS='{"court_dishonest_debtor": "minor"}'):
        async with System(infra, ["registry", "risk", "notify"], credentials_file=credentials, start_date=START) as s:
            registry = s["registry"]
            assert (await registry.post("/v1/townships", json={"code": TOWNSHIP, "name": "北镇"})).status_code == 201
            for code, name in ((VILLAGE, "上村"), (OTHER_VILLAGE, "下村")):
                body = {"code": code, "name": name, "township_code": TOWNSHIP}
                assert (await registry.post("/v1/villages", json=body)).status_code == 201
            yield s, keys


async def _propose(s: System, keys: Keys, household: str) -> str:
    return str((await propose(s, keys, household, f"逃废债务, 身份证 {resident_id(9)}"))["entry_id"])


async def _active_entry(s: System, household: str) -> str:
    found: list[dict[str, Any]] = []

    async def listed() -> bool:
        r = await s["risk"].get(
            "/v1/credit-lists/entries", params={"subject_id": household, "status": "active", "list": "black"}
        )
        found[:] = r.json()
        return len(found) == 1

    await wait_until(listed, what="the court's listing to reach risk")
    return str(found[0]["entry_id"])


async def _make_entries(s: System, keys: Keys) -> None:
    """王失信 (court, 上村, repair refused), 李逃债 (bank + government, 下村), the markup name
    (court, 上村), and 钱待审 (a bank's proposal nobody has decided, 上村)."""
    debtor = await register(s, 201, "王失信", VILLAGE)
    evader = await register(s, 202, "李逃债", OTHER_VILLAGE)
    marked = await register(s, 203, MARKUP, VILLAGE)
    pending = await register(s, 204, "钱待审", VILLAGE)
    for household in (debtor, marked):
        r = await s["registry"].patch(
            f"/v1/households/{household}/profile", json={"dishonest_debtor_list": True}, headers=keys["court"]
        )
        assert r.status_code == 200, r.text
    entry = await _propose(s, keys, evader)
    r = await s["risk"].post(
        f"/v1/black-list/proposals/{entry}/decision",
        json={"approve": True, "reasons": "证据属实"},
        headers=keys["government"],
    )
    assert r.status_code == 200 and r.json()["status"] == "active", r.text
    await _propose(s, keys, pending)

    debtor_entry = await _active_entry(s, debtor)
    await _active_entry(s, marked)
    r = await s["risk"].post(
        "/v1/credit-repairs",
        json={
            "entry_id": debtor_entry,
            "statement": "执行款已部分履行, 余款分期偿还中",
            "obligations_fulfilled_on": str(START),
        },
        headers=keys["government"],
    )
    assert r.status_code == 201, r.text
    repair = r.json()["repair_id"]
    r = await s["risk"].post(f"/v1/credit-repairs/{repair}/review", json={"note": "核查"}, headers=keys["district"])
    assert r.status_code == 200, r.text
    r = await s["risk"].post(
        f"/v1/credit-repairs/{repair}/decision",
        # Reasons are free text: an ID number typed into them is published masked.
        json={"decision": "refused", "reasons": f"执行款未结清 ({resident_id(201)})"},
        headers=keys["district"],
    )
    assert r.status_code == 200, r.text


def _no_full_id(response: httpx.Response) -> None:
    assert response.status_code == 200, response.text
    assert not FULL_ID.search(response.text), response.text
    for n in range(201, 205):
        assert resident_id(n) not in response.text
    assert resident_id(9) not in response.text, "the proposal's evidence is never shown"


async def test_public_key_sees_published_entries_masked_and_searchable(
    system: tuple[System, Keys], monkeypatch: pytest.MonkeyPatch
) -> None:
    s, keys = system
    public = keys["public"]
    async with serve(s.apps["risk"]) as risk_url:
        monkeypatch.setenv("VCREDIT_NOTIFY_RISK_URL", risk_url)
        await _make_entries(s, keys)
        notify, risk = s["notify"], s["risk"]

        async def via_notify(**params: Any) -> dict[str, Any]:
            r = await notify.get("/v1/dashboard/credit-lists", params=params, headers=public)
            _no_full_id(r)
            body: dict[str, Any] = r.json()
            return body

        everything = await via_notify()
        names = {e["name"] for e in everything["lists"]}
        assert names == {"王失信", "李逃债", MARKUP}, "钱待审's proposal is not published"
        assert all(MASKED_ID.match(e["identifier_masked"]) for e in everything["lists"]), everything
        assert {e["identifier_masked"][-4:] for e in everything["lists"]} == {
            resident_id(n)[-4:] for n in (201, 202, 203)
        }
        assert {e["list"] for e in everything["lists"]} == {"black"}
        (repair,) = everything["repairs"]
        assert (repair["name"], repair["decision"]) == ("王失信", "refused")
        assert "410***********" in repair["reasons"] and MASKED_ID.match(repair["identifier_masked"])

        # What notify shows is exactly risk's public answer to the same public key.
        for params in ({}, {"name": "逃"}, {"village_code": VILLAGE}):
            credit_lists = await risk.get("/v1/public/credit-lists", params=params, headers=public)
            repairs = await risk.get("/v1/public/credit-repairs", params=params, headers=public)
            _no_full_id(credit_lists)
            _no_full_id(repairs)
            assert await via_notify(**params) == {"lists": credit_lists.json(), "repairs": repairs.json()}

        by_name = await via_notify(name="逃")
        assert ([e["name"] for e in by_name["lists"]], by_name["repairs"]) == (["李逃债"], [])
        by_village = await via_notify(village_code=VILLAGE)
        assert {e["name"] for e in by_village["lists"]} == {"王失信", MARKUP}
        assert [r["name"] for r in by_village["repairs"]] == ["王失信"]
        both = await via_notify(name="王", village_code=OTHER_VILLAGE)
        assert both == {"lists": [], "repairs": []}
        assert await via_notify(list="red") == {"lists": [], "repairs": []}
        assert await via_notify(name="钱待审") == {"lists": [], "repairs": []}

        # The public's key reads no unpublished list at risk, and a key without lists:read
        # gets nothing from notify.
        r = await risk.get("/v1/credit-lists/entries", headers=public)
        assert r.status_code == 403
        r = await notify.get("/v1/dashboard/credit-lists", headers=keys["monitoring"])
        assert (r.status_code, r.json()["code"]) == (403, "FORBIDDEN")


@pytest.mark.integration
async def test_the_dashboard_section_shows_the_lists_to_a_public_key(
    system: tuple[System, Keys], infra: Infra, monkeypatch: pytest.MonkeyPatch
) -> None:
    s, keys = system
    token = keys["public"]["Authorization"].removeprefix("Bearer ")
    async with AsyncExitStack() as stack:
        risk_url = await stack.enter_async_context(serve(s.apps["risk"]))
        monkeypatch.setenv("VCREDIT_NOTIFY_RISK_URL", risk_url)
        notify_url = await stack.enter_async_context(serve(s.apps["notify"]))
        await _make_entries(s, keys)

        browser = await stack.enter_async_context(chromium())
        page = await browser.new_page(viewport={"width": 1400, "height": 1000})
        errors = await open_dashboard(page, notify_url, token)
        await page.click("nav a[href='#lists']")

        black = page.locator("#blackList tbody tr[data-entry]")
        await page.locator("#repairs tbody tr[data-entry]").wait_for(timeout=30_000)
        assert await black.count() == 3
        # Villages by name once the overview is in (whichever call answers first).
        await page.locator("#blackList td.village_code", has_text=f"下村 ({OTHER_VILLAGE})").wait_for(timeout=30_000)
        text = await page.locator("#view-lists").inner_text()
        for name in ("王失信", "李逃债", MARKUP, "不予修复", "失信被执行人", "恶意逃废债务", "410***********"):
            assert name in text, name
        assert "钱待审" not in text
        assert not FULL_ID.search(await page.content())
        # The name stayed text: no element was made of it, and its handler never ran.
        assert await page.locator("#view-lists img").count() == 0
        assert await page.title() != "1"
        assert await page.locator("#redList td.empty").count() == 1

        await page.fill("#listName", "逃")
        await page.click("#listSearch button")
        await page.locator("#repairs td.empty").wait_for(timeout=30_000)
        assert [await c.inner_text() for c in await page.locator("#blackList td.name").all()] == ["李逃债"]

        await page.fill("#listName", "")
        await page.fill("#listVillage", VILLAGE)
        await page.press("#listVillage", "Enter")
        await page.locator("#repairs tbody tr[data-entry]").wait_for(timeout=30_000)
        names = {await c.inner_text() for c in await page.locator("#blackList td.name").all()}
        assert names == {"王失信", MARKUP}
        assert errors == []
