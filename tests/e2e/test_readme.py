"""The README's quick start, as written, against a real `vcredit up` (issue 22 item 7b).

The test starts `vcredit up` as the README's first line does (without `pip install`: the
checkout is on PYTHONPATH and `vcredit` on PATH runs it) in a fresh directory, then runs the
README's bash blocks that follow, unchanged but for the ports (free ones, as other services
may hold 8001-8005): the bootstrap token from `var/bootstrap-token`, a township, a village,
its collector's key and its sheet of two households, imported with a percent-encoded Chinese
file name."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from shared.settings import SERVICE_NAMES
from vcredit.cluster import free_ports

pytestmark = [pytest.mark.e2e]

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
BLOCK = re.compile(r"^```bash\n(.*?)^```", re.DOTALL | re.MULTILINE)


def quick_start_blocks(readme: str) -> list[str]:
    """The blocks from the one that takes the token up to the sheet import."""
    blocks = BLOCK.findall(readme)
    first = next(i for i, b in enumerate(blocks) if "var/bootstrap-token" in b)
    last = next(i for i, b in enumerate(blocks) if "/households/import" in b)
    assert first < last, "the README's quick start runs in order"
    return blocks[first : last + 1]


def _json_objects(text: str) -> list[Any]:
    """curl prints each answer's body with no newline between them."""
    decoder = json.JSONDecoder()
    objects, at = [], 0
    while (at := text.find("{", at)) != -1:
        value, at = decoder.raw_decode(text, at)
        objects.append(value)
    return objects


def test_the_readme_quick_start_works_as_written(tmp_path: Path) -> None:
    ports = dict(zip(SERVICE_NAMES, free_ports(len(SERVICE_NAMES)), strict=True))
    env = {k: v for k, v in os.environ.items() if not k.startswith("VCREDIT_")}
    env |= {f"VCREDIT_{name.upper()}_PORT": str(port) for name, port in ports.items()}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, (str(ROOT), env.get("PYTHONPATH"))))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "vcredit").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m vcredit "$@"\n')
    (bin_dir / "vcredit").chmod(0o755)
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    home = tmp_path / "newcomer"
    home.mkdir()

    script = "\n".join(quick_start_blocks(README.read_text(encoding="utf-8")))
    for name, port in ports.items():
        default = 8001 + SERVICE_NAMES.index(name)
        script = script.replace(f"localhost:{default}", f"localhost:{port}")

    log = tmp_path / "up.log"
    with log.open("wb") as output:
        up = subprocess.Popen(["vcredit", "up"], cwd=home, env=env, stdout=output, stderr=subprocess.STDOUT)
    try:
        # Until the token is printed, last, once every service is up. Generous: five services
        # start on a busy two-core CI machine; the bound only keeps a hang short.
        deadline = time.monotonic() + 90
        while "bootstrap token (" not in log.read_text():
            assert up.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.1)
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script], cwd=home, env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr[-3000:]
        township, village, report = _json_objects(done.stdout)
        assert township.get("code") == "410100001", done.stdout
        assert village.get("code") == "410100001001", done.stdout
        assert (report.get("registered"), report.get("failed"), report.get("errors")) == (2, 0, []), report

    finally:
        up.send_signal(signal.SIGINT)
        up.wait(timeout=30)
