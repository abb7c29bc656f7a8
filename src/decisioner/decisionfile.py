"""The decision log file: the one format ``simulate --log`` and ``replay --log`` write and
``report`` and ``evaluate --log`` read, and how a file's format is told from its content.

Format (decision log file, version :data:`DECISIONS_VERSION`)
-------------------------------------------------------------
JSON Lines, UTF-8: one JSON object per line, one line per slot of a decision (a decision with
four slots is four lines sharing ``seq``), in decision order. No header line, so
``pandas.read_json(path, lines=True)`` reads it as it is. Every line has these keys:

================ ============================================================================
``seq``          decision sequence number (int); the lines of one decision share it
``time``         event time of the decision (int, epoch milliseconds)
``person``       stable person id (int), as the person they were merged into by the time the file
                 was written; -1: anonymous or erased. Raw identifiers are never written
``placement``    placement name (str)
``slot``         position in the decision (int, 0 first)
``content``      chosen item or experience id (str)
``score``        the content's score (float)
``propensity``   probability that the policy chose this content for this slot (float in (0, 1])
``candidates``   candidates considered (int)
``reward``       summed outcome value joined to the decision by its id (float; 0 without one)
``experiment``   experiment name (str), or ``null`` when the decision was in none
``variant``      variant name (str); ``"holdout"`` for the global holdout (then ``experiment`` is
                 ``null``); ``null`` when not enrolled
================ ============================================================================

A later version only adds keys (readers ignore keys they do not know). Non-finite numbers are
never written (JSON has no spelling for them).

Telling formats apart
---------------------
:func:`read_records` looks at the bytes, never at the file name: a file that starts with the
write-ahead event log's magic (:data:`decisioner.logformat.LOG_MAGIC`, what ``Engine.durable``
and ``replay --event-log`` write) is refused with a message naming the decision log; a first
non-blank line starting with ``{`` is JSON Lines; anything else that is UTF-8 text is CSV with a
header row. :func:`is_decision_log` says whether records are decision log lines (they carry
``seq``, ``placement``, ``slot`` and ``propensity``) rather than per-unit records.
"""

from __future__ import annotations

import contextlib
import csv
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import msgspec
import numpy as np

from .errors import SchemaError
from .logformat import LOG_MAGIC

if TYPE_CHECKING:
    from .engine import Engine

__all__ = ["DECISIONS_VERSION", "DECISION_KEYS", "write_decisions", "read_records", "is_decision_log"]

#: version of the decision log file format (see the module docstring)
DECISIONS_VERSION: Final = 1
#: the keys of every line of a decision log file, in the order written
DECISION_KEYS: Final = (
    "seq", "time", "person", "placement", "slot", "content", "score", "propensity", "candidates", "reward",
    "experiment", "variant",
)
_HOLDOUT: Final = -2


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def write_decisions(engine: Engine, path: str | Path) -> dict[str, Any]:
    """Write ``engine``'s decision log (the rows in memory) as a decision log file.

    Returns
    -------
    dict
        ``path``, ``rows`` written, ``decisions`` (distinct ``seq``) and ``dropped_rows``: rows
        that had left the decision log's memory window before (``decision_log.max_rows``), which
        the file lacks.
    """
    log = engine.decision_log
    cols = log.to_dict()
    n = int(cols["seq"].shape[0])
    placements = list(engine.placements)
    contents = [engine.placement(p).contents for p in placements]
    experiments = [e.name for e in engine.config.experiments]
    variants = [[v.name for v in e.variants] for e in engine.config.experiments]
    person = cols["person"].astype(np.int64)
    known = person >= 0
    person[known] = engine.people.canonical_many(person[known])
    enc = msgspec.json.Encoder()
    with open(path, "wb") as fh:
        for i in range(n):
            p = int(cols["placement"][i])
            e = int(cols["experiment"][i])
            v = int(cols["variant"][i])
            vname = "holdout" if v == _HOLDOUT else (variants[e][v] if e >= 0 and v >= 0 else None)
            fh.write(enc.encode({
                "seq": int(cols["seq"][i]), "time": int(cols["time"][i]), "person": int(person[i]),
                "placement": placements[p], "slot": int(cols["slot"][i]),
                "content": contents[p][int(cols["content"][i])],
                "score": _finite(float(cols["score"][i])), "propensity": float(cols["propensity"][i]),
                "candidates": int(cols["candidates"][i]), "reward": _finite(float(cols["reward"][i])),
                "experiment": experiments[e] if e >= 0 else None, "variant": vname,
            }) + b"\n")
    return {
        "path": str(path), "rows": n, "decisions": int(np.unique(cols["seq"]).shape[0]),
        "dropped_rows": int(log.dropped_rows_),
    }


def is_decision_log(records: Sequence[dict[str, Any]]) -> bool:
    """Whether ``records`` are decision log lines (not per-unit records)."""
    return bool(records) and all(k in records[0] for k in ("seq", "placement", "slot", "propensity"))


def read_records(path: str | Path) -> list[dict[str, Any]]:
    """The records of a decision log file, or of per-unit records as JSON Lines or CSV, told
    apart by content (see the module docstring). CSV fields that parse as numbers become floats,
    except ``variant``, ``unit``, ``experiment``, ``placement`` and ``content``.

    Raises
    ------
    SchemaError
        If the file is the write-ahead event log, binary, or a line is not a JSON object.
    """
    p = Path(path)
    data = p.read_bytes()
    where = str(p)
    if data.startswith(LOG_MAGIC):
        raise SchemaError(
            f"Expected a decision log (JSON Lines) or CSV records, got a write-ahead event log - at {where!r} "
            "(`replay --event-log` and durable engines write that one; `replay --log` and `simulate --log` "
            "write the decision log)"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SchemaError(
            f"Expected a decision log (JSON Lines) or CSV records in UTF-8, got binary data (byte {exc.start}) "
            f"- at {where!r}"
        ) from None
    lines = text.splitlines()
    first = next((ln.lstrip() for ln in lines if ln.strip()), "")
    if first.startswith("{"):
        out: list[dict[str, Any]] = []
        for i, line in enumerate(lines):
            if not line.strip():
                continue
            try:
                rec = msgspec.json.decode(line)
            except msgspec.DecodeError as exc:
                raise SchemaError(f"Expected a JSON object, got invalid JSON ({exc}) - at line {i + 1} of {where!r}") \
                    from None
            if not isinstance(rec, dict):
                raise SchemaError(f"Expected a JSON object, got `{type(rec).__name__}` - at line {i + 1} of {where!r}")
            out.append(rec)
        return out
    rows = list(csv.DictReader(lines))
    text_keys = {"variant", "unit", "experiment", "placement", "content"}
    for r in rows:
        for k, v in r.items():
            if k in text_keys or v in ("", None):
                continue
            with contextlib.suppress(ValueError):  # not a number: kept as text
                r[k] = float(v)
    return rows
