"""The ``decisioner`` command: a thin argparse layer over the library.

Errors print one line ``error: ...`` (exit 2 for usage, 1 for bad data or config); tracebacks
only with ``--debug``. ``--json`` prints one JSON object on stdout; progress goes to stderr and
only on a terminal.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .errors import DecisionerError

__all__ = ["main"]


class _Progress:
    """A one-line progress bar on stderr when it is a terminal; silent otherwise."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self._last = 0.0

    def __call__(self, label: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if done < total and now - self._last < 0.1:
            return
        self._last = now
        width = 30
        filled = int(width * done / max(total, 1))
        sys.stderr.write(f"\r{label:>10} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()


def _latency_table(title: str, lat: dict[str, Any]) -> str:
    cols = ("p50", "p95", "p99", "p999", "max")
    head = "  ".join(f"{c:>9}" for c in cols)
    vals = "  ".join(f"{lat[c]:>9.1f}" for c in cols)
    return (
        f"{title} (microseconds, {lat['count']} decisions, {lat['over_30ms']} over 30 ms)\n"
        f"  {head}\n  {vals}"
    )


def _cmd_warmup(args: argparse.Namespace) -> dict[str, Any]:
    from .warmup import warm_up

    secs = warm_up()
    return {"warm_up_s": round(secs, 3)}


def _cmd_generate(args: argparse.Namespace) -> dict[str, Any]:
    from .datasets.synthetic import WorldSpec, generate_world, write_world

    t0 = time.perf_counter()
    spec = WorldSpec(n_people=args.people, n_items=args.items, seed=args.seed)
    world = generate_world(spec)
    out = write_world(world, args.out)
    return {
        "world": str(out), "people": args.people, "items": args.items, "events": len(world.events),
        "seconds": round(time.perf_counter() - t0, 2),
    }


def _cmd_simulate(args: argparse.Namespace) -> dict[str, Any]:
    from .simulate import simulate
    from .warmup import warm_up

    warm_up()
    prog = _Progress(not args.json)
    res = simulate(args.world, seed=args.seed, max_events=args.max_events, progress=prog)
    return res.to_dict()


def _engine_from_args(args: argparse.Namespace) -> Any:
    from .engine import Engine

    if args.world is not None:
        return Engine.from_world(args.world, seed=args.seed)
    if args.config is None or args.catalog is None:
        raise _UsageError("replay needs --world DIR, or both --config and --catalog")
    return Engine.from_files(args.config, args.catalog, seed=args.seed)


def _cmd_replay(args: argparse.Namespace) -> dict[str, Any]:
    from .replay import replay
    from .warmup import warm_up

    warm_up()
    engine = _engine_from_args(args)
    if args.log is not None:
        Path(args.log).unlink(missing_ok=True)  # a benchmark run starts a fresh log
        engine.attach_log(args.log, flush=args.flush, fsync=args.fsync)
    prog = _Progress(not args.json)
    try:
        out = replay(
            args.events, engine, max_events=args.max_events,
            progress=lambda d, t: prog("replay", d, t),
        )
    finally:
        engine.detach_log()
    if args.log is not None:
        out["log"] = {"path": args.log, "flush": args.flush, "fsync": args.fsync,
                      "bytes": Path(args.log).stat().st_size}
    return out


def _cmd_bench(args: argparse.Namespace) -> dict[str, Any]:
    from .bench import build_engine, run_bench
    from .warmup import warm_up

    warm_up()
    if not args.json and sys.stderr.isatty():
        sys.stderr.write(f"building {args.profiles} profiles x {args.items} items ...\n")
    state = build_engine(args.profiles, args.items, seed=args.seed)
    report: dict[str, Any] = run_bench(state, n_decisions=args.decisions, seed=args.seed)
    return report


class _UsageError(Exception):
    pass


def _print_human(command: str, out: dict[str, Any]) -> None:
    if command == "simulate":
        print(f"closed-loop simulation: {out['events']} events, {out['people']} people, {out['items']} items, seed {out['seed']}")
        print(f"  {'policy':<10}{'decisions':>11}{'CTR':>10}{'conv/imp':>10}{'campaign CTR':>14}")
        for name, ctr in out["ctr"].items():
            print(f"  {name:<10}{out['decisions'][name]:>11}{ctr:>10.4f}{out['conversion'][name]:>10.4f}{out['campaign_ctr'][name]:>14.4f}")
        for key in ("lift_vs_random", "lift_vs_popular"):
            if key in out:
                print(f"  {key.replace('_', ' ')}: {out[key]}x")
        if "latency_us" in out:
            print(_latency_table("engine decide latency", out["latency_us"]))
    elif command in ("replay", "bench"):
        extra = ""
        if command == "bench":
            mem = out.get("memory", {})
            extra = f", {out['profiles']} profiles x {out['items']} items, {mem.get('bytes_per_profile', 0)} B/profile"
        else:
            extra = f", {out['events']} events, {out['decisions']} decisions, {out['rejected']} rejected"
        print(f"{command}: {out['events_per_s']:.0f} events/s{extra}")
        print(_latency_table("decide latency", out["latency_us"]))
    else:
        for k, v in out.items():
            print(f"{k}: {v}")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="decisioner", description="In-process personalization decisions.")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = p.add_subparsers(dest="command", required=True)

    def common(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--json", action="store_true", help="print one JSON object on stdout")
        sp.add_argument("--seed", type=int, default=0)

    sp = sub.add_parser("warmup", help="compile (or load cached) kernels")
    common(sp)
    sp = sub.add_parser("generate", help="write a seeded synthetic world")
    common(sp)
    sp.add_argument("--people", type=int, default=20_000)
    sp.add_argument("--items", type=int, default=5_000)
    sp.add_argument("--out", required=True)
    sp = sub.add_parser("simulate", help="closed-loop simulation vs random and popular baselines")
    common(sp)
    sp.add_argument("--world", required=True)
    sp.add_argument("--max-events", type=int, default=None)
    sp = sub.add_parser("replay", help="open-loop replay of an event log with a latency report")
    common(sp)
    sp.add_argument("events")
    sp.add_argument("--world", default=None)
    sp.add_argument("--config", default=None)
    sp.add_argument("--catalog", default=None)
    sp.add_argument("--max-events", type=int, default=None)
    sp.add_argument("--log", default=None, help="write-ahead event log file (a fresh one per run)")
    sp.add_argument("--flush", choices=("event", "interval"), default="event", help="log flush policy")
    sp.add_argument("--fsync", action="store_true", help="force every log write to the device")
    sp = sub.add_parser("bench", help="decide latency on a state of the given size")
    common(sp)
    sp.add_argument("--profiles", type=int, default=1_000_000)
    sp.add_argument("--items", type=int, default=10_000)
    sp.add_argument("--decisions", type=int, default=20_000)
    return p


_COMMANDS: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {
    "warmup": _cmd_warmup,
    "generate": _cmd_generate,
    "simulate": _cmd_simulate,
    "replay": _cmd_replay,
    "bench": _cmd_bench,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``decisioner`` console script; returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        out = _COMMANDS[args.command](args)
    except _UsageError as exc:
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (DecisionerError, OSError) as exc:
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(out))
    else:
        _print_human(args.command, out)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
