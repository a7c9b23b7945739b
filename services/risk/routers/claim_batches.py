"""Insurer claims in monthly batches (DOMAIN §7, issue 25 item 2): filed by the bank or the
government, decided line by line by the insurer, settled; read as JSON, CSV or XLSX."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response

from services.risk import claim_batches
from services.risk.claim_batch_sheet import batch_sheet
from services.risk.context import settings
from services.risk.models import ClaimBatch, ClaimBatchLine
from services.risk.schemas import (
    ClaimBatchDetailOut,
    ClaimBatchIn,
    ClaimBatchLineOut,
    ClaimBatchOut,
    ClaimDecisionIn,
    SettleIn,
)
from shared.idempotency import IDEMPOTENCY_KEY, idempotent
from shared.money import format_money
from shared.openapi import problems
from shared.paging import MAX_PAGE, Limit, Offset
from shared.tabular import FILE_RESPONSES, download
from shared.web import CurrentPrincipal, ReadSession, Session, scope

router = APIRouter(prefix="/v1", tags=["claim batches"])


def _line_out(line: ClaimBatchLine) -> ClaimBatchLineOut:
    return ClaimBatchLineOut(
        loan_id=line.loan_id,
        village_code=line.village_code,
        village_name=line.village_name,
        township_code=line.township_code,
        township_name=line.township_name,
        written_off_on=line.written_off_on,
        loss=format_money(line.loss),
        share=format_money(line.share),
        recovered=format_money(line.recovered),
        payable=format_money(line.payable),
        decision="accept" if line.decision == "accept" else "dispute" if line.decision == "dispute" else None,
        reason=line.reason,
        decided_by=line.decided_by,
        decided_at=line.decided_at,
        settled_amount=None if line.settled_amount is None else format_money(line.settled_amount),
    )


def _batch_out(batch: ClaimBatch, lines: list[ClaimBatchLine]) -> ClaimBatchDetailOut:
    sums = claim_batches.totals(lines)
    return ClaimBatchDetailOut(
        batch_id=batch.id,
        party="insurer",
        month=batch.month,
        period_start=batch.period_start,
        period_end=batch.period_end,
        status="settled" if batch.status == "settled" else "filed",
        filed_by=batch.filed_by,
        filed_on=batch.filed_on,
        line_count=sums.lines,
        loss=format_money(sums.loss),
        share=format_money(sums.share),
        recovered=format_money(sums.recovered),
        payable=format_money(sums.payable),
        accepted=sums.accepted,
        disputed=sums.disputed,
        undecided=sums.undecided,
        settled_total=None if batch.settled_total is None else format_money(batch.settled_total),
        reference=batch.reference,
        settled_by=batch.settled_by,
        settled_on=batch.settled_on,
        lines=[_line_out(line) for line in lines],
    )


@router.post(
    "/claim-batches",
    status_code=201,
    response_model=ClaimBatchDetailOut,
    summary="File a month's batch of the insurer's open claims (every one on a loss written off by its end)",
    dependencies=[scope("claims:batch"), IDEMPOTENCY_KEY],
    responses=problems(
        {
            409: ["CLAIM_BATCH_EXISTS", "CLAIM_BATCH_EMPTY"],
            422: ["CLAIM_BATCH_PERIOD_INVALID", "CLAIM_BATCH_PERIOD_NOT_ENDED"],
        }
    ),
)
async def file_batch(
    body: ClaimBatchIn, request: Request, session: Session, principal: CurrentPrincipal
) -> ClaimBatchDetailOut | JSONResponse:
    async def filed() -> ClaimBatchDetailOut:
        batch = await claim_batches.file_batch(session, body.party, body.month, principal.name)
        return _batch_out(batch, await claim_batches.lines_of(session, batch.id))

    return await idempotent(session, request, body, filed, status=201)


@router.get("/claim-batches", response_model=list[ClaimBatchOut], dependencies=[scope("settlement:read")])
async def list_batches(
    session: ReadSession,
    party: Literal["insurer"] | None = None,
    status: Literal["filed", "settled"] | None = None,
    limit: Limit = MAX_PAGE,
    offset: Offset = 0,
) -> list[ClaimBatchOut]:
    """The claim batches with their totals, by party and month (lines: GET one batch)."""
    found = await claim_batches.listed(session, party, status, limit, offset)
    return [ClaimBatchOut(**_batch_out(batch, lines).model_dump(exclude={"lines"})) for batch, lines in found]


@router.get(
    "/claim-batches/{batch_id}",
    response_model=ClaimBatchDetailOut,
    summary="A claim batch and its lines: JSON, or format=csv|xlsx (序号 ... 理由, 合计)",
    dependencies=[scope("settlement:read")],
    responses={**FILE_RESPONSES, **problems({404: ["CLAIM_BATCH_NOT_FOUND"]})},
)
async def get_batch(
    batch_id: str,
    session: ReadSession,
    format: Annotated[Literal["json", "csv", "xlsx"], Query(description="json, csv or xlsx")] = "json",
) -> ClaimBatchDetailOut | Response:
    batch = await claim_batches.batch_of(session, batch_id)
    lines = await claim_batches.lines_of(session, batch_id)
    if format == "json":
        return _batch_out(batch, lines)
    sheet = batch_sheet(batch, lines, settings().loss_shares)
    return download([sheet], format, f"claim-batch-{batch.party}-{batch.month}")


@router.post(
    "/claim-batches/{batch_id}/lines/{loan_id}/decision",
    response_model=ClaimBatchLineOut,
    summary="The insurer accepts or disputes one line (a dispute with its reason)",
    dependencies=[scope("claims:decide"), IDEMPOTENCY_KEY],
    responses=problems(
        {
            404: ["CLAIM_BATCH_NOT_FOUND", "CLAIM_LINE_NOT_FOUND"],
            409: ["CLAIM_BATCH_SETTLED", "CLAIM_LINE_DECIDED", "FOUR_EYES_REQUIRED"],
            422: ["DISPUTE_REASON_REQUIRED"],
        }
    ),
)
async def decide_line(
    batch_id: str,
    loan_id: str,
    body: ClaimDecisionIn,
    request: Request,
    session: Session,
    principal: CurrentPrincipal,
) -> ClaimBatchLineOut | JSONResponse:
    async def decided() -> ClaimBatchLineOut:
        line = await claim_batches.decide(session, batch_id, loan_id, body.decision, body.reason, principal)
        return _line_out(line)

    return await idempotent(session, request, body, decided, status=200)


@router.post(
    "/claim-batches/{batch_id}/settle",
    response_model=ClaimBatchDetailOut,
    summary="Settle a batch whose lines are all decided: accepted claims settled net of recoveries, "
    "disputed ones open again (the insurer, or the government)",
    dependencies=[scope("claims:settle"), IDEMPOTENCY_KEY],
    responses=problems({404: ["CLAIM_BATCH_NOT_FOUND"], 409: ["CLAIM_BATCH_SETTLED", "CLAIM_BATCH_UNDECIDED"]}),
)
async def settle_batch(
    batch_id: str, body: SettleIn, request: Request, session: Session, principal: CurrentPrincipal
) -> ClaimBatchDetailOut | JSONResponse:
    async def settled() -> ClaimBatchDetailOut:
        batch, lines = await claim_batches.settle(session, batch_id, body.reference, principal)
        return _batch_out(batch, lines)

    return await idempotent(session, request, body, settled, status=200)
