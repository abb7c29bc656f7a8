"""``decisioner replay ... --state redis://HOST:PORT --workers N``: the replay over shared state.

Without ``--state`` the replay runs on the embedded engine as before and its report gains
``state_digest`` (:mod:`decisioner.state.digest`); with ``--state`` it runs ``--workers``
processes over Redis (:func:`decisioner.state.workers.replay_workers`) and reports events/s and
decide latency per worker and the same digest, equal for the same events whatever the backend
and the number of workers (``--order person``, the default).
"""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_arguments", "embedded_digest", "print_human", "run"]


class StateUsageError(Exception):
    """A usage error of the state options (the CLI prints it and exits with 2)."""


def add_arguments(sp: argparse.ArgumentParser) -> None:
    """The state options of ``replay``."""
    sp.add_argument("--state", default=None, metavar="URL",
                    help="redis://HOST:PORT (or rediss://): replay over shared state on Redis")
    sp.add_argument("--workers", type=int, default=1, help="worker processes sharing the state (with --state)")
    sp.add_argument("--cluster", action="store_true", help="the --state URL names a node of a Redis Cluster")
    sp.add_argument("--key-prefix", default="dcs", help="prefix of every key (default dcs); its keys are cleared first")
    sp.add_argument("--order", choices=("person", "free"), default="person",
                    help="person: each person's events in file order (default); free: they may race")
    sp.add_argument("--state-log", choices=("redis", "files", "off"), default="redis",
                    help="where workers send decisions: a Redis Stream (default), files in --state-log-dir, off")
    sp.add_argument("--state-log-dir", default=None, help="directory of the decision files (--state-log files)")


def wants_state(args: argparse.Namespace) -> bool:
    """Whether the replay runs over shared state (else the embedded engine).

    Raises
    ------
    StateUsageError
        ``--workers`` above 1 without ``--state``, or ``--state`` without ``--world``.
    """
    if args.state is None:
        if args.workers != 1:
            raise StateUsageError("--workers needs --state redis://HOST:PORT (the embedded engine is one process)")
        return False
    if args.world is None:
        raise StateUsageError("--state needs --world DIR (every worker process loads the world)")
    if args.event_log is not None or args.log is not None:
        raise StateUsageError("--event-log and --log are the embedded engine's logs; with --state, Redis persists the "
                              "state and --state-log chooses where decisions go")
    if args.batch != 4096:
        raise StateUsageError("--batch is the embedded engine's batch path; with --state each worker takes one event "
                              "at a time")
    return True


def run(args: argparse.Namespace) -> dict[str, Any]:
    """The replay over Redis (see the module docstring)."""
    from .state.workers import replay_workers

    return replay_workers(
        args.events, args.world, url=args.state, workers=args.workers, key_prefix=args.key_prefix,
        cluster=args.cluster, seed=args.seed, order=args.order, max_events=args.max_events, log=args.state_log,
        log_dir=args.state_log_dir,
    )


def embedded_digest(engine: Any, events: str, out: dict[str, Any], max_events: int | None = None) -> str:
    """The :mod:`decisioner.state.digest` of an embedded engine after :func:`decisioner.replay.replay`."""
    import numpy as np

    from .state.digest import canonical, digest, people_of_engine
    from .state.workers import _last_time

    with open(events, "rb") as fh:
        lines = [ln for ln in fh if ln.strip()][:max_events]
    by = out["decisions_by_placement"]
    decisions = np.array([by.get(n, 0) for n in engine.placements], dtype=np.float64)
    return digest(canonical(engine, people_of_engine(engine), at=_last_time(lines), counters={"decisions": decisions}))


def print_human(out: dict[str, Any], latency_table: Any) -> None:
    """The report of a replay over Redis, one block per worker."""
    print(f"replay over redis ({'cluster' if out['cluster'] else 'standalone'}): {out['workers']} workers, "
          f"{out['events']} events, {out['decisions']} decisions, {out['rejected']} rejected, "
          f"{out['events_per_s']:.0f} events/s, order {out['order']}")
    for r in out["per_worker"]:
        print(f"worker {r['worker']}: {r['events']} events, {r['events_per_s']:.0f} events/s, "
              f"{r['retries']} retries, {r['waits']} waits")
        print(latency_table("  decide latency", r["latency_us"]))
    print(f"state digest: {out['state_digest']}")
