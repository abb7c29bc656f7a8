"""Outbound messages: the next message for 50,000 people on email with caps, quiet hours and time
zones on (issue 14: <= 1 s a batch).

The engine is :func:`decisioner.bench.build_engine` at ``DECISIONER_BENCH_OUTBOUND_PROFILES``
profiles (default 200,000; 60,000 under ``--benchmark-disable``) with the ``hero`` campaign
(Thompson sampling over 5 experiences, a default), ``[outbound]`` caps on email (2 in 7 days),
quiet hours on email (22:00-07:00) and a ``tz`` attribute over four zones (a fifth of the people
have none: the default zone). Each round sends to the same 50,000 people 8 days after the
previous round, so every cap is counted and none is reached: every round makes 50,000 decisions,
log rows and pending outcomes (the one before expires from the attribution window).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pytest

from decisioner.bench import START_MS, BenchState, build_engine, placements
from decisioner.engine import Engine

DAY = 86_400_000
AUDIENCE = 50_000
ZONES = ("Europe/Paris", "America/New_York", "Asia/Tokyo", "UTC")


def _engine(profiles: int) -> tuple[Engine, np.ndarray]:
    pls = placements()
    pls[1]["default"] = "hero-0"
    st: BenchState = build_engine(profiles, 100, options={
        "placements": pls, "attributes": {"tz": {"type": "category"}},
        "outbound": {"caps": {"email": {"max": 2, "days": 7}}, "quiet": {"email": ["22:00", "07:00"]},
                     "timezone_attribute": "tz"},
    })
    eng = st.engine
    for r in st.rows.tolist():  # profiles loaded in bulk get their person at their first event: give it now
        eng.people.new(r)
    attrs = eng.attributes_
    for z in ZONES:
        attrs.set(0, attrs.check({"tz": z}), source="crm", time=START_MS)  # the vocabulary
    n = eng.identity.n_rows
    attrs.arrays_["tz/value"][:n] = np.random.default_rng(0).integers(-1, len(ZONES), size=n, dtype=np.int32)
    person = eng.people.person_[:n]
    return eng, np.sort(person[person >= 0])[:AUDIENCE]


@pytest.mark.benchmark(group="outbound")
def test_outbound_50k_with_caps(benchmark: Any, smoke: bool, record_latency: Any) -> None:
    """One outbound batch of 50,000 people (caps, quiet hours and time zones on)."""
    profiles = 60_000 if smoke else int(os.environ.get("DECISIONER_BENCH_OUTBOUND_PROFILES", "200000"))
    eng, audience = _engine(profiles)
    at = [START_MS + DAY + 12 * 3_600_000]  # noon UTC: nobody in quiet hours but Tokyo (21:00)

    def send() -> Any:
        at[0] += 8 * DAY
        return eng.outbound(audience, placement="hero", channel="email", now=at[0])

    batch = benchmark.pedantic(send, rounds=3 if smoke else 30, iterations=1, warmup_rounds=1)
    record_latency()
    assert batch.counts["audience"] == AUDIENCE and batch.counts["cap"] == 0
    assert batch.counts["sent"] + batch.counts["quiet"] == AUDIENCE and batch.counts["sent"] > 0.5 * AUDIENCE
