"""Realised losses and the bank's and insurer's claims on them (004 §6(1))."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from services.risk import losses
from services.risk.domain.recovery import PARTIES
from services.risk.models import ClaimSettlement, Loss
from services.risk.schemas import ClaimOut, LossOut, SettleIn
from shared.idempotency import IDEMPOTENCY_KEY, idempotent
from shared.money import format_money
from shared.openapi import problems
from shared.paging import MAX_PAGE, Limit, Offset
from shared.web import CurrentPrincipal, ReadSession, Session, require_role, scope

router = APIRouter(prefix="/v1")


def _loss_out(row: Loss) -> LossOut:
    recovered = sum((losses.recovered_of(row, party) for party in PARTIES), Decimal("0.00"))
    return LossOut(
        loan_id=row.loan_id,
        subject_kind=row.subject_kind,
        subject_id=row.subject_id,
        village_code=row.village_code,
        township_code=row.township_code,
        business_date=row.business_date,
        loss=format_money(row.loss),
        mutual_guarantee=format_money(row.mutual_guarantee),
        government=format_money(row.government),
        bank=format_money(row.bank),
        insurer=format_money(row.insurer),
        recovered=format_money(recovered),
        net=format_money(row.loss - recovered),
        recovered_mutual_guarantee=format_money(row.recovered_mutual_guarantee),
        recovered_government=format_money(row.recovered_government),
        recovered_bank=format_money(row.recovered_bank),
        recovered_insurer=format_money(row.recovered_insurer),
    )


@router.get("/losses", response_model=list[LossOut], tags=["losses"], dependencies=[scope("losses:read")])
async def list_losses(
    session: ReadSession,
    loan_id: str | None = None,
    village_code: str | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[LossOut]:
    return [_loss_out(row) for row in await losses.listed(session, loan_id, village_code, limit, offset)]


def _claim_out(loss: Loss, party: Literal["bank", "insurer"], settlement: ClaimSettlement | None) -> ClaimOut:
    return ClaimOut(
        loan_id=loss.loan_id,
        party=party,
        amount=format_money(losses.claim_amount(loss, party, settlement)),
        status="settled" if settlement else "open",
        village_code=loss.village_code,
        business_date=loss.business_date,
        reference=settlement.reference if settlement else None,
        settled_on=settlement.settled_on if settlement else None,
        settled_by=settlement.settled_by if settlement else None,
        recovered=format_money(losses.recovered_of(loss, party)),
        payable=format_money(losses.payable(loss, party, settlement)),
    )


@router.get("/claims", response_model=list[ClaimOut], tags=["losses"], dependencies=[scope("losses:read")])
async def list_claims(
    session: ReadSession,
    party: Literal["bank", "insurer"] | None = None,
    status: Literal["open", "settled"] | None = None,
    loan_id: str | None = None,
    limit: Limit = MAX_PAGE,
    offset: Offset = 0,
) -> list[ClaimOut]:
    """The bank's and insurer's shares of realised losses (004 §6(1)) and whether settled."""
    found = await losses.claims(session, party, status, loan_id, limit, offset)
    return [_claim_out(loss, p, settlement) for loss, p, settlement in found]


@router.post(
    "/claims/{loan_id}/{party}/settle",
    response_model=ClaimOut,
    tags=["losses"],
    summary="Mark the bank's or insurer's share of a loss settled (that party, or the government)",
    dependencies=[scope("claims:settle"), IDEMPOTENCY_KEY],
    responses=problems({404: ["LOSS_NOT_FOUND"], 409: ["CLAIM_SETTLED", "CLAIM_IN_BATCH"]}),
)
async def settle_claim(
    loan_id: str,
    party: Literal["bank", "insurer"],
    body: SettleIn,
    request: Request,
    session: Session,
    principal: CurrentPrincipal,
) -> ClaimOut | JSONResponse:
    require_role(principal, party, "government")

    async def settled() -> ClaimOut:
        loss, settlement = await losses.settle_claim(session, loan_id, party, body.reference, principal.name)
        return _claim_out(loss, party, settlement)

    return await idempotent(session, request, body, settled, status=200)
