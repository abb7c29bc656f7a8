"""DecisionLog: every decision, one row per slot, as columns grown by doubling.

Columns: ``seq`` (decision sequence number), ``time`` (event ms), ``person`` (the stable person
id of :mod:`decisioner.people`, never a reusable row; -1: anonymous or erased),
``placement`` (index), ``slot``, ``content`` (item or experience index), ``score``,
``propensity``, ``candidates`` (count considered), ``reward`` (summed outcome value joined
later by decision id; 0 until then), ``experiment`` (index, -1: none) and ``variant`` (index in
that experiment, -2: global holdout, -1: none). Without propensities no offline evaluation is possible,
so they are always recorded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import msgspec
import numpy as np

from .errors import ConfigError, NotReadyError
from .snapshot import ComponentState

__all__ = ["DecisionLog"]

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


class DecisionLog:
    """Append-only columnar log of decisions, stored in fixed-size chunks.

    Growth allocates a new chunk and never copies old rows, so an append costs the same at
    row 10 and at row 10 million (a doubling array would stall a decision for a full copy).
    A decision's rows never straddle two chunks; rows are addressed by the handle ``append``
    returns.

    Parameters
    ----------
    chunk_rows
        Rows per chunk.

    Examples
    --------
    >>> log = DecisionLog()
    >>> log.append(seq=0, time=1, person=0, placement=0, contents=np.array([3, 4]),
    ...            scores=np.array([0.5, 0.4]), propensities=np.array([0.9, 0.1]), candidates=10)
    0
    >>> len(log), log.column("propensity").tolist()
    (2, [0.9, 0.1])
    """

    def __init__(self, chunk_rows: int = 65_536) -> None:
        if chunk_rows < 128:
            raise ConfigError(f"`chunk_rows` must be >= 128, got {chunk_rows!r}")
        self.chunk_rows = chunk_rows
        self._chunks: list[dict[str, np.ndarray]] = []
        self._fill: list[int] = []
        self._n = 0

    def __len__(self) -> int:
        return self._n

    def _new_chunk(self) -> None:
        chunk = {name: np.empty(self.chunk_rows, dtype=dt) for name, dt in _COLUMNS}
        chunk["reward"][:] = 0.0
        self._chunks.append(chunk)
        self._fill.append(0)

    def append(
        self, *, seq: int, time: int, person: int, placement: int, contents: np.ndarray,
        scores: np.ndarray, propensities: np.ndarray, candidates: int, experiment: int = -1,
        variant: int = -1,
    ) -> int:
        """Append one decision (one row per slot); returns the handle of its first row."""
        k = contents.shape[0]
        if k > self.chunk_rows:
            raise ConfigError(f"expected at most {self.chunk_rows} slots in a decision, got {k}")
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
        return ci * self.chunk_rows + start

    def rows(self, name: str, handle: int, n: int) -> np.ndarray:
        """Column ``name`` of the ``n`` rows starting at ``handle`` (a copy)."""
        ci, off = divmod(handle, self.chunk_rows)
        return self._chunks[ci][name][off : off + n].copy()

    def add_reward(self, handle: int, value: float) -> None:
        """Add an outcome's value to the row at ``handle``."""
        ci, off = divmod(handle, self.chunk_rows)
        self._chunks[ci]["reward"][off] += value

    def column(self, name: str) -> np.ndarray:
        """One column over every row, in append order (a copy)."""
        parts = [c[name][:f] for c, f in zip(self._chunks, self._fill)]
        if not parts:
            return np.zeros(0, dtype=dict(_COLUMNS)[name])
        return np.concatenate(parts)

    def erase(self, persons: set[int]) -> int:
        """Erasure: the rows of ``persons`` lose their person id (-1) and with it every link to
        the person; counts, contents and rewards stay as anonymous aggregates. Returns the rows
        changed."""
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
        return changed

    def to_state(self) -> ComponentState:
        return self.to_dict(), {"chunk_rows": self.chunk_rows}

    def load_state(self, state: ComponentState) -> None:
        """Restore :meth:`to_state` (handles stay valid: same ``chunk_rows``, decisions whole).

        Raises
        ------
        NotReadyError
            If the state was written with another ``chunk_rows``.
        """
        columns, meta = state
        if meta.get("chunk_rows") != self.chunk_rows:
            got = meta.get("chunk_rows")
            raise NotReadyError(f"expected a decision log of {self.chunk_rows} rows a chunk, got {got!r}")
        self.load_dict(columns)

    def to_dict(self) -> dict[str, np.ndarray]:
        return {name: self.column(name) for name, _ in _COLUMNS}

    def load_dict(self, columns: dict[str, np.ndarray]) -> None:
        """Replace the contents with columns written by :meth:`to_dict` (decisions kept whole
        inside chunks, so handles into the restored log stay valid when it was written with the
        same ``chunk_rows``)."""
        self._chunks, self._fill, self._n = [], [], 0
        n = int(columns["seq"].shape[0]) if "seq" in columns else 0
        i = 0
        while i < n:
            j = i + 1
            while j < n and columns["seq"][j] == columns["seq"][i]:
                j += 1
            if not self._chunks or self._fill[-1] + (j - i) > self.chunk_rows:
                self._new_chunk()
            c, f = self._chunks[-1], self._fill[-1]
            for name, _ in _COLUMNS:
                c[name][f : f + j - i] = columns[name][i:j]
            self._fill[-1] = f + j - i
            self._n += j - i
            i = j

    def save_npz(self, path: str | Path) -> None:
        np.savez(str(path), **self.to_dict())  # type: ignore[arg-type]

    def write_jsonl(self, path: str | Path, *, placements: list[str], contents: list[list[str]]) -> None:
        """Write one JSON object per row with names instead of indices."""
        enc = msgspec.json.Encoder()
        d = self.to_dict()
        with open(path, "wb") as fh:
            for i in range(self._n):
                p = int(d["placement"][i])
                fh.write(enc.encode({
                    "seq": int(d["seq"][i]), "time": int(d["time"][i]), "person": int(d["person"][i]),
                    "placement": placements[p], "slot": int(d["slot"][i]),
                    "content": contents[p][int(d["content"][i])], "score": float(d["score"][i]),
                    "propensity": float(d["propensity"][i]), "candidates": int(d["candidates"][i]),
                    "reward": float(d["reward"][i]),
                    "experiment": int(d["experiment"][i]), "variant": int(d["variant"][i]),
                }) + b"\n")
