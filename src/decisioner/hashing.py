"""The xxhash boundary: identifiers and experiment units become ``uint64`` keys.

Persisted format (changing any of it changes every stored key):

* identifier key: ``xxh3_64(key || type || 0x1f || value)`` with seed 0, where ``key`` is the
  deployment secret (bytes), and ``type`` and ``value`` are UTF-8 encoded after normalisation;
* bucketing key: ``xxh3_64(key || salt || 0x1f || unit)`` with the same rules.

The deployment secret makes the keys pseudonymous: without it a stored key cannot be matched
to an identifier by hashing guesses. It comes from configuration, never from the code.
"""

from __future__ import annotations

import os

import xxhash

from .errors import ConfigError

__all__ = ["SEPARATOR", "MIN_KEY_BYTES", "hash_identifier", "hash_unit", "resolve_key"]

SEPARATOR = b"\x1f"
MIN_KEY_BYTES = 16

_xxh3 = xxhash.xxh3_64_intdigest


def hash_identifier(key: bytes, id_type: str, value: str) -> int:
    """Keyed 64-bit hash of one normalised identifier.

    Examples
    --------
    >>> hash_identifier(b"k" * 16, "email", "ada@example.com") == hash_identifier(
    ...     b"k" * 16, "email", "ada@example.com")
    True
    """
    return _xxh3(key + id_type.encode() + SEPARATOR + value.encode())


def hash_unit(key: bytes, salt: str, unit: str) -> int:
    """Keyed 64-bit hash used for experiment bucketing of ``unit`` under ``salt``."""
    return _xxh3(key + salt.encode() + SEPARATOR + unit.encode())


def resolve_key(hash_key: str | None, hash_key_env: str | None) -> bytes:
    """Return the deployment secret from a hex string or from an environment variable.

    Raises
    ------
    ConfigError
        If neither gives a key of at least 16 bytes.
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
    if len(key) < MIN_KEY_BYTES:
        raise ConfigError(
            f"expected a secret of at least {MIN_KEY_BYTES} bytes, got {len(key)} - at {where}"
        )
    return key
