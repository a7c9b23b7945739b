"""Insurer claims in batches (DOMAIN §7, issue 25 item 2): once a period (a month by default)
the bank or the government files the insurer's open claims on realised losses (004 §6(1)) in
one batch, each line with the loss's details; the insurer accepts or disputes each line, a
dispute with its reason; the batch is then settled: each accepted claim at its amount net of
the recoveries so far (``losses.record_settlement``, 004 §4(1)6; recoveries after it are owed
back to the insurer, as for a claim settled one by one), each disputed claim open again, for
the next period's batch or a settlement one by one.

A claim in an open batch is in no other batch and is not settled one by one (409
CLAIM_IN_BATCH, ``losses.settle_claim``); both lock the loss row, so neither misses the other.
Batches are records of commands, like claim settlements: ``vcredit rebuild risk`` keeps them.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Literal

from sqlalchemy import exists, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.risk import losses
from services.risk.context import business_date, settings
from services.risk.domain import claim_batches as rules
from services.risk.models import ClaimBatch, ClaimBatchLine, ClaimSettlement, Loss, Township, Village
from shared.auth import Principal
from shared.catalogue import ClaimBatchFiled, ClaimBatchSettled
from shared.events import new_event
from shared.messaging import emit
from shared.money import format_money
from shared.problems import Problem
from shared.web import ensure_second_principal, require_role

# Only the insurer's claims are batched (DOMAIN §7); the bank's share stays one by one.
BatchParty = Literal["insurer"]
Decision = Literal["accept", "dispute"]
ZERO = Decimal("0.00")


@dataclass(frozen=True)
class Totals:
    lines: int
    loss: Decimal
    share: Decimal
    recovered: Decimal
    payable: Decimal
    accepted: int
    disputed: int
    undecided: int


def totals(lines: Sequence[ClaimBatchLine]) -> Totals:
    return Totals(
        lines=len(lines),
        loss=sum((line.loss for line in lines), ZERO),
        share=sum((line.share for line in lines), ZERO),
        recovered=sum((line.recovered for line in lines), ZERO),
        payable=sum((line.payable for line in lines), ZERO),
        accepted=sum(1 for line in lines if line.decision == "accept"),
        disputed=sum(1 for line in lines if line.decision == "dispute"),
        undecided=sum(1 for line in lines if line.decision is None),
    )


async def file_batch(session: AsyncSession, party: BatchParty, month: str, filed_by: str) -> ClaimBatch:
    """File the period's batch: every open claim of ``party`` on a loss written off by the
    period's end that is in no open batch, older ones (disputed, or missed) included."""
    try:
        first, last = rules.period(month, settings().claim_batch_months)
    except ValueError as error:
        raise Problem(422, "CLAIM_BATCH_PERIOD_INVALID", "Not a batch period", str(error), field="month") from error
    today = await business_date(session)
    if not rules.ended(last, today):
        raise Problem(
            422,
            "CLAIM_BATCH_PERIOD_NOT_ENDED",
            "Period not ended",
            f"The period {first} to {last} has not ended: the business date is {today}.",
            field="month",
        )
    if await _existing(session, party, month) is not None:
        raise _exists(party, month)
    share = Loss.insurer
    candidates = (
        select(Loss)
        .where(
            Loss.business_date <= last,
            share > 0,
            ~exists().where(ClaimSettlement.loan_id == Loss.loan_id, ClaimSettlement.party == party),
            ~exists().where(
                ClaimBatchLine.loan_id == Loss.loan_id, ClaimBatchLine.party == party, ClaimBatchLine.holding
            ),
        )
        .order_by(Loss.business_date, Loss.loan_id)
        .with_for_update(of=Loss)
    )
    found = list(await session.scalars(candidates))
    # The rows are locked now; a settlement or batch committed while this waited for them is
    # seen by these fresh reads (PostgreSQL re-reads only the locked rows themselves).
    ids = [loss.loan_id for loss in found]
    settled = set(
        await session.scalars(
            select(ClaimSettlement.loan_id).where(ClaimSettlement.loan_id.in_(ids), ClaimSettlement.party == party)
        )
    )
    held = set(
        await session.scalars(
            select(ClaimBatchLine.loan_id).where(
                ClaimBatchLine.loan_id.in_(ids), ClaimBatchLine.party == party, ClaimBatchLine.holding
            )
        )
    )
    found = [loss for loss in found if loss.loan_id not in settled | held]
    if not found:
        raise Problem(
            409,
            "CLAIM_BATCH_EMPTY",
            "Nothing to claim",
            f"The {party} has no open claim on a loss written off by {last} outside an open batch.",
        )
    village_names = await _names(session, Village, {loss.village_code for loss in found})
    township_names = await _names(session, Township, {loss.township_code for loss in found})
    batch = ClaimBatch(
        id=str(uuid.uuid4()),
        party=party,
        month=month,
        period_start=first,
        period_end=last,
        status="filed",
        filed_by=filed_by,
        filed_on=today,
        filed_at=datetime.now(UTC),
    )
    session.add(batch)
    lines = [
        ClaimBatchLine(
            batch_id=batch.id,
            loan_id=loss.loan_id,
            party=party,
            village_code=loss.village_code,
            village_name=village_names.get(loss.village_code, ""),
            township_code=loss.township_code,
            township_name=township_names.get(loss.township_code, ""),
            written_off_on=loss.business_date,
            loss=loss.loss,
            share=losses.share_of(loss, party),
            recovered=losses.recovered_of(loss, party),
            payable=losses.claim_amount(loss, party, None),
            holding=True,
        )
        for loss in found
    ]
    session.add_all(lines)
    try:
        await session.flush()
    except IntegrityError as error:  # filed at the same moment by another request
        raise _exists(party, month) from error
    sums = totals(lines)
    await emit(
        session,
        new_event(
            "risk.claim_batch.filed",
            party,
            ClaimBatchFiled(
                batch_id=batch.id,
                party=party,
                month=month,
                period_start=first,
                period_end=last,
                lines=sums.lines,
                loss=format_money(sums.loss),
                share=format_money(sums.share),
                recovered=format_money(sums.recovered),
                payable=format_money(sums.payable),
                filed_by=filed_by,
                filed_on=today,
            ),
        ),
    )
    return batch


async def decide(
    session: AsyncSession, batch_id: str, loan_id: str, decision: Decision, reason: str | None, principal: Principal
) -> ClaimBatchLine:
    """The party's decision on one line; final once made (the same decision again is a no-op,
    another is 409 CLAIM_LINE_DECIDED)."""
    batch = await _locked(session, batch_id)
    if batch.status != "filed":
        raise _settled(batch)
    # Whoever filed the claim does not also accept it for the insurer (four eyes).
    ensure_second_principal(principal, batch.filed_by, "claim batch")
    line = await session.get(ClaimBatchLine, (batch_id, loan_id))
    if line is None:
        raise Problem(404, "CLAIM_LINE_NOT_FOUND", "No such line", f"Claim batch {batch_id} has no loan {loan_id}.")
    try:
        kept = rules.dispute_reason(decision, reason)
    except ValueError as error:
        raise Problem(422, "DISPUTE_REASON_REQUIRED", "Reason required", str(error), field="reason") from error
    if line.decision is not None:
        if (line.decision, line.reason) == (decision, kept):
            return line
        raise Problem(
            409,
            "CLAIM_LINE_DECIDED",
            "Line already decided",
            f"Loan {loan_id}'s line was decided ({line.decision}) by {line.decided_by}.",
            decision=line.decision,
        )
    line.decision, line.reason = decision, kept
    line.decided_by, line.decided_at = principal.name, datetime.now(UTC)
    return line


async def settle(
    session: AsyncSession, batch_id: str, reference: str, principal: Principal
) -> tuple[ClaimBatch, list[ClaimBatchLine]]:
    """Settle a batch whose every line is decided: accepted claims settled at their amounts
    now, disputed ones released to open."""
    batch = await _locked(session, batch_id)
    # As one by one (losses.settle_claim's route): the party that pays, or the government.
    require_role(principal, batch.party, "government")
    if batch.status != "filed":
        raise _settled(batch)
    lines = await lines_of(session, batch_id)
    undecided = [line.loan_id for line in lines if line.decision is None]
    if undecided:
        raise Problem(
            409,
            "CLAIM_BATCH_UNDECIDED",
            "Lines undecided",
            f"{len(undecided)} line(s) of claim batch {batch_id} are not yet accepted or disputed.",
            loan_ids=undecided,
        )
    accepted = [line for line in lines if line.decision == "accept"]
    # Locked as a recovery (the consumer) and a settlement one by one lock them: the amount
    # settled is net of every recovery committed before it.
    locked = {
        loss.loan_id: loss
        for loss in await session.scalars(
            select(Loss).where(Loss.loan_id.in_([line.loan_id for line in accepted])).with_for_update()
        )
    }
    party: BatchParty = "insurer"
    for line in accepted:
        settlement = await losses.record_settlement(
            session, locked[line.loan_id], party, reference, principal.name, batch.id
        )
        line.settled_amount = settlement.amount
    for line in lines:
        line.holding = False
    batch.status = "settled"
    batch.reference, batch.settled_by = reference, principal.name
    batch.settled_on, batch.settled_at = await business_date(session), datetime.now(UTC)
    batch.settled_total = rules.settled_total(line.settled_amount or ZERO for line in accepted)
    await emit(
        session,
        new_event(
            "risk.claim_batch.settled",
            batch.party,
            ClaimBatchSettled(
                batch_id=batch.id,
                party=party,
                month=batch.month,
                accepted=len(accepted),
                disputed=len(lines) - len(accepted),
                settled=format_money(batch.settled_total),
                reference=reference,
                settled_by=principal.name,
                settled_on=batch.settled_on,
            ),
        ),
    )
    return batch, lines


async def batch_of(session: AsyncSession, batch_id: str) -> ClaimBatch:
    batch = await session.get(ClaimBatch, batch_id)
    if batch is None:
        raise _not_found(batch_id)
    return batch


async def lines_of(session: AsyncSession, batch_id: str) -> list[ClaimBatchLine]:
    query = select(ClaimBatchLine).where(ClaimBatchLine.batch_id == batch_id)
    return list(await session.scalars(query.order_by(ClaimBatchLine.written_off_on, ClaimBatchLine.loan_id)))


async def listed(
    session: AsyncSession, party: BatchParty | None, status: Literal["filed", "settled"] | None, limit: int, offset: int
) -> list[tuple[ClaimBatch, list[ClaimBatchLine]]]:
    query = select(ClaimBatch).order_by(ClaimBatch.party, ClaimBatch.month).limit(limit).offset(offset)
    if party is not None:
        query = query.where(ClaimBatch.party == party)
    if status is not None:
        query = query.where(ClaimBatch.status == status)
    batches = list(await session.scalars(query))
    by_batch: dict[str, list[ClaimBatchLine]] = {batch.id: [] for batch in batches}
    for line in await session.scalars(select(ClaimBatchLine).where(ClaimBatchLine.batch_id.in_(list(by_batch)))):
        by_batch[line.batch_id].append(line)
    return [(batch, by_batch[batch.id]) for batch in batches]


async def _existing(session: AsyncSession, party: str, month: str) -> ClaimBatch | None:
    batch: ClaimBatch | None = await session.scalar(
        select(ClaimBatch).where(ClaimBatch.party == party, ClaimBatch.month == month)
    )
    return batch


async def _names(session: AsyncSession, model: type[Village] | type[Township], codes: set[str]) -> dict[str, str]:
    rows = await session.execute(select(model.code, model.name).where(model.code.in_(codes)))
    return {code: name for code, name in rows.all()}


async def _locked(session: AsyncSession, batch_id: str) -> ClaimBatch:
    """The batch, locked: its decisions and its settlement happen one at a time."""
    batch = await session.get(ClaimBatch, batch_id, with_for_update=True)
    if batch is None:
        raise _not_found(batch_id)
    return batch


def _not_found(batch_id: str) -> Problem:
    return Problem(404, "CLAIM_BATCH_NOT_FOUND", "No such claim batch", f"No claim batch {batch_id}.")


def _exists(party: str, month: str) -> Problem:
    return Problem(
        409, "CLAIM_BATCH_EXISTS", "Batch already filed", f"The {party}'s claim batch for {month} is already filed."
    )


def _settled(batch: ClaimBatch) -> Problem:
    return Problem(
        409,
        "CLAIM_BATCH_SETTLED",
        "Batch settled",
        f"Claim batch {batch.id} was settled on {batch.settled_on}; its lines can no longer change.",
    )
