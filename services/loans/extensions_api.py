"""Extension (展期) endpoints: the bank proposes, a second principal approves or rejects
(services/loans/extensions.py); the loan's extensions are read with its credit data."""

from __future__ import annotations

from typing import Literal, cast

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from services.loans import extensions
from services.loans.api import loans_out, subject_kind, visible_loan
from services.loans.models import Loan, LoanExtension
from services.loans.schemas import ExtensionDecisionIn, ExtensionIn, ExtensionOut, ExtensionRejectionIn
from shared.audit import Audited
from shared.idempotency import IDEMPOTENCY_KEY, idempotent
from shared.openapi import problems
from shared.paging import Limit, Offset
from shared.web import CurrentPrincipal, ReadSession, Session, scope

router = APIRouter(prefix="/v1")

ExtensionStatus = Literal["proposed", "approved", "rejected"]
_LIMITS = ["EXTENSION_LIMIT", "EXTENSION_NOT_ALLOWED"]


async def _out(session: AsyncSession, extension: LoanExtension, loan: Loan | None = None) -> ExtensionOut:
    return ExtensionOut(
        extension_id=extension.id,
        loan_id=extension.loan_id,
        months=extension.months,
        reason=extension.reason,
        status=cast(ExtensionStatus, extension.status),
        proposed_by=extension.proposed_by,
        proposed_on=extension.proposed_on,
        decided_by=extension.decided_by,
        decided_on=extension.decided_on,
        decision_reasons=extension.decision_reasons,
        maturity_before=extension.maturity_before,
        maturity_after=extension.maturity_after,
        loan=None if loan is None else (await loans_out(session, [loan]))[0],
    )


@router.post(
    "/loans/{loan_id}/extensions",
    status_code=201,
    response_model=ExtensionOut,
    tags=["loans"],
    summary="Propose an extension (展期) of an active loan; a second principal decides it",
    description="Refused at once (409, nothing recorded) when the limits already refuse it: EXTENSION_LIMIT "
    "(贷款通则 art. 12: in all at most the original term for loans up to a year, half of it up to five years; "
    "the programme's 36 months in all; VCREDIT_LOANS_EXTENSION_MAX_COUNT extensions), EXTENSION_NOT_ALLOWED "
    "(the loan is not active, or all of it has fallen due), EXTENSION_PENDING (another awaits its decision).",
    dependencies=[scope("lending:write"), IDEMPOTENCY_KEY],
    responses=problems({404: ["LOAN_NOT_FOUND"], 409: [*_LIMITS, "EXTENSION_PENDING"]}),
)
async def propose_extension(
    loan_id: str, body: ExtensionIn, request: Request, session: Session, principal: CurrentPrincipal
) -> ExtensionOut | JSONResponse:
    async def proposed() -> ExtensionOut:
        return await _out(session, await extensions.propose(session, principal, loan_id, body.months, body.reason))

    return await idempotent(session, request, body, proposed, status=201)


@router.post(
    "/loans/{loan_id}/extensions/{extension_id}/approval",
    response_model=ExtensionOut,
    tags=["loans"],
    summary="Approve an extension: the remaining principal is re-planned over the remaining and added months",
    description="Never by its proposer (409 FOUR_EYES_REQUIRED). The limits are checked again (the loan may have "
    "changed). The period in progress keeps its dates and interest; the loan is classified no better than "
    "VCREDIT_LOANS_EXTENSION_CLASSIFICATION_FLOOR from now on; no money moves. Event loans.loan.extended.",
    dependencies=[scope("lending:write"), IDEMPOTENCY_KEY],
    responses=problems(
        {404: ["EXTENSION_NOT_FOUND", "LOAN_NOT_FOUND"], 409: [*_LIMITS, "EXTENSION_DECIDED", "FOUR_EYES_REQUIRED"]}
    ),
)
async def approve_extension(
    loan_id: str,
    extension_id: str,
    request: Request,
    session: Session,
    principal: CurrentPrincipal,
    body: ExtensionDecisionIn | None = None,
) -> ExtensionOut | JSONResponse:
    async def approved() -> ExtensionOut:
        reasons = None if body is None else body.reasons
        done = await extensions.approve(session, principal, loan_id, extension_id, reasons)
        return await _out(session, done.extension, done.loan)

    return await idempotent(session, request, body, approved, status=200)


@router.post(
    "/loans/{loan_id}/extensions/{extension_id}/rejection",
    response_model=ExtensionOut,
    tags=["loans"],
    summary="Reject an extension, with the reasons; the loan is unchanged",
    dependencies=[scope("lending:write"), IDEMPOTENCY_KEY],
    responses=problems(
        {404: ["EXTENSION_NOT_FOUND", "LOAN_NOT_FOUND"], 409: ["EXTENSION_DECIDED", "FOUR_EYES_REQUIRED"]}
    ),
)
async def reject_extension(
    loan_id: str,
    extension_id: str,
    body: ExtensionRejectionIn,
    request: Request,
    session: Session,
    principal: CurrentPrincipal,
) -> ExtensionOut | JSONResponse:
    async def rejected() -> ExtensionOut:
        done = await extensions.reject(session, principal, loan_id, extension_id, body.reasons)
        return await _out(session, done.extension)

    return await idempotent(session, request, body, rejected, status=200)


@router.get(
    "/loans/{loan_id}/extensions",
    response_model=list[ExtensionOut],
    tags=["loans"],
    summary="A loan's extensions, proposed and decided, oldest first",
    dependencies=[scope("lending:read")],
    responses=problems({404: ["LOAN_NOT_FOUND"]}),
)
async def list_extensions(
    loan_id: str,
    session: ReadSession,
    principal: CurrentPrincipal,
    audit: Audited,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[ExtensionOut]:
    loan = await visible_loan(session, principal, loan_id)
    out = [await _out(session, e) for e in await extensions.extensions_of(session, loan.id, limit, offset)]
    await audit.record(subject_kind(loan.subject_kind), loan.subject_id, loan_id)
    return out
