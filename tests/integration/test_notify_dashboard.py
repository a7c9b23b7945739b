"""The dashboard in a real browser (Debian's chromium through Playwright) against a real
running system: loans, risk and notify on uvicorn servers. A loan turning non-performing
freezes its village, and the page shows it live from /v1/stream without a reload."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import date, timedelta
from pathlib import Path

import pytest

from tests.conftest import TOKEN, Infra, missing
from tests.support.dashboard import open_dashboard
from tests.support.http_server import serve
from tests.support.risk import START, V1, V2, publish_hierarchy, run_cob, village_line
from tests.support.system import System

CHROMIUM = "/usr/bin/chromium"
HAVE_CHROMIUM = os.path.exists(CHROMIUM)
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"


@pytest.fixture
async def system(infra: Infra) -> AsyncIterator[System]:
    async with System(infra, ["loans", "risk", "notify"], start_date=START) as s:
        yield s


# A real browser is a real component: in CI (VCREDIT_REQUIRE_INTEGRATION=1) a missing
# chromium or playwright fails this test, on either backend, rather than skipping it.
@pytest.mark.integration
async def test_dashboard_shows_a_village_freeze_live(
    system: System, infra: Infra, monkeypatch: pytest.MonkeyPatch
) -> None:
    try:
        import playwright.async_api as playwright_api
    except ImportError:
        missing("no playwright (pip install -e '.[test]')")
    if not HAVE_CHROMIUM:
        missing("no /usr/bin/chromium (scripts/test.sh installs it)")
    async with AsyncExitStack() as stack:
        risk_url = await stack.enter_async_context(serve(system.apps["risk"]))
        monkeypatch.setenv("VCREDIT_NOTIFY_RISK_URL", risk_url)
        notify_url = await stack.enter_async_context(serve(system.apps["notify"]))

        await publish_hierarchy(system)
        _, line = await village_line(system, V1)
        await village_line(system, V2)
        r = await system["loans"].post(
            "/v1/loans",
            json={
                "credit_line_id": line,
                "amount": "12000.00",
                "term_months": 12,
                "repayment_method": "equal_principal",
            },
        )
        assert r.status_code == 201, r.text
        first_due = date.fromisoformat(r.json()["schedule"][0]["due_on"])

        pw = await stack.enter_async_context(playwright_api.async_playwright())
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        stack.push_async_callback(browser.close)
        page = await browser.new_page(viewport={"width": 1200, "height": 900})
        # Under the services' CSP (no inline script): a refused script would stop the page.
        problems = await open_dashboard(page, notify_url, TOKEN)
        row = page.locator(f"#villages tr[data-code='{V1}']")
        await row.wait_for(timeout=30_000)
        assert "已冻结" not in await row.inner_text()
        await page.locator("#status").filter(has_text="已连接").wait_for(timeout=30_000)

        # Day 91 past due: substandard, non-performing, 100% > 3%: risk freezes the village.
        await run_cob(system, first_due + timedelta(days=91))
        await page.locator(f"#villages tr.frozen[data-code='{V1}']").wait_for(timeout=30_000)
        assert "已冻结" in await row.inner_text()
        assert "100.00%" in await row.inner_text()
        assert "已冻结" not in await page.locator(f"#villages tr[data-code='{V2}']").inner_text()
        assert "risk.village.frozen" in await page.locator("#live").inner_text()

        # English toggle and the village's trend chart.
        await page.click("#lang")
        assert "frozen" in await row.inner_text()
        await row.click()
        await page.locator("#chart canvas").wait_for(timeout=30_000)
        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS / f"dashboard-{infra.backend}.png"), full_page=True)
        assert problems == []
