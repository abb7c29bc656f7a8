"""Identity: normalisation, keyed keys, union-find merges with the survivor-row rule."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import numpy as np
import pytest

from decisioner.config import IdentitySpec
from decisioner.errors import ConfigError, SchemaError
from decisioner.hashing import hash_identifier
from decisioner.identity import IdentityGraph, LinkResult, normalise
from decisioner.identity.keys import UNREGISTERED
from decisioner.identity.rules import identifier_key

KEY = bytes(range(16))
PHONE_ERR = "Expected a valid phone number (with +country code, or national in region 'US')"



# ---------------------------------------------------------------- normalise

@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("ada@example.com", "ada@example.com"),
        ("  Ada.Lovelace@Example.COM ", "ada.lovelace@example.com"),
        ("ADA@EXAMPLE.COM\u00a0", "ada@example.com"),  # str.strip() removes the no-break space
        ("Zo\u00cb@Ex\u00c4mple.com", "zo\u00eb@ex\u00e4mple.com"),
    ],
)
def test_normalise_email(value: str, expected: str) -> None:
    assert normalise("email", value) == expected


@pytest.mark.parametrize(
    ("value", "region", "expected"),
    [
        ("(202) 555-0123", "US", "+12025550123"),
        ("202.555.0123", "US", "+12025550123"),
        ("202 555 0123", "US", "+12025550123"),
        ("+1 202 555 0123", "US", "+12025550123"),
        ("1-202-555-0123", "US", "+12025550123"),  # the US trunk prefix 1
        ("(202) 555-0123 ext. 12", "US", "+12025550123"),  # an extension is the same line
        ("+44 20 7946 0958", "US", "+442079460958"),
        ("011 44 20 7946 0958", "US", "+442079460958"),  # the US international prefix
        ("0044 20 7946 0958", "IT", "+442079460958"),  # the Italian one
        ("020 7946 0958", "GB", "+442079460958"),  # the UK trunk 0 is dropped
        ("06 1234 5678", "IT", "+390612345678"),  # the Italian leading 0 is kept
        ("+39 06 1234 5678", "US", "+390612345678"),
        ("312 345 6789", "IT", "+393123456789"),  # an Italian mobile number
        ("+49 30 123456", "GB", "+4930123456"),
    ],
)
def test_normalise_phone_to_e164(value: str, region: str, expected: str) -> None:
    assert normalise("phone", value, default_region=region) == expected


def test_same_phone_in_every_format_is_one_key() -> None:
    forms = ["020 7946 0958", "+44 20 7946 0958", "0044 (20) 7946-0958", "+44-20-7946-0958"]
    keys = {hash_identifier(KEY, "phone", normalise("phone", f, default_region="IT" if f.startswith("00") else "GB"))
            for f in forms}
    assert len(keys) == 1


def test_an_italian_number_nationally_and_internationally_is_one_person() -> None:
    """Issue 11: ``06 1234 5678`` with region IT and ``+39 06 1234 5678`` used to get two keys."""
    g = IdentityGraph(KEY, spec=IdentitySpec(default_phone_region="IT"))
    national, _ = g.keys_of({"phone": "06 1234 5678"})
    international, _ = g.keys_of({"phone": "+39 06 1234 5678"})
    assert national.tolist() == international.tolist()
    assert int(national[0, 0]) == hash_identifier(KEY, "phone", "+390612345678")
    a = g.link_one({"phone": "06 1234 5678", "cookie": "c1"})
    assert g.link_one({"phone": "+39 06 1234 5678", "cookie": "c2"}).row == a.row


def test_invalid_phone_number_changes_nothing() -> None:
    g = IdentityGraph(KEY, spec=IdentitySpec(default_phone_region="IT"))
    g.link_one({"cookie": "c1"})
    before = {name: a.copy() for name, a in g.to_arrays().items()}
    msg = "Expected a valid phone number (with +country code, or national in region 'IT'), got '06 12' - at `$.ids.phone`"
    with pytest.raises(SchemaError, match=f"^{re.escape(msg)}$"):
        g.link_one({"loyalty": "L-1", "phone": "06 12", "cookie": "c1"})
    assert g.rules.code_of("loyalty") is None
    after = g.to_arrays()
    assert all(np.array_equal(a, after[name]) for name, a in before.items())


def test_a_phone_without_phonenumbers_installed_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "phonenumbers", None)  # `import phonenumbers` raises ImportError
    msg = (
        "expected the `phonenumbers` package to normalise phone numbers, got it not installed - at `$.ids.mobile` "
        '(pip install "decisioner[phone]")'
    )
    with pytest.raises(ConfigError, match=f"^{re.escape(msg)}$"):
        normalise("mobile", "+39 06 1234 5678", kind="phone")
    assert normalise("email", "Ada@X.io") == "ada@x.io"  # nothing else needs it


def test_import_decisioner_does_not_import_phonenumbers() -> None:
    code = "import sys, decisioner, decisioner.identity; sys.exit('phonenumbers' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], env={**os.environ}, check=False).returncode == 0


def test_default_region_of_a_graph_is_checked() -> None:
    msg = "expected an ISO 3166-1 region code such as 'US' or 'IT', got '44' - at `default_region`"
    with pytest.raises(ConfigError, match=f"^{re.escape(msg)}$"):
        IdentityGraph(KEY, default_region="44")


def test_normalise_other_types_trim_only() -> None:
    assert normalise("cookie", "  AbC-1 ") == "AbC-1"
    assert normalise("user_id", "U 42") == "U 42"
    assert normalise("loyalty", "\u30e6\u30fc\u30b6\u30fc") == "\u30e6\u30fc\u30b6\u30fc"


@pytest.mark.parametrize(
    ("id_type", "value", "msg"),
    [
        ("cookie", "c\x00-1", "Expected an identifier without control characters, got 'c\\x00-1' - at `$.ids.cookie`"),
        ("email", "ada@example.com\n", "Expected an identifier without control characters, got 'ada@example.com\\n' - at `$.ids.email`"),
        ("user_id", "a\x7fb", "Expected an identifier without control characters, got 'a\\x7fb' - at `$.ids.user_id`"),
        ("cookie", "   ", "Expected a non-empty identifier, got '   ' - at `$.ids.cookie`"),
        ("email", "ada.example.com", "Expected an email address, got 'ada.example.com' - at `$.ids.email`"),
        ("email", "a@b@c", "Expected an email address, got 'a@b@c' - at `$.ids.email`"),
        ("email", " @example.com", "Expected an email address, got ' @example.com' - at `$.ids.email`"),
        ("email", "ada@", "Expected an email address, got 'ada@' - at `$.ids.email`"),
        ("phone", "12345", f"{PHONE_ERR}, got '12345' - at `$.ids.phone`"),
        ("phone", "+1234567890123456", f"{PHONE_ERR}, got '+1234567890123456' - at `$.ids.phone`"),
        ("phone", "call me", f"{PHONE_ERR}, got 'call me' - at `$.ids.phone`"),
        ("phone", "+1 555 123 4567", f"{PHONE_ERR}, got '+1 555 123 4567' - at `$.ids.phone`"),  # no area 555
        ("phone", "+39 06", f"{PHONE_ERR}, got '+39 06' - at `$.ids.phone`"),
    ],
)
def test_normalise_errors(id_type: str, value: str, msg: str) -> None:
    with pytest.raises(SchemaError, match=f"^{re.escape(msg)}$"):
        normalise(id_type, value)


# ---------------------------------------------------------------- graph basics

def test_short_key_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="^" + re.escape("expected a secret of 16 to 64 bytes, got 3 - at `key`") + "$"):
        IdentityGraph(b"abc")


def test_keys_are_keyed_hashes_of_normalised_values() -> None:
    g = IdentityGraph(KEY)
    keys, types = g.keys_of({"email": " ADA@example.com", "cookie": "c1"})
    assert keys.dtype == np.uint64 and keys.shape == (2, 2) and types.dtype == np.int8
    assert keys[0].tolist() == [hash_identifier(KEY, "email", "ada@example.com"), hash_identifier(KEY, "cookie", "c1")]
    assert keys[1].tolist() == [identifier_key(KEY, "email", "ada@example.com")[1], identifier_key(KEY, "cookie", "c1")[1]]
    assert types.tolist() == [g.types.index("email"), g.types.index("cookie")]


def test_link_and_resolve() -> None:
    g = IdentityGraph(KEY)
    a = g.link_one({"cookie": "c1"})
    assert isinstance(a, LinkResult) and a.row == 0 and a.new and a.absorbed.tolist() == []
    again = g.link_one({"cookie": " c1 "})
    assert again.row == 0 and not again.new
    b = g.link_one({"cookie": "c2"})
    assert b.row == 1 and b.new
    n_nodes = g.n_nodes
    assert g.resolve_one({"cookie": "nobody"}) == -1
    assert g.resolve_one({"cookie": "nobody", "cookie2": "c2"}) == -1
    assert g.resolve_one({"email": "x@y.z", "cookie": "c2"}) == 1  # first *known* identifier
    assert g.n_nodes == n_nodes  # resolving changes nothing
    assert g.resolve_keys(np.array([1, 2, 3], np.uint64)).tolist() == [-1, -1, -1]


def test_empty_ids_is_a_schema_error() -> None:
    g = IdentityGraph(KEY)
    with pytest.raises(SchemaError, match="^" + re.escape("Expected at least one identifier, got none - at `$.ids`") + "$"):
        g.link_one({})
    assert g.n_nodes == 0 and g.n_rows == 0


def test_unknown_identifier_types_get_new_codes_when_registered() -> None:
    g = IdentityGraph(KEY, types=("cookie",))
    ids = {"loyalty": "L-1", "cookie": "c"}
    _, types = g.keys_of(ids)  # reading keys registers nothing
    assert types.tolist() == [UNREGISTERED, 0] and g.types == ("cookie",)
    assert g.register_types(ids, types).tolist() == [1, 0] and g.types == ("cookie", "loyalty")
    assert g.link_one({"loyalty": "L-2", "points": "9"}).new and g.types == ("cookie", "loyalty", "points")


def test_type_cap_is_configuration_and_refuses_before_registering() -> None:
    g = IdentityGraph(KEY, types=("cookie",), spec=IdentitySpec(types=("cookie",), identifiers=(), max_types=3))
    g.link_one({"a": "1", "cookie": "c"})
    msg = "Expected at most 3 identifier types (`identity.max_types`; 2 registered), got 2 new, such as 'b' - at `$.ids`"
    with pytest.raises(SchemaError, match="^" + re.escape(msg) + "$"):
        g.keys_of({"b": "1", "c": "2"})  # refused at validation: it could never fit
    _, types = g.keys_of({"b": "1"})
    g.link_one({"d": "1"})  # another event took the last place meanwhile
    with pytest.raises(SchemaError, match=re.escape("got 1 new, such as 'b'")):
        g.register_types({"b": "1"}, types)
    assert g.types == ("cookie", "a", "d")


def test_rejected_identifiers_register_no_new_type() -> None:
    # regression: a new type listed before a malformed identifier was registered anyway
    g = IdentityGraph(KEY)
    types_before = g.types
    with pytest.raises(SchemaError, match="^" + re.escape("Expected an email address, got 'nope' - at `$.ids.email`") + "$"):
        g.link_one({"loyalty": "L-1", "email": "nope"})
    assert g.types == types_before and g.n_nodes == 0


# ---------------------------------------------------------------- merges

def test_anonymous_cookie_merges_into_known_person_at_login() -> None:
    g = IdentityGraph(KEY)
    calls: list[tuple[int, list[int]]] = []
    g.add_listener(lambda row, absorbed: calls.append((row, absorbed.tolist())))
    known = g.link_one({"user_id": "u-1", "email": "ada@example.com"}).row  # row 0, 2 nodes
    anon = g.link_one({"cookie": "c-9"}).row  # row 1, 1 node
    assert (known, anon) == (0, 1)
    login = g.link_one({"cookie": "c-9", "email": "Ada@Example.com"})
    assert login.row == known and login.absorbed.tolist() == [anon] and not login.new
    assert calls == [(known, [anon])]
    for ids in ({"cookie": "c-9"}, {"email": "ada@example.com"}, {"user_id": "u-1"}):
        assert g.resolve_one(ids) == known


def test_survivor_is_the_larger_component_even_with_a_higher_row() -> None:
    g = IdentityGraph(KEY)
    small = g.link_one({"cookie": "a"}).row  # row 0, size 1
    big = g.link_one({"cookie": "b", "email": "b@x.io", "device": "d"}).row  # row 1, size 3
    res = g.link_one({"cookie": "a", "device": "d"})
    assert res.row == big and res.absorbed.tolist() == [small]
    assert g.resolve_one({"cookie": "a"}) == big


@pytest.mark.parametrize("cookie_first", [True, False])
def test_survivor_tie_goes_to_the_lower_row(cookie_first: bool) -> None:
    g = IdentityGraph(KEY)
    assert g.link_one({"cookie": "a"}).row == 0
    assert g.link_one({"email": "b@x.io"}).row == 1
    ids = {"cookie": "a", "email": "b@x.io"}
    res = g.link_one(ids if cookie_first else dict(reversed(list(ids.items()))))
    assert res.row == 0 and res.absorbed.tolist() == [1]


def test_equal_sizes_tie_to_lower_row_not_to_first_seen() -> None:
    g = IdentityGraph(KEY)
    g.link_one({"cookie": "a"})  # row 0
    g.link_one({"cookie": "b"})  # row 1
    assert g.link_one({"cookie": "b", "email": "z@x.io"}).row == 1  # b's component: 2 nodes
    assert g.link_one({"cookie": "a", "device": "d"}).row == 0  # a's component: 2 nodes
    res = g.link_one({"email": "z@x.io", "device": "d"})  # row 1's component is seen first
    assert res.row == 0 and res.absorbed.tolist() == [1]
    assert g.resolve_one({"cookie": "b"}) == 0


def test_absorbed_rows_are_recycled_after_release() -> None:
    g = IdentityGraph(KEY)
    g.link_one({"cookie": "a"})
    g.link_one({"cookie": "b"})
    res = g.link_one({"cookie": "a", "email": "a@x.io"})
    res = g.link_one({"email": "a@x.io", "cookie": "b"})
    assert res.row == 0 and res.absorbed.tolist() == [1]
    assert g.n_rows == 2
    g.release_rows(res.absorbed)
    fresh = g.link_one({"cookie": "c"})
    assert fresh.row == 1 and fresh.new and g.n_rows == 2  # reused, not handed out anew
    nxt = g.link_one({"cookie": "d"})
    assert nxt.row == 2 and nxt.new and g.n_rows == 3


def test_release_rows_grows_the_free_stack() -> None:
    g = IdentityGraph(KEY)
    rows = np.arange(200, dtype=np.int32)
    g.release_rows(rows)
    assert g.counts_[2] == 200 and g.free_rows_[:200].tolist() == rows.tolist()
    # the stack pops the last released row first
    assert g.link_one({"cookie": "x"}).row == 199


def test_merge_listener_gets_every_absorbed_row() -> None:
    g = IdentityGraph(KEY)
    seen: list[tuple[int, list[int]]] = []
    g.add_listener(lambda row, absorbed: seen.append((row, absorbed.tolist())))
    for c in "abc":
        g.link_one({"cookie": c})  # rows 0, 1, 2
    g.link_one({"cookie": "c", "user_id": "u"})
    g.link_one({"user_id": "u", "email": "e@x.io"})
    assert seen == []  # new identifiers joining a component are no merge of rows
    res = g.link_one({"cookie": "a", "email": "e@x.io"})
    assert res.row == 2 and res.absorbed.tolist() == [0]  # c's component (3 nodes) survives
    assert seen == [(2, [0])]
    # three components in one event: all of size 1, the lowest row survives
    rows = [g.link_one(ids).row for ids in ({"cookie": "d"}, {"device": "e"}, {"crm_id": "f"})]
    assert rows == [3, 4, 5]
    res = g.link_one({"device": "e", "crm_id": "f", "cookie": "d"})
    assert res.row == 3 and sorted(res.absorbed.tolist()) == [4, 5]
    assert seen[-1][0] == 3 and sorted(seen[-1][1]) == [4, 5] and len(seen) == 2


def test_growth_past_initial_capacity_keeps_every_lookup() -> None:
    g = IdentityGraph(KEY, capacity=4)
    n = 3000
    rows = [g.link_one({"cookie": f"c{i}"}).row for i in range(n)]
    assert rows == list(range(n))
    # link every cookie i to an email shared by pairs (2k, 2k+1)
    for i in range(n):
        g.link_one({"cookie": f"c{i}", "email": f"p{i // 2}@x.io"})
    assert g.nodes_.shape[0] >= g.n_nodes == n + n // 2
    assert 4 * int(g.meta_[3 + 8]) <= 3 * g.tab_.shape[0]  # the key table stays at most 3/4 full
    for i in range(n):
        expected = 2 * (i // 2)  # equal sizes at the merge: the lower row survives
        assert g.resolve_one({"cookie": f"c{i}"}) == expected
        assert g.resolve_one({"email": f"p{i // 2}@x.io"}) == expected
    comp = g.component_rows()
    assert comp.shape == (g.n_nodes,) and set(comp.tolist()) == set(range(0, n, 2))
    assert g.nbytes() > 0


def test_zero_capacity_grows() -> None:
    # regression: capacity=0 made growth by doubling loop forever
    g = IdentityGraph(KEY, capacity=0)
    assert [g.link_one({"cookie": f"c{i}"}).row for i in range(40)] == list(range(40))


# ---------------------------------------------------------------- bulk

def _random_groups(seed: int, n_groups: int, n_ids: int) -> list[dict[str, str]]:
    rng = np.random.default_rng(seed)
    groups = []
    for _ in range(n_groups):
        m = int(rng.integers(1, 4))
        picks = rng.choice(n_ids, size=m, replace=False)
        # the type cycles with the value, so one value always has the same type
        groups.append({("cookie", "email", "device")[int(p) % 3]: f"v{int(p)}@x.io" for p in picks})
    return groups


def _pack(g: IdentityGraph, groups: list[dict[str, str]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    keys, types, offsets = [], [], [0]
    for ids in groups:
        k, t = g.keys_of(ids)
        keys.append(k)
        types.append(t)
        offsets.append(offsets[-1] + k.shape[1])
    return np.concatenate(keys, axis=1), np.concatenate(types), np.array(offsets, np.int64)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("rules", [True, False])
def test_link_many_equals_sequential_link_one(seed: int, rules: bool) -> None:
    groups = _random_groups(seed, 400, 300)
    spec = IdentitySpec(rules=rules)
    seq = IdentityGraph(KEY, capacity=8, spec=spec)
    bulk = IdentityGraph(KEY, capacity=8, spec=spec)
    seq_abs: list[int] = []
    bulk_abs: list[int] = []
    seq.add_listener(lambda row, absorbed: seq_abs.extend(absorbed.tolist()))
    bulk.add_listener(lambda row, absorbed: bulk_abs.extend(absorbed.tolist()))
    for ids in groups:
        seq.link_one(ids)
    keys, types, offsets = _pack(bulk, groups)
    out = bulk.link_many(keys, types, offsets)
    assert out.dtype == np.int32 and out.shape == (len(groups),)
    # a group resolves to its anchor's profile: the highest-priority identifier, first on ties
    # (with rules on, a refused identifier of the group can sit in another profile)
    prio = {s.name: s.priority for s in spec.identifiers} if rules else {}
    anchors = [max(ids.items(), key=lambda kv: (prio.get(kv[0], 0), -list(ids).index(kv[0]))) for ids in groups]
    expected = np.array([seq.resolve_one(dict([a])) for a in anchors], np.int32)
    assert np.array_equal(out, expected)
    assert np.array_equal(bulk.resolve_keys(keys), seq.resolve_keys(keys))
    assert np.array_equal(bulk.counts_, seq.counts_)
    assert len(seq_abs) > 20  # the batch really merged components
    assert sorted(bulk_abs) == sorted(seq_abs)
    # listeners saw surviving rows only
    live = set(bulk.resolve_keys(keys).tolist())
    assert not live & set(bulk_abs)


def test_link_many_rejects_empty_groups_and_bad_offsets() -> None:
    # regression: an empty group wrote row[-1] (the last node slot) and handed out a phantom row
    g = IdentityGraph(KEY)
    keys = np.array([11, 12], np.uint64)
    types = np.zeros(2, np.int8)
    with pytest.raises(SchemaError, match="^" + re.escape("Expected at least one identifier per group, got none in group 1 - at `offsets`") + "$"):
        g.link_many(keys, types, np.array([0, 1, 1, 2]))
    with pytest.raises(SchemaError, match="^" + re.escape("Expected `offsets` from 0 to 2, got 0 to 3 - at `offsets`") + "$"):
        g.link_many(keys, types, np.array([0, 1, 3]))
    assert g.n_nodes == 0 and g.n_rows == 0 and g.metrics()["events"] == 0
    assert g.link_many(keys, types, np.array([0], np.int64)).shape == (0,)


def test_phone_regions_are_regions_phonenumbers_knows() -> None:
    import phonenumbers

    from decisioner.config import PHONE_REGIONS

    assert PHONE_REGIONS <= phonenumbers.SUPPORTED_REGIONS and {"US", "IT", "GB", "DE", "JP"} <= PHONE_REGIONS
    for region in sorted(PHONE_REGIONS):  # every accepted region reads a national number by its own plan
        example = phonenumbers.example_number(region)
        if example is not None:
            national = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.NATIONAL)
            assert normalise("phone", national, default_region=region) == phonenumbers.format_number(
                example, phonenumbers.PhoneNumberFormat.E164
            )


def test_warm_up_phones_loads_the_package_or_says_it_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    from decisioner.identity.normalise import warm_up_phones

    assert warm_up_phones("IT") is True
    monkeypatch.setitem(sys.modules, "phonenumbers", None)
    assert warm_up_phones() is False  # warm_up() goes on without it
