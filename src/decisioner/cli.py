"""The ``decisioner`` command: a thin argparse layer over the library.

Errors print one line ``error: ...`` (exit 2 for usage, 1 for bad data or config); tracebacks
only with ``--debug``; ``log check`` also exits 1, after its report, when the log is damaged.
``--json`` prints one strict JSON object on stdout (:mod:`decisioner.cli_json`: NaN and
infinities are ``null``); progress goes to stderr and only on a terminal. When the reader of
stdout goes away (``... --json | head``) the command exits 141 without a traceback. ``simulate``,
``replay``, ``bench`` and ``outbound`` take ``--log PATH``: the decision log file
(:mod:`decisioner.decisionfile`) that ``report`` and ``evaluate`` read.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from . import cli_json, cli_log, cli_match, cli_mcp, cli_privacy, cli_report, cli_state, cli_train, cli_world
from .cli_world import UsageError
from .errors import DecisionerError

__all__ = ["main"]


class _Progress:
    """A one-line progress bar with the rate and the time left on stderr when it is a terminal;
    silent otherwise (piped, or ``--json``)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self._last = 0.0
        self._start = 0.0

    def __call__(self, label: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not self._start:
            self._start = now
        if done < total and now - self._last < 0.1:
            return
        self._last = now
        width = 30
        filled = int(width * done / max(total, 1))
        bar = f"[{'#' * filled}{'.' * (width - filled)}]"
        sys.stderr.write(f"\r{label:>10} {bar} {done}/{total}{_eta(done, total, now - self._start)}")
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()


def _eta(done: int, total: int, elapsed: float) -> str:
    """`` 12,345/s, ETA 0:41`` (blank until there is a rate to tell).

    >>> _eta(500, 1500, 2.0)
    '  250/s  ETA 0:04'
    """
    if done <= 0 or elapsed <= 0:
        return ""
    rate = done / elapsed
    left = round((total - done) / rate)
    return f"  {rate:,.0f}/s  ETA {left // 60}:{left % 60:02d}"


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

    secs = warm_up(admin=args.all, ranker=args.ranker)
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
    res = simulate(args.world, seed=args.seed, max_events=args.max_events, progress=prog, model=args.model,
                   durable=args.durable, decision_log=args.log)
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

    try:
        shared = cli_state.wants_state(args)
    except cli_state.StateUsageError as exc:
        raise _UsageError(str(exc)) from None
    if shared:
        return cli_state.run(args)
    warm_up()
    engine = _engine_from_args(args)
    if args.event_log is not None:
        Path(args.event_log).unlink(missing_ok=True)  # a benchmark run starts a fresh log
        engine.attach_log(args.event_log, flush=args.flush, fsync=args.fsync)
    prog = _Progress(not args.json)
    try:
        out = replay(
            args.events, engine, max_events=args.max_events, batch=args.batch,
            progress=lambda d, t: prog("replay", d, t),
        )
    finally:
        engine.detach_log()
    if args.event_log is not None:
        out["event_log"] = {"path": args.event_log, "flush": args.flush, "fsync": args.fsync,
                            "bytes": Path(args.event_log).stat().st_size}
    out["state_digest"] = cli_state.embedded_digest(engine, args.events, out, args.max_events)
    if args.log is not None:
        from .decisionfile import write_decisions

        out["decision_log"] = write_decisions(engine, args.log)
    return out


def _cmd_bench(args: argparse.Namespace) -> dict[str, Any]:
    from .bench import BENCH_ATTRIBUTES, build_engine, placements, run_bench, with_consent_and_attributes
    from .warmup import warm_up

    warm_up()
    if not args.json and sys.stderr.isatty():
        sys.stderr.write(f"building {args.profiles} profiles x {args.items} items ...\n")
    options: dict[str, Any] = {}
    if args.log_rows is not None:
        # eight chunks to the window (at most 65,536 rows each, the default chunk)
        options["decision_log"] = {"max_rows": args.log_rows, "chunk_rows": min(65_536, max(128, args.log_rows // 8))}
    if args.pending is not None:
        options["limits"] = {"max_pending_decisions": args.pending}
    if args.consent_attributes:
        options["attributes"] = BENCH_ATTRIBUTES
    if args.model is not None:
        options["placements"] = placements({"model": args.model, "retrieve": args.retrieve})
    state = build_engine(args.profiles, args.items, seed=args.seed, options=options)
    if args.consent_attributes:
        with_consent_and_attributes(state)
    report: dict[str, Any] = run_bench(state, n_decisions=args.decisions, seed=args.seed, churn=args.churn)
    if args.log is not None:
        from .decisionfile import write_decisions

        report["decision_log"] = write_decisions(state.engine, args.log)
    return report


_UsageError = UsageError


def _cmd_identity(args: argparse.Namespace) -> dict[str, Any]:
    from .evaluation.identity import evaluate_path, evaluate_world
    from .warmup import warm_up

    warm_up()
    if args.world is not None:
        return evaluate_path(args.world, rules=args.rules)
    if args.people is None:
        raise _UsageError("identity evaluate needs --world DIR (or --people N to generate one in memory)")
    from .datasets.synthetic import WorldSpec, generate_world

    world = generate_world(WorldSpec(
        n_people=args.people, n_items=500, seed=args.seed,
        shared_device_rate=args.shared_device_rate, placeholder_rate=args.placeholder_rate,
    ))
    if args.rules == "off":
        return evaluate_world(world, rules=False)
    out = evaluate_world(world, rules=True)
    if args.rules == "both":
        off = evaluate_world(world, rules=False)
        out["rules_off"] = {k: off[k] for k in ("precision", "recall", "f1", "recall_all_pairs",
                                                "over_merged_people", "under_merged_people", "profiles")}
    return out


def _cmd_profile(args: argparse.Namespace) -> dict[str, Any]:
    import os

    from .engine import Engine

    ids: dict[str, str] = {}
    for item in args.id:
        id_type, sep, value = item.partition("=")
        if not (sep and id_type and value):
            raise _UsageError(f"--id expects TYPE=VALUE, got {item!r}")
        ids[id_type] = value
    key = None
    if args.hash_key_env is not None:
        key = os.environ.get(args.hash_key_env)
        if not key:
            raise _UsageError(f"--hash-key-env names {args.hash_key_env!r}, which is not set")
    engine = Engine.open(args.dir, hash_key=key, flush="off")  # read-only: replays the log, writes nothing
    out = engine.export(ids)
    if not out["found"]:
        return {"found": False, "erased": out["erased"]}
    keep = ("found", "person", "profile", "last_seen", "events", "consent", "attributes", "interests")
    return {k: out[k] for k in keep}


def _print_human(command: str, out: dict[str, Any]) -> None:
    if command == "simulate":
        print(f"closed-loop simulation: {out['events']} events, {out['people']} people, {out['items']} items, "
              f"seed {out['seed']}")
        print(f"  {'policy':<10}{'decisions':>11}{'CTR':>10}{'conv/imp':>10}{'campaign CTR':>14}")
        for name, ctr in out["ctr"].items():
            print(f"  {name:<10}{out['decisions'][name]:>11}{ctr:>10.4f}{out['conversion'][name]:>10.4f}"
                  f"{out['campaign_ctr'][name]:>14.4f}")
        for key in ("lift_vs_random", "lift_vs_popular"):
            if key in out:
                print(f"  {key.replace('_', ' ')}: {out[key]}x")
        if "latency_us" in out:
            print(_latency_table("engine decide latency", out["latency_us"]))
    elif command == "identity":
        w = out["world"]
        print(f"identity resolution: {out['people']} people, {out['identifiers']} identifiers, "
              f"{out['events']} events (shared devices {w['shared_device_rate']}, "
              f"placeholders {w['placeholder_rate']})")
        rows = [("rules " + out["rules"], out)]
        if "rules_off" in out:
            rows.append(("rules off", out["rules_off"]))
        print(f"  {'':<10}{'precision':>10}{'recall':>10}{'F1':>10}{'over':>8}{'under':>8}")
        for name, r in rows:
            print(f"  {name:<10}{r['precision']:>10.4f}{r['recall']:>10.4f}{r['f1']:>10.4f}"
                  f"{r['over_merged_people']:>8}{r['under_merged_people']:>8}")
        print(f"  refused: {out['refused']}")
    elif command == "replay" and "per_worker" in out:
        cli_state.print_human(out, _latency_table)
    elif command in ("replay", "bench"):
        extra = ""
        if command == "bench":
            mem = out.get("memory", {})
            extra = (f", {out['profiles']} profiles x {out['items']} items, "
                     f"{mem.get('bytes_per_profile', 0)} B/profile, {mem.get('bytes_per_identifier', 0)} B/identifier")
        else:
            extra = (f", {out['events']} events, {out['decisions']} decisions, {out['rejected']} rejected"
                     f", batch {out['batch']}")
        print(f"{command}: {out['events_per_s']:.0f} events/s{extra}")
        print(_latency_table("decide latency", out["latency_us"]))
        if out.get("batch", 1) > 1:
            print(f"  (inside each batch, decoding apart: {out['decode_us_per_event']:.1f} us per event, amortised)")
        if "state_digest" in out:
            print(f"state digest: {out['state_digest']}")
        if command == "bench":
            print(_memory_line("memory", out["memory"]))
        if "churn" in out:
            ch = out["churn"]
            m = ch["memory"]
            print(f"churn: {ch['decisions']} new people at capacity {m['max_profiles']}: "
                  f"{ch['evicted']} profiles evicted, {m['live_profiles']} live, "
                  f"{m['bytes_per_profile']} B/profile, {m['bytes_per_identifier']} B/identifier")
            print(_latency_table("new-person decide latency (eviction included)", ch["latency_us"]))
            print(_memory_line("memory after churn", m))
    elif command == "profile":
        if not out["found"]:
            erased = [t for t, gone in out["erased"].items() if gone]
            print("no profile holds these identifiers" + (f" (erased: {', '.join(erased)})" if erased else ""))
            return
        print(f"person {out['person']} (profile row {out['profile']}): {out['events']} events, "
              f"last seen {out['last_seen']}")
        print(f"  {'attribute':<16}{'value':<24}{'source':<14}{'time':>15}  rule")
        for name, a in out["attributes"].items():
            print(f"  {name:<16}{a['value']!s:<24}{a['source']:<14}{a['time']:>15}  {a['rule']}")
        granted = [p for p, ok in out["consent"].items() if ok]
        print(f"  consent: {', '.join(granted) or 'none'}")
        print("  interests: " + ", ".join(f"{fv} {s:.3g}" for fv, s in out["interests"][:5]))
    else:
        for k, v in out.items():
            print(f"{k}: {v}")


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB"):
        if abs(n) < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def _memory_line(title: str, mem: dict[str, Any]) -> str:
    """Bytes per component, the total, the tombstones and the decision log's window."""
    parts = ", ".join(f"{k.replace('_', ' ')} {_size(v)}" for k, v in mem["components"].items())
    return (f"{title}: {parts}; total {_size(mem['total_bytes'])}; {mem['tombstones']} tombstones "
            f"({_size(mem['tombstone_bytes'])}); decision log {mem['decision_log_rows']} rows in memory, "
            f"{mem['decision_log_dropped_rows']} dropped; {mem['pending_outcomes']} pending outcomes; "
            f"rss {mem['rss_mb']} MiB")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="decisioner", description="In-process personalization decisions.")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = p.add_subparsers(dest="command", required=True)

    def common(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--json", action="store_true", help="print one JSON object on stdout")
        sp.add_argument("--seed", type=int, default=0)

    sp = sub.add_parser("warmup", help="compile (or load cached) kernels")
    common(sp)
    sp.add_argument("--all", action="store_true",
                    help="also the admin kernels (forget, unlink, split, expire), e.g. to fill a cache at build time")
    sp.add_argument("--ranker", action="store_true", help="also the learned ranker's kernels")
    sp = sub.add_parser("generate", help="write a seeded synthetic world")
    common(sp)
    sp.add_argument("--people", type=int, default=20_000)
    sp.add_argument("--items", type=int, default=5_000)
    sp.add_argument("--out", required=True)
    sp = sub.add_parser("simulate", help="closed-loop simulation vs random and popular baselines")
    common(sp)
    sp.add_argument("--world", required=True)
    sp.add_argument("--max-events", type=int, default=None)
    sp.add_argument("--model", default=None, help="a trained model directory: adds the policy `ranker`")
    sp.add_argument("--durable", default=None, metavar="DIR",
                    help="write the engine policy's log (decisions, outcomes, events) here, for `train --log`")
    sp.add_argument("--log", default=None,
                    help="write the engine policy's decision log here (the file `report` and `evaluate` read)")
    sp = sub.add_parser("replay", help="open-loop replay of an event log with a latency report")
    common(sp)
    sp.add_argument("events")
    sp.add_argument("--world", default=None)
    sp.add_argument("--config", default=None)
    sp.add_argument("--catalog", default=None)
    sp.add_argument("--max-events", type=int, default=None)
    sp.add_argument("--log", default=None, help="write the decision log here (the file `report` and `evaluate` read)")
    sp.add_argument("--event-log", default=None, help="write-ahead event log file (a fresh one per run)")
    sp.add_argument("--flush", choices=("event", "interval"), default="event", help="event log flush policy")
    sp.add_argument("--fsync", action="store_true", help="force every event log write to the device")
    sp.add_argument("--batch", type=int, default=4096,
                    help="events per batch (the same results as one by one; 1: one call per event)")
    cli_state.add_arguments(sp)
    sp = sub.add_parser("bench", help="decide latency on a state of the given size")
    common(sp)
    sp.add_argument("--profiles", type=int, default=1_000_000)
    sp.add_argument("--items", type=int, default=10_000)
    sp.add_argument("--decisions", type=int, default=20_000)
    sp.add_argument("--churn", type=int, default=20_000,
                    help="then this many decisions for new people, at capacity (each evicts; 0: skip)")
    sp.add_argument("--log-rows", type=int, default=None,
                    help="decision log rows kept in memory (`decision_log.max_rows`; default 1,000,000)")
    sp.add_argument("--pending", type=int, default=None,
                    help="decisions an outcome may still join (`limits.max_pending_decisions`; default 1,000,000)")
    sp.add_argument("--consent-attributes", action="store_true",
                    help="requests carry three declared attributes and consent changes; 10%% refuse analytics")
    sp.add_argument("--model", default=None, help="a trained model directory re-ranking `home`'s retrieval")
    sp.add_argument("--retrieve", type=int, default=1000, help="candidates the model re-ranks (with --model)")
    sp.add_argument("--log", default=None, help="write the decision log here (the file `report` reads)")
    sp = sub.add_parser("identity", help="identity resolution tools")
    isub = sp.add_subparsers(dest="identity_command", required=True)
    ip = isub.add_parser("evaluate", help="pairwise precision/recall/F1 against a synthetic world's true people")
    common(ip)
    ip.add_argument("--world", default=None, help="world directory (`decisioner generate`)")
    ip.add_argument("--rules", choices=("on", "off", "both"), default="both",
                    help="merge rules on, off, or on with the rules-off figures beside them")
    ip.add_argument("--people", type=int, default=None, help="generate a world of N people in memory instead")
    ip.add_argument("--shared-device-rate", type=float, default=0.03)
    ip.add_argument("--placeholder-rate", type=float, default=0.02)
    sp = sub.add_parser("profile", help="one person's attributes (with provenance), consent and interests")
    common(sp)
    sp.add_argument("--dir", required=True, help="a durable directory (`Engine.durable`); opened read-only")
    sp.add_argument("--id", action="append", required=True, metavar="TYPE=VALUE",
                    help="an identifier of the person, e.g. email=ada@example.com (repeatable)")
    sp.add_argument("--hash-key-env", default=None,
                    help="environment variable holding the secret (default: the one the saved configuration names)")
    cli_world.add_parser(sub, common)
    cli_report.add_parser(sub, common)
    cli_log.add_parser(sub, common)
    cli_privacy.add_parser(sub, common)
    cli_train.add_parser(sub, common)
    cli_match.add_parser(sub, common)
    cli_mcp.add_parser(sub, common)
    return p


#: a command returns its output, or its output and an exit code (``log check``: 1 when damaged)
_COMMANDS: dict[str, Callable[[argparse.Namespace], dict[str, Any] | tuple[dict[str, Any], int]]] = {
    "warmup": _cmd_warmup,
    "generate": _cmd_generate,
    "simulate": _cmd_simulate,
    "replay": _cmd_replay,
    "bench": _cmd_bench,
    **dict.fromkeys(cli_report.COMMANDS, cli_report.run),
    "identity": _cmd_identity,
    "profile": _cmd_profile,
    "log": cli_log.run,
    **dict.fromkeys(cli_world.COMMANDS, cli_world.run),
    "privacy": cli_privacy.run,
    "train": cli_train.run,
    "model": cli_train.run_model,
    "mcp": cli_mcp.run,
    "match": cli_match.run,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``decisioner`` console script; returns the exit code
    (:data:`~decisioner.cli_json.EXIT_BROKEN_PIPE` when the reader of stdout went away)."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        code = _run(args)
        sys.stdout.flush()  # inside the guard: a closed pipe fails here, not at the interpreter's exit
    except BrokenPipeError:
        return cli_json.quiet_broken_pipe()
    return code


def _run(args: argparse.Namespace) -> int:
    try:
        res = _COMMANDS[args.command](args)
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
    out, code = res if isinstance(res, tuple) else (res, 0)
    if args.command == "mcp":  # stdout carried the protocol
        return code
    if args.json:
        print(cli_json.dumps(out))
    elif args.command in cli_world.COMMANDS:
        cli_world.print_human(args, out)
    elif args.command == "log":
        cli_log.print_human(out, args.target)
    elif args.command == "privacy":
        cli_privacy.print_human(args, out)
    elif args.command in ("train", "model"):
        cli_train.print_human(out)
    elif args.command in cli_report.COMMANDS:
        cli_report.print_human(args.command, out)
    elif args.command == "match":
        cli_match.print_human(out)
    else:
        _print_human(args.command, out)
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
