"""Open-loop replay of an event log through an engine, and the latency report shared by the
``replay`` and ``bench`` commands."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from .batch import default_decide_on
from .errors import ConfigError, DecisionerError
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
    batch: int = 4096,
) -> dict[str, Any]:
    """Replay a JSON-lines event log open-loop through ``engine``.

    Events whose type is a key of ``decide_on`` are decided for the placement it names, the
    rest are tracked. Lines that fail validation are counted as ``rejected`` and skipped, as a
    service would answer them with an error and keep serving.

    With ``batch`` > 1 the log goes through :meth:`Engine.ingest_many` ``batch`` lines at a
    time (the same decisions and state as one call per line, see :mod:`decisioner.batch`); with
    ``batch=1`` each line is decoded and applied by its own call, the way a service takes them.

    Latencies: with ``batch=1`` a decision's latency includes decoding its line; in batches it
    runs from the start of the event's stage work inside the batch to its result, and each
    batch's decoding is reported apart (``decode_us_per_event``, amortised over its events).

    Returns
    -------
    dict
        ``events``, ``decisions``, ``rejected``, ``seconds``, ``events_per_s``, ``batch``,
        ``latency_us`` (decide latency percentiles), ``track_latency_us``,
        ``decode_us_per_event``, ``over_30ms`` and ``decisions_by_placement``.
    """
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ConfigError(f"Expected `batch` to be a positive integer, got {batch!r} - at `batch`")
    if decide_on is None:
        decide_on = default_decide_on(engine)
    for name in decide_on.values():
        engine.placement(name)  # an unknown placement fails before anything is replayed
    with open(events_path, "rb") as fh:
        lines = [ln for ln in fh if ln.strip()]
    if max_events is not None:
        lines = lines[:max_events]
    total = len(lines)
    gc.collect()
    gc.freeze()  # the log and the engine's loaded state are long-lived: keep them out of collections
    # No collections while replaying: the event path makes no reference cycles (tests/test_batch.py
    # checks it), so they would only walk what replay keeps growing (the pending outcomes, a
    # batch's events and decisions): 8% of a batched replay on the demo world.
    collecting = gc.isenabled()
    gc.disable()
    by_placement = dict.fromkeys(engine.placements, 0)
    t_start = time.perf_counter()
    try:
        if batch == 1:
            dec_lat, trk_lat, rejected, decode_us = _one_by_one(lines, engine, decide_on, progress, by_placement)
        else:
            dec_lat, trk_lat, rejected, decode_us = _batched(lines, engine, decide_on, progress, batch, by_placement)
    finally:
        seconds = time.perf_counter() - t_start
        if collecting:
            gc.enable()
        gc.unfreeze()
    lat = latency_summary(dec_lat)
    return {
        "events": total,
        "decisions": int(dec_lat.shape[0]),
        "rejected": rejected,
        "seconds": round(seconds, 3),
        "events_per_s": round(total / seconds, 1) if seconds > 0 else 0.0,
        "batch": batch,
        "latency_us": lat,
        "track_latency_us": latency_summary(trk_lat),
        "decode_us_per_event": round(decode_us / total, 3) if total else 0.0,
        "over_30ms": lat["over_30ms"],
        "decisions_by_placement": by_placement,
    }


_Latencies = tuple[np.ndarray, np.ndarray, int, float]


def _one_by_one(
    lines: list[bytes], engine: Engine, decide_on: dict[str, str], progress: Callable[[int, int], None] | None,
    by_placement: dict[str, int],
) -> _Latencies:
    total = len(lines)
    dec_lat = np.empty(total, dtype=np.float64)
    trk_lat = np.empty(total, dtype=np.float64)
    n_dec = n_trk = rejected = 0
    limit = engine.config.limits.max_payload_bytes
    perf = time.perf_counter_ns
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
    return dec_lat[:n_dec], trk_lat[:n_trk], rejected, 0.0


def _batched(
    lines: list[bytes], engine: Engine, decide_on: dict[str, str], progress: Callable[[int, int], None] | None,
    batch: int, by_placement: dict[str, int],
) -> _Latencies:
    total = len(lines)
    dec: list[np.ndarray] = []
    trk: list[np.ndarray] = []
    rejected = 0
    decode_us = 0.0
    for lo in range(0, total, batch):
        got = engine.ingest_many(lines[lo : lo + batch], decide_on=decide_on, errors="skip")
        is_dec = np.zeros(got.rows.shape[0], dtype=bool)
        is_dec[got.decided] = True
        ok = got.rows >= 0
        dec.append(got.latency_us[is_dec])
        trk.append(got.latency_us[ok & ~is_dec])
        rejected += len(got.rejected)
        for d in got.decisions:
            by_placement[d.placement] += 1
        decode_us += got.decode_us
        if progress is not None:
            progress(min(lo + batch, total), total)
    empty = np.empty(0, dtype=np.float64)
    return (np.concatenate(dec) if dec else empty, np.concatenate(trk) if trk else empty, rejected, decode_us)
