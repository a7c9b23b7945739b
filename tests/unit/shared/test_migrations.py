"""Each service's migrations produce exactly the tables its models declare, the platform
tables coming from the one platform branch (shared/platform_migrations), on SQLite and on
PostgreSQL; databases migrated before that branch existed upgrade to the same schema."""

from __future__ import annotations

import asyncio
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import Script, ScriptDirectory
from sqlalchemy.engine import Connection

from shared import migrations
from shared.audit import AUDIT_TABLES
from shared.db import SHARED_TABLES, create_engine
from shared.migrations import PLATFORM_BRANCH, PLATFORM_MIGRATIONS, alembic_config, at_head, upgrade
from shared.settings import SERVICE_NAMES
from tests.conftest import Infra
from vcredit.services import load_spec

PLATFORM_TABLES = set(SHARED_TABLES.tables) | set(AUDIT_TABLES.tables)


def scripts(service: str) -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config(load_spec(service).migrations_dir, "sqlite://"))


def on_platform_branch(revision: Script) -> bool:
    return Path(revision.path).parent == PLATFORM_MIGRATIONS


def service_head(service: str) -> str:
    """The head of the service's own chain (the one outside the platform branch)."""
    script = scripts(service)
    (head,) = [h for h in script.get_heads() if not on_platform_branch(script.get_revision(h))]
    return head


async def on(url: str, inspect: Callable[[Connection], Any]) -> Any:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(inspect)
    finally:
        await engine.dispose()


def schema(connection: Connection) -> dict[str, Any]:
    """Everything of a schema a migration could change, comparable between two databases."""
    inspector = sa.inspect(connection)

    def plain(value: Any) -> Any:
        # Reflected index predicates (sqlite_where) are SQL expressions: compared as text.
        if isinstance(value, dict):
            return sorted((k, plain(v)) for k, v in value.items())
        if isinstance(value, list | tuple):
            return [plain(v) for v in value]
        return str(value) if isinstance(value, sa.ClauseElement) else value

    def described(items: list[Any]) -> list[str]:
        return sorted(repr(plain(item)) for item in items)

    return {
        table: {
            "columns": [
                (c["name"], str(c["type"]), c["nullable"], c.get("default")) for c in inspector.get_columns(table)
            ],
            "pk": inspector.get_pk_constraint(table),
            "unique": described(inspector.get_unique_constraints(table)),
            "indexes": described(inspector.get_indexes(table)),
            "fks": described(inspector.get_foreign_keys(table)),
            "options": inspector.get_table_options(table),
        }
        for table in inspector.get_table_names()
        if table != "alembic_version"
    }


def revisions(connection: Connection) -> set[str]:
    return set(MigrationContext.configure(connection).get_current_heads())


def platform_tables_of(service: str) -> list[sa.Table]:
    return [t for t in load_spec(service).metadata.sorted_tables if t.name in PLATFORM_TABLES]


@pytest.mark.parametrize("service", SERVICE_NAMES)
async def test_migrations_match_the_models(service: str, infra: Infra) -> None:
    spec = load_spec(service)
    url = await infra.database_url(service)
    await asyncio.to_thread(upgrade, spec.migrations_dir, url)

    def diff(connection: Connection) -> list[Any]:
        return compare_metadata(MigrationContext.configure(connection), spec.metadata)

    assert await on(url, diff) == []
    assert {"outbox", "inbox", "idempotency_keys"} <= set(spec.metadata.tables)
    assert await on(url, revisions) == set(scripts(service).get_heads())
    assert await asyncio.to_thread(at_head, spec.migrations_dir, url)


@pytest.mark.parametrize("service", SERVICE_NAMES)
async def test_a_database_at_the_heads_before_the_platform_branch_upgrades_unchanged(
    service: str, infra: Infra
) -> None:
    # As the service chains left production databases: the platform tables in their final
    # shape (made by the service's own revisions then), only the service's head recorded.
    spec = load_spec(service)
    url = await infra.database_url(f"{service}_deployed")
    await asyncio.to_thread(upgrade, spec.migrations_dir, url, service_head(service))

    def create_platform_tables(connection: Connection) -> None:
        spec.metadata.create_all(connection, tables=platform_tables_of(service))

    engine = create_engine(url)
    async with engine.begin() as connection:
        await connection.run_sync(create_platform_tables)
    await engine.dispose()
    before = await on(url, schema)
    assert await on(url, revisions) == {service_head(service)}
    assert not await asyncio.to_thread(at_head, spec.migrations_dir, url)  # `migrate --check`: due

    await asyncio.to_thread(upgrade, spec.migrations_dir, url)
    assert await on(url, schema) == before
    assert await on(url, revisions) == set(scripts(service).get_heads())
    assert await asyncio.to_thread(at_head, spec.migrations_dir, url)

    fresh = await infra.database_url(f"{service}_fresh")
    await asyncio.to_thread(upgrade, spec.migrations_dir, fresh)
    assert await on(fresh, schema) == before


async def test_a_database_behind_those_heads_gets_what_its_revision_lacked(infra: Infra) -> None:
    # Registry at 0002: the outbox as first released (no trace context), no query log yet.
    spec = load_spec("registry")
    url = await infra.database_url("registry_0002")
    await asyncio.to_thread(upgrade, spec.migrations_dir, url, "0002")

    def create_first_release(connection: Connection) -> None:
        SHARED_TABLES.create_all(connection)
        connection.execute(sa.text("ALTER TABLE outbox DROP COLUMN trace_context"))

    engine = create_engine(url)
    async with engine.begin() as connection:
        await connection.run_sync(create_first_release)
    await engine.dispose()

    await asyncio.to_thread(upgrade, spec.migrations_dir, url)
    fresh = await infra.database_url("registry_fresh")
    await asyncio.to_thread(upgrade, spec.migrations_dir, fresh)
    assert await on(url, schema) == await on(fresh, schema)


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_the_platform_tables_are_migrated_once_for_every_service(service: str) -> None:
    # The next outbox change is one file in shared/platform_migrations: every service's
    # configuration lists that branch beside its own chain, and no service revision names
    # a platform table any more.
    script = scripts(service)
    own = load_spec(service).migrations_dir / "versions"
    assert [Path(p) for p in script.version_locations] == [own, PLATFORM_MIGRATIONS]
    platform = script.get_revision(f"{PLATFORM_BRANCH}@head")
    assert platform is not None and on_platform_branch(platform)
    assert set(script.get_heads()) == {platform.revision, service_head(service)}

    named = re.compile("|".join(rf"[\"']{t}[\"']" for t in sorted(PLATFORM_TABLES)))
    for revision in script.walk_revisions():
        if not on_platform_branch(revision):
            assert not named.search(Path(revision.path).read_text()), revision.path


NEXT_OUTBOX_CHANGE = """
import sqlalchemy as sa
from alembic import op

revision = "platform_9999"
down_revision = "platform_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch_op:
        batch_op.add_column(sa.Column("demo", sa.Text(), nullable=True))
"""


def test_an_outbox_change_is_one_file_for_all_five_services(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    platform = tmp_path / "platform_migrations"
    shutil.copytree(PLATFORM_MIGRATIONS, platform, ignore=shutil.ignore_patterns("__pycache__"))
    (platform / "platform_9999_demo.py").write_text(NEXT_OUTBOX_CHANGE)
    monkeypatch.setattr(migrations, "PLATFORM_MIGRATIONS", platform)
    for service in SERVICE_NAMES:
        url = f"sqlite+aiosqlite:///{tmp_path}/{service}.db"
        upgrade(load_spec(service).migrations_dir, url)
        engine = sa.create_engine(f"sqlite:///{tmp_path}/{service}.db")
        with engine.connect() as connection:
            assert "demo" in {c["name"] for c in sa.inspect(connection).get_columns("outbox")}, service
            assert "platform_9999" in revisions(connection)
        engine.dispose()


def test_migrate_check_fails_until_the_database_is_at_head(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Kubernetes init containers loop on `vcredit migrate --check <service>` (deploy/k8s):
    # it must say "not yet" before the migrate Job ran and "go" after, and migrate nothing.
    from vcredit.cli import build_parser

    url = f"sqlite+aiosqlite:///{tmp_path}/loans.db"
    monkeypatch.setenv("VCREDIT_LOANS_DATABASE_URL", url)
    check = build_parser().parse_args(["migrate", "--check", "loans"])
    with pytest.raises(SystemExit, match="loans"):
        check.func(check)
    with pytest.raises(SystemExit, match="loans"):
        check.func(check)  # still behind: the check applied nothing

    upgrade(load_spec("loans").migrations_dir, url, service_head("loans"))
    with pytest.raises(SystemExit, match="loans"):  # its own chain at head, the platform's not
        check.func(check)

    upgrade(load_spec("loans").migrations_dir, url)
    check.func(check)

    # Port 9 (discard) refuses at once: no server, as while PostgreSQL is still starting.
    monkeypatch.setenv("VCREDIT_LOANS_DATABASE_URL", "postgresql+asyncpg://vcredit:x@127.0.0.1:9/vcredit_loans")
    with pytest.raises(SystemExit, match="loans"):  # unreachable is "not yet", not a traceback
        check.func(check)
