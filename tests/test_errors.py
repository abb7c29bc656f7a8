"""The error hierarchy: decisioner errors keep the builtin bases callers already catch."""

from __future__ import annotations

import pytest

import decisioner
from decisioner.errors import (
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


@pytest.mark.parametrize(
    ("cls", "bases"),
    [
        (ConfigError, (DecisionerError, ValueError)),
        (SchemaError, (DecisionerError, ValueError)),
        (ModelError, (DecisionerError, ValueError)),
        (UnknownArmError, (DecisionerError, KeyError)),
        (UnknownItemError, (UnknownArmError, DecisionerError, KeyError)),
        (UnknownPlacementError, (UnknownArmError, DecisionerError, KeyError)),
        (UnknownDecisionError, (UnknownArmError, DecisionerError, KeyError)),
        (NotReadyError, (DecisionerError, RuntimeError)),
        (MissingDependencyError, (DecisionerError, ImportError)),
        (StateUnavailable, (DecisionerError, ConnectionError)),
    ],
)
def test_error_bases(cls: type[Exception], bases: tuple[type[Exception], ...]) -> None:
    for base in bases:
        assert issubclass(cls, base)
    assert issubclass(cls, Exception)


def test_decisioner_error_is_a_plain_exception() -> None:
    assert DecisionerError.__mro__[1] is Exception
    assert issubclass(DecisionerWarning, UserWarning)
    assert not issubclass(DecisionerWarning, DecisionerError)


@pytest.mark.parametrize("cls", [UnknownArmError, UnknownItemError, UnknownPlacementError, UnknownDecisionError])
def test_key_errors_have_a_readable_str(cls: type[UnknownArmError]) -> None:
    # KeyError's own str() quotes its argument; ours must read like every other message
    msg = "Expected an item id in the catalog, got 'x' - at `$.item`"
    err = cls(msg)
    assert str(err) == msg
    assert str(KeyError(msg)) == repr(msg)
    assert str(cls()) == ""


def test_callers_can_catch_builtin_bases() -> None:
    with pytest.raises(ValueError, match="bad"):
        raise ConfigError("bad")
    with pytest.raises(KeyError):
        raise UnknownItemError("missing")
    with pytest.raises(LookupError):
        raise UnknownDecisionError("missing")


def test_errors_are_exported_at_top_level() -> None:
    for name in (
        "DecisionerError", "ConfigError", "SchemaError", "UnknownArmError", "UnknownItemError",
        "UnknownPlacementError", "UnknownDecisionError", "NotReadyError", "MissingDependencyError",
        "ModelError", "DecisionerWarning", "StateUnavailable",
    ):
        assert getattr(decisioner, name) is getattr(decisioner.errors, name)


def test_unknown_top_level_attribute() -> None:
    with pytest.raises(AttributeError, match="module 'decisioner' has no attribute 'nope'"):
        decisioner.nope  # noqa: B018
