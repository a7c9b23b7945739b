"""The government console in a real browser (Debian's chromium through Playwright) against a
real running system (the five services on uvicorn servers), on both backends (issue 26).

The figures on screen are read back from the page's text (``1,234,567.89 元``, ``19.66%``)
and compared with the source services' own APIs read directly (tests/support/console.py),
not with the console's JSON, in Chinese and in English; every view is opened by its link and
by keyboard, screenshotted (artifacts/) at 1366x768 and on a phone. A village going over 3%
turns red on the open township page without a reload, with its sentence in the events. The
public role gets the published view with no event stream."""

from __future__ import annotations

import asyncio
import io
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import date, timedelta
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from shared.auth import add_credential
from tests.conftest import Infra
from tests.support.console import RED, START, TOWNSHIP, Keys, build_district, direct_figures
from tests.support.dashboard import chromium, open_dashboard, watch_page
from tests.support.http_server import serve
from tests.support.system import System, certified_line
from tests.support.waiting import wait_until

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
CJK = re.compile(r"[\u3400-\u9fff\uff00-\uffef]")
UNIT = {"zh": "元", "en": "yuan"}
STATUS = {"zh": "已连接", "en": "connected"}
# The overview's figures every role may read (the public view); the rest are losses and subsidies.
PUBLISHED = 17
BRIDGE, NORTH = "410102022", "410102022001"  # 桥镇, 北村: the live freeze
PARTIES = ("mutual_guarantee", "government", "bank", "insurer")


@pytest.fixture
async def system(infra: Infra, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[System, Keys, str]]:
    credentials = infra.tmp / f"credentials-{uuid.uuid4().hex}.json"
    keys: Keys = {}
    tokens = {}
    for role in ("government", "public"):
        token, _ = add_credential(credentials, f"as-{role}", "api_key", (role,))
        keys[role] = {"Authorization": f"Bearer {token}"}
        tokens[role] = token
    services = ["registry", "scoring", "loans", "risk", "notify"]
    async with System(infra, services, credentials_file=credentials, start_date=START) as s, AsyncExitStack() as stack:
        for name in ("registry", "scoring", "loans", "risk"):
            url = await stack.enter_async_context(serve(s.apps[name]))
            monkeypatch.setenv(f"VCREDIT_NOTIFY_{name.upper()}_URL", url)
        notify_url = await stack.enter_async_context(serve(s.apps["notify"]))
        keys["tokens"] = tokens
        yield s, keys, notify_url


# --- reading the page's text back into numbers (an independent parser of what people see) ---
def money_of(text: str, lang: str) -> D:
    m = re.fullmatch(rf"(-?\d{{1,3}}(?:,\d{{3}})*\.\d{{2}}) {UNIT[lang]}", text)
    assert m, f"not money as '1,234,567.89 {UNIT[lang]}': {text!r}"
    return D(m.group(1).replace(",", ""))


def ratio_of(text: str) -> D:
    m = re.fullmatch(r"(-?\d+\.\d{2})%", text)
    assert m, f"not a percentage with two places: {text!r}"
    return D(m.group(1)) / 100


def shown_equals(text: str, expected: Any, lang: str) -> bool:
    if isinstance(expected, int):
        return int(text.replace(",", "")) == expected
    if "%" in text:
        return ratio_of(text) == D(expected).quantize(D("0.0001"))
    if text.endswith(UNIT[lang]):
        return money_of(text, lang) == D(expected)
    return text == str(expected)


def pct(ratio: str) -> str:
    # An independent formatting of risk's four-place ratio, as the page must show it.
    return f"{D(ratio) * 100:.2f}%"


async def _get(s: System, keys: Keys, service: str, path: str, **params: Any) -> Any:
    r = await s[service].get(path, params=params, headers=keys["government"])
    assert r.status_code == 200, r.text
    return r.json()


async def _shot(page: Any, infra: Infra, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"console-{infra.backend}-{name}.png"), full_page=True)


async def _labels_in_english(page: Any) -> list[str]:
    """The interface's own words on screen (not names typed by people), any left in Chinese."""
    texts: list[str] = await page.eval_on_selector_all(
        "[data-i18n]:not([hidden]), thead th, a.figure .label, dl.pairs dt, #status, #asOf, .legend, #page",
        "els => els.filter(e => e.offsetParent !== null).map(e => e.textContent)",
    )
    return [x for x in texts if CJK.search(x)]


async def _no_sideways_scroll(page: Any) -> None:
    overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 1, f"the page scrolls sideways by {overflow}px"


async def _tab_to(page: Any, selector: str) -> None:
    """Press Tab until ``selector`` has the focus (a keyboard user's way there)."""
    for _ in range(80):
        if await page.evaluate("s => document.activeElement && document.activeElement.matches(s)", selector):
            return
        await page.keyboard.press("Tab")
    raise AssertionError(f"{selector} is not reachable with Tab")


@pytest.mark.integration
async def test_the_console_in_both_languages_equals_the_apis(system: tuple[System, Keys, str], infra: Infra) -> None:
    s, keys, notify_url = system
    await build_district(s, keys)
    direct = await direct_figures(s, keys["government"])
    risk_villages = {v["code"]: v for v in await _get(s, keys, "risk", "/v1/villages", township_code=TOWNSHIP)}
    red_decisions = await _get(s, keys, "risk", "/v1/decisions", code=RED)
    auto_freeze = next(d for d in red_decisions if d["kind"] == "village_frozen" and not d["manual"])
    bulletins = await _get(s, keys, "notify", "/v1/bulletins")
    assert bulletins, "the halted township has a bulletin"

    async with AsyncExitStack() as stack:
        browser = await stack.enter_async_context(chromium())
        context = await browser.new_context(
            viewport={"width": 1366, "height": 768}, timezone_id="Asia/Shanghai", accept_downloads=True
        )
        page = await context.new_page()
        problems = await open_dashboard(page, notify_url, keys["tokens"]["government"])
        await page.locator("#status").filter(has_text=STATUS["zh"]).wait_for(timeout=30_000)

        for lang in ("zh", "en"):
            if lang == "en":
                await page.click("#lang")
                assert await page.evaluate("document.documentElement.lang") == "en"
            # --- the overview: every figure as its source gives it, as of the business date
            await page.click("nav a[href='#overview']")
            await page.locator("a.figure").first.wait_for()
            shown = dict(
                await page.eval_on_selector_all(
                    "a.figure", "els => els.map(e => [e.dataset.key, e.querySelector('.value').textContent])"
                )
            )
            # The cards hold every figure but the per-party losses, which are the loss table's.
            assert set(shown) == {k for k in direct["figures"] if not re.match(f"losses_({'|'.join(PARTIES)})", k)}
            for key, text in shown.items():
                assert shown_equals(text, direct["figures"][key], lang), (lang, key, text, direct["figures"][key])
            for party in PARTIES:
                cells = await page.eval_on_selector_all(
                    f"#lossTable tr[data-party='{party}'] td", "els => els.map(e => e.textContent)"
                )
                assert [money_of(c, lang) for c in cells] == [
                    D(direct["figures"][f"losses_{party}{suffix}"]) for suffix in ("", "_recovered", "_net")
                ], party
            assert direct["business_date"] in await page.inner_text("#asOf")
            money_of(shown["principal_outstanding"], lang)  # money carries its unit and separators
            # Each figure links to its detail, and the detail is on the page.
            for href in set(await page.eval_on_selector_all("a.figure", "els => els.map(e => e.getAttribute('href'))")):
                target = href.removeprefix("#")  # a view of its own, or a part of the overview
                assert await page.locator(f"#view-{target}, #{target}").count() == 1, href
            await _no_sideways_scroll(page)
            await _shot(page, infra, f"{lang}-overview")

            # --- the township heat table: coloured by NPL against 3%, as risk's figures say
            await page.click("nav a[href='#townships']")
            await page.click(f"#townshipTable a[href='#township/{TOWNSHIP}']")
            await page.locator("#townshipTitle", has_text=TOWNSHIP).wait_for()
            for code, v in risk_villages.items():
                cell = page.locator(f"#heat a[data-code='{code}']")
                ratio = D(v["npl_ratio"])
                expected = "red" if ratio > D("0.03") else "green" if ratio <= D("0.015") else "amber"
                assert await cell.get_attribute("data-band") == expected, code
                assert pct(v["npl_ratio"]) in await cell.inner_text()
            assert "3%" in await page.inner_text("#legend")
            await page.locator("#townshipChart canvas").wait_for()
            await _shot(page, infra, f"{lang}-township")

            # --- the village: figures, trend with the 3% line, decisions with reasons, borrowers
            await page.click(f"#heat a[data-code='{RED}']")
            await page.locator("#villageTitle", has_text=RED).wait_for()
            assert await page.inner_text("#villageFigures dd[data-key='npl_ratio']") == pct(
                risk_villages[RED]["npl_ratio"]
            )
            assert money_of(await page.inner_text("#villageFigures dd[data-key='outstanding']"), lang) == D(
                risk_villages[RED]["outstanding"]
            )
            assert await page.get_attribute("#villageChart", "data-threshold") == "0.0300"
            assert await page.locator("#villageDecisions tbody tr").count() == len(red_decisions)
            reason = {"zh": f"不良率 {pct(auto_freeze['figures']['npl_ratio'])} 超过 3%", "en": "over 3%"}[lang]
            assert reason in await page.inner_text("#villageDecisions")
            await page.fill("#purpose", "政府监管：不良贷款核查" if lang == "zh" else "supervision: NPL review")
            await page.click("#borrowerForm button")
            await page.locator("#borrowers tbody tr td.mono").first.wait_for()
            masked = await page.eval_on_selector_all("#borrowers td.mono", "els => els.map(e => e.textContent)")
            assert len(masked) == 2 and all("****" in m for m in masked)
            await _shot(page, infra, f"{lang}-village")

            # --- bulletins in full, the decision log, the year's titles, the lists, the events
            await page.click("nav a[href='#bulletins']")
            await page.locator("#bulletinList details").first.wait_for()
            assert await page.locator("#bulletinList details").count() == len(bulletins)
            await page.click("#bulletinList details summary")
            text = bulletins[0]["text_zh" if lang == "zh" else "text_en"]
            assert (await page.inner_text("#bulletinList details p.bulletin")).strip() == text.strip()
            await _shot(page, infra, f"{lang}-bulletins")

            await page.click("nav a[href='#decisions']")
            await page.locator("#decisionTable tbody tr").first.wait_for()
            log = await _get(s, keys, "risk", "/v1/decisions", limit=20)
            assert await page.locator("#decisionTable tbody tr").count() == len(log)
            assert await page.locator("#decisionTable tbody tr.manual").count() == sum(d["manual"] for d in log)

            await page.click("nav a[href='#titles']")
            await page.locator("#titleKinds section").first.wait_for()
            assert await page.locator("#titleKinds section").count() == 4

            await page.click("nav a[href='#lists']")
            await page.locator("#redList thead th").first.wait_for()
            assert await page.locator("#blackList td.empty").count() == 1  # nobody listed in this district
            if lang == "en":
                assert await _labels_in_english(page) == []

            await page.click("nav a[href='#events']")
            sentence = {
                "zh": f"东村 已冻结：不良率 {pct(auto_freeze['figures']['npl_ratio'])} > 3%",
                "en": f"东村 frozen: NPL {pct(auto_freeze['figures']['npl_ratio'])} > 3%",
            }[lang]
            await page.locator("#live li", has_text=sentence).first.wait_for()
            await _shot(page, infra, f"{lang}-events")
            if lang == "en":
                assert await _labels_in_english(page) == []

        # --- the monthly report, downloaded from the page: the API's own file -------------------
        await page.click("nav a[href='#reports']")
        # The view fills in the last month ended as it opens (after the click's hashchange):
        # read it once the view is shown, not right after the click (CI15 read it empty).
        await page.locator("#view-reports").wait_for()
        month = await page.input_value("#reportMonth")
        assert re.fullmatch(r"[0-9]{4}-[0-9]{2}", month), month
        async with page.expect_download() as info:
            await page.click("#reportXlsx")
        download = await info.value
        assert download.suggested_filename == f"monthly-report-{month}.xlsx"
        content = await asyncio.to_thread(Path(await download.path()).read_bytes)
        downloaded = openpyxl.load_workbook(io.BytesIO(content))
        r = await s["notify"].get(f"/v1/reports/monthly/{month}", headers=keys["government"])
        assert r.status_code == 200, r.text
        served = openpyxl.load_workbook(io.BytesIO(r.content))
        assert [[list(row) for row in ws.iter_rows(values_only=True)] for ws in downloaded.worksheets] == [
            [list(row) for row in ws.iter_rows(values_only=True)] for ws in served.worksheets
        ]

        # --- by keyboard alone: the township, then the village, with Tab and Enter -----------
        await page.goto(f"{notify_url}/#overview")
        await page.locator("a.figure").first.wait_for()
        await _tab_to(page, "nav a[href='#townships']")
        await page.keyboard.press("Enter")
        await _tab_to(page, f"#townshipTable a[href='#township/{TOWNSHIP}']")
        await page.keyboard.press("Enter")
        await page.locator(f"#heat a[data-code='{RED}']").wait_for()
        await _tab_to(page, f"#heat a[data-code='{RED}']")
        await page.keyboard.press("Enter")
        await page.locator("#villageTitle", has_text=RED).wait_for()
        assert await page.is_visible("#view-village")

        # --- live: 北村 of 桥镇 (a township not halted) goes over 3% on its open page ---------
        registry = s["registry"]
        r = await registry.post("/v1/townships", json={"code": BRIDGE, "name": "桥镇"})
        assert r.status_code == 201, r.text
        r = await registry.post("/v1/villages", json={"code": NORTH, "name": "北村", "township_code": BRIDGE})
        assert r.status_code == 201, r.text

        async def known() -> bool:
            return (await s["risk"].get(f"/v1/villages/{NORTH}")).status_code == 200

        await wait_until(known, what="北村 to reach risk")
        _, line = await certified_line(s, NORTH, BRIDGE)
        await page.goto(f"{notify_url}/#township/{BRIDGE}")
        north = page.locator(f"#heat a[data-code='{NORTH}']")
        await north.wait_for()
        assert await north.get_attribute("data-band") == "green"
        await page.locator("#status").filter(has_text=STATUS["en"]).wait_for(timeout=30_000)
        r = await s["loans"].post(
            "/v1/loans",
            json={
                "credit_line_id": line,
                "amount": "6000.00",
                "term_months": 12,
                "repayment_method": "equal_principal",
            },
        )
        assert r.status_code == 201, r.text
        first_due = date.fromisoformat(r.json()["schedule"][0]["due_on"])
        r = await s["loans"].post("/v1/cob", json={"date": str(first_due + timedelta(days=91))})
        assert r.status_code == 200, r.text
        # Day 91 past due: non-performing, 100% > 3%: risk freezes 北村; the page turns it red.
        await page.locator(f"#heat a[data-code='{NORTH}'][data-band='red'].frozen").wait_for(timeout=60_000)
        await page.locator("#live li", has_text="北村 frozen: NPL 100.00% > 3%").wait_for(
            state="attached", timeout=60_000
        )
        await _shot(page, infra, "en-live-freeze")

        # --- a phone: one column, nothing wider than the screen -------------------------------
        phone = await browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
        small = await phone.new_page()
        problems += await open_dashboard(small, notify_url, keys["tokens"]["government"])
        await small.locator("a.figure").first.wait_for()
        await _no_sideways_scroll(small)
        await _shot(small, infra, "phone-overview")
        await small.goto(f"{notify_url}/#township/{TOWNSHIP}")
        await small.locator(f"#heat a[data-code='{RED}']").wait_for()
        await _no_sideways_scroll(small)
        await _shot(small, infra, "phone-township")
        await phone.close()
        assert problems == []


@pytest.mark.integration
async def test_the_public_view_shows_published_figures_without_the_event_stream(
    system: tuple[System, Keys, str], infra: Infra
) -> None:
    s, keys, notify_url = system
    await build_district(s, keys)
    published = (await s["notify"].get("/v1/console/public", headers=keys["public"])).json()["figures"]
    direct = (await direct_figures(s, keys["government"]))["figures"]
    assert len(published) == PUBLISHED

    async with AsyncExitStack() as stack:
        browser = await stack.enter_async_context(chromium())
        page = await browser.new_page(viewport={"width": 1366, "height": 768})
        requested: list[str] = []
        page.on("request", lambda request: requested.append(request.url))
        problems = await watch_page(page)
        await page.goto(f"{notify_url}/")
        await page.fill("#token", keys["tokens"]["public"])
        await page.click("#connect")
        await page.locator("#status").filter(has_text="公众视图").wait_for(timeout=30_000)
        await page.locator("a.figure").first.wait_for()
        shown = dict(
            await page.eval_on_selector_all(
                "a.figure", "els => els.map(e => [e.dataset.key, e.querySelector('.value').textContent])"
            )
        )
        # The published figures only, each the source's; no loss, no subsidy, no borrower.
        assert set(shown) == set(published)
        for key, text in shown.items():
            assert shown_equals(text, direct[key], "zh"), (key, text)
        assert await page.is_hidden("#losses") and await page.is_hidden("#subsidy")
        assert await page.is_hidden("nav a[href='#reports']") and await page.is_hidden("nav a[href='#events']")
        assert await page.is_visible("#publicNote")
        await _shot(page, infra, "public-overview")
        # The drill-down and the village's aggregates are published; its borrowers are not.
        await page.click("nav a[href='#townships']")
        await page.click(f"#townshipTable a[href='#township/{TOWNSHIP}']")
        await page.click(f"#heat a[data-code='{RED}']")
        await page.locator("#villageFigures dd[data-key='npl_ratio']").wait_for()
        assert await page.is_hidden("#borrowerForm")
        await page.click("nav a[href='#bulletins']")
        await page.locator("#bulletinList details").first.wait_for()
        await _shot(page, infra, "public-bulletins")
        assert not [u for u in requested if "/v1/stream" in u or "/borrowers" in u or "/console/overview" in u]
        assert "连接中断" not in await page.inner_text("#status")
        assert problems == []
