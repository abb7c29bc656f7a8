"""Durability: an append-only event log (write-ahead) and atomic snapshots.

Event log format (``events.log``), little-endian:

* file header: ``b"DCSNWAL1"`` then ``u32`` format version;
* record: ``u32`` payload length, ``u32`` CRC-32 of the payload, payload (msgpack
  :class:`LogRecord`: admission sequence number, operation, placement, JSON body).

Every accepted state change is appended, in the order the engine admitted it, before the call
returns. Recovery loads the last snapshot and replays the records whose admission number is at
or past the snapshot's; a truncated or corrupt record at the tail is detected (length or CRC),
reported, and cut off, and every record before it is kept.

Flush policies (what survives):

* ``"event"``: one ``write(2)`` per record before the call returns. The record is in the
  operating system's page cache, so it survives a crash or kill of the process; with
  ``fsync=True`` each record is also forced to the device before returning, so it survives a
  power loss or kernel crash (at the cost of one device flush per call).
* ``"interval"``: records are buffered in the process and written every ``interval_ms`` (and on
  close). A process crash loses at most the records of the last interval; with ``fsync=True``
  a power loss loses at most the same.
* ``"off"``: no log; only what the last snapshot holds survives anything.
"""

from __future__ import annotations

import os
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

import msgspec

from .errors import ConfigError, DecisionerWarning, NotReadyError

__all__ = [
    "LOG_MAGIC",
    "LOG_VERSION",
    "LogRecord",
    "EventLog",
    "LogScan",
    "read_log",
    "FlushPolicy",
]

LOG_MAGIC: Final = b"DCSNWAL1"
LOG_VERSION: Final = 1
_HEADER: Final = struct.Struct("<8sI")
_REC: Final = struct.Struct("<II")
#: a record larger than this is corrupt by definition (events are capped far below it)
MAX_RECORD_BYTES: Final = 64 * 1024 * 1024

FlushPolicy = Literal["event", "interval", "off"]


class LogRecord(msgspec.Struct, array_like=True, frozen=True):
    """One admitted operation: ``op`` is ``track``, ``decide``, ``observe`` or an admin
    operation; ``body`` is the JSON of the event or outcome as admitted."""

    seq: int
    op: str
    placement: str | None
    body: bytes


_enc = msgspec.msgpack.Encoder()
_dec = msgspec.msgpack.Decoder(LogRecord)


@dataclass(frozen=True)
class LogScan:
    """Result of reading a log: the good records, where they end, and what was wrong after."""

    records: list[LogRecord]
    good_bytes: int
    problem: str | None


def read_log(path: str | Path) -> LogScan:
    """Read every intact record of a log file; stop at the first truncated or corrupt one.

    Raises
    ------
    ConfigError
        If the file is not an event log or has an unknown format version.
    """
    data = Path(path).read_bytes()
    if len(data) < _HEADER.size:
        if len(data) == 0:
            return LogScan([], 0, None)
        return LogScan([], 0, f"truncated header ({len(data)} of {_HEADER.size} bytes)")
    magic, version = _HEADER.unpack_from(data, 0)
    if magic != LOG_MAGIC:
        raise ConfigError(f"expected an event log starting with {LOG_MAGIC!r}, got {magic!r} - at {str(path)!r}")
    if version != LOG_VERSION:
        raise ConfigError(
            f"expected event log format version {LOG_VERSION}, got {version} - at {str(path)!r} "
            "(replay it with the decisioner version that wrote it, then snapshot)"
        )
    pos = _HEADER.size
    records: list[LogRecord] = []
    problem = None
    n = len(data)
    while pos < n:
        if n - pos < _REC.size:
            problem = f"truncated record header at byte {pos} ({n - pos} bytes)"
            break
        length, crc = _REC.unpack_from(data, pos)
        start = pos + _REC.size
        if length > MAX_RECORD_BYTES:
            problem = f"corrupt record length {length} at byte {pos}"
            break
        if start + length > n:
            problem = f"truncated record at byte {pos} ({n - start} of {length} bytes)"
            break
        payload = data[start : start + length]
        if zlib.crc32(payload) != crc:
            problem = f"corrupt record at byte {pos} (CRC mismatch)"
            break
        try:
            records.append(_dec.decode(payload))
        except msgspec.DecodeError:
            problem = f"undecodable record at byte {pos}"
            break
        pos = start + length
    return LogScan(records, pos, problem)


class EventLog:
    """Append-only event log with a flush policy.

    Parameters
    ----------
    path
        Log file; created with a header if missing. An existing file is scanned: a damaged
        tail is cut off (reported with a :class:`DecisionerWarning`) before new records go after
        the last good one.
    flush
        ``"event"`` or ``"interval"`` (see the module docstring for what each survives).
    fsync
        Force records to the device (power-loss durability) when they are written.
    interval_ms
        Write period of the ``"interval"`` policy.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        flush: FlushPolicy = "event",
        fsync: bool = False,
        interval_ms: float = 100.0,
    ) -> None:
        if flush not in ("event", "interval"):
            raise ConfigError(f"`flush` must be 'event' or 'interval', got {flush!r}")
        if not interval_ms > 0:
            raise ConfigError(f"`interval_ms` must be > 0, got {interval_ms!r}")
        self.path = Path(path)
        self.flush = flush
        self.fsync = fsync
        self.interval_ms = interval_ms
        self.records_ = 0
        self.bytes_ = 0
        self.recovered_problem_: str | None = None
        self._lock = threading.Lock()
        self._buf: list[bytes] = []
        self._closed = False
        self._fd = self._open()
        self._flusher: threading.Thread | None = None
        self._stop = threading.Event()
        if flush == "interval":
            self._flusher = threading.Thread(target=self._flush_loop, name="decisioner-log-flush", daemon=True)
            self._flusher.start()

    def _open(self) -> int:
        if self.path.exists() and self.path.stat().st_size > 0:
            scan = read_log(self.path)
            if scan.problem is not None:
                import warnings

                self.recovered_problem_ = scan.problem
                warnings.warn(
                    f"event log {str(self.path)!r}: {scan.problem}; cut off after "
                    f"{len(scan.records)} good records", DecisionerWarning, stacklevel=3,
                )
                with open(self.path, "r+b") as fh:
                    fh.truncate(max(scan.good_bytes, _HEADER.size) if scan.good_bytes else 0)
            self.records_ = len(scan.records)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        if os.fstat(fd).st_size == 0:
            os.write(fd, _HEADER.pack(LOG_MAGIC, LOG_VERSION))
            if self.fsync:
                os.fsync(fd)
        return fd

    def append(self, record: LogRecord) -> None:
        """Append one record according to the flush policy."""
        payload = _enc.encode(record)
        frame = _REC.pack(len(payload), zlib.crc32(payload)) + payload
        with self._lock:
            if self._closed:
                raise NotReadyError(f"the event log {str(self.path)!r} is closed")
            if self.flush == "event":
                self._write(frame)
            else:
                self._buf.append(frame)
            self.records_ += 1
            self.bytes_ += len(frame)

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        if self.fsync:
            os.fsync(self._fd)

    def flush_now(self) -> None:
        """Write buffered records (``"interval"`` policy) now."""
        with self._lock:
            if self._buf and not self._closed:
                data = b"".join(self._buf)
                self._buf.clear()
                self._write(data)

    def _flush_loop(self) -> None:
        while not self._stop.wait(self.interval_ms / 1000.0):
            self.flush_now()

    def close(self) -> None:
        """Flush and close; further appends raise :class:`NotReadyError`."""
        self._stop.set()
        if self._flusher is not None:
            self._flusher.join()
        self.flush_now()
        with self._lock:
            if not self._closed:
                self._closed = True
                os.close(self._fd)

    def reset(self) -> None:
        """Start an empty log (after a snapshot has taken everything in it)."""
        with self._lock:
            self._buf.clear()
            tmp = self.path.with_suffix(".tmp")
            with open(tmp, "wb") as fh:
                fh.write(_HEADER.pack(LOG_MAGIC, LOG_VERSION))
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
            os.close(self._fd)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
            self.records_ = 0
            self.bytes_ = 0

    def __iter__(self) -> Iterator[LogRecord]:
        self.flush_now()
        return iter(read_log(self.path).records)


def fsync_dir(path: Path) -> None:
    """Make a rename inside ``path`` durable (POSIX)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def now_ms() -> int:
    return time.time_ns() // 1_000_000
