"""Opening notify's dashboard in a browser (Playwright) as a person does, and catching what
would break it silently: script errors and anything the Content-Security-Policy refuses."""

from __future__ import annotations

from typing import Any

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
