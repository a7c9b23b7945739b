"""征信业管理条例 §16 retention, one rule for scoring and risk (shared/periods.py): the last day
kept and the day of deletion, written out by hand, and both services reading the same days."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from services.risk import credit_lists as risk_credit_lists
from services.risk.domain import credit_lists as risk_rules
from services.risk.models import ListEntry
from services.scoring.domain import retention as scoring_rules
from shared.db import create_engine, create_sessionmaker
from shared.migrations import upgrade
from shared.periods import expires_on, retention_ends
from shared.settings import CommonSettings
from vcredit.services import load_spec

# (act ended, last day kept, day of deletion), by hand.
CASES = [
    # 2025 has no 29 February: Civil Code art. 202 makes the month's last day the period's last
    # day, so kept through 28 February and deleted on 1 March (decided: not kept to 1 March).
    (date(2020, 2, 29), date(2025, 2, 28), date(2025, 3, 1)),
    (date(2021, 3, 1), date(2026, 3, 1), date(2026, 3, 2)),
    (date(2023, 2, 28), date(2028, 2, 28), date(2028, 2, 29)),  # leap target year: still the 28th
    (date(2020, 12, 31), date(2025, 12, 31), date(2026, 1, 1)),
    (date(2026, 5, 11), date(2031, 5, 11), date(2031, 5, 12)),
]


@pytest.mark.parametrize(("ended", "last_kept", "deleted_on"), CASES)
def test_last_day_kept_and_day_of_deletion(ended: date, last_kept: date, deleted_on: date) -> None:
    assert retention_ends(ended) == last_kept
    assert expires_on(ended) == deleted_on
    # Scoring: the fact still counts on the last day kept, not on the day of deletion.
    assert not scoring_rules.expired(ended, last_kept)
    assert scoring_rules.expired(ended, deleted_on)
    assert scoring_rules.expires_on(ended) == deleted_on
    # Risk: the record is there on the last day kept, deleted on the day of deletion.
    assert not risk_rules.deleted(ended, last_kept)
    assert risk_rules.deleted(ended, deleted_on)


@given(st.dates(min_value=date(1950, 1, 1), max_value=date(2400, 12, 31)), st.integers(min_value=-800, max_value=800))
def test_scoring_and_risk_agree_on_every_day(ended: date, offset: int) -> None:
    today = retention_ends(ended) + timedelta(days=offset)
    scoring_view = scoring_rules.expired(ended, today)
    risk_view = risk_rules.deleted(ended, today)
    # risk's SQL (services/risk/credit_lists.py expire): delete where retention_ends_on < today
    risk_sql_view = retention_ends(ended) < today
    assert scoring_view == risk_view == risk_sql_view == (offset > 0)


async def test_risk_deletes_a_black_entry_on_the_day_scoring_stops_counting_it(tmp_path: Path) -> None:
    """The stored column and the deletion query, not only the pure rule: an act ended on
    29 February 2020 is on risk's books through 28 February 2025 and gone on 1 March."""
    url = f"sqlite+aiosqlite:///{tmp_path}/risk.db"
    await asyncio.to_thread(upgrade, load_spec("risk").migrations_dir, url)
    engine = create_engine(url)
    sessions = create_sessionmaker(engine, info={"settings": CommonSettings(data_dir=tmp_path)})
    ended = date(2020, 2, 29)
    try:
        async with sessions() as session, session.begin():
            entry = ListEntry(
                id="e1",
                list="black",
                subject_kind="household",
                subject_id="h1",
                village_code="V1",
                township_code="T1",
                name="户",
                identifier_masked="410***********1234",
                cause=risk_rules.COURT_DISHONEST_DEBTOR,
                tier="serious",
                legal_basis=risk_rules.LEGAL_BASIS[risk_rules.COURT_DISHONEST_DEBTOR],
                status="active",
                listed_on=date(2019, 1, 1),
                created_at=datetime.now(UTC),
            )
            session.add(entry)
            await session.flush()
            await risk_credit_lists.end(
                session,
                entry,
                today=date(2020, 3, 2),
                reason="repaired",
                decided_by_role="government",
                act_ended_on=ended,
            )
            assert entry.retention_ends_on == date(2025, 2, 28)

        async def present_on(day: date) -> bool:
            async with sessions() as session, session.begin():
                await risk_credit_lists.expire(session, day)
            async with sessions() as session:
                return await session.scalar(select(ListEntry.id).where(ListEntry.id == "e1")) is not None

        assert await present_on(date(2025, 2, 28)), "the last day kept"
        assert not scoring_rules.expired(ended, date(2025, 2, 28)), "scoring still counts it that day"
        assert not await present_on(date(2025, 3, 1)), "deleted on 1 March"
        assert scoring_rules.expired(ended, date(2025, 3, 1)), "the day scoring stops counting it"
    finally:
        await engine.dispose()
