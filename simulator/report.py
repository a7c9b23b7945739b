"""The end of a run: what the system says happened (read back over the API), the
simulator's own tally beside it, and the plots."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from dataclasses import asdict
from decimal import Decimal
from pathlib import Path
from typing import Any

from simulator.client import Api
from simulator.run import LoanState, Simulation

GRADES = ("AAA+", "AAA", "AA", "A", "NONE")


def _sum(rows: list[dict[str, Any]], key: str) -> Decimal:
    return sum((Decimal(r[key]) for r in rows), Decimal("0.00"))


async def read_loans(api: Api, loans: list[LoanState]) -> list[dict[str, Any]]:
    """Every loan the run drew, as loans shows it at the end."""
    return list(
        await asyncio.gather(*(api.get("loans", f"/v1/loans/{x.loan_id}", endpoint="/v1/loans/{id}") for x in loans))
    )


def lifecycle(sim: Simulation, states: list[dict[str, Any]], losses: list[dict[str, Any]]) -> dict[str, Any]:
    """Issue 24's figures (docs/loan-lifecycle.md): penalty and compound interest charged
    and paid, payments within the grace period, extensions, recoveries and who got them
    back. What the system shows is checked against what the run did; a disagreement is an
    anomaly."""
    t = sim.tally
    charged = _sum(states, "penalty_accrued") + _sum(states, "compound_accrued")
    paid = _sum(states, "penalty_paid")
    extended = [x for x in sim.loans if x.extended_months]
    shown = {s["loan_id"]: s for s in states}
    for x in extended:
        if shown[x.loan_id]["extended_months"] <= 0:
            t.anomalies.append(f"{x.loan_id} extended, but loans shows extended_months 0")
    if paid != t.penalty_paid:
        t.anomalies.append(f"penalty paid: loans shows {paid}, the repayments applied {t.penalty_paid}")
    if paid > charged:
        t.anomalies.append(f"penalty paid {paid} exceeds the penalty charged {charged}")
    recovered = _sum(losses, "recovered")
    if recovered != t.amount_recovered:
        t.anomalies.append(f"risk booked {recovered} of recoveries, the run recorded {t.amount_recovered}")
    return {
        "grace_days": sim.district.options.grace_days,
        "penalty": {
            "loans_charged": sum(
                1 for s in states if Decimal(s["penalty_accrued"]) + Decimal(s["compound_accrued"]) > 0
            ),
            "charged": str(charged),
            "penalty_on_principal": str(_sum(states, "penalty_accrued")),
            "compound_on_interest": str(_sum(states, "compound_accrued")),
            "paid": str(paid),
        },
        "paid_within_grace": {"payments": t.paid_within_grace, "amount": str(t.amount_paid_within_grace)},
        "extensions": {
            "proposed": t.extensions_proposed,
            "approved": t.extensions_approved,
            "months_added": t.months_extended,
            "refused": dict(t.extensions_refused),
            "not_proposed_no_approver": t.extensions_skipped_no_approver,
            "loans_shown_extended": sum(1 for s in states if s["extended_months"] > 0),
        },
        "recoveries": {
            "recoveries": t.recoveries,
            "amount": str(t.amount_recovered),
            "loans": sum(1 for row in losses if Decimal(row["recovered"]) > 0),
            "recovered_by_party": {
                party: str(_sum(losses, f"recovered_{party}"))
                for party in ("mutual_guarantee", "government", "bank", "insurer")
            },
            "net_loss": str(_sum(losses, "net")),
        },
    }


async def summarise(api: Api, sim: Simulation, wall_s: float) -> dict[str, Any]:
    states = await read_loans(api, sim.loans)
    townships = await api.get("risk", "/v1/townships")
    decisions = await api.offset_pages("risk", "/v1/decisions")
    losses = await api.offset_pages("risk", "/v1/losses")
    fund = await api.get("risk", "/v1/fund")
    trial = await api.get("loans", "/v1/ledger/trial-balance")
    t = sim.tally
    kinds = Counter(d["kind"] for d in decisions)
    issue24 = lifecycle(sim, states, losses)
    return {
        "district": {
            "seed": sim.district.options.seed,
            "townships": len(sim.district.townships),
            "villages": len(sim.district.villages),
            "households": len(sim.district.households),
            "months": sim.months,
            "first_business_date": str(sim.start),
            "last_business_date": str(sim.end),
        },
        "households": {
            "registered": t.households_registered,
            "import_failures": t.import_failures,
            "grades": {g: t.grades.get(g, 0) for g in GRADES},
        },
        "credit": {
            "lines_opened": t.lines_opened,
            "lines_refused": dict(t.lines_refused),
            # Whole-village credit (整村授信): one call per village, repeated while certificates arrive.
            "village_credit_calls": t.village_credit_calls,
            "villages_opened": t.villages_opened,
            "lines_skipped": dict(t.lines_skipped),
            "loans_drawn": t.loans_drawn,
            "amount_drawn": str(t.amount_drawn),
            "drawdowns_refused": dict(t.drawdowns_refused),
            "repayments": t.repayments,
            "amount_repaid": str(t.amount_repaid),
            "loans_repaid_in_full": t.loans_repaid,
            "borrowers_who_defaulted": t.defaults,
            "defaults_cured": t.cures,
            "loans_written_off": t.written_off,
        },
        "npl_by_township": [
            {
                "code": row["code"],
                "name": row["name"],
                "npl_ratio": row["npl_ratio"],
                "outstanding": row["outstanding"],
                "non_performing": row["non_performing"],
                "villages_frozen": row["villages_frozen"],
                "halted": row["halted"],
            }
            for row in townships
        ],
        "circuit_breaker": {
            "decisions": dict(kinds),
            "villages_ever_frozen": len({d["code"] for d in decisions if d["kind"] == "village_frozen"}),
            "townships_ever_halted": len({d["code"] for d in decisions if d["kind"] == "township_halted"}),
            "villages_frozen_now": sum(row["villages_frozen"] for row in townships),
            "townships_halted_now": sum(1 for row in townships if row["halted"]),
        },
        "losses": {
            "loans": len(losses),
            "loss": str(_sum(losses, "loss")),
            "mutual_guarantee": str(_sum(losses, "mutual_guarantee")),
            "government": str(_sum(losses, "government")),
            "bank": str(_sum(losses, "bank")),
            "insurer": str(_sum(losses, "insurer")),
            "written_off_by_simulator": str(t.amount_written_off),
        },
        "lifecycle": issue24,
        "fund": fund,
        "ledger_balanced": trial["debits_equal_credits"],
        "settlement": sim.settlement.tally.summary(),
        "run": {
            "wall_seconds": round(wall_s, 1),
            "phases_seconds": {k: round(v, 1) for k, v in sim.phases.items()},
            "http_calls": api.calls.total,
            "http_retries": api.calls.retries,
            "calls_by_endpoint": {
                name: {"calls": n, "seconds": round(api.calls.seconds_by_endpoint[name], 1)}
                for name, n in api.calls.by_endpoint.most_common()
            },
            "anomalies": t.anomalies[:50],
            "anomaly_count": len(t.anomalies),
        },
    }


def settlement_lines(st: dict[str, Any]) -> list[str]:
    """The summary's "Settlement" section (issue 25)."""
    sc, ib = st["subsidy_claims"], st["insurer_batches"]
    return [
        "## Settlement",
        "",
        f"- days reconciled against the run's own record: {st['days_reconciled']}; "
        f"mismatches: {st['reconciliation_mismatches']}",
        f"- accounting months closed: {len(st['months_closed'])} ({', '.join(st['months_closed']) or 'none'}); "
        f"trial balances checked: {st['trial_balances_checked']}",
        f"- subsidy claims (贴息): {sc['filed']} filed for {Decimal(sc['claimed']):,}, {sc['approved']} approved "
        f"for {Decimal(sc['approved_amount']):,}, {sc['paid']} paid for {Decimal(sc['paid_amount']):,}; "
        f"quarters with nothing to claim: {sc['nothing_to_claim']}",
        f"- insurer claim batches: {ib['filed']} filed ({ib['empty_months']} months with none open), "
        f"{ib['lines_accepted']} lines accepted, {ib['settled']} settled for {Decimal(ib['settled_amount']):,}",
        f"- steps skipped for the approver: {st['steps_skipped'] or 'none'}",
        "",
    ]


def markdown(summary: dict[str, Any]) -> str:
    d, h, c, cb, lo, lc, f, r = (
        summary[k]
        for k in ("district", "households", "credit", "circuit_breaker", "losses", "lifecycle", "fund", "run")
    )
    lines = [
        f"# District simulation, seed {d['seed']}",
        "",
        f"{d['townships']} townships, {d['villages']} villages, {d['households']:,} households, "
        f"{d['months']} months ({d['first_business_date']} to {d['last_business_date']}); "
        f"wall time {r['wall_seconds']} s, {r['http_calls']:,} HTTP calls.",
        "",
        "## Ratings",
        "",
        "| grade | households |",
        "|---|---|",
        *(f"| {g} | {n:,} |" for g, n in h["grades"].items()),
        "",
        "## Credit",
        "",
        f"- credit lines opened: {c['lines_opened']:,} by {c['village_credit_calls']:,} whole-village calls "
        f"({c['villages_opened']} villages); households skipped: {c['lines_skipped'] or 'none'}; "
        f"calls refused: {c['lines_refused'] or 'none'}",
        f"- loans drawn: {c['loans_drawn']:,} for {Decimal(c['amount_drawn']):,} yuan; "
        f"refused: {c['drawdowns_refused'] or 'none'}",
        f"- repayments: {c['repayments']:,} for {Decimal(c['amount_repaid']):,} yuan; "
        f"loans repaid in full: {c['loans_repaid_in_full']:,}",
        f"- borrowers who stopped paying: {c['borrowers_who_defaulted']}, of whom cured: {c['defaults_cured']}; "
        f"loans written off: {c['loans_written_off']}",
        "",
        "## NPL by township (last business date)",
        "",
        "| township | NPL ratio | outstanding | non-performing | villages frozen | halted |",
        "|---|---|---|---|---|---|",
        *(
            f"| {t['code']} {t['name']} | {t['npl_ratio']} | {Decimal(t['outstanding']):,} | "
            f"{Decimal(t['non_performing']):,} | {t['villages_frozen']} | {'yes' if t['halted'] else 'no'} |"
            for t in summary["npl_by_township"]
        ),
        "",
        "## Circuit breaker",
        "",
        f"- villages ever frozen: {cb['villages_ever_frozen']}, frozen now: {cb['villages_frozen_now']}",
        f"- townships ever halted: {cb['townships_ever_halted']}, halted now: {cb['townships_halted_now']}",
        f"- decisions: {cb['decisions'] or 'none'}",
        "",
        "## Losses and who bore them",
        "",
        f"- loans: {lo['loans']}; realised loss {Decimal(lo['loss']):,} yuan",
        f"- mutual guarantee fund {Decimal(lo['mutual_guarantee']):,}; government (risk fund) "
        f"{Decimal(lo['government']):,}; bank {Decimal(lo['bank']):,}; insurer {Decimal(lo['insurer']):,}",
        "",
        "## Loan lifecycle",
        "",
        f"- grace period: {lc['grace_days']} days; paid within it: {lc['paid_within_grace']['payments']:,} "
        f"instalments for {Decimal(lc['paid_within_grace']['amount']):,} yuan (still on time)",
        f"- penalty and compound interest: charged {Decimal(lc['penalty']['charged']):,} yuan on "
        f"{lc['penalty']['loans_charged']} loans (penalty {Decimal(lc['penalty']['penalty_on_principal']):,}, "
        f"compound {Decimal(lc['penalty']['compound_on_interest']):,}); paid {Decimal(lc['penalty']['paid']):,}",
        f"- extensions: {lc['extensions']['proposed']} proposed, {lc['extensions']['approved']} approved by a second "
        f"principal, {lc['extensions']['months_added']} months added; refused: {lc['extensions']['refused'] or 'none'}"
        + (
            f"; {lc['extensions']['not_proposed_no_approver']} not proposed (no --approver-token)"
            if lc["extensions"]["not_proposed_no_approver"]
            else ""
        ),
        f"- recoveries after write-off: {lc['recoveries']['recoveries']} on {lc['recoveries']['loans']} loans for "
        f"{Decimal(lc['recoveries']['amount']):,} yuan; back to "
        + ", ".join(f"{p.replace('_', ' ')} {Decimal(v):,}" for p, v in lc["recoveries"]["recovered_by_party"].items())
        + f"; net loss {Decimal(lc['recoveries']['net_loss']):,}",
        "",
        "## Risk compensation fund",
        "",
        f"- balance {Decimal(f['balance']):,}; capacity {Decimal(f['capacity']):,}; "
        f"outstanding {Decimal(f['outstanding']):,}; available {Decimal(f['available']):,}",
        f"- ledger debits equal credits: {summary['ledger_balanced']}",
        "",
        *settlement_lines(summary["settlement"]),
        "## Run",
        "",
        f"- phases (s): {r['phases_seconds']}",
        f"- retries: {r['http_retries']}; anomalies: {r['anomaly_count']}",
        *(f"  - {a}" for a in r["anomalies"][:10]),
        "",
    ]
    return "\n".join(lines)


def plot(sim: Simulation, folder: Path) -> list[Path]:
    """PNG charts: NPL ratio per township, and the circuit breaker's state, over time."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import dates as mdates
    from matplotlib import font_manager
    from matplotlib import pyplot as plt

    cjk = {f.name for f in font_manager.fontManager.ttflist} & {"WenQuanYi Micro Hei", "Noto Sans CJK SC"}
    if cjk:  # township names in Chinese when a CJK font is installed, else codes only
        matplotlib.rcParams["font.sans-serif"] = [*sorted(cjk), "DejaVu Sans"]
    names = {t.code: f"{t.code} {t.name}" if cjk else t.code for t in sim.district.townships}
    days = mdates.date2num([s.business_date for s in sim.snapshots])  # type: ignore[no-untyped-call]
    written: list[Path] = []

    fig, ax = plt.subplots(figsize=(10, 5.5))
    for code, label in names.items():
        ratios = [
            float(Decimal(s.townships[code]["npl_ratio"])) * 100 if code in s.townships else 0.0 for s in sim.snapshots
        ]
        ax.plot(days, ratios, label=label)
    ax.axhline(3.0, color="crimson", linestyle="--", linewidth=1, label="3% village threshold")
    ax.set_title("NPL ratio by township")
    ax.set_ylabel("NPL ratio (%)")
    written.append(_save(fig, [ax], folder / "npl_by_township.png"))

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 6.5), sharex=True)
    for code, label in names.items():
        top.step(days, [s.townships.get(code, {}).get("villages_frozen", 0) for s in sim.snapshots], label=label)
    top.set_title("Villages frozen, by township")
    balance = [float(Decimal(s.fund["balance"])) / 1e6 for s in sim.snapshots]
    outstanding = [float(Decimal(s.fund["outstanding"])) / 1e6 for s in sim.snapshots]
    capacity = [float(Decimal(s.fund["capacity"])) / 1e6 for s in sim.snapshots]
    bottom.plot(days, outstanding, label="programme outstanding")
    bottom.plot(days, capacity, label="capacity (10 × fund)", linestyle="--")
    bottom.plot(days, balance, label="risk fund balance")
    bottom.set_ylabel("million yuan")
    written.append(_save(fig, [top, bottom], folder / "circuit_breaker_and_fund.png"))
    return written


def _save(fig: Any, axes: list[Any], path: Path) -> Path:
    from matplotlib import pyplot as plt

    for ax in axes:
        ax.legend(loc="upper left", fontsize="small")
        ax.grid(alpha=0.3)
        ax.xaxis_date()
    fig.autofmt_xdate()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def write(summary: dict[str, Any], sim: Simulation, folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False, default=str) + "\n")
    (folder / "summary.md").write_text(markdown(summary))
    (folder / "days.json").write_text(
        json.dumps([asdict(s) for s in sim.snapshots], ensure_ascii=False, default=str) + "\n"
    )
    (folder / "loans.json").write_text(json.dumps(loan_records(sim), indent=1) + "\n")
    files = ("summary.json", "summary.md", "days.json", "loans.json")
    return [*(folder / name for name in files), *plot(sim, folder)]


def loan_records(sim: Simulation) -> list[dict[str, Any]]:
    """Each loan drawn and what the run did with it (to look up in the system afterwards):
    the instalment paid within the grace period and how late, the months extended, the
    loss written off and the shares of it the bank recovered."""
    out = []
    for x in sim.loans:
        plan = x.household.borrowing
        assert plan is not None
        first = x.carries_default
        out.append(
            {
                "loan_id": x.loan_id,
                "household_id": sim.household_ids[x.household.index],
                "status": x.status,
                "late": {"instalment": plan.late_at, "days": plan.late_days} if first and plan.late_at else None,
                "extended_months": x.extended_months,
                "loss": str(x.loss) if x.status == "written_off" else None,
                "recovery_shares": [str(r) for r in plan.recoveries] if x.status == "written_off" else [],
            }
        )
    return out
