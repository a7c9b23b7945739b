"""Each service's OpenAPI tells the truth (issue 22): valid OpenAPI, committed under
docs/openapi, errors as the Problem that is sent, each operation's problem codes at least
those its code raises, every code raised documented somewhere and every documented code
raised somewhere, Idempotency-Key declared where it is honoured, X-Query-Purpose required
where it is, timestamps declared date-time."""

from __future__ import annotations

import ast
import tempfile
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from openapi_spec_validator import validate

from shared.bus.embedded import EmbeddedBus
from shared.idempotency import idempotent
from shared.openapi import CODES
from shared.problems import PROBLEM_JSON
from shared.runtime import ServiceRuntime, create_app
from shared.settings import SERVICE_NAMES, CommonSettings
from shared.web import _STATUS_CODES
from tests.support.problem_codes import ROOT, dependant_codes, function_names, refusals
from vcredit.openapi_documents import DOCS_DIR, render, served_document
from vcredit.services import load_spec

METHODS = ("get", "put", "post", "delete", "patch")
# Answered by no operation on purpose: the catch-all of shared/web.py (a bug, not a contract).
UNDOCUMENTED = {(500, "INTERNAL_ERROR")}
# Where the static reading over-reaches: one helper serves both routes and picks the code by
# an argument (services/risk/breaker.py override: freezing a frozen village, unfreezing an
# unfrozen one).
NOT_ANSWERED = {
    # The close of business posts on the day it closes, after the business date has passed every
    # closed month (a month closes only then): ledger.post's PERIOD_CLOSED cannot reach it.
    ("post", "/v1/cob", "PERIOD_CLOSED"),
    ("post", "/v1/villages/{code}/freeze", "NOT_FROZEN"),
    ("post", "/v1/villages/{code}/unfreeze", "ALREADY_FROZEN"),
    # Whole-village credit lists a household's refusal as a skip (200); only the village-wide
    # ones refuse the call (services/loans/village_credit.py).
    *(
        ("post", "/v1/villages/{village_code}/credit-lines", code)
        for code in ("BLACKLISTED", "CREDIT_LINE_EXISTS", "NO_CREDIT_GRADE", "RATING_NOT_CERTIFIED")
    ),
    # Notify's upstream.get picks its 503 by the service it is given (services/notify/upstream.py):
    # a route that reads risk alone never answers another service's.
    *(
        ("get", path, code)
        for path in (
            "/v1/dashboard/overview",
            "/v1/dashboard/villages/{code}/history",
            "/v1/dashboard/townships/{code}/history",
            "/v1/dashboard/credit-lists",
            "/v1/console/townships/{code}",
            "/v1/console/decisions",
            "/v1/console/titles",
        )
        for code in ("LOANS_UNAVAILABLE", "REGISTRY_UNAVAILABLE", "SCORING_UNAVAILABLE")
    ),
    # The monthly report reads risk and loans only; upstream.get names all four services' codes.
    *(("get", "/v1/reports/monthly/{period}", code) for code in ("REGISTRY_UNAVAILABLE", "SCORING_UNAVAILABLE")),
}


@cache
def _app(service: str) -> FastAPI:
    tmp = Path(tempfile.mkdtemp())
    runtime = ServiceRuntime(load_spec(service), "sqlite+aiosqlite://", EmbeddedBus(tmp / "bus.db"), CommonSettings())
    return create_app(runtime, "t", manage_runtime=False)


def _document(service: str) -> dict[str, Any]:
    document: dict[str, Any] = _app(service).openapi()
    return document


def _routes(service: str) -> Iterator[tuple[str, str, APIRoute]]:
    """(path, method, route) of every documented operation; FastAPI >= 0.165 keeps included
    routers as they are, older ones copy their routes into the app."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # pragma: no cover - older FastAPI
        pairs: Iterator[tuple[Any, str]] = ((r, r.path_format) for r in _app(service).routes)
    else:
        pairs = ((c.original_route, c.path_format) for c in iter_route_contexts(_app(service).routes))
    for route, path in pairs:
        if isinstance(route, APIRoute) and route.include_in_schema:
            for method in sorted(route.methods):
                yield path, method.lower(), route


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield path, method, operation


def _documented(document: dict[str, Any]) -> set[tuple[int, str]]:
    return {
        (int(status), code)
        for _, _, operation in _operations(document)
        for status, response in operation["responses"].items()
        for code in response.get(CODES, [])
    }


def _raised_in_code() -> set[tuple[int, str]]:
    """Every (status, code) a Problem is built with, anywhere in services/ and shared/, and
    the one HTTPException raised on purpose, shared/ratelimit.py's 429 (shared/web.py gives
    it its code)."""
    raised = {(429, _STATUS_CODES[429][0])}
    for package in ("services", "shared"):
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" not in path.parts:
                raised |= set(refusals(ast.parse(path.read_text(encoding="utf-8"))))
    return raised


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_the_committed_document_is_the_served_one(service: str) -> None:
    committed = (DOCS_DIR / f"{service}.json").read_text(encoding="utf-8")
    # On failure: python -m vcredit openapi --write docs/openapi, and review the diff.
    assert committed == render(served_document(service))


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_the_document_is_valid_openapi(service: str) -> None:
    validate(_document(service))


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_every_error_is_the_problem_that_is_sent(service: str) -> None:
    document = _document(service)
    schemas = document["components"]["schemas"]
    assert "HTTPValidationError" not in schemas and "ValidationError" not in schemas
    assert schemas["Problem"]["additionalProperties"] is True
    assert set(schemas["Problem"]["required"]) == {"type", "title", "status", "code", "detail"}
    assert schemas["Problem"]["properties"]["detail"]["type"] == "string"
    for path, method, operation in _operations(document):
        errors = {s: r for s, r in operation["responses"].items() if int(s) >= 400}
        assert "503" in errors, (method, path)
        for status, response in errors.items():
            assert response["content"] == {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}
            assert response[CODES], (method, path, status)
            assert all(code in response["description"] for code in response[CODES])
        if operation.get("security"):
            assert {"401", "403", "429"} <= set(errors), (method, path)
        if "requestBody" in operation:
            assert {"413", "422"} <= set(errors), (method, path)
        if any(p["in"] == "path" for p in operation.get("parameters", [])) and path.startswith("/v1/"):
            assert "422" in errors, (method, path)


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_each_operation_declares_the_problems_its_code_raises(service: str) -> None:
    document = _document(service)
    missing = []
    for path, method, route in _routes(service):
        responses = document["paths"][path][method]["responses"]
        for status, codes in dependant_codes(route.dependant).items():
            declared = set(responses.get(str(status), {}).get(CODES, []))
            codes = {c for c in codes if (method, path, c) not in NOT_ANSWERED}
            if codes - declared:
                missing.append(f"{method.upper()} {path} {status}: {sorted(codes - declared)}")
    # Declare them in the route's decorator: responses=problems({status: [codes]}).
    assert missing == []


def test_every_problem_code_raised_is_documented_and_every_documented_one_raised() -> None:
    documented = set().union(*(_documented(_document(s)) for s in SERVICE_NAMES))
    raised = _raised_in_code()
    assert raised - documented - UNDOCUMENTED == set()
    assert documented - raised == set()
    assert {(409, "ID_NUMBER_REGISTERED"), (409, "RATING_NOT_CERTIFIED"), (409, "LIMIT_EXCEEDED")} <= documented


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_idempotency_key_is_declared_exactly_where_it_is_honoured(service: str) -> None:
    document = _document(service)
    for path, method, route in _routes(service):
        parameters = {p["name"]: p for p in document["paths"][path][method].get("parameters", [])}
        honours = idempotent in function_names(route.endpoint)
        assert ("Idempotency-Key" in parameters) == honours, (method, path)
        if honours:
            key = parameters["Idempotency-Key"]
            assert key["required"] is False
            assert key["schema"] == key["schema"] | {"type": "string", "minLength": 1, "maxLength": 255}


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_query_purpose_is_published_as_required(service: str) -> None:
    for path, method, operation in _operations(_document(service)):
        for parameter in operation.get("parameters", []):
            if parameter["name"] == "X-Query-Purpose":
                assert parameter["required"] is True, (method, path)
                assert parameter["schema"]["type"] == "string"
                assert "QUERY_PURPOSE_REQUIRED" in operation["responses"]["422"][CODES]


def _properties(node: Any, name: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        for key, value in node.get("properties", {}).items():
            yield key, value
        for key, value in node.items():
            yield from _properties(value, key)
    elif isinstance(node, list):
        for value in node:
            yield from _properties(value, name)


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_timestamps_are_date_time_and_kinds_are_enums(service: str) -> None:
    schemas = _document(service)["components"]["schemas"]
    for name, schema in _properties(schemas):
        if name.endswith("_at") and "Problem" not in name:
            options = schema.get("anyOf", [schema])
            assert any(o.get("format") == "date-time" for o in options), (name, schema)
    enums = {
        "loans": {"LoanOut": ("status", "classification", "repayment_method", "day_count")},
        "registry": {"BusinessOut": ("kind",), "ObjectionOut": ("status", "subject_kind")},
        "scoring": {"NoticeObjectionOut": ("status",), "RatingOut": ("grade",)},
        "risk": {"ListEntryOut": ("list", "tier", "status"), "FundEntryOut": ("kind",), "TitleOut": ("kind",)},
    }.get(service, {})
    for model, fields in enums.items():
        for field in fields:
            schema = schemas[model]["properties"][field]
            assert any("enum" in o or "$ref" in o for o in schema.get("anyOf", [schema])), (model, field)
    if service == "registry":
        assert schemas["HouseholdOut"]["properties"]["profile"] == {"$ref": "#/components/schemas/Profile"}
        assert schemas["BusinessOut"]["properties"]["profile"] == {"$ref": "#/components/schemas/Profile"}
