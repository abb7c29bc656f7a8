"""Two builds of decisioner side by side in one run: alternate a CLI command between this tree
and another source tree (the previous main, say), and print each build's figures.

On a shared, noisy machine a ratio measured in alternating runs means more than an absolute
time measured alone, so this is how the README's "previous main" figures are taken::

    git worktree add /tmp/prev <commit>
    python benchmarks/side_by_side.py --base /tmp/prev/src --runs 3 -- bench --profiles 1000000 --items 10000

Each run is a fresh interpreter with ``PYTHONPATH`` pointing at one build's ``src`` and a
numba cache of its own (warm after the first run), calling ``decisioner <command> --json``.
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
from typing import Any

HERE_SRC = Path(__file__).resolve().parents[1] / "src"
KEYS = ("p50", "p95", "p99", "max")


def run_once(src: Path, cache: str, command: list[str]) -> dict[str, Any]:
    """One ``decisioner <command> --json`` run of the build at ``src``; its parsed output."""
    env = {**os.environ, "PYTHONPATH": str(src), "NUMBA_CACHE_DIR": cache}
    code = "import sys; from decisioner.cli import main; sys.exit(main())"
    out = subprocess.run([sys.executable, "-c", code, *command, "--json"], env=env, check=True,
                         capture_output=True, text=True).stdout
    result: dict[str, Any] = json.loads(out)
    return result


def summary(result: dict[str, Any]) -> dict[str, float]:
    """Latency percentiles and throughput of one run (bench and replay outputs alike)."""
    lat = result.get("latency_us", {})
    row = {k: float(lat[k]) for k in KEYS if k in lat}
    row["events_per_s"] = float(result.get("events_per_s", 0.0))
    return row


def side_by_side(
    base: Path, command: list[str], runs: int, this_extra: list[str] | None = None
) -> dict[str, list[dict[str, float]]]:
    """Alternate ``command`` between the base build and this one, ``runs`` times each
    (``this_extra``: arguments only this build gets, for a feature the base does not have)."""
    builds = {"base": base, "this": HERE_SRC}
    extra = {"base": [], "this": this_extra or []}
    out: dict[str, list[dict[str, float]]] = {name: [] for name in builds}
    with tempfile.TemporaryDirectory() as tmp:
        caches = {name: os.path.join(tmp, name) for name in builds}
        for _ in range(runs):
            for name, src in builds.items():
                out[name].append(summary(run_once(src, caches[name], [*command, *extra[name]])))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", required=True, type=Path, help="the other build's src directory")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--this-extra", default="", help="arguments for this build only, e.g. '--consent-attributes'")
    ap.add_argument("command", nargs=argparse.REMAINDER, help="after --: the decisioner command")
    args = ap.parse_args(argv)
    command = [c for c in args.command if c != "--"]
    res = side_by_side(args.base, command, args.runs, args.this_extra.split())
    print(f"{'build':6s} " + " ".join(f"{k:>22s}" for k in (*KEYS, "events_per_s")))
    for name, rows in res.items():
        cells = []
        for k in (*KEYS, "events_per_s"):
            vals = [r[k] for r in rows if k in r]
            cells.append(f"{statistics.median(vals):9.1f} ({min(vals):.0f}-{max(vals):.0f})" if vals else "-")
        print(f"{name:6s} " + " ".join(f"{c:>22s}" for c in cells))
    base_p50 = statistics.median(r["p50"] for r in res["base"])
    this_p50 = statistics.median(r["p50"] for r in res["this"])
    base_p99 = statistics.median(r["p99"] for r in res["base"])
    this_p99 = statistics.median(r["p99"] for r in res["this"])
    print(f"p50 ratio this/base: {this_p50 / base_p50:.2f}; p99 ratio: {this_p99 / base_p99:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
