"""``decisioner train --world DIR | --log FILE --out models/NAME``: train the learned ranker
from a world's events or an engine's event log (see :mod:`decisioner.ranking.train`), report
held-out NDCG@10 and AUC against the affinity scorer, and write the model directory.

``decisioner model DIR``: load a model directory as the engine would serve it (compiled, its
feature schema checked against this release's) and show what it is, its held-out metrics and
where it came from; a model the engine would refuse exits 1 with the reason."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

__all__ = ["add_parser", "run", "run_model", "print_human"]


def add_parser(sub: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    """Register ``train`` on the CLI's subparsers."""
    sp = sub.add_parser("train", help="train the learned ranker (LightGBM) with a time split; write models/NAME")
    common(sp)
    src = sp.add_mutually_exclusive_group(required=True)
    src.add_argument("--world", default=None, help="a world directory (`decisioner generate`)")
    src.add_argument("--log", default=None, help="an engine's event log (events.log of a durable directory)")
    sp.add_argument("--out", required=True, help="the model directory to write, e.g. models/NAME")
    sp.add_argument("--objective", default="lambdarank", help="lambdarank (default) or binary")
    sp.add_argument("--max-events", type=int, default=None, help="replay only the first N events")
    sp.add_argument("--trees", type=int, default=200, help="boosting rounds (default 200)")
    sp.add_argument("--candidates", type=int, default=50, help="affinity top-N per query (default 50)")
    sp.add_argument("--negatives", type=int, default=10, help="random catalog items added per query (default 10)")
    sp.add_argument("--train-fraction", type=float, default=0.8, help="share of the time span trained on")
    sp.add_argument("--hash-key-env", default=None, help="with --log: the environment variable of the secret")
    sp.add_argument("--labels", default="interactions",
                    help="interactions with items (default), or with --log the logged decisions' slates and outcomes")
    sp = sub.add_parser("model", help="check a model directory as the engine would serve it; show its metrics")
    common(sp)
    sp.add_argument("dir", help="a model directory (model.txt + features.json)")


def run_model(args: argparse.Namespace) -> dict[str, Any]:
    """Carry out ``model``: the served model's description, metrics and provenance."""
    import json
    from pathlib import Path

    from .ranking.stage import load_served

    served = load_served(args.dir)
    out: dict[str, Any] = {"servable": True, **served.describe()}
    for name in ("metrics", "provenance"):
        f = Path(args.dir) / f"{name}.json"
        if f.is_file():
            out[name] = json.loads(f.read_text(encoding="utf-8"))
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Carry out ``train``; returns the report (JSON-ready)."""
    import os

    from .ranking.train import train_from

    key = os.environ.get(args.hash_key_env) if args.hash_key_env else None
    return train_from(
        world=args.world, log=args.log, out=args.out, objective=args.objective, seed=args.seed,
        max_events=args.max_events, trees=args.trees, candidates=args.candidates, negatives=args.negatives,
        train_fraction=args.train_fraction, hash_key=key, labels=args.labels,
    )


def _fmt(c: dict[str, Any]) -> str:
    if not c.get("queries"):
        return "  (no queries)"
    return (f"{c['model']:>8.4f} [{c['model_ci'][0]:.4f}, {c['model_ci'][1]:.4f}]"
            f"{c['affinity']:>9.4f} [{c['affinity_ci'][0]:.4f}, {c['affinity_ci'][1]:.4f}]"
            f"{c['difference']:>+9.4f} [{c['difference_ci'][0]:+.4f}, {c['difference_ci'][1]:+.4f}]")


def print_human(out: dict[str, Any]) -> None:
    """A short table for a terminal."""
    if "servable" in out:
        print(f"servable: {out['source']} ({out['objective']}, {out['trees']} trees, {out['features']} features, "
              f"schema {out['schema_version']}, fingerprint {out['fingerprint'][:16]})")
        for name in ("ndcg@10", "auc"):
            if name in out.get("metrics", {}):
                print(f"  {name:<18}{_fmt(out['metrics'][name])}")
        return
    q = out["queries"]
    print(f"trained {out['trees']} trees ({out['objective']}) on {q['train']} queries; held out {q['held_out']} "
          f"after {out['split_time']}; wrote {out['out']}")
    print(f"  {'held out':<18}{'model [95% CI]':>26}{'affinity [95% CI]':>27}{'difference [95% CI]':>28}")
    for name in ("ndcg@10", "auc", "ndcg@10_retrieved"):
        print(f"  {name:<18}{_fmt(out[name])}")
