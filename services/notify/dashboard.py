"""The dashboard page (``GET /``) and the JSON it draws.

The HTML, its script and style (``static/dashboard.{js,css}``: files, as the services'
Content-Security-Policy allows no inline script or style, shared/security_headers.py) and
its vendored chart library (uPlot 1.6.32, MIT, ``static/vendor/``) are public: they contain
no data. The page asks for a token in an input box (never in a URL: no query string or
fragment carries it) and calls the endpoints below, and the event stream, with it in the
``Authorization`` header.
Those read risk's API server-side (``VCREDIT_NOTIFY_RISK_URL``) with the caller's own
bearer token, so the dashboard shows exactly what the caller may see at risk.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, HTMLResponse

from services.notify import upstream
from services.notify.domain.trend import DayFigures, township_trend
from shared.openapi import problems
from shared.paging import Limit, Offset
from shared.problems import Problem
from shared.web import scope

STATIC = Path(__file__).parent / "static"
VENDOR = {
    "uPlot.iife.min.js": "application/javascript",
    "uPlot.min.css": "text/css",
    "LICENSE": "text/plain",
}
OWN = {"console.js": "application/javascript", "console.css": "text/css"}

page = APIRouter(tags=["dashboard"])
data = APIRouter(prefix="/v1/dashboard", tags=["dashboard"])


@page.get("/", response_class=HTMLResponse, include_in_schema=False)
async def dashboard_page() -> HTMLResponse:
    return HTMLResponse((STATIC / "console.html").read_text(encoding="utf-8"))


@page.get("/static/{name}", include_in_schema=False)
async def own_static(name: str) -> FileResponse:
    if name not in OWN:
        raise Problem(404, "NOT_FOUND", "Not found", f"No static file {name}.")
    return FileResponse(STATIC / name, media_type=OWN[name])


@page.get("/static/vendor/uplot-1.6.32/{name}", include_in_schema=False)
async def vendored(name: str) -> FileResponse:
    if name not in VENDOR:
        raise Problem(404, "NOT_FOUND", "Not found", f"No static file {name}.")
    return FileResponse(STATIC / "vendor" / "uplot-1.6.32" / name, media_type=VENDOR[name])


async def _risk(request: Request, path: str, **params: Any) -> Any:
    return await upstream.get(request, "risk", path, **params)


async def _risk_all(request: Request, path: str, **params: Any) -> list[Any]:
    return await upstream.get_all(request, "risk", path, **params)


def _history_path(code: str) -> str:
    # The code is a path segment of risk's URL: escaped, it cannot reach another endpoint.
    return f"/v1/villages/{quote(code, safe='')}/history"


# The data below are the page's own aggregates, one point per business day (about 250 a
# year), not row lists: they are not paged (shared/paging.py).
@data.get(
    "/overview",
    dependencies=[scope("bulletins:read")],
    responses=problems({403: ["UPSTREAM_FORBIDDEN"], 404: ["NOT_FOUND"], 503: ["RISK_UNAVAILABLE"]}),
)
async def overview(request: Request) -> dict[str, Any]:
    """Townships, villages, the fund and the indicators in one call (what the page draws first)."""
    return {
        "townships": await _risk_all(request, "/v1/townships"),
        "villages": await _risk_all(request, "/v1/villages"),
        "fund": await _risk(request, "/v1/fund"),
        # Added (issue 26): coverage and NPL by township (seed 003) and risk's own thresholds.
        "indicators": await _risk(request, "/v1/indicators"),
    }


@data.get(
    "/villages/{code}/history",
    dependencies=[scope("bulletins:read")],
    responses=problems({403: ["UPSTREAM_FORBIDDEN"], 404: ["NOT_FOUND"], 503: ["RISK_UNAVAILABLE"]}),
)
async def village_history(code: str, request: Request) -> list[dict[str, Any]]:
    history: list[dict[str, Any]] = await _risk_all(request, _history_path(code))
    return history


@data.get(
    "/townships/{code}/history",
    dependencies=[scope("bulletins:read")],
    responses=problems({403: ["UPSTREAM_FORBIDDEN"], 404: ["NOT_FOUND"], 503: ["RISK_UNAVAILABLE"]}),
)
async def township_history(code: str, request: Request) -> list[dict[str, str]]:
    villages = await _risk_all(request, "/v1/villages", township_code=code)
    histories = {
        v["code"]: [
            DayFigures(date.fromisoformat(d["business_date"]), Decimal(d["outstanding"]), Decimal(d["non_performing"]))
            for d in await _risk_all(request, _history_path(v["code"]))
        ]
        for v in villages
    }
    return [
        {"business_date": str(day), "outstanding": f"{o:.2f}", "non_performing": f"{n:.2f}", "npl_ratio": f"{r:.4f}"}
        for day, o, n, r in township_trend(histories)
    ]


# --- credit lists (issue 11, public disclosure) ----------------------------------------------
# Risk's public endpoints do the masking and the "in force and published" filter; this only
# narrows the search. The caller's own token goes to risk (as above), so risk enforces
# lists:read itself and the page can never show more than the caller could read at risk.
# The bounds are checked here too, so a bad search is the caller's 422 and not a 503.
ListName = Annotated[str | None, Query(max_length=50, description="part of the name (substring)")]
# [0-9], not \d: \d would let full-width and other Unicode digits through to risk.
VillageCode = Annotated[str | None, Query(pattern=r"^[0-9]{1,12}$", description="a village's code")]


@data.get(
    "/credit-lists",
    dependencies=[scope("lists:read")],
    responses=problems({403: ["UPSTREAM_FORBIDDEN"], 404: ["NOT_FOUND"], 503: ["RISK_UNAVAILABLE"]}),
)
async def credit_lists(
    request: Request,
    kind: Annotated[Literal["red", "black"] | None, Query(alias="list")] = None,
    name: ListName = None,
    village_code: VillageCode = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> dict[str, Any]:
    """The red and black lists in force and the credit repair decisions, identifiers masked,
    as risk publishes them (``/v1/public/credit-lists``, ``/v1/public/credit-repairs``):
    ``limit``/``offset`` page each of the two lists; a list shorter than ``limit`` is complete."""
    search = {k: v for k, v in (("name", name), ("village_code", village_code)) if v}
    entries = await _risk(
        request, "/v1/public/credit-lists", limit=limit, offset=offset, **search, **({"list": kind} if kind else {})
    )
    # Repair is of a black-list entry only: a search of the red list has none to show.
    repairs = (
        [] if kind == "red" else await _risk(request, "/v1/public/credit-repairs", limit=limit, offset=offset, **search)
    )
    return {"lists": entries, "repairs": repairs}
