"""AttributeStore: typed profile attributes with provenance and reconciliation rules.

Each attribute declared in ``[attributes.<name>]`` (:mod:`decisioner.config.attributes`) is a
few columns keyed by profile row, grown by doubling with the other row-keyed stores:

* ``<name>/value``: float64 (number), int64 epoch ms (timestamp) or an int32 code into the
  attribute's vocabulary (category; ``-1``: none);
* ``<name>/source`` (int16 code into the store's source names; ``-1``: the attribute is not
  set) and ``<name>/time`` (int64 epoch ms): the provenance of the value, the source and event
  time it came from;
* for ``most_frequent``, ``slots`` counted values per row: ``<name>/slot_code``,
  ``slot_count``, ``slot_time`` and ``slot_source`` (the newest sighting of each value).

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
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from .errors import NotReadyError, SchemaError
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
        self.dropped_: dict[str, int] = {n: 0 for n in self.names}
        self._rank = {n: {src: i for i, src in enumerate(s.sources)} for n, s in self.specs.items()}
        self._fill: dict[str, int | float] = {}
        #: each attribute's column keys in arrays_ (built once: the hot path formats no string)
        self._key: dict[str, dict[str, str]] = {
            n: {c: f"{n}/{c}" for c in ("value", "source", "time", *(f"slot_{x}" for x in ("code", "count", "time",
                                                                                            "source")))}
            for n in self.specs
        }
        self.arrays_: dict[str, np.ndarray] = {}
        cap = max(1, capacity)
        for n, s in self.specs.items():
            vdt = {"category": np.int32, "number": np.float64, "timestamp": np.int64}[s.type]
            self._column(f"{n}/value", (cap,), vdt, -1 if s.type == "category" else 0)
            self._column(f"{n}/source", (cap,), np.int16, -1)
            self._column(f"{n}/time", (cap,), np.int64, 0)
            if s.rule == "most_frequent":
                k = s.n_slots
                self._column(f"{n}/slot_code", (cap, k), np.int32, -1)
                self._column(f"{n}/slot_count", (cap, k), np.int64, 0)
                self._column(f"{n}/slot_time", (cap, k), np.int64, 0)
                self._column(f"{n}/slot_source", (cap, k), np.int16, -1)

    def _column(self, key: str, shape: tuple[int, ...], dtype: Any, fill: int | float) -> None:
        self._fill[key] = fill
        self.arrays_[key] = np.full(shape, fill, dtype=dtype)

    @property
    def n_rows(self) -> int:
        return int(next(iter(self.arrays_.values())).shape[0]) if self.arrays_ else 0

    # ------------------------------------------------------------------ rows
    def ensure(self, n_rows: int) -> None:
        """Grow (by doubling) so rows ``0 .. n_rows - 1`` exist."""
        if not self.active:
            return
        cap = self.n_rows
        if n_rows <= cap:
            return
        while cap < n_rows:
            cap *= 2
        for key, old in self.arrays_.items():
            new = np.full((cap, *old.shape[1:]), self._fill[key], dtype=old.dtype)
            new[: old.shape[0]] = old
            self.arrays_[key] = new

    def clear(self, rows: int | np.ndarray | list[int]) -> None:
        """Unset every attribute of a row (or an int array of rows): erasure, eviction, a new
        profile, the anonymous scratch row."""
        if not self.active:
            return
        for key, a in self.arrays_.items():
            a[rows] = self._fill[key]

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
        for name, v in values.items():
            spec = self.specs.get(name)
            if spec is None:
                if load:
                    raise SchemaError(f"Expected a declared attribute in {self.names!r}, got {name!r} - at `{where}`")
                continue
            if not (load or spec.from_events):
                continue
            if spec.type == "category" and v.__class__ is str and v in self._codes[name]:
                out.append((name, v))  # a value already held: checked when it first came
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
        _not_identifier(source, where)

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
        for name, v in pairs:
            spec = self.specs[name]
            if spec.type == "category":
                codes = self._codes[name]
                code = codes.get(v, -1)
                if code < 0:
                    if len(codes) >= spec.vocabulary_bound:
                        self.dropped_[name] += 1
                        continue
                    code = len(codes)
                    codes[v] = code
                    self.vocab_[name].append(v)
                v = code
            if spec.rule == "most_frequent":
                self._count(name, row, v, 1, src, time)
            else:
                self._offer(name, spec.rule, row, v, src, time, later_wins=True)

    def _offer(self, name: str, rule: str, row: int, v: Any, src: int, t: int, *, later_wins: bool) -> None:
        a = self.arrays_
        k = self._key[name]
        val, srcs, times = a[k["value"]], a[k["source"]], a[k["time"]]
        held = int(srcs[row])
        if held < 0:
            val[row], srcs[row], times[row] = v, src, t
            return
        ht = int(times[row])
        newer = t > ht or (later_wins and t == ht)
        if rule == "most_recent":
            take = newer
        elif rule == "first_seen":
            take = t < ht
        elif rule == "source_priority":
            rank = self._rank[name]
            worst = len(rank)
            mine, theirs = rank.get(self.sources_[src], worst), rank.get(self.sources_[held], worst)
            take = mine < theirs or (mine == theirs and newer)
        elif rule == "sum":
            val[row] += v
            take = False
            if t >= ht:
                srcs[row], times[row] = src, t
        else:
            hv = val[row]
            better = v < hv if rule == "min" else v > hv
            take = better or (v == hv and t < ht)
        if take:
            val[row], srcs[row], times[row] = v, src, t

    def _count(self, name: str, row: int, code: int, count: int, src: int, t: int) -> None:
        # a handful of slots: Python lists and scalar reads beat numpy calls on arrays this small
        a = self.arrays_
        k = self._key[name]
        codes, counts, times, sources = a[k["slot_code"]], a[k["slot_count"]], a[k["slot_time"]], a[k["slot_source"]]
        sc = codes[row].tolist()
        if code in sc:
            j = sc.index(code)
            counts[row, j] += count
            if t >= times[row, j]:
                times[row, j], sources[row, j] = t, src
            lead = int(a[k["value"]][row])
            if lead == code:  # still the most frequent: its newest sighting may have moved
                a[k["time"]][row], a[k["source"]][row] = times[row, j], sources[row, j]
                return
            if lead in sc:  # the counted value overtakes the leader, or not (the order of _lead)
                jl = sc.index(lead)
                mine = (-int(counts[row, j]), -int(times[row, j]), code)
                if mine < (-int(counts[row, jl]), -int(times[row, jl]), lead):
                    a[k["value"]][row], a[k["time"]][row], a[k["source"]][row] = code, times[row, j], sources[row, j]
                return
        else:
            if -1 in sc:
                j, base = sc.index(-1), 0
            else:
                sn, st = counts[row].tolist(), times[row].tolist()
                j = min(range(len(sc)), key=lambda i: (sn[i], st[i]))  # the lowest count, the oldest among equals
                base = sn[j]
            codes[row, j], counts[row, j], times[row, j], sources[row, j] = code, base + count, t, src
            sc[j] = code
        self._lead(name, row, sc, counts[row].tolist(), times[row].tolist())

    def _lead(self, name: str, row: int, sc: list[int], sn: list[int], st: list[int]) -> None:
        """Set the value of a ``most_frequent`` row from its slots (``sc``, ``sn``, ``st``: its
        codes, counts and times as lists)."""
        j = min(range(len(sc)), key=lambda i: (sc[i] < 0, -sn[i], -st[i], sc[i]))  # most, newest, lowest code
        if sc[j] >= 0:
            a = self.arrays_
            k = self._key[name]
            a[k["value"]][row], a[k["time"]][row] = sc[j], st[j]
            a[k["source"]][row] = a[k["slot_source"]][row, j]

    def _merge_counts(self, name: str, dst: int, src: int) -> None:
        """Add the counts of equal values of two rows and keep the strongest ``slots`` (no count
        is inherited: both rows' counts are known)."""
        a = self.arrays_
        cols = [a[f"{name}/slot_{c}"] for c in ("code", "count", "time", "source")]
        seen: dict[int, list[int]] = {}
        for row in (dst, src):
            for code, n, t, s in zip(*(c[row].tolist() for c in cols)):
                if code < 0:
                    continue
                held = seen.get(code)
                if held is None:
                    seen[code] = [n, t, s]
                else:
                    held[0] += n
                    if t > held[1]:
                        held[1], held[2] = t, s
        best = sorted(seen.items(), key=lambda kv: (-kv[1][0], -kv[1][1], kv[0]))[: cols[0].shape[1]]
        for c, fill in zip(cols, (-1, 0, 0, -1)):
            c[dst] = fill
        for j, (code, (n, t, s)) in enumerate(best):
            cols[0][dst, j], cols[1][dst, j], cols[2][dst, j], cols[3][dst, j] = code, n, t, s
        self._lead(name, dst, *(c[dst].tolist() for c in cols[:3]))

    def merge(self, dst: int, src: int) -> None:
        """Reconcile row ``src`` into row ``dst`` by each attribute's rule; ``src`` is cleared."""
        if not self.active:
            return
        a = self.arrays_
        for name, spec in self.specs.items():
            if spec.rule == "most_frequent":
                self._merge_counts(name, dst, src)
                continue
            s = int(a[f"{name}/source"][src])
            if s >= 0:
                v = a[f"{name}/value"][src].item()
                self._offer(name, spec.rule, dst, v, s, int(a[f"{name}/time"][src]), later_wins=False)
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
        a = self.arrays_
        for name in self.names:
            s = int(a[f"{name}/source"][row])
            if s >= 0:
                out[name] = (self._decode(name, a[f"{name}/value"][row]), self.sources_[s], int(a[f"{name}/time"][row]))
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

    # ------------------------------------------------------------------ state
    def _shape(self) -> dict[str, Any]:
        return {n: [s.type, s.rule, s.n_slots if s.rule == "most_frequent" else 0] for n, s in self.specs.items()}

    def to_state(self) -> ComponentState:
        """Every column (keyed ``<name>/<column>``), the vocabularies, the source names, the
        dropped counts and the declarations they were written for."""
        return dict(self.arrays_), {
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
        for key, old in self.arrays_.items():
            self.arrays_[key] = np.array(arrays[key], dtype=old.dtype)
        self.vocab_ = {n: list(meta["vocab"][n]) for n in self.vocab_}
        self._codes = {n: {v: i for i, v in enumerate(vals)} for n, vals in self.vocab_.items()}
        self.sources_ = list(meta["sources"])
        self._source_codes = {s: i for i, s in enumerate(self.sources_)}
        self.dropped_ = {n: int(meta["dropped"][n]) for n in self.names}

    def nbytes_per_profile(self) -> int:
        return int(sum(a[0:1].nbytes for a in self.arrays_.values()))
