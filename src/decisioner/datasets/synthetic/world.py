"""A synthetic world in memory: the spec, catalog, events, identifier truth, vocabularies,
response model and engine configuration, as generated or loaded."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from .response import ResponseModel
from .spec import I32, WorldSpec

__all__ = ["World"]


@dataclass(frozen=True, eq=False)  # holds arrays: compare fields explicitly
class World:
    """An in-memory synthetic world (see :mod:`decisioner.datasets.synthetic`).

    Attributes
    ----------
    spec
        The spec it was generated from.
    items
        Catalog rows (``id, title, category, brand, colour, tags, price, inventory``).
    events
        Event payloads sorted by time (ties keep generation order).
    event_person
        True person of each event, ``int32``.
    identifiers
        Ground truth ``(type, canonical value, person)``; placeholder emails have person -1,
        a shared household tablet maps to its owner.
    shared_identifiers
        ``(type, value) -> (owner, other users...)`` of shared household devices.
    spellings
        ``(type, value as seen in events, index into identifiers)`` for every spelling
        (emails with case/whitespace noise, formatted phone numbers, and canonical values).
    vocabularies
        Facet value names by facet (``category``, ``brand``, ``colour``, ``tags``), in the index
        order used by the response model's arrays.
    response
        The true response model.
    config
        The engine configuration (plain mapping, as in ``config.toml``).
    config_path
        Path of ``config.toml`` once written or loaded, else None.
    """

    spec: WorldSpec
    items: list[dict[str, Any]]
    events: list[dict[str, Any]]
    event_person: I32
    identifiers: list[tuple[str, str, int]]
    shared_identifiers: dict[tuple[str, str], tuple[int, ...]]
    spellings: list[tuple[str, str, int]]
    vocabularies: dict[str, list[str]]
    response: ResponseModel
    config: dict[str, Any]
    config_path: Path | None = field(default=None, compare=False)

    @cached_property
    def _owner_of_spelling(self) -> dict[tuple[str, str], int]:
        return {(t, v): self.identifiers[i][2] for t, v, i in self.spellings}

    def owner(self, id_type: str, value: str) -> int:
        """True person behind an identifier as seen in events (-1 for placeholders).

        Parameters
        ----------
        id_type
            Identifier type (``cookie``, ``email``, ...).
        value
            The value as it appears in an event.

        Raises
        ------
        KeyError
            If the identifier never occurs in the world.
        """
        return self._owner_of_spelling[(id_type, value)]

    @property
    def hash_key(self) -> str:
        """The world's ``identity.hash_key`` (derived from the seed)."""
        return str(self.config["identity"]["hash_key"])

    def __repr__(self) -> str:
        return (
            f"World(n_people={self.spec.n_people}, n_items={len(self.items)}, "
            f"n_events={len(self.events)}, seed={self.spec.seed})"
        )


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic GC while building hundreds of thousands of small acyclic dicts.

    Otherwise each allocation burst triggers a rescan of every live container, which costs
    20-60 % of the generation and load time; the dicts hold no cycles, so nothing is leaked.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
