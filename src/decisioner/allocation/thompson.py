"""Thompson sampling by probability matching: Bernoulli rewards (Beta posteriors) and continuous
rewards such as revenue (normal posteriors of the mean, variance estimated).

Thompson sampling chooses arm k with probability ``P_k = P(X_k = max_j X_j)`` for independent
posterior draws ``X_j``. Instead of drawing every arm and estimating ``P_k`` by Monte Carlo
afterwards (costly, and a noisy propensity), these policies compute all ``P_k`` at once by
numerical integration (``_kernels.bandit.rank_probabilities``: error below 1e-4 relative, the
estimate kept in ``error_``) and draw the arm from them. The logged propensity is therefore the
exact probability of the choice that was made, a selection costs O(log n), and the integration
is repeated only when the posterior has changed ``batch_size`` times (1: every selection sees
the latest evidence). A refresh costs tens of microseconds for a handful of arms and about
15 ms for 1,000, so large arm sets should use batched updates (``batch_size`` in the hundreds
or more), as production Thompson samplers do.

With a per-arm ``bonus`` (a person's weighted affinity to each experience) the rule is
``argmax_k X_k + bonus_k``; its probabilities are integrated per selection over normal
posteriors (Gaussian family: exact; Beta family: the moment-matched normal of each Beta
posterior, see ``_shifted``), from the same posterior snapshot as the cached table, and the
arm is drawn from them: the propensity is the exact probability of the choice made.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

import numpy as np

from .._kernels import bandit as B
from ..config import GaussianThompsonSpec, ThompsonSpec
from ..errors import UnknownArmError
from .base import ArmStats, Choice, Policy

__all__ = ["BernoulliThompson", "GaussianThompson"]

#: posterior support in standard deviations for the integration (tails beyond: < 1e-20)
_Z = 12.0
_MAX_GRID = 16_384
_TOL = 1e-4


def _varies(bonus: np.ndarray, eligible: np.ndarray) -> bool:
    """Whether ``bonus`` differs between eligible arms (a constant shift changes no argmax: the
    Beta integration stays exact then)."""
    b = bonus[eligible != 0]
    return bool(b.shape[0] > 1 and b.min() != b.max())


def _coarse(n_arms: int) -> int:
    """Intervals of the integration's first pass: few arms locate their region cheaply."""
    return 16 if n_arms <= 32 else 48




class _ProbabilityMatching(Policy):
    """Shared machinery: arm statistics, the cached probability table, selection and slates."""

    family: int = B.FAMILY_BETA

    def __init__(self, n_arms: int, spec: Any, *, seed: int | None = None) -> None:
        super().__init__(n_arms, seed=seed)
        self.spec = spec
        self.burn_in = int(spec.burn_in)
        self.stats_ = ArmStats(n_arms, discount=spec.discount, window=spec.window)
        self._changes = 0
        self._snap: tuple[np.ndarray, np.ndarray] | None = None
        self._mask: np.ndarray | None = None
        self._win = np.zeros(n_arms, dtype=np.float64)
        self._cum = np.zeros(n_arms, dtype=np.float64)
        self._ranks: dict[int, np.ndarray] = {}
        self.error_ = 0.0
        self.refreshes_ = 0

    @property
    def counts(self) -> np.ndarray:
        return self.stats_.counts_

    @abstractmethod
    def _params(self) -> tuple[np.ndarray, np.ndarray]:
        """The posterior's two parameter arrays for the probability kernel (per family)."""

    def _stale(self, eligible: np.ndarray) -> bool:
        if self._snap is None or self._changes >= self.spec.batch_size:
            return True
        if eligible is self._all and self._mask is self._all:
            return False
        return self._mask is None or not np.array_equal(self._mask, eligible)

    def refresh(self, eligible: Any = None) -> None:
        """Recompute the selection probabilities from the current posterior now."""
        el = self._eligible(eligible)
        p1, p2 = self._params()
        out = np.empty((self.n_arms, 1), dtype=np.float64)
        grid = _coarse(self.n_arms)
        self.error_ = float(B.rank_probabilities(self.family, p1, p2, el, 1, _Z, grid, _MAX_GRID, _TOL, out))
        w = out[:, 0] * el
        total = w.sum()
        if not total > 0.0:  # cannot happen for valid posteriors; stay a proper distribution
            w = el.astype(np.float64)
            total = w.sum()
        self._win = w / total
        self._cum = np.cumsum(self._win)
        self._snap = (p1, p2)
        self._mask = el if el is self._all else el.copy()
        self._ranks = {}
        self._changes = 0
        self.refreshes_ += 1

    def _export(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        # the cached probability table is state too: selections between refreshes use it, so a
        # restored policy must draw from the same table to continue with the same decisions
        arrays = self.stats_.to_arrays("stats.")
        arrays["win"], arrays["cum"] = self._win, self._cum
        mask_kind = 0 if self._mask is None else 1 if self._mask is self._all else 2
        if mask_kind == 2:
            assert self._mask is not None
            arrays["mask"] = self._mask
        if self._snap is not None:
            arrays["snap1"], arrays["snap2"] = self._snap
        for k, r in self._ranks.items():
            arrays[f"ranks.{k}"] = r
        meta = {"changes": self._changes, "mask": mask_kind, "error": self.error_, "refreshes": self.refreshes_}
        return arrays, meta

    def _import(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        self.stats_.load_arrays(arrays, "stats.")
        self._win = np.array(arrays["win"], dtype=np.float64)
        self._cum = np.array(arrays["cum"], dtype=np.float64)
        kind = int(meta["mask"])
        self._mask = None if kind == 0 else self._all if kind == 1 else np.array(arrays["mask"], dtype=np.uint8)
        self._snap = (
            (np.array(arrays["snap1"], dtype=np.float64), np.array(arrays["snap2"], dtype=np.float64))
            if "snap1" in arrays else None
        )
        self._ranks = {
            int(k.split(".", 1)[1]): np.array(a, dtype=np.float64) for k, a in arrays.items() if k.startswith("ranks.")
        }
        self._changes = int(meta["changes"])
        self.error_ = float(meta["error"])
        self.refreshes_ = int(meta["refreshes"])

    def _select(self, eligible: np.ndarray, state: np.ndarray, context: Any, bonus: np.ndarray | None) -> Choice:
        if self._stale(eligible):
            self.refresh(eligible)
        if bonus is not None and _varies(bonus, eligible):
            win = self._shifted(eligible, bonus)
            arm = int(B.categorical_select(np.cumsum(win), state))
            return Choice(arm, float(win[arm]), float(self._mean_of(arm) + bonus[arm]))
        arm = int(B.categorical_select(self._cum, state))
        return Choice(arm, float(self._win[arm]), float(self._mean_of(arm)))

    def _shifted(self, eligible: np.ndarray, bonus: np.ndarray) -> np.ndarray:
        """P(arm k has the highest ``X_k + bonus_k``) for the current posterior snapshot, where
        ``X_k`` is the posterior draw: normal for the Gaussian family (exact), and for Beta
        posteriors their moment-matched normal (same mean and variance). The arm is drawn from
        these probabilities, so the logged propensity is exactly that of the choice made."""
        assert self._snap is not None
        p1, p2 = self._snap
        if self.family == B.FAMILY_BETA:
            n = p1 + p2
            mean = p1 / n
            sd = np.sqrt(p1 * p2 / (n * n * (n + 1.0)))
        else:
            mean, sd = p1, p2
        mean = np.ascontiguousarray(mean + bonus)
        sd = np.ascontiguousarray(np.maximum(sd, 1e-12))
        out = np.empty((self.n_arms, 1), dtype=np.float64)
        B.rank_probabilities(B.FAMILY_NORMAL, mean, sd, eligible, 1, _Z, _coarse(self.n_arms), _MAX_GRID, _TOL, out)
        w = out[:, 0] * eligible
        total = w.sum()
        if not total > 0.0:
            w, total = eligible.astype(np.float64), float(eligible.sum())
        win: np.ndarray = w / total
        return win

    def _mean_of(self, arm: int) -> float:
        assert self._snap is not None
        p1, p2 = self._snap
        return float(p1[arm] / (p1[arm] + p2[arm])) if self.family == B.FAMILY_BETA else float(p1[arm])

    def action_distribution(
        self, eligible: Any = None, *, context: Any = None, bonus: np.ndarray | None = None
    ) -> np.ndarray:
        el = self._eligible(eligible)
        if self._stale(el):
            self.refresh(el)
        if bonus is not None and _varies(self._bonus(bonus), el):
            return self._shifted(el, self._bonus(bonus))
        return self._win.copy()

    def rank_distribution(self, k: int, eligible: Any = None) -> np.ndarray:
        """``out[arm, r]``: probability that ``arm`` takes position ``r`` of a top-``k`` slate
        (float64[n_arms, k], from the same posterior snapshot as the selections)."""
        el = self._eligible(eligible)
        if self._stale(el):
            self.refresh(el)
        cached = self._ranks.get(k)
        if cached is None:
            assert self._snap is not None
            cached = np.empty((self.n_arms, k), dtype=np.float64)
            p1, p2 = self._snap
            B.rank_probabilities(self.family, p1, p2, el, k, _Z, _coarse(self.n_arms), _MAX_GRID, _TOL, cached)
            self._ranks[k] = cached
        return cached.copy()

    def select_slate(
        self, k: int, eligible: Any = None, *, state: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """A top-``k`` slate: one posterior draw per eligible arm, the ``k`` highest in order.

        Returns the arms (int64) and each position's propensity, the marginal probability of
        that arm at that position (what position-wise inverse propensity weighting uses).
        """
        el = self._eligible(eligible)
        ranks = self.rank_distribution(k, el)
        assert self._snap is not None
        out = np.empty(k, dtype=np.int64)
        st = self._state if state is None else state
        n = B.posterior_top_k(self.family, self._snap[0], self._snap[1], el, st, out)
        arms = out[:n]
        return arms, ranks[arms, np.arange(n)]


class BernoulliThompson(_ProbabilityMatching):
    """Beta-Bernoulli Thompson sampling with exposure-time trials and delayed rewards.

    An exposure counts a trial at once; a later reward converts it into a success (a
    decision's successes are capped at 1). ``stats_`` holds sums, so the statistics of several
    workers merge by addition.

    Parameters
    ----------
    n_arms
        Number of arms.
    spec
        Priors, batch size, forgetting and burn-in.
    seed
        Seed of the policy's own random stream.

    Examples
    --------
    >>> p = BernoulliThompson(3, seed=0)
    >>> c = p.select_one()
    >>> 0 <= c.arm < 3 and abs(c.propensity - 1 / 3) < 1e-6
    True
    >>> p.expose(c.arm); p.update_one(c.arm, 1.0, exposed=True)
    >>> bool(p.means()[c.arm] > 0.5)
    True
    """

    family = B.FAMILY_BETA

    def __init__(self, n_arms: int, spec: ThompsonSpec = ThompsonSpec(), *, seed: int | None = None) -> None:
        super().__init__(n_arms, spec, seed=seed)

    def _params(self) -> tuple[np.ndarray, np.ndarray]:
        s = self.stats_
        succ = np.clip(s.sums_, 0.0, s.counts_)
        return (
            np.ascontiguousarray(self.spec.prior_alpha + succ),
            np.ascontiguousarray(self.spec.prior_beta + (s.counts_ - succ)),
        )

    def _learn(self, arm: int, dn: float, reward: float, previous: float, context: Any) -> None:
        before = min(max(previous, 0.0), 1.0) if dn == 0.0 else 0.0
        after = min(max(before + reward, 0.0), 1.0)
        dr = after - before
        self.stats_.add(arm, dn, dr, dr)
        self._changes += 1

    def expose_many(self, arms: np.ndarray, *, context: Any = None) -> None:
        # without forgetting an exposure adds 1 to its arm's trials and nothing else: the counts
        # of the batch added at once are the same sums (integers, exact in float64)
        if self.stats_.discount != 1.0 or self.stats_.window or not arms.shape[0]:
            super().expose_many(arms, context=context)
            return
        if int(arms.min()) < 0 or int(arms.max()) >= self.n_arms:
            raise UnknownArmError(f"Expected arms in [0, {self.n_arms}), got {arms.min()}..{arms.max()}")
        self.stats_.counts_ += np.bincount(arms, minlength=self.n_arms).astype(np.float64)
        self._changes += int(arms.shape[0])

    @property
    def trials_(self) -> np.ndarray:
        return self.stats_.counts_

    @property
    def successes_(self) -> np.ndarray:
        return np.clip(self.stats_.sums_, 0.0, self.stats_.counts_)

    def means(self) -> np.ndarray:
        a, b = self._params()
        out: np.ndarray = a / (a + b)
        return out


class GaussianThompson(_ProbabilityMatching):
    """Thompson sampling for continuous rewards (revenue): a normal posterior for each arm's
    mean under a Normal-Gamma model whose variance is estimated from the data.

    With ``n`` observations of sum ``S`` and centred sum of squares ``Q``, the posterior mean
    is ``(k0 m0 + S) / (k0 + n)`` and its standard deviation ``sqrt(s2 / (k0 + n))`` with
    ``s2 = (v0 s0^2 + Q + k0 n (mean - m0)^2 / (k0 + n)) / (v0 + n)`` (the Normal-Gamma
    posterior's variance estimate; the Student-t marginal is replaced by its normal limit,
    accurate once an arm has a few dozen observations).

    Parameters
    ----------
    n_arms
        Number of arms.
    spec
        Priors, batch size, forgetting and burn-in.
    seed
        Seed of the policy's own random stream.

    Examples
    --------
    >>> p = GaussianThompson(2, GaussianThompsonSpec(prior_variance=100.0), seed=1)
    >>> for _ in range(30):
    ...     p.update_one(0, 10.0); p.update_one(1, 30.0)
    >>> p.select_one().arm
    1
    """

    family = B.FAMILY_NORMAL

    def __init__(
        self, n_arms: int, spec: GaussianThompsonSpec = GaussianThompsonSpec(), *, seed: int | None = None
    ) -> None:
        super().__init__(n_arms, spec, seed=seed)

    def _params(self) -> tuple[np.ndarray, np.ndarray]:
        s = self.stats_
        sp = self.spec
        n = s.counts_
        k_n = sp.prior_count + n
        mean = (sp.prior_count * sp.prior_mean + s.sums_) / k_n
        safe_n = np.where(n > 0, n, 1.0)
        xbar = s.sums_ / safe_n
        centred = np.maximum(s.sumsq_ - s.sums_ * xbar, 0.0)
        shrink = sp.prior_count * n * (xbar - sp.prior_mean) ** 2 / k_n
        s2 = (sp.prior_variance_count * sp.prior_variance + centred + shrink) / (sp.prior_variance_count + n)
        sd = np.sqrt(np.maximum(s2, 1e-300) / k_n)
        return np.ascontiguousarray(mean), np.ascontiguousarray(np.maximum(sd, 1e-12))

    def _learn(self, arm: int, dn: float, reward: float, previous: float, context: Any) -> None:
        prev = previous if dn == 0.0 else 0.0
        self.stats_.add(arm, dn, reward, (prev + reward) ** 2 - prev * prev)
        self._changes += 1

    def means(self) -> np.ndarray:
        return self._params()[0]
