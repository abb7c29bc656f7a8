"""Attribute kernels (offer by rule, space-saving counts, merges) against their twins in
``tests/reference.py``, on seeded random event streams with many ties."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import reference as ref
from decisioner._kernels import attributes as K
from decisioner.attributes import AttributeStore
from decisioner.config import AttributeSpec

from ._helpers import size

T0 = 1_700_000_000_000
SOURCES = ("crm", "pos", "web", "app")
SPECS = {
    "recent": AttributeSpec(type="category"),
    "first": AttributeSpec(type="number", rule="first_seen"),
    "prio": AttributeSpec(type="timestamp", rule="source_priority", sources=("pos", "crm")),
    "low": AttributeSpec(type="number", rule="min"),
    "high": AttributeSpec(type="timestamp", rule="max"),
    "total": AttributeSpec(type="number", rule="sum"),
    "freq": AttributeSpec(type="category", rule="most_frequent", slots=3),
    "one": AttributeSpec(type="category", rule="most_frequent", slots=1),
}


class _Model:
    """The reference state of every row: held values and slots by attribute name."""

    def __init__(self, rows: int) -> None:
        self.held: list[dict[str, ref.AttrHeld | None]] = [{n: None for n in SPECS} for _ in range(rows)]
        self.slots: list[dict[str, list[ref.AttrSlot | None]]] = [
            {n: [None] * s.n_slots for n, s in SPECS.items() if s.rule == "most_frequent"} for _ in range(rows)
        ]

    def offer(self, r: int, name: str, v: float, src: int, t: int, later_wins: bool = True) -> None:
        spec = SPECS[name]
        if spec.rule == "most_frequent":
            self.slots[r][name] = ref.attribute_count_ref(self.slots[r][name], int(v), src, t)
            self.held[r][name] = ref.attribute_lead_ref(self.slots[r][name])
            return
        rank = {SOURCES.index(s): i for i, s in enumerate(spec.sources)}
        self.held[r][name] = ref.attribute_offer_ref(self.held[r][name], spec.rule, v, src, t, rank,
                                                     len(spec.sources), later_wins)

    def merge(self, dst: int, src: int) -> None:
        for name, spec in SPECS.items():
            if spec.rule == "most_frequent":
                merged = ref.attribute_merge_counts_ref(self.slots[dst][name], self.slots[src][name])
                self.slots[dst][name] = merged
                lead = ref.attribute_lead_ref(merged)
                if lead is not None:
                    self.held[dst][name] = lead
            elif self.held[src][name] is not None:
                v, s, t = self.held[src][name]  # type: ignore[misc]
                self.offer(dst, name, v, s, t, later_wins=False)
        self.held[src] = {n: None for n in SPECS}
        self.slots[src] = {n: [None] * len(sl) for n, sl in self.slots[src].items()}


def _store(rows: int) -> AttributeStore:
    store = AttributeStore(SPECS, capacity=rows)
    for s in SOURCES:  # source codes 0..3 in this order, ranked for source_priority
        store.sources_.append(s)
        store._source_codes[s] = len(store.sources_) - 1
    store._rank_sources()
    return store


def _assert_same(store: AttributeStore, model: _Model) -> None:
    a = store.arrays_
    for r in range(store.n_rows):
        for name, spec in SPECS.items():
            held = model.held[r][name]
            got = (float(a[f"{name}/value"][r]), int(a[f"{name}/source"][r]), int(a[f"{name}/time"][r]))
            if held is None:
                assert got[1] == -1, (r, name, got)
            else:
                assert got == (float(held[0]), held[1], held[2]), (r, name, got, held)
            if spec.rule == "most_frequent":
                slots = [None if c < 0 else [c, n, t, s] for c, n, t, s in zip(
                    *(a[f"{name}/slot_{x}"][r].tolist() for x in ("code", "count", "time", "source")))]
                assert slots == model.slots[r][name], (r, name, slots, model.slots[r][name])


def _value(rng: np.random.Generator, spec: AttributeSpec) -> float:
    if spec.type == "category":
        return float(rng.integers(0, 5))
    if spec.type == "timestamp":
        return float(T0 + int(rng.integers(0, 4)))
    return float(rng.choice([-1.5, 0.0, 2.0, 2.0, 7.25]))


@pytest.mark.parametrize("merge_share", [0.0, 0.1])
def test_attribute_kernels_equal_the_rules_twin(seed: int, merge_share: float) -> None:
    rng = np.random.default_rng(seed)
    rows = 5
    store, model = _store(rows), _Model(rows)
    names = list(SPECS)
    req = np.empty(2 * len(names), np.float64)
    for _ in range(size(3000, 400)):
        r = int(rng.integers(rows))
        if rng.random() < merge_share:
            s = int(rng.integers(rows))
            if s != r:
                K.attributes_merge(store._value, store._stamp, store._source, store._spec, r, s)
                store.clear(s)
                model.merge(r, s)
            continue
        src, t = int(rng.integers(len(SOURCES))), T0 + int(rng.integers(0, 6))  # few times: many ties
        picked = rng.choice(len(names), size=int(rng.integers(1, len(names) + 1)), replace=False).tolist()
        for i, a in enumerate(picked):
            req[2 * i], req[2 * i + 1] = a, _value(rng, SPECS[names[a]])
        K.attributes_set(store._value, store._stamp, store._source, store._spec, req, len(picked), r, src, t)
        for i, a in enumerate(picked):
            model.offer(r, names[a], float(req[2 * i + 1]), src, t)
    _assert_same(store, model)


def test_a_space_saving_slot_goes_to_the_lowest_count_then_the_oldest() -> None:
    store, model = _store(1), _Model(1)
    a = list(SPECS).index("freq")
    req = np.empty(2, np.float64)
    steps: list[tuple[Any, ...]] = [(0, 1, T0 + 5), (1, 2, T0 + 5), (0, 0, T0 + 1), (2, 3, T0 + 2), (3, 1, T0 + 1),
                                    (4, 0, T0 + 9), (4, 0, T0), (1, 3, T0 + 9)]
    for code, src, t in steps:
        req[0], req[1] = a, code
        K.attributes_set(store._value, store._stamp, store._source, store._spec, req, 1, 0, src, t)
        model.offer(0, "freq", code, src, t)
        _assert_same(store, model)
    # free slots first; 3 replaced 2 (count 1 at T0 + 2, older than 1's T0 + 5), starting at 2; 4 replaced 1
    # (the only count 1), starting at 2; 1 came back in place of 3 (count 2 at T0 + 1, older than 0's T0 + 5)
    assert store.arrays_["freq/slot_code"][0].tolist() == [0, 4, 1]
    assert store.arrays_["freq/slot_count"][0].tolist() == [2, 3, 3]
    # 4 and 1 tie on count and newest sighting: the lower code leads
    assert (store.arrays_["freq/value"][0], store.arrays_["freq/source"][0]) == (1.0, 3)
