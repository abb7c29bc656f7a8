"""DecisionLog: every decision, one row per slot, as columns grown by doubling.

Columns: ``seq`` (decision sequence number), ``time`` (event ms), ``profile`` (row),
``placement`` (index), ``slot``, ``content`` (item or experience index), ``score``,
``propensity``, ``candidates`` (count considered), ``reward`` (summed outcome value joined
later by decision id; 0 until then). Without propensities no offline evaluation is possible,
so they are always recorded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import msgspec
import numpy as np

__all__ = ["DecisionLog"]

_COLUMNS: Final[tuple[tuple[str, Any], ...]] = (
    ("seq", np.int64),
    ("time", np.int64),
    ("profile", np.int32),
    ("placement", np.int16),
    ("slot", np.int16),
    ("content", np.int32),
    ("score", np.float64),
    ("propensity", np.float64),
    ("candidates", np.int32),
    ("reward", np.float64),
)


class DecisionLog:
    """Append-only columnar log of decisions.

    Examples
    --------
    >>> log = DecisionLog()
    >>> log.append(seq=0, time=1, profile=0, placement=0, contents=np.array([3, 4]),
    ...            scores=np.array([0.5, 0.4]), propensities=np.array([0.9, 0.1]), candidates=10)
    0
    >>> len(log), log.column("propensity").tolist()
    (2, [0.9, 0.1])
    """

    def __init__(self, capacity: int = 1024) -> None:
        self.capacity = capacity
        self._n = 0
        self._cols = {name: np.zeros(max(1, capacity), dtype=dt) for name, dt in _COLUMNS}

    def __len__(self) -> int:
        return self._n

    def append(
        self, *, seq: int, time: int, profile: int, placement: int, contents: np.ndarray,
        scores: np.ndarray, propensities: np.ndarray, candidates: int,
    ) -> int:
        """Append one decision (one row per slot); returns the index of its first row."""
        k = contents.shape[0]
        start = self._n
        end = start + k
        cap = self._cols["seq"].shape[0]
        if end > cap:
            while cap < end:
                cap *= 2
            for name, col in self._cols.items():
                new = np.zeros(cap, dtype=col.dtype)
                new[:start] = col[:start]
                self._cols[name] = new
        c = self._cols
        c["seq"][start:end] = seq
        c["time"][start:end] = time
        c["profile"][start:end] = profile
        c["placement"][start:end] = placement
        c["slot"][start:end] = np.arange(k)
        c["content"][start:end] = contents
        c["score"][start:end] = scores
        c["propensity"][start:end] = propensities
        c["candidates"][start:end] = candidates
        self._n = end
        return start

    def add_reward(self, row: int, value: float) -> None:
        """Add an outcome's value to log row ``row``."""
        self._cols["reward"][row] += value

    def column(self, name: str) -> np.ndarray:
        """A read-only view of one column."""
        view = self._cols[name][: self._n]
        view.flags.writeable = False
        return view

    def to_dict(self) -> dict[str, np.ndarray]:
        return {name: self._cols[name][: self._n].copy() for name, _ in _COLUMNS}

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
                    "seq": int(d["seq"][i]), "time": int(d["time"][i]), "profile": int(d["profile"][i]),
                    "placement": placements[p], "slot": int(d["slot"][i]),
                    "content": contents[p][int(d["content"][i])], "score": float(d["score"][i]),
                    "propensity": float(d["propensity"][i]), "candidates": int(d["candidates"][i]),
                    "reward": float(d["reward"][i]),
                }) + b"\n")
