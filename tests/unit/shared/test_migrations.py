"""Each service's migrations produce exactly the tables its models declare."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from shared.migrations import upgrade
from shared.settings import SERVICE_NAMES
from vcredit.services import load_spec


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_migrations_match_the_models(service: str, tmp_path: Path) -> None:
    spec = load_spec(service)
    upgrade(spec.migrations_dir, f"sqlite+aiosqlite:///{tmp_path}/{service}.db")
    engine = sa.create_engine(f"sqlite:///{tmp_path}/{service}.db")
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), spec.metadata) == []
    assert {"outbox", "inbox", "idempotency_keys"} <= set(spec.metadata.tables)


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

    upgrade(load_spec("loans").migrations_dir, url)
    check.func(check)

    # Port 9 (discard) refuses at once: no server, as while PostgreSQL is still starting.
    monkeypatch.setenv("VCREDIT_LOANS_DATABASE_URL", "postgresql+asyncpg://vcredit:x@127.0.0.1:9/vcredit_loans")
    with pytest.raises(SystemExit, match="loans"):  # unreachable is "not yet", not a traceback
        check.func(check)
