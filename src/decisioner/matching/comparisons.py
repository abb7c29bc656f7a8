"""Field comparisons of candidate pairs: the level of every pair on every field, vectorised.

A pair's level on a field is the first of the comparison's levels that holds (0, 1, ...), the
``else`` level (``len(levels)``) when none does, or -1 when either record lacks the value (no
evidence). Levels are computed over the encoded columns of :mod:`.normalise`:

* ``exact`` compares codes (equal normalised values);
* phonetic levels compare jellyfish codes computed once per distinct value;
* ``date_transposed`` / ``date_year`` look up the value with day and month swapped / its year;
* ``initial``: one value is a single letter and the other starts with it (``j`` / ``john``: an
  initial is no disagreement on a first name);
* ``jaro_winkler``, ``jaro``, ``levenshtein`` and ``damerau`` run rapidfuzz (C++, the
  ``process.cpdist`` batch API releases the GIL) once per distinct pair of values, not per
  record pair: a million pairs of names hold far fewer distinct spellings. rapidfuzz is used
  because it is the fastest well-kept implementation of these metrics (and its scores are the
  textbook definitions); jellyfish (Rust) for the phonetic codes, which rapidfuzz lacks.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..config.matching import ComparisonSpec, LevelSpec
from ..errors import MissingDependencyError
from .normalise import Encoded, codes_of, phonetic

__all__ = ["FieldColumn", "compare_pairs", "conflicts", "level_names"]


def _rapidfuzz() -> Any:
    try:
        import rapidfuzz
        import rapidfuzz.distance
        import rapidfuzz.process
    except ImportError:
        raise MissingDependencyError(
            'expected the `rapidfuzz` package for fuzzy comparisons, got it not installed (pip install '
            '"decisioner[matching]")'
        ) from None
    return rapidfuzz


class FieldColumn:
    """An encoded field and what its levels need of it, computed once per distinct value."""

    def __init__(self, spec: ComparisonSpec, enc: Encoded) -> None:
        self.spec = spec
        self.enc = enc
        self._aux: dict[str, np.ndarray] = {}

    def aux(self, name: str) -> np.ndarray:
        """int32 per distinct value: phonetic code, transposed value's code (-1 if absent), year
        code, first letter (-1 if empty) or whether it is one letter."""
        got = self._aux.get(name)
        if got is not None:
            return got
        values = self.enc.values
        if name in ("metaphone", "nysiis", "soundex"):
            got = codes_of(values, phonetic(name))
        elif name == "date_transposed":
            index = {v: i for i, v in enumerate(values)}
            got = np.array([index.get(v[:4] + v[6:8] + v[4:6], -1) if len(v) == 8 else -1 for v in values],
                           dtype=np.int32)
        elif name == "date_year":
            got = codes_of(values, lambda v: v[:4] if len(v) >= 4 else "")
        elif name == "first_letter":
            got = np.array([ord(v[0]) if v else -1 for v in values], dtype=np.int32)
        elif name == "single_letter":
            got = np.array([len(v) == 1 for v in values], dtype=np.int32)
        else:  # pragma: no cover - names come from LevelSpec's Literal
            raise AssertionError(name)
        self._aux[name] = got
        return got


def level_names(spec: ComparisonSpec) -> list[str]:
    """Names of a comparison's levels, ``else`` last."""
    return [lv.name for lv in spec.levels] + ["else"]


def _scores(method: str, cutoff: float, col: FieldColumn, ca: np.ndarray, cb: np.ndarray) -> np.ndarray:
    """Similarity (jaro_winkler, jaro: float64, 0 below ``cutoff``) or edit distance
    (levenshtein, damerau: ``cutoff + 1`` above it) of each pair of codes, computed once per
    distinct unordered pair of values."""
    rf = _rapidfuzz()
    width = np.int64(len(col.enc.values) + 1)
    key = np.minimum(ca, cb).astype(np.int64) * width + np.maximum(ca, cb).astype(np.int64)
    uniq, inv = np.unique(key, return_inverse=True)
    vals = col.enc.values
    qa = [vals[k] for k in (uniq // width).tolist()]
    qb = [vals[k] for k in (uniq % width).tolist()]
    d = rf.distance
    if method in ("jaro_winkler", "jaro"):
        scorer = d.JaroWinkler.normalized_similarity if method == "jaro_winkler" else d.Jaro.normalized_similarity
        score = rf.process.cpdist(qa, qb, scorer=scorer, score_cutoff=cutoff, workers=-1, dtype=np.float64)
    else:
        scorer = d.Levenshtein.distance if method == "levenshtein" else d.DamerauLevenshtein.distance
        score = rf.process.cpdist(qa, qb, scorer=scorer, score_cutoff=int(cutoff), workers=-1, dtype=np.int64)
    out: np.ndarray = np.asarray(score, dtype=np.float64)[inv.reshape(-1)]
    return out


def _cutoff(spec: ComparisonSpec, method: str) -> float:
    """The loosest threshold of ``method`` among the levels: scores are computed once, at it."""
    ts = [float(lv.threshold or 0.0) for lv in spec.levels if lv.method == method]
    return min(ts) if method in ("jaro_winkler", "jaro") else max(ts)


def _holds(
    level: LevelSpec, col: FieldColumn, ca: np.ndarray, cb: np.ndarray, todo: np.ndarray,
    cache: dict[str, np.ndarray], n_pairs: int,
) -> np.ndarray:
    """Whether ``level`` holds for the open pairs ``todo`` (their codes ``ca``, ``cb``); scores of
    a similarity or distance are computed at its first level and kept in ``cache`` (by method,
    float64[n_pairs]) for the later levels of the same method."""
    m = level.method
    if m == "exact":
        return np.asarray(ca == cb)
    if m in ("metaphone", "nysiis", "soundex", "date_year"):
        code = col.aux(m)
        pa, pb = code[ca], code[cb]
        return np.asarray((pa == pb) & (pa >= 0))
    if m == "date_transposed":
        return np.asarray(col.aux(m)[ca] == cb)
    if m == "initial":
        first, single = col.aux("first_letter"), col.aux("single_letter")
        return np.asarray((first[ca] == first[cb]) & (first[ca] >= 0) & ((single[ca] == 1) | (single[cb] == 1)))
    full = cache.get(m)
    if full is None:  # first level of this method: score every pair still open, once
        full = cache[m] = np.full(n_pairs, np.nan)
        full[todo] = _scores(m, _cutoff(col.spec, m), col, ca, cb)
    s = full[todo]
    t = float(level.threshold or 0.0)
    return np.asarray(s >= t - 1e-9) if m in ("jaro_winkler", "jaro") else np.asarray(s <= t)


def compare_pairs(cols: list[FieldColumn], a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Levels (int8[E, F]) of pairs ``(a[e], b[e])`` on each field of ``cols``.

    Examples
    --------
    >>> from decisioner.matching.normalise import encode
    >>> from decisioner.config import ComparisonSpec, LevelSpec
    >>> spec = ComparisonSpec(field="name", kind="name", levels=(
    ...     LevelSpec(method="exact"), LevelSpec(method="jaro_winkler", threshold=0.9)))
    >>> enc, _ = encode(["Ada Lovelace", "ADA  LOVELACE", "Ada Lovelaec", "Bob Smith", None], "name")
    >>> compare_pairs([FieldColumn(spec, enc)], np.array([0, 0, 0, 0]), np.array([1, 2, 3, 4]))[:, 0].tolist()
    [0, 1, 2, -1]
    """
    e = a.shape[0]
    out = np.empty((e, len(cols)), dtype=np.int8)
    for f, col in enumerate(cols):
        ca = col.enc.codes[a]
        cb = col.enc.codes[b]
        lev = np.full(e, len(col.spec.levels), dtype=np.int8)
        missing = (ca < 0) | (cb < 0)
        lev[missing] = -1
        todo = np.flatnonzero(~missing)
        cache: dict[str, np.ndarray] = {}
        for k, level in enumerate(col.spec.levels):
            if todo.shape[0] == 0:
                break
            hit = _holds(level, col, ca[todo], cb[todo], todo, cache, e)
            lev[todo[hit]] = k
            todo = todo[~hit]
        out[:, f] = lev
    return out


def conflicts(specs: list[ComparisonSpec], levels: np.ndarray) -> np.ndarray:
    """Whether each pair (levels int8[E, F]) clearly disagrees on an ``identifying`` field: its
    level there is ``else`` (a missing value is no disagreement). Such pairs are two people.

    >>> from decisioner.config import ComparisonSpec, LevelSpec
    >>> first = ComparisonSpec(field="first", kind="name", identifying=True, levels=(
    ...     LevelSpec(method="exact"), LevelSpec(method="jaro_winkler", threshold=0.8)))
    >>> street = ComparisonSpec(field="street", kind="address")
    >>> conflicts([first, street], np.array([[2, 0], [1, 1], [-1, 0]], dtype=np.int8)).tolist()
    [True, False, False]
    """
    out = np.zeros(levels.shape[0], dtype=bool)
    for f, spec in enumerate(specs):
        if spec.identifying:
            out |= levels[:, f] == len(spec.levels)
    return out
