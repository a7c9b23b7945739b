"""The district's indicators: credit-household coverage (seed 003 annex 1) and NPL figures per
township and for the district."""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.risk import breaker, context
from services.risk.domain.titles import coverage, coverage_points, grade_at_least_a
from services.risk.models import Household, SubjectGrade, Township, Village
from services.risk.schemas import DistrictIndicatorsOut, IndicatorsOut
from shared.money import format_money


async def district(session: AsyncSession) -> DistrictIndicatorsOut:
    households: dict[str, int] = defaultdict(int)
    rated: dict[str, int] = defaultdict(int)
    # Grades (scoring's events) and households (registry's) are two projections: a grade may
    # arrive before its registration. One statement (one snapshot) counts both, rated only
    # among the registered households, so the share stays within 0..1; two statements were a
    # 500 (ValueError from coverage()) when a grade or a registration landed between them.
    for township_code, grade, count in await session.execute(
        select(Household.township_code, SubjectGrade.grade, func.count())
        .select_from(Household)
        .outerjoin(SubjectGrade, (SubjectGrade.subject_id == Household.id) & (SubjectGrade.subject_kind == "household"))
        .group_by(Household.township_code, SubjectGrade.grade)
    ):
        households[township_code] += count
        if grade is not None and grade_at_least_a(grade):
            rated[township_code] += count
    villages: dict[str, list[Village]] = defaultdict(list)
    for v in await session.scalars(select(Village)):
        villages[v.township_code].append(v)
    townships = list(await session.scalars(select(Township).order_by(Township.code)))

    def indicators(code: str, name: str, hh: int, good: int, vs: list[Village], halted: bool | None) -> IndicatorsOut:
        outstanding, non_performing = breaker.totals(vs)
        share = coverage(good, hh)
        return IndicatorsOut(
            code=code,
            name=name,
            households=hh,
            rated_a_or_better=good,
            coverage=f"{share:.4f}",
            coverage_points=f"{coverage_points(share):.2f}",
            outstanding=format_money(outstanding),
            non_performing=format_money(non_performing),
            npl_ratio=breaker.ratio_text(outstanding, non_performing),
            villages=len(vs),
            villages_over_threshold=sum(v.over for v in vs),
            halted=halted,
        )

    per_township = [
        indicators(t.code, t.name, households[t.code], rated[t.code], villages[t.code], t.halted) for t in townships
    ]
    every_village = [v for vs in villages.values() for v in vs]
    whole = indicators("district", "district", sum(households.values()), sum(rated.values()), every_village, None)
    return DistrictIndicatorsOut(
        business_date=await context.business_date(session),
        district=whole,
        townships=per_township,
        village_npl_threshold=f"{context.settings().village_npl_threshold:.4f}",
        township_share_threshold=f"{context.settings().township_share_threshold:.4f}",
    )
