"""Matching specs (``[matching]``): the fields of CRM records, how they are blocked and compared,
the Fellegi-Sunter weights (learned by EM or set by hand) and the thresholds of auto-link and
review. :mod:`decisioner.matching` runs them.

>>> spec = MatchingSpec(blocking=(("surname",),), comparisons=(
...     ComparisonSpec(field="surname", kind="name", levels=(LevelSpec(method="exact"),
...                    LevelSpec(method="jaro_winkler", threshold=0.9))),))
>>> [lv.method for lv in spec.comparisons[0].levels]
['exact', 'jaro_winkler']
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Final, Literal

from msgspec import Meta, Struct

from ..errors import ConfigError
from ._spec import SPEC, check

__all__ = [
    "FIELD_KINDS", "LEVEL_METHODS", "BLOCKING_TRANSFORMS", "LevelSpec", "ComparisonSpec", "MatchingSpec",
]

#: how a field's values are normalised before blocking and comparing
FIELD_KINDS: Final = ("name", "text", "address", "date", "phone", "email", "zip", "id")
#: level methods: similarity at or above ``threshold`` (jaro_winkler, jaro in [0, 1]), edit distance at
#: most ``threshold`` (levenshtein, damerau: an integer), equal phonetic codes (metaphone, nysiis,
#: soundex), dates with day and month swapped (date_transposed) or the same year (date_year), an
#: initial and a name that starts with it (initial: ``j`` and ``john``)
LEVEL_METHODS: Final = (
    "exact", "jaro_winkler", "jaro", "levenshtein", "damerau", "metaphone", "nysiis", "soundex",
    "date_transposed", "date_year", "initial",
)
#: what a blocking key takes of a field: its normalised value (no transform), a phonetic code, the
#: first N characters (``prefix3``) or a date's year
BLOCKING_TRANSFORMS: Final = ("metaphone", "nysiis", "soundex", "year")
_PREFIX: Final = re.compile(r"prefix([1-9][0-9]?)")
_FUZZY: Final = ("jaro_winkler", "jaro")
_EDITS: Final = ("levenshtein", "damerau")

Probability = Annotated[float, Meta(gt=0.0, lt=1.0)]


class LevelSpec(Struct, **SPEC):
    """One level of a field comparison: the pair is at this level when ``method`` holds and no
    earlier level does. ``m`` and ``u`` (probability of the level among matches and among
    non-matches) fix the level's weight by hand; unset, EM learns ``m`` and random pairs give ``u``.
    """

    method: Literal[
        "exact", "jaro_winkler", "jaro", "levenshtein", "damerau", "metaphone", "nysiis", "soundex",
        "date_transposed", "date_year", "initial",
    ]
    threshold: float | None = None
    m: Probability | None = None
    u: Probability | None = None

    def __post_init__(self) -> None:
        at = f" (level {self.method!r})"
        t = self.threshold
        if self.method in _FUZZY:
            check(t is not None and math.isfinite(t) and 0.0 < t <= 1.0,
                  f"expected `threshold` in (0, 1] for a similarity, got {t!r}{at}")
        elif self.method in _EDITS:
            check(t is not None and t == int(t) and 1 <= t <= 8,
                  f"expected `threshold` an integer edit distance in [1, 8], got {t!r}{at}")
        else:
            check(t is None, f"expected no `threshold`, got {t!r}{at}")
        for name in ("m", "u"):
            p = getattr(self, name)
            check(p is None or (math.isfinite(p) and 0.0 < p < 1.0), f"expected `{name}` in (0, 1), got {p!r}{at}")

    @property
    def name(self) -> str:
        """The level as suggestions name it (``jaro_winkler>=0.92``, ``levenshtein<=1``)."""
        if self.method in _FUZZY:
            return f"{self.method}>={self.threshold:g}"
        if self.method in _EDITS:
            return f"{self.method}<={int(self.threshold or 0)}"
        return self.method


class ComparisonSpec(Struct, **SPEC):
    """How one field of two records is compared: its normaliser (``kind``), its levels (first that
    holds wins; none: the ``else`` level; a missing value on either side: no evidence, weight 0),
    and ``else_m``/``else_u`` for the ``else`` level set by hand.

    ``unique``: the field identifies a person (a CRM or user id): two records with different
    values are never linked automatically. ``term_frequency``: agreement on a common value
    weighs less than on a rare one (the ``exact`` level's ``u`` becomes the value's share of the
    load: Splink's term-frequency adjustment; needs ``exact`` first). ``identifying``: the field
    describes the person (a first name, a date of birth): a clear disagreement, the ``else``
    level (none of the levels holds: not a typo, a transposition, a phonetic or a close
    spelling), means two people, so such a pair is neither linked nor suggested and its records
    never share a cluster, however much else they share (a household: surname, street, zip and
    landline). A missing value is no disagreement.
    """

    field: Annotated[str, Meta(min_length=1, max_length=128)]
    kind: Literal["name", "text", "address", "date", "phone", "email", "zip", "id"] = "text"
    levels: tuple[LevelSpec, ...] = (LevelSpec(method="exact"),)
    else_m: Probability | None = None
    else_u: Probability | None = None
    unique: bool = False
    term_frequency: bool = False
    identifying: bool = False

    def __post_init__(self) -> None:
        at = f" (comparison of {self.field!r})"
        check(not self.term_frequency or self.levels[0].method == "exact",
              f"expected `exact` as the first level with `term_frequency`, got {self.levels[0].method!r}{at}")
        check(1 <= len(self.levels) <= 8, f"expected 1 to 8 `levels`, got {len(self.levels)}{at}")
        names = [lv.name for lv in self.levels]
        check(len(set(names)) == len(names), f"expected distinct levels, got {names!r}{at}")
        dates = {"date_transposed", "date_year"} & {lv.method for lv in self.levels}
        check(not dates or self.kind == "date",
              f"expected `kind = \"date\"` for {sorted(dates)!r}, got {self.kind!r}{at}")
        hand = [lv.m is not None for lv in self.levels] + [self.else_m is not None]
        check(all(hand) or not any(hand), f"expected `m` on every level and `else_m`, or on none{at}")
        hand = [lv.u is not None for lv in self.levels] + [self.else_u is not None]
        check(all(hand) or not any(hand), f"expected `u` on every level and `else_u`, or on none{at}")


def blocking_part(part: str, fields: set[str], at: str) -> tuple[str, str | None, int]:
    """Parse one part of a blocking rule, ``field`` or ``field:transform``: (field, transform,
    prefix length or 0).

    Raises
    ------
    ConfigError
        If the field is not compared or the transform is unknown.
    """
    name, _, tr = part.partition(":")
    if name not in fields:
        raise ConfigError(f"expected a compared field in {sorted(fields)!r}, got {name!r} - at {at}")
    if not tr:
        return name, None, 0
    m = _PREFIX.fullmatch(tr)
    if m:
        return name, "prefix", int(m.group(1))
    if tr not in BLOCKING_TRANSFORMS:
        raise ConfigError(
            f"expected a transform in {[*BLOCKING_TRANSFORMS, 'prefixN']!r}, got {tr!r} - at {at}"
        )
    return name, tr, 0


class MatchingSpec(Struct, **SPEC):
    """Match rules of CRM record loads.

    ``id_field``: the record's own id (unique in a load; a suggestion names records by it);
    ``id_type``: the identity type records are linked as (``<id_type>`` or, with
    ``source_field``, ``<source>_<id_type>``); ``source_field``: the system a record comes
    from; ``truth_field`` / ``truth_pattern``: the true entity of a record, for evaluation (the
    pattern's first group taken from the field; FEBRL: ``rec-(\\d+)`` of ``rec_id``).
    ``link_type``: ``dedupe`` (every pair), ``link_only`` (pairs across sources only).
    ``one_per_source``: a cluster holds at most one record per source.
    ``blocking``: rules, each a list of ``field`` or ``field:transform`` parts; records meet when
    every part of one rule is equal. ``prior``: the probability that two records drawn at random
    match, set by hand (default: the matches EM expects among the candidate pairs over all
    pairs). ``auto_link`` / ``review``: match probabilities at which a pair is linked
    automatically / suggested for review. ``on_bad_record``: ``skip`` (report
    each bad line, match the rest) or ``refuse`` (report them, match nothing).
    """

    id_field: Annotated[str, Meta(min_length=1, max_length=128)] = "rec_id"
    id_type: Annotated[str, Meta(min_length=1, max_length=64)] = "record"
    source_field: Annotated[str, Meta(min_length=1, max_length=128)] | None = None
    truth_field: Annotated[str, Meta(min_length=1, max_length=128)] | None = None
    truth_pattern: str | None = None
    link_type: Literal["dedupe", "link_only"] = "dedupe"
    one_per_source: bool = False
    blocking: tuple[tuple[str, ...], ...] = ()
    comparisons: tuple[ComparisonSpec, ...] = ()
    prior: Probability | None = None
    em_iterations: Annotated[int, Meta(ge=0, le=1000)] = 50
    u_pairs: Annotated[int, Meta(ge=1000, le=100_000_000)] = 300_000
    auto_link: Probability = 0.95
    review: Probability = 0.5
    max_block_size: Annotated[int, Meta(ge=2, le=1_000_000)] = 2000
    on_bad_record: Literal["skip", "refuse"] = "skip"
    default_phone_region: str = "US"

    def __post_init__(self) -> None:
        fields = [c.field for c in self.comparisons]
        check(len(set(fields)) == len(fields), f"expected each field compared once, got {fields!r} - at `matching`")
        reserved = {x for x in (self.id_field, self.source_field, self.truth_field) if x is not None}
        check(not reserved & set(fields),
              f"expected `id_field`, `source_field` and `truth_field` not compared, got "
              f"{sorted(reserved & set(fields))!r} - at `matching.comparisons`")
        check(0.0 < self.review <= self.auto_link < 1.0,
              f"expected 0 < `review` <= `auto_link` < 1, got {self.review!r} and {self.auto_link!r} - at `matching`")
        for i, rule in enumerate(self.blocking):
            check(len(rule) >= 1, f"expected at least one part, got none - at `matching.blocking[{i}]`")
            for p in rule:
                blocking_part(p, set(fields), f"`matching.blocking[{i}]`")
        if self.comparisons:
            check(len(self.blocking) >= 1, "expected at least one blocking rule, got none - at `matching.blocking`")
        if self.truth_pattern is not None:
            try:
                pat = re.compile(self.truth_pattern)
            except re.error as exc:
                raise ConfigError(
                    f"expected a regular expression, got {self.truth_pattern!r} ({exc}) - at `matching.truth_pattern`"
                ) from None
            check(pat.groups >= 1, f"expected a group in {self.truth_pattern!r} - at `matching.truth_pattern`")
        check(self.link_type != "link_only" or self.source_field is not None,
              "expected `source_field` with `link_type = \"link_only\"`, got none - at `matching`")
        check(not self.one_per_source or self.source_field is not None,
              "expected `source_field` with `one_per_source`, got none - at `matching`")
