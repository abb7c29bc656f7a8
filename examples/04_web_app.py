"""Web backend: the engine inside a Starlette (ASGI) app served by uvicorn.

Routes (JSON in, JSON out; a decisioner error answers its HTTP status with the decisioner
message, see :data:`decisioner.adapters.web.STATUS`):

- ``POST /event``: a behaviour event -> ``{"person": ...}``
- ``POST /decide?placement=NAME``: a behaviour event -> the :class:`~decisioner.schemas.Decision`
- ``POST /outcome``: a click or conversion joined to its decision by id
- ``GET /agent-context/{type}:{value}?placement=&channel=&now=&top=&format=text``: a person's
  context for an agent (JSON, or the compact text form); identifiers in URLs end up in access
  logs, so prefer an opaque one (a CRM id) to an email address
- ``POST /feedback``: an agent's reaction to a next-best action
  (``{"decision_id", "ids", "content", "reaction", "time", "value"?, "channel"?}``)

Run: python examples/04_web_app.py               (serves on a free port, makes a few requests, stops)
     python examples/04_web_app.py --serve 8000  (serves until Ctrl-C)
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import tempfile
import threading
import time
import tomllib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from decisioner import Catalog, Engine, SchemaError, load_config_dict, warm_up
from decisioner.adapters.web import JSONResponse, exception_handlers
from decisioner.aio import AsyncEngine


class FeedbackRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The body of ``POST /feedback``."""

    decision_id: str
    ids: dict[str, str]
    content: str
    reaction: str
    time: int
    value: float | None = None
    channel: str = "phone"


def _query_int(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise SchemaError(f"Expected an integer, got {raw[:40]!r} - at `{name}`") from None


def create_app(engine: Engine) -> Starlette:
    """The app over ``engine`` (an :class:`AsyncEngine` runs each call inline or in a worker)."""
    aeng = AsyncEngine(engine)

    async def event(request: Request) -> Response:
        row = await aeng.track(await request.body())
        return JSONResponse({"person": engine.people.person_of(row)})

    async def decide(request: Request) -> Response:
        placement = request.query_params.get("placement")
        if not placement:
            raise SchemaError("Expected a `placement` query parameter, got none - at `placement`")
        return JSONResponse(await aeng.decide(await request.body(), placement=placement))

    async def outcome(request: Request) -> Response:
        await aeng.observe(await request.body())
        return JSONResponse({"accepted": True})

    async def agent_context(request: Request) -> Response:
        id_type, sep, value = request.path_params["id"].partition(":")
        if not sep or not id_type or not value:
            raise SchemaError(
                f"Expected an identifier as `type:value`, got {request.path_params['id'][:60]!r} - at `id`"
            )
        q = request.query_params
        ctx = await aeng.agent_context(
            {id_type: value}, now=_query_int(request, "now", int(time.time() * 1000)),
            channel=q.get("channel", "phone"), placement=q.get("placement"), top=_query_int(request, "top", 10),
        )
        if q.get("format") == "text":
            return PlainTextResponse(ctx.to_text())
        return JSONResponse(ctx)

    async def feedback(request: Request) -> Response:
        try:
            fb = msgspec.json.decode(await request.body(), type=FeedbackRequest)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            raise SchemaError(f"Invalid feedback: {exc}") from None
        return JSONResponse(await aeng.feedback(
            fb.decision_id, ids=fb.ids, content=fb.content, reaction=fb.reaction, time=fb.time, value=fb.value,
            channel=fb.channel,
        ))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        aeng.close()

    return Starlette(
        routes=[
            Route("/event", event, methods=["POST"]),
            Route("/decide", decide, methods=["POST"]),
            Route("/outcome", outcome, methods=["POST"]),
            Route("/agent-context/{id}", agent_context, methods=["GET"]),
            Route("/feedback", feedback, methods=["POST"]),
        ],
        exception_handlers=exception_handlers(),
        lifespan=lifespan,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def serving(app: Starlette, port: int | None = None) -> Iterator[str]:
    """Serve ``app`` with uvicorn on 127.0.0.1 in a background thread; yields its base URL."""
    port = port or free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"uvicorn did not start on port {port}")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def world() -> str:
    world_dir = os.environ.get("DECISIONER_EXAMPLE_WORLD")
    if world_dir is None:
        from decisioner.datasets.synthetic import WorldSpec, generate_world, write_world

        world_dir = tempfile.mkdtemp(prefix="decisioner-world-")
        write_world(generate_world(WorldSpec(n_people=1500, n_items=800, seed=3)), world_dir)
    return world_dir


def self_check(base: str, events: list[bytes]) -> None:
    """Replay the first events over HTTP, then show a decision, errors, an agent's context and
    feedback."""
    with httpx.Client(base_url=base, timeout=30) as http:
        decision: dict[str, Any] = {}
        for line in events:
            if b'"type":"view"' in line:
                r = http.post("/decide", params={"placement": "home_recs"}, content=line)
                assert r.status_code == 200, r.text
                decision = r.json()
            else:
                assert http.post("/event", content=line).status_code == 200
        print("decision", decision["decision_id"], "for person", decision["person"], "->",
              [s["content"] for s in decision["slots"]])
        r = http.post("/outcome", json={"decision_id": decision["decision_id"], "kind": "click",
                                        "time": decision["time"] + 1000, "content": decision["slots"][0]["content"]})
        print("outcome", r.status_code, r.json())
        bad = http.post("/decide", params={"placement": "nope"}, content=events[0])
        print("unknown placement", bad.status_code, bad.json()["message"])
        bad = http.post("/decide", params={"placement": "home_recs"}, content=b'{"type": "view", "time": 5}')
        print("bad event", bad.status_code, bad.json()["message"])
        ev = msgspec.json.decode(events[-1])
        id_type, value = next(iter(ev["ids"].items()))
        now = ev["time"] + 60_000
        r = http.get(f"/agent-context/{id_type}:{value}",
                     params={"placement": "agent_offers", "now": now, "format": "text"})
        print("agent context", r.status_code)
        print(r.text)
        ctx = http.get(f"/agent-context/{id_type}:{value}", params={"placement": "agent_offers", "now": now}).json()
        nba = ctx["next_best_actions"]
        r = http.post("/feedback", json={"decision_id": nba["decision_id"], "ids": {id_type: value},
                                         "content": nba["actions"][0]["content"], "reaction": "accepted",
                                         "time": now + 1000})
        print("feedback", r.status_code, r.json())


def build_engine(world_dir: str) -> Engine:
    """The world's engine with an agent placement: ``agent_offers``, the email campaign's
    experiences offered by phone agents (a campaign placement on the ``phone`` channel)."""
    data = tomllib.loads((Path(world_dir) / "config.toml").read_text())
    hero = next(p for p in data["placements"] if p["name"] == "email_hero")
    data["placements"].append({"name": "agent_offers", "kind": "campaign", "channel": "phone",
                               "experiences": hero["experiences"], "policy": {"kind": "thompson"}})
    config = load_config_dict(data)
    return Engine(config, Catalog.load(Path(world_dir) / "catalog.jsonl", config.catalog), seed=0)


def main(argv: list[str]) -> None:
    warm_up()
    world_dir = world()
    engine = build_engine(world_dir)
    app = create_app(engine)
    if argv[:1] == ["--serve"]:
        uvicorn.run(app, host="127.0.0.1", port=int(argv[1]) if len(argv) > 1 else 8000)
        return
    events = (Path(world_dir) / "events.jsonl").read_bytes().splitlines()[:300]
    with serving(app) as base:
        self_check(base, events)


if __name__ == "__main__":
    main(sys.argv[1:])
