"""The re-rating job after a rule-set change: every subject once, resumable, idempotent."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select

from services.scoring.domain.engine import RULESETS_DIR, RuleSet
from services.scoring.models import Rating, RatingState, RerateJob, Subject
from services.scoring.rerate import rerate_all
from shared.db import create_engine, create_sessionmaker
from shared.messaging import outbox
from shared.migrations import upgrade
from shared.settings import CommonSettings
from vcredit.services import load_spec

PROFILE = {"income_project": True, "head_healthy": True, "certificates": ["forest"]}  # 80 + 3 + 1 + 1 = 85, A


async def _counts(sessions, *tables):  # type: ignore[no-untyped-def]
    async with sessions() as session:
        return [await session.scalar(select(func.count()).select_from(t)) for t in tables]


async def test_rerate_changes_every_rating_once_and_resumes(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/scoring.db"
    await asyncio.to_thread(upgrade, load_spec("scoring").migrations_dir, url)
    engine = create_engine(url)
    sessions = create_sessionmaker(engine, info={"settings": CommonSettings(data_dir=tmp_path)})
    async with sessions() as session, session.begin():
        await session.execute(
            insert(Subject),
            [
                {
                    "id": f"s{i:04d}",
                    "kind": "household",
                    "village_code": "V1",
                    "township_code": "T1",
                    "name": f"户{i}",
                    "poor_household": False,
                    "profile": json.dumps(PROFILE),
                    "overdue_occurrences": 0,
                    "npl_occurrences": 0,
                    "repaid_on_time": 0,
                    "updated_at": datetime.now(UTC),
                }
                for i in range(2500)
            ],
        )
    first = await rerate_all(sessions, RuleSet.load("hubin-2017"))
    assert (first.done, first.total) == (2500, 2500) and first.finished_at is not None
    assert await _counts(sessions, Rating, RatingState) == [2500, 2500]

    revised = json.loads((RULESETS_DIR / "hubin-2017.json").read_text())
    revised["id"] = "revised"
    next(r for r in revised["rules"] if r["id"] == "A3.project")["points"] = 5  # 85 -> 87: A becomes AA
    (tmp_path / "revised.json").write_text(json.dumps(revised))
    rules = RuleSet.load("revised", directory=tmp_path)

    # Interrupt the job after its first chunk, then run it again: it resumes.
    seen: list[int] = []

    def stop_after_first_chunk(done: int, total: int) -> None:
        seen.append(done)
        if done >= 1000:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        await rerate_all(sessions, rules, stop_after_first_chunk)
    resumed = await rerate_all(sessions, rules, lambda done, total: seen.append(done))
    assert seen == [0, 1000, 1000, 2000, 2500]
    assert resumed.done == 2500
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(RerateJob)) == 2
        grades = (
            await session.execute(
                select(Rating.grade, func.count()).where(Rating.rule_set == rules.version).group_by(Rating.grade)
            )
        ).all()
        assert [tuple(g) for g in grades] == [("AA", 2500)], "each subject re-rated exactly once"
        states = set(await session.scalars(select(RatingState.status)))
        assert states == {"pending_notice"}, "a raised limit goes to public notice"
    events_before = (await _counts(sessions, outbox))[0]

    again = await rerate_all(sessions, rules)
    assert again.done == 2500 and (await _counts(sessions, Rating))[0] == 5000, "nothing changed, nothing written"
    assert (await _counts(sessions, outbox))[0] == events_before
    await engine.dispose()
