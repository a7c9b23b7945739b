"""Re-rating every subject, e.g. after a rule-set change: a resumable batch job.

Progress is committed with each chunk's ratings, so a job that is stopped (or dies)
resumes after the last subject it finished; nothing is rated twice, nothing skipped.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.scoring.context import business_date
from services.scoring.domain.engine import RuleSet
from services.scoring.models import LoanState, Rating, RatingState, RerateJob, Subject
from services.scoring.ratings import (
    ended_spells,
    new_rating,
    open_objections,
    plan,
    reasons_json,
    scorecard_inputs,
    unchanged,
)
from shared.messaging import emit

CHUNK = 1000


async def _job(sessions: async_sessionmaker[AsyncSession], rules: RuleSet) -> RerateJob:
    async with sessions() as session, session.begin():
        job = await session.scalar(
            select(RerateJob).where(RerateJob.rule_set == rules.version, RerateJob.finished_at.is_(None))
        )
        if job is None:
            total = int(await session.scalar(select(func.count()).select_from(Subject)) or 0)
            job = RerateJob(
                id=str(uuid.uuid4()), rule_set=rules.version, total=total, done=0, started_at=datetime.now(UTC)
            )
            session.add(job)
        return job


async def rerate_chunk(session: AsyncSession, rules: RuleSet, subjects: list[Subject]) -> int:
    """Re-rate a chunk: context loaded in a few queries, new ratings flushed together,
    events emitted in one statement. Returns how many ratings changed."""
    ids = [s.id for s in subjects]
    states = {
        s.subject_id: s
        for s in await session.scalars(select(RatingState).where(RatingState.subject_id.in_(ids)).with_for_update())
    }
    rating_ids = {i for st in states.values() for i in (st.current_rating_id, st.effective_rating_id) if i}
    ratings = {r.id: r for r in await session.scalars(select(Rating).where(Rating.id.in_(rating_ids)))}
    overdue = set(
        await session.scalars(
            select(LoanState.subject_id).where(LoanState.subject_id.in_(ids), LoanState.overdue.is_(True))
        )
    )
    today = await business_date(session)
    spells = await ended_spells(session, ids)
    now = datetime.now(UTC)
    changed: list[tuple[Subject, Rating]] = []
    for subject in subjects:
        inputs = scorecard_inputs(subject, subject.id in overdue, today, spells[subject.id])
        evaluation = rules.evaluate(inputs, subject.poor_household)
        reasons = reasons_json(evaluation)
        state = states.get(subject.id)
        if not unchanged(ratings.get(state.current_rating_id) if state else None, evaluation, reasons):
            changed.append((subject, new_rating(subject, inputs, evaluation, reasons, today, now)))
    if not changed:
        return 0
    # One multi-row INSERT ... RETURNING; rows come back in any order, matched by subject.
    table = Rating.__table__
    names = [c.key for c in table.columns if c.key != "id"]
    inserted = await session.execute(
        insert(Rating).returning(Rating.id, Rating.subject_id),
        [{name: getattr(rating, name) for name in names} for _, rating in changed],
    )
    new_ids = {subject_id: rating_id for rating_id, subject_id in inserted}
    for subject, rating in changed:
        rating.id = new_ids[subject.id]
    in_notice = [s.id for s, _ in changed if (st := states.get(s.id)) and st.status in ("pending_notice", "objected")]
    objections = await open_objections(session, in_notice)
    events = []
    for subject, rating in changed:
        state = states.get(subject.id)
        effective = ratings.get(state.effective_rating_id) if state and state.effective_rating_id else None
        new_state, planned = plan(subject, rating, state, effective, today, objections.get(subject.id, []))
        if state is None:
            session.add(new_state)
        events.extend(planned)
    await emit(session, *events)
    return len(changed)


async def rerate_all(
    sessions: async_sessionmaker[AsyncSession], rules: RuleSet, progress: Callable[[int, int], None] | None = None
) -> RerateJob:
    job = await _job(sessions, rules)
    if progress:
        progress(job.done, job.total)
    while True:
        async with sessions() as session, session.begin():
            query = select(Subject).order_by(Subject.id).limit(CHUNK)
            if job.last_subject_id is not None:
                query = query.where(Subject.id > job.last_subject_id)
            subjects = list(await session.scalars(query))
            row = await session.get(RerateJob, job.id, with_for_update=True)
            assert row is not None
            if not subjects:
                row.finished_at = datetime.now(UTC)
                return row
            await rerate_chunk(session, rules, subjects)
            row.done += len(subjects)
            row.total = max(row.total, row.done)
            row.last_subject_id = subjects[-1].id
            job = row
        if progress:
            progress(job.done, job.total)
