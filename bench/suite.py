"""What every benchmark module shares: the servers it measures against, its sizes (full = the
issues' targets, quick = a smoke test of seconds), running it so that a failure becomes an
error row, the machine line, and the command line of ``python -m bench.<name>``.

A benchmark module defines a frozen dataclass of sizes (int or float fields; each becomes a
``--field-name`` option of the module's command) and exposes

    BENCHMARK = Benchmark("name", full=Sizes(...), quick=Sizes(...), measure=measure)

where ``async def measure(servers: Servers, sizes: Sizes) -> list[Figure]``. Listing the
module's name in ``bench/__main__.py`` puts it in ``python -m bench``.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import glob
import ipaddress
import logging
import os
import platform
import re
import socket
import sys
import time
import traceback
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from bench.databases import LOOPBACK, asyncpg_dsn
from bench.report import Figure, Machine, failed, table
from vcredit.services import run_loop

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

    SizesT = TypeVar("SizesT", bound=DataclassInstance)
else:
    SizesT = TypeVar("SizesT")

DEFAULT_KAFKA = "127.0.0.1:9092"


@dataclass(frozen=True)
class Servers:
    database_url: str
    kafka: str


@dataclass(frozen=True)
class Benchmark(Generic[SizesT]):
    name: str
    full: SizesT
    quick: SizesT
    measure: Callable[[Servers, SizesT], Awaitable[list[Figure]]]

    def sizes(self, quick: bool, **overrides: Any) -> SizesT:
        given = {k: v for k, v in overrides.items() if v is not None}
        return dataclasses.replace(self.quick if quick else self.full, **given)


def describe(sizes: DataclassInstance) -> str:
    return ", ".join(f"{f.name}={getattr(sizes, f.name):,}" for f in dataclasses.fields(sizes))


def add_server_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database-url",
        default=os.environ.get("VCREDIT_TEST_DATABASE_URL", LOOPBACK),
        help="a PostgreSQL role allowed to create databases (default: VCREDIT_TEST_DATABASE_URL or loopback)",
    )
    parser.add_argument(
        "--kafka",
        default=os.environ.get("VCREDIT_TEST_KAFKA", DEFAULT_KAFKA),
        help="Kafka bootstrap servers (default: VCREDIT_TEST_KAFKA or loopback)",
    )


def servers_of(args: argparse.Namespace) -> Servers:
    return Servers(database_url=args.database_url, kafka=args.kafka)


def run(benchmark: Benchmark[Any], servers: Servers, sizes: Any, timeout: float | None = None) -> list[Figure]:
    """Measure in a fresh event loop; any failure (or the timeout) comes back as one error row."""
    deadline: asyncio.Timeout | None = None

    async def measure() -> list[Figure]:
        nonlocal deadline
        async with asyncio.timeout(timeout) as deadline:
            return await benchmark.measure(servers, sizes)

    try:
        figures = run_loop(measure())  # the services' loop, as `vcredit serve` runs them
    except TimeoutError as e:
        # Ours only if our deadline passed; a benchmark's own (a connect, a wait) is its failure.
        if deadline is not None and deadline.expired():
            return [Figure.failure(benchmark.name, f"no result within {timeout:,.0f} s")]
        traceback.print_exc()
        return [Figure.failure(benchmark.name, e)]
    except Exception as e:  # every failure is a row of the table, never the end of the run
        traceback.print_exc()
        return [Figure.failure(benchmark.name, e)]
    if not figures:
        return [Figure.failure(benchmark.name, "measured nothing")]
    return [dataclasses.replace(f, benchmark=benchmark.name) for f in figures]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


async def _postgresql_version(database_url: str) -> str:
    import asyncpg

    try:
        conn = await asyncpg.connect(asyncpg_dsn(database_url), timeout=5)
    except (OSError, asyncpg.PostgresError, TimeoutError) as e:
        return f"unreachable ({type(e).__name__})"
    try:
        return str(await conn.fetchval("SHOW server_version")).split()[0]
    finally:
        await conn.close()


def _loopback(bootstrap: str) -> bool:
    host = bootstrap.split(",")[0].rsplit(":", 1)[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _kafka_version(bootstrap: str) -> str:
    """The broker's jar version when it runs on this machine (deploy/local/kafka.sh): the wire
    protocol does not tell a client which release it talks to."""
    if not _loopback(bootstrap):
        return "remote, version unknown"
    for cmdline in glob.glob("/proc/[0-9]*/cmdline"):
        try:
            argv = Path(cmdline).read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if "kafka.Kafka" not in argv or "-cp" not in argv:
            continue
        for entry in argv[argv.index("-cp") + 1].split(":"):
            jars = glob.glob(entry) if entry.endswith("*") else [entry]
            for jar in jars:
                if m := re.fullmatch(r"kafka_[\d.]+-([\w.]+)\.jar", os.path.basename(jar)):
                    return m.group(1)
    return "version unknown (not a local process)"


def machine(servers: Servers) -> Machine:
    import aiokafka

    try:
        load = f"{os.getloadavg()[0]:.2f}"
    except OSError:
        load = ""
    return Machine(
        date=datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        host=socket.gethostname(),
        cpu=_cpu_model(),
        cores=os.cpu_count(),
        load=load,
        versions=(
            ("Python", platform.python_version()),
            ("PostgreSQL", asyncio.run(_postgresql_version(servers.database_url))),
            ("Kafka", _kafka_version(servers.kafka)),
            ("aiokafka", aiokafka.__version__),
        ),
    )


def quiet_logging() -> None:
    # vcredit's own INFO lines (migrations, relay, consumers) would bury the table.
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger().setLevel(logging.WARNING)


def main_one(benchmark: Benchmark[Any], doc: str | None, argv: Sequence[str] | None = None) -> None:
    """``python -m bench.<name>``: the module's sizes as options, then the shared table."""
    parser = argparse.ArgumentParser(
        prog=f"python -m bench.{benchmark.name}", description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    add_server_arguments(parser)
    for f in dataclasses.fields(benchmark.full):
        full, quick = getattr(benchmark.full, f.name), getattr(benchmark.quick, f.name)
        parser.add_argument(
            f"--{f.name.replace('_', '-')}",
            type=type(full),
            help=f"{f.metadata.get('help', '')} (default {full:,}; --quick {quick:,})".lstrip(),
        )
    args = parser.parse_args(argv)
    quiet_logging()
    servers = servers_of(args)
    sizes = benchmark.sizes(args.quick, **{f.name: getattr(args, f.name) for f in dataclasses.fields(benchmark.full)})
    host = machine(servers)
    print(f"{benchmark.name}: {describe(sizes)}", file=sys.stderr, flush=True)
    started = time.perf_counter()
    figures = run(benchmark, servers, sizes)
    print(f"\n{host.line()}\n{benchmark.name}: {describe(sizes)}, {time.perf_counter() - started:,.0f} s\n")
    print(table(figures))
    if failed(figures):
        raise SystemExit(1)
