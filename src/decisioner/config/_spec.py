"""What every spec shares: the msgspec options of a frozen spec, the check that raises
:class:`~decisioner.errors.ConfigError`, and the day in milliseconds that ``*_days`` fields
are counted in."""

from __future__ import annotations

from typing import Final

from ..errors import ConfigError

__all__ = ["DAY_MS", "SPEC", "check"]

DAY_MS: Final = 86_400_000

#: Options of every spec: frozen (hashable, safe as a default), keyword-only, and strict about
#: unknown fields (a misspelt option is an error, not silently ignored).
SPEC: Final = dict(frozen=True, kw_only=True, forbid_unknown_fields=True)


def check(ok: bool, msg: str) -> None:
    """Raise :class:`~decisioner.errors.ConfigError` with ``msg`` unless ``ok``."""
    if not ok:
        raise ConfigError(msg)
