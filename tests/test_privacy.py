"""Privacy on the engine: erasure that sticks (events, batch loads, crash recovery), explicit
consent to come back, access export, and unmerge with the documented profile-state rule."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pytest

from decisioner import Engine
from decisioner.catalog import Catalog
from decisioner.config import load_config_dict
from decisioner.consent.store import CHANNEL, PURPOSE
from decisioner.errors import NotReadyError, SchemaError
from decisioner.journal import ForgetOp, decode_record, read_records

T0 = 1_700_000_000_000
KEY = "5e" * 16


def make_engine(**identity: Any) -> Engine:
    cfg = load_config_dict({
        "identity": {"hash_key": KEY, **identity},
        "placements": [{"name": "home", "kind": "recommendation", "slots": 2, "policy": {"kind": "greedy"}}],
    })
    cat = Catalog([{"id": f"{c}-{j}", "category": c, "brand": "b", "colour": "red", "price": 10.0 + j}
                   for c in ("shoes", "bags", "hats") for j in range(4)])
    return Engine(cfg, cat, seed=3)


def view(ids: dict[str, str], item: str, t: int, **kw: Any) -> dict[str, Any]:
    return {"type": "view", "time": t, "ids": ids, "item": item, **kw}


def full(msg: str) -> str:
    return "^" + re.escape(msg) + "$"


# ---------------------------------------------------------------- erasure


def test_forget_a_person_wipes_the_profile_and_sticks() -> None:
    eng = make_engine()
    ids = {"email": "ada@example.com", "cookie": "c1"}
    row = eng.track(view(ids, "shoes-1", T0))
    eng.track(view({"cookie": "c1"}, "shoes-2", T0 + 1))
    assert eng.interests({"cookie": "c1"}, now=T0 + 2)
    out = eng.forget(row=row)
    assert out["erased"] == [row] and out["tombstones"] == 2
    assert eng.profile_row({"cookie": "c1"}) == -1 and eng.profiles.events_[row] == 0
    # the next event with the same identifiers does not bring the person back ...
    r2 = eng.track(view({"email": "ADA@example.com", "cookie": "c-new"}, "bags-1", T0 + 3))
    assert eng.profile_row({"email": "ada@example.com"}) == -1 and eng.profile_row({"cookie": "c-new"}) == -1
    assert not eng.consent.allows(r2, PURPOSE["personalization"], CHANNEL["web"])  # the scratch row: not profiled
    d = eng.decide(view({"cookie": "c1"}, "bags-1", T0 + 4), placement="home")
    assert not d.personalized and eng.identity.metrics()["suppressed_events"] == 2
    # ... nor does a batch load of the same identifier
    keys = eng.identity.keys_many("email", ["ada@example.com"])
    rows = eng.identity.link_many(keys, np.array([eng.identity.type_code("email")], np.int8), np.array([0, 1]))
    assert rows.tolist() == [-1]
    # explicit consent starts a new, empty person
    r3 = eng.track(view(ids, "hats-1", T0 + 5, consent={"personalization": True}))
    assert eng.profile_row({"email": "ada@example.com"}) == r3 == eng.profile_row({"cookie": "c1"})
    assert eng.profiles.events_[r3] == 1


def test_forget_one_identifier_keeps_the_person() -> None:
    eng = make_engine()
    row = eng.track(view({"user_id": "u1", "cookie": "c1"}, "shoes-1", T0))
    eng.track(view({"user_id": "u1", "cookie": "c2"}, "shoes-2", T0 + 1))
    out = eng.forget({"cookie": "c1"})
    assert out["row"] == row and out["erased"] == [] and out["tombstones"] == 1
    assert eng.profile_row({"cookie": "c2"}) == row and eng.profile_row({"cookie": "c1"}) == -1
    assert eng.profiles.events_[row] == 2  # the person's state stays with the person


def test_forget_errors() -> None:
    eng = make_engine()
    with pytest.raises(SchemaError, match=full("Expected either `ids` or `row`, got both - at `forget`")):
        eng.forget({"cookie": "c"}, row=0)
    with pytest.raises(NotReadyError, match=re.escape("expected a decisioner log record, got an undecodable one")):
        decode_record(msgspec.msgpack.encode([0, ["x", [1], [0]]]))


def test_erasure_survives_crash_recovery(tmp_path: Path) -> None:
    """The log holds the erasure by key (never the raw value) and replays it in order."""
    log = tmp_path / "events.log"
    live = make_engine()
    live.attach_log(log)
    row = live.track(view({"email": "ada@example.com", "cookie": "c1"}, "shoes-1", T0))
    live.forget(row=row)
    live.track(view({"email": "ada@example.com"}, "shoes-2", T0 + 1))
    live.track(view({"user_id": "u", "cookie": "c9"}, "shoes-3", T0 + 2))
    live.track(view({"user_id": "u", "cookie": "c8"}, "shoes-3", T0 + 3))
    live.unlink({"cookie": "c9"})
    live.split(live.profile_row({"user_id": "u"}))
    live.detach_log()
    forget = [r.op for r in read_records(log) if isinstance(r.op, ForgetOp)]
    assert len(forget) == 1 and len(forget[0].keys) == 2 and b"ada" not in log.read_bytes()
    recovered = make_engine()
    recovered.attach_log(log)
    assert recovered.profile_row({"email": "ada@example.com"}) == -1
    assert recovered.identity.metrics() == live.identity.metrics()
    assert recovered.ops_ == live.ops_


# ---------------------------------------------------------------- access export


def test_export_lists_everything_held() -> None:
    eng = make_engine()
    ids = {"email": "ada@example.com", "cookie": "c1"}
    eng.track(view(ids, "shoes-1", T0, channel="web"))
    eng.track({"type": "purchase", "time": T0 + 1, "ids": {"cookie": "c1"}, "item": "shoes-2", "value": 20.0})
    d = eng.decide(view({"cookie": "c1"}, "bags-1", T0 + 2), placement="home")
    out = eng.export({"cookie": "c1"})
    assert out["found"] and out["profile"] == d.profile
    assert sorted(i["type"] for i in out["identifiers"]) == ["cookie", "email"]
    assert all(re.fullmatch(r"[0-9a-f]{16}", i["key"]) for i in out["identifiers"])  # keys, never raw values
    assert "ada@example.com" not in repr(out)
    assert [(e["time"], e["source"], e["linked"]) for e in out["evidence"]] == [(T0, "web", True)]
    assert out["purchased"] == ["shoes-2"] and out["events"] == 3
    assert all(all(on.values()) for on in out["consent"].values()) and out["consent_history"] == []
    assert {x["decision_id"] for x in out["decisions"]} == {d.decision_id}
    assert (out["interests"] and out["interests"][0][0].startswith("category=")) or out["interests"]
    eng.forget(row=out["profile"])
    gone = eng.export(ids)
    assert gone == {"found": False, "erased": {"email": True, "cookie": True}}


# ---------------------------------------------------------------- unmerge


def test_unlink_and_split_follow_the_profile_state_rule() -> None:
    """The state stays with the largest piece; split-off pieces start empty, with the
    original's consent."""
    eng = make_engine()
    ids = {"user_id": "u1", "cookie": "c1"}
    row = eng.track(view(ids, "shoes-1", T0))
    eng.track(view({"user_id": "u1", "email": "u1@x.io"}, "shoes-2", T0 + 1))
    eng.track(view({"cookie": "c1", "device": "d1"}, "shoes-3", T0 + 2, consent={"marketing": False}))
    events = int(eng.profiles.events_[row])
    out = eng.unlink({"cookie": "c1"})  # the bridge to the device
    assert out["row"] == row and len(out["new_rows"]) == 2
    assert eng.profile_row({"user_id": "u1"}) == row and int(eng.profiles.events_[row]) == events
    for r in out["new_rows"]:
        assert eng.profiles.events_[r] == 0 and eng.consent.allow_[r] == eng.consent.allow_[row]
    eng.track(view(ids, "shoes-1", T0 + 3))  # do-not-link: c1 stays apart
    assert eng.profile_row({"cookie": "c1"}) != row
    # split: two emails glued by one phone go apart
    eng.track(view({"email": "a@x.io", "phone": "+12025550111"}, "bags-1", T0 + 4))
    r = eng.track(view({"email": "b@x.io", "phone": "+12025550111"}, "bags-2", T0 + 5))
    res = eng.split(r, apart=[{"email": "a@x.io"}, {"email": "b@x.io"}])
    assert len(res["new_rows"]) == 1
    assert eng.profile_row({"email": "a@x.io"}) != eng.profile_row({"email": "b@x.io"})


def test_merge_listeners_still_fold_profiles() -> None:
    eng = make_engine()
    a = eng.track(view({"cookie": "c1"}, "shoes-1", T0))
    b = eng.track(view({"email": "e@x.io"}, "shoes-2", T0 + 1))
    row = eng.track(view({"cookie": "c1", "email": "e@x.io"}, "shoes-3", T0 + 2))
    assert row in (a, b) and int(eng.profiles.events_[row]) == 3
