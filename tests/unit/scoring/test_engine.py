"""The Hubin household scorecard (DOMAIN.md §2, 004 annex 3) proved against the engine and the rule file.

Thresholds: 以上 includes the number, 超过 excludes it; DOMAIN.md states each boundary, and the
cases below sit on both sides of every one. Profiles are JSON-mode dicts as the API sends them.
"""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from services.scoring.domain.engine import RULESETS_DIR, Evaluation, RuleSet
from shared.profile import PROFILE_FIELDS, Profile

NAME = "hubin-2017"
RULES = RuleSet.load(NAME)
RAW: dict[str, Any] = json.loads((RULESETS_DIR / f"{NAME}.json").read_text(encoding="utf-8"))
BASE = 80

VETO_FIELDS = {
    "V1.vice": "vice_record",
    "V2.enforcement": "currently_under_enforcement",
    "V3.overdue": "currently_overdue",
    "V4.guarantee": "guarantee_currently_overdue",
}

# DOMAIN.md §2 grades and limits, written out independently of the rule file.
DOMAIN_GRADES = [(101, "AAA+", "200000.00"), (96, "AAA", "150000.00"), (87, "AA", "100000.00"), (80, "A", "50000.00")]


def domain_grade(score: int) -> tuple[str, Decimal]:
    for minimum, grade, limit in DOMAIN_GRADES:
        if score >= minimum:
            return grade, Decimal(limit)
    return "NONE", Decimal("0.00")


def fired(evaluation: Evaluation) -> list[tuple[str, int]]:
    return [(r.rule, r.points) for r in evaluation.reasons]


def equipment(value: str, registered: bool = True) -> dict[str, Any]:
    return {"registered": registered, "value": value}


def prop(area: str, certified: bool = True, mortgaged: bool = False) -> dict[str, Any]:
    return {"area_m2": area, "certified": certified, "mortgaged": mortgaged}


# ---------------------------------------------------------------------------------------------
# 1. The DOMAIN.md example


def test_domain_example_scores_93_aa_100000() -> None:
    profile = {
        "head_party_member": True,
        "head_healthy": True,
        "income_project": True,
        "certificates": ["land_contract", "homestead"],
        "family_harmony": True,
        "commercial_insurance": True,
    }
    result = RULES.evaluate(profile, poor_household=True)
    assert result.score == 93
    assert result.grade == "AA"
    assert result.credit_limit == Decimal("100000.00")
    assert not result.vetoed
    assert result.rule_set == RULES.version
    assert result.rule_set.startswith("hubin-2017@")
    assert fired(result) == [
        ("A1.party", 1),
        ("A1.healthy", 1),
        ("A3.project", 3),
        ("A5.certificates", 2),
        ("A8.family", 1),
        ("A10.insurance", 2),
        ("POOR", 3),
    ]


# ---------------------------------------------------------------------------------------------
# 2. Every addition and deduction in isolation: fragment -> delta vs base 80, rules that fired

ISOLATED: list[Any] = [
    # A1 / A1b
    pytest.param({"head_party_member": True}, 1, [("A1.party", 1)], id="A1-party"),
    pytest.param({"head_college_or_above": True}, 1, [("A1.college", 1)], id="A1-college"),
    pytest.param({"head_healthy": True}, 1, [("A1.healthy", 1)], id="A1-healthy"),
    pytest.param(
        {"head_party_member": False, "head_college_or_above": False, "head_healthy": False}, 0, [], id="A1-false"
    ),
    pytest.param({"military_service_in_family": True}, 1, [("A1b.military", 1)], id="A1b-military"),
    pytest.param({"military_service_in_family": False}, 0, [], id="A1b-false"),
    # A2: >= 200,000
    pytest.param({"homestead_house_value": "199999.99"}, 0, [], id="A2-199999.99"),
    pytest.param({"homestead_house_value": "200000.00"}, 2, [("A2.house", 2)], id="A2-200000.00"),
    pytest.param({"homestead_house_value": "200000.01"}, 2, [("A2.house", 2)], id="A2-200000.01"),
    # A3
    pytest.param({"income_project": True}, 3, [("A3.project", 3)], id="A3-project"),
    # A4: >= 50,000 and < 100,000; nothing outside
    pytest.param({"business_entity_scale": "49999.99"}, 0, [], id="A4-49999.99"),
    pytest.param({"business_entity_scale": "50000.00"}, 2, [("A4.business", 2)], id="A4-50000.00"),
    pytest.param({"business_entity_scale": "99999.99"}, 2, [("A4.business", 2)], id="A4-99999.99"),
    pytest.param({"business_entity_scale": "100000.00"}, 0, [], id="A4-100000.00"),
    pytest.param({"business_entity_scale": "5000000.00"}, 0, [], id="A4-5000000.00"),
    # A5: +1 per certificate, at most 3 (only 3 kinds)
    pytest.param({"certificates": []}, 0, [], id="A5-none"),
    pytest.param({"certificates": ["forest"]}, 1, [("A5.certificates", 1)], id="A5-1"),
    pytest.param({"certificates": ["forest", "homestead"]}, 2, [("A5.certificates", 2)], id="A5-2"),
    pytest.param({"certificates": ["forest", "land_contract", "homestead"]}, 3, [("A5.certificates", 3)], id="A5-3"),
    # A6: most valuable registered item; >= 50,000 +1, >= 100,000 +2
    pytest.param({"equipment": [equipment("49999.99")]}, 0, [], id="A6-49999.99"),
    pytest.param({"equipment": [equipment("50000.00")]}, 1, [("A6.equipment_50k", 1)], id="A6-50000"),
    pytest.param({"equipment": [equipment("99999.99")]}, 1, [("A6.equipment_50k", 1)], id="A6-99999.99"),
    pytest.param({"equipment": [equipment("100000.00")]}, 2, [("A6.equipment_100k", 2)], id="A6-100000"),
    pytest.param(
        {"equipment": [equipment("120000.00"), equipment("60000.00")]},
        2,
        [("A6.equipment_100k", 2)],
        id="A6-highest-only",
    ),
    pytest.param(
        {"equipment": [equipment("60000.00"), equipment("70000.00")]},
        1,
        [("A6.equipment_50k", 1)],
        id="A6-two-mid-items-once",
    ),
    pytest.param({"equipment": [equipment("150000.00", registered=False)]}, 0, [], id="A6-unregistered-ignored"),
    pytest.param(
        {"equipment": [equipment("150000.00", registered=False), equipment("60000.00")]},
        1,
        [("A6.equipment_50k", 1)],
        id="A6-unregistered-not-the-max",
    ),
    # A7: highest only (one level per profile)
    pytest.param({"honour_level": "district"}, 3, [("A7.district", 3)], id="A7-district"),
    pytest.param({"honour_level": "township"}, 2, [("A7.township", 2)], id="A7-township"),
    pytest.param({"honour_level": "village"}, 1, [("A7.village", 1)], id="A7-village"),
    # A8
    pytest.param({"family_harmony": True}, 1, [("A8.family", 1)], id="A8-family"),
    pytest.param({"neighbour_harmony": True}, 1, [("A8.neighbour", 1)], id="A8-neighbour"),
    pytest.param(
        {"family_harmony": True, "neighbour_harmony": True},
        2,
        [("A8.family", 1), ("A8.neighbour", 1)],
        id="A8-both",
    ),
    # A9: certified, unmortgaged; >= 75 +2 each; 50 <= area < 75 +1 each
    pytest.param({"urban_properties": [prop("74.99")]}, 1, [("A9.property_50", 1)], id="A9-74.99"),
    pytest.param({"urban_properties": [prop("75")]}, 2, [("A9.property_75", 2)], id="A9-75"),
    pytest.param({"urban_properties": [prop("49.99")]}, 0, [], id="A9-49.99"),
    pytest.param({"urban_properties": [prop("50")]}, 1, [("A9.property_50", 1)], id="A9-50"),
    pytest.param({"urban_properties": [prop("120", certified=False)]}, 0, [], id="A9-uncertified"),
    pytest.param({"urban_properties": [prop("120", mortgaged=True)]}, 0, [], id="A9-mortgaged"),
    pytest.param({"urban_properties": [prop("80"), prop("80")]}, 4, [("A9.property_75", 4)], id="A9-two-80"),
    pytest.param(
        {"urban_properties": [prop("80"), prop("60")]},
        3,
        [("A9.property_75", 2), ("A9.property_50", 1)],
        id="A9-80-and-60",
    ),
    # A10
    pytest.param({"commercial_insurance": True}, 2, [("A10.insurance", 2)], id="A10-insurance"),
    pytest.param({"commercial_insurance": False}, 0, [], id="A10-false"),
    # R1: +1 per loan repaid on time, at most +3
    pytest.param({"repaid_on_time_count": 0}, 0, [], id="R1-0"),
    pytest.param({"repaid_on_time_count": 1}, 1, [("R1.repaid_on_time", 1)], id="R1-1"),
    pytest.param({"repaid_on_time_count": 3}, 3, [("R1.repaid_on_time", 3)], id="R1-3"),
    pytest.param({"repaid_on_time_count": 5}, 3, [("R1.repaid_on_time", 3)], id="R1-5"),
    # D1: only when explicitly false
    pytest.param({"income_project": False}, -8, [("D1.no_project", -8)], id="D1-false"),
    pytest.param({"income_project": None}, 0, [], id="D1-unknown"),
    # D2 / D2b
    pytest.param({"family_harmony": False}, -1, [("D2.family", -1)], id="D2-family"),
    pytest.param({"neighbour_harmony": False}, -1, [("D2.neighbour", -1)], id="D2-neighbour"),
    pytest.param(
        {"family_harmony": False, "neighbour_harmony": False},
        -2,
        [("D2.family", -1), ("D2.neighbour", -1)],
        id="D2-both",
    ),
    pytest.param({"illegal_petitions_last_year": 0}, 0, [], id="D2b-0"),
    pytest.param({"illegal_petitions_last_year": 3}, -3, [("D2b.petition", -3)], id="D2b-3"),
    # D3 / D3b
    pytest.param({"overdue_history_count": 2}, -10, [("D3.overdue", -10)], id="D3-2"),
    pytest.param({"npl_history_count": 1}, -10, [("D3b.npl", -10)], id="D3b-1"),
    # D4: > 0 and < 200,000 -5; >= 200,000 and < 300,000 -8; >= 300,000 -10
    pytest.param({"guarantees_given_total": "0.00"}, 0, [], id="D4-0"),
    pytest.param({"guarantees_given_total": "0.01"}, -5, [("D4.guarantee", -5)], id="D4-0.01"),
    pytest.param({"guarantees_given_total": "199999.99"}, -5, [("D4.guarantee", -5)], id="D4-199999.99"),
    pytest.param({"guarantees_given_total": "200000.00"}, -8, [("D4.guarantee_200k", -8)], id="D4-200000"),
    pytest.param({"guarantees_given_total": "299999.99"}, -8, [("D4.guarantee_200k", -8)], id="D4-299999.99"),
    pytest.param({"guarantees_given_total": "300000.00"}, -10, [("D4.guarantee_300k", -10)], id="D4-300000"),
    # D5: >= 50,000
    pytest.param({"mortgages_given_total": "49999.99"}, 0, [], id="D5-49999.99"),
    pytest.param({"mortgages_given_total": "50000.00"}, -5, [("D5.mortgage", -5)], id="D5-50000"),
    # D6
    pytest.param({"court_enforcement_within_3y": True}, -15, [("D6.enforcement", -15)], id="D6-true"),
    pytest.param({"court_enforcement_within_3y": False}, 0, [], id="D6-false"),
]


@pytest.mark.parametrize(("fragment", "delta", "rules"), ISOLATED)
def test_rule_in_isolation(fragment: dict[str, Any], delta: int, rules: list[tuple[str, int]]) -> None:
    Profile.model_validate(fragment)  # every case is a valid API profile
    result = RULES.evaluate(fragment)
    assert result.score == BASE + delta
    assert fired(result) == rules
    assert not result.vetoed
    grade, limit = domain_grade(BASE + delta)
    assert (result.grade, result.credit_limit) == (grade, limit)


def test_empty_profile_is_base_80_grade_a() -> None:
    result = RULES.evaluate({})
    assert (result.score, result.grade, result.credit_limit, result.vetoed, result.reasons) == (
        80,
        "A",
        Decimal("50000.00"),
        False,
        (),
    )


# ---------------------------------------------------------------------------------------------
# 3. Vetoes dominate everything

MAXIMAL: dict[str, Any] = {
    "head_party_member": True,
    "head_college_or_above": True,
    "head_healthy": True,
    "military_service_in_family": True,
    "homestead_house_value": "900000.00",
    "income_project": True,
    "business_entity_scale": "60000.00",
    "certificates": ["forest", "land_contract", "homestead"],
    "equipment": [equipment("300000.00")],
    "honour_level": "district",
    "family_harmony": True,
    "neighbour_harmony": True,
    "urban_properties": [prop("120"), prop("90")],
    "commercial_insurance": True,
    "repaid_on_time_count": 9,
}


def test_maximal_profile_scores_every_addition() -> None:
    result = RULES.evaluate(MAXIMAL, poor_household=True)
    # 80 + A1 3 + A1b 1 + A2 2 + A3 3 + A4 2 + A5 3 + A6 2 + A7 3 + A8 2 + A9 4 + A10 2 + R1 3 + poor 3
    assert result.score == 113
    assert (result.grade, result.credit_limit) == ("AAA+", Decimal("200000.00"))


@pytest.mark.parametrize(("veto", "field"), sorted(VETO_FIELDS.items()))
def test_each_veto_alone_gives_zero(veto: str, field: str) -> None:
    result = RULES.evaluate({field: True})
    assert (result.score, result.grade, result.credit_limit, result.vetoed) == (0, "NONE", Decimal("0.00"), True)
    assert [r.rule for r in result.reasons] == [veto]
    assert str(result.credit_limit) == "0.00"


@pytest.mark.parametrize(("veto", "field"), sorted(VETO_FIELDS.items()))
def test_veto_false_is_no_veto(veto: str, field: str) -> None:
    result = RULES.evaluate({field: False})
    assert (result.score, result.grade, result.vetoed, result.reasons) == (80, "A", False, ())


@pytest.mark.parametrize(("veto", "field"), sorted(VETO_FIELDS.items()))
def test_veto_beats_maximal_profile_and_poor_bonus(veto: str, field: str) -> None:
    result = RULES.evaluate({**MAXIMAL, field: True}, poor_household=True)
    assert (result.score, result.grade, result.credit_limit, result.vetoed) == (0, "NONE", Decimal("0.00"), True)
    assert [r.rule for r in result.reasons] == [veto]
    assert all(r.points == 0 for r in result.reasons)


def test_two_vetoes_list_both() -> None:
    result = RULES.evaluate({"vice_record": True, "guarantee_currently_overdue": True, "income_project": True})
    assert (result.score, result.grade, result.credit_limit, result.vetoed) == (0, "NONE", Decimal("0.00"), True)
    assert [r.rule for r in result.reasons] == ["V1.vice", "V4.guarantee"]


def test_all_vetoes_list_all() -> None:
    result = RULES.evaluate(dict.fromkeys(VETO_FIELDS.values(), True), poor_household=True)
    assert result.score == 0
    assert [r.rule for r in result.reasons] == ["V1.vice", "V2.enforcement", "V3.overdue", "V4.guarantee"]


# ---------------------------------------------------------------------------------------------
# 4. Poor-household bonus


@pytest.mark.parametrize(
    ("profile", "without", "with_bonus"),
    [
        ({}, 80, 83),
        ({"family_harmony": False}, 79, 82),
        ({"court_enforcement_within_3y": True, "npl_history_count": 2}, 45, 48),
        (MAXIMAL, 110, 113),
    ],
)
def test_poor_household_adds_three(profile: dict[str, Any], without: int, with_bonus: int) -> None:
    plain = RULES.evaluate(profile)
    poor = RULES.evaluate(profile, poor_household=True)
    assert plain.score == without
    assert poor.score == with_bonus
    assert poor.reasons[:-1] == plain.reasons
    last = poor.reasons[-1]
    assert (last.rule, last.points) == ("POOR", 3)
    assert last.source.startswith("004")


def test_poor_bonus_lifts_79_to_grade_a() -> None:
    result = RULES.evaluate({"family_harmony": False}, poor_household=True)
    assert (result.score, result.grade, result.credit_limit) == (82, "A", Decimal("50000.00"))


def test_poor_bonus_not_applied_when_vetoed() -> None:
    result = RULES.evaluate({"currently_overdue": True}, poor_household=True)
    assert (result.score, result.vetoed) == (0, True)
    assert [r.rule for r in result.reasons] == ["V3.overdue"]


# ---------------------------------------------------------------------------------------------
# 5. Grade cut-offs

_95 = {
    "income_project": True,  # +3
    "commercial_insurance": True,  # +2
    "honour_level": "district",  # +3
    "repaid_on_time_count": 3,  # +3
    "head_party_member": True,  # +1
    "head_healthy": True,  # +1
    "homestead_house_value": "200000.00",  # +2
}
_96 = {**_95, "head_college_or_above": True}
_100 = {**_96, "certificates": ["forest", "land_contract", "homestead"], "military_service_in_family": True}
_101 = {**_100, "family_harmony": True}


@pytest.mark.parametrize(
    ("profile", "score", "grade", "limit"),
    [
        pytest.param({"neighbour_harmony": False}, 79, "NONE", "0.00", id="79"),
        pytest.param(
            {"income_project": True, "head_healthy": False, "illegal_petitions_last_year": 4},
            79,
            "NONE",
            "0.00",
            id="79-petitions",
        ),
        pytest.param({}, 80, "A", "50000.00", id="80"),
        pytest.param({"income_project": True, "illegal_petitions_last_year": 3}, 80, "A", "50000.00", id="80-mixed"),
        pytest.param(
            {"income_project": True, "commercial_insurance": True, "head_party_member": True},
            86,
            "A",
            "50000.00",
            id="86",
        ),
        pytest.param(
            {"income_project": True, "commercial_insurance": True, "head_party_member": True, "head_healthy": True},
            87,
            "AA",
            "100000.00",
            id="87",
        ),
        pytest.param(_95, 95, "AA", "100000.00", id="95"),
        pytest.param(_96, 96, "AAA", "150000.00", id="96"),
        pytest.param(_100, 100, "AAA", "150000.00", id="100"),
        pytest.param(_101, 101, "AAA+", "200000.00", id="101"),
    ],
)
def test_grade_cut_offs(profile: dict[str, Any], score: int, grade: str, limit: str) -> None:
    result = RULES.evaluate(profile)
    assert result.score == score
    assert result.grade == grade
    assert result.credit_limit == Decimal(limit)
    assert str(result.credit_limit) == limit


def test_grade_cut_offs_reached_with_poor_bonus() -> None:
    # 98 + 3 = 101: the bonus counts towards the grade.
    result = RULES.evaluate({**_96, "family_harmony": True, "neighbour_harmony": True}, poor_household=True)
    assert (result.score, result.grade, result.credit_limit) == (101, "AAA+", Decimal("200000.00"))


@pytest.mark.parametrize("score", range(-50, 151))
def test_grade_of_matches_domain_table(score: int) -> None:
    grade, limit = RULES.grade_of(score)
    assert (grade, limit) == domain_grade(score)
    assert limit.as_tuple().exponent == -2


# ---------------------------------------------------------------------------------------------
# 6. Properties over arbitrary valid profiles

MONEY_BOUNDARIES = [
    "0.00",
    "0.01",
    "49999.99",
    "50000.00",
    "50000.01",
    "99999.99",
    "100000.00",
    "100000.01",
    "199999.99",
    "200000.00",
    "200000.01",
    "299999.99",
    "300000.00",
    "300000.01",
]
AREA_BOUNDARIES = ["0.01", "49.99", "50", "50.00", "50.01", "74.99", "75", "75.00", "75.01", "80", "60", "100000"]
BOOL_FIELDS = [
    "head_party_member",
    "head_college_or_above",
    "head_healthy",
    "military_service_in_family",
    "income_project",
    "family_harmony",
    "neighbour_harmony",
    "commercial_insurance",
    "court_enforcement_within_3y",
    "currently_under_enforcement",
    "dishonest_debtor_list",
    "vice_record",
    "guarantee_currently_overdue",
    "currently_overdue",
]
MONEY_FIELDS = ["homestead_house_value", "business_entity_scale", "guarantees_given_total", "mortgages_given_total"]
COUNT_FIELDS = [
    "illegal_petitions_last_year",
    "overdue_history_count",
    "npl_history_count",
    "repaid_on_time_count",
    "repaid_full_period_count",
]

money = st.one_of(
    st.sampled_from(MONEY_BOUNDARIES),
    st.decimals(min_value=0, max_value=10**7, places=2).map(str),
)
areas = st.one_of(
    st.sampled_from(AREA_BOUNDARIES),
    st.decimals(min_value=Decimal("0.01"), max_value=1000, places=2).map(str),
)
counts = st.one_of(st.integers(0, 6), st.integers(0, 1000))
equipment_items = st.fixed_dictionaries({"registered": st.booleans(), "value": money})
property_items = st.fixed_dictionaries({"area_m2": areas, "certified": st.booleans(), "mortgaged": st.booleans()})

FIELD_STRATEGIES: dict[str, st.SearchStrategy[Any]] = {
    **dict.fromkeys(BOOL_FIELDS, st.booleans()),
    **dict.fromkeys(MONEY_FIELDS, money),
    **dict.fromkeys(COUNT_FIELDS, counts),
    "certificates": st.lists(st.sampled_from(["forest", "land_contract", "homestead"]), unique=True),
    "equipment": st.lists(equipment_items, max_size=4),
    "honour_level": st.sampled_from(["district", "township", "village"]),
    "urban_properties": st.lists(property_items, max_size=4),
}
assert set(FIELD_STRATEGIES) == set(PROFILE_FIELDS), "the strategy covers every profile field"

# Any subset of fields; the veto fields rarer, so most examples exercise the points.
VETO_FIELD_NAMES = set(VETO_FIELDS.values())
profiles = st.fixed_dictionaries(
    {},
    optional={
        name: (st.sampled_from([False, False, False, True]) if name in VETO_FIELD_NAMES else strategy)
        for name, strategy in FIELD_STRATEGIES.items()
    },
)
clean_profiles = profiles.map(lambda p: {k: v for k, v in p.items() if k not in VETO_FIELD_NAMES})


def _d(value: str) -> Decimal:
    return Decimal(value)


def domain_score(profile: dict[str, Any], poor: bool, repaid: str = "repaid_on_time_count") -> int:
    """DOMAIN.md §2 written out directly, independent of the rule file: the oracle. ``repaid``
    is the count the repayment bonus reads: hubin-2017 every on-time repayment, hubin-2017-r2
    only loans that ran a full instalment period (issue 19)."""
    if any(profile.get(f) is True for f in VETO_FIELD_NAMES):
        return 0
    score: int = 80
    for f in ["head_party_member", "head_college_or_above", "head_healthy", "military_service_in_family"]:
        score += profile.get(f) is True
    if "homestead_house_value" in profile and _d(profile["homestead_house_value"]) >= 200000:
        score += 2
    score += {True: 3, False: -8, None: 0}[profile.get("income_project")]
    if "business_entity_scale" in profile and 50000 <= _d(profile["business_entity_scale"]) < 100000:
        score += 2
    score += min(3, len(profile.get("certificates", [])))
    registered = [_d(e["value"]) for e in profile.get("equipment", []) if e["registered"]]
    if registered:
        top = max(registered)
        score += 2 if top >= 100000 else 1 if top >= 50000 else 0
    score += {"district": 3, "township": 2, "village": 1, None: 0}[profile.get("honour_level")]
    for f in ["family_harmony", "neighbour_harmony"]:
        score += {True: 1, False: -1, None: 0}[profile.get(f)]
    score -= profile.get("illegal_petitions_last_year", 0)
    for p in profile.get("urban_properties", []):
        if p["certified"] and not p["mortgaged"]:
            area = _d(p["area_m2"])
            score += 2 if area >= 75 else 1 if area >= 50 else 0
    score += 2 if profile.get("commercial_insurance") is True else 0
    score += min(3, profile.get(repaid, 0))
    score -= 5 * profile.get("overdue_history_count", 0)
    score -= 10 * profile.get("npl_history_count", 0)
    if "guarantees_given_total" in profile:
        g = _d(profile["guarantees_given_total"])
        score -= 10 if g >= 300000 else 8 if g >= 200000 else 5 if g > 0 else 0
    if "mortgages_given_total" in profile and _d(profile["mortgages_given_total"]) >= 50000:
        score -= 5
    score -= 15 if profile.get("court_enforcement_within_3y") is True else 0
    return score + (3 if poor else 0)


@settings(max_examples=200)
@given(profile=profiles, poor=st.booleans())
def test_engine_agrees_with_domain_oracle(profile: dict[str, Any], poor: bool) -> None:
    Profile.model_validate(profile)  # the strategy only makes valid API profiles
    result = RULES.evaluate(profile, poor_household=poor)
    assert result.score == domain_score(profile, poor)
    assert (result.grade, result.credit_limit) == (
        domain_grade(result.score) if not result.vetoed else ("NONE", Decimal("0.00"))
    )


REVISION = RuleSet.load("hubin-2017-r2")


@settings(max_examples=200)
@given(profile=profiles, poor=st.booleans())
def test_revision_2_agrees_with_domain_oracle(profile: dict[str, Any], poor: bool) -> None:
    result = REVISION.evaluate(profile, poor_household=poor)
    assert result.score == domain_score(profile, poor, repaid="repaid_full_period_count")
    assert (result.grade, result.credit_limit) == (
        domain_grade(result.score) if not result.vetoed else ("NONE", Decimal("0.00"))
    )


@settings(max_examples=100)
@given(profile=profiles, poor=st.booleans(), data=st.data())
def test_absent_and_none_are_the_same_as_missing(profile: dict[str, Any], poor: bool, data: st.DataObject) -> None:
    missing = [f for f in PROFILE_FIELDS if f not in profile]
    nones = data.draw(st.lists(st.sampled_from(missing), unique=True) if missing else st.just([]))
    baseline = RULES.evaluate(profile, poor_household=poor)
    assert RULES.evaluate({**profile, **dict.fromkeys(nones)}, poor_household=poor) == baseline
    # and dropping a field is the same as setting it to None
    present = sorted(profile)
    if present:
        name = data.draw(st.sampled_from(present))
        without = {k: v for k, v in profile.items() if k != name}
        assert RULES.evaluate(without, poor_household=poor) == RULES.evaluate({**profile, name: None}, poor)


@settings(max_examples=100)
@given(profile=profiles, veto=st.sampled_from(sorted(VETO_FIELD_NAMES)), poor=st.booleans())
def test_any_veto_gives_zero(profile: dict[str, Any], veto: str, poor: bool) -> None:
    result = RULES.evaluate({**profile, veto: True}, poor_household=poor)
    assert (result.score, result.grade, result.credit_limit, result.vetoed) == (0, "NONE", Decimal("0.00"), True)
    assert result.reasons
    assert all(r.rule.startswith("V") and r.points == 0 for r in result.reasons)
    assert veto in {VETO_FIELDS[r.rule] for r in result.reasons}


@settings(max_examples=150)
@given(profile=clean_profiles, poor=st.booleans())
def test_score_is_base_plus_reasons(profile: dict[str, Any], poor: bool) -> None:
    result = RULES.evaluate(profile, poor_household=poor)
    assert not result.vetoed
    assert result.score == 80 + sum(r.points for r in result.reasons)
    assert (result.grade, result.credit_limit) == RULES.grade_of(result.score)
    assert isinstance(result.credit_limit, Decimal)
    assert result.credit_limit.as_tuple().exponent == -2
    assert all(r.points != 0 for r in result.reasons)
    assert len({r.rule for r in result.reasons}) == len(result.reasons)


@settings(max_examples=100)
@given(profile=clean_profiles)
def test_poor_adds_exactly_three(profile: dict[str, Any]) -> None:
    plain = RULES.evaluate(profile)
    poor = RULES.evaluate(profile, poor_household=True)
    assert poor.score == plain.score + 3
    assert poor.reasons == (*plain.reasons, poor.reasons[-1])
    assert poor.reasons[-1].rule == "POOR"


@settings(max_examples=100)
@given(profile=profiles, poor=st.booleans())
def test_deterministic_and_does_not_mutate(profile: dict[str, Any], poor: bool) -> None:
    before = copy.deepcopy(profile)
    first = RULES.evaluate(profile, poor_household=poor)
    assert profile == before
    assert RULES.evaluate(profile, poor_household=poor) == first
    assert RuleSet.load(NAME).evaluate(before, poor_household=poor) == first
    # key order does not matter either
    assert RULES.evaluate(dict(reversed(list(profile.items()))), poor_household=poor) == first


@settings(max_examples=100)
@given(profile=profiles, poor=st.booleans())
def test_api_round_trip_evaluates_the_same(profile: dict[str, Any], poor: bool) -> None:
    """What the API stores (Profile JSON dump without unknowns) scores like what the client sent."""
    dumped = Profile.model_validate(profile).model_dump(mode="json", exclude_none=True)
    assert RULES.evaluate(dumped, poor_household=poor) == RULES.evaluate(profile, poor_household=poor)


# ---------------------------------------------------------------------------------------------
# 7. Rule sets are data: loading, validation, versions


def write(tmp_path: Path, raw: dict[str, Any], name: str = NAME) -> Path:
    (tmp_path / f"{name}.json").write_text(json.dumps(raw, ensure_ascii=False, indent=2), encoding="utf-8")
    return tmp_path


def rule(raw: dict[str, Any], rule_id: str) -> dict[str, Any]:
    found: dict[str, Any] = next(r for r in raw["rules"] if r["id"] == rule_id)
    return found


def test_unchanged_copy_has_the_same_version(tmp_path: Path) -> None:
    (tmp_path / f"{NAME}.json").write_bytes((RULESETS_DIR / f"{NAME}.json").read_bytes())
    assert RuleSet.load(NAME, directory=tmp_path).version == RULES.version
    assert RULES.version.startswith(f"{NAME}@")
    assert len(RULES.version) == len(NAME) + 1 + 12


def test_changed_points_change_the_score_and_version(tmp_path: Path) -> None:
    raw = copy.deepcopy(RAW)
    rule(raw, "A3.project")["points"] = 5
    changed = RuleSet.load(NAME, directory=write(tmp_path, raw))
    assert changed.version != RULES.version
    assert RULES.evaluate({"income_project": True}).score == 83
    result = changed.evaluate({"income_project": True})
    assert result.score == 85
    assert fired(result) == [("A3.project", 5)]
    assert result.rule_set == changed.version


def test_whitespace_only_change_still_changes_the_version(tmp_path: Path) -> None:
    """The version is a digest of the file's bytes."""
    changed = RuleSet.load(NAME, directory=write(tmp_path, RAW))  # re-serialised, different bytes
    assert changed.version != RULES.version
    original = RULES.evaluate(MAXIMAL, poor_household=True)
    assert changed.evaluate(MAXIMAL, poor_household=True) == replace(original, rule_set=changed.version)


def test_changed_grade_threshold_and_bonus(tmp_path: Path) -> None:
    raw = copy.deepcopy(RAW)
    raw["grades"][-1]["min_score"] = 81
    raw["poor_household_bonus"] = 5
    changed = RuleSet.load(NAME, directory=write(tmp_path, raw))
    assert (changed.evaluate({}).grade, changed.evaluate({}).credit_limit) == ("NONE", Decimal("0.00"))
    assert changed.evaluate({}, poor_household=True).score == 85


def _with_unknown_key(raw: dict[str, Any]) -> None:
    rule(raw, "A3.project")["weight"] = 2


def _with_unknown_field(raw: dict[str, Any]) -> None:
    rule(raw, "A3.project")["field"] = "shoe_size"


def _with_duplicate_id(raw: dict[str, Any]) -> None:
    rule(raw, "A1.college")["id"] = "A1.party"


def _with_two_effects(raw: dict[str, Any]) -> None:
    rule(raw, "A3.project")["veto"] = True


def _with_points_and_points_each(raw: dict[str, Any]) -> None:
    rule(raw, "D3.overdue")["points"] = -5


def _with_no_effect(raw: dict[str, Any]) -> None:
    del rule(raw, "A3.project")["points"]


def _with_zero_cap(raw: dict[str, Any]) -> None:
    rule(raw, "A5.certificates")["cap"] = 0


def _with_grades_out_of_order(raw: dict[str, Any]) -> None:
    raw["grades"].reverse()


def _with_unknown_grade(raw: dict[str, Any]) -> None:
    raw["grades"][0]["grade"] = "AAAA"


def _with_unknown_top_level_key(raw: dict[str, Any]) -> None:
    raw["comment"] = "x"


def _with_missing_source(raw: dict[str, Any]) -> None:
    del rule(raw, "D6.enforcement")["source"]


def _with_bad_bound(raw: dict[str, Any]) -> None:
    rule(raw, "A2.house")["gte"] = "two hundred thousand"


@pytest.mark.parametrize(
    "corrupt",
    [
        _with_unknown_key,
        _with_unknown_field,
        _with_duplicate_id,
        _with_two_effects,
        _with_points_and_points_each,
        _with_no_effect,
        _with_zero_cap,
        _with_grades_out_of_order,
        _with_unknown_grade,
        _with_unknown_top_level_key,
        _with_missing_source,
        _with_bad_bound,
    ],
)
def test_invalid_rule_set_is_refused(tmp_path: Path, corrupt: Any) -> None:
    raw = copy.deepcopy(RAW)
    corrupt(raw)
    with pytest.raises(ValidationError):
        RuleSet.load(NAME, directory=write(tmp_path, raw))


def test_file_name_must_match_id(tmp_path: Path) -> None:
    write(tmp_path, RAW, name="hubin-2018")
    with pytest.raises(ValueError, match="declares id hubin-2017"):
        RuleSet.load("hubin-2018", directory=tmp_path)


def test_malformed_json_is_refused(tmp_path: Path) -> None:
    (tmp_path / f"{NAME}.json").write_text('{"id": "hubin-2017", ', encoding="utf-8")
    with pytest.raises(ValidationError):
        RuleSet.load(NAME, directory=tmp_path)


# ---------------------------------------------------------------------------------------------
# 8. Every rule names its source and says why, in both languages

RULE_IDS = [r["id"] for r in RAW["rules"]]


@pytest.mark.parametrize("rule_id", RULE_IDS)
def test_rule_has_source_and_texts(rule_id: str) -> None:
    spec = rule(RAW, rule_id)
    assert spec["source"].strip()
    assert spec["source"].startswith("004")
    assert spec["text"]["zh"].strip()
    assert spec["text"]["en"].strip()


def test_rule_file_covers_domain_items() -> None:
    prefixes = {rule_id.split(".")[0] for rule_id in RULE_IDS}
    expected = {f"A{i}" for i in range(1, 11)} | {"A1b", "R1", "D1", "D2", "D2b", "D3", "D3b", "D4", "D5", "D6"}
    assert prefixes == expected | {"V1", "V2", "V3", "V4"}
    assert RAW["base_score"] == 80
    assert RAW["poor_household_bonus"] == 3
    assert RAW["poor_household_source"].startswith("004")
    assert RAW["source"].startswith("004")
    assert all(g["source"].startswith("004") for g in RAW["grades"])


SPECS = {r.id: r for r in RULES.spec.rules}


def assert_reasons_carry_texts(result: Evaluation) -> None:
    for reason in result.reasons:
        assert reason.source.startswith("004")
        assert reason.text.strip()
        assert reason.text_en.strip()
        if reason.rule != "POOR":
            spec = SPECS[reason.rule]
            assert (reason.text, reason.text_en, reason.source) == (spec.text.zh, spec.text.en, spec.source)


def test_reasons_carry_rule_texts_and_sources() -> None:
    negative = {
        "income_project": False,
        "family_harmony": False,
        "neighbour_harmony": False,
        "illegal_petitions_last_year": 1,
        "overdue_history_count": 1,
        "npl_history_count": 1,
        "guarantees_given_total": "1.00",
        "mortgages_given_total": "50000.00",
        "court_enforcement_within_3y": True,
    }
    vetoed = dict.fromkeys(VETO_FIELD_NAMES, True)
    seen: set[str] = set()
    for profile in [MAXIMAL, negative, vetoed, {"equipment": [equipment("60000.00")]}]:
        result = RULES.evaluate(profile, poor_household=True)
        assert_reasons_carry_texts(result)
        seen |= {r.rule for r in result.reasons}
    # (the other A7 levels, A9.property_50, D4 bands are covered by the isolation table)
    assert len(seen) >= 25


@settings(max_examples=100)
@given(profile=profiles, poor=st.booleans())
def test_every_reason_carries_texts(profile: dict[str, Any], poor: bool) -> None:
    assert_reasons_carry_texts(RULES.evaluate(profile, poor_household=poor))
