"""Regression tests for the defects of the old engine shape (issue 9): each test carries the
data that reproduced one defect and a name saying what broke."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from decisioner import Engine
from decisioner.catalog import Catalog
from decisioner.config import load_config_dict
from decisioner.errors import LogLockedError

T0 = 1_700_000_000_000
KEY = "5e" * 16


def catalog(n: int = 12) -> list[dict[str, Any]]:
    return [{"id": f"i{j}", "category": f"c{j % 3}", "brand": f"b{j % 2}", "inventory": 5} for j in range(n)]


def engine(**config: Any) -> Engine:
    base: dict[str, Any] = {
        "identity": {"hash_key": KEY},
        "placements": [
            {"name": "home", "kind": "recommendation", "slots": 3, "policy": {"kind": "epsilon_greedy", "epsilon": 0.2}},
            {"name": "hero", "kind": "campaign", "experiences": [{"id": "a"}, {"id": "b"}, {"id": "c"}]},
        ],
    }
    base.update(config)
    cfg = load_config_dict(base)
    return Engine(cfg, Catalog(catalog(), cfg.catalog), seed=3)


SHARED_VARIANTS = {
    "experiments": [
        {"name": "hero-x", "placement": "hero", "variants": [
            {"name": "same"}, {"name": "same-too"}, {"name": "random", "policy": {"kind": "random"}}]},
        {"name": "home-x", "placement": "home", "variants": [{"name": "base"}, {"name": "greedy", "policy": {"kind": "greedy"}}]},
    ],
    "holdout": {"fraction": 0.1},
}


def view(who: str, t: int, item: str | None = "i1") -> dict[str, Any]:
    ev: dict[str, Any] = {"type": "view", "time": t, "ids": {"cookie": who}}
    if item is not None:
        ev["item"] = item
    return ev


def feed(eng: Engine, n: int, start: int = 0) -> list[Any]:
    out = []
    for t in range(start, start + n):
        d = eng.decide(view(f"p{t % 17}", T0 + t, f"i{t % 12}"), placement=("hero", "home")[t % 2])
        if t % 3 == 0 and d.slots:
            eng.observe({"decision_id": d.decision_id, "kind": "click", "time": T0 + t + 1, "content": d.slots[0].content})
        out.append([(s.content, s.score, s.propensity) for s in d.slots])
    return out


def test_save_with_a_variant_that_keeps_the_placement_policy_does_not_recurse(tmp_path: Path) -> None:
    eng = engine(**SHARED_VARIANTS)
    feed(eng, 40)
    eng.save(tmp_path / "snap")  # the old snapshot walked into the variant, which is the placement
    again = Engine.open(tmp_path / "snap", hash_key=KEY, flush="off")
    assert again.ops_ == eng.ops_


def test_reopened_variants_share_the_placement_state_and_continue_identically(tmp_path: Path) -> None:
    eng = engine(**SHARED_VARIANTS)
    feed(eng, 60)
    eng.save(tmp_path / "snap")
    again = Engine.open(tmp_path / "snap", hash_key=KEY, flush="off")
    hero = again.placement("hero")
    assert hero.variants is not None and hero.variants[0] is hero and hero.variants[1] is hero
    home = again.placement("home")
    assert home.variants is not None and home.variants[1].state is home.state
    assert home.holdout is not None and home.holdout.state is home.state
    assert feed(again, 80, start=60) == feed(eng, 80, start=60)
    for name in ("hero", "home"):
        a, b = eng.placement(name), again.placement(name)
        if a.bandit is not None:
            assert b.bandit is not None
            assert np.array_equal(a.bandit.counts, b.bandit.counts)
        if a.state is not None:
            assert b.state is not None
            assert np.array_equal(a.state.trials, b.state.trials) and np.array_equal(a.state.clicks, b.state.clicks)


def test_out_of_stock_items_are_never_recommended_under_an_experiment() -> None:
    eng = engine(**SHARED_VARIANTS)
    feed(eng, 20)
    for j in range(12):
        if j not in (4, 5, 6):
            eng.set_inventory(f"i{j}", 0)
    for t in range(60):  # every variant and the holdout see the stock through the shared state
        d = eng.decide(view(f"q{t}", T0 + 100 + t, None), placement="home")
        assert {s.content for s in d.slots} <= {"i4", "i5", "i6"}, d.variant


def test_nothing_eligible_serves_the_fallback_with_its_reason() -> None:
    eng = engine(placements=[
        {"name": "home", "kind": "recommendation", "slots": 2, "filters": {"include": {"category": ["c0"]}}},
        {"name": "hero", "kind": "campaign", "default": "b",
         "experiences": [{"id": "a", "end": T0}, {"id": "b", "end": T0}]},
        {"name": "bare", "kind": "campaign", "fallback": False, "experiences": [{"id": "a", "end": T0}]},
    ])
    eng.track({"type": "view", "time": T0, "ids": {"cookie": "x"}, "item": "i4"})
    for j in range(0, 12, 3):
        eng.set_inventory(f"i{j}", 0)  # every c0 item out of stock
    d = eng.decide(view("y", T0 + 5, None), placement="home")
    assert d.slots[0].content == "i4" and len(d.slots) == 2
    assert any(r.kind == "fallback" for r in d.reasons) and d.candidates == 0
    h = eng.decide(view("y", T0 + 6, None), placement="hero")
    assert [s.content for s in h.slots] == ["b"] and h.reasons[0].kind == "fallback"
    assert eng.decide(view("y", T0 + 7, None), placement="bare").slots == []


def test_a_newcomer_on_an_erased_persons_row_sees_nothing_of_theirs() -> None:
    eng = engine()
    d = eng.decide(view("erased", T0), placement="home")
    row = eng.profile_row({"cookie": "erased"})
    eng.forget(row=row)
    n = eng.decide(view("newcomer", T0 + 10), placement="home")
    assert n.profile == row and n.person != d.person  # the row is reused, the person id never
    out = eng.export({"cookie": "newcomer"})
    assert {x["decision_id"] for x in out["decisions"]} == {n.decision_id}
    assert (eng.decision_log.column("person") == d.person).sum() == 0


def test_decisions_follow_an_anonymous_visitor_into_the_known_person() -> None:
    eng = engine()
    anon = eng.decide(view("anon-cookie", T0), placement="home")
    known = eng.decide({"type": "view", "time": T0 + 1, "ids": {"email": "ada@example.com"}}, placement="home")
    eng.track({"type": "identify", "time": T0 + 2, "ids": {"cookie": "anon-cookie", "email": "ada@example.com"}})
    out = eng.export({"email": "ada@example.com"})
    assert {x["decision_id"] for x in out["decisions"]} == {anon.decision_id, known.decision_id}
    assert out["merged_people"] and out["person"] in (anon.person, known.person)
    # the released row goes to a newcomer, who inherits none of it
    eng.decide(view("someone-else", T0 + 3), placement="home")
    other = eng.export({"cookie": "someone-else"})
    assert len({x["decision_id"] for x in other["decisions"]}) == 1


def test_experiment_reports_count_merged_people_once() -> None:
    from decisioner.evaluation import engine_report

    eng = engine(experiments=[{"name": "hx", "placement": "hero", "variants": [{"name": "a"}, {"name": "b"}]}])
    for j in range(20):
        eng.decide(view(f"c{j}", T0 + j), placement="hero")
        d = eng.decide({"type": "view", "time": T0 + 100 + j, "ids": {"email": f"u{j}@example.com"}}, placement="hero")
        if j % 3 == 0:
            eng.observe({"decision_id": d.decision_id, "kind": "click", "time": T0 + 150 + j})
        eng.track({"type": "identify", "time": T0 + 200 + j, "ids": {"cookie": f"c{j}", "email": f"u{j}@example.com"}})
    rep = engine_report(eng, "hx")
    assert sum(v.units for v in rep.variants) == 20


CHILD = """
import sys
from decisioner import Engine
e = Engine.open(sys.argv[1], hash_key=sys.argv[2])
print("attached", flush=True)
sys.stdin.readline()
"""


def test_a_second_process_cannot_attach_to_the_same_log(tmp_path: Path) -> None:
    eng = engine()
    eng.durable(tmp_path / "d")
    eng.decide(view("a", T0), placement="home")
    eng.detach_log()
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path / "d"), KEY], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, env=dict(os.environ))
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"attached"
        with pytest.raises(LogLockedError, match=re.escape(f"held by process {proc.pid}")):
            Engine.open(tmp_path / "d", hash_key=KEY)
    finally:
        proc.communicate(b"\n", timeout=60)
    Engine.open(tmp_path / "d", hash_key=KEY).detach_log()  # free again once the holder is gone


def test_no_import_cycle_in_src() -> None:
    """Module-level imports inside ``decisioner`` form no cycle (lazy imports in functions are
    the documented escape for the facade's optional parts)."""
    import ast

    src = Path(__file__).resolve().parents[1] / "src" / "decisioner"
    graph: dict[str, set[str]] = {}
    for path in src.rglob("*.py"):
        mod = ".".join(("decisioner", *path.relative_to(src).with_suffix("").parts)).removesuffix(".__init__")
        pkg = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        deps: set[str] = set()
        for node in ast.parse(path.read_text()).body:  # module level only
            if isinstance(node, ast.ImportFrom) and node.level:
                base = pkg.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, *(node.module.split(".") if node.module else [])])
                deps.add(target)
                deps.update(f"{target}.{a.name}" for a in node.names)
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("decisioner"):
                deps.add(node.module or "")
        graph[mod] = deps
    graph = {m: {d for d in ds if d in graph and d != m} for m, ds in graph.items()}

    def cycle_from(start: str) -> list[str] | None:
        stack = [(start, [start])]
        seen: set[str] = set()
        while stack:
            node, path = stack.pop()
            for nxt in graph[node]:
                if nxt == start:
                    return [*path, start]
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, [*path, nxt]))
        return None

    cycles = [c for m in sorted(graph) if (c := cycle_from(m)) and not m.endswith("__init__")]
    cycles = [c for c in cycles if not any(x == "decisioner" for x in c)]
    assert not cycles, cycles[0]


def test_a_second_engine_in_one_process_cannot_attach_to_an_open_log(tmp_path: Path) -> None:
    a, b = engine(), engine()
    a.attach_log(tmp_path / "events.log")
    with pytest.raises(LogLockedError, match=re.escape("got a second in this process")):
        b.attach_log(tmp_path / "events.log")
    a.detach_log()
    b.attach_log(tmp_path / "events.log")  # free once the first writer detached
    b.detach_log()
