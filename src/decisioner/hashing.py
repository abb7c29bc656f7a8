"""The keyed-hash boundary: identifiers become pseudonymous keys; experiment units get xxh3.

Persisted format (changing any of it changes every stored key; published test vectors in
``tests/test_hashing.py`` and the README):

* identifier key and check tag: ``d = BLAKE2b(type || 0x1f || value, key=secret,
  digest_size=16)`` (RFC 7693, keyed mode: :func:`hashlib.blake2b`, libsodium's
  ``crypto_generichash``), ``type`` and ``value`` UTF-8 encoded after normalisation; the key is
  ``d[0:8]`` and the check tag ``d[8:12]``, both read little-endian, a tag of 0 replaced by 1
  (0 marks "no tag" in the key arrays); ``d[12:16]`` is unused;
* bucketing key: ``xxh3_64(secret || salt || 0x1f || unit)`` with seed 0 and the same encoding.

The secret is 16 to 64 bytes (BLAKE2b's key size; a longer one is refused, never shortened, so
one secret gives one set of keys everywhere). A keyed cryptographic hash makes the identifier
keys pseudonyms in the sense of GDPR art. 4(5) and the EDPB's pseudonymisation guidelines
(01/2025): without the secret nobody can test a guessed identifier against a stored key, and
keys say nothing about each other. xxh3 is not a keyed cryptographic hash, so it stays where
nothing about a person is persisted under it: in-memory tables and experiment bucketing
(:func:`hash_unit`). The secret comes from configuration, never from the code.
"""

from __future__ import annotations

import hashlib
import os
from functools import lru_cache
from typing import Final

import xxhash

from .errors import ConfigError

__all__ = [
    "SEPARATOR", "MIN_KEY_BYTES", "MAX_KEY_BYTES", "DIGEST_BYTES", "hash_identifier", "identifier_key",
    "hash_unit", "resolve_key", "check_key",
]

SEPARATOR: Final = b"\x1f"
#: shortest secret accepted (128 bits)
MIN_KEY_BYTES: Final = 16
#: longest secret accepted: BLAKE2b's largest key
MAX_KEY_BYTES: Final = hashlib.blake2b.MAX_KEY_SIZE
#: BLAKE2b output size of an identifier (the smallest libsodium's crypto_generichash gives)
DIGEST_BYTES: Final = 16
_MASK64: Final = (1 << 64) - 1
_MASK32: Final = (1 << 32) - 1

_xxh3 = xxhash.xxh3_64_intdigest


@lru_cache(maxsize=16)
def _keyed(secret: bytes) -> hashlib.blake2b:
    """BLAKE2b keyed with ``secret`` and nothing hashed yet: copying it skips the key block."""
    check_key(secret)
    return hashlib.blake2b(key=secret, digest_size=DIGEST_BYTES)


def check_key(secret: bytes, where: str = "`identity.hash_key`") -> None:
    """Refuse a secret outside 16..64 bytes.

    Raises
    ------
    ConfigError
        If ``secret`` is shorter than :data:`MIN_KEY_BYTES` or longer than :data:`MAX_KEY_BYTES`.
    """
    n = len(secret)
    if n < MIN_KEY_BYTES or n > MAX_KEY_BYTES:
        raise ConfigError(
            f"expected a secret of {MIN_KEY_BYTES} to {MAX_KEY_BYTES} bytes, got {n} - at {where}"
            + (" (BLAKE2b keys are at most 64 bytes; 32 random bytes are plenty)" if n > MAX_KEY_BYTES else "")
        )


def identifier_key(secret: bytes, id_type: str, value: str) -> tuple[int, int]:
    """Key (64 bits) and check tag (32 bits, never 0) of one normalised identifier.

    Raises
    ------
    ConfigError
        If the secret is not 16 to 64 bytes long.
    UnicodeEncodeError
        If ``id_type`` or ``value`` holds a lone surrogate (no UTF-8 form).

    Examples
    --------
    >>> k, t = identifier_key(bytes(range(16)), "email", "ada@example.com")
    >>> hex(k), hex(t)
    ('0x2ee8850071742935', '0x2aec040c')
    """
    h = _keyed(secret).copy()
    h.update(id_type.encode() + SEPARATOR + value.encode())
    d = int.from_bytes(h.digest(), "little")
    return d & _MASK64, ((d >> 64) & _MASK32) or 1


def hash_identifier(secret: bytes, id_type: str, value: str) -> int:
    """Keyed 64-bit key of one normalised identifier (the key of :func:`identifier_key`).

    Examples
    --------
    >>> hash_identifier(bytes(range(16)), "email", "ada@example.com") == identifier_key(
    ...     bytes(range(16)), "email", "ada@example.com")[0]
    True
    """
    return identifier_key(secret, id_type, value)[0]


def hash_unit(key: bytes, salt: str, unit: str) -> int:
    """Keyed 64-bit hash used for experiment bucketing of ``unit`` under ``salt`` (xxh3: fast,
    in memory; it pseudonymises nothing)."""
    return _xxh3(key + salt.encode() + SEPARATOR + unit.encode())


def resolve_key(hash_key: str | None, hash_key_env: str | None) -> bytes:
    """Return the deployment secret from a hex string or from an environment variable.

    Raises
    ------
    ConfigError
        If neither gives a key of 16 to 64 bytes.
    """
    where = "`identity.hash_key`"
    raw = hash_key
    if raw is None and hash_key_env:
        raw = os.environ.get(hash_key_env)
        where = f"environment variable `{hash_key_env}`"
    if raw is None:
        raise ConfigError(
            "a hashing secret is required, got none - at `identity.hash_key` / "
            f"`identity.hash_key_env` (set {hash_key_env or 'DECISIONER_HASH_KEY'} to "
            "`python -c 'import secrets; print(secrets.token_hex(16))'`)"
        )
    try:
        key = bytes.fromhex(raw)
    except ValueError:
        raise ConfigError(f"expected a hex string, got {raw[:8]!r}... - at {where}") from None
    check_key(key, where)
    return key
