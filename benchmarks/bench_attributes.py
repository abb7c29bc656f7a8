"""``Engine.decide`` with profile attributes: what setting three declared attributes from each
event costs, beside the same engine without attributes (with and without ``attrs`` in the
events: undeclared attributes must cost nothing).

The three engines are built alike (:func:`decisioner.bench.build_engine`, at most 100,000
profiles so the module builds in seconds); each round decides for a known person with a view
that carries ``region`` (category, most recent), ``ltv`` (number, sum) and ``lang`` (category,
most frequent).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import pytest

from decisioner.bench import BenchState, build_engine

ROUNDS = 3_000
#: the declared attributes of the "declared" engine
ATTRIBUTES: dict[str, Any] = {
    "region": {"type": "category"},
    "ltv": {"type": "number", "rule": "sum"},
    "lang": {"type": "category", "rule": "most_frequent"},
}


@functools.lru_cache(maxsize=2)
def _engine(profiles: int, items: int, declared: bool) -> BenchState:
    return build_engine(profiles, items, seed=3, options={"attributes": ATTRIBUTES} if declared else None)


def _requests(st: BenchState, with_attrs: bool) -> list[dict[str, Any]]:
    reqs = [dict(r) for r in st.requests(ROUNDS + 1, seed=4)]
    if with_attrs:
        for j, r in enumerate(reqs):
            r["attrs"] = {"region": f"r{j % 40}", "ltv": float(j % 97), "lang": ("en", "de", "fr")[j % 3]}
    return reqs


def _run(benchmark: Any, sizes: tuple[int, int], declared: bool, with_attrs: bool) -> Any:
    st = _engine(min(sizes[0], 100_000), sizes[1], declared)
    it = iter(_requests(st, with_attrs))

    def setup() -> tuple[tuple[Any, ...], dict[str, Any]]:
        return (next(it),), {"placement": "home"}

    d = benchmark.pedantic(st.engine.decide, setup=setup, rounds=ROUNDS, iterations=1, warmup_rounds=1)
    return st, d


@pytest.mark.benchmark(group="attributes")
@pytest.mark.parametrize(("declared", "with_attrs"), [(False, False), (False, True), (True, True)],
                         ids=["none", "undeclared", "declared"])
def test_decide_with_attributes(
    benchmark: Any, sizes: tuple[int, int], record_latency: Callable[[], None], declared: bool, with_attrs: bool
) -> None:
    """``home`` decisions: no attributes; three undeclared ``attrs``; three declared ones."""
    st, d = _run(benchmark, sizes, declared, with_attrs)
    record_latency()
    assert d.placement == "home" and len(d.slots) == 4
    held = st.engine.attributes_.get(d.profile)
    assert set(held) == ({"region", "ltv", "lang"} if declared else set())
