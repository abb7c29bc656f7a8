"""Exception hierarchy and warning category.

Messages follow msgspec's grammar: what was expected, what was received, and where, in one
string, with names in backticks and the value via ``!r``.
"""

from __future__ import annotations

__all__ = [
    "DecisionerError",
    "ConfigError",
    "SchemaError",
    "ModelError",
    "UnknownArmError",
    "UnknownItemError",
    "UnknownPlacementError",
    "UnknownDecisionError",
    "NotReadyError",
    "LogLockedError",
    "LogDamagedError",
    "MissingDependencyError",
    "DecisionerWarning",
    "SnapshotDamagedError",
    "StateUnavailable",
]


class DecisionerError(Exception):
    """Base class of every error raised by decisioner."""


class ConfigError(DecisionerError, ValueError):
    """A specification or parameter is invalid."""


class SchemaError(DecisionerError, ValueError):
    """An inbound payload does not match its schema; the message keeps the field path."""


class ModelError(DecisionerError, ValueError):
    """A model file (a LightGBM text model or ``dump_model`` JSON, a feature schema) is malformed,
    truncated or unsupported; the message names the file, the tree and the field."""


class UnknownArmError(DecisionerError, KeyError):
    """An arm, experience or variant is not known."""

    def __str__(self) -> str:  # KeyError quotes its argument; keep the message readable
        return str(self.args[0]) if self.args else ""


class UnknownItemError(UnknownArmError):
    """An item id is not in the catalog."""


class UnknownPlacementError(UnknownArmError):
    """A placement name is not configured."""


class UnknownDecisionError(UnknownArmError):
    """An outcome names a decision id that is unknown or past its attribution window."""


class NotReadyError(DecisionerError, RuntimeError):
    """A model is not loaded or state is not initialised."""


class LogLockedError(NotReadyError):
    """Another process is the writer of this log or snapshot directory."""


class SnapshotDamagedError(NotReadyError):
    """A snapshot file is missing, unreadable or fails its checksum."""


class LogDamagedError(NotReadyError):
    """An event log that recovery needs is damaged before its end, or missing: reading on would
    lose intact records, so nothing is replayed, cut or changed (``decisioner log check|repair``)."""


class StateUnavailable(DecisionerError, ConnectionError):
    """The shared state backend (Redis) cannot be reached or refused the command after the
    configured retries; nothing was changed by this call (Redis commands are atomic), and the
    caller decides whether to serve a fallback or fail the request."""


class MissingDependencyError(DecisionerError, ImportError):
    """An optional dependency is needed; the message names the extra to install."""


class DecisionerWarning(UserWarning):
    """Warnings issued by decisioner."""
