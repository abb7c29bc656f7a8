"""Decision log spec: the window of rows kept in memory and what happens to older rows."""

from __future__ import annotations

from typing import Annotated, Literal

from msgspec import Meta, Struct

from ._spec import SPEC, check

__all__ = ["DecisionLogSpec"]


class DecisionLogSpec(Struct, **SPEC):
    """The decision log keeps the newest ``max_rows`` rows (one row per slot) in memory, in chunks
    of ``chunk_rows``; when a decision needs a new chunk and the window is full, the oldest whole
    chunk leaves memory: ``on_full = "drop"`` forgets it, ``"spill"`` first appends it to
    ``spill_dir`` as ``decisions-<chunk>.npz`` (see :mod:`decisioner.decisionlog`).

    ``max_rows`` is rounded up to whole chunks: the window holds at most
    ``ceil(max_rows / chunk_rows)`` chunks, at 64 bytes a row (the default: 16 chunks, 1,048,576
    rows, 64 MiB). Experiment exposures are bounded by ``max_rows`` too.

    >>> DecisionLogSpec(max_rows=4096, chunk_rows=1024).max_chunks
    4
    """

    max_rows: Annotated[int, Meta(ge=128, le=2**40)] = 1_000_000
    chunk_rows: Annotated[int, Meta(ge=128, le=2**24)] = 65_536
    on_full: Literal["drop", "spill"] = "drop"
    #: directory of the spill files (created at the first spill; a relative path is taken from
    #: the working directory when the engine is made). Required by ``"spill"``; with ``"drop"``
    #: nothing more is spilled, but erasure and export still reach the files there.
    spill_dir: str | None = None

    def __post_init__(self) -> None:
        check(
            self.max_rows >= self.chunk_rows,
            f"expected `max_rows` >= `chunk_rows` ({self.chunk_rows}), got {self.max_rows}",
        )
        check(
            self.spill_dir is not None or self.on_full != "spill",
            "expected a `spill_dir` with `on_full = \"spill\"`, got none",
        )
        check(self.spill_dir != "", "expected a directory in `spill_dir`, got ''")

    @property
    def max_chunks(self) -> int:
        """Chunks the window holds at most."""
        return -(-self.max_rows // self.chunk_rows)
