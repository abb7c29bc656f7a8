"""asyncio API: :class:`AsyncEngine` awaits decisions without blocking the event loop.

Every call (decoding, identity, scoring, allocation, logging) runs in a worker thread; the
event loop thread only schedules it and resumes when it is done, so the loop is never blocked
by engine work, not even for one kernel call. The numba kernels release the GIL, so the
workers' kernel time overlaps the loop's own work. Works with the default loop and with
uvloop (``pip install "decisioner[async]"``).
"""

from __future__ import annotations

import asyncio
import functools
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

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
        Worker threads (reads run in parallel; state changes serialise on the engine's lock).

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

    def __init__(self, engine: Engine, *, max_workers: int = 4) -> None:
        self.engine = engine
        self.max_workers = max_workers
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="decisioner")

    async def _run(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, functools.partial(fn, *args, **kwargs))

    async def decide(self, event: Any, *, placement: str) -> Decision:
        """Awaitable :meth:`Engine.decide`."""
        d: Decision = await self._run(self.engine.decide, event, placement=placement)
        return d

    async def track(self, event: Any) -> int:
        """Awaitable :meth:`Engine.track`."""
        row: int = await self._run(self.engine.track, event)
        return row

    async def observe(self, outcome: Any) -> None:
        """Awaitable :meth:`Engine.observe`."""
        await self._run(self.engine.observe, outcome)

    async def recommend(self, ids: dict[str, str], *, placement: str, now: int) -> Decision:
        """Awaitable :meth:`Engine.recommend` (read-only; runs in parallel with other reads)."""
        d: Decision = await self._run(self.engine.recommend, ids, placement=placement, now=now)
        return d

    def close(self) -> None:
        """Wait for running calls and stop the worker threads."""
        self._pool.shutdown(wait=True)

    async def __aenter__(self) -> AsyncEngine:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()
