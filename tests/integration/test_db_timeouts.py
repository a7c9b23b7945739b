"""The statement timeout of the settings, applied by a real PostgreSQL server."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from shared.db import DbTimeouts, create_engine
from shared.settings import CommonSettings

pytestmark = pytest.mark.integration


async def test_a_statement_past_the_timeout_is_cancelled(servers: tuple[str, str]) -> None:
    _kafka, database = servers
    common = CommonSettings(db_statement_timeout_seconds=0.5)
    engine = create_engine(database, timeouts=DbTimeouts.of(common))
    try:
        async with engine.connect() as conn:
            assert (await conn.execute(text("SHOW statement_timeout"))).scalar() == "500ms"
            started = time.monotonic()
            with pytest.raises(DBAPIError, match="statement timeout"):
                await conn.execute(text("SELECT pg_sleep(5)"))
            assert time.monotonic() - started < 3
    finally:
        await engine.dispose()
