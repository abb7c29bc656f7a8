"""An engine whose people live on Redis: what each of several worker processes runs.

:class:`SharedEngine` wraps an embedded :class:`~decisioner.engine.Engine` (the worker's local
copy and cache) and keeps every piece of state that other workers must see on Redis:

1. **Identity** on the server (:mod:`decisioner.state.identity`): an event's identifiers resolve
   to a person id atomically there, merges included; the answer names the persons a merge
   absorbed.
2. **The person's row** (:mod:`decisioner.state.profiles`): the local engine holds the person
   under one synthetic identifier (``person`` type, key derived from the person id), so its row
   is a local copy of the shared value. The event is applied to that copy by the engine's own
   code (tracking, the fused decide kernel), the new value is written back by compare-and-set;
   on a conflict the fresh value is loaded, the non-row effects of the first attempt are undone
   (popularity of the event's items, consent history, the event count) and the event applied
   again, up to ``max_retries`` times. A decision is made once, on the first attempt; only its
   tracking part is re-applied.
3. **Merges** the server reports: each absorbed person's row is first replaced by a tombstone
   (compare-and-set, so a concurrent writer of that row fails, re-resolves and lands on the
   survivor), then folded into the survivor's row with the stores' own merge rules
   (:meth:`~decisioner.tracking.Tracker.fold_rows`) before the survivor's write. A worker killed
   between the two round trips leaves the tombstone holding the absorbed value (``merged``
   field) for the operator; nothing is silently lost.
4. **Counters and logs** (:mod:`decisioner.state.counters`, :mod:`decisioner.state.stream`):
   synced every ``flush_events`` events or ``flush_ms`` ms.

Staleness: an update is never applied to a value older than the stored one (compare-and-set).
A decision is made on the row as stored when the call checked its version (``max_stale_ms = 0``,
the default): only an update committed by another worker during that one call can escape it
(it is then applied again to the fresh row, never lost), so a consent withdrawal made through any
worker governs every later decision. Policy statistics and popularity from other workers arrive
within one sync period. After every worker's final :meth:`SharedEngine.sync`, the shared state
equals that of one embedded engine fed the same events (the multi-process tests check it).

Redis unreachable: every call raises :class:`~decisioner.errors.StateUnavailable` and changes
nothing shared; with ``degraded=True``, :meth:`SharedEngine.decide` serves instead the
non-personalised fallback of the placement (no tracking, no logging) and marks the decision
with a ``degraded`` reason. The client reconnects by itself when the server is back.
"""

from __future__ import annotations

import contextlib
import functools
import time as _time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Final, NamedTuple, Protocol

import msgspec
import numpy as np

from ..errors import StateUnavailable
from ..journal import DecideOp
from ..schemas import Decision, Event, Opinion, Reason, decode_event
from ..tracking import Checked
from .counters import SharedCounters
from .profiles import RowStore
from .rowcodec import RowCodec
from .stream import DecisionStream

if TYPE_CHECKING:
    from ..engine import Engine
    from .connection import RedisState

__all__ = ["EventIdentity", "SharedEngine", "SharedIdentity", "Linked", "TOMBSTONE", "person_key"]

#: the first bytes of a row value that a merge replaced (then ``merged:<survivor>:`` + old value)
TOMBSTONE: Final = b"merged:"
_PERSON_TYPE: Final = "person"
_MIX: Final = 0x9E3779B97F4A7C15


def person_key(person: int) -> int:
    """The local synthetic identifier key of ``person`` (uint64, never 0)."""
    return ((person + 1) * _MIX) & 0xFFFFFFFFFFFFFFFF or 1


class Linked(Protocol):
    """What the shared identity answers for one event."""

    @property
    def person(self) -> int: ...  # -1: no person (anonymous, refused)

    @property
    def absorbed(self) -> Sequence[int]: ...  # persons this event's merge folded into ``person``


class SharedIdentity(Protocol):
    """The identity graph on the server (see :mod:`decisioner.state.identity`)."""

    def link_event(self, event: Event, checked: Checked) -> Linked: ...


class EventIdentity:
    """:class:`~decisioner.state.identity.RedisIdentity` linking a validated event: the keys the
    local engine computed (same secret and rules), their type names, time, channel, consent."""

    def __init__(self, identity: Any) -> None:
        self.identity = identity

    def link_event(self, event: Event, checked: Checked) -> Linked:
        res: Linked = self.identity.link_keys(checked.keys, list(event.ids), time=event.time, source=event.channel,
                                              consent=event.consent)
        return res


class _Known(NamedTuple):
    """A resolution served from the local identity cache (no merge: it was linked before)."""

    person: int
    absorbed: tuple[int, ...] = ()


class _Retired(Exception):
    """The person's row is a tombstone: a merge retired the person after it was resolved."""


class _Undo:
    """The local effects of applying an event outside the person's row, captured before the
    first attempt so a retry after a compare-and-set conflict does not count them twice."""

    def __init__(self, engine: Engine, event: Event, items: list[int]) -> None:
        pop, cnt = engine.scorer.popularity_, engine.scorer.counters_
        self.engine = engine
        self.items = np.array(items, dtype=np.int64)
        self.pop = (pop.acc_[self.items].copy(), pop.max_, pop.t_ref_)
        self.cnt = (cnt.counts_[self.items].copy(), cnt.totals_.copy(), cnt.t_ref_)
        c = engine.consent
        self.history = (c.n_history_, c.history_dropped_)
        self.events = engine.tracker.events_
        pulse = engine.pulse_
        self.pulse = pulse.to_state() if isinstance(event, Opinion) and pulse.active else None
        if self.pulse is not None:
            self.pulse = ({k: v.copy() for k, v in self.pulse[0].items()}, dict(self.pulse[1]))

    def restore(self) -> None:
        e = self.engine
        pop, cnt = e.scorer.popularity_, e.scorer.counters_
        acc, mx, t_ref = self.pop
        if pop.t_ref_ != t_ref and t_ref:  # the attempt rebased every count: scale them back
            pop.acc_ *= 2.0 ** ((pop.t_ref_ - t_ref) / pop.half_life_ms)
        pop.acc_[self.items] = acc
        pop.max_, pop.t_ref_ = mx, t_ref
        counts, totals, c_ref = self.cnt
        if cnt.t_ref_ != c_ref and c_ref:
            cnt.counts_ *= 2.0 ** ((cnt.t_ref_ - c_ref) / cnt.half_life_ms)
        cnt.counts_[self.items] = counts
        cnt.totals_[:] = totals
        cnt.t_ref_ = c_ref
        e.scorer._dirty = True
        e.consent.n_history_, e.consent.history_dropped_ = self.history
        e.tracker.events_ = self.events
        if self.pulse is not None:
            e.pulse_.load_state(self.pulse)


class SharedEngine:
    """One worker's engine over shared state on Redis (see the module docstring).

    Parameters
    ----------
    engine
        The worker's embedded engine (same configuration and catalog in every worker); its
        ``instance`` names the worker in decision ids.
    state
        The connection (:class:`~decisioner.state.connection.RedisState`).
    identity
        The shared identity graph.
    log
        Where decisions go: ``"redis"`` (a Stream), ``"files"`` (``log_dir``) or ``"off"``.
    log_dir
        Directory of the decision files (``log="files"``).
    flush_events, flush_ms
        Counter and log sync period.
    cache_rows
        People whose row value is cached locally.
    max_retries
        Compare-and-set attempts per event before :class:`StateUnavailable` (contention).
    degraded
        Serve the placement's fallback when Redis is unreachable (see the module docstring).
    max_stale_ms
        How old a cached row a decision may be made on (0, the default: a decide first checks
        the stored version, one round trip for an integer, and loads the row if it moved on, so
        a consent change made through another worker is always seen). Tracking never needs it:
        its compare-and-set fails on a stale row and applies the event again.
    identity_cache_ms
        How long an event's exact set of identifiers, once linked, resolves locally without a
        round trip (0: always ask the server). Safe against merges elsewhere: a row merged away
        meanwhile is a tombstone, whose compare-and-set fails and sends the event to the server
        again. What it skips: refreshing the identifiers' last-seen time on the server, which
        only volatile identifiers' time-to-live reads (late by at most this long).
    """

    def __init__(
        self, engine: Engine, state: RedisState, identity: SharedIdentity, *, log: str = "redis",
        log_dir: str | None = None, flush_events: int = 1000, flush_ms: int = 1000, cache_rows: int = 100_000,
        max_retries: int = 20, degraded: bool = False, identity_cache_ms: int = 1000, max_stale_ms: int = 0,
    ) -> None:
        self.engine = engine
        self.state = state
        self.identity = identity
        self.rows = RowStore(state, cache_rows=cache_rows, max_stale_ms=max_stale_ms)
        self.codec = RowCodec(engine)
        self.counters = SharedCounters(engine, state, flush_events=flush_events, flush_ms=flush_ms)
        self.stream = DecisionStream(log, state=state, directory=log_dir, worker=engine.instance)
        self.max_retries = max_retries
        self.degraded = degraded
        g = engine.identity
        self._ptype = np.array([g.type_code(_PERSON_TYPE)], dtype=np.int8)
        self._scratch = self._local_row(-2)  # a row that holds an absorbed value while it is folded
        self._history_sent = engine.consent.n_history_ + engine.consent.history_dropped_
        self.identity_cache_ms = identity_cache_ms
        self._links: dict[bytes, tuple[int, float]] = {}  # sorted event keys -> (person, when linked)
        self._cache_rows = cache_rows
        self.retries_ = 0
        self.degraded_ = 0
        self.link_hits_ = 0

    @classmethod
    def connect(cls, engine: Engine, state: RedisState | None = None, **kwargs: Any) -> SharedEngine:
        """A worker over ``state`` (default: the ``[state]`` section of ``engine``'s
        configuration) whose identity graph is the server's, with the secret and the identity
        rules of ``engine``'s configuration.

        Raises
        ------
        ConfigError
            Without ``state``, if the configuration's ``[state]`` is not a Redis backend.
        """
        from ..hashing import resolve_key
        from .connection import RedisState
        from .identity import RedisIdentity

        if state is None:
            state = RedisState(engine.config.state)

        ic = engine.config.identity
        ident = RedisIdentity(state, resolve_key(ic.hash_key, ic.hash_key_env), spec=ic)
        return cls(engine, state, EventIdentity(ident), **kwargs)

    # ------------------------------------------------------------------ rows
    def _keys(self, person: int) -> np.ndarray:
        return np.array([person_key(person)], dtype=np.uint64)

    def _local_row(self, person: int) -> int:
        """The local row of ``person``, linked under its synthetic key when new here."""
        g = self.engine.identity
        row = g.resolve_key(person_key(person))
        if row < 0:
            row = g.link_keys(self._keys(person), self._ptype, time=None).row
            self.engine.tracker.sync_rows()
            self.rows.forget(person)  # a new local row holds nothing yet: the next use installs
        return int(row)

    def _install(self, row: int, person: int, value: bytes) -> None:
        """Make local ``row`` the value ``value`` of ``person`` (an empty row when b'')."""
        e = self.engine
        if value:
            self.codec.load(row, value)
        else:
            e.profiles.clear(row)
            e.consent.clear(row)
            e.attributes_.clear(row)
            e.engagement_.clear(row)
            if e.activity_ is not None:
                e.activity_.clear(row)
            if e.sends_ is not None:
                e.sends_.clear(row)
        e.experiments_.clear([row])
        e.people.person_[row] = person

    def _current(self, row: int, person: int, *, fresh: bool = False) -> int:
        """The version the local ``row`` holds (fetching and installing it when not cached;
        ``fresh``: also when the stored version moved on, unless the cached row is younger than
        ``max_stale_ms``)."""
        c = self.rows.cached(person)
        if c is None:
            c = self.state.run(lambda: self.rows.fetch(person), "row read")
            if c.value.startswith(TOMBSTONE):  # retired by a merge: the caller resolves again
                raise _Retired(person)
            self._install(row, person, c.value)
        elif fresh:
            now = self.state.run(lambda: self.rows.read(person), "row read")
            if now.value.startswith(TOMBSTONE):
                raise _Retired(person)
            if now.version != c.version:
                self._install(row, person, now.value)
            c = now
        return c.version

    def _absorb(self, survivor: int, absorbed: list[int]) -> list[bytes]:
        """Replace each absorbed person's row with a tombstone; returns their values."""
        out = []
        for a in absorbed:
            for _ in range(self.max_retries):
                c = self.state.run(functools.partial(self.rows.fetch, a), "row read")
                if not c.value or c.value.startswith(TOMBSTONE):
                    break
                stone = TOMBSTONE + str(survivor).encode() + b":" + c.value
                if self.state.run(functools.partial(self.rows.write, a, c.version, stone), "row write") is None:
                    out.append(c.value)
                    break
            self.rows.forget(a)  # its local copy is stale from now on
        return out

    def _fold(self, row: int, values: list[bytes], now: int) -> None:
        t = self.engine.tracker
        t._now = now
        for v in values:
            self.codec.load(self._scratch, v)
            t.fold_rows(row, np.array([self._scratch], dtype=np.int32))
        self.engine.people.person_[self._scratch] = -1

    def _update(self, ev: Event, checked: Checked, first: Callable[[Checked, int], Any],
                again: Callable[[Checked, int], Any], *, fresh: bool = False) -> tuple[Any, int]:
        """Resolve ``ev``'s person on the server, apply ``first`` to the local row (``fresh``:
        as stored now, see :meth:`_current`), write it by compare-and-set; on conflict load the
        stored value and apply ``again``."""
        linked = self._link(ev, checked)
        person = linked.person
        if person < 0:  # anonymous or refused: nothing of a person changes
            self.engine.tracker.events_ += 1
            return None, -1
        row = self._local_row(person)
        local = checked._replace(keys=self._keys(person), types=self._ptype)
        try:
            try:
                version = self._current(row, person, fresh=fresh)
            except _Retired:  # merged away since it was resolved (here or in the cache): ask the server
                self._links.clear()
                self.rows.forget(person)
                return self._update(ev, checked, first, again, fresh=fresh)
            folded = self._absorb(person, list(linked.absorbed)) if linked.absorbed else []
            self._fold(row, folded, ev.time)
            undo = _Undo(self.engine, ev, checked.items)
            out = first(local, row)
            for _ in range(self.max_retries):
                value = self.codec.encode(row)
                got = self.state.run(functools.partial(self.rows.write, person, version, value), "row write")
                if got is None:
                    return out, row
                self.retries_ += 1
                if got.value.startswith(TOMBSTONE):  # merged away meanwhile: apply to the survivor
                    undo.restore()
                    self.rows.forget(person)
                    self._links.clear()
                    return self._update(ev, checked, again, again)
                undo.restore()
                self._install(row, person, got.value)
                self._fold(row, folded, ev.time)
                version = got.version
                again(local, row)
        except BaseException:
            self.rows.forget(person)  # the local copy may hold an unacknowledged change
            raise
        self.rows.forget(person)
        raise StateUnavailable(
            f"Expected to write the row of person {person} within {self.max_retries} attempts, got a conflict "
            "each time - at `state.rows`"
        )

    def _link(self, ev: Event, checked: Checked) -> Linked:
        """The event's person: from the identity cache when its identifiers were linked within
        ``identity_cache_ms``, else from the server (which raises StateUnavailable itself)."""
        ttl = self.identity_cache_ms
        if not ttl or ev.consent:  # consent may readmit erased identifiers: the server decides
            return self.identity.link_event(ev, checked)
        k = np.sort(checked.keys[0]).tobytes()
        now = _time.monotonic()
        hit = self._links.get(k)
        if hit is not None and (now - hit[1]) * 1000.0 <= ttl:
            self.link_hits_ += 1
            return _Known(hit[0])
        res = self.identity.link_event(ev, checked)
        if res.absorbed:
            self._links.clear()  # persons were retired: resolutions that named them are stale
        if res.person >= 0:
            if len(self._links) >= self._cache_rows:
                self._links.clear()
            self._links[k] = (res.person, now)
        return res

    # ------------------------------------------------------------------ calls
    def track(self, event: Any) -> int:
        """Track one event (see :meth:`Engine.track`); returns the person id (-1: none).

        Raises
        ------
        SchemaError, UnknownItemError
            Before anything changes.
        StateUnavailable
            Redis unreachable; nothing shared changed.
        """
        e = self.engine
        ev = decode_event(event, max_bytes=e.config.limits.max_payload_bytes)
        checked = e.tracker.validate(ev)

        def apply(local: Checked, row: int) -> int:
            return int(e.tracker.apply(ev, local)[0])

        with e.journal.lock:
            _, row = self._update(ev, checked, apply, apply)
            self._tick()
            return int(e.people.person_[row]) if row >= 0 else -1

    def decide(self, event: Any, *, placement: str) -> Decision:
        """Track ``event`` and choose content for ``placement`` (see :meth:`Engine.decide`).

        Raises
        ------
        UnknownPlacementError, SchemaError, UnknownItemError
            Before anything changes.
        StateUnavailable
            Redis unreachable (unless ``degraded``); nothing shared changed.
        """
        t0 = _time.perf_counter_ns()
        e = self.engine
        pl = e.placements_.get(placement)
        ev = decode_event(event, max_bytes=e.config.limits.max_payload_bytes)
        checked = e.tracker.validate(ev)

        def first(local: Checked, row: int) -> Decision:
            return e._decide(pl, ev, local, t0, DecideOp(placement, ev))

        def again(local: Checked, row: int) -> int:
            return int(e.tracker.apply(ev, local, channel=pl.channel)[0])

        with e.journal.lock:
            logged = len(e.decision_log)
            try:
                got, _ = self._update(ev, checked, first, again, fresh=True)
            except StateUnavailable:
                if not self.degraded:
                    raise
                return self._fallback(placement, ev, t0, "state unavailable")
            if got is None:  # anonymous or refused on the server: no person to personalise for
                return self._fallback(placement, ev, t0, "no person")
            d: Decision = got
            self.counters.decided(pl.index)
            if len(e.decision_log) > logged:  # logged as the embedded engine logs it (analytics consent)
                self.stream.add(d)
            self._tick()
            return d

    def _fallback(self, placement: str, ev: Event, t0: int, why: str) -> Decision:
        """What the placement shows someone unknown, from this worker's local state (nothing
        tracked or logged), marked with a ``degraded`` reason."""
        self.degraded_ += 1
        d = self.engine.recommend({}, placement=placement, now=ev.time)
        out: Decision = msgspec.structs.replace(
            d, decision_id=f"{self.engine.instance}-x{self.degraded_}",
            reasons=[*d.reasons, Reason(kind="degraded", detail=f"{why}: non-personalised, not logged")],
            latency_us=(_time.perf_counter_ns() - t0) / 1000.0,
        )
        return out

    def _new_consent(self) -> list[dict[str, Any]]:
        """The consent history entries recorded since the last sync (each once: a retried
        event's first attempt was undone)."""
        c = self.engine.consent
        total = c.n_history_ + c.history_dropped_
        n = min(total - self._history_sent, c.n_history_)
        self._history_sent = total
        if n <= 0:
            return []
        h = c.history_[c.n_history_ - n : c.n_history_]
        out = c.history_of(set(h["person"].tolist()))
        return out[-n:] if len(out) >= n else out

    def _tick(self) -> None:
        if self.counters.tick():
            with contextlib.suppress(StateUnavailable):  # the increments stay local and go with the next sync
                self.sync()

    def sync(self) -> int:
        """Send counter increments and buffered decisions, load the totals (a worker calls it
        before it stops; the engine calls it every sync period). Returns increments sent.

        Raises
        ------
        StateUnavailable
            Redis unreachable; the increments and decisions stay buffered for the next sync.
        """
        with self.engine.journal.lock:
            self.stream.add_consent(self._new_consent())
            n = self.state.run(self.counters.sync, "counter sync")
            self.state.run(self.stream.flush, "decision log")
            return n
