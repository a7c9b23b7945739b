"""`vcredit up` as a newcomer runs it: a fresh directory, five services, a clean stop."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx

from shared.settings import SERVICE_NAMES
from vcredit.cluster import free_ports

TOKEN = "up-test-token"


def _start(data_dir: Path, ports: dict[str, int]) -> subprocess.Popen[bytes]:
    env = {**os.environ, "VCREDIT_DATA_DIR": str(data_dir), "VCREDIT_BOOTSTRAP_TOKEN": TOKEN}
    env.update({f"VCREDIT_{name.upper()}_PORT": str(port) for name, port in ports.items()})
    return subprocess.Popen(
        [sys.executable, "-m", "vcredit", "up"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )


def _wait_ready(ports: dict[str, int], proc: subprocess.Popen[bytes], limit: float) -> float:
    started = time.monotonic()
    pending = set(ports)
    while pending:
        elapsed = time.monotonic() - started
        assert proc.poll() is None, (proc.stdout.read() if proc.stdout else b"").decode()[-3000:]
        assert elapsed < limit, f"not ready within {limit}s: {sorted(pending)}"
        for name in list(pending):
            try:
                if httpx.get(f"http://127.0.0.1:{ports[name]}/readyz", timeout=1).status_code == 200:
                    pending.discard(name)
            except httpx.TransportError:
                pass
        time.sleep(0.1)
    return time.monotonic() - started


def _stop(proc: subprocess.Popen[bytes]) -> str:
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0, out.decode()[-3000:]
    return out.decode()


# The 15 s start-up target is a timing, measured on a quiet machine; here the bound only
# keeps a hang short (five services start on a shared two-core CI machine).
READY_BOUND = 60


def test_up_on_a_fresh_directory_becomes_ready_and_keeps_data(tmp_path: Path) -> None:
    data_dir = tmp_path / "fresh" / "var"
    ports = dict(zip(SERVICE_NAMES, free_ports(len(SERVICE_NAMES)), strict=True))
    auth = {"Authorization": f"Bearer {TOKEN}"}

    proc = _start(data_dir, ports)
    try:
        print(f"\n    vcredit up ready after {_wait_ready(ports, proc, limit=READY_BOUND):.1f}s (fresh)")
        r = httpx.post(
            f"http://127.0.0.1:{ports['registry']}/v1/townships",
            headers=auth,
            json={"code": "410100002", "name": "青山乡"},
        )
        assert r.status_code == 201, r.text
    finally:
        output = _stop(proc)
    assert "vcredit stopped" in output
    assert {p.name for p in data_dir.glob("*.db")} >= {f"{n}.db" for n in SERVICE_NAMES} | {"bus.db"}
    # Credit data and generated keys: the owner's alone (tests/system/test_data_dir_modes.py).
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    assert {p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in data_dir.iterdir() if p.stat().st_mode & 0o077} == {}

    proc = _start(data_dir, ports)
    try:
        print(f"    vcredit up ready after {_wait_ready(ports, proc, limit=READY_BOUND):.1f}s (restart)")
        r = httpx.get(f"http://127.0.0.1:{ports['registry']}/v1/townships/410100002", headers=auth)
        assert r.status_code == 200 and r.json()["name"] == "青山乡", "a restart keeps all data"
        deadline = time.monotonic() + 30  # generous: a busy machine, not a timing
        while (
            r := httpx.get(f"http://127.0.0.1:{ports['risk']}/v1/townships/410100002", headers=auth)
        ).status_code != 200:
            assert time.monotonic() < deadline, f"the event never reached risk: {r.text}"
            time.sleep(0.1)
    finally:
        _stop(proc)
