"""The policy template shared by every arm policy, and the arm statistics they learn from.

``Policy.select_one()`` applies the shared rules (validated eligibility mask, no eligible arm,
burn-in) and calls the policy's ``_select()``; every selection comes back as a :class:`Choice`
with its propensity. Learning is split in two so rewards may arrive late, joined by decision
id: ``expose(arm)`` counts the exposure when content is shown, ``update_one(arm, reward,
exposed=True)`` adds the reward when it arrives (an exposure never rewarded counts as reward
0). ``update_one(arm, reward)`` does both at once.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any

import msgspec
import numpy as np

from .._kernels import bandit as B
from .._kernels.rng import seed_state
from ..errors import ConfigError, NotReadyError, UnknownArmError
from ..snapshot import ComponentState

__all__ = ["Choice", "ArmStats", "Policy"]


class Choice(msgspec.Struct, frozen=True):
    """One selection: the arm, the probability the policy had of choosing it, and its score
    (posterior mean, UCB or draw; informational)."""

    arm: int
    propensity: float
    score: float = 0.0


class ArmStats:
    """Per-arm sums: ``counts_`` (exposures), ``sums_`` (rewards) and ``sumsq_`` (squared
    rewards), float64 so discounting and merging by addition stay exact sums.

    Parameters
    ----------
    n_arms
        Number of arms.
    discount
        Geometric forgetting per update (1: none).
    window
        Keep only the last ``window`` updates (0: all).

    Examples
    --------
    >>> s = ArmStats(2, window=2)
    >>> for arm, r in [(0, 1.0), (1, 0.0), (1, 1.0)]:
    ...     s.add(arm, 1.0, r, r * r)
    >>> s.counts_.tolist(), s.sums_.tolist()
    ([0.0, 2.0], [0.0, 1.0])
    """

    def __init__(self, n_arms: int, *, discount: float = 1.0, window: int = 0) -> None:
        self.n_arms = n_arms
        self.discount = float(discount)
        self.window = int(window)
        self.counts_ = np.zeros(n_arms, dtype=np.float64)
        self.sums_ = np.zeros(n_arms, dtype=np.float64)
        self.sumsq_ = np.zeros(n_arms, dtype=np.float64)
        self.ring_arm_ = np.zeros(self.window, dtype=np.int64)
        self.ring_val_ = np.zeros((self.window, 3), dtype=np.float64)
        self.ring_meta_ = np.zeros(2, dtype=np.int64)

    def add(self, arm: int, dn: float, dr: float, dr2: float) -> None:
        """Add a count, a reward and a squared reward to ``arm`` (after discounting)."""
        B.arm_stats_update(
            self.counts_, self.sums_, self.sumsq_, arm, dn, dr, dr2, self.discount,
            self.ring_arm_, self.ring_val_, self.ring_meta_,
        )

    _ARRAYS = ("counts_", "sums_", "sumsq_", "ring_arm_", "ring_val_", "ring_meta_")

    def to_arrays(self, prefix: str = "") -> dict[str, np.ndarray]:
        """The learned sums and the sliding window's ring, named ``prefix + name``."""
        return {prefix + n.rstrip("_"): getattr(self, n) for n in self._ARRAYS}

    def load_arrays(self, arrays: dict[str, np.ndarray], prefix: str = "") -> None:
        """Restore what :meth:`to_arrays` exported (shapes must match this instance's)."""
        for n in self._ARRAYS:
            cur = getattr(self, n)
            a = np.array(arrays[prefix + n.rstrip("_")], dtype=cur.dtype)
            if a.shape != cur.shape:
                raise NotReadyError(f"expected `{prefix}{n}` of shape {cur.shape}, got {a.shape} - at policy state")
            setattr(self, n, a)

    def means(self, default: float = 0.0) -> np.ndarray:
        """Mean reward per arm (``default`` where nothing was counted)."""
        out = np.full(self.n_arms, default, dtype=np.float64)
        seen = self.counts_ > 0
        out[seen] = self.sums_[seen] / self.counts_[seen]
        return out


class Policy(ABC):
    """Base class of the arm policies (template method).

    Subclasses implement ``_select(eligible, state, context)`` and, for learning,
    ``_learn(arm, dn, reward, previous)``; ``action_distribution`` gives the probability of
    every arm for the next selection (what off-policy evaluation needs of a candidate policy).

    Parameters
    ----------
    n_arms
        Number of arms.
    seed
        Seed of the policy's own random stream, used when ``select_one`` gets no ``state``.
    """

    #: exposures each eligible arm gets, uniformly at random, before the policy takes over
    burn_in: int = 0

    def __init__(self, n_arms: int, *, seed: int | None = None) -> None:
        if isinstance(n_arms, bool) or not isinstance(n_arms, (int, np.integer)) or n_arms < 1:
            raise ConfigError(f"`n_arms` must be an int >= 1, got {n_arms!r}")
        self.n_arms = int(n_arms)
        self.seed = seed
        self._state = seed_state(0 if seed is None else seed)
        self._all = np.ones(self.n_arms, dtype=np.uint8)

    # ------------------------------------------------------------------ shared rules
    def _eligible(self, eligible: Any) -> np.ndarray:
        if eligible is None:
            return self._all
        el = np.asarray(eligible)
        if el.shape != (self.n_arms,):
            raise ConfigError(
                f"expected an eligibility mask of shape ({self.n_arms},), got {el.shape!r} - at `eligible`"
            )
        return np.ascontiguousarray(el, dtype=np.uint8)

    @property
    def counts(self) -> np.ndarray:
        """Exposures per arm (for burn-in)."""
        return np.zeros(self.n_arms)

    def select_one(
        self, eligible: Any = None, *, state: np.ndarray | None = None, context: Any = None,
        bonus: np.ndarray | None = None,
    ) -> Choice:
        """Choose one arm among ``eligible`` (mask of ``n_arms``; ``None``: all).

        Returns ``Choice(-1, 0.0)`` when no arm is eligible. During burn-in, arms below
        ``burn_in`` exposures are drawn uniformly (propensity ``1 / their number``).
        ``state`` is an explicit RNG state (``_kernels.rng.seed_state``); by default the
        policy's own stream advances. ``bonus`` (float64[n_arms], finite) is added to each
        arm's score for this selection only (a person's affinity to each arm, weighted); the
        propensity is that of the rule with the bonus. ``None`` is the policy unchanged.
        """
        el = self._eligible(eligible)
        if bonus is not None:
            bonus = self._bonus(bonus)
        st = self._state if state is None else state
        if self.burn_in > 0:
            cold = el.astype(bool) & (self.counts < self.burn_in)
            if cold.any():
                arm, prop = B.arm_select(
                    B.MODE_UNIFORM, 0.0, np.zeros(self.n_arms), self.counts, cold.astype(np.uint8), st
                )
                return Choice(int(arm), float(prop))
        if el is not self._all and not el.any():
            return Choice(-1, 0.0)
        return self._select(el, st, context, bonus)

    def _bonus(self, bonus: Any) -> np.ndarray:
        b = np.ascontiguousarray(bonus, dtype=np.float64)
        if b.shape != (self.n_arms,) or not math.isfinite(np.add.reduce(b)):
            raise ConfigError(f"expected a finite bonus of shape ({self.n_arms},), got shape {b.shape!r} - at `bonus`")
        return b

    def select_many(self, n: int, eligible: Any = None, *, context: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """``n`` selections from the current state (no learning in between): arms (int64) and
        propensities (float64)."""
        arms = np.empty(n, dtype=np.int64)
        props = np.empty(n, dtype=np.float64)
        for i in range(n):
            c = self.select_one(eligible, context=context)
            arms[i], props[i] = c.arm, c.propensity
        return arms, props

    def _check_arm(self, arm: int) -> int:
        if type(arm) is int and 0 <= arm < self.n_arms:
            return arm
        if isinstance(arm, bool) or not isinstance(arm, (int, np.integer)) or not 0 <= arm < self.n_arms:
            raise UnknownArmError(f"Expected an arm in [0, {self.n_arms}), got {arm!r}")
        return int(arm)

    def expose(self, arm: int, *, context: Any = None) -> None:
        """Count an exposure of ``arm`` now; its reward (if any) follows via
        ``update_one(..., exposed=True)``."""
        self._learn(self._check_arm(arm), 1.0, 0.0, 0.0, context)

    def expose_many(self, arms: np.ndarray, *, context: Any = None) -> None:
        """:meth:`expose` of each of ``arms`` (int64) in order, all with ``context`` (a batch of
        choices made from one state, e.g. an outbound mailing)."""
        for arm in arms.tolist():
            self.expose(arm, context=context)

    def update_one(
        self, arm: int, reward: float, *, exposed: bool = False, previous: float = 0.0,
        context: Any = None,
    ) -> None:
        """Learn ``reward`` for ``arm``.

        ``exposed=True``: the exposure was already counted by ``expose`` and ``previous`` is
        the reward it has accumulated so far (rewards of one decision add up).
        """
        arm = self._check_arm(arm)
        r = float(reward)
        if not math.isfinite(r):
            raise ConfigError(f"expected a finite reward, got {reward!r} - at `reward`")
        self._learn(arm, 0.0 if exposed else 1.0, r, float(previous), context)

    def update_many(self, arms: Any, rewards: Any, *, contexts: Any = None) -> None:
        """``update_one`` for each (arm, reward) pair in order (contexts: one row each)."""
        a = np.asarray(arms)
        r = np.asarray(rewards, dtype=np.float64)
        if a.shape != r.shape or a.ndim != 1:
            raise ConfigError(
                f"expected `arms` and `rewards` of one equal length, got {a.shape!r} and {r.shape!r}"
            )
        for i in range(a.shape[0]):
            self.update_one(int(a[i]), float(r[i]), context=None if contexts is None else contexts[i])

    # ------------------------------------------------------------------ state
    def to_state(self) -> ComponentState:
        """The policy's learned state and its random stream, as arrays and plain values
        (equal state and equal inputs give equal next decisions)."""
        arrays, meta = self._export()
        return {**arrays, "rng": self._state.copy()}, {**meta, "n_arms": self.n_arms}

    def load_state(self, state: ComponentState) -> None:
        """Continue from a state of :meth:`to_state` (of a policy with the same spec and arms).

        Raises
        ------
        NotReadyError
            If the state is of another number of arms.
        """
        arrays, meta = state
        if meta.get("n_arms") != self.n_arms:
            raise NotReadyError(f"expected policy state of {self.n_arms} arms, got {meta.get('n_arms')!r}")
        self._state[:] = np.asarray(arrays["rng"], dtype=np.uint64)
        self._import(arrays, meta)

    @abstractmethod
    def _export(self) -> ComponentState:
        """The subclass's learned state (arrays, plain values)."""

    @abstractmethod
    def _import(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        """Restore what :meth:`_export` gave."""

    # ------------------------------------------------------------------ to implement
    @abstractmethod
    def _select(self, eligible: np.ndarray, state: np.ndarray, context: Any, bonus: np.ndarray | None) -> Choice:
        """One selection among ``eligible`` (not empty) with ``bonus`` added to the scores
        (``None``: none)."""

    @abstractmethod
    def _learn(self, arm: int, dn: float, reward: float, previous: float, context: Any) -> None: ...

    @abstractmethod
    def action_distribution(
        self, eligible: Any = None, *, context: Any = None, bonus: np.ndarray | None = None
    ) -> np.ndarray:
        """Probability of each arm at the next selection (float64[n_arms], sums to 1 over the
        eligible arms), with ``bonus`` added to the arms' scores as in :meth:`select_one`."""

    def means(self) -> np.ndarray:
        """Current estimate of each arm's mean reward."""
        return np.zeros(self.n_arms)

    def __repr__(self) -> str:
        spec = getattr(self, "spec", None)
        return f"{type(self).__name__}({self.n_arms}, {spec!r})"
