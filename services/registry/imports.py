"""Import of a village's household collection sheet (采集表).

Every row is validated first; good rows are written in batches, one transaction per
batch; bad rows come back in the report with row number, field and reason. A row whose
household is already registered with the same facts changes nothing, so importing the
same file twice changes nothing the second time.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.registry.domain.provenance import FactRefused, check_sources
from services.registry.domain.sheet import SheetError, SheetRow, parse_sheet
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


@dataclass
class _Outcome:
    registered: int = 0
    updated: int = 0
    unchanged: int = 0


def _validation_errors(number: int, exc: ValidationError) -> list[RowError]:
    errors = []
    for e in exc.errors():
        loc = [str(p) for p in e["loc"] if not isinstance(p, int)]
        errors.append(RowError(row=number, field=".".join(loc) or "row", reason=e["msg"]))
    return errors


def _validate(
    rows: Sequence[SheetRow], village: Village, provenance: Provenance, cipher: PiiCipher
) -> tuple[list[tuple[int, NewHousehold]], list[RowError]]:
    good: list[tuple[int, NewHousehold]] = []
    errors: list[RowError] = []
    first_row_of: dict[str, int] = {}
    for row in rows:
        if row.errors:
            errors.extend(RowError(row=row.number, field=f, reason=r) for f, r in row.errors)
            continue
        values: dict[str, Any] = {**row.values}
        if values.setdefault("village_code", village.code) != village.code:
            errors.append(
                RowError(row=row.number, field="village_code", reason=f"this sheet is for village {village.code}")
            )
            continue
        try:
            body = HouseholdIn.model_validate(values)
        except ValidationError as exc:
            errors.extend(_validation_errors(row.number, exc))
            continue
        try:
            check_sources(body.profile.model_fields_set, provenance.source)
        except FactRefused as exc:
            errors.append(RowError(row=row.number, field=f"profile.{exc.field}", reason=exc.reason))
            continue
        item = new_household(body, village, cipher)
        if (reason := duplicate_people(item)) is not None:
            errors.append(RowError(row=row.number, field="members", reason=reason))
            continue
        if item.head_hash in first_row_of:
            errors.append(
                RowError(
                    row=row.number,
                    field="id_number",
                    reason=f"the same ID number as row {first_row_of[item.head_hash]}",
                )
            )
            continue
        first_row_of[item.head_hash] = row.number
        good.append((row.number, item))
    return good, errors


async def _write_batch(
    session: AsyncSession,
    cipher: PiiCipher,
    village: Village,
    batch: Sequence[tuple[int, NewHousehold]],
    provenance: Provenance,
    outcome: _Outcome,
    errors: list[RowError],
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
                errors.append(
                    RowError(
                        row=number, field="members", reason="a member already belongs to another registered household"
                    )
                )
                continue
            new.append(item)
            continue
        if not head.is_head:
            errors.append(
                RowError(
                    row=number, field="id_number", reason="this person is registered as a member of another household"
                )
            )
            continue
        household = households[head.household_id]
        if household.village_code != village.code:
            errors.append(
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
) -> ImportReport:
    try:
        rows = parse_sheet(data, filename=filename, content_type=content_type)
    except SheetError as exc:
        raise Problem(422, "UNREADABLE_SHEET", "Unreadable sheet", str(exc), field="body") from None
    async with sessions() as session:
        village = await session.get(Village, village_code)
    if village is None:
        raise Problem(404, "VILLAGE_NOT_FOUND", "Village not found", f"No village {village_code}.")

    good, errors = _validate(rows, village, provenance, cipher)
    outcome = _Outcome()
    for start in range(0, len(good), BATCH):
        async with sessions() as session, session.begin():
            await _write_batch(session, cipher, village, good[start : start + BATCH], provenance, outcome, errors)

    # A cell in the wrong column is quoted back in its reason: never a full ID number.
    errors = sorted(
        (e.model_copy(update={"reason": mask_resident_ids(e.reason)}) for e in errors), key=lambda e: (e.row, e.field)
    )
    report = ImportReport(
        import_id=str(uuid.uuid4()),
        village_code=village_code,
        rows=len(rows),
        registered=outcome.registered,
        updated=outcome.updated,
        unchanged=outcome.unchanged,
        failed=len({e.row for e in errors}),
        errors=errors,
    )
    async with sessions() as session, session.begin():
        session.add(
            Import(
                id=report.import_id,
                village_code=village_code,
                file_sha256=hashlib.sha256(data).hexdigest(),
                filename=filename,
                rows=report.rows,
                registered=report.registered,
                updated=report.updated,
                unchanged=report.unchanged,
                failed=report.failed,
                report=json.dumps([e.model_dump() for e in errors], ensure_ascii=False),
                imported_by=provenance.supplied_by,
                imported_at=datetime.now(UTC),
            )
        )
    return report
