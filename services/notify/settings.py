"""Notify's own settings, ``VCREDIT_NOTIFY_*`` (the common ones: shared/settings.py).

| variable | default | meaning |
|---|---|---|
| VCREDIT_NOTIFY_DATABASE_URL | sqlite under data dir | e.g. postgresql+asyncpg://u:p@host/vcredit_notify |
| VCREDIT_NOTIFY_PORT | 8005 | HTTP port |
| VCREDIT_NOTIFY_WEBHOOK_TIMEOUT_SECONDS | 10 | one webhook call, connect to last byte |
| VCREDIT_NOTIFY_WEBHOOK_ALLOWED_NETWORKS | [] | JSON list of CIDRs webhooks may reach although not public |
| VCREDIT_NOTIFY_RETRY_BASE_SECONDS | 2 | first webhook retry delay cap, doubled each try (full jitter) |
| VCREDIT_NOTIFY_RETRY_MAX_SECONDS | 600 | cap on one webhook retry delay |
| VCREDIT_NOTIFY_MAX_ATTEMPTS | 6 | webhook tries before a delivery is dead |
| VCREDIT_NOTIFY_MAX_CONCURRENCY | 64 | webhook calls in flight, all subscribers together |
| VCREDIT_NOTIFY_PER_SUBSCRIBER_CONCURRENCY | 4 | webhook calls in flight to one subscriber |
| VCREDIT_NOTIFY_POLL_SECONDS | 0.25 | how often the dispatcher and the SSE stream look for new rows |
| VCREDIT_NOTIFY_KEEPALIVE_SECONDS | 15 | SSE keep-alive comment interval |
| VCREDIT_NOTIFY_RISK_URL | http://127.0.0.1:<VCREDIT_RISK_PORT> | risk's API, for the dashboard page |
| VCREDIT_NOTIFY_RISK_TIMEOUT_SECONDS | 5 | one call to another service's API, connect to last byte |
| VCREDIT_NOTIFY_REGISTRY_URL | http://127.0.0.1:<VCREDIT_REGISTRY_PORT> | registry's API, for the dashboard |
| VCREDIT_NOTIFY_SCORING_URL | http://127.0.0.1:<VCREDIT_SCORING_PORT> | scoring's API, for the dashboard |
| VCREDIT_NOTIFY_LOANS_URL | http://127.0.0.1:<VCREDIT_LOANS_PORT> | loans' API, for the dashboard |
| VCREDIT_NOTIFY_CONSOLE_GREEN_FRACTION | 0.5 | console NPL bands: green <= this x risk's threshold, red over it |
"""

from __future__ import annotations

from decimal import Decimal

from pydantic import Field, IPvAnyNetwork
from pydantic_settings import SettingsConfigDict

from shared.settings import DEFAULT_PORTS, ServiceSettings, service_port


class NotifySettings(ServiceSettings):
    service = "notify"
    model_config = SettingsConfigDict(env_prefix="VCREDIT_NOTIFY_", extra="ignore")
    port: int = DEFAULT_PORTS["notify"]
    webhook_timeout_seconds: float = Field(default=10.0, gt=0)
    # Webhooks go to public addresses only (services/notify/domain/addresses.py): a
    # subscriber could otherwise point notify at its own host or network and read the
    # answers in the delivery log. Empty by default because only the operator knows where
    # its receivers are; a bank whose receiver sits in its private network lists that
    # network (e.g. ["10.20.0.0/16"]), and the project's tests list loopback for their
    # local receivers. Unspecified (0.0.0.0, ::) and multicast addresses stay refused.
    webhook_allowed_networks: list[IPvAnyNetwork] = Field(default_factory=list)
    retry_base_seconds: float = Field(default=2.0, ge=0)
    retry_max_seconds: float = Field(default=600.0, ge=0)
    max_attempts: int = Field(default=6, ge=1)
    max_concurrency: int = Field(default=64, ge=1)
    per_subscriber_concurrency: int = Field(default=4, ge=1)
    poll_seconds: float = Field(default=0.25, gt=0)
    keepalive_seconds: float = Field(default=15.0, gt=0)
    # Unset: risk on this host at the port risk itself resolves (what `vcredit up` runs), so
    # moving risk with VCREDIT_RISK_PORT moves the dashboard's calls with it.
    risk_url: str = Field(default_factory=lambda: f"http://127.0.0.1:{service_port('risk')}")
    risk_timeout_seconds: float = Field(default=5.0, gt=0)  # every upstream call's (services/notify/upstream.py)
    # The dashboard's and the reports' other sources, found the same way as risk.
    registry_url: str = Field(default_factory=lambda: f"http://127.0.0.1:{service_port('registry')}")
    scoring_url: str = Field(default_factory=lambda: f"http://127.0.0.1:{service_port('scoring')}")
    loans_url: str = Field(default_factory=lambda: f"http://127.0.0.1:{service_port('loans')}")
    # The console's colour bands (services/notify/domain/console.py): red over risk's own
    # village threshold (004 §6(3), 3%, read from risk's /v1/indicators), green at or under
    # this fraction of it (half: 1.5%), amber between. A display choice, not a rule of the
    # programme: the district may warn earlier or later.
    console_green_fraction: Decimal = Field(default=Decimal("0.5"), gt=0, le=1)
