"""The installed package carries every file the code reads at run time.

The image installs vcredit as a wheel (deploy/Dockerfile), not in editable mode as the tests
do, so a data file pyproject.toml's package-data does not name is missing only there: the
scoring rule sets were, and every household's rating failed in the containers (issue 23).
Setuptools itself builds the wheel here; every file git tracks in the packages must be in it."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
PACKAGES = ("shared", "services", "simulator", "bench", "vcredit")
# Documents beside the code (bench/RESULTS.md and its charts), which nothing reads at run time.
DOCUMENTS = (".md", ".png")


def test_the_wheel_carries_every_tracked_file_of_the_packages(tmp_path: Path) -> None:
    tracked = subprocess.run(
        ["git", "ls-files", "--", *PACKAGES], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assert any(name.endswith(".json") for name in tracked)
    # A copy of the checkout's files: a build in the checkout would reuse what an earlier
    # build left in build/ and *.egg-info, and carry files package-data no longer names.
    source = tmp_path / "source"
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    for name in files.split():
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(tmp_path), str(source)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = tmp_path.glob("vcredit-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        carried = set(archive.namelist())
    missing = sorted(name for name in tracked if name not in carried and not name.endswith(DOCUMENTS))
    assert not missing, f"pyproject.toml's package-data misses files the code reads: {missing}"
