"""Batch fuzzy record matching: CRM records from several systems -> reviewable suggestions ->
identity links.

The steps, one module each: :mod:`.records` (reading a load, per-line errors), :mod:`.normalise`
(canonical values, encoded columns), :mod:`.blocking` (candidate pairs, keyed blocking keys),
:mod:`.comparisons` (levels per field, vectorised; rapidfuzz and jellyfish), :mod:`.em`
(Fellegi-Sunter weights by EM), :mod:`.clustering` (no chaining of strangers), :mod:`.pipeline`
(:func:`match_records`), :mod:`.index` (matching against the records of earlier loads),
:mod:`.review` (accepted suggestions -> identity links with source ``match``, rejected ->
do-not-link pairs) and :mod:`.febrl` (the FEBRL4 benchmark's rules). Configuration:
:class:`decisioner.config.MatchingSpec` (``[matching]``).
"""

from .pipeline import MatchResult, match_records
from .records import RecordError, Records, read_records, records_from_columns

__all__ = ["MatchResult", "match_records", "RecordError", "Records", "read_records", "records_from_columns"]
