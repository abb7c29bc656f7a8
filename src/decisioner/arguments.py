"""Checks of the arguments of public calls (``recommend``, ``forget``, ``set_inventory`` ...).

Events and outcomes are checked by their schemas (:mod:`decisioner.schemas`); the other entry
points take plain Python values, and these checks run first, before any lock is taken or any
state moves, so a bad argument gets a :class:`~decisioner.errors.SchemaError` that says what
was expected, what came and where, never a bare ``TypeError`` or a numba typing error.

>>> epoch_ms(1_700_000_000_000, "now")
1700000000000
>>> epoch_ms("soon", "now")
Traceback (most recent call last):
...
decisioner.errors.SchemaError: Expected `now` to be epoch milliseconds (an int), got `str` 'soon'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from .errors import SchemaError
from .schemas import MAX_TIME_MS, MIN_TIME_MS

__all__ = ["INVENTORY_MAX", "epoch_ms", "epoch_ms_list", "id_maps", "identifiers", "inventory", "row", "text"]

#: the largest stock level (int64 arrays hold it; a larger one is a data error)
INVENTORY_MAX: Final = 2**62


def _got(v: Any) -> str:
    text = repr(v)
    return f"`{type(v).__name__}` {text[:60]}{'...' if len(text) > 60 else ''}"


def epoch_ms(v: Any, where: str) -> int:
    """``v`` as event time in epoch milliseconds (an int in 2000-2100)."""
    if isinstance(v, bool) or not isinstance(v, int):
        raise SchemaError(f"Expected `{where}` to be epoch milliseconds (an int), got {_got(v)}")
    if not MIN_TIME_MS <= v <= MAX_TIME_MS:
        raise SchemaError(
            f"Expected `{where}` in [{MIN_TIME_MS}, {MAX_TIME_MS}] (epoch ms, 2000-2100), got {v!r}"
        )
    return int(v)


def epoch_ms_list(v: Any, n: int, where: str) -> list[int]:
    """One time for ``n`` requests (an int) or one each (a sequence of ``n`` ints)."""
    if isinstance(v, int) and not isinstance(v, bool):
        return [epoch_ms(v, where)] * n
    if not isinstance(v, Sequence) or isinstance(v, (str, bytes)):
        raise SchemaError(f"Expected `{where}` to be an int or a list of {n} ints, got {_got(v)}")
    if len(v) != n:
        raise SchemaError(f"Expected `{where}` to hold {n} times (one per request), got {len(v)}")
    return [epoch_ms(x, f"{where}[{j}]") for j, x in enumerate(v)]


def text(v: Any, where: str, *, max_len: int = 256) -> str:
    """A non-empty ``str`` of at most ``max_len`` characters that has a UTF-8 form (no lone
    surrogates: it could not be logged or hashed)."""
    if not isinstance(v, str):
        raise SchemaError(f"Expected `{where}` to be a str, got {_got(v)}")
    if not 1 <= len(v) <= max_len:
        raise SchemaError(f"Expected `{where}` to be a str of length 1 to {max_len}, got length {len(v)}")
    if not v.isascii():
        try:
            v.encode()
        except UnicodeEncodeError as exc:
            raise SchemaError(
                f"Expected `{where}` to be UTF-8 text, got an unencodable character {v[exc.start]!r} "
                f"at position {exc.start}"
            ) from None
    return v


def identifiers(ids: Any, where: str = "ids", *, max_n: int = 64) -> Mapping[str, str]:
    """An identifier map (type -> value, both texts, at most ``max_n`` entries)."""
    if not isinstance(ids, Mapping):
        raise SchemaError(f"Expected `{where}` to be a mapping of identifier type to value, got {_got(ids)}")
    if len(ids) > max_n:
        raise SchemaError(f"Expected at most {max_n} identifiers in `{where}`, got {len(ids)}")
    for t, value in ids.items():
        text(t, f"{where} key", max_len=128)
        text(value, f"{where}.{t}")
    return ids


def id_maps(ids: Any, where: str = "ids", *, max_n: int = 64) -> list[Mapping[str, str]]:
    """A list of identifier maps (one per request)."""
    if not isinstance(ids, Sequence) or isinstance(ids, (str, bytes)):
        raise SchemaError(f"Expected `{where}` to be a list of identifier mappings, got {_got(ids)}")
    return [identifiers(x, f"{where}[{j}]", max_n=max_n) for j, x in enumerate(ids)]


def row(v: Any, n_rows: int, where: str = "row") -> int:
    """A profile row that exists (an int in [0, n_rows))."""
    if isinstance(v, bool) or not isinstance(v, int):
        raise SchemaError(f"Expected `{where}` to be a profile row (an int), got {_got(v)}")
    if not 0 <= v < n_rows:
        raise SchemaError(f"Expected `{where}` in [0, {n_rows}) (a profile row), got {v!r}")
    return int(v)


def inventory(v: Any, where: str = "inventory") -> int:
    """A stock level: an int of magnitude at most :data:`INVENTORY_MAX` (-1: not tracked;
    other negatives: oversold)."""
    if isinstance(v, bool) or not isinstance(v, int):
        raise SchemaError(f"Expected `{where}` to be an int (-1: not tracked), got {_got(v)}")
    if not -INVENTORY_MAX <= v <= INVENTORY_MAX:
        raise SchemaError(f"Expected `{where}` in [-{INVENTORY_MAX}, {INVENTORY_MAX}], got {v!r}")
    return int(v)
