"""TCF consent strings: decoding a TC string (:func:`decisioner.consent.tcf.decode`) and mapping
it onto our purposes (:func:`~decisioner.consent.tcf.purposes_of`), pure Python.

Two strings: the specification's worked example (a minimal v2.3 string, 80 characters) and a
real-world one of 635 characters published with iabtcf-es (issue 201: bit fields of 808
vendors, consent and legitimate interest, and 20 publisher restrictions), the size a CMP writes
for a site with a few hundred vendors.
"""

from __future__ import annotations

from typing import Any

import pytest

from decisioner.consent.tcf import decode, purposes_of

#: IAB Tech Lab, consent string and vendor list formats v2, "Full TC String passing"
SPEC_EXAMPLE = "CQSbk4AQSbk4ANwAAAENAwCgAAAAAAAAAAYgACPAAAAA.IDKQA4AAgAKAGQAygAAA.YAAAAAAAAAAA"
#: iabtcf-es, modules/core/test/ReportedIssues.test.ts, "201 unable to decode valid TCF2 String"
REAL_WORLD = (
    "CO4VGswO4VGswAfZCBDEAzCsAP_AAH_AAAigGUNf_X9fb2vj-_599_t0eY1f9_63t-wzjheMs-8NyZ-X_J4Wv2MyvB34JqQKGRgkunLBAQdtHGnc"
    "TQgBwIlViTLMY02MjzNKJrJEilsbe2dYGH9vn8XT_ZKZ70-_v__7v3___33_5Ayhr_6_r7e18f3_Pvv9ujzGr_v_W9v2GccLxln3huTPy_5PC1-"
    "xmV4O_BNSBQyMEl05YICDto407iaEAOBEqsSZZjGmxkeZpRNZIkUtjb2zrAw_t8_i6f7JTPen39___d-___--__ICgKAOAAcAA4AFAAjgB6AEYA"
    "LcGACAW0AtoJAHAAOAAcACgARwA9ACMAFuFABALaAW0GgDgAHAAOABQAI4AegBGAC3DgAgFtALaEQBwADgAHAAoAEcAPQAjABbiQAQC2gFtCoA4AB"
    "wADgAUACOAHoARgAtxYAIBbQC2hkAcAA4ABwAKABHAD0AIwAW40AEAtoBbQ6AOAAcAA4AFAAjgB6AEYALceACAW0AtohAHAAOAAcACgARwA9ACMA"
    "FuRABALaAW0SgDgAHAAOABQAI4AegBGAC3JgAgFtALaKQBwADgAHAAoAEcAPQAjABblQAQC2gFtA"
)


@pytest.mark.benchmark(group="consent-tcf")
@pytest.mark.parametrize("tc_string", [SPEC_EXAMPLE, REAL_WORLD], ids=["spec-example", "real-world-635-chars"])
def test_decode(benchmark: Any, tc_string: str) -> None:
    tc = benchmark(decode, tc_string)
    assert tc.version == 2 and tc.is_service_specific
    benchmark.extra_info.update(chars=len(tc_string), vendor_consents=len(tc.vendor_consents))


@pytest.mark.benchmark(group="consent-tcf")
def test_purposes_of_a_vendor(benchmark: Any) -> None:
    tc = decode(REAL_WORLD)
    out = benchmark(purposes_of, tc, vendor_id=7)
    assert out == {"personalization": True, "analytics": True, "ad_profiling": True}
