"""The write-ahead event log as a file: framing, CRC, flush policy and one writer per directory.

This module knows bytes, not operations: :mod:`decisioner.journal` encodes what the engine
admitted and hands each record's payload here.

File format (``events.log``), little-endian:

* file header: ``b"DCSNWAL1"`` then ``u32`` format version (:data:`LOG_VERSION`);
* record: ``u32`` payload length, ``u32`` CRC-32 of the payload, payload.

A record is never empty. Damage is found by the frame (a length that does not fit, a CRC that
does not match) and classified by what follows it (:func:`read_log`):

* a *torn tail*, damage with no intact record after it (a truncated header or record at the
  end, a bad CRC on the last record, a zero-filled tail): what a crash during a write leaves.
  Recovery keeps every record before it and says so with a :class:`DecisionerWarning`; an
  :class:`EventLog` opened on the file cuts the torn bytes off.
* *damage before the end*: a frame further on, found by scanning forward byte by byte for a
  length that fits and a CRC that matches, is intact. Cutting there would destroy it, so
  recovery raises :class:`~decisioner.errors.LogDamagedError` and changes nothing on disk;
  :func:`repair_log` (``decisioner log repair``) keeps the intact prefix in place and moves the
  rest into a file of its own.

Every recovery returns a :class:`LogRecovery` saying what it kept and dropped.

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
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar, Final, Literal

from .errors import ConfigError, LogLockedError, NotReadyError
from .logformat import (
    FRAME,
    HEADER,
    LOG_MAGIC,
    LOG_VERSION,
    MAX_RECORD_BYTES,
    RESYNC_RECORD_BYTES,
    LogDamage,
    LogRecovery,
    LogScan,
    read_log,
    recover_log,
    scan_bytes,
)

__all__ = [
    "LOG_MAGIC",
    "LOG_VERSION",
    "MAX_RECORD_BYTES",
    "RESYNC_RECORD_BYTES",
    "EventLog",
    "LogDamage",
    "LogScan",
    "LogRecovery",
    "LogRepair",
    "read_log",
    "recover_log",
    "repair_log",
    "FlushPolicy",
    "DirectoryLock",
    "fsync_dir",
]

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


# ============================================================================ writing
class EventLog:
    """Append-only log file with a flush policy and an exclusive lock on its directory.

    Parameters
    ----------
    path
        Log file; created with a header if missing. An existing file is scanned
        (:func:`recover_log`): a torn tail is cut off (reported with a
        :class:`DecisionerWarning`) before new records go after the last intact one, and
        ``recovery_`` says what was kept and dropped.
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
    LogDamagedError
        If intact records follow damage in the existing file (nothing is changed).
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
        self.recovery_ = LogRecovery(str(self.path), 0, 0, 0, None, missing=not self.path.exists())
        self._key = _claim(
            self.path,
            f"expected one writer of {str(self.path)!r}, got a second in this process - at `attach_log` "
            "(detach the other engine's log first)",
        )
        try:
            self._dir_lock = DirectoryLock(self.path.parent)
        except BaseException:
            _release(self._key)
            raise
        self._lock = threading.Lock()
        self._buf: list[bytes] = []
        self._closed = False
        try:
            self._fd = self._open()
        except BaseException:
            self._dir_lock.release()
            _release(self._key)
            raise
        self._flusher: threading.Thread | None = None
        self._stop = threading.Event()
        if flush == "interval":
            self._flusher = threading.Thread(target=self._flush_loop, name="decisioner-log-flush", daemon=True)
            self._flusher.start()

    def _open(self) -> int:
        if self.path.exists() and self.path.stat().st_size > 0:
            scan, self.recovery_ = recover_log(self.path, cut=True)  # damage before the end raises here
            if scan.kind == "torn_tail":
                self.recovered_problem_ = scan.problem
                with open(self.path, "r+b") as fh:
                    fh.truncate(scan.good_bytes)
                    if self.fsync:
                        os.fsync(fh.fileno())
            self.records_ = len(scan.payloads)
            self.recovered_ = scan.payloads
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        if os.fstat(fd).st_size == 0:
            os.write(fd, HEADER.pack(LOG_MAGIC, LOG_VERSION))
            if self.fsync:
                os.fsync(fd)
        return fd

    def append(self, payload: bytes) -> None:
        """Append one record according to the flush policy.

        Raises
        ------
        ConfigError
            If ``payload`` is empty (a record never is: an empty frame is what a zero-filled tail
            looks like, so the scan treats one as damage).
        """
        if not payload:
            raise ConfigError(f"expected a record payload of at least 1 byte, got 0 - at {str(self.path)!r}")
        frame = FRAME.pack(len(payload), zlib.crc32(payload)) + payload
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
                _release(self._key)

    def reset(self) -> None:
        """Start an empty log (after a snapshot has taken everything in it)."""
        with self._lock:
            self._buf.clear()
            self._start_empty()

    def _start_empty(self) -> None:
        """Replace the file with an empty log (header only) and append there from now on; the
        caller holds ``_lock``."""
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "wb") as fh:
            fh.write(HEADER.pack(LOG_MAGIC, LOG_VERSION))
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
            self._start_empty()

    def __iter__(self) -> Iterator[bytes]:
        self.flush_now()
        return iter(read_log(self.path).payloads)


# ============================================================================ repairing
@dataclass(frozen=True)
class LogRepair:
    """What :func:`repair_log` did: the intact records it kept in place and the bytes it moved
    into ``moved_to`` (``None`` when the log was whole and nothing moved)."""

    path: str
    kind: LogDamage
    problem: str | None
    kept_records: int
    kept_bytes: int
    moved_bytes: int
    #: intact records among the moved bytes (best effort, see :class:`LogScan`)
    moved_intact_records: int
    moved_to: str | None


def repair_log(path: str | Path, *, now: datetime | None = None) -> LogRepair:
    """Make the log at ``path`` whole again without deleting a byte: keep its intact prefix in
    place and move everything from the first damage to the end into a file of its own next to
    it, ``<name>.damaged-<UTC time>``. The moved bytes are written and fsynced before the log is
    cut, so a crash in between leaves them in both files, never in neither. A whole log is left
    as it is. Takes the directory's lock, so no engine may be writing the log.

    ``now`` names the moved-aside file (default: the current UTC time).

    Raises
    ------
    LogLockedError
        If an engine (in this or another process) has the log open.
    ConfigError
        If the file is not an event log of this format version (nothing is changed).
    FileNotFoundError
        If there is no file at ``path``.
    """
    p = Path(path)
    key = _claim(
        p,
        f"expected no writer of {str(p)!r}, got an open event log in this process - at `repair_log` "
        "(detach the engine's log first)",
    )
    try:
        lock = DirectoryLock(p.parent)
        try:
            return _repair(p, now or datetime.now(UTC))
        finally:
            lock.release()
    finally:
        _release(key)


#: the event logs open for writing in this process (real paths): one writer each
_open_paths: set[str] = set()


def _claim(path: Path, busy: str) -> str:
    """Claim the log at ``path`` for the one writer of this process (the directory lock is the
    one across processes); returns the claim's key. Raises LogLockedError(``busy``) if taken."""
    key = os.path.realpath(path)
    with DirectoryLock._guard:
        if key in _open_paths:
            raise LogLockedError(busy)
        _open_paths.add(key)
    return key


def _release(key: str) -> None:
    with DirectoryLock._guard:
        _open_paths.discard(key)


def _repair(p: Path, now: datetime) -> LogRepair:
    data = p.read_bytes()
    scan = scan_bytes(data, p)
    if scan.problem is None:
        return LogRepair(str(p), "none", None, len(scan.payloads), scan.good_bytes, 0, 0, None)
    stamp = now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    side = p.with_name(f"{p.name}.damaged-{stamp}")
    k = 1
    while side.exists():  # never overwrite what an earlier repair moved aside
        side = p.with_name(f"{p.name}.damaged-{stamp}-{k}")
        k += 1
    fd = os.open(side, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        view = memoryview(data)[scan.good_bytes :]
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    fsync_dir(p.parent)
    with open(p, "r+b") as fh:
        fh.truncate(scan.good_bytes)
        if scan.good_bytes == 0:  # not even a whole file header: start a valid empty log
            fh.write(HEADER.pack(LOG_MAGIC, LOG_VERSION))
        fh.flush()
        os.fsync(fh.fileno())
    return LogRepair(
        str(p), scan.kind, scan.problem, len(scan.payloads), scan.good_bytes, scan.dropped_bytes,
        scan.intact_after, str(side),
    )
