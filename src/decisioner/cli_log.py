"""``decisioner log check | repair TARGET``: report the damage in an event log (exit 1 if any,
changing nothing), or keep its intact records in place and move the rest aside
(:mod:`decisioner.recovery`)."""

from __future__ import annotations

import argparse
import shlex
from collections.abc import Callable
from typing import Any

__all__ = ["add_parser", "run", "print_human"]


def add_parser(sub: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    """Register ``log`` on the CLI's subparsers."""
    sp = sub.add_parser("log", help="check or repair an event log")
    lsub = sp.add_subparsers(dest="log_command", required=True)
    lp = lsub.add_parser("check", help="report damage in a log (exit 1 if any); changes nothing")
    common(lp)
    lp.add_argument("target", help="an event log file, or a durable directory (its events.log and snapshot)")
    lp = lsub.add_parser(
        "repair", help="keep a log's intact records in place, move the rest into <log>.damaged-<UTC time>"
    )
    common(lp)
    lp.add_argument("target", help="an event log file, or a durable directory (its events.log and snapshot)")


def run(args: argparse.Namespace) -> tuple[dict[str, Any], int]:
    """Carry out ``log check`` (exit code 1 when damaged) or ``log repair``."""
    from .recovery import check_log, repair

    if args.log_command == "check":
        out = check_log(args.target)
        return out, 0 if out["healthy"] else 1
    return repair(args.target), 0


def print_human(out: dict[str, Any], target: str) -> None:
    """What ``log check`` found or ``log repair`` did, for a person reading a terminal."""
    cmd = f"decisioner log repair {shlex.quote(target)}"
    path, kind = out["path"], out["kind"]
    if "healthy" not in out:  # repair
        if out["created"]:
            print(f"{path}: was missing; started an empty log (what was logged after the snapshot is lost)")
        elif out["moved_to"] is None:
            print(f"{path}: nothing to repair; {out['kept_records']} intact records")
        else:
            print(f"{path}: kept {out['kept_records']} intact records ({out['kept_bytes']} bytes); moved the "
                  f"{out['moved_bytes']} bytes after them ({out['moved_intact_records']} intact records) to "
                  f"{out['moved_to']}")
    elif kind == "missing":
        print(f"{path}: missing, but snapshot {out['snapshot']} expects it (what was logged after it is gone)")
        print(f"  opening refuses; restore the file, or start an empty log with `{cmd}`")
    elif kind == "none":
        if out["exists"]:
            print(f"{path}: healthy, {out['records']} records ({out['intact_bytes']} bytes)")
        else:
            print(f"{path}: no log, and no snapshot expects one")
    else:
        print(f"{path}: {'a torn write' if kind == 'torn_tail' else 'damaged'} at byte {out['damage_at']} "
              f"({out['problem']}); {out['records']} intact records ({out['intact_bytes']} bytes) before it, "
              f"{out['intact_records_after']} intact records ({out['intact_bytes_after']} of "
              f"{out['bytes_after']} bytes) after it")
        opening = "cuts the torn bytes with a warning" if kind == "torn_tail" else "refuses"
        print(f"  opening {opening}; `{cmd}` keeps the {out['records']} records and moves the "
              f"{out['bytes_after']} bytes after them into a file of their own")
