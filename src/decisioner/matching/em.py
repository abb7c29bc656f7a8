"""Fellegi-Sunter weights: ``u`` from random pairs, ``m`` and the prior by expectation
maximisation over the candidate pairs, without labels (Fellegi and Sunter 1969; Winkler 1988;
the scheme Splink follows).

For field ``f`` at level ``l``, ``m[f][l] = P(level l | match)`` and ``u[f][l] = P(level l |
non-match)``; a pair's Bayes factor is the product over its fields of ``m / u`` (a missing value
gives 1), so its match probability is ``prior * K / (prior * K + 1 - prior)``. The field weight
reported with a suggestion is ``log2(m / u)``.

* ``u`` is estimated once from pairs drawn at random (seeded): nearly all of them are
  non-matches, so level frequencies among them are ``u``. One pseudo-count per level keeps
  every ``u`` above zero. Levels set by hand keep their ``u``.
* ``m`` and the prior come from EM over the distinct comparison patterns of the candidate pairs
  (each pattern once, with its count): the E step gives each pattern its match probability, the
  M step the levels' shares among expected matches. ``u`` stays fixed (learning it by EM too
  lets a cluster of non-matches pass for the matches). Levels set by hand keep their ``m``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config.matching import ComparisonSpec

__all__ = ["Weights", "pattern_codes", "estimate_u", "fit_em", "initial_m"]

_FLOOR = 1e-9


@dataclass
class Weights:
    """Fellegi-Sunter parameters: per field ``m`` and ``u`` (float64[levels + 1], ``else`` last)
    and the prior probability that a candidate pair matches; ``iterations`` EM ran."""

    m: list[np.ndarray]
    u: list[np.ndarray]
    prior: float
    iterations: int = 0

    def log2_factors(self) -> list[np.ndarray]:
        """Per field, the weight ``log2(m / u)`` of each level."""
        return [np.log2(np.maximum(m, _FLOOR) / np.maximum(u, _FLOOR)) for m, u in zip(self.m, self.u, strict=True)]

    def probability(self, levels: np.ndarray, adjust: np.ndarray | None = None) -> np.ndarray:
        """Match probability (float64[E]) of pairs with ``levels`` (int8[E, F]); ``adjust``
        (float64[E]) adds to each pair's log2 Bayes factor (term-frequency adjustments)."""
        logit = np.full(levels.shape[0], np.log2(self.prior / (1.0 - self.prior)))
        if adjust is not None:
            logit += adjust
        for f, w in enumerate(self.log2_factors()):
            lv = levels[:, f].astype(np.int64)
            present = lv >= 0
            logit[present] += w[lv[present]]
        out: np.ndarray = 1.0 / (1.0 + np.exp2(-np.clip(logit, -1000.0, 1000.0)))
        return out


def pattern_codes(levels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The distinct rows of ``levels`` (int8[E, F]): (patterns int8[P, F], counts int64[P],
    inverse int64[E]), through one int64 code per row (radix 10: at most 8 levels and else, plus
    missing)."""
    e, f = levels.shape
    code = np.zeros(e, dtype=np.int64)
    for j in range(f):
        code = code * 10 + (levels[:, j].astype(np.int64) + 1)
    uniq, inv, counts = np.unique(code, return_inverse=True, return_counts=True)
    pats = np.empty((uniq.shape[0], f), dtype=np.int8)
    rest = uniq.copy()
    for j in range(f - 1, -1, -1):
        pats[:, j] = (rest % 10 - 1).astype(np.int8)
        rest //= 10
    return pats, counts.astype(np.int64), inv.reshape(-1)


def initial_m(spec: ComparisonSpec) -> np.ndarray:
    """A starting ``m`` for EM: most matches at the first level, fewer at each next one."""
    if spec.levels[0].m is not None:
        return np.array([lv.m for lv in spec.levels] + [spec.else_m], dtype=np.float64)
    k = len(spec.levels) + 1
    m = np.array([0.5 ** (i + 1) for i in range(k)], dtype=np.float64)
    m[0] += 1.0 - m.sum()
    return m


def estimate_u(specs: list[ComparisonSpec], levels: np.ndarray) -> list[np.ndarray]:
    """``u`` per field from the levels of random pairs (int8[S, F]), one pseudo-count per level;
    hand-set ``u`` kept."""
    out = []
    for f, spec in enumerate(specs):
        k = len(spec.levels) + 1
        if spec.levels[0].u is not None:
            out.append(np.array([lv.u for lv in spec.levels] + [spec.else_u], dtype=np.float64))
            continue
        lv = levels[:, f]
        counts = np.bincount(lv[lv >= 0].astype(np.int64), minlength=k)[:k].astype(np.float64) + 1.0
        out.append(counts / counts.sum())
    return out


def fit_em(
    specs: list[ComparisonSpec], patterns: np.ndarray, counts: np.ndarray, u: list[np.ndarray], *,
    prior: float | None, iterations: int, tol: float = 1e-7,
) -> Weights:
    """EM for ``m`` (and the prior unless given) over distinct patterns with their counts; ``u``
    fixed. Stops after ``iterations`` or when no parameter moves by more than ``tol``."""
    m = [initial_m(s) for s in specs]
    hand_m = [s.levels[0].m is not None for s in specs]
    lam = 0.1 if prior is None else prior
    w = counts.astype(np.float64)
    pats = patterns.astype(np.int64)
    it = 0
    for it in range(1, iterations + 1):  # noqa: B007 - the count is reported
        p = Weights(m, u, lam).probability(patterns)
        wp = w * p
        new_m = []
        delta = 0.0
        for f, spec in enumerate(specs):
            k = len(spec.levels) + 1
            if hand_m[f]:
                new_m.append(m[f])
                continue
            lv = pats[:, f]
            present = lv >= 0
            s = np.bincount(lv[present], weights=wp[present], minlength=k)[:k] + 1e-6
            mf = s / s.sum()
            delta = max(delta, float(np.abs(mf - m[f]).max()))
            new_m.append(mf)
        m = new_m
        if prior is None:
            new_lam = float(min(max(wp.sum() / max(w.sum(), 1.0), 1e-9), 1.0 - 1e-9))
            delta = max(delta, abs(new_lam - lam))
            lam = new_lam
        if delta < tol:
            break
    return Weights(m, [x.copy() for x in u], lam, it if iterations else 0)
