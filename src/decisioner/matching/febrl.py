"""The match rules for FEBRL4 (:mod:`decisioner.datasets.febrl`): the same rules a user would
write for person records with names, an address, a date of birth and a social security number;
nothing in them is fitted to the benchmark's answers (weights come from EM, without labels).

The same rules as TOML (``decisioner match --records febrl4.csv --config febrl4.toml``) are in
the README section "Matching records".
"""

from __future__ import annotations

from typing import Final

from ..config.matching import ComparisonSpec, LevelSpec, MatchingSpec

__all__ = ["FEBRL4_SPEC", "febrl4_spec"]


def _name(field: str) -> ComparisonSpec:
    return ComparisonSpec(field=field, kind="name", levels=(
        LevelSpec(method="exact"), LevelSpec(method="jaro_winkler", threshold=0.92),
        LevelSpec(method="jaro_winkler", threshold=0.8), LevelSpec(method="metaphone"),
    ))


def febrl4_spec(**overrides: object) -> MatchingSpec:
    """FEBRL4's match rules; keyword arguments replace fields of the spec."""
    base: dict[str, object] = dict(
        id_field="rec_id", source_field="source", truth_pattern=r"rec-(\d+)", link_type="link_only",
        one_per_source=True,
        blocking=(("given_name",), ("surname",), ("date_of_birth",), ("soc_sec_id",), ("postcode", "street_number"),
                  ("given_name:metaphone", "surname:metaphone"), ("suburb", "date_of_birth:year")),
        comparisons=(
            _name("given_name"), _name("surname"),
            ComparisonSpec(field="date_of_birth", kind="date", levels=(
                LevelSpec(method="exact"), LevelSpec(method="damerau", threshold=1),
                LevelSpec(method="date_transposed"), LevelSpec(method="damerau", threshold=2))),
            ComparisonSpec(field="soc_sec_id", kind="id", levels=(
                LevelSpec(method="exact"), LevelSpec(method="damerau", threshold=1),
                LevelSpec(method="damerau", threshold=2))),
            ComparisonSpec(field="street_number", kind="id", levels=(
                LevelSpec(method="exact"), LevelSpec(method="damerau", threshold=1))),
            ComparisonSpec(field="address_1", kind="address", levels=(
                LevelSpec(method="exact"), LevelSpec(method="jaro_winkler", threshold=0.9),
                LevelSpec(method="jaro_winkler", threshold=0.7))),
            ComparisonSpec(field="address_2", kind="address", levels=(
                LevelSpec(method="exact"), LevelSpec(method="jaro_winkler", threshold=0.9))),
            ComparisonSpec(field="suburb", kind="text", levels=(
                LevelSpec(method="exact"), LevelSpec(method="jaro_winkler", threshold=0.9))),
            ComparisonSpec(field="postcode", kind="zip", levels=(
                LevelSpec(method="exact"), LevelSpec(method="damerau", threshold=1))),
            ComparisonSpec(field="state", kind="text", levels=(LevelSpec(method="exact"),)),
        ),
    )
    base.update(overrides)
    return MatchingSpec(**base)  # type: ignore[arg-type]


#: FEBRL4's match rules
FEBRL4_SPEC: Final = febrl4_spec()
