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
    ModelError,
    NotReadyError,
    SchemaError,
    StateUnavailable,
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
    "ModelError",
    "NotReadyError",
    "SchemaError",
    "StateUnavailable",
    "UnknownArmError",
    "UnknownDecisionError",
    "UnknownItemError",
    "UnknownPlacementError",
    *_LAZY,
]

if TYPE_CHECKING:  # the lazy names for type checkers; `X as X` marks each as re-exported
    from .allocation import BernoulliThompson as BernoulliThompson
    from .allocation import SlatePolicy as SlatePolicy
    from .catalog import Catalog as Catalog
    from .config import EngineConfig as EngineConfig
    from .config import load_config as load_config
    from .config import load_config_dict as load_config_dict
    from .engine import Engine as Engine
    from .identity import IdentityGraph as IdentityGraph
    from .profiles import ProfileStore as ProfileStore
    from .schemas import Decision as Decision
    from .schemas import Outcome as Outcome
    from .schemas import decode_event as decode_event
    from .scoring import AffinityScorer as AffinityScorer
    from .warmup import warm_up as warm_up


def __getattr__(name: str) -> Any:
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module 'decisioner' has no attribute {name!r}")
    value = getattr(importlib.import_module(mod), name)
    globals()[name] = value
    return value
