"""Who may call what (issue 9): every endpoint of every service, table-driven.

The table is the services' own routes with the scope each declares, crossed with the role
table of shared/auth.py: without a token 401, with a bad token 401, with a role lacking the
scope 403 FORBIDDEN, with a role holding it anything but 401/403-FORBIDDEN (the handler then
answers 404/422 to the dummy arguments, or a binding refusal for a bound credential).
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from fastapi.routing import APIRoute

from shared.auth import ROLE_SCOPES, ROLES, SCOPES, add_credential
from shared.runtime import scoped_routers
from shared.settings import SERVICE_NAMES
from shared.web import declared_scope
from tests.conftest import Infra, new_topic_prefix
from tests.support.system import System
from vcredit.services import load_spec

in_module_loop = pytest.mark.asyncio(loop_scope="module")
ASYNCAPI_DOCUMENT = Path(__file__).resolve().parents[2] / "docs" / "asyncapi.json"

# Served without a token on purpose: the dashboard page, its script and style and its vendored
# chart library (its data needs a token), liveness, readiness, the OpenAPI with its Swagger UI
# page and that page's files (shared/api_docs.py), the event contract (AsyncAPI and each event
# type's JSON Schema: like the OpenAPI, no data), and the token endpoint with its keys.
PUBLIC = {
    "/",
    "/static/{name}",
    "/static/vendor/uplot-1.6.32/{name}",
    "/healthz",
    "/readyz",
    "/v1/oauth/token",
    "/.well-known/jwks.json",
    "/openapi.json",
    "/asyncapi.json",
    "/v1/schemas/{event_type}",
    "/v1/schemas/{event_type}/{version}",
    "/docs",
    "/docs/assets/{name}",
}


def _routes() -> list[tuple[str, str, str, str]]:
    rows = []
    for service in SERVICE_NAMES:
        for router in scoped_routers(load_spec(service)):
            for route in router.routes:
                assert isinstance(route, APIRoute)
                scope = declared_scope(route)
                assert scope is not None, f"{service} {route.path} declares no scope"
                for method in sorted(route.methods):
                    rows.append((service, method, route.path, scope))
    return rows


ROUTES = _routes()


def _url(path: str) -> str:
    url = re.sub(r"\{[^}]+\}", "zz0", path)
    # Streams would never end: an invalid resume point makes an allowed call answer 422 at once.
    return url + "?last_event_id=not-a-number" if url.endswith("/stream") else url


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def system(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[System, dict[str, str]]]:
    tmp: Path = tmp_path_factory.mktemp("access")
    credentials = tmp / "credentials.json"
    tokens = {}
    for role in ROLES:
        token, _ = add_credential(
            credentials,
            f"as-{role}",
            "api_key",
            (role,),
            village="410102001001" if role == "collector" else None,
            household="H-SOMEONE" if role == "subject" else None,
        )
        tokens[role] = token
    async with System(
        Infra("embedded", tmp, new_topic_prefix()), list(SERVICE_NAMES), credentials_file=credentials
    ) as s:
        yield s, tokens


def test_every_route_is_in_the_table_or_deliberately_public() -> None:
    for service in SERVICE_NAMES:
        spec = load_spec(service)
        for router in spec.public_routers():
            for route in router.routes:
                assert isinstance(route, APIRoute)
                assert route.path in PUBLIC, f"{service} serves {route.path} without a token"
    assert len(ROUTES) >= 70, "the table lost routes"
    # Close-of-business run control (issue 19), operator only like POST /v1/cob.
    cob = {(m, p): scope for svc, m, p, scope in ROUTES if svc == "loans" and p.startswith("/v1/cob")}
    assert cob == {
        ("POST", "/v1/cob"): "cob:run",
        ("GET", "/v1/cob/runs"): "cob:run",
        ("GET", "/v1/cob/runs/{run_id}"): "cob:run",
        ("POST", "/v1/cob/runs/{run_id}/cancel"): "cob:run",
    }
    # No scope is declared by nobody (a dead grant), and the public holds nothing that reads
    # or writes a person's data.
    assert {scope for *_, scope in ROUTES} == set(SCOPES)
    assert not {"subjects:read", "ratings:read", "lending:read", "subjects:write"} & ROLE_SCOPES["public"]


@in_module_loop
async def test_only_the_public_routes_answer_without_a_token(system: tuple[System, dict[str, str]]) -> None:
    s, _ = system
    for service in SERVICE_NAMES:
        paths = {r.path for r in s.apps[service].routes if isinstance(r, APIRoute)}
        declared = {p for svc, _, p, _ in ROUTES if svc == service}
        assert paths - declared <= PUBLIC, f"{service}: {sorted(paths - declared - PUBLIC)}"


@in_module_loop
async def test_every_service_serves_the_event_contract_without_a_token(system: tuple[System, dict[str, str]]) -> None:
    s, _ = system
    committed = json.loads(ASYNCAPI_DOCUMENT.read_text(encoding="utf-8"))
    for service in SERVICE_NAMES:
        bare = {"Authorization": ""}
        r = await s[service].get("/asyncapi.json", headers=bare)
        assert (r.status_code, r.json()) == (200, committed), service
        r = await s[service].get("/v1/schemas/risk.village.frozen/1", headers=bare)
        assert (r.status_code, r.headers["content-type"]) == (200, "application/schema+json"), service
        assert r.json()["properties"]["type"]["const"] == "risk.village.frozen"


@in_module_loop
@pytest.mark.parametrize(("service", "method", "path", "scope"), ROUTES, ids=[f"{r[1]} {r[0]}{r[2]}" for r in ROUTES])
async def test_401_403_per_endpoint(
    system: tuple[System, dict[str, str]], service: str, method: str, path: str, scope: str
) -> None:
    s, tokens = system
    client = s[service]
    url = _url(path)
    body = {} if method in ("POST", "PATCH", "PUT") else None

    async def call(token: str | None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        # The System's client carries the bootstrap token by default; replace it.
        request = client.build_request(method, url, json=body, headers=headers)
        if token is None:
            del request.headers["Authorization"]
        return await client.send(request)

    r = await call(None)
    assert (r.status_code, r.json()["code"]) == (401, "UNAUTHENTICATED"), r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.headers["www-authenticate"].startswith("Bearer")

    r = await call("vck_not-a-real-key")
    assert (r.status_code, r.json()["code"]) == (401, "INVALID_TOKEN"), r.text
    r = await call("eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0.c2ln")
    assert (r.status_code, r.json()["code"]) == (401, "INVALID_TOKEN"), r.text

    for role in ROLES:
        r = await call(tokens[role])
        problem = r.headers.get("content-type", "").startswith("application/problem+json")
        code = r.json()["code"] if problem else None
        if scope in ROLE_SCOPES[role]:
            assert r.status_code != 401 and code != "FORBIDDEN", f"{role} refused {method} {path}: {r.text}"
        else:
            assert (r.status_code, code) == (403, "FORBIDDEN"), f"{role} allowed {method} {path}: {r.text}"
            assert r.json()["required_scopes"] == [scope]
