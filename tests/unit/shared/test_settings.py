from __future__ import annotations

from pathlib import Path

import pytest

from services.loans.settings import LoansSettings
from services.notify.settings import NotifySettings
from services.registry.settings import RegistrySettings
from shared.settings import DEFAULT_PORTS, CommonSettings, service_port
from vcredit.services import SETTINGS_CLASSES


def test_each_service_has_its_port_and_env_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    assert {name: cls().port for name, cls in SETTINGS_CLASSES.items()} == {
        "registry": 8001,
        "scoring": 8002,
        "loans": 8003,
        "risk": 8004,
        "notify": 8005,
    }
    monkeypatch.setenv("VCREDIT_LOANS_PORT", "9003")
    monkeypatch.setenv("VCREDIT_LOANS_DATABASE_URL", "postgresql+asyncpg://u:p@db/vcredit_loans")
    loans = LoansSettings()
    assert loans.port == 9003
    assert loans.resolved_database_url(CommonSettings()) == "postgresql+asyncpg://u:p@db/vcredit_loans"
    assert SETTINGS_CLASSES["risk"]().port == 8004, "one service's variables do not leak into another"


def test_the_port_plan_is_each_services_own_default(monkeypatch: pytest.MonkeyPatch) -> None:
    # shared/ reads a service's port without its class (a peer, the healthcheck): both agree.
    assert {name: cls().port for name, cls in SETTINGS_CLASSES.items()} == DEFAULT_PORTS
    assert {name: service_port(name) for name in SETTINGS_CLASSES} == DEFAULT_PORTS
    monkeypatch.setenv("VCREDIT_LOANS_PORT", "9003")
    assert service_port("loans") == SETTINGS_CLASSES["loans"]().port == 9003
    assert service_port("risk") == 8004


def test_embedded_databases_live_under_the_data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("VCREDIT_DATA_DIR", str(tmp_path))
    common = CommonSettings()
    assert common.data_dir == tmp_path
    assert SETTINGS_CLASSES["risk"]().resolved_database_url(common) == f"sqlite+aiosqlite:///{tmp_path}/risk.db"


def test_invalid_settings_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VCREDIT_CONSUMER_MAX_ATTEMPTS", "0")
    with pytest.raises(ValueError, match="consumer_max_attempts"):
        CommonSettings()


def test_registry_finds_scoring_and_loans_at_their_ports(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VCREDIT_SCORING_PORT", "9102")
    assert RegistrySettings().peer_url("scoring") == "http://127.0.0.1:9102"
    assert RegistrySettings().peer_url("loans") == "http://127.0.0.1:8003"
    monkeypatch.setenv("VCREDIT_REGISTRY_LOANS_URL", "http://loans:8003")
    assert RegistrySettings().peer_url("loans") == "http://loans:8003"


def test_notify_finds_risk_at_its_port(monkeypatch: pytest.MonkeyPatch) -> None:
    assert NotifySettings().risk_url == "http://127.0.0.1:8004"
    monkeypatch.setenv("VCREDIT_RISK_PORT", "9104")
    assert NotifySettings().risk_url == "http://127.0.0.1:9104"
    monkeypatch.setenv("VCREDIT_NOTIFY_RISK_URL", "http://risk:8004")
    assert NotifySettings().risk_url == "http://risk:8004"
