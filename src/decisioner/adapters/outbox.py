"""The durable outbox of the delivery core: messages accepted but not yet acknowledged.

A message enters the outbox before :meth:`Delivery.put_nowait <decisioner.adapters.delivery.Delivery.put_nowait>`
returns, and leaves it when the receiver acknowledged it (a 2xx) or when it went to the
dead-letter file. A sender that is killed mid-run leaves its unacknowledged messages here; the
next sender opened on the same directory replays them, with the same message ids and the same
bodies, so a receiver that deduplicates by id sees each message exactly once.

File format (``outbox.log``), little-endian, append only: each record is ``u32`` payload length,
``u32`` CRC-32 of the payload, then the payload, a msgpack array:

* ``["P", id, route, key, created_ms, body]``: a message was accepted (``body`` is bytes);
* ``["A", [id, ...]]``: these messages were acknowledged;
* ``["D", [id, ...]]``: these messages went to the dead-letter file.

Opening replays the records (a torn tail from a crash during a write is cut off and logged),
then rewrites the file with only the pending messages and the ids acknowledged most recently
(atomically: a temporary file, fsync, rename), so the file stays small and a message put again
after a restart with an id already delivered is still recognised as a duplicate.

Durability: one ``write(2)`` per record before the call returns, so it survives a kill of the
process; ``fsync=True`` also forces each record to the device (survives a power loss).
One sender per directory: an advisory ``flock`` on ``<directory>/LOCK``, held while open.
"""

from __future__ import annotations

import fcntl
import logging
import os
import struct
import threading
import zlib
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path
from typing import ClassVar

import msgspec

from ..errors import LogLockedError, NotReadyError
from .message import Message

__all__ = ["Outbox"]

LOG_NAME = "outbox.log"
LOCK_NAME = "LOCK"
_FRAME = struct.Struct("<II")
_MAX_RECORD = 64 << 20
_log = logging.getLogger("decisioner.adapters")


class Outbox:
    """Pending messages of one sender, kept in a directory that survives the process.

    Parameters
    ----------
    directory
        Where ``outbox.log`` and ``LOCK`` live (created if missing).
    fsync
        Force every record to the device before returning (survives a power loss, not only a
        kill of the process), at the cost of one device flush per call.
    remember
        How many acknowledged ids are kept (in memory and across a restart) so that a message
        put again with one of them is recognised as already delivered.
    compact_records
        Rewrite the file with only what is pending once this many records were appended.

    Raises
    ------
    LogLockedError
        If another sender (in this process or another) has the directory open.
    """

    _open_here: ClassVar[set[str]] = set()
    _guard: ClassVar[threading.Lock] = threading.Lock()

    def __init__(
        self, directory: str | Path, *, fsync: bool = False, remember: int = 100_000, compact_records: int = 200_000
    ) -> None:
        self.directory = Path(directory)
        self.fsync = fsync
        self.remember = remember
        self.compact_records = compact_records
        self.pending_: OrderedDict[str, Message] = OrderedDict()
        self.done_: OrderedDict[str, None] = OrderedDict()
        self._fd = -1
        self._lock_fd = -1
        self._appended = 0
        self._key = ""

    # ------------------------------------------------------------------ open / close
    def open(self) -> list[Message]:
        """Lock the directory, replay the log, compact it; return the pending messages in order."""
        self.directory.mkdir(parents=True, exist_ok=True)
        key = os.path.realpath(self.directory)
        with self._guard:
            if key in self._open_here:
                raise LogLockedError(
                    f"Expected no other sender on the outbox {str(self.directory)!r}, got one open in this "
                    f"process - at {str(self.directory / LOCK_NAME)!r}"
                )
            lock_path = self.directory / LOCK_NAME
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "unknown"
                os.close(fd)
                raise LogLockedError(
                    f"Expected no other sender on the outbox {str(self.directory)!r}, got one held by process "
                    f"{holder} - at {str(lock_path)!r}"
                ) from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            self._open_here.add(key)
            self._key, self._lock_fd = key, fd
        self.pending_, self.done_ = OrderedDict(), OrderedDict()
        try:
            self._replay()
            self._compact()
        except BaseException:
            self.close()
            raise
        return list(self.pending_.values())

    def close(self) -> None:
        """Close the log and release the directory (pending messages stay in the file)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        with self._guard:
            if self._lock_fd >= 0:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
                os.close(self._lock_fd)
                self._lock_fd = -1
                self._open_here.discard(self._key)

    @property
    def is_open(self) -> bool:
        """True between :meth:`open` and :meth:`close`."""
        return self._fd >= 0

    # ------------------------------------------------------------------ records
    def put(self, message: Message) -> None:
        """Append an accepted message (durable when this returns)."""
        self._append(["P", message.id, message.route, message.key, message.created_ms, message.body])
        self.pending_[message.id] = message

    def ack(self, ids: Iterable[str], *, dead: bool = False) -> None:
        """Record that these pending messages were acknowledged (or dead-lettered)."""
        ids = [i for i in ids if i in self.pending_]
        if not ids:
            return
        self._append(["D" if dead else "A", ids])
        for i in ids:
            del self.pending_[i]
            self._remember(i)
        if self._appended >= self.compact_records:
            self._compact()

    def _remember(self, message_id: str) -> None:
        self.done_[message_id] = None
        self.done_.move_to_end(message_id)
        while len(self.done_) > self.remember:
            self.done_.popitem(last=False)

    def _append(self, record: list[object]) -> None:
        if self._fd < 0:
            raise NotReadyError(f"Expected an open outbox, got a closed one - at {str(self.directory)!r}")
        payload = msgspec.msgpack.encode(record)
        os.write(self._fd, _FRAME.pack(len(payload), zlib.crc32(payload)) + payload)
        if self.fsync:
            os.fsync(self._fd)
        self._appended += 1

    # ------------------------------------------------------------------ replay / compaction
    def _replay(self) -> None:
        path = self.directory / LOG_NAME
        data = path.read_bytes() if path.exists() else b""
        pos = 0
        while pos + _FRAME.size <= len(data):
            n, crc = _FRAME.unpack_from(data, pos)
            end = pos + _FRAME.size + n
            if n == 0 or n > _MAX_RECORD or end > len(data) or zlib.crc32(data[pos + _FRAME.size : end]) != crc:
                break
            rec = msgspec.msgpack.decode(data[pos + _FRAME.size : end])
            if rec[0] == "P":
                _, mid, route, key, created, body = rec
                self.pending_[mid] = Message(id=mid, route=route, key=key, created_ms=created, body=body)
            else:
                for mid in rec[1]:
                    self.pending_.pop(mid, None)
                    self._remember(mid)
            pos = end
        if pos != len(data):
            _log.warning(
                "outbox %s: %d damaged bytes at the end cut off (a write torn by a crash); %d messages pending",
                path, len(data) - pos, len(self.pending_),
            )

    def _compact(self) -> None:
        """Rewrite the log as the remembered ids plus the pending messages (atomic rename)."""
        path = self.directory / LOG_NAME
        tmp = self.directory / (LOG_NAME + ".tmp")
        chunks: list[bytes] = []
        records: list[list[object]] = []
        if self.done_:
            records.append(["A", list(self.done_)])
        records += [["P", m.id, m.route, m.key, m.created_ms, m.body] for m in self.pending_.values()]
        for rec in records:
            payload = msgspec.msgpack.encode(rec)
            chunks.append(_FRAME.pack(len(payload), zlib.crc32(payload)) + payload)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, b"".join(chunks))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        dfd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
        if self._fd >= 0:
            os.close(self._fd)
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND, 0o600)
        self._appended = 0
