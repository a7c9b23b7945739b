"""``vcredit rebuild risk``: recompute every projection by replaying the subscribed topics
from the beginning, in one transaction, without emitting or deciding anything again.

Run it with the risk service stopped (or scaled to zero): events that arrive during the
rebuild are left to the live consumer, whose inbox then skips the ones replayed here.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import Table, delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.risk import breaker, context
from services.risk.handlers import HANDLERS
from services.risk.models import DERIVED_FUND_ENTRIES, PROJECTIONS, FundEntry, RiskBase
from services.risk.rows import finish, prefetch
from shared.bus.base import Bus, Message, batches_to_end
from shared.events import Envelope
from shared.messaging import record_batch_in_inbox, topics_of

CONSUMER = "risk"


async def rebuild(sessions: async_sessionmaker[AsyncSession], bus: Bus, *, topic_prefix: str = "") -> int:
    """Replay everything on the topics now; the number of events applied."""
    reader = bus.consumer(
        f"{topic_prefix}vcredit-risk-rebuild-{uuid.uuid4()}", [topic_prefix + t for t in topics_of(HANDLERS)]
    )
    await reader.start()
    applied = 0
    seen: set[str] = set()
    try:
        async with sessions() as session:
            context.start_replay(session)
            async with session.begin():
                for model in PROJECTIONS:
                    await session.execute(delete(model))
                await session.execute(delete(FundEntry).where(FundEntry.kind.in_(DERIVED_FUND_ENTRIES)))
                async for batch in batches_to_end(reader, max_records=1000):
                    applied += await _apply(session, batch, seen)
                await breaker.settle(session)
    finally:
        await reader.stop()
    return applied


async def _apply(session: AsyncSession, batch: Sequence[Message], seen: set[str]) -> int:
    pairs = [(m, Envelope.from_bytes(m.value)) for m in batch]
    pairs = [(m, e) for m, e in pairs if e.type in HANDLERS]
    if not pairs:
        return 0
    # The live consumer may not have seen all of these yet; it must not apply them twice.
    await record_batch_in_inbox(session, CONSUMER, pairs)
    await prefetch(session, [e for _, e in pairs])
    applied = 0
    for _, envelope in pairs:
        if str(envelope.event_id) in seen:  # a redelivered duplicate on the topic
            continue
        seen.add(str(envelope.event_id))
        await HANDLERS[envelope.type](session, envelope)
        applied += 1
    # As the live consumer does after a batch; the next batch, in the same transaction (one
    # for the whole rebuild), reads its rows afresh.
    await finish(session)
    return applied


async def dump(session: AsyncSession) -> str:
    """The projections as canonical JSON (surrogate ids left out, rows in key order): two
    dumps are equal exactly when the projections are."""
    out: dict[str, list[dict[str, Any]]] = {}
    models: tuple[type[RiskBase], ...] = (*PROJECTIONS, FundEntry)
    for model in models:
        table = cast(Table, model.__table__)
        columns = [c for c in table.columns if not (c.primary_key and c.autoincrement is True and c.name == "id")]
        keys = [c for c in table.primary_key.columns if c in columns] or columns
        rows = await session.execute(select(*columns).order_by(*keys, *columns))
        out[table.name] = [{c.name: _plain(v) for c, v in zip(columns, row, strict=True)} for row in rows]
    return json.dumps(out, sort_keys=True, ensure_ascii=False, indent=1)


def _plain(value: object) -> object:
    if isinstance(value, Decimal | date | datetime):
        return str(value)
    return value
