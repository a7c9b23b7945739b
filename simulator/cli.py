"""``vcredit simulate``: a synthetic district driven through a running system's API."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time
from dataclasses import fields
from pathlib import Path
from typing import Any

from simulator.client import PORTS, Api
from simulator.district import Options, generate
from simulator.report import markdown, summarise, write
from simulator.run import Simulation, Snapshot


def add_parser(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "simulate",
        help="generate a district and drive a running system through N months of business days",
        description="Drives a running system (vcredit up, or the distributed stack) through its public HTTP API. "
        "Run it against a fresh system: the district's codes carry the seed, so one system holds one run per seed.",
    )
    # The grace days are the services' setting: by default the one this shell gives `vcredit up`.
    defaults = Options(grace_days=int(os.environ.get("VCREDIT_LOANS_GRACE_DAYS", "0")))
    for f in fields(Options):
        p.add_argument(
            f"--{f.name.replace('_', '-')}", type=type(getattr(defaults, f.name)), default=getattr(defaults, f.name)
        )
    # Unless given, as many townships as the default but never more than villages: `--villages 2` works.
    p.set_defaults(townships=None)
    p.add_argument("--months", type=int, default=12)
    p.add_argument("--write-off-after-days", type=int, default=180, help="the bank writes off after collection fails")
    p.add_argument("--host", default="127.0.0.1", help="where the services listen on the default ports")
    for service, port in PORTS.items():
        p.add_argument(f"--{service}-url", help=f"default http://HOST:{port}")
    p.add_argument("--token", default=os.environ.get("VCREDIT_BOOTSTRAP_TOKEN"), help="default VCREDIT_BOOTSTRAP_TOKEN")
    p.add_argument(
        "--approver-token",
        default=os.environ.get("VCREDIT_SIMULATOR_APPROVER_TOKEN"),
        help="a second principal's API key with the roles bank, government and insurer (four eyes): it approves "
        "the extensions the --token proposes (bank), reviews and pays each quarter's subsidy claim (government, "
        "subsidy:review) and accepts the insurer's claim batch lines (insurer, claims:decide); a step it lacks "
        "the role for is skipped and counted in the summary; default VCREDIT_SIMULATOR_APPROVER_TOKEN; without it "
        "nothing is extended or approved",
    )
    p.add_argument("--concurrency", type=int, default=16, help="requests in flight")
    p.add_argument("--out", type=Path, default=Path("simulation"), help="folder for the summary and the plots")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> None:
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request would drown the progress bar
    if not args.token:
        raise SystemExit("give --token or set VCREDIT_BOOTSTRAP_TOKEN (the token `vcredit up` printed or was given)")
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise SystemExit("the plots need matplotlib: pip install -e '.[sim]'") from None
    options = options_from(args)
    urls = {s: getattr(args, f"{s}_url") or f"http://{args.host}:{p}" for s, p in PORTS.items()}
    summary = asyncio.run(
        simulate(
            options,
            urls,
            args.token,
            approver_token=args.approver_token,
            months=args.months,
            write_off_after_days=args.write_off_after_days,
            concurrency=args.concurrency,
            out=args.out,
            quiet=args.quiet,
        )
    )
    print(markdown(summary))
    print(f"written to {args.out}/")
    if summary["run"]["anomaly_count"]:
        sys.exit(1)


def options_from(args: argparse.Namespace) -> Options:
    """The district the flags describe; a shape ``generate`` cannot make is a usage error."""
    values = {f.name: getattr(args, f.name) for f in fields(Options)}
    if values["townships"] is None:
        values["townships"] = min(Options.townships, values["villages"])
    options = Options(**values)
    if not 1 <= options.townships <= options.villages <= options.households:
        raise SystemExit(
            f"need 1 <= --townships ({options.townships}) <= --villages ({options.villages}) "
            f"<= --households ({options.households})"
        )
    return options


async def simulate(
    options: Options,
    urls: dict[str, str],
    token: str,
    *,
    approver_token: str | None = None,
    months: int = 12,
    write_off_after_days: int = 180,
    concurrency: int = 16,
    out: Path = Path("simulation"),
    quiet: bool = False,
) -> dict[str, Any]:
    """Run the whole simulation against the services at ``urls``; the summary, also written
    with the charts to ``out``."""
    from tqdm import tqdm

    began = time.monotonic()
    district = generate(options)
    api = Api(urls, token, concurrency=concurrency)
    # Its calls count apart from the first principal's: they are few (one per extension).
    approver = None if approver_token is None else Api(urls, approver_token, concurrency=concurrency)
    sim = Simulation(api, district, months=months, write_off_after_days=write_off_after_days, approver=approver)
    try:

        def say(text: str) -> None:
            if not quiet:
                print(text, file=sys.stderr, flush=True)

        say(f"registering {len(district.households):,} households in {len(district.villages)} villages")
        await sim.setup()
        say("waiting for every rating")
        await sim.learn_ratings()
        bar = tqdm(total=None, unit="day", desc="business days", disable=quiet)

        def progress(s: Snapshot) -> None:
            if bar.total is None and sim.start and sim.end:
                bar.total = (sim.end - sim.start).days
            bar.update(1)
            bar.set_postfix(
                date=str(s.business_date),
                loans=sim.tally.loans_drawn,
                frozen=sum(t["villages_frozen"] for t in s.townships.values()),
                halted=sum(1 for t in s.townships.values() if t["halted"]),
                refresh=False,
            )

        try:
            await sim.run_days(progress)
        finally:
            bar.close()
        await sim.settle()
        summary = await summarise(api, sim, time.monotonic() - began)
        write(summary, sim, out)
        return summary
    finally:
        await api.aclose()
        if approver is not None:
            await approver.aclose()
