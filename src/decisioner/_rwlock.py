"""A writer-preferring, FIFO-fair readers-writer lock with a reentrant writer.

``with lock:`` takes the exclusive (writer) side, so code written for a plain ``RLock`` keeps its
meaning; ``with lock.read():`` takes the shared side. A writer may re-enter either side; readers
wait while a writer holds or awaits the lock, so a stream of reads cannot starve a write.
Writers are served in arrival order (tickets): a thread that releases and at once re-acquires
(a tight loop) queues behind the writers already waiting instead of winning every race.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["RWLock"]


class RWLock:
    """Readers-writer lock; see the module docstring."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._readers = 0
        self._writer: int | None = None
        self._depth = 0
        self._waiting = 0
        self._next_ticket = 0
        self._serving = 0

    def acquire(self) -> None:
        me = threading.get_ident()
        with self._cond:
            if self._writer == me:
                self._depth += 1
                return
            ticket = self._next_ticket
            self._next_ticket += 1
            self._waiting += 1
            while self._writer is not None or self._readers or ticket != self._serving:
                self._cond.wait()
            self._waiting -= 1
            self._serving += 1
            self._writer = me
            self._depth = 1

    def release(self) -> None:
        with self._cond:
            if self._writer != threading.get_ident():
                raise RuntimeError("release of a write lock this thread does not hold")
            self._depth -= 1
            if self._depth == 0:
                self._writer = None
                self._cond.notify_all()

    def __enter__(self) -> RWLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    @contextmanager
    def read(self) -> Iterator[None]:
        """Shared access (re-entered as exclusive by a thread that holds the write side)."""
        me = threading.get_ident()
        with self._cond:
            if self._writer == me:
                self._depth += 1
                shared = False
            else:
                while self._writer is not None or self._waiting:
                    self._cond.wait()
                self._readers += 1
                shared = True
        try:
            yield
        finally:
            if shared:
                with self._cond:
                    self._readers -= 1
                    if self._readers == 0:
                        self._cond.notify_all()
            else:
                self.release()
