"""Reading the write-ahead event log's file format: framing, CRC checks, and what a scan found.

File format (``events.log``), little-endian: a file header, ``b"DCSNWAL1"`` then ``u32`` format
version (:data:`LOG_VERSION`); then records, each ``u32`` payload length, ``u32`` CRC-32 of the
payload, payload. :func:`read_log` reads the intact prefix and classifies what follows it (a
torn tail, or damage with intact records after it); :func:`recover_log` turns that into a
recovery's warning, error and report. Writing is :mod:`decisioner.eventlog`'s.
"""

from __future__ import annotations

import shlex
import struct
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

import numpy as np

from .errors import ConfigError, DecisionerWarning, LogDamagedError

__all__ = [
    "LOG_MAGIC", "LOG_VERSION", "OLD_KEYS_HINT", "HEADER", "FRAME", "MAX_RECORD_BYTES", "RESYNC_RECORD_BYTES",
    "LogDamage", "LogScan", "LogRecovery", "read_log", "scan_bytes", "recover_log",
]

LOG_MAGIC: Final = b"DCSNWAL1"
#: 4: identifier keys are keyed BLAKE2b (issue 11; 3: xxh3 keys, typed msgpack operations;
#: 2: a JSON body inside msgpack; 1: raw identifier values)
LOG_VERSION: Final = 4
#: what a log of a version before 4 needs: its keys are xxh3 and cannot be converted
OLD_KEYS_HINT: Final = (
    "its identifier keys are xxh3 hashes, and format 4 keys are keyed BLAKE2b: old keys cannot be converted, "
    "because raw identifiers are never stored; rebuild the state with this version from the source events and "
    "CRM loads, or keep running the version that wrote it; see CHANGELOG.md"
)
#: the file header: magic, format version
HEADER: Final = struct.Struct("<8sI")
#: a record's frame: payload length, CRC-32 of the payload
FRAME: Final = struct.Struct("<II")
#: a record larger than this is corrupt by definition (events are capped far below it)
MAX_RECORD_BYTES: Final = 64 * 1024 * 1024

#: what a scan found: nothing wrong; damage with no intact record after it (what a crash during
#: a write leaves: safe to cut); damage with intact records after it (cutting would lose them)
LogDamage = Literal["none", "torn_tail", "damaged"]


@dataclass(frozen=True)
class LogScan:
    """Result of reading a log: the intact payloads before any damage, where they end, and what
    comes after them.

    ``good_bytes`` is the end of the intact prefix (the file header included), so damage starts
    there; ``problem`` says what is wrong at that byte. ``intact_after`` counts the intact
    records found after the damage by scanning forward for frames whose length and CRC check
    out; ``resync_at`` is where the first of them starts (best effort: a record whose own frame
    is damaged is not counted, nor one longer than :data:`RESYNC_RECORD_BYTES` and twice the
    longest record before the damage).
    """

    payloads: list[bytes]
    good_bytes: int
    problem: str | None
    kind: LogDamage
    size: int
    intact_after: int
    intact_after_bytes: int
    resync_at: int | None

    @property
    def damage_at(self) -> int | None:
        """Byte offset where the damage starts (``None`` when the log is whole)."""
        return None if self.problem is None else self.good_bytes

    @property
    def dropped_bytes(self) -> int:
        """Bytes after the intact prefix (what cutting it would drop)."""
        return self.size - self.good_bytes


def _frame_end(data: bytes, pos: int, n: int) -> int:
    """End of the intact frame at ``pos``, or -1. A record is never empty: an empty frame with a
    zero CRC is what a zero-filled tail (after a power loss) looks like."""
    if n - pos < FRAME.size:
        return -1
    length, crc = FRAME.unpack_from(data, pos)
    start = pos + FRAME.size
    if not 1 <= length <= min(MAX_RECORD_BYTES, n - start):
        return -1
    if zlib.crc32(memoryview(data)[start : start + length]) != crc:
        return -1
    return start + int(length)


def _u32(arr: np.ndarray, at: np.ndarray) -> np.ndarray:
    """The little-endian ``u32`` at each offset ``at`` (each ``at + 3`` inside ``arr``), as int64."""
    out: np.ndarray = arr[at].astype(np.int64)
    for k in (1, 2, 3):
        out |= arr[at + k].astype(np.int64) << (8 * k)
    return out


#: resynchronisation looks for records up to this long, or twice the longest intact record read
#: before, whichever is more: a record is one operation, far below it
RESYNC_RECORD_BYTES: Final = 1 << 20
_CHUNK: Final = 1 << 20


def _resync(data: bytes, pos: int, n: int, bound: int) -> int:
    """An offset at or after ``pos`` where an intact frame of at most ``bound`` payload bytes
    starts (the first one in the common case), or -1 when there is none.

    Every offset is a candidate. NumPy reads the length field at each one and keeps those whose
    length fits, so the CRC (the real test: a false match has odds 2^-32) runs on few of them:
    first those whose frame is followed by the end of the file or a plausible next length, then
    the rest. Garbage therefore costs about one CRC of the bound per 4,000 bytes.
    """
    arr = np.frombuffer(data, dtype=np.uint8)
    last = n - FRAME.size - 1  # a frame needs its header and one payload byte
    for chained in (True, False):
        a = pos
        while a <= last:
            b = min(a + _CHUNK, last + 1)
            qs = np.arange(a, b, dtype=np.int64)
            length = _u32(arr, qs)
            keep = (length >= 1) & (length <= np.minimum(n - FRAME.size - qs, bound))
            qs, length = qs[keep], length[keep]
            ends = qs + FRAME.size + length
            whole = ends <= n - FRAME.size  # a whole next frame header follows
            nxt = np.zeros(len(ends), dtype=np.int64)
            nxt[whole] = _u32(arr, ends[whole])
            plausible = ~whole | ((nxt >= 1) & (nxt <= MAX_RECORD_BYTES))
            for q in qs[plausible if chained else ~plausible]:
                if _frame_end(data, int(q), n) >= 0:
                    return int(q)
            a = b
    return -1


def read_log(path: str | Path) -> LogScan:
    """Read every intact record of a log file up to the first damaged one, and classify what
    follows (see :class:`LogScan`). Changes nothing on disk.

    Raises
    ------
    ConfigError
        If the file is not an event log or has an unknown format version.
    """
    return scan_bytes(Path(path).read_bytes(), path)


def scan_bytes(data: bytes, path: str | Path) -> LogScan:
    n = len(data)
    if n < HEADER.size:
        problem = None if n == 0 else f"truncated header, {n} of {HEADER.size} bytes"
        return LogScan([], 0, problem, "none" if n == 0 else "torn_tail", n, 0, 0, None)
    magic, version = HEADER.unpack_from(data, 0)
    if magic != LOG_MAGIC:
        raise ConfigError(f"expected an event log starting with {LOG_MAGIC!r}, got {magic!r} - at {str(path)!r}")
    if version != LOG_VERSION:
        hint = (
            OLD_KEYS_HINT if version < LOG_VERSION
            else "replay it with the decisioner version that wrote it, then snapshot; see CHANGELOG.md"
        )
        raise ConfigError(f"expected event log format version {LOG_VERSION}, got {version} - at {str(path)!r} ({hint})")
    pos = HEADER.size
    payloads: list[bytes] = []
    while pos < n:
        end = _frame_end(data, pos, n)
        if end < 0:
            break
        payloads.append(data[pos + FRAME.size : end])
        pos = end
    if pos == n:
        return LogScan(payloads, n, None, "none", n, 0, 0, None)
    problem = _problem(data, pos, n)
    bound = max(RESYNC_RECORD_BYTES, 2 * max(map(len, payloads), default=0))
    resync = _resync(data, pos + 1, n, bound)
    count = count_bytes = 0
    q = resync
    while 0 <= q < n:  # count what follows, resynchronising after any further damage
        end = _frame_end(data, q, n)
        if end < 0:
            q = _resync(data, q + 1, n, bound)
            continue
        count += 1
        count_bytes += end - q
        q = end
    kind: LogDamage = "torn_tail" if resync < 0 else "damaged"
    return LogScan(payloads, pos, problem, kind, n, count, count_bytes, None if resync < 0 else resync)


def _problem(data: bytes, pos: int, n: int) -> str:
    """What is wrong with the frame at ``pos`` (known to be damaged)."""
    if n - pos < FRAME.size:
        return f"truncated record header, {n - pos} of {FRAME.size} bytes"
    length, _ = FRAME.unpack_from(data, pos)
    if not 1 <= length <= MAX_RECORD_BYTES:
        return f"corrupt record length {length}"
    if pos + FRAME.size + length > n:
        return f"truncated record, {n - pos - FRAME.size} of {length} bytes"
    return "corrupt record, CRC mismatch"


@dataclass(frozen=True)
class LogRecovery:
    """What a recovery read from an event log: the records it kept and what it dropped.

    ``dropped_bytes`` is a torn write cut off (or, on a read-only recovery, left out) after the
    kept records; ``problem`` says what was wrong there (``None`` when the log was whole);
    ``missing`` is true when there was no log file.
    """

    path: str
    records: int
    kept_bytes: int
    dropped_bytes: int
    problem: str | None
    missing: bool = False


def _shell(path: Path) -> str:
    return shlex.quote(str(path))


def recover_log(path: str | Path, *, cut: bool) -> tuple[LogScan, LogRecovery]:
    """Scan the log at ``path`` for a recovery, and say what it keeps and drops.

    A whole log is kept. A torn tail (damage with no intact record after it: a write a crash
    interrupted) is reported with a :class:`DecisionerWarning` naming what is kept and dropped;
    ``cut`` says whether the caller cuts it off the file (an :class:`EventLog` does, a read-only
    recovery leaves the file as it is). Damage followed by intact records raises. Nothing on
    disk changes here.

    Raises
    ------
    LogDamagedError
        If intact records follow damage: recovering only the records before it would lose them.
    ConfigError
        If the file is not an event log of this format version.
    """
    p = Path(path)
    if not p.exists():
        return LogScan([], 0, None, "none", 0, 0, 0, None), LogRecovery(str(p), 0, 0, 0, None, missing=True)
    scan = read_log(p)
    if scan.kind == "damaged":
        raise LogDamagedError(
            f"expected an event log whose records are intact up to its end, got damage at byte {scan.good_bytes} "
            f"({scan.problem}) followed by {scan.intact_after} intact records ({scan.intact_after_bytes} of the "
            f"{scan.dropped_bytes} bytes after it) - at {str(p)!r} (nothing was cut or changed: "
            f"`decisioner log check {_shell(p)}` shows the damage, `decisioner log repair {_shell(p)}` keeps "
            f"the {len(scan.payloads)} records before it and moves the rest into a file of its own)"
        )
    report = LogRecovery(str(p), len(scan.payloads), scan.good_bytes, scan.dropped_bytes, scan.problem)
    if scan.kind == "torn_tail":
        what = "cut" if cut else "left out"
        warnings.warn(
            f"event log {str(p)!r} ends in a torn write at byte {scan.good_bytes} ({scan.problem}): kept the "
            f"{len(scan.payloads)} records before it ({scan.good_bytes} bytes) and {what} the {scan.dropped_bytes} "
            f"bytes after them{'' if cut else ' (the file is unchanged)'}",
            DecisionerWarning,
            stacklevel=3,
        )
    return scan, report
