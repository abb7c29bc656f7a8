"""decisioner: in-process real-time personalization decisions.

``import decisioner`` is cheap: it compiles nothing and imports the heavy parts (numba kernels,
the engine) only when one of their names is first used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import (
    ConfigError,
    DecisionerError,
    DecisionerWarning,
    MissingDependencyError,
    NotReadyError,
    SchemaError,
    UnknownArmError,
    UnknownDecisionError,
    UnknownItemError,
    UnknownPlacementError,
)

__version__ = "0.1.0"

_LAZY = {
    "Engine": "decisioner.engine",
    "Catalog": "decisioner.catalog",
    "EngineConfig": "decisioner.config",
    "load_config": "decisioner.config",
    "load_config_dict": "decisioner.config",
    "IdentityGraph": "decisioner.identity",
    "ProfileStore": "decisioner.profiles",
    "AffinityScorer": "decisioner.scoring",
    "BernoulliThompson": "decisioner.allocation",
    "SlatePolicy": "decisioner.allocation",
    "Decision": "decisioner.schemas",
    "Outcome": "decisioner.schemas",
    "decode_event": "decisioner.schemas",
    "warm_up": "decisioner.warmup",
}

__all__ = [
    "__version__",
    "ConfigError",
    "DecisionerError",
    "DecisionerWarning",
    "MissingDependencyError",
    "NotReadyError",
    "SchemaError",
    "UnknownArmError",
    "UnknownDecisionError",
    "UnknownItemError",
    "UnknownPlacementError",
    *_LAZY,
]

if TYPE_CHECKING:
    from .allocation import BernoulliThompson, SlatePolicy
    from .catalog import Catalog
    from .config import EngineConfig, load_config, load_config_dict
    from .engine import Engine
    from .identity import IdentityGraph
    from .profiles import ProfileStore
    from .schemas import Decision, Outcome, decode_event
    from .scoring import AffinityScorer
    from .warmup import warm_up


def __getattr__(name: str) -> Any:
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module 'decisioner' has no attribute {name!r}")
    value = getattr(importlib.import_module(mod), name)
    globals()[name] = value
    return value
