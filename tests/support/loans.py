"""Loans helpers shared by integration tests: a credit line opened by a certified rating, and
the ledger's receivables checked against the loans' balances."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select

from services.loans.models import LedgerEntry, Loan, SubsidyClaim
from shared.catalogue import RatingCertified
from shared.events import new_event
from tests.conftest import Infra
from tests.support.system import System
from tests.support.waiting import wait_until

VILLAGE, TOWNSHIP = "410102003001", "410102003"


async def open_certified_line(system: System, infra: Infra, limit: str = "100000.00", poor: bool = False) -> str:
    household = str(uuid.uuid4())
    await system.publish(
        new_event(
            "scoring.rating.certified",
            VILLAGE,
            RatingCertified(
                subject_kind="household",
                subject_id=household,
                village_code=VILLAGE,
                township_code=TOWNSHIP,
                rating_id=1,
                grade="AA",
                credit_limit=limit,
                certificate_no="XYZ-2026-1",
                poor_household=poor,
            ),
        ),
    )
    client = system["loans"]
    created: dict[str, Any] = {}

    async def line_opens() -> bool:
        r = await client.post("/v1/credit-lines", json={"household_id": household})
        if r.status_code == 201:
            created.update(r.json())
        return r.status_code == 201

    await wait_until(line_opens, seconds=20, what="the certified rating to reach loans")
    assert (created["limit"], created["available"]) == (limit, limit)
    return str(created["credit_line_id"])


async def ledger_matches_loans(system: System) -> None:
    """The sum of loan balances equals the ledger's receivable accounts (the subsidy receivable
    less what subsidy claims' reviews settled)."""
    async with system.runtimes["loans"].read_sessions() as session:
        principal, interest, subsidy, penalty = (
            await session.execute(
                select(
                    func.coalesce(func.sum(Loan.principal_outstanding), 0),
                    func.coalesce(func.sum(Loan.interest_outstanding), 0),
                    func.coalesce(func.sum(Loan.subsidy_accrued), 0),
                    func.coalesce(func.sum(Loan.penalty_outstanding), 0),
                )
            )
        ).one()
        # Reviewed claims (approved, in part or all, or paid) took what they claimed off the
        # receivable (services/loans/subsidy_claims.py); filed and returned ones took nothing.
        settled = await session.scalar(
            select(func.coalesce(func.sum(SubsidyClaim.claimed), 0)).where(
                SubsidyClaim.status.in_(("approved", "part_approved", "paid"))
            )
        )
        debits, credits = (
            await session.execute(
                select(func.coalesce(func.sum(LedgerEntry.debit), 0), func.coalesce(func.sum(LedgerEntry.credit), 0))
            )
        ).one()
    balances = (await system["loans"].get("/v1/ledger/trial-balance")).json()["accounts"]
    assert Decimal(debits) == Decimal(credits)
    assert Decimal(balances.get("loans_principal", "0")) == Decimal(principal)
    assert Decimal(balances.get("interest_receivable", "0")) == Decimal(interest)
    assert Decimal(balances.get("subsidy_receivable", "0")) == Decimal(subsidy) - Decimal(settled or 0)
    assert Decimal(balances.get("penalty_receivable", "0")) == Decimal(penalty)
