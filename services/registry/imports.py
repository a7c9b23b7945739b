"""Import of a village's household collection sheet (采集表).

Every row is validated first; good rows are written in batches, one transaction per
batch; bad rows come back in the report with row number, field and reason. A row whose
household is already registered with the same facts changes nothing, so importing the
same file twice changes nothing the second time.

Reading and validating the sheet is CPU work of seconds for a large one. It runs in a worker
thread, not on the event loop that every service shares under ``vcredit up`` (issue 21: a
30 s parse held every service's ``/healthz`` for 30 s), and within the limits of
``RegistrySettings.sheet_limits``. The report lists the first
``VCREDIT_REGISTRY_IMPORT_REPORT_MAX_ERRORS`` errors and counts them all.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.registry.domain.provenance import FactRefused, check_sources
from services.registry.domain.sheet import SheetError, SheetLimits, SheetRow, SheetTooLarge, parse_sheet
from services.registry.households import (
    NewHousehold,
    duplicate_people,
    new_household,
    persons_by_hash,
    register_households,
)
from services.registry.models import Household, Import, Village
from services.registry.schemas import HouseholdIn, ImportReport, RowError
from services.registry.subjects import Provenance, change_facts, current_facts
from shared.pii import PiiCipher
from shared.problems import Problem
from shared.redaction import mask_resident_ids

BATCH = 500
_T = TypeVar("_T")

# One sheet is read at a time, off the event loop. Python runs one thread at a time (the GIL):
# a second reader would not be faster, and would take the GIL from the event loop as often.
_SHEET_WORKER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="registry-sheet")


async def _off_the_loop(work: Callable[[], _T]) -> _T:
    return await asyncio.get_running_loop().run_in_executor(_SHEET_WORKER, work)


@dataclass
class _Outcome:
    registered: int = 0
    updated: int = 0
    unchanged: int = 0


@dataclass
class _Errors:
    """Every error counted; only the first ``listed`` by row and field kept in full."""

    listed: int
    total: int = 0
    by_field: Counter[str] = field(default_factory=Counter)
    rows: set[int] = field(default_factory=set)
    _kept: list[RowError] = field(default_factory=list)

    def add(self, *errors: RowError) -> None:
        for error in errors:
            self.total += 1
            self.by_field[error.field] += 1
            self.rows.add(error.row)
            self._kept.append(error)
        # Writing reports errors of rows before ones already refused, so what is kept is
        # sorted and cut again at the end; in between, only often enough to bound memory.
        if len(self._kept) > 2 * self.listed + BATCH:
            self._trim()

    def _trim(self) -> None:
        self._kept.sort(key=lambda e: (e.row, e.field))
        del self._kept[self.listed :]

    def first(self) -> list[RowError]:
        self._trim()
        # A cell in the wrong column is quoted back in its reason: never a full ID number.
        return [e.model_copy(update={"reason": mask_resident_ids(e.reason)}) for e in self._kept]


def _validation_errors(number: int, exc: ValidationError) -> list[RowError]:
    errors = []
    for e in exc.errors():
        loc = [str(p) for p in e["loc"] if not isinstance(p, int)]
        errors.append(RowError(row=number, field=".".join(loc) or "row", reason=e["msg"]))
    return errors


def _validate(
    rows: Sequence[SheetRow], village: Village, provenance: Provenance, cipher: PiiCipher, errors: _Errors
) -> list[tuple[int, NewHousehold]]:
    good: list[tuple[int, NewHousehold]] = []
    first_row_of: dict[str, int] = {}
    for row in rows:
        if row.errors:
            errors.add(*(RowError(row=row.number, field=f, reason=r) for f, r in row.errors))
            continue
        values: dict[str, Any] = {**row.values}
        if values.setdefault("village_code", village.code) != village.code:
            errors.add(
                RowError(row=row.number, field="village_code", reason=f"this sheet is for village {village.code}")
            )
            continue
        try:
            body = HouseholdIn.model_validate(values)
        except ValidationError as exc:
            errors.add(*_validation_errors(row.number, exc))
            continue
        try:
            check_sources(body.profile.model_fields_set, provenance.source)
        except FactRefused as exc:
            errors.add(RowError(row=row.number, field=f"profile.{exc.field}", reason=exc.reason))
            continue
        item = new_household(body, village, cipher)
        if (reason := duplicate_people(item)) is not None:
            errors.add(RowError(row=row.number, field="members", reason=reason))
            continue
        if item.head_hash in first_row_of:
            errors.add(
                RowError(
                    row=row.number,
                    field="id_number",
                    reason=f"the same ID number as row {first_row_of[item.head_hash]}",
                )
            )
            continue
        first_row_of[item.head_hash] = row.number
        good.append((row.number, item))
    return good


async def _write_batch(
    session: AsyncSession,
    cipher: PiiCipher,
    village: Village,
    batch: Sequence[tuple[int, NewHousehold]],
    provenance: Provenance,
    outcome: _Outcome,
    errors: _Errors,
) -> None:
    known = await persons_by_hash(session, {k: v for _, item in batch for k, v in item.lookups.items()})
    existing_ids = list({known[item.head_hash].household_id for _, item in batch if item.head_hash in known})
    query = select(Household).where(Household.id.in_(existing_ids)).with_for_update()
    households = {h.id: h for h in await session.scalars(query)} if existing_ids else {}
    facts = await current_facts(session, list(households))
    new: list[NewHousehold] = []
    for number, item in batch:
        head = known.get(item.head_hash)
        if head is None:
            clash = next((h for h in item.member_hashes if h and h in known), None)
            if clash is not None:
                errors.add(
                    RowError(
                        row=number, field="members", reason="a member already belongs to another registered household"
                    )
                )
                continue
            new.append(item)
            continue
        if not head.is_head:
            errors.add(
                RowError(
                    row=number, field="id_number", reason="this person is registered as a member of another household"
                )
            )
            continue
        household = households[head.household_id]
        if household.village_code != village.code:
            errors.add(
                RowError(row=number, field="id_number", reason=f"registered in village {household.village_code}")
            )
            continue
        # A blank cell means "not known here", not "no longer true": only stated values count.
        stated = {
            f: v
            for f, v in item.body.profile.model_dump(mode="json").items()
            if f in item.body.profile.model_fields_set and v is not None
        }
        changed = await change_facts(
            session, household, stated, provenance, poor_household=item.body.poor_household, current=facts[household.id]
        )
        if changed:
            outcome.updated += 1
        else:
            outcome.unchanged += 1
    if new:
        await register_households(session, cipher, new, provenance)
        outcome.registered += len(new)


async def import_sheet(
    sessions: async_sessionmaker[AsyncSession],
    cipher: PiiCipher,
    village_code: str,
    data: bytes,
    *,
    filename: str | None,
    content_type: str | None,
    provenance: Provenance,
    limits: SheetLimits,
    report_max_errors: int,
) -> ImportReport:
    def read() -> tuple[list[SheetRow], str]:
        rows = parse_sheet(data, filename=filename, content_type=content_type, limits=limits)
        return rows, hashlib.sha256(data).hexdigest()

    try:
        rows, digest = await _off_the_loop(read)
    except SheetTooLarge as exc:
        detail = f"{exc}; nothing was imported."
        raise Problem(413, "SHEET_TOO_LARGE", "Sheet too large", detail, field="body") from None
    except SheetError as exc:
        raise Problem(422, "UNREADABLE_SHEET", "Unreadable sheet", str(exc), field="body") from None
    async with sessions() as session:
        village = await session.get(Village, village_code)
    if village is None:
        raise Problem(404, "VILLAGE_NOT_FOUND", "Village not found", f"No village {village_code}.")

    errors = _Errors(listed=report_max_errors)
    good = await _off_the_loop(lambda: _validate(rows, village, provenance, cipher, errors))
    outcome = _Outcome()
    for start in range(0, len(good), BATCH):
        async with sessions() as session, session.begin():
            await _write_batch(session, cipher, village, good[start : start + BATCH], provenance, outcome, errors)

    listed = errors.first()
    report = ImportReport(
        import_id=str(uuid.uuid4()),
        village_code=village_code,
        rows=len(rows),
        registered=outcome.registered,
        updated=outcome.updated,
        unchanged=outcome.unchanged,
        failed=len(errors.rows),
        errors=listed,
        errors_total=errors.total,
        errors_truncated=len(listed) < errors.total,
        errors_by_field=dict(sorted(errors.by_field.items())),
    )
    async with sessions() as session, session.begin():
        session.add(
            Import(
                id=report.import_id,
                village_code=village_code,
                file_sha256=digest,
                filename=filename,
                rows=report.rows,
                registered=report.registered,
                updated=report.updated,
                unchanged=report.unchanged,
                failed=report.failed,
                report=json.dumps([e.model_dump() for e in listed], ensure_ascii=False),
                errors_total=report.errors_total,
                errors_by_field=json.dumps(report.errors_by_field, ensure_ascii=False),
                imported_by=provenance.supplied_by,
                imported_at=datetime.now(UTC),
            )
        )
    return report
