"""shared/idempotency.py's ``idempotent``, on SQLite: the claim, the work and the stored
answer are one transaction, so a replay returns the first answer without doing the work
again, a failed request leaves no claim, and no other connection sees the claim before
the work commits."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from shared.auth import Principal
from shared.db import create_engine, create_sessionmaker, read_only
from shared.idempotency import idempotent
from shared.platform_tables import SHARED_TABLES, idempotency_keys
from shared.problems import Problem


class Thing(BaseModel):
    name: str


def _request(key: str | None, path: str = "/v1/things", principal: str = "client-a") -> Request:
    headers = [(b"idempotency-key", key.encode())] if key is not None else []
    request = Request({"type": "http", "method": "POST", "path": path, "headers": headers, "query_string": b""})
    # What shared.web.authorize leaves on every authenticated request.
    request.state.principal = Principal(principal, frozenset({"government"}))
    return request


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/idempotency.db")
    async with engine.begin() as conn:
        await conn.run_sync(SHARED_TABLES.create_all)
    yield engine
    await engine.dispose()


async def _claims(engine: AsyncEngine) -> int:
    """Claims committed, as another connection sees them (a reader: no write lock to wait for)."""
    async with read_only(engine).connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(idempotency_keys)) or 0)


async def _call(
    engine: AsyncEngine, key: str | None, body: Thing, work_done: list[str], request: Request | None = None
) -> Thing | JSONResponse:
    async def work() -> Thing:
        work_done.append(body.name)
        return Thing(name=body.name.upper())

    async with create_sessionmaker(engine)() as session:
        return await idempotent(session, request or _request(key), body, work, status=201)


async def test_a_replay_answers_the_stored_first_answer_without_doing_the_work_again(engine: AsyncEngine) -> None:
    done: list[str] = []
    first = await _call(engine, "k-1", Thing(name="a"), done)
    again = await _call(engine, "k-1", Thing(name="a"), done)
    assert first == Thing(name="A")
    # Were the answer not remembered, the replay would find a claim with no answer (409).
    assert isinstance(again, JSONResponse)
    assert (again.status_code, again.body, again.headers["idempotent-replayed"]) == (201, b'{"name":"A"}', "true")
    assert done == ["a"]
    # Without a key every request is a new one.
    assert await _call(engine, None, Thing(name="a"), done) == Thing(name="A")
    assert done == ["a", "a"]


async def test_a_failed_request_leaves_no_claim_and_its_retry_does_the_work(engine: AsyncEngine) -> None:
    async def refused() -> Thing:
        raise Problem(409, "NOPE", "Refused", "Not now.")

    async with create_sessionmaker(engine)() as session:
        with pytest.raises(Problem):
            await idempotent(session, _request("k-2"), Thing(name="b"), refused, status=201)
    assert await _claims(engine) == 0
    done: list[str] = []
    assert await _call(engine, "k-2", Thing(name="b"), done) == Thing(name="B")
    assert done == ["b"]


async def test_the_claim_is_taken_in_the_works_transaction_and_commits_with_it(engine: AsyncEngine) -> None:
    seen: dict[str, object] = {}

    async def work(session: AsyncSession) -> Thing:
        seen["in_transaction"] = session.in_transaction()
        seen["claimed_here"] = await session.scalar(select(func.count()).select_from(idempotency_keys))
        seen["claimed_elsewhere"] = await _claims(engine)
        return Thing(name="c")

    async with create_sessionmaker(engine)() as session:
        await idempotent(session, _request("k-3"), Thing(name="c"), lambda: work(session), status=201)
    assert seen == {"in_transaction": True, "claimed_here": 1, "claimed_elsewhere": 0}
    assert await _claims(engine) == 1


async def test_a_scope_too_long_for_its_column_is_kept_whole_as_a_hash(engine: AsyncEngine) -> None:
    """A long path (path parameters) must neither overflow the 255-character scope column
    (PostgreSQL refuses the insert) nor be cut so that two routes share a scope."""
    done: list[str] = []
    long_a, long_b = "/v1/things/" + "a" * 300, "/v1/things/" + "a" * 299 + "b"
    assert await _call(engine, "k-4", Thing(name="d"), done, _request("k-4", long_a)) == Thing(name="D")
    assert await _call(engine, "k-4", Thing(name="e"), done, _request("k-4", long_b)) == Thing(name="E")
    async with read_only(engine).connect() as conn:
        scopes = list(await conn.scalars(select(idempotency_keys.c.scope)))
    assert len(scopes) == 2 and all(len(s) <= 255 and s.startswith("sha256:") for s in scopes)
    assert done == ["d", "e"]


async def test_without_a_principal_a_key_is_refused_rather_than_shared(engine: AsyncEngine) -> None:
    request = _request("k-5")
    del request.state.principal
    with pytest.raises(RuntimeError, match="without an authenticated principal"):
        await _call(engine, "k-5", Thing(name="f"), [], request)
    assert await _claims(engine) == 0
