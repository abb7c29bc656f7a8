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
import tomllib
from pathlib import Path
from typing import Annotated, Any, Final, Literal, Union

import msgspec
from msgspec import Meta, Struct

from .errors import ConfigError
from .schemas import EVENT_TYPES

__all__ = [
    "IdentitySpec",
    "ProfileSpec",
    "CatalogSpec",
    "ScoringSpec",
    "EpsilonGreedySpec",
    "SoftmaxSpec",
    "GreedySpec",
    "RandomSpec",
    "PopularSpec",
    "ThompsonSpec",
    "PolicySpec",
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


class IdentitySpec(Struct, **_BASE):
    """Where the hashing secret comes from, and the identifier types known to the graph.

    ``hash_key`` is a hex string (at least 16 bytes); if absent, the environment variable named
    by ``hash_key_env`` is read. Types not listed in ``types`` are accepted and normalised as
    plain ids (trimmed).
    """

    hash_key: str | None = None
    hash_key_env: str | None = "DECISIONER_HASH_KEY"
    types: tuple[str, ...] = ("cookie", "device", "email", "user_id", "crm_id", "phone")
    default_phone_region: str = "1"


class ProfileSpec(Struct, **_BASE):
    """Decayed affinity: slots per profile, half-lives per facet, weights per event type."""

    slots: Annotated[int, Meta(ge=1, le=256)] = 24
    purchased_slots: Annotated[int, Meta(ge=0, le=256)] = 8
    half_life_days: Annotated[float, Meta(gt=0.0, le=36500.0)] = 14.0
    facet_half_life_days: dict[str, Annotated[float, Meta(gt=0.0, le=36500.0)]] = {}
    event_weights: dict[str, Annotated[float, Meta(ge=0.0, le=1000.0)]] = {}
    default_consent: bool = True

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


class ThompsonSpec(Struct, tag="thompson", tag_field="kind", **_BASE):
    """Bernoulli Thompson sampling over a campaign's experiences.

    The propensity of the chosen arm is estimated with ``propensity_draws`` Monte Carlo draws.
    """

    prior_alpha: float = 1.0
    prior_beta: float = 1.0
    propensity_draws: Annotated[int, Meta(ge=16, le=100_000)] = 128

    def __post_init__(self) -> None:
        for name in ("prior_alpha", "prior_beta"):
            v = getattr(self, name)
            _check(math.isfinite(v) and v > 0.0, f"`{name}` must be > 0, got {v!r}")


PolicySpec = Union[EpsilonGreedySpec, SoftmaxSpec, GreedySpec, RandomSpec, PopularSpec, ThompsonSpec]


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

    def __post_init__(self) -> None:
        at = f" (placement {self.name!r})"
        if self.kind == "campaign":
            _check(len(self.experiences) >= 1, f"expected at least one experience, got 0{at}")
            _check(self.slots == 1, f"expected `slots` = 1 for a campaign, got {self.slots}{at}")
            ids = [e.id for e in self.experiences]
            _check(len(set(ids)) == len(ids), f"expected unique experience ids, got {ids!r}{at}")
            _check(
                self.policy is None or isinstance(self.policy, (ThompsonSpec, RandomSpec)),
                f"expected a `thompson` or `random` policy for a campaign, got "
                f"{type(self.policy).__name__}{at}",
            )
        else:
            _check(not self.experiences, f"expected no experiences on a recommendation placement{at}")
            _check(
                not isinstance(self.policy, ThompsonSpec),
                f"expected a ranking policy for a recommendation placement, got `thompson`{at}",
            )

    @property
    def policy_spec(self) -> PolicySpec:
        if self.policy is not None:
            return self.policy
        return ThompsonSpec() if self.kind == "campaign" else EpsilonGreedySpec()


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

    def __post_init__(self) -> None:
        names = [p.name for p in self.placements]
        _check(
            len(set(names)) == len(names),
            f"expected unique placement names, got {names!r} for `placements`",
        )


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
