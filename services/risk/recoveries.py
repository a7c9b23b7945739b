"""Recoveries after write-off (004 §4(1)6): money loans collected on a written-off loan,
returned to those who bore its loss (``losses.py``), pro rata to what each still bears
(``domain/recovery.py``). The government's part goes back into the fund, raising its balance
and capacity; the mutual guarantee's back to the business's contributions; the insurer's
reduces its open claim, or is owed back to it once the claim is settled (``losses.py``)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from services.risk import mutual_guarantee
from services.risk.context import replaying
from services.risk.domain.recovery import PARTIES, allocate_recovery
from services.risk.funds import publish_capacity
from services.risk.losses import recovered_of
from services.risk.models import FundEntry, Loss, LossRecovery
from shared.catalogue import LoanRecovered, LossRecovered
from shared.events import new_event
from shared.messaging import emit
from shared.money import format_money


def still_borne(loss: Loss) -> dict[str, Decimal]:
    """What each party bore of the loss less what recoveries returned to it so far."""
    return {party: getattr(loss, party) - recovered_of(loss, party) for party in PARTIES}


async def apply_recovery(session: AsyncSession, p: LoanRecovered, occurred_at: datetime) -> LossRecovery:
    """Allocate a recovery (``loans.loan.recovered``) and book each part where it returns.
    Written only from the event, so a rebuild writes the same rows."""
    # The loan's write-off and its recoveries share the village's partition, so the loss is
    # here; a missing one is a lost event, worth a retry and then the dead-letter queue.
    loss = await session.get(Loss, p.loan_id)
    if loss is None:
        raise LookupError(f"no loss for loan {p.loan_id}: its loans.loan.written_off was not seen")
    # Loans refuses a recovery beyond the loss (RECOVERY_EXCEEDS_LOSS), so a ValueError here
    # means the two services disagree on the loss: the dead-letter queue, not a guess.
    parts = allocate_recovery(Decimal(p.amount), still_borne(loss))
    for party, amount in parts.items():
        setattr(loss, f"recovered_{party}", recovered_of(loss, party) + amount)
    row = LossRecovery(
        recovery_id=p.recovery_id,
        loan_id=p.loan_id,
        business_date=p.business_date,
        amount=Decimal(p.amount),
        mutual_guarantee=parts["mutual_guarantee"],
        government=parts["government"],
        bank=parts["bank"],
        insurer=parts["insurer"],
    )
    session.add(row)
    if parts["mutual_guarantee"]:
        await mutual_guarantee.give_back(
            session, loss.subject_id, p.loan_id, p.recovery_id, parts["mutual_guarantee"], p.business_date
        )
    if parts["government"]:
        # Dated and timed as the event, like the loss's entry, so a rebuild writes the same.
        session.add(
            FundEntry(
                kind="recovery",
                amount=parts["government"],
                loan_id=p.loan_id,
                reason=f"government's share of a recovery on loan {p.loan_id} (004 §4(1)6)",
                decided_by="risk",
                business_date=p.business_date,
                recorded_at=occurred_at,
            )
        )
    if not replaying(session):
        recovered = sum((recovered_of(loss, party) for party in PARTIES), Decimal("0.00"))
        await emit(
            session,
            new_event(
                "risk.loss.recovered",
                loss.village_code,
                LossRecovered(
                    loan_id=p.loan_id,
                    recovery_id=p.recovery_id,
                    village_code=loss.village_code,
                    township_code=loss.township_code,
                    business_date=p.business_date,
                    amount=format_money(Decimal(p.amount)),
                    mutual_guarantee=format_money(parts["mutual_guarantee"]),
                    government=format_money(parts["government"]),
                    bank=format_money(parts["bank"]),
                    insurer=format_money(parts["insurer"]),
                    recovered=format_money(recovered),
                    net=format_money(loss.loss - recovered),
                ),
            ),
        )
        if parts["government"]:
            await session.flush()
            await publish_capacity(session, "recovery", parts["government"])
    return row
