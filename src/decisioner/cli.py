"""The ``decisioner`` command: a thin argparse layer over the library.

Errors print one line ``error: ...`` (exit 2 for usage, 1 for bad data or config); tracebacks
only with ``--debug``; ``log check`` also exits 1, after its report, when the log is damaged.
``--json`` prints one JSON object on stdout; progress goes to stderr and only on a terminal.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from . import cli_log, cli_mcp, cli_privacy, cli_state, cli_train, cli_world
from .cli_world import UsageError
from .errors import DecisionerError, SchemaError

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
    res = simulate(args.world, seed=args.seed, max_events=args.max_events, progress=prog, model=args.model)
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
    out["state_digest"] = cli_state.embedded_digest(engine, args.events, out, args.max_events)
    if args.log is not None:
        out["log"] = {"path": args.log, "flush": args.flush, "fsync": args.fsync,
                      "bytes": Path(args.log).stat().st_size}
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
    return report


def _read_records(path: str) -> list[dict[str, Any]]:
    """Records of a JSON-lines (``.jsonl``/``.json``) or CSV file (numbers parsed)."""
    import csv

    import msgspec

    p = Path(path)
    text = p.read_bytes()
    if p.suffix in (".jsonl", ".json", ".ndjson"):
        out = []
        for i, line in enumerate(text.splitlines()):
            if line.strip():
                try:
                    rec = msgspec.json.decode(line)
                except msgspec.DecodeError as exc:
                    raise SchemaError(f"Invalid JSON: {exc} - at line {i + 1} of {str(p)!r}") from None
                if not isinstance(rec, dict):
                    raise SchemaError(f"Expected an object, got `{type(rec).__name__}` - at line {i + 1} of {str(p)!r}")
                out.append(rec)
        return out
    rows = list(csv.DictReader(text.decode().splitlines()))
    for r in rows:
        for k, v in r.items():
            with contextlib.suppress(ValueError):  # not a number: kept as text
                r[k] = float(v) if v not in ("", None) and k not in ("variant", "unit") else v
    return rows


def _cmd_report(args: argparse.Namespace) -> dict[str, Any]:
    import msgspec

    from .evaluation.reports import experiment_report, units_from_records

    records = _read_records(args.log)
    if records and "experiment" in records[0]:  # the engine's decision log (write_jsonl)
        want = args.experiment
        records = [
            r for r in records
            if int(r.get("variant", -1)) >= 0 and int(r.get("slot", 0)) == 0
            and (want is None or str(r["experiment"]) == want)
        ]
    raw_variant, converted, value, raw_names, raw_logged = units_from_records(records)
    order = sorted(range(len(raw_names)), key=lambda i: raw_names[i])
    remap = {old: new for new, old in enumerate(order)}
    names = [raw_names[i] for i in order]
    variant = [remap[int(v)] for v in raw_variant]
    logged = None
    if raw_logged is not None:
        logged = ([remap[int(a)] for a in raw_logged[0]], raw_logged[1], raw_logged[2])
    weights = None
    if args.weights:
        parts = [w.split("=") for w in args.weights.split(",")]
        if all(len(x) == 2 for x in parts):
            wmap = {k.strip(): float(v) for k, v in parts}
            if set(wmap) != set(names):
                raise _UsageError(f"--weights names {sorted(wmap)} do not match the variants {names}")
            weights = [wmap[n] for n in names]
        else:
            weights = [float(x[0]) for x in parts]
    control = args.control if args.control is not None else names[0]
    if control not in names:
        raise _UsageError(f"--control {control!r} is not a variant; variants: {names}")
    rep = experiment_report(
        variant, converted, value, names, experiment=args.experiment or Path(args.log).stem,
        control=control, weights=weights, alpha=args.alpha, correction=args.correction,
        seed=args.seed, logged=logged if args.ipw else None,
    )
    out: dict[str, Any] = msgspec.to_builtins(rep)
    return out


def _cmd_evaluate(args: argparse.Namespace) -> dict[str, Any]:
    import msgspec
    import numpy as np

    from .warmup import warm_up

    warm_up()
    if args.dataset is not None:
        from .evaluation.obd_protocol import ope_benchmark

        if args.log is not None or args.policy is not None:
            raise _UsageError("--dataset runs the published protocol; it takes no --log or --policy")
        return ope_benchmark(
            campaign=args.campaign, behavior=args.behavior, evaluation=args.evaluation,
            n_runs=args.runs, seed=args.seed if args.seed else 12345,
        )
    if args.log is None or args.policy is None:
        raise _UsageError("evaluate needs --dataset obd, or both --log FILE and --policy SPEC")
    from .config import PolicySpec
    from .evaluation.ope import BanditLog, evaluate_policy

    text = Path(args.policy).read_bytes() if Path(args.policy).is_file() else args.policy.encode()
    try:
        spec = msgspec.json.decode(text, type=PolicySpec)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise SchemaError(f"Invalid policy: {exc}") from None
    records = _read_records(args.log)
    if not records:
        raise SchemaError(f"Expected decisions in {args.log!r}, got none")
    if "slot" in records[0]:
        records = [r for r in records if int(r["slot"]) == 0]
    key = "content" if "content" in records[0] else "action"
    names = sorted({str(r[key]) for r in records})
    index = {n: i for i, n in enumerate(names)}
    try:
        log = BanditLog(
            action=np.array([index[str(r[key])] for r in records], dtype=np.int64),
            reward=np.array([float(r.get("reward", 0.0)) for r in records]),
            pscore=np.array([float(r["propensity"]) for r in records]),
            n_actions=len(names),
            time=np.array([int(r.get("time", i)) for i, r in enumerate(records)], dtype=np.int64),
        )
    except KeyError as exc:
        raise SchemaError(f"Expected `{exc.args[0]}` in every decision - at {args.log!r}") from None
    out = evaluate_policy(log, spec, train_fraction=args.train_fraction, n_boot=args.boot, seed=args.seed)
    out["arms"] = names
    return out


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
            extra = f", {out['events']} events, {out['decisions']} decisions, {out['rejected']} rejected"
        print(f"{command}: {out['events_per_s']:.0f} events/s{extra}")
        print(_latency_table("decide latency", out["latency_us"]))
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
    elif command == "report":
        print(f"experiment {out['experiment']} (control {out['control']}, alpha {out['alpha']}, {out['correction']})")
        print(f"  {'variant':<14}{'units':>9}{'conv':>8}{'rate':>9}{'value/unit':>12}")
        for v in out["variants"]:
            print(f"  {v['name']:<14}{v['units']:>9}{v['conversions']:>8}{v['rate']:>9.4f}{v['value_per_unit']:>12.4f}")
        for c in out["comparisons"]:
            print(f"  {c['metric']:<10} {c['variant']} vs {c['control']}: lift {c['abs_lift']:+.4g} "
                  f"[{c['abs_low']:+.4g}, {c['abs_high']:+.4g}] rel {c['rel_lift']:+.2%} p {c['p_value']:.4g} "
                  f"(adj {c['p_adjusted']:.4g}) always-valid p {c['seq_p_value']:.4g}")
        srm = out["srm"]
        print(f"  SRM: chi2 {srm['chi2']:.2f} p {srm['p_value']:.3g}{' FLAGGED' if srm['flagged'] else ''}")
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
    elif command == "evaluate" and "relative_error" in out:
        print(f"OPE on OBD {out['campaign']}: {out['behavior']} -> {out['evaluation']}, "
              f"ground truth {out['ground_truth']:.5f}, {out['n_runs']} runs")
        for e, r in out["relative_error"].items():
            print(f"  {e:<10} estimate {out['estimates'][e]:.5f}  "
                  f"relative error {r:.3f} +- {out['relative_error_std'][e]:.3f}")
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
    sp = sub.add_parser("report", help="experiment report (lift, tests, SRM) from a decision or unit log")
    common(sp)
    sp.add_argument("log", help="JSONL or CSV records with `variant`, optional `unit`, `reward`, `propensity`")
    sp.add_argument("--control", default=None, help="control variant (default: first name in order)")
    sp.add_argument("--weights", default=None, help="intended split, e.g. a=0.5,b=0.5")
    sp.add_argument("--alpha", type=float, default=0.05)
    sp.add_argument("--correction", choices=["holm", "bh", "none"], default="holm")
    sp.add_argument("--experiment", default=None, help="experiment (index in an engine decision log)")
    sp.add_argument("--ipw", action="store_true", help="add IPW lift from the records' propensities")
    sp = sub.add_parser("evaluate", help="off-policy evaluation of a candidate policy against a log")
    common(sp)
    sp.add_argument("--dataset", choices=["obd"], default=None, help="run the published OPE protocol")
    sp.add_argument("--campaign", choices=["all", "men", "women"], default="all")
    sp.add_argument("--behavior", choices=["random", "bts"], default="random")
    sp.add_argument("--evaluation", choices=["random", "bts"], default="bts")
    sp.add_argument("--runs", type=int, default=30, help="bootstrap runs of the OBD protocol")
    sp.add_argument("--log", default=None, help="decision log (JSONL or CSV: content, reward, propensity, time)")
    sp.add_argument("--policy", default=None, help="candidate policy spec: JSON text or a JSON file")
    sp.add_argument("--train-fraction", type=float, default=0.5)
    sp.add_argument("--boot", type=int, default=1000, help="bootstrap resamples of the intervals")
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
    cli_log.add_parser(sub, common)
    cli_privacy.add_parser(sub, common)
    cli_train.add_parser(sub, common)
    cli_mcp.add_parser(sub, common)
    return p


#: a command returns its output, or its output and an exit code (``log check``: 1 when damaged)
_COMMANDS: dict[str, Callable[[argparse.Namespace], dict[str, Any] | tuple[dict[str, Any], int]]] = {
    "warmup": _cmd_warmup,
    "generate": _cmd_generate,
    "simulate": _cmd_simulate,
    "replay": _cmd_replay,
    "bench": _cmd_bench,
    "report": _cmd_report,
    "evaluate": _cmd_evaluate,
    "identity": _cmd_identity,
    "profile": _cmd_profile,
    "log": cli_log.run,
    **dict.fromkeys(cli_world.COMMANDS, cli_world.run),
    "privacy": cli_privacy.run,
    "train": cli_train.run,
    "model": cli_train.run_model,
    "mcp": cli_mcp.run,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``decisioner`` console script; returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
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
        print(json.dumps(out))
    elif args.command in cli_world.COMMANDS:
        cli_world.print_human(args, out)
    elif args.command == "log":
        cli_log.print_human(out, args.target)
    elif args.command == "privacy":
        cli_privacy.print_human(args, out)
    elif args.command in ("train", "model"):
        cli_train.print_human(out)
    else:
        _print_human(args.command, out)
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
