"""Off-policy evaluation: the value a candidate policy would have had, estimated from a log of
decisions another (the logging, or behaviour) policy made, with their propensities.

Estimators (``V`` = expected reward per round of the evaluation policy ``pi_e``; ``w_i =
pi_e(a_i | x_i, k_i) / p_i`` the importance weight of logged round i at position ``k_i``;
``q(x, a, k)`` a reward model):

* ``ipw``: inverse propensity weighting, ``mean(w_i r_i)`` (unbiased, high variance);
* ``snipw``: self-normalised IPW, ``sum w_i r_i / sum w_i``;
* ``dm``: direct method, ``mean(sum_a pi_e(a | x_i, k_i) q(x_i, a, k_i))`` (low variance, biased
  by the model);
* ``dr``: doubly robust, ``dm_i + w_i (r_i - q(x_i, a_i, k_i))`` (Dudik, Langford and Li 2011);
* ``switch_dr``: DR where ``w_i <= tau``, DM alone where the weight is larger (Wang, Agarwal and
  Dudik 2017);
* ``dr_os``: DR with optimistically shrunk weights ``lambda w / (w^2 + lambda)`` (Su et al. 2020).

Intervals come from a nonparametric bootstrap of rounds (percentile method, seeded). Logs may
be the engine's own decision log (:func:`~decisioner.evaluation.engine_log.log_from_engine`)
or any log in the Open Bandit Dataset's shape (:mod:`decisioner.datasets.obd`): rounds with an
action, a position, a reward, the logging propensity and optional context features.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import msgspec
import numpy as np

from ..errors import ConfigError
from ..schemas import Result

__all__ = [
    "ESTIMATORS",
    "BanditLog",
    "OPEResult",
    "estimate",
    "fit_reward_model",
    "logistic_fit",
    "kfold_indices",
    "evaluate_policy",
]

ESTIMATORS = ("ipw", "snipw", "dm", "dr", "switch_dr", "dr_os")


@dataclass(frozen=True)
class BanditLog:
    """Logged bandit feedback: one row per (round, position).

    ``action``, ``position`` int64[n]; ``reward``, ``pscore`` (the logging policy's probability
    of the logged action at that position) float64[n]; optional ``context`` float64[n, d] and
    ``action_context`` float64[n_actions, e]; ``time`` int64[n] (for time splits).
    """

    action: np.ndarray
    reward: np.ndarray
    pscore: np.ndarray
    n_actions: int
    position: np.ndarray | None = None
    len_list: int = 1
    context: np.ndarray | None = None
    action_context: np.ndarray | None = None
    time: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = self.action.shape[0]
        for name in ("reward", "pscore"):
            if getattr(self, name).shape != (n,):
                raise ConfigError(f"expected `{name}` of shape ({n},), got {getattr(self, name).shape!r}")
        if n and (self.action.min() < 0 or self.action.max() >= self.n_actions):
            raise ConfigError(f"expected actions in [0, {self.n_actions}) - at `action`")
        if n and not ((self.pscore > 0) & (self.pscore <= 1)).all():
            raise ConfigError("expected propensities in (0, 1] - at `pscore`")
        if self.position is not None and n and (self.position.min() < 0 or self.position.max() >= self.len_list):
            raise ConfigError(f"expected positions in [0, {self.len_list}) - at `position`")
        if self.context is not None and self.context.shape[0] != n:
            raise ConfigError(f"expected {n} context rows, got {self.context.shape[0]}")

    @property
    def n_rounds(self) -> int:
        return int(self.action.shape[0])

    @property
    def pos(self) -> np.ndarray:
        return self.position if self.position is not None else np.zeros(self.n_rounds, dtype=np.int64)

    def take(self, idx: np.ndarray) -> BanditLog:
        """The rows ``idx`` (a bootstrap sample, a split)."""
        return BanditLog(
            action=self.action[idx], reward=self.reward[idx], pscore=self.pscore[idx],
            n_actions=self.n_actions, position=None if self.position is None else self.position[idx],
            len_list=self.len_list, context=None if self.context is None else self.context[idx],
            action_context=self.action_context, time=None if self.time is None else self.time[idx],
        )


class OPEResult(Result, frozen=True):
    """One estimator's estimate of the evaluation policy's value and its bootstrap interval."""

    estimator: str
    estimate: float
    low: float
    high: float
    se: float


# --------------------------------------------------------------------------- reward models


def kfold_indices(n: int, n_folds: int, seed: int) -> list[np.ndarray]:
    """Shuffled k-fold test indices: ``RandomState(seed)`` shuffles ``arange(n)``, the first
    ``n % k`` folds get one extra row (the scheme of scikit-learn's ``KFold(shuffle=True)``,
    so cross-fitting reproduces published pipelines)."""
    idx = np.arange(n)
    np.random.RandomState(seed).shuffle(idx)
    sizes = np.full(n_folds, n // n_folds, dtype=np.int64)
    sizes[: n % n_folds] += 1
    out: list[np.ndarray] = []
    start = 0
    for s in sizes.tolist():
        out.append(idx[start : start + s])
        start += s
    return out


def _sigmoid(z: np.ndarray) -> np.ndarray:
    e = np.exp(-np.abs(z))  # never overflows
    out: np.ndarray = np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
    return out


def logistic_fit(x: np.ndarray, y: np.ndarray, *, c: float = 100.0, max_iter: int = 100) -> np.ndarray:
    """L2-regularised logistic regression by Newton's method with backtracking: minimises
    ``c * sum logloss + |w|^2 / 2`` with an unpenalised intercept (scikit-learn's objective).
    Returns ``[intercept, w...]``."""
    n, d = x.shape
    xa = np.hstack([np.ones((n, 1)), x])
    w = np.zeros(d + 1)
    ybar = float(np.clip(y.mean(), 1e-6, 1 - 1e-6)) if n else 0.5
    w[0] = math.log(ybar / (1.0 - ybar))  # start at the intercept-only optimum
    pen = np.full(d + 1, 1.0 / c)
    pen[0] = 0.0
    ridge = np.diag(pen + 1e-12)

    # einsum, not BLAS: these products are small, and a multithreaded BLAS on a busy machine
    # makes them ten times slower than a single loop
    def objective(v: np.ndarray) -> float:
        z = np.einsum("nd,d->n", xa, v)
        return float(np.sum(np.logaddexp(0.0, z) - y * z) + 0.5 * np.sum(pen * v * v))

    f = objective(w)
    for _ in range(max_iter):
        p = _sigmoid(np.einsum("nd,d->n", xa, w))
        g = np.einsum("nd,n->d", xa, p - y) + pen * w
        h = np.einsum("ni,nj->ij", xa * (p * (1.0 - p))[:, None], xa) + ridge
        step = np.linalg.solve(h, g)
        t = 1.0
        while True:  # backtracking: Newton steps can overshoot on nearly separable data
            cand = w - t * step
            fc = objective(cand)
            if fc <= f + 1e-12 * abs(f) or t < 1e-8:
                break
            t *= 0.5
        w, f = cand, fc
        if np.abs(t * step).max() <= 1e-9 * (1.0 + np.abs(w).max()):
            break
    return w


def fit_reward_model(
    log: BanditLog, *, kind: Literal["logistic", "tabular"] = "logistic", n_folds: int = 3,
    seed: int = 12345, c: float = 100.0, shrink: float = 10.0,
) -> np.ndarray:
    """Cross-fitted reward model ``q[i, a, k]`` (float64[n, n_actions, len_list]).

    ``logistic``: one L2 logistic regression per position on ``[context, action_context[a]]``
    (one-hot actions without action features), as the Open Bandit Pipeline's
    ``RegressionModel``. ``tabular``: the mean reward of each (action, position), shrunk
    towards the position's mean by ``shrink`` pseudo-rounds (for logs without context). Each
    fold's predictions come from a model fitted on the other folds (``n_folds`` = 1: in-sample).
    """
    n, na, kk = log.n_rounds, log.n_actions, log.len_list
    pos = log.pos
    ac = log.action_context if log.action_context is not None else np.eye(na)
    ctx = log.context if log.context is not None else np.zeros((n, 0))
    q = np.zeros((n, na, kk))
    folds = kfold_indices(n, n_folds, seed) if n_folds > 1 else [np.arange(n)]
    for test in folds:
        train = np.setdiff1d(np.arange(n), test) if n_folds > 1 else test
        for k in range(kk):
            tr = train[pos[train] == k]
            if kind == "tabular":
                r, a = log.reward[tr], log.action[tr]
                mu = r.mean() if tr.size else 0.0
                sums = np.bincount(a, weights=r, minlength=na)
                cnt = np.bincount(a, minlength=na)
                q[test, :, k] = ((sums + shrink * mu) / (cnt + shrink))[None, :]
                continue
            if tr.size == 0:
                continue
            x = np.hstack([ctx[tr], ac[log.action[tr]]])
            w = logistic_fit(x, log.reward[tr].astype(np.float64), c=c)
            dc = ctx.shape[1]
            z = w[0] + np.einsum("nd,d->n", ctx[test], w[1 : 1 + dc])
            za = np.einsum("ad,d->a", ac, w[1 + dc :])
            q[test, :, k] = _sigmoid(z[:, None] + za[None, :])
    return q


# --------------------------------------------------------------------------- estimators


def _terms(
    log: BanditLog, action_dist: np.ndarray, q: np.ndarray | None, switch_tau: float, os_lambda: float
) -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
    """Per-round numerators (and denominators for self-normalised estimators)."""
    n = log.n_rounds
    rows = np.arange(n)
    pos = log.pos
    if action_dist.ndim == 2:  # the same distribution in every round: (n_actions, len_list)
        pi_logged = action_dist[log.action, pos]
        pi_all = action_dist[:, pos].T
    else:
        pi_logged = action_dist[rows, log.action, pos]
        pi_all = action_dist[rows, :, pos]
    w = pi_logged / log.pscore
    r = log.reward
    out: dict[str, tuple[np.ndarray, np.ndarray | None]] = {"ipw": (w * r, None), "snipw": (w * r, w)}
    if q is not None:
        qa = q[rows, :, pos]
        dm = (pi_all * qa).sum(axis=1)
        resid = r - q[rows, log.action, pos]
        out["dm"] = (dm, None)
        out["dr"] = (dm + w * resid, None)
        out["switch_dr"] = (dm + np.where(w <= switch_tau, w, 0.0) * resid, None)
        out["dr_os"] = (dm + (os_lambda * w / (w * w + os_lambda)) * resid, None)
    return out


def estimate(
    log: BanditLog, action_dist: np.ndarray, *, q: np.ndarray | None = None,
    estimators: tuple[str, ...] = ESTIMATORS, n_boot: int = 1000, alpha: float = 0.05, seed: int = 0,
    switch_tau: float = 10.0, os_lambda: float = 100.0,
) -> dict[str, OPEResult]:
    """Estimate the value of the evaluation policy ``action_dist`` on ``log``.

    Parameters
    ----------
    log
        The logged feedback.
    action_dist
        ``pi_e(a | x_i, k)``: float64[n, n_actions, len_list], or [n_actions, len_list] when
        it does not depend on the round (context-free policies).
    q
        Reward model ``q[i, a, k]`` (:func:`fit_reward_model`); needed by dm, dr, switch_dr,
        dr_os (those are skipped without it).
    estimators
        Names from :data:`ESTIMATORS`.
    n_boot
        Bootstrap resamples for the intervals (0: no interval).
    alpha
        The intervals are (1 - alpha) percentile intervals.
    seed
        Seed of the bootstrap.
    switch_tau
        Weight above which switch-DR uses the model alone.
    os_lambda
        Shrinkage of DR-os (larger: closer to DR).

    Returns
    -------
    dict
        Estimator name to :class:`OPEResult`.

    Examples
    --------
    >>> log = BanditLog(action=np.array([0, 1, 0, 1]), reward=np.array([1.0, 0.0, 1.0, 1.0]),
    ...                 pscore=np.full(4, 0.5), n_actions=2)
    >>> estimate(log, np.array([[1.0], [0.0]]), estimators=("ipw",), n_boot=0)["ipw"].estimate
    1.0
    """
    unknown = [e for e in estimators if e not in ESTIMATORS]
    if unknown:
        raise ConfigError(f"expected estimators from {list(ESTIMATORS)!r}, got {unknown!r}")
    ad = np.asarray(action_dist, dtype=np.float64)
    want = (log.n_actions, log.len_list)
    if not (ad.shape == want or ad.shape == (log.n_rounds, *want)):
        raise ConfigError(
            f"expected `action_dist` of shape {want!r} or {(log.n_rounds, *want)!r}, got {ad.shape!r}"
        )
    terms = _terms(log, ad, q, switch_tau, os_lambda)
    n = log.n_rounds
    rng = np.random.default_rng(seed)
    boots: dict[str, list[np.ndarray]] = {e: [] for e in estimators if e in terms}
    chunk = max(1, min(n_boot, 2_000_000 // max(n, 1)))
    done = 0
    while done < n_boot:
        b = min(chunk, n_boot - done)
        idx = rng.integers(0, n, size=(b, n))
        for e in boots:
            num, den = terms[e]
            s = num[idx].sum(axis=1)
            boots[e].append(s / den[idx].sum(axis=1) if den is not None else s / n)
        done += b
    out = {}
    for e in estimators:
        if e not in terms:
            continue
        num, den = terms[e]
        val = float(num.sum() / den.sum()) if den is not None else float(num.mean())
        if n_boot > 0:
            bs = np.concatenate(boots[e])
            lo, hi = np.quantile(bs, [alpha / 2, 1 - alpha / 2])
            se = float(bs.std(ddof=1))
        else:
            lo = hi = se = math.nan
        out[e] = OPEResult(estimator=e, estimate=val, low=float(lo), high=float(hi), se=se)
    return out


# --------------------------------------------------------------------------- candidate policies


def evaluate_policy(
    log: BanditLog, spec: Any, *, train_fraction: float = 0.5, n_boot: int = 1000, seed: int = 0,
    estimators: tuple[str, ...] = ESTIMATORS,
) -> dict[str, Any]:
    """Evaluate a candidate arm policy against a log before it goes live.

    The candidate (a policy spec) learns from the first ``train_fraction`` of the log (in time
    order), as it would have online from those rewards; its action distribution at that point
    is then evaluated on the rest of the log with every estimator (a tabular reward model for
    the model-based ones). The logging policy's own value on that part (its mean reward) is
    reported alongside as the baseline.
    """
    from ..allocation import make_policy

    if log.len_list != 1:
        raise ConfigError(f"expected a single-slot log (campaign placement), got {log.len_list} slots")
    if not 0.0 < train_fraction < 1.0:
        raise ConfigError(f"`train_fraction` must be in (0, 1), got {train_fraction!r}")
    order = np.argsort(log.time, kind="stable") if log.time is not None else np.arange(log.n_rounds)
    cut = int(log.n_rounds * train_fraction)
    train, test = log.take(order[:cut]), log.take(order[cut:])
    if test.n_rounds == 0:
        raise ConfigError("expected rounds to evaluate on, got none after the training split")
    pol = make_policy(spec, log.n_actions, seed=seed)
    pol.update_many(train.action, train.reward)
    dist = pol.action_distribution()[:, None]
    q = fit_reward_model(test, kind="tabular", seed=seed)
    res = estimate(test, dist, q=q, estimators=estimators, n_boot=n_boot, seed=seed)
    return {
        "policy": str(type(spec).__struct_config__.tag),
        "train_rounds": train.n_rounds,
        "eval_rounds": test.n_rounds,
        "logging_value": float(test.reward.mean()),
        "action_distribution": [float(x) for x in dist[:, 0]],
        "estimates": {k: msgspec.to_builtins(v) for k, v in res.items()},
    }
