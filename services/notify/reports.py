"""The monthly programme report (issue 26 item 5): ``GET /v1/reports/monthly/{YYYY-MM}``.

Reads risk and loans as the caller (upstream.py), each figure as of the month's last day
(domain/report.py says from which dated source), and renders XLSX or PDF. A month whose last
day is not before the business date is 422 ``MONTH_NOT_ENDED``: until the business date has moved
past it, business dated that day can still be posted, and the same month would not read the same.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Literal
from urllib.parse import quote

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response

from services.notify import report_pdf, report_xlsx, upstream
from services.notify.domain.report import (
    PARTIES,
    DecisionRecord,
    FundMonth,
    LossRecord,
    Place,
    Report,
    Sources,
    build,
    month_end,
)
from services.notify.domain.trend import DayFigures
from shared.openapi import problems
from shared.problems import Problem
from shared.tabular import XLSX
from shared.web import scope

router = APIRouter(prefix="/v1/reports", tags=["reports"])
PDF = "application/pdf"
# [0-9], not \d (no full-width digits); years 1000-9999, months 01-12.
Month = Annotated[str, Path(pattern=r"^[1-9][0-9]{3}-(0[1-9]|1[0-2])$", description="YYYY-MM", examples=["2026-05"])]
DECISION_KINDS = ("village_frozen", "village_unfrozen", "township_halted", "township_resumed")


async def sources(request: Request, year: int, month: int) -> Sources:
    """Every figure the report needs, as of the month end (see domain/report.py)."""
    end = month_end(year, month)
    townships = await upstream.get_all(request, "risk", "/v1/townships")
    villages = await upstream.get_all(request, "risk", "/v1/villages")
    histories = {
        v["code"]: [
            DayFigures(date.fromisoformat(d["business_date"]), Decimal(d["outstanding"]), Decimal(d["non_performing"]))
            for d in await upstream.get_all(
                request, "risk", f"/v1/villages/{quote(v['code'], safe='')}/history", until=str(end)
            )
        ]
        for v in villages
    }
    decisions = [
        DecisionRecord(
            d["kind"],
            d["code"],
            d["manual"],
            d["reason"],
            d["decided_by"],
            date.fromisoformat(d["business_date"]) if d["business_date"] else None,
        )
        for d in reversed(await upstream.get_all(request, "risk", "/v1/decisions"))  # risk lists newest first
        if d["kind"] in DECISION_KINDS
    ]
    losses = [
        LossRecord(
            x["loan_id"],
            x["village_code"],
            date.fromisoformat(x["business_date"]),
            Decimal(x["loss"]),
            {p: Decimal(x[p]) for p in PARTIES},
        )
        for x in await upstream.get_all(request, "risk", "/v1/losses")
    ]
    statement = await upstream.get(
        request, "risk", "/v1/fund/statement", **{"from": str(date(year, month, 1))}, to=str(end)
    )
    fund = await upstream.get(request, "risk", "/v1/fund")
    trial = await upstream.get(request, "loans", "/v1/ledger/trial-balance", as_of=str(end))
    return Sources(
        year=year,
        month=month,
        townships=[Place(t["code"], t["name"]) for t in townships],
        villages=[Place(v["code"], v["name"], v["township_code"]) for v in villages],
        histories=histories,
        decisions=decisions,
        losses=losses,
        fund=FundMonth(
            Decimal(statement["opening_balance"]),
            {k: Decimal(v) for k, v in statement["totals"].items()},
            Decimal(statement["closing_balance"]),
        ),
        leverage=Decimal(str(fund["leverage"])),
        # 贷款本金: loans lists only the accounts with a posting by then; none is zero, not a 500.
        ledger_principal=Decimal(trial["accounts"].get("loans_principal", "0.00")),
        # One home for the rule: risk's own threshold (004 §6(3)), as risk decides freezes by it.
        threshold=Decimal((await upstream.get(request, "risk", "/v1/indicators"))["village_npl_threshold"]),
    )


async def monthly_report(request: Request, period: str) -> Report:
    year, month = int(period[:4]), int(period[5:])
    end = month_end(year, month)
    today = date.fromisoformat((await upstream.get(request, "loans", "/v1/business-date"))["business_date"])
    if end >= today:
        raise Problem(
            422,
            "MONTH_NOT_ENDED",
            "Month not ended",
            f"{period} ends on {end}, not before the business date {today}: its figures could still change.",
        )
    return build(await sources(request, year, month))


@router.get(
    "/monthly/{period}",
    summary="The monthly programme report for the leading group (XLSX or PDF), as of the month's last day",
    description="The overview, the township table, the villages frozen at the month end with their reasons, the "
    "losses of the month and the year to date by who bore them, the risk fund's month (opening, movements, "
    "closing) and the NPL indicators, each as of the month's last day from dated sources, so a past month "
    "gives the same figures whenever it is generated (docs/console.md). Reads risk and loans with the "
    "caller's token, so each answers what the caller may read there (its refusal is 403 UPSTREAM_FORBIDDEN); "
    "the report is the ledger's reader's: ledger:read (the government, the bank, the operator). "
    "422 MONTH_NOT_ENDED for a month whose last day is not before loans' business date "
    "(GET /v1/business-date).",
    dependencies=[scope("ledger:read")],
    response_class=Response,
    responses={
        200: {
            "content": {
                XLSX: {"schema": {"type": "string", "format": "binary"}},
                PDF: {"schema": {"type": "string", "format": "binary"}},
            }
        },
        **problems(
            {
                403: ["UPSTREAM_FORBIDDEN"],
                404: ["NOT_FOUND"],
                422: ["MONTH_NOT_ENDED"],
                503: ["RISK_UNAVAILABLE", "LOANS_UNAVAILABLE"],
            }
        ),
    },
)
async def get_monthly_report(
    period: Month,
    request: Request,
    format: Annotated[Literal["xlsx", "pdf"], Query(description="the file's type")] = "xlsx",
) -> Response:
    report = await monthly_report(request, period)
    if format == "pdf":
        content, media_type = report_pdf.render(report), PDF
    else:
        content, media_type = report_xlsx.render(report), XLSX
    filename = f"monthly-report-{report.period}.{format}"
    return Response(
        content, media_type=media_type, headers={"Content-Disposition": f'attachment; filename="{filename}"'}
    )
