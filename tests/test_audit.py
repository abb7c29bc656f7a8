"""Privacy operations, complete: the audit log (who asked, when, what was removed; no raw
identifier), retention of idle profiles, erasure across every store (consent history too) that a
replay or a batch load does not undo, and exports that hold both sides of a merge and nothing of
anyone else."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from decisioner import Engine
from decisioner.audit import actor
from decisioner.catalog import Catalog
from decisioner.config import load_config_dict
from decisioner.errors import SchemaError

T0 = 1_700_000_000_000
DAY = 86_400_000
KEY = "a7" * 16
RAW = ("ada@example.com", "bob@example.com", "c-ada", "c-bob", "+14155550100")


def make_engine(**profiles: Any) -> Engine:
    cfg = load_config_dict({
        "identity": {"hash_key": KEY},
        "profiles": profiles,
        "placements": [{"name": "home", "kind": "recommendation", "slots": 2, "policy": {"kind": "greedy"}}],
    })
    cat = Catalog([{"id": f"{c}-{j}", "category": c, "price": 10.0 + j} for c in ("shoes", "bags") for j in range(4)])
    return Engine(cfg, cat, seed=2)


def view(ids: dict[str, str], t: int, item: str = "shoes-1", **kw: Any) -> dict[str, Any]:
    return {"type": "view", "time": t, "ids": ids, "item": item, **kw}


def history(eng: Engine) -> list[dict[str, Any]]:
    """Ada (cookie, then email), Bob; Ada refuses marketing by email."""
    eng.decide(view({"cookie": "c-ada"}, T0), placement="home")
    eng.decide(view({"cookie": "c-ada", "email": "ada@example.com"}, T0 + 1, consent={"marketing.email": False}),
               placement="home")
    eng.decide(view({"cookie": "c-bob", "email": "bob@example.com"}, T0 + 2, item="bags-1"), placement="home")
    return []


def test_every_privacy_operation_is_audited_without_identifiers() -> None:
    eng = make_engine()
    history(eng)
    ada = eng.person_id({"email": "ada@example.com"})
    eng.export({"email": "ada@example.com"}, actor="ticket-17")
    out = eng.forget(row=eng.profile_row({"email": "ada@example.com"}), actor="dpo")  # the whole person
    eng.unlink({"cookie": "c-bob"}, actor="support")
    eng.expire(T0 + DAY, actor="retention-job")
    entries = eng.audit()
    assert [(e["seq"], e["op"], e["actor"]) for e in entries] == [
        (0, "export", "ticket-17"), (1, "forget", "dpo"), (2, "unlink", "support"), (3, "expire", "retention-job")]
    assert entries[1]["persons"] == [ada] and out["audit"] == 1
    assert entries[1]["removed"] == {"profiles": 1, "people": 1, "decisions": 4, "consent_history": 1}
    assert out["removed"] == entries[1]["removed"]
    assert all(re.fullmatch(r"[0-9a-f]{16}", k) for e in entries for k in e["keys"])
    assert all(abs(e["at"] - entries[0]["at"]) < 600_000 for e in entries)  # wall clock of the requests
    text = json.dumps(entries)
    assert not any(raw in text for raw in RAW)
    assert eng.audit(person=ada) == entries[:2]


@pytest.mark.parametrize("bad", ["ada@example.com", "call +1 415 555 0100", "", 7, "x" * 129])
def test_an_actor_that_is_an_identifier_or_malformed_is_refused_and_changes_nothing(bad: Any) -> None:
    eng = make_engine()
    history(eng)
    before = eng.ops_
    with pytest.raises(SchemaError, match=r"^Expected `actor` to "):
        eng.forget({"email": "ada@example.com"}, actor=bad)
    with pytest.raises(SchemaError, match=r"^Expected `actor` to "):
        eng.export({"email": "ada@example.com"}, actor=bad)
    assert eng.ops_ == before and eng.audit() == [] and eng.person_id({"email": "ada@example.com"}) >= 0
    assert actor("crm-sync") == "crm-sync"


def test_the_audit_log_survives_a_snapshot_and_the_log(tmp_path: Path) -> None:
    eng = make_engine()
    eng.durable(tmp_path / "d")
    history(eng)
    eng.forget({"cookie": "c-bob"}, actor="dpo")
    eng.save(tmp_path / "d")
    eng.export({"email": "ada@example.com"}, actor="ticket-9")
    eng.detach_log()
    back = Engine.open(tmp_path / "d", hash_key=KEY)
    assert back.audit() == eng.audit() and len(back.audit()) == 2


def test_idle_profiles_are_erased_with_their_records_and_come_back_as_new() -> None:
    eng = make_engine(idle_retention_days=30)
    history(eng)
    eng.decide(view({"cookie": "c-bob"}, T0 + 20 * DAY), placement="home")  # Bob is active again
    ada = eng.person_id({"email": "ada@example.com"})
    out = eng.expire(T0 + 31 * DAY)
    assert out["retired"] == 1 and out["removed"]["people"] == 1 and out["removed"]["decisions"] == 4
    assert eng.profile_row({"cookie": "c-ada"}) == -1 and eng.profile_row({"cookie": "c-bob"}) >= 0
    assert eng.audit()[-1]["persons"] == [ada]
    # no tombstone: Ada may come back, as a new person with nothing of before
    d = eng.decide(view({"email": "ada@example.com"}, T0 + 32 * DAY), placement="home")
    assert d.person not in (-1, ada)
    back = eng.export({"email": "ada@example.com"})
    assert len(back["decisions"]) == 2 and back["consent_history"] == [] and back["merged_people"] == []


def test_erasure_sticks_through_a_replay_and_a_batch_load_and_a_newcomer_sees_nothing() -> None:
    events = [view({"cookie": "c-ada", "email": "ada@example.com"}, T0 + k, consent={"marketing": k % 2 == 0})
              for k in range(4)]
    eng = make_engine()
    for ev in events:
        eng.decide(ev, placement="home")
    eng.forget(row=eng.profile_row({"email": "ada@example.com"}))
    n_people = eng.people.next_
    for ev in events:  # the same events again: the person is not re-created
        d = eng.decide(ev, placement="home")
        assert d.person == -1 and not d.personalized
    keys = eng.identity.keys_many("email", ["ada@example.com"])  # a batch load
    assert eng.identity.link_many(keys, np.array([eng.identity.type_code("email")], np.int8), np.array([0, 1])
                                  ).tolist() == [-1]
    assert eng.profile_row({"email": "ada@example.com"}) == -1 and eng.people.next_ == n_people
    assert eng.export({"email": "ada@example.com"})["found"] is False
    # a newcomer on the recycled row sees nothing of Ada
    eng.decide(view({"cookie": "c-new"}, T0 + 20, item="bags-2"), placement="home")
    new = eng.export({"cookie": "c-new"})
    assert len(new["decisions"]) == 2 and new["consent_history"] == []
    assert "category=shoes" not in [f for f, _ in new["interests"]] and new["purchased"] == []


def test_an_export_of_a_merged_person_holds_both_sides_and_nothing_of_anyone_else() -> None:
    eng = make_engine()
    history(eng)
    d_cookie = eng.decide(view({"cookie": "c-x"}, T0 + 5, consent={"analytics.app": False}), placement="home")
    d_email = eng.decide(view({"email": "x@example.com"}, T0 + 6, item="bags-2"), placement="home")
    eng.track({"type": "identify", "time": T0 + 7, "ids": {"cookie": "c-x", "email": "x@example.com"}})
    out = eng.export({"cookie": "c-x"})
    ids = {x["decision_id"] for x in out["decisions"]}
    assert ids == {d_cookie.decision_id, d_email.decision_id}
    assert {h["person"] for h in out["consent_history"]} <= {out["person"], *out["merged_people"]}
    assert len(out["merged_people"]) == 1 and sorted(i["type"] for i in out["identifiers"]) == ["cookie", "email"]
    others = {eng.person_id({"email": "ada@example.com"}), eng.person_id({"email": "bob@example.com"})}
    assert not others & {x["person"] for x in out["decisions"]}
    assert not others & {h["person"] for h in out["consent_history"]}
    ada_keys = {i["key"] for i in eng.export({"email": "ada@example.com"})["identifiers"]}
    assert not ada_keys & {i["key"] for i in out["identifiers"]}
    assert np.all([x["decision_id"] not in ids for x in eng.export({"email": "ada@example.com"})["decisions"]])
