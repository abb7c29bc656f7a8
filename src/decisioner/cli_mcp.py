"""``decisioner mcp --world DIR | --config C --catalog K [--http PORT] [--placement P]``: serve the
engine's agent tools over MCP (:mod:`decisioner.adapters.mcp_server`), on stdio by default (an AI
client spawns the command) or over streamable HTTP on 127.0.0.1:PORT (endpoint ``/mcp``).

With ``--world`` the engine first tracks the world's events (the first ``--max-events``), so its
people are known. Nothing but the protocol is written to stdout."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from .cli_world import UsageError

__all__ = ["add_parser", "run"]


def add_parser(sub: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    """Register ``mcp`` on the CLI's subparsers."""
    sp = sub.add_parser("mcp", help="serve agent tools (context, next-best actions, feedback, explain) over MCP")
    common(sp)
    src = sp.add_mutually_exclusive_group(required=True)
    src.add_argument("--world", default=None, help="a world directory (`decisioner generate`); its events are tracked")
    src.add_argument("--config", default=None, help="an engine configuration (TOML/JSON); needs --catalog")
    sp.add_argument("--catalog", default=None, help="the catalog (JSONL/CSV) of --config")
    sp.add_argument("--max-events", type=int, default=None, help="with --world: track only the first N events")
    sp.add_argument("--placement", default=None, help="the default placement of next_best_actions")
    sp.add_argument("--http", type=int, default=None, metavar="PORT",
                    help="serve streamable HTTP on 127.0.0.1:PORT (endpoint /mcp) instead of stdio")


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Carry out ``mcp``: serve until the client goes away (stdio) or the process is interrupted."""
    from .adapters import mcp_server
    from .cli_world import _tracked_world
    from .engine import Engine
    from .warmup import warm_up

    if args.world is not None:
        engine, _, _ = _tracked_world(args.world, args.seed, args.max_events)
    else:
        if args.catalog is None:
            raise UsageError("--config needs --catalog")
        warm_up()
        engine = Engine.from_files(args.config, args.catalog, seed=args.seed)
    server = mcp_server.build_server(engine, placement=args.placement)
    if args.http is not None:
        mcp_server.run_http(server, port=args.http)
    else:
        mcp_server.run_stdio(server)
    return {}
