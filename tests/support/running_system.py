"""What the end-to-end helpers ask of a running system: the services as processes
(vcredit.cluster.Cluster) or as containers (tests.support.container_stack.ContainerStack)."""

from __future__ import annotations

from typing import Protocol

import httpx

from vcredit.infra import Infra


class RunningSystem(Protocol):
    services: tuple[str, ...]
    # Settings as the host reaches the system: VCREDIT_<SERVICE>_DATABASE_URL,
    # VCREDIT_KAFKA_BOOTSTRAP_SERVERS, VCREDIT_START_DATE.
    env: dict[str, str]
    topic_prefix: str
    token: str
    urls: dict[str, str]
    # Makes fresh databases on the system's PostgreSQL (fresh replays).
    infra: Infra

    def client(self, service: str) -> httpx.AsyncClient: ...
