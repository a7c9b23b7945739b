"""The circuit breaker at work: village and township figures, their freezes and halts, and
the events and decision records that explain each one (004 §6(3)).

During a rebuild (``context.replaying``) the figures are recomputed but nothing is emitted
or recorded again, and the frozen and halted states are settled once at the end (``settle``):
the decisions were taken and published when the events first arrived.

The last part is what the API asks of the breaker (reads, the 404s, the government's manual
override); it shares the module's ``set_frozen``, so it stays here: one capability, one module.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import inspect, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from services.risk.context import business_date, replaying, settings
from services.risk.domain.breaker import assess, effective_frozen, npl_ratio, override_survives, township_halted
from services.risk.models import Decision, Township, Village, VillageDay, VillageOverride
from services.risk.rows import Rows, VillageRow, rows_of
from shared.catalogue import BulletinIssued, TownshipHalt, VillageFreeze
from shared.events import Envelope, new_event
from shared.messaging import emit
from shared.money import format_money
from shared.problems import Problem

ZERO = Decimal("0.00")


async def township(session: AsyncSession, code: str) -> Township:
    rows = rows_of(session)
    row = await rows.township(session, code)
    if row is None:
        row = await rows.create_township(session, code)
    return row


async def village(session: AsyncSession, code: str, township_code: str) -> tuple[VillageRow, bool]:
    """The village's row, created on first sight; True when it was new."""
    villages = rows_of(session).villages
    row = await villages.get(session, code)
    if row is not None:
        return row, False
    row = villages.add(
        code,
        VillageRow(
            code=code,
            name="",
            township_code=township_code,
            outstanding=ZERO,
            non_performing=ZERO,
            npl_ratio=Decimal("0.0000"),
            over=False,
            over_since=None,
            frozen=False,
        ),
    )
    await township(session, township_code)
    # One more village changes the township's share over the line, whoever reported it first.
    await reassess_township(session, township_code, None)
    return row, True


def figures(v: Village | VillageRow) -> dict[str, str]:
    return {
        "npl_ratio": f"{v.npl_ratio:.4f}",
        "outstanding": format_money(v.outstanding),
        "non_performing": format_money(v.non_performing),
    }


async def change_figures(
    session: AsyncSession, v: VillageRow, business_date: date, d_outstanding: Decimal, d_non_performing: Decimal
) -> None:
    """Move a village's programme principal and re-decide its freeze."""
    if not d_outstanding and not d_non_performing:
        return
    v.outstanding += d_outstanding
    v.non_performing += d_non_performing
    rows_of(session).set_day(v, business_date)
    await reassess_village(session, v, business_date)


async def reassess_village(session: AsyncSession, v: VillageRow, business_date: date) -> None:
    threshold = settings().village_npl_threshold
    v.npl_ratio, over = assess(v.non_performing, v.outstanding, threshold)
    if over == v.over:
        return
    v.over = over
    v.over_since = business_date if over else None
    if replaying(session):
        return
    rows = rows_of(session)
    override = await rows.override(session, v.code)
    if override is not None and not override_survives(override.over_when_set, over):
        await session.delete(override)
        rows.drop_override(v.code)
        override = None
    await set_frozen(
        session,
        v,
        effective_frozen(over, override.override if override else None),  # type: ignore[arg-type]
        business_date,
        manual=False,
        reason=(
            f"NPL ratio {v.npl_ratio:.4f} exceeds {threshold}"
            if over
            else f"NPL ratio {v.npl_ratio:.4f} back at or below {threshold}"
        ),
        decided_by="risk",
    )
    await reassess_township(session, v.township_code, business_date)


async def set_frozen(
    session: AsyncSession,
    v: Village | VillageRow,
    frozen: bool,
    business_date: date,
    *,
    manual: bool,
    reason: str,
    decided_by: str,
) -> None:
    if frozen == v.frozen:
        return
    v.frozen = frozen
    payload = VillageFreeze(
        village_code=v.code,
        township_code=v.township_code,
        npl_ratio=f"{v.npl_ratio:.4f}",
        outstanding=format_money(v.outstanding),
        non_performing=format_money(v.non_performing),
        manual=manual,
        reason=reason,
        business_date=business_date,
        decided_by=decided_by,
    )
    kind = "village_frozen" if frozen else "village_unfrozen"
    event = new_event(f"risk.village.{'frozen' if frozen else 'unfrozen'}", v.code, payload)
    await record(
        session,
        kind,
        v.code,
        event,
        manual=manual,
        reason=reason,
        decided_by=decided_by,
        business_date=business_date,
        figures=figures(v),
    )


async def record(
    session: AsyncSession,
    kind: str,
    code: str,
    *events: Envelope,
    manual: bool,
    reason: str,
    decided_by: str,
    business_date: date | None,
    figures: dict[str, Any],
) -> None:
    """Publish a decision and keep it with the figures that caused it."""
    await emit(session, *events)
    session.add(
        Decision(
            kind=kind,
            code=code,
            manual=manual,
            reason=reason,
            decided_by=decided_by,
            business_date=business_date,
            figures=figures,
            event_id=str(events[0].event_id),
            decided_at=datetime.now(UTC),
        )
    )


async def township_counts(session: AsyncSession, code: str, batch: Rows | None = None) -> tuple[int, list[VillageRow]]:
    """How many villages the township has, and those over the line: as the database holds
    them, but those of the ``batch`` as it has them now (they are written at its end)."""
    table = Village.__table__
    query = select(*table.c).where(table.c.township_code == code)  # tens of villages: one query for both
    villages = {row.code: VillageRow(*row) for row in await session.execute(query)}
    for v in batch.own_villages() if batch is not None else ():
        if v.township_code == code:
            villages[v.code] = v
        else:  # maybe moved away by the registry in this batch
            villages.pop(v.code, None)
    ordered = [villages[c] for c in sorted(villages)]
    return len(ordered), [v for v in ordered if v.over]


async def reassess_township(session: AsyncSession, code: str, business_date: date | None) -> None:
    if replaying(session):
        return
    t = await township(session, code)
    rows = rows_of(session)
    if code not in rows.locked_townships:
        # Replicas consuming different partitions may decide for the same township at once:
        # the row lock makes the second wait and count what the first committed, and take
        # the state the first left as its own (read before the lock, it could be stale, and
        # the township would be halted twice). Unless this transaction changed it already,
        # under the same lock. A Core statement: the ORM's would first flush the decisions
        # so far, a round trip each. Once per batch: the lock is held until the commit.
        table = Township.__table__
        locked = await session.scalar(select(table.c.halted).where(table.c.code == code).with_for_update())
        rows.locked_townships.add(code)
        if locked is not None and not inspect(t).attrs.halted.history.has_changes():
            set_committed_value(t, "halted", locked)
    villages, over = await township_counts(session, code, rows)
    halted = township_halted(villages, len(over), settings().township_share_threshold)
    if halted == t.halted:
        return
    t.halted = halted
    name = t.name or code
    verb = "halted" if halted else "resumed"
    payload = TownshipHalt(
        township_code=code,
        villages=villages,
        villages_over_threshold=len(over),
        village_codes_over=[v.code for v in over],
        township_name=t.name,
        business_date=business_date,
    )
    share = settings().township_share_threshold
    if halted:
        zh = (
            f"通报:{name}共有行政村{villages}个,其中{len(over)}个不良贷款率超过"
            f"{settings().village_npl_threshold:.0%},达到{share:.0%}以上,全乡(街道)暂停新增扶贫信用贷款,"
            f"有关负责人按规定追责。超过的村:{'、'.join(v.name or v.code for v in over)}。"
        )
        en = (
            f"Bulletin: {len(over)} of the {villages} villages of {name} have an NPL ratio over "
            f"{settings().village_npl_threshold:.0%} ({share:.0%} or more); new programme credit in the whole "
            f"township is halted and its leaders are held accountable. Villages over the line: "
            f"{', '.join(v.name or v.code for v in over)}."
        )
    else:
        zh = f"通报:{name}不良贷款率超过限额的行政村已降至{len(over)}个(共{villages}个),恢复新增扶贫信用贷款。"
        en = f"Bulletin: {name} is down to {len(over)} of {villages} villages over the line; lending resumes."
    bulletin = BulletinIssued(
        bulletin_id=str(uuid.uuid4()),
        kind=f"township_{verb}",
        township_code=code,
        township_name=t.name,
        business_date=business_date,
        villages=villages,
        villages_over_threshold=len(over),
        villages_over=[{"code": v.code, "name": v.name} | figures(v) for v in over],
        text_zh=zh,
        text_en=en,
    )
    await record(
        session,
        f"township_{verb}",
        code,
        new_event(f"risk.township.{verb}", code, payload),
        new_event("risk.bulletin.issued", code, bulletin),
        manual=False,
        reason=f"{len(over)} of {villages} villages over the line (threshold {share:.0%})",
        decided_by="risk",
        business_date=business_date,
        figures={
            "villages": villages,
            "villages_over_threshold": len(over),
            "village_codes_over": payload.village_codes_over,
        },
    )


async def settle(session: AsyncSession) -> None:
    """After a replay: frozen and halted states from the final figures and the overrides
    still in force, exactly what live processing left behind."""
    overrides = {o.village_code: o for o in await session.scalars(select(VillageOverride))}
    for v in await session.scalars(select(Village)):
        o = overrides.get(v.code)
        v.frozen = effective_frozen(v.over, o.override if o else None)  # type: ignore[arg-type]
    share = settings().township_share_threshold
    for t in await session.scalars(select(Township)):
        villages, over = await township_counts(session, t.code)
        t.halted = township_halted(villages, len(over), share)


# --- what the API asks of the breaker -------------------------------------------------------


def totals(villages: list[Village]) -> tuple[Decimal, Decimal]:
    """Outstanding and non-performing principal over some villages."""
    return (
        sum((v.outstanding for v in villages), Decimal("0.00")),
        sum((v.non_performing for v in villages), Decimal("0.00")),
    )


def ratio_text(outstanding: Decimal, non_performing: Decimal) -> str:
    return f"{npl_ratio(non_performing, outstanding):.4f}"


async def get_village(session: AsyncSession, code: str, *, lock: bool = False) -> Village:
    found = await session.get(Village, code, with_for_update=lock)
    if found is None:
        raise Problem(404, "VILLAGE_NOT_FOUND", "Village not found", f"Risk knows no village {code}.")
    return found


async def get_township(session: AsyncSession, code: str) -> Township:
    found = await session.get(Township, code)
    if found is None:
        raise Problem(404, "TOWNSHIP_NOT_FOUND", "Township not found", f"Risk knows no township {code}.")
    return found


async def override(session: AsyncSession, code: str, freeze: bool, reason: str, decided_by: str) -> Village:
    """Freeze or lift a village's freeze by hand (government). The override is kept only while
    it differs from what the ratio says; it holds until the ratio next crosses the line."""
    v = await get_village(session, code, lock=True)
    if v.frozen == freeze:
        state = "frozen" if freeze else "not frozen"
        raise Problem(
            409, "ALREADY_FROZEN" if freeze else "NOT_FROZEN", f"Village {state}", f"Village {code} is {state}."
        )
    today = await business_date(session)
    existing = await session.get(VillageOverride, code)
    if v.over == freeze:  # the automatic state already says so: no override needed
        if existing is not None:
            await session.delete(existing)
    else:
        if existing is None:
            existing = VillageOverride(village_code=code)
            session.add(existing)
        existing.override = "frozen" if freeze else "unfrozen"
        existing.over_when_set, existing.since = v.over, today
        existing.reason, existing.decided_by, existing.decided_at = reason, decided_by, datetime.now(UTC)
    await set_frozen(session, v, freeze, today, manual=True, reason=reason, decided_by=decided_by)
    await session.flush()
    return v


async def villages(
    session: AsyncSession, township_code: str | None, frozen: bool | None, limit: int, offset: int
) -> list[Village]:
    query = select(Village).order_by(Village.code).limit(limit).offset(offset)
    if township_code is not None:
        query = query.where(Village.township_code == township_code)
    if frozen is not None:
        query = query.where(Village.frozen == frozen)
    return list(await session.scalars(query))


async def village_days(
    session: AsyncSession, code: str, since: date | None, until: date | None, limit: int, offset: int
) -> list[VillageDay]:
    """A village's daily figures, oldest first (404 for a village risk does not know)."""
    await get_village(session, code)
    query = (
        select(VillageDay)
        .where(VillageDay.village_code == code)
        .order_by(VillageDay.business_date)
        .limit(limit)
        .offset(offset)
    )
    if since is not None:
        query = query.where(VillageDay.business_date >= since)
    if until is not None:
        query = query.where(VillageDay.business_date <= until)
    return list(await session.scalars(query))


async def townships(session: AsyncSession, limit: int, offset: int) -> list[Township]:
    return list(await session.scalars(select(Township).order_by(Township.code).limit(limit).offset(offset)))


async def villages_of(session: AsyncSession, township_code: str) -> list[Village]:
    return list(await session.scalars(select(Village).where(Village.township_code == township_code)))


async def decisions(session: AsyncSession, code: str | None, limit: int, offset: int) -> list[Decision]:
    """Every freeze, lift, halt and resumption, newest first."""
    query = select(Decision).order_by(Decision.id.desc()).limit(limit).offset(offset)
    if code is not None:
        query = query.where(Decision.code == code)
    return list(await session.scalars(query))
