"""Timestamps in answers are RFC 3339 in UTC, ``2026-12-07T04:39:35.676250Z`` (issue 22).

Every writer stores ``datetime.now(UTC)``, but SQLite hands the value back without its zone
(``DateTime(timezone=True)`` keeps no offset there), and a response model then wrote
``2026-12-07T04:39:35.676250``: local time of where? ``UtcDateTime`` is the type of every
timestamp a response carries: a naive value is the UTC it was stored as, an aware one is
converted to UTC, and pydantic writes UTC with the ``Z`` suffix. Its published schema stays
``{"type": "string", "format": "date-time"}``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator


def as_utc(value: datetime) -> datetime:
    """``value`` in UTC; a naive value is taken to be UTC already (how it was stored)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def rfc3339(value: datetime) -> str:
    """``value`` as pydantic writes a ``UtcDateTime``, for answers not built from a model."""
    return as_utc(value).isoformat().replace("+00:00", "Z")


UtcDateTime = Annotated[datetime, AfterValidator(as_utc)]
