"""Async SQLAlchemy helpers shared by every service.

SQLite (embedded mode) is made to behave like the PostgreSQL the services are written for:
write-ahead log, foreign keys on, fsync on commit (a financial ledger may not lose a
committed transaction), and ``BEGIN IMMEDIATE`` so that a transaction that reads and then
writes cannot interleave with another writer (SQLite's default deferred transactions would
let two requests read the same balance).
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import MetaData, Table, bindparam, event, make_url, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Session

# Re-exported: the services' models build on these.
from shared.platform_tables import BIGINT_MAX as BIGINT_MAX
from shared.platform_tables import NAMING_CONVENTION as NAMING_CONVENTION
from shared.platform_tables import SHARED_TABLES as SHARED_TABLES
from shared.platform_tables import BigIntPK as BigIntPK
from shared.platform_tables import new_metadata as new_metadata
from shared.settings import PRIVATE_DIR_MODE, PRIVATE_FILE_MODE

if TYPE_CHECKING:
    from shared.settings import CommonSettings


def include_shared_tables(metadata: MetaData) -> None:
    """Copy the tables every service has (shared.platform_tables) into ``metadata``."""
    for table in SHARED_TABLES.tables.values():
        table.to_metadata(metadata)


def dialect_of(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


async def insert_ignore(session: AsyncSession, table: Table, values: dict[str, Any]) -> bool:
    """INSERT that does nothing on a key conflict; True when the row was inserted.

    On PostgreSQL a concurrent insert of the same key waits for the other transaction, so
    exactly one of two racing callers gets True.
    """
    statement = _insert_ignore(dialect_of(session), table, tuple(values))
    result = await session.execute(statement, {f"insert_{k}": v for k, v in values.items()})
    return bool(result.rowcount)  # type: ignore[attr-defined]


@functools.cache
def _insert_ignore(dialect: str, table: Table, columns: tuple[str, ...]) -> Any:
    """The statement of ``insert_ignore``, built once per table and columns, its values bound
    by name: a statement built per call computes its cache key per call (an idempotency
    claim per request, issue 27); a kept one's key is memoised."""
    if dialect == "postgresql":
        insert_: Any = postgresql.insert
    elif dialect == "sqlite":
        insert_ = sqlite.insert
    else:  # pragma: no cover - only the two dialects above are deployed
        raise RuntimeError(f"unsupported dialect {dialect}")
    return insert_(table).values({c: bindparam(f"insert_{c}") for c in columns}).on_conflict_do_nothing()


class Base(DeclarativeBase):
    """Per-service declarative bases subclass this with their own ``metadata``."""

    __abstract__ = True


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


DRIVER_GRACE_SECONDS = 5.0


@dataclass(frozen=True)
class DbTimeouts:
    """Every wait on a database is bounded (settings ``VCREDIT_DB_*``, ``VCREDIT_SQLITE_*``);
    the defaults here are the settings' defaults, for engines made outside a service."""

    connect_seconds: float = 10.0
    statement_seconds: float = 300.0
    pool_seconds: float = 30.0
    sqlite_busy_seconds: float = 30.0

    @classmethod
    def of(cls, common: CommonSettings) -> DbTimeouts:
        return cls(
            connect_seconds=common.db_connect_timeout_seconds,
            statement_seconds=common.db_statement_timeout_seconds,
            pool_seconds=common.db_pool_timeout_seconds,
            sqlite_busy_seconds=common.sqlite_busy_timeout_seconds,
        )

    def asyncpg_connect_args(self) -> dict[str, Any]:
        # The server cancels a statement past statement_timeout (a clean error, the locks
        # released); the driver's command_timeout, a little later, is the backstop when the
        # server cannot answer at all (a partition, a hung backend).
        return {
            "timeout": self.connect_seconds,
            "command_timeout": self.statement_seconds + DRIVER_GRACE_SECONDS,
            "server_settings": {"statement_timeout": str(round(self.statement_seconds * 1000))},
        }


def _private_sqlite_file(url: str) -> None:
    """Make a SQLite database file (and its -wal and -shm) the owner's alone before SQLite
    opens it: SQLite creates a new file 0644 (less the umask) and gives the -wal and -shm the
    database file's mode, so a file made 0600 first keeps all three private. A missing
    directory is made 0700; an existing one is left as it is (it may be shared, and is not
    necessarily ours: the data directory itself is tightened by ``private_dir``)."""
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    path.parent.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR_MODE)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, PRIVATE_FILE_MODE))  # an empty file is a new database
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        with contextlib.suppress(FileNotFoundError):
            file.chmod(PRIVATE_FILE_MODE)


def create_engine(url: str, *, timeouts: DbTimeouts | None = None, **kwargs: Any) -> AsyncEngine:
    timeouts = timeouts or DbTimeouts()
    # Statement parameters hold names and ID hashes: kept out of logs and error messages.
    kwargs.setdefault("hide_parameters", True)
    if not is_sqlite(url):
        # No ping on checkout: it was a round trip before every transaction (13% of a
        # producing service's CPU in bench/bus.py's profile, issue 27). A connection the
        # server dropped (a restart, a failover) fails its first statement instead: SQLAlchemy
        # then invalidates the whole pool, and the error is ``unavailable`` (below), a 503
        # with Retry-After that Idempotency-Key makes safe to retry, or a consumer's or
        # relay's retry (tests/integration/test_database_outage.py, tests/e2e/test_faults.py).
        kwargs.setdefault("pool_size", 10)
        kwargs.setdefault("max_overflow", 10)
        kwargs.setdefault("pool_timeout", timeouts.pool_seconds)
        if url.split("://", 1)[0].endswith("+asyncpg"):
            kwargs.setdefault("connect_args", timeouts.asyncpg_connect_args())
        return create_async_engine(url, **kwargs)
    _private_sqlite_file(url)
    busy_ms = round(timeouts.sqlite_busy_seconds * 1000)
    # sqlite3's own timeout is the same busy wait, for the connect itself.
    kwargs.setdefault("connect_args", {"timeout": timeouts.sqlite_busy_seconds})
    engine = create_async_engine(url, **kwargs)

    @event.listens_for(engine.sync_engine, "connect")
    def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the driver so BEGIN below is the only one.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _sqlite_begin(conn: Any) -> None:
        # Readers take no lock in WAL mode; making them queue for the write lock would let
        # a busy writer starve them.
        conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get(READ_ONLY) else "BEGIN IMMEDIATE")

    return engine


READ_ONLY = "vcredit_read_only"


def read_only(engine: AsyncEngine) -> AsyncEngine:
    """The same pool, for transactions that only read (GET endpoints, projections' queries)."""
    return engine.execution_options(**{READ_ONLY: True})


def is_read_only(session: AsyncSession) -> bool:
    """Whether ``session`` is bound to a ``read_only`` engine (it must not write)."""
    bind = session.bind
    return isinstance(bind, AsyncEngine) and bool(bind.get_execution_options().get(READ_ONLY))


def create_sessionmaker(
    engine: AsyncEngine, session_class: type[Session] = Session, info: dict[str, Any] | None = None
) -> async_sessionmaker[AsyncSession]:
    """``info`` is copied into every session's ``session.info``: how handlers and helpers
    that only get a session reach the service's settings."""
    return async_sessionmaker(engine, expire_on_commit=False, sync_session_class=session_class, info=info or {})


@asynccontextmanager
async def transaction(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """One unit of work: commits on success, rolls back on any exception."""
    async with sessions() as session, session.begin():
        yield session


async def ping(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))


# SQLSTATEs of a server that is not there right now: class 08 (connection exception), and
# 57P01-57P03 (shut down by an administrator or a crash, or still starting up).
_UNAVAILABLE_STATES = ("08", "57P01", "57P02", "57P03")
_UNREACHABLE = {errno.ENETUNREACH, errno.EHOSTUNREACH}


def unavailable(exc: BaseException) -> bool:
    """The database could not be reached or dropped the connection (a restart, a failover),
    as opposed to refusing what was asked of it. The transaction did not commit, or (a
    connection lost during COMMIT) its outcome is unknown: retrying it is the caller's part,
    made safe by Idempotency-Key and the inbox."""
    if isinstance(exc, ConnectionError) or (isinstance(exc, OSError) and exc.errno in _UNREACHABLE):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    state = getattr(getattr(exc, "orig", None), "sqlstate", None) or getattr(exc, "sqlstate", None)
    return isinstance(state, str) and state.startswith(_UNAVAILABLE_STATES)
