"""Cold start: a fresh interpreter runs ``import decisioner``, ``warm_up()``, builds a small
engine and makes its first decision, with an empty ``NUMBA_CACHE_DIR`` (every kernel compiled)
and with a populated one (every kernel loaded from the cache).

The child reports its phases (``import_s``, ``warm_up_s``, ``engine_s``, ``decide_s``,
``total_s``); they go to ``extra_info``. Under ``--benchmark-disable`` each run is
made once; the cold one compiles every request-path kernel.

``test_warm_up_cpu`` measures what issue 9 targets: the CPU time (user + sys, so a busy shared
machine does not inflate it) of ``python -c "import decisioner; decisioner.warm_up()"`` with an
empty cache directory (compiling; target <= 15 s) and again with the directory it filled
(loading), recorded as ``cold_cpu_s`` / ``warm_cpu_s`` with the child's own wall-clock
``warm_up()`` seconds.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

CHILD = r"""
import json, time
t0 = time.perf_counter()
import decisioner
t1 = time.perf_counter()
decisioner.warm_up()
t2 = time.perf_counter()
from decisioner.bench import build_engine
state = build_engine(100, 50, seed=0)
t3 = time.perf_counter()
d = state.engine.decide(state.requests(1)[0], placement="home")
t4 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "warm_up_s": t2 - t1, "engine_s": t3 - t2,
                  "decide_s": t4 - t3, "total_s": t4 - t0, "slots": len(d.slots)}))
"""


def start_once(cache_dir: str | None) -> dict[str, Any]:
    """Run the child with ``NUMBA_CACHE_DIR=cache_dir`` (inherited when None); its phases."""
    env = dict(os.environ)
    if cache_dir is not None:
        env["NUMBA_CACHE_DIR"] = cache_dir
    proc = subprocess.run(
        [sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    phases: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return phases


def _record(benchmark: Any, prefix: str, phases: dict[str, Any]) -> None:
    benchmark.extra_info.update({f"{prefix}_{k}": round(v, 4) for k, v in phases.items() if k.endswith("_s")})


@pytest.mark.benchmark(group="coldstart")
def test_start_warm_cache(benchmark: Any) -> None:
    """The session's cache, already populated by the session ``warm_up()``."""
    phases = benchmark.pedantic(start_once, args=(None,), rounds=3, warmup_rounds=1)
    _record(benchmark, "warm", phases)
    assert phases["slots"] == 4
    assert phases["decide_s"] < phases["total_s"]


@pytest.mark.benchmark(group="coldstart")
def test_start_cold_cache(benchmark: Any, tmp_path: Path) -> None:
    """An empty cache directory per round; then one warm start from the directory it filled.

    Under ``--benchmark-disable`` this still runs once (compiling every request-path kernel): it shows a
    clean install starts and decides from an empty cache.
    """
    dirs: list[Path] = []

    def setup() -> tuple[tuple[Any, ...], dict[str, Any]]:
        d = tmp_path / f"cache{len(dirs)}"
        d.mkdir()
        dirs.append(d)
        return (str(d),), {}

    cold = benchmark.pedantic(start_once, setup=setup, rounds=1, warmup_rounds=0)
    warm = start_once(str(dirs[-1]))
    _record(benchmark, "cold", cold)
    _record(benchmark, "warm", warm)
    assert cold["slots"] == warm["slots"] == 4
    assert any(dirs[-1].iterdir()), "the cold run left no cache behind"
    assert warm["warm_up_s"] < cold["warm_up_s"] and warm["total_s"] < cold["total_s"]


WARM_UP_CHILD = "import decisioner; print(decisioner.warm_up())"


def warm_up_cpu(cache_dir: str) -> dict[str, float]:
    """CPU seconds (user + sys) of a fresh interpreter that imports decisioner and runs
    ``warm_up()`` with ``NUMBA_CACHE_DIR=cache_dir``, and the wall seconds ``warm_up()`` reports."""
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(
        [sys.executable, "-c", WARM_UP_CHILD], env=env, capture_output=True, text=True, timeout=600, check=False
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert proc.returncode == 0, proc.stderr[-2000:]
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"cpu_s": cpu, "warm_up_s": float(proc.stdout.strip().splitlines()[-1])}


@pytest.mark.benchmark(group="coldstart")
def test_warm_up_cpu(benchmark: Any, tmp_path: Path) -> None:
    """``import decisioner; decisioner.warm_up()`` from an empty cache directory (every
    request-path kernel compiled), then from the directory it filled (every kernel loaded):
    CPU seconds of each, in ``extra_info``. The timed figure is the cold run's wall time."""
    cache = tmp_path / "numba-cache"
    cache.mkdir()
    cold = benchmark.pedantic(warm_up_cpu, args=(str(cache),), rounds=1, warmup_rounds=0)
    warm = warm_up_cpu(str(cache))
    benchmark.extra_info.update(
        cold_cpu_s=round(cold["cpu_s"], 2), cold_warm_up_s=round(cold["warm_up_s"], 2),
        warm_cpu_s=round(warm["cpu_s"], 2), warm_warm_up_s=round(warm["warm_up_s"], 2),
    )
    print(f"\nwarm_up() CPU: cold {cold['cpu_s']:.1f} s, warm {warm['cpu_s']:.2f} s")
    assert any(cache.iterdir()), "the cold run left no cache behind"
    # sane, not a timing target: compiling costs far more than loading, and both finish
    assert 0.0 < warm["cpu_s"] < cold["cpu_s"]
    assert warm["warm_up_s"] < cold["warm_up_s"]
