"""The MCP server through the SDK's own client: over stdio (``decisioner mcp`` spawned as a
subprocess) and over streamable HTTP on 127.0.0.1 (uvicorn in a thread). Tools have typed output
schemas; bad arguments, unknown people and unknown decisions are tool errors that change nothing."""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import msgspec
import pytest
import uvicorn
from mcp import Client, StdioServerParameters

from decisioner import Engine
from decisioner.adapters.mcp_server import build_server, http_app

SRC = str(Path(__file__).resolve().parents[2] / "src")
TOOLS = {"person_context", "next_best_actions", "record_feedback", "explain_decision"}
EVENTS = 400


def _person(world: str) -> tuple[dict[str, str], int]:
    """Identifiers of the last event's person among the first EVENTS and a time after it."""
    ev = msgspec.json.decode((Path(world) / "events.jsonl").read_bytes().splitlines()[EVENTS - 1])
    return ev["ids"], ev["time"] + 60_000


async def _exercise(client: Client, ids: dict[str, str], now: int) -> dict[str, Any]:
    """Every tool once, then the errors; returns what the checks need."""
    tools = {t.name: t for t in (await client.list_tools()).tools}
    assert set(tools) == TOOLS
    assert all(t.output_schema and t.output_schema["type"] == "object" for t in tools.values())
    assert {"decision_id", "actions", "reasons"} <= set(tools["next_best_actions"].output_schema["properties"])
    ctx = await client.call_tool("person_context", {"ids": ids, "now": now})
    assert not ctx.is_error
    c = ctx.structured_content
    assert c["known"] and c["person"] >= 0 and c["channel"] == "phone"
    assert c["text"].startswith(f"person {c['person']} (known) on phone")
    nba = await client.call_tool("next_best_actions", {"ids": ids, "now": now})
    assert not nba.is_error
    n = nba.structured_content
    assert n["person"] == c["person"] and n["placement"] == "email_hero"
    assert n["actions"] and 0 < n["actions"][0]["propensity"] <= 1
    fb = await client.call_tool("record_feedback", {
        "decision_id": n["decision_id"], "ids": ids, "content": n["actions"][0]["content"], "reaction": "accepted",
        "time": now + 1000,
    })
    assert not fb.is_error and fb.structured_content["rewarded"] is True
    ex = await client.call_tool("explain_decision", {"decision_id": n["decision_id"]})
    assert not ex.is_error
    e = ex.structured_content
    assert e["decision_id"] == n["decision_id"] and e["slots"][0]["reward"] == 1.0
    errors = {}
    for name, args in [
        ("person_context", {"ids": {"email": "nobody@example.org"}, "now": now}),
        ("next_best_actions", {"ids": {"email": "nobody@example.org"}, "now": now}),
        ("next_best_actions", {"ids": ids, "now": now, "placement": "nope"}),
        ("person_context", {"ids": ids, "now": 5}),
        ("record_feedback", {"decision_id": "d-999999", "ids": ids, "content": "x", "reaction": "accepted",
                             "time": now}),
        ("explain_decision", {"decision_id": "d-999999"}),
        ("record_feedback", {"decision_id": n["decision_id"], "ids": ids, "content": "x", "reaction": "meh",
                             "time": now}),
    ]:
        r = await client.call_tool(name, args)
        assert r.is_error and r.structured_content is None
        errors[f"{name} {args.get('placement') or args.get('now') or args.get('decision_id')}"] = r.content[0].text
    return {"person": c["person"], "decision_id": n["decision_id"], "errors": errors}


def _check_errors(errors: dict[str, str], now: int) -> None:
    msgs = list(errors.values())
    unknown = "Expected a known person, got nobody for the identifier types ['email'] - at `ids`"
    assert msgs[0] == f"Error executing tool person_context: {unknown}"
    assert msgs[1] == f"Error executing tool next_best_actions: {unknown}"
    assert msgs[2].startswith("Error executing tool next_best_actions: Expected a configured placement")
    assert msgs[2].endswith("got 'nope' - at `placement`")
    assert msgs[3].startswith("Error executing tool person_context: ") and "`now`" in msgs[3]
    pending = "Expected the id of a pending decision, got 'd-999999' - at `decision_id`"
    assert msgs[4] == f"Error executing tool record_feedback: {pending}"
    assert msgs[5] == f"Error executing tool explain_decision: {pending}"
    assert msgs[6].startswith("Error executing tool record_feedback: ") and "reaction" in msgs[6]


def test_over_stdio_with_the_cli(small_world: str) -> None:
    ids, now = _person(small_world)
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "decisioner.cli", "mcp", "--world", small_world, "--max-events", str(EVENTS),
              "--placement", "email_hero"],
        env=env,
    )

    async def main() -> dict[str, Any]:
        async with Client(params, read_timeout_seconds=120) as client:
            return await _exercise(client, ids, now)

    out = anyio.run(main)
    _check_errors(out["errors"], now)


@pytest.fixture
def http_server(small_world: str) -> Iterator[tuple[Engine, str]]:
    engine = Engine.from_world(small_world, seed=0)
    for line in (Path(small_world) / "events.jsonl").read_bytes().splitlines()[:EVENTS]:
        engine.track(line)
    app = http_app(build_server(engine, placement="email_hero"))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield engine, f"http://127.0.0.1:{port}/mcp"
    finally:
        server.should_exit = True
        thread.join(10)


def test_over_streamable_http_errors_change_nothing(http_server: tuple[Engine, str], small_world: str) -> None:
    engine, url = http_server
    ids, now = _person(small_world)
    ops: list[tuple[int, int, int]] = []

    async def main() -> dict[str, Any]:
        async with Client(url) as client:
            out = await _exercise(client, ids, now)
            ops.append((engine.ops_, engine.seq_, engine.events_))
            for args in ({"ids": {"email": "nobody@example.org"}, "now": now},
                         {"ids": ids, "now": now, "placement": "nope"}, {"ids": {}, "now": now}):
                assert (await client.call_tool("next_best_actions", args)).is_error
            await client.call_tool("record_feedback", {"decision_id": "d-999999", "ids": ids, "content": "x",
                                                       "reaction": "accepted", "time": now})
            ops.append((engine.ops_, engine.seq_, engine.events_))
            return out

    out = anyio.run(main)
    _check_errors(out["errors"], now)
    assert ops[0] == ops[1]
    assert engine.person_id({"email": "nobody@example.org"}) == -1  # refused before anything was decided
    assert engine.explain(out["decision_id"])["slots"][0]["reward"] == 1.0
