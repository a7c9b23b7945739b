"""Personal identifiers at rest: AES-256-GCM for the number itself, a keyed HMAC for
finding it without decrypting (DOMAIN.md §1: never store or return the full number
where it is not needed).

Both keys are derived (HKDF) from one master key, ``VCREDIT_PII_KEY`` (base64, 32 bytes).
Embedded mode generates one into the data directory on first start; distributed
deployments set it from a secret.

Rotation (issue 9): the cipher is a ring of the current key and the retired ones
(``VCREDIT_PII_RETIRED_KEYS``). Ciphertexts carry the id of the key that sealed them, so
each is opened with its own key; new rows are sealed and hashed with the current key, and
a lookup tries the identifier's hash under every key, so rows written before a rotation
are still found. ``vcredit pii rotate`` (vcredit/pii_rotation.py) rewrites old rows under
the current key; once it reports none left, the retired key can be removed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from collections.abc import Sequence
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from shared.settings import CommonSettings, generated_secret


def _derive(master: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"vcredit-pii-" + purpose).derive(master)


# Ciphertexts start with the key id; pii_rotation finds rows per key by this prefix.
KEY_ID_LENGTH = 8


def key_id_of(master_key: bytes) -> str:
    return hashlib.sha256(master_key).hexdigest()[:KEY_ID_LENGTH]


class _Key:
    def __init__(self, master_key: bytes) -> None:
        if len(master_key) != 32:
            raise ValueError("a PII key must be 32 bytes, base64-encoded")
        self.key_id = key_id_of(master_key)
        self.aead = AESGCM(_derive(master_key, b"encrypt"))
        self.hmac_key = _derive(master_key, b"lookup")

    def lookup_hash(self, identifier: str) -> str:
        return hmac.new(self.hmac_key, identifier.encode(), hashlib.sha256).hexdigest()


class PiiCipher:
    """Seals and hashes with the current key; opens with whichever configured key sealed."""

    def __init__(self, master_key: bytes, retired: Sequence[bytes] = ()) -> None:
        current = _Key(master_key)
        self.key_id = current.key_id
        self._current = current
        self._keys: dict[str, _Key] = {current.key_id: current}
        for raw in retired:
            key = _Key(raw)
            self._keys.setdefault(key.key_id, key)  # the current key listed as retired too stays current

    @property
    def key_ids(self) -> tuple[str, ...]:
        """The current key's id first, then the retired ones'."""
        return tuple(self._keys)

    def encrypt(self, plaintext: str) -> str:
        nonce = os.urandom(12)
        sealed = self._current.aead.encrypt(nonce, plaintext.encode(), self.key_id.encode())
        return f"{self.key_id}:{base64.b64encode(nonce + sealed).decode()}"

    def decrypt(self, token: str) -> str:
        key_id, _, body = token.partition(":")
        key = self._keys.get(key_id)
        if key is None:
            raise ValueError(
                f"encrypted with key {key_id}, which is not configured (keys: {', '.join(self._keys)}); "
                "was a retired key removed before `vcredit pii rotate` finished?"
            )
        raw = base64.b64decode(body)
        return key.aead.decrypt(raw[:12], raw[12:], key_id.encode()).decode()

    def is_current(self, token: str) -> bool:
        return token.startswith(self.key_id + ":")

    def lookup_hash(self, identifier: str) -> str:
        """Stable keyed hash under the current key: equal identifiers match, and without the
        key the ~10^17 possible ID numbers cannot be enumerated against it."""
        return self._current.lookup_hash(identifier)

    def lookup_hashes(self, identifier: str) -> tuple[str, ...]:
        """The identifier's hash under every configured key, the current key's first: a row
        not yet rewritten by ``vcredit pii rotate`` carries a retired key's hash."""
        return tuple(key.lookup_hash(identifier) for key in self._keys.values())


def decode_key(encoded: str, what: str) -> bytes:
    try:
        raw = base64.b64decode(encoded, validate=True)
    except binascii.Error:
        raise ValueError(f"{what} is not base64") from None
    if len(raw) != 32:
        raise ValueError(f"{what} must be 32 bytes, base64-encoded (this one is {len(raw)} bytes)")
    return raw


def new_master_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def load_master_key(configured: str | None, data_dir: Path) -> bytes:
    if configured:
        return decode_key(configured, "VCREDIT_PII_KEY")
    path = data_dir / "pii.key"
    return decode_key(generated_secret(path, new_master_key), str(path))


def load_cipher(common: CommonSettings) -> PiiCipher:
    retired = [decode_key(k, f"VCREDIT_PII_RETIRED_KEYS[{i}]") for i, k in enumerate(common.pii_retired_keys)]
    return PiiCipher(load_master_key(common.pii_key, common.data_dir), retired)
