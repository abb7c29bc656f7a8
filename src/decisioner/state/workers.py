"""Replay of one event log by N worker processes that share their state on Redis.

The events are dealt round robin: event ``j`` goes to worker ``j mod N``, so one person's events
land on different workers, as a load balancer spreads a person's requests over web workers. Each
worker is a process of its own with its own embedded engine (:class:`~decisioner.state.shared.
SharedEngine`), all on one Redis (standalone or Cluster).

Order (``order``):

* ``"person"`` (default): a worker starts event ``j`` only once the previous event of the same
  *identifier component* is done (the events' identifiers joined by union-find in the file's
  order, a superset of a person), as a person's browser waits for one answer before the next
  request. Different people run concurrently; each person's events apply in the file's order, so
  the final state equals one embedded engine's replay of the file (:mod:`decisioner.state.digest`).
* ``"free"``: no waiting; a person's events may race on several workers (compare-and-set keeps
  every update, in the order the writes commit). Order-dependent state (a consent withdrawal
  before or after a grant, an attribute set twice at one event time) may then differ from the
  file's order.

Every worker syncs its counters and log when it is done; the digest is computed after all have.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from ..errors import ConfigError, DecisionerError

__all__ = ["dependencies", "replay_workers", "shared_canonical"]


class _Ids(msgspec.Struct):
    ids: dict[str, str] = {}


_IDS = msgspec.json.Decoder(_Ids)


def dependencies(lines: list[bytes], engine: Any) -> np.ndarray:
    """``prev[j]``: the last event before ``j`` in the same identifier component (-1: none),
    int64. Identifiers are compared by their keyed hash (normalised values), as the graph does."""
    parent: dict[int, int] = {}
    last: dict[int, int] = {}

    def find(x: int) -> int:
        root = x
        while parent.get(root, root) != root:
            root = parent[root]
        while parent.get(x, x) != root:
            parent[x], x = root, parent[x]
        return root

    prev = np.full(len(lines), -1, dtype=np.int64)
    for j, line in enumerate(lines):
        try:
            ids = _IDS.decode(line).ids
            keys = engine.identity.keys_of(ids)[0][0].tolist() if ids else []
        except (msgspec.DecodeError, DecisionerError):
            continue
        roots = {find(k) for k in keys}
        if not roots:
            continue
        prev[j] = max((last.get(r, -1) for r in roots), default=-1)
        top = roots.pop()
        for r in roots:
            parent[r] = top
        last[top] = j
        for r in roots:
            last.pop(r, None)
    return prev


def _decide_on(engine: Any) -> dict[str, str]:
    rec = next((p.name for p in engine.config.placements if p.kind == "recommendation"), None)
    camp = next((p.name for p in engine.config.placements if p.kind == "campaign"), None)
    out = {}
    if rec is not None:
        out["view"] = rec
    if camp is not None:
        out["email_open"] = camp
    return out


def _worker(i: int, n: int, opts: dict[str, Any], prev: Any, done: Any, queue: Any) -> None:
    """One worker process: its share of the events, then a final sync; puts its report."""
    from ..engine import Engine
    from ..replay import latency_summary
    from ..schemas import decode_event
    from ..warmup import warm_up
    from .connection import RedisState
    from .shared import SharedEngine

    try:
        warm_up()
        engine = Engine.from_world(opts["world"], seed=opts["seed"], instance=f"w{i}")
        state = RedisState.from_url(opts["url"], key_prefix=opts["key_prefix"], cluster=opts["cluster"])
        shared = SharedEngine.connect(engine, state, log=opts["log"], log_dir=opts.get("log_dir"))
        with open(opts["events"], "rb") as fh:
            lines = [ln for ln in fh if ln.strip()][: opts["max_events"]]
        decide_on = _decide_on(engine)
        limit = engine.config.limits.max_payload_bytes
        mine = range(i, len(lines), n)
        dec_lat = np.empty(len(mine), dtype=np.float64)
        trk_lat = np.empty(len(mine), dtype=np.float64)
        n_dec = n_trk = rejected = waits = 0
        ordered = opts["order"] == "person"
        perf = time.perf_counter_ns
        t_start = time.perf_counter()
        for j in mine:
            p = prev[j]
            if ordered and p >= 0 and not done[p]:
                waits += 1
                while not done[p]:
                    time.sleep(0.0001)
            t0 = perf()
            try:
                ev = decode_event(lines[j], max_bytes=limit)
                placement = decide_on.get(str(ev.__struct_config__.tag))
                if placement is not None:
                    shared.decide(ev, placement=placement)
                    dec_lat[n_dec] = (perf() - t0) / 1000.0
                    n_dec += 1
                else:
                    shared.track(ev)
                    trk_lat[n_trk] = (perf() - t0) / 1000.0
                    n_trk += 1
            except DecisionerError as exc:
                if type(exc).__name__ == "StateUnavailable":
                    raise
                rejected += 1
            done[j] = 1
        shared.sync()
        seconds = time.perf_counter() - t_start
        queue.put({
            "worker": i, "events": len(mine), "decisions": n_dec, "rejected": rejected, "seconds": round(seconds, 3),
            "events_per_s": round(len(mine) / seconds, 1) if seconds > 0 else 0.0,
            "latency_us": latency_summary(dec_lat[:n_dec]), "track_latency_us": latency_summary(trk_lat[:n_trk]),
            "retries": shared.retries_, "waits": waits, "degraded": shared.degraded_,
        })
        state.close()
    except BaseException as exc:  # the parent reports it; a worker never hangs the others silently
        queue.put({"worker": i, "error": f"{type(exc).__name__}: {exc}"})
        for j in range(i, len(done), n):
            done[j] = 1


def replay_workers(
    events_path: str | Path, world: str | Path, *, url: str, workers: int = 1, key_prefix: str = "dcs",
    cluster: bool = False, seed: int = 0, order: str = "person", max_events: int | None = None, log: str = "redis",
    log_dir: str | None = None, clear: bool = True,
) -> dict[str, Any]:
    """Replay ``events_path`` through ``workers`` processes sharing state on Redis at ``url``
    (see the module docstring); returns the totals, a report per worker and ``state_digest``.

    ``clear`` deletes this prefix's keys first (a benchmark starts from an empty state).

    Raises
    ------
    ConfigError
        Bad ``workers`` or ``order``.
    StateUnavailable
        Redis unreachable (from the parent's checks).
    """
    from ..engine import Engine
    from .connection import RedisState

    if not 1 <= workers <= 64:
        raise ConfigError(f"Expected `workers` in [1, 64], got {workers!r} - at `--workers`")
    if order not in ("person", "free"):
        raise ConfigError(f"Expected `order` to be 'person' or 'free', got {order!r} - at `--order`")
    with open(events_path, "rb") as fh:
        lines = [ln for ln in fh if ln.strip()]
    if max_events is not None:
        lines = lines[:max_events]
    engine = Engine.from_world(world, seed=seed)
    state = RedisState.from_url(url, key_prefix=key_prefix, cluster=cluster)
    try:
        if clear:
            _clear(state)
        prev = dependencies(lines, engine)
        ctx = mp.get_context("spawn")
        prev_arr = ctx.RawArray("q", prev.tolist() or [0])
        done = ctx.RawArray("b", max(1, len(lines)))
        queue = ctx.Queue()
        opts = {"world": str(world), "seed": seed, "url": url, "key_prefix": key_prefix, "cluster": cluster,
                "events": str(events_path), "max_events": len(lines), "order": order, "log": log, "log_dir": log_dir}
        t0 = time.perf_counter()
        procs = [ctx.Process(target=_worker, args=(i, workers, opts, prev_arr, done, queue)) for i in range(workers)]
        for p in procs:
            p.start()
        reports = _collect(queue, procs)
        seconds = time.perf_counter() - t0
        errors = [r["error"] for r in reports if "error" in r]
        if errors:
            raise DecisionerError(f"Expected every worker to finish, got {'; '.join(errors)} - at `replay --workers`")
        reports.sort(key=lambda r: r["worker"])
        at = _last_time(lines)
        canon = shared_canonical(world, state, at=at, seed=seed)
        from .digest import digest

        total_ev = sum(r["events"] for r in reports)
        busiest = max(r["seconds"] for r in reports)
        return {
            "backend": "redis", "cluster": cluster, "workers": workers, "order": order, "events": total_ev,
            "decisions": sum(r["decisions"] for r in reports), "rejected": sum(r["rejected"] for r in reports),
            "seconds": round(seconds, 3), "events_per_s": round(total_ev / busiest, 1) if busiest > 0 else 0.0,
            "per_worker": reports, "state_digest": digest(canon), "people": len(canon["people"]),
        }
    finally:
        state.close()


def _collect(queue: Any, procs: list[Any]) -> list[dict[str, Any]]:
    """Every worker's report; a worker that died without one (killed, crashed at start) is
    reported as an error instead of hanging the parent."""
    import queue as _queue

    reports: dict[int, dict[str, Any]] = {}
    while len(reports) < len(procs):
        try:
            r = queue.get(timeout=0.5)
            reports[r["worker"]] = r
        except _queue.Empty:
            for i, p in enumerate(procs):
                if i not in reports and not p.is_alive() and p.exitcode is not None:
                    try:  # its report may have arrived meanwhile
                        r = queue.get(timeout=0.5)
                        reports[r["worker"]] = r
                    except _queue.Empty:
                        reports[i] = {"worker": i, "error": f"the process ended with exit code {p.exitcode}"}
    for p in procs:
        p.join()
    return [reports[i] for i in sorted(reports)]


def _last_time(lines: list[bytes]) -> int:
    class _T(msgspec.Struct):
        time: int = 0

    dec = msgspec.json.Decoder(_T)
    t = 0
    for ln in lines:
        try:
            t = max(t, dec.decode(ln).time)
        except msgspec.DecodeError:
            continue
    return t


def _clear(state: Any) -> None:
    """Delete every key of this prefix (on each master of a Cluster, one key at a time there:
    the keys of one node may lie in different slots)."""

    def clear() -> None:
        client = state.client
        pattern = f"{{{state.prefix}:*"
        conns = [n.redis_connection for n in client.get_primaries()] if state.cluster else [client]
        for c in conns:
            keys = list(c.scan_iter(match=pattern, count=1000))
            if state.cluster:
                for k in keys:
                    c.delete(k)
            else:
                for j in range(0, len(keys), 500):
                    c.delete(*keys[j : j + 500])

    state.run(clear, "clear")


def shared_canonical(world: str | Path, state: Any, *, at: int, seed: int = 0) -> dict[str, Any]:
    """The canonical state (:func:`decisioner.state.digest.canonical`) of what Redis holds: the
    server's identity partition, every person's row and the counter totals, loaded into a fresh
    engine over ``world``."""
    from ..engine import Engine
    from .counters import SharedCounters
    from .digest import canonical
    from .shared import SharedEngine

    engine = Engine.from_world(world, seed=seed, instance="digest")
    shared = SharedEngine.connect(engine, state, log="off")
    ident = shared.identity.identity  # type: ignore[attr-defined]
    persons: dict[int, list[int]] = {}
    for key, (pid, st) in ident.nodes().items():
        if st == 0 and pid > 0:
            persons.setdefault(pid, []).append(key)
    people: dict[int, list[int]] = {}
    for pid, keys in persons.items():
        row = shared._local_row(pid)
        shared._current(row, pid)
        people[row] = keys
    counters = SharedCounters(engine, state)
    state.run(counters.sync, "counter totals")
    return canonical(engine, people, at=at, counters={"decisions": counters.decisions_})
