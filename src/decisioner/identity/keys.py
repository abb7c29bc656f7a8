"""Identifier keys: a graph's type and source registries, and the key arrays it links.

Every identifier is normalised, checked against the blocked values and hashed with the
deployment secret (keyed BLAKE2b) into a 64-bit key plus a 32-bit check tag
(:mod:`decisioner.hashing` holds the persisted key format); raw values are never stored. An
event's identifiers travel as a key array, uint64[2, m]: ``keys[0]`` the keys, ``keys[1]`` the
tag words (check tag in the low 32 bits, :data:`~.rules.BLOCKED_FLAG` set for a value the rules
block), with int8 type codes beside it. Pre-hashed loads may pass uint64[1, m] or uint64[m]
instead (keys without tags: tag 0, unchecked).

The event log stores an identifier as its key and tag word in 32 hex digits
(:meth:`IdentityKeys.hashed_ids`), read back without hashing again
(:meth:`IdentityKeys.keys_of_hashed`).

Identifier types and evidence sources get small integer codes in order of first use. Reading
keys never registers anything: a type not yet registered gets code :data:`UNREGISTERED` (it
cannot match a stored identifier). The engine registers an event's new types inside admission,
under its writer lock, once the event is accepted (:meth:`IdentityKeys.register_types`), so a
rejected event or a read-only call changes nothing, and a replay of the log assigns the codes
in the same order as the live engine did.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from .. import arguments
from ..config import IdentitySpec
from ..errors import SchemaError
from ..hashing import check_key
from .rules import BLOCKED_FLAG, IdentifierRules, identifier_key

__all__ = ["IdentityKeys", "KeyMemo", "KEY_ROWS", "UNREGISTERED"]

#: rows of a key array: ``keys[0]`` 64-bit keys, ``keys[1]`` check tags (+ blocked flag)
KEY_ROWS = 2
#: the type code of an identifier type not registered yet
UNREGISTERED = -1


class KeyMemo:
    """What :meth:`IdentityKeys.keys_of` computed in one batch (:mod:`decisioner.batch`): the key
    and tag word of each ``(type, raw value)`` (``pairs``), and the keys and type codes of each
    identifier set whose types are all registered (``events``, in the order of the event's
    ``ids``). Keys depend only on the secret and the configured rules, and a registered type's
    code never changes, so a hit is what computing again would give. The batch drops it when it
    ends: raw values are never kept longer.
    """

    __slots__ = ("events", "pairs")

    def __init__(self) -> None:
        self.pairs: dict[tuple[str, str], tuple[int, int]] = {}
        self.events: dict[tuple[tuple[str, str], ...], tuple[np.ndarray, np.ndarray]] = {}


class IdentityKeys:
    """The key layer of :class:`~decisioner.identity.IdentityGraph`: the secret, the identifier
    rules, the type and source registries, and identifiers -> key arrays.

    Registering a new identifier type calls :meth:`_type_registered`, which the storage layer
    (:class:`~decisioner.identity.store.IdentityStore`) overrides to refresh its per-type rules
    and store the type's blocked values.
    """

    def __init__(
        self,
        key: bytes,
        *,
        types: Iterable[str] | None = None,
        default_region: str | None = None,
        spec: IdentitySpec | None = None,
    ) -> None:
        check_key(key, "`key`")
        self.key = key
        self.spec = spec if spec is not None else IdentitySpec()
        self.rules = IdentifierRules(self.spec, types=types, default_region=default_region)
        self.default_region = self.rules.default_region
        self.sources: tuple[str, ...] = ("",)
        self._source_code: dict[str, int] = {"": 0}

    # ------------------------------------------------------------------ types and sources
    @property
    def types(self) -> tuple[str, ...]:
        """Identifier type names in code order."""
        return self.rules.types

    def type_code(self, id_type: str) -> int:
        """Code of ``id_type``, registering a new type (its rule by name, or a plain id).

        Raises
        ------
        SchemaError
            If a new type would pass the ``max_types`` cap.
        """
        code = self.rules.code_of(id_type)
        if code is None:
            self._check_room(1, id_type)
            code = self.rules.register(id_type)
            self._type_registered(code)
        return code

    def _check_room(self, n_new: int, example: str) -> None:
        cap = self.spec.max_types
        n = len(self.rules.types)
        if n + n_new > cap:
            raise SchemaError(
                f"Expected at most {cap} identifier types (`identity.max_types`; {n} registered), got "
                f"{n_new} new, such as {example[:40]!r} - at `$.ids`"
            )

    def _codes(self, ids: Mapping[str, str]) -> np.ndarray:
        """int8 type codes of ``ids``, :data:`UNREGISTERED` for a new type; refuses an event
        whose new types could never fit under the cap (nothing registered)."""
        code_of = self.rules.code_of
        types = np.empty(len(ids), dtype=np.int8)
        new: list[str] = []
        for j, t in enumerate(ids):
            c = code_of(t)
            if c is None:
                new.append(t)
                c = UNREGISTERED
            types[j] = c
        if new:
            self._check_room(len(new), new[0])
        return types

    def register_types(self, ids: Mapping[str, str], types: np.ndarray) -> np.ndarray:
        """Give the :data:`UNREGISTERED` entries of ``types`` (codes of ``ids`` from
        :meth:`keys_of`) their codes, registering the new types in the order of ``ids``; all or
        nothing. Call it where the event is admitted (the engine does, under its writer lock).

        Raises
        ------
        SchemaError
            If the new types do not fit under ``max_types`` any more (nothing registered then).
        """
        if types.shape[0] == 0 or types.min() >= 0:
            return types
        names = list(ids)
        new = {names[j] for j in np.flatnonzero(types < 0).tolist() if self.rules.code_of(names[j]) is None}
        if new:
            self._check_room(len(new), min(new))
        for j in np.flatnonzero(types < 0).tolist():
            types[j] = self.type_code(names[j])
        return types

    def _type_registered(self, code: int) -> None:
        """Called once a new identifier type got ``code`` (the storage layer stores its blocked
        values)."""

    def source_code(self, source: str | None) -> int:
        """Code of an evidence source name (channel, system), registering it when new."""
        if source is None:
            return 0
        code = self._source_code.get(source)
        if code is None:
            if len(self.sources) >= 32_767:
                return 0
            code = len(self.sources)
            self.sources = (*self.sources, source)
            self._source_code[source] = code
        return code

    def load_sources(self, sources: Iterable[str]) -> None:
        """Replace the source names with persisted ones (a source's code is its index)."""
        self.sources = tuple(sources)
        self._source_code = {s: i for i, s in enumerate(self.sources)}

    # ------------------------------------------------------------------ keys
    def keys_of(self, ids: Mapping[str, str], *, memo: KeyMemo | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Normalise, check and hash ``ids`` (type -> value).

        ``memo`` (a batch's, see :class:`KeyMemo`) keeps what was computed for identifiers and
        identifier sets already seen in the batch, so a repeated one is normalised and hashed once.
        The arrays returned then are shared with earlier calls: read them, never write them.

        Returns
        -------
        keys
            uint64[2, m]: keys, and check tags (low 32 bits) with :data:`~.rules.BLOCKED_FLAG`
            set for values the rules block.
        types
            int8[m] type codes, :data:`UNREGISTERED` for a type not registered yet (see
            :meth:`register_types`).

        Raises
        ------
        SchemaError
            If a value is malformed, or the event's new types can never fit under the cap.
            Nothing is registered here, whatever happens.
        """
        if type(ids) is not dict:  # a direct call's argument (events hold a dict)
            arguments.identifiers(ids)
        sig: tuple[tuple[str, str], ...] = ()
        if memo is not None:
            sig = tuple(ids.items())
            known = memo.events.get(sig)
            if known is not None:
                return known
        n = len(ids)
        keys = np.empty((2, n), dtype=np.uint64)
        rules = self.rules
        secret = self.key
        for j, (t, v) in enumerate(ids.items()):
            if memo is not None:
                hit = memo.pairs.get((t, v))
                if hit is not None:
                    keys[0, j], keys[1, j] = hit
                    continue
            if type(t) is not str or type(v) is not str:  # a direct call's ids (events are typed)
                arguments.identifiers(ids)
            code = rules.code_of(t)
            value, blocked = rules.canonical(t, v, rules.rule(code) if code is not None else None)
            try:
                k, tag = identifier_key(secret, t, value)
            except UnicodeEncodeError:  # a lone surrogate: no UTF-8 form to hash
                arguments.identifiers(ids)
                raise
            word = tag | BLOCKED_FLAG if blocked else tag
            keys[0, j] = k
            keys[1, j] = word
            if memo is not None:
                memo.pairs[t, v] = (k, word)
        types = self._codes(ids)
        if memo is not None and (n == 0 or types.min() >= 0):  # codes of registered types never change
            memo.events[sig] = (keys, types)
        return keys, types

    @staticmethod
    def hashed_ids(ids: Mapping[str, str], keys: np.ndarray) -> dict[str, str]:
        """``ids`` with each value replaced by its key and tag word from :meth:`keys_of` (32 hex
        digits): what the event log stores instead of the raw values. :meth:`keys_of_hashed`
        reads it back.

        >>> IdentityKeys.hashed_ids({"email": "ada@example.com"}, np.array([[1], [2]], np.uint64))
        {'email': '00000000000000010000000000000002'}
        """
        k, w = keys[0].tolist(), keys[1].tolist()
        return {t: f"{k[j]:016x}{w[j]:016x}" for j, t in enumerate(ids)}

    def keys_of_hashed(self, ids: Mapping[str, str]) -> tuple[np.ndarray, np.ndarray]:
        """Keys and type codes of ``ids`` written by :meth:`hashed_ids` (type -> 32 hex digits),
        as :meth:`keys_of` returns them for the raw values. Nothing is hashed again.

        Raises
        ------
        SchemaError
            If a value is not 32 hex digits.
        """
        n = len(ids)
        keys = np.empty((2, n), dtype=np.uint64)
        for j, (t, v) in enumerate(ids.items()):
            try:
                if len(v) != 32:
                    raise ValueError
                keys[0, j] = int(v[:16], 16)
                keys[1, j] = int(v[16:], 16)
            except ValueError:
                raise SchemaError(
                    f"Expected a hashed identifier (32 hex digits), got {v[:40]!r} - at `$.ids.{t}`"
                ) from None
        return keys, self._codes(ids)

    def keys_many(self, id_type: str, values: Sequence[str]) -> np.ndarray:
        """Keys (uint64[2, n]) of many values of one type, for bulk (CRM) loads.

        Raises
        ------
        SchemaError
            If a value is malformed (the message names its index).
        """
        code = self.type_code(id_type)
        rule = self.rules.rule(code)
        out = np.empty((2, len(values)), dtype=np.uint64)
        for j, v in enumerate(values):
            try:
                value, blocked = self.rules.canonical(id_type, v, rule)
            except SchemaError as exc:
                raise SchemaError(f"{exc} (value {j})") from None
            k, tag = identifier_key(self.key, id_type, value)
            out[0, j] = k
            out[1, j] = tag | BLOCKED_FLAG if blocked else tag
        return out

    @staticmethod
    def _as_keys(keys: np.ndarray) -> np.ndarray:
        """uint64[2, m] (keys, tag words) or uint64[1, m] (pre-hashed keys without tags: tag 0,
        unchecked; a view of a uint64[m] input, not a copy)."""
        k = np.asarray(keys)
        if k.ndim == 1:
            k = k.reshape(1, -1)
        if k.ndim == 2 and k.shape[0] in (1, KEY_ROWS):
            if k.dtype == np.uint64 and k.flags.c_contiguous:
                return k
            return np.ascontiguousarray(k, dtype=np.uint64)
        raise SchemaError(f"Expected keys as uint64[m] or uint64[2, m], got shape {k.shape} - at `keys`")
