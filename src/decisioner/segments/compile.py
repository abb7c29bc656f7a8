"""Compile a segment expression against an engine's stores into a flat postfix program.

Names resolve here, once: a declared attribute, ``tier`` (engagement tiers, once configured),
and the functions ``affinity(facet, value)``, ``consent(purpose[, channel])``,
``days_since(type)``, ``count(type, days=N)`` and ``segment(name)``. Each becomes a numbered
*column*, a per-row float64 value read the same way for every profile (:meth:`Column.many`)
and for one profile in a decision (:meth:`Column.one`):

==============================  ==========================================================
column                          value (unset: NaN for numbers, -1 for category codes)
==============================  ==========================================================
number / timestamp attribute    the value; NaN when not set
category attribute, ``tier``    the vocabulary code; ``==``, ``!=``, ``in``, ``startswith``
                                match codes precomputed here (refreshed when the vocabulary
                                grows)
``affinity(f, v)``              share of value ``v`` in the profile's interest in facet ``f``
                                decayed to ``now`` (0..1; 0 with no interest in ``f``): the
                                values of one facet sum to 1, whatever the other facets hold
``consent(p)``                  1 when ``p`` is allowed on every channel, else 0
``consent(p, ch)``              1 when ``p`` is allowed on channel ``ch``
``days_since(t)``               days since the newest event of type ``t`` (+inf: never)
``count(t, days=N)``            events of type ``t`` in the last ``N`` days (whole buckets,
                                see :mod:`decisioner.activity`)
==============================  ==========================================================

A comparison with an unset value is false and ``a != b`` is ``not (a == b)`` (so an unset
region is ``!= "north"``). ``segment(name)`` inlines the named segment's program (cycles are
refused). Nothing is evaluated while compiling.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Protocol

import numpy as np

from .._kernels import segments as K
from ..consent import CHANNELS, PURPOSES
from ..consent.store import CHANNEL, PURPOSE, cell, purpose_mask
from ..errors import SchemaError
from . import parser as P

if TYPE_CHECKING:
    from ..activity import ActivityStore
    from ..attributes import AttributeStore
    from ..catalog import Catalog
    from ..consent.store import ConsentStore
    from ..profiles import ProfileStore

__all__ = ["Sources", "CategorySource", "CompiledSegment", "compile_segment", "Column"]

_CMP: Final = {"==": K.CMP_EQ, "!=": K.CMP_NE, "<": K.CMP_LT, "<=": K.CMP_LE, ">": K.CMP_GT, ">=": K.CMP_GE}
_FUNCTIONS: Final = ("affinity", "consent", "days_since", "count", "segment")


class CategorySource(Protocol):
    """A category column from another store (engagement tiers): codes by row into a vocabulary."""

    def vocabulary(self) -> list[str]: ...

    def codes_many(self, n: int, now: int) -> np.ndarray: ...

    def code_one(self, row: int, now: int) -> int: ...


@dataclass
class Sources:
    """The stores a segment reads, and the named segments (``[segments]``)."""

    attributes: AttributeStore
    activity: ActivityStore
    consent: ConsentStore
    profiles: ProfileStore
    catalog: Catalog
    half_lives: np.ndarray
    segments: dict[str, str] = field(default_factory=dict)
    #: further category columns by name (``tier`` once engagement tiers are configured)
    categories: dict[str, CategorySource] = field(default_factory=dict)


def _err(expected: str, got: str, pos: int) -> SchemaError:
    return SchemaError(f"Expected {expected}, got {got} - at position {pos} of the segment")


class Column(ABC):
    """One per-row value a segment reads (see the module docstring)."""

    kind = "number"  # or "category", "bool"

    @abstractmethod
    def many(self, now: int, n: int) -> np.ndarray:
        """float64[n]: the value of rows ``0 .. n - 1`` at ``now``."""

    @abstractmethod
    def one(self, row: int, now: int) -> float:
        """The value of ``row`` at ``now``."""

    def vocabulary(self) -> list[str]:
        """A category column's values by code."""
        return []


class _Attr(Column):
    def __init__(self, store: AttributeStore, name: str) -> None:
        self.store, self.name = store, name
        self.kind = "category" if store.specs[name].type == "category" else "number"
        self.value_key, self.source_key = f"{name}/value", f"{name}/source"

    def many(self, now: int, n: int) -> np.ndarray:
        v = self.store.arrays_[self.value_key][:n]
        out = v.astype(np.float64)
        if self.kind == "number":
            out[self.store.arrays_[self.source_key][:n] < 0] = math.nan
        return out

    def one(self, row: int, now: int) -> float:
        a = self.store.arrays_
        if self.kind == "number" and a[self.source_key][row] < 0:
            return math.nan
        return float(a[self.value_key][row])

    def vocabulary(self) -> list[str]:
        return self.store.vocab_[self.name]


class _Category(Column):
    kind = "category"

    def __init__(self, src: CategorySource) -> None:
        self.src = src

    def many(self, now: int, n: int) -> np.ndarray:
        return np.asarray(self.src.codes_many(n, now), dtype=np.float64)

    def one(self, row: int, now: int) -> float:
        return float(self.src.code_one(row, now))

    def vocabulary(self) -> list[str]:
        return self.src.vocabulary()


class _Consent(Column):
    kind = "bool"

    def __init__(self, store: ConsentStore, mask: int) -> None:
        self.store, self.mask = store, mask
        self._m = np.uint64(mask)

    def many(self, now: int, n: int) -> np.ndarray:
        held: np.ndarray = (self.store.allow_[:n] & self._m) == self._m
        return held.astype(np.float64)

    def one(self, row: int, now: int) -> float:
        return 1.0 if int(self.store.allow_[row]) & self.mask == self.mask else 0.0


class _DaysSince(Column):
    def __init__(self, store: ActivityStore, etype: str) -> None:
        self.store, self.etype = store, etype

    def many(self, now: int, n: int) -> np.ndarray:
        return self.store.days_since_many(self.etype, now, n)

    def one(self, row: int, now: int) -> float:
        return self.store.days_since_one(row, self.etype, now)


class _Count(Column):
    def __init__(self, store: ActivityStore, etype: str, nb: int) -> None:
        self.store, self.etype, self.nb = store, etype, nb

    def many(self, now: int, n: int) -> np.ndarray:
        return self.store.count_many(self.etype, self.nb, now, n)

    def one(self, row: int, now: int) -> float:
        return self.store.count_one(row, self.etype, self.nb, now)


class _Affinity(Column):
    def __init__(self, profiles: ProfileStore, catalog: Catalog, half_lives: np.ndarray, facet: int, fv: int) -> None:
        self.profiles, self.fv_facet, self.facet, self.fv = profiles, catalog.fv_facet, facet, fv
        self.hl = float(half_lives[fv])
        self._one = np.empty(1, dtype=np.float64)

    def many(self, now: int, n: int) -> np.ndarray:
        p = self.profiles
        out = np.empty(n, dtype=np.float64)
        K.affinity_share(p.fid_[:n], p.score_[:n], p.t_[:n], self.fv_facet, self.hl, self.facet, self.fv, now, out)
        return out

    def one(self, row: int, now: int) -> float:
        p = self.profiles
        r = slice(row, row + 1)
        K.affinity_share(p.fid_[r], p.score_[r], p.t_[r], self.fv_facet, self.hl, self.facet, self.fv, now, self._one)
        return float(self._one[0])


@dataclass
class _SetLeaf:
    """A category test whose member codes depend on the vocabulary (rebuilt when it grows)."""

    instr: int
    col: int
    match: Callable[[str], bool]


class CompiledSegment:
    """A segment compiled against one engine's stores: a postfix program over its columns.

    ``evaluate_many(now, n)`` gives a uint8 mask over rows ``0 .. n - 1``; ``test(row, now)``
    one row's membership (the same kernel, on that row's column values).
    """

    def __init__(self, expr: str, columns: list[Column], prog: list[list[int]], consts: list[float],
                 sets: list[_SetLeaf]) -> None:
        self.expr = expr
        self.columns = columns
        self.prog = np.array(prog, dtype=np.int64).reshape(-1, 4)
        self.consts = np.array(consts or [0.0], dtype=np.float64)
        self._sets = sets
        self._sizes: tuple[int, ...] = ()
        self.table = np.zeros(1, dtype=np.uint8)
        self._vals = np.empty((max(1, len(columns)), 1), dtype=np.float64)
        self._out = np.empty(1, dtype=np.uint8)
        self.refresh()

    def refresh(self) -> None:
        """Recompute the member codes of category tests if a vocabulary grew since."""
        if not self._sets:
            return
        sizes = tuple(len(self.columns[s.col].vocabulary()) for s in self._sets)
        if sizes == self._sizes:
            return
        parts, off = [], 0
        for s, size in zip(self._sets, sizes):
            vocab = self.columns[s.col].vocabulary()
            parts.append(np.fromiter((1 if s.match(v) else 0 for v in vocab[:size]), dtype=np.uint8, count=size))
            self.prog[s.instr, 2], self.prog[s.instr, 3] = off, size
            off += size
        self.table = np.concatenate([*parts, np.zeros(1, dtype=np.uint8)])
        self._sizes = sizes

    def values_many(self, now: int, n: int) -> np.ndarray:
        """The columns of rows ``0 .. n - 1`` (float64[n_cols, n])."""
        vals = np.empty((max(1, len(self.columns)), n), dtype=np.float64)
        for i, c in enumerate(self.columns):
            vals[i] = c.many(now, n)
        return vals

    def evaluate_many(self, now: int, n: int) -> np.ndarray:
        """uint8[n]: 1 for each row of ``0 .. n - 1`` in the segment at ``now``."""
        self.refresh()
        out = np.empty(n, dtype=np.uint8)
        if n:
            K.segment_eval(self.prog, self.consts, self.table, self.values_many(now, n), out)
        return out

    def test(self, row: int, now: int) -> bool:
        """Whether ``row`` is in the segment at ``now`` (the writer's path: reuses buffers)."""
        self.refresh()
        vals = self._vals
        for i, c in enumerate(self.columns):
            vals[i, 0] = c.one(row, now)
        return K.segment_eval(self.prog, self.consts, self.table, vals, self._out) == 1


class _Compiler:
    def __init__(self, sources: Sources) -> None:
        self.src = sources
        self.columns: list[Column] = []
        self.keys: dict[tuple[Any, ...], int] = {}
        self.prog: list[list[int]] = []
        self.consts: list[float] = []
        self.sets: list[_SetLeaf] = []
        self.stack: list[str] = []

    def column(self, key: tuple[Any, ...], make: Callable[[], Column]) -> int:
        i = self.keys.get(key)
        if i is None:
            i = self.keys[key] = len(self.columns)
            self.columns.append(make())
        return i

    def node(self, n: P.Node) -> None:
        if isinstance(n, (P.And, P.Or)):
            self.node(n.items[0])
            for it in n.items[1:]:
                self.node(it)
                self.prog.append([K.OP_AND if isinstance(n, P.And) else K.OP_OR, 0, 0, 0])
        elif isinstance(n, P.Not):
            self.node(n.item)
            self.prog.append([K.OP_NOT, 0, 0, 0])
        elif isinstance(n, P.Truth):
            op = n.operand
            if isinstance(op, P.Call) and op.name == "segment":
                self.inline(op)
                return
            col = self.operand(op)
            if self.columns[col].kind != "bool":
                raise _err(f"a comparison after {_named(op)} (it is a {self.columns[col].kind} column)",
                           "none", n.pos)
            self.prog.append([K.OP_TRUE, col, 0, 0])
        elif isinstance(n, P.Compare):
            col = self.operand(n.operand)
            kind = self.columns[col].kind
            if kind == "category":
                if not isinstance(n.value, str) or n.op not in ("==", "!="):
                    raise _err(f"'==', '!=', 'in' or 'startswith' and a string for {_named(n.operand)}",
                               f"{n.op!r} {n.value!r}", n.pos)
                self.set_leaf(col, _equals(n.value))
                if n.op == "!=":
                    self.prog.append([K.OP_NOT, 0, 0, 0])
            elif kind == "number":
                if not isinstance(n.value, float):
                    raise _err(f"a number to compare {_named(n.operand)} with", "a string", n.pos)
                self.consts.append(n.value)
                self.prog.append([K.OP_CMP, col, _CMP[n.op], len(self.consts) - 1])
            else:
                raise _err(f"{_named(n.operand)} on its own (it is true or false)", f"{n.op!r}", n.pos)
        elif isinstance(n, P.InList):
            col = self.operand(n.operand)
            kind = self.columns[col].kind
            if kind == "category":
                if not all(isinstance(v, str) for v in n.values):
                    raise _err(f"a list of strings for {_named(n.operand)}", "a number in it", n.pos)
                self.set_leaf(col, _member(frozenset(str(v) for v in n.values)))
            elif kind == "number":
                if not all(isinstance(v, float) for v in n.values):
                    raise _err(f"a list of numbers for {_named(n.operand)}", "a string in it", n.pos)
                for j, v in enumerate(n.values):
                    self.consts.append(float(v))
                    self.prog.append([K.OP_CMP, col, K.CMP_EQ, len(self.consts) - 1])
                    if j:
                        self.prog.append([K.OP_OR, 0, 0, 0])
            else:
                raise _err(f"{_named(n.operand)} on its own (it is true or false)", "'in'", n.pos)
        else:  # StartsWith
            col = self.operand(n.operand)
            if self.columns[col].kind != "category":
                raise _err(f"a category column before 'startswith', not {_named(n.operand)}",
                           f"a {self.columns[col].kind} column", n.pos)
            prefix = n.prefix
            self.set_leaf(col, lambda v: v.startswith(prefix))

    def set_leaf(self, col: int, match: Callable[[str], bool]) -> None:
        self.sets.append(_SetLeaf(len(self.prog), col, match))
        self.prog.append([K.OP_SET, col, 0, 0])

    def inline(self, call: P.Call) -> None:
        if len(call.args) != 1 or call.kwargs or not isinstance(call.args[0], str):
            raise _err("segment(\"name\")", f"{len(call.args)} argument(s)", call.pos)
        name = call.args[0]
        if name not in self.src.segments:
            raise _err(f"a named segment in {sorted(self.src.segments)!r}", repr(name[:64]), call.pos)
        if name in self.stack:
            chain = " -> ".join([*self.stack[self.stack.index(name):], name])
            raise _err("segments that do not refer to themselves", f"the cycle {chain}", call.pos)
        if len(self.stack) >= P.MAX_DEPTH:
            raise _err(f"segments nested at most {P.MAX_DEPTH} deep", "deeper", call.pos)
        self.stack.append(name)
        try:
            self.node(P.parse(self.src.segments[name]))
        except SchemaError as exc:
            if "(in segment " in str(exc):
                raise
            raise SchemaError(f"{exc} (in segment {name!r})") from None
        finally:
            self.stack.pop()

    def operand(self, op: P.Operand) -> int:
        s = self.src
        if isinstance(op, P.Name):
            name = op.name
            if name in s.attributes.specs:
                return self.column(("attr", name), lambda: _Attr(s.attributes, name))
            if name in s.categories:
                return self.column(("cat", name), lambda: _Category(s.categories[name]))
            if name in ("tier", "engagement"):
                raise _err("a known column", f"unknown function/column {name}: no engagement tiers configured", op.pos)
            if name in _FUNCTIONS:
                raise _err(f"a call {name}(...)", repr(name), op.pos)
            known = sorted([*s.attributes.specs, *s.categories])
            raise _err(f"a declared attribute in {known!r} or a function in {list(_FUNCTIONS)!r}", repr(name), op.pos)
        fn, args, kw = op.name, op.args, dict(op.kwargs)
        if fn == "affinity":
            _arity(op, 2, 2, strings=True)
            facet, value = str(args[0]), str(args[1])
            cat = s.catalog
            if facet not in cat.facet_names:
                raise _err(f"a catalog facet in {cat.facet_names!r}", repr(facet[:64]), op.pos)
            fv = cat.fv_index.get(f"{facet}={value}")
            if fv is None:
                raise _err(f"a value of facet {facet!r} in the catalog", repr(value[:64]), op.pos)
            f_i = cat.facet_names.index(facet)
            return self.column(("aff", fv), lambda: _Affinity(s.profiles, cat, s.half_lives, f_i, fv))
        if fn == "consent":
            _arity(op, 1, 2, strings=True)
            purpose = str(args[0])
            if purpose not in PURPOSES:
                raise _err(f"a purpose in {list(PURPOSES)!r}", repr(purpose[:64]), op.pos)
            if len(args) == 2:
                ch = str(args[1])
                if ch not in CHANNELS:
                    raise _err(f"a consent channel in {list(CHANNELS)!r}", repr(ch[:64]), op.pos)
                mask = 1 << cell(PURPOSE[purpose], CHANNEL[ch])
            else:
                mask = purpose_mask(PURPOSE[purpose])
            return self.column(("consent", mask), lambda: _Consent(s.consent, mask))
        if fn in ("days_since", "count"):
            if fn == "days_since":
                _arity(op, 1, 1, strings=True)
            else:
                _arity(op, 1, 1, strings=True, keywords=("days",))
            etype = str(args[0])
            act = s.activity
            if etype not in act.type_index:
                raise _err(f"a counted event type in {act.types!r} (`activity.types`)", repr(etype[:64]), op.pos)
            if fn == "days_since":
                return self.column(("days", etype), lambda: _DaysSince(act, etype))
            days = kw.get("days")
            horizon = act.spec.horizon_days
            if days is None or not (0 < days <= horizon):
                raise _err(f"count(type, days=N) with 0 < N <= {horizon} (`activity` buckets)",
                           "no days" if days is None else f"days={days:g}", op.pos)
            nb = act.window_buckets(days)
            return self.column(("count", etype, nb), lambda: _Count(act, etype, nb))
        if fn == "segment":
            raise _err("segment(...) on its own (it is true or false)", "a comparison", op.pos)
        if fn == "tier":
            raise _err("a known function", "unknown function/column tier: no engagement tiers configured", op.pos)
        raise _err(f"a function in {list(_FUNCTIONS)!r}", f"{fn[:64]!r}()", op.pos)


def _named(op: P.Operand) -> str:
    return op.name if isinstance(op, P.Name) else f"{op.name}()"


def _arity(op: P.Call, lo: int, hi: int, *, strings: bool, keywords: tuple[str, ...] = ()) -> None:
    n = len(op.args)
    if not lo <= n <= hi:
        want = f"{lo}" if lo == hi else f"{lo} or {hi}"
        raise _err(f"{want} argument(s) for {op.name}()", f"{n}", op.pos)
    if strings and not all(isinstance(a, str) for a in op.args):
        raise _err(f"string arguments for {op.name}()", "a number", op.pos)
    for k, _ in op.kwargs:
        if k not in keywords:
            raise _err(f"keyword arguments {list(keywords)!r} for {op.name}()", repr(k[:64]), op.pos)


def _equals(value: str) -> Callable[[str], bool]:
    return lambda v: v == value


def _member(values: frozenset[str]) -> Callable[[str], bool]:
    return lambda v: v in values


def compile_segment(expr: str, sources: Sources) -> CompiledSegment:
    """Parse ``expr`` and resolve its names against ``sources``.

    Raises
    ------
    SchemaError
        If ``expr`` is not a segment (:func:`decisioner.segments.parser.parse`), names an unknown
        column, function, value, event type or segment, compares a column with the wrong kind
        of value, or a named segment refers to itself.
    """
    c = _Compiler(sources)
    c.node(P.parse(expr))
    return CompiledSegment(expr, c.columns, c.prog, c.consts, c.sets)
