"""``vcredit simulate`` against the five services as separate processes on real Kafka and
PostgreSQL: a small district whose risky villages cross 3%, freeze, halt their township,
get written off and lift, over nine months of business days. The summary is checked
against the district the simulator generated and against the services' own records."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest

from services.risk.domain.loss import split_loss
from services.scoring.domain.engine import RuleSet
from services.scoring.settings import ScoringSettings
from simulator.cli import simulate
from simulator.district import Options, generate
from vcredit.cluster import Cluster

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

OPTIONS = Options(
    seed=11, townships=2, villages=6, households=600, risky_default_rate=0.4, default_rate=0.0, cure_rate=0.2
)


async def test_a_small_district_over_nine_months(cluster: Cluster, tmp_path: Path) -> None:
    summary = await simulate(
        OPTIONS, cluster.urls, cluster.token, months=9, write_off_after_days=120, out=tmp_path, quiet=True
    )
    run = summary["run"]
    assert run["anomaly_count"] == 0, run["anomalies"]

    # Every household registered and rated exactly as the scorecard rates its profile.
    district = generate(OPTIONS)
    rules = RuleSet.load(ScoringSettings().rule_set)
    expected = Counter(rules.evaluate(h.profile, h.poor).grade for h in district.households)
    assert summary["households"]["registered"] == 600
    assert summary["households"]["grades"] == {g: expected.get(g, 0) for g in ("AAA+", "AAA", "AA", "A", "NONE")}

    credit = summary["credit"]
    borrowers = sum(1 for h in district.households if h.borrowing and rules.evaluate(h.profile, h.poor).grade != "NONE")
    assert credit["lines_opened"] == borrowers
    assert credit["loans_drawn"] >= borrowers - sum(credit["drawdowns_refused"].values())
    assert credit["repayments"] > credit["loans_drawn"]

    # Risky villages crossed 3% and froze; the troubled township halted.
    cb = summary["circuit_breaker"]
    assert cb["villages_ever_frozen"] >= 1 and cb["townships_ever_halted"] >= 1
    assert cb["decisions"]["village_frozen"] >= 1
    # Write-offs took the non-performing loans off the books and the freezes lifted.
    assert credit["loans_written_off"] >= 1 and cb["decisions"].get("village_unfrozen", 0) >= 1

    # Each loss is split 30/20/50 in fen; the fund paid the government's share.
    losses = await cluster.client("risk").get("/v1/losses", params={"limit": 1000})
    rows = losses.json()
    assert len(rows) == credit["loans_written_off"] == summary["losses"]["loans"]
    for row in rows:
        parts = split_loss(Decimal(row["loss"]) - Decimal(row["mutual_guarantee"]))
        assert {party: Decimal(row[party]) for party in ("government", "bank", "insurer")} == parts
    government = sum(Decimal(r["government"]) for r in rows)
    assert Decimal(summary["fund"]["balance"]) == Decimal("10000000.00") - government
    assert Decimal(summary["losses"]["loss"]) == Decimal(summary["losses"]["written_off_by_simulator"])
    assert summary["ledger_balanced"] is True

    for name in ("summary.md", "summary.json", "days.json", "npl_by_township.png", "circuit_breaker_and_fund.png"):
        assert (tmp_path / name).stat().st_size > 0
    assert "## NPL by township" in (tmp_path / "summary.md").read_text()
