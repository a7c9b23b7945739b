"""Loans' own settings, ``VCREDIT_LOANS_*`` (the common ones: shared/settings.py).

| variable | default | meaning |
|---|---|---|
| VCREDIT_LOANS_DATABASE_URL | sqlite under data dir | e.g. postgresql+asyncpg://u:p@host/vcredit_loans |
| VCREDIT_LOANS_PORT | 8003 | HTTP port |
| VCREDIT_LOANS_RED_LIST_RATE_DISCOUNT | 0.0025 | off a red-listed subject's new loans' rate (0.25 points), floor 0 |
| VCREDIT_LOANS_COB_MAX_DAYS | 366 | most business days one `POST /v1/cob` closes; more: 422 |
| VCREDIT_LOANS_COB_LEASE_SECONDS | 30 | a crashed close of business blocks the next one this long |
| VCREDIT_LOANS_EXTENSION_MAX_COUNT | 1 | extensions (展期) one loan may have (DOMAIN §7); more: 409 EXTENSION_LIMIT |
| VCREDIT_LOANS_EXTENSION_CLASSIFICATION_FLOOR | special_mention | an extended loan's class is no better |
| VCREDIT_LOANS_EXTENSION_SUBSIDY | continue | `continue` subsidised as before; `none`: not after the old maturity |
| VCREDIT_LOANS_VILLAGE_CREDIT_CHUNK | 500 | households read and opened per round of a whole-village opening |
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.loans.domain.classification import Classification
from shared.settings import DEFAULT_PORTS, ServiceSettings


class LoansSettings(ServiceSettings):
    service = "loans"
    model_config = SettingsConfigDict(env_prefix="VCREDIT_LOANS_", extra="ignore")
    port: int = DEFAULT_PORTS["loans"]
    # Longest term (months) -> annual benchmark rate. PBoC benchmark lending rates in force
    # since 2015-10-24: up to 1 year 4.35%, 1 to 5 years 4.75%.
    benchmark_rates: dict[int, Decimal] = Field(default_factory=lambda: {12: Decimal("0.0435"), 60: Decimal("0.0475")})
    day_count: Literal["30/360", "ACT/360", "ACT/365"] = "30/360"
    # 004 §3(2): businesses at benchmark plus at most 10% of it, subsidised 3% a year.
    business_markup: Decimal = Field(default=Decimal("0.10"), ge=0, le=Decimal("0.10"))
    business_subsidy_rate: Decimal = Field(default=Decimal("0.03"), ge=0)
    # 004 §6(2): businesses pay 10% of each loan into the mutual guarantee fund.
    mutual_guarantee_share: Decimal = Field(default=Decimal("0.10"), ge=0, le=1)
    # 004 §6(2), 004 §3(2): 10,000,000 fund x 10 leverage, until risk publishes the fund's capacity.
    initial_fund_capacity: Decimal = Decimal("100000000.00")
    # Seed 001's joint rewards: red-listed subjects borrow cheaper; the points are the
    # district's policy choice, 0.25 until it sets its own.
    red_list_rate_discount: Decimal = Field(default=Decimal("0.0025"), ge=0)
    # Issue 19, product choice: one call closes at most a year (366 days, a leap year's worth),
    # what an operator catching up after a long outage or a year-end migration needs; beyond
    # it a typo ("9999-12-31") would age every loan to loss. Larger catch-ups are several calls.
    cob_max_days: int = Field(default=366, ge=1)
    # The close-of-business lease (services/loans/cob.py) is renewed with every chunk of loans
    # (about 0.1 s each, bench/RESULTS.md) and every day, so 30 s is 300 chunks' slack under
    # load; it is the longest a crashed holder (SIGKILL, lost node) blocks the next run. Too
    # short costs no correctness: a holder that overran it fails its next renewal and writes
    # nothing more (the lease is checked in each chunk's transaction), only its run is lost.
    cob_lease_seconds: float = Field(default=30.0, gt=0)
    # DOMAIN.md §7: "one extension per loan by default" (展期, 贷款通则 art. 12 limits the months).
    extension_max_count: int = Field(default=1, ge=0)
    # DOMAIN.md §7 (default special mention, 关注), following 贷款风险分类指引 (银监发〔2007〕54号):
    # an extended loan shows a weakness in repayment; a bank treating it as restructured
    # (重组贷款, at least substandard there) sets substandard.
    extension_classification_floor: Classification = "special_mention"
    # Subsidy during an extension. The seeds are silent: 004 §3(2) subsidises programme loans
    # "贷款期限3年以内", and an extension stays within those 3 years (domain/reschedule.py),
    # so by default the extended loan keeps its subsidy (product choice, docs/loan-lifecycle.md);
    # `none` stops it for the periods after the original maturity.
    extension_subsidy: Literal["continue", "none"] = "continue"
    # Whole-village credit (整村授信, DOMAIN.md §7; services/loans/village_credit.py): the
    # village's households are read and their lines written this many at a time, within the
    # call's one transaction: a few queries and one outbox insert per round, whatever the size.
    village_credit_chunk: int = Field(default=500, ge=1)

    def benchmark_rate(self, term_months: int) -> Decimal:
        for longest, rate in sorted(self.benchmark_rates.items()):
            if term_months <= longest:
                return rate
        raise ValueError(f"no benchmark rate for {term_months} months")
