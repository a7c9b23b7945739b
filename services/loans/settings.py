"""Loans' own settings, ``VCREDIT_LOANS_*`` (the common ones: shared/settings.py).

| variable | default | meaning |
|---|---|---|
| VCREDIT_LOANS_DATABASE_URL | sqlite under data dir | e.g. postgresql+asyncpg://u:p@host/vcredit_loans |
| VCREDIT_LOANS_PORT | 8003 | HTTP port |
| VCREDIT_LOANS_RED_LIST_RATE_DISCOUNT | 0.0025 | off a red-listed subject's new loans' rate (0.25 points), floor 0 |
| VCREDIT_LOANS_COB_MAX_DAYS | 366 | most business days one `POST /v1/cob` closes; more: 422 |
| VCREDIT_LOANS_COB_LEASE_SECONDS | 30 | a crashed close of business blocks the next one this long |
| VCREDIT_LOANS_COB_SQL_ACCRUAL | true | PostgreSQL: loans that only accrue closed by one statement a chunk |
| VCREDIT_LOANS_COB_SQL_CHUNK | 20000 | loans a chunk (transaction) of close of business with the above |
| VCREDIT_LOANS_EXTENSION_MAX_COUNT | 1 | extensions (展期) one loan may have (DOMAIN §7); more: 409 EXTENSION_LIMIT |
| VCREDIT_LOANS_EXTENSION_CLASSIFICATION_FLOOR | special_mention | an extended loan's class is no better |
| VCREDIT_LOANS_EXTENSION_SUBSIDY | continue | `continue` subsidised as before; `none`: not after the old maturity |
| VCREDIT_LOANS_VILLAGE_CREDIT_CHUNK | 500 | households read and opened per round of a whole-village opening |
| VCREDIT_LOANS_BENCHMARK_TABLE | PBoC rates of 2015-10-24 | dated benchmark tables, JSON (below) |
| VCREDIT_LOANS_PRICING_RULE | benchmark | `benchmark`: the table; `lpr_cap`: at most the LPR of the tenor |
| VCREDIT_LOANS_LPR_TABLE | LPR changes 2019-08-20 to 2025-05-20 | dated LPR fixings, JSON (below) |
| VCREDIT_LOANS_LPR_TABLE_FILE | none | a JSON file of the LPR fixings; replaces the variable above |
| VCREDIT_LOANS_LPR_FIVE_YEAR_ABOVE_MONTHS | 60 | longer terms refer to the 5-year-plus LPR, others 1-year |
| VCREDIT_LOANS_SUBSIDY_POLICY | [] (a share of 1) | dated shares of the subsidy granted, JSON (below) |
| VCREDIT_LOANS_PENALTY_MARKUP | 0.50 | penalty rate = contract rate × (1 + this), 0.30-0.50 (251号 art. 3) |
| VCREDIT_LOANS_COMPOUND_INTEREST | true | interest in arrears accrues compound interest (复利) at the penalty rate |
| VCREDIT_LOANS_GRACE_DAYS | 0 | days after a due date before a missed payment is past due (宽限期) |
| VCREDIT_LOANS_REPAYMENT_ORDER | ["penalty","interest","principal"] | what a repayment pays first (JSON list) |
| VCREDIT_LOANS_RECONCILIATION_MAX_LINES | 100000 | most lines in one bank reconciliation file (对账); more: 422 |
| VCREDIT_LOANS_SUBSIDY_CLAIM_PERIOD | quarter | what one subsidy claim covers: calendar `month`, `quarter`, `year` |
| VCREDIT_LOANS_BANK_NAME | 合作银行 | the lending bank's name on its subsidy claims' sheets |

Dated tables, each a JSON list with ``effective_from`` dates increasing:
``BENCHMARK_TABLE`` ``[{"effective_from": "2015-10-24", "rates": {"12": "0.0435", "60": "0.0475"}}]``
(longest term in months -> rate), ``LPR_TABLE`` ``[{"effective_from": "2019-08-20", "one_year":
"0.0425", "five_year_plus": "0.0485"}]``, ``SUBSIDY_POLICY`` ``[{"effective_from": "2027-04-01",
"share": "0.7"}]``.

Rates are fractions (0.0435 is 4.35%). The dated tables are validated when the settings are read
(the service's start): dates strictly increasing, rates at least 0 and below 1, shares 0 to 1;
an error names the table, the entry and the rule. Rules: services/loans/domain/policies.py.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from itertools import pairwise
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from services.loans.domain.classification import Classification
from services.loans.domain.penalty import MARKUP_MAX, MARKUP_MIN, OverduePolicy
from services.loans.domain.policies import BenchmarkEntry, LprFixing, PricingRule, SubsidyShare
from services.loans.domain.repayment import DEFAULT_ORDER, Part, check_order
from services.loans.domain.subsidy_claims import Period
from shared.settings import DEFAULT_PORTS, ServiceSettings


def _rate(value: Decimal, what: str) -> Decimal:
    if not (value.is_finite() and 0 <= value < 1):
        raise ValueError(f"{what} must be a fraction at least 0 and below 1 (0.0435 is 4.35%), got {value}")
    return value


class BenchmarkRow(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    effective_from: date
    rates: dict[int, Decimal]  # longest term (months) -> annual rate

    @field_validator("rates")
    @classmethod
    def _rates(cls, rates: dict[int, Decimal]) -> dict[int, Decimal]:
        if not rates:
            raise ValueError("a benchmark table entry needs at least one rate")
        for longest, rate in rates.items():
            if longest < 1:
                raise ValueError(f"a longest term is at least 1 month, got {longest}")
            _rate(rate, f"the rate up to {longest} months")
        return rates


class LprRow(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    effective_from: date
    one_year: Decimal
    five_year_plus: Decimal

    @field_validator("one_year", "five_year_plus")
    @classmethod
    def _rates(cls, rate: Decimal) -> Decimal:
        return _rate(rate, "an LPR")


class SubsidyShareRow(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    effective_from: date
    share: Decimal

    @field_validator("share")
    @classmethod
    def _share(cls, share: Decimal) -> Decimal:
        if not (share.is_finite() and 0 <= share <= 1):
            raise ValueError(f"a subsidy share is between 0 and 1 (0.7 is 70%), got {share}")
        return share


def _increasing(name: str, rows: Sequence[BenchmarkRow | LprRow | SubsidyShareRow]) -> None:
    for before, after in pairwise(rows):
        if after.effective_from <= before.effective_from:
            raise ValueError(
                f"{name}: effective dates must be strictly increasing, {after.effective_from} follows "
                f"{before.effective_from}"
            )


def _lpr(on: str, one_year: str, five_year_plus: str) -> LprRow:
    return LprRow(
        effective_from=date.fromisoformat(on), one_year=Decimal(one_year), five_year_plus=Decimal(five_year_plus)
    )


# The loan prime rate (贷款市场报价利率) as published by the National Interbank Funding Center
# under the PBoC's authority (中国人民银行公告〔2019〕第15号: monthly on the 20th, 1-year and
# 5-year-plus tenors): the fixings that changed either tenor; every month between repeated the
# one before. Operators keep the table current with VCREDIT_LOANS_LPR_TABLE(_FILE).
DEFAULT_LPR = (
    _lpr("2019-08-20", "0.0425", "0.0485"),  # the first fixing of the reformed LPR
    _lpr("2019-09-20", "0.0420", "0.0485"),
    _lpr("2019-11-20", "0.0415", "0.0480"),
    _lpr("2020-02-20", "0.0405", "0.0475"),
    _lpr("2020-04-20", "0.0385", "0.0465"),
    _lpr("2021-12-20", "0.0380", "0.0465"),
    _lpr("2022-01-20", "0.0370", "0.0460"),
    _lpr("2022-05-20", "0.0370", "0.0445"),
    _lpr("2022-08-22", "0.0365", "0.0430"),
    _lpr("2023-06-20", "0.0355", "0.0420"),
    _lpr("2023-08-21", "0.0345", "0.0420"),
    _lpr("2024-02-20", "0.0345", "0.0395"),
    _lpr("2024-07-22", "0.0335", "0.0385"),
    _lpr("2024-10-21", "0.0310", "0.0360"),
    _lpr("2025-05-20", "0.0300", "0.0350"),
)


class LoansSettings(ServiceSettings):
    service = "loans"
    model_config = SettingsConfigDict(env_prefix="VCREDIT_LOANS_", extra="ignore")
    port: int = DEFAULT_PORTS["loans"]
    # Dated benchmark tables, each longest term (months) -> annual rate. PBoC benchmark lending
    # rates in force since 2015-10-24 (its last change): up to 1 year 4.35%, 1 to 5 years 4.75%,
    # over 5 years 4.90% (360 months: the longest loan term, 30 years).
    benchmark_table: list[BenchmarkRow] = Field(
        default_factory=lambda: [
            BenchmarkRow(
                effective_from=date(2015, 10, 24),
                rates={12: Decimal("0.0435"), 60: Decimal("0.0475"), 360: Decimal("0.0490")},
            )
        ]
    )
    # Issue 24: `benchmark` prices by the benchmark table (the behaviour before it); `lpr_cap`:
    # at most the LPR of the matching tenor (中国人民银行公告〔2019〕第15号, the LPR reform).
    pricing_rule: PricingRule = "benchmark"
    lpr_table: list[LprRow] = Field(default_factory=lambda: list(DEFAULT_LPR))
    lpr_table_file: Path | None = None
    # Loans within five years refer to the 1-year LPR, longer ones to the 5-year-plus LPR (the
    # two tenors of 中国人民银行公告〔2019〕第15号).
    lpr_five_year_above_months: int = Field(default=60, ge=1)
    # Subsidy share by date (issue 24; e.g. full subsidy until a date, 70% after, as a district
    # may decide): none, a share of 1 every day.
    subsidy_policy: list[SubsidyShareRow] = Field(default_factory=list)
    # Before issue 24 the (undated) rates; refused now, so a setting is never silently ignored.
    benchmark_rates: dict[int, Decimal] | None = None
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
    # Issue 27: on PostgreSQL the loans that only accrue on a day (most of them, most days)
    # are closed by one statement per chunk (services/loans/cob_accrual.py), the others by the
    # rules in Python; false: every loan by the rules in Python, as on SQLite. The same book
    # either way (tests/integration/test_cob_accrual.py); the switch is there to show it.
    cob_sql_accrual: bool = True
    # Loans a chunk (one transaction) when they are closed that way: the statement's cost per
    # loan is low enough that the chunk's fixed costs (its commit, lease renewal, ledger entry,
    # a dozen statements) would otherwise weigh; at 20,000 a chunk takes about a quarter of a
    # second, far within the lease. The Python rules close 2,000 a chunk (cob.CHUNK).
    cob_sql_chunk: int = Field(default=20_000, ge=1)
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
    # Issue 24, DOMAIN.md §7 (domain/penalty.py). 银发〔2003〕251号 art. 3: overdue loans are charged
    # the contract rate plus 30%-50%; interest not paid when due compounds at the penalty rate.
    penalty_markup: Decimal = Field(default=MARKUP_MAX, ge=MARKUP_MIN, le=MARKUP_MAX)
    compound_interest: bool = True  # 251号 art. 3: 对不能按时支付的利息，按罚息利率计收复利
    # Product choice (DOMAIN.md §7): 0 = past due the day after the due date, as DOMAIN §4 ages.
    grace_days: int = Field(default=0, ge=0, le=90)
    # Product choice (DOMAIN.md §7): penalty first, then interest, then principal, the order
    # banks' core systems collect in; a bank may configure its own (e.g. principal first).
    repayment_order: tuple[Part, ...] = DEFAULT_ORDER
    # Issue 25 (对账, DOMAIN.md §7): a bank's daily file lists each movement of the day; a whole
    # district repaying on one due date is some thousands. The bound keeps one request's
    # comparison (held in memory, in one transaction) to what the service answers in seconds.
    reconciliation_max_lines: int = Field(default=100_000, ge=1)
    # DOMAIN.md §7 (004 §4(1)5, 贴息资金及时拨付): the bank claims each period's subsidy, "a
    # quarter by default"; calendar months, quarters or years (domain/subsidy_claims.py).
    subsidy_claim_period: Period = "quarter"
    # Heads the claim's sheets (贷款银行); 004 §4(2) calls the lenders 合作银行 until named.
    bank_name: str = Field(default="合作银行", min_length=1, max_length=100)

    @field_validator("repayment_order")
    @classmethod
    def _one_of_each(cls, order: tuple[Part, ...]) -> tuple[Part, ...]:
        return check_order(order)

    def overdue_policy(self) -> OverduePolicy:
        return OverduePolicy(markup=self.penalty_markup, compound=self.compound_interest, grace_days=self.grace_days)

    @model_validator(mode="after")
    def _tables(self) -> LoansSettings:
        if self.benchmark_rates is not None:
            raise ValueError(
                "VCREDIT_LOANS_BENCHMARK_RATES is replaced by VCREDIT_LOANS_BENCHMARK_TABLE, dated: "
                '[{"effective_from": "2015-10-24", "rates": {"12": "0.0435", "60": "0.0475"}}]'
            )
        if self.lpr_table_file is not None:
            try:
                rows = json.loads(self.lpr_table_file.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise ValueError(f"VCREDIT_LOANS_LPR_TABLE_FILE {self.lpr_table_file}: {exc}") from exc
            if not isinstance(rows, list):
                raise ValueError(f"VCREDIT_LOANS_LPR_TABLE_FILE {self.lpr_table_file}: a JSON list of fixings expected")
            self.lpr_table = [LprRow.model_validate(row) for row in rows]
        if not self.benchmark_table:
            raise ValueError("benchmark_table: at least one entry is needed")
        _increasing("benchmark_table", self.benchmark_table)
        _increasing("lpr_table", self.lpr_table)
        _increasing("subsidy_policy", self.subsidy_policy)
        return self

    def benchmarks(self) -> list[BenchmarkEntry]:
        return [BenchmarkEntry(r.effective_from, dict(r.rates)) for r in self.benchmark_table]

    def lprs(self) -> list[LprFixing]:
        return [LprFixing(r.effective_from, r.one_year, r.five_year_plus) for r in self.lpr_table]

    def subsidy_shares(self) -> list[SubsidyShare]:
        return [SubsidyShare(r.effective_from, r.share) for r in self.subsidy_policy]
