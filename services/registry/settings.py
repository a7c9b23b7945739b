"""Registry's own settings, ``VCREDIT_REGISTRY_*`` (the common ones: shared/settings.py).

| variable | default | meaning |
|---|---|---|
| VCREDIT_REGISTRY_DATABASE_URL | sqlite under data dir | e.g. postgresql+asyncpg://u:p@host/vcredit_registry |
| VCREDIT_REGISTRY_PORT | 8001 | HTTP port |
| VCREDIT_REGISTRY_SCORING_URL | http://127.0.0.1:$VCREDIT_SCORING_PORT | scoring's API, for a subject's query log |
| VCREDIT_REGISTRY_LOANS_URL | http://127.0.0.1:$VCREDIT_LOANS_PORT | loans' API, for a subject's query log |
| VCREDIT_REGISTRY_PEER_TIMEOUT_SECONDS | 3 | one call to scoring or loans for the query log, connect to last byte |
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.settings import DEFAULT_PORTS, ServiceSettings, service_port


class RegistrySettings(ServiceSettings):
    service = "registry"
    model_config = SettingsConfigDict(env_prefix="VCREDIT_REGISTRY_", extra="ignore")
    port: int = DEFAULT_PORTS["registry"]
    # A subject's query log (征信业管理条例 §17) gathers scoring's and loans' rows from these;
    # unset: on this host at their configured ports (what `vcredit up` runs).
    scoring_url: str | None = None
    loans_url: str | None = None
    peer_timeout_seconds: float = Field(default=3.0, gt=0)

    def peer_url(self, service: Literal["scoring", "loans"]) -> str:
        url = self.scoring_url if service == "scoring" else self.loans_url
        if url:
            return url
        # The peer's port as the peer resolves it, without importing another service's code.
        return f"http://127.0.0.1:{service_port(service)}"
