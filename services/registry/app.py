from __future__ import annotations

from pathlib import Path

from services.registry.models import metadata
from services.registry.routers import IMPORT_ROUTE, registry_routers
from shared.runtime import ServiceSpec

SPEC = ServiceSpec(
    name="registry",
    title="registry",
    description="Districts, townships, villages, households, businesses and credit facts.",
    metadata=metadata,
    migrations_dir=Path(__file__).parent / "migrations",
    routers=registry_routers,
    uploads=(IMPORT_ROUTE,),
)
