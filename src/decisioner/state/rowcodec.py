"""One person's row across every row-keyed store, as one value that travels between processes.

A profile is a fixed-size row in several stores (``profiles``, ``consent``, ``attributes``,
``engagement``, ``activity``, ``sends``, ``people``). :class:`RowCodec` cuts the row of one person
out of an :class:`~decisioner.engine.Engine`'s stores into one msgpack value and writes such a
value back into any row of another engine with the same configuration, so a worker's embedded
engine computes every update with its own kernels on a local copy of the row (there is no
second implementation of the maths) and the shared store only keeps bytes.

Format (``ROW_FORMAT`` 1), a msgpack array ``[format, person, arrays, attributes]``:

* ``person``: the stable person id (int64) the row belongs to;
* ``arrays``: ``"<store>/<array>"`` -> the raw little-endian bytes of the row's slice of that
  array, with the dtype and shape of the store's ``to_state()`` array (checked on load);
* ``attributes``: :meth:`~decisioner.attributes.AttributeStore.row_values`: codes spelt out as
  names, because each process fills its vocabularies in its own order.

Consent history, the decision log and experiment assignments are not part of the row: history
and decisions are logs (:mod:`decisioner.state.stream`), assignments are recomputed from the
person's hashed unit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

import msgspec
import numpy as np

from ..errors import NotReadyError

if TYPE_CHECKING:
    from ..engine import Engine

__all__ = ["ROW_FORMAT", "RowCodec", "RowRecord"]

#: version of the row value; bump when an array is added, removed or changes dtype
ROW_FORMAT: Final = 1


class RowRecord(msgspec.Struct, array_like=True, frozen=True):
    """A decoded row value (see the module docstring)."""

    format: int
    person: int
    arrays: dict[str, bytes]
    attributes: dict[str, list[Any]]


_ENCODER: Final = msgspec.msgpack.Encoder()
_DECODER: Final = msgspec.msgpack.Decoder(RowRecord)


class RowCodec:
    """Encode and load one row of ``engine``'s person stores.

    Parameters
    ----------
    engine
        The embedded engine whose stores hold the row (a worker's local copy).
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def _stores(self) -> list[tuple[str, Any]]:
        e = self.engine
        out: list[tuple[str, Any]] = [("profiles", e.profiles), ("engagement", e.engagement_)]
        if e.activity_ is not None:
            out.append(("activity", e.activity_))
        if e.sends_ is not None:
            out.append(("sends", e.sends_))
        return out

    def _row_arrays(self) -> dict[str, np.ndarray]:
        """Every row-keyed array by ``"<store>/<array>"`` (first axis: rows)."""
        e = self.engine
        n = e.profiles.n_rows
        out: dict[str, np.ndarray] = {"consent/allow": e.consent.allow_}
        for name, store in self._stores():
            arrays, _ = store.to_state()
            for key, arr in arrays.items():
                if arr.ndim and arr.shape[0] == n and arr.shape[0] > 0:
                    out[f"{name}/{key}"] = arr
        return out

    def encode(self, row: int) -> bytes:
        """The value of ``row`` (its person id included)."""
        arrays = {k: np.ascontiguousarray(a[row]).tobytes() for k, a in self._row_arrays().items()}
        rec = RowRecord(ROW_FORMAT, int(self.engine.people.person_[row]), arrays,
                        self.engine.attributes_.row_values(row))
        return _ENCODER.encode(rec)

    @staticmethod
    def decode(blob: bytes) -> RowRecord:
        """The record of a value from :meth:`encode`.

        Raises
        ------
        NotReadyError
            If the value is not a row value of this format.
        """
        try:
            rec = _DECODER.decode(blob)
        except msgspec.DecodeError:
            raise NotReadyError(
                f"Expected a row value of format {ROW_FORMAT}, got {blob[:16]!r} - at `state.rows`"
            ) from None
        if rec.format != ROW_FORMAT:
            raise NotReadyError(
                f"Expected a row value of format {ROW_FORMAT}, got format {rec.format} - at `state.rows`"
            )
        return rec

    def load(self, row: int, blob: bytes) -> RowRecord:
        """Write the value ``blob`` into ``row`` (every store's slice and the person id); the row
        must exist (``tracker.sync_rows``). Returns the decoded record.

        Raises
        ------
        NotReadyError
            If the value was written by an engine with other shapes (slots, attributes ...);
            then nothing is changed.
        """
        rec = self.decode(blob)
        targets = self._row_arrays()
        views = []
        for key, arr in targets.items():
            raw = rec.arrays.get(key)
            want = arr[row].nbytes
            if raw is None or len(raw) != want:
                got = "none" if raw is None else f"{len(raw)} bytes"
                raise NotReadyError(f"Expected {want} bytes for `{key}` in a row value, got {got} - at `state.rows`")
            views.append((arr, np.frombuffer(raw, dtype=arr.dtype).reshape(arr.shape[1:])))
        for arr, value in views:
            arr[row] = value
        self.engine.attributes_.load_row_values(row, rec.attributes)
        self.engine.people.person_[row] = rec.person
        return rec
