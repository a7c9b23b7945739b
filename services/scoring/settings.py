"""Scoring's own settings, ``VCREDIT_SCORING_*`` (the common ones: shared/settings.py).

| variable | default | meaning |
|---|---|---|
| VCREDIT_SCORING_DATABASE_URL | sqlite under data dir | e.g. postgresql+asyncpg://u:p@host/vcredit_scoring |
| VCREDIT_SCORING_PORT | 8002 | HTTP port |
| VCREDIT_SCORING_RULE_SET | hubin-2017-r2 | scorecard in force (services/scoring/rulesets/) |
"""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from shared.settings import DEFAULT_PORTS, ServiceSettings


class ScoringSettings(ServiceSettings):
    service = "scoring"
    model_config = SettingsConfigDict(env_prefix="VCREDIT_SCORING_", extra="ignore")
    port: int = DEFAULT_PORTS["scoring"]
    # services/scoring/rulesets/<rule_set>.json; a new district or revision is a new file.
    rule_set: str = "hubin-2017-r2"
