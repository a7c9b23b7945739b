"""Authentication (issue 9): OAuth2 client credentials with rotating EdDSA keys, API keys
managed by ``vcredit keys``, the bootstrap token's retirement, revocation."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shared.auth import add_credential, read_credentials, revoke_credential
from shared.tokens import TokenKeys, new_signing_key
from tests.conftest import TOKEN, Infra, new_topic_prefix
from tests.support.system import System
from tests.support.waiting import wait_until

OLD, NEW = new_signing_key(), new_signing_key()


@pytest.fixture
async def system(tmp_path: Path) -> AsyncIterator[tuple[System, Path]]:
    credentials = tmp_path / "credentials.json"
    # Mid-rotation: NEW signs, OLD still verifies.
    async with System(
        Infra("embedded", tmp_path, new_topic_prefix()),
        ["registry", "loans"],
        credentials_file=credentials,
        jwt_signing_keys=[NEW[0], OLD[0]],
    ) as s:
        yield s, credentials


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _token(client: httpx.AsyncClient, **form: str) -> httpx.Response:
    return await client.post("/v1/oauth/token", data=form, headers={"Authorization": ""})


async def test_client_credentials_token_is_scoped_verified_everywhere_and_revocable(
    system: tuple[System, Path],
) -> None:
    s, credentials = system
    secret, entry = add_credential(credentials, "hubin-bank-core", "client", ("bank",))
    assert secret not in credentials.read_text() and entry.sha256 in credentials.read_text()

    r = await _token(s["registry"], grant_type="client_credentials", client_id="hubin-bank-core", client_secret=secret)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 900
    assert "lending:write" in body["scope"].split() and "cob:run" not in body["scope"].split()
    token = body["access_token"]

    # Issued by registry, accepted by loans: one trust domain, keys by kid.
    loans = s["loans"]
    assert (await loans.get("/v1/ledger/trial-balance", headers=_bearer(token))).status_code == 200
    r = await loans.post("/v1/cob", json={}, headers=_bearer(token))
    assert (r.status_code, r.json()["code"]) == (403, "FORBIDDEN")

    # HTTP Basic works too, and a narrower scope gives a narrower token.
    basic = base64.b64encode(f"hubin-bank-core:{secret}".encode()).decode()
    r = await s["registry"].post(
        "/v1/oauth/token",
        data={"grant_type": "client_credentials", "scope": "ledger:read"},
        headers={"Authorization": f"Basic {basic}"},
    )
    assert r.status_code == 200 and r.json()["scope"] == "ledger:read"
    narrow = r.json()["access_token"]
    assert (await loans.get("/v1/ledger/trial-balance", headers=_bearer(narrow))).status_code == 200
    r = await loans.get("/v1/loans/zz0", headers=_bearer(narrow))
    assert (r.status_code, r.json()["required_scopes"]) == (403, ["lending:read"])

    # Refusals follow RFC 6749 §5.2 inside a problem+json.
    for form, status, error in (
        (
            {"grant_type": "password", "client_id": "hubin-bank-core", "client_secret": secret},
            400,
            "unsupported_grant_type",
        ),
        (
            {"grant_type": "client_credentials", "client_id": "hubin-bank-core", "client_secret": "wrong"},
            401,
            "invalid_client",
        ),
        ({"grant_type": "client_credentials", "client_id": "nobody", "client_secret": secret}, 401, "invalid_client"),
        ({"grant_type": "client_credentials"}, 401, "invalid_client"),
        (
            {
                "grant_type": "client_credentials",
                "client_id": "hubin-bank-core",
                "client_secret": secret,
                "scope": "cob:run",
            },
            400,
            "invalid_scope",
        ),
        (
            {
                "grant_type": "client_credentials",
                "client_id": "hubin-bank-core",
                "client_secret": secret,
                "scope": "nope",
            },
            400,
            "invalid_scope",
        ),
    ):
        r = await _token(s["registry"], **form)
        assert (r.status_code, r.json()["error"]) == (status, error), (form, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        assert secret not in r.text

    # An API key is not a client: it cannot get tokens, and a client secret is not an API key.
    key, _ = add_credential(credentials, "ops-script", "api_key", ("government",))
    r = await _token(s["registry"], grant_type="client_credentials", client_id="ops-script", client_secret=key)
    assert r.status_code == 401
    assert (await loans.get("/v1/ledger/trial-balance", headers=_bearer(secret))).status_code == 401

    # Revoking the client ends its live tokens on every service once the credential store
    # rereads its file (every CredentialStore.CHECK_SECONDS): waited for, not slept through.
    revoke_credential(credentials, "hubin-bank-core")
    await _answers(loans, "/v1/ledger/trial-balance", token, 401)
    r = await loans.get("/v1/ledger/trial-balance", headers=_bearer(token))
    assert (r.status_code, r.json()["code"]) == (401, "INVALID_TOKEN")


async def test_rotation_expiry_and_foreign_keys(system: tuple[System, Path]) -> None:
    s, credentials = system
    _, insurer = add_credential(credentials, "insurer-feed", "client", ("insurer",))
    loans = s["loans"]
    scopes = frozenset({"ledger:read"})
    # A token signed with the retiring key is still good; one from a key we never had is not.
    by_old, _ = TokenKeys([OLD[0]]).issue("insurer-feed", insurer.instance, scopes, 300)
    jwks = (await s["registry"].get("/.well-known/jwks.json")).json()
    assert {k["kid"] for k in jwks["keys"]} == {NEW[2], OLD[2]}
    assert all(k["kty"] == "OKP" and k["crv"] == "Ed25519" and "d" not in k for k in jwks["keys"])
    # The insurer holds no ledger:read, so the token's claim is cut to what the role allows.
    r = await loans.get("/v1/ledger/trial-balance", headers=_bearer(by_old))
    assert (r.status_code, r.json()["code"]) == (403, "FORBIDDEN")
    _, gov = add_credential(credentials, "gov-feed", "client", ("government",))
    by_old, _ = TokenKeys([OLD[0]]).issue("gov-feed", gov.instance, scopes, 300)
    await _answers(loans, "/v1/ledger/trial-balance", by_old, 200)  # once the store reread its file
    foreign, _ = TokenKeys([new_signing_key()[0]]).issue("gov-feed", gov.instance, scopes, 300)
    expired, _ = TokenKeys([NEW[0]]).issue("gov-feed", gov.instance, scopes, -120)
    tampered = by_old[:-4] + ("AAAA" if not by_old.endswith("AAAA") else "BBBB")
    # Another credential's instance (insurer-feed's): validly signed, but not gov-feed's token.
    misbound, _ = TokenKeys([NEW[0]]).issue("gov-feed", insurer.instance, scopes, 300)
    for bad in (foreign, expired, tampered, misbound, _unbound(NEW, "gov-feed", scopes)):
        r = await loans.get("/v1/ledger/trial-balance", headers=_bearer(bad))
        assert (r.status_code, r.json()["code"]) == (401, "INVALID_TOKEN"), r.text
    # A token from before tokens named their credential: refused, and the client told why.
    r = await loans.get("/v1/ledger/trial-balance", headers=_bearer(_unbound(NEW, "gov-feed", scopes)))
    assert "predates credential binding; request a new one" in r.json()["detail"]
    # After the rotation completes (OLD dropped), its tokens stop working.
    fresh = TokenKeys([NEW[0]]).issue("gov-feed", gov.instance, scopes, 60)[0]
    assert TokenKeys([NEW[0]]).verify(fresh).subject == "gov-feed"
    with pytest.raises(Exception, match="unknown key"):
        TokenKeys([NEW[0]]).verify(by_old)
    # Verify-only: a service holding just the public key accepts the token.
    assert TokenKeys([], [OLD[1]]).verify(by_old).scopes == scopes


async def test_bootstrap_token_is_refused_once_an_operator_credential_exists(system: tuple[System, Path]) -> None:
    s, credentials = system
    registry = s["registry"]
    assert (await registry.get("/v1/townships")).status_code == 200  # the System's bootstrap token
    collector, _ = add_credential(credentials, "collector-1", "api_key", ("collector",), village="410102001001")
    await _answers(registry, "/v1/townships", collector, 200)  # the witness that the store reread its file
    assert (await registry.get("/v1/townships")).status_code == 200, "a collector is no admin"
    key, _ = add_credential(credentials, "first-operator", "api_key", ("operator",))
    await _answers(registry, "/v1/townships", TOKEN, 401)
    r = await registry.get("/v1/townships", headers=_bearer(TOKEN))
    assert (r.status_code, r.json()["code"]) == (401, "INVALID_TOKEN")
    assert "bootstrap token is retired" in r.json()["detail"]
    assert (await registry.get("/v1/townships", headers=_bearer(key))).status_code == 200
    # Revoking every operator does not bring it back (issue 21): it is retired for good. The
    # recovery path is `vcredit keys new --role operator`, which needs the file, not a token.
    revoke_credential(credentials, "first-operator")
    await _answers(registry, "/v1/townships", key, 401)  # the witness that the store reread its file
    r = await registry.get("/v1/townships", headers=_bearer(TOKEN))
    assert r.status_code == 401, f"the bootstrap token came back to life: {r.status_code}"
    assert r.json()["code"] == "INVALID_TOKEN"
    assert "bootstrap token is retired" in r.json()["detail"]
    # A restarted service (a fresh credential store on the same file) refuses it too.
    restart_dir = s.infra.tmp / "restarted"
    restart_dir.mkdir()
    async with System(
        Infra("embedded", restart_dir, new_topic_prefix()), ["registry"], credentials_file=credentials
    ) as restarted:
        r = await restarted["registry"].get("/v1/townships", headers=_bearer(TOKEN))
        assert (r.status_code, r.json()["code"]) == (401, "INVALID_TOKEN"), r.text
        second, _ = add_credential(credentials, "second-operator", "api_key", ("operator",))
        await _answers(restarted["registry"], "/v1/townships", second, 200)


async def test_a_revoked_clients_token_stays_refused_when_its_name_is_given_to_a_new_client(
    system: tuple[System, Path],
) -> None:
    s, credentials = system
    registry, loans = s["registry"], s["loans"]
    form = {"grant_type": "client_credentials", "client_id": "hubin-bank-core"}
    first, _ = add_credential(credentials, "hubin-bank-core", "client", ("bank",))
    r = await _token(registry, **form, client_secret=first)
    assert r.status_code == 200, r.text
    stolen = r.json()["access_token"]
    assert (await loans.get("/v1/ledger/trial-balance", headers=_bearer(stolen))).status_code == 200

    revoke_credential(credentials, "hubin-bank-core")
    await _answers(loans, "/v1/ledger/trial-balance", stolen, 401)
    # The bank gets a new client under the same name (docs/operations.md's rotation, or a
    # re-issue after a leak): the leaked token was issued to the revoked one and stays dead.
    second, _ = add_credential(credentials, "hubin-bank-core", "client", ("bank",))

    for service in (registry, loans):  # the witness that each service's store reread the file

        async def issued(service: httpx.AsyncClient = service) -> bool:
            return (await _token(service, **form, client_secret=second)).status_code == 200

        await wait_until(issued, what="a token for the new hubin-bank-core")
    fresh = (await _token(registry, **form, client_secret=second)).json()["access_token"]
    assert (await loans.get("/v1/ledger/trial-balance", headers=_bearer(fresh))).status_code == 200
    for service, path in ((registry, "/v1/townships"), (loans, "/v1/ledger/trial-balance")):
        r = await service.get(path, headers=_bearer(stolen))
        assert r.status_code == 401, f"the revoked client's token came back to life on {path}: {r.status_code}"
        assert r.json()["code"] == "INVALID_TOKEN"
        assert "revoked or unknown" in r.json()["detail"]
    # The old secret gets no token either.
    assert (await _token(registry, **form, client_secret=first)).status_code == 401


def _unbound(key: tuple[str, str, str], subject: str, scopes: frozenset[str]) -> str:
    """A token as issued before tokens carried ``cid`` (the credential instance), signed with
    ``key`` (seed, public, kid): the claims of that release, nothing else."""
    now = int(time.time())
    claims = {"iss": "vcredit", "aud": "vcredit", "sub": subject, "iat": now, "nbf": now, "exp": now + 300}
    claims |= {"jti": "0123456789abcdef", "scope": " ".join(sorted(scopes))}
    private = Ed25519PrivateKey.from_private_bytes(base64.b64decode(key[0]))
    return jwt.encode(claims, private, algorithm="EdDSA", headers={"kid": key[2]})


async def _answers(client: httpx.AsyncClient, path: str, token: str, status: int) -> None:
    """Until ``token`` gets ``status`` on ``path``: a credential change takes effect when the
    store next rereads its file (CredentialStore.CHECK_SECONDS), later on a busy machine."""

    async def answered() -> bool:
        return (await client.get(path, headers=_bearer(token))).status_code == status

    await wait_until(answered, what=f"GET {path} to answer {status}")


def _vcredit(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "VCREDIT_DATA_DIR": str(tmp)}
    return subprocess.run(
        [sys.executable, "-c", "from vcredit.cli import main; main()", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_keys_command_adds_lists_and_revokes(tmp_path: Path) -> None:
    out = _vcredit(tmp_path, "keys", "client", "--name", "court-feed", "--role", "court")
    assert out.returncode == 0, out.stderr
    secret = next(line.split(": ", 1)[1] for line in out.stdout.splitlines() if line.startswith("client_secret"))
    stored = read_credentials(tmp_path / "credentials.json")
    assert [(c.name, c.kind, c.roles) for c in stored] == [("court-feed", "client", ("court",))]
    assert secret not in (tmp_path / "credentials.json").read_text()
    assert oct((tmp_path / "credentials.json").stat().st_mode & 0o777) == "0o600"

    refused = _vcredit(tmp_path, "keys", "new", "--name", "c2", "--role", "collector")
    assert refused.returncode != 0 and "bound to one village" in refused.stderr
    again = _vcredit(tmp_path, "keys", "new", "--name", "court-feed", "--role", "court")
    assert again.returncode != 0 and "exists" in again.stderr

    listed = _vcredit(tmp_path, "keys", "list")
    assert "court-feed\tclient\tcourt\tactive" in listed.stdout and secret not in listed.stdout
    assert _vcredit(tmp_path, "keys", "revoke", "--name", "court-feed").returncode == 0
    assert "revoked" in _vcredit(tmp_path, "keys", "list").stdout
    pair = _vcredit(tmp_path, "keys", "signing-key").stdout
    assert "kid " in pair and "VCREDIT_JWT_SIGNING_KEYS" in pair
