"""AttributeStore: typed profile attributes with provenance and reconciliation rules.

Each attribute declared in ``[attributes.<name>]`` (:mod:`decisioner.config.attributes`) is a
few columns keyed by profile row, grown by doubling with the other row-keyed stores:

* ``<name>/value``: the number, the epoch ms (timestamp) or the code into the attribute's
  vocabulary (category; ``-1``: none);
* ``<name>/source`` (code into the store's source names; ``-1``: the attribute is not set) and
  ``<name>/time`` (epoch ms): the provenance of the value, the source and event time it came from;
* for ``most_frequent``, ``slots`` counted values per row: ``<name>/slot_code``,
  ``slot_count``, ``slot_time`` and ``slot_source`` (the newest sighting of each value).

In memory the columns are views (:attr:`AttributeStore.arrays_`) into three row-major matrices,
so one row's attributes share a few cache lines and one kernel call offers all of an event's
values (layout in :mod:`decisioner._kernels.attributes`; values are float64 there, exact for
codes and times). Snapshots hold one array per column with the dtype of its type: float64
(number), int64 (timestamp, times, counts), int32 (category and slot codes), int16 (sources).

**Event time decides, never arrival order.** A value is *offered* to a row with its source
and time, and the attribute's rule decides whether it is kept:

* ``most_recent``: kept when its time is at or after the held one (an older event never
  overwrites a newer value; at equal times the later arrival wins);
* ``first_seen``: kept when its time is before the held one (equal times: the held one stays);
* ``source_priority``: kept when its source ranks higher (earlier in ``sources``; unlisted
  sources rank after every listed one), or ranks the same and its time is at or after the
  held one;
* ``min`` / ``max``: kept when smaller / larger, or equal and older (the first time the
  extreme was reached);
* ``sum``: added; the provenance is that of the newest contribution;
* ``most_frequent``: counted in the row's slots; a value not counted yet takes a free slot or,
  when they are full, replaces the one with the lowest count (the oldest among equals) and
  starts from that count plus one (the space-saving algorithm: a lasting change of habit
  always gets in; a count may over-estimate by what it inherited). The value is the one with
  the highest count (ties: the newest sighting, then the lowest code).

**Merges** (identity merges of two profiles) reconcile by the same rules: the absorbed row's
value is offered to the survivor with its own provenance (at equal times the survivor's
stays), sums add, ``most_frequent`` adds the counts of equal values and keeps the ``slots``
strongest (by count, then newest sighting, then lowest code; no count is inherited).
Erasure, eviction and the anonymous scratch row clear rows; a split leaves the state with the
profile that keeps it.

**Bounds.** A category's vocabulary holds at most ``max_values`` values, and the store at most
:data:`MAX_SOURCES` source names: a value that would pass either bound is dropped (the held
value stays) and counted in :attr:`AttributeStore.dropped_`, deterministically, so a replay
drops the same values. Vocabulary entries are not personal data on their own and stay after
an erasure; the rows that pointed at them are cleared.

**No identifiers.** Attribute names are never identifier types (a config error) and category
values or source names that look like an email address or a phone number are refused with a
:class:`~decisioner.errors.SchemaError` that does not repeat the value.

>>> from decisioner.config import AttributeSpec
>>> store = AttributeStore({"tier": AttributeSpec(type="category"),
...                         "ltv": AttributeSpec(type="number", rule="sum")}, capacity=2)
>>> store.ensure(1)
>>> store.set(0, store.check({"tier": "gold", "ltv": 40.0}), source="crm", time=1_700_000_000_000)
>>> store.set(0, store.check({"tier": "silver", "ltv": 2.5}), source="web", time=1_690_000_000_000)
>>> store.get(0)
{'tier': ('gold', 'crm', 1700000000000), 'ltv': (42.5, 'crm', 1700000000000)}
"""

from __future__ import annotations

import re
from array import array
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from ._kernels import attributes as K
from .errors import NotReadyError, SchemaError
from .rows import doubled, grown
from .snapshot import ComponentState

if TYPE_CHECKING:
    from .config import AttributeSpec

__all__ = ["AttributeStore", "MAX_SOURCES", "identifier_kind"]

#: most source names the store keeps (int16 codes); a value from a further source is dropped
MAX_SOURCES: Final = 4096
_EMAIL: Final = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_PHONE: Final = re.compile(r"\+?[\d\s().\-/]+")
_DIGIT: Final = re.compile(r"\d")
_MIN_TIME, _MAX_TIME = 946_684_800_000, 4_102_444_800_000  # as decisioner.schemas: 2000-2100
_RULE: Final = {
    "most_recent": K.RULE_MOST_RECENT, "first_seen": K.RULE_FIRST_SEEN, "source_priority": K.RULE_SOURCE_PRIORITY,
    "min": K.RULE_MIN, "max": K.RULE_MAX, "sum": K.RULE_SUM, "most_frequent": K.RULE_MOST_FREQUENT,
}


def identifier_kind(text: str) -> str | None:
    """``"an email address"`` or ``"a phone number"`` when ``text`` looks like one, else None.

    A phone number is a run of digits and phone punctuation with at least 10 digits, or at
    least 7 after a ``+`` (a zip code such as ``02139-4307`` has 9).

    >>> identifier_kind("ada@example.com"), identifier_kind("+44 20 7946 0958"), identifier_kind("02139-4307")
    ('an email address', 'a phone number', None)
    """
    if "@" in text and _EMAIL.search(text):
        return "an email address"
    s = text.strip()
    if s and _PHONE.fullmatch(s):
        digits = len(_DIGIT.findall(s))
        if digits >= 10 or (s.startswith("+") and digits >= 7):
            return "a phone number"
    return None


def _not_identifier(text: str, where: str) -> None:
    kind = identifier_kind(text)
    if kind is not None:
        raise SchemaError(
            f"Expected a value that is not an identifier (attributes never hold identifiers), got {kind} - at `{where}`"
        )


class AttributeStore:
    """Typed attributes by profile row, with provenance (see the module docstring).

    Parameters
    ----------
    specs
        The declared attributes by name (``EngineConfig.attributes``).
    capacity
        Initial number of rows.

    ``dropped_`` counts, by attribute, the values dropped for the vocabulary or source bound.
    ``arrays_`` holds each attribute's columns by ``<name>/<column>`` as views into the store's
    row-major matrices (see :mod:`decisioner._kernels.attributes`; values are float64, exact).
    """

    def __init__(self, specs: Mapping[str, AttributeSpec], *, capacity: int = 1024) -> None:
        self.specs = dict(specs)
        self.capacity = capacity
        self.names = list(self.specs)
        #: whether any attribute is declared: without one, every call returns at once
        self.active = bool(self.specs)
        self.vocab_: dict[str, list[str]] = {n: [] for n, s in self.specs.items() if s.type == "category"}
        self._codes: dict[str, dict[str, int]] = {n: {} for n in self.vocab_}
        self.sources_: list[str] = []
        self._source_codes: dict[str, int] = {}
        self._checked_sources: set[str] = set()  # source names check_source let through
        self.dropped_: dict[str, int] = {n: 0 for n in self.names}
        self._rank = {n: {src: i for i, src in enumerate(s.sources)} for n, s in self.specs.items()}
        # declarations as the kernels read them (module docstring of decisioner._kernels.attributes)
        n_attrs = len(self.names)
        self._slots: dict[str, tuple[int, int]] = {}  # most_frequent: name -> (first slot, slots)
        for n, s in self.specs.items():
            if s.rule == "most_frequent":
                self._slots[n] = (sum(k for _, k in self._slots.values()), s.n_slots)
        n_slots = sum(k for _, k in self._slots.values())
        prio = [a for a, s in enumerate(self.specs.values()) if s.rule == "source_priority"]
        self._spec = np.zeros((n_attrs, K.SPEC_COLUMNS + (MAX_SOURCES if prio else 0)), np.int64)
        for a, (n, s) in enumerate(self.specs.items()):
            lo, k = self._slots.get(n, (0, 0))
            self._spec[a, :K.SPEC_COLUMNS] = _RULE[s.rule], lo, k
        self._prio = prio
        self._ranked = 0  # source codes whose ranks are in _spec
        self._n_attrs = n_attrs
        # an event's values for the kernel: written through the array.array (a third of numpy's
        # cost per item), read by the kernel through the ndarray over the same memory
        self._req_buf = array("d", bytes(16 * max(1, n_attrs)))
        self._req = np.frombuffer(self._req_buf, dtype=np.float64)
        self._lookups()
        # one row of each matrix as it is when nothing is set
        self._value_fill = np.array([-1.0 if s.type == "category" else 0.0 for s in self.specs.values()])
        self._stamp_fill = np.zeros(n_attrs + 3 * n_slots, np.int64)
        self._stamp_fill[n_attrs::3] = -1
        self._source_fill = np.full(n_attrs + n_slots, -1, np.int16)
        cap = max(1, capacity) if self.active else 0
        self._value = np.tile(self._value_fill, (cap, 1))
        self._stamp = np.tile(self._stamp_fill, (cap, 1))
        self._source = np.tile(self._source_fill, (cap, 1))
        self._fill: dict[str, int | float] = {}
        for n, s in self.specs.items():
            self._fill.update({f"{n}/value": -1 if s.type == "category" else 0, f"{n}/source": -1, f"{n}/time": 0})
            if n in self._slots:
                self._fill.update({f"{n}/slot_code": -1, f"{n}/slot_count": 0, f"{n}/slot_time": 0,
                                   f"{n}/slot_source": -1})
        self.arrays_: dict[str, np.ndarray] = {}
        self._views()

    def _lookups(self) -> None:
        """The per-name tables of :meth:`check` and :meth:`set` (one dict lookup a value)."""
        #: per name: (attribute index as float, vocabulary codes or None, vocabulary bound) for set
        self._index = {n: (float(a), self._codes.get(n), s.vocabulary_bound)
                       for a, (n, s) in enumerate(self.specs.items())}
        #: per name: (type code 0 category / 1 number / 2 timestamp, from_events, codes (empty if not a
        #: category), spec) for check
        self._kind = {n: (("category", "number", "timestamp").index(s.type), s.from_events, self._codes.get(n, {}), s)
                      for n, s in self.specs.items()}

    def _views(self) -> None:
        """``arrays_``: each attribute's columns as views into the matrices."""
        n_attrs = len(self.names)
        v, st, sr = self._value, self._stamp, self._source
        out: dict[str, np.ndarray] = {}
        for a, n in enumerate(self.names):
            out[f"{n}/value"], out[f"{n}/source"], out[f"{n}/time"] = v[:, a], sr[:, a], st[:, a]
            if n in self._slots:
                lo, k = self._slots[n]
                c0, c1 = n_attrs + 3 * lo, n_attrs + 3 * (lo + k)
                out[f"{n}/slot_code"], out[f"{n}/slot_count"] = st[:, c0:c1:3], st[:, c0 + 1:c1:3]
                out[f"{n}/slot_time"] = st[:, c0 + 2:c1:3]
                out[f"{n}/slot_source"] = sr[:, n_attrs + lo:n_attrs + lo + k]
        self.arrays_ = out

    @property
    def n_rows(self) -> int:
        return int(self._value.shape[0])

    # ------------------------------------------------------------------ rows
    def ensure(self, n_rows: int) -> None:
        """Grow (by doubling) so rows ``0 .. n_rows - 1`` exist."""
        if not self.active:
            return
        if n_rows <= self.n_rows:
            return
        cap = doubled(self.n_rows, n_rows)
        for attr, fill in (("_value", self._value_fill), ("_stamp", self._stamp_fill), ("_source", self._source_fill)):
            setattr(self, attr, grown(getattr(self, attr), cap, fill))
        self._views()

    def clear(self, rows: int | np.ndarray | list[int]) -> None:
        """Unset every attribute of a row (or an int array of rows): erasure, eviction, a new
        profile, the anonymous scratch row."""
        if not self.active:
            return
        self._value[rows] = self._value_fill
        self._stamp[rows] = self._stamp_fill
        self._source[rows] = self._source_fill

    # ------------------------------------------------------------------ setting
    def check(self, values: Mapping[str, Any], *, load: bool = True, where: str = "$.attrs") -> list[tuple[str, Any]]:
        """The declared attributes of ``values`` as ``(name, value)`` pairs ready for :meth:`set`;
        with ``load`` False (an event's ``attrs``), only those with ``from_events`` and the
        undeclared names are left out (they may be a contextual policy's features); with
        ``load``, an undeclared name is an error. Changes nothing.

        Raises
        ------
        SchemaError
            A value of the wrong type, an identifier, or (``load``) an undeclared name.
        """
        out: list[tuple[str, Any]] = []
        kinds = self._kind
        for name, v in values.items():
            hit = kinds.get(name)
            if hit is None:
                if load:
                    raise SchemaError(f"Expected a declared attribute in {self.names!r}, got {name!r} - at `{where}`")
                continue
            kind, from_events, codes, spec = hit
            if not (from_events or load):
                continue
            # the common cases first, each exactly what the checks below accept unchanged
            cls = v.__class__
            if kind == 0:
                if cls is str and v in codes:
                    out.append((name, v))  # a value already held: checked when it first came
                    continue
            elif kind == 1:
                if cls is float and -1e15 <= v <= 1e15:
                    out.append((name, v))
                    continue
            elif cls is int and _MIN_TIME <= v <= _MAX_TIME:
                out.append((name, v))
                continue
            at = f"{where}.{name}"
            if isinstance(v, bool):
                raise SchemaError(f"Expected a `{spec.type}` attribute value, got `bool` - at `{at}`")
            if spec.type == "category":
                if isinstance(v, int):
                    v = str(v)
                if not isinstance(v, str) or not 1 <= len(v) <= 1024:
                    got = f"`{type(v).__name__}`" if not isinstance(v, str) else f"length {len(v)}"
                    raise SchemaError(
                        f"Expected a `category` attribute value (str of length 1 to 1024), got {got} - at `{at}`"
                    )
                _not_identifier(v, at)
            elif spec.type == "number":
                if not isinstance(v, (int, float, np.integer, np.floating)) or not -1e15 <= float(v) <= 1e15:
                    raise SchemaError(
                        f"Expected a `number` attribute value (finite, |x| <= 1e15), got {v!r} - at `{at}`"
                    )
                v = float(v)
            else:
                if not isinstance(v, int) or not _MIN_TIME <= v <= _MAX_TIME:
                    raise SchemaError(
                        f"Expected a `timestamp` attribute value (epoch ms, an int in 2000-2100), got {v!r} - at `{at}`"
                    )
                v = int(v)
            out.append((name, v))
        return out

    def check_source(self, source: str, where: str = "$.channel") -> None:
        """Refuse a source name that looks like an identifier.

        Raises
        ------
        SchemaError
            If ``source`` looks like an email address or a phone number.
        """
        if source in self._checked_sources:  # let through before: the check depends on the text only
            return
        _not_identifier(source, where)
        if len(self._checked_sources) < MAX_SOURCES:
            self._checked_sources.add(source)

    def set(self, row: int, pairs: list[tuple[str, Any]], *, source: str, time: int) -> None:
        """Offer checked values (:meth:`check`) from ``source`` at event ``time`` to ``row``."""
        if not pairs:
            return
        src = self._source_codes.get(source, -1)
        if src < 0:
            if len(self.sources_) >= MAX_SOURCES:
                for name, _ in pairs:
                    self.dropped_[name] += 1
                return
            src = len(self.sources_)
            self.sources_.append(source)
            self._source_codes[source] = src
        if self._prio and self._ranked != len(self.sources_):
            self._rank_sources()
        if len(pairs) <= self._n_attrs:
            buf, req = self._req_buf, self._req
        else:  # more pairs than attributes (a caller's own list): a buffer of their size
            buf = array("d", bytes(16 * len(pairs)))
            req = np.frombuffer(buf, dtype=np.float64)
        n = 0
        index = self._index
        for name, v in pairs:
            af, codes, bound = index[name]
            if codes is not None:
                code = codes.get(v, -1)
                if code < 0:
                    if len(codes) >= bound:
                        self.dropped_[name] += 1
                        continue
                    code = len(codes)
                    codes[v] = code
                    self.vocab_[name].append(v)
                v = code
            buf[n] = af
            buf[n + 1] = v
            n += 2
        if n:
            K.attributes_set(self._value, self._stamp, self._source, self._spec, req, n // 2, int(row), src, int(time))

    def _rank_sources(self) -> None:
        """Rank the source codes registered since the last call, for ``source_priority``."""
        worst = {a: len(self.specs[self.names[a]].sources) for a in self._prio}
        for code in range(self._ranked, len(self.sources_)):
            for a in self._prio:
                self._spec[a, K.SPEC_COLUMNS + code] = self._rank[self.names[a]].get(self.sources_[code], worst[a])
        self._ranked = len(self.sources_)

    def merge(self, dst: int, src: int) -> None:
        """Reconcile row ``src`` into row ``dst`` by each attribute's rule; ``src`` is cleared."""
        if not self.active:
            return
        if self._prio and self._ranked != len(self.sources_):
            self._rank_sources()
        K.attributes_merge(self._value, self._stamp, self._source, self._spec, int(dst), int(src))
        self.clear(src)

    # ------------------------------------------------------------------ reading
    def _decode(self, name: str, raw: Any) -> Any:
        spec = self.specs[name]
        if spec.type == "category":
            return self.vocab_[name][int(raw)]
        return float(raw) if spec.type == "number" else int(raw)

    def get(self, row: int) -> dict[str, tuple[Any, str, int]]:
        """The attributes set on ``row``: name -> (value, source, event time)."""
        out: dict[str, tuple[Any, str, int]] = {}
        if not self.active or not 0 <= row < self.n_rows:
            return out
        srcs, vals, times = self._source[row].tolist(), self._value[row].tolist(), self._stamp[row].tolist()
        for a, name in enumerate(self.names):
            s = srcs[a]
            if s >= 0:
                out[name] = (self._decode(name, vals[a]), self.sources_[s], times[a])
        return out

    def export(self, row: int) -> dict[str, dict[str, Any]]:
        """:meth:`get` with its provenance spelt out, and the counted values of ``most_frequent``
        attributes (what an access export shows)."""
        out: dict[str, dict[str, Any]] = {}
        for name, (v, s, t) in self.get(row).items():
            item: dict[str, Any] = {"value": v, "source": s, "time": t, "rule": self.specs[name].rule}
            if self.specs[name].rule == "most_frequent":
                a = self.arrays_
                sc, sn = a[f"{name}/slot_code"][row], a[f"{name}/slot_count"][row]
                st, ss = a[f"{name}/slot_time"][row], a[f"{name}/slot_source"][row]
                item["counts"] = [
                    {"value": self.vocab_[name][int(sc[j])], "count": int(sn[j]), "source": self.sources_[int(ss[j])],
                     "time": int(st[j])}
                    for j in np.argsort(-sn, kind="stable").tolist() if sc[j] >= 0
                ]
            out[name] = item
        return out

    def row_values(self, row: int) -> dict[str, list[Any]]:
        """Every column of ``row`` with codes spelt out (category values and sources by name,
        ``None`` where unset): a row as it travels between processes whose vocabularies and
        source tables were filled in different orders (:mod:`decisioner.state.rowcodec`)."""
        out: dict[str, list[Any]] = {}
        if not self.active:
            return out
        src = self.sources_
        for key, col in self.arrays_.items():
            name, column = key.split("/")
            vals = np.atleast_1d(col[row]).tolist()
            if column in ("source", "slot_source"):
                vals = [src[int(v)] if v >= 0 else None for v in vals]
            elif (column == "value" or column == "slot_code") and name in self.vocab_:
                vals = [self.vocab_[name][int(v)] if v >= 0 else None for v in vals]
            out[key] = vals
        return out

    def load_row_values(self, row: int, values: Mapping[str, list[Any]]) -> None:
        """Set ``row`` to :meth:`row_values` of another store with the same declarations; names
        this store has not seen yet join its vocabularies and sources (past a bound, the value
        is dropped and counted in ``dropped_``, as when it is set)."""
        if not self.active:
            return
        self.clear(row)
        for key, vals in values.items():
            name, column = key.split("/")
            view = self.arrays_[key]
            if column in ("source", "slot_source"):
                codes = [self._source_code(v) if v is not None else -1 for v in vals]
            elif (column == "value" or column == "slot_code") and name in self.vocab_:
                codes = [self._vocab_code(name, v) if v is not None else -1 for v in vals]
            else:
                codes = vals
            if view.ndim == 1:
                view[row] = codes[0]
            else:
                view[row, :] = codes

    def _source_code(self, source: str) -> int:
        src = self._source_codes.get(source, -1)
        if src < 0 and len(self.sources_) < MAX_SOURCES:
            src = len(self.sources_)
            self.sources_.append(source)
            self._source_codes[source] = src
        return src

    def _vocab_code(self, name: str, value: str) -> int:
        codes = self._codes[name]
        code = codes.get(value, -1)
        if code < 0:
            if len(codes) >= self.specs[name].vocabulary_bound:
                self.dropped_[name] += 1
                return -1
            code = len(codes)
            codes[value] = code
            self.vocab_[name].append(value)
        return code

    # ------------------------------------------------------------------ state
    def _shape(self) -> dict[str, Any]:
        return {n: [s.type, s.rule, s.n_slots if s.rule == "most_frequent" else 0] for n, s in self.specs.items()}

    def _dtypes(self) -> dict[str, Any]:
        """The persisted dtype of each column (the format of the per-attribute columns)."""
        out: dict[str, Any] = {}
        for n, s in self.specs.items():
            out[f"{n}/value"] = {"category": np.int32, "number": np.float64, "timestamp": np.int64}[s.type]
            out[f"{n}/source"], out[f"{n}/time"] = np.int16, np.int64
            if n in self._slots:
                out[f"{n}/slot_code"], out[f"{n}/slot_count"] = np.int32, np.int64
                out[f"{n}/slot_time"], out[f"{n}/slot_source"] = np.int64, np.int16
        return out

    def to_state(self) -> ComponentState:
        """Every column (keyed ``<name>/<column>``, one contiguous array each with the dtype of
        its type: int32 category codes, float64 numbers, int64 times, int16 source codes), the
        vocabularies, the source names, the dropped counts and the declarations they were
        written for."""
        arrays = {k: np.ascontiguousarray(self.arrays_[k], dtype=dt) for k, dt in self._dtypes().items()}
        return arrays, {
            "attributes": self._shape(), "vocab": {n: list(v) for n, v in self.vocab_.items()},
            "sources": list(self.sources_), "dropped": dict(self.dropped_),
        }

    def load_state(self, state: ComponentState) -> None:
        """Replace every row with a state from :meth:`to_state` of a store with the same
        declarations.

        Raises
        ------
        NotReadyError
            If the state was written for other attribute declarations.
        """
        arrays, meta = state
        if meta.get("attributes") != self._shape():
            raise NotReadyError(
                f"expected attribute state for {self._shape()!r}, got {meta.get('attributes')!r} - at `attributes`"
            )
        if self.active:
            rows = int(np.shape(arrays[f"{self.names[0]}/value"])[0])
            self._value = np.tile(self._value_fill, (rows, 1))
            self._stamp = np.tile(self._stamp_fill, (rows, 1))
            self._source = np.tile(self._source_fill, (rows, 1))
            self._views()
            for key, view in self.arrays_.items():
                view[...] = np.asarray(arrays[key])
        self.vocab_ = {n: list(meta["vocab"][n]) for n in self.vocab_}
        self._codes = {n: {v: i for i, v in enumerate(vals)} for n, vals in self.vocab_.items()}
        self._lookups()
        self.sources_ = list(meta["sources"])
        self._source_codes = {s: i for i, s in enumerate(self.sources_)}
        self._ranked = 0
        if self._prio:
            self._rank_sources()
        self.dropped_ = {n: int(meta["dropped"][n]) for n in self.names}

    def nbytes_per_profile(self) -> int:
        if not self.active:
            return 0
        return int(sum(a[0:1].nbytes for a in (self._value, self._stamp, self._source)))
