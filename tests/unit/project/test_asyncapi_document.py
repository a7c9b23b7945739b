"""docs/asyncapi.json passes the official AsyncAPI parser (@asyncapi/parser, pinned in
tools/asyncapi/package-lock.json): tools/asyncapi/validate.mjs fails on any diagnostic of
severity error.

The parser is installed with ``npm ci`` once into .cache/asyncapi/<hash of the lock file>/
(gitignored), never into the checkout, and reused by later runs; install scripts are not run
(the parser needs none). Node 20 and npm are on CI's machines; where they are missing the
test skips, or fails under VCREDIT_REQUIRE_INTEGRATION=1 (scripts/test.sh, CI).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import missing

ROOT = Path(__file__).resolve().parents[3]
TOOL = ROOT / "tools" / "asyncapi"
DOCUMENT = ROOT / "docs" / "asyncapi.json"
FILES = ("package.json", "package-lock.json", "validate.mjs")


@pytest.fixture(scope="module")
def validator() -> Path:
    """validate.mjs next to its installed node_modules."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        missing("node and npm are needed to run the AsyncAPI parser (tools/asyncapi)")
    digest = hashlib.sha256(b"".join((TOOL / f).read_bytes() for f in FILES[:2])).hexdigest()[:16]
    home = ROOT / ".cache" / "asyncapi" / digest
    if not (home / "node_modules" / "@asyncapi" / "parser").is_dir():
        staging = home.with_name(f"{digest}.{os.getpid()}")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        for f in FILES[:2]:
            shutil.copy(TOOL / f, staging / f)
        npm = ["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"]
        env = {**os.environ, "SCARF_ANALYTICS": "false"}  # a dependency's telemetry, off
        done = subprocess.run(npm, cwd=staging, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, f"npm ci failed:\n{done.stdout}\n{done.stderr}"
        # Renamed into place whole, so a concurrent or interrupted run never sees half an install.
        try:
            staging.rename(home)
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)  # another run got there first
    shutil.copy(TOOL / "validate.mjs", home / "validate.mjs")  # the checkout's, always
    return home / "validate.mjs"


def _validate(validator: Path, *documents: Path) -> subprocess.CompletedProcess[str]:
    # One node process for several documents: the parser takes seconds to load.
    return subprocess.run(["node", str(validator), *map(str, documents)], capture_output=True, text=True, timeout=300)


def test_the_committed_document_is_valid_asyncapi(validator: Path) -> None:
    done = _validate(validator, DOCUMENT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{DOCUMENT}: valid AsyncAPI 3.0.0: 10 channels" in done.stdout, done.stdout


def _broken(doc: dict[str, Any], breakage: str) -> dict[str, Any]:
    if breakage == "dangling message reference":
        doc["operations"]["loans.publish"]["messages"].append({"$ref": "#/channels/loans.events/messages/nothing.v1"})
    elif breakage == "not a schema type":
        doc["components"]["schemas"]["TownshipCreated"]["properties"]["code"]["type"] = "strin"
    elif breakage == "binding field of the wrong type":
        doc["channels"]["loans.events"]["bindings"]["kafka"]["topicConfiguration"]["retention.ms"] = "forever"
    else:
        del doc["info"]
    return doc


def test_the_parser_refuses_a_broken_document(validator: Path, tmp_path: Path) -> None:
    # The check is only worth something if the parser does refuse: one breakage of each kind.
    breakages = ["dangling message reference", "not a schema type", "binding field of the wrong type", "no info"]
    paths = []
    for n, breakage in enumerate(breakages):
        path = tmp_path / f"broken-{n}.json"
        path.write_text(json.dumps(_broken(json.loads(DOCUMENT.read_text(encoding="utf-8")), breakage)))
        paths.append(path)
    done = _validate(validator, *paths)
    assert done.returncode == 1, done.stdout + done.stderr
    for path, breakage in zip(paths, breakages, strict=True):
        assert f"{path}: " in done.stdout and f"{path}: valid" not in done.stdout, (breakage, done.stdout)
        assert any(
            line.startswith(f"{path}: ") and "not a valid AsyncAPI document" in line
            for line in done.stdout.splitlines()
        ), breakage
