"""Who is calling: principals, roles and API keys.

Keys are configured as SHA-256 hashes (``VCREDIT_API_KEYS``), so the configuration never
holds a usable secret; ``vcredit keys new`` makes a key and prints its entry. The bootstrap
token holds every role (API.md). OAuth2/JWT for machine clients comes with issue 9.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Role = Literal["operator", "government", "bank", "insurer", "court", "police", "collector", "public"]
ROLES: tuple[Role, ...] = ("operator", "government", "bank", "insurer", "court", "police", "collector", "public")


class ApiKey(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(min_length=1)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    roles: tuple[Role, ...] = Field(min_length=1)
    # A collector works for one village and sees and edits only that village.
    village: str | None = None


@dataclass(frozen=True)
class Principal:
    name: str
    roles: frozenset[str]
    village: str | None = None

    def has(self, role: str) -> bool:
        return role in self.roles


BOOTSTRAP = Principal("bootstrap", frozenset(ROLES))


def hash_key(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_key(name: str, roles: tuple[Role, ...], village: str | None = None) -> tuple[str, ApiKey]:
    token = "vck_" + secrets.token_urlsafe(32)
    return token, ApiKey(name=name, sha256=hash_key(token), roles=roles, village=village)


class KeyRing:
    def __init__(self, bootstrap_token: str, keys: list[ApiKey]) -> None:
        self._bootstrap_hash = hash_key(bootstrap_token)
        self._by_hash = {k.sha256: k for k in keys}

    def resolve(self, token: str) -> Principal | None:
        # Comparing hashes of the presented token: equal-length digests, and a lookup
        # that leaks nothing about the configured secrets.
        digest = hash_key(token)
        if secrets.compare_digest(digest, self._bootstrap_hash):
            return BOOTSTRAP
        key = self._by_hash.get(digest)
        if key is None:
            return None
        return Principal(key.name, frozenset(key.roles), key.village)
