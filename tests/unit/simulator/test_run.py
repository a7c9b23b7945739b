"""The district simulator's pure parts: the generated district, its collection sheets,
its grade mix under the real scorecard, and the report's charts."""

from __future__ import annotations

import re
from collections import Counter
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from services.registry.domain.identifiers import validate_resident_id
from services.registry.domain.provenance import check_sources
from services.registry.domain.sheet import parse_sheet
from services.registry.schemas import HouseholdIn
from services.registry.settings import RegistrySettings
from services.scoring.domain.engine import RuleSet
from services.scoring.settings import ScoringSettings
from shared.periods import add_months
from simulator.district import Options, generate
from simulator.report import GRADES, plot
from simulator.run import SUPPLIER_OF, Simulation, Snapshot, collector_facts, supplied_facts, village_sheet

SMALL = Options(townships=2, villages=10, households=1_000)


def test_same_seed_same_district_other_seed_other_district() -> None:
    a, b, c = generate(SMALL), generate(SMALL), generate(Options(**{**SMALL.__dict__, "seed": 7}))
    assert a.households == b.households and a.villages == b.villages
    assert [h.id_number for h in a.households] != [h.id_number for h in c.households]
    assert a.townships[0].code == "S2026T01" and c.townships[0].code == "S7T01"


def test_identifiers_are_valid_unique_and_names_unique_within_a_village() -> None:
    district = generate(SMALL)
    numbers = [h.id_number for h in district.households]
    assert len(set(numbers)) == len(numbers) == 1_000
    for number in numbers:
        assert validate_resident_id(number, today=date(2026, 11, 21)) == number
        assert number.startswith("411503")
    for village in district.villages:
        names = [h.name for h in district.households_of(village.code)]
        assert len(names) == 100 and len(set(names)) == 100
        assert re.fullmatch(r"S2026T0[12]V0(0[1-9]|10)", village.code)
    assert [len(district.households_of(v.code)) for v in district.villages] == [100] * 10


def test_bad_sizes_are_refused() -> None:
    with pytest.raises(ValueError, match="townships <= villages"):
        generate(Options(townships=5, villages=3, households=100))


def test_the_default_district_has_a_plausible_grade_mix_under_the_real_scorecard() -> None:
    district = generate(Options())
    rules = RuleSet.load(ScoringSettings().rule_set)
    grades: Counter[str] = Counter(rules.evaluate(h.profile, h.poor).grade for h in district.households)
    share = {g: grades[g] / len(district.households) for g in GRADES}
    # An ordinary household with an income project scores 87-90 (AA); those without a
    # project or with a veto get no grade; the well-off few reach AAA.
    assert 0.08 <= share["NONE"] <= 0.25, share
    assert 0.15 <= share["A"] <= 0.40, share
    assert 0.40 <= share["AA"] <= 0.70, share
    assert 0.005 <= share["AAA"] + share["AAA+"] <= 0.10, share
    assert len(district.households) == 20_000 and len(district.villages) == 100


def test_default_behaviour_concentrates_in_risky_villages_and_the_troubled_township() -> None:
    district = generate(Options())
    opts = district.options
    risky = [v for v in district.villages if v.default_rate == opts.risky_default_rate]
    troubled = [v for v in district.villages if v.township_code == district.townships[0].code]
    share_troubled = sum(v.default_rate == opts.risky_default_rate for v in troubled) / len(troubled)
    assert share_troubled >= 0.30  # enough for the township to halt once they cross 3%
    assert 0 < len(risky) < len(district.villages) / 2
    borrowers = [h for h in district.households if h.borrowing is not None]
    assert 0.15 <= len(borrowers) / len(district.households) <= 0.25
    rate_of = {v.code: v.default_rate for v in district.villages}
    defaults_in_risky = [
        h for h in borrowers if h.borrowing and h.borrowing.default_at and rate_of[h.village_code] > 0.1
    ]
    defaults_elsewhere = [
        h for h in borrowers if h.borrowing and h.borrowing.default_at and rate_of[h.village_code] < 0.1
    ]
    assert len(defaults_in_risky) > len(defaults_elsewhere) > 0
    for h in borrowers:
        plan = h.borrowing
        assert plan is not None
        assert plan.term_months in (12, 24, 36) and Decimal("10000") <= plan.amount <= Decimal("50000")
        assert plan.default_at is None or 1 <= plan.default_at <= min(6, plan.term_months)
        assert plan.cure_after_days is None or plan.default_at is not None


def test_the_collection_sheet_reads_back_as_the_registry_reads_it() -> None:
    district = generate(SMALL)
    village = district.villages[3]
    households = district.households_of(village.code)
    limits = RegistrySettings().sheet_limits()
    rows = parse_sheet(village_sheet(households), "sheet.csv", "text/csv", limits=limits)
    assert len(rows) == len(households)
    for row, h in zip(rows, households, strict=True):
        assert row.errors == []
        assert row.values["id_number"] == h.id_number and row.values["name"] == h.name
        assert row.values["poor_household"] is h.poor
        parsed = HouseholdIn.model_validate({**row.values, "village_code": village.code})
        expected = HouseholdIn.model_validate(
            {
                "id_number": h.id_number,
                "name": h.name,
                "village_code": village.code,
                "poor_household": h.poor,
                "profile": collector_facts(h),
            }
        )
        assert parsed.profile == expected.profile
        check_sources(parsed.profile.model_fields_set, "collector")  # raises if the sheet states a supplier's fact


def test_facts_a_collector_may_not_state_go_to_their_supplier() -> None:
    assert SUPPLIER_OF == {
        "court_enforcement_within_3y": "court",
        "currently_under_enforcement": "court",
        "dishonest_debtor_list": "court",
        "vice_record": "police",
        "guarantees_given_total": "bank",
        "mortgages_given_total": "bank",
        "guarantee_currently_overdue": "bank",
    }
    district = generate(Options())
    supplied = [h for h in district.households if supplied_facts(h)]
    assert 0.03 < len(supplied) / len(district.households) < 0.2
    for h in supplied:
        merged: dict[str, object] = dict(collector_facts(h))
        for source, facts in supplied_facts(h).items():
            check_sources(facts, source)
            merged.update(facts)
        assert merged == h.profile


@pytest.mark.parametrize(
    ("day", "months", "expected"),
    [
        (date(2026, 11, 21), 12, date(2027, 11, 21)),
        (date(2026, 1, 31), 1, date(2026, 2, 28)),
        (date(2027, 12, 31), 2, date(2028, 2, 29)),
        (date(2026, 11, 30), 3, date(2027, 2, 28)),
    ],
)
def test_the_simulation_window_ends_as_calendars_count_months(day: date, months: int, expected: date) -> None:
    assert add_months(day, months) == expected


def test_the_report_draws_both_charts_and_writes_the_figures(tmp_path: Path) -> None:
    district = generate(SMALL)
    sim = Simulation(api=None, district=district, months=1)  # type: ignore[arg-type]
    for n in range(30):
        sim.snapshots.append(
            Snapshot(
                date(2026, 11, 21 + n) if n < 10 else date(2026, 12, n - 9),
                {
                    t.code: {"npl_ratio": f"0.0{n % 5}00", "villages_frozen": n // 10, "halted": n > 20}
                    for t in district.townships
                },
                {"balance": "10000000.00", "outstanding": f"{n * 100000}.00", "capacity": "100000000.00"},
            )
        )
    written = plot(sim, tmp_path)
    assert [p.name for p in written] == ["npl_by_township.png", "circuit_breaker_and_fund.png"]
    for path in written:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000
