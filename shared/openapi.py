"""The OpenAPI document tells the truth about errors (issue 22): every operation declares the
RFC 9457 problems it can answer, as ``application/problem+json`` with the ``Problem`` schema
of the body that is actually sent (shared/problems.py, shared/web.py), and the codes of each
status.

Two sources, one place that merges them (``customise``, installed by shared/runtime.py):

- what every operation of a kind answers, read from the generated operation itself: 401,
  403 and 429 where it needs a token, 413 and 422 where it takes a body, 422 where it takes
  parameters, 409 and 422 where it honours ``Idempotency-Key``, 422 where it needs
  ``X-Query-Purpose``, 503 everywhere (the database can be away);
- what a route itself refuses, declared in its decorator: ``responses=problems({404:
  ["LOAN_NOT_FOUND"], 409: ["LOAN_CLOSED"]})``. tests/unit/project/test_openapi_contract.py
  checks these against the ``Problem(...)`` calls reachable from the route.

FastAPI's own 422 (``HTTPValidationError``, ``detail`` as a list) describes a body this
system never sends, so it is replaced everywhere; a client generated from it crashed on
every error (issue 22).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field

from shared.problems import PROBLEM_JSON

PROBLEM_REF = "#/components/schemas/Problem"
CODES = "x-problem-codes"
# A header that the server refuses to go without although its Python parameter is optional
# (so that its absence is answered with the header's own problem code, not FastAPI's): the
# parameter's schema carries this mark and ``customise`` publishes the header as required.
REQUIRED_HEADER = "x-vcredit-required"
# A schema published as a reference to a named component although its Python type is looser
# (registry's profile answers stay the dicts they were, typed as Profile): ``customise``
# replaces ``{SCHEMA_REF: "Profile"}`` with ``{"$ref": "#/components/schemas/Profile"}``.
SCHEMA_REF = "x-vcredit-ref"

_TITLES = {
    400: "Bad request",
    401: "Authentication required",
    403: "Forbidden",
    404: "Not found",
    409: "Conflict",
    413: "Payload too large",
    422: "Invalid request",
    429: "Too many requests",
    503: "Service unavailable",
}
# shared/web.py authorize and shared/ratelimit.py: every operation that needs a token.
_AUTHENTICATED = {401: ("UNAUTHENTICATED", "INVALID_TOKEN"), 403: ("FORBIDDEN",), 429: ("RATE_LIMITED",)}
# shared/bodylimit.py, shared/jsonbody.py and FastAPI's validation (shared/web.py).
_BODY = {413: ("PAYLOAD_TOO_LARGE",), 422: ("VALIDATION_FAILED",)}
# shared/idempotency.py.
_IDEMPOTENT = {409: ("IDEMPOTENCY_KEY_REUSED", "IDEMPOTENT_REQUEST_IN_PROGRESS"), 422: ("VALIDATION_FAILED",)}
# shared/audit.py parse_purpose.
_PURPOSE = {422: ("QUERY_PURPOSE_REQUIRED", "QUERY_PURPOSE_INVALID")}
# shared/web.py: a database restart or failover, on any operation.
_ALWAYS = {503: ("DATABASE_UNAVAILABLE",)}


class ValidationItem(BaseModel):
    field: str = Field(description="the offending input: a body path, or query./path./header. and its name")
    message: str
    type: str = Field(description="pydantic's error type, or duplicate_key")


class Problem(BaseModel):
    """An RFC 9457 problem document, as every error of every service is sent
    (``application/problem+json``). ``code`` is the stable, machine-readable reason (API.md);
    further members may accompany it (``errors``, ``field``, ``limit``, ...)."""

    model_config = ConfigDict(extra="allow", title="Problem")

    type: str = Field(description="URI of the problem type: https://vcredit.example/problems/<code in kebab case>")
    title: str
    status: int = Field(ge=100, le=599)
    code: str = Field(description="the stable reason, e.g. LIMIT_EXCEEDED; listed per status in each operation")
    detail: str = Field(description="what happened, for a person")
    instance: str | None = Field(default=None, description="the path of the request that was refused")
    field: str | None = Field(default=None, description="the input at fault, when there is one")
    errors: list[ValidationItem] | None = Field(
        default=None, description="VALIDATION_FAILED: every invalid input, with its field"
    )


def problems(
    declared: Mapping[int, Iterable[str]], notes: Mapping[int, str] | None = None
) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route decorator: the problem codes the route itself answers, by
    status, with an optional note per status saying when. The statuses every operation of
    its kind answers are added by ``customise``."""
    notes = notes or {}
    return {
        status: {"description": notes.get(status, _TITLES.get(status, "Error")), CODES: sorted(codes)}
        for status, codes in declared.items()
    }


def _operations(document: dict[str, Any]) -> Iterable[dict[str, Any]]:
    for item in document.get("paths", {}).values():
        for method, operation in item.items():
            if method in ("get", "put", "post", "delete", "patch", "head", "options", "trace"):
                yield operation


def _implied(operation: dict[str, Any]) -> dict[int, tuple[str, ...]]:
    """The problems an operation answers because of what it is."""
    implied: dict[int, set[str]] = {}

    def add(table: Mapping[int, tuple[str, ...]]) -> None:
        for status, codes in table.items():
            implied.setdefault(status, set()).update(codes)

    parameters = operation.get("parameters", [])
    if operation.get("security"):
        add(_AUTHENTICATED)
    if "requestBody" in operation:
        add(_BODY)
    if parameters:
        add({422: ("VALIDATION_FAILED",)})
    names = {p["name"] for p in parameters if p.get("in") == "header"}
    if "Idempotency-Key" in names:
        add(_IDEMPOTENT)
    if "X-Query-Purpose" in names:
        add(_PURPOSE)
    add(_ALWAYS)
    return {status: tuple(sorted(codes)) for status, codes in implied.items()}


def _problem_response(status: int, codes: Iterable[str], description: str | None) -> dict[str, Any]:
    listed = sorted(set(codes))
    title = description if description and description != "Validation Error" else _TITLES.get(status, "Error")
    text = f"{title}. Codes: {', '.join(listed)}." if listed else f"{title}."
    return {
        "description": text,
        CODES: listed,
        "content": {PROBLEM_JSON: {"schema": {"$ref": PROBLEM_REF}}},
    }


def _header_marks(operation: dict[str, Any]) -> None:
    for parameter in operation.get("parameters", []):
        if parameter.get("in") != "header":
            continue
        schema = parameter.get("schema", {})
        if schema.pop(REQUIRED_HEADER, False):
            parameter["required"] = True
        # FastAPI writes an optional header as anyOf [string, null]; a header is absent or a
        # string, never null, and optional already says it may be absent.
        strings = [s for s in schema.get("anyOf", []) if s.get("type") != "null"]
        if len(strings) == 1:
            del schema["anyOf"]
            schema.update(strings[0])


def _references(node: Any) -> Any:
    if isinstance(node, dict):
        if SCHEMA_REF in node:
            return {"$ref": f"#/components/schemas/{node[SCHEMA_REF]}"}
        return {k: _references(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_references(v) for v in node]
    return node


def customise(document: dict[str, Any]) -> dict[str, Any]:
    """The document FastAPI generated, with every operation's problems declared, the
    ``Problem`` schema in place of FastAPI's validation error, and required headers marked."""
    document = _references(copy.deepcopy(document))
    for operation in _operations(document):
        _header_marks(operation)
        responses: dict[str, Any] = operation.setdefault("responses", {})
        declared: dict[int, set[str]] = {}
        descriptions: dict[int, str] = {}
        for key, response in list(responses.items()):
            if key.isdigit() and int(key) >= 400:
                declared[int(key)] = set(response.get(CODES, []))
                descriptions[int(key)] = response.get("description", "")
        for status, codes in _implied(operation).items():
            declared.setdefault(status, set()).update(codes)
        for status in sorted(declared):
            responses[str(status)] = _problem_response(status, declared[status], descriptions.get(status))
        operation["responses"] = dict(sorted(responses.items()))
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    problem_schema = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(problem_schema.pop("$defs", {}))
    schemas["Problem"] = problem_schema
    document["components"]["schemas"] = dict(sorted(schemas.items()))
    return document


def install(app: FastAPI) -> None:
    """Serve ``customise`` of what FastAPI generates as the app's document (/openapi.json,
    /docs), recomputed only when FastAPI regenerates its own."""
    generate = app.openapi
    cache: dict[str, Any] = {}

    def openapi() -> dict[str, Any]:
        generated = generate()
        if cache.get("source") is not generated:
            cache["source"] = generated
            cache["document"] = customise(generated)
        document: dict[str, Any] = cache["document"]
        return document

    app.openapi = openapi  # type: ignore[method-assign]
