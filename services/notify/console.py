"""The government console's data (issue 26 items 1-3): the overview as of the business date,
the township and village drill-down, the decision log and the year's titles.

Every figure is read from its source service's API as the caller (services/notify/upstream.py,
the caller's own token, so each source enforces its own scopes) and carries where it comes
from (``source``: the service and path) and where the page shows its detail (``link``: a
console anchor). Money is a decimal string (the page formats it); counts are integers.

Which endpoints the public view may use (docs/console.md): the published overview, the
township drill-down, the village page, the decision log and the titles are aggregates or
published decisions (scopes ``bulletins:read``, ``risk:read``, ``titles:read``, which the
public role holds); the full overview (``ledger:read``: it reads the ledger, the losses and
the subsidy claims) and a village's borrowers (``lending:read``: masked, an audited read
with the caller's ``X-Query-Purpose``) are the government's, the bank's and the operator's.
"""

from __future__ import annotations

from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Header, Path, Query, Request

from services.notify import context, upstream
from services.notify.domain.console import PARTIES, band, losses_of_year
from shared.audit import HEADER as QUERY_PURPOSE
from shared.audit import parse_purpose
from shared.money import format_money
from shared.openapi import REQUIRED_HEADER, problems
from shared.paging import Limit, Offset
from shared.web import CurrentPrincipal, scope

router = APIRouter(prefix="/v1/console", tags=["console"])

# Codes are digits (registry's codes): checked here, a bad one is the caller's 422, and as a
# path segment of a source's URL it cannot reach another endpoint.
Code = Annotated[str, Path(pattern=r"^[0-9]{1,12}$")]

ALL_SOURCES = {
    403: ["UPSTREAM_FORBIDDEN"],
    404: ["NOT_FOUND"],
    503: ["LOANS_UNAVAILABLE", "REGISTRY_UNAVAILABLE", "RISK_UNAVAILABLE", "SCORING_UNAVAILABLE"],
}


def _figure(value: str | int, unit: str, source: str, link: str) -> dict[str, Any]:
    return {"value": value, "unit": unit, "source": source, "link": link}


def _money(value: Decimal | str) -> str:
    return format_money(Decimal(value))


def _share(part: Decimal, whole: Decimal) -> str:
    # Four places, half up, as risk shows ratios.
    if whole == 0:
        return "0.0000"
    return f"{(part / whole).quantize(Decimal('0.0001'), rounding=ROUND_HALF_UP):.4f}"


async def _threshold(request: Request) -> tuple[Decimal, dict[str, Any]]:
    indicators = await upstream.get(request, "risk", "/v1/indicators")
    return Decimal(indicators["village_npl_threshold"]), indicators


def _bands() -> Decimal:
    return context.settings().console_green_fraction


async def _published(request: Request) -> tuple[date, dict[str, dict[str, Any]]]:
    """The business date and the figures every role may read (scope ``bulletins:read`` or
    ``risk:read`` at their sources, which the public holds): aggregates, no person."""
    today = date.fromisoformat((await upstream.get(request, "loans", "/v1/business-date"))["business_date"])
    registry = await upstream.get(request, "registry", "/v1/statistics")
    scoring = await upstream.get(request, "scoring", "/v1/statistics")
    threshold, indicators = await _threshold(request)
    district = indicators["district"]
    portfolio = await upstream.get(request, "loans", "/v1/portfolio")
    frozen = await upstream.get_all(request, "risk", "/v1/villages", frozen="true")
    townships = await upstream.get_all(request, "risk", "/v1/townships")
    fund = await upstream.get(request, "risk", "/v1/fund")
    capacity, used = Decimal(fund["capacity"]), Decimal(fund["outstanding"])
    return today, {
        "households_registered": _figure(registry["households"], "count", "registry /v1/statistics", "#townships"),
        "households_rated": _figure(scoring["households_rated"], "count", "scoring /v1/statistics", "#townships"),
        "households_certified": _figure(
            scoring["households_certified"], "count", "scoring /v1/statistics", "#townships"
        ),
        "credit_household_coverage": _figure(district["coverage"], "ratio", "risk /v1/indicators", "#indicators"),
        "coverage_points": _figure(district["coverage_points"], "points", "risk /v1/indicators", "#indicators"),
        "credit_lines": _figure(portfolio["credit_lines"], "count", "loans /v1/portfolio", "#townships"),
        "credit_limit": _figure(_money(portfolio["credit_limit"]), "yuan", "loans /v1/portfolio", "#townships"),
        "loans_outstanding": _figure(portfolio["loans_outstanding"], "count", "loans /v1/portfolio", "#townships"),
        "principal_outstanding": _figure(
            _money(portfolio["principal_outstanding"]), "yuan", "loans /v1/portfolio", "#townships"
        ),
        "district_npl_ratio": _figure(district["npl_ratio"], "ratio", "risk /v1/indicators", "#townships"),
        "npl_threshold": _figure(f"{threshold:.4f}", "ratio", "risk /v1/indicators", "#townships"),
        "villages_frozen": _figure(len(frozen), "count", "risk /v1/villages?frozen=true", "#decisions"),
        "townships_halted": _figure(
            sum(bool(t["halted"]) for t in townships), "count", "risk /v1/townships", "#decisions"
        ),
        "fund_balance": _figure(_money(fund["balance"]), "yuan", "risk /v1/fund", "#fund"),
        "fund_capacity": _figure(_money(capacity), "yuan", "risk /v1/fund", "#fund"),
        "fund_used": _figure(_money(used), "yuan", "risk /v1/fund", "#fund"),
        "fund_used_share": _figure(_share(used, capacity), "ratio", "risk /v1/fund", "#fund"),
    }


@router.get("/overview", dependencies=[scope("ledger:read")], responses=problems(ALL_SOURCES))
async def overview(request: Request) -> dict[str, Any]:
    """The district as of loans' business date: every figure with its ``source`` (service and
    path) and ``link`` (the console's anchor for its detail). Losses are those written off in
    the business date's year, summed by the party that bore them (shares as booked, recovered,
    net); subsidy claims are those whose period ends in that year. ``/v1/console/public`` is
    its published part, for every role."""
    today, figures = await _published(request)
    year = today.year
    losses = losses_of_year(await upstream.get_all(request, "risk", "/v1/losses"), year)
    accounts = (await upstream.get(request, "loans", "/v1/ledger/trial-balance"))["accounts"]
    claims = [
        c
        for c in await upstream.get_all(request, "loans", "/v1/subsidy-claims")
        if date.fromisoformat(c["period_end"]).year == year
    ]
    figures |= {
        "losses_loans": _figure(losses.loans, "count", "risk /v1/losses", "#losses"),
        "losses_total": _figure(_money(losses.loss), "yuan", "risk /v1/losses", "#losses"),
        "subsidy_accrued_unclaimed": _figure(
            _money(accounts.get("subsidy_receivable", "0")), "yuan", "loans /v1/ledger/trial-balance", "#subsidy"
        ),
        "subsidy_claimed_unpaid": _figure(
            _money(accounts.get("subsidy_claimed", "0")), "yuan", "loans /v1/ledger/trial-balance", "#subsidy"
        ),
        "subsidy_claims": _figure(len(claims), "count", "loans /v1/subsidy-claims", "#subsidy"),
        "subsidy_claims_claimed": _figure(
            _money(sum((Decimal(c["claimed"]) for c in claims), Decimal("0"))),
            "yuan",
            "loans /v1/subsidy-claims",
            "#subsidy",
        ),
        "subsidy_claims_paid": _figure(
            _money(sum((Decimal(c["paid"]) for c in claims), Decimal("0"))),
            "yuan",
            "loans /v1/subsidy-claims",
            "#subsidy",
        ),
    }
    for party in PARTIES:
        figures[f"losses_{party}"] = _figure(_money(losses.shares[party]), "yuan", "risk /v1/losses", "#losses")
        figures[f"losses_{party}_recovered"] = _figure(
            _money(losses.recovered[party]), "yuan", "risk /v1/losses", "#losses"
        )
        figures[f"losses_{party}_net"] = _figure(_money(losses.net(party)), "yuan", "risk /v1/losses", "#losses")
    return {"business_date": str(today), "year": year, "figures": figures}


@router.get("/public", dependencies=[scope("bulletins:read")], responses=problems(ALL_SOURCES))
async def public(request: Request) -> dict[str, Any]:
    """The overview's published figures (households, coverage, lines and loans in total, NPL,
    freezes and halts, the risk fund), as of loans' business date: aggregates, no person, no
    loss or subsidy; what the public view of the console shows."""
    today, figures = await _published(request)
    return {"business_date": str(today), "year": today.year, "figures": figures}


@router.get("/me", dependencies=[scope("bulletins:read")])
async def me(principal: CurrentPrincipal) -> dict[str, Any]:
    """Who the token is and which scopes it holds, so the console shows only what the caller
    may open (the services still check each call)."""
    return {"name": principal.name, "roles": sorted(principal.roles), "scopes": sorted(principal.scopes)}


def _village_row(v: dict[str, Any], threshold: Decimal, halted: bool) -> dict[str, Any]:
    return {
        "code": v["code"],
        "name": v["name"],
        "npl_ratio": v["npl_ratio"],
        "outstanding": v["outstanding"],
        "non_performing": v["non_performing"],
        "frozen": v["frozen"],
        "frozen_since": v["frozen_since"],
        "manual_override": v["manual_override"],
        "override_reason": v["override_reason"],
        "township_halted": halted,
        "band": band(Decimal(v["npl_ratio"]), threshold, _bands()),
        "link": f"#village/{v['code']}",
    }


def _bands_out(threshold: Decimal) -> dict[str, str]:
    return {"threshold": f"{threshold:.4f}", "green_at_most": f"{threshold * _bands():.4f}"}


@router.get(
    "/townships/{code}",
    dependencies=[scope("risk:read")],
    responses=problems({403: ["UPSTREAM_FORBIDDEN"], 404: ["NOT_FOUND"], 503: ["RISK_UNAVAILABLE"]}),
)
async def township(code: Code, request: Request) -> dict[str, Any]:
    """A township's figures and its villages, each with its colour ``band`` against risk's
    village threshold: red over it, green at or under ``VCREDIT_NOTIFY_CONSOLE_GREEN_FRACTION``
    of it (0.5 by default), amber between. Aggregates only: safe for the public view."""
    threshold, _ = await _threshold(request)
    t = await upstream.get(request, "risk", f"/v1/townships/{quote(code, safe='')}")
    villages = await upstream.get_all(request, "risk", "/v1/villages", township_code=code)
    return {
        "township": t,
        "bands": _bands_out(threshold),
        "villages": [_village_row(v, threshold, bool(t["halted"])) for v in villages],
    }


def _decision(d: dict[str, Any]) -> dict[str, Any]:
    return {
        "kind": d["kind"],
        "code": d["code"],
        "manual": d["manual"],
        "reason": d["reason"],
        "decided_by": d["decided_by"],
        "business_date": d["business_date"],
        "decided_at": d["decided_at"],
        "figures": d["figures"],
    }


Purpose = Annotated[
    str | None,
    Header(
        alias=QUERY_PURPOSE,
        description="Required: why the caller reads the village's borrowers (征信业管理条例 §18, §20), "
        "percent-encoded UTF-8; sent on to loans, which records the read of each loan listed.",
        json_schema_extra={REQUIRED_HEADER: True, "minLength": 1},
    ),
]


@router.get(
    "/villages/{code}",
    dependencies=[scope("risk:read")],
    responses=problems(ALL_SOURCES),
)
async def village(code: Code, request: Request) -> dict[str, Any]:
    """A village: its figures and band, its NPL trend (risk's history) with the threshold for
    the chart's line, and its decisions (automatic and manual, reason and deciding principal).
    Aggregates and published decisions, no person: safe for the public view (its borrowers
    are ``/v1/console/villages/{code}/borrowers``, an audited read)."""
    threshold, _ = await _threshold(request)
    segment = quote(code, safe="")
    v = await upstream.get(request, "risk", f"/v1/villages/{segment}")
    t = await upstream.get(request, "risk", f"/v1/townships/{quote(v['township_code'], safe='')}")
    history = await upstream.get_all(request, "risk", f"/v1/villages/{segment}/history")
    decisions = await upstream.get_all(request, "risk", "/v1/decisions", code=code)
    registry = await upstream.get(request, "registry", "/v1/statistics", village_code=code)
    scoring = await upstream.get(request, "scoring", "/v1/statistics", village_code=code)
    portfolio = await upstream.get(request, "loans", "/v1/portfolio", village_code=code)
    return {
        "village": _village_row(v, threshold, bool(t["halted"])),
        "township": {"code": t["code"], "name": t["name"], "halted": t["halted"]},
        "bands": _bands_out(threshold),
        "figures": {
            "households_registered": registry["households"],
            "households_rated": scoring["households_rated"],
            "households_certified": scoring["households_certified"],
            "credit_lines": portfolio["credit_lines"],
            "loans_outstanding": portfolio["loans_outstanding"],
            "principal_outstanding": portfolio["principal_outstanding"],
        },
        "trend": {
            "threshold": f"{threshold:.4f}",
            "days": [
                {k: d[k] for k in ("business_date", "outstanding", "non_performing", "npl_ratio")} for d in history
            ],
        },
        "decisions": [_decision(d) for d in decisions],
    }


@router.get(
    "/villages/{code}/borrowers",
    dependencies=[scope("lending:read")],
    responses=problems(
        {
            403: ["UPSTREAM_FORBIDDEN"],
            404: ["NOT_FOUND"],
            422: ["QUERY_PURPOSE_REQUIRED", "QUERY_PURPOSE_INVALID"],
            503: ["LOANS_UNAVAILABLE", "REGISTRY_UNAVAILABLE", "RISK_UNAVAILABLE", "SCORING_UNAVAILABLE"],
        }
    ),
)
async def village_borrowers(
    code: Code, request: Request, purpose: Purpose = None, limit: Limit = 100, offset: Offset = 0
) -> list[dict[str, Any]]:
    """A village's borrowers, masked, with their loans' classification, a page of loans as
    loans pages them. An audited read at loans of each loan listed: ``X-Query-Purpose`` is
    required and sent on."""
    stated = parse_purpose(purpose)
    loans = await upstream.get(
        request, "loans", "/v1/loans", purpose=stated, village_code=code, limit=limit, offset=offset
    )
    return [
        {
            "subject": loan_row["subject_masked"],
            "subject_kind": loan_row["subject_kind"],
            "status": loan_row["status"],
            "classification": loan_row["classification"],
            "non_performing": loan_row["non_performing"],
            "days_past_due": loan_row["days_past_due"],
            "principal": loan_row["principal"],
            "principal_outstanding": loan_row["principal_outstanding"],
            "disbursed_on": loan_row["disbursed_on"],
        }
        for loan_row in loans
    ]


@router.get(
    "/decisions",
    dependencies=[scope("risk:read")],
    responses=problems({403: ["UPSTREAM_FORBIDDEN"], 404: ["NOT_FOUND"], 503: ["RISK_UNAVAILABLE"]}),
)
async def decisions(request: Request, limit: Limit = 100, offset: Offset = 0) -> list[dict[str, Any]]:
    """The district's decision log, newest first: every freeze, lift, halt and resumption,
    automatic or manual, with its reason and deciding principal (risk's ``/v1/decisions``,
    paged as it pages). Published decisions, no borrower: safe for the public view."""
    page = await upstream.get(request, "risk", "/v1/decisions", limit=limit, offset=offset)
    return [_decision(d) for d in page]


@router.get(
    "/titles",
    dependencies=[scope("titles:read")],
    responses=problems({403: ["UPSTREAM_FORBIDDEN"], 404: ["NOT_FOUND"], 503: ["RISK_UNAVAILABLE"]}),
)
async def titles(request: Request, year: Annotated[int | None, Query(ge=2000, le=2100)] = None) -> dict[str, Any]:
    """The credit titles (信用村/乡镇/户/社区, seed 000 §5) of ``year`` (the business date's year
    by default), by kind. Published results: safe for the public view."""
    if year is None:
        year = date.fromisoformat((await upstream.get(request, "risk", "/v1/indicators"))["business_date"]).year
    found = await upstream.get_all(request, "risk", "/v1/titles", year=year)
    kinds = ("credit_village", "credit_township", "credit_household", "credit_community")
    return {"year": year, "titles": {k: [t for t in found if t["kind"] == k] for k in kinds}}
