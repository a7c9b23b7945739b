"""Credentials and what they resolve to (shared/auth.py), and the role a principal acts in
(recorded beside its name with every decision): a token bound to the credential it
was issued to, and the bootstrap token retired for good (issue 21). The same attacks over
HTTP, and across a restart, are in tests/integration/test_auth.py and test_up.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared.auth import (
    BOOTSTRAP as BOOTSTRAP_PRINCIPAL,
)
from shared.auth import (
    Authenticator,
    CredentialStore,
    Principal,
    Unauthenticated,
    acting_role,
    add_credential,
    hash_secret,
    read_credentials,
    revoke_credential,
    scopes_of,
)
from shared.tokens import TokenKeys, new_signing_key

BOOTSTRAP = "bootstrap-secret"
KEYS = TokenKeys([new_signing_key()[0]])


def _authenticator(path: Path) -> Authenticator:
    store = CredentialStore(path)
    store.CHECK_SECONDS = 0  # reread on every call: no waiting in a unit test
    return Authenticator(BOOTSTRAP, store, KEYS)


def _token(auth: Authenticator, name: str, secret: str) -> str:
    return auth.issue(name, secret, None, 300)[0]


def test_a_revoked_clients_token_does_not_work_for_a_new_client_of_its_name(tmp_path: Path) -> None:
    path = tmp_path / "credentials.json"
    auth = _authenticator(path)
    first, old = add_credential(path, "bank-core", "client", ("bank",))
    stolen = _token(auth, "bank-core", first)
    assert auth.resolve(stolen).name == "bank-core"
    revoke_credential(path, "bank-core")
    second, new = add_credential(path, "bank-core", "client", ("bank",))
    assert old.instance != new.instance
    with pytest.raises(Unauthenticated, match="revoked or unknown"):
        auth.resolve(stolen)
    assert auth.resolve(_token(auth, "bank-core", second)).roles == {"bank"}
    # And a fresh process (a restart) agrees on both.
    restarted = _authenticator(path)
    with pytest.raises(Unauthenticated, match="revoked or unknown"):
        restarted.resolve(stolen)
    assert restarted.resolve(_token(auth, "bank-core", second)).name == "bank-core"


def test_a_credential_written_before_instances_existed_gets_a_stable_one(tmp_path: Path) -> None:
    """A file of the previous release, as it wrote it: no new field is needed, the instance is
    the same on every read and every service, and the file is rewritten in the same format
    (which the previous release, with extra="forbid", still reads)."""
    path = tmp_path / "credentials.json"
    secret = "vcs_" + "a" * 43
    legacy = {
        "name": "court-feed",
        "kind": "client",
        "sha256": hash_secret(secret),
        "roles": ["court"],
        "created_at": "2024-05-01T08:00:00Z",
    }
    path.write_text(json.dumps([legacy]))
    auth = _authenticator(path)
    token = _token(auth, "court-feed", secret)
    assert auth.resolve(token).roles == {"court"}
    assert _authenticator(path).resolve(token).name == "court-feed"
    assert read_credentials(path)[0].instance == read_credentials(path)[0].instance
    add_credential(path, "ops-script", "api_key", ("government",))
    assert set(json.loads(path.read_text())[0]) == set(legacy)
    assert auth.resolve(token).name == "court-feed", "rewriting the file keeps the instance"


def test_the_bootstrap_token_is_retired_once_an_operator_existed(tmp_path: Path) -> None:
    path = tmp_path / "credentials.json"
    auth = _authenticator(path)
    assert auth.resolve(BOOTSTRAP).name == "bootstrap"
    add_credential(path, "collector", "api_key", ("collector",), village="410102001001")
    assert auth.resolve(BOOTSTRAP).name == "bootstrap", "only an operator retires it"
    add_credential(path, "ops", "api_key", ("operator",))
    revoke_credential(path, "ops")
    for fresh in (auth, _authenticator(path)):  # this process, and a restarted one
        with pytest.raises(Unauthenticated, match="retired"):
            fresh.resolve(BOOTSTRAP)
    # This process latched it: the file going missing does not reopen it.
    path.unlink()
    with pytest.raises(Unauthenticated, match="retired"):
        auth.resolve(BOOTSTRAP)


def test_an_unreadable_credentials_file_refuses_the_bootstrap_token(tmp_path: Path) -> None:
    path = tmp_path / "credentials.json"
    path.write_text('[{"name": "ops", "kind": "api_key", "sha256": ')  # a half-written hand edit
    auth = _authenticator(path)
    with pytest.raises(Unauthenticated, match="retired"):
        auth.resolve(BOOTSTRAP)
    path.write_text("[]")  # fixed, and no operator ever: first setup goes on
    assert auth.resolve(BOOTSTRAP).name == "bootstrap"


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
    assert acting_role(BOOTSTRAP_PRINCIPAL, "objections:decide") == "operator"


def test_no_granting_role_is_none() -> None:
    assert acting_role(_principal("public"), "objections:decide") is None
    assert acting_role(_principal(), "lists:decide") is None


def test_a_key_made_a_moment_ago_is_known_at_once(tmp_path: Path) -> None:
    """The README makes a key with `vcredit keys new` and calls the API with it at once: the
    store, which rereads the file at most once a second, looks again before refusing."""
    path = tmp_path / "credentials.json"
    add_credential(path, "ops", "api_key", ("operator",))
    store = CredentialStore(path)
    store.CHECK_SECONDS = 3600  # nothing but the refusal path may reread the file in this test
    assert store.api_key(hash_secret("not a key")) is None  # the file is read and cached
    key, _ = add_credential(path, "dongcun-collector", "api_key", ("collector",), "410100001001")
    add_credential(path, "bank-core", "client", ("bank",))
    principal = store.api_key(hash_secret(key))
    assert principal is not None and principal.name == "dongcun-collector"
    assert store.active("bank-core") is not None
