"""Peer: LightGBM's own ``Booster.predict`` (``raw_score=True``, one thread) on the model that
``bench_ranker.py`` compiles for decisioner. LightGBM is also what trains the model."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

NAME = "LightGBM"

#: the issue-13 benchmark shape: 200 trees, 31 leaves, 30 features
N_TREES, NUM_LEAVES, N_FEATURES = 200, 31, 30


@functools.lru_cache(maxsize=2)
def model(seed: int = 0) -> Any:
    """A binary model of the benchmark shape trained on 5,000 seeded rows (one thread)."""
    import lightgbm as lgb

    rng = np.random.default_rng(seed)
    X = rng.normal(size=(5000, N_FEATURES))
    y = (X[:, :5].sum(axis=1) + rng.normal(size=5000) > 0).astype(np.float64)
    params = {"objective": "binary", "num_leaves": NUM_LEAVES, "min_data_in_leaf": 5, "num_threads": 1,
              "verbose": -1, "seed": seed, "deterministic": True}
    return lgb.train(params, lgb.Dataset(X, y), num_boost_round=N_TREES)


def rows(n: int, seed: int = 1) -> np.ndarray:
    """``n`` C-contiguous float64 rows of the benchmark shape, 5% NaN."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, N_FEATURES))
    X[rng.random(X.shape) < 0.05] = np.nan
    return np.ascontiguousarray(X)


def predict_rows(booster: Any, X: np.ndarray) -> np.ndarray:
    """Raw scores of every row of ``X``."""
    return np.asarray(booster.predict(X, raw_score=True, num_threads=1))


def predict_one(booster: Any, X: np.ndarray) -> float:
    """Raw score of the one row of ``X`` (shape (1, F))."""
    return float(booster.predict(X, raw_score=True, num_threads=1)[0])
