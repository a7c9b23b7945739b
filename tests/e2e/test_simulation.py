"""``vcredit simulate`` against the five services as separate processes on real Kafka and
PostgreSQL: a small district whose risky villages cross 3%, freeze, halt their township,
get written off and lift, over nine months of business days. Issue 24's lifecycle too: the
services run with a grace period and some borrowers pay within it, defaulters are charged
penalty interest, the bank extends some loans (a second principal's key approves), recovers
part of some losses, and opens each village's lines in one call. The summary is checked
against the district the simulator generated and against the services' own records."""

from __future__ import annotations

import json
from collections import Counter
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from services.risk.domain.loss import split_loss
from services.scoring.domain.engine import RuleSet
from services.scoring.settings import ScoringSettings
from shared.auth import add_credential
from simulator.cli import simulate
from simulator.district import Options, generate
from vcredit.cluster import Cluster

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

GRACE_DAYS = 5
OPTIONS = Options(
    seed=11,
    townships=2,
    villages=6,
    households=600,
    risky_default_rate=0.4,
    default_rate=0.0,
    cure_rate=0.2,
    grace_days=GRACE_DAYS,
    late_share=0.2,
    extension_share=0.15,
    recovery_share=0.8,
)


@pytest.fixture
def cluster_options() -> dict[str, Any]:
    # The simulator's borrowers pay up to GRACE_DAYS late: the services must grant as many.
    return {"env": {"VCREDIT_LOANS_GRACE_DAYS": str(GRACE_DAYS)}}


async def test_a_small_district_over_nine_months(cluster: Cluster, tmp_path: Path) -> None:
    # A second principal for the four eyes on extensions, subsidy claims and insurer claim
    # batches, in the credentials file the services read (VCREDIT_DATA_DIR is the cluster's tmp_path).
    approver, _ = add_credential(
        tmp_path / "credentials.json", "sim-approver", "api_key", ("bank", "government", "insurer")
    )
    out = tmp_path / "out"
    summary = await simulate(
        OPTIONS,
        cluster.urls,
        cluster.token,
        approver_token=approver,
        months=9,
        write_off_after_days=120,
        out=out,
        quiet=True,
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
    # Whole-village credit: every graded household's line opened, a call (or a few, while
    # the certificates arrive) per village; the others skipped as having no credit grade.
    graded = sum(n for g, n in expected.items() if g != "NONE")
    assert credit["lines_opened"] == graded > borrowers
    assert credit["villages_opened"] == 6 <= credit["village_credit_calls"]
    assert sum(credit["lines_skipped"].values()) == expected["NONE"]
    assert set(credit["lines_skipped"]) <= {"NO_CREDIT_GRADE", "VETOED"}, credit["lines_skipped"]
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
    # Recoveries gave the fund back the government's part of them.
    returned = sum(Decimal(r["recovered_government"]) for r in rows)
    assert Decimal(summary["fund"]["balance"]) == Decimal("10000000.00") - government + returned
    assert Decimal(summary["losses"]["loss"]) == Decimal(summary["losses"]["written_off_by_simulator"])
    assert summary["ledger_balanced"] is True

    await check_lifecycle(cluster, summary, rows, json.loads((out / "loans.json").read_text()))
    await check_settlement(cluster, summary, rows)

    for name in (
        "summary.md",
        "summary.json",
        "days.json",
        "loans.json",
        "npl_by_township.png",
        "circuit_breaker_and_fund.png",
    ):
        assert (out / name).stat().st_size > 0
    text = (out / "summary.md").read_text()
    assert "## NPL by township" in text and "## Loan lifecycle" in text and "## Settlement" in text


async def check_settlement(cluster: Cluster, summary: dict[str, Any], losses: list[dict[str, Any]]) -> None:
    """Issue 25, driven as a district runs it: every closed day's reconciliation file agrees
    with what the simulator did that day, each month is closed, each quarter's subsidy claim
    is approved and paid, each month's insurer claims settled in a batch."""
    st = summary["settlement"]
    first, last = (date.fromisoformat(summary["district"][k]) for k in ("first_business_date", "last_business_date"))
    # Close of business closes every day from the first business date to the day before the last.
    assert st["days_reconciled"] == (last - first).days and st["reconciliation_mismatches"] == 0
    assert st["steps_skipped"] == {}
    # Every month whose last day the run closed, in order, each with a balanced trial balance.
    ends = [
        d for d in (first + timedelta(days=n) for n in range((last - first).days)) if (d + timedelta(days=1)).day == 1
    ]
    assert st["months_closed"] == [f"{d:%Y-%m}" for d in ends] and len(ends) >= 8
    periods = (await cluster.client("loans").get("/v1/ledger/periods")).json()
    assert sorted(p["period"] for p in periods) == st["months_closed"]
    # Nine months span at least two quarter ends: claims filed, approved in full and paid.
    sc = st["subsidy_claims"]
    quarters = sum(1 for d in ends if d.month % 3 == 0)
    assert quarters >= 2 and sc["filed"] + sc["nothing_to_claim"] == quarters
    assert sc["paid"] == sc["approved"] == sc["filed"] >= 1
    assert Decimal(sc["paid_amount"]) == Decimal(sc["approved_amount"]) == Decimal(sc["claimed"]) > 0
    trial = (await cluster.client("loans").get("/v1/ledger/trial-balance")).json()
    assert Decimal(trial["accounts"]["subsidy_claimed"]) == 0
    # Insurer batches: settled totals as risk keeps them, within the insurer's shares.
    ib = st["insurer_batches"]
    assert ib["settled"] == ib["filed"] >= 1 and ib["filed"] + ib["empty_months"] == len(ends)
    batches = (await cluster.client("risk").get("/v1/claim-batches")).json()
    assert len(batches) == ib["filed"] and all(b["status"] == "settled" for b in batches)
    settled = sum(Decimal(b["settled_total"]) for b in batches)
    assert settled == Decimal(ib["settled_amount"]) > 0
    assert settled <= sum(Decimal(r["insurer"]) for r in losses)


async def check_lifecycle(
    cluster: Cluster, summary: dict[str, Any], losses: list[dict[str, Any]], loans: list[dict[str, Any]]
) -> None:
    """Issue 24's figures are there, consistent with each other and with the services."""
    lc = summary["lifecycle"]
    assert lc["grace_days"] == GRACE_DAYS
    # Defaulters past the grace were charged penalty; a cure paid some of it, never more.
    penalty = lc["penalty"]
    assert Decimal(penalty["charged"]) > 0 and penalty["loans_charged"] >= 1
    assert Decimal(penalty["charged"]) == Decimal(penalty["penalty_on_principal"]) + Decimal(
        penalty["compound_on_interest"]
    )
    assert 0 <= Decimal(penalty["paid"]) <= Decimal(penalty["charged"])

    # Paid 1..GRACE_DAYS late and still on time: normal (or an extension's floor) and no veto.
    late = [x for x in loans if x["late"]]
    assert lc["paid_within_grace"]["payments"] >= 1 and late
    loans_api, scoring = cluster.client("loans"), cluster.client("scoring")
    for x in late:
        assert 1 <= x["late"]["days"] <= GRACE_DAYS
        loan = (await loans_api.get(f"/v1/loans/{x['loan_id']}")).json()
        assert loan["classification"] == ("special_mention" if x["extended_months"] else "normal"), loan
        assert Decimal(loan["penalty_accrued"]) == Decimal(loan["compound_accrued"]) == 0
        rating = (await scoring.get(f"/v1/households/{x['household_id']}/rating")).json()
        assert rating["vetoed"] is False and rating["grade"] != "NONE", rating

    # Every extension was proposed by the simulator's token and approved by the other key.
    ext = lc["extensions"]
    extended = [x for x in loans if x["extended_months"]]
    assert ext["approved"] == ext["proposed"] == len(extended) == ext["loans_shown_extended"] >= 1
    assert ext["refused"] == {} and ext["not_proposed_no_approver"] == 0
    assert ext["months_added"] == sum(x["extended_months"] for x in extended)
    for x in extended:
        loan = (await loans_api.get(f"/v1/loans/{x['loan_id']}")).json()
        assert loan["extended_months"] == x["extended_months"] > 0
        [decided] = (await loans_api.get(f"/v1/loans/{x['loan_id']}/extensions")).json()
        assert decided["status"] == "approved" and decided["decided_by"] == "sim-approver"
        assert decided["proposed_by"] != decided["decided_by"]

    # Recoveries: within each loss, split back to those who bore it, all of them booked by risk.
    rec = lc["recoveries"]
    assert rec["recoveries"] >= 1 and rec["loans"] >= 1
    by_loan = {row["loan_id"]: row for row in losses}
    recovered = Decimal(0)
    for row in losses:
        assert 0 <= Decimal(row["recovered"]) <= Decimal(row["loss"])
        assert Decimal(row["net"]) == Decimal(row["loss"]) - Decimal(row["recovered"])
        parts = ("mutual_guarantee", "government", "bank", "insurer")
        assert sum(Decimal(row[f"recovered_{p}"]) for p in parts) == Decimal(row["recovered"])
        for p in parts:
            assert Decimal(row[f"recovered_{p}"]) <= Decimal(row[p])
        recovered += Decimal(row["recovered"])
    assert recovered == Decimal(rec["amount"]) <= Decimal(summary["losses"]["loss"])
    assert sum(Decimal(v) for v in rec["recovered_by_party"].values()) == recovered
    for x in loans:
        if x["status"] == "written_off" and x["recovery_shares"]:
            assert x["loan_id"] in by_loan
