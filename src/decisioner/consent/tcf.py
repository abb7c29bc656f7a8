"""IAB TCF v2.2 consent strings: a decoder, and their purposes mapped onto ours.

:func:`decode` reads a TC string (the core segment, then the optional DisclosedVendors and
PublisherTC segments after ``.``) into a frozen :class:`TCString`; :func:`purposes_of` maps its
purposes onto :data:`decisioner.consent.PURPOSES`. The format is the IAB Tech Lab's
"Transparency and Consent String with Global Vendor & CMP List Formats" (v2.2, May 2023; the
string layout is unchanged in v2.3): each segment is base64url without padding over big-endian
bit fields.

Decoding is strict and bounded, so a hostile string fails fast and a rejected string changes
nothing: every problem is a :class:`~decisioner.errors.SchemaError` saying what was expected,
what came and where (``- at `$.consent.tcf```), never an ``IndexError`` or a ``binascii``
error. It refuses strings longer than :data:`MAX_LENGTH` characters before reading them,
characters outside base64url (trailing ``=`` padding, which the IAB's own test strings carry, is
tolerated), a ``Version`` other than 2, a segment too short for the fields it declares, letters
outside A-Z, a range entry that runs backwards, past ``MaxVendorId`` or out of ascending order,
publisher restrictions of purpose 0, over 24 or of the undefined type 3, and segment types other
than 1 (DisclosedVendors) and 3 (PublisherTC) or repeated ones. Type 2 (AllowedVendors) served
out-of-band signalling, which TCF dropped in 2021, and v2.2 no longer defines it. Bits after the
last field (padding to a whole character) are not read.

Policy rules that do not change how the bits read are left to :func:`purposes_of`: a string
with ``IsServiceSpecific`` 0 (global scope, invalid since September 2021) decodes, so that
published strings from 2020 can be checked field by field, but :func:`purposes_of` refuses it.

Mapping onto our purposes
-------------------------
============== ================================================================================
ours           TCF v2.2 purposes that must all be allowed
============== ================================================================================
personalization 1 (store and/or access information on a device), 5 (create profiles to
               personalise content), 6 (use profiles to select personalised content)
ad_profiling   1, 3 (create profiles for personalised advertising), 4 (use profiles to select
               personalised advertising)
analytics      1, 8 (measure content performance)
============== ================================================================================

- Purposes 7 (measure advertising performance), 9 (understand audiences through statistics or
  combinations of data) and 10 (develop and improve services) are not part of ``analytics``:
  they cover ad measurement, market research and product development, wider uses than measuring
  how our content performs, so requiring them would refuse analytics to a person who allowed 8,
  and counting them would allow it on a choice made for something else. Purpose 2 (basic ads)
  and 11 (limited data to select content) need no profile and gate nothing here.
- ``marketing`` and ``sale_share`` have no TCF purpose: they are absent from the result, so a
  caller merging it into a person's consent leaves them as they were.
- Purpose 1 needs its consent bit. ``PurposeOneTreatment`` 1 says purpose 1 was not disclosed
  (a jurisdiction that does not require consent for storage); not asked is not consent, so it
  does not allow purpose 1.
- Legitimate interest: a TCF purpose is allowed by its consent bit, or by its legitimate-interest
  bit (transparency given and no objection) where TCF v2.2 allows that legal basis at all:
  purposes 2 and 7-11 (:data:`LI_PURPOSES`). Purposes 1 and 3-6 cannot rest on legitimate
  interest in v2.2, so their ``PurposesLITransparency`` bits are ignored even when an older
  string (policy version < 4) sets them. Of ours only ``analytics`` (through purpose 8) can be
  allowed this way.
- With ``vendor_id``, each purpose also needs that vendor's matching signal: the vendor's consent
  bit with the purpose's consent bit, or its legitimate-interest bit with the purpose's. The
  publisher restrictions that cover the vendor and purpose apply: type 0 (not allowed) refuses
  the purpose, type 1 (require consent) shuts the legitimate-interest path and type 2 (require
  legitimate interest) the consent path, so a type 2 on a purpose that cannot use legitimate
  interest refuses it. Without ``vendor_id`` the result is the user's choice per purpose as the
  CMP recorded it, and publisher restrictions (made for vendors) do not apply.

Examples
--------
The example printed in the specification ("Full TC String passing"):

>>> tc = decode("CQSbk4AQSbk4ANwAAAENAwCgAAAAAAAAAAYgACPAAAAA.IDKQA4AAgAKAGQAygAAA.YAAAAAAAAAAA")
>>> tc.cmp_id, tc.vendor_list_version, tc.consent_language, tc.publisher_cc
(880, 48, 'EN', 'DE')
>>> tc.vendor_consents, tc.disclosed_vendors
((1, 2, 3, 4), (1, 2, 3, 4, 5, 100, 404))
>>> purposes_of(tc)
{'personalization': False, 'analytics': False, 'ad_profiling': False}
>>> decode("BOEFEAyOEFEAyAHABDENAI4AAAB9vABAASA")
Traceback (most recent call last):
...
decisioner.errors.SchemaError: Expected `Version` 2 (TCF v2.x), got 1 - at `$.consent.tcf`
"""

from __future__ import annotations

import bisect
import itertools
import re
from collections.abc import Mapping
from typing import Any, Final

import msgspec

from ..errors import SchemaError

__all__ = [
    "MAX_LENGTH",
    "PURPOSE_MAP",
    "LI_PURPOSES",
    "PublisherRestriction",
    "PublisherTC",
    "TCString",
    "decode",
    "purposes_of",
]

#: the longest TC string read, in characters (publisher restrictions make real ones a few kB)
MAX_LENGTH: Final = 65_536
#: where errors point when the caller names no path
PATH: Final = "$.consent.tcf"
#: our purpose -> the TCF purposes that must all be allowed (see the module docstring)
PURPOSE_MAP: Final[Mapping[str, tuple[int, ...]]] = {
    "personalization": (1, 5, 6),
    "analytics": (1, 8),
    "ad_profiling": (1, 3, 4),
}
#: TCF purposes that may rest on legitimate interest in v2.2 (never 1, nor 3-6)
LI_PURPOSES: Final = frozenset({2, 7, 8, 9, 10, 11})

#: restriction types
NOT_ALLOWED: Final = 0
REQUIRE_CONSENT: Final = 1
REQUIRE_LI: Final = 2

_ALPHABET: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
#: each base64url character -> its six bits, for ``str.translate``
_SIX_BITS: Final = {ord(c): format(i, "06b") for i, c in enumerate(_ALPHABET)}
#: b"0"/b"1" -> 0/1, so ``itertools.compress`` picks the set bits
_ZERO_ONE: Final = bytes.maketrans(b"01", b"\x00\x01")
_SEGMENT: Final = re.compile(r"[A-Za-z0-9_-]*={0,2}")
_BAD_CHAR: Final = re.compile(r"[^A-Za-z0-9_-]")
_SEGMENT_NAMES: Final = {1: "DisclosedVendors", 3: "PublisherTC"}


class PublisherRestriction(msgspec.Struct, frozen=True, kw_only=True):
    """One publisher restriction entry: a purpose, a type and the vendor ranges it covers.

    ``restriction_type`` is 0 (purpose flatly not allowed), 1 (require consent) or 2 (require
    legitimate interest). ``vendor_ranges`` are inclusive ``(start, end)`` pairs as encoded
    (``(7, 7)`` for a single vendor); they are kept as ranges because a range may span the whole
    vendor id space and entries may overlap, so expanding them would cost more than the string.
    """

    purpose_id: int
    restriction_type: int
    vendor_ranges: tuple[tuple[int, int], ...]

    def covers(self, vendor_id: int) -> bool:
        """Whether ``vendor_id`` is in one of the ranges."""
        return any(start <= vendor_id <= end for start, end in self.vendor_ranges)


class PublisherTC(msgspec.Struct, frozen=True, kw_only=True):
    """The PublisherTC segment: the publisher's own purposes and custom purposes (ids 1-based)."""

    purposes_consent: tuple[int, ...]
    purposes_li_transparency: tuple[int, ...]
    num_custom_purposes: int
    custom_purposes_consent: tuple[int, ...]
    custom_purposes_li_transparency: tuple[int, ...]


class TCString(msgspec.Struct, frozen=True, kw_only=True):
    """A decoded TC string: every core-segment field and the optional segments.

    Bit vectors are the sorted tuple of the ids whose bit is 1 (purposes, special features and
    vendors are numbered from 1). ``created`` and ``last_updated`` are epoch milliseconds (the
    string holds deciseconds; since v2.2 both are the day the string was last updated).
    ``*_max_id`` fields are the sections' ``MaxVendorId``. ``disclosed_vendors`` and
    ``publisher_tc`` are None when their segment is absent.
    """

    version: int
    created: int
    last_updated: int
    cmp_id: int
    cmp_version: int
    consent_screen: int
    consent_language: str
    vendor_list_version: int
    tcf_policy_version: int
    is_service_specific: bool
    use_non_standard_texts: bool
    special_feature_opt_ins: tuple[int, ...]
    purposes_consent: tuple[int, ...]
    purposes_li_transparency: tuple[int, ...]
    purpose_one_treatment: bool
    publisher_cc: str
    vendor_consents_max_id: int
    vendor_consents: tuple[int, ...]
    vendor_legitimate_interests_max_id: int
    vendor_legitimate_interests: tuple[int, ...]
    publisher_restrictions: tuple[PublisherRestriction, ...]
    disclosed_vendors_max_id: int = 0
    disclosed_vendors: tuple[int, ...] | None = None
    publisher_tc: PublisherTC | None = None


class _Bits:
    """A cursor over one segment's bits (a str of '0'/'1'); every read checks its length."""

    __slots__ = ("bits", "path", "pos", "segment")

    def __init__(self, bits: str, segment: str, path: str) -> None:
        self.bits = bits
        self.segment = segment
        self.path = path
        self.pos = 0

    def error(self, message: str) -> SchemaError:
        return SchemaError(f"{message} - at `{self.path}`")

    def take(self, width: int, field: str) -> str:
        end = self.pos + width
        if end > len(self.bits):
            raise self.error(
                f"Expected {width} bit{'s' if width != 1 else ''} for `{field}` at bit {self.pos} of the {self.segment}"
                " segment,"
                f" got {len(self.bits) - self.pos}"
            )
        s = self.bits[self.pos : end]
        self.pos = end
        return s

    def uint(self, width: int, field: str) -> int:
        return int(self.take(width, field), 2)

    def flag(self, field: str) -> bool:
        return self.take(1, field) == "1"

    def ids(self, width: int, field: str) -> tuple[int, ...]:
        """The 1-based positions of the set bits of a ``width``-bit vector."""
        flags = self.take(width, field).encode("ascii").translate(_ZERO_ONE)  # C-speed: no loop in Python
        return tuple(itertools.compress(range(1, width + 1), flags))

    def letters(self, field: str) -> str:
        a, b = self.uint(6, field), self.uint(6, field)
        if a > 25 or b > 25:
            raise self.error(f"Expected two letters A-Z (6 bits each, 0-25) in `{field}`, got {a} and {b}")
        return chr(65 + a) + chr(65 + b)

    def range_entries(self, field: str) -> list[tuple[int, int]]:
        """``NumEntries`` then that many ``IsARange``/``StartOrOnlyVendorId``/``EndVendorId``."""
        n = self.uint(12, f"{field}.NumEntries")
        out = []
        for _ in range(n):
            is_range = self.flag(f"{field}.IsARange")
            start = self.uint(16, f"{field}.StartOrOnlyVendorId")
            end = self.uint(16, f"{field}.EndVendorId") if is_range else start
            if start < 1 or end < start:
                raise self.error(f"Expected `{field}` range entries with 1 <= start <= end, got {start}-{end}")
            out.append((start, end))
        return out

    def vendors(self, field: str) -> tuple[int, tuple[int, ...]]:
        """A vendor section (``MaxVendorId``, ``IsRangeEncoding``, bit field or ranges)."""
        max_id = self.uint(16, f"{field}.MaxVendorId")
        if not self.flag(f"{field}.IsRangeEncoding"):
            return max_id, self.ids(max_id, f"{field}.BitField")
        ids: list[int] = []
        previous = 0
        for start, end in self.range_entries(field):
            if end > max_id:
                raise self.error(f"Expected `{field}` vendor ids in [1, {max_id}] (MaxVendorId), got {start}-{end}")
            if start <= previous:
                raise self.error(
                    f"Expected `{field}` range entries in ascending order without overlap, got {start}-{end}"
                    f" after {previous}"
                )
            ids.extend(range(start, end + 1))
            previous = end
        return max_id, tuple(ids)


def _restrictions(r: _Bits) -> tuple[PublisherRestriction, ...]:
    out = []
    for k in range(r.uint(12, "NumPubRestrictions")):
        purpose = r.uint(6, "PurposeId")
        kind = r.uint(2, "RestrictionType")
        if not 1 <= purpose <= 24:
            raise r.error(f"Expected `PurposeId` in [1, 24] in publisher restriction {k}, got {purpose}")
        if kind == 3:
            raise r.error(f"Expected `RestrictionType` 0, 1 or 2 in publisher restriction {k}, got 3")
        ranges = r.range_entries("PubRestrictionEntry")
        out.append(PublisherRestriction(purpose_id=purpose, restriction_type=kind, vendor_ranges=tuple(ranges)))
    return tuple(out)


def _segments(tc_string: Any, path: str) -> list[str]:
    """The segments of ``tc_string`` as bit strings, after every check on its characters."""
    if not isinstance(tc_string, str):
        raise SchemaError(f"Expected `str`, got `{type(tc_string).__name__}` - at `{path}`")
    if len(tc_string) > MAX_LENGTH:
        raise SchemaError(
            f"Expected a TC string of at most {MAX_LENGTH} characters, got {len(tc_string)} - at `{path}`"
        )
    parts = tc_string.split(".")
    offset = 0
    for k, part in enumerate(parts):
        if not part.rstrip("="):
            raise SchemaError(f"Expected a non-empty segment {k} (segments are joined by '.'), got '' - at `{path}`")
        if _SEGMENT.fullmatch(part) is None:
            bad = _BAD_CHAR.search(part.rstrip("="))
            at = bad.start() if bad is not None else part.index("=")
            ch = part[at]
            raise SchemaError(
                f"Expected base64url characters (A-Z a-z 0-9 - _) in segment {k}, got {ch!r} at character"
                f" {offset + at} - at `{path}`"
            )
        offset += len(part) + 1
    return [part.rstrip("=").translate(_SIX_BITS) for part in parts]


def decode(tc_string: str, *, path: str = PATH) -> TCString:
    """Decode a TCF v2 TC string.

    Parameters
    ----------
    tc_string
        The TC string: the core segment, then optionally DisclosedVendors and PublisherTC
        segments, joined by ``.``.
    path
        Where the string sits in the caller's input; error messages end with it.

    Returns
    -------
    TCString
        Every field of the core segment and of the optional segments present.

    Raises
    ------
    SchemaError
        The string is not a TCF v2 TC string (see the module docstring for each check).

    Examples
    --------
    >>> tc = decode("COtybn4PA_zT4KjACBENAPCIAEBAAECAAIAAAAAAAAAA")
    >>> tc.cmp_id, tc.purposes_consent, tc.purposes_li_transparency
    (675, (2, 10), (2, 9))
    """
    segments = _segments(tc_string, path)
    r = _Bits(segments[0], "core", path)
    version = r.uint(6, "Version")
    if version != 2:
        raise r.error(f"Expected `Version` 2 (TCF v2.x), got {version}")
    fields: dict[str, Any] = {
        "version": version,
        "created": r.uint(36, "Created") * 100,
        "last_updated": r.uint(36, "LastUpdated") * 100,
        "cmp_id": r.uint(12, "CmpId"),
        "cmp_version": r.uint(12, "CmpVersion"),
        "consent_screen": r.uint(6, "ConsentScreen"),
        "consent_language": r.letters("ConsentLanguage"),
        "vendor_list_version": r.uint(12, "VendorListVersion"),
        "tcf_policy_version": r.uint(6, "TcfPolicyVersion"),
        "is_service_specific": r.flag("IsServiceSpecific"),
        "use_non_standard_texts": r.flag("UseNonStandardTexts"),
        "special_feature_opt_ins": r.ids(12, "SpecialFeatureOptIns"),
        "purposes_consent": r.ids(24, "PurposesConsent"),
        "purposes_li_transparency": r.ids(24, "PurposesLITransparency"),
        "purpose_one_treatment": r.flag("PurposeOneTreatment"),
        "publisher_cc": r.letters("PublisherCC"),
    }
    fields["vendor_consents_max_id"], fields["vendor_consents"] = r.vendors("VendorConsents")
    li_max, li = r.vendors("VendorLegitimateInterests")
    fields["vendor_legitimate_interests_max_id"], fields["vendor_legitimate_interests"] = li_max, li
    fields["publisher_restrictions"] = _restrictions(r)
    for k, bits in enumerate(segments[1:], start=1):
        kind = int(bits[:3], 2)  # a non-empty segment has at least 6 bits
        name = _SEGMENT_NAMES.get(kind)
        if name is None:
            raise SchemaError(
                f"Expected segment type 1 (DisclosedVendors) or 3 (PublisherTC) in segment {k}, got {kind}"
                f" - at `{path}`"
            )
        key = "disclosed_vendors" if kind == 1 else "publisher_tc"
        if key in fields:
            raise SchemaError(f"Expected at most one {name} segment, got another in segment {k} - at `{path}`")
        r = _Bits(bits, name, path)
        r.pos = 3
        if kind == 1:
            fields["disclosed_vendors_max_id"], fields["disclosed_vendors"] = r.vendors("DisclosedVendors")
        else:
            consent = r.ids(24, "PubPurposesConsent")
            li_transparency = r.ids(24, "PubPurposesLITransparency")
            n = r.uint(6, "NumCustomPurposes")
            fields["publisher_tc"] = PublisherTC(
                purposes_consent=consent,
                purposes_li_transparency=li_transparency,
                num_custom_purposes=n,
                custom_purposes_consent=r.ids(n, "CustomPurposesConsent"),
                custom_purposes_li_transparency=r.ids(n, "CustomPurposesLITransparency"),
            )
    return TCString(**fields)


def _has(ids: tuple[int, ...], x: int) -> bool:
    i = bisect.bisect_left(ids, x)
    return i < len(ids) and ids[i] == x


def _allowed(tc: TCString, purpose: int, vendor_id: int | None) -> bool:
    """Whether TCF ``purpose`` is allowed (for ``vendor_id`` when given)."""
    by_consent = _has(tc.purposes_consent, purpose)
    by_li = purpose in LI_PURPOSES and _has(tc.purposes_li_transparency, purpose)
    if vendor_id is None:
        return by_consent or by_li
    types = {
        r.restriction_type for r in tc.publisher_restrictions if r.purpose_id == purpose and r.covers(vendor_id)
    }
    if NOT_ALLOWED in types:
        return False
    by_consent = by_consent and REQUIRE_LI not in types and _has(tc.vendor_consents, vendor_id)
    by_li = by_li and REQUIRE_CONSENT not in types and _has(tc.vendor_legitimate_interests, vendor_id)
    return by_consent or by_li


def purposes_of(tc: TCString, *, vendor_id: int | None = None, path: str = PATH) -> dict[str, bool]:
    """Our purposes allowed by a decoded TC string (the mapping is in the module docstring).

    Parameters
    ----------
    tc
        A decoded TC string (:func:`decode`).
    vendor_id
        A TCF vendor id (1-65535): each purpose then also needs that vendor's consent or
        legitimate-interest signal and no publisher restriction against it.
    path
        Where the string sits in the caller's input; error messages end with it.

    Returns
    -------
    dict[str, bool]
        ``personalization``, ``analytics`` and ``ad_profiling``; the purposes TCF does not cover
        (``marketing``, ``sale_share``) are absent, so they keep their value.

    Raises
    ------
    SchemaError
        ``vendor_id`` is not an int in [1, 65535], or the string is not service-specific.

    Examples
    --------
    >>> tc = decode("COtybn4PA_zT4KjACBENAPCIAEBAAECAAIAAAAAAAAAA")
    >>> purposes_of(tc)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    decisioner.errors.SchemaError: Expected a service-specific TC string (`IsServiceSpecific` 1), got 0 ...
    """
    if vendor_id is not None and (isinstance(vendor_id, bool) or not isinstance(vendor_id, int)):
        raise SchemaError(f"Expected `vendor_id` to be an int or None, got `{type(vendor_id).__name__}` - at `{path}`")
    if vendor_id is not None and not 1 <= vendor_id <= 65535:
        raise SchemaError(f"Expected `vendor_id` in [1, 65535], got {vendor_id} - at `{path}`")
    if not tc.is_service_specific:
        raise SchemaError(
            "Expected a service-specific TC string (`IsServiceSpecific` 1), got 0 (global scope, invalid"
            f" since September 2021) - at `{path}`"
        )
    return {ours: all(_allowed(tc, p, vendor_id) for p in theirs) for ours, theirs in PURPOSE_MAP.items()}
