from __future__ import annotations

from pathlib import Path

from services.notify import api, console, dashboard, reports
from services.notify.dispatcher import run_dispatcher
from services.notify.handlers import handlers
from services.notify.models import metadata
from shared.runtime import ServiceSpec

SPEC = ServiceSpec(
    name="notify",
    title="notify",
    description="Webhooks, the live event stream, bulletins and the dashboard page.",
    metadata=metadata,
    migrations_dir=Path(__file__).parent / "migrations",
    routers=lambda: [api.router, dashboard.data, console.router, reports.router],
    public_routers=lambda: [dashboard.page],
    handlers=handlers(),
    background=run_dispatcher,
)
