"""A village's household collection sheet (CSV or XLSX) imported in one request."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from services.registry import context
from services.registry.imports import import_sheet
from services.registry.routers.dependencies import EvidenceRef, FactSource, cipher, provenance
from services.registry.schemas import ImportReport
from shared.openapi import problems
from shared.problems import Problem
from shared.web import CurrentPrincipal, ensure_bound, scope

router = APIRouter(prefix="/v1")


_SHEET_BODY = {"schema": {"type": "string", "format": "binary"}}


IMPORT_ROUTE = "POST /v1/villages/{code}/households/import"


@router.post(
    "/villages/{code}/households/import",
    response_model=ImportReport,
    tags=["households"],
    summary="Import a village's household collection sheet (CSV or XLSX, UTF-8 or GBK)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "text/csv": _SHEET_BODY,
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": _SHEET_BODY,
            },
        }
    },
    dependencies=[scope("subjects:write")],
    responses=problems(
        {
            403: ["NOT_YOUR_HOUSEHOLD", "OUTSIDE_YOUR_VILLAGE", "FACT_SOURCE"],
            404: ["VILLAGE_NOT_FOUND"],
            413: ["SHEET_TOO_LARGE"],
            422: ["EMPTY_SHEET", "UNREADABLE_SHEET", "FACT_SOURCE"],
        }
    ),
)
async def import_households(
    code: str,
    request: Request,
    principal: CurrentPrincipal,
    filename: Annotated[str | None, Query(max_length=255)] = None,
    source: FactSource = None,
    evidence: EvidenceRef = None,
) -> ImportReport:
    ensure_bound(principal, village=code)
    prov = provenance(principal, source, evidence)
    # The size is bounded by VCREDIT_MAX_UPLOAD_BYTES (shared/bodylimit.py, SPEC.uploads).
    data = bytearray()
    async for chunk in request.stream():
        data.extend(chunk)
    if not data:
        raise Problem(422, "EMPTY_SHEET", "Empty sheet", "Send the sheet's bytes as the request body.", field="body")
    settings = context.settings()
    return await import_sheet(
        request.app.state.runtime.sessions,
        cipher(request),
        code,
        bytes(data),
        filename=filename,
        content_type=request.headers.get("content-type"),
        provenance=prov,
        limits=settings.sheet_limits(),
        report_max_errors=settings.import_report_max_errors,
    )
