"""Personal identifiers at rest: AES-256-GCM for the number itself, a keyed HMAC for
finding it without decrypting (DOMAIN.md §1: never store or return the full number
where it is not needed).

Both keys are derived (HKDF) from one master key, ``VCREDIT_PII_KEY`` (base64, 32 bytes).
Embedded mode generates one into the data directory on first start; distributed
deployments set it from a secret. Ciphertexts carry the key id, so a rotated key can
decrypt old rows while new rows use the new key (rotation procedure: issue 9).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


def _derive(master: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"vcredit-pii-" + purpose).derive(master)


class PiiCipher:
    def __init__(self, master_key: bytes) -> None:
        if len(master_key) != 32:
            raise ValueError("VCREDIT_PII_KEY must be 32 bytes, base64-encoded")
        self.key_id = hashlib.sha256(master_key).hexdigest()[:8]
        self._aead = AESGCM(_derive(master_key, b"encrypt"))
        self._hmac_key = _derive(master_key, b"lookup")

    def encrypt(self, plaintext: str) -> str:
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), self.key_id.encode())
        return f"{self.key_id}:{base64.b64encode(nonce + sealed).decode()}"

    def decrypt(self, token: str) -> str:
        key_id, _, body = token.partition(":")
        if key_id != self.key_id:
            raise ValueError(f"encrypted with key {key_id}, not the configured key {self.key_id}")
        raw = base64.b64decode(body)
        return self._aead.decrypt(raw[:12], raw[12:], key_id.encode()).decode()

    def lookup_hash(self, identifier: str) -> str:
        """Stable keyed hash: equal identifiers match, and without the key the ~10^17
        possible ID numbers cannot be enumerated against it."""
        return hmac.new(self._hmac_key, identifier.encode(), hashlib.sha256).hexdigest()


def load_master_key(configured: str | None, data_dir: Path) -> bytes:
    if configured:
        return base64.b64decode(configured)
    path = data_dir / "pii.key"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(base64.b64encode(os.urandom(32)).decode())
    return base64.b64decode(path.read_text().strip())
