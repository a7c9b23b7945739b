"""Alembic glue: every service keeps its own migrations in ``services/<name>/migrations``
and its own ``alembic_version`` in its own database.

The platform tables (outbox, inbox, idempotency keys: shared/platform_tables.py; the query
log: shared/audit.py) are migrated once, on the ``platform`` branch in
``shared/platform_migrations``, which every service's configuration lists beside its own
``versions`` (``version_locations``). Each database therefore has two heads, its service's
and the platform's, and ``upgrade`` goes to both. A platform revision applies to the platform
tables the migrating service's models declare (``declares``): every service has the outbox,
inbox and idempotency keys, only registry, scoring and loans a query log. A change to the
outbox is one new file there, made with ``command.revision(config, message, head="platform@head",
version_path=str(PLATFORM_MIGRATIONS), rev_id="platform_0002")`` on any service's
``alembic_config`` (revision ids there start with ``platform_``: the services' own are numbers).

The two branches are independent (no ``depends_on``): Alembic may run them in either order, so
no service revision may rely on a platform table, nor the reverse.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData
from sqlalchemy.engine import Connection

from shared.db import create_engine, is_sqlite
from shared.settings import PRIVATE_DIR_MODE

# The platform branch: one chain for the platform tables of every service's database.
PLATFORM_MIGRATIONS = Path(__file__).parent / "platform_migrations"
PLATFORM_BRANCH = "platform"


def _escaped(value: str) -> str:
    # ConfigParser interpolation would read '%' (in passwords, paths) as a placeholder.
    return value.replace("%", "%%")


def alembic_config(migrations_dir: Path, database_url: str) -> Config:
    """A service's Alembic configuration: its own chain and the platform branch."""
    cfg = Config()
    cfg.set_main_option("script_location", _escaped(str(migrations_dir)))
    versions = [migrations_dir / "versions", PLATFORM_MIGRATIONS]
    cfg.set_main_option("version_locations", _escaped(os.pathsep.join(map(str, versions))))
    # Split version_locations on os.pathsep; Alembic before 1.16 knows only the second name.
    cfg.set_main_option("path_separator", "os")
    cfg.set_main_option("version_path_separator", "os")
    cfg.set_main_option("sqlalchemy.url", _escaped(database_url))
    return cfg


def upgrade(migrations_dir: Path, database_url: str, revision: str = "heads") -> None:
    """Bring a database to ``revision``: by default every head, the service's chain and the
    platform branch. Blocking: call it from a thread inside an event loop."""
    if is_sqlite(database_url):
        Path(database_url.split("///", 1)[1]).parent.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR_MODE)
    command.upgrade(alembic_config(migrations_dir, database_url), revision)


def at_head(migrations_dir: Path, database_url: str) -> bool:
    """Whether the database is at every head of ``migrations_dir``, its service's and the
    platform's (nothing due). A database last migrated before the platform branch existed
    has only its service's head, so it is behind. Blocking, like ``upgrade``."""
    heads = set(ScriptDirectory.from_config(alembic_config(migrations_dir, database_url)).get_heads())

    def current(connection: Connection) -> set[str]:
        return set(MigrationContext.configure(connection).get_current_heads())

    async def run() -> set[str]:
        engine = create_engine(database_url)
        try:
            async with engine.connect() as connection:
                return await connection.run_sync(current)
        finally:
            await engine.dispose()

    return asyncio.run(run()) == heads


def run_env(target_metadata: MetaData) -> None:
    """Body of each service's ``migrations/env.py``."""
    from alembic import context

    url = context.config.get_main_option("sqlalchemy.url")
    assert url is not None
    options: dict[str, Any] = {
        "target_metadata": target_metadata,
        # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
        "render_as_batch": is_sqlite(url),
        "compare_type": True,
    }
    if context.is_offline_mode():
        context.configure(url=url, literal_binds=True, **options)
        with context.begin_transaction():
            context.run_migrations()
        return

    def migrate(connection: Connection) -> None:
        context.configure(connection=connection, **options)
        with context.begin_transaction():
            context.run_migrations()

    async def run() -> None:
        engine = create_engine(url)
        try:
            async with engine.connect() as connection:
                await connection.run_sync(migrate)
                await connection.commit()
        finally:
            await engine.dispose()

    asyncio.run(run())


def declares(table: str) -> bool:
    """Whether the models of the service being migrated declare the platform table ``table``
    (for use in platform revisions). Its models are the one statement of which platform
    tables a service has (``include_shared_tables``, ``include_query_log``); ``run_env``
    passes them to Alembic as ``target_metadata``."""
    from alembic import op

    metadata = op.get_context().opts.get("target_metadata")
    assert isinstance(metadata, MetaData), "platform revisions run through shared.migrations.run_env"
    return table in metadata.tables
