"""Short-lived JWTs for OAuth2 client-credentials clients (RFC 6749 §4.4, RFC 7519).

Signed with Ed25519 (EdDSA): a service that only verifies needs public keys alone. Keys
rotate without downtime: the first signing key signs; every other signing key and every
extra verification key is still accepted, matched by ``kid``.

Rotation: (1) add the new public key to ``VCREDIT_JWT_VERIFICATION_KEYS`` everywhere;
(2) put the new private key first in ``VCREDIT_JWT_SIGNING_KEYS``; (3) after one token
lifetime, drop the old key from both. ``vcredit keys signing-key`` makes a key pair.

A token names its client twice: ``sub``, the client's name, and ``cid``, the one credential
it was issued to (``Credential.instance``). A name can be given to a new client once the old
one is revoked; ``cid`` keeps the old client's tokens from working for the new one.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from shared.settings import generated_secret

ISSUER = "vcredit"
AUDIENCE = "vcredit"
ALGORITHM = "EdDSA"
LEEWAY_SECONDS = 30


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def key_id(public: Ed25519PublicKey) -> str:
    return hashlib.sha256(_raw_public(public)).hexdigest()[:16]


def new_signing_key() -> tuple[str, str, str]:
    """A fresh key pair: (private seed, public key, kid), base64-encoded."""
    private = Ed25519PrivateKey.generate()
    seed = private.private_bytes_raw()
    public = private.public_key()
    return base64.b64encode(seed).decode(), base64.b64encode(_raw_public(public)).decode(), key_id(public)


def load_signing_keys(configured: list[str], data_dir: Path) -> list[str]:
    """The configured keys, or in embedded mode one generated into the data directory."""
    if configured:
        return configured
    return [generated_secret(data_dir / "jwt-signing.key", lambda: new_signing_key()[0])]


class InvalidToken(Exception):
    pass


@dataclass(frozen=True)
class Claims:
    subject: str
    # The credential instance the token was issued to; None in a token from before it was
    # claimed (issue 21), which the authenticator refuses.
    credential: str | None
    scopes: frozenset[str]
    expires_at: int


class TokenKeys:
    def __init__(self, signing: list[str], verification: list[str] | None = None) -> None:
        privates = [Ed25519PrivateKey.from_private_bytes(base64.b64decode(s)) for s in signing]
        publics = [p.public_key() for p in privates] + [
            Ed25519PublicKey.from_public_bytes(base64.b64decode(v)) for v in verification or []
        ]
        self._signer = privates[0] if privates else None
        self._signer_kid = key_id(privates[0].public_key()) if privates else None
        self._verifiers = {key_id(p): p for p in publics}

    def issue(self, subject: str, credential: str, scopes: frozenset[str], ttl_seconds: int) -> tuple[str, int]:
        if self._signer is None:
            raise RuntimeError("no signing key configured (VCREDIT_JWT_SIGNING_KEYS)")
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": subject,
            "cid": credential,
            "iat": now,
            "nbf": now,
            "exp": now + ttl_seconds,
            "jti": secrets.token_hex(8),
            "scope": " ".join(sorted(scopes)),
        }
        token = jwt.encode(claims, self._signer, algorithm=ALGORITHM, headers={"kid": self._signer_kid})
        return token, ttl_seconds

    def verify(self, token: str) -> Claims:
        try:
            kid = jwt.get_unverified_header(token).get("kid")
            key = self._verifiers.get(kid) if isinstance(kid, str) else None
            if key is None:
                raise InvalidToken("signed with an unknown key")
            claims = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                issuer=ISSUER,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iat", "sub", "iss", "aud"]},
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken(str(exc)) from None
        scope = claims.get("scope", "")
        scopes = frozenset(scope.split()) if isinstance(scope, str) else frozenset()
        credential = claims.get("cid")
        return Claims(str(claims["sub"]), credential if isinstance(credential, str) else None, scopes, claims["exp"])

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        """The public keys as a JSON Web Key Set (RFC 8037 OKP keys)."""
        return {
            "keys": [
                {
                    "kty": "OKP",
                    "crv": "Ed25519",
                    "alg": ALGORITHM,
                    "use": "sig",
                    "kid": kid,
                    "x": base64.urlsafe_b64encode(_raw_public(key)).rstrip(b"=").decode(),
                }
                for kid, key in self._verifiers.items()
            ]
        }
