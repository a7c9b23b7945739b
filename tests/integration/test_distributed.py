"""Distributed mode as operators run it: `vcredit migrate`, `vcredit topics create`, then
one `vcredit serve <service>` process per service on real Kafka and PostgreSQL (the
harness in vcredit/cluster.py; the whole system's scenario is tests/e2e/)."""

from __future__ import annotations

import signal
import tomllib
from pathlib import Path

import pytest

from shared.bus.kafka import TopicCreationError
from shared.settings import CommonSettings
from vcredit.cli import TOPICS_FILE, create_topics
from vcredit.cluster import ROOT, Cluster, eventually
from vcredit.infra import new_topic_prefix


@pytest.mark.integration
async def test_each_service_in_its_own_process_over_kafka_and_postgres(
    tmp_path: Path, servers: tuple[str, str]
) -> None:
    kafka, pg = servers
    # The clean stop is asserted below, with the logs, rather than raised by the harness.
    cluster = Cluster(kafka, pg, tmp_path, services=("registry", "risk"), require_clean_stop=False)
    async with cluster:
        assert f"{cluster.topic_prefix}registry.events" in cluster.setup_output["topics"]
        registry, risk = cluster.client("registry"), cluster.client("risk")
        r = await registry.post("/v1/townships", json={"code": "410100003", "name": "南湾乡"})
        assert r.status_code == 201, r.text
        r = await registry.post(
            "/v1/villages", json={"code": "410100003007", "name": "七里村", "township_code": "410100003"}
        )
        assert r.status_code == 201, r.text

        r = await eventually(
            lambda: risk.get("/v1/villages/410100003007"),
            lambda r: r.status_code == 200,
            what="risk to see the village",
        )
        assert r.json()["township_code"] == "410100003"

    # uvicorn shuts down gracefully, then re-raises SIGTERM so the exit status shows it.
    assert cluster.killed == []
    assert all(code in (0, -signal.SIGTERM) for code in cluster.exit_codes.values()), cluster.exit_codes
    assert set(cluster.exit_codes) == {"registry", "risk"}
    for service in ("registry", "risk"):
        assert "Application shutdown complete" in cluster.log(service), service


@pytest.mark.integration
async def test_topics_create_refuses_three_replicas_on_one_broker_instead_of_reporting_them_made(
    servers: tuple[str, str],
) -> None:
    kafka, _ = servers
    definitions = tomllib.loads((ROOT / TOPICS_FILE).read_text())["topic"]
    # topics.toml's production replicas, no single-broker override: before, the command
    # printed "created 10 topics" and the cluster had made none.
    common = CommonSettings.model_validate({"kafka_bootstrap_servers": kafka, "topic_prefix": new_topic_prefix()})
    with pytest.raises(TopicCreationError, match="only 1 broker"):
        await create_topics(common, definitions)
