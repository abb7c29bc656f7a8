"""Policy specs, one frozen Struct per policy tagged by ``kind``: the ranking policies of a
recommendation placement and the arm policies of a campaign, with the check of which kind of
placement takes which."""

from __future__ import annotations

import math
from typing import Annotated, Any, Final

from msgspec import Meta, Struct

from ._spec import SPEC, check

__all__ = [
    "EpsilonGreedySpec",
    "SoftmaxSpec",
    "GreedySpec",
    "RandomSpec",
    "PopularSpec",
    "ThompsonSpec",
    "GaussianThompsonSpec",
    "UCB1Spec",
    "LinUCBSpec",
    "LinTSSpec",
    "PolicySpec",
    "ARM_POLICIES",
    "check_policy",
]


class EpsilonGreedySpec(Struct, tag="epsilon_greedy", tag_field="kind", **SPEC):
    """Per slot: the best remaining candidate with probability 1-epsilon, else a uniform draw
    from the exploration pool (the top ``pool`` candidates by score)."""

    epsilon: float = 0.1
    pool: Annotated[int, Meta(ge=1, le=10_000)] = 50

    def __post_init__(self) -> None:
        check(0.0 <= self.epsilon <= 1.0, f"`epsilon` must be in [0, 1], got {self.epsilon!r}")


class SoftmaxSpec(Struct, tag="softmax", tag_field="kind", **SPEC):
    """Per slot: a draw from softmax(score / temperature) over the remaining pool (Plackett-Luce)."""

    temperature: float = 0.1
    pool: Annotated[int, Meta(ge=1, le=10_000)] = 50

    def __post_init__(self) -> None:
        check(
            math.isfinite(self.temperature) and self.temperature > 0.0,
            f"`temperature` must be > 0, got {self.temperature!r}",
        )


class GreedySpec(Struct, tag="greedy", tag_field="kind", **SPEC):
    """The top-scored candidates, deterministically (propensity 1)."""


class RandomSpec(Struct, tag="random", tag_field="kind", **SPEC):
    """Uniformly random eligible candidates: the random baseline."""


class PopularSpec(Struct, tag="popular", tag_field="kind", **SPEC):
    """The most popular eligible candidates (decayed counts): the popularity baseline."""


def _check_forgetting(spec: Any) -> None:
    """Shared checks of the drift and warm-up parameters of the arm policies."""
    check(
        0.0 < spec.discount <= 1.0, f"`discount` must be in (0, 1], got {spec.discount!r}"
    )
    check(
        0 <= spec.window <= 10_000_000, f"`window` must be in [0, 10000000], got {spec.window!r}"
    )
    check(
        0 <= spec.burn_in <= 1_000_000, f"`burn_in` must be in [0, 1000000], got {spec.burn_in!r}"
    )
    check(
        spec.discount == 1.0 or spec.window == 0,
        f"expected either `discount` < 1 or `window` > 0, got both ({spec.discount!r}, {spec.window!r})",
    )


class ThompsonSpec(Struct, tag="thompson", tag_field="kind", **SPEC):
    """Bernoulli Thompson sampling over a campaign's experiences (Beta posteriors).

    Selection is probability matching: each arm's probability of having the highest posterior
    draw is computed by numerical integration (``_kernels.bandit.rank_probabilities``) and the
    arm is drawn from those probabilities, so the logged propensity is exact. The probabilities
    are refreshed after ``batch_size`` exposures or rewards (1: before every selection, plain
    Thompson sampling; larger: batched Thompson sampling, cheaper with many arms).
    ``discount`` < 1 forgets old evidence geometrically per update; ``window`` > 0 keeps only
    the last ``window`` updates; ``burn_in`` plays arms with fewer exposures uniformly first.
    """

    prior_alpha: float = 1.0
    prior_beta: float = 1.0
    batch_size: Annotated[int, Meta(ge=1, le=100_000_000)] = 1
    discount: float = 1.0
    window: int = 0
    burn_in: int = 0

    def __post_init__(self) -> None:
        for name in ("prior_alpha", "prior_beta"):
            v = getattr(self, name)
            check(math.isfinite(v) and v > 0.0, f"`{name}` must be > 0, got {v!r}")
        check(
            1 <= self.batch_size <= 100_000_000,
            f"`batch_size` must be in [1, 100000000], got {self.batch_size!r}",
        )
        _check_forgetting(self)


class GaussianThompsonSpec(Struct, tag="gaussian_thompson", tag_field="kind", **SPEC):
    """Thompson sampling for continuous rewards (revenue, basket value).

    Each arm's mean has the normal posterior of a Normal-Gamma model with its variance
    estimated: prior mean ``prior_mean`` worth ``prior_count`` observations, and prior variance
    ``prior_variance`` worth ``prior_variance_count`` observations. Selection and propensity as
    for ``thompson`` (normal posteriors instead of Beta).
    """

    prior_mean: float = 0.0
    prior_count: float = 1.0
    prior_variance: float = 1.0
    prior_variance_count: float = 1.0
    batch_size: Annotated[int, Meta(ge=1, le=100_000_000)] = 1
    discount: float = 1.0
    window: int = 0
    burn_in: int = 0

    def __post_init__(self) -> None:
        check(math.isfinite(self.prior_mean), f"`prior_mean` must be finite, got {self.prior_mean!r}")
        for name in ("prior_count", "prior_variance", "prior_variance_count"):
            v = getattr(self, name)
            check(math.isfinite(v) and v > 0.0, f"`{name}` must be > 0, got {v!r}")
        check(
            1 <= self.batch_size <= 100_000_000,
            f"`batch_size` must be in [1, 100000000], got {self.batch_size!r}",
        )
        _check_forgetting(self)


class UCB1Spec(Struct, tag="ucb1", tag_field="kind", **SPEC):
    """UCB1 (Auer et al. 2002): the highest ``mean + c sqrt(2 ln N / n)``, unplayed arms first.
    Deterministic (propensity 1). ``discount`` / ``window`` give discounted / sliding-window
    UCB for drifting rewards."""

    c: float = 1.0
    discount: float = 1.0
    window: int = 0
    burn_in: int = 0

    def __post_init__(self) -> None:
        check(math.isfinite(self.c) and self.c >= 0.0, f"`c` must be >= 0, got {self.c!r}")
        _check_forgetting(self)


class LinUCBSpec(Struct, tag="linucb", tag_field="kind", **SPEC):
    """Contextual LinUCB (Li et al. 2010) with a ridge model per arm over ``features`` (numeric
    event attributes; a constant 1 is prepended). Deterministic (propensity 1)."""

    alpha: float = 1.0
    l2: float = 1.0
    features: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check(math.isfinite(self.alpha) and self.alpha >= 0.0, f"`alpha` must be >= 0, got {self.alpha!r}")
        check(math.isfinite(self.l2) and self.l2 > 0.0, f"`l2` must be > 0, got {self.l2!r}")
        check(len(self.features) <= 256, f"expected at most 256 features, got {len(self.features)}")


class LinTSSpec(Struct, tag="lin_ts", tag_field="kind", **SPEC):
    """Contextual linear Thompson sampling (Agrawal and Goyal 2013): the score of each arm is
    drawn from ``N(theta . x, v^2 x^T A^-1 x)`` through the Cholesky factor of ``A``; the
    propensity is the probability matching of those normals (exact to the integration error)."""

    v: float = 1.0
    l2: float = 1.0
    features: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check(math.isfinite(self.v) and self.v > 0.0, f"`v` must be > 0, got {self.v!r}")
        check(math.isfinite(self.l2) and self.l2 > 0.0, f"`l2` must be > 0, got {self.l2!r}")
        check(len(self.features) <= 256, f"expected at most 256 features, got {len(self.features)}")


PolicySpec = (
    EpsilonGreedySpec | SoftmaxSpec | GreedySpec | RandomSpec | PopularSpec | ThompsonSpec
    | GaussianThompsonSpec | UCB1Spec | LinUCBSpec | LinTSSpec
)

#: policies that choose among a campaign's experiences (arms); the ranking policies
#: (epsilon_greedy, softmax, greedy, random) act on arms too, over their mean rewards
ARM_POLICIES: Final = (ThompsonSpec, GaussianThompsonSpec, UCB1Spec, LinUCBSpec, LinTSSpec)
_CAMPAIGN_POLICIES: Final = (*ARM_POLICIES, EpsilonGreedySpec, SoftmaxSpec, GreedySpec, RandomSpec)


def _policy_name(policy: Any) -> str:
    return str(type(policy).__struct_config__.tag)


def check_policy(kind: str, policy: Any, at: str) -> None:
    """A campaign takes an arm policy; a recommendation placement a ranking policy."""
    if policy is None:
        return
    if kind == "campaign":
        check(
            isinstance(policy, _CAMPAIGN_POLICIES),
            f"expected an arm policy (thompson, gaussian_thompson, ucb1, linucb, lin_ts, "
            f"epsilon_greedy, softmax, greedy, random) for a campaign, got `{_policy_name(policy)}`{at}",
        )
    else:
        check(
            not isinstance(policy, ARM_POLICIES),
            f"expected a ranking policy for a recommendation placement, got `{_policy_name(policy)}`{at}",
        )
