"""Attribute specs: typed profile attributes (region, zip, loyalty tier, lifetime value ...) and
the rule that reconciles them when sources disagree or profiles merge.

``[attributes.<name>]`` in the configuration declares one attribute:

* ``type``: ``category`` (text such as a region, a zip code, a tier, a language; stored as a
  code into a bounded vocabulary), ``number`` (float64) or ``timestamp`` (epoch ms, int64);
* ``rule``: which value wins, by event time (never arrival order), on a new value and on a
  merge of two profiles:

  ==================  =====================================================  ===================
  rule                keeps                                                  types
  ==================  =====================================================  ===================
  ``most_recent``     the value with the newest event time                   all
  ``first_seen``      the value with the oldest event time                   all
  ``source_priority`` the value of the highest-priority source (``sources``,  all
                      first is highest; unlisted sources rank last), then
                      the newest
  ``most_frequent``   the value seen most often (a few counted values a      category
                      profile, ``slots``)
  ``min`` / ``max``   the smallest / largest value                           number, timestamp
  ``sum``             the sum of every value                                 number
  ==================  =====================================================  ===================

* ``sources``: source priority order (required by, and only for, ``source_priority``);
* ``max_values``: bound of a category's vocabulary (default 1,000); values past it are dropped;
* ``slots``: counted values per profile of ``most_frequent`` (default 4);
* ``from_events``: set from the ``attrs`` of behaviour events (default true); otherwise only
  batch loads (``Engine.set_attributes``) set it.

>>> AttributeSpec(type="number", rule="sum").rule
'sum'
>>> AttributeSpec(type="category", rule="sum")
Traceback (most recent call last):
...
decisioner.errors.ConfigError: expected a rule in ['most_recent', 'first_seen', 'source_priority', 'most_frequent'] \
for a `category` attribute, got 'sum'
"""

from __future__ import annotations

import re
from typing import Annotated, Final, Literal

from msgspec import Meta, Struct

from ._spec import SPEC, check

__all__ = ["AttributeSpec", "RULES_BY_TYPE", "ATTRIBUTE_NAME", "check_attribute_names"]

AttributeType = Literal["category", "number", "timestamp"]
AttributeRule = Literal["most_recent", "most_frequent", "source_priority", "first_seen", "min", "max", "sum"]

#: the rules that make sense for each type (``sum`` of timestamps or ``min`` of categories do not)
RULES_BY_TYPE: Final[dict[str, tuple[str, ...]]] = {
    "category": ("most_recent", "first_seen", "source_priority", "most_frequent"),
    "number": ("most_recent", "first_seen", "source_priority", "min", "max", "sum"),
    "timestamp": ("most_recent", "first_seen", "source_priority", "min", "max"),
}
#: an attribute name: a letter, then letters, digits and underscores (it names state arrays)
ATTRIBUTE_NAME: Final = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")


class AttributeSpec(Struct, **SPEC):
    """One declared attribute (see the module docstring)."""

    type: AttributeType
    rule: AttributeRule = "most_recent"
    sources: tuple[Annotated[str, Meta(min_length=1, max_length=128)], ...] = ()
    max_values: Annotated[int, Meta(ge=1, le=1_000_000)] | None = None
    slots: Annotated[int, Meta(ge=1, le=16)] | None = None
    from_events: bool = True

    def __post_init__(self) -> None:
        allowed = RULES_BY_TYPE[self.type]
        check(
            self.rule in allowed,
            f"expected a rule in {list(allowed)} for a `{self.type}` attribute, got {self.rule!r}",
        )
        if self.rule == "source_priority":
            check(len(self.sources) > 0, "expected `sources` (priority order) for rule 'source_priority', got none")
            check(
                len(set(self.sources)) == len(self.sources),
                f"expected unique `sources`, got {list(self.sources)!r}",
            )
        else:
            check(not self.sources, f"expected `sources` only with rule 'source_priority', got rule {self.rule!r}")
        check(
            self.max_values is None or self.type == "category",
            f"expected `max_values` only on a `category` attribute, got type {self.type!r}",
        )
        check(
            self.slots is None or self.rule == "most_frequent",
            f"expected `slots` only with rule 'most_frequent', got rule {self.rule!r}",
        )

    @property
    def vocabulary_bound(self) -> int:
        """Distinct values a category keeps (1,000 unless ``max_values`` says otherwise)."""
        return 1000 if self.max_values is None else self.max_values

    @property
    def n_slots(self) -> int:
        """Counted values per profile of ``most_frequent`` (4 unless ``slots`` says otherwise)."""
        return 4 if self.slots is None else self.slots


def check_attribute_names(attributes: dict[str, AttributeSpec], identifier_types: set[str]) -> None:
    """Attribute names are well formed, at most 64, and never the name of an identifier type.

    Raises
    ------
    ConfigError
        If a name breaks a rule.
    """
    check(len(attributes) <= 64, f"expected at most 64 attributes, got {len(attributes)} for `attributes`")
    for name in attributes:
        check(
            ATTRIBUTE_NAME.fullmatch(name) is not None,
            f"expected an attribute name of a letter then up to 63 letters, digits or underscores, got {name!r} "
            "for `attributes`",
        )
        check(
            name not in identifier_types,
            f"expected an attribute name that is not an identifier type, got {name!r} for `attributes` "
            "(attributes never hold identifiers)",
        )
