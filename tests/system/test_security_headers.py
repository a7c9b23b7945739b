"""Browser security headers (issue 21 item 6) on real service apps (registry and notify on
SQLite): every answer, errors included, carries a strict CSP without inline script, refuses
framing and sniffing and sends no referrer; the dashboard's page has nothing inline for that
CSP to refuse; a token is never taken from a URL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from shared.bus.embedded import EmbeddedBus
from shared.migrations import upgrade
from shared.runtime import ServiceRuntime, create_app
from shared.security_headers import CSP
from shared.settings import CommonSettings
from vcredit.services import load_spec

TOKEN = "unit-token"
EXPECTED = {
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}


async def _app(name: str, tmp_path: Path) -> tuple[FastAPI, ServiceRuntime]:
    spec = load_spec(name)
    url = f"sqlite+aiosqlite:///{tmp_path}/{name}.db"
    await asyncio.to_thread(upgrade, spec.migrations_dir, url)
    runtime = ServiceRuntime(spec, url, EmbeddedBus(tmp_path / f"{name}-bus.db"), CommonSettings(data_dir=tmp_path))
    return create_app(runtime, TOKEN, manage_runtime=False), runtime


@pytest.fixture
async def clients(tmp_path: Path) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    out: dict[str, httpx.AsyncClient] = {}
    runtimes = []
    for name in ("registry", "notify"):
        app, runtime = await _app(name, tmp_path)

        async def broken() -> None:
            raise RuntimeError("a bug")

        # An unexpected error is answered by Starlette's outermost layer, past the middleware.
        app.add_api_route("/test-broken", broken)
        await runtime.start()
        runtimes.append(runtime)
        out[name] = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
            base_url=f"http://{name}",
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
    yield out
    for client in out.values():
        await client.aclose()
    for runtime in runtimes:
        await runtime.stop()


def _csp(response: httpx.Response) -> dict[str, str]:
    directives = [d.strip().split(" ", 1) for d in response.headers["content-security-policy"].split(";")]
    return {d[0]: d[1] if len(d) > 1 else "" for d in directives}


def _assert_secured(response: httpx.Response) -> None:
    what = f"{response.request.method} {response.request.url.path} ({response.status_code})"
    assert {k: response.headers.get(k) for k in EXPECTED} == EXPECTED, what
    assert response.headers.get_list("content-security-policy") == [response.headers["content-security-policy"]]
    csp = _csp(response)
    assert "'unsafe-inline'" not in response.headers["content-security-policy"], what
    assert "'unsafe-eval'" not in response.headers["content-security-policy"], what
    assert csp["frame-ancestors"] == "'none'", what
    assert csp["default-src"] == "'none'", what
    assert csp["base-uri"] == "'none'", what


async def test_every_answer_carries_the_headers_errors_included(clients: dict[str, httpx.AsyncClient]) -> None:
    registry, notify = clients["registry"], clients["notify"]
    answers = [
        await registry.get("/v1/villages"),  # 200 JSON
        await registry.post("/v1/townships", json={"code": "T1", "name": "湖滨镇"}),  # 201
        await registry.get("/v1/townships/T9"),  # 404 problem
        await registry.get("/v1/no-such-path"),  # 404 of no route
        await registry.post("/v1/townships", json={"code": "bad code!"}),  # 422
        await registry.get("/v1/villages", headers={"Authorization": ""}),  # 401
        await registry.post("/v1/townships", content=b"x" * (1024 * 1024 + 1)),  # 413, before the app
        await registry.get("/test-broken"),  # 500, answered outside the middleware
        await registry.get("/healthz"),
        await registry.get("/openapi.json"),
        await notify.get("/"),
        await notify.get("/static/console.js"),
        await notify.get("/static/console.css"),
        await notify.get("/static/vendor/uplot-1.6.32/uPlot.iife.min.js"),
        await notify.get("/static/nope.js"),  # 404
    ]
    statuses = [r.status_code for r in answers]
    assert statuses == [200, 201, 404, 404, 422, 401, 413, 500, 200, 200, 200, 200, 200, 200, 404]
    for response in answers:
        _assert_secured(response)
    # What the dashboard needs, and no more: its own scripts, styles and fetches.
    page = _csp(answers[10])
    assert (page["script-src"], page["style-src"], page["connect-src"]) == ("'self'", "'self'", "'self'")


class _Inline(HTMLParser):
    """Everything in a page that a CSP without 'unsafe-inline' refuses."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self._in: str | None = None
        self.scripts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = {k for k, _ in attrs}
        self.found += [f"<{tag} {k}=>" for k in names if k.startswith("on") or k == "style"]
        urls = [v for _, v in attrs if v and v.strip().lower().startswith("javascript:")]
        self.found += [f"<{tag} javascript: URL>" for _ in urls]
        if tag == "style":
            self.found.append("<style>")
        if tag == "script":
            src = dict(attrs).get("src")
            if src:
                self.scripts.append(src)
            else:
                self.found.append("<script> without src")
            self._in = tag

    def handle_endtag(self, tag: str) -> None:
        self._in = None

    def handle_data(self, data: str) -> None:
        if self._in == "script" and data.strip():
            self.found.append("<script> with a body")


async def test_the_dashboard_page_has_nothing_inline_and_its_files_are_served(
    clients: dict[str, httpx.AsyncClient],
) -> None:
    notify = clients["notify"]
    page = await notify.get("/")
    parser = _Inline()
    parser.feed(page.text)
    assert parser.found == []
    assert parser.scripts == ["/static/vendor/uplot-1.6.32/uPlot.iife.min.js", "/static/console.js"]
    script = await notify.get("/static/console.js")
    assert script.headers["content-type"].startswith("application/javascript")
    # The page's script reads no token from its URL (query string or fragment).
    assert "location.hash.slice" not in script.text and "location.search" not in script.text
    assert "?token=" not in script.text and "access_token" not in script.text
    # Nothing else of the static folder is served by name.
    assert (await notify.get("/static/console.html")).status_code == 404
    assert (await notify.get("/static/..%2Fdashboard.py")).status_code == 404


async def test_a_token_in_the_url_is_not_taken(clients: dict[str, httpx.AsyncClient]) -> None:
    bare = {"Authorization": ""}
    for service, path in (("notify", "/v1/stream"), ("notify", "/v1/dashboard/overview"), ("registry", "/v1/villages")):
        for param in ("token", "access_token"):
            r = await clients[service].get(path, params={param: TOKEN}, headers=bare)
            assert (r.status_code, r.json()["code"]) == (401, "UNAUTHENTICATED"), (path, param)


async def test_the_api_docs_have_nothing_inline_and_serve_their_own_viewer(
    clients: dict[str, httpx.AsyncClient],
) -> None:
    """/docs is Swagger UI from the service itself under the policy of every answer (issue 22
    item 5); FastAPI's CDN pages are gone. tests/system/test_api_docs_offline.py renders it."""
    registry = clients["registry"]
    page = await registry.get("/docs", headers={"Authorization": ""})
    assert page.status_code == 200
    _assert_secured(page)
    assert page.headers["content-security-policy"] == CSP
    parser = _Inline()
    parser.feed(page.text)
    assert parser.found == []
    assert parser.scripts == ["docs/assets/swagger-ui-bundle.js", "docs/assets/swagger-init.js"]
    assert "http" not in page.text, "nothing of the page comes from elsewhere"
    for name, media_type in (
        ("swagger-ui-bundle.js", "application/javascript"),
        ("swagger-init.js", "application/javascript"),
        ("swagger-ui.css", "text/css"),
        ("favicon-32x32.png", "image/png"),
    ):
        asset = await registry.get(f"/docs/assets/{name}", headers={"Authorization": ""})
        assert asset.status_code == 200, name
        assert asset.headers["content-type"].startswith(media_type), name
        _assert_secured(asset)
    init = (await registry.get("/docs/assets/swagger-init.js")).text
    assert "validatorUrl: null" in init, "Swagger UI would send the document to its online validator"
    for path in ("/docs/assets/swagger-ui.js", "/docs/assets/..%2Fapi_docs.py", "/redoc", "/docs/oauth2-redirect"):
        r = await registry.get(path)
        assert r.status_code == 404, path
        _assert_secured(r)
