"""What registry's requests read of the service: its settings."""

from __future__ import annotations

from services.registry.settings import RegistrySettings


def settings() -> RegistrySettings:
    # Not cached, unlike scoring's, loans' and risk's: read once per query-log request, beside
    # HTTP calls that cost far more, and tests point one process at new peers between systems.
    return RegistrySettings()
