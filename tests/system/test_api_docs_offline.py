"""Every service's ``/docs`` in a real browser (Debian's chromium through Playwright) with no
way out of the machine: Swagger UI must come from the service itself (shared/api_docs.py),
render every operation of the service's OpenAPI, and run under the strict
Content-Security-Policy of every answer (issue 22 item 5). Before, the page loaded Swagger UI
from a CDN and stayed blank offline."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from shared.security_headers import CSP
from shared.settings import SERVICE_NAMES
from tests.conftest import missing
from tests.support.dashboard import watch_page
from tests.support.http_server import serve
from tests.support.infra import Infra, new_topic_prefix
from tests.support.system import System

CHROMIUM = Path("/usr/bin/chromium")
HAVE_CHROMIUM = CHROMIUM.exists()
METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
# Chromium resolves no name but the loopback address: a CDN or font host cannot even be
# looked up. ``_offline`` also aborts (and records) any request leaving loopback.
OFFLINE = "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"


@pytest.fixture
async def system(tmp_path: Path) -> AsyncIterator[System]:
    async with System(Infra("embedded", tmp_path, new_topic_prefix()), list(SERVICE_NAMES)) as s:
        yield s


def _operations(openapi: dict[str, Any]) -> int:
    return sum(1 for item in openapi["paths"].values() for method in item if method in METHODS)


async def _offline(page: Any) -> tuple[list[str], list[str]]:
    """The requests that tried to leave loopback (aborted), and those that failed or were
    answered with an error; both filled as they happen."""
    left: list[str] = []
    failed: list[str] = []

    async def loopback_only(route: Any) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            await route.continue_()
        else:
            left.append(route.request.url)
            await route.abort("internetdisconnected")

    def answered(response: Any) -> None:
        if response.status >= 400:
            failed.append(f"{response.url}: {response.status}")

    await page.route("**/*", loopback_only)
    page.on("requestfailed", lambda r: failed.append(f"{r.url}: {r.failure}"))
    page.on("response", answered)
    return left, failed


async def test_docs_render_every_operation_offline_under_the_strict_policy(system: System) -> None:
    try:
        import playwright.async_api as playwright_api
    except ImportError:
        missing("no playwright (pip install -e '.[test]')")
    if not HAVE_CHROMIUM:
        missing("no /usr/bin/chromium (scripts/test.sh installs it)")
    async with AsyncExitStack() as stack:
        pw = await stack.enter_async_context(playwright_api.async_playwright())
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox", OFFLINE])
        stack.push_async_callback(browser.close)
        for service in SERVICE_NAMES:
            url = await stack.enter_async_context(serve(system.apps[service]))
            async with httpx.AsyncClient() as http:
                operations = _operations((await http.get(f"{url}/openapi.json")).json())
            assert operations > 0, service

            page = await browser.new_page()
            problems = await watch_page(page)
            left, failed = await _offline(page)
            response = await page.goto(f"{url}/docs")
            assert response is not None and response.status == 200
            assert response.headers["content-security-policy"] == CSP, "/docs has the policy of every answer"
            blocks = page.locator("#swagger-ui .opblock")
            try:
                await blocks.nth(operations - 1).wait_for(timeout=30_000)
            except playwright_api.TimeoutError:
                raise AssertionError(f"{service}: no operations shown; {left=} {failed=} {problems=}") from None
            assert await blocks.count() == operations, service

            # The OAuth2 client-credentials flow of the OpenAPI: the page can fetch a token.
            authorize = page.locator("#swagger-ui .auth-wrapper .authorize")
            assert await authorize.count() == 1
            await authorize.click()
            await page.locator("#swagger-ui .dialog-ux input[type=password]").first.wait_for(timeout=30_000)
            await page.locator("#swagger-ui .dialog-ux .close-modal").click()
            # An operation opened for a try: its parameters, responses and examples render too.
            await blocks.first.locator(".opblock-summary").click()
            await blocks.first.locator(".try-out__btn").click()
            await blocks.first.locator(".responses-table").first.wait_for(timeout=30_000)
            await page.locator("#swagger-ui .models").wait_for(timeout=30_000)
            assert (service, left, failed, problems) == (service, [], [], [])
            await page.close()
