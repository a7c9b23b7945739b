from __future__ import annotations

from pathlib import Path

from services.scoring.models import metadata
from shared.runtime import ServiceSpec

SPEC = ServiceSpec(
    name="scoring",
    title="scoring",
    description="Scorecard engine and the rating workflow (notice, objections, certificates).",
    metadata=metadata,
    migrations_dir=Path(__file__).parent / "migrations",
    routers=list,
)
