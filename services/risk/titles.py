"""Yearly credit titles (004 §6(4); seed 000 §4, §5 for communities), evaluated on demand for a
year. Re-evaluating a year awards what newly qualifies and revokes what no longer does."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.risk.context import settings
from services.risk.credit_lists import blacklisted_subjects
from services.risk.domain.breaker import npl_ratio
from services.risk.domain.titles import CommunityAssessment as Assessment
from services.risk.domain.titles import credit_community, credit_household, credit_village
from services.risk.models import (
    Community,
    CommunityAssessment,
    OverdueYear,
    SubjectGrade,
    Title,
    Village,
    VillageDay,
)
from shared.catalogue import TitleAwarded
from shared.events import new_event
from shared.messaging import emit
from shared.money import format_money
from shared.problems import Problem

ZERO = Decimal("0.00")


@dataclass(frozen=True)
class Candidate:
    kind: str
    code: str
    village_code: str | None
    township_code: str | None
    figures: dict[str, str]


def _npl_figures(outstanding: Decimal, non_performing: Decimal) -> dict[str, str]:
    return {
        "npl_ratio": f"{npl_ratio(non_performing, outstanding):.4f}",
        "outstanding": format_money(outstanding),
        "non_performing": format_money(non_performing),
    }


class CommunityFigures(Protocol):
    loan_recovery: Decimal
    npl_ratio: Decimal
    new_loan_interest_recovery: Decimal
    malicious_evasion: bool


def community_failures(figures: CommunityFigures) -> list[str]:
    """The credit-community criteria a community's yearly figures fail (seed 000 §4(6))."""
    return credit_community(
        Assessment(
            loan_recovery=figures.loan_recovery,
            npl_ratio=figures.npl_ratio,
            new_loan_interest_recovery=figures.new_loan_interest_recovery,
            malicious_evasion=figures.malicious_evasion,
        )
    )


async def assess_community(
    session: AsyncSession, code: str, year: int, figures: CommunityFigures, assessed_by: str
) -> list[str]:
    """Record (or replace) a community's figures for a year; the criteria they fail."""
    if await session.get(Community, code) is None:
        raise Problem(404, "COMMUNITY_NOT_FOUND", "Community not found", f"Risk knows no community {code}.")
    await session.merge(
        CommunityAssessment(
            community_code=code,
            year=year,
            loan_recovery=figures.loan_recovery,
            npl_ratio=figures.npl_ratio,
            new_loan_interest_recovery=figures.new_loan_interest_recovery,
            malicious_evasion=figures.malicious_evasion,
            assessed_by=assessed_by,
            assessed_at=datetime.now(UTC),
        )
    )
    return community_failures(figures)


async def listed(
    session: AsyncSession, year: int | None, kind: str | None, village_code: str | None, limit: int, offset: int
) -> list[Title]:
    query = select(Title).order_by(Title.year, Title.kind, Title.code).limit(limit).offset(offset)
    if year is not None:
        query = query.where(Title.year == year)
    if kind is not None:
        query = query.where(Title.kind == kind)
    if village_code is not None:
        query = query.where(Title.village_code == village_code)
    return list(await session.scalars(query))


async def year_end_figures(session: AsyncSession, year: int) -> dict[str, tuple[Decimal, Decimal]]:
    """Each village's (outstanding, non-performing) at the end of ``year``: its last day on
    or before 31 December. Villages that never had programme loans by then are absent."""
    rows = await session.execute(
        select(VillageDay.village_code, VillageDay.outstanding, VillageDay.non_performing)
        .where(VillageDay.business_date <= date(year, 12, 31))
        .order_by(VillageDay.village_code, VillageDay.business_date)
    )
    last: dict[str, tuple[Decimal, Decimal]] = {}
    for code, outstanding, non_performing in rows:
        last[code] = (outstanding, non_performing)
    return last


async def candidates(session: AsyncSession, year: int) -> list[Candidate]:
    threshold = settings().village_npl_threshold
    found: list[Candidate] = []
    villages = {v.code: v for v in await session.scalars(select(Village))}
    township_sums: dict[str, list[Decimal]] = defaultdict(lambda: [ZERO, ZERO])
    for code, (outstanding, non_performing) in sorted((await year_end_figures(session, year)).items()):
        township_code = villages[code].township_code if code in villages else None
        if township_code is not None:
            township_sums[township_code][0] += outstanding
            township_sums[township_code][1] += non_performing
        if credit_village(non_performing, outstanding, threshold):  # 004 §6(4) 信用村
            found.append(
                Candidate("credit_village", code, code, township_code, _npl_figures(outstanding, non_performing))
            )
    for code, (outstanding, non_performing) in sorted(township_sums.items()):
        if credit_village(non_performing, outstanding, threshold):  # 004 §6(4) 信用乡, "likewise"
            found.append(Candidate("credit_township", code, None, code, _npl_figures(outstanding, non_performing)))
    overdue = set(await session.scalars(select(OverdueYear.subject_id).where(OverdueYear.year == year)))
    # seed 001: subjects with bad records are left out of every title and distinction.
    blacklisted = await blacklisted_subjects(session)
    grades = await session.scalars(
        select(SubjectGrade).where(SubjectGrade.subject_kind == "household").order_by(SubjectGrade.subject_id)
    )
    for g in grades:
        if g.subject_id in blacklisted:
            continue
        if credit_household(g.grade, g.subject_id in overdue):  # 004 §6(4) 信用户
            found.append(
                Candidate(
                    "credit_household",
                    g.subject_id,
                    g.village_code,
                    g.township_code,
                    {"grade": g.grade, "overdue_in_year": "false"},
                )
            )
    assessments = await session.scalars(
        select(CommunityAssessment).where(CommunityAssessment.year == year).order_by(CommunityAssessment.community_code)
    )
    for a in assessments:
        if not community_failures(a):  # seed 000 §4(6)
            found.append(
                Candidate(
                    "credit_community",
                    a.community_code,
                    None,
                    None,
                    {
                        "loan_recovery": f"{a.loan_recovery:.4f}",
                        "npl_ratio": f"{a.npl_ratio:.4f}",
                        "new_loan_interest_recovery": f"{a.new_loan_interest_recovery:.4f}",
                    },
                )
            )
    return found


async def evaluate(session: AsyncSession, year: int) -> tuple[dict[str, int], int, int]:
    """Award and revoke the titles of ``year``; (titles per kind, awarded, revoked)."""
    wanted = {(c.kind, c.code): c for c in await candidates(session, year)}
    held = {(t.kind, t.code): t for t in await session.scalars(select(Title).where(Title.year == year))}
    now = datetime.now(UTC)
    events = []
    for key in sorted(wanted.keys() - held.keys()):
        c = wanted[key]
        session.add(
            Title(
                year=year,
                kind=c.kind,
                code=c.code,
                village_code=c.village_code,
                township_code=c.township_code,
                figures=c.figures,
                awarded_at=now,
            )
        )
        events.append(new_event("risk.title.awarded", c.village_code or c.township_code or c.code, _payload(year, c)))
    for key in sorted(held.keys() - wanted.keys()):
        t = held[key]
        await session.delete(t)
        c = Candidate(t.kind, t.code, t.village_code, t.township_code, t.figures)
        events.append(new_event("risk.title.revoked", c.village_code or c.township_code or c.code, _payload(year, c)))
    await emit(session, *events)
    counts: dict[str, int] = defaultdict(int)
    for kind, _ in wanted:
        counts[kind] += 1
    awarded = len(wanted.keys() - held.keys())
    return dict(counts), awarded, len(events) - awarded


def _payload(year: int, c: Candidate) -> TitleAwarded:
    return TitleAwarded(
        year=year,
        kind=c.kind,
        code=c.code,
        village_code=c.village_code,
        township_code=c.township_code,
        figures=c.figures,
    )
