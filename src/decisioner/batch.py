"""Batch ingestion: many behaviour events per call, with results identical to one call each.

:func:`ingest_many` (``Engine.ingest_many``) takes a list of events (JSON ``bytes`` lines, dicts
or event Structs) and, for each event whose type is a key of ``decide_on``, decides for the
placement it names; the others are tracked. What one call per event would do, it does in the
same order and with the same arithmetic, so the decisions (ids, contents, scores, propensities),
the state and the write-ahead log are the same bit for bit (``tests/test_batch.py`` checks it on
a generated world with merges, consent changes, erasure and every batch size). What a batch saves
is the per-event overhead around that work:

- decoding: one size and UTF-8 check over the whole batch and one msgspec call per event
  (:func:`decisioner.schemas.decode_event_lines`);
- hashing: an identifier that repeats in the batch (a cookie across a visit) is normalised and
  hashed once (a memo of the batch, dropped with it: raw values are never kept longer);
- admission: the writer lock is taken once per batch instead of once per event.

Order matters for everything after validation: merges, consent changes and decisions read what
the events before them wrote (popularity and the click-through posteriors change on every event),
so the profile, identity and allocation stages run event by event, in order, through the same
code as a single call. Validation does not depend on what earlier events wrote (keys depend only on
the secret and the rules; items on the catalog; consent and attribute checks on the configuration),
so it runs for the whole batch before anything changes: with ``errors="raise"`` a bad event
(one the event log could not hold included) refuses the batch and nothing moves. The one limit
events share is ``identity.max_types``: a batch whose events would together register more new
identifier types than it allows is refused up front too. With ``errors="skip"`` each event is
accepted or refused exactly as its own call would be.

Each event's latency (``Ingested.latency_us``) runs from the start of its own stage work inside
the batch to its result; decoding is done for the whole batch first and reported apart
(``Ingested.decode_us``, the batch's total), so a per-event figure that includes decoding is
the latency plus ``decode_us / n`` (amortised).
"""

from __future__ import annotations

import time as _time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final, Literal, NamedTuple

import numpy as np

from .errors import ConfigError, DecisionerError, SchemaError
from .identity.keys import UNREGISTERED, KeyMemo
from .journal import DecideOp, TrackOp
from .schemas import Decision, Event, decode_event, decode_event_lines

if TYPE_CHECKING:
    from .engine import Engine
    from .placements import Placement
    from .tracking import Checked

__all__ = ["Ingested", "ingest_many", "default_decide_on"]

_ERRORS: Final = ("raise", "skip")


class Ingested(NamedTuple):
    """What :func:`ingest_many` did with each event of a batch.

    ``rows`` (int32[n]) is the profile row of each event, -1 for a rejected one; ``decisions``
    the decisions made, in event order, and ``decided`` (int64) the index of each one's event;
    ``rejected`` the ``(index, message)`` of each event refused (only with ``errors="skip"``);
    ``latency_us`` (float64[n]) each event's time from the start of its stage work to its result
    (0 for a rejected one); ``decode_us`` the time to decode the whole batch.
    """

    rows: np.ndarray
    decisions: list[Decision]
    decided: np.ndarray
    rejected: list[tuple[int, str]]
    latency_us: np.ndarray
    decode_us: float


def default_decide_on(engine: Engine) -> dict[str, str]:
    """What a replay decides on by default: views for the first recommendation placement,
    email opens for the first campaign placement (when the configuration has them)."""
    rec = next((p.name for p in engine.config.placements if p.kind == "recommendation"), None)
    camp = next((p.name for p in engine.config.placements if p.kind == "campaign"), None)
    out: dict[str, str] = {}
    if rec is not None:
        out["view"] = rec
    if camp is not None:
        out["email_open"] = camp
    return out


def _decode(engine: Engine, events: Sequence[Any]) -> list[Any]:
    """Each event decoded, or the :class:`SchemaError` its single decode raises."""
    limit = engine.config.limits.max_payload_bytes
    if all(type(e) is bytes for e in events):
        return decode_event_lines(list(events), max_bytes=limit)
    out: list[Any] = []
    for e in events:
        try:
            out.append(decode_event(e, max_bytes=limit))
        except SchemaError as exc:
            # a fresh error with the same message: this one's traceback (and its context's) holds
            # this frame, which holds `out` (a reference cycle the collector would have to find)
            out.append(SchemaError(str(exc)))
    return out


def _at_event(message: str, j: int) -> str:
    """``message`` with its path placed under event ``j`` of the batch (``$.ids`` -> ``$[j].ids``)."""
    at = message.rfind("`$")
    if at < 0:
        return f"{message} - at `$[{j}]`"
    return f"{message[: at + 2]}[{j}]{message[at + 2 :]}"


def _new_types(engine: Engine, ev: Event, checked: Checked, seen: set[str]) -> str | None:
    """Record the identifier types ``ev`` would register; the first one past the cap, if any."""
    if checked.types.shape[0] == 0 or int(checked.types.min()) != UNREGISTERED:
        return None
    names = list(ev.ids)
    fresh = [names[j] for j in np.flatnonzero(checked.types == UNREGISTERED).tolist() if names[j] not in seen]
    cap = engine.identity.spec.max_types
    if len(engine.identity.types) + len(seen) + len(set(fresh)) > cap:
        return min(fresh)
    seen.update(fresh)
    return None


def ingest_many(
    engine: Engine,
    events: Sequence[Any],
    *,
    decide_on: Mapping[str, str] | None = None,
    errors: Literal["raise", "skip"] = "raise",
) -> Ingested:
    """Track or decide each of ``events`` in order, as one call each would (see the module
    docstring).

    Parameters
    ----------
    engine
        The engine that takes the events.
    events
        Behaviour events: JSON ``bytes`` (one event each), dicts or event Structs.
    decide_on
        Event type -> placement: an event of that type is decided for that placement (like
        :meth:`Engine.decide`), any other tracked (like :meth:`Engine.track`). By default none
        is decided.
    errors
        ``"raise"``: a malformed event refuses the whole batch before anything changes;
        ``"skip"``: it is listed in ``rejected`` and the others are applied, as a service
        answering each with an error would.

    Returns
    -------
    Ingested

    Raises
    ------
    SchemaError, UnknownItemError
        With ``errors="raise"``, for the first bad event (its index in the message's path).
    UnknownPlacementError
        If ``decide_on`` names an unknown placement (before anything changes).
    ConfigError
        If ``errors`` is neither ``"raise"`` nor ``"skip"``.
    """
    if errors not in _ERRORS:
        raise ConfigError(f"Expected `errors` to be one of {list(_ERRORS)!r}, got {errors!r} - at `errors`")
    if not isinstance(events, Sequence) or isinstance(events, (str, bytes)):
        raise SchemaError(f"Expected `events` to be a list of events, got `{type(events).__name__}` - at `events`")
    plan: dict[str, tuple[str, Placement]] = {}
    for tag, name in (decide_on or {}).items():
        plan[tag] = (name, engine.placement(name))
    n = len(events)
    t0 = _time.perf_counter_ns()
    decoded = _decode(engine, events)
    decode_us = (_time.perf_counter_ns() - t0) / 1000.0
    tracker = engine.tracker
    memo = KeyMemo()
    checked: list[Checked | None] = [None] * n
    rejected: list[tuple[int, str]] = []
    seen: set[str] = set()
    for j, ev in enumerate(decoded):
        if isinstance(ev, SchemaError):  # reported, not raised here: raising it would tie it to this frame
            if errors == "raise":
                raise SchemaError(_at_event(str(ev), j))
            rejected.append((j, str(ev)))
            continue
        try:
            c = tracker.validate(ev, memo=memo)
            over = _new_types(engine, ev, c, seen)
            if over is not None:
                cap = engine.identity.spec.max_types
                raise SchemaError(
                    f"Expected at most {cap} identifier types (`identity.max_types`) in the engine and the batch"
                    f", got more, such as {over[:40]!r} - at `$.ids`"
                )
            if errors == "raise":  # an event the log cannot hold is refused with the batch, not half-way
                engine.journal.encode(TrackOp(ev))
            checked[j] = c
        except DecisionerError as exc:
            if errors == "raise":
                raise type(exc)(_at_event(str(exc), j)) from None
            rejected.append((j, str(exc)))
    del memo
    rows = np.full(n, -1, dtype=np.int32)
    lat = np.zeros(n, dtype=np.float64)
    decisions: list[Decision] = []
    decided: list[int] = []
    perf = _time.perf_counter_ns
    hashed = engine._hashed
    with engine.journal.lock:
        for j, chk in enumerate(checked):
            if chk is None:
                continue
            ev = decoded[j]
            t1 = perf()
            target = plan.get(ev.__struct_config__.tag)
            try:
                if target is not None:
                    d = engine._decide(target[1], ev, chk, t1, DecideOp(target[0], hashed(ev, chk.keys)))
                    decisions.append(d)
                    decided.append(j)
                    rows[j] = d.profile
                else:
                    rows[j] = engine._track(ev, chk, TrackOp(hashed(ev, chk.keys)))
            except DecisionerError as exc:  # refused where it is admitted (a type cap): nothing moved
                if errors == "raise":
                    raise
                rejected.append((j, str(exc)))
                continue
            lat[j] = (perf() - t1) / 1000.0
    rejected.sort()
    return Ingested(rows, decisions, np.array(decided, dtype=np.int64), rejected, lat, decode_us)
