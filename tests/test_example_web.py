"""The web example (examples/04_web_app.py) over HTTP on 127.0.0.1: uvicorn in a thread, httpx as
the client. Decisions equal the engine's own, errors carry the decisioner message with their
HTTP status and change nothing, agent context and feedback round-trip."""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import msgspec
import pytest

from decisioner.adapters.web import STATUS, JSONResponse, status_of
from decisioner.errors import LogLockedError, NotReadyError, SchemaError, UnknownDecisionError, UnknownItemError
from decisioner.schemas import Decision

EXAMPLE = Path(__file__).parent.parent / "examples" / "04_web_app.py"


@pytest.fixture(scope="module")
def web() -> ModuleType:
    spec = importlib.util.spec_from_file_location("web_app_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture
def served(web: ModuleType, small_world: str) -> Iterator[tuple[Any, httpx.Client]]:
    engine = web.build_engine(small_world)
    with web.serving(web.create_app(engine)) as base, httpx.Client(base_url=base, timeout=30) as http:
        yield engine, http


def _events(world: str, n: int) -> list[bytes]:
    return (Path(world) / "events.jsonl").read_bytes().splitlines()[:n]


def test_decisions_over_http_equal_the_engines(web: ModuleType, served: tuple[Any, httpx.Client], small_world: str) -> None:
    engine, http = served
    reference = web.build_engine(small_world)
    for line in _events(small_world, 400):
        if b'"type":"view"' in line:
            r = http.post("/decide", params={"placement": "home_recs"}, content=line)
            assert r.status_code == 200 and r.headers["content-type"] == "application/json"
            expected = reference.decide(line, placement="home_recs")
            got = msgspec.json.decode(r.content, type=Decision)
            assert got.slots == expected.slots and got.decision_id == expected.decision_id
            assert got.reasons == expected.reasons and got.person == expected.person
        else:
            r = http.post("/event", content=line)
            assert r.status_code == 200
            assert r.json() == {"person": reference.people.person_of(reference.track(line))}
    assert engine.seq_ == reference.seq_ > 0
    d = got
    r = http.post("/outcome", json={"decision_id": d.decision_id, "kind": "click", "time": d.time + 1,
                                    "content": d.slots[0].content})
    assert (r.status_code, r.json()) == (200, {"accepted": True})


@pytest.mark.parametrize(
    ("path", "params", "body", "status", "error", "message"),
    [
        ("/decide", {"placement": "nope"}, b'{"type":"view","time":1700000000000,"ids":{"cookie":"x"}}', 404,
         "UnknownPlacementError", "got 'nope' - at `placement`"),
        ("/decide", {}, b'{"type":"view","time":1700000000000,"ids":{"cookie":"x"}}', 422, "SchemaError",
         "Expected a `placement` query parameter, got none - at `placement`"),
        ("/decide", {"placement": "home_recs"}, b'{"type":"view","time":5,"ids":{"cookie":"x"}}', 422,
         "SchemaError", "at `$.time`"),
        ("/event", {}, b'{"type":"view","time":1700000000000,"ids":{"cookie":"x"},"item":"no-such-sku"}', 422,
         "UnknownItemError", "'no-such-sku'"),
        ("/event", {}, b"not json", 422, "SchemaError", "Invalid event"),
        ("/outcome", {}, b'{"decision_id":"d-999999","kind":"click","time":1700000000000}', 404,
         "UnknownDecisionError", "'d-999999'"),
    ],
)
def test_errors_answer_their_status_with_the_decisioner_message_and_change_nothing(
    served: tuple[Any, httpx.Client], path: str, params: dict[str, str], body: bytes, status: int, error: str,
    message: str,
) -> None:
    engine, http = served
    before = (engine.seq_, engine.events_, engine.ops_)
    r = http.post(path, params=params, content=body)
    assert r.status_code == status
    got = r.json()
    assert got["error"] == error and message in got["message"]
    assert (engine.seq_, engine.events_, engine.ops_) == before


def test_status_of_takes_the_nearest_listed_base() -> None:
    assert status_of(LogLockedError("x")) == STATUS[NotReadyError] == 503
    assert status_of(UnknownItemError("x")) == 422 and status_of(UnknownDecisionError("x")) == 404
    assert status_of(SchemaError("x")) == 422


def test_json_response_encodes_results_numpy_and_nan() -> None:
    import numpy as np

    from decisioner.schemas import Reason

    body = JSONResponse({"r": [Reason(kind="k", detail="d")], "n": np.int64(3), "a": np.arange(2),
                         "x": float("nan")}).body
    assert json.loads(body) == {"r": [{"kind": "k", "detail": "d", "weight": 0.0}], "n": 3, "a": [0, 1],
                                "x": None}


def test_agent_context_and_feedback_over_http(served: tuple[Any, httpx.Client], small_world: str) -> None:
    engine, http = served
    lines = _events(small_world, 600)
    for line in lines:
        http.post("/event", content=line)
    ev = msgspec.json.decode(lines[-1])
    id_type, value = next(iter(ev["ids"].items()))
    now = ev["time"] + 60_000
    r = http.get(f"/agent-context/{id_type}:{value}", params={"placement": "agent_offers", "now": now})
    assert r.status_code == 200
    ctx = r.json()
    assert ctx["person"] == engine.person_id({id_type: value}) >= 0 and ctx["channel"] == "phone"
    nba = ctx["next_best_actions"]
    assert nba["placement"] == "agent_offers" and 0 < nba["actions"][0]["propensity"] <= 1
    text = http.get(f"/agent-context/{id_type}:{value}", params={"now": now, "format": "text"})
    assert text.status_code == 200 and text.headers["content-type"].startswith("text/plain")
    assert text.text.startswith(f"person {ctx['person']} ")
    bad = http.get("/agent-context/no-colon", params={"now": now})
    assert bad.status_code == 422
    assert bad.json()["message"] == "Expected an identifier as `type:value`, got 'no-colon' - at `id`"
    bad = http.get(f"/agent-context/{id_type}:{value}", params={"now": "soon"})
    assert (bad.status_code, bad.json()["message"]) == (422, "Expected an integer, got 'soon' - at `now`")
    before = engine.ops_
    r = http.post("/feedback", json={"decision_id": nba["decision_id"], "ids": {id_type: value},
                                     "content": nba["actions"][0]["content"], "reaction": "sideways",
                                     "time": now + 1000})
    assert r.status_code == 422 and "at `reaction`" in r.json()["message"] and engine.ops_ == before
    r = http.post("/feedback", json={"decision_id": nba["decision_id"], "ids": {id_type: value},
                                     "content": nba["actions"][0]["content"], "reaction": "accepted",
                                     "time": now + 1000, "extra": 1})
    assert r.status_code == 422 and r.json()["message"].startswith("Invalid feedback: ") and engine.ops_ == before
    r = http.post("/feedback", json={"decision_id": nba["decision_id"], "ids": {id_type: value},
                                     "content": nba["actions"][0]["content"], "reaction": "accepted",
                                     "time": now + 1000})
    assert r.status_code == 200 and engine.ops_ > before
