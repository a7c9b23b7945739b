"""Four eyes (issue 21): whoever proposed something never decides it, by name, whatever its roles."""

from __future__ import annotations

import pytest

from shared.auth import Principal, scopes_of
from shared.problems import Problem
from shared.web import ensure_second_principal

DUAL = Principal("as-dual", frozenset({"bank", "government"}), scopes_of(("bank", "government")))


def test_the_proposer_is_refused_with_a_conflict_naming_it() -> None:
    with pytest.raises(Problem) as refused:
        ensure_second_principal(DUAL, "as-dual", "black-list proposal")
    assert (refused.value.status, refused.value.code) == (409, "FOUR_EYES_REQUIRED")
    assert refused.value.extra == {"proposed_by": "as-dual"}
    assert "black-list proposal" in refused.value.detail


@pytest.mark.parametrize("proposed_by", ["as-bank", "AS-DUAL", "as-dual ", None])
def test_another_principal_or_no_proposer_may_decide(proposed_by: str | None) -> None:
    # Names are compared exactly: credential names are case-sensitive identities (shared.auth).
    ensure_second_principal(DUAL, proposed_by, "black-list proposal")


def test_the_same_roles_under_another_name_may_decide() -> None:
    twin = Principal("as-district", DUAL.roles, DUAL.scopes)
    ensure_second_principal(twin, "as-dual", "black-list proposal")
