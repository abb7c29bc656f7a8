"""Keyed identifier hashing: the published test vectors of the persisted key format.

Format (format 4 of snapshots and event logs): ``d = BLAKE2b(type || 0x1f || value, key=secret,
digest_size=16)``, type and value UTF-8 encoded after normalisation; key = ``d[0:8]`` and check
tag = ``d[8:12]``, little-endian, a tag of 0 replaced by 1. The literal values below ARE the
persisted format (the README publishes the same ones): if one changes, every key stored by every
deployment changes with it. Never update them to make a test pass.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import pytest
import xxhash

from decisioner import hashing
from decisioner.errors import ConfigError
from decisioner.hashing import (
    DIGEST_BYTES,
    MAX_KEY_BYTES,
    MIN_KEY_BYTES,
    SEPARATOR,
    hash_identifier,
    hash_unit,
    identifier_key,
    resolve_key,
)

KEY = bytes(range(16))  # 000102...0f

#: (type, value, BLAKE2b-128 digest keyed with KEY, key, tag) - published test vectors
VECTORS = [
    ("email", "ada@example.com", "352974710085e82e0c04ec2a182ce075", 0x2EE8850071742935, 0x2AEC040C),
    ("cookie", "c-1", "46be94b86fd3fdb0960725a4f3e78dc3", 0xB0FDD36FB894BE46, 0xA4250796),
    ("phone", "+390612345678", "df1a1f5a19f4aec200e365bee21838af", 0xC2AEF4195A1F1ADF, 0xBE65E300),
    ("phone", "+12025550123", "800fddfcbe6b04b2b9e1890c981071e8", 0xB2046BBEFCDD0F80, 0x0C89E1B9),
    ("email", "zo\u00eb@ex\u00e4mple.com", "237346b306b8a92b5fb115af47f4e819", 0x2BA9B806B3467323, 0xAF15B15F),  # 2-byte
    ("user_id", "\u30e6\u30fc\u30b6\u30fc42", "6ef08f442e2931cb52ea881ad8018f52", 0xCB31292E448FF06E, 0x1A88EA52),  # 3
    ("crm_id", "\u03a9\u03bc\u03ad\u03b3\u03b1-7 \U0001f680", "084c2ae64b14445fe407e4890b076e15", 0x5F44144BE62A4C08,
     0x89E407E4),  # 4-byte UTF-8
]


def _reference(key: bytes, id_type: str, value: str) -> bytes:
    """Independent implementation straight from the format description: the whole digest."""
    return hashlib.blake2b(id_type.encode("utf-8") + b"\x1f" + value.encode("utf-8"), key=key, digest_size=16).digest()


@pytest.mark.parametrize(("id_type", "value", "digest", "key", "tag"), VECTORS)
def test_identifier_golden_vectors(id_type: str, value: str, digest: str, key: int, tag: int) -> None:
    assert _reference(KEY, id_type, value).hex() == digest
    assert int.from_bytes(bytes.fromhex(digest)[:8], "little") == key
    assert int.from_bytes(bytes.fromhex(digest)[8:12], "little") == tag
    assert identifier_key(KEY, id_type, value) == (key, tag)
    assert hash_identifier(KEY, id_type, value) == key


def test_separator_digest_and_key_length_are_part_of_the_format() -> None:
    assert SEPARATOR == b"\x1f"
    assert (MIN_KEY_BYTES, MAX_KEY_BYTES, DIGEST_BYTES) == (16, 64, 16)


def test_longest_key_vector() -> None:
    # a 64-byte secret (BLAKE2b's largest key) is used whole
    k, t = identifier_key(bytes(range(64)), "email", "ada@example.com")
    d = bytes.fromhex("dd42f6e7954c9df79d3dc82cc7648a30")
    assert (k, t) == (int.from_bytes(d[:8], "little"), int.from_bytes(d[8:12], "little"))


def test_a_zero_tag_becomes_one(monkeypatch: pytest.MonkeyPatch) -> None:
    class ZeroTag:
        def copy(self) -> ZeroTag:
            return self

        def update(self, data: bytes) -> None:
            pass

        def digest(self) -> bytes:
            return bytes([7] * 8 + [0] * 4 + [9] * 4)

    fake: Any = ZeroTag()
    monkeypatch.setattr(hashing, "_keyed", lambda secret: fake)
    assert identifier_key(KEY, "email", "ada@example.com") == (0x0707070707070707, 1)


def test_identifier_key_refuses_secrets_outside_16_to_64_bytes() -> None:
    for n in (0, 15, 65, 100):
        with pytest.raises(ConfigError, match="^" + re.escape(f"expected a secret of 16 to 64 bytes, got {n}")):
            identifier_key(bytes(n), "email", "ada@example.com")


def test_unit_hash_stays_xxh3() -> None:
    """Bucketing is in memory and pseudonymises nothing: xxh3_64(key || salt || 0x1f || unit)."""
    assert hash_unit(KEY, "hero-test", "person-9") == 3303462454066812638
    assert hash_unit(KEY, "hero-test", "person-9") == xxhash.xxh3_64_intdigest(KEY + b"hero-test\x1fperson-9")


def test_separator_prevents_type_value_ambiguity() -> None:
    # without the separator ("ab", "c") and ("a", "bc") would hash the same bytes
    assert identifier_key(KEY, "ab", "c") != identifier_key(KEY, "a", "bc")


def test_key_changes_every_hash() -> None:
    other = bytes(range(1, 17))
    for id_type, value, _, key, tag in VECTORS:
        k, t = identifier_key(other, id_type, value)
        assert k != key and t != tag


def test_a_secret_is_a_key_not_a_prefix() -> None:
    # the old xxh3_64(secret || type || 0x1f || value) hashed the same bytes for these two (a
    # 17-byte secret ending in "e" with type "mail"); BLAKE2b's key block keeps secret and data apart
    assert identifier_key(KEY + b"e", "mail", "x") != identifier_key(KEY, "email", "x")


def test_resolve_key_from_hex() -> None:
    assert resolve_key("000102030405060708090a0b0c0d0e0f", None) == KEY
    assert resolve_key("00" * 32, "IGNORED_WHEN_HEX_GIVEN") == bytes(32)


def test_resolve_key_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("T3_DECISIONER_KEY", "ab" * 16)
    assert resolve_key(None, "T3_DECISIONER_KEY") == b"\xab" * 16


def test_resolve_key_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("T3_DECISIONER_KEY", raising=False)
    msg = (
        "a hashing secret is required, got none - at `identity.hash_key` / `identity.hash_key_env` "
        "(set T3_DECISIONER_KEY to `python -c 'import secrets; print(secrets.token_hex(16))'`)"
    )
    with pytest.raises(ConfigError, match=re.escape(msg)):
        resolve_key(None, "T3_DECISIONER_KEY")
    default_msg = msg.replace("T3_DECISIONER_KEY", "DECISIONER_HASH_KEY")
    with pytest.raises(ConfigError, match=re.escape(default_msg)):
        resolve_key(None, None)


def test_resolve_key_not_hex() -> None:
    with pytest.raises(ConfigError, match=re.escape("expected a hex string, got 'not-hex-'... - at `identity.hash_key`")):
        resolve_key("not-hex-at-all", None)


def test_resolve_key_not_hex_in_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("T3_DECISIONER_KEY", "zz" * 16)
    msg = "expected a hex string, got 'zzzzzzzz'... - at environment variable `T3_DECISIONER_KEY`"
    with pytest.raises(ConfigError, match=re.escape(msg)):
        resolve_key(None, "T3_DECISIONER_KEY")


def test_resolve_key_too_short(monkeypatch: pytest.MonkeyPatch) -> None:
    msg = "expected a secret of 16 to 64 bytes, got 15 - at `identity.hash_key`"
    with pytest.raises(ConfigError, match="^" + re.escape(msg) + "$"):
        resolve_key("00" * 15, None)
    monkeypatch.setenv("T3_DECISIONER_KEY", "00" * 8)
    msg = "expected a secret of 16 to 64 bytes, got 8 - at environment variable `T3_DECISIONER_KEY`"
    with pytest.raises(ConfigError, match="^" + re.escape(msg) + "$"):
        resolve_key(None, "T3_DECISIONER_KEY")


def test_resolve_key_too_long_is_refused_not_shortened() -> None:
    assert resolve_key("ab" * 64, None) == b"\xab" * 64
    msg = (
        "expected a secret of 16 to 64 bytes, got 65 - at `identity.hash_key` "
        "(BLAKE2b keys are at most 64 bytes; 32 random bytes are plenty)"
    )
    with pytest.raises(ConfigError, match="^" + re.escape(msg) + "$"):
        resolve_key("ab" * 65, None)
