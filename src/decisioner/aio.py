"""asyncio API: :class:`AsyncEngine` awaits decisions without stalling the event loop.

A decision on a warm engine takes about a hundred microseconds; handing it to a worker thread
costs about as much again (a future, a thread wake-up, a call back into the loop).
``benchmarks/bench_async.py`` measured per awaited decide at 1M profiles x 10,000 items (2-core
VM shared with other jobs; best batch of 200): ``engine.decide`` called straight from a coroutine
92 us (asyncio) / 98 us (uvloop), through this class inline 107 / 116 us, handed off 190 / 183 us.
So each call runs **inline on the event loop thread when the engine's writer lock is free**
(taken without waiting, :meth:`~decisioner._rwlock.RWLock.try_acquire`), and is **handed off to
a worker thread otherwise**: the loop never waits on the lock, and it is held by engine work for
at most one call before other tasks run (every inline call yields to the loop once when done).
Calls that can take long (privacy operations, snapshots) are not on this class: run them with
``loop.run_in_executor``. ``inline=False`` hands every call off (the loop then only schedules).
The numba kernels release the GIL, so handed-off kernel time overlaps the loop's own work.
Works with the default loop and with uvloop (``pip install "decisioner[async]"``).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from .agents import AgentContext
from .engine import Engine
from .schemas import Decision

__all__ = ["AsyncEngine"]

T = TypeVar("T")


class AsyncEngine:
    """Awaitable facade over an :class:`~decisioner.engine.Engine`.

    Parameters
    ----------
    engine
        The engine; it may be used synchronously from other threads at the same time.
    max_workers
        Worker threads for calls handed off (reads run in parallel; state changes serialise on
        the engine's lock).
    inline
        Run a call on the event loop thread when the engine's lock is free (the default: cheaper
        than a hand-off for sub-millisecond calls); ``False`` hands every call to a worker.

    Examples
    --------
    >>> import asyncio
    >>> from decisioner import Catalog, load_config_dict
    >>> cfg = load_config_dict({"identity": {"hash_key": "cd" * 16},
    ...     "placements": [{"name": "home", "kind": "recommendation", "slots": 1}]})
    >>> aeng = AsyncEngine(Engine(cfg, Catalog([{"id": "a", "category": "x"}])))
    >>> d = asyncio.run(aeng.decide({"type": "view", "time": 1_700_000_000_000,
    ...                              "ids": {"cookie": "k"}}, placement="home"))
    >>> d.slots[0].content
    'a'
    >>> aeng.close()
    """

    def __init__(self, engine: Engine, *, max_workers: int = 4, inline: bool = True) -> None:
        self.engine = engine
        self.max_workers = max_workers
        self.inline = inline
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="decisioner")
        #: calls run on the loop thread and calls handed to a worker (for tests and metrics)
        self.inline_calls_ = 0
        self.handed_off_ = 0

    async def _run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        lock = self.engine.journal.lock
        if self.inline and lock.try_acquire():
            try:
                self.inline_calls_ += 1
                try:
                    return fn(*args, **kwargs)  # re-enters the lock this thread holds
                finally:
                    lock.release()
            finally:
                # let the loop run its other tasks between two inline calls of one client
                await asyncio.sleep(0)
        self.handed_off_ += 1
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, functools.partial(fn, *args, **kwargs))

    async def decide(self, event: Any, *, placement: str) -> Decision:
        """Awaitable :meth:`Engine.decide`."""
        return await self._run(self.engine.decide, event, placement=placement)

    async def track(self, event: Any) -> int:
        """Awaitable :meth:`Engine.track`."""
        return await self._run(self.engine.track, event)

    async def observe(self, outcome: Any) -> None:
        """Awaitable :meth:`Engine.observe`."""
        await self._run(self.engine.observe, outcome)

    async def recommend(self, ids: dict[str, str], *, placement: str, now: int) -> Decision:
        """Awaitable :meth:`Engine.recommend` (read-only; handed-off reads run in parallel)."""
        return await self._run(self.engine.recommend, ids, placement=placement, now=now)

    async def agent_context(
        self, ids: dict[str, str], *, now: int, channel: str = "phone", placement: str | None = None, top: int = 10
    ) -> AgentContext:
        """Awaitable :meth:`Engine.agent_context` (with ``placement``, a decision like any other)."""
        return await self._run(self.engine.agent_context, ids, now=now, channel=channel, placement=placement, top=top)

    async def feedback(
        self, decision_id: str, *, ids: dict[str, str], content: str, reaction: str, time: int,
        value: float | None = None, channel: str = "phone",
    ) -> dict[str, Any]:
        """Awaitable :meth:`Engine.feedback`."""
        return await self._run(self.engine.feedback, decision_id, ids=ids, content=content, reaction=reaction,
                               time=time, value=value, channel=channel)

    async def explain(self, decision_id: str) -> dict[str, Any]:
        """Awaitable :meth:`Engine.explain`."""
        return await self._run(self.engine.explain, decision_id)

    def close(self) -> None:
        """Wait for running calls and stop the worker threads."""
        self._pool.shutdown(wait=True)

    async def __aenter__(self) -> AsyncEngine:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()
