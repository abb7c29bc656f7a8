"""Policy statistics and popularity as additive counters on Redis, flushed and pulled in batches.

Every worker keeps the embedded arrays it decides with (a placement's exposure and click counts,
a policy's per-arm sums, the decayed popularity and item interaction counts) and remembers what
they were at its last sync (``base``). :meth:`SharedCounters.sync` sends the difference since then
as ``HINCRBYFLOAT`` increments (one hash per array, field = element index, only the elements that
moved) and reads every total back in the same pipeline; the local arrays become the initial values
plus the totals. Sums merge by addition across workers, so after every worker's last sync the
totals equal those of one process that saw every event (up to the order of float additions).

Period: :meth:`SharedCounters.due` asks for a sync every ``flush_events`` events or
``flush_ms`` milliseconds, whichever comes first (1,000 and 1,000 ms by default): a worker's own
counts are in its arrays at once, the other workers' within that period, and at most that much is
lost if a worker is killed before it syncs (the counters are statistics, not acknowledged state).

Decayed counts (popularity, item interaction counts) are kept by each process relative to its own
reference time; on Redis they are relative to one reference time ``T0`` (the first synced event
time, set once with ``SET NX``): an accumulator ``acc`` at reference ``t_ref`` is
``acc * 2**((t_ref - T0) / h)`` there. Which arrays are shared: placement ``trials``/``clicks``,
each policy's ``counts``/``sums``/``sumsq`` when it neither discounts nor slides a window (those
are not sums; such policies and linear policies learn per worker), and the popularity prior.
All counter keys share the hash tag ``{<prefix>:c}`` (``RedisState.key("c", <array>)``): one
Cluster slot, one pipeline.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, NamedTuple

import numpy as np

if TYPE_CHECKING:
    from ..engine import Engine
    from ..scoring import ItemCounters, Popularity
    from .connection import RedisState

__all__ = ["SharedCounters"]

_FLAT: Final = np.float64


class _Source(NamedTuple):
    name: str
    get: Callable[[int], np.ndarray]  # T0 -> the local values, flat float64, relative to T0
    put: Callable[[np.ndarray, int], None]  # (totals relative to T0, T0) -> local arrays
    decayed: bool


def _rebased(t_ref: int, t0: int, half_life: float) -> float:
    """The factor taking an accumulator at reference ``t_ref`` to reference ``t0``."""
    if t_ref == 0 or t0 == 0:
        return 1.0
    return math.pow(2.0, (t_ref - t0) / half_life)


class SharedCounters:
    """The additive state of ``engine`` shared through Redis (see the module docstring).

    Parameters
    ----------
    engine
        The worker's embedded engine (its arrays are read and replaced in place).
    state
        The connection (calls go through its client; wrap them in ``state.run``).
    flush_events, flush_ms
        Sync period: after this many events or milliseconds, whichever comes first.
    """

    def __init__(self, engine: Engine, state: RedisState, *, flush_events: int = 1000, flush_ms: int = 1000) -> None:
        self.engine = engine
        self.state = state
        self.flush_events = flush_events
        self.flush_ms = flush_ms
        self.decisions_ = np.zeros(len(engine.placements_.names), dtype=np.float64)  # per placement
        self._sources = self._collect()
        self._initial = {s.name: s.get(0).copy() for s in self._sources}
        self._base = {k: v.copy() for k, v in self._initial.items()}
        self.t0_ = 0
        self._pending = 0
        self._last = time.monotonic()
        self.syncs_ = 0

    def key(self, name: str) -> str:
        return self.state.key("c", name)

    # ------------------------------------------------------------------ what is shared
    def _collect(self) -> list[_Source]:
        e = self.engine
        out: list[_Source] = []
        pls = e.placements_
        for i, st in enumerate(pls.states):
            if st is None:
                continue
            name = e.config.placements[i].name

            def put_st(v: np.ndarray, t0: int, st: Any = st) -> None:
                n = st.trials.shape[0]
                st.trials[:] = v[:n]
                st.clicks[:] = v[n:]
                st.refresh(np.arange(n))

            def get_st(t0: int, st: Any = st) -> np.ndarray:
                return np.concatenate([st.trials, st.clicks])

            out.append(_Source(f"placement:{name}", get_st, put_st, False))
        for name, pl in pls.every():
            stats = getattr(pl.allocator, "stats_", None)
            if stats is None or stats.window or stats.discount != 1.0:
                continue

            def put_stats(v: np.ndarray, t0: int, stats: Any = stats) -> None:
                n = stats.n_arms
                stats.counts_[:] = v[:n]
                stats.sums_[:] = v[n:2 * n]
                stats.sumsq_[:] = v[2 * n:]

            def get_stats(t0: int, s: Any = stats) -> np.ndarray:
                return np.concatenate([s.counts_, s.sums_, s.sumsq_])

            out.append(_Source(f"policy:{name}", get_stats, put_stats, False))
        pop, cnt = e.scorer.popularity_, e.scorer.counters_
        out.append(_Source("popularity", lambda t0: self._pop_get(pop, t0), lambda v, t0: self._pop_put(pop, v, t0),
                           True))
        out.append(_Source("item_counts", lambda t0: self._cnt_get(cnt, t0), lambda v, t0: self._cnt_put(cnt, v, t0),
                           True))

        def put_dec(v: np.ndarray, t0: int) -> None:
            self.decisions_[:] = v

        out.append(_Source("decisions", lambda t0: self.decisions_.copy(), put_dec, False))
        return out

    @staticmethod
    def _pop_get(pop: Popularity, t0: int) -> np.ndarray:
        return np.asarray(pop.acc_ * _rebased(pop.t_ref_, t0, pop.half_life_ms), dtype=_FLAT)

    def _pop_put(self, pop: Popularity, v: np.ndarray, t0: int) -> None:
        pop.acc_ = np.ascontiguousarray(v, dtype=_FLAT)
        pop.t_ref_ = t0
        pop.max_ = float(v.max()) if v.shape[0] else 0.0
        self.engine.scorer._dirty = True

    @staticmethod
    def _cnt_get(cnt: ItemCounters, t0: int) -> np.ndarray:
        f = _rebased(cnt.t_ref_, t0, cnt.half_life_ms)
        return np.concatenate([cnt.counts_.ravel() * f, cnt.totals_ * f])

    @staticmethod
    def _cnt_put(cnt: ItemCounters, v: np.ndarray, t0: int) -> None:
        n = cnt.counts_.size
        cnt.counts_ = np.ascontiguousarray(v[:n].reshape(cnt.counts_.shape), dtype=_FLAT)
        cnt.totals_ = np.ascontiguousarray(v[n:], dtype=_FLAT)
        cnt.t_ref_ = t0

    # ------------------------------------------------------------------ syncing
    def decided(self, placement: int) -> None:
        """Count one decision of placement index ``placement``."""
        self.decisions_[placement] += 1.0

    def tick(self) -> bool:
        """Count one event; ``True`` when a sync is due (see the module docstring)."""
        self._pending += 1
        return self._pending >= self.flush_events or (time.monotonic() - self._last) * 1000.0 >= self.flush_ms

    def _reference(self) -> int:
        """``T0``: set once by the first worker that syncs an event (``SET NX``), read by all."""
        if self.t0_:
            return self.t0_
        e = self.engine
        local = e.scorer.popularity_.t_ref_ or e.scorer.counters_.t_ref_
        key = self.key("t0")
        if local:
            self.state.client.set(key, local, nx=True)
        got = self.state.client.get(key)
        self.t0_ = int(got) if got is not None else 0
        return self.t0_

    def sync(self) -> int:
        """Send the local increments since the last sync and load the totals; returns the
        number of increments sent. Raises what the client raises when Redis is unreachable
        (nothing local changes then, and the increments are sent by the next sync)."""
        t0 = self._reference()
        local = {s.name: s.get(t0) for s in self._sources}
        pipe = self.state.client.pipeline(transaction=False)
        sent = 0
        for s in self._sources:
            d = local[s.name] - self._base[s.name]  # decayed ones: both relative to T0 (fixed once set)
            nz = np.flatnonzero(d)
            if nz.shape[0]:
                key = self.key(s.name)
                for j, x in zip(nz.tolist(), d[nz].tolist()):
                    pipe.hincrbyfloat(key, str(j), x)
                sent += int(nz.shape[0])
        for s in self._sources:
            pipe.hgetall(self.key(s.name))
        res = pipe.execute()
        totals = res[sent:]
        for s, got in zip(self._sources, totals):
            v = self._initial[s.name].copy()
            if got:
                idx = np.array([int(k) for k in got], dtype=np.int64)
                v[idx] += np.array([float(x) for x in got.values()], dtype=_FLAT)
            s.put(v, t0)
            self._base[s.name] = v.copy()  # put may keep v as the live array
        self._pending = 0
        self._last = time.monotonic()
        self.syncs_ += 1
        return sent

    def totals(self) -> dict[str, np.ndarray]:
        """The shared totals as Redis holds them now (no local change), by source name."""
        pipe = self.state.client.pipeline(transaction=False)
        for s in self._sources:
            pipe.hgetall(self.key(s.name))
        out = {}
        for s, got in zip(self._sources, pipe.execute()):
            v = self._initial[s.name].copy()
            if got:
                idx = np.array([int(k) for k in got], dtype=np.int64)
                v[idx] += np.array([float(x) for x in got.values()], dtype=_FLAT)
            out[s.name] = v
        return out
