"""Identity rules from configuration: normalisers, blocked values, uniqueness, limits, priorities,
time-to-live; unmerge, erasure and persistence through the IdentityGraph API."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from decisioner.config import DEFAULT_BLOCKED, IdentifierSpec, IdentitySpec, load_config_dict
from decisioner.errors import ConfigError, SchemaError
from decisioner.hashing import hash_identifier
from decisioner.identity import IdentityGraph, normalise
from decisioner.identity.normalise import provider_canonical
from decisioner.identity.rules import BLOCKED_FLAG, IdentifierRules, identifier_key

KEY = bytes(range(16))
T0 = 1_700_000_000_000
DAY = 86_400_000


def full(msg: str) -> str:
    return "^" + re.escape(msg) + "$"


# ---------------------------------------------------------------- keys and check tags


def test_key_and_tag_golden_values() -> None:
    """The persisted format (see tests/test_hashing.py): d = BLAKE2b(type | 0x1f | value,
    key=secret, digest_size=16); key = d[0:8], tag = d[8:12], little-endian (0 replaced by 1)."""
    k, t = identifier_key(KEY, "email", "ada@example.com")
    assert k == hash_identifier(KEY, "email", "ada@example.com") == 0x2EE8850071742935
    assert t == 0x2AEC040C


def test_keys_carry_the_blocked_flag_only_for_blocked_values() -> None:
    g = IdentityGraph(KEY)
    keys, _ = g.keys_of({"email": " NULL", "cookie": "c1", "phone": "+1 555 555 5555"})
    assert [bool(int(w) & BLOCKED_FLAG) for w in keys[1]] == [True, False, True]
    assert keys[0, 0] == identifier_key(KEY, "email", "null")[0]


# ---------------------------------------------------------------- normalisers


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Ada.Lovelace+news@GoogleMail.com", "adalovelace@gmail.com"),
        ("a.d.a@gmail.com", "ada@gmail.com"),
        ("ada+shop@outlook.com", "ada@outlook.com"),
        ("ada.l+x@example.com", "ada.l+x@example.com"),  # other providers: unchanged
        ("+tag@gmail.com", "+tag@gmail.com"),  # nothing left before the tag: unchanged
    ],
)
def test_provider_rules_for_email(value: str, expected: str) -> None:
    assert normalise("email", value, provider_rules=True) == expected
    assert provider_canonical(value.strip().lower()) == expected


def test_provider_rules_are_off_by_default_and_on_by_config() -> None:
    plain = IdentityGraph(KEY)
    assert plain.link_one({"email": "a.d.a@gmail.com"}).row != plain.link_one({"email": "ada@gmail.com"}).row
    spec = IdentitySpec(identifiers=(IdentifierSpec(name="email", provider_rules=True, limit=5),))
    g = IdentityGraph(KEY, spec=spec)
    assert g.link_one({"email": "a.d.a+x@gmail.com"}).row == g.link_one({"email": "ada@googlemail.com"}).row


def test_normaliser_kinds_by_config() -> None:
    spec = IdentitySpec(identifiers=(IdentifierSpec(name="login", normaliser="lower"),
                                     IdentifierSpec(name="work_email", normaliser="email")))
    r = IdentifierRules(spec)
    assert r.canonical("login", "  AdaL ") == ("adal", False)
    assert r.canonical("work_email", " Ada@X.io") == ("ada@x.io", False)
    with pytest.raises(SchemaError, match=full("Expected an email address, got 'nope' - at `$.ids.work_email`")):
        r.canonical("work_email", "nope")


# ---------------------------------------------------------------- blocked values


@pytest.mark.parametrize(
    ("id_type", "value"),
    [
        ("email", "null"), ("email", "N/A"), ("email", "test@test.com"), ("email", " Test@Test.COM "),
        ("email", "noemail@example.com"), ("email", "asdf@asdf.com"), ("email", "none@none.com"),
        ("cookie", "undefined"), ("device", "00000000-0000-0000-0000-000000000000"), ("user_id", "0"),
        ("phone", "0000000000"), ("phone", "(555) 555-5555"), ("phone", "123-456-7890"), ("crm_id", "-1"),
    ],
)
def test_default_blocked_values_never_link(id_type: str, value: str) -> None:
    g = IdentityGraph(KEY)
    a = g.link_one({id_type: value, "member": "m-a"})
    b = g.link_one({id_type: value, "member": "m-b"})
    assert a.row != b.row and a.refused and b.refused
    assert g.resolve_one({id_type: value}) == -1
    assert g.metrics()["refused"]["blocked"] == 2


def test_real_values_are_not_blocked() -> None:
    r = IdentifierRules()
    for t, v in (("email", "ada@example.com"), ("email", "a@x.io"), ("phone", "+44 20 7946 0958"), ("cookie", "c1")):
        assert r.canonical(t, v)[1] is False
    assert "null" in DEFAULT_BLOCKED and "test@test.com" in DEFAULT_BLOCKED


def test_phone_placeholders_are_blocked_and_other_invalid_numbers_refused() -> None:
    r = IdentifierRules()
    # no numbering plan holds these valid, but the default patterns know them: blocked, not errors
    assert r.canonical("phone", "(555) 555-5555") == ("+5555555555", True)
    assert r.canonical("phone", "000-000-0000") == ("+0000000000", True)
    with pytest.raises(SchemaError, match=full(
        "Expected a valid phone number (with +country code, or national in region 'US'), got '(555) 123-4567' - "
        "at `$.ids.phone`"
    )):
        r.canonical("phone", "(555) 123-4567")
    # a control character is an error even where the digits look like a placeholder
    with pytest.raises(SchemaError, match="^" + re.escape("Expected an identifier without control characters")):
        r.canonical("phone", "555\x00555-5555")


def test_a_valid_number_is_judged_by_its_e164_form_in_every_spelling() -> None:
    r = IdentifierRules()
    # the raw digits 2012222222 would match the repeated-digit pattern; the E.164 form does not
    for spelling in ("(201) 222-2222", "201-222-2222", "+1 201 222 2222"):
        assert r.canonical("phone", spelling) == ("+12012222222", False)


def test_an_event_of_blocked_values_only_gets_the_scratch_row() -> None:
    g = IdentityGraph(KEY)
    seen: list[int] = []
    g.add_anonymous_listener(seen.append)
    real = g.link_one({"cookie": "c1"}).row
    res = g.link_one({"email": "null", "phone": "0"})
    assert res.anonymous and res.row != real and seen == [res.row]
    assert g.link_one({"email": "undefined"}).row == res.row  # one shared scratch row
    assert g.metrics()["anonymous_events"] == 2


def test_pre_hashed_loads_hit_the_stored_blocked_values() -> None:
    g = IdentityGraph(KEY)
    k = np.array([[identifier_key(KEY, "email", "null")[0], identifier_key(KEY, "cookie", "c1")[0]]], np.uint64)
    rows = g.link_many(k.reshape(-1), np.array([g.type_code("email"), g.type_code("cookie")], np.int8), np.array([0, 2]))
    assert g.resolve_keys(k.reshape(-1)).tolist() == [-1, int(rows[0])]


def test_block_a_value_at_run_time_removes_and_recomputes() -> None:
    g = IdentityGraph(KEY)
    for c in ("c1", "c2", "c3"):
        g.link_one({"email": "team@acme.io", "cookie": c})  # a team inbox glued three cookies
    row = g.resolve_one({"cookie": "c1"})
    res = g.block("email", "Team@ACME.io")
    assert res.row == row and res.new_rows.shape == (2,)
    rows = {g.resolve_one({"cookie": c}) for c in ("c1", "c2", "c3")}
    assert len(rows) == 3 and g.resolve_one({"email": "team@acme.io"}) == -1
    assert g.link_one({"email": "team@acme.io", "cookie": "c1"}).refused


# ---------------------------------------------------------------- uniqueness, limits, priority


def test_unique_type_never_holds_two_values_and_the_event_goes_to_its_anchor() -> None:
    """A shared family tablet: the first login links it to user A; user B's login on it is
    refused, the tablet stays with A and B's event resolves to B."""
    g = IdentityGraph(KEY)
    a = g.link_one({"cookie": "tablet", "user_id": "A"}).row
    res = g.link_one({"cookie": "tablet", "user_id": "B"})
    assert res.refused and res.row != a
    assert g.resolve_one({"cookie": "tablet"}) == a and g.resolve_one({"user_id": "B"}) == res.row
    assert g.metrics()["refused"]["unique"] == 1
    assert [e["linked"] for e in g.evidence_of(res.row)] == [False]  # kept as evidence


def test_limits_per_type_and_size_cap() -> None:
    spec = IdentitySpec(identifiers=(IdentifierSpec(name="email", limit=2, priority=60),), max_identifiers=4)
    g = IdentityGraph(KEY, spec=spec)
    row = g.link_one({"user_id": "u", "email": "a@x.io"}).row
    g.link_one({"user_id": "u", "email": "b@x.io"})
    assert g.link_one({"user_id": "u", "email": "c@x.io"}).refused  # a third email
    assert g.resolve_one({"email": "c@x.io"}) == -1  # a refused new identifier is not stored
    g.link_one({"user_id": "u", "cookie": "k1"})
    assert g.link_one({"user_id": "u", "cookie": "k2"}).refused  # five identifiers > cap 4
    m = g.metrics()["refused"]
    assert (m["limit"], m["size_cap"]) == (1, 1) and len(g.members(row)) == 4


def test_rules_off_is_plain_connected_components() -> None:
    g = IdentityGraph(KEY, spec=IdentitySpec(rules=False))
    a = g.link_one({"cookie": "tablet", "user_id": "A"}).row
    assert g.link_one({"cookie": "tablet", "user_id": "B"}).row == a
    with pytest.raises(SchemaError):  # no blocked values: "null" is just a malformed email
        g.link_one({"email": "null"})


def test_unknown_types_get_plain_id_rules() -> None:
    g = IdentityGraph(KEY)
    code = g.type_code("loyalty")
    assert int(g.trules_[code, 0]) == 0 and int(g.trules_[code, 1]) == -1
    assert g.link_one({"loyalty": " L-1 ", "cookie": "c"}).row == g.resolve_one({"loyalty": "L-1"})


# ---------------------------------------------------------------- time-to-live


def test_expire_drops_volatile_identifiers_past_their_ttl() -> None:
    g = IdentityGraph(KEY)  # cookies: 400 days
    row = g.link_one({"user_id": "u", "cookie": "old"}, time=T0).row
    g.link_one({"user_id": "u", "cookie": "new"}, time=T0 + 300 * DAY)
    g.link_one({"cookie": "alone"}, time=T0)
    res = g.expire(T0 + 450 * DAY)
    assert res.erased.shape == (1,)  # the lone cookie's profile held nothing else
    assert g.resolve_one({"cookie": "old"}) == -1 and g.resolve_one({"cookie": "new"}) == row
    assert g.link_one({"cookie": "old"}).new  # no tombstone: it may come back as new


# ---------------------------------------------------------------- unmerge and erasure


def test_unlink_keeps_the_identifier_apart() -> None:
    g = IdentityGraph(KEY)
    row = g.link_one({"user_id": "u", "cookie": "c1"}).row
    g.link_one({"user_id": "u", "cookie": "c2"})
    res = g.unlink({"cookie": "c2"})
    assert res.row == row and g.resolve_one({"cookie": "c2"}) == int(res.new_rows[0])
    assert g.link_one({"user_id": "u", "cookie": "c2"}).refused  # do-not-link
    assert g.metrics()["refused"]["do_not_link"] == 1


def test_split_apart_two_people_glued_by_a_shared_value() -> None:
    spec = IdentitySpec(identifiers=(IdentifierSpec(name="email", limit=5, priority=60),))
    g = IdentityGraph(KEY, spec=spec)
    g.link_one({"email": "a@x.io", "cookie": "ca"})
    g.link_one({"email": "b@x.io", "cookie": "cb"})
    row = g.link_one({"cookie": "ca", "phone": "+12025550111"}).row
    g.link_one({"cookie": "cb", "phone": "(202) 555-0111"})  # one phone glues both
    assert g.resolve_one({"email": "a@x.io"}) == g.resolve_one({"email": "b@x.io"}) == row
    res = g.split(row, apart=[{"email": "a@x.io"}, {"email": "b@x.io"}])
    assert res.new_rows.shape == (1,)
    assert g.resolve_one({"email": "a@x.io"}) != g.resolve_one({"email": "b@x.io"})


def test_split_errors() -> None:
    g = IdentityGraph(KEY)
    row = g.link_one({"cookie": "a"}).row
    other = g.link_one({"cookie": "b"}).row
    with pytest.raises(SchemaError, match=full("Expected a profile row with identifiers, got 99 - at `row`")):
        g.split(99)
    with pytest.raises(SchemaError, match=full(f"Expected identifiers of profile {row}, got one of another profile - at `apart[0]`")):
        g.split(row, apart=[{"cookie": "b"}])
    with pytest.raises(SchemaError, match=full("Expected a known identifier, got none that is linked - at `ids`")):
        g.unlink({"cookie": "zzz"})
    assert other != row


def test_forget_leaves_tombstones_that_stick() -> None:
    g = IdentityGraph(KEY)
    row = g.link_one({"email": "ada@x.io", "cookie": "c1"}).row
    res = g.forget(row=row)
    assert res.erased.tolist() == [row] and g.resolve_one({"email": "ada@x.io"}) == -1
    again = g.link_one({"email": "ada@x.io", "cookie": "c-new"})
    assert again.suppressed and again.anonymous and g.resolve_one({"cookie": "c-new"}) == -1
    g.forget({"email": "never@seen.io"})  # a tombstone for an identifier never linked
    assert g.link_one({"email": "never@seen.io"}).suppressed
    back = g.link_one({"email": "ada@x.io"}, consent={"personalization": True})
    assert back.new and g.resolve_one({"email": "ada@x.io"}) == back.row
    m = g.metrics()
    assert (m["tombstones"], m["readmitted"], m["suppressed_events"]) == (2, 1, 2)


def test_forget_needs_ids_or_row() -> None:
    g = IdentityGraph(KEY)
    with pytest.raises(SchemaError, match=full("Expected either `ids` or `row`, got neither - at `forget`")):
        g.forget()


def test_partition_is_recomputable_from_the_evidence() -> None:
    g = IdentityGraph(KEY)
    for ids in ({"cookie": "t", "user_id": "A"}, {"cookie": "t", "user_id": "B"}, {"user_id": "B", "email": "b@x.io"},
                {"email": "b@x.io", "cookie": "k"}, {"email": "null", "cookie": "k"}):
        g.link_one(ids)
    assert g.partition_from_evidence() == g.partition()


# ---------------------------------------------------------------- bulk, persistence, memory


def test_keys_many_and_bulk_resolve() -> None:
    g = IdentityGraph(KEY)
    emails = g.keys_many("email", ["a@x.io", " A@X.IO", "null"])
    assert emails[0, 0] == emails[0, 1] and int(emails[1, 2]) & BLOCKED_FLAG
    cookies = g.keys_many("cookie", ["c1", "c2", "c3"])
    keys = np.empty((2, 6), np.uint64)
    keys[:, 0::2], keys[:, 1::2] = emails, cookies
    types = np.array([g.type_code("email"), g.type_code("cookie")] * 3, np.int8)
    rows = g.link_many(keys, types, np.array([0, 2, 4, 6]), times=T0, sources="crm")
    assert rows[0] == rows[1] != rows[2]
    assert g.resolve_keys(cookies).tolist() == [rows[0], rows[0], rows[2]]
    assert {e["source"] for e in g.evidence_of(int(rows[0]))} == {"crm"}
    with pytest.raises(SchemaError, match=full("Expected an email address, got 'x' - at `$.ids.email` (value 1)")):
        g.keys_many("email", ["a@x.io", "x"])


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    g = IdentityGraph(KEY, capacity=4)
    for i in range(50):
        g.link_one({"cookie": f"c{i}", "email": f"p{i // 3}@x.io"}, time=T0 + i, source="web")
    g.unlink({"cookie": "c4"})
    g.forget({"email": "p7@x.io"})
    g.save(tmp_path / "g.npz")
    h = IdentityGraph.load(KEY, tmp_path / "g.npz")
    assert h.partition() == g.partition() and h.metrics() == g.metrics()
    for ids in ({"cookie": "c9", "email": "p3@x.io"}, {"email": "p7@x.io"}, {"cookie": "c4", "email": "p1@x.io"}):
        assert h.link_one(ids).row == g.link_one(ids).row
        assert h.resolve_one(ids) == g.resolve_one(ids)
    for name, a in g.to_arrays().items():
        assert np.array_equal(a, h.to_arrays()[name]), name
    with pytest.raises(ConfigError, match=full("expected `nodes` of dtype " + str(g.nodes_.dtype) + ", got int64")):
        IdentityGraph.from_arrays(KEY, {**g.to_arrays(), "nodes": np.zeros(3, np.int64)})


def test_memory_report_per_identifier() -> None:
    g = IdentityGraph(KEY, capacity=10_000)
    k = np.random.default_rng(0).integers(0, 2**64, size=10_000, dtype=np.uint64)
    g.link_many(k, np.zeros(10_000, np.int8), np.arange(0, 10_001, 2))
    mem = g.memory()
    assert mem["identifiers"] == 10_000
    assert mem["core_bytes_per_identifier_min"] <= mem["core_bytes_per_identifier"] <= 48


# ---------------------------------------------------------------- configuration errors


@pytest.mark.parametrize(
    ("identity", "msg"),
    [
        ({"identifiers": [{"name": "x", "unique": True, "limit": 3}]},
         "expected `limit` 0 or 1 for a `unique` type, got 3 (identifier type 'x')"),
        ({"identifiers": [{"name": "x", "provider_rules": True}]},
         "expected `provider_rules` only on an email type, got normaliser 'id' (identifier type 'x')"),
        ({"identifiers": [{"name": "email", "blocked_patterns": ["("]}]},
         "expected a regular expression, got '(' (missing ), unterminated subpattern at position 0) (identifier type 'email')"),
        ({"identifiers": [{"name": "x"}, {"name": "x"}]}, "expected unique identifier names, got ['x', 'x']"),
        ({"default_phone_region": "+1"},
         "expected an ISO 3166-1 region code such as 'US' or 'IT', got '+1' for `default_phone_region` (a calling "
         "code is no longer accepted: one code can cover several regions with different numbering plans, 1 is US, "
         "CA and 23 more; write the region)"),
        ({"default_phone_region": "39"},
         "expected an ISO 3166-1 region code such as 'US' or 'IT', got '39' for `default_phone_region` (a calling "
         "code is no longer accepted"),
        ({"default_phone_region": "it"},
         "expected an ISO 3166-1 region code such as 'US' or 'IT', got 'it' for `default_phone_region` - at "
         "`$.identity`"),
        ({"default_phone_region": "ZZ"},
         "expected an ISO 3166-1 region code such as 'US' or 'IT', got 'ZZ' for `default_phone_region` - at "
         "`$.identity`"),
    ],
)
def test_identity_config_errors(identity: dict[str, object], msg: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(msg)):
        load_config_dict({"identity": {"hash_key": "ab" * 16, **identity}})
