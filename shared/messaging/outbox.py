"""The transactional outbox: ``emit`` writes events in the caller's transaction; the
session class that wakes the relay when a commit wrote outbox rows."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from sqlalchemy import event as _sa_event
from sqlalchemy import (
    insert,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from shared.events import Envelope
from shared.platform_tables import outbox
from shared.tracing import current_carrier

# --- outbox -------------------------------------------------------------------------------


class OutboxSession(Session):
    """Session class whose commits wake the relay when they wrote outbox rows."""

    wake_relay: Callable[[], None] | None = None


def session_class_for(wake: Callable[[], None]) -> type[OutboxSession]:
    return type("ServiceSession", (OutboxSession,), {"wake_relay": staticmethod(wake)})


def _after_commit(session: Session) -> None:
    if session.info.pop("vcredit_outbox", False) and isinstance(session, OutboxSession) and session.wake_relay:
        session.wake_relay()


def _after_rollback(session: Session) -> None:
    session.info.pop("vcredit_outbox", None)


_sa_event.listen(OutboxSession, "after_commit", _after_commit)
_sa_event.listen(OutboxSession, "after_soft_rollback", lambda session, _tx: _after_rollback(session))


async def emit(session: AsyncSession, *events: Envelope) -> None:
    """Record events in the outbox, in the caller's transaction."""
    if not events:
        return
    await session.execute(insert(outbox), outbox_rows(events))
    emitted(session)


# The columns ``outbox_rows`` fills (the rest: the id, and sent_at once the relay sent it).
OUTBOX_COLUMNS = ("event_id", "topic", "key", "type", "envelope", "created_at", "trace_context")


def outbox_rows(events: Sequence[Envelope]) -> list[dict[str, object]]:
    """The outbox rows of ``events``, in order, for ``emit`` or a caller that inserts them in a
    statement of its own (services/loans/repayment_statement.py) and then calls ``emitted``."""
    now = datetime.now(UTC)
    trace_context = current_carrier()
    return [
        {
            "event_id": str(e.event_id),
            "topic": e.topic,
            "key": e.key,
            "type": e.type,
            "envelope": e.model_dump_json(),
            "created_at": now,
            "trace_context": trace_context,
        }
        for e in events
    ]


def emitted(session: AsyncSession) -> None:
    """The session's transaction wrote outbox rows: its commit wakes the relay."""
    session.info["vcredit_outbox"] = True
