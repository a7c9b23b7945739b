"""Opening notify's dashboard in a browser (Playwright) as a person does, and catching what
would break it silently: script errors and anything the Content-Security-Policy refuses."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from tests.conftest import missing

CHROMIUM = "/usr/bin/chromium"
HAVE_CHROMIUM = os.path.exists(CHROMIUM)

# Reported through the console, where Playwright sees it; Playwright's init scripts are not
# subject to the page's CSP, so this listener is in place before the page's own scripts run.
_REPORT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (e) =>
  console.error(`Content Security Policy violation: ${e.violatedDirective} blocked ${e.blockedURI || "inline"}`));
"""


async def watch_page(page: Any) -> list[str]:
    """Before the page is opened: the list of its script errors and CSP violations, filled as
    they happen; a test asserts it is empty at its end."""
    problems: list[str] = []
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("console", lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None)
    await page.add_init_script(_REPORT_VIOLATIONS)
    return problems


async def open_dashboard(page: Any, notify_url: str, token: str) -> list[str]:
    """Load the page and connect with ``token`` typed into its box (a token never goes in a
    URL). Returns ``watch_page``'s list of problems."""
    problems = await watch_page(page)
    response = await page.goto(f"{notify_url}/")
    assert response is not None and "'unsafe-inline'" not in response.headers["content-security-policy"]
    await page.fill("#token", token)
    await page.click("#connect")
    return problems


@asynccontextmanager
async def chromium() -> AsyncIterator[Any]:
    """Debian's chromium through Playwright, closed on exit. A real browser is a real component:
    in CI (VCREDIT_REQUIRE_INTEGRATION=1) a missing chromium or playwright fails the test."""
    try:
        import playwright.async_api as playwright_api
    except ImportError:
        missing("no playwright (pip install -e '.[test]')")
    if not HAVE_CHROMIUM:
        missing(f"no {CHROMIUM} (scripts/test.sh installs it)")
    async with playwright_api.async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            await browser.close()
