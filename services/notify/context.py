"""What notify's requests and background work read of the service: its settings."""

from __future__ import annotations

from services.notify.settings import NotifySettings


def settings() -> NotifySettings:
    # Not cached, unlike scoring's, loans' and risk's: read once per request or per start,
    # beside HTTP calls that cost far more, and tests point one process at new peers between
    # systems.
    return NotifySettings()
