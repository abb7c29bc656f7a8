"""``decisioner privacy``: privacy operations on a durable engine directory, for people who
answer data-subject requests from a shell.

Each command opens the directory (:meth:`Engine.open`: the newest snapshot, then the event log),
carries out one operation through the engine (so it is logged, audited and survives a crash)
and closes it again::

    decisioner privacy export  DIR --id email=ada@example.com --actor ticket-17 [--json]
    decisioner privacy forget  DIR --id email=ada@example.com --actor dpo [--whole-person]
    decisioner privacy consent DIR --id email=ada@example.com --set marketing.email=false [--gpc] [--tcf STRING]
    decisioner privacy expire  DIR --now 1767225600000 --actor retention-job
    decisioner privacy audit   DIR [--person 12]

The hashing secret comes from ``--hash-key`` or the environment variable the saved configuration
names (``identity.hash_key_env``). Raw identifiers given on the command line are hashed and
never written anywhere.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from . import cli_json
from .errors import SchemaError

__all__ = ["add_parser", "run", "print_human"]


def add_parser(sub: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    """Register ``privacy`` and its commands on the CLI's subparsers."""
    sp = sub.add_parser("privacy", help="access export, erasure, consent, retention and the audit log")
    psub = sp.add_subparsers(dest="privacy_command", required=True)

    def base(name: str, help: str, *, ids: bool = True) -> argparse.ArgumentParser:
        pp: argparse.ArgumentParser = psub.add_parser(name, help=help)
        common(pp)
        pp.add_argument("dir", help="a durable engine directory (Engine.durable)")
        pp.add_argument("--hash-key", default=None, help="the hashing secret in hex (default: from the environment)")
        pp.add_argument("--actor", default="cli", help="who asks (a role or ticket; never an email or phone)")
        if ids:
            pp.add_argument("--id", action="append", required=True, metavar="TYPE=VALUE",
                            help="an identifier of the person (repeatable)")
        return pp

    base("export", "everything held for one person, as JSON")
    pp = base("forget", "erase identifiers (keyed tombstones stay), or the whole person")
    pp.add_argument("--whole-person", action="store_true", help="erase every identifier of the person")
    pp = base("consent", "set consent: purpose or purpose.channel = true/false, GPC, a TCF string")
    pp.add_argument("--set", action="append", default=[], metavar="PURPOSE[.CHANNEL]=BOOL")
    pp.add_argument("--gpc", action="store_true", help="the Global Privacy Control signal (opts out of sale/share)")
    pp.add_argument("--tcf", default=None, help="an IAB TCF v2.2 consent string")
    pp.add_argument("--time", type=int, required=True, help="event time of the change (epoch ms)")
    pp.add_argument("--source", default="cli", help="where the change came from (the consent history's source)")
    pp = base("expire", "retention: volatile identifiers past their TTL, profiles idle past the limit", ids=False)
    pp.add_argument("--now", type=int, required=True, help="event time to apply retention at (epoch ms)")
    pp = base("audit", "the audit log of privacy operations", ids=False)
    pp.add_argument("--person", type=int, default=None, help="only the entries that concern this person id")


def _ids(pairs: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for p in pairs:
        t, eq, v = p.partition("=")
        if not eq or not t or not v:
            raise SchemaError(f"Expected `--id TYPE=VALUE`, got {p[:40]!r} - at `--id`")
        out[t] = v
    return out


def _consent(pairs: list[str]) -> dict[str, bool]:
    out: dict[str, bool] = {}
    for p in pairs:
        k, eq, v = p.partition("=")
        if not eq or v.lower() not in ("true", "false"):
            raise SchemaError(f"Expected `--set PURPOSE[.CHANNEL]=true|false`, got {p[:40]!r} - at `--set`")
        out[k] = v.lower() == "true"
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Carry out one ``decisioner privacy`` command; returns its JSON-ready result."""
    from .engine import Engine

    cmd = args.privacy_command
    ids = _ids(args.id) if cmd in ("export", "forget", "consent") else {}
    change = _consent(args.set) if cmd == "consent" else {}
    eng = Engine.open(args.dir, hash_key=args.hash_key)
    try:
        if cmd == "export":
            from .matching.index import records_of

            out = eng.export(ids, actor=args.actor)
            out["match_index_records"] = records_of(args.dir, eng.identity, eng.identity.keys_of(ids)[0],
                                                    eng.profile_row(ids))
            return out
        if cmd == "forget":
            if not args.whole_person:
                out = {**eng.forget(ids, actor=args.actor), "found": True}
            else:
                row = eng.profile_row(ids)
                if row < 0:
                    return {"found": False, "erased": [], "removed": {}}
                out = {**eng.forget(row=row, actor=args.actor), "found": True}
            from .matching.index import forget_erased

            # the match index's records of the people erased go too (keyed keys, but about them)
            named = eng.identity.keys_of(ids)[0] if ids else None
            out["match_index_records"] = forget_erased(args.dir, eng.identity, named)
            return out
        if cmd == "consent":
            event: dict[str, Any] = {"type": "consent", "time": args.time, "ids": ids, "channel": args.source}
            if change:
                event["consent"] = change
            if args.gpc:
                event["gpc"] = True
            if args.tcf is not None:
                event["tcf"] = args.tcf
            eng.track(event)
            grid: dict[str, Any] = eng.export(ids, actor=args.actor)["consent"]
            return grid
        if cmd == "expire":
            return eng.expire(args.now, actor=args.actor)
        return {"entries": eng.audit(person=args.person)}
    finally:
        eng.detach_log()


def print_human(args: argparse.Namespace, out: dict[str, Any]) -> None:
    """The result for a person reading a terminal."""
    cmd = args.privacy_command
    if cmd == "audit":
        for e in out["entries"]:
            removed = ", ".join(f"{k} {v}" for k, v in e["removed"].items()) or "nothing"
            print(f"#{e['seq']} at {e['at']} {e['actor']}: {e['op']} persons {e['persons']} - removed {removed}")
        return
    if cmd == "consent":
        for purpose, channels in out.items():
            print(f"{purpose:16s} " + " ".join(f"{c}={'yes' if ok else 'no'}" for c, ok in channels.items()))
        return
    print(cli_json.dumps(out, indent=2))
