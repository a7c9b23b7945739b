"""The rows loan events move, held in memory for a consumer batch: loan positions, village
figures, village days and overdue years. The consumer's ``prefetch`` hook reads a batch's
(an event applied alone reads its own as it goes) and its ``finish`` hook writes them.

Hundreds of loan events arrive in one batch and most touch the same few villages. As ORM
objects, each event paid for loading its position, for its share of the unit of work and for
the autoflushes before a township's queries: the projections ran at about 3,500 events a
second, below issue 8's 5,000. Here a batch's positions and villages are read in two queries
as plain records, the handlers change them in memory, and ``Rows.write`` puts back what
changed with one statement per table and set of changed columns. Village days and overdue
years are written without being read (upsert, insert-or-ignore).

Code that reads villages with SQL inside the batch (a township's count of villages over the
line) overlays the batch's own on what the database answers, as the ORM's identity map did.
Everything else (townships, overrides, losses, the fund) stays ORM: it changes rarely. The
townships and overrides a batch needs are read in one query each, on first need: a village
that crosses the line needs both, and each query is a round trip.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import date
from decimal import Decimal
from operator import attrgetter
from typing import Any, Generic, TypeVar

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.risk.models import LoanPosition, OverdueYear, Township, Village, VillageDay, VillageOverride
from shared.bulk import among, insert_rows, update_rows
from shared.events import Envelope

_KEY = "risk_rows"


@dataclass(slots=True)
class Position:
    """A ``loan_positions`` row (fields named and ordered as its columns)."""

    loan_id: str
    subject_kind: str
    subject_id: str
    village_code: str
    township_code: str
    disbursed_on: date | None
    outstanding: Decimal
    non_performing: bool
    classification: str
    status: str


@dataclass(slots=True)
class VillageRow:
    """A ``villages`` row (fields named and ordered as its columns)."""

    code: str
    name: str
    township_code: str
    outstanding: Decimal
    non_performing: Decimal
    npl_ratio: Decimal
    over: bool
    over_since: date | None
    frozen: bool


R = TypeVar("R", Position, VillageRow)


def _table(model: type[Any]) -> Table:
    table: Table = model.__table__
    return table


class _Mirror(Generic[R]):
    """One table's rows of the batch: each as last read or written, and as it is now.

    A row is updated only in the columns that changed, as the ORM did: the registry's
    village events and a manual freeze write other columns of the same village, maybe in
    another transaction at the same moment. Rows ``shared`` with such writers are updated
    in key order (executemany), so that two transactions lock them alike; the others, a
    partition's own, in one statement (shared.bulk).
    """

    def __init__(self, table: Table, record: type[R], *, shared: bool) -> None:
        self.table = table
        self.record: type[R] = record
        self.shared = shared
        self.columns = [f.name for f in fields(record)]
        assert self.columns == [c.name for c in table.columns], f"{record.__name__} does not mirror {table.name}"
        (key,) = table.primary_key.columns
        self.key = key
        self._key_at = self.columns.index(key.name)
        self._values = attrgetter(*self.columns)
        self.rows: dict[str, R | None] = {}
        self._saved: dict[str, tuple[Any, ...]] = {}

    async def load(self, session: AsyncSession, keys: Collection[str]) -> None:
        keys = [k for k in keys if k not in self.rows]
        if not keys:
            return
        query = select(*(self.table.c[c] for c in self.columns)).where(among(session, self.key, keys))
        for values in await session.execute(query):
            key = values[self._key_at]
            self.rows[key] = self.record(*values)
            self._saved[key] = tuple(values)
        for k in keys:
            self.rows.setdefault(k, None)

    async def get(self, session: AsyncSession, key: str) -> R | None:
        if key not in self.rows:
            await self.load(session, [key])
        return self.rows[key]

    def add(self, key: str, row: R) -> R:
        # Inserted by ``write``; a key the table already holds fails there, as it did with the ORM.
        self.rows[key] = row
        return row

    async def write(self, session: AsyncSession) -> None:
        """Insert the new rows and update the changed ones."""
        # Thousands of rows a batch: changed columns are found by position, and the
        # statements' parameters built once per row (this diff was 8% of the consumer's CPU).
        columns, saved_rows, values = self.columns, self._saved, self._values
        width = range(len(columns))
        inserts: list[dict[str, Any]] = []
        updates: dict[tuple[int, ...], list[tuple[Any, ...]]] = {}
        for key in sorted(k for k, row in self.rows.items() if row is not None):  # in key order, as the ORM
            now: tuple[Any, ...] = values(self.rows[key])
            saved = saved_rows.get(key)
            if saved is None:
                inserts.append(dict(zip(columns, now, strict=True)))
            elif now != saved:
                updates.setdefault(tuple([i for i in width if now[i] != saved[i]]), []).append(now)
            else:
                continue
            saved_rows[key] = now
        await insert_rows(session, self.table, inserts)
        for changed, rows in updates.items():
            assert self._key_at not in changed, f"the key of {self.table.name} changed"
            pk = "pk" if self.shared else self.key.name
            params = [{pk: row[self._key_at], **{columns[i]: row[i] for i in changed}} for row in rows]
            if self.shared:
                # Core executemany: SET takes the columns the parameters name besides "pk".
                await session.execute(update(self.table).where(self.key == bindparam("pk")), params)
            else:
                await update_rows(session, self.table, params)


class Rows:
    """A batch's positions, villages, village days and overdue years (see the module)."""

    def __init__(self) -> None:
        # A loan's events and its village's are in one partition; the registry's village
        # events and manual freezes write villages too.
        self.positions = _Mirror(_table(LoanPosition), Position, shared=False)
        self.villages = _Mirror(_table(Village), VillageRow, shared=True)
        self._townships: dict[str, Township | None] = {}
        self._township_codes: set[str] = set()
        # The townships of the batch's villages the database does not have yet: their first
        # event creates village and township (breaker.village), so the batch will create them.
        self._new_townships: set[str] = set()
        self._overrides: dict[str, VillageOverride | None] = {}
        # Townships whose row this transaction has locked (breaker.reassess_township): held
        # until the commit, so a second lock in the same batch would only repeat the answer.
        self.locked_townships: set[str] = set()
        # Written as they stand at the end, never read: a day's last figures and years seen.
        self._days: dict[tuple[str, date], tuple[Decimal, Decimal]] = {}
        self._overdue: set[tuple[str, int]] = set()

    async def load(self, session: AsyncSession, events: Iterable[Envelope]) -> None:
        loans: set[str] = set()
        villages: set[str] = set()
        # The township of each village as the first event that may create the village says.
        creating: dict[str, str] = {}
        for event in events:
            payload = event.payload
            if event.type.startswith("registry.village.") and "code" in payload:
                villages.add(str(payload["code"]))
                if event.type == "registry.village.created" and "township_code" in payload:
                    creating.setdefault(str(payload["code"]), str(payload["township_code"]))
            elif event.type.startswith("loans.") and "village_code" in payload:
                villages.add(str(payload["village_code"]))
                if "township_code" in payload:
                    self._township_codes.add(str(payload["township_code"]))
                # A disbursement's position is new: nothing to read.
                if "loan_id" in payload and event.type != "loans.loan.disbursed":
                    loans.add(str(payload["loan_id"]))
                elif event.type == "loans.loan.disbursed" and "township_code" in payload:
                    creating.setdefault(str(payload["village_code"]), str(payload["township_code"]))
        await self.positions.load(session, loans)
        await self.villages.load(session, villages)
        self._new_townships = {t for v, t in creating.items() if self.villages.rows.get(v) is None}

    async def township(self, session: AsyncSession, code: str) -> Township | None:
        if code not in self._townships:
            codes = {code} | self._township_codes - self._townships.keys()
            for t in await session.scalars(select(Township).where(among(session, _table(Township).c.code, codes))):
                self._townships[t.code] = t
            for c in codes:
                self._townships.setdefault(c, None)
        return self._townships[code]

    async def create_township(self, session: AsyncSession, code: str) -> Township:
        """Create a township first seen now, with those the batch will create, in code order.

        Each replica consuming other partitions may see the same new township at once (its
        villages' events are on different partitions). An INSERT that ignores a key already
        there waits for the other's transaction and then leaves its row, where an ORM insert
        failed that replica's whole batch (a unique violation), which was then applied again
        one event at a time. Rows inserted in code order, all in one statement, are locked in
        that order by every replica, so two creating the same few townships cannot deadlock.
        """
        codes = sorted({code} | {c for c in self._new_townships if self._townships.get(c) is None})
        empty = [{"code": c, "name": "", "halted": False} for c in codes]
        await insert_rows(session, _table(Township), empty, conflict="ignore")
        for t in await session.scalars(select(Township).where(among(session, _table(Township).c.code, codes))):
            self._townships[t.code] = t
        self._new_townships.difference_update(codes)
        created = self._townships[code]
        assert created is not None, f"township {code} was inserted but not found"
        return created

    async def override(self, session: AsyncSession, village_code: str) -> VillageOverride | None:
        """The manual decision in force for a village of the batch, if any."""
        if village_code not in self._overrides:
            codes = {village_code} | self.villages.rows.keys() - self._overrides.keys()
            query = select(VillageOverride).where(among(session, _table(VillageOverride).c.village_code, codes))
            for o in await session.scalars(query):
                self._overrides[o.village_code] = o
            for c in codes:
                self._overrides.setdefault(c, None)
        return self._overrides[village_code]

    def drop_override(self, village_code: str) -> None:
        self._overrides[village_code] = None

    def own_villages(self) -> Iterable[VillageRow]:
        """The villages the batch holds, as they are now."""
        return (v for v in self.villages.rows.values() if v is not None)

    def set_day(self, village: VillageRow, business_date: date) -> None:
        """The village's figures at the end of ``business_date`` are its figures now."""
        self._days[(village.code, business_date)] = (village.outstanding, village.non_performing)

    def overdue(self, subject_id: str, year: int) -> None:
        self._overdue.add((subject_id, year))

    async def write(self, session: AsyncSession) -> None:
        """Put every change since the last write into the database, in the session's transaction."""
        await self.villages.write(session)
        await self.positions.write(session)
        days = [
            {"village_code": v, "business_date": d, "outstanding": o, "non_performing": n}
            for (v, d), (o, n) in sorted(self._days.items())
        ]
        await insert_rows(session, _table(VillageDay), days, conflict="update")
        self._days.clear()
        overdue = [{"subject_id": s, "year": y} for s, y in sorted(self._overdue)]
        await insert_rows(session, _table(OverdueYear), overdue, conflict="ignore")
        self._overdue.clear()


def rows_of(session: AsyncSession) -> Rows:
    """The transaction's rows; changes to them reach the database only through ``finish``."""
    rows: Rows | None = session.info.get(_KEY)
    if rows is None:
        rows = session.info[_KEY] = Rows()
    return rows


async def prefetch(session: AsyncSession, events: Sequence[Envelope]) -> None:
    """The consumer's prefetch hook: a batch's positions and villages, in two queries."""
    await rows_of(session).load(session, events)


async def finish(session: AsyncSession) -> None:
    """The consumer's finish hook (after a batch's handlers, or one event's): write what
    they changed. The next batch of the same transaction (a rebuild) starts afresh."""
    rows: Rows | None = session.info.pop(_KEY, None)
    if rows is not None:
        await rows.write(session)
