"""Embedded mode's data directory (issue 21 item 7a): after a `vcredit up`-like start the
directory is 0700 and every file in it (SQLite databases with their -wal and -shm, the bus,
generated keys, the credentials file) 0600, whatever the umask; a data directory an earlier
version left readable by others is tightened."""

from __future__ import annotations

import asyncio
import os
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from shared.auth import add_credential
from shared.runtime import ServiceRuntime, create_app
from shared.settings import SERVICE_NAMES, CommonSettings
from vcredit.cli import database_url, embedded_bus, prepare_embedded
from vcredit.services import load_spec

TOKEN = "modes-token"


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    """The common default umask, under which new files are 0644 and directories 0755."""
    old = os.umask(0o022)
    yield
    os.umask(old)


async def _up_and_write(data_dir: Path) -> None:
    """What `vcredit up` does to the data directory (vcredit/cli.py cmd_up, run_embedded),
    then a write through registry's API so the WAL files exist while it runs."""
    common = CommonSettings(data_dir=data_dir)
    await asyncio.to_thread(prepare_embedded, common)  # Alembic runs its own event loop
    bus = embedded_bus(common)
    runtimes = [ServiceRuntime(load_spec(s), database_url(s, common), bus, common) for s in SERVICE_NAMES]
    apps = {s: create_app(r, TOKEN, manage_runtime=False) for s, r in zip(SERVICE_NAMES, runtimes, strict=True)}
    for runtime in runtimes:
        await runtime.start()
    try:
        # Not an operator: that would retire the bootstrap token used below.
        add_credential(common.credentials_path, f"gov-{uuid.uuid4().hex[:8]}", "api_key", ("government",))
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=apps["registry"]),
            base_url="http://registry",
            headers={"Authorization": f"Bearer {TOKEN}"},
        ) as registry:
            code = str(uuid.uuid4().int % 10**9).zfill(9)
            r = await registry.post("/v1/townships", json={"code": code, "name": "青山乡"})
            assert r.status_code == 201, r.text
        _assert_private(data_dir, expect_wal=True)
    finally:
        for runtime in runtimes:
            await runtime.stop()


def _assert_private(data_dir: Path, *, expect_wal: bool) -> None:
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    files = {p.name: stat.S_IMODE(p.stat().st_mode) for p in data_dir.rglob("*")}
    expected = {f"{s}.db" for s in SERVICE_NAMES} | {"bus.db", "jwt-signing.key", "pii.key", "credentials.json"}
    assert set(files) >= expected | ({"registry.db-wal", "registry.db-shm"} if expect_wal else set())
    assert {name: mode for name, mode in files.items() if mode != 0o600} == {}


async def test_a_fresh_data_directory_is_the_owners_alone(tmp_path: Path) -> None:
    data_dir = tmp_path / "fresh" / "var"
    await _up_and_write(data_dir)
    _assert_private(data_dir, expect_wal=False)


async def test_a_data_directory_left_readable_by_others_is_tightened(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    await _up_and_write(data_dir)
    # As a version before this one left it (or a careless copy).
    data_dir.chmod(0o755)
    for path in data_dir.iterdir():
        path.chmod(0o644)
    await _up_and_write(data_dir)
    _assert_private(data_dir, expect_wal=False)
