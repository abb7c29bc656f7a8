"""ConsentStore: each profile's consent grid, and the history of every change.

The grid of a profile is one ``uint64``: bit ``purpose * len(CHANNELS) + channel`` is set when
the person allows that purpose on that channel (:func:`cell`). A new profile starts from the
configured defaults (:class:`~decisioner.config.ConsentSpec`).

A consent signal is parsed (validated) before anything changes (:meth:`ConsentStore.parse`)
into *steps*, each a set of cells granted and a set refused, applied in order:

1. an IAB TCF v2.2 string (``tcf``) on the configured TCF channels, mapped onto our purposes by
   :func:`decisioner.consent.tcf.purposes_of` (purposes TCF does not cover keep their value);
2. the explicit ``consent`` map: ``"marketing": false`` sets a purpose on every channel,
   ``"marketing.email": false`` on one channel; an unknown purpose or channel is an error;
3. the Global Privacy Control signal (``gpc: true``): refuses ``sale_share`` on every channel
   (``gpc: false`` or no signal changes nothing: the absence of an opt-out grants nothing).

On a merge the most restrictive value wins, cell by cell (a bitwise AND). Every cell that
changes value is written to the consent history: person id, event time, source (the event's
channel, or ``merge``), cell, old and new value and how it came (``event``, ``tcf``, ``gpc``,
``merge``). History rows carry person ids, so they follow merges (through
:meth:`~decisioner.people.People.members`) and leave with erasure (:meth:`ConsentStore.erase`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final, NamedTuple

import numpy as np

from ..errors import NotReadyError, SchemaError
from ..rows import doubled, grown
from ..snapshot import ComponentState
from . import CHANNELS, PURPOSES

if TYPE_CHECKING:
    from ..config import ConsentSpec
    from ..schemas import Event

__all__ = [
    "ConsentStore", "Step", "cell", "purpose_mask", "channel_mask", "PURPOSE", "CHANNEL", "VIA", "HISTORY_DTYPE",
]

#: purpose name -> index
PURPOSE: Final[dict[str, int]] = {p: i for i, p in enumerate(PURPOSES)}
#: consent channel name -> index
CHANNEL: Final[dict[str, int]] = {c: i for i, c in enumerate(CHANNELS)}
#: how a change came, by code
VIA: Final[tuple[str, ...]] = ("event", "tcf", "gpc", "merge")
_N_CH: Final = len(CHANNELS)
_ALL: Final = (1 << (len(PURPOSES) * _N_CH)) - 1
HISTORY_DTYPE: Final = np.dtype(
    [("person", "<i8"), ("time", "<i8"), ("source", "<i4"), ("cell", "<i2"), ("old", "i1"), ("new", "i1"),
     ("via", "i1")]
)
#: most distinct consent sources (event channels) named in the history; later ones count as "other"
MAX_SOURCES: Final = 4096


def cell(purpose: int, channel: int) -> int:
    """The bit of (purpose index, channel index) in a consent grid.

    >>> cell(PURPOSE["marketing"], CHANNEL["email"])
    16
    """
    return purpose * _N_CH + channel


def purpose_mask(purpose: int) -> int:
    """Every channel's bit of ``purpose``."""
    return ((1 << _N_CH) - 1) << (purpose * _N_CH)


def channel_mask(channel: int) -> int:
    """Every purpose's bit on ``channel``."""
    m = 0
    for p in range(len(PURPOSES)):
        m |= 1 << cell(p, channel)
    return m


class Step(NamedTuple):
    """One parsed consent signal: cells granted, cells refused, and how (:data:`VIA` code)."""

    grant: int
    deny: int
    via: int


class ConsentStore:
    """Consent grids by profile row, and the consent history by person.

    Parameters
    ----------
    spec
        Defaults, channel mapping and TCF settings.
    default_consent
        The default of every purpose ``spec.defaults`` does not name.

    Examples
    --------
    >>> from decisioner.config import ConsentSpec
    >>> from decisioner.schemas import decode_event
    >>> store = ConsentStore(ConsentSpec(), default_consent=True)
    >>> store.ensure(1); store.clear(0)
    >>> ev = decode_event({"type": "consent", "time": 1_700_000_000_000, "ids": {"cookie": "c"},
    ...                    "consent": {"marketing.email": False}})
    >>> store.apply(0, 7, store.parse(ev), ev.time, "web")
    >>> store.allows(0, PURPOSE["marketing"], CHANNEL["email"]), store.allows(0, PURPOSE["marketing"], CHANNEL["web"])
    (False, True)
    >>> store.history_of({7})[0]["purpose"], store.history_of({7})[0]["new"]
    ('marketing', False)
    """

    def __init__(self, spec: ConsentSpec, *, default_consent: bool = True, capacity: int = 1024) -> None:
        self.spec = spec
        self.default_consent = default_consent
        grid = 0
        for p in PURPOSES:
            if spec.defaults.get(p, default_consent):
                grid |= purpose_mask(PURPOSE[p])
        self.default_ = grid
        self.allow_ = np.full(max(1, capacity), grid, dtype=np.uint64)
        self.history_ = np.zeros(1024, dtype=HISTORY_DTYPE)
        self.n_history_ = 0
        #: history rows dropped for ``max_history`` (oldest first)
        self.history_dropped_ = 0
        self.sources_: list[str] = ["merge"]
        self._source_code = {"merge": 0}
        cmap = spec.channel_map()
        self._channel_of = {ev: CHANNEL[ch] for ev, ch in cmap.items()}
        self._default_channel = CHANNEL[spec.default_channel]
        self._tcf_mask = 0
        for ch in spec.tcf_channels:
            self._tcf_mask |= channel_mask(CHANNEL[ch])

    # ------------------------------------------------------------------ rows
    def ensure(self, n_rows: int) -> None:
        """Grow (by doubling) so rows ``0 .. n_rows - 1`` exist."""
        if n_rows > self.allow_.shape[0]:
            self.allow_ = grown(self.allow_, doubled(self.allow_.shape[0], n_rows), self.default_)

    def clear(self, rows: int | np.ndarray | list[int]) -> None:
        """Give ``rows`` the default grid of a new person."""
        self.allow_[rows] = self.default_

    def deny_all(self, rows: int | np.ndarray | list[int]) -> None:
        """Refuse everything on ``rows`` (the anonymous scratch row: it is nobody)."""
        self.allow_[rows] = 0

    def copy(self, dst: int, src: int) -> None:
        """``dst`` gets the grid of ``src`` (a profile split off keeps the original's consent)."""
        self.allow_[dst] = self.allow_[src]

    # ------------------------------------------------------------------ reading
    def channel_of(self, event_channel: str) -> int:
        """The consent channel index an event's ``channel`` counts as."""
        return self._channel_of.get(event_channel, self._default_channel)

    def grid_of(self, row: int) -> int:
        """The grid of ``row`` as an int; the default grid for an unknown person (row -1) or a
        row this store has not grown to yet (a profile loaded in bulk, read before its first event)."""
        a = self.allow_
        return int(a[row]) if 0 <= row < a.shape[0] else self.default_

    def grids_of(self, rows: np.ndarray) -> np.ndarray:
        """:meth:`grid_of` of each row (uint64)."""
        a = self.allow_
        inside = (rows >= 0) & (rows < a.shape[0])
        out = np.full(rows.shape[0], self.default_, dtype=np.uint64)
        out[inside] = a[rows[inside]]
        return out

    def allows(self, row: int, purpose: int, channel: int) -> bool:
        """Whether the person at ``row`` allows ``purpose`` on ``channel`` (indices)."""
        return bool(int(self.allow_[row]) >> cell(purpose, channel) & 1)

    def grid(self, row: int) -> dict[str, dict[str, bool]]:
        """The consent grid of ``row``: purpose -> channel -> allowed."""
        bits = int(self.allow_[row])
        return {p: {c: bool(bits >> cell(i, j) & 1) for j, c in enumerate(CHANNELS)} for i, p in enumerate(PURPOSES)}

    # ------------------------------------------------------------------ changing
    def parse(self, event: Event) -> list[Step]:
        """The consent steps ``event`` carries (empty when none); changes nothing.

        Raises
        ------
        SchemaError
            An unknown purpose or channel, or an invalid TCF string.
        """
        steps: list[Step] = []
        if event.tcf is not None:
            from .tcf import decode, purposes_of  # the decoder is only loaded when a string comes

            granted = purposes_of(decode(event.tcf), vendor_id=self.spec.tcf_vendor_id)
            g = d = 0
            for name, ok in granted.items():
                m = purpose_mask(PURPOSE[name]) & self._tcf_mask
                if ok:
                    g |= m
                else:
                    d |= m
            steps.append(Step(g, d, 1))
        if event.consent:
            g = d = 0
            for key, value in event.consent.items():  # values are booleans (the schema checks them)
                m = _mask_of(key)
                if value is True:
                    g |= m
                    d &= ~m
                else:
                    d |= m
                    g &= ~m
            steps.append(Step(g, d, 0))
        if event.gpc:
            steps.append(Step(0, purpose_mask(PURPOSE["sale_share"]), 2))
        return steps

    def apply(self, row: int, person: int, steps: list[Step], time: int, source: str) -> None:
        """Apply parsed ``steps`` to ``row`` and write each changed cell to the history."""
        if not steps:
            return
        code = self._source(source)
        bits = int(self.allow_[row])
        for grant, deny, via in steps:
            new = (bits | grant) & ~deny & _ALL
            self._record(person, time, code, bits, new, via)
            bits = new
        self.allow_[row] = bits

    def merge(self, dst: int, src: int, person: int, time: int) -> None:
        """Fold ``src`` into ``dst``: the most restrictive value of each cell. Each cell one side
        allowed and the merged person refuses is written to the history of ``person`` (the
        survivor) as ``merge``, allowed -> refused."""
        a, b = int(self.allow_[dst]), int(self.allow_[src])
        new = a & b
        self._record(person, time, 0, a | b, new, 3)
        self.allow_[dst] = new
        self.allow_[src] = self.default_

    def _record(self, person: int, time: int, source: int, old: int, new: int, via: int) -> None:
        changed = old ^ new
        if not changed or person < 0:
            return
        cells = [b for b in range(changed.bit_length()) if changed >> b & 1]
        n = self.n_history_
        need = n + len(cells)
        cap = self.history_.shape[0]
        if need > cap:
            while cap < need:
                cap *= 2
            grown = np.zeros(cap, dtype=HISTORY_DTYPE)
            grown[:n] = self.history_[:n]
            self.history_ = grown
        h = self.history_
        for k, b in enumerate(cells):
            h[n + k] = (person, time, source, b, old >> b & 1, new >> b & 1, via)
        self.n_history_ = need
        over = need - self.spec.max_history
        if over > 0:
            h[: need - over] = h[over:need].copy()
            self.n_history_ = need - over
            self.history_dropped_ += over

    def _source(self, name: str) -> int:
        code = self._source_code.get(name)
        if code is None:
            if len(self.sources_) >= MAX_SOURCES:
                return self._source("other")
            code = len(self.sources_)
            self.sources_.append(name)
            self._source_code[name] = code
        return code

    # ------------------------------------------------------------------ people
    def history_of(self, persons: set[int]) -> list[dict[str, Any]]:
        """The consent history of ``persons`` (a person and everyone merged into it), in order."""
        h = self.history_[: self.n_history_]
        keep = np.isin(h["person"], np.fromiter(persons, dtype=np.int64, count=len(persons)))
        out = []
        for r in h[keep].tolist():
            person, time, source, c, old, new, via = r
            out.append({
                "time": time, "person": person, "source": self.sources_[source],
                "purpose": PURPOSES[c // _N_CH], "channel": CHANNELS[c % _N_CH],
                "old": bool(old), "new": bool(new), "via": VIA[via],
            })
        return out

    def erase(self, persons: set[int]) -> int:
        """Remove every history row of ``persons``; returns how many went."""
        if not persons or not self.n_history_:
            return 0
        h = self.history_[: self.n_history_]
        gone = np.isin(h["person"], np.fromiter(persons, dtype=np.int64, count=len(persons)))
        n_gone = int(gone.sum())
        if n_gone:
            kept = h[~gone].copy()
            self.history_[: kept.shape[0]] = kept
            self.history_[kept.shape[0] : self.n_history_] = 0
            self.n_history_ = int(kept.shape[0])
        return n_gone

    # ------------------------------------------------------------------ state
    def to_state(self) -> ComponentState:
        """The grids, the history and the source names (the state a snapshot holds)."""
        arrays = {"allow": self.allow_, "history": self.history_[: self.n_history_]}
        return arrays, {"sources": list(self.sources_), "dropped": self.history_dropped_, "default": self.default_}

    def load_state(self, state: ComponentState) -> None:
        """Continue from :meth:`to_state`.

        Raises
        ------
        NotReadyError
            If the state was written with other consent defaults.
        """
        arrays, meta = state
        if int(meta["default"]) != self.default_:
            raise NotReadyError(
                f"expected consent state with the default grid {self.default_:#x}, got {int(meta['default']):#x} - at "
                "`consent` (the snapshot was written with other `consent.defaults` / `profiles.default_consent`)"
            )
        self.allow_ = np.array(arrays["allow"], dtype=np.uint64)
        hist = np.asarray(arrays["history"]).astype(HISTORY_DTYPE)
        self.history_ = np.zeros(max(1024, hist.shape[0]), dtype=HISTORY_DTYPE)
        self.history_[: hist.shape[0]] = hist
        self.n_history_ = int(hist.shape[0])
        self.history_dropped_ = int(meta["dropped"])
        self.sources_ = list(meta["sources"])
        self._source_code = {s: i for i, s in enumerate(self.sources_)}

    def nbytes(self) -> int:
        return int(self.allow_.nbytes + self.history_.nbytes)

    def metrics(self) -> dict[str, int]:
        return {"consent_history": self.n_history_, "consent_history_dropped": self.history_dropped_}


def _mask_of(key: str) -> int:
    """The cells a ``consent`` key names: ``purpose`` (every channel) or ``purpose.channel``."""
    purpose, dot, channel = key.partition(".")
    p = PURPOSE.get(purpose)
    if p is None:
        raise SchemaError(
            f"Expected a consent purpose in {list(PURPOSES)} (optionally `.channel`), got {purpose!r} - at "
            f"`$.consent.{key}`"
        )
    if not dot:
        return purpose_mask(p)
    c = CHANNEL.get(channel)
    if c is None:
        raise SchemaError(f"Expected a consent channel in {list(CHANNELS)}, got {channel!r} - at `$.consent.{key}`")
    return 1 << cell(p, c)
