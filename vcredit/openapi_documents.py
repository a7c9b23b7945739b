"""The OpenAPI document each service serves at /openapi.json, committed under
``docs/openapi/<service>.json`` so that a change of the HTTP contract shows in a diff
(issue 22). ``vcredit openapi --write docs/openapi`` rewrites them;
tests/unit/project/test_openapi_documents.py fails when they differ from what the apps
serve."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from shared.bus.embedded import EmbeddedBus
from shared.runtime import ServiceRuntime, create_app
from shared.settings import SERVICE_NAMES, CommonSettings
from vcredit.services import load_spec

DOCS_DIR = Path(__file__).resolve().parents[1] / "docs" / "openapi"


def served_document(service: str) -> dict[str, Any]:
    """``service``'s /openapi.json with the default settings, from an app that is not started
    (nothing is opened: the database URL and the bus are never used)."""
    with tempfile.TemporaryDirectory() as tmp:
        runtime = ServiceRuntime(
            load_spec(service), "sqlite+aiosqlite://", EmbeddedBus(Path(tmp) / "bus.db"), CommonSettings()
        )
        document: dict[str, Any] = create_app(runtime, "openapi-documents", manage_runtime=False).openapi()
    return document


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def write(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for service in SERVICE_NAMES:
        path = directory / f"{service}.json"
        path.write_text(render(served_document(service)), encoding="utf-8")
        written.append(path)
    return written
