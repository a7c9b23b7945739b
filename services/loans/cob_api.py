"""The operators' endpoints: close-of-business runs (start, follow, cancel) and the business
date (the ledger's trial balance is in ledger_api.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy import select

from services.loans.cob import CobRefused, CobRunning, LeaseLost, run_cob
from services.loans.context import business_date
from services.loans.models import (
    CobJob,
    CobLease,
)
from services.loans.schemas import (
    BusinessDateOut,
    CobIn,
    CobOut,
    CobRunOut,
)
from shared.openapi import problems
from shared.paging import Limit, Offset
from shared.problems import Problem
from shared.timestamps import rfc3339
from shared.web import CurrentPrincipal, ReadSession, Session, scope

router = APIRouter(prefix="/v1")


COB_ERRORS = problems(
    {409: ["COB_CANCELLED", "COB_RUNNING"], 422: ["COB_STEP_TOO_LARGE", "DATE_IN_THE_PAST"], 503: ["COB_INTERRUPTED"]},
    {
        409: "COB_RUNNING (another run holds the ledger), COB_CANCELLED (stopped by an operator)",
        422: "DATE_IN_THE_PAST, COB_STEP_TOO_LARGE (more than VCREDIT_LOANS_COB_MAX_DAYS)",
        503: "COB_INTERRUPTED: the service is stopping (or the run lost its lease); rerun to resume",
    },
)


@router.post(
    "/cob",
    response_model=CobOut,
    tags=["close of business"],
    summary="Close each business day before `date`, one by one (operator)",
    description=(
        "One run at a time per loans database (409 COB_RUNNING otherwise); only forward (422 "
        "DATE_IN_THE_PAST); at most VCREDIT_LOANS_COB_MAX_DAYS days (default 366, 422 "
        "COB_STEP_TOO_LARGE). The date equal to the business date closes nothing (200, `closed` "
        "empty). A run cancelled (`POST /v1/cob/runs/{run_id}/cancel`) stops at a day boundary "
        "with 409 COB_CANCELLED; a service told to stop, with 503 COB_INTERRUPTED. Either way "
        "the business date is the day after the last day closed, and the next call resumes."
    ),
    responses=COB_ERRORS,
    dependencies=[scope("cob:run")],
)
async def run_cob_endpoint(body: CobIn, request: Request, principal: CurrentPrincipal) -> CobOut:
    runtime = request.app.state.runtime
    async with runtime.sessions() as session, session.begin():
        today = await business_date(session)
    if body.date < today:
        raise Problem(422, "DATE_IN_THE_PAST", "Date already closed", f"The business date is {today}.", field="date")
    if body.date == today:
        return CobOut(closed=[], business_date=today)
    try:
        outcome = await run_cob(
            runtime.sessions,
            body.date,
            who=principal.name,
            observe=runtime.metrics.cob_duration.observe,
            should_stop=lambda: runtime.stopping,
        )
    except CobRefused as refused:
        raise Problem(422, refused.code, refused.title, refused.detail, headers=None, **refused.extra) from None
    except CobRunning as busy:
        raise Problem(
            409,
            "COB_RUNNING",
            "Close of business running",
            "Another close of business holds the ledger; follow it at GET /v1/cob/runs, or retry when it has finished.",
            run_id=busy.holder,
            lease_expires_at=rfc3339(busy.expires_at) if busy.expires_at else None,
        ) from None
    except LeaseLost:
        outcome = None
    extra: dict[str, Any] = {
        "run_id": outcome.run_id if outcome else None,
        "closed": [str(d) for d in outcome.closed] if outcome else [],
    }
    async with runtime.sessions() as session, session.begin():
        now = await business_date(session)
    if outcome is not None and outcome.status == "done":
        return CobOut(closed=outcome.closed, business_date=now, run_id=outcome.run_id)
    if outcome is not None and outcome.status == "cancelled":
        raise Problem(
            409,
            "COB_CANCELLED",
            "Close of business cancelled",
            f"Cancelled by an operator at a day boundary; the business date is {now}.",
            business_date=str(now),
            **extra,
        )
    raise Problem(
        503,
        "COB_INTERRUPTED",
        "Close of business interrupted",
        f"Stopped at a day boundary (the service is stopping, or the run lost its lease); the business "
        f"date is {now}. Call again to resume.",
        headers={"Retry-After": "5"},
        business_date=str(now),
        **extra,
    )


def _run_out(job: CobJob, lease: CobLease | None) -> CobRunOut:
    status = job.status
    if status == "running":
        # Its process died: nobody holds the lease for it any more, or it lapsed.
        expires = lease.expires_at if lease is not None else None
        if expires is not None and expires.tzinfo is None:
            expires = expires.replace(tzinfo=UTC)
        if lease is None or lease.holder != job.id or expires is None or expires < datetime.now(UTC):
            status = "interrupted"
    return CobRunOut(
        run_id=job.id,
        status=status,
        target=job.target,
        from_date=job.from_date,
        current_day=job.current_day,
        days_closed=job.days_closed,
        cancel_requested=job.cancel_requested,
        requested_by=job.requested_by,
        cancelled_by=job.cancelled_by,
        detail=job.detail,
        started_at=job.started_at,
        finished_at=job.finished_at,
    )


def _no_run(run_id: str) -> Problem:
    return Problem(404, "COB_RUN_NOT_FOUND", "Close of business run not found", f"No run {run_id}.")


@router.get(
    "/cob/runs",
    response_model=list[CobRunOut],
    tags=["close of business"],
    summary="Close-of-business runs, newest first: progress, who, how each ended (operator)",
    dependencies=[scope("cob:run")],
)
async def list_cob_runs(session: ReadSession, limit: Limit = 50, offset: Offset = 0) -> list[CobRunOut]:
    lease = await session.get(CobLease, 1)
    jobs = await session.scalars(
        select(CobJob).order_by(CobJob.started_at.desc(), CobJob.id).limit(limit).offset(offset)
    )
    return [_run_out(job, lease) for job in jobs]


@router.get(
    "/cob/runs/{run_id}",
    response_model=CobRunOut,
    tags=["close of business"],
    summary="One close-of-business run (operator)",
    dependencies=[scope("cob:run")],
    responses=problems({404: ["COB_RUN_NOT_FOUND"]}),
)
async def get_cob_run(run_id: str, session: ReadSession) -> CobRunOut:
    job = await session.get(CobJob, run_id)
    if job is None:
        raise _no_run(run_id)
    return _run_out(job, await session.get(CobLease, 1))


@router.post(
    "/cob/runs/{run_id}/cancel",
    response_model=CobRunOut,
    tags=["close of business"],
    summary="Cancel a running close of business at its next day boundary (operator)",
    description=(
        "The run, on whichever replica, stops before it starts another day: the business date "
        "stays the day after the last day it closed. Answers the run as it is now (`status` "
        "running with `cancel_requested` until it reaches the boundary). 409 COB_RUN_FINISHED if "
        "it has ended."
    ),
    dependencies=[scope("cob:run")],
    responses=problems({404: ["COB_RUN_NOT_FOUND"], 409: ["COB_RUN_FINISHED"]}, {409: "The run has ended"}),
)
async def cancel_cob_run(run_id: str, session: Session, principal: CurrentPrincipal) -> CobRunOut:
    async with session.begin():
        job = await session.get(CobJob, run_id, with_for_update=True)
        if job is None:
            raise _no_run(run_id)
        lease = await session.get(CobLease, 1)
        if (status := _run_out(job, lease).status) != "running":
            raise Problem(
                409, "COB_RUN_FINISHED", "Close of business run finished", f"The run is {status}.", run_id=run_id
            )
        job.cancel_requested = True
        job.cancelled_by = principal.name[:128]
        return _run_out(job, lease)


@router.get(
    "/business-date", response_model=BusinessDateOut, tags=["close of business"], dependencies=[scope("calendar:read")]
)
async def get_business_date(session: Session) -> BusinessDateOut:
    async with session.begin():
        return BusinessDateOut(business_date=await business_date(session))
