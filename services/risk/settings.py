"""Risk's own settings, ``VCREDIT_RISK_*`` (the common ones: shared/settings.py).

| variable | default | meaning |
|---|---|---|
| VCREDIT_RISK_DATABASE_URL | sqlite under data dir | e.g. postgresql+asyncpg://u:p@host/vcredit_risk |
| VCREDIT_RISK_PORT | 8004 | HTTP port |
| VCREDIT_RISK_RED_LIST_MIN_GRADE | AA | 守信红名单: this certified grade or better |
| VCREDIT_RISK_RED_LIST_CLEAN_YEARS | 2 | 守信红名单: no overdue in this many calendar years, this one included |
| VCREDIT_RISK_LOSS_SHARES | unset: 30/20/50 | JSON government, bank, insurer -> positive weight (004 §6(1)) |
| VCREDIT_RISK_LIST_TIERS | both serious | JSON cause -> minor/general/serious: publication period, earliest repair |
| VCREDIT_RISK_STATEMENT_PERIOD | year | fund statements without ``from`` start this year, quarter or month |
| VCREDIT_RISK_CLAIM_BATCH_MONTHS | 1 | an insurer claim batch's period in months: 1, 2, 3, 4, 6, 12 (DOMAIN §7) |
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from services.risk.domain.claim_batches import PERIOD_LENGTHS
from shared.settings import DEFAULT_PORTS, ServiceSettings

ListTier = Literal["minor", "general", "serious"]
_DEFAULT_TIERS: dict[str, ListTier] = {"court_dishonest_debtor": "serious", "malicious_debt_evasion": "serious"}


class RiskSettings(ServiceSettings):
    service = "risk"
    model_config = SettingsConfigDict(env_prefix="VCREDIT_RISK_", extra="ignore")
    port: int = DEFAULT_PORTS["risk"]
    # 004 §6(3): a village whose NPL ratio exceeds 3% is frozen; a township with 30% or more
    # of its villages over is halted. One deployment serves one district, so these are the
    # district's thresholds.
    village_npl_threshold: Decimal = Field(default=Decimal("0.03"), gt=0, lt=1)
    township_share_threshold: Decimal = Field(default=Decimal("0.30"), gt=0, le=1)
    # 004 §6(2), 004 §3(2): the district's 10,000,000 fund, leveraged 10x (资金放大10倍).
    fund_opening_balance: Decimal = Field(default=Decimal("10000000.00"), ge=0)
    fund_leverage: int = Field(default=10, gt=0)
    # 004 §6(1): government / bank / insurer, as integer weights. Unset (None) means the rule's
    # own default, stated once: DEFAULT_SHARES in services/risk/domain/loss.py (30/20/50).
    loss_shares: dict[str, int] | None = None
    # Issue 11, product choices. 守信红名单: this grade or better, and no overdue in this many
    # years (this one included); the tier of each black-list cause sets its publication
    # period and the earliest credit repair (services/risk/domain/credit_lists.py).
    red_list_min_grade: Literal["AAA+", "AAA", "AA", "A"] = "AA"
    red_list_clean_years: int = Field(default=2, ge=1, le=10)
    list_tiers: dict[str, ListTier] = Field(default_factory=lambda: dict(_DEFAULT_TIERS))
    # Issue 25 item 5, product choice: the fund's and the mutual guarantee's statements without
    # ``from`` cover the calendar year to date, as the district's yearly fund accounts do
    # (docs/settlement.md); quarter or month for a district that settles more often.
    statement_period: Literal["year", "quarter", "month"] = "year"
    # DOMAIN §7: insurer claims are settled in monthly batches. A longer period (a quarter,
    # say) if the district's contract with the insurer says so; periods tile the year
    # (services/risk/domain/claim_batches.py), so the length divides twelve.
    claim_batch_months: int = 1

    @field_validator("loss_shares")
    @classmethod
    def _three_parties(cls, value: dict[str, int] | None) -> dict[str, int] | None:
        # Risk books the three parts by name (services/risk/losses.py): refuse at start, not at
        # the first write-off.
        if value is not None:
            if set(value) != {"government", "bank", "insurer"}:
                raise ValueError("loss_shares names exactly government, bank and insurer")
            if any(share <= 0 for share in value.values()):
                raise ValueError("each loss share is a positive integer weight")
        return value

    @field_validator("claim_batch_months")
    @classmethod
    def _tiles_the_year(cls, value: int) -> int:
        if value not in PERIOD_LENGTHS:
            raise ValueError(f"claim_batch_months is one of {PERIOD_LENGTHS}")
        return value
