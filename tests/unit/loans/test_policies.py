"""Dated rate and subsidy policies (services/loans/domain/policies.py, issue 24 item 5) and
their settings' validation (services/loans/settings.py). Amounts worked out by hand."""

from __future__ import annotations

import json
from datetime import date, timedelta
from decimal import Decimal as D
from pathlib import Path

import pytest
from pydantic import ValidationError

from services.loans.domain.close_of_business import Accruals, close_loan_day
from services.loans.domain.loan_state import InstalmentDay, LoanDay, opening_state
from services.loans.domain.policies import (
    BenchmarkEntry,
    LprFixing,
    NoRateInForce,
    SubsidyShare,
    describe,
    parse,
    period_subsidy,
    reference,
    subsidy_of_day,
)
from services.loans.domain.schedule import build_schedule
from services.loans.settings import LoansSettings

BENCHMARKS = [BenchmarkEntry(date(2015, 10, 24), {12: D("0.0435"), 60: D("0.0475"), 360: D("0.0490")})]
LPRS = [
    LprFixing(date(2019, 8, 20), D("0.0425"), D("0.0485")),
    LprFixing(date(2019, 9, 20), D("0.0420"), D("0.0485")),
]
SEVENTY = [SubsidyShare(date(2027, 4, 1), D("0.7"))]
START, DUE = date(2027, 3, 20), date(2027, 4, 20)  # 31 days


def test_the_benchmark_rule_prices_by_the_table_in_force_whatever_the_lpr() -> None:
    ref = reference(12, date(2019, 9, 20), "benchmark", BENCHMARKS, LPRS, 60)
    assert (ref.benchmark_from, ref.benchmark_rate, ref.lpr_from, ref.lpr_rate) == (
        date(2015, 10, 24),
        D("0.0435"),
        None,
        None,
    )
    assert ref.cap(D("0.0435")) == D("0.0435")
    # 13 to 60 months: 4.75%; beyond 60: 4.90%.
    assert reference(36, date(2020, 1, 1), "benchmark", BENCHMARKS, LPRS, 60).benchmark_rate == D("0.0475")
    assert reference(61, date(2020, 1, 1), "benchmark", BENCHMARKS, LPRS, 60).benchmark_rate == D("0.0490")


def test_lpr_cap_takes_the_fixing_in_force_on_the_drawdown_date() -> None:
    on_19th = reference(12, date(2019, 9, 19), "lpr_cap", BENCHMARKS, LPRS, 60)
    on_20th = reference(12, date(2019, 9, 20), "lpr_cap", BENCHMARKS, LPRS, 60)
    assert (on_19th.lpr_from, on_19th.lpr_rate) == (date(2019, 8, 20), D("0.0425"))
    assert (on_20th.lpr_from, on_20th.lpr_rate) == (date(2019, 9, 20), D("0.0420"))
    # A household at the benchmark 4.35% is capped at 4.25%; a business at 4.35% × 1.1 = 4.785% too.
    assert on_19th.cap(D("0.0435")) == D("0.0425") and on_19th.cap(D("0.04785")) == D("0.0425")
    # A rate already below the LPR is not raised.
    assert on_19th.cap(D("0.0400")) == D("0.0400")
    # Longer than five years: the 5-year-plus tenor.
    assert reference(61, date(2019, 9, 20), "lpr_cap", BENCHMARKS, LPRS, 60).lpr_rate == D("0.0485")
    # Before the first fixing the LPR did not exist: no cap.
    early = reference(12, date(2019, 8, 19), "lpr_cap", BENCHMARKS, LPRS, 60)
    assert (early.lpr_from, early.cap(D("0.0435"))) == (None, D("0.0435"))


def test_no_benchmark_in_force_refuses() -> None:
    with pytest.raises(NoRateInForce, match="no benchmark rate table is in force on 2015-10-23"):
        reference(12, date(2015, 10, 23), "benchmark", BENCHMARKS, LPRS, 60)
    with pytest.raises(NoRateInForce, match="has no rate for 361 months"):
        reference(361, date(2020, 1, 1), "benchmark", BENCHMARKS, LPRS, 60)


def test_a_seventy_percent_share_from_mid_period_by_day() -> None:
    # Period subsidy at a share of 1: 36.25 (10000.00 × 0.0435 / 12), 31 days, 70% from day 13
    # (2027-04-01). Through day 12: round(36.25 × 12 / 31) = 14.03; day 13: round(36.25 × 12.7
    # / 31) − 14.03 = 14.85 − 14.03 = 0.82.
    days = [subsidy_of_day(D("36.25"), SEVENTY, START, START + timedelta(k), 31) for k in range(31)]
    assert sum(days[:12], D(0)) == D("14.03")
    assert days[12] == D("0.82")
    # All 31 days: round(36.25 × (12 + 19 × 0.7) / 31) = round(917.125 / 31) = round(29.5846…) = 29.58.
    assert sum(days, D(0)) == D("29.58") == period_subsidy(D("36.25"), SEVENTY, START, DUE)
    assert describe(SEVENTY, START, DUE) == "2027-03-20..2027-03-31=1;2027-04-01..2027-04-19=0.7"
    assert parse(describe(SEVENTY, START, DUE)) == [
        (date(2027, 3, 20), date(2027, 3, 31), D(1)),
        (date(2027, 4, 1), date(2027, 4, 19), D("0.7")),
    ]


def test_without_a_policy_or_at_a_share_of_one_the_days_are_as_before() -> None:
    # Before issue 24: day k's share is round(S × k / n) − round(S × (k − 1) / n), half up.
    full = [SubsidyShare(date(2020, 1, 1), D(1))]

    def through(total: D, k: int) -> D:
        return (total * k / 31).quantize(D("0.01"), rounding="ROUND_HALF_UP")

    for total in (D("36.25"), D("0.07"), D("12345.67")):
        expected = [through(total, k + 1) - through(total, k) for k in range(31)]
        for policy in ([], full):
            got = [subsidy_of_day(total, policy, START, START + timedelta(k), 31) for k in range(31)]
            assert got == expected, (total, policy)
            assert sum(got, D(0)) == total


def test_the_schedule_shows_the_shared_subsidy() -> None:
    # 10000.00 at 4.35%, poor household (full subsidy), interest only: period 1 at 29.58 (above),
    # period 2 (30 days, all at 70%) round(36.25 × 0.7) = round(25.375) = 25.38.
    plan = build_schedule(D("10000.00"), D("0.0435"), 12, "interest_only", START, "30/360", D("0.0435"), SEVENTY)
    assert [(p.interest, p.subsidy) for p in plan[:2]] == [(D("36.25"), D("29.58")), (D("36.25"), D("25.38"))]
    unshared = build_schedule(D("10000.00"), D("0.0435"), 12, "interest_only", START, "30/360", D("0.0435"))
    assert unshared[0].subsidy == D("36.25")


def test_close_of_business_accrues_the_shares_and_records_them_at_billing() -> None:
    plan = build_schedule(D("10000.00"), D("0.0435"), 12, "interest_only", START, "30/360", D("0.0435"), SEVENTY)
    loan = LoanDay(
        id="l",
        subject_id="s",
        subject_kind="household",
        village_code="v",
        township_code="t",
        principal=D("10000.00"),
        annual_rate=D("0.0435"),
        subsidy_rate=D("0.0435"),
        day_count="30/360",
        term_months=12,
        disbursed_on=START,
        **opening_state(plan, D("10000.00"), START),
    )
    schedule = [InstalmentDay("l", p.number, p.due_on, p.principal, None) for p in plan]
    accruals = Accruals()
    day = START
    while day < DUE:
        close_loan_day(loan, day, accruals, schedule=schedule, subsidy_policy=SEVENTY)
        day += timedelta(1)
    # Gross 36.25, subsidy 29.58, the borrower billed 36.25 − 29.58 = 6.67.
    assert (accruals.gross, accruals.subsidy, loan.subsidy_accrued, loan.interest_billed) == (
        D("36.25"),
        D("29.58"),
        D("29.58"),
        D("6.67"),
    )
    assert schedule[0].billed == D("6.67") == plan[0].net_due
    assert schedule[0].subsidy_policy == "2027-03-20..2027-03-31=1;2027-04-01..2027-04-19=0.7"


# --- settings ---------------------------------------------------------------------------------


def test_the_defaults_reproduce_the_undated_rates() -> None:
    cfg = LoansSettings()
    assert cfg.pricing_rule == "benchmark" and cfg.subsidy_shares() == []
    assert [(e.effective_from, dict(e.rates)) for e in cfg.benchmarks()] == [
        (date(2015, 10, 24), {12: D("0.0435"), 60: D("0.0475"), 360: D("0.0490")})
    ]
    assert (cfg.lprs()[0].effective_from, cfg.lprs()[0].one_year, cfg.lprs()[0].five_year_plus) == (
        date(2019, 8, 20),
        D("0.0425"),
        D("0.0485"),
    )


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        (
            "VCREDIT_LOANS_LPR_TABLE",
            [
                {"effective_from": "2019-09-20", "one_year": "0.042", "five_year_plus": "0.0485"},
                {"effective_from": "2019-08-20", "one_year": "0.0425", "five_year_plus": "0.0485"},
            ],
            "lpr_table: effective dates must be strictly increasing, 2019-08-20 follows 2019-09-20",
        ),
        (
            "VCREDIT_LOANS_BENCHMARK_TABLE",
            [{"effective_from": "2015-10-24", "rates": {"12": "-0.01"}}],
            "the rate up to 12 months must be a fraction at least 0 and below 1",
        ),
        (
            "VCREDIT_LOANS_LPR_TABLE",
            [{"effective_from": "2019-08-20", "one_year": "-0.0425", "five_year_plus": "0.0485"}],
            "an LPR must be a fraction at least 0 and below 1",
        ),
        (
            "VCREDIT_LOANS_SUBSIDY_POLICY",
            [{"effective_from": "2027-04-01", "share": "1.5"}],
            "a subsidy share is between 0 and 1",
        ),
        (
            "VCREDIT_LOANS_SUBSIDY_POLICY",
            [{"effective_from": "2027-04-01", "share": "0.7"}, {"effective_from": "2027-04-01", "share": "0.5"}],
            "subsidy_policy: effective dates must be strictly increasing, 2027-04-01 follows 2027-04-01",
        ),
        ("VCREDIT_LOANS_BENCHMARK_TABLE", [], "benchmark_table: at least one entry is needed"),
        ("VCREDIT_LOANS_BENCHMARK_RATES", {"12": "0.0435"}, "replaced by VCREDIT_LOANS_BENCHMARK_TABLE"),
    ],
)
def test_bad_tables_are_refused_with_the_rule_named(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: object, message: str
) -> None:
    monkeypatch.setenv(variable, json.dumps(value))
    with pytest.raises(ValidationError, match=message):
        LoansSettings()


def test_the_lpr_table_from_a_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    table = tmp_path / "lpr.json"
    table.write_text(json.dumps([{"effective_from": "2019-08-20", "one_year": "0.0425", "five_year_plus": "0.0485"}]))
    monkeypatch.setenv("VCREDIT_LOANS_LPR_TABLE_FILE", str(table))
    assert [f.effective_from for f in LoansSettings().lprs()] == [date(2019, 8, 20)]
    table.write_text("not json")
    with pytest.raises(ValidationError, match="VCREDIT_LOANS_LPR_TABLE_FILE"):
        LoansSettings()
