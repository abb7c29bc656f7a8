"""Convention checks shipped with the library (river's idea): run them over a policy, a
placement kind or a whole engine, in our tests and in yours.

* :func:`check_policy` - an arm policy: parameters stored verbatim, equal seeds give equal
  decisions, learning does not mutate its inputs, and a state round trip (``to_state`` into a
  fresh policy of the same spec) gives identical next decisions;
* :func:`check_engine` - an engine with every feature its configuration turns on (experiments
  with shared-policy variants, holdout, batched Thompson, slates, contextual policies, eviction,
  erasure, attributes and their batch loads): a snapshot reopened continues exactly like the
  original, with the same next decisions and the same state, and decoding an event does not
  mutate it;
* :func:`check_batch` - an engine ingesting events in batches (:meth:`Engine.ingest_many`)
  makes the same decisions and ends in the same state as one call per event.

Each check raises :class:`CheckError` naming the check and what differed, and returns nothing.
"""

from __future__ import annotations

import copy
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from ._kernels.rng import seed_state
from .allocation import Policy, make_policy
from .errors import DecisionerError

__all__ = ["CheckError", "Outbound", "check_policy", "check_engine", "check_batch", "POLICY_SPECS"]


class CheckError(DecisionerError, AssertionError):
    """A convention check failed; the message names the check and the difference."""


class Outbound(NamedTuple):
    """An outbound batch among :func:`check_engine`'s events (see ``Engine.outbound``)."""

    audience: Any
    placement: str
    channel: str
    now: int


def _fail(check: str, subject: str, detail: str) -> CheckError:
    return CheckError(f"check `{check}` failed for {subject}: {detail}")


def _policy_specs() -> list[Any]:
    from .config import (
        EpsilonGreedySpec,
        GaussianThompsonSpec,
        GreedySpec,
        LinTSSpec,
        LinUCBSpec,
        RandomSpec,
        SoftmaxSpec,
        ThompsonSpec,
        UCB1Spec,
    )

    return [
        ThompsonSpec(),
        ThompsonSpec(batch_size=16),
        GaussianThompsonSpec(),
        UCB1Spec(),
        EpsilonGreedySpec(epsilon=0.3),
        SoftmaxSpec(),
        GreedySpec(),
        RandomSpec(),
        LinUCBSpec(features=("x",)),
        LinTSSpec(features=("x",)),
    ]


#: the spec of every arm policy family, with the options that change its state (batching)
POLICY_SPECS: Callable[[], list[Any]] = _policy_specs


def _run(policy: Policy, rounds: int, n_features: int, seed: int) -> list[tuple[int, float]]:
    """Decisions and learning from a seeded stream; returns each choice and its propensity."""
    rng = np.random.default_rng(seed)
    out = []
    for t in range(rounds):
        ctx = np.concatenate([[1.0], rng.normal(size=n_features - 1)]) if n_features else None
        eligible = np.ones(policy.n_arms, dtype=np.uint8)
        eligible[t % policy.n_arms] = t % 5 != 0
        c = policy.select_one(eligible, state=seed_state(seed, t), context=ctx)
        out.append((c.arm, round(c.propensity, 12)))
        if c.arm >= 0:
            policy.expose(c.arm, context=ctx)
            if rng.random() < 0.3 + 0.1 * c.arm:
                before = None if ctx is None else ctx.copy()
                policy.update_one(c.arm, 1.0, exposed=True, context=ctx)
                if ctx is not None and before is not None and not np.array_equal(before, ctx):
                    raise _fail("inputs-not-mutated", repr(policy), "update_one changed its context")
    return out


def check_policy(spec: Any, *, n_arms: int = 5, rounds: int = 200, seed: int = 0) -> None:
    """Run the policy conventions over the arm policy ``spec`` describes.

    Raises
    ------
    CheckError
        If a convention does not hold.
    """
    n_features = 1 + len(getattr(spec, "features", ()) or ()) if hasattr(spec, "features") else 0

    def make() -> Policy:
        return make_policy(spec, n_arms, n_features=n_features, seed=seed)

    subject = f"`{type(spec).__name__}`"
    stored = getattr(make(), "spec", spec)
    if stored != spec and type(spec).__name__ != "PopularSpec":
        raise _fail("params-verbatim", subject, f"stored {stored!r}, given {spec!r}")
    a, b = _run(make(), rounds, n_features, seed), _run(make(), rounds, n_features, seed)
    if a != b:
        raise _fail("equal-seeds-equal-decisions", subject, "two runs with one seed differ")
    live = make()
    _run(live, rounds, n_features, seed)
    restored = make()
    restored.load_state(copy.deepcopy(live.to_state()))
    if _run(live, rounds, n_features, seed + 1) != _run(restored, rounds, n_features, seed + 1):
        raise _fail("state-round-trip", subject, "a restored policy decides differently from the original")


def _engine_state(engine: Any) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for comp, (arrays, meta) in engine.to_state().items():
        for name, a in arrays.items():
            flat[f"{comp}/{name}"] = np.array(a, copy=True)
        flat[f"{comp}/meta"] = meta
    return flat


def _same_state(a: dict[str, Any], b: dict[str, Any]) -> str | None:
    if a.keys() != b.keys():
        return f"components differ: {sorted(set(a) ^ set(b))[:5]!r}"
    for k in a:
        x, y = a[k], b[k]
        if isinstance(x, np.ndarray):
            if x.shape != y.shape or not np.array_equal(x, y, equal_nan=x.dtype.kind == "f"):
                return f"`{k}` differs"
        elif x != y:
            return f"`{k}` differs: {x!r} != {y!r}"
    return None


def _reopened(engine: Any, hash_key: str | None) -> Any:
    """A twin of ``engine`` through a snapshot (the secret: ``hash_key`` or the configuration's)."""
    from .engine import Engine

    with tempfile.TemporaryDirectory(prefix="decisioner-check-") as tmp:
        engine.save(Path(tmp) / "snap")
        key = hash_key if hash_key is not None else engine.config.identity.hash_key
        return Engine.open(Path(tmp) / "snap", hash_key=key, flush="off")


def check_engine(engine: Any, events: Sequence[tuple[str | None, Any]], *, hash_key: str | None = None) -> None:
    """A snapshot of ``engine`` reopened continues exactly like it over ``events``
    (``(placement, event)``: a decide, or a track when the placement is ``None``; an
    :class:`Outbound` instead of a pair: an outbound batch), with equal
    decisions and equal state after; decoding the events mutates none of them.

    ``engine`` is advanced by the events. ``hash_key`` is the secret when the configuration
    names it through the environment only.

    Raises
    ------
    CheckError
        If a convention does not hold.
    """
    restored = _reopened(engine, hash_key)
    problem = _same_state(_engine_state(engine), _engine_state(restored))
    if problem:
        raise _fail("state-round-trip", "the engine", f"reopened state differs at once: {problem}")
    for j, item in enumerate(events):
        placement, event = (None, item) if isinstance(item, Outbound) else item
        before = copy.deepcopy(event)
        outs: list[Any] = []
        for eng in (engine, restored):
            if isinstance(event, Outbound):
                b = eng.outbound(event.audience, placement=event.placement, channel=event.channel, now=event.now)
                outs.append(([(m.person, m.decision_id, m.content, m.propensity) for m in b.sent], b.counts))
            elif placement is None:
                outs.append(eng.track(event))
            else:
                d = eng.decide(event, placement=placement)
                outs.append((d.decision_id, d.person, [(s.content, s.score, s.propensity) for s in d.slots], d.variant))
        if event != before:
            raise _fail("inputs-not-mutated", "the engine", f"event {j} was changed by the engine")
        if outs[0] != outs[1]:
            raise _fail("state-round-trip", "the engine", f"event {j}: {outs[0]!r} != {outs[1]!r}")
    problem = _same_state(_engine_state(engine), _engine_state(restored))
    if problem:
        raise _fail("state-round-trip", "the engine", f"state differs after {len(events)} events: {problem}")


def _decision_key(d: Any) -> tuple[Any, ...]:
    return (d.decision_id, d.person, [(x.content, x.score, x.propensity) for x in d.slots], d.variant)


def check_batch(
    engine: Any, events: Sequence[Any], *, decide_on: dict[str, str], batch: int = 7, hash_key: str | None = None,
) -> None:
    """``events`` (dicts or event Structs) ingested by a snapshot twin of ``engine`` in batches of
    ``batch`` (:meth:`Engine.ingest_many`, ``errors="skip"``) give the decisions, profile rows,
    refusals and state that ``engine`` gives taking them one call each (an event whose type
    ``decide_on`` maps to a placement is decided there, any other tracked).

    ``engine`` is advanced by the events.

    Raises
    ------
    CheckError
        If a convention does not hold.
    """
    twin = _reopened(engine, hash_key)
    rows: list[int] = []
    decisions: list[tuple[Any, ...]] = []
    refused: list[int] = []
    for j, ev in enumerate(events):
        etype = ev.get("type") if isinstance(ev, dict) else type(ev).__struct_config__.tag
        try:
            if etype in decide_on:
                d = engine.decide(ev, placement=decide_on[etype])
                decisions.append(_decision_key(d))
                rows.append(int(d.profile))
            else:
                rows.append(int(engine.track(ev)))
        except DecisionerError:
            refused.append(j)
            rows.append(-1)
    got_rows: list[int] = []
    got_decisions: list[tuple[Any, ...]] = []
    got_refused: list[int] = []
    for start in range(0, len(events), batch):
        out = twin.ingest_many(list(events[start:start + batch]), decide_on=decide_on, errors="skip")
        got_rows.extend(int(r) for r in out.rows)
        got_decisions.extend(_decision_key(d) for d in out.decisions)
        got_refused.extend(start + j for j, _ in out.rejected)
    if got_refused != refused:
        raise _fail("batch-equals-one-by-one", "the engine", f"refused events {got_refused} != {refused}")
    for j, (a, b) in enumerate(zip(decisions, got_decisions, strict=False)):
        if a != b:
            raise _fail("batch-equals-one-by-one", "the engine", f"decision {j}: {b!r} != {a!r}")
    if len(decisions) != len(got_decisions) or rows != got_rows:
        raise _fail("batch-equals-one-by-one", "the engine",
                    f"{len(got_decisions)} decisions and rows {got_rows[:8]}... != {len(decisions)} and {rows[:8]}...")
    problem = _same_state(_engine_state(engine), _engine_state(twin))
    if problem:
        raise _fail("batch-equals-one-by-one", "the engine", f"state differs after {len(events)} events: {problem}")
