"""Who is calling: roles, scopes, credentials and the principals they resolve to.

- Every endpoint declares the scope it needs (``shared.web.scope``); a role is a set of
  scopes (``ROLE_SCOPES``), so the table below is the whole access policy in one place.
- Credentials live in one JSON file (``VCREDIT_CREDENTIALS_FILE``) that holds only SHA-256
  hashes of the secrets; ``vcredit keys`` adds, lists and revokes them. Every service reads
  the same file (a mounted Secret in Kubernetes, the data directory in embedded mode) and
  picks up changes within a second, so a revoked key stops working everywhere.
- Two kinds of credential: an API key is presented as the bearer token itself; an OAuth2
  client exchanges its id and secret for a short-lived JWT (``shared.tokens``), bound to
  the credential it was issued to (``Credential.instance``), not merely to its name: a new
  client given a revoked client's name does not revive the old client's tokens.
- The bootstrap token holds every role, for first setup only: retired for good once an
  operator credential has been created, even if every operator is later revoked. The record
  of that is the file itself: revoking stamps a credential, never deletes it.

Over 400 lines on purpose: the role and scope tables, about 150 lines of data, are the whole
access policy and read best beside the principals they produce. The credentials file
(``CredentialStore`` and its editing functions) is the seam to split at if the module grows.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter, model_validator

from shared.tokens import InvalidToken, TokenKeys

log = logging.getLogger(__name__)

Role = Literal[
    "operator", "monitoring", "government", "bank", "insurer", "court", "police", "collector", "subject", "public"
]
ROLES: tuple[Role, ...] = (
    "operator",
    "monitoring",
    "government",
    "bank",
    "insurer",
    "court",
    "police",
    "collector",
    "subject",
    "public",
)

# What each scope lets a caller do; shown in every service's OpenAPI security scheme.
SCOPES: dict[str, str] = {
    "hierarchy:read": "Read townships, villages and communities",
    "hierarchy:write": "Register and rename townships, villages and communities",
    "subjects:read": "Read households and businesses with their credit facts (audited)",
    "subjects:write": "Register households and businesses, import collection sheets",
    "facts:write": "State credit facts about a household or business, as the role's source",
    "objections:read": "Read objections",
    "objections:write": "Raise an objection to a fact or a rating",
    "objections:decide": "Decide objections",
    "notices:object": "Object to a rating during its public notice (anyone may, 004 annex 2 step 4)",
    "scorecard:evaluate": "Evaluate the scorecard on a profile",
    "ratings:read": "Read a household's or business's rating (audited)",
    "ratings:reject": "Record the bank's rejection of a rating",
    "notices:read": "Read published rating notices (公示)",
    "calendar:read": "Read the business date",
    "lending:read": "Read credit lines and loans (audited)",
    "lending:write": "Open credit lines, lend, take repayments, write off",
    "ledger:read": "Read the ledger's trial balance",
    "cob:run": "Run close of business",
    "risk:read": "Read NPL ratios, freezes, halts, decisions and indicators (aggregates)",
    "risk:override": "Freeze or unfreeze a village by hand",
    "losses:read": "Read losses, claims and the mutual guarantee fund",
    "claims:settle": "Settle a party's share of a loss",
    "fund:read": "Read the risk compensation fund",
    "fund:write": "Top up the risk compensation fund",
    "titles:read": "Read credit titles (信用村/乡镇/社区)",
    "titles:write": "Evaluate titles and assess communities",
    "subscriptions:manage": "Manage webhook subscriptions and deliveries",
    "events:read": "Read the live event stream",
    "bulletins:read": "Read published bulletins, notices and dashboard aggregates",
    "audit:read": "List who queried a subject's credit data",
    "metrics:read": "Scrape the service's Prometheus metrics",
    "lists:read": "Read the published red and black lists and credit repair decisions (masked)",
    "lists:propose": "Propose a black-list entry for malicious debt evasion, with evidence",
    "lists:decide": "Approve black-list proposals, evaluate the red list, review and decide credit repairs",
    "repairs:apply": "Apply for credit repair of a black-list entry (a subject for itself)",
    "settlement:read": "Read subsidy claims, claim batches, reconciliation files and fund statements",
    "subsidy:claim": "File the bank's interest subsidy (贴息) claims",
    "subsidy:review": "Review subsidy claims (approve, approve part, return) and record their payment",
    "claims:batch": "File a month's batch of claims on the insurer",
    "claims:decide": "Accept or dispute the lines of a claim batch (the insurer)",
    "reconciliation:submit": "Post the bank's own totals for a business date and resolve differences",
    "periods:close": "Close an accounting month (trial balance snapshot)",
    "ledger:correct": "Post a correcting entry in the open period",
}

_PUBLISHED = frozenset(
    {
        "hierarchy:read",
        "notices:read",
        "notices:object",
        "calendar:read",
        "risk:read",
        "titles:read",
        "bulletins:read",
        "lists:read",
    }
)
_SUBJECT_DATA = frozenset({"subjects:read", "ratings:read", "objections:read"})

ROLE_SCOPES: dict[Role, frozenset[str]] = {
    # The public sees only what is published: notices and aggregates.
    "public": _PUBLISHED,
    # The operator runs the system, but the programme's decisions stay with their owners:
    # freezing a village, funding and titles are the government's (API.md), declining a rating
    # the bank's (004 annex 2 step 5).
    # Listing, delisting and repair are the government's and the bank's; applying, the subject's.
    "operator": frozenset(SCOPES)
    - {
        "risk:override",
        "fund:write",
        "titles:write",
        "ratings:reject",
        "lists:propose",
        "lists:decide",
        "repairs:apply",
        "subsidy:claim",
        "subsidy:review",
        "claims:batch",
        "claims:decide",
        "reconciliation:submit",
        "ledger:correct",
    },
    # Prometheus: the metrics and nothing else, so its key in a scrape config reads no credit data.
    "monitoring": frozenset({"metrics:read"}),
    "government": _PUBLISHED
    | _SUBJECT_DATA
    | frozenset(
        {
            "hierarchy:write",
            "subjects:write",
            "facts:write",
            "objections:write",
            "objections:decide",
            "scorecard:evaluate",
            "lending:read",
            "ledger:read",
            "risk:override",
            "losses:read",
            "claims:settle",
            "fund:read",
            "fund:write",
            "titles:write",
            "subscriptions:manage",
            "events:read",
            "audit:read",
            "lists:decide",
            "repairs:apply",
            "settlement:read",
            "subsidy:review",
            "claims:batch",
        }
    ),
    "bank": _PUBLISHED
    | _SUBJECT_DATA
    | frozenset(
        {
            "facts:write",
            "scorecard:evaluate",
            "ratings:reject",
            "lending:read",
            "lending:write",
            "ledger:read",
            "losses:read",
            "claims:settle",
            "fund:read",
            "events:read",
            "lists:propose",
            "settlement:read",
            "subsidy:claim",
            "claims:batch",
            "reconciliation:submit",
            "periods:close",
            "ledger:correct",
        }
    ),
    "insurer": _PUBLISHED
    | _SUBJECT_DATA
    | frozenset(
        {"facts:write", "losses:read", "claims:settle", "claims:decide", "fund:read", "events:read", "settlement:read"}
    ),
    # Courts and the police state their own facts and may read the subjects they concern.
    "court": _PUBLISHED | frozenset({"subjects:read", "facts:write", "objections:read"}),
    "police": _PUBLISHED | frozenset({"subjects:read", "facts:write", "objections:read"}),
    # A collector (信息采集员) works for one village: the endpoints check the village.
    "collector": _PUBLISHED
    | _SUBJECT_DATA
    | frozenset({"subjects:write", "facts:write", "objections:write", "objections:decide", "scorecard:evaluate"}),
    # A household reading its own file (征信业管理条例 §17): the endpoints check the household.
    "subject": _PUBLISHED
    | _SUBJECT_DATA
    | frozenset({"objections:write", "lending:read", "audit:read", "repairs:apply"}),
}


# One line per role on what it may do, for `vcredit keys --help`; ROLE_SCOPES above is the policy.
ROLE_SUMMARIES: dict[Role, str] = {
    "operator": "runs the system, but decides nothing of the programme's; the first retires the bootstrap token",
    "monitoring": "scrapes /metrics and nothing else (Prometheus)",
    "government": "registers, states facts, decides objections and lists, freezes by hand, funds, titles",
    "bank": "reads subjects and ratings, rejects ratings, lends and collects, settles losses, proposes black list",
    "insurer": "reads subjects and ratings, states facts, reads losses and the fund, settles its share",
    "court": "states court facts (enforcement), reads the subjects and objections they concern",
    "police": "states police facts (vice records), reads the subjects and objections they concern",
    "collector": "one village (--village): registers and imports households, states facts, objections",
    "subject": "one household (--household): reads its own file and who queried it, objects, asks repair",
    "public": "reads what is published (notices, aggregates, titles, lists) and objects to a notice",
}


def scopes_of(roles: frozenset[str] | tuple[str, ...]) -> frozenset[str]:
    out: frozenset[str] = frozenset()
    for role in roles:
        out |= ROLE_SCOPES.get(role, frozenset())  # type: ignore[call-overload]
    return out


@dataclass(frozen=True)
class Principal:
    name: str
    roles: frozenset[str]
    scopes: frozenset[str] = field(default_factory=frozenset)
    # A collector is bound to its village, a subject to its household.
    village: str | None = None
    household: str | None = None

    def has(self, role: str) -> bool:
        return role in self.roles

    def may(self, scope: str) -> bool:
        return scope in self.scopes


def acting_role(principal: Principal, scope: str) -> str | None:
    """The role a principal acts in when it uses ``scope``: the first of its roles, in
    ``ROLES`` order, that grants it (a decision records its role beside its name)."""
    return next((r for r in ROLES if principal.has(r) and scope in ROLE_SCOPES[r]), None)


BOOTSTRAP = Principal("bootstrap", frozenset(ROLES), frozenset(SCOPES))


def hash_secret(token: str) -> str:
    # The secrets are 256 random bits, so a fast hash is enough: nothing to brute-force.
    return hashlib.sha256(token.encode()).hexdigest()


class Credential(BaseModel):
    """One API key or OAuth2 client, as stored: never the secret, only its hash."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    kind: Literal["api_key", "client"]
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    roles: tuple[Role, ...] = Field(min_length=1)
    village: str | None = None
    household: str | None = None
    created_at: AwareDatetime
    revoked_at: AwareDatetime | None = None

    @model_validator(mode="after")
    def _bound(self) -> Credential:
        if "collector" in self.roles and not self.village:
            raise ValueError("a collector is bound to one village")
        if "subject" in self.roles and not self.household:
            raise ValueError("a subject is bound to one household")
        return self

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    @property
    def instance(self) -> str:
        """This credential, as distinct from any other ever given its name: what an access
        token is bound to (its ``cid`` claim).

        Derived from the hash of its secret, which is new for every credential (256 random
        bits), rather than stored: entries written before there was an instance id have one
        too, every service derives the same one without writing the file (a read-only Secret
        in Kubernetes), and the file keeps the format the previous release reads
        (``extra="forbid"``), so a mixed-version rollout still sees every revocation. Hashed
        again, under a label of its own, so the token does not carry the stored hash itself."""
        return hashlib.sha256(b"vcredit credential instance\0" + self.sha256.encode()).hexdigest()[:32]

    def principal(self, scopes: frozenset[str] | None = None) -> Principal:
        allowed = scopes_of(self.roles)
        return Principal(
            self.name,
            frozenset(self.roles),
            allowed if scopes is None else allowed & scopes,
            self.village,
            self.household,
        )


_CREDENTIALS = TypeAdapter(list[Credential])


def retires_bootstrap(credentials: list[Credential]) -> bool:
    """Whether an operator credential was ever created: revoked ones count, because the
    bootstrap token is for first setup only, and revoking every operator must not reopen it.
    After that, the way in is ``vcredit keys new --role operator``, which needs write access
    to the credentials file, not a token."""
    return any("operator" in c.roles for c in credentials)


def new_secret(kind: Literal["api_key", "client"]) -> str:
    return ("vck_" if kind == "api_key" else "vcs_") + secrets.token_urlsafe(32)


class CredentialStore:
    """The credentials file, re-read when it changes (checked at most once a second, and at
    once before a key or client it does not know is refused: one made a moment ago with
    ``vcredit keys``, then used at once as the README does, must not get a 401). Revocations
    take effect within the second."""

    CHECK_SECONDS = 1.0

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int] | None = None
        self._checked = 0.0
        self._api_keys: dict[str, Principal] = {}
        self._by_name: dict[str, Credential] = {}
        # Latched: once this process has seen the bootstrap token retired, a file that goes
        # missing or loses its revoked entries does not bring it back.
        self._bootstrap_retired = False
        # The file exists but cannot be read: the bootstrap token is refused meanwhile
        # (fail closed), whatever the last good read said.
        self._unreadable = False

    def _refresh(self, *, now_or_never: bool = False) -> None:
        now = time.monotonic()
        if not now_or_never and now - self._checked < self.CHECK_SECONDS and self._checked:
            return
        self._checked = now
        try:
            st = self.path.stat()
        except FileNotFoundError:
            self._stamp, self._api_keys, self._by_name, self._unreadable = None, {}, {}, False
            return
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp == self._stamp:
            return
        try:
            items = read_credentials(self.path)
        except (OSError, ValueError) as exc:
            # Keep the last good set: a half-edited file must not lock everyone out.
            log.error("credentials file %s unreadable, keeping the previous set: %s", self.path, exc)
            self._unreadable = True
            return
        self._stamp, self._unreadable = stamp, False
        active = [c for c in items if c.active]
        # Built once per change of the file, not per request.
        self._api_keys = {c.sha256: c.principal() for c in active if c.kind == "api_key"}
        self._by_name = {c.name: c for c in active}
        self._bootstrap_retired = self._bootstrap_retired or retires_bootstrap(items)

    def api_key(self, digest: str) -> Principal | None:
        self._refresh()
        if digest not in self._api_keys:
            self._refresh(now_or_never=True)
        return self._api_keys.get(digest)

    def active(self, name: str) -> Credential | None:
        self._refresh()
        if name not in self._by_name:
            self._refresh(now_or_never=True)
        return self._by_name.get(name)

    def bootstrap_retired(self) -> bool:
        self._refresh()
        return self._bootstrap_retired or self._unreadable


def read_credentials(path: Path) -> list[Credential]:
    if not path.exists():
        return []
    raw = json.loads(path.read_text() or "[]")
    return _CREDENTIALS.validate_python(raw)


@contextlib.contextmanager
def editing_credentials(path: Path) -> Iterator[list[Credential]]:
    """Read-modify-write of the credentials file under an exclusive lock, replaced atomically
    so a service never reads half a file."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    # Owner-only like the file it guards (shared.settings.PRIVATE_FILE_MODE), also one an
    # earlier version made wider.
    fd = os.open(path.with_suffix(path.suffix + ".lock"), os.O_WRONLY | os.O_CREAT, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        items = read_credentials(path)
        yield items
        tmp = path.with_suffix(path.suffix + f".{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(_CREDENTIALS.dump_json(items, indent=2, exclude_none=True).decode())
        os.replace(tmp, path)


def add_credential(
    path: Path,
    name: str,
    kind: Literal["api_key", "client"],
    roles: tuple[Role, ...],
    village: str | None = None,
    household: str | None = None,
) -> tuple[str, Credential]:
    """Create a credential; returns the secret (shown once, stored nowhere) and the entry."""
    secret = new_secret(kind)
    credential = Credential(
        name=name,
        kind=kind,
        sha256=hash_secret(secret),
        roles=roles,
        village=village,
        household=household,
        created_at=datetime.now(UTC),
    )
    with editing_credentials(path) as items:
        if any(c.name == name and c.active for c in items):
            raise ValueError(f"an active credential named {name} exists; revoke it first")
        items.append(credential)
    return secret, credential


def revoke_credential(path: Path, name: str) -> Credential:
    with editing_credentials(path) as items:
        for i, c in enumerate(items):
            if c.name == name and c.active:
                items[i] = c.model_copy(update={"revoked_at": datetime.now(UTC)})
                return items[i]
    raise ValueError(f"no active credential named {name}")


class Unauthenticated(Exception):
    """The token identifies nobody (the message says why, never echoing the token)."""


class Authenticator:
    def __init__(self, bootstrap_token: str, store: CredentialStore, keys: TokenKeys) -> None:
        self._bootstrap_hash = hash_secret(bootstrap_token)
        self.store = store
        self.keys = keys

    def resolve(self, token: str) -> Principal:
        if token.count(".") == 2:
            return self._from_jwt(token)
        digest = hash_secret(token)
        # Comparing digests: equal length, and nothing learnt about the configured secret.
        if secrets.compare_digest(digest, self._bootstrap_hash):
            if self.store.bootstrap_retired():
                raise Unauthenticated(
                    "The bootstrap token is retired: an operator credential has been created; use an operator's key."
                )
            return BOOTSTRAP
        principal = self.store.api_key(digest)
        if principal is None:
            raise Unauthenticated("The bearer token is not valid.")
        return principal

    def _from_jwt(self, token: str) -> Principal:
        try:
            claims = self.keys.verify(token)
        except InvalidToken as exc:
            raise Unauthenticated(f"The access token is not valid: {exc}.") from None
        if claims.credential is None:
            # Issued before tokens named their credential: it cannot show which client of its
            # name it was issued to, and lives at most VCREDIT_JWT_TTL_SECONDS (<= 1 hour).
            raise Unauthenticated("The access token predates credential binding; request a new one.")
        # Checked on every request, so revoking a client ends its tokens at once; the instance,
        # so a new client given the name does not revive them.
        credential = self.store.active(claims.subject)
        if credential is None or credential.kind != "client" or credential.instance != claims.credential:
            raise Unauthenticated("The access token's client is revoked or unknown.")
        return credential.principal(claims.scopes)

    def issue(
        self, client_id: str, client_secret: str, requested: frozenset[str] | None, ttl: int
    ) -> tuple[str, int, Principal]:
        credential = self.store.active(client_id)
        if (
            credential is None
            or credential.kind != "client"
            or not secrets.compare_digest(credential.sha256, hash_secret(client_secret))
        ):
            raise Unauthenticated("Unknown client or wrong secret.")
        principal = credential.principal(requested)
        token, expires_in = self.keys.issue(credential.name, credential.instance, principal.scopes, ttl)
        return token, expires_in, principal
