"""A writer-preferring, FIFO-fair readers-writer lock with a reentrant writer.

``with lock:`` takes the exclusive (writer) side, so code written for a plain ``RLock`` keeps its
meaning; ``with lock.read():`` takes the shared side. A writer may re-enter either side; readers
wait while a writer holds or awaits the lock, so a stream of reads cannot starve a write.
Writers are served in arrival order (tickets): a thread that releases and at once re-acquires
(a tight loop) queues behind the writers already waiting instead of winning every race.

Readers take no mutex while no writer is about. Any mutex taken per read makes two reading
threads queue on it (and on the GIL behind it), which cost more than the GIL-free kernels
saved: reads from two threads were slower than from one. A reader announces itself by
appending to a deque, then looks at the writer gate; a writer closes the gate, then waits until
the deque is empty. ``deque.append``/``pop`` and attribute reads are single atomic steps under
the GIL, so either the reader sees the closed gate (and backs out to wait on the condition) or
the writer sees the reader (and waits for it to leave). On an interpreter without a GIL
(free-threaded builds), readers take the condition's mutex instead.
"""

from __future__ import annotations

import sys
import threading
from collections import deque

__all__ = ["RWLock"]

#: the optimistic reader path relies on the GIL making deque operations sequentially consistent
_GIL: bool = bool(getattr(sys, "_is_gil_enabled", lambda: True)())
#: a writer waiting for readers to leave re-checks at least this often (seconds); the last reader
#: out also wakes it, this only bounds the cost of a wake-up that raced
_DRAIN_POLL = 0.001


class _Read:
    """Context manager of one shared acquisition (see :meth:`RWLock.read`)."""

    __slots__ = ("_lock", "_shared")

    def __init__(self, lock: RWLock) -> None:
        self._lock = lock
        self._shared = True

    def __enter__(self) -> None:
        self._shared = self._lock._acquire_read()

    def __exit__(self, *exc: object) -> None:
        self._lock._release_read(self._shared)


class RWLock:
    """Readers-writer lock; see the module docstring."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._active: deque[None] = deque()  # one entry per reader inside
        self._gate = False  # closed (True) while a writer holds or awaits the lock
        self._writer: int | None = None
        self._depth = 0
        self._waiting = 0
        self._next_ticket = 0
        self._serving = 0

    # ------------------------------------------------------------------ exclusive side
    def acquire(self) -> None:
        me = threading.get_ident()
        if self._writer == me:  # re-entry: only this thread sets or clears its own ident here
            self._depth += 1
            return
        with self._cond:
            ticket = self._next_ticket
            self._next_ticket += 1
            self._waiting += 1
            self._gate = True  # before looking at the readers: see the module docstring
            while self._writer is not None or ticket != self._serving:
                self._cond.wait()
            while self._active:
                self._cond.wait(_DRAIN_POLL)
            self._waiting -= 1
            self._serving += 1
            self._writer = me
            self._depth = 1

    def try_acquire(self) -> bool:
        """Take the exclusive side if that needs no waiting: no writer holds or awaits it and no
        reader is inside (or this thread already holds it). Returns whether it was taken; never
        blocks beyond the condition's short critical section (an event loop thread can call it)."""
        me = threading.get_ident()
        if self._writer == me:
            self._depth += 1
            return True
        with self._cond:
            if self._writer is not None or self._waiting or self._active:
                return False
            self._gate = True
            if self._active:  # a reader slipped in before the gate closed: leave it be
                self._gate = False
                self._cond.notify_all()
                return False
            self._next_ticket += 1
            self._serving += 1
            self._writer = me
            self._depth = 1
            return True

    def release(self) -> None:
        if self._depth > 1 and self._writer == threading.get_ident():  # leaving a re-entry: no one waits on it
            self._depth -= 1
            return
        with self._cond:
            if self._writer != threading.get_ident():
                raise RuntimeError("release of a write lock this thread does not hold")
            self._depth -= 1
            if self._depth == 0:
                self._writer = None
                if self._waiting == 0:
                    self._gate = False
                self._cond.notify_all()

    def __enter__(self) -> RWLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    # ------------------------------------------------------------------ shared side
    def read(self) -> _Read:
        """Shared access (re-entered as exclusive by a thread that holds the write side)."""
        return _Read(self)

    def _acquire_read(self) -> bool:
        """Enter as a reader (True) or, for the thread holding the write side, re-enter it
        (False)."""
        if self._writer is not None and self._writer == threading.get_ident():
            self._depth += 1
            return False
        active = self._active
        while True:
            if _GIL:
                active.append(None)
                if not self._gate:
                    return True
                active.pop()  # a writer holds or awaits the lock: back out, wake it, wait
            with self._cond:
                if not _GIL and not self._gate:
                    active.append(None)
                    return True
                self._cond.notify_all()
                while self._gate:
                    self._cond.wait()

    def _release_read(self, shared: bool) -> None:
        if not shared:
            self.release()
            return
        self._active.pop()
        if self._gate and not self._active:
            with self._cond:
                self._cond.notify_all()
