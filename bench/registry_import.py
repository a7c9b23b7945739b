"""Collection-sheet import in embedded mode (SQLite + the SQLite log bus): 20,000
households of one village, first import and re-import of the same file.

    python -m bench.registry_import [--households 20000]

Target (issue 3): 20,000 households in under 60 s. Anchor: the same number of bare
single-row INSERTs into an SQLite table in one transaction per 500 rows.
"""

from __future__ import annotations

import asyncio
import csv
import io
import sqlite3
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.report import Figure, Target, number
from bench.suite import Benchmark, Servers, main_one
from services.registry.domain.identifiers import resident_id_check_char
from shared.bus.embedded import EmbeddedBus
from shared.migrations import upgrade
from shared.runtime import ServiceRuntime, create_app
from shared.settings import CommonSettings
from vcredit.services import load_spec

TOKEN = "bench"
VILLAGE = "410102001001"


def resident_ids(n: int) -> list[str]:
    ids = []
    for i in range(n):
        # Spread over birth dates and sequence numbers: 28 days x 12 months x 60 years x 999.
        seq, rest = i % 999 + 1, i // 999
        first17 = f"410102{1940 + rest // 336:04d}{rest // 28 % 12 + 1:02d}{rest % 28 + 1:02d}{seq:03d}"
        ids.append(first17 + resident_id_check_char(first17))
    return ids


def sheet(n: int) -> bytes:
    out = io.StringIO()
    fields = [
        "身份证号",
        "姓名",
        "贫困户",
        "增收项目",
        "党员",
        "身体健康",
        "证书",
        "自建房价值",
        "家庭和睦",
        "商业保险",
    ]
    writer = csv.DictWriter(out, fieldnames=fields)
    writer.writeheader()
    for i, id_number in enumerate(resident_ids(n)):
        writer.writerow(
            {
                "身份证号": id_number,
                "姓名": f"农户{i}",
                "贫困户": "是" if i % 5 == 0 else "否",
                "增收项目": "是" if i % 7 else "否",
                "党员": "是" if i % 11 == 0 else "否",
                "身体健康": "是",
                "证书": "承包证、宅基地证",
                "自建房价值": f"{150000 + i % 100 * 1000}",
                "家庭和睦": "是",
                "商业保险": "是" if i % 3 == 0 else "否",
            }
        )
    return out.getvalue().encode("gbk")


def bare_sqlite_inserts(n: int, path: Path) -> float:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE t (id TEXT PRIMARY KEY, name TEXT, village TEXT, poor INTEGER)")
    started = time.perf_counter()
    for start in range(0, n, 500):
        with conn:
            conn.executemany(
                "INSERT INTO t VALUES (?, ?, ?, ?)",
                [(f"h{i}", f"农户{i}", VILLAGE, i % 5 == 0) for i in range(start, min(n, start + 500))],
            )
    conn.close()
    return time.perf_counter() - started


@dataclass(frozen=True)
class Sizes:
    households: int


IMPORT_TARGET = Target("<", 60, "< 60 s for 20,000")


async def measure(servers: Servers, sizes: Sizes) -> list[Figure]:
    n = sizes.households
    data = sheet(n)
    expected = {"first import": {"registered": n, "failed": 0}, "re-import of the same file": {"unchanged": n}}
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        spec = load_spec("registry")
        url = f"sqlite+aiosqlite:///{data_dir}/registry.db"
        await asyncio.to_thread(upgrade, spec.migrations_dir, url)
        runtime = ServiceRuntime(spec, url, EmbeddedBus(data_dir / "bus.db"), CommonSettings(data_dir=data_dir))
        app = create_app(runtime, TOKEN, manage_runtime=False)
        await runtime.start()
        try:
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app),
                base_url="http://registry",
                headers={"Authorization": f"Bearer {TOKEN}"},
                timeout=600,
            ) as client:
                await client.post("/v1/townships", json={"code": "410102001", "name": "城关镇"})
                await client.post("/v1/villages", json={"code": VILLAGE, "name": "东村", "township_code": "410102001"})
                timings = {}
                for label, counts in expected.items():
                    started = time.perf_counter()
                    r = await client.post(f"/v1/villages/{VILLAGE}/households/import", content=data)
                    timings[label] = time.perf_counter() - started
                    if r.status_code != 200:
                        raise RuntimeError(f"{label}: HTTP {r.status_code} {r.text[:500]}")
                    # A run that imported less than the whole sheet measured something else.
                    report = r.json()
                    if any(report[k] != v for k, v in counts.items()):
                        raise RuntimeError(f"{label}: expected {counts}, got {report}")
        finally:
            await runtime.stop()
        anchor = bare_sqlite_inserts(n, data_dir / "anchor.db")

    name = "bare SQLite INSERTs, 500 per transaction"
    size = f"{n:,} households, {number(len(data) / 1e6)} MB GBK CSV, embedded"
    return [
        Figure(f"first import, {size}", timings["first import"], "s", IMPORT_TARGET.at_size(n == 20_000), name, anchor),
        Figure("re-import of the same file", timings["re-import of the same file"], "s", None, name, anchor),
    ]


BENCHMARK = Benchmark("registry_import", full=Sizes(households=20_000), quick=Sizes(households=500), measure=measure)

if __name__ == "__main__":
    main_one(BENCHMARK, __doc__)
