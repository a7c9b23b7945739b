"""A whole district over months, in distributed mode (issue 8; targets: 20,000 households
over 12 months in < 10 minutes, each service < 300 MB RSS during the run).

The five services run as separate ``vcredit serve`` processes on real Kafka and PostgreSQL
(vcredit/cluster.py: own databases and topics, dropped afterwards), and ``vcredit
simulate`` drives them through their HTTP API from this process. Each service's resident
set is sampled every second; its maximum is reported. The simulation's summary and charts
go to ``VCREDIT_BENCH_DISTRICT_OUT`` (default artifacts/district).

    python -m bench.district [--households 20000 --villages 100 --townships 5 --months 12]
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.report import Figure, Target
from bench.suite import Benchmark, Servers, main_one
from simulator.cli import simulate
from simulator.district import Options
from vcredit.cluster import Cluster

MB = 1024 * 1024
OUT = Path(os.environ.get("VCREDIT_BENCH_DISTRICT_OUT", "artifacts/district"))


@dataclass(frozen=True)
class Sizes:
    households: int
    villages: int
    townships: int
    months: int


FULL = Sizes(households=20_000, villages=100, townships=5, months=12)


async def _sample_rss(cluster: Cluster, peaks: dict[str, int]) -> None:
    while True:
        for service, rss in cluster.rss().items():
            peaks[service] = max(peaks.get(service, 0), rss)
        await asyncio.sleep(1)


async def measure(servers: Servers, sizes: Sizes) -> list[Figure]:
    full = sizes == FULL
    options = Options(townships=sizes.townships, villages=sizes.villages, households=sizes.households)
    peaks: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="bench-district-") as tmp:
        async with Cluster(servers.kafka, servers.database_url, Path(tmp), token="bench-district") as cluster:
            sampler = asyncio.create_task(_sample_rss(cluster, peaks))
            try:
                summary: dict[str, Any] = await simulate(
                    options, cluster.urls, cluster.token, months=sizes.months, out=OUT, quiet=True
                )
            finally:
                sampler.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sampler
    run = summary["run"]
    if run["anomaly_count"]:
        raise RuntimeError(f"the simulation met {run['anomaly_count']} anomalies, first: {run['anomalies'][0]}")
    label = f"{sizes.households:,} households × {sizes.months} months, {sizes.villages} villages"
    phases = run["phases_seconds"]
    cb = summary["circuit_breaker"]
    figures = [
        Figure(
            f"simulated district, {label}, 5 processes on Kafka + PostgreSQL",
            run["wall_seconds"],
            "s",
            Target("<", 180, "< 180 s for 20,000 × 12 months").at_size(full),
        ),
        Figure("  of which registration and rating", phases["registration"] + phases["rating"], "s"),
        Figure(f"  of which {summary['district']['months']} months of business days", phases["business days"], "s"),
        Figure(
            f"  HTTP calls ({run['http_calls']:,}) per second of wall time",
            run["http_calls"] / run["wall_seconds"],
            "/s",
        ),
        Figure(
            f"  outcome: {summary['credit']['loans_drawn']:,} loans, {cb['villages_ever_frozen']} villages frozen, "
            f"{cb['townships_ever_halted']} townships halted, {summary['losses']['loans']} losses split",
            summary["credit"]["repayments"],
            "repayments",
        ),
    ]
    for service in sorted(peaks):
        figures.append(
            Figure(
                f"max RSS of {service} during the simulation",
                round(peaks[service] / MB, 1),
                "MB",
                Target("<", 300, "< 300 MB").at_size(full),
            )
        )
    return figures


BENCHMARK = Benchmark(
    "district", full=FULL, quick=Sizes(households=600, villages=6, townships=2, months=3), measure=measure
)

if __name__ == "__main__":
    main_one(BENCHMARK, __doc__)
