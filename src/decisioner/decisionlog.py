"""DecisionLog: every decision, one row per slot, as columns in fixed-size chunks, with a
bounded window in memory.

Columns: ``seq`` (decision sequence number), ``time`` (event ms), ``person`` (the stable person
id of :mod:`decisioner.people`, never a reusable row; -1: anonymous or erased),
``placement`` (index), ``slot``, ``content`` (item or experience index), ``score``,
``propensity``, ``candidates`` (count considered), ``reward`` (summed outcome value joined
later by decision id; 0 until then), ``experiment`` (index, -1: none) and ``variant`` (index in
that experiment, -2: global holdout, -1: none). Without propensities no offline evaluation is possible,
so they are always recorded. A row takes :data:`ROW_BYTES` (64) bytes.

**Window.** Memory holds at most ``ceil(max_rows / chunk_rows)`` chunks
(:class:`~decisioner.config.DecisionLogSpec`). When a decision needs a new chunk and the window
is full, the oldest whole chunk leaves memory: ``on_full="drop"`` forgets it, ``"spill"`` first
writes it to the spill directory. Which rows are in memory depends only on the decisions made,
so a replay of the event log, or a snapshot reopened, holds the same window.

**Handles.** :meth:`DecisionLog.append` returns a handle: ``chunk * chunk_rows + offset`` with
``chunk`` counted from the first chunk the log ever had, so handles stay global, only grow and
are never reused. :attr:`DecisionLog.first_handle` is the oldest handle still in memory: a
reward for an older handle is a no-op (:meth:`~DecisionLog.add_reward` returns False) and
reading its rows raises :class:`~decisioner.errors.UnknownDecisionError`; neither touches
another row.

**Readers** (:meth:`~DecisionLog.column`, :meth:`~DecisionLog.to_dict`, the experiment reports
and off-policy evaluation of :mod:`decisioner.evaluation.engine_log`, and the decision log file
of :func:`decisioner.decisionfile.write_decisions`) see the rows in memory. Privacy covers the
spilled rows too: :meth:`~DecisionLog.erase` rewrites every spill file that holds an erased
person (the rows stay, their ``person`` becomes -1, as in memory) and
:meth:`~DecisionLog.rows_of` (the access export) reads them, so records about a person disappear
with their erasure wherever they are. Both read the ``person`` column of every spill file
(8 bytes a row; about 0.5 MiB a 65,536-row chunk), and only the files that hold the person in
full.

**Spill files** (format :data:`SPILL_FORMAT`): one NumPy ``.npz`` archive per chunk,
``<spill_dir>/decisions-<chunk:012d>.npz`` (no pickle: ``np.load(path, allow_pickle=False)``),
holding the twelve columns of the chunk's rows and 0-d int64 arrays ``spill_format``, ``chunk``
and ``chunk_rows``; row ``i`` of chunk ``c`` had the handle ``c * chunk_rows + i``. Each file is
written to a temporary name, fsynced and renamed, so a file is complete or absent; a replay that
spills the same chunk again rewrites the same file. :func:`read_spilled` concatenates a
directory's files in chunk order. One engine writes a spill directory; the files stay until the
operator moves or deletes them (retention), and erasure reaches them only while ``spill_dir``
names their directory (it may stay set with ``on_full="drop"`` for that). A spill that fails
(disk full) drops the chunk instead, with a :class:`~decisioner.errors.DecisionerWarning`, and
counts it in ``spill_errors_``: the decision path never fails on the spill directory.
"""

from __future__ import annotations

import os
import re
import secrets
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

import numpy as np

from .errors import ConfigError, DecisionerWarning, NotReadyError, UnknownDecisionError
from .eventlog import fsync_dir
from .snapshot import ComponentState

if TYPE_CHECKING:
    from .config import DecisionLogSpec

__all__ = ["DecisionLog", "ROW_BYTES", "SPILL_FORMAT", "read_spill", "read_spilled"]

_COLUMNS: Final[tuple[tuple[str, Any], ...]] = (
    ("seq", np.int64),
    ("time", np.int64),
    ("person", np.int64),
    ("placement", np.int16),
    ("slot", np.int16),
    ("content", np.int32),
    ("score", np.float64),
    ("propensity", np.float64),
    ("candidates", np.int32),
    ("reward", np.float64),
    ("experiment", np.int16),
    ("variant", np.int16),
)
_DTYPES: Final = dict(_COLUMNS)
#: bytes of one row (one slot of one decision) in memory and in a spill file
ROW_BYTES: Final = sum(np.dtype(dt).itemsize for _, dt in _COLUMNS)
#: version of the spill file layout (bump it for any change, see CHANGELOG.md)
SPILL_FORMAT: Final = 1
_SPILL_RE: Final = re.compile(r"^decisions-(\d{12})\.npz$")

OnFull = Literal["drop", "spill"]


def _spill_name(chunk: int) -> str:
    return f"decisions-{chunk:012d}.npz"


class DecisionLog:
    """Columnar log of decisions in fixed-size chunks, the newest ``max_rows`` in memory.

    Growth allocates a new chunk and never copies old rows, so an append costs the same at
    row 10 and at row 10 million (a doubling array would stall a decision for a full copy).
    A decision's rows never straddle two chunks; rows are addressed by the handle ``append``
    returns (see the module docstring for the window, handles and spill files).

    Parameters
    ----------
    chunk_rows
        Rows per chunk.
    max_rows
        Rows kept in memory, rounded up to whole chunks.
    on_full
        What happens to the oldest chunk when the window is full: ``"drop"`` or ``"spill"``.
    spill_dir
        Directory of the spill files (required by ``"spill"``; with ``"drop"``, files already
        there are still erased and exported).

    Examples
    --------
    >>> log = DecisionLog()
    >>> log.append(seq=0, time=1, person=0, placement=0, contents=np.array([3, 4]),
    ...            scores=np.array([0.5, 0.4]), propensities=np.array([0.9, 0.1]), candidates=10)
    0
    >>> len(log), log.column("propensity").tolist()
    (2, [0.9, 0.1])
    """

    def __init__(
        self, chunk_rows: int = 65_536, *, max_rows: int = 1_000_000, on_full: OnFull = "drop",
        spill_dir: str | Path | None = None,
    ) -> None:
        if chunk_rows < 128:
            raise ConfigError(f"`chunk_rows` must be >= 128, got {chunk_rows!r}")
        if max_rows < chunk_rows:
            raise ConfigError(f"expected `max_rows` >= `chunk_rows` ({chunk_rows}), got {max_rows!r}")
        if on_full not in ("drop", "spill"):
            raise ConfigError(f"expected `on_full` in ['drop', 'spill'], got {on_full!r}")
        if on_full == "spill" and spill_dir is None:
            raise ConfigError("expected a `spill_dir` with `on_full = \"spill\"`, got None")
        self.chunk_rows = chunk_rows
        self.max_rows = max_rows
        self.on_full: OnFull = on_full
        self.spill_dir = None if spill_dir is None else Path(spill_dir).absolute()
        self.max_chunks = -(-max_rows // chunk_rows)
        self._chunks: list[dict[str, np.ndarray]] = []
        self._fill: list[int] = []
        self._n = 0
        self._base = 0  # global index of the first chunk in memory
        self.dropped_rows_ = 0  # rows that left memory (spilled ones included)
        self.spilled_rows_ = 0
        self.spill_errors_ = 0

    @classmethod
    def from_spec(cls, spec: DecisionLogSpec) -> DecisionLog:
        """A log with the window of ``spec``."""
        return cls(spec.chunk_rows, max_rows=spec.max_rows, on_full=spec.on_full, spill_dir=spec.spill_dir)

    def __len__(self) -> int:
        """Rows in memory."""
        return self._n

    @property
    def first_handle(self) -> int:
        """The oldest handle whose rows are in memory (older ones left the window)."""
        return self._base * self.chunk_rows

    @property
    def end_handle(self) -> int:
        """One past the newest handle handed out."""
        if not self._chunks:
            return self.first_handle
        return (self._base + len(self._chunks) - 1) * self.chunk_rows + self._fill[-1]

    def _new_chunk(self) -> None:
        while len(self._chunks) >= self.max_chunks:
            self._evict_oldest()
        chunk = {name: np.empty(self.chunk_rows, dtype=dt) for name, dt in _COLUMNS}
        chunk["reward"][:] = 0.0
        self._chunks.append(chunk)
        self._fill.append(0)

    def _evict_oldest(self) -> None:
        """The oldest chunk leaves memory (spilled first under ``"spill"``)."""
        chunk, fill = self._chunks[0], self._fill[0]
        if self.on_full == "spill" and fill:
            try:
                self._write_spill(self._base, {name: chunk[name][:fill] for name, _ in _COLUMNS})
                self.spilled_rows_ += fill
            except OSError as exc:
                self.spill_errors_ += 1
                warnings.warn(
                    f"decision log: could not spill chunk {self._base} ({fill} rows) to "
                    f"{str(self.spill_dir)!r}, dropped it instead: {exc}",
                    DecisionerWarning,
                    stacklevel=4,
                )
        del self._chunks[0], self._fill[0]
        self._base += 1
        self._n -= fill
        self.dropped_rows_ += fill

    def append(
        self, *, seq: int, time: int, person: int, placement: int, contents: np.ndarray,
        scores: np.ndarray, propensities: np.ndarray, candidates: int, experiment: int = -1,
        variant: int = -1,
    ) -> int:
        """Append one decision (one row per slot); returns the handle of its first row. A new
        chunk may push the oldest out of the window (spilled or dropped)."""
        k = contents.shape[0]
        if k > self.chunk_rows:
            raise ConfigError(f"expected at most {self.chunk_rows} slots in a decision, got {k}")
        if k == 0:
            return self.end_handle  # no row; a decision without slots is never rewarded
        if not self._chunks or self._fill[-1] + k > self.chunk_rows:
            self._new_chunk()
        ci = len(self._chunks) - 1
        c = self._chunks[ci]
        start = self._fill[ci]
        end = start + k
        c["seq"][start:end] = seq
        c["time"][start:end] = time
        c["person"][start:end] = person
        c["placement"][start:end] = placement
        c["slot"][start:end] = np.arange(k)
        c["content"][start:end] = contents
        c["score"][start:end] = scores
        c["propensity"][start:end] = propensities
        c["candidates"][start:end] = candidates
        c["experiment"][start:end] = experiment
        c["variant"][start:end] = variant
        self._fill[ci] = end
        self._n += k
        return (self._base + ci) * self.chunk_rows + start

    def append_many(
        self, *, seqs: np.ndarray, time: int, persons: np.ndarray, placement: int, contents: np.ndarray,
        scores: np.ndarray, propensities: np.ndarray, candidates: int, experiments: np.ndarray | None = None,
        variants: np.ndarray | None = None,
    ) -> np.ndarray:
        """Append one-slot decisions in bulk (an outbound batch): row ``i`` is decision
        ``seqs[i]`` of ``persons[i]``, exactly as :meth:`append` would write it one by one
        (chunks fill and leave the window the same way). Returns the handles (int64)."""
        n = int(seqs.shape[0])
        handles = np.empty(n, dtype=np.int64)
        done = 0
        while done < n:
            if not self._chunks or self._fill[-1] >= self.chunk_rows:
                self._new_chunk()
            ci = len(self._chunks) - 1
            c = self._chunks[ci]
            start = self._fill[ci]
            k = min(n - done, self.chunk_rows - start)
            end, part = start + k, slice(done, done + k)
            c["seq"][start:end] = seqs[part]
            c["time"][start:end] = time
            c["person"][start:end] = persons[part]
            c["placement"][start:end] = placement
            c["slot"][start:end] = 0
            c["content"][start:end] = contents[part]
            c["score"][start:end] = scores[part]
            c["propensity"][start:end] = propensities[part]
            c["candidates"][start:end] = candidates
            c["experiment"][start:end] = -1 if experiments is None else experiments[part]
            c["variant"][start:end] = -1 if variants is None else variants[part]
            handles[part] = (self._base + ci) * self.chunk_rows + np.arange(start, end)
            self._fill[ci] = end
            self._n += k
            done += k
        return handles

    def _locate(self, handle: int, n: int) -> tuple[int, int] | None:
        """(chunk in memory, offset) of the ``n`` rows at ``handle``; None if they left memory.

        Raises
        ------
        UnknownDecisionError
            If ``handle`` was never handed out.
        """
        g, off = divmod(handle, self.chunk_rows)
        ci = g - self._base
        if ci < 0:
            return None
        if handle < 0 or ci >= len(self._chunks) or off + n > self._fill[ci]:
            raise UnknownDecisionError(f"Expected a decision log handle below {self.end_handle}, got {handle}")
        return ci, off

    def holds(self, handle: int) -> bool:
        """Whether the rows at ``handle`` are still in memory."""
        return handle >= self.first_handle

    def rows(self, name: str, handle: int, n: int) -> np.ndarray:
        """Column ``name`` of the ``n`` rows starting at ``handle`` (a copy).

        Raises
        ------
        UnknownDecisionError
            If the rows left the window (``decision_log.max_rows``) or were never written.
        """
        if n == 0:
            return np.zeros(0, dtype=_DTYPES[name])
        at = self._locate(handle, n)
        if at is None:
            raise UnknownDecisionError(
                f"Expected a decision in the decision log's window (handles from {self.first_handle}), got handle "
                f"{handle}: its rows left memory (`decision_log.max_rows` = {self.max_rows})"
            )
        ci, off = at
        return self._chunks[ci][name][off : off + n].copy()

    def add_reward(self, handle: int, value: float) -> bool:
        """Add an outcome's value to the row at ``handle``; returns False, changing nothing, when
        the row has left memory (a spilled row keeps the reward it had when spilled).

        Raises
        ------
        UnknownDecisionError
            If ``handle`` was never handed out.
        """
        at = self._locate(handle, 1)
        if at is None:
            return False
        ci, off = at
        self._chunks[ci]["reward"][off] += value
        return True

    def column(self, name: str) -> np.ndarray:
        """One column over the rows in memory, in append order (a copy)."""
        parts = [c[name][:f] for c, f in zip(self._chunks, self._fill)]
        if not parts:
            return np.zeros(0, dtype=_DTYPES[name])
        return np.concatenate(parts)

    # ------------------------------------------------------------------ privacy
    def spill_files(self) -> list[Path]:
        """The spill files in ``spill_dir``, oldest chunk first (none without a directory)."""
        d = self.spill_dir
        if d is None or not d.is_dir():
            return []
        found = [(int(m.group(1)), p) for p in d.iterdir() if (m := _SPILL_RE.match(p.name))]
        return [p for _, p in sorted(found)]

    def erase(self, persons: set[int]) -> int:
        """Erasure: the rows of ``persons`` lose their person id (-1) and with it every link to
        the person, in memory and in every spill file (rewritten); counts, contents and rewards
        stay as anonymous aggregates. Returns the rows changed."""
        if not persons:
            return 0
        wanted = np.fromiter(persons, dtype=np.int64)
        changed = 0
        for c, f in zip(self._chunks, self._fill):
            hit = np.isin(c["person"][:f], wanted)
            n = int(np.count_nonzero(hit))
            if n:
                c["person"][:f][hit] = -1
                changed += n
        for path in self.spill_files():
            try:
                chunk, got = _load_spill(path, ["person"])
                hit = np.isin(got["person"], wanted)
                n = int(np.count_nonzero(hit))
                if n:
                    cols = read_spill(path)
                    cols["person"][hit] = -1
                    self._write_spill(chunk, cols)
                    changed += n
            except (ConfigError, OSError) as exc:
                # the erasure goes on everywhere else; the file needs the operator (damaged or unwritable)
                self.spill_errors_ += 1
                warnings.warn(
                    f"decision log: could not erase {len(persons)} people from spill file {str(path)!r}: {exc}",
                    DecisionerWarning,
                    stacklevel=2,
                )
        return changed

    def rows_of(self, persons: Iterable[int], names: Iterable[str]) -> dict[str, np.ndarray]:
        """Columns ``names`` of every row of ``persons``: spilled rows (oldest first), then the
        rows in memory (what an access export lists).

        Raises
        ------
        ConfigError
            If a spill file is damaged: an export never leaves rows out silently.
        """
        wanted = np.fromiter(persons, dtype=np.int64)
        cols = list(names)
        parts: dict[str, list[np.ndarray]] = {name: [] for name in cols}
        for path in self.spill_files():
            _, got = _load_spill(path, ["person"])
            m = np.isin(got["person"], wanted)
            if m.any():
                _, spilled = _load_spill(path, cols)
                for name in cols:
                    parts[name].append(spilled[name][m])
        if self._n:
            m = np.isin(self.column("person"), wanted)
            for name in cols:
                parts[name].append(self.column(name)[m])
        return {
            name: np.concatenate(p) if p else np.zeros(0, dtype=_DTYPES[name]) for name, p in parts.items()
        }

    def _write_spill(self, chunk: int, columns: dict[str, np.ndarray]) -> None:
        """Write (or replace) the spill file of ``chunk`` atomically: temporary name, fsync,
        rename, fsync of the directory."""
        d = self.spill_dir
        assert d is not None
        d.mkdir(parents=True, exist_ok=True)
        path = d / _spill_name(chunk)
        tmp = d / f".{path.name}.{secrets.token_hex(4)}.tmp"
        meta = {"spill_format": np.int64(SPILL_FORMAT), "chunk": np.int64(chunk),
                "chunk_rows": np.int64(self.chunk_rows)}
        try:
            with open(tmp, "wb") as fh:
                np.savez(fh, **{name: columns[name] for name, _ in _COLUMNS}, **meta)  # type: ignore[arg-type]
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        fsync_dir(d)

    # ------------------------------------------------------------------ state
    def nbytes(self) -> int:
        """Bytes of the chunks in memory."""
        return int(sum(a.nbytes for c in self._chunks for a in c.values()))

    def metrics(self) -> dict[str, Any]:
        """The window: rows and chunks in memory, their bytes, rows dropped and spilled, the
        oldest handle in memory."""
        return {
            "rows": self._n,
            "chunks": len(self._chunks),
            "bytes": self.nbytes(),
            "max_rows": self.max_rows,
            "chunk_rows": self.chunk_rows,
            "on_full": self.on_full,
            "first_handle": self.first_handle,
            "dropped_rows": self.dropped_rows_,
            "spilled_rows": self.spilled_rows_,
            "spill_errors": self.spill_errors_,
        }

    def to_state(self) -> ComponentState:
        """The rows in memory, each chunk's fill and the window's counters (the oldest chunk's
        global index keeps handles valid across a snapshot)."""
        arrays = self.to_dict()
        arrays["fill"] = np.array(self._fill, dtype=np.int64)
        return arrays, {
            "chunk_rows": self.chunk_rows, "base": self._base, "dropped_rows": self.dropped_rows_,
            "spilled_rows": self.spilled_rows_, "spill_errors": self.spill_errors_,
        }

    def load_state(self, state: ComponentState) -> None:
        """Restore :meth:`to_state` (handles stay valid: same ``chunk_rows``, same chunks).

        Raises
        ------
        NotReadyError
            If the state was written with another ``chunk_rows``, or is inconsistent.
        """
        columns, meta = state
        if meta.get("chunk_rows") != self.chunk_rows:
            got = meta.get("chunk_rows")
            raise NotReadyError(f"expected a decision log of {self.chunk_rows} rows a chunk, got {got!r}")
        fill = [int(f) for f in columns["fill"].tolist()]
        n = int(columns["seq"].shape[0])
        if sum(fill) != n or any(not 0 < f <= self.chunk_rows for f in fill):
            raise NotReadyError(f"expected chunk fills in [1, {self.chunk_rows}] summing to {n} rows, got {fill!r}")
        self._chunks, self._fill, self._n = [], [], n
        i = 0
        for f in fill:
            chunk = {name: np.empty(self.chunk_rows, dtype=dt) for name, dt in _COLUMNS}
            chunk["reward"][:] = 0.0
            for name, _ in _COLUMNS:
                chunk[name][:f] = columns[name][i : i + f]
            self._chunks.append(chunk)
            self._fill.append(f)
            i += f
        self._base = int(meta["base"])
        self.dropped_rows_ = int(meta["dropped_rows"])
        self.spilled_rows_ = int(meta["spilled_rows"])
        self.spill_errors_ = int(meta["spill_errors"])

    def to_dict(self) -> dict[str, np.ndarray]:
        """Every column over the rows in memory."""
        return {name: self.column(name) for name, _ in _COLUMNS}

    def load_dict(self, columns: dict[str, np.ndarray]) -> None:
        """Replace the contents with columns written by :meth:`to_dict`, as a new log whose
        first handle is 0 (decisions kept whole inside chunks; the window applies from the next
        append)."""
        self._chunks, self._fill, self._n, self._base = [], [], 0, 0
        self.dropped_rows_ = self.spilled_rows_ = self.spill_errors_ = 0
        n = int(columns["seq"].shape[0]) if "seq" in columns else 0
        i = 0
        while i < n:
            j = i + 1
            while j < n and columns["seq"][j] == columns["seq"][i]:
                j += 1
            if not self._chunks or self._fill[-1] + (j - i) > self.chunk_rows:
                chunk = {name: np.empty(self.chunk_rows, dtype=dt) for name, dt in _COLUMNS}
                chunk["reward"][:] = 0.0
                self._chunks.append(chunk)
                self._fill.append(0)
            c, f = self._chunks[-1], self._fill[-1]
            for name, _ in _COLUMNS:
                c[name][f : f + j - i] = columns[name][i:j]
            self._fill[-1] = f + j - i
            self._n += j - i
            i = j

    def save_npz(self, path: str | Path) -> None:
        """Write the rows in memory as one ``.npz`` of columns."""
        np.savez(str(path), **self.to_dict())  # type: ignore[arg-type]


def _load_spill(path: str | Path, names: Iterable[str]) -> tuple[int, dict[str, np.ndarray]]:
    """The chunk index of a spill file and its columns ``names`` (only those members are read).

    Raises
    ------
    ConfigError
        If the file is not a readable spill file of format :data:`SPILL_FORMAT`.
    """
    try:
        with np.load(path, allow_pickle=False) as z:
            fmt = int(z["spill_format"]) if "spill_format" in z.files else None
            if fmt != SPILL_FORMAT:
                raise ConfigError(
                    f"expected a decision log spill file of format {SPILL_FORMAT}, got {fmt!r} - at {str(path)!r}"
                )
            return int(z["chunk"]), {name: np.array(z[name], dtype=_DTYPES[name]) for name in names}
    except ConfigError:
        raise
    except (OSError, ValueError, KeyError, EOFError) as exc:
        raise ConfigError(f"expected a readable decision log spill file, got {exc} - at {str(path)!r}") from None


def read_spill(path: str | Path) -> dict[str, np.ndarray]:
    """The twelve columns of one spill file.

    Raises
    ------
    ConfigError
        If the file is not a readable spill file of format :data:`SPILL_FORMAT`.
    """
    return _load_spill(path, _DTYPES)[1]


def read_spilled(directory: str | Path) -> dict[str, np.ndarray]:
    """Every spill file of ``directory`` as one set of columns, oldest chunk first (rows that
    left an engine's memory; the rows still in memory are ``engine.decision_log.to_dict()``).

    Raises
    ------
    ConfigError
        If a file is damaged or of another format.
    """
    log = DecisionLog(spill_dir=directory)
    parts = [read_spill(p) for p in log.spill_files()]
    return {
        name: np.concatenate([p[name] for p in parts]) if parts else np.zeros(0, dtype=dt) for name, dt in _COLUMNS
    }
