"""Every public result serialises to JSON directly: ``to_dict``/``to_json``, ``json.dumps`` with
the ``to_builtins`` hook, and ``dict(result)`` pairs (what FastAPI's encoder falls back on)."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from decisioner import Catalog, Engine, load_config_dict
from decisioner.evaluation import experiment_report
from decisioner.schemas import Decision, Result, to_builtins


def _decision() -> Decision:
    cfg = load_config_dict({"identity": {"hash_key": "ab" * 16},
                            "placements": [{"name": "home", "kind": "recommendation", "slots": 2}]})
    eng = Engine(cfg, Catalog([{"id": f"i{j}", "category": f"c{j % 3}"} for j in range(6)]), seed=1)
    return eng.decide({"type": "view", "time": 1_700_000_000_000, "ids": {"cookie": "k"}, "item": "i0"},
                      placement="home")


def _jsonable(obj: Any) -> Any:
    """The generic fallback of web frameworks (FastAPI's ``jsonable_encoder``): plain values as
    they are, containers element-wise, anything else through ``dict(obj)``."""
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    return _jsonable(dict(obj))


def test_a_decision_serialises_every_way_alike() -> None:
    d = _decision()
    as_dict = d.to_dict()
    assert as_dict["slots"][0] == {"content": d.slots[0].content, "score": d.slots[0].score,
                                   "propensity": d.slots[0].propensity}
    assert json.loads(d.to_json()) == as_dict == json.loads(msgspec.json.encode(d))
    assert json.loads(json.dumps({"decision": d}, default=to_builtins)) == {"decision": as_dict}
    assert _jsonable(d) == as_dict
    assert dict(d)["slots"] is d.slots  # one level deep, as pydantic models iterate
    assert msgspec.json.decode(d.to_json(), type=Decision) == d


def test_reports_are_results_too() -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    variant = np.arange(400) % 2
    converted = (rng.random(400) < 0.3).astype(np.int64)
    rep = experiment_report(variant, converted, converted * 10.0, names=["control", "b"], draws=1000, seed=0)
    assert isinstance(rep, Result) and isinstance(rep.variants[0], Result)
    parsed = json.loads(rep.to_json())
    assert parsed["variants"][1]["name"] == "b" and parsed["srm"]["flagged"] is False
    assert parsed == json.loads(json.dumps(rep, default=to_builtins)) == rep.to_dict()


def test_the_web_encoder_refuses_what_json_cannot_hold_with_our_error() -> None:
    import numpy as np

    from decisioner.adapters.web import _encoder
    from decisioner.errors import SchemaError

    assert _encoder.encode({"n": np.int64(3), "a": np.arange(2)}) == b'{"n":3,"a":[0,1]}'
    with pytest.raises(SchemaError, match="Expected JSON-encodable data in a response, got `object` - at `response`"):
        _encoder.encode({"x": object()})
