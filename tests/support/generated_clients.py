"""Python clients generated with openapi-python-client from the committed OpenAPI documents
(docs/openapi/<service>.json), for tests that talk to the services only as a bank's code
generated from those documents would.

Generated once per document content: a client lies under .cache/generated-clients/ in a
folder named by the hash of its document and of the generator's version, so a CI run (or a
developer's second run) regenerates only what changed."""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

from vcredit.openapi_documents import DOCS_DIR

SERVICES = ("registry", "scoring", "loans", "risk", "notify")
CACHE = Path(__file__).resolve().parents[2] / ".cache" / "generated-clients"


def package_name(service: str) -> str:
    return f"vcredit_{service}_client"


def _generate(service: str, document: Path) -> Path:
    """The folder holding the service's generated package (generated now unless cached)."""
    version = importlib.metadata.version("openapi-python-client")
    digest = hashlib.sha256(document.read_bytes() + version.encode()).hexdigest()[:16]
    root = CACHE / f"{service}-{digest}"
    package = package_name(service)
    if (root / package / "__init__.py").exists():
        return root
    generator = shutil.which("openapi-python-client")
    if generator is None:
        raise RuntimeError("openapi-python-client is not installed: pip install 'vcredit[test]'")
    # Generated beside the cache and renamed in, so an interrupted run never leaves a
    # half-written client that a later run would take for a complete one.
    tmp = CACHE / f".{service}-{digest}.{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    config = tmp / "config.yaml"
    # literal_enums: scoring's grades "AAA+" and "AAA" would both be the Enum member AAA.
    config.write_text(
        f"package_name_override: {package}\nproject_name_override: {package.replace('_', '-')}\nliteral_enums: true\n"
    )
    arguments = ["--path", str(document), "--output-path", str(tmp / package), "--config", str(config)]
    result = subprocess.run(
        [generator, "generate", *arguments, "--meta", "none", "--overwrite"],
        capture_output=True,
        text=True,
        timeout=240,
    )
    if result.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        raise RuntimeError(f"openapi-python-client failed on {document}:\n{result.stdout}{result.stderr}")
    # Only the sheet import (text/csv and xlsx bodies) cannot be generated; a warning about
    # anything else is a document the generator misreads.
    warnings = result.stdout.split("Warning(s) encountered", 1)[-1] if "Warning(s)" in result.stdout else ""
    if "problem" in warnings.lower() or warnings.count("Endpoint will not be generated") > 1:
        shutil.rmtree(tmp, ignore_errors=True)
        raise RuntimeError(f"openapi-python-client warned on {document}:\n{warnings}")
    shutil.rmtree(root, ignore_errors=True)
    tmp.rename(root)
    return root


@contextmanager
def generated_clients(services: tuple[str, ...] = SERVICES) -> Iterator[dict[str, ModuleType]]:
    """Each service's generated package, importable while the context lasts."""
    roots = [str(_generate(s, DOCS_DIR / f"{s}.json")) for s in services]
    sys.path[:0] = roots
    try:
        yield {s: importlib.import_module(package_name(s)) for s in services}
    finally:
        for root in roots:
            sys.path.remove(root)
        prefixes = tuple(package_name(s) for s in services)
        for name in [m for m in sys.modules if m.split(".", 1)[0] in prefixes]:
            del sys.modules[name]


def operation(package: ModuleType, name: str) -> Any:
    """A generated operation's module by its operationId (found under whichever tag's folder
    the generator put it)."""
    api = Path(package.__file__ or "").parent / "api"
    for found in api.glob(f"*/{name}.py"):
        return importlib.import_module(f"{package.__name__}.api.{found.parent.name}.{name}")
    raise AssertionError(f"{package.__name__} has no operation {name}")


def models(package: ModuleType) -> Any:
    return importlib.import_module(f"{package.__name__}.models")
