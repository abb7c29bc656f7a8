"""Outbound messages: the next message per person for a channel, in batch, for a whole audience.

:func:`outbound` (``Engine.outbound``) takes an audience (a segment expression, or a list of
person ids), a campaign placement and an outbound channel (``email``, ``sms``, ``push``), and
chooses for each person the experience to send at event time ``now``:

* **consent**: a person is sent a message only with ``marketing`` consent on the channel (and the
  placement's ``purposes`` there); without ``personalization`` consent on it the choice is the
  one a decision makes for such a person (the live ``default`` experience, else the policy's
  choice from no attribute of the person), and the message says ``personalized = false``;
* **frequency caps** (``[outbound] caps``): at most ``max`` messages on the channel in any
  ``days`` ending now, counted from the person's send history (:class:`SendHistory`);
* **quiet hours** (``[outbound] quiet``): nobody is sent a message inside the channel's local
  quiet window, in the time zone of ``timezone_attribute`` (else ``default_timezone``);
* skipped people are reported with the first reason that applies, in this order: ``consent``,
  ``cap``, ``quiet``, ``no_content`` (no live experience and no default).

**Decisions like any other.** Each message is a decision: a decision id ``<instance>-<seq>``
from the engine's decision counter, a row in the decision log (with analytics consent, as for
``decide``) with the experience, score and propensity, and a pending entry so a later click or
conversion joins it by decision id (``Engine.observe``) and rewards the policy.

**The policy, batched.** The placement's policy chooses for the whole batch from one state: its
action distribution over the live experiences (burn-in: uniform over the arms still below it) is
computed once, each person draws from it with the decision's own random stream
(``seed_state(seed, seq)``, as ``decide`` seeds it: the first uniform of that stream picks the
arm by the distribution's cumulative sums), and the propensity logged is the probability of
the chosen experience under that distribution: exact. The exposures are counted after the
draws, in audience order. (A mailing goes out at once; updating the policy between its
messages would only make the batch slower, not the propensities better.)

**Durability.** The batch is one logged operation (:class:`~decisioner.journal.OutboundOp`):
the placement, channel, time and the audience's person ids before the filters; replaying it on
the same state filters and draws again and gives the same messages, so a snapshot and log
round trip gives identical next choices. The send history is a row-keyed store that follows
merges (the newest sends of both people), splits (the new pieces start empty), erasure and
eviction (cleared), the access export (``sends``) and snapshots (component ``outbound``).

**Experiments and the holdout.** A person in the global holdout gets the holdout's content, one
in an experiment on the placement its variant's choice (a variant with its own policy draws from
that policy), logged with the experiment and variant as ``decide`` logs them; the assignment is
the sticky one of the person's profile, made at the first one from the person's smallest
identifier key. Placements that target a segment (``segment`` or segment ``rules``) are refused.
"""

from __future__ import annotations

import gc
import time as _time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np

from . import arguments
from .allocation.experiments import _UNASSIGNED, HOLDOUT, NOT_ENROLLED
from .config import DAY_MS
from .config.outbound import OUTBOUND_CHANNELS, OutboundSpec, minutes_of_day
from .consent.store import CHANNEL, PURPOSE, cell
from .errors import NotReadyError, SchemaError
from .journal import OutboundOp
from .outcomes import Pending
from .rows import doubled, grown
from .schemas import Result
from .snapshot import ComponentState

if TYPE_CHECKING:
    from .attributes import AttributeStore
    from .engine import Engine
    from .placements import Placement

__all__ = ["SendHistory", "Message", "Skipped", "OutboundBatch", "outbound", "apply_op", "REASONS", "uniforms"]

#: a send slot that holds no send
NEVER: Final = -(2**62)
#: why a person was not sent a message, by code (0: sent)
REASONS: Final = ("sent", "consent", "cap", "quiet", "no_content")
_SENT, _CONSENT, _CAP, _QUIET, _NO_CONTENT = range(5)
_MAX_AUDIENCE: Final = 50_000_000
_MARKETING: Final = PURPOSE["marketing"]
_PERSONALIZATION: Final = PURPOSE["personalization"]
_ANALYTICS: Final = PURPOSE["analytics"]
_MASK64: Final = (1 << 64) - 1


class SendHistory:
    """The times of each person's newest sends, per outbound channel, by profile row.

    ``sends_`` int64[rows, len(OUTBOUND_CHANNELS), history], newest first (:data:`NEVER`: an
    empty slot); ``history`` is :attr:`OutboundSpec.history`. Without caps the store is
    inactive: it holds one row and records nothing (nothing would read it).

    Examples
    --------
    >>> from decisioner.config import CapSpec
    >>> h = SendHistory(OutboundSpec(caps={"email": CapSpec(max=2, days=7)}), capacity=2)
    >>> h.record(np.array([0, 1]), 0, 1_000); h.record(np.array([0]), 0, 3_000); h.record(np.array([0]), 0, 2_000)
    >>> h.sends_[0, 0].tolist(), h.counts(np.array([0, 1]), 0, 1_500).tolist()
    ([3000, 2000], [2, 0])
    """

    def __init__(self, spec: OutboundSpec, *, capacity: int = 1024) -> None:
        self.spec = spec
        self.history = spec.history
        self.active = bool(spec.caps)
        cap = max(1, capacity) if self.active else 1
        self.sends_ = np.full((cap, len(OUTBOUND_CHANNELS), self.history), NEVER, dtype=np.int64)

    @property
    def n_rows(self) -> int:
        return int(self.sends_.shape[0])

    def ensure(self, n_rows: int) -> None:
        """Grow (by doubling) so rows ``0 .. n_rows - 1`` exist."""
        if n_rows > self.sends_.shape[0] and self.active:
            self.sends_ = grown(self.sends_, doubled(self.sends_.shape[0], n_rows), NEVER)

    def clear(self, rows: int | np.ndarray | list[int]) -> None:
        """Forget the sends of a row (or rows): erasure, eviction, a new profile."""
        if self.active:
            self.sends_[rows] = NEVER

    def merge(self, dst: int, src: int) -> None:
        """Fold ``src`` into ``dst`` (identity merge): the newest ``history`` sends of both, per
        channel; ``src`` is cleared."""
        if not self.active:
            return
        both = np.concatenate([self.sends_[dst], self.sends_[src]], axis=1)
        both.sort(axis=1)
        self.sends_[dst] = both[:, ::-1][:, : self.history]
        self.sends_[src] = NEVER

    def record(self, rows: np.ndarray, channel: int, now: int) -> None:
        """A send at ``now`` on ``channel`` (index into OUTBOUND_CHANNELS) to each of ``rows``
        (distinct rows); each keeps its newest ``history`` sends."""
        if not self.active or rows.shape[0] == 0:
            return
        cur = self.sends_[rows, channel, :]
        both = np.concatenate([cur, np.full((rows.shape[0], 1), now, dtype=np.int64)], axis=1)
        both.sort(axis=1)
        self.sends_[rows, channel, :] = both[:, ::-1][:, : self.history]

    def counts(self, rows: np.ndarray, channel: int, since: int) -> np.ndarray:
        """Sends on ``channel`` after ``since`` (epoch ms) per row (int64)."""
        out: np.ndarray = np.count_nonzero(self.sends_[rows, channel, :] > since, axis=1).astype(np.int64)
        return out

    def export(self, row: int) -> dict[str, list[int]]:
        """The row's held send times by channel, newest first (channels without one left out)."""
        if not self.active or row >= self.n_rows:
            return {}
        out = {}
        for ci, ch in enumerate(OUTBOUND_CHANNELS):
            held = [int(t) for t in self.sends_[row, ci].tolist() if t != NEVER]
            if held:
                out[ch] = held
        return out

    def to_state(self) -> ComponentState:
        return {"sends": self.sends_}, {"channels": list(OUTBOUND_CHANNELS), "history": self.history}

    def load_state(self, state: ComponentState) -> None:
        """Restore :meth:`to_state`; a state kept for another ``history`` keeps the newest sends
        that fit (a cap changed between runs).

        Raises
        ------
        NotReadyError
            If the state was written for other channels.
        """
        arrays, meta = state
        got = list(meta.get("channels") or [])
        if got != list(OUTBOUND_CHANNELS):
            raise NotReadyError(
                f"expected outbound state for channels {list(OUTBOUND_CHANNELS)}, got {got} - at `outbound`"
            )
        sends = np.array(arrays["sends"], dtype=np.int64)
        if not self.active:
            return
        k = min(self.history, sends.shape[2])
        new = np.full((max(1, sends.shape[0]), len(OUTBOUND_CHANNELS), self.history), NEVER, dtype=np.int64)
        new[: sends.shape[0], :, :k] = sends[:, :, :k]
        self.sends_ = new

    def nbytes(self) -> int:
        return int(self.sends_.nbytes)


class Message(Result, frozen=True, kw_only=True, gc=False):
    """One outbound message: the person, its decision id, the experience and its propensity."""

    person: int
    decision_id: str
    content: str
    propensity: float
    score: float = 0.0
    personalized: bool = True
    #: the experiment variant (or ``holdout``) the person is in; None: no experiment
    variant: str | None = None


class Skipped(Result, frozen=True, kw_only=True, gc=False):
    """A member of the audience who was not sent a message, and why (``consent``, ``cap``,
    ``quiet``, ``no_content``)."""

    person: int
    reason: str


class OutboundBatch(Result, frozen=True, kw_only=True):
    """An outbound batch: the messages, the people skipped and the counts by outcome
    (``audience``, ``sent`` and each skip reason)."""

    placement: str
    channel: str
    time: int
    policy: str
    sent: list[Message]
    skipped: list[Skipped]
    counts: dict[str, int]
    seconds: float = 0.0


# ---------------------------------------------------------------------- validation
def check_placement(engine: Engine, name: str) -> Placement:
    """The campaign placement ``name``, refused when its allocation needs what a batch lacks.

    Raises
    ------
    UnknownPlacementError, SchemaError
    """
    pl = engine.placement(name)
    if pl.kind != "campaign":
        raise SchemaError(f"Expected a campaign placement, got {name!r} (a {pl.kind}) - at `placement`")
    if engine.segments_.target(pl.index) is not None:
        raise SchemaError(
            f"Expected a campaign placement without a segment or segment rules (outbound batches do not target "
            f"them), got {name!r} - at `placement`"
        )
    return pl


def check_channel(channel: Any) -> int:
    """The index of ``channel`` in OUTBOUND_CHANNELS (a :class:`SchemaError` otherwise)."""
    if not isinstance(channel, str) or channel not in OUTBOUND_CHANNELS:
        raise SchemaError(f"Expected a channel in {list(OUTBOUND_CHANNELS)}, got {channel!r:.60} - at `channel`")
    return OUTBOUND_CHANNELS.index(channel)


def person_list(audience: Any) -> np.ndarray:
    """A list of person ids as int64 (a :class:`SchemaError` naming the first bad entry)."""
    if isinstance(audience, np.ndarray):
        if audience.ndim != 1 or audience.dtype.kind not in "iu":
            raise SchemaError(f"Expected a 1-d integer array of person ids, got {audience.dtype} of shape "
                              f"{audience.shape} - at `audience`")
        ids = audience.astype(np.int64)
    elif isinstance(audience, Sequence) and not isinstance(audience, (str, bytes)):
        for j, p in enumerate(audience):
            if isinstance(p, bool) or not isinstance(p, (int, np.integer)):
                raise SchemaError(f"Expected a person id (an int), got {p!r:.60} - at `audience[{j}]`")
        ids = np.array(audience, dtype=np.int64) if len(audience) else np.zeros(0, dtype=np.int64)
    else:
        raise SchemaError(
            f"Expected a segment expression (a str) or a list of person ids, got `{type(audience).__name__}` - at "
            "`audience`"
        )
    if ids.shape[0] > _MAX_AUDIENCE:
        raise SchemaError(f"Expected at most {_MAX_AUDIENCE} people, got {ids.shape[0]} - at `audience`")
    bad = np.flatnonzero(ids < 0)
    if bad.shape[0]:
        j = int(bad[0])
        raise SchemaError(f"Expected a person id >= 0, got {int(ids[j])} - at `audience[{j}]`")
    return ids


def resolve(engine: Engine, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct people ``ids`` name (merged ids: the person they were merged into), ascending,
    and their profile rows.

    Raises
    ------
    SchemaError
        If an id is not a person with a profile (unknown, erased or evicted).
    """
    n = engine.identity.n_rows
    person = engine.people.person_[:n]
    live = np.flatnonzero(person >= 0)
    pids = person[live]
    order = np.argsort(pids, kind="stable")
    pids, live = pids[order], live[order]
    canon = engine.people.canonical_many(ids)
    pos = np.searchsorted(pids, canon)
    pos_c = np.minimum(pos, max(pids.shape[0] - 1, 0))
    found = (pos < pids.shape[0]) & (pids[pos_c] == canon) if pids.shape[0] else np.zeros(ids.shape[0], bool)
    if not found.all():
        j = int(np.flatnonzero(~found)[0])
        raise SchemaError(
            f"Expected the id of a person with a profile, got {int(ids[j])} (unknown, erased or evicted) - at "
            f"`audience[{j}]`"
        )
    uniq, first = np.unique(canon, return_index=True)
    return uniq, live[pos_c[first]]


def segment_rows(engine: Engine, expr: str, now: int) -> tuple[np.ndarray, np.ndarray]:
    """The members of segment ``expr`` at ``now``: person ids ascending and their rows."""
    seg = engine.segments_.compile(expr)
    n = engine.identity.n_rows
    person = engine.people.person_[:n]
    rows = np.flatnonzero(seg.evaluate_many(now, n).view(bool) & (person >= 0))
    pids = person[rows]
    order = np.argsort(pids, kind="stable")
    return pids[order], rows[order]


# ---------------------------------------------------------------------- filters
@lru_cache(maxsize=1024)
def _zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _offset_ms(zone: ZoneInfo, now: int) -> int:
    off = datetime.fromtimestamp(now / 1000, UTC).astimezone(zone).utcoffset()
    return 0 if off is None else int(off.total_seconds() * 1000)


def local_minutes(spec: OutboundSpec, attributes: AttributeStore, rows: np.ndarray, now: int) -> np.ndarray:
    """Minutes past local midnight at ``now`` for each row (int64): the zone of the row's
    ``timezone_attribute``, else ``default_timezone``."""
    default = _zone(spec.default_timezone)
    assert default is not None  # checked by the spec
    offs = np.full(rows.shape[0], _offset_ms(default, now), dtype=np.int64)
    tz = spec.timezone_attribute
    if tz is not None and rows.shape[0]:
        codes = attributes.arrays_[f"{tz}/value"][rows].astype(np.int64)
        uniq, inv = np.unique(codes, return_inverse=True)
        vocab = attributes.vocab_[tz]
        lut = np.empty(uniq.shape[0], dtype=np.int64)
        for i, c in enumerate(uniq.tolist()):
            z = _zone(vocab[c]) if 0 <= c < len(vocab) else None
            lut[i] = _offset_ms(z, now) if z is not None else offs[0]
        offs = lut[inv.reshape(-1)]
    return ((now + offs) // 60_000) % 1440


def in_quiet(minutes: np.ndarray, window: tuple[str, str]) -> np.ndarray:
    """Whether each local time (minutes past midnight) falls in ``[from, to)``, wrapping midnight."""
    a = minutes_of_day(window[0], "quiet")
    b = minutes_of_day(window[1], "quiet")
    if a < b:
        return (minutes >= a) & (minutes < b)
    return (minutes >= a) | (minutes < b)


# ---------------------------------------------------------------------- the policy, batched
def uniforms(seed: int, seqs: np.ndarray) -> np.ndarray:
    """The first uniform draw of ``seed_state(seed, seq)``'s stream for each ``seq`` (float64):
    :func:`decisioner._kernels.rng.seed_state` then ``rng_uniform``, in numpy over the batch."""
    with np.errstate(over="ignore"):
        base = np.uint64((seed * 0x9E3779B97F4A7C15 + 0x632BE59BD9B4E019) & _MASK64)
        z = base + seqs.astype(np.uint64) * np.uint64(0xD1B54A32D192ED03)
        z = _mix(z)  # seed_state
        z = _mix(z + np.uint64(0x9E3779B97F4A7C15))  # rng_next
    return (z >> np.uint64(11)).astype(np.float64) * (1.0 / 9007199254740992.0)


def _mix(z: np.ndarray) -> np.ndarray:
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    out: np.ndarray = z ^ (z >> np.uint64(31))
    return out


def distribution(pl: Placement, eligible: np.ndarray, context: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """The probability of each experience at the next choice (float64, zero where not live)
    and each one's score (the policy's mean estimate)."""
    el = eligible.astype(bool)
    if pl.bandit is None:  # a uniform slate over the live experiences
        return el / max(int(el.sum()), 1), np.zeros(el.shape[0])
    b = pl.bandit
    cold = el & (b.counts < b.burn_in) if b.burn_in > 0 else np.zeros(el.shape[0], bool)
    p = cold / cold.sum() if cold.any() else np.where(el, b.action_distribution(eligible, context=context), 0.0)
    return p.astype(np.float64), np.asarray(b.means(), dtype=np.float64)


def draw(p: np.ndarray, u: np.ndarray) -> np.ndarray:
    """The arm each uniform ``u`` picks by the cumulative sums of ``p`` (only arms with p > 0)."""
    cum = np.cumsum(p)
    arms = np.searchsorted(cum, u, side="right")
    return np.minimum(arms, int(np.flatnonzero(p > 0)[-1])).astype(np.int64)


# ---------------------------------------------------------------------- the operation
def outbound(engine: Engine, audience: Any, *, placement: str, channel: str, now: int) -> OutboundBatch:
    """The next message per person of ``audience`` on ``channel`` from campaign ``placement`` at
    event time ``now`` (see the module docstring); one logged operation.

    Parameters
    ----------
    engine
        The engine whose people, policy, decision log and send history it uses.
    audience
        A segment expression (or a name of ``[segments]``), or a list of person ids.
    placement
        A campaign placement without experiments, holdout or segment rules.
    channel
        ``email``, ``sms`` or ``push``.
    now
        The send time (epoch ms): caps, quiet hours and live experiences are evaluated at it.

    Returns
    -------
    OutboundBatch
        Messages (person, decision id, experience, propensity), people skipped with the reason,
        counts.

    Raises
    ------
    UnknownPlacementError, SchemaError
        Before anything changes: an unknown or unsuitable placement, a channel, time, segment
        or person id that is not valid.
    """
    t0 = _time.perf_counter()
    pl = check_placement(engine, placement)
    check_channel(channel)
    now = arguments.epoch_ms(now, "now")
    listed = None if isinstance(audience, str) else person_list(audience)
    with engine.journal.lock:
        if listed is None:
            persons, rows = segment_rows(engine, arguments.text(audience, "audience", max_len=4096), now)
        else:
            persons, rows = resolve(engine, listed)
        op = OutboundOp(pl.spec.name, channel, now, persons.tolist())
        with _gc_paused():
            batch = engine.journal.run(op, lambda: _send(engine, pl, channel, now, persons, rows))
    return _with_seconds(batch, _time.perf_counter() - t0)


def apply_op(engine: Engine, op: OutboundOp) -> OutboundBatch:
    """Apply a logged :class:`OutboundOp` (replay; the engine holds its writer lock)."""
    pl = check_placement(engine, op.placement)
    persons, rows = resolve(engine, np.array(op.persons, dtype=np.int64))
    return engine.journal.run(op, lambda: _send(engine, pl, op.channel, op.now, persons, rows))


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic GC while a batch builds its hundreds of thousands of small acyclic
    objects (decision ids, pending entries, messages): otherwise each allocation burst rescans
    every live container, over half of a 50,000-person batch. Nothing leaks: none holds a cycle."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _assign(engine: Engine, base: Placement, rows: np.ndarray) -> np.ndarray:
    """The experiment assignment code of each row (a variant, ``HOLDOUT`` or ``NOT_ENROLLED``),
    stored at a person's first one; the unit of a first assignment is the smallest identifier
    key of the person."""
    rt = engine.experiments_
    rt.ensure(int(rows.max()) + 1)
    g = engine.identity
    e_i = rt.by_placement[base.index]
    out = np.empty(rows.shape[0], dtype=np.int64)
    for j, r in enumerate(rows.tolist()):
        unit = ""
        if (rt.holdout is not None and rt.holdout_[r] < 0) or (e_i >= 0 and rt.assign_[e_i, r] == _UNASSIGNED):
            mem = g.members(r)
            unit = f"{int(g.nodes_['key'][mem].min()):016x}" if mem.shape[0] else ""
        out[j] = rt.assign(base.index, r, unit)
    return out


def _choose(
    pl: Placement, eligible: np.ndarray, personal: np.ndarray, seqs: np.ndarray, seed: int,
    context: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """What :meth:`Placement.choose_arm` gives each person, batched: experiences, propensities,
    scores, and which were drawn by the policy (to be exposed)."""
    k = seqs.shape[0]
    arms = np.full(k, pl.default, dtype=np.int64)
    props = np.ones(k, dtype=np.float64)
    scores = np.zeros(k, dtype=np.float64)
    drawn = np.zeros(k, dtype=bool)
    if not eligible.any():  # the default as fallback (the caller skipped everyone otherwise)
        return arms, props, scores, drawn
    rest = personal | (not (pl.default >= 0 and bool(eligible[pl.default])))  # else: the default
    if pl.fixed >= 0:
        arms[rest] = pl.fixed if eligible[pl.fixed] else int(np.argmax(eligible))
        return arms, props, scores, drawn
    drawn = rest
    if drawn.any():
        p, means = distribution(pl, eligible, context)
        a = draw(p, uniforms(seed, seqs[drawn]))
        arms[drawn], props[drawn], scores[drawn] = a, p[a], means[a]
    return arms, props, scores, drawn


def _with_seconds(batch: OutboundBatch, seconds: float) -> OutboundBatch:
    return OutboundBatch(placement=batch.placement, channel=batch.channel, time=batch.time, policy=batch.policy,
                         sent=batch.sent, skipped=batch.skipped, counts=batch.counts, seconds=seconds)


def _send(engine: Engine, pl: Placement, channel: str, now: int, persons: np.ndarray,
          rows: np.ndarray) -> OutboundBatch:
    """Filter, choose, log and record one validated batch (under the writer lock)."""
    spec = engine.config.outbound
    ci = OUTBOUND_CHANNELS.index(channel)
    ch = CHANNEL[channel]
    n = rows.shape[0]
    allow = engine.consent.allow_[rows]
    need = np.uint64((1 << cell(_MARKETING, ch)) | sum(1 << cell(PURPOSE[p], ch) for p in set(pl.spec.purposes)))
    reason = np.where((allow & need) == need, _SENT, _CONSENT).astype(np.int8)
    cap = spec.caps.get(channel)
    if cap is not None:
        recent = engine.sends_.counts(rows, ci, now - int(cap.days * DAY_MS))
        reason[(reason == _SENT) & (recent >= cap.max)] = _CAP
    quiet = spec.quiet.get(channel)
    if quiet is not None:
        inq = in_quiet(local_minutes(spec, engine.attributes_, rows, now), quiet)
        reason[(reason == _SENT) & inq] = _QUIET
    eligible = pl.eligible_experiences(now)
    n_cand = int(eligible.sum())
    if n_cand == 0 and not (pl.default >= 0 and pl.spec.fallback):
        reason[reason == _SENT] = _NO_CONTENT
    go = np.flatnonzero(reason == _SENT)
    k = go.shape[0]
    g_rows, g_allow = rows[go], allow[go]
    personal = (g_allow >> np.uint64(cell(_PERSONALIZATION, ch))) & np.uint64(1) == 1
    seqs = engine.seq_ + np.arange(k, dtype=np.int64)
    # experiments and the holdout: each person's sticky assignment (stored at the first one)
    codes = _assign(engine, pl, g_rows) if engine.experiments_.active and k else np.full(k, NOT_ENROLLED, np.int64)
    arms = np.full(k, pl.default, dtype=np.int64)
    props = np.ones(k, dtype=np.float64)
    scores = np.zeros(k, dtype=np.float64)
    groups = []  # every draw comes from the state before the batch: exposures follow all draws
    for code in np.unique(codes).tolist():
        sel = np.flatnonzero(codes == code)
        dpl = pl.assigned(code)[0]
        context = dpl.context({})
        a, pr, sc, drawn = _choose(dpl, eligible, personal[sel], seqs[sel], engine.seed, context)
        arms[sel], props[sel], scores[sel] = a, pr, sc
        groups.append((code, sel, dpl, context, drawn))
    # state moves from here on: exposures, the decision log, pending outcomes, the send history
    for _, sel, dpl, context, drawn in groups:
        if dpl.bandit is not None and dpl.fixed < 0 and drawn.any():
            dpl.bandit.expose_many(arms[sel][drawn], context=context)
    analytics = (g_allow >> np.uint64(cell(_ANALYTICS, ch))) & np.uint64(1) == 1
    logged = np.flatnonzero(analytics)
    handles = np.full(k, -1, dtype=np.int64)
    g_persons = persons[go]
    exp = np.where(codes == HOLDOUT, -1, pl.experiment if pl.experiment >= 0 else -1)
    if logged.shape[0]:
        handles[logged] = engine.decision_log.append_many(
            seqs=seqs[logged], time=now, persons=g_persons[logged], placement=pl.index, contents=arms[logged],
            scores=scores[logged], propensities=props[logged], candidates=n_cand, experiments=exp[logged],
            variants=codes[logged],
        )
        rt = engine.experiments_
        for j in np.flatnonzero(analytics & (codes != NOT_ENROLLED)).tolist():
            rt.exposures.append(int(seqs[j]), now, pl.experiment, int(codes[j]), int(g_persons[j]))
    inst = engine.instance
    ids = [f"{inst}-{s}" for s in seqs.tolist()]
    idx = pl.index
    ctx_of = {code: None if c is None else c.tolist() for code, _, _, c, _ in groups}
    engine.pending_.add_many(
        [(did, Pending(idx, h, 1, code, 0.0, ctx_of[code], now, 0, () if h >= 0 else (arm,)))
         for did, h, arm, code in zip(ids, handles.tolist(), arms.tolist(), codes.tolist())], now,
    )
    engine.sends_.record(g_rows, ci, now)
    engine.seq_ += k
    contents = pl.contents
    names = {code: None if code == NOT_ENROLLED else engine.experiments_.variant_name(pl.experiment, code)
             for code, _, _, _, _ in groups}
    sent = [
        Message(person=p, decision_id=d, content=contents[a], propensity=pr, score=s, personalized=z, variant=names[v])
        for p, d, a, pr, s, z, v in zip(g_persons.tolist(), ids, arms.tolist(), props.tolist(), scores.tolist(),
                                        personal.tolist(), codes.tolist())
    ]
    out = np.flatnonzero(reason != _SENT)
    skipped = [Skipped(person=p, reason=REASONS[r]) for p, r in zip(persons[out].tolist(), reason[out].tolist())]
    by = np.bincount(reason, minlength=len(REASONS)).tolist()
    counts = {"audience": int(n), **{REASONS[i]: int(c) for i, c in enumerate(by)}}
    return OutboundBatch(placement=pl.spec.name, channel=channel, time=now, policy=pl.policy_name, sent=sent,
                         skipped=skipped, counts=counts)
