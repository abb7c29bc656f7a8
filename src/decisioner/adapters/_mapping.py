"""Mapping decisioner values (attributes, interests, tier, segments) onto CRM fields.

A mapping is the allow-list of what leaves the engine: only keys it names are sent, under the
CRM field or property it gives. Keys are free-form names the caller chooses; the documented ones
are ``tier``, ``segments``, ``attributes.<name>`` and ``interests.<facet>`` (see
:func:`person_values`).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from ..errors import ConfigError

__all__ = ["person_values", "map_values", "check_api_names", "iso_time", "REACTIONS", "reaction_message_id"]

API_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,79}")
#: reactions an agent reports on a next-best action
REACTIONS = ("accepted", "rejected", "outcome")


def reaction_message_id(prefix: str, decision_id: str, action: str, reaction: str) -> str:
    """A message id derived from a reaction, so reporting the same reaction twice sends it once."""
    return f"{prefix}_" + hashlib.sha256(f"{decision_id}\x1f{action}\x1f{reaction}".encode()).hexdigest()[:32]


def check_api_names(mapping: Mapping[str, str], where: str) -> None:
    """Every target of ``mapping`` is a CRM API name (letters, digits, ``_``; a letter first)."""
    for key, name in mapping.items():
        if not isinstance(name, str) or API_NAME.fullmatch(name) is None:
            raise ConfigError(
                f"Expected an API name (a letter, then letters, digits or _), got {name!r} - at `{where}.{key}`"
            )


def person_values(
    *,
    tier: str | None = None,
    segments: Iterable[str] | None = None,
    attributes: Mapping[str, Any] | None = None,
    interests: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Flatten what decisioner knows about a person into the keys a mapping refers to.

    ``interests`` maps a facet to its top value (or a list of top values, most affine first).

    Examples
    --------
    >>> person_values(tier="gold", segments=["vip", "eu"], attributes={"region": "EU"},
    ...               interests={"category": ["shoes", "bags"]})
    {'tier': 'gold', 'segments': ['vip', 'eu'], 'attributes.region': 'EU', 'interests.category': ['shoes', 'bags']}
    """
    out: dict[str, Any] = {}
    if tier is not None:
        out["tier"] = tier
    if segments is not None:
        out["segments"] = list(segments)
    for name, v in (attributes or {}).items():
        out[f"attributes.{name}"] = v
    for facet, v in (interests or {}).items():
        out[f"interests.{facet}"] = v
    return out


def _scalar(v: Any, key: str, where: str) -> str | int | float | bool | None:
    if v is None or isinstance(v, str | bool | int | float):
        return v
    if isinstance(v, list | tuple):
        parts = [str(x) for x in v]
        if any(";" in p for p in parts):
            raise ConfigError(
                f"Expected list values without `;` (the multi-value separator), got {v!r} - at `{where}.{key}`"
            )
        return ";".join(parts)
    raise ConfigError(f"Expected a string, number, boolean, null or list, got {type(v).__name__} - at `{where}.{key}`")


def map_values(values: Mapping[str, Any], mapping: Mapping[str, str], where: str) -> dict[str, Any]:
    """The mapped fields of ``values``: keys the mapping does not name are left out; lists are
    joined with ``;`` (multi-select picklists, multiple-checkbox properties).

    Raises
    ------
    ConfigError
        If nothing is mapped or a value cannot be sent.
    """
    out = {mapping[k]: _scalar(v, k, where) for k, v in values.items() if k in mapping}
    if not out:
        raise ConfigError(
            f"Expected at least one of the mapped keys {sorted(mapping)}, got {sorted(values)[:10]} - at `{where}`"
        )
    return out


def iso_time(ms: int) -> str:
    """Epoch milliseconds as ISO 8601 UTC with milliseconds (``2024-01-01T00:00:00.000Z``)."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"
