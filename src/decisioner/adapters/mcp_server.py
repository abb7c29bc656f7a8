"""An MCP server (Model Context Protocol, the official ``mcp`` SDK) for AI agents over an engine.

Tools, each with a typed output schema (structured content) and a text form:

- ``person_context``: the person's context for an agent on a channel (interests with trend, the
  journey, attributes, segments, tier, consent summary; only what consent allows), read-only;
- ``next_best_actions``: actions decided for the person on an agent placement, each with its
  propensity, reasons and the decision id feedback refers to (a logged decision like any other);
- ``record_feedback``: the agent's reaction (``accepted``, ``rejected``, ``converted``) to an
  action: an outcome joined by decision id and a behaviour event, so the next decision moves;
- ``explain_decision``: a past decision as logged (slots, scores, propensities, rewards).

People are named by identifiers (``{"crm_id": "crm-1"}``); answers carry the pseudonymous person
id only. A malformed argument, an unknown person or decision returns a tool error with the
decisioner message (what was expected, what came, where) and changes nothing: an unknown person
is refused before anything is decided, so no profile is created for them.

Runs over stdio (:func:`run_stdio`) or streamable HTTP (:func:`http_app` / :func:`run_http`);
``decisioner mcp --world DIR | --config C --catalog K [--http PORT]`` starts one. Needs the
``mcp`` extra (``pip install "decisioner[mcp]"``); the core never imports this module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from ..errors import DecisionerError, MissingDependencyError, SchemaError

try:
    from mcp.server.mcpserver import MCPServer
    from mcp.server.mcpserver.exceptions import ToolError
    from typing_extensions import TypedDict
except ImportError:  # pragma: no cover - the extra is installed in the dev environment
    raise MissingDependencyError(
        'Expected the MCP SDK to serve agents, got no `mcp` module - install it with pip install "decisioner[mcp]"'
    ) from None

from ..aio import AsyncEngine

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from ..engine import Engine

__all__ = ["build_server", "run_stdio", "http_app", "run_http"]


class ReasonOut(TypedDict):
    kind: str
    detail: str
    weight: float


class ActionOut(TypedDict):
    content: str
    score: float
    propensity: float


class NextBestActionsOut(TypedDict):
    """Actions decided for the person: feedback names ``decision_id`` and an action's content."""

    decision_id: str
    placement: str
    person: int
    actions: list[ActionOut]
    reasons: list[ReasonOut]
    personalized: bool


class InterestOut(TypedDict):
    facet: str
    value: str
    share: float
    trend: Literal["rising", "steady", "fading"]


class TouchpointOut(TypedDict):
    time: int
    event: str
    channel: str
    item: str | None


class PersonContextOut(TypedDict):
    """A person's context; ``text`` is the compact plain-text form of the rest."""

    person: int
    known: bool
    channel: str
    as_of: int
    personalized: bool
    consent: dict[str, list[str]]
    interests: list[InterestOut]
    journey: list[TouchpointOut]
    attributes: dict[str, Any]
    segments: list[str]
    tier: str | None
    text: str


class FeedbackOut(TypedDict, total=False):
    rewarded: bool
    event: str
    person: int


class SlotOut(TypedDict, total=False):
    content: str
    score: float
    propensity: float
    reward: float


class ExplanationOut(TypedDict, total=False):
    decision_id: str
    placement: str
    time: int
    policy: str
    person: int
    candidates: int
    variant: int
    slots: list[SlotOut]
    logged: bool


def _ids(ids: Any) -> dict[str, str]:
    if not isinstance(ids, dict) or not ids:
        raise SchemaError(
            f"Expected `ids` as a non-empty object of identifier type to value, got {ids!r:.80} - at `ids`"
        )
    return ids


def build_server(engine: Engine, *, placement: str | None = None, name: str = "decisioner") -> MCPServer:
    """An MCP server with the four tools over ``engine``.

    Parameters
    ----------
    engine
        The engine (shared: the tools run through an :class:`~decisioner.aio.AsyncEngine`).
    placement
        The default agent placement of ``next_best_actions`` (a campaign placement on the
        agents' channel); a call may name another.
    name
        The server name announced to clients.
    """
    if placement is not None:
        engine.placement(placement)  # an unknown placement fails here, not on the first call
    aeng = AsyncEngine(engine)
    server = MCPServer(
        name,
        instructions=(
            "Personalization context for customer-facing agents. Name a person by identifiers, e.g. "
            '{"crm_id": "crm-123"}; times are epoch milliseconds. Call next_best_actions for offers, '
            "then record_feedback with the decision id and the offered content once the customer reacts."
        ),
    )

    def known(ids: dict[str, str]) -> dict[str, str]:
        if engine.profile_row(ids) < 0:
            raise SchemaError(f"Expected a known person, got nobody for the identifier types {sorted(ids)} - at `ids`")
        return ids

    @server.tool(description="A person's context for an agent: interests with trend, recent journey, attributes, "
                             "segments, engagement tier, consent; only what their consent allows on `channel`.")
    async def person_context(ids: dict[str, str], now: int, channel: str = "phone", top: int = 10) -> PersonContextOut:
        try:
            ctx = await aeng.agent_context(known(_ids(ids)), now=now, channel=channel, top=top)
        except DecisionerError as exc:
            raise ToolError(str(exc)) from None
        out = ctx.to_dict()
        out.pop("next_best_actions", None)
        out["text"] = ctx.to_text()
        return out  # type: ignore[return-value]

    @server.tool(description="Next-best actions for the person on an agent placement, each with its propensity and "
                             "reasons; the decision id is what record_feedback refers to.")
    async def next_best_actions(
        ids: dict[str, str], now: int, placement: str | None = None, channel: str = "phone"
    ) -> NextBestActionsOut:
        try:
            target = placement or default
            if target is None:
                raise SchemaError("Expected a `placement` (the server has no default), got none - at `placement`")
            ctx = await aeng.agent_context(known(_ids(ids)), now=now, channel=channel, placement=target, top=0)
        except DecisionerError as exc:
            raise ToolError(str(exc)) from None
        nba = ctx.next_best_actions
        assert nba is not None
        out: dict[str, Any] = {"person": ctx.person, **_builtins(nba)}
        return out  # type: ignore[return-value]

    @server.tool(description="Record the agent's reaction to an action: accepted, rejected or converted (with an "
                             "optional value); the person's next decision reflects it.")
    async def record_feedback(
        decision_id: str, ids: dict[str, str], content: str, reaction: Literal["accepted", "rejected", "converted"],
        time: int, value: float | None = None, channel: str = "phone",
    ) -> FeedbackOut:
        try:
            res = await aeng.feedback(decision_id, ids=known(_ids(ids)), content=content, reaction=reaction,
                                      time=time, value=value, channel=channel)
        except DecisionerError as exc:
            raise ToolError(str(exc)) from None
        return res  # type: ignore[return-value]

    @server.tool(description="A past decision as logged: its slots with scores, propensities and rewards so far.")
    async def explain_decision(decision_id: str) -> ExplanationOut:
        try:
            res = await aeng.explain(decision_id)
        except DecisionerError as exc:
            raise ToolError(str(exc)) from None
        return res  # type: ignore[return-value]

    default = placement
    return server


def _builtins(obj: Any) -> dict[str, Any]:
    import msgspec

    out: dict[str, Any] = msgspec.to_builtins(obj)
    return out


def run_stdio(server: MCPServer) -> None:
    """Serve over stdio until the client closes the stream."""
    server.run("stdio")


def http_app(server: MCPServer) -> Starlette:
    """The streamable HTTP transport as an ASGI app (endpoint ``/mcp``), to serve with uvicorn."""
    return server.streamable_http_app()


def run_http(server: MCPServer, *, port: int, host: str = "127.0.0.1") -> None:
    """Serve over streamable HTTP on ``host:port`` (endpoint ``/mcp``) until interrupted."""
    server.run("streamable-http", host=host, port=port)
