from __future__ import annotations

from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from services.loans import (
    api,
    cob_api,
    extensions_api,
    ledger_api,
    portfolio_api,
    reconciliation_api,
    subsidy_claims_api,
)
from services.loans.context import settings
from services.loans.handlers import HANDLERS, prefetch
from services.loans.models import metadata
from shared.audit import queries_router
from shared.runtime import ServiceSpec


async def _check_settings(_session: AsyncSession) -> None:
    """Read (and so validate) the settings at the start: a bad dated table stops the service
    with the table, the entry and the rule named, not the first drawdown."""
    settings()


SPEC = ServiceSpec(
    name="loans",
    title="loans",
    description="Credit lines, loans, schedules, repayments, classification, double-entry ledger, close of business.",
    metadata=metadata,
    migrations_dir=Path(__file__).parent / "migrations",
    routers=lambda: [
        api.router,
        extensions_api.router,
        cob_api.router,
        ledger_api.router,
        reconciliation_api.router,
        queries_router("loans"),
        subsidy_claims_api.router,
        portfolio_api.router,
    ],
    handlers=HANDLERS,
    prefetch=prefetch,
    on_start=_check_settings,
    uploads=(reconciliation_api.BANK_FILE_ROUTE,),
)
