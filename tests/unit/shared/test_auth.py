"""The role a principal acts in: recorded beside its name with every decision (issue 21)."""

from __future__ import annotations

from shared.auth import BOOTSTRAP, Principal, acting_role, scopes_of


def _principal(*roles: str) -> Principal:
    return Principal("someone", frozenset(roles), scopes_of(roles))


def test_a_key_with_several_roles_acts_in_the_one_that_grants_the_scope() -> None:
    dual = _principal("bank", "government")
    assert acting_role(dual, "lists:propose") == "bank"
    assert acting_role(dual, "lists:decide") == "government"
    assert acting_role(dual, "ratings:reject") == "bank"


def test_of_several_granting_roles_the_first_in_roles_order_is_taken() -> None:
    # Both grant objections:decide; ROLES lists government before collector.
    assert acting_role(_principal("collector", "government"), "objections:decide") == "government"
    assert acting_role(BOOTSTRAP, "objections:decide") == "operator"


def test_no_granting_role_is_none() -> None:
    assert acting_role(_principal("public"), "objections:decide") is None
    assert acting_role(_principal(), "lists:decide") is None
