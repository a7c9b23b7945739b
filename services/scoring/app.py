from __future__ import annotations

from pathlib import Path

from services.scoring import api, statistics
from services.scoring.handlers import HANDLERS, rate_registered
from services.scoring.models import metadata
from shared.audit import queries_router
from shared.runtime import ServiceSpec

SPEC = ServiceSpec(
    name="scoring",
    title="scoring",
    description="Scorecard engine (rule sets as data) and the rating workflow: notice, objections, certificates.",
    metadata=metadata,
    migrations_dir=Path(__file__).parent / "migrations",
    routers=lambda: [api.router, statistics.router, queries_router("scoring")],
    handlers=HANDLERS,
    finish=rate_registered,
)
