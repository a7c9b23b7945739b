"""The end of a run: what the system says happened (read back over the API), the
simulator's own tally beside it, and the plots."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict
from decimal import Decimal
from pathlib import Path
from typing import Any

from simulator.client import Api
from simulator.run import Simulation

GRADES = ("AAA+", "AAA", "AA", "A", "NONE")


def _sum(rows: list[dict[str, Any]], key: str) -> Decimal:
    return sum((Decimal(r[key]) for r in rows), Decimal("0.00"))


async def summarise(api: Api, sim: Simulation, wall_s: float) -> dict[str, Any]:
    townships = await api.get("risk", "/v1/townships")
    decisions = await api.offset_pages("risk", "/v1/decisions")
    losses = await api.offset_pages("risk", "/v1/losses")
    fund = await api.get("risk", "/v1/fund")
    trial = await api.get("loans", "/v1/ledger/trial-balance")
    t = sim.tally
    kinds = Counter(d["kind"] for d in decisions)
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
        "fund": fund,
        "ledger_balanced": trial["debits_equal_credits"],
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


def markdown(summary: dict[str, Any]) -> str:
    d, h, c, cb, lo, f, r = (
        summary[k] for k in ("district", "households", "credit", "circuit_breaker", "losses", "fund", "run")
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
        f"- credit lines opened: {c['lines_opened']:,}; refused: {c['lines_refused'] or 'none'}",
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
        "## Risk compensation fund",
        "",
        f"- balance {Decimal(f['balance']):,}; capacity {Decimal(f['capacity']):,}; "
        f"outstanding {Decimal(f['outstanding']):,}; available {Decimal(f['available']):,}",
        f"- ledger debits equal credits: {summary['ledger_balanced']}",
        "",
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
    return [folder / "summary.json", folder / "summary.md", folder / "days.json", *plot(sim, folder)]
