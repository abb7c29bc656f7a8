"""Field normalisation for matching: one canonical spelling per value, so that ``"ADA  LOVELACE"``
and ``"Ada Lovelace"`` are equal before any fuzzy comparison; and the encoded columns the
comparisons run over (each distinct normalised value once, records holding int32 codes).

Kinds (:data:`~decisioner.config.matching.FIELD_KINDS`):

* ``name``: accents folded to ASCII (NFKD), lower-case, anything but letters and spaces dropped
  (``O'Brien`` and ``OBrien`` meet), whitespace collapsed;
* ``text``: lower-case, punctuation to spaces, whitespace collapsed;
* ``address``: ``text`` and the common street words shortened (``street`` -> ``st``, ``road`` ->
  ``rd``, ``avenue`` -> ``ave`` ...);
* ``zip``: upper-case, spaces and dashes dropped;
* ``date``: digits only, ``YYYY-MM-DD`` / ``YYYYMMDD`` read as they are and ``DD/MM/YYYY`` turned
  round to ``YYYYMMDD`` (anything else keeps its digits, so a typo still compares by edits);
* ``email``: the identity normaliser with provider rules (Gmail dots and ``+tags``);
* ``phone``: E.164 through the identity normaliser (libphonenumber);
* ``id``: trimmed.

A value that is empty after normalisation is missing (no evidence either way). An email or phone
number the identity normaliser refuses is an error of its record (:class:`ValueError` with the
reason, turned into a per-line error by :mod:`.records`).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from typing import Final

import numpy as np

from ..errors import MissingDependencyError, SchemaError

__all__ = ["normaliser", "encode", "Encoded", "phonetic", "ADDRESS_WORDS"]

#: street words and their short forms (Australia Post, USPS Publication 28)
ADDRESS_WORDS: Final = {
    "street": "st", "road": "rd", "avenue": "ave", "av": "ave", "drive": "dr", "place": "pl", "court": "ct",
    "crescent": "cres", "circuit": "cct", "boulevard": "blvd", "lane": "ln", "terrace": "tce", "parade": "pde",
    "highway": "hwy", "close": "cl", "square": "sq", "north": "n", "south": "s", "east": "e", "west": "w",
    "apartment": "apt", "suite": "ste", "mount": "mt", "saint": "st",
}
_NON_LETTER: Final = re.compile(r"[^a-z ]+")
_PUNCT: Final = re.compile(r"[^0-9a-z]+")
_NON_DIGIT: Final = re.compile(r"\D")
_DMY: Final = re.compile(r"^\s*(\d{1,2})[/.](\d{1,2})[/.](\d{4})\s*$")


def _ascii(v: str) -> str:
    if v.isascii():
        return v
    return unicodedata.normalize("NFKD", v).encode("ascii", "ignore").decode("ascii")


def _name(v: str) -> str:
    return " ".join(_NON_LETTER.sub("", _ascii(v).lower().replace("-", " ")).split())


def _text(v: str) -> str:
    return " ".join(_PUNCT.sub(" ", _ascii(v).lower()).split())


def _address(v: str) -> str:
    words = ADDRESS_WORDS
    return " ".join([words.get(w, w) for w in _PUNCT.sub(" ", _ascii(v).lower()).split()])


def _zip(v: str) -> str:
    return v.strip().upper().replace(" ", "").replace("-", "")


def _date(v: str) -> str:
    if len(v) == 10 and v[4] == "-" and v[7] == "-":  # ISO, the common case
        return v[:4] + v[5:7] + v[8:]
    m = _DMY.match(v)
    if m:
        return f"{m.group(3)}{int(m.group(2)):02d}{int(m.group(1)):02d}"
    return _NON_DIGIT.sub("", v)


def normaliser(kind: str, *, region: str = "US") -> Callable[[str], str]:
    """The normaliser of a field kind (see the module docstring).

    >>> normaliser("name")("  ADA   Lovelace "), normaliser("address")("12 Stanley Street")
    ('ada lovelace', '12 stanley st')
    >>> normaliser("date")("13/10/1965")
    '19651013'
    """
    if kind == "name":
        return _name
    if kind == "text":
        return _text
    if kind == "address":
        return _address
    if kind == "zip":
        return _zip
    if kind == "date":
        return _date
    if kind in ("email", "phone"):
        from ..identity.normalise import normalise

        def ident(v: str, _kind: str = kind) -> str:
            if not v.strip():
                return ""
            return normalise(_kind, v, default_region=region, provider_rules=True)

        return ident
    return str.strip


class Encoded:
    """One field of a load, encoded: ``codes`` (int32[n], -1 missing) index ``values`` (the
    distinct normalised values, in order of first appearance)."""

    __slots__ = ("codes", "values")

    def __init__(self, codes: np.ndarray, values: list[str]) -> None:
        self.codes = codes
        self.values = values


def encode(raw: Sequence[str | None], kind: str, *, region: str = "US") -> tuple[Encoded, dict[int, str]]:
    """Normalise and encode a column of raw values; returns the encoded column and the errors
    (record index -> reason) of values the normaliser refused (those records get -1).

    Each distinct raw value is normalised once, so a column of a million records with a few
    hundred thousand distinct values costs the distinct ones.
    """
    fn = normaliser(kind, region=region)
    distinct = list(dict.fromkeys(raw))  # each raw value once, in order of first appearance
    norm_index: dict[str, int] = {}
    values: list[str] = []
    code_of: dict[str | None, int] = {}
    bad: dict[str, str] = {}
    for v in distinct:
        if v is None:
            code_of[v] = -1
            continue
        try:
            s = fn(v)
        except SchemaError as exc:
            bad[v] = str(exc).split(" - at ")[0]
            s = ""
        if not s:
            code_of[v] = -1
            continue
        c = norm_index.get(s)
        if c is None:
            c = norm_index[s] = len(values)
            values.append(s)
        code_of[v] = c
    codes = np.fromiter(map(code_of.__getitem__, raw), dtype=np.int32, count=len(raw))
    errors: dict[int, str] = {}
    if bad:
        for i, v in enumerate(raw):
            if v is not None and v in bad:
                errors[i] = bad[v]
    return Encoded(codes, values), errors


def phonetic(method: str) -> Callable[[str], str]:
    """A phonetic code function from jellyfish (``metaphone``, ``nysiis``, ``soundex``).

    Raises
    ------
    MissingDependencyError
        If jellyfish is not installed.
    """
    try:
        import jellyfish
    except ImportError:
        raise MissingDependencyError(
            f'expected the `jellyfish` package for `{method}` codes, got it not installed (pip install '
            '"decisioner[matching]")'
        ) from None
    fn: Callable[[str], str] = getattr(jellyfish, method)
    return fn


def codes_of(values: list[str], fn: Callable[[str], str]) -> np.ndarray:
    """int32 code of ``fn(value)`` for each distinct value (equal codes: equal outputs; an empty
    output gets -1)."""
    index: dict[str, int] = {}
    out = np.empty(len(values), dtype=np.int32)
    for i, v in enumerate(values):
        s = fn(v)
        if not s:
            out[i] = -1
            continue
        c = index.get(s)
        if c is None:
            c = index[s] = len(index)
        out[i] = c
    return out
