"""Every benchmark, one after the other, in one table (also ``vcredit bench``).

    python -m bench                                  # the issues' sizes; long (COB of 1,000,000 loans)
    python -m bench --quick                          # small sizes: seconds each, a smoke test
    python -m bench --only cob,risk --write bench/RESULTS.md

Columns: figure, value, target, met, anchor (the same work done the barest way on the same
machine in the same run) and value ÷ anchor. A benchmark that fails is an error row and the
exit status is 1; a missed target is a result, not a failure, and leaves it 0.
"""

from __future__ import annotations

import argparse
import importlib
import shlex
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.report import Figure, failed, markdown, table
from bench.suite import Benchmark, add_server_arguments, describe, machine, quiet_logging, run, servers_of

# Modules of bench/, each exposing BENCHMARK (bench/suite.py). Run in this order, never
# concurrently: cheap ones first so a broken setup shows early; cob last, as its million-row
# database would leave checkpoint and autovacuum work behind for whatever ran next.
BENCHMARKS = [
    "scoring",
    "registry_import",
    "api",
    "bus",
    "risk",
    "district",
    "cob",
]


def load(name: str) -> Benchmark[Any]:
    benchmark: Benchmark[Any] = importlib.import_module(f"bench.{name}").BENCHMARK
    return benchmark


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes (seconds each), for a smoke test")
    parser.add_argument("--only", metavar="NAMES", help=f"comma-separated subset of: {','.join(BENCHMARKS)}")
    add_server_arguments(parser)
    parser.add_argument("--write", metavar="FILE", help="also write the table as Markdown, e.g. bench/RESULTS.md")
    parser.add_argument(
        "--timeout", type=float, metavar="SECONDS", help="give up on one benchmark after this long (default: never)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    names = BENCHMARKS
    if args.only:
        names = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = sorted(set(names) - set(BENCHMARKS))
        if unknown:
            parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    quiet_logging()
    servers = servers_of(args)
    host = machine(servers)
    print(host.line(), file=sys.stderr, flush=True)

    figures: list[Figure] = []
    suite_started = time.perf_counter()
    for number, name in enumerate(names, 1):
        started = time.perf_counter()
        try:
            benchmark = load(name)
        except Exception as e:  # a module that does not import is an error row like any other failure
            traceback.print_exc()
            figures.append(Figure.failure(name, e))
            print(f"[{number}/{len(names)}] {name}: cannot load: {e}", file=sys.stderr, flush=True)
            continue
        sizes = benchmark.sizes(args.quick)
        print(f"[{number}/{len(names)}] {name}: {describe(sizes)}", file=sys.stderr, flush=True)
        measured = run(benchmark, servers, sizes, args.timeout)
        figures += measured
        outcome = "FAILED" if failed(measured) else "done"
        print(f"[{number}/{len(names)}] {name}: {outcome} in {time.perf_counter() - started:,.0f} s", file=sys.stderr)
    elapsed = time.perf_counter() - suite_started

    print(f"\n{host.line()}")
    scale = "quick sizes (smoke test)" if args.quick else "full sizes"
    print(f"{scale}, {len(names)} benchmarks in {elapsed:,.0f} s\n")
    print(table(figures))
    if args.write:
        # Not argv: --database-url may carry a password.
        options = (["--quick"] if args.quick else []) + (["--only", args.only] if args.only else [])
        command = shlex.join(["python", "-m", "bench", *options])
        Path(args.write).write_text(markdown(figures, host, command, args.quick, elapsed))
        print(f"\nwritten to {args.write}")
    return 1 if failed(figures) else 0


if __name__ == "__main__":
    raise SystemExit(main())
