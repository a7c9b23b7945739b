"""Registry's migrations that change data, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import sqlalchemy as sa

from shared.db import create_engine
from shared.migrations import upgrade
from tests.conftest import Infra
from vcredit.services import load_spec


async def test_0005_counts_the_errors_of_reports_stored_before_it(infra: Infra) -> None:
    # Before issue 21 a report listed every error: the new columns count them from the list.
    spec = load_spec("registry")
    url = await infra.database_url("registry_0004")
    await asyncio.to_thread(upgrade, spec.migrations_dir, url, "0004")
    now = datetime.now(UTC)
    errors = [
        {"row": 2, "field": "id_number", "reason": "check digit"},
        {"row": 3, "field": "poor_household", "reason": "expected yes/no (是/否)"},
        {"row": 4, "field": "poor_household", "reason": "expected yes/no (是/否)"},
    ]
    imported = {"village_code": "V1", "file_sha256": "0" * 64, "filename": None, "rows": 3, "registered": 0}
    imported |= {"updated": 0, "unchanged": 0, "failed": 3, "imported_by": "collector", "imported_at": now}
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.execute(
                sa.text("INSERT INTO townships (code, name, created_at) VALUES ('T1', '湖滨镇', :now)"), {"now": now}
            )
            await connection.execute(
                sa.text("INSERT INTO villages (code, name, township_code, created_at) VALUES ('V1', 'E', 'T1', :now)"),
                {"now": now},
            )
            insert = sa.text(
                "INSERT INTO imports (id, village_code, file_sha256, filename, rows, registered, updated, unchanged,"
                " failed, report, imported_by, imported_at) VALUES (:id, :village_code, :file_sha256, :filename,"
                " :rows, :registered, :updated, :unchanged, :failed, :report, :imported_by, :imported_at)"
            )
            await connection.execute(insert, {**imported, "id": "with-errors", "report": json.dumps(errors)})
            await connection.execute(insert, {**imported, "id": "clean", "report": "[]", "failed": 0})

        await asyncio.to_thread(upgrade, spec.migrations_dir, url)

        async with engine.connect() as connection:
            query = sa.text("SELECT id, report, errors_total, errors_by_field FROM imports ORDER BY id")
            rows = (await connection.execute(query)).all()
    finally:
        await engine.dispose()
    assert [(r.id, json.loads(r.report), r.errors_total, json.loads(r.errors_by_field)) for r in rows] == [
        ("clean", [], 0, {}),
        ("with-errors", errors, 3, {"id_number": 1, "poor_household": 2}),
    ]
