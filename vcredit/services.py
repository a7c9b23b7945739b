"""The five services of the system and how a process runs them.

``shared/`` knows services only by name and port (shared/settings.py: SERVICE_NAMES,
DEFAULT_PORTS); this is the one place that maps a name to its settings class and its
application module.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Coroutine
from typing import Any, TypeVar

from services.loans.settings import LoansSettings
from services.notify.settings import NotifySettings
from services.registry.settings import RegistrySettings
from services.risk.settings import RiskSettings
from services.scoring.settings import ScoringSettings
from shared.runtime import ServiceSpec
from shared.settings import SERVICE_NAMES, ServiceSettings

__all__ = ["APPS", "SERVICE_NAMES", "SETTINGS_CLASSES", "load_spec", "run_loop"]

# Each service's own settings (services/<name>/settings.py): small modules, imported eagerly.
SETTINGS_CLASSES: dict[str, type[ServiceSettings]] = {
    cls.service: cls for cls in (RegistrySettings, ScoringSettings, LoansSettings, RiskSettings, NotifySettings)
}

# Each service's application module (its SPEC); imported only when the service is loaded.
APPS = {name: f"services.{name}.app" for name in SERVICE_NAMES}


def load_spec(service: str) -> ServiceSpec:
    module = importlib.import_module(APPS[service])
    spec: ServiceSpec = module.SPEC
    return spec


T = TypeVar("T")


def run_loop(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` on uvloop when it is installed (uvicorn[standard] brings it), the loop
    ``vcredit serve`` gets from uvicorn's loop="auto". Its sockets and TLS are in C; asyncio's
    own TLS layer is Python and took a quarter of a repayment's CPU against PostgreSQL."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - a dependency of uvicorn[standard]
        return asyncio.run(main)
    return uvloop.run(main)
