"""Dependency audit for .ci/run: pip-audit over what vcredit installs, and nothing else.

With ``--image REF``, the same over what the image REF carries instead: every distribution
in its Python environment (deploy/Dockerfile's venv), read by running the image with podman.

The audited set is the closure of pyproject.toml's dependencies and its ``test`` extra,
pinned to the versions installed here (``pip install -e '.[test]'`` ran just before). The
machine's other packages are not vcredit's to fix, and vcredit itself (the editable
package) is not on PyPI, so neither is audited.

pip-audit asks PyPI's per-release JSON for known vulnerabilities. Where that answer is
missing (a registry mirror that serves only the project-level JSON, as on the project's
machines), the project-level JSON still lists the vulnerabilities of the newest release: a
dependency installed at its newest release is audited from there. A dependency that
neither way could audit is listed, never counted as clean; VCREDIT_AUDIT_STRICT=1 makes
that a failure too.

Exit status: 1 when any audited dependency has a known vulnerability (raise its minimum in
pyproject.toml to a fixed release), or a strict run left one unaudited; else 0.

    python scripts/audit.py [--output artifacts/pip-audit.json] [--image localhost/vcredit:local]
"""

from __future__ import annotations

import argparse
import importlib.metadata as metadata
import json
import os
import subprocess
import sys
import tempfile
import tomllib
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PYPI = os.environ.get("VCREDIT_AUDIT_PYPI", "https://pypi.org/pypi")
TIMEOUT_SECONDS = 20
# Vulnerability ids accepted on purpose, each with its reason. None today.
IGNORED: dict[str, str] = {}


def project_requirements(pyproject: Path, extras: tuple[str, ...] = ("test",)) -> list[Requirement]:
    project = tomllib.loads(pyproject.read_text())["project"]
    name = canonicalize_name(project["name"])
    optional: dict[str, list[str]] = project.get("optional-dependencies", {})
    wanted, pending, out = set(), list(extras), [Requirement(r) for r in project["dependencies"]]
    while pending:
        extra = pending.pop()
        if extra in wanted:
            continue
        wanted.add(extra)
        for text in optional.get(extra, []):
            req = Requirement(text)
            if canonicalize_name(req.name) == name:  # "vcredit[sim]": the project's own extras
                pending.extend(req.extras)
            else:
                out.append(req)
    return out


def installed_closure(roots: list[Requirement]) -> dict[str, str]:
    """Installed name -> version for the roots and everything they require here."""
    versions: dict[str, str] = {}
    extras_seen: dict[str, set[str]] = {}
    pending = [(r, set(r.extras)) for r in roots if r.marker is None or r.marker.evaluate()]
    while pending:
        req, extras = pending.pop()
        key = canonicalize_name(req.name)
        if key in extras_seen and extras <= extras_seen[key]:
            continue
        extras_seen[key] = extras_seen.get(key, set()) | extras
        try:
            dist = metadata.distribution(req.name)
        except metadata.PackageNotFoundError:
            raise SystemExit(f"{req.name} is required but not installed: run pip install -e '.[test]' first") from None
        versions[key] = dist.version
        for text in dist.requires or []:
            sub = Requirement(text)
            environments = [{"extra": e} for e in extras] or [{"extra": ""}]
            if sub.marker is None or any(sub.marker.evaluate(env) for env in environments):
                pending.append((sub, set(sub.extras)))
    return versions


# Run inside the image: its distributions, as name -> version.
_LIST_DISTRIBUTIONS = (
    "import importlib.metadata as m, json; "
    "print(json.dumps({d.metadata['Name']: d.version for d in m.distributions()}))"
)


def image_distributions(image: str, own: str = "vcredit") -> dict[str, str]:
    """Every distribution installed in ``image``'s Python, but the project itself (not on PyPI)."""
    done = subprocess.run(
        ["podman", "run", "--rm", "--network", "none", "--entrypoint", "python", image, "-c", _LIST_DISTRIBUTIONS],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"could not list {image}'s distributions ({done.returncode}):\n{done.stderr[-2000:]}")
    found: dict[str, str] = json.loads(done.stdout)
    return {canonicalize_name(n): v for n, v in found.items() if canonicalize_name(n) != canonicalize_name(own)}


def pip_audit(pins: dict[str, str], output: Path) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write("".join(f"{name}=={version}\n" for name, version in sorted(pins.items())))
    command = [
        sys.executable,
        "-m",
        "pip_audit",
        "--disable-pip",
        "--no-deps",
        "--requirement",
        f.name,
        "--format",
        "json",
        "--output",
        str(output),
        "--progress-spinner",
        "off",
        "--timeout",
        str(TIMEOUT_SECONDS),
    ]
    for vuln in IGNORED:
        command += ["--ignore-vuln", vuln]
    # Exit 1 only means "vulnerabilities found": the report says which, and is read below.
    done = subprocess.run(command, capture_output=True, text=True)
    Path(f.name).unlink()
    if done.returncode not in (0, 1) or not output.exists():
        raise SystemExit(f"pip-audit failed ({done.returncode}):\n{done.stderr[-3000:]}")
    report: dict[str, Any] = json.loads(output.read_text())
    return report


def newest_release_vulnerabilities(name: str, version: str) -> list[str] | str:
    """Known vulnerability ids of ``name`` ``version`` from the project-level JSON, or why
    that JSON cannot say (not reachable, or ``version`` is not the newest release)."""
    try:
        with urllib.request.urlopen(f"{PYPI}/{name}/json", timeout=TIMEOUT_SECONDS) as response:
            data = json.load(response)
    except (urllib.error.URLError, TimeoutError, json.JSONDecodeError) as exc:
        return f"PyPI unreachable ({type(exc).__name__})"
    newest = data["info"]["version"]
    if newest != version:
        return f"no per-release data from PyPI here, and the newest release is {newest}"
    return [v["id"] for v in data.get("vulnerabilities", []) if not v.get("withdrawn") and v["id"] not in IGNORED]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", default=str(ROOT / "artifacts" / "pip-audit.json"))
    parser.add_argument("--image", help="audit this container image's Python environment instead (podman)")
    args = parser.parse_args()
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)

    if args.image:
        pins, audited_set = image_distributions(args.image), f"the image {args.image}"
    else:
        pins, audited_set = installed_closure(project_requirements(ROOT / "pyproject.toml")), "vcredit[test]"
    report = pip_audit(pins, output)
    vulnerable: dict[str, list[str]] = {}
    unaudited: dict[str, str] = {}
    fallback = 0
    for dep in report["dependencies"]:
        name = dep["name"]
        version = dep.get("version") or pins[canonicalize_name(name)]
        if "skip_reason" not in dep:
            if dep["vulns"]:
                vulnerable[f"{name} {version}"] = [
                    f"{v['id']} (fixed in {', '.join(v['fix_versions']) or 'no release yet'})" for v in dep["vulns"]
                ]
            continue
        found = newest_release_vulnerabilities(name, version)
        if isinstance(found, str):
            unaudited[f"{name} {version}"] = found
        elif found:
            vulnerable[f"{name} {version}"] = found
        else:
            fallback += 1

    audited = len(pins) - len(unaudited)
    print(
        f"pip-audit: {len(pins)} dependencies of {audited_set}; {audited} audited ({fallback} of them from "
        f"PyPI's newest-release data), {len(vulnerable)} vulnerable, {len(unaudited)} not audited"
    )
    for dep, ids in sorted(vulnerable.items()):
        print(f"  VULNERABLE {dep}: {'; '.join(ids)}")
    for dep, reason in sorted(unaudited.items()):
        print(f"  not audited {dep}: {reason}")
    for vuln, reason in IGNORED.items():
        print(f"  ignored {vuln}: {reason}")
    strict = os.environ.get("VCREDIT_AUDIT_STRICT") == "1"
    return 1 if vulnerable or (strict and unaudited) else 0


if __name__ == "__main__":
    sys.exit(main())
