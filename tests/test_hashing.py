"""Keyed identifier hashing: the published test vectors of the persisted key format.

Format: ``xxh3_64(key || type || 0x1f || value)``, seed 0, type and value UTF-8 encoded after
normalisation. The literal integers below ARE the persisted format: if one changes, every key
stored by every deployment changes with it. Never update them to make a test pass.
"""

from __future__ import annotations

import re

import pytest
import xxhash

from decisioner.errors import ConfigError
from decisioner.hashing import MIN_KEY_BYTES, SEPARATOR, hash_identifier, hash_unit, resolve_key

KEY = bytes(range(16))  # 000102...0f

#: (type, value, xxh3_64 of KEY + type + 0x1f + value) - published test vectors
VECTORS = [
    ("email", "ada@example.com", 18053878612524674777),
    ("cookie", "c-1", 7615603204735034402),
    ("phone", "+15551234567", 4517191661064795493),
    ("email", "zo\u00eb@ex\u00e4mple.com", 17476422816027320241),  # NFC, 2-byte UTF-8
    ("user_id", "\u30e6\u30fc\u30b6\u30fc42", 4532276203034539865),  # 3-byte UTF-8
    ("crm_id", "\u03a9\u03bc\u03ad\u03b3\u03b1-7 \U0001f680", 4514970791586320945),  # 4-byte UTF-8
]


def _reference(key: bytes, id_type: str, value: str) -> int:
    """Independent implementation straight from the format description."""
    return xxhash.xxh3_64_intdigest(key + id_type.encode("utf-8") + b"\x1f" + value.encode("utf-8"))


@pytest.mark.parametrize(("id_type", "value", "expected"), VECTORS)
def test_identifier_golden_vectors(id_type: str, value: str, expected: int) -> None:
    assert hash_identifier(KEY, id_type, value) == expected
    assert _reference(KEY, id_type, value) == expected
    assert 0 <= expected < 2**64


def test_separator_and_key_length_are_part_of_the_format() -> None:
    assert SEPARATOR == b"\x1f"
    assert MIN_KEY_BYTES == 16


def test_unit_hash_golden_vector() -> None:
    assert hash_unit(KEY, "hero-test", "person-9") == 3303462454066812638
    assert hash_unit(KEY, "hero-test", "person-9") == _reference(KEY, "hero-test", "person-9")


def test_separator_prevents_type_value_ambiguity() -> None:
    # without the separator ("ab", "c") and ("a", "bc") would hash the same bytes
    assert hash_identifier(KEY, "ab", "c") != hash_identifier(KEY, "a", "bc")


def test_key_changes_every_hash() -> None:
    other = bytes(range(1, 17))
    for id_type, value, expected in VECTORS:
        assert hash_identifier(other, id_type, value) != expected


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
    msg = "expected a secret of at least 16 bytes, got 15 - at `identity.hash_key`"
    with pytest.raises(ConfigError, match=re.escape(msg)):
        resolve_key("00" * 15, None)
    monkeypatch.setenv("T3_DECISIONER_KEY", "00" * 8)
    msg = "expected a secret of at least 16 bytes, got 8 - at environment variable `T3_DECISIONER_KEY`"
    with pytest.raises(ConfigError, match=re.escape(msg)):
        resolve_key(None, "T3_DECISIONER_KEY")
