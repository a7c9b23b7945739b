from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag

from shared.pii import PiiCipher, key_id_of, load_cipher, load_master_key
from shared.settings import CommonSettings

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


def test_a_ring_seals_with_the_current_key_and_opens_with_the_one_that_sealed() -> None:
    a, b = os.urandom(32), os.urandom(32)
    old, ring = PiiCipher(a), PiiCipher(b, retired=[a])
    sealed_by_a = old.encrypt(NUMBER)
    assert ring.decrypt(sealed_by_a) == NUMBER
    assert not ring.is_current(sealed_by_a)
    fresh = ring.encrypt(NUMBER)
    assert fresh.startswith(key_id_of(b) + ":") and ring.is_current(fresh)
    assert ring.key_ids == (key_id_of(b), key_id_of(a))
    with pytest.raises(ValueError, match="not configured"):
        old.decrypt(fresh)
    assert PiiCipher(b).decrypt(fresh) == NUMBER, "after the retired key is dropped"
    with pytest.raises(ValueError, match=f"encrypted with key {key_id_of(a)}"):
        PiiCipher(b).decrypt(sealed_by_a)


def test_a_ring_hashes_under_every_key_the_current_first() -> None:
    a, b = os.urandom(32), os.urandom(32)
    ring = PiiCipher(b, retired=[a])
    assert ring.lookup_hash(NUMBER) == PiiCipher(b).lookup_hash(NUMBER)
    assert ring.lookup_hashes(NUMBER) == (PiiCipher(b).lookup_hash(NUMBER), PiiCipher(a).lookup_hash(NUMBER))
    # The current key listed among the retired ones too is still one key, still current.
    assert PiiCipher(b, retired=[b, a]).key_ids == ring.key_ids


def encode(key: bytes) -> str:
    return base64.b64encode(key).decode()


def test_keys_from_settings(tmp_path: Path) -> None:
    a, b = os.urandom(32), os.urandom(32)
    common = CommonSettings(data_dir=tmp_path, pii_key=encode(b), pii_retired_keys=[encode(a)])
    ring = load_cipher(common)
    assert ring.key_ids == (key_id_of(b), key_id_of(a))
    assert not (tmp_path / "pii.key").exists(), "a configured key needs no generated one"
    with pytest.raises(ValueError, match=r"VCREDIT_PII_RETIRED_KEYS\[0\] must be 32 bytes"):
        load_cipher(common.model_copy(update={"pii_retired_keys": [encode(b"short")]}))
    with pytest.raises(ValueError, match="VCREDIT_PII_KEY is not base64"):
        load_cipher(common.model_copy(update={"pii_key": "not base64!"}))
    # Embedded mode: the generated pii.key is the current key, an old one can be retired.
    embedded = load_cipher(CommonSettings(data_dir=tmp_path, pii_retired_keys=[encode(a)]))
    assert embedded.key_ids == (key_id_of(load_master_key(None, tmp_path)), key_id_of(a))


def test_settings_read_the_retired_keys_as_a_json_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VCREDIT_PII_RETIRED_KEYS", '["a2V5LW9uZQ==", "a2V5LXR3bw=="]')
    assert CommonSettings().pii_retired_keys == ["a2V5LW9uZQ==", "a2V5LXR3bw=="]
