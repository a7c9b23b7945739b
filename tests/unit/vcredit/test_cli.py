"""`vcredit topics create`: what it asks the cluster for, from deploy/k8s/topics.toml and the
settings that override it (issue 21: replication was configured but never in force)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from shared.settings import CommonSettings
from vcredit.cli import new_topics

TOPICS = tomllib.loads((Path(__file__).resolve().parents[3] / "deploy" / "k8s" / "topics.toml").read_text())["topic"]


@pytest.fixture(autouse=True)
def _no_inherited_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("VCREDIT_TOPIC_REPLICATION_FACTOR", "VCREDIT_TOPIC_MIN_INSYNC_REPLICAS", "VCREDIT_TOPIC_PREFIX"):
        monkeypatch.delenv(name, raising=False)


def _asked(common: CommonSettings) -> dict[str, tuple[int, str]]:
    """Each topic's (replicas, min.insync.replicas) as the cluster is asked for them."""
    return {t.name: (t.replication_factor, t.topic_configs["min.insync.replicas"]) for t in new_topics(common, TOPICS)}


def test_production_topics_have_three_replicas_two_of_them_in_sync_for_a_write() -> None:
    asked = _asked(CommonSettings())
    assert set(asked) == {str(d["name"]) for d in TOPICS} and len(asked) == 10
    assert set(asked.values()) == {(3, "2")}


def test_a_single_broker_override_caps_the_in_sync_minimum_at_one_replica() -> None:
    # min.insync.replicas 2 on a topic of one replica would refuse every acks=all write.
    assert set(_asked(CommonSettings(topic_replication_factor=1)).values()) == {(1, "1")}
    assert set(_asked(CommonSettings(topic_replication_factor=2)).values()) == {(2, "2")}


def test_the_in_sync_minimum_setting_wins_over_the_file_but_never_exceeds_the_replicas() -> None:
    assert set(_asked(CommonSettings(topic_min_insync_replicas=3)).values()) == {(3, "3")}
    assert set(_asked(CommonSettings(topic_min_insync_replicas=1)).values()) == {(3, "1")}
    assert set(_asked(CommonSettings(topic_replication_factor=2, topic_min_insync_replicas=5)).values()) == {(2, "2")}


def test_the_topic_prefix_namespaces_every_name() -> None:
    assert all(name.startswith("t1.") for name in _asked(CommonSettings(topic_prefix="t1.")))
