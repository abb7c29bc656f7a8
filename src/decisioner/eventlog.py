"""The write-ahead event log as a file: framing, CRC, flush policy and one writer per directory.

This module knows bytes, not operations: :mod:`decisioner.journal` encodes what the engine
admitted and hands each record's payload here.

File format (``events.log``), little-endian:

* file header: ``b"DCSNWAL1"`` then ``u32`` format version (:data:`LOG_VERSION`);
* record: ``u32`` payload length, ``u32`` CRC-32 of the payload, payload.

A truncated or corrupt record at the tail is detected (length or CRC), reported, and cut off;
every record before it is kept.

Flush policies (what survives):

* ``"event"``: one ``write(2)`` per record before the call returns. The record is in the
  operating system's page cache, so it survives a crash or kill of the process; with
  ``fsync=True`` each record is also forced to the device before returning, so it survives a
  power loss or kernel crash (at the cost of one device flush per call).
* ``"interval"``: records are buffered in the process and written every ``interval_ms`` (and on
  close). A process crash loses at most the records of the last interval; with ``fsync=True``
  a power loss loses at most the same.
* ``"off"``: no log; only what the last snapshot holds survives anything.

One writer per directory: a log (and a snapshot written into a directory) holds an advisory
``flock`` on ``<directory>/LOCK`` for as long as it is open, so a second process that attaches
to the same log fails with :class:`~decisioner.errors.LogLockedError` naming the holder, instead
of interleaving its records with the first one's.
"""

from __future__ import annotations

import fcntl
import os
import struct
import threading
import warnings
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Final, Literal

from .errors import ConfigError, DecisionerWarning, LogLockedError, NotReadyError

__all__ = [
    "LOG_MAGIC",
    "LOG_VERSION",
    "MAX_RECORD_BYTES",
    "EventLog",
    "LogScan",
    "read_log",
    "FlushPolicy",
    "DirectoryLock",
    "fsync_dir",
]

LOG_MAGIC: Final = b"DCSNWAL1"
#: 3: typed msgpack operations (2: a JSON body inside msgpack; 1: raw identifier values)
LOG_VERSION: Final = 3
_HEADER: Final = struct.Struct("<8sI")
_REC: Final = struct.Struct("<II")
#: a record larger than this is corrupt by definition (events are capped far below it)
MAX_RECORD_BYTES: Final = 64 * 1024 * 1024
LOCK_NAME: Final = "LOCK"

FlushPolicy = Literal["event", "interval", "off"]


# ============================================================================ one writer
class DirectoryLock:
    """An advisory, process-wide exclusive lock on a directory (``flock`` on ``LOCK``).

    Re-entrant within one process (a count per directory), because ``flock`` locks belong to
    an open file: a second open in the same process would otherwise lock itself out. The lock
    file holds the holder's pid, which the error of a second process names.

    Raises
    ------
    LogLockedError
        If another process holds the directory.
    """

    _held: ClassVar[dict[str, tuple[int, int]]] = {}  # realpath -> (fd, count)
    _guard: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self._key = os.path.realpath(self.directory)
        self._released = False
        with self._guard:
            held = self._held.get(self._key)
            if held is not None:
                self._held[self._key] = (held[0], held[1] + 1)
                return
            self.directory.mkdir(parents=True, exist_ok=True)
            path = self.directory / LOCK_NAME
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "unknown"
                os.close(fd)
                raise LogLockedError(
                    f"expected no other writer on {str(self.directory)!r}, got one held by process "
                    f"{holder} - at {str(path)!r} (one engine process per log: see the README's "
                    "'several web workers')"
                ) from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            self._held[self._key] = (fd, 1)

    def release(self) -> None:
        """Drop this holder's claim; the lock is released when the last one in the process goes."""
        with self._guard:
            if self._released:
                return
            self._released = True
            fd, count = self._held[self._key]
            if count > 1:
                self._held[self._key] = (fd, count - 1)
                return
            del self._held[self._key]
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


def fsync_dir(path: Path) -> None:
    """Make a rename inside ``path`` durable (POSIX)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# ============================================================================ reading
@dataclass(frozen=True)
class LogScan:
    """Result of reading a log: the intact payloads, where they end, and what was wrong after."""

    payloads: list[bytes]
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
            "(replay it with the decisioner version that wrote it, then snapshot; see CHANGELOG.md)"
        )
    pos = _HEADER.size
    payloads: list[bytes] = []
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
        payloads.append(payload)
        pos = start + length
    return LogScan(payloads, pos, problem)


# ============================================================================ writing
class EventLog:
    """Append-only log file with a flush policy and an exclusive lock on its directory.

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

    Raises
    ------
    LogLockedError
        If another process has the log's directory open.
    """

    def __init__(
        self, path: str | Path, *, flush: FlushPolicy = "event", fsync: bool = False, interval_ms: float = 100.0
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
        self.recovered_: list[bytes] = []
        key = os.path.realpath(self.path)
        with DirectoryLock._guard:
            if key in EventLog._open_paths:
                raise LogLockedError(
                    f"expected one writer of {str(self.path)!r}, got a second in this process - at `attach_log` "
                    "(detach the other engine's log first)"
                )
            EventLog._open_paths.add(key)
        self._key = key
        try:
            self._dir_lock = DirectoryLock(self.path.parent)
        except BaseException:
            self._forget_path()
            raise
        self._lock = threading.Lock()
        self._buf: list[bytes] = []
        self._closed = False
        try:
            self._fd = self._open()
        except BaseException:
            self._dir_lock.release()
            self._forget_path()
            raise
        self._flusher: threading.Thread | None = None
        self._stop = threading.Event()
        if flush == "interval":
            self._flusher = threading.Thread(target=self._flush_loop, name="decisioner-log-flush", daemon=True)
            self._flusher.start()

    _open_paths: ClassVar[set[str]] = set()

    def _forget_path(self) -> None:
        with DirectoryLock._guard:
            EventLog._open_paths.discard(self._key)

    def _open(self) -> int:
        if self.path.exists() and self.path.stat().st_size > 0:
            scan = read_log(self.path)
            if scan.problem is not None:
                self.recovered_problem_ = scan.problem
                warnings.warn(
                    f"event log {str(self.path)!r}: {scan.problem}; cut off after {len(scan.payloads)} good records",
                    DecisionerWarning,
                    stacklevel=4,
                )
                with open(self.path, "r+b") as fh:
                    fh.truncate(max(scan.good_bytes, _HEADER.size) if scan.good_bytes else 0)
            self.records_ = len(scan.payloads)
            self.recovered_ = scan.payloads
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        if os.fstat(fd).st_size == 0:
            os.write(fd, _HEADER.pack(LOG_MAGIC, LOG_VERSION))
            if self.fsync:
                os.fsync(fd)
        return fd

    def append(self, payload: bytes) -> None:
        """Append one record according to the flush policy."""
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
        """Flush, close and release the directory; further appends raise :class:`NotReadyError`."""
        self._stop.set()
        if self._flusher is not None:
            self._flusher.join()
        self.flush_now()
        with self._lock:
            if not self._closed:
                self._closed = True
                os.close(self._fd)
                self._dir_lock.release()
                self._forget_path()

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
            fsync_dir(self.path.parent)
            os.close(self._fd)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
            self.records_ = 0
            self.bytes_ = 0

    def rotate(self, to: str | Path) -> None:
        """Move the records so far to ``to`` (replacing it) and go on in an empty log, so that
        no crash leaves the log missing: ``to`` first becomes a second name of the log file,
        then an empty log replaces the first name (after a crash in between, both names hold
        the same records, and a replay skips what it has applied)."""
        to = Path(to)
        with self._lock:
            if self._buf:
                self._write(b"".join(self._buf))
                self._buf.clear()
            os.fsync(self._fd)
            link = to.with_name(to.name + ".tmp")
            link.unlink(missing_ok=True)
            os.link(self.path, link)
            os.replace(link, to)
            tmp = self.path.with_suffix(".tmp")
            with open(tmp, "wb") as fh:
                fh.write(_HEADER.pack(LOG_MAGIC, LOG_VERSION))
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
            fsync_dir(self.path.parent)
            os.close(self._fd)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
            self.records_ = 0
            self.bytes_ = 0

    def __iter__(self) -> Iterator[bytes]:
        self.flush_now()
        return iter(read_log(self.path).payloads)
