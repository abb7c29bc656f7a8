"""IAB TCF v2 consent strings (:mod:`decisioner.consent.tcf`): published strings decoded field by
field against their published values, a reference encoder (a bit writer sharing no code with
the decoder) that rebuilds them bit for bit and round-trips hypothesis-generated strings,
malformed input each with our whole message (and never another exception), and the mapping
onto our purposes."""

from __future__ import annotations

import calendar
import time
from dataclasses import dataclass
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from decisioner.consent import PURPOSES
from decisioner.consent.tcf import MAX_LENGTH, PublisherRestriction, PublisherTC, TCString, decode, purposes_of
from decisioner.errors import SchemaError
from wording import full_match

AT = " - at `$.consent.tcf`"
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

# ------------------------------------------------------------------ published strings

#: The worked example of the specification (IAB Tech Lab, "Transparency and Consent String with
#: Global Vendor & CMP List Formats", TCF v2.3 text, section "Full TC String passing" and "TC
#: String Format"). The specification prints no decoded values for it; the values below were
#: read bit by bit with the reference reader of this file (``bits_of``), independently of the
#: decoder, and agree with third-party decoders' fixtures for the same string.
SPEC_EXAMPLE = "CQSbk4AQSbk4ANwAAAENAwCgAAAAAAAAAAYgACPAAAAA.IDKQA4AAgAKAGQAygAAA.YAAAAAAAAAAA"

#: IAB Tech Lab's reference Java decoder, iabtcf-java,
#: iabtcf-decoder/src/test/java/com/iabtcf/decoder/TCStringV2Test.java (string made with
#: iabtcf.com's encoder): testCanConstructTCModelFromBase64String
JAVA_BASIC = "COtybn4PA_zT4KjACBENAPCIAEBAAECAAIAAAAAAAAAA"
#: same file: testConstructConsentsFromBitFields, testCanParseDisclosedAndAllowedVendors,
#: testCanParseAllParts (their AllowedVendors segment ``QAagAQAgAIAwgA`` is left out: v2.2
#: dropped the segment type, see test_allowed_vendors_segment_is_refused)
JAVA_BITFIELDS = "COrEAV4OrXx94ACABBENAHCIAD-AAAAAAACAAxAAAAgAIAwgAgAAAAEAgQAAAAAEAYQAQAAAACAAAABAAA"
JAVA_DISCLOSED = "IBAgAAAgAIAwgAgAAAAEAAAACA"
JAVA_ALLOWED = "QAagAQAgAIAwgA"
JAVA_PUBLISHER_TC = "cAAAAAAAITg="
#: same file: testCanParseRangeEncodedVendorLegitimateInterests
JAVA_LI_RANGE = "COv__-wOv__-wC2AAAENAPCgAAAAAAAAAAAAA_wAQA_gEBABAEAAAA"
#: same file: testRange (two range entries, then one)
JAVA_DISCLOSED_79 = (
    "IFoEUQQgAIQwgIwQABAEAAAAOIAACAIAAAAQAIAgEAACEAAAAAgAQBAAAAAAAGBAAgAAAAAAAFAAECAAAgAAQARAEQAAAAAJAAIAAgAAAYQEAAAQmAgBC3ZAYzUw"
)
JAVA_RANGE_2 = "COwBOpCOwBOpCLqAAAENAPCAAAAAAAAAAAAAFfwAYFfAV-BVkAGBVYFWAAA"
JAVA_RANGE_1 = "COwBOpCOwBOpCLqAAAENAPCAAAAAAAAAAAAAFfwAQFfgUbABAUaAAA"
#: same file: testPurposesConsent
JAVA_PURPOSES = "COwxsONOwxsONKpAAAENAdCAAMAAAAAAAAAAAAAAAAAA"
#: IAB Tech Lab's reference JS library, iabtcf-es, modules/core/test/ReportedIssues.test.ts,
#: "201 unable to decode valid TCF2 String" (a real-world string whose publisher restrictions
#: name a vendor twice): restriction (purpose 1, require consent) covers [7, 20, 71, 122, 140, 183]
ES_ISSUE_201 = (
    "CO4VGswO4VGswAfZCBDEAzCsAP_AAH_AAAigGUNf_X9fb2vj-_599_t0eY1f9_63t-wzjheMs-8NyZ-X_J4Wv2MyvB34JqQKGRgkunLBAQdtHGnc"
    "TQgBwIlViTLMY02MjzNKJrJEilsbe2dYGH9vn8XT_ZKZ70-_v__7v3___33_5Ayhr_6_r7e18f3_Pvv9ujzGr_v_W9v2GccLxln3huTPy_5PC1-"
    "xmV4O_BNSBQyMEl05YICDto407iaEAOBEqsSZZjGmxkeZpRNZIkUtjb2zrAw_t8_i6f7JTPen39___d-___--__ICgKAOAAcAA4AFAAjgB6AEYA"
    "LcGACAW0AtoJAHAAOAAcACgARwA9ACMAFuFABALaAW0GgDgAHAAOABQAI4AegBGAC3DgAgFtALaEQBwADgAHAAoAEcAPQAjABbiQAQC2gFtCoA4AB"
    "wADgAUACOAHoARgAtxYAIBbQC2hkAcAA4ABwAKABHAD0AIwAW40AEAtoBbQ6AOAAcAA4AFAAjgB6AEYALceACAW0AtohAHAAOAAcACgARwA9ACMA"
    "FuRABALaAW0SgDgAHAAOABQAI4AegBGAC3JgAgFtALaKQBwADgAHAAoAEcAPQAjABblQAQC2gFtA"
)
#: same file, "142 it should throw an error if the bitfield length does not match the maxId"
ES_ISSUE_142 = (
    "CLSYjTaOngnCIAOABBENAXCMAGOAABBAAA7IA5n-m7fP6_3fbqVv6E__PoA5Aqff3aJx8tv_1967rfnQEQoAIAAQCrwkAEABAcACABIMACAAuApEV"
    "ABABUSABgBCAVSAtIoACACIArYQAHACgAFgAVwBJgDcAI7AWgMAAgBiKgAgBMgFfKQAQBRkQAQA4AFiBAAoA-AEVAJlAVgAtYcACAJcAr4eABAK8O"
    "gBgFzAOmAqwgABAWyA.IFukWSQh"
)


def ms(iso: str) -> int:
    """Epoch milliseconds of an ISO-8601 UTC instant."""
    return calendar.timegm(time.strptime(iso, "%Y-%m-%dT%H:%M:%SZ")) * 1000


PUBLISHED: list[tuple[str, dict[str, Any]]] = [
    (SPEC_EXAMPLE, {
        "version": 2, "created": ms("2025-06-03T00:00:00Z"), "last_updated": ms("2025-06-03T00:00:00Z"),
        "cmp_id": 880, "cmp_version": 0, "consent_screen": 0, "consent_language": "EN", "vendor_list_version": 48,
        "tcf_policy_version": 2, "is_service_specific": True, "use_non_standard_texts": False,
        "special_feature_opt_ins": (), "purposes_consent": (), "purposes_li_transparency": (),
        "purpose_one_treatment": False, "publisher_cc": "DE", "vendor_consents": (1, 2, 3, 4),
        "vendor_legitimate_interests": (), "publisher_restrictions": (),
        "disclosed_vendors": (1, 2, 3, 4, 5, 100, 404),
        "publisher_tc": PublisherTC(purposes_consent=(), purposes_li_transparency=(), num_custom_purposes=0,
                                    custom_purposes_consent=(), custom_purposes_li_transparency=()),
    }),
    (JAVA_BASIC, {
        "version": 2, "created": ms("2020-01-26T17:01:00Z"), "last_updated": ms("2021-02-02T17:01:00Z"),
        "cmp_id": 675, "cmp_version": 2, "consent_screen": 1, "vendor_list_version": 15, "tcf_policy_version": 2,
        "consent_language": "EN", "publisher_cc": "AA", "is_service_specific": False, "purpose_one_treatment": True,
        "use_non_standard_texts": False, "special_feature_opt_ins": (1,), "purposes_consent": (2, 10),
        "purposes_li_transparency": (2, 9), "disclosed_vendors": None, "publisher_tc": None,
    }),
    (JAVA_BITFIELDS, {
        "purposes_consent": (3, 4, 5, 6, 7, 8, 9), "vendor_consents": (23, 37, 47, 48, 53, 65, 98),
        "vendor_legitimate_interests": (37, 47, 48, 53, 65, 98, 129),
    }),
    (f"{JAVA_BITFIELDS}.{JAVA_DISCLOSED}", {"disclosed_vendors": (23, 37, 47, 48, 53, 65, 98, 129)}),
    (f"{JAVA_BITFIELDS}.{JAVA_DISCLOSED}.{JAVA_PUBLISHER_TC}", {
        "publisher_tc": PublisherTC(purposes_consent=(1,), purposes_li_transparency=(24,), num_custom_purposes=2,
                                    custom_purposes_consent=(2,), custom_purposes_li_transparency=(1, 2)),
    }),
    (JAVA_LI_RANGE, {"vendor_legitimate_interests": (128,)}),
    (f"{JAVA_RANGE_2}.{JAVA_DISCLOSED_79}", {"vendor_consents": (702, 703)}),
    (f"{JAVA_RANGE_1}.{JAVA_DISCLOSED_79}", {"vendor_consents": (703,)}),
    (JAVA_PURPOSES, {"purposes_consent": (1, 2)}),
]


@pytest.mark.parametrize(("tc_string", "expected"), PUBLISHED, ids=lambda v: v[:12] if isinstance(v, str) else "")
def test_published_strings_decode_to_their_published_values(tc_string: str, expected: dict[str, Any]) -> None:
    tc = decode(tc_string)
    assert {k: getattr(tc, k) for k in expected} == expected


def test_publisher_restrictions_of_a_real_world_string() -> None:
    """iabtcf-es issue 201: purpose 1, require consent, vendors [7, 20, 71, 122, 140, 183]; the
    string names vendor 7 twice in that entry, which the specification allows (ranges of
    restrictions may overlap), so it is read as it is."""
    tc = decode(ES_ISSUE_201)
    (entry,) = [r for r in tc.publisher_restrictions if (r.purpose_id, r.restriction_type) == (1, 1)]
    covered = sorted({v for s, e in entry.vendor_ranges for v in range(s, e + 1)})
    assert covered == [7, 20, 71, 122, 140, 183]
    assert entry.covers(122) and not entry.covers(121)
    assert tc.is_service_specific and tc.consent_language == "DE" and tc.publisher_cc == "EU"


# ------------------------------------------------------------------ the reference twin


def bits_of(tc_string: str) -> list[str]:
    """Each segment's bits, read character by character (no padding handling beyond '=')."""
    return ["".join(format(ALPHABET.index(c), "06b") for c in seg.rstrip("=")) for seg in tc_string.split(".")]


class Writer:
    """Appends big-endian fields to a bit string."""

    def __init__(self) -> None:
        self.bits: list[str] = []

    def int(self, value: int, width: int) -> Writer:
        assert 0 <= value < 2**width, (value, width)
        self.bits.append(format(value, f"0{width}b") if width else "")
        return self

    def flag(self, value: bool) -> Writer:
        return self.int(int(value), 1)

    def vector(self, ids: tuple[int, ...] | list[int], width: int) -> Writer:
        return self.int(sum(1 << (width - i) for i in ids), width)

    def letters(self, two: str) -> Writer:
        return self.int(ord(two[0]) - 65, 6).int(ord(two[1]) - 65, 6)

    def entries(self, ranges: list[tuple[int, int]]) -> Writer:
        self.int(len(ranges), 12)
        for s, e in ranges:
            self.flag(s != e).int(s, 16)
            if s != e:
                self.int(e, 16)
        return self

    def vendors(self, max_id: int, ids: tuple[int, ...], ranged: bool) -> Writer:
        self.int(max_id, 16).flag(ranged)
        return self.entries(runs(ids)) if ranged else self.vector(ids, max_id)

    def text(self, pad: int = 6) -> str:
        """Base64url after padding with zero bits to a multiple of ``pad`` (encoders differ:
        iabtcf-es pads to 24 bits, byte-based ones to 8) and then of 6."""
        bits = "".join(self.bits)
        bits += "0" * (-len(bits) % pad)
        bits += "0" * (-len(bits) % 6)
        return "".join(ALPHABET[int(bits[i : i + 6], 2)] for i in range(0, len(bits), 6))


def runs(ids: tuple[int, ...]) -> list[tuple[int, int]]:
    """Sorted ids as maximal runs of consecutive ids."""
    out: list[tuple[int, int]] = []
    for v in ids:
        if out and out[-1][1] == v - 1:
            out[-1] = (out[-1][0], v)
        else:
            out.append((v, v))
    return out


@dataclass(frozen=True)
class Layout:
    """Encoding choices a TCString does not record: range or bit field per vendor section, the
    segment order after the core, and the padding of each segment."""

    consents_ranged: bool = False
    li_ranged: bool = False
    disclosed_ranged: bool = False
    publisher_first: bool = False
    pad: int = 6


def core_writer(tc: TCString, layout: Layout) -> Writer:
    w = Writer().int(tc.version, 6).int(tc.created // 100, 36).int(tc.last_updated // 100, 36)
    w.int(tc.cmp_id, 12).int(tc.cmp_version, 12).int(tc.consent_screen, 6).letters(tc.consent_language)
    w.int(tc.vendor_list_version, 12).int(tc.tcf_policy_version, 6)
    w.flag(tc.is_service_specific).flag(tc.use_non_standard_texts).vector(tc.special_feature_opt_ins, 12)
    w.vector(tc.purposes_consent, 24).vector(tc.purposes_li_transparency, 24)
    w.flag(tc.purpose_one_treatment).letters(tc.publisher_cc)
    w.vendors(tc.vendor_consents_max_id, tc.vendor_consents, layout.consents_ranged)
    w.vendors(tc.vendor_legitimate_interests_max_id, tc.vendor_legitimate_interests, layout.li_ranged)
    w.int(len(tc.publisher_restrictions), 12)
    for r in tc.publisher_restrictions:
        w.int(r.purpose_id, 6).int(r.restriction_type, 2).entries(list(r.vendor_ranges))
    return w


def encode(tc: TCString, layout: Layout = Layout()) -> str:
    """The reference encoder: ``tc`` as a TC string laid out as ``layout`` says."""
    segments = []
    if tc.disclosed_vendors is not None:
        w = Writer().int(1, 3).vendors(tc.disclosed_vendors_max_id, tc.disclosed_vendors, layout.disclosed_ranged)
        segments.append(w.text(layout.pad))
    if tc.publisher_tc is not None:
        p = tc.publisher_tc
        w = Writer().int(3, 3).vector(p.purposes_consent, 24).vector(p.purposes_li_transparency, 24)
        w.int(p.num_custom_purposes, 6).vector(p.custom_purposes_consent, p.num_custom_purposes)
        w.vector(p.custom_purposes_li_transparency, p.num_custom_purposes)
        segments.insert(0 if layout.publisher_first else len(segments), w.text(layout.pad))
    return ".".join([core_writer(tc, layout).text(layout.pad), *segments])


@pytest.mark.parametrize(("tc_string", "layout"), [
    (SPEC_EXAMPLE, Layout(disclosed_ranged=True, pad=24)),
    (JAVA_BASIC, Layout()),
    (f"{JAVA_BITFIELDS}.{JAVA_DISCLOSED}", Layout(pad=8)),
    (JAVA_LI_RANGE, Layout(consents_ranged=True, li_ranged=True, pad=8)),
    (JAVA_RANGE_2, Layout(consents_ranged=True, li_ranged=True)),
    (ES_ISSUE_201, Layout(consents_ranged=False, li_ranged=False)),
])
def test_reference_encoder_rebuilds_published_strings_bit_for_bit(tc_string: str, layout: Layout) -> None:
    """Decoding then re-encoding with the same layout gives the published string back, so both
    sides read the format the same way (and the twin is trusted for the round trips below)."""
    assert encode(decode(tc_string), layout) == tc_string


def test_spec_example_fields_read_by_hand() -> None:
    """The worked example's values in PUBLISHED, read straight from the bit offsets the
    specification lists (core: CmpId at 78, VendorListVersion at 120, PublisherCC at 201)."""
    core, disclosed, publisher = bits_of(SPEC_EXAMPLE)
    assert int(core[:6], 2) == 2 and int(core[78:90], 2) == 880 and int(core[120:132], 2) == 48
    assert chr(65 + int(core[201:207], 2)) + chr(65 + int(core[207:213], 2)) == "DE"
    assert int(core[213:229], 2) == 4 and core[229] == "0" and core[230:234] == "1111"
    assert int(disclosed[:3], 2) == 1 and int(disclosed[3:19], 2) == 404 and disclosed[19] == "1"
    assert int(publisher[:3], 2) == 3


ids_24 = st.sets(st.integers(1, 24)).map(lambda s: tuple(sorted(s)))
letters = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=2, max_size=2)


@st.composite
def vendor_sections(draw: st.DrawFn) -> tuple[int, tuple[int, ...]]:
    ids = tuple(sorted(draw(st.sets(st.integers(1, 700), max_size=40))))
    return max(ids, default=0) + draw(st.integers(0, 3)), ids


@st.composite
def restrictions(draw: st.DrawFn) -> PublisherRestriction:
    ranges = draw(st.lists(st.tuples(st.integers(1, 65535), st.integers(0, 50)), max_size=4))
    return PublisherRestriction(
        purpose_id=draw(st.integers(1, 24)),
        restriction_type=draw(st.integers(0, 2)),
        vendor_ranges=tuple((s, min(s + n, 65535)) for s, n in ranges),
    )


@st.composite
def publisher_tcs(draw: st.DrawFn) -> PublisherTC:
    n = draw(st.integers(0, 63))
    custom = st.sets(st.integers(1, n)).map(lambda s: tuple(sorted(s))) if n else st.just(())
    return PublisherTC(
        purposes_consent=draw(ids_24), purposes_li_transparency=draw(ids_24), num_custom_purposes=n,
        custom_purposes_consent=draw(custom), custom_purposes_li_transparency=draw(custom),
    )


@st.composite
def tc_strings(draw: st.DrawFn) -> TCString:
    consents_max, consents = draw(vendor_sections())
    li_max, li = draw(vendor_sections())
    disclosed = draw(st.none() | vendor_sections())
    return TCString(
        version=2,
        created=draw(st.integers(0, 2**36 - 1)) * 100,
        last_updated=draw(st.integers(0, 2**36 - 1)) * 100,
        cmp_id=draw(st.integers(0, 4095)),
        cmp_version=draw(st.integers(0, 4095)),
        consent_screen=draw(st.integers(0, 63)),
        consent_language=draw(letters),
        vendor_list_version=draw(st.integers(0, 4095)),
        tcf_policy_version=draw(st.integers(0, 63)),
        is_service_specific=draw(st.booleans()),
        use_non_standard_texts=draw(st.booleans()),
        special_feature_opt_ins=draw(st.sets(st.integers(1, 12)).map(lambda s: tuple(sorted(s)))),
        purposes_consent=draw(ids_24),
        purposes_li_transparency=draw(ids_24),
        purpose_one_treatment=draw(st.booleans()),
        publisher_cc=draw(letters),
        vendor_consents_max_id=consents_max,
        vendor_consents=consents,
        vendor_legitimate_interests_max_id=li_max,
        vendor_legitimate_interests=li,
        publisher_restrictions=tuple(draw(st.lists(restrictions(), max_size=4))),
        disclosed_vendors_max_id=disclosed[0] if disclosed else 0,
        disclosed_vendors=disclosed[1] if disclosed else None,
        publisher_tc=draw(st.none() | publisher_tcs()),
    )


layouts = st.builds(Layout, st.booleans(), st.booleans(), st.booleans(), st.booleans(), st.sampled_from([6, 8, 24]))


@settings(max_examples=300)
@given(tc=tc_strings(), layout=layouts)
def test_round_trip_of_generated_strings(tc: TCString, layout: Layout) -> None:
    assert decode(encode(tc, layout)) == tc


@settings(max_examples=300)
@given(tc=tc_strings(), layout=layouts, data=st.data())
def test_damaged_strings_raise_our_error_or_decode(tc: TCString, layout: Layout, data: st.DataObject) -> None:
    """Cut or changed anywhere, a string decodes or raises SchemaError: never an IndexError,
    ValueError or anything else."""
    text = encode(tc, layout)
    cut = data.draw(st.integers(0, len(text)))
    pos = data.draw(st.integers(0, max(len(text) - 1, 0)))
    new = data.draw(st.sampled_from(ALPHABET + ".=+/ \x00é"))
    for damaged in (text[:cut], text[:pos] + new + text[pos + 1 :], text[:pos] + new + text[pos:]):
        try:
            decode(damaged)
        except SchemaError as e:
            assert str(e).endswith(AT)


@given(st.text(alphabet=ALPHABET + ".=", max_size=120))
def test_arbitrary_base64url_text_raises_only_our_error(text: str) -> None:
    try:
        decode(text)
    except SchemaError as e:
        assert str(e).endswith(AT)


# ------------------------------------------------------------------ malformed input

BASE = decode(SPEC_EXAMPLE)


CORE_BITS = bits_of(SPEC_EXAMPLE)[0]


def from_bits(bits: str) -> str:
    w = Writer()
    w.bits = [bits]
    return w.text()


def spliced(at: int, bits: str) -> str:
    """The spec example's core segment with ``bits`` written over it from bit ``at``."""
    return from_bits(CORE_BITS[:at] + bits + CORE_BITS[at + len(bits) :])


def raw_core(tail: Writer) -> str:
    """The spec example's core fields up to PublisherCC, then ``tail``'s bits."""
    return from_bits(CORE_BITS[:213] + "".join(tail.bits))


NO_VENDORS = Writer().int(0, 16).flag(False)
NO_RESTRICTIONS = Writer().int(0, 12)


def ranged(max_id: int, entries: list[tuple[int, int]]) -> Writer:
    return Writer().int(max_id, 16).flag(True).entries(entries)


def restriction(purpose: int, kind: int) -> Writer:
    return Writer().int(1, 12).int(purpose, 6).int(kind, 2).int(0, 12)


def tail(*parts: Writer) -> Writer:
    w = Writer()
    for p in parts:
        w.bits += p.bits
    return w


MALFORMED: list[tuple[Any, str]] = [
    (123, "Expected `str`, got `int`" + AT),
    (b"COtybn4PA", "Expected `str`, got `bytes`" + AT),
    ("", "Expected a non-empty segment 0 (segments are joined by '.'), got ''" + AT),
    ("==", "Expected a non-empty segment 0 (segments are joined by '.'), got ''" + AT),
    (f"{JAVA_BASIC}.", "Expected a non-empty segment 1 (segments are joined by '.'), got ''" + AT),
    (f"{JAVA_BASIC}..{JAVA_DISCLOSED}", "Expected a non-empty segment 1 (segments are joined by '.'), got ''" + AT),
    ("A" * (MAX_LENGTH + 1), f"Expected a TC string of at most 65536 characters, got {MAX_LENGTH + 1}" + AT),
    ("COtybn4P+A_zT4", "Expected base64url characters (A-Z a-z 0-9 - _) in segment 0, got '+' at character 8" + AT),
    (f"{JAVA_BASIC}.IBA/gAA", "Expected base64url characters (A-Z a-z 0-9 - _) in segment 1, got '/' at character 48" + AT),
    ("COtybn4P=A", "Expected base64url characters (A-Z a-z 0-9 - _) in segment 0, got '=' at character 8" + AT),
    (" " + JAVA_BASIC, "Expected base64url characters (A-Z a-z 0-9 - _) in segment 0, got ' ' at character 0" + AT),
    ("COtybn4PA\u00e9", "Expected base64url characters (A-Z a-z 0-9 - _) in segment 0, got '\u00e9' at character 9" + AT),
    # a TCF v1.1 string (version 1) and the first bits of a DisclosedVendors segment put first
    ("BOEFEAyOEFEAyAHABDENAI4AAAB9vABAASA", "Expected `Version` 2 (TCF v2.x), got 1" + AT),
    (JAVA_DISCLOSED, "Expected `Version` 2 (TCF v2.x), got 8" + AT),
    ("CO", "Expected 36 bits for `Created` at bit 6 of the core segment, got 6" + AT),
    (JAVA_BASIC[:23], "Expected 1 bit for `IsServiceSpecific` at bit 138 of the core segment, got 0" + AT),
    (JAVA_BASIC[:30], "Expected 24 bits for `PurposesLITransparency` at bit 176 of the core segment, got 4" + AT),
    (JAVA_BASIC[:36], "Expected 16 bits for `VendorConsents.MaxVendorId` at bit 213 of the core segment, got 3" + AT),
    (JAVA_BITFIELDS[:40], "Expected 98 bits for `VendorConsents.BitField` at bit 230 of the core segment, got 10" + AT),
    # iabtcf-es issue 142: a DisclosedVendors bit field shorter than its MaxVendorId
    (ES_ISSUE_142, "Expected 733 bits for `DisclosedVendors.BitField` at bit 20 of the DisclosedVendors segment, got 28" + AT),
    (spliced(108, "111101" "001101"), "Expected two letters A-Z (6 bits each, 0-25) in `ConsentLanguage`, got 61 and 13" + AT),
    (spliced(201, "011110" "000100"), "Expected two letters A-Z (6 bits each, 0-25) in `PublisherCC`, got 30 and 4" + AT),
    (raw_core(tail(ranged(10, [(3, 5), (1, 2)]), NO_VENDORS, NO_RESTRICTIONS)),
     "Expected `VendorConsents` range entries in ascending order without overlap, got 1-2 after 5" + AT),
    (raw_core(tail(ranged(10, [(3, 5), (5, 6)]), NO_VENDORS, NO_RESTRICTIONS)),
     "Expected `VendorConsents` range entries in ascending order without overlap, got 5-6 after 5" + AT),
    (raw_core(tail(ranged(10, [(3, 11)]), NO_VENDORS, NO_RESTRICTIONS)),
     "Expected `VendorConsents` vendor ids in [1, 10] (MaxVendorId), got 3-11" + AT),
    (raw_core(tail(NO_VENDORS, ranged(10, [(0, 0)]), NO_RESTRICTIONS)),
     "Expected `VendorLegitimateInterests` range entries with 1 <= start <= end, got 0-0" + AT),
    (raw_core(tail(NO_VENDORS, Writer().int(10, 16).flag(True).int(1, 12).flag(True).int(7, 16).int(4, 16), NO_RESTRICTIONS)),
     "Expected `VendorLegitimateInterests` range entries with 1 <= start <= end, got 7-4" + AT),
    (raw_core(tail(NO_VENDORS, NO_VENDORS)), "Expected 12 bits for `NumPubRestrictions` at bit 247 of the core segment, got 5" + AT),
    (raw_core(tail(NO_VENDORS, NO_VENDORS, restriction(0, 0))),
     "Expected `PurposeId` in [1, 24] in publisher restriction 0, got 0" + AT),
    (raw_core(tail(NO_VENDORS, NO_VENDORS, restriction(25, 1))),
     "Expected `PurposeId` in [1, 24] in publisher restriction 0, got 25" + AT),
    (raw_core(tail(NO_VENDORS, NO_VENDORS, restriction(2, 3))),
     "Expected `RestrictionType` 0, 1 or 2 in publisher restriction 0, got 3" + AT),
    (raw_core(tail(NO_VENDORS, NO_VENDORS, Writer().int(1, 12).int(2, 6).int(0, 2).int(1, 12).flag(False).int(0, 16))),
     "Expected `PubRestrictionEntry` range entries with 1 <= start <= end, got 0-0" + AT),
    (f"{JAVA_BASIC}.AAAA", "Expected segment type 1 (DisclosedVendors) or 3 (PublisherTC) in segment 1, got 0" + AT),
    (f"{JAVA_BASIC}.gAAA", "Expected segment type 1 (DisclosedVendors) or 3 (PublisherTC) in segment 1, got 4" + AT),
    (f"{JAVA_BASIC}.{JAVA_DISCLOSED}.{JAVA_DISCLOSED}",
     "Expected at most one DisclosedVendors segment, got another in segment 2" + AT),
    (f"{JAVA_BASIC}.{JAVA_PUBLISHER_TC}.{JAVA_PUBLISHER_TC}",
     "Expected at most one PublisherTC segment, got another in segment 2" + AT),
    (f"{JAVA_BASIC}.IAA", "Expected 16 bits for `DisclosedVendors.MaxVendorId` at bit 3 of the DisclosedVendors segment, got 15" + AT),
    (f"{JAVA_BASIC}.{Writer().int(1, 3).int(8, 16).flag(False).text()}",
     "Expected 8 bits for `DisclosedVendors.BitField` at bit 20 of the DisclosedVendors segment, got 4" + AT),
    (f"{JAVA_BASIC}.cAAAAAAAA", "Expected 6 bits for `NumCustomPurposes` at bit 51 of the PublisherTC segment, got 3" + AT),
    (f"{JAVA_BASIC}.{Writer().int(3, 3).int(0, 48).int(12, 6).text()}",
     "Expected 12 bits for `CustomPurposesConsent` at bit 57 of the PublisherTC segment, got 3" + AT),
]


@pytest.mark.parametrize(("tc_string", "message"), MALFORMED, ids=[m[:50] for _, m in MALFORMED])
def test_malformed_strings_get_our_message(tc_string: Any, message: str) -> None:
    with pytest.raises(SchemaError, match=full_match(message)):
        decode(tc_string)


def test_allowed_vendors_segment_is_refused() -> None:
    """Segment type 2 (AllowedVendors) served out-of-band signalling, which TCF dropped in 2021;
    v2.2 defines types 1 and 3 only (iabtcf-java's testCanParseDisclosedAndAllowedVendors)."""
    message = "Expected segment type 1 (DisclosedVendors) or 3 (PublisherTC) in segment 2, got 2" + AT
    with pytest.raises(SchemaError, match=full_match(message)):
        decode(f"{JAVA_BITFIELDS}.{JAVA_DISCLOSED}.{JAVA_ALLOWED}")


def test_errors_name_the_callers_path() -> None:
    with pytest.raises(SchemaError, match=full_match("Expected `Version` 2 (TCF v2.x), got 8 - at `$.events[3].tcf`")):
        decode(JAVA_DISCLOSED, path="$.events[3].tcf")


def test_a_hostile_string_fails_before_it_is_read() -> None:
    """100 kB is refused by its length alone: fast, whatever its content."""
    hostile = "C" + "_" * 100_000
    t0 = time.perf_counter()
    with pytest.raises(SchemaError, match=full_match(f"Expected a TC string of at most 65536 characters, got 100001{AT}")):
        decode(hostile)
    assert time.perf_counter() - t0 < 0.5  # generous: the refusal reads no character


def test_the_longest_string_read_is_bounded_in_work() -> None:
    """A string at the length cap made of the widest ranges decodes (or fails) at once, and
    its publisher restrictions stay ranges, not millions of expanded ids."""
    entry = Writer().flag(True).int(1, 16).int(65535, 16)
    per = 4000
    restrictions_bits = Writer().int(1, 12).int(1, 6).int(0, 2).int(per, 12)
    for _ in range(per):
        restrictions_bits.bits += entry.bits
    text = raw_core(tail(NO_VENDORS, NO_VENDORS, restrictions_bits))
    assert len(text) < MAX_LENGTH
    t0 = time.perf_counter()
    tc = decode(text)
    assert time.perf_counter() - t0 < 2.0  # generous: about 10 ms here
    assert len(tc.publisher_restrictions[0].vendor_ranges) == per


# ------------------------------------------------------------------ onto our purposes


def tc_with(**changes: Any) -> TCString:
    """A service-specific string (the spec example) with some fields changed."""
    return msgspec.structs.replace(BASE, **changes)


ALL_TEN = tuple(range(1, 11))


def test_result_covers_our_tcf_purposes_only() -> None:
    out = purposes_of(tc_with(purposes_consent=ALL_TEN))
    assert out == {"personalization": True, "analytics": True, "ad_profiling": True}
    assert set(out) <= set(PURPOSES) and "marketing" not in out and "sale_share" not in out


@pytest.mark.parametrize(("consent", "li", "expected"), [
    ((), (), (False, False, False)),
    ((1, 5, 6), (), (True, False, False)),
    ((1, 3, 4), (), (False, False, True)),
    ((1, 8), (), (False, True, False)),
    # 8 may rest on legitimate interest; 1 may not, nor 3-6 (TCF v2.2)
    ((1,), (8,), (False, True, False)),
    ((), (1, 8), (False, False, False)),
    ((1,), (3, 4, 5, 6), (False, False, False)),
    # 7, 9 and 10 are not analytics here
    ((1, 7, 9, 10), (7, 9, 10), (False, False, False)),
    # one missing purpose refuses ours
    ((1, 5), (), (False, False, False)),
    ((5, 6, 3, 4, 8), (), (False, False, False)),
])
def test_mapping_of_purposes(consent: tuple[int, ...], li: tuple[int, ...], expected: tuple[bool, bool, bool]) -> None:
    out = purposes_of(tc_with(purposes_consent=tuple(sorted(consent)), purposes_li_transparency=li))
    assert (out["personalization"], out["analytics"], out["ad_profiling"]) == expected


def test_purpose_one_treatment_is_not_consent() -> None:
    out = purposes_of(tc_with(purposes_consent=(5, 6, 8), purpose_one_treatment=True))
    assert out == {"personalization": False, "analytics": False, "ad_profiling": False}


def r(purpose: int, kind: int, *ranges: tuple[int, int]) -> PublisherRestriction:
    return PublisherRestriction(purpose_id=purpose, restriction_type=kind, vendor_ranges=ranges)


VENDOR_CASES: list[tuple[dict[str, Any], tuple[bool, bool, bool]]] = [
    ({}, (True, True, True)),
    ({"vendor_consents": (1, 2, 3)}, (False, False, False)),
    # the vendor's legitimate interest opens analytics when the user's LI bit for 8 does
    ({"vendor_consents": (1, 2, 3), "vendor_legitimate_interests": (4,)}, (False, False, False)),
    ({"purposes_consent": (1,), "purposes_li_transparency": (8,), "vendor_legitimate_interests": (4,)}, (False, True, False)),
    ({"purposes_consent": (1,), "purposes_li_transparency": (8,)}, (False, False, False)),
    # type 0 (not allowed) for this vendor refuses the purpose; for another vendor it does not
    ({"publisher_restrictions": (r(5, 0, (4, 4)),)}, (False, True, True)),
    ({"publisher_restrictions": (r(5, 0, (5, 9)),)}, (True, True, True)),
    ({"publisher_restrictions": (r(1, 0, (1, 100)),)}, (False, False, False)),
    # type 2 (require LI) on a consent-only purpose refuses it; type 1 on 8 shuts the LI path
    ({"publisher_restrictions": (r(3, 2, (4, 4)),)}, (True, True, False)),
    ({"purposes_li_transparency": (8,), "purposes_consent": (1,), "vendor_legitimate_interests": (4,),
      "publisher_restrictions": (r(8, 1, (4, 4)),)}, (False, False, False)),
    ({"purposes_li_transparency": (8,), "vendor_legitimate_interests": (4,),
      "publisher_restrictions": (r(8, 2, (4, 4)),)}, (True, True, True)),
    ({"publisher_restrictions": (r(8, 2, (4, 4)),)}, (True, False, True)),
    # type 1 (require consent) changes nothing when consent is there
    ({"publisher_restrictions": (r(5, 1, (4, 4)), r(6, 1, (2, 8)))}, (True, True, True)),
]


@pytest.mark.parametrize(("changes", "expected"), VENDOR_CASES)
def test_mapping_for_a_vendor(changes: dict[str, Any], expected: tuple[bool, bool, bool]) -> None:
    base = {"purposes_consent": ALL_TEN, "vendor_consents": (1, 2, 3, 4), "vendor_consents_max_id": 4}
    out = purposes_of(tc_with(**{**base, **changes}), vendor_id=4)
    assert (out["personalization"], out["analytics"], out["ad_profiling"]) == expected


def test_mapping_of_a_real_world_string() -> None:
    """iabtcf-es issue 201: purposes 1-10 consented; its publisher restriction (purpose 1,
    require consent) leaves a consented vendor allowed, and a vendor without consent gets none."""
    tc = decode(ES_ISSUE_201)
    assert purposes_of(tc) == {"personalization": True, "analytics": True, "ad_profiling": True}
    assert 7 in tc.vendor_consents and 3 not in tc.vendor_consents
    assert purposes_of(tc, vendor_id=7) == {"personalization": True, "analytics": True, "ad_profiling": True}
    assert purposes_of(tc, vendor_id=3) == {"personalization": False, "analytics": False, "ad_profiling": False}


@pytest.mark.parametrize(("vendor_id", "message"), [
    (0, "Expected `vendor_id` in [1, 65535], got 0" + AT),
    (65536, "Expected `vendor_id` in [1, 65535], got 65536" + AT),
    (True, "Expected `vendor_id` to be an int or None, got `bool`" + AT),
    ("4", "Expected `vendor_id` to be an int or None, got `str`" + AT),
])
def test_bad_vendor_id(vendor_id: Any, message: str) -> None:
    with pytest.raises(SchemaError, match=full_match(message)):
        purposes_of(BASE, vendor_id=vendor_id)


def test_global_scope_strings_are_refused() -> None:
    """IsServiceSpecific 0 decodes (its fields are readable) but gives no purposes: such strings
    are invalid since global scope ended in September 2021."""
    message = ("Expected a service-specific TC string (`IsServiceSpecific` 1), got 0 (global scope, invalid since"
               " September 2021)" + AT)
    tc = decode(JAVA_BASIC)
    with pytest.raises(SchemaError, match=full_match(message)):
        purposes_of(tc)
