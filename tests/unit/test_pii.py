from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag

from shared.pii import PiiCipher, load_master_key

NUMBER = "11010519491231002X"


def test_round_trip_with_fresh_nonces_and_a_stable_lookup_hash() -> None:
    cipher = PiiCipher(os.urandom(32))
    a, b = cipher.encrypt(NUMBER), cipher.encrypt(NUMBER)
    assert a != b, "a fresh nonce per encryption"
    assert NUMBER not in a
    assert cipher.decrypt(a) == cipher.decrypt(b) == NUMBER
    assert cipher.lookup_hash(NUMBER) == cipher.lookup_hash(NUMBER) != cipher.lookup_hash("110105194912310029")


def test_other_keys_neither_decrypt_nor_match() -> None:
    one, other = PiiCipher(os.urandom(32)), PiiCipher(os.urandom(32))
    with pytest.raises(ValueError, match="encrypted with key"):
        other.decrypt(one.encrypt(NUMBER))
    assert one.lookup_hash(NUMBER) != other.lookup_hash(NUMBER)


def test_tampering_is_detected() -> None:
    cipher = PiiCipher(os.urandom(32))
    key_id, _, body = cipher.encrypt(NUMBER).partition(":")
    raw = bytearray(base64.b64decode(body))
    raw[-1] ^= 1
    with pytest.raises(InvalidTag):
        cipher.decrypt(f"{key_id}:{base64.b64encode(bytes(raw)).decode()}")


def test_embedded_mode_generates_one_private_key_and_reuses_it(tmp_path: Path) -> None:
    first = load_master_key(None, tmp_path)
    assert load_master_key(None, tmp_path) == first and len(first) == 32
    assert stat.S_IMODE((tmp_path / "pii.key").stat().st_mode) == 0o600
    configured = base64.b64encode(b"k" * 32).decode()
    assert load_master_key(configured, tmp_path) == b"k" * 32
    with pytest.raises(ValueError, match="32 bytes"):
        PiiCipher(b"short")
