"""A household, a business or a fact's subject loaded by id, or a 404 problem."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.registry.models import Business, Household
from shared.problems import Problem


async def household_or_404(session: AsyncSession, household_id: str, *, lock: bool = False) -> Household:
    household = await session.get(Household, household_id, with_for_update=lock)
    if household is None:
        raise Problem(404, "HOUSEHOLD_NOT_FOUND", "Household not found", f"No household {household_id}.")
    return household


async def business_or_404(session: AsyncSession, business_id: str, *, lock: bool = False) -> Business:
    business = await session.get(Business, business_id, with_for_update=lock)
    if business is None:
        raise Problem(404, "BUSINESS_NOT_FOUND", "Business not found", f"No business {business_id}.")
    return business


async def subject_or_404(
    session: AsyncSession, kind: str, subject_id: str, *, lock: bool = False
) -> Household | Business:
    if kind == "household":
        return await household_or_404(session, subject_id, lock=lock)
    return await business_or_404(session, subject_id, lock=lock)


def household_of(kind: str, subject_id: str) -> str | None:
    """The household a subject is, for binding a household's own token; None for a business."""
    return subject_id if kind == "household" else None
