"""Engine configuration: one validator for Python construction and decoded TOML/JSON, errors
with the path inside the document."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import msgspec
import pytest

from decisioner.config import (
    DEFAULT_EVENT_WEIGHTS,
    CatalogSpec,
    EngineConfig,
    EpsilonGreedySpec,
    ExperienceSpec,
    GreedySpec,
    PlacementSpec,
    PopularSpec,
    ProfileSpec,
    RandomSpec,
    SoftmaxSpec,
    ThompsonSpec,
    load_config,
    load_config_dict,
)
from decisioner.errors import ConfigError
from decisioner.schemas import EVENT_TYPES
from wording import Wrapped, full_match

KEY = "ab" * 16


def cfg(**kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"identity": {"hash_key": KEY}}
    base.update(kw)
    return base


def test_defaults() -> None:
    c = load_config_dict(cfg(placements=[{"name": "home", "kind": "recommendation", "slots": 4},
                                          {"name": "hero", "kind": "campaign", "experiences": [{"id": "a"}]}]))
    home, hero = c.placements
    assert isinstance(home.policy_spec, EpsilonGreedySpec) and home.policy is None
    assert isinstance(hero.policy_spec, ThompsonSpec)
    assert c.profiles.slots == 24 and c.profiles.half_life_days == 14.0
    assert c.limits.max_payload_bytes == 65_536
    assert set(DEFAULT_EVENT_WEIGHTS) == set(EVENT_TYPES)
    assert c.profiles.weight_of("purchase") == DEFAULT_EVENT_WEIGHTS["purchase"]
    assert ProfileSpec(event_weights={"view": 3.0}).weight_of("view") == 3.0


def test_every_policy_kind_decodes() -> None:
    kinds = {
        "epsilon_greedy": EpsilonGreedySpec, "softmax": SoftmaxSpec, "greedy": GreedySpec,
        "random": RandomSpec, "popular": PopularSpec,
    }
    for kind, cls in kinds.items():
        c = load_config_dict(cfg(placements=[{"name": "p", "kind": "recommendation", "policy": {"kind": kind}}]))
        assert isinstance(c.placements[0].policy, cls)


# ---------------------------------------------------------------- errors, full messages

BAD: list[tuple[str, dict[str, Any], str | Wrapped]] = [
    ("epsilon > 1",
     cfg(placements=[{"name": "home", "kind": "recommendation", "policy": {"kind": "epsilon_greedy", "epsilon": 1.5}}]),
     "Invalid config: `epsilon` must be in [0, 1], got 1.5 - at `$.placements[0].policy`"),
    ("epsilon < 0",
     cfg(placements=[{"name": "home", "kind": "recommendation", "policy": {"kind": "epsilon_greedy", "epsilon": -0.1}}]),
     "Invalid config: `epsilon` must be in [0, 1], got -0.1 - at `$.placements[0].policy`"),
    ("temperature",
     cfg(placements=[{"name": "home", "kind": "recommendation", "policy": {"kind": "softmax", "temperature": 0.0}}]),
     "Invalid config: `temperature` must be > 0, got 0.0 - at `$.placements[0].policy`"),
    ("prior",
     cfg(placements=[{"name": "hero", "kind": "campaign", "experiences": [{"id": "a"}], "policy": {"kind": "thompson", "prior_beta": -1.0}}]),
     "Invalid config: `prior_beta` must be > 0, got -1.0 - at `$.placements[0].policy`"),
    ("unknown policy",
     cfg(placements=[{"name": "home", "kind": "recommendation", "policy": {"kind": "oracle"}}]),
     Wrapped("Invalid config", at="$.placements[0].policy.kind", mentions=("oracle",))),
    ("campaign without experiences",
     cfg(placements=[{"name": "hero", "kind": "campaign"}]),
     "Invalid config: expected at least one experience, got 0 (placement 'hero') - at `$.placements[0]`"),
    ("campaign with several slots",
     cfg(placements=[{"name": "hero", "kind": "campaign", "slots": 2, "experiences": [{"id": "a"}]}]),
     "Invalid config: expected `slots` = 1 for a campaign, got 2 (placement 'hero') - at `$.placements[0]`"),
    ("duplicate experiences",
     cfg(placements=[{"name": "hero", "kind": "campaign", "experiences": [{"id": "a"}, {"id": "a"}]}]),
     "Invalid config: expected unique experience ids, got ['a', 'a'] (placement 'hero') - at `$.placements[0]`"),
    ("popularity policy on campaign",
     cfg(placements=[{"name": "hero", "kind": "campaign", "experiences": [{"id": "a"}], "policy": {"kind": "popular"}}]),
     "Invalid config: expected an arm policy (thompson, gaussian_thompson, ucb1, linucb, lin_ts, epsilon_greedy, "
     "softmax, greedy, random) for a campaign, got `popular` (placement 'hero') - at `$.placements[0]`"),
    ("thompson on recommendation",
     cfg(placements=[{"name": "home", "kind": "recommendation", "policy": {"kind": "thompson"}}]),
     "Invalid config: expected a ranking policy for a recommendation placement, got `thompson` (placement 'home') - at `$.placements[0]`"),
    ("experiences on recommendation",
     cfg(placements=[{"name": "home", "kind": "recommendation", "experiences": [{"id": "a"}]}]),
     "Invalid config: expected no experiences on a recommendation placement (placement 'home') - at `$.placements[0]`"),
    ("duplicate placement names",
     cfg(placements=[{"name": "home", "kind": "recommendation"}, {"name": "home", "kind": "recommendation", "slots": 2}]),
     "Invalid config: expected unique placement names, got ['home', 'home'] for `placements`"),
    ("unknown event type in weights",
     cfg(profiles={"event_weights": {"view": 1.0, "teleport": 2.0}}),
     "Invalid config: expected an event type in ['view', 'click', 'ad_click', 'email_open', 'email_click', "
     "'add_to_cart', 'purchase', 'return', 'service_call', 'coupon_redeem', 'download', 'identify', 'consent', "
     "'opinion'], got 'teleport' in `event_weights` - at `$.profiles`"),
    ("negative event weight", cfg(profiles={"event_weights": {"view": -1.0}}),
     Wrapped("Invalid config", at="$.profiles.event_weights[...]")),
    ("zero slots", cfg(profiles={"slots": 0}), Wrapped("Invalid config", at="$.profiles.slots")),
    ("zero half-life", cfg(profiles={"half_life_days": 0}), Wrapped("Invalid config", at="$.profiles.half_life_days")),
    ("bad kind", cfg(placements=[{"name": "x", "kind": "banner"}]),
     Wrapped("Invalid config", at="$.placements[0].kind", mentions=("banner",))),
    ("no facets", cfg(catalog={"facets": []}), "Invalid config: expected at least one facet, got none for `facets` - at `$.catalog`"),
    ("unsorted bands", cfg(catalog={"price_bands": [50, 25]}),
     "Invalid config: expected strictly increasing finite edges, got [50.0, 25.0] for `price_bands` - at `$.catalog`"),
    ("unknown section", cfg(ranker={}), Wrapped("Invalid config", mentions=("ranker",))),
    ("unknown field", cfg(identity={"hash_key": KEY, "salt": "x"}), Wrapped("Invalid config", at="$.identity", mentions=("salt",))),
    ("wrong type", cfg(limits={"max_payload_bytes": "big"}), Wrapped("Invalid config", at="$.limits.max_payload_bytes")),
]


@pytest.mark.parametrize(("data", "msg"), [(d, m) for _, d, m in BAD], ids=[n for n, _, _ in BAD])
def test_bad_config(data: dict[str, Any], msg: str | Wrapped) -> None:
    with pytest.raises(ConfigError, match=full_match(msg)):
        load_config_dict(data)


def test_direct_construction_uses_the_same_validators() -> None:
    with pytest.raises(ConfigError, match="^" + re.escape("`epsilon` must be in [0, 1], got 1.5") + "$"):
        EpsilonGreedySpec(epsilon=1.5)
    with pytest.raises(ConfigError, match="^" + re.escape("expected at least one experience, got 0 (placement 'hero')") + "$"):
        PlacementSpec(name="hero", kind="campaign")
    with pytest.raises(ConfigError, match="^" + re.escape("expected unique placement names, got ['a', 'a'] for `placements`") + "$"):
        EngineConfig(placements=[PlacementSpec(name="a", kind="recommendation")] * 2)
    with pytest.raises(ConfigError, match=re.escape("got 'nope' in `event_weights`")):
        ProfileSpec(event_weights={"nope": 1.0})
    with pytest.raises(ConfigError, match="^" + re.escape("expected strictly increasing finite edges, got [1.0, inf] for `price_bands`") + "$"):
        CatalogSpec(price_bands=(1.0, float("inf")))
    assert ExperienceSpec(id="a").facets == {}


# ---------------------------------------------------------------- files

TOML = """
[identity]
hash_key = "abababababababababababababababab"
types = ["cookie", "email"]

[profiles]
slots = 12
half_life_days = 7.0
facet_half_life_days = { brand = 30.0 }
event_weights = { view = 0.5, purchase = 10.0 }

[catalog]
facets = ["category", "brand"]
price_bands = [20, 80]

[scoring]
popularity_weight = 0.3

[[placements]]
name = "home"
kind = "recommendation"
slots = 3
policy = { kind = "softmax", temperature = 0.2 }
filters = { exclude = { category = ["gift-cards"] }, price_max = 500.0 }
boosts = [{ facet = "brand", value = "acme", weight = 0.5 }]

[[placements]]
name = "hero"
kind = "campaign"
experiences = [{ id = "spring" }, { id = "summer", start = 1700000000000 }]
"""

TOML_AS_DICT: dict[str, Any] = {
    "identity": {"hash_key": "ab" * 16, "types": ["cookie", "email"]},
    "profiles": {"slots": 12, "half_life_days": 7.0, "facet_half_life_days": {"brand": 30.0},
                 "event_weights": {"view": 0.5, "purchase": 10.0}},
    "catalog": {"facets": ["category", "brand"], "price_bands": [20, 80]},
    "scoring": {"popularity_weight": 0.3},
    "placements": [
        {"name": "home", "kind": "recommendation", "slots": 3, "policy": {"kind": "softmax", "temperature": 0.2},
         "filters": {"exclude": {"category": ["gift-cards"]}, "price_max": 500.0},
         "boosts": [{"facet": "brand", "value": "acme", "weight": 0.5}]},
        {"name": "hero", "kind": "campaign", "experiences": [{"id": "spring"}, {"id": "summer", "start": 1700000000000}]},
    ],
}


def test_toml_file_round_trip(tmp_path: Path) -> None:
    p = tmp_path / "t3_config.toml"
    p.write_text(TOML)
    c = load_config(p)
    assert c == load_config_dict(TOML_AS_DICT)
    assert c.identity.types == ("cookie", "email")
    assert c.catalog.price_bands == (20.0, 80.0)
    assert isinstance(c.placements[0].policy, SoftmaxSpec) and c.placements[0].policy.temperature == 0.2
    assert c.placements[0].boosts[0].weight == 0.5
    assert c.placements[1].experiences[1].start == 1_700_000_000_000
    # and through JSON: encode -> file -> load gives the same config
    j = tmp_path / "t3_config.json"
    j.write_bytes(msgspec.json.encode(c))
    assert load_config(j) == c
    assert load_config(str(j)) == c


def test_config_file_errors(tmp_path: Path) -> None:
    missing = tmp_path / "t3_missing.toml"
    with pytest.raises(ConfigError, match=re.escape(f"cannot read config file {str(missing)!r}: No such file or directory")):
        load_config(missing)
    bad = tmp_path / "t3_bad.toml"
    bad.write_text("[identity\n")
    with pytest.raises(ConfigError, match=re.escape(f"Invalid config TOML in {str(bad)!r}: ")):
        load_config(bad)
    bad_json = tmp_path / "t3_bad.json"
    bad_json.write_text("[1, 2]")
    with pytest.raises(ConfigError, match="^" + re.escape(f"expected a table at the top of {str(bad_json)!r}, got list") + "$"):
        load_config(bad_json)
    worse_json = tmp_path / "t3_worse.json"
    worse_json.write_text("{")
    with pytest.raises(ConfigError, match=full_match(Wrapped(f"Invalid config JSON in {str(worse_json)!r}"))):
        load_config(worse_json)
    bad_value = tmp_path / "t3_value.toml"
    bad_value.write_text('[[placements]]\nname = "p"\nkind = "recommendation"\npolicy = { kind = "epsilon_greedy", epsilon = 2.0 }\n')
    with pytest.raises(ConfigError, match="^" + re.escape("Invalid config: `epsilon` must be in [0, 1], got 2.0 - at `$.placements[0].policy`") + "$"):
        load_config(bad_value)
