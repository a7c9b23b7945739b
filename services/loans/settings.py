"""Loans' own settings, ``VCREDIT_LOANS_*`` (the common ones: shared/settings.py).

| variable | default | meaning |
|---|---|---|
| VCREDIT_LOANS_DATABASE_URL | sqlite under data dir | e.g. postgresql+asyncpg://u:p@host/vcredit_loans |
| VCREDIT_LOANS_PORT | 8003 | HTTP port |
| VCREDIT_LOANS_RED_LIST_RATE_DISCOUNT | 0.0025 | off a red-listed subject's new loans' rate (0.25 points), floor 0 |
| VCREDIT_LOANS_COB_MAX_DAYS | 366 | most business days one `POST /v1/cob` closes; more: 422 |
| VCREDIT_LOANS_COB_LEASE_SECONDS | 30 | a crashed close of business blocks the next one this long |
| VCREDIT_LOANS_PENALTY_MARKUP | 0.50 | penalty rate = contract rate × (1 + this), 0.30-0.50 (251号 art. 3) |
| VCREDIT_LOANS_COMPOUND_INTEREST | true | interest in arrears accrues compound interest (复利) at the penalty rate |
| VCREDIT_LOANS_GRACE_DAYS | 0 | days after a due date before a missed payment is past due (宽限期) |
| VCREDIT_LOANS_REPAYMENT_ORDER | ["penalty","interest","principal"] | what a repayment pays first (JSON list) |
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from services.loans.domain.penalty import MARKUP_MAX, MARKUP_MIN, OverduePolicy
from services.loans.domain.repayment import DEFAULT_ORDER, Part, check_order
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
    # Issue 24, DOMAIN.md §7 (domain/penalty.py). 银发〔2003〕251号 art. 3: overdue loans are charged
    # the contract rate plus 30%-50%; interest not paid when due compounds at the penalty rate.
    penalty_markup: Decimal = Field(default=MARKUP_MAX, ge=MARKUP_MIN, le=MARKUP_MAX)
    compound_interest: bool = True  # 251号 art. 3: 对不能按时支付的利息，按罚息利率计收复利
    # Product choice (DOMAIN.md §7): 0 = past due the day after the due date, as DOMAIN §4 ages.
    grace_days: int = Field(default=0, ge=0, le=90)
    # Product choice (DOMAIN.md §7): penalty first, then interest, then principal, the order
    # banks' core systems collect in; a bank may configure its own (e.g. principal first).
    repayment_order: tuple[Part, ...] = DEFAULT_ORDER

    @field_validator("repayment_order")
    @classmethod
    def _one_of_each(cls, order: tuple[Part, ...]) -> tuple[Part, ...]:
        return check_order(order)

    def overdue_policy(self) -> OverduePolicy:
        return OverduePolicy(markup=self.penalty_markup, compound=self.compound_interest, grace_days=self.grace_days)

    def benchmark_rate(self, term_months: int) -> Decimal:
        for longest, rate in sorted(self.benchmark_rates.items()):
            if term_months <= longest:
                return rate
        raise ValueError(f"no benchmark rate for {term_months} months")
