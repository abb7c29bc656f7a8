"""Audiences in bulk: a segment over every profile, its size, breakdowns and members.

Every live profile (a row with a person id) is evaluated by the compiled segment's kernel over
whole columns (:meth:`~decisioner.segments.compile.CompiledSegment.evaluate_many`). A breakdown
counts the members by one dimension, a cross-tab by two; the counts of a breakdown sum to the
size (members without a value count under ``"(none)"``). Dimensions:

* a declared category attribute (``region``, ``zip``), or ``tier`` once tiers are configured;
* ``zip3``: the first three characters of the category attribute ``zip``;
* ``interest``: the profile's strongest facet value at ``now`` (``interest:<facet>``: the
  strongest value of that facet), as ``facet=value``.
"""

from __future__ import annotations

import csv
import io
import time
from typing import Any, Final

import numpy as np

from ..errors import SchemaError
from .compile import CompiledSegment, Sources, compile_segment

__all__ = ["audience", "members", "breakdown_csv", "NONE"]

#: the breakdown key of members without a value
NONE: Final = "(none)"


def _dimension(sources: Sources, by: str, now: int, rows: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Codes (int64, -1: none) of ``rows`` along ``by``, and the names of the codes."""
    attrs = sources.attributes
    if by in attrs.specs and attrs.specs[by].type == "category":
        return attrs.arrays_[f"{by}/value"][rows].astype(np.int64), list(attrs.vocab_[by])
    if by in sources.categories:
        src = sources.categories[by]
        n = int(rows.max()) + 1 if rows.shape[0] else 0
        return src.codes_many(n, now)[rows].astype(np.int64), src.vocabulary()
    if by == "zip3" and "zip" in attrs.vocab_:
        names = sorted({v[:3] for v in attrs.vocab_["zip"]})
        index = {n: i for i, n in enumerate(names)}
        lut = np.array([index[v[:3]] for v in attrs.vocab_["zip"]] + [-1], dtype=np.int64)
        return lut[attrs.arrays_["zip/value"][rows].astype(np.int64)], names  # -1 indexes the trailing -1
    if by == "interest" or by.startswith("interest:"):
        return _top_interest(sources, by, now, rows)
    if by == "tier":
        raise SchemaError("Expected a breakdown the engine has, got unknown column tier: no engagement tiers "
                          "configured - at `by`")
    cats = [n for n, s in attrs.specs.items() if s.type == "category"]
    extra = ["zip3"] if "zip" in attrs.vocab_ else []
    raise SchemaError(
        f"Expected a category attribute in {cats!r}, {[*extra, *sources.categories, 'interest']!r} or "
        f"'interest:<facet>', got {by[:64]!r} - at `by`"
    )


def _top_interest(sources: Sources, by: str, now: int, rows: np.ndarray) -> tuple[np.ndarray, list[str]]:
    cat = sources.catalog
    prof = sources.profiles
    facet = by.partition(":")[2]
    if facet and facet not in cat.facet_names:
        raise SchemaError(f"Expected a catalog facet in {cat.facet_names!r}, got {facet[:64]!r} - at `by`")
    fid = prof.fid_[rows]
    dt = np.maximum(now - prof.t_[rows], 0).astype(np.float64)[:, None]
    live = fid >= 0
    hl = sources.half_lives[np.where(live, fid, 0)]
    s = prof.score_[rows].astype(np.float64) * np.power(2.0, -dt / hl)
    live &= s > 1e-6
    if facet:
        live &= cat.fv_facet[np.where(fid >= 0, fid, 0)] == cat.facet_names.index(facet)
    s = np.where(live, s, -1.0)
    best = s.argmax(axis=1) if rows.shape[0] else np.zeros(0, dtype=np.int64)
    top = np.take_along_axis(fid, best[:, None], axis=1)[:, 0].astype(np.int64)
    top[~live.any(axis=1)] = -1
    return top, list(cat.fv_names)


def _count(codes: np.ndarray, names: list[str]) -> dict[str, int]:
    counts = np.bincount(codes + 1, minlength=len(names) + 1)
    out = {names[i - 1]: int(c) for i, c in enumerate(counts.tolist()) if i and c}
    if counts[0]:
        out[NONE] = int(counts[0])
    return out


def _live(sources: Sources, person: np.ndarray, n: int) -> np.ndarray:
    return person[:n] >= 0


def audience(
    sources: Sources, expr: str | CompiledSegment, person: np.ndarray, n: int, *, now: int,
    by: str | None = None, by2: str | None = None,
) -> dict[str, Any]:
    """Size and breakdowns of segment ``expr`` over rows ``0 .. n - 1`` whose ``person`` id
    (int64) is set.

    Returns ``segment``, ``size`` (members), ``profiles`` (live profiles evaluated),
    ``breakdown`` (value -> members, with ``by``), ``crosstab`` (value of ``by`` -> value of
    ``by2`` -> members, with both) and ``seconds`` (wall time of the evaluation).

    Raises
    ------
    SchemaError
        If ``expr`` is not a segment of these stores or ``by``/``by2`` not a dimension.
    """
    t0 = time.perf_counter()
    seg = expr if isinstance(expr, CompiledSegment) else compile_segment(expr, sources)
    if by2 is not None and by is None:
        raise SchemaError("Expected `by` with `by2`, got only `by2` - at `by2`")
    mask = seg.evaluate_many(now, n).view(bool) & _live(sources, person, n)
    rows = np.flatnonzero(mask)
    out: dict[str, Any] = {"segment": seg.expr, "size": int(rows.shape[0]),
                           "profiles": int(np.count_nonzero(person[:n] >= 0))}
    if by is not None:
        c1, n1 = _dimension(sources, by, now, rows)
        out["breakdown"] = _count(c1, n1)
        if by2 is not None:
            c2, n2 = _dimension(sources, by2, now, rows)
            tab: dict[str, dict[str, int]] = {}
            for code in np.unique(c1).tolist():
                tab[n1[code] if code >= 0 else NONE] = _count(c2[c1 == code], n2)
            out["crosstab"] = tab
    out["seconds"] = time.perf_counter() - t0
    return out


def members(sources: Sources, expr: str | CompiledSegment, person: np.ndarray, n: int, *, now: int) -> np.ndarray:
    """The person ids (int64, ascending) of the members of ``expr`` at ``now``."""
    seg = expr if isinstance(expr, CompiledSegment) else compile_segment(expr, sources)
    mask = seg.evaluate_many(now, n).view(bool) & _live(sources, person, n)
    return np.sort(person[:n][mask])


def breakdown_csv(out: dict[str, Any]) -> str:
    """An audience's breakdown (or its size alone) as CSV text: ``value,count`` rows."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["value", "count"])
    for k, v in out.get("breakdown", {"(all)": out["size"]}).items():
        w.writerow([k, v])
    return buf.getvalue()
