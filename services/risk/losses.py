"""Realised losses (004 §6(1)): a written-off loan's loss split between the business's own
mutual guarantee, the government (paid from the fund), the bank and the insurer; and the
bank's and insurer's claims on their shares, net of recoveries (``recoveries.py``), and their
settlement."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from itertools import islice
from typing import Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.risk import mutual_guarantee
from services.risk.context import business_date, replaying, settings
from services.risk.domain.loss import split_loss
from services.risk.funds import ZERO, publish_capacity
from services.risk.models import ClaimBatchLine, ClaimSettlement, FundEntry, Loss
from shared.catalogue import ClaimSettled, LoanWrittenOff, LossSplit
from shared.events import new_event
from shared.messaging import emit
from shared.money import format_money, to_fen
from shared.problems import Problem

Party = Literal["bank", "insurer"]


async def realise_loss(session: AsyncSession, p: LoanWrittenOff, occurred_at: datetime) -> Loss:
    """Split a written-off loss. A business's loss is met first from its own mutual
    guarantee contributions (product choice, docs/risk.md), the rest 30/20/50."""
    loss = Decimal(p.loss)
    drawn = ZERO
    if p.subject_kind == "business":
        drawn = await mutual_guarantee.draw(session, p.subject_id, p.loan_id, loss, p.business_date)
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
        # Set here, not left to the column default applied at the flush: a recovery in the
        # same batch reads them from this very object (services/risk/recoveries.py).
        recovered_mutual_guarantee=ZERO,
        recovered_government=ZERO,
        recovered_bank=ZERO,
        recovered_insurer=ZERO,
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


async def listed(
    session: AsyncSession, loan_id: str | None, village_code: str | None, limit: int, offset: int
) -> list[Loss]:
    query = select(Loss).order_by(Loss.business_date, Loss.loan_id).limit(limit).offset(offset)
    if loan_id is not None:
        query = query.where(Loss.loan_id == loan_id)
    if village_code is not None:
        query = query.where(Loss.village_code == village_code)
    return list(await session.scalars(query))


def recovered_of(loss: Loss, party: str) -> Decimal:
    """What recoveries returned so far to a party of the loss (004 §4(1)6)."""
    recovered: Decimal = getattr(loss, f"recovered_{party}")
    return recovered


def share_of(loss: Loss, party: Party) -> Decimal:
    return loss.bank if party == "bank" else loss.insurer


def claim_amount(loss: Loss, party: Party, settlement: ClaimSettlement | None) -> Decimal:
    """An open claim is the party's share less what recoveries returned to it (004 §4(1)6); a
    settled one is what was settled (the whole share if settled before recoveries existed)."""
    if settlement is None:
        return share_of(loss, party) - recovered_of(loss, party)
    return share_of(loss, party) if settlement.amount is None else settlement.amount


def payable(loss: Loss, party: Party, settlement: ClaimSettlement | None) -> Decimal:
    """Owed back to the party: what recoveries after its settlement returned to it, i.e. what
    was settled less what it still bears (004 §4(1)6). Nothing while the claim is open."""
    if settlement is None:
        return ZERO
    return max(ZERO, claim_amount(loss, party, settlement) - (share_of(loss, party) - recovered_of(loss, party)))


async def claims(
    session: AsyncSession,
    party: Party | None,
    status: Literal["open", "settled"] | None,
    loan_id: str | None,
    limit: int,
    offset: int,
) -> list[tuple[Loss, Party, ClaimSettlement | None]]:
    """The bank's and insurer's shares of realised losses (004 §6(1)) and their settlements:
    the non-zero ones, by date and loan, ``status`` open (no settlement) or settled."""
    query = select(Loss).order_by(Loss.business_date, Loss.loan_id)
    if loan_id is not None:
        query = query.where(Loss.loan_id == loan_id)
    settled = {(s.loan_id, s.party): s for s in await session.scalars(select(ClaimSettlement))}
    parties: tuple[Party, ...] = (party,) if party else ("bank", "insurer")
    found: Iterator[tuple[Loss, Party, ClaimSettlement | None]] = (
        (loss, p, settlement)
        for loss in await session.scalars(query)
        for p, settlement in ((p, settled.get((loss.loan_id, p))) for p in parties)
        # A claim exists where the party bore part of the loss, even once recoveries repaid it.
        if to_fen(share_of(loss, p)) > 0 and (status is None or ("settled" if settlement else "open") == status)
    )
    # Claims are derived and filtered per loss, so the page is cut from them, not in SQL.
    return list(islice(found, offset, offset + limit))


async def settle_claim(
    session: AsyncSession, loan_id: str, party: Party, reference: str, settled_by: str
) -> tuple[Loss, ClaimSettlement]:
    """Mark the bank's or insurer's share of a loss settled, and say so (``risk.claim.settled``)."""
    # The loss row is locked: FOR UPDATE on a settlement not yet written locks nothing, so
    # two concurrent settlements both inserted and one failed on the key (a 500). Filing a
    # claim batch locks it too (services/risk/claim_batches.py), so the two see each other.
    loss = await session.get(Loss, loan_id, with_for_update=True)
    if loss is None:
        raise Problem(404, "LOSS_NOT_FOUND", "No loss", f"No realised loss on loan {loan_id}.")
    if await session.get(ClaimSettlement, (loan_id, party)) is not None:
        raise Problem(409, "CLAIM_SETTLED", "Claim already settled", f"The {party}'s claim is settled.")
    batch_id = await session.scalar(
        select(ClaimBatchLine.batch_id).where(
            ClaimBatchLine.loan_id == loan_id, ClaimBatchLine.party == party, ClaimBatchLine.holding
        )
    )
    if batch_id is not None:
        # The party decides it in the batch; settled here too, it would be paid twice.
        raise Problem(
            409,
            "CLAIM_IN_BATCH",
            "Claim in an open batch",
            f"The {party}'s claim on loan {loan_id} is in claim batch {batch_id}: it is settled with the batch.",
            batch_id=batch_id,
        )
    settlement = await record_settlement(session, loss, party, reference, settled_by, None)
    return loss, settlement


async def record_settlement(
    session: AsyncSession, loss: Loss, party: Party, reference: str, settled_by: str, batch_id: str | None
) -> ClaimSettlement:
    """Settle an open claim at its amount now, the share net of the recoveries so far (004
    §4(1)6; later ones are owed back), and say so. The caller has locked the loss."""
    settlement = ClaimSettlement(
        loan_id=loss.loan_id,
        party=party,
        reference=reference,
        settled_by=settled_by,
        settled_on=await business_date(session),
        settled_at=datetime.now(UTC),
        amount=claim_amount(loss, party, None),
    )
    session.add(settlement)
    await emit(
        session,
        new_event(
            "risk.claim.settled",
            loss.village_code,
            ClaimSettled(
                loan_id=loss.loan_id,
                party=party,
                amount=format_money(claim_amount(loss, party, settlement)),
                reference=reference,
                settled_by=settled_by,
                batch_id=batch_id,
            ),
        ),
    )
    return settlement
