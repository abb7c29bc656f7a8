"""Engine, placement and policy specifications (frozen msgspec Structs, loadable from TOML/JSON).

Every spec validates itself in ``__post_init__``, so Python construction and decoded config
share one validator; decoding errors carry the path inside the document.

One module per part of the document: :mod:`.identity` (identifier rules, the hashing secret),
:mod:`.profiles`, :mod:`.catalog` (facets, price bands, score weights), :mod:`.policies` (one
spec per policy, tagged by ``kind``), :mod:`.placements`, :mod:`.experiments` (variants,
experiments, holdout), :mod:`.outcomes` (the attribution window), :mod:`.attributes` (typed
profile attributes and their reconciliation rules), :mod:`.decisionlog` (the decision log's
window in memory), :mod:`.engagement` (engagement tiers and the regional pulse), :mod:`.outbound` (caps and quiet
hours of outbound messages), :mod:`.state` (the state backend: embedded or Redis) and
:mod:`.document` (:class:`EngineConfig`, limits, loading).
Import specs from here: ``from decisioner.config import PlacementSpec``.

>>> cfg = load_config_dict({"identity": {"hash_key": "00" * 16},
...     "placements": [{"name": "home", "kind": "recommendation", "slots": 4}]})
>>> cfg.placements[0].policy_spec.__struct_config__.tag  # no policy given: the default
'epsilon_greedy'
"""

from ._spec import DAY_MS as DAY_MS
from .activity import ActivitySpec
from .attributes import AttributeSpec
from .catalog import CatalogSpec, ScoringSpec
from .consent import ConsentSpec
from .decisionlog import DecisionLogSpec
from .document import EngineConfig, LimitsSpec, load_config, load_config_dict
from .engagement import DEFAULT_TIERS, EngagementSpec, PulseSpec, TierSpec
from .experiments import ExperimentSpec, HoldoutSpec, VariantSpec
from .identity import DEFAULT_BLOCKED, DEFAULT_IDENTIFIERS, IdentifierSpec, IdentitySpec
from .identity import DEFAULT_EMAIL_PATTERNS as DEFAULT_EMAIL_PATTERNS
from .identity import DEFAULT_PHONE_PATTERNS as DEFAULT_PHONE_PATTERNS
from .identity import PHONE_REGIONS as PHONE_REGIONS
from .outbound import OUTBOUND_CHANNELS, CapSpec, OutboundSpec
from .outcomes import OutcomesSpec
from .placements import AFFINITY_FEATURE, Boost, ExperienceSpec, FilterSpec, PlacementSpec, RankerSpec, SegmentRule
from .policies import (
    ARM_POLICIES,
    EpsilonGreedySpec,
    GaussianThompsonSpec,
    GreedySpec,
    LinTSSpec,
    LinUCBSpec,
    PolicySpec,
    PopularSpec,
    RandomSpec,
    SoftmaxSpec,
    ThompsonSpec,
    UCB1Spec,
)
from .profiles import DEFAULT_EVENT_WEIGHTS as DEFAULT_EVENT_WEIGHTS
from .profiles import ProfileSpec
from .state import StateSpec

__all__ = [
    "AFFINITY_FEATURE",
    "IdentitySpec",
    "IdentifierSpec",
    "DEFAULT_IDENTIFIERS",
    "DEFAULT_BLOCKED",
    "ProfileSpec",
    "ConsentSpec",
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
    "RankerSpec",
    "LimitsSpec",
    "OutcomesSpec",
    "DecisionLogSpec",
    "AttributeSpec",
    "EngagementSpec",
    "TierSpec",
    "DEFAULT_TIERS",
    "PulseSpec",
    "ActivitySpec",
    "OutboundSpec",
    "CapSpec",
    "StateSpec",
    "OUTBOUND_CHANNELS",
    "SegmentRule",
    "EngineConfig",
    "load_config",
    "load_config_dict",
]
