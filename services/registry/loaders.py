"""A household, a business or a fact's subject loaded by id, or a 404 problem.

Given the caller (``seen_by``), one outside a bound credential's village or household is
the same 404 as one that does not exist: a collector or a household learns nothing of what
is registered elsewhere (shared.web.ensure_visible)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.registry.models import Business, Household
from shared.auth import Principal
from shared.problems import Problem
from shared.web import ensure_visible


def household_not_found(household_id: str) -> Problem:
    return Problem(404, "HOUSEHOLD_NOT_FOUND", "Household not found", f"No household {household_id}.")


def business_not_found(business_id: str) -> Problem:
    return Problem(404, "BUSINESS_NOT_FOUND", "Business not found", f"No business {business_id}.")


def ensure_in_sight(principal: Principal, subject: Household | Business) -> None:
    """``subject`` is within the caller's binding, or it answers as missing. A household's
    own credential reaches that household only, and no business."""
    if isinstance(subject, Household):
        ensure_visible(principal, household_not_found(subject.id), village=subject.village_code, household=subject.id)
    else:
        ensure_visible(principal, business_not_found(subject.id), village=subject.village_code)


async def household_or_404(
    session: AsyncSession, household_id: str, *, lock: bool = False, seen_by: Principal | None = None
) -> Household:
    household = await session.get(Household, household_id, with_for_update=lock)
    if household is None:
        raise household_not_found(household_id)
    if seen_by is not None:
        ensure_in_sight(seen_by, household)
    return household


async def business_or_404(
    session: AsyncSession, business_id: str, *, lock: bool = False, seen_by: Principal | None = None
) -> Business:
    business = await session.get(Business, business_id, with_for_update=lock)
    if business is None:
        raise business_not_found(business_id)
    if seen_by is not None:
        ensure_in_sight(seen_by, business)
    return business


async def subject_or_404(
    session: AsyncSession, kind: str, subject_id: str, *, lock: bool = False, seen_by: Principal | None = None
) -> Household | Business:
    if kind == "household":
        return await household_or_404(session, subject_id, lock=lock, seen_by=seen_by)
    return await business_or_404(session, subject_id, lock=lock, seen_by=seen_by)


def household_of(kind: str, subject_id: str) -> str | None:
    """The household a subject is, for binding a household's own token; None for a business."""
    return subject_id if kind == "household" else None
