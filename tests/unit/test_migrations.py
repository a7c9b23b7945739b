"""Each service's migrations produce exactly the tables its models declare."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from shared.cli import load_spec
from shared.migrations import upgrade
from shared.settings import SERVICE_NAMES


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_migrations_match_the_models(service: str, tmp_path: Path) -> None:
    spec = load_spec(service)
    upgrade(spec.migrations_dir, f"sqlite+aiosqlite:///{tmp_path}/{service}.db")
    engine = sa.create_engine(f"sqlite:///{tmp_path}/{service}.db")
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), spec.metadata) == []
    assert {"outbox", "inbox", "idempotency_keys"} <= set(spec.metadata.tables)
