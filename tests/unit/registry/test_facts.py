from __future__ import annotations

from services.registry.domain.facts import canonical, changes, profile_of, statement_of
from shared.profile import Profile


def test_a_statement_is_what_was_said_including_retractions() -> None:
    profile = Profile.model_validate({"income_project": True, "homestead_house_value": "200000", "honour_level": None})
    assert statement_of(profile) == {"income_project": True, "homestead_house_value": "200000.00", "honour_level": None}


def test_only_differences_are_changes() -> None:
    current = {"income_project": canonical(True), "certificates": canonical(["forest", "homestead"])}
    stated = {"income_project": True, "certificates": ["forest"], "family_harmony": False, "honour_level": None}
    # honour_level was unknown and is stated unknown: no change; family_harmony is new.
    assert changes(current, stated) == {"certificates": ["forest"], "family_harmony": False}


def test_profile_drops_unknowns() -> None:
    current = {"income_project": canonical(True), "vice_record": canonical(None), "homestead_house_value": '"1.00"'}
    assert profile_of(current) == {"homestead_house_value": "1.00", "income_project": True}
