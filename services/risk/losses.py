"""Realised losses (004 §6(1)): a written-off loan's loss split between the business's own
mutual guarantee, the government (paid from the fund), the bank and the insurer."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from services.risk.breaker import replaying, settings
from services.risk.domain.loss import split_loss
from services.risk.funds import ZERO, publish_capacity
from services.risk.models import FundEntry, Loss, MutualGuaranteeAccount
from shared.catalogue import LoanWrittenOff, LossSplit
from shared.events import new_event
from shared.messaging import emit
from shared.money import format_money


async def realise_loss(session: AsyncSession, p: LoanWrittenOff, occurred_at: datetime) -> Loss:
    """Split a written-off loss. A business's loss is met first from its own mutual
    guarantee contributions (product choice, docs/risk.md), the rest 30/20/50."""
    loss = Decimal(p.loss)
    drawn = ZERO
    if p.subject_kind == "business":
        account = await session.get(MutualGuaranteeAccount, p.subject_id)
        if account is not None:
            drawn = min(loss, max(ZERO, account.contributed - account.drawn))
            account.drawn += drawn
    parts = split_loss(loss - drawn, settings().loss_shares)
    row = Loss(
        loan_id=p.loan_id,
        subject_kind=p.subject_kind,
        subject_id=p.subject_id,
        village_code=p.village_code,
        township_code=p.township_code,
        business_date=p.business_date,
        loss=loss,
        mutual_guarantee=drawn,
        government=parts["government"],
        bank=parts["bank"],
        insurer=parts["insurer"],
    )
    session.add(row)
    # The government's share is paid from the fund (004 §6(2)); its date and time are the
    # event's, so a rebuild writes the same entry.
    session.add(
        FundEntry(
            kind="loss",
            amount=-row.government,
            loan_id=p.loan_id,
            reason=f"government's share of the loss on loan {p.loan_id} (004 §6(1))",
            decided_by="risk",
            business_date=p.business_date,
            recorded_at=occurred_at,
        )
    )
    if not replaying(session):
        await emit(
            session,
            new_event(
                "risk.loss.split",
                p.village_code,
                LossSplit(
                    loan_id=p.loan_id,
                    subject_kind=p.subject_kind,
                    subject_id=p.subject_id,
                    village_code=p.village_code,
                    township_code=p.township_code,
                    business_date=p.business_date,
                    loss=format_money(loss),
                    mutual_guarantee=format_money(drawn),
                    government=format_money(row.government),
                    bank=format_money(row.bank),
                    insurer=format_money(row.insurer),
                ),
            ),
        )
        if row.government:
            await session.flush()
            await publish_capacity(session, "loss", -row.government)
    return row
