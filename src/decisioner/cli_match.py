"""``decisioner match``: match a load of CRM records (:mod:`decisioner.matching`) and write the
suggestions; ``decisioner match review``: accept or reject them against a durable engine
directory::

    decisioner match --records FILE [--config CONFIG] [--against-graph DIR] --out suggestions.jsonl [--json]
    decisioner match --dataset febrl4 --out suggestions.jsonl --json
    decisioner match review --suggestions suggestions.jsonl --graph DIR --accept ID --reject ID [--time MS]

The rules come from the ``[matching]`` section of ``--config`` (TOML or JSON; the FEBRL4 rules
with ``--dataset febrl4``, :mod:`decisioner.matching.febrl`). The secret that keys blocking keys
and record ids comes from ``--hash-key``, the configuration's ``identity`` section, or the
engine of ``--against-graph``; without any, a random one for this run (the suggestions then
cannot be reviewed against an engine). With ``--against-graph DIR`` the load is also matched
against the records of earlier loads kept in ``DIR/matching/`` (keyed keys only), and added to
them; do-not-link pairs kept there are respected; records whose email or phone number the
engine's identity graph holds are suggested to join that person. The JSON report carries pair counts, timings,
the bad records (line and error) and, when the records carry true entities, precision, recall
and f1.
"""

from __future__ import annotations

import argparse
import json
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .errors import SchemaError

__all__ = ["add_parser", "run", "print_human"]


def add_parser(sub: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    """Register ``match`` on the CLI's subparsers."""
    sp = sub.add_parser("match", help="fuzzy-match CRM records into reviewable suggestions; `match review`")
    common(sp)
    sp.add_argument("action", nargs="?", choices=("review",), default=None, help="review: accept/reject suggestions")
    src = sp.add_mutually_exclusive_group()
    src.add_argument("--records", default=None, help="a CSV or JSONL file of records")
    src.add_argument("--dataset", choices=("febrl4", "crm"), default=None,
                     help="febrl4: the FEBRL4 benchmark (fetched once); crm: a generated CRM load")
    sp.add_argument("--people", type=int, default=10_000, help="with --dataset crm: people in the generated world")
    sp.add_argument("--config", default=None, help="TOML or JSON configuration with a [matching] section")
    sp.add_argument("--against-graph", default=None, metavar="DIR", help="a durable engine directory to match against")
    sp.add_argument("--out", default=None, help="the suggestions file to write (JSONL)")
    sp.add_argument("--hash-key", default=None, help="the hashing secret in hex")
    sp.add_argument("--suggestions", default=None, help="review: the suggestions file")
    sp.add_argument("--graph", default=None, metavar="DIR", help="review: the durable engine directory")
    sp.add_argument("--accept", action="append", default=[], metavar="ID",
                    help="review: a suggestion id to accept (repeatable; `linked`: every auto-linked one)")
    sp.add_argument("--reject", action="append", default=[], metavar="ID", help="review: a suggestion id to reject")
    sp.add_argument("--time", type=int, default=None, help="review: event time of the links (epoch ms; default now)")


def _spec_and_key(args: argparse.Namespace) -> tuple[Any, bytes | None]:
    from .config import MatchingSpec, load_config
    from .hashing import resolve_key

    spec: MatchingSpec | None = None
    key = bytes.fromhex(args.hash_key) if args.hash_key else None
    if args.config:
        cfg = load_config(args.config)
        spec = cfg.matching
        idt = cfg.identity
        if key is None and (idt.hash_key or idt.hash_key_env):
            key = resolve_key(idt.hash_key, idt.hash_key_env)
    if spec is None or not spec.comparisons:
        if args.dataset == "febrl4":
            from .matching.febrl import FEBRL4_SPEC

            spec = FEBRL4_SPEC
        elif args.dataset == "crm":
            from .datasets.crm import CRM_SPEC

            spec = CRM_SPEC
        else:
            raise SchemaError("Expected match rules, got none - at `--config` (a [matching] section with comparisons)")
    return spec, key


def _review(args: argparse.Namespace) -> dict[str, Any]:
    from .engine import Engine
    from .matching.review import review

    if not args.suggestions or not args.graph:
        raise SchemaError("Expected `--suggestions FILE` and `--graph DIR` with `match review`, got neither or one")
    rows = [json.loads(line) for line in Path(args.suggestions).read_text(encoding="utf-8").splitlines() if line]
    eng = Engine.open(args.graph, hash_key=args.hash_key)
    try:
        now = args.time if args.time is not None else int(time.time() * 1000)
        return review(eng, args.graph, rows, accept=args.accept, reject=args.reject, time=now)
    finally:
        eng.detach_log()


def _kept_columns(records: Any, kept: list[str]) -> dict[str, list[str | None]]:
    """The raw columns of the records the match kept (bad records left out), in its order."""
    if len(kept) == len(records.ids):
        cols: dict[str, list[str | None]] = records.columns
        return cols
    row = {rid: i for i, rid in enumerate(records.ids)}
    idx = [row[r] for r in kept]
    return {k: [v[i] for i in idx] for k, v in records.columns.items()}


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Carry out ``match`` or ``match review``; returns the report (JSON-ready)."""
    if args.action == "review":
        return _review(args)
    from .matching import match_records, read_records, records_from_columns
    from .matching.index import MatchIndex
    from .matching.review import load_do_not_link

    if not args.out:
        raise SchemaError("Expected `--out FILE` for the suggestions, got none")
    t0 = time.perf_counter()
    spec, key = _spec_and_key(args)
    eng = None
    if args.against_graph:
        from .engine import Engine

        eng = Engine.open(args.against_graph, hash_key=args.hash_key)
        key = eng.identity.key
    ephemeral = key is None
    secret = key if key is not None else secrets.token_bytes(16)
    try:
        if args.records:
            records = read_records(args.records, spec)
        elif args.dataset == "febrl4":
            from .datasets.febrl import febrl4_columns

            records = records_from_columns(febrl4_columns(), spec)
        elif args.dataset == "crm":
            from .datasets.crm import crm_records

            records = records_from_columns(crm_records(args.people, seed=args.seed), spec)
        else:
            raise SchemaError("Expected `--records FILE` or `--dataset NAME`, got neither")
        load_s = time.perf_counter() - t0
        index = dnl = None
        if eng is not None:  # against the graph: erased people's records leave the index first
            index, _ = MatchIndex.load(args.against_graph, spec).without_erased(eng.identity)
            dnl = load_do_not_link(args.against_graph)
        res = match_records(records, spec, secret=secret, seed=args.seed, index=index, do_not_link_keys=dnl)
        n = 0
        graph_hits: list[dict[str, Any]] = []
        if eng is not None and res.record_keys is not None:
            from .matching.index import identity_suggestions

            graph_hits = identity_suggestions(eng.identity, spec, res.records.ids, res.records.sources,
                                              records.source_names, _kept_columns(records, res.records.ids),
                                              res.record_keys)
        with open(args.out, "w", encoding="utf-8") as fh:
            for s in [*res.suggestions(), *graph_hits]:
                fh.write(json.dumps(s) + "\n")
                n += 1
        if args.against_graph and res.record_keys is not None and res.block_keys is not None:
            from .matching.index import record_type

            assert res.field_keys is not None
            types = [record_type(spec, records.source_names[s]) for s in res.records.sources.tolist()]
            (index or MatchIndex.empty(spec)).extend(res.record_keys, res.block_keys, res.field_keys, types).save(
                args.against_graph)
    finally:
        if eng is not None:
            eng.detach_log()
    out = res.report()
    out["timings"]["load"] = round(load_s, 4)
    out["timings"]["wall"] = round(time.perf_counter() - t0, 4)
    out["suggestions"] = n
    if args.against_graph:
        out["identity_suggestions"] = len(graph_hits)
    out["out"] = str(args.out)
    out["secret"] = "ephemeral" if ephemeral else "deployment"
    return out


def print_human(out: dict[str, Any]) -> None:
    """A short summary for a terminal."""
    if "accepted" in out:
        linked = sum(v == "linked" for v in out["accepted"].values())
        print(f"accepted {len(out['accepted'])} ({linked} linked, {len(out['accepted']) - linked} refused by the "
              f"identity rules); rejected {len(out['rejected'])} ({out['do_not_link_added']} new do-not-link pairs)")
        return
    print(f"{out['records']} records ({out['bad_records']} bad), {out['candidate_pairs']} candidate pairs, "
          f"{out['clusters']} clusters, {out['suggestions']} suggestions -> {out['out']} "
          f"in {out['timings']['wall']:.2f} s")
    for e in out["errors"][:10]:
        print(f"  line {e['line']}: {e['error']}")
    if "f1" in out:
        print(f"  precision {out['precision']:.4f}  recall {out['recall']:.4f}  f1 {out['f1']:.4f}")
