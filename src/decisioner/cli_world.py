"""``decisioner tiers | pulse | audience | agent | outbound``: what a synthetic world's people look like once the
engine has tracked every event of it (``decisioner generate`` writes the world).

* ``tiers``: people per engagement tier, with the value per tier against the average;
* ``pulse``: how each region feels about each topic (the opinion events);
* ``audience --segment EXPR [--by A] [--by2 B] [--members] [--csv]``: a segment's size, breakdown
  and cross-tab over every profile;
* ``agent --id TYPE=VALUE [--channel C] [--placement P] [--text]``: one person's agent context
  (:mod:`decisioner.agents`), with next-best actions from ``P``;
* ``outbound --segment EXPR --placement P --channel email|sms|push [--now MS]``: the next message
  per member of a segment on a channel (:mod:`decisioner.outbound`): consent, caps and quiet
  hours of the world's configuration, a decision per message; counts, then the messages and the
  people skipped with their reason (``--json``: every one).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["COMMANDS", "UsageError", "add_parser", "run", "print_human"]

#: the commands this module carries out
COMMANDS = ("tiers", "pulse", "audience", "agent", "outbound")


class UsageError(Exception):
    """A command line that cannot be carried out as given (exit code 2)."""


def add_parser(sub: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    """Register the world commands on the CLI's subparsers."""
    for name, what in (("tiers", "engagement tiers of a world's people, value per tier against the average"),
                       ("pulse", "how each region of a world feels about each topic (opinion events)"),
                       ("audience", "size and breakdown of a segment over a world's profiles")):
        sp = sub.add_parser(name, help=what)
        common(sp)
        sp.add_argument("--world", required=True, help="a world directory (`decisioner generate`)")
        sp.add_argument("--max-events", type=int, default=None)
    sp.add_argument("--segment", required=True, help='a segment expression, e.g. \'days_since("purchase") <= 30\'')
    sp.add_argument("--by", default=None, help="breakdown: a category attribute, zip3, tier, interest[:FACET]")
    sp.add_argument("--by2", default=None, help="second dimension of a cross-tab with --by")
    sp.add_argument("--now", type=int, default=None, help="evaluation time, epoch ms (default: the newest event's)")
    sp.add_argument("--members", action="store_true", help="also list the members' person ids")
    sp.add_argument("--csv", action="store_true", help="print the breakdown (or the member ids) as CSV")
    sp = sub.add_parser("agent", help="one person's context for an agent (interests, journey, consent, actions)")
    common(sp)
    sp.add_argument("--world", required=True, help="a world directory (`decisioner generate`)")
    sp.add_argument("--max-events", type=int, default=None)
    sp.add_argument("--id", required=True, action="append", help="an identifier TYPE=VALUE (repeatable)")
    sp.add_argument("--channel", default="phone", help="the agent's consent channel (default phone)")
    sp.add_argument("--placement", default=None, help="a placement to decide next-best actions on")
    sp.add_argument("--now", type=int, default=None, help="epoch ms (default: the newest event's)")
    sp.add_argument("--text", action="store_true", help="the compact plain-text form for an AI agent")
    sp = sub.add_parser("outbound", help="the next message per member of a segment on email, sms or push")
    common(sp)
    sp.add_argument("--world", required=True, help="a world directory (`decisioner generate`)")
    sp.add_argument("--max-events", type=int, default=None)
    sp.add_argument("--segment", required=True, help="the audience: a segment expression or a name of [segments]")
    sp.add_argument("--placement", required=True, help="a campaign placement")
    sp.add_argument("--channel", required=True, choices=("email", "sms", "push"))
    sp.add_argument("--now", type=int, default=None, help="send time, epoch ms (default: the newest event's)")
    sp.add_argument("--log", default=None, help="write the decision log here (the file `report` reads)")


def _tracked_world(world: str, seed: int, max_events: int | None) -> tuple[Any, int, float]:
    """An engine over the world ``world`` that tracked its events (the first ``max_events``); the
    last event time and the seconds the tracking took."""
    from .datasets.synthetic.files import _read_jsonl
    from .engine import Engine
    from .warmup import warm_up

    warm_up()
    engine = Engine.from_world(world, seed=seed)
    events = _read_jsonl(Path(world) / "events.jsonl")[:max_events]
    if not events:
        raise UsageError(f"the world {world!r} has no events")
    t0 = time.perf_counter()
    for ev in events:
        engine.track(ev)
    return engine, max(int(e["time"]) for e in events), time.perf_counter() - t0


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Carry out one world command; returns its JSON-ready result."""
    engine, now, secs = _tracked_world(args.world, args.seed, args.max_events)
    if args.command == "tiers":
        return {**engine.tier_report(now), "events": engine.events_, "seconds": round(secs, 3)}
    if args.command == "pulse":
        return {"now": now, "cells": engine.pulse(), "events": engine.events_, "seconds": round(secs, 3)}
    at = args.now if args.now is not None else now
    if args.command == "agent":
        ids = {}
        for pair in args.id:
            kind, sep, value = pair.partition("=")
            if not sep or not kind or not value:
                raise UsageError(f"expected --id TYPE=VALUE, got {pair!r}")
            ids[kind] = value
        ctx = engine.agent_context(ids, now=at, channel=args.channel, placement=args.placement)
        return {**ctx.to_dict(), "text": ctx.to_text()}
    if args.command == "outbound":
        batch = engine.outbound(args.segment, placement=args.placement, channel=args.channel, now=at)
        out_b: dict[str, Any] = {**batch.to_dict(), "events": engine.events_}
        if args.log is not None:
            from .decisionfile import write_decisions

            out_b["decision_log"] = write_decisions(engine, args.log)
        return out_b
    out: dict[str, Any] = engine.audience(args.segment, now=at, by=args.by, by2=args.by2)
    if args.members:
        out["members"] = engine.audience_members(args.segment, now=at).tolist()
    return out


def print_human(args: argparse.Namespace, out: dict[str, Any]) -> None:
    """The result for a person reading a terminal (``audience --csv``: CSV)."""
    if args.command == "tiers":
        print(f"engagement tiers at {out['now']}: {out['people']} people, mean value {out['mean_value']:.2f} "
              f"({out['events']} events tracked in {out['seconds']:.1f} s)")
        print(f"  {'tier':<16}{'people':>9}{'share':>9}{'mean value':>12}{'vs average':>12}")
        for t in out["tiers"]:
            idx = "" if t["value_index"] is None else f"{t['value_index']:+.0%}"
            print(f"  {t['tier']:<16}{t['people']:>9}{t['share']:>9.1%}{t['mean_value']:>12.2f}{idx:>12}")
    elif args.command == "pulse":
        from .pulse import format_table

        print(f"opinions by region x topic at {out['now']} ({out['events']} events tracked in {out['seconds']:.1f} s)")
        print(format_table(out["cells"]))
    elif args.command == "agent":
        print(out["text"])
    elif args.command == "outbound":
        c = out["counts"]
        print(f"outbound {out['channel']} from {out['placement']} ({out['policy']}) at {out['time']}: "
              f"{c['sent']} of {c['audience']} sent; skipped: " + ", ".join(
                  f"{c[r]} {r}" for r in ("consent", "cap", "quiet", "no_content")) + f" ({out['seconds']:.3f} s)")
        for m in out["sent"][:20]:
            print(f"  person {m['person']:>8}  {m['decision_id']:<12} {m['content']:<24} p={m['propensity']:.3f}")
        if len(out["sent"]) > 20:
            print(f"  ... {len(out['sent']) - 20} more (--json: every one)")
    elif args.csv:
        from .segments.audiences import breakdown_csv

        sys.stdout.write("person\n" + "".join(f"{p}\n" for p in out["members"]) if args.members
                         else breakdown_csv(out))
    else:
        for k, v in out.items():
            print(f"{k}: {v}")
