"""CRM record loads: reading CSV or JSONL files into columns, and the per-line errors of bad
records.

A load is a CSV file (a header line, then one record per line; spaces after commas are ignored;
quoted fields may not span lines) or a JSONL file (one JSON object per line). Each record needs
the ``id_field`` (unique in the load); the compared fields, ``source_field`` and
``truth_field`` are optional per record (empty or null: missing). Bad records are reported one
error per line, with the line number, and never matched:

* a line that is not UTF-8 (its first bad byte is named), not a JSON object, or a CSV row with
  more or fewer cells than the header;
* a JSONL key that is not a configured column (unknown column); in a CSV header an unknown
  column refuses the whole load (every line would carry it);
* a missing or repeated id, a value that is not text, a number or null, an email or phone
  number the identity normaliser refuses, a record with no compared field at all.

With ``on_bad_record = "skip"`` (default) the other records are matched and the errors are
reported with the result; with ``"refuse"`` nothing is matched when any record is bad
(:func:`decisioner.matching.match_records` raises :class:`~decisioner.errors.SchemaError`
listing the first errors).
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..config.matching import MatchingSpec
from ..errors import SchemaError

__all__ = ["RecordError", "Records", "read_records", "records_from_columns"]


@dataclass(frozen=True)
class RecordError:
    """The error of one bad record: its line in the file (1-based; the row number + 1 for
    records given as columns) and what was wrong."""

    line: int
    message: str


@dataclass
class Records:
    """A load's records as columns: ids, source codes (int64) and names, the raw values of each
    compared field (None: missing), line numbers, true entities (int64, -1 unknown) when the load
    carries them, and the errors of the records left out."""

    ids: list[str]
    sources: np.ndarray
    source_names: list[str]
    columns: dict[str, list[str | None]]
    lines: np.ndarray
    truth: np.ndarray | None
    errors: list[RecordError] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ids)

    def drop(self, bad: dict[int, str]) -> Records:
        """These records without the rows in ``bad`` (row -> reason), their errors added."""
        if not bad:
            return self
        keep = np.array([i not in bad for i in range(len(self.ids))], dtype=bool)
        idx = np.flatnonzero(keep)
        errors = self.errors + [RecordError(int(self.lines[i]), msg) for i, msg in sorted(bad.items())]
        errors.sort(key=lambda e: e.line)
        return Records(
            ids=[self.ids[i] for i in idx.tolist()], sources=self.sources[idx], source_names=self.source_names,
            columns={k: [v[i] for i in idx.tolist()] for k, v in self.columns.items()}, lines=self.lines[idx],
            truth=None if self.truth is None else self.truth[idx], errors=errors,
        )


class _Builder:
    """Accumulates good records and per-line errors."""

    def __init__(self, spec: MatchingSpec) -> None:
        self.spec = spec
        self.fields = [c.field for c in spec.comparisons]
        self.known = {spec.id_field, *self.fields} | {x for x in (spec.source_field, spec.truth_field) if x}
        self.ids: list[str] = []
        self.seen: set[str] = set()
        self.sources: list[int] = []
        self.source_code: dict[str, int] = {}
        self.columns: dict[str, list[str | None]] = {f: [] for f in self.fields}
        self.lines: list[int] = []
        self.truth: list[str | None] = []
        self.errors: list[RecordError] = []
        self._pattern = re.compile(spec.truth_pattern) if spec.truth_pattern else None

    def error(self, line: int, msg: str) -> None:
        self.errors.append(RecordError(line, msg))

    def add(self, line: int, rec: Mapping[str, object], *, strict_keys: bool) -> None:
        spec = self.spec
        for k in rec:
            if k not in self.known:
                self.error(line, f"Expected a column in {sorted(self.known)!r}, got unknown column {k[:64]!r} - at "
                                 f"line {line}")
                return
        if strict_keys:
            absent = [f for f in self.fields if f not in rec]
            if absent:
                self.error(line, f"Expected every field of the match rules, got {absent[0]!r} missing - at line {line}")
                return
        values: dict[str, str | None] = {}
        for k, v in rec.items():
            if v is None or isinstance(v, str):
                s = v
            elif isinstance(v, (int, float)) and not isinstance(v, bool):
                s = str(v)
            else:
                self.error(line, f"Expected text, a number or null, got {type(v).__name__} - at line {line}, "
                                 f"column {k!r}")
                return
            values[k] = None if s is None or not s.strip() else s.strip()
        rid = values.get(spec.id_field)
        if rid is None:
            self.error(line, f"Expected a record id in `{spec.id_field}`, got none - at line {line}")
            return
        if rid in self.seen:
            self.error(line, f"Expected a record id unique in the load, got {rid[:64]!r} again - at line {line}")
            return
        if all(values.get(f) is None for f in self.fields):
            self.error(line, f"Expected at least one compared field, got none - at line {line}")
            return
        self.seen.add(rid)
        self.ids.append(rid)
        self.lines.append(line)
        src = values.get(spec.source_field) if spec.source_field else None
        src = src or ""
        code = self.source_code.setdefault(src, len(self.source_code))
        self.sources.append(code)
        for f in self.fields:
            self.columns[f].append(values.get(f))
        if spec.truth_field is not None or self._pattern is not None:
            t = values.get(spec.truth_field or spec.id_field)
            if t is not None and self._pattern is not None:
                m = self._pattern.search(t)
                t = m.group(1) if m else None
            self.truth.append(t)

    def build(self) -> Records:
        truth = None
        if self.spec.truth_field is not None or self._pattern is not None:
            index: dict[str, int] = {}
            truth = np.array([-1 if t is None else index.setdefault(t, len(index)) for t in self.truth], np.int64)
        names = sorted(self.source_code, key=lambda s: self.source_code[s])
        return Records(
            ids=self.ids, sources=np.array(self.sources, dtype=np.int64), source_names=names, columns=self.columns,
            lines=np.array(self.lines, dtype=np.int64), truth=truth, errors=sorted(self.errors, key=lambda e: e.line),
        )


def _decode(raw: bytes, line: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SchemaError(
            f"Expected UTF-8 text, got byte 0x{raw[exc.start]:02x} at offset {exc.start} - at line {line}"
        ) from None


def read_records(path: str | Path, spec: MatchingSpec) -> Records:
    """Read a CSV (``.csv``) or JSONL file of records; bad lines become :class:`RecordError`.

    Raises
    ------
    SchemaError
        If the file cannot be read, or a CSV header names an unknown column or lacks the id.
    """
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise SchemaError(f"Expected a readable records file, got {exc.strerror} - at {str(p)!r}") from None
    b = _Builder(spec)
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    if p.suffix.lower() == ".csv":
        if not lines:
            raise SchemaError(f"Expected a CSV header, got an empty file - at {str(p)!r}")
        header = [h.strip() for h in next(csv.reader([_decode(lines[0].rstrip(b"\r"), 1)], skipinitialspace=True))]
        unknown = [h for h in header if h not in b.known]
        if unknown:
            raise SchemaError(
                f"Expected columns in {sorted(b.known)!r}, got unknown column {unknown[0][:64]!r} - at line 1 of "
                f"{str(p)!r} (the load is refused: every record would carry it)"
            )
        if spec.id_field not in header:
            raise SchemaError(f"Expected the id column {spec.id_field!r}, got {header!r} - at line 1 of {str(p)!r}")
        for i, raw in enumerate(lines[1:], start=2):
            raw = raw.rstrip(b"\r")
            if not raw.strip():
                continue
            try:
                text = _decode(raw, i)
            except SchemaError as exc:
                b.error(i, str(exc))
                continue
            row = next(csv.reader([text], skipinitialspace=True))
            if len(row) != len(header):
                b.error(i, f"Expected {len(header)} cells as in the header, got {len(row)} - at line {i}")
                continue
            b.add(i, dict(zip(header, row, strict=True)), strict_keys=False)
    else:
        for i, raw in enumerate(lines, start=1):
            if not raw.strip():
                continue
            try:
                obj = json.loads(_decode(raw, i))
            except SchemaError as exc:
                b.error(i, str(exc))
                continue
            except json.JSONDecodeError as exc:
                b.error(i, f"Expected a JSON object, got invalid JSON ({exc.msg} at column {exc.colno}) - at line {i}")
                continue
            if not isinstance(obj, dict):
                b.error(i, f"Expected a JSON object, got {type(obj).__name__} - at line {i}")
                continue
            b.add(i, obj, strict_keys=True)
    return b.build()


def records_from_columns(columns: Mapping[str, Sequence[str | None]], spec: MatchingSpec) -> Records:
    """Records from in-memory columns (name -> values, one list per column, equal lengths); row
    ``i`` is reported as line ``i + 1``. The same checks as :func:`read_records`.

    Raises
    ------
    SchemaError
        If a column is unknown, the id column is missing or the lengths differ.
    """
    b = _Builder(spec)
    for name in columns:
        if name not in b.known:
            raise SchemaError(f"Expected columns in {sorted(b.known)!r}, got unknown column {name[:64]!r} - at "
                              "`columns`")
    if spec.id_field not in columns:
        raise SchemaError(f"Expected the id column {spec.id_field!r}, got {sorted(columns)!r} - at `columns`")
    lens = {len(v) for v in columns.values()}
    if len(lens) > 1:
        raise SchemaError(f"Expected columns of one length, got lengths {sorted(lens)!r} - at `columns`")
    n = lens.pop() if lens else 0
    names = list(columns)
    cols = [columns[k] for k in names]
    for i in range(n):
        b.add(i + 1, {k: c[i] for k, c in zip(names, cols, strict=True)}, strict_keys=False)
    return b.build()
