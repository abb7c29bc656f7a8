"""``warm_up()`` covers the request path: after it, a workload of ``decide``, ``track`` (links,
merges, purchases, newcomers beyond the profile capacity, so eviction runs), ``observe``,
``recommend`` and ``recommend_many`` neither compiles nor loads a kernel, and the admin kernels
(:data:`decisioner.warmup.ADMIN`) stay uncompiled until an admin operation needs them. (The
engine is built by bulk loading, whose ``graph_link_many`` is one of them.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

JIT_DISABLED = os.environ.get("NUMBA_DISABLE_JIT", "0") == "1"

CHILD = r"""
import json
import decisioner
from decisioner.warmup import KERNELS, ADMIN
decisioner.warm_up()
def sigs():
    return {k.__name__: len(k.signatures) for k in KERNELS}
warm = sigs()
from decisioner.bench import build_engine
st = build_engine(300, 60, seed=3, max_profiles=320)
built = sigs()
eng = st.engine
n_dec = 0
for j, ev in enumerate(st.requests(40, seed=1) + st.newcomers(60, seed=2)):
    d = eng.decide(ev, placement="home" if j % 2 else "hero")
    n_dec += 1
    if j % 3 == 0:
        eng.observe({"decision_id": d.decision_id, "kind": "click", "time": ev["time"] + 1,
                     "content": d.slots[0].content})
    if j % 5 == 0:
        eng.track({"type": "purchase", "time": ev["time"] + 2, "ids": ev["ids"], "items": [ev["item"]]})
    if j % 7 == 0:  # a second identifier: links and merges
        ids = dict(ev["ids"], email="p%d@example.com" % (j % 4))
        eng.track({"type": "view", "time": ev["time"] + 3, "ids": ids, "item": ev["item"]})
reqs = st.requests(8, seed=4)
for r in reqs:
    eng.recommend(r["ids"], placement="home", now=r["time"])
eng.recommend_many([r["ids"] for r in reqs], placement="home", now=reqs[-1]["time"])
after = sigs()
admin = {k.__name__: len(k.signatures) for k in ADMIN}
print(json.dumps({"warm": warm, "built": built, "after": after, "admin": admin, "evicted": eng.evicted_,
                  "decisions": n_dec}))
"""


@pytest.mark.skipif(JIT_DISABLED, reason="NUMBA_DISABLE_JIT=1: nothing compiles")
def test_request_path_is_warm_after_warm_up() -> None:
    proc = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, env=dict(os.environ),
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    assert res["decisions"] == 100 and res["evicted"] > 0  # the workload reached eviction
    bulk = {k: (res["warm"][k], n) for k, n in res["built"].items() if n != res["warm"][k]}
    assert set(bulk) <= {"graph_link_many"}, f"building the engine compiled or loaded {bulk}"
    changed = {k: (res["built"][k], n) for k, n in res["after"].items() if n != res["built"][k]}
    assert not changed, f"the request path compiled or loaded kernels after warm_up(): {changed}"
    touched = {k: n for k, n in res["admin"].items() if n and k != "graph_link_many"}
    assert not touched, f"admin kernels compiled on the request path: {touched}"
