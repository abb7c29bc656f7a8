"""Open-loop replay of an event log through an engine, and the latency report shared by the
``replay`` and ``bench`` commands."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from .errors import DecisionerError
from .schemas import decode_event

if TYPE_CHECKING:
    from .engine import Engine

__all__ = ["latency_summary", "replay", "SLA_US"]

#: the decision budget commercial engines promise (30 ms), in microseconds
SLA_US: Final = 30_000.0


def latency_summary(latencies_us: np.ndarray) -> dict[str, float | int]:
    """Percentiles of decision latencies (microseconds): p50, p95, p99, p999, max, mean, count
    and ``over_30ms`` (how many exceeded the 30 ms budget).

    Examples
    --------
    >>> s = latency_summary(np.array([1.0, 2.0, 3.0, 40_000.0]))
    >>> s["max"], s["over_30ms"], s["count"]
    (40000.0, 1, 4)
    """
    lat = np.asarray(latencies_us, dtype=np.float64)
    if lat.shape[0] == 0:
        return {"p50": 0.0, "p95": 0.0, "p99": 0.0, "p999": 0.0, "max": 0.0, "mean": 0.0, "count": 0, "over_30ms": 0}
    p50, p95, p99, p999 = np.percentile(lat, [50, 95, 99, 99.9])
    return {
        "p50": round(float(p50), 2),
        "p95": round(float(p95), 2),
        "p99": round(float(p99), 2),
        "p999": round(float(p999), 2),
        "max": round(float(lat.max()), 2),
        "mean": round(float(lat.mean()), 2),
        "count": int(lat.shape[0]),
        "over_30ms": int((lat > SLA_US).sum()),
    }


def replay(
    events_path: str | Path,
    engine: Engine,
    *,
    decide_on: dict[str, str] | None = None,
    max_events: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Replay a JSON-lines event log open-loop through ``engine``.

    Each line is decoded (that cost is part of the measured latency, as it would be in a
    service); events whose type is a key of ``decide_on`` are decided for the placement it
    names, the rest are tracked. Lines that fail validation are counted as ``rejected`` and
    skipped, as a service would answer them with an error and keep serving.

    Returns
    -------
    dict
        ``events``, ``decisions``, ``rejected``, ``seconds``, ``events_per_s``,
        ``latency_us`` (decide latency percentiles), ``track_latency_us``, ``over_30ms`` and
        ``decisions_by_placement``.
    """
    if decide_on is None:
        rec = next((p.name for p in engine.config.placements if p.kind == "recommendation"), None)
        camp = next((p.name for p in engine.config.placements if p.kind == "campaign"), None)
        decide_on = {}
        if rec is not None:
            decide_on["view"] = rec
        if camp is not None:
            decide_on["email_open"] = camp
    with open(events_path, "rb") as fh:
        lines = [ln for ln in fh if ln.strip()]
    if max_events is not None:
        lines = lines[:max_events]
    total = len(lines)
    gc.collect()
    gc.freeze()  # the log and the engine's loaded state are long-lived: keep them out of collections
    dec_lat = np.empty(total, dtype=np.float64)
    trk_lat = np.empty(total, dtype=np.float64)
    n_dec = n_trk = rejected = 0
    by_placement = dict.fromkeys(engine.placements, 0)
    limit = engine.config.limits.max_payload_bytes
    perf = time.perf_counter_ns
    t_start = time.perf_counter()
    for j, line in enumerate(lines):
        t0 = perf()
        try:
            ev = decode_event(line, max_bytes=limit)
            placement = decide_on.get(str(ev.__struct_config__.tag))
            if placement is not None:
                engine.decide(ev, placement=placement)
                dec_lat[n_dec] = (perf() - t0) / 1000.0
                n_dec += 1
                by_placement[placement] += 1
            else:
                engine.track(ev)
                trk_lat[n_trk] = (perf() - t0) / 1000.0
                n_trk += 1
        except DecisionerError:
            rejected += 1
        if progress is not None and (j % 5000 == 0 or j == total - 1):
            progress(j + 1, total)
    seconds = time.perf_counter() - t_start
    gc.unfreeze()
    lat = latency_summary(dec_lat[:n_dec])
    return {
        "events": total,
        "decisions": n_dec,
        "rejected": rejected,
        "seconds": round(seconds, 3),
        "events_per_s": round(total / seconds, 1) if seconds > 0 else 0.0,
        "latency_us": lat,
        "track_latency_us": latency_summary(trk_lat[:n_trk]),
        "over_30ms": lat["over_30ms"],
        "decisions_by_placement": by_placement,
    }
