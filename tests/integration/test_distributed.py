"""Distributed mode as operators run it: `vcredit migrate`, `vcredit topics create`, then
one `vcredit serve <service>` process per service on real Kafka and PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from tests.conftest import Infra

TOKEN = "distributed-token"
ROOT = Path(__file__).resolve().parents[2]


async def _vcredit(env: dict[str, str], *args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "shared",
        *args,
        env=env,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, out.decode()[-3000:]
    return out.decode()


@pytest.mark.integration
async def test_each_service_in_its_own_process_over_kafka_and_postgres(
    tmp_path: Path, real_servers: tuple[str, str] | None
) -> None:
    if real_servers is None:
        pytest.skip("no Kafka/PostgreSQL: set VCREDIT_TEST_KAFKA and VCREDIT_TEST_DATABASE_URL (scripts/test.sh does)")
    kafka, pg = real_servers
    infra = Infra("kafka", tmp_path, f"t{uuid.uuid4().hex[:12]}.", kafka=kafka, pg_admin_url=pg)
    ports = {"registry": 18101, "risk": 18104}
    env = {
        **os.environ,
        "VCREDIT_KAFKA_BOOTSTRAP_SERVERS": kafka,
        "VCREDIT_TOPIC_PREFIX": infra.topic_prefix,
        "VCREDIT_TOPIC_REPLICATION_FACTOR": "1",
        "VCREDIT_BOOTSTRAP_TOKEN": TOKEN,
        "VCREDIT_DATA_DIR": str(tmp_path),
    }
    for service, port in ports.items():
        env[f"VCREDIT_{service.upper()}_DATABASE_URL"] = await infra.database_url(service)
        env[f"VCREDIT_{service.upper()}_PORT"] = str(port)

    processes: list[asyncio.subprocess.Process] = []
    try:
        await _vcredit(env, "migrate", "registry", "risk")
        created = await _vcredit(env, "topics", "create")
        assert f"{infra.topic_prefix}registry.events" in created

        for service in ports:
            log = (tmp_path / f"{service}.log").open("wb")
            command = [sys.executable, "-m", "shared", "serve", service]
            processes.append(await asyncio.create_subprocess_exec(*command, env=env, cwd=ROOT, stdout=log, stderr=log))
        async with httpx.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5) as http:
            deadline = time.monotonic() + 30
            for port in ports.values():
                while True:
                    try:
                        if (await http.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    assert time.monotonic() < deadline, "services not ready within 30 s"
                    await asyncio.sleep(0.2)

            registry = f"http://127.0.0.1:{ports['registry']}"
            r = await http.post(f"{registry}/v1/townships", json={"code": "410100003", "name": "南湾乡"})
            assert r.status_code == 201, r.text
            r = await http.post(
                f"{registry}/v1/villages", json={"code": "410100003007", "name": "七里村", "township_code": "410100003"}
            )
            assert r.status_code == 201, r.text

            deadline = time.monotonic() + 30
            risk = f"http://127.0.0.1:{ports['risk']}"
            while (r := await http.get(f"{risk}/v1/villages/410100003007")).status_code != 200:
                assert time.monotonic() < deadline, f"risk never saw the village: {r.text}"
                await asyncio.sleep(0.1)
            assert r.json()["township_code"] == "410100003"
    finally:
        for proc in processes:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
        # uvicorn shuts down gracefully, then re-raises SIGTERM so the exit status shows it.
        codes = [await asyncio.wait_for(proc.wait(), 30) for proc in processes]
        await infra.drop_databases()
    assert all(code in (0, -signal.SIGTERM) for code in codes), codes
    for service in ports:
        assert "Application shutdown complete" in (tmp_path / f"{service}.log").read_text(), service
