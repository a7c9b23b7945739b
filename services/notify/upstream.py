"""Reads of the other services' APIs, server-side, with the caller's own bearer token, so the
dashboard and the reports show exactly what the caller may see at each service.

Each service's base URL is a notify setting (``VCREDIT_NOTIFY_<SERVICE>_URL``); a service
that cannot be reached, or answers anything but 200, 401, 403 or 404, is a 503
``<SERVICE>_UNAVAILABLE`` (``RISK_UNAVAILABLE`` as before); a 404 is the caller's 404, a 401
or 403 the caller's 403 ``UPSTREAM_FORBIDDEN`` (the source refused the caller's token).
"""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import quote

import httpx
from fastapi import Request

from services.notify import context
from shared.audit import HEADER as QUERY_PURPOSE
from shared.paging import MAX_PAGE
from shared.problems import Problem
from shared.tracing import instrument_client_for

Upstream = Literal["registry", "scoring", "loans", "risk"]


def base_url(service: Upstream) -> str:
    settings = context.settings()
    urls: dict[Upstream, str] = {
        "registry": settings.registry_url,
        "scoring": settings.scoring_url,
        "loans": settings.loans_url,
        "risk": settings.risk_url,
    }
    return urls[service]


async def get(request: Request, service: Upstream, path: str, *, purpose: str | None = None, **params: Any) -> Any:
    """One GET of ``service``'s ``path`` as the caller; its JSON. ``purpose``: the caller's
    stated purpose, sent on as ``X-Query-Purpose`` to a source that audits the read."""
    settings = context.settings()
    url = base_url(service)
    headers = {"Authorization": request.headers.get("Authorization", "")}
    if purpose is not None:
        headers[QUERY_PURPOSE] = quote(purpose, safe="")
    try:
        async with httpx.AsyncClient(base_url=url, timeout=settings.risk_timeout_seconds) as client:
            instrument_client_for(request, client)
            response = await client.get(path, params=params, headers=headers)
    except httpx.HTTPError as exc:
        raise _unavailable(service, f"{url}: {type(exc).__name__}") from exc
    if response.status_code == 404:
        raise Problem(404, "NOT_FOUND", "Not found", f"{service.capitalize()} has no {path}.")
    if response.status_code in (401, 403):
        # The source refused the caller (its own scopes or binding): the caller's 403, not
        # an outage. A code of its own: the endpoint's declared scope was held (FORBIDDEN is
        # that check's).
        raise Problem(403, "UPSTREAM_FORBIDDEN", "Forbidden at the source", f"{service} refused the caller on {path}.")
    if response.status_code != 200:
        raise _unavailable(service, f"{service} answered {response.status_code} on {path}")
    return response.json()


def _unavailable(service: Upstream, detail: str) -> Problem:
    # One literal code per service, so each is documented where an endpoint reads that service.
    if service == "registry":
        return Problem(503, "REGISTRY_UNAVAILABLE", "Registry unavailable", detail)
    if service == "scoring":
        return Problem(503, "SCORING_UNAVAILABLE", "Scoring unavailable", detail)
    if service == "loans":
        return Problem(503, "LOANS_UNAVAILABLE", "Loans unavailable", detail)
    return Problem(503, "RISK_UNAVAILABLE", "Risk unavailable", detail)


async def get_all(
    request: Request, service: Upstream, path: str, *, purpose: str | None = None, **params: Any
) -> list[Any]:
    """Every item of one of ``service``'s lists, page by page (each answers at most MAX_PAGE)."""
    items: list[Any] = []
    while True:
        page: list[Any] = await get(
            request, service, path, purpose=purpose, limit=MAX_PAGE, offset=len(items), **params
        )
        items.extend(page)
        if len(page) < MAX_PAGE:
            return items
