"""Scoring's own settings, ``VCREDIT_SCORING_*`` (the common ones: shared/settings.py).

| variable | default | meaning |
|---|---|---|
| VCREDIT_SCORING_DATABASE_URL | sqlite under data dir | e.g. postgresql+asyncpg://u:p@host/vcredit_scoring |
| VCREDIT_SCORING_PORT | 8002 | HTTP port |
| VCREDIT_SCORING_RULE_SET | hubin-2017-r2 | scorecard in force (services/scoring/rulesets/) |
| VCREDIT_SCORING_MAX_OPEN_PUBLIC_OBJECTIONS | 3 | open objections one public key may hold on one household |
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.settings import DEFAULT_PORTS, ServiceSettings


class ScoringSettings(ServiceSettings):
    service = "scoring"
    model_config = SettingsConfigDict(env_prefix="VCREDIT_SCORING_", extra="ignore")
    port: int = DEFAULT_PORTS["scoring"]
    # services/scoring/rulesets/<rule_set>.json; a new district or revision is a new file.
    rule_set: str = "hubin-2017-r2"
    # Anyone may object during a notice (004 annex 2 step 4), the public role's anonymous
    # keys included, and each objection is work for the village committee. One such key is
    # bounded per household so it cannot flood a notice; the first objection already suspends
    # the rating, so the bound costs a genuine objector nothing. Not 1: one public key may
    # stand for many people (a village kiosk, the public website), so a few distinct
    # objections through it still go in. Counted per key, so one key's flood never blocks
    # another's; only open objections count, so a resolved one frees its place. Accountable
    # roles (government, bank, collectors, the household itself) are not bounded.
    max_open_public_objections: int = Field(default=3, ge=1)
