"""Engine, placement and policy specifications (frozen msgspec Structs, loadable from TOML/JSON).

Every spec validates itself in ``__post_init__``, so Python construction and decoded config
share one validator; decoding errors carry the path inside the document.

>>> cfg = load_config_dict({"identity": {"hash_key": "00" * 16},
...     "placements": [{"name": "home", "kind": "recommendation", "slots": 4}]})
>>> cfg.placements[0].policy_spec.__struct_config__.tag  # no policy given: the default
'epsilon_greedy'
"""

from __future__ import annotations

import math
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Final, Literal

import msgspec
from msgspec import Meta, Struct

from .errors import ConfigError
from .schemas import EVENT_TYPES

__all__ = [
    "IdentitySpec",
    "IdentifierSpec",
    "DEFAULT_IDENTIFIERS",
    "DEFAULT_BLOCKED",
    "ProfileSpec",
    "CatalogSpec",
    "ScoringSpec",
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
    "VariantSpec",
    "ExperimentSpec",
    "HoldoutSpec",
    "Boost",
    "FilterSpec",
    "ExperienceSpec",
    "PlacementSpec",
    "LimitsSpec",
    "EngineConfig",
    "load_config",
    "load_config_dict",
]

DAY_MS: Final = 86_400_000

_BASE = dict(frozen=True, kw_only=True, forbid_unknown_fields=True)


def _check(ok: bool, msg: str) -> None:
    if not ok:
        raise ConfigError(msg)


#: Placeholder values that identify nobody, for every identifier type. Compared after trimming
#: and lower-casing, before format checks (so ``"null"`` in an email field is blocked, not an
#: error).
DEFAULT_BLOCKED: Final[tuple[str, ...]] = (
    "null", "nil", "none", "undefined", "n/a", "na", "nan", "0", "-1", "-", "unknown", "test",
    "anonymous", "[object object]", "false", "true", "00000000-0000-0000-0000-000000000000",
    "test@test.com", "test@example.com", "none@none.com", "no@email.com", "email@email.com",
    "asdf@asdf.com", "noemail@noemail.com",
)
#: Junk local parts of email addresses (regular expression, searched in the normalised value).
DEFAULT_EMAIL_PATTERNS: Final[tuple[str, ...]] = (
    r"^(?:test|tester|testing|null|none|nil|noemail|no-?mail|no-?reply|donotreply|do-not-reply"
    r"|nobody|fake|unknown|undefined|n/?a|asdf+|qwerty|x{3,}|abc)@",
)
#: Phone numbers of one repeated digit or a counting sequence after the country code.
DEFAULT_PHONE_PATTERNS: Final[tuple[str, ...]] = (r"^\+\d{0,3}(\d)\1{6,}$", r"^\+\d{0,3}0?123456789\d?$")


def _check_patterns(patterns: tuple[str, ...], at: str) -> None:
    for pat in patterns:
        try:
            re.compile(pat)
        except re.error as exc:
            raise ConfigError(f"expected a regular expression, got {pat!r} ({exc}){at}") from None


class IdentifierSpec(Struct, **_BASE):
    """Rules of one identifier type.

    ``normaliser``: ``email`` (trim, lower-case, check the shape; ``provider_rules`` also drops
    the dots and ``+tag`` of Gmail addresses and the ``+tag`` of Outlook/iCloud/Fastmail/Proton
    ones), ``phone`` (E.164 with the default region), ``lower`` (trim, lower-case) or ``id``
    (trim); None picks ``email``/``phone`` by name and ``id`` otherwise. ``unique``: a person
    holds at most one value (user id, CRM id); ``limit``: at most that many values per person (0:
    no limit). A merge breaking either is refused. ``priority``: the highest-priority identifier
    of an event is its anchor (the profile the event resolves to). ``ttl_days``: volatile ids
    (cookies) not seen for that long are dropped by :func:`decisioner.privacy.expire`.
    ``blocked`` / ``blocked_patterns``: values of this type that never link (exact, compared
    trimmed and lower-cased; regular expressions searched in the normalised value).

    >>> IdentifierSpec(name="user_id", unique=True, priority=100).max_per_profile
    1
    """

    name: Annotated[str, Meta(min_length=1, max_length=128)]
    normaliser: Literal["email", "phone", "lower", "id"] | None = None
    provider_rules: bool = False
    unique: bool = False
    limit: Annotated[int, Meta(ge=0, le=65_535)] = 0
    priority: Annotated[int, Meta(ge=-1_000_000, le=1_000_000)] = 0
    ttl_days: Annotated[float, Meta(gt=0.0, le=36_500.0)] | None = None
    blocked: tuple[str, ...] = ()
    blocked_patterns: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        at = f" (identifier type {self.name!r})"
        _check(0 <= self.limit <= 65_535, f"`limit` must be in [0, 65535], got {self.limit!r}{at}")
        _check(
            not (self.unique and self.limit > 1),
            f"expected `limit` 0 or 1 for a `unique` type, got {self.limit!r}{at}",
        )
        _check(
            -1_000_000 <= self.priority <= 1_000_000,
            f"`priority` must be in [-1000000, 1000000], got {self.priority!r}{at}",
        )
        _check(
            self.ttl_days is None or (math.isfinite(self.ttl_days) and 0.0 < self.ttl_days <= 36_500.0),
            f"`ttl_days` must be in (0, 36500], got {self.ttl_days!r}{at}",
        )
        _check(
            not self.provider_rules or self.kind == "email",
            f"expected `provider_rules` only on an email type, got normaliser {self.kind!r}{at}",
        )
        _check_patterns(self.blocked_patterns, at)

    @property
    def kind(self) -> str:
        """The normaliser actually used."""
        if self.normaliser is not None:
            return self.normaliser
        return self.name if self.name in ("email", "phone") else "id"

    @property
    def max_per_profile(self) -> int:
        """Values one profile may hold (0: no limit)."""
        return 1 if self.unique else self.limit


#: Default identifier rules: unique account ids, a few emails and phones per person, cookies
#: that expire after 400 days unseen (browsers cap cookie lifetimes there).
DEFAULT_IDENTIFIERS: Final[tuple[IdentifierSpec, ...]] = (
    IdentifierSpec(name="user_id", unique=True, priority=100),
    IdentifierSpec(name="crm_id", unique=True, priority=90),
    IdentifierSpec(name="email", limit=5, priority=60, blocked_patterns=DEFAULT_EMAIL_PATTERNS),
    IdentifierSpec(name="phone", limit=5, priority=50, blocked_patterns=DEFAULT_PHONE_PATTERNS),
    IdentifierSpec(name="device", limit=20, priority=20),
    IdentifierSpec(name="cookie", limit=100, priority=10, ttl_days=400.0),
)


class IdentitySpec(Struct, **_BASE):
    """Where the hashing secret comes from, the identifier types and the merge rules.

    ``hash_key`` is a hex string (at least 16 bytes); if absent, the environment variable named
    by ``hash_key_env`` is read. Types not listed in ``types`` or ``identifiers`` are accepted
    and normalised as plain ids (trimmed), with no limit and priority 0. ``rules`` off turns
    every merge rule off (blocked values, limits, the size cap): plain connected components.
    ``max_identifiers`` caps a component (0: no cap). ``blocked`` and ``blocked_patterns``
    apply to every type. ``identifiers`` listed here replace the default rules of the same name
    (:data:`DEFAULT_IDENTIFIERS`); default types not listed keep theirs.
    """

    hash_key: str | None = None
    hash_key_env: str | None = "DECISIONER_HASH_KEY"
    types: tuple[str, ...] = ("cookie", "device", "email", "user_id", "crm_id", "phone")
    default_phone_region: str = "1"
    identifiers: tuple[IdentifierSpec, ...] = DEFAULT_IDENTIFIERS
    rules: bool = True
    max_identifiers: Annotated[int, Meta(ge=0, le=2_000_000_000)] = 1000
    blocked: tuple[str, ...] = DEFAULT_BLOCKED
    blocked_patterns: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        at = ""
        names = [s.name for s in self.identifiers]
        _check(len(set(names)) == len(names), f"expected unique identifier names, got {names!r}{at}")
        limited = [s.name for s in self.identifiers if s.max_per_profile > 0]
        _check(len(limited) <= 16, f"expected at most 16 limited identifier types, got {len(limited)}{at}")
        n_types = len(set(self.types) | set(names))
        _check(n_types <= 127, f"expected at most 127 identifier types, got {n_types}{at}")
        _check(
            0 <= self.max_identifiers <= 2_000_000_000,
            f"`max_identifiers` must be in [0, 2000000000], got {self.max_identifiers!r}{at}",
        )
        _check(
            self.default_phone_region.isdigit() and 1 <= len(self.default_phone_region) <= 3,
            f"expected a country calling code of 1 to 3 digits, got {self.default_phone_region!r} "
            f"for `default_phone_region`{at}",
        )
        _check_patterns(self.blocked_patterns, at)


class ProfileSpec(Struct, **_BASE):
    """Decayed affinity: slots per profile, half-lives per facet, weights per event type."""

    slots: Annotated[int, Meta(ge=1, le=256)] = 24
    purchased_slots: Annotated[int, Meta(ge=0, le=256)] = 8
    half_life_days: Annotated[float, Meta(gt=0.0, le=36500.0)] = 14.0
    facet_half_life_days: dict[str, Annotated[float, Meta(gt=0.0, le=36500.0)]] = {}
    event_weights: dict[str, Annotated[float, Meta(ge=0.0, le=1000.0)]] = {}
    default_consent: bool = True
    #: most live profiles held (0: no bound). When a new profile would pass it, the profiles
    #: idle longest (oldest last event) are evicted with their identifiers and evidence; an
    #: evicted person who comes back starts a new profile. Erasure tombstones are kept.
    max_profiles: Annotated[int, Meta(ge=0, le=1_000_000_000)] = 5_000_000
    #: share of ``max_profiles`` evicted at once when full: one selection pass pays for the
    #: batch; the pause grows with it (about 5 ms per 1,000 profiles at 1M, see the README)
    evict_fraction: Annotated[float, Meta(gt=0.0, le=0.5)] = 0.001

    def __post_init__(self) -> None:
        for name in self.event_weights:
            _check(
                name in EVENT_TYPES,
                f"expected an event type in {list(EVENT_TYPES)}, got {name!r} in "
                "`event_weights`",
            )

    def weight_of(self, event_type: str) -> float:
        return self.event_weights.get(event_type, DEFAULT_EVENT_WEIGHTS[event_type])


#: Default weight of each event type in affinity updates (0: no profiling signal).
DEFAULT_EVENT_WEIGHTS: Final[dict[str, float]] = {
    "view": 1.0,
    "click": 2.0,
    "ad_click": 1.5,
    "email_open": 0.0,
    "email_click": 1.5,
    "add_to_cart": 4.0,
    "purchase": 8.0,
    "return": -4.0,
    "service_call": 0.0,
    "coupon_redeem": 2.0,
    "download": 1.0,
    "identify": 0.0,
}


class CatalogSpec(Struct, **_BASE):
    """Which item fields are facets, and the price-band edges that make the ``price_band`` facet."""

    facets: tuple[str, ...] = ("category", "brand", "colour", "tags")
    price_bands: tuple[float, ...] = (25.0, 50.0, 100.0, 250.0)

    def __post_init__(self) -> None:
        _check(len(self.facets) > 0, "expected at least one facet, got none for `facets`")
        bands = list(self.price_bands)
        _check(
            all(math.isfinite(b) for b in bands) and bands == sorted(set(bands)),
            f"expected strictly increasing finite edges, got {bands!r} for `price_bands`",
        )


class ScoringSpec(Struct, **_BASE):
    """Weights of the score terms: affinity . facets + popularity prior (+ boosts)."""

    affinity_weight: Annotated[float, Meta(ge=0.0, le=1e6)] = 1.0
    popularity_weight: Annotated[float, Meta(ge=0.0, le=1e6)] = 0.2
    popularity_half_life_days: Annotated[float, Meta(gt=0.0, le=36500.0)] = 7.0


class EpsilonGreedySpec(Struct, tag="epsilon_greedy", tag_field="kind", **_BASE):
    """Per slot: the best remaining candidate with probability 1-epsilon, else a uniform draw
    from the exploration pool (the top ``pool`` candidates by score)."""

    epsilon: float = 0.1
    pool: Annotated[int, Meta(ge=1, le=10_000)] = 50

    def __post_init__(self) -> None:
        _check(0.0 <= self.epsilon <= 1.0, f"`epsilon` must be in [0, 1], got {self.epsilon!r}")


class SoftmaxSpec(Struct, tag="softmax", tag_field="kind", **_BASE):
    """Per slot: a draw from softmax(score / temperature) over the remaining pool (Plackett-Luce)."""

    temperature: float = 0.1
    pool: Annotated[int, Meta(ge=1, le=10_000)] = 50

    def __post_init__(self) -> None:
        _check(
            math.isfinite(self.temperature) and self.temperature > 0.0,
            f"`temperature` must be > 0, got {self.temperature!r}",
        )


class GreedySpec(Struct, tag="greedy", tag_field="kind", **_BASE):
    """The top-scored candidates, deterministically (propensity 1)."""


class RandomSpec(Struct, tag="random", tag_field="kind", **_BASE):
    """Uniformly random eligible candidates: the random baseline."""


class PopularSpec(Struct, tag="popular", tag_field="kind", **_BASE):
    """The most popular eligible candidates (decayed counts): the popularity baseline."""


def _check_forgetting(spec: Any) -> None:
    """Shared checks of the drift and warm-up parameters of the arm policies."""
    _check(
        0.0 < spec.discount <= 1.0, f"`discount` must be in (0, 1], got {spec.discount!r}"
    )
    _check(
        0 <= spec.window <= 10_000_000, f"`window` must be in [0, 10000000], got {spec.window!r}"
    )
    _check(
        0 <= spec.burn_in <= 1_000_000, f"`burn_in` must be in [0, 1000000], got {spec.burn_in!r}"
    )
    _check(
        spec.discount == 1.0 or spec.window == 0,
        f"expected either `discount` < 1 or `window` > 0, got both ({spec.discount!r}, {spec.window!r})",
    )


class ThompsonSpec(Struct, tag="thompson", tag_field="kind", **_BASE):
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
            _check(math.isfinite(v) and v > 0.0, f"`{name}` must be > 0, got {v!r}")
        _check(
            1 <= self.batch_size <= 100_000_000,
            f"`batch_size` must be in [1, 100000000], got {self.batch_size!r}",
        )
        _check_forgetting(self)


class GaussianThompsonSpec(Struct, tag="gaussian_thompson", tag_field="kind", **_BASE):
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
        _check(math.isfinite(self.prior_mean), f"`prior_mean` must be finite, got {self.prior_mean!r}")
        for name in ("prior_count", "prior_variance", "prior_variance_count"):
            v = getattr(self, name)
            _check(math.isfinite(v) and v > 0.0, f"`{name}` must be > 0, got {v!r}")
        _check(
            1 <= self.batch_size <= 100_000_000,
            f"`batch_size` must be in [1, 100000000], got {self.batch_size!r}",
        )
        _check_forgetting(self)


class UCB1Spec(Struct, tag="ucb1", tag_field="kind", **_BASE):
    """UCB1 (Auer et al. 2002): the highest ``mean + c sqrt(2 ln N / n)``, unplayed arms first.
    Deterministic (propensity 1). ``discount`` / ``window`` give discounted / sliding-window
    UCB for drifting rewards."""

    c: float = 1.0
    discount: float = 1.0
    window: int = 0
    burn_in: int = 0

    def __post_init__(self) -> None:
        _check(math.isfinite(self.c) and self.c >= 0.0, f"`c` must be >= 0, got {self.c!r}")
        _check_forgetting(self)


class LinUCBSpec(Struct, tag="linucb", tag_field="kind", **_BASE):
    """Contextual LinUCB (Li et al. 2010) with a ridge model per arm over ``features`` (numeric
    event attributes; a constant 1 is prepended). Deterministic (propensity 1)."""

    alpha: float = 1.0
    l2: float = 1.0
    features: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check(math.isfinite(self.alpha) and self.alpha >= 0.0, f"`alpha` must be >= 0, got {self.alpha!r}")
        _check(math.isfinite(self.l2) and self.l2 > 0.0, f"`l2` must be > 0, got {self.l2!r}")
        _check(len(self.features) <= 256, f"expected at most 256 features, got {len(self.features)}")


class LinTSSpec(Struct, tag="lin_ts", tag_field="kind", **_BASE):
    """Contextual linear Thompson sampling (Agrawal and Goyal 2013): the score of each arm is
    drawn from ``N(theta . x, v^2 x^T A^-1 x)`` through the Cholesky factor of ``A``; the
    propensity is the probability matching of those normals (exact to the integration error)."""

    v: float = 1.0
    l2: float = 1.0
    features: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check(math.isfinite(self.v) and self.v > 0.0, f"`v` must be > 0, got {self.v!r}")
        _check(math.isfinite(self.l2) and self.l2 > 0.0, f"`l2` must be > 0, got {self.l2!r}")
        _check(len(self.features) <= 256, f"expected at most 256 features, got {len(self.features)}")


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


def _check_policy(kind: str, policy: Any, at: str) -> None:
    """A campaign takes an arm policy; a recommendation placement a ranking policy."""
    if policy is None:
        return
    if kind == "campaign":
        _check(
            isinstance(policy, _CAMPAIGN_POLICIES),
            f"expected an arm policy (thompson, gaussian_thompson, ucb1, linucb, lin_ts, "
            f"epsilon_greedy, softmax, greedy, random) for a campaign, got `{_policy_name(policy)}`{at}",
        )
    else:
        _check(
            not isinstance(policy, ARM_POLICIES),
            f"expected a ranking policy for a recommendation placement, got `{_policy_name(policy)}`{at}",
        )


class Boost(Struct, **_BASE):
    """Add ``weight`` to the score of items whose ``facet`` has ``value``."""

    facet: str
    value: str
    weight: Annotated[float, Meta(ge=-1e6, le=1e6)]


class FilterSpec(Struct, **_BASE):
    """Eligibility rules of a recommendation placement."""

    in_stock: bool = True
    exclude_purchased: bool = True
    include: dict[str, list[str]] = {}
    exclude: dict[str, list[str]] = {}
    price_min: float | None = None
    price_max: float | None = None


class ExperienceSpec(Struct, **_BASE):
    """One experience (offer, message, banner) of a campaign placement."""

    id: Annotated[str, Meta(min_length=1, max_length=256)]
    start: int | None = None
    end: int | None = None
    facets: dict[str, str] = {}


class PlacementSpec(Struct, **_BASE):
    """A placement: ranks catalog items into ``slots`` (recommendation) or picks one of its
    ``experiences`` (campaign)."""

    name: Annotated[str, Meta(min_length=1, max_length=128)]
    kind: Literal["recommendation", "campaign"]
    slots: Annotated[int, Meta(ge=1, le=100)] = 1
    policy: PolicySpec | None = None
    filters: FilterSpec = FilterSpec()
    boosts: list[Boost] = []
    experiences: list[ExperienceSpec] = []
    default: str | None = None
    #: when nothing is eligible: serve the fallback (popular in-stock items / ``default``) or nothing
    fallback: bool = True

    def __post_init__(self) -> None:
        at = f" (placement {self.name!r})"
        if self.kind == "campaign":
            _check(len(self.experiences) >= 1, f"expected at least one experience, got 0{at}")
            _check(self.slots == 1, f"expected `slots` = 1 for a campaign, got {self.slots}{at}")
            ids = [e.id for e in self.experiences]
            _check(len(set(ids)) == len(ids), f"expected unique experience ids, got {ids!r}{at}")
            _check(
                self.default is None or self.default in ids,
                f"expected `default` to be one of {ids!r}, got {self.default!r}{at}",
            )
        else:
            _check(not self.experiences, f"expected no experiences on a recommendation placement{at}")
            _check(self.default is None, f"expected no `default` on a recommendation placement{at}")
        _check_policy(self.kind, self.policy, at)

    @property
    def policy_spec(self) -> PolicySpec:
        if self.policy is not None:
            return self.policy
        return ThompsonSpec() if self.kind == "campaign" else EpsilonGreedySpec()


class VariantSpec(Struct, **_BASE):
    """One arm of an experiment: a traffic ``weight`` and, optionally, its own policy for the
    placement (``None``: the placement's policy)."""

    name: Annotated[str, Meta(min_length=1, max_length=64)]
    weight: float = 1.0
    policy: PolicySpec | None = None

    def __post_init__(self) -> None:
        _check(
            math.isfinite(self.weight) and self.weight > 0.0,
            f"`weight` must be > 0, got {self.weight!r} (variant {self.name!r})",
        )


class ExperimentSpec(Struct, **_BASE):
    """A randomised experiment on one placement.

    Units (profiles) are bucketed by a keyed xxh3 hash of ``(salt, unit)``
    (:mod:`decisioner.allocation.experiments`). Experiments sharing a ``namespace`` are mutually
    exclusive when their ``segment`` ranges (shares of the namespace's hash space) do not
    overlap. ``traffic`` is the share of the segment enrolled: raising it (a ramp) only adds
    units, and a unit keeps its first assignment for the experiment's lifetime, so changing
    ``traffic`` or the variants' weights never reshuffles people already assigned.
    """

    name: Annotated[str, Meta(min_length=1, max_length=64)]
    placement: Annotated[str, Meta(min_length=1, max_length=128)]
    variants: list[VariantSpec]
    salt: str | None = None
    namespace: str | None = None
    segment: tuple[float, float] = (0.0, 1.0)
    traffic: float = 1.0
    control: str | None = None

    def __post_init__(self) -> None:
        at = f" (experiment {self.name!r})"
        names = [v.name for v in self.variants]
        _check(len(names) >= 1, f"expected at least one variant, got 0{at}")
        _check(len(names) <= 64, f"expected at most 64 variants, got {len(names)}{at}")
        _check(len(set(names)) == len(names), f"expected unique variant names, got {names!r}{at}")
        _check("holdout" not in names, f"expected no variant named 'holdout' (reserved){at}")
        lo, hi = self.segment
        _check(
            0.0 <= lo < hi <= 1.0, f"expected `segment` with 0 <= start < end <= 1, got {list(self.segment)!r}{at}"
        )
        _check(0.0 <= self.traffic <= 1.0, f"`traffic` must be in [0, 1], got {self.traffic!r}{at}")
        _check(
            self.control is None or self.control in names,
            f"expected `control` to be one of {names!r}, got {self.control!r}{at}",
        )

    @property
    def salt_(self) -> str:
        return self.salt if self.salt is not None else self.name

    @property
    def namespace_(self) -> str:
        return self.namespace if self.namespace is not None else self.name

    @property
    def control_(self) -> str:
        return self.control if self.control is not None else self.variants[0].name


class HoldoutSpec(Struct, **_BASE):
    """A global holdout: a ``fraction`` of all units, bucketed by ``salt``, gets every
    placement's default content (campaign: its ``default`` or first experience; recommendation:
    the most popular items) and no experiment."""

    fraction: float = 0.05
    salt: str = "global-holdout"

    def __post_init__(self) -> None:
        _check(0.0 <= self.fraction < 1.0, f"`fraction` must be in [0, 1), got {self.fraction!r} - at `holdout`")


class LimitsSpec(Struct, **_BASE):
    """Input limits (safe defaults) and bounded in-memory buffers."""

    max_payload_bytes: Annotated[int, Meta(ge=256, le=64 * 1024 * 1024)] = 65_536
    max_identifiers: Annotated[int, Meta(ge=1, le=32)] = 16
    max_attributes: Annotated[int, Meta(ge=0, le=64)] = 32
    max_pending_decisions: Annotated[int, Meta(ge=1, le=100_000_000)] = 1_000_000


class EngineConfig(Struct, **_BASE):
    """The whole engine configuration."""

    identity: IdentitySpec = IdentitySpec()
    profiles: ProfileSpec = ProfileSpec()
    catalog: CatalogSpec = CatalogSpec()
    scoring: ScoringSpec = ScoringSpec()
    placements: list[PlacementSpec] = []
    limits: LimitsSpec = LimitsSpec()
    experiments: list[ExperimentSpec] = []
    holdout: HoldoutSpec | None = None

    def __post_init__(self) -> None:
        names = [p.name for p in self.placements]
        _check(
            len(set(names)) == len(names),
            f"expected unique placement names, got {names!r} for `placements`",
        )
        _check_experiments(self.experiments, {p.name: p for p in self.placements})


def _check_experiments(experiments: list[ExperimentSpec], placements: dict[str, PlacementSpec]) -> None:
    names = [e.name for e in experiments]
    _check(len(set(names)) == len(names), f"expected unique experiment names, got {names!r} for `experiments`")
    used: dict[str, str] = {}
    spans: dict[str, list[tuple[float, float, str]]] = {}
    for e in experiments:
        at = f" (experiment {e.name!r})"
        _check(
            e.placement in placements,
            f"expected a configured placement in {sorted(placements)!r}, got {e.placement!r}{at}",
        )
        _check(
            e.placement not in used,
            f"expected at most one experiment per placement, got {used.get(e.placement)!r} and "
            f"{e.name!r} on {e.placement!r}",
        )
        used[e.placement] = e.name
        kind = placements[e.placement].kind
        for v in e.variants:
            _check_policy(kind, v.policy, f" (experiment {e.name!r}, variant {v.name!r})")
        for lo, hi, other in spans.get(e.namespace_, []):
            _check(
                e.segment[1] <= lo or hi <= e.segment[0],
                f"expected disjoint segments in namespace {e.namespace_!r}, got "
                f"{list(e.segment)!r} ({e.name!r}) overlapping {[lo, hi]!r} ({other!r})",
            )
        spans.setdefault(e.namespace_, []).append((e.segment[0], e.segment[1], e.name))


def load_config_dict(data: dict[str, Any]) -> EngineConfig:
    """Validate a configuration mapping.

    Raises
    ------
    ConfigError
        With the path of the offending field.
    """
    try:
        return msgspec.convert(data, EngineConfig)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"Invalid config: {exc}") from None


def load_config(path: str | Path) -> EngineConfig:
    """Load a TOML (``.toml``) or JSON configuration file."""
    p = Path(path)
    try:
        text = p.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read config file {str(p)!r}: {exc.strerror}") from None
    if p.suffix == ".json":
        try:
            data = msgspec.json.decode(text)
        except msgspec.DecodeError as exc:
            raise ConfigError(f"Invalid config JSON in {str(p)!r}: {exc}") from None
        except RecursionError:
            raise ConfigError(f"Invalid config JSON in {str(p)!r}: nested too deeply") from None
    else:
        try:
            data = tomllib.loads(text.decode())
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"Invalid config TOML in {str(p)!r}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"expected a table at the top of {str(p)!r}, got {type(data).__name__}")
    return load_config_dict(data)
