"""A started service leaves its startup objects out of the garbage collector's full scans
(shared/runtime.py), once per process."""

from __future__ import annotations

import asyncio
import gc
from pathlib import Path

from shared.bus.embedded import EmbeddedBus
from shared.migrations import upgrade
from shared.runtime import ServiceRuntime
from shared.settings import CommonSettings
from vcredit.services import load_spec


async def test_a_started_service_has_frozen_its_startup_objects(tmp_path: Path) -> None:
    spec = load_spec("risk")
    url = f"sqlite+aiosqlite:///{tmp_path}/risk.db"
    await asyncio.to_thread(upgrade, spec.migrations_dir, url)
    async with ServiceRuntime(spec, url, EmbeddedBus(tmp_path / "bus.db"), CommonSettings(data_dir=tmp_path)):
        frozen = gc.get_freeze_count()
        assert frozen > 1000  # modules, mapped classes, schemas: far more than a handful
    # A second start in the same process freezes nothing more (frozen objects that lose
    # their last reference are still freed, so the count may go down).
    async with ServiceRuntime(spec, url, EmbeddedBus(tmp_path / "bus2.db"), CommonSettings(data_dir=tmp_path)):
        assert gc.get_freeze_count() <= frozen
