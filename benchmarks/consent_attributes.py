"""What consent and attributes cost a decision, beside another build, on identical events.

Both builds get the same request stream: views of random items by known people, each carrying
three attributes (region, lifetime value, tier) and, every 50th, a consent change. A build
before attributes and channel consent decodes and validates the attributes and throws them
away, and ignores consent names it does not know, which is what a web backend sending these
events to it got; this build declares the three attributes (most recent, sum, most frequent),
reconciles them with provenance, keeps the consent history, and has a tenth of the people
refusing analytics on the web (their decisions keep no log row). Alternating runs, each a
fresh interpreter with its own numba cache::

    git worktree add /tmp/prev <commit>
    python benchmarks/consent_attributes.py --base /tmp/prev/src --runs 3 --profiles 100000 --items 10000
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE_SRC = Path(__file__).resolve().parents[1] / "src"

_RUN = r"""
import json, sys, time
import numpy as np
from decisioner.bench import build_engine
from decisioner.warmup import warm_up
profiles, items, n = (int(x) for x in sys.argv[1:4])
warm_up()
try:
    from decisioner.bench import BENCH_ATTRIBUTES, with_consent_and_attributes
except ImportError:  # a build without attributes: the events carry them all the same
    st = build_engine(profiles, items, seed=0)
else:
    st = with_consent_and_attributes(build_engine(profiles, items, seed=0, options={"attributes": BENCH_ATTRIBUTES}))
    st.profiled = False  # the stream below is the same for both builds
regions, tiers = ("north", "south", "east", "west", "centre"), ("bronze", "silver", "gold")
def stream(k):
    reqs = st.requests(k)
    for j, r in enumerate(reqs):
        p = int(r["ids"]["cookie"].rsplit("-", 1)[1], 16)
        r["attrs"] = {"region": regions[p % 5], "ltv": float(p % 500), "tier": tiers[(p + (j % 7 == 0)) % 3]}
        if j % 50 == 0:
            r["consent"] = {"marketing.email": j % 100 == 0}
    return reqs
for r in stream(n // 10):
    st.engine.decide(r, placement="home")
lat = []
for r in stream(n):
    t0 = time.perf_counter_ns()
    st.engine.decide(r, placement="home")
    lat.append(time.perf_counter_ns() - t0)
a = np.array(lat) / 1000.0
print(json.dumps({"p50": float(np.percentile(a, 50)), "p95": float(np.percentile(a, 95)),
                  "p99": float(np.percentile(a, 99))}))
"""


def run_once(src: Path, cache: str, profiles: int, items: int, n: int) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(src), "NUMBA_CACHE_DIR": cache}
    out = subprocess.run([sys.executable, "-c", _RUN, str(profiles), str(items), str(n)], env=env, check=True,
                         capture_output=True, text=True).stdout
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", required=True, type=Path, help="the other build's src directory")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--profiles", type=int, default=100_000)
    ap.add_argument("--items", type=int, default=10_000)
    ap.add_argument("--decisions", type=int, default=20_000)
    args = ap.parse_args(argv)
    builds = {"base": args.base, "this": HERE_SRC}
    res: dict[str, list[dict[str, float]]] = {k: [] for k in builds}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.runs):
            for name, src in builds.items():
                res[name].append(run_once(src, os.path.join(tmp, name), args.profiles, args.items, args.decisions))
    for name, rows in res.items():
        cells = [f"{k} {statistics.median(r[k] for r in rows):.1f} ({min(r[k] for r in rows):.0f}-"
                 f"{max(r[k] for r in rows):.0f})" for k in ("p50", "p95", "p99")]
        print(f"{name:5s} " + "  ".join(cells))
    for k in ("p50", "p99"):
        ratio = statistics.median(r[k] for r in res["this"]) / statistics.median(r[k] for r in res["base"])
        print(f"{k} ratio this/base: {ratio:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
