"""Scorecard benchmarks.

1. Profiles evaluated per second in-process, one core (target >= 50,000/s). Anchor: a
   Python loop that only reads the same fields from each profile (the floor any
   evaluator pays).
2. Re-rating 100,000 stored households in embedded mode (SQLite) after a rule-set
   change that alters every rating (target < 60 s): new ratings, workflow state and
   events into the outbox, committed per 1,000.

    python -m bench.scoring [--profiles 50000] [--households 100000]
"""

from __future__ import annotations

import asyncio
import json
import random
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from bench.report import Figure, Target
from bench.suite import Benchmark, Servers, main_one
from services.scoring.domain.engine import RULESETS_DIR, RuleSet
from services.scoring.models import Subject
from services.scoring.rerate import rerate_all
from services.scoring.settings import ScoringSettings
from shared.db import create_engine, create_sessionmaker
from shared.migrations import upgrade
from shared.settings import CommonSettings
from vcredit.services import load_spec

IN_FORCE = ScoringSettings().rule_set  # the card ratings are made with (hubin-2017-r2 by default)


def random_profile(rng: random.Random) -> dict[str, Any]:
    def money(lo: int, hi: int) -> str:
        return f"{rng.randint(lo, hi)}.{rng.randint(0, 99):02d}"

    profile: dict[str, Any] = {
        "head_party_member": rng.random() < 0.2,
        "head_college_or_above": rng.random() < 0.1,
        "head_healthy": rng.random() < 0.8,
        "income_project": rng.random() < 0.8,
        "certificates": rng.sample(["forest", "land_contract", "homestead"], rng.randint(0, 3)),
        "family_harmony": rng.random() < 0.9,
        "neighbour_harmony": rng.random() < 0.9,
        "commercial_insurance": rng.random() < 0.3,
        "homestead_house_value": money(50_000, 400_000),
        "equipment": [
            {"registered": rng.random() < 0.7, "value": money(5_000, 150_000)} for _ in range(rng.randint(0, 2))
        ],
        "urban_properties": [
            {"area_m2": str(rng.randint(30, 120)), "certified": True, "mortgaged": rng.random() < 0.2}
            for _ in range(rng.randint(0, 1))
        ],
    }
    if rng.random() < 0.2:
        profile["honour_level"] = rng.choice(["district", "township", "village"])
    if rng.random() < 0.1:
        profile["guarantees_given_total"] = money(0, 400_000)
    if rng.random() < 0.02:
        profile["currently_under_enforcement"] = True
    return profile


def evaluation_rate(rules: RuleSet, profiles: list[dict[str, Any]]) -> tuple[float, float]:
    started = time.perf_counter()
    for p in profiles:
        rules.evaluate(p, False)
    rate = len(profiles) / (time.perf_counter() - started)
    fields = [r.field for r in rules.spec.rules]
    started = time.perf_counter()
    for p in profiles:
        for f in fields:
            p.get(f)
    anchor = len(profiles) / (time.perf_counter() - started)
    return rate, anchor


async def rerating(households: int, rng: random.Random) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        url = f"sqlite+aiosqlite:///{data_dir}/scoring.db"
        await asyncio.to_thread(upgrade, load_spec("scoring").migrations_dir, url)
        engine = create_engine(url)
        sessions = create_sessionmaker(engine, info={"settings": CommonSettings(data_dir=data_dir)})
        now = datetime.now(UTC)
        async with sessions() as session, session.begin():
            for start in range(0, households, 5000):
                await session.execute(
                    insert(Subject),
                    [
                        {
                            "id": f"{i:08d}-0000-4000-8000-000000000000",
                            "kind": "household",
                            "village_code": f"41010200{i % 100:04d}",
                            "township_code": "410102001",
                            "name": f"农户{i}",
                            "poor_household": i % 5 == 0,
                            "profile": json.dumps(random_profile(rng)),
                            "overdue_occurrences": 0,
                            "npl_occurrences": 0,
                            "repaid_on_time": 0,
                            "updated_at": now,
                        }
                        for i in range(start, min(households, start + 5000))
                    ],
                )
        original = RuleSet.load(IN_FORCE)
        started = time.perf_counter()
        await rerate_all(sessions, original)
        first = time.perf_counter() - started

        # A revised card: the income project is worth 4 instead of 3, so every rating changes.
        revised = json.loads((RULESETS_DIR / f"{IN_FORCE}.json").read_text())
        revised["id"] = f"{IN_FORCE}-bench"
        next(r for r in revised["rules"] if r["id"] == "A3.project")["points"] = 4
        for r in revised["rules"]:
            if r["id"] == "D1.no_project":
                r["points"] = -9
        (data_dir / f"{IN_FORCE}-bench.json").write_text(json.dumps(revised, ensure_ascii=False))
        started = time.perf_counter()
        await rerate_all(sessions, RuleSet.load(f"{IN_FORCE}-bench", directory=data_dir))
        second = time.perf_counter() - started
        await engine.dispose()
        return first, second


@dataclass(frozen=True)
class Sizes:
    profiles: int
    households: int


EVALUATION_TARGET = Target(">=", 50_000, ">= 50,000/s")
RERATE_TARGET = Target("<", 60, "< 60 s for 100,000")


async def measure(servers: Servers, sizes: Sizes) -> list[Figure]:
    rng = random.Random(20171)
    rules = RuleSet.load(IN_FORCE)
    profiles = [random_profile(rng) for _ in range(sizes.profiles)]
    rate, anchor = evaluation_rate(rules, profiles)
    first, rerate = await rerating(sizes.households, rng)
    n = sizes.households
    return [
        Figure(
            f"scorecard evaluations, in-process, one core, {rules.version}, {sizes.profiles:,} profiles",
            rate,
            "/s",
            EVALUATION_TARGET,
            "a loop reading the same fields only",
            anchor,
        ),
        Figure(f"first rating of {n:,} stored households, embedded", first, "s"),
        Figure(
            f"re-rating {n:,} after a rule change (every rating changes), embedded",
            rerate,
            "s",
            RERATE_TARGET.at_size(n == 100_000),
        ),
    ]


BENCHMARK = Benchmark(
    "scoring",
    full=Sizes(profiles=50_000, households=100_000),
    quick=Sizes(profiles=5_000, households=2_000),
    measure=measure,
)

if __name__ == "__main__":
    main_one(BENCHMARK, __doc__)
