"""Page size of every list endpoint, the same in every service.

Each GET that answers a JSON array takes ``limit`` (1..MAX_PAGE) and ``offset``; registry's
household list pages with ``limit`` and the ``after`` cursor instead. A ``limit`` over
MAX_PAGE is refused with 422 VALIDATION_FAILED naming ``query.limit``, never silently
clamped: a client that asked for 5,000 rows and got 1,000 could take them for all there is.
A page shorter than ``limit`` is the last one.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

MAX_PAGE = 1000
# Far past any real list, and small enough for a 64-bit OFFSET in every database.
MAX_OFFSET = 10_000_000

Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description=f"page size, 1 to {MAX_PAGE} (more is 422)")]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="items to skip: the number already read")]
