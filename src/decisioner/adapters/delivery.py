"""The shared async delivery core of the outbound adapters.

A :class:`Delivery` takes :class:`~decisioner.adapters.message.Message` objects from the caller
and sends them through their :class:`Route` (a webhook endpoint, Salesforce, HubSpot) on an
asyncio event loop (uvloop when installed):

* **bounded queue with back-pressure**: at most ``queue_size`` messages are accepted and not yet
  acknowledged; ``await put()`` waits for room, :meth:`Delivery.put_nowait` raises
  :class:`QueueFullError`. ``put_nowait`` is safe from any thread (a web backend's worker threads);
* **batches**: each route says how many messages one request carries (Salesforce composite:
  200, HubSpot: 100, a webhook: 1); messages with the same ``key`` (one CRM record) never share a
  request;
* **retries**: on 408/425/429/5xx and on connection errors and timeouts, with exponential
  backoff and full jitter (a seeded RNG), waiting at least what ``Retry-After`` asks for (seconds
  or an HTTP date, capped); other 4xx and what is still failing after ``max_attempts`` go to the
  **dead-letter file** (JSON lines) and are not retried;
* **exactly once**: every message is in the durable :class:`~decisioner.adapters.outbox.Outbox`
  before ``put`` returns, acknowledged there on a 2xx and replayed by the next sender started on
  the same directory, with the same id and body. The sender drops a second put of an id it
  holds or delivered recently; receivers deduplicate retries by the id (``webhook-id``, an
  idempotency field), so each payload is applied exactly once.

Order is not guaranteed across requests (a retried batch can land after a later one); each
payload carries its own time. Credentials come from the environment or the configuration only
(:func:`secret_from`); they are never written to the outbox, the dead-letter file or the logs.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import random
import threading
import time
from collections.abc import Awaitable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from ..errors import ConfigError, DecisionerError, MissingDependencyError, NotReadyError
from .message import Message
from .outbox import Outbox
from .routes import RETRY_STATUSES, Request, Result, Route, retry_after_seconds, secret_from

__all__ = [
    "DeliveryConfig",
    "Delivery",
    "Route",
    "Request",
    "Result",
    "QueueFullError",
    "RETRY_STATUSES",
    "retry_after_seconds",
    "secret_from",
    "new_event_loop",
    "run",
]

T = TypeVar("T")
_log = logging.getLogger("decisioner.adapters")



class QueueFullError(DecisionerError, RuntimeError):
    """:meth:`Delivery.put_nowait` found ``queue_size`` messages waiting: slow down or ``await put()``."""


def _httpx() -> Any:
    try:
        import httpx
    except ImportError:
        raise MissingDependencyError(
            'Expected httpx to send adapter messages, got no `httpx` module - install it with '
            'pip install "decisioner[adapters]"'
        ) from None
    return httpx


def new_event_loop() -> asyncio.AbstractEventLoop:
    """A new event loop: uvloop's when it is installed (``decisioner[async]``), else asyncio's."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop


def run(main: Awaitable[T]) -> T:
    """Run a coroutine to completion on a new event loop from :func:`new_event_loop`."""
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        return runner.run(main)  # type: ignore[arg-type]


# ============================================================================ configuration
class DeliveryConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How a :class:`Delivery` queues, batches, retries and keeps its messages.

    Parameters
    ----------
    outbox
        Directory of the durable outbox (and, by default, the dead-letter file).
    dead_letter
        The dead-letter file (JSON lines); ``None``: ``<outbox>/dead-letter.jsonl``.
    queue_size
        Messages accepted and not yet acknowledged, at most (back-pressure beyond).
    concurrency
        Requests in flight at once.
    linger_ms
        How long the dispatcher waits for a batch to fill when fewer messages than a full batch
        are waiting (0: send at once).
    max_attempts
        Attempts per message before it goes to the dead-letter file.
    backoff_base_ms, backoff_max_ms
        Full jitter: attempt ``n`` waits a uniform draw from ``[0, min(max, base * 2**(n-1))]``.
    retry_after_max_s
        The longest ``Retry-After`` honoured.
    timeout_s
        Connect, read and write timeout of one request.
    fsync
        Force each outbox record to the device (survives a power loss, not only a kill).
    remember_ids
        Delivered ids remembered (across restarts) to drop a second put of the same id.
    seed
        Seed of the jitter RNG (``None``: from the operating system).

    Examples
    --------
    >>> DeliveryConfig(outbox="/tmp/outbox", queue_size=0)
    Traceback (most recent call last):
    ...
    decisioner.errors.ConfigError: Expected `queue_size` >= 1, got 0 - at `$.delivery.queue_size`
    """

    outbox: str
    dead_letter: str | None = None
    queue_size: int = 10_000
    concurrency: int = 4
    linger_ms: float = 5.0
    max_attempts: int = 8
    backoff_base_ms: float = 250.0
    backoff_max_ms: float = 60_000.0
    retry_after_max_s: float = 600.0
    timeout_s: float = 10.0
    fsync: bool = False
    remember_ids: int = 100_000
    seed: int | None = None

    def __post_init__(self) -> None:
        def bad(name: str, expected: str, got: object) -> ConfigError:
            return ConfigError(f"Expected `{name}` {expected}, got {got!r} - at `$.delivery.{name}`")

        if not self.outbox:
            raise bad("outbox", "a directory path", self.outbox)
        for name in ("queue_size", "concurrency", "max_attempts"):
            if getattr(self, name) < 1:
                raise bad(name, ">= 1", getattr(self, name))
        if self.remember_ids < 0:
            raise bad("remember_ids", ">= 0", self.remember_ids)
        for name in ("linger_ms", "backoff_base_ms", "retry_after_max_s"):
            v = getattr(self, name)
            if not v >= 0 or v == float("inf"):
                raise bad(name, "a finite number >= 0", v)
        if not self.backoff_max_ms >= self.backoff_base_ms or self.backoff_max_ms == float("inf"):
            expected = f"finite and >= `backoff_base_ms` ({self.backoff_base_ms})"
            raise bad("backoff_max_ms", expected, self.backoff_max_ms)
        if not self.timeout_s > 0:
            raise bad("timeout_s", "> 0", self.timeout_s)

    @property
    def dead_letter_path(self) -> Path:
        """The dead-letter file."""
        return Path(self.dead_letter) if self.dead_letter else Path(self.outbox) / "dead-letter.jsonl"


# ============================================================================ the core
class Delivery:
    """Queue, batch, send, retry and acknowledge messages of several routes.

    Parameters
    ----------
    config
        Queue, retry and outbox settings.
    routes
        The routes messages may name (each :attr:`Route.name` once).
    transport
        An ``httpx`` async transport to send through (tests; ``None``: the network).

    Examples
    --------
    >>> import tempfile
    >>> from decisioner.adapters import WebhookEndpoint
    >>> hook = WebhookEndpoint("crm", url="http://127.0.0.1:9/hook", secret="whsec_MDEyMzQ1Njc4OWFiY2RlZg==")
    >>> d = Delivery(DeliveryConfig(outbox=tempfile.mkdtemp()), routes=[hook])
    >>> d.put_nowait(hook.message({"x": 1}))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    decisioner.errors.NotReadyError: Expected a started delivery, got one not started - call ...
    """

    def __init__(self, config: DeliveryConfig, *, routes: Sequence[Route], transport: Any = None) -> None:
        names = [r.name for r in routes]
        for i, name in enumerate(names):
            if not name or name in names[:i]:
                raise ConfigError(
                    f"Expected distinct non-empty route names, got {name!r} twice or empty - at `$.routes[{i}]`"
                )
            if routes[i].max_batch < 1:
                raise ConfigError(
                    f"Expected `max_batch` >= 1, got {routes[i].max_batch!r} - at `$.routes[{i}].max_batch`"
                )
        self.config = config
        self.routes: dict[str, Route] = {r.name: r for r in routes}
        self.transport = transport
        self.outbox = Outbox(config.outbox, fsync=config.fsync, remember=config.remember_ids)
        self._rng = random.Random(config.seed)
        self._lock = threading.Lock()
        self._queues: dict[str, collections.deque[Message]] = {name: collections.deque() for name in self.routes}
        self._order = list(self.routes)
        self._rr = 0
        self._started = False
        self._closing = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        self._wake_scheduled = False
        self._ready: asyncio.Event | None = None
        self._space: asyncio.Event | None = None
        self._idle: asyncio.Event | None = None
        self._sem: asyncio.Semaphore | None = None
        self._client: Any = None
        self._dispatcher: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._thread: threading.Thread | None = None
        self._dead_fd: Any = None
        self.stats_: dict[str, int] = dict.fromkeys(
            ("accepted", "duplicates", "replayed", "requests", "retries", "delivered", "dead"), 0
        )

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Open the outbox (replaying what a previous sender left), connect, start sending."""
        if self._started:
            raise NotReadyError("Expected a delivery not started yet, got one already started - at `Delivery.start`")
        httpx = _httpx()
        pending = self.outbox.open()
        unknown = sorted({m.route for m in pending} - set(self.routes))
        if unknown:
            self.outbox.close()
            raise ConfigError(
                f"Expected a route for every message left in the outbox, got messages for {unknown} with routes "
                f"{sorted(self.routes)} - at `$.routes`"
            )
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._ready, self._space, self._idle = asyncio.Event(), asyncio.Event(), asyncio.Event()
        self._sem = asyncio.Semaphore(self.config.concurrency)
        t = self.config.timeout_s
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(t), transport=self.transport,
            limits=httpx.Limits(max_connections=self.config.concurrency,
                                max_keepalive_connections=self.config.concurrency),
        )
        self.config.dead_letter_path.parent.mkdir(parents=True, exist_ok=True)
        self._dead_fd = open(self.config.dead_letter_path, "ab")  # noqa: SIM115 - closed in close()
        with self._lock:
            for m in pending:
                self._queues[m.route].append(m)
            self.stats_["replayed"] += len(pending)
            self._started, self._closing = True, False
        self._ready.set()
        self._dispatcher = asyncio.create_task(self._dispatch(), name="decisioner-delivery")
        if pending:
            _log.info("outbox %s: replaying %d messages a previous sender left", self.config.outbox, len(pending))

    async def drain(self, timeout: float | None = None) -> bool:
        """Wait until nothing is pending (delivered or dead-lettered); False on timeout."""
        self._require_started()
        assert self._idle is not None
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.pending():
            self._idle.clear()
            if not self.pending():
                break
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return False
            try:
                await asyncio.wait_for(self._idle.wait(), left)
            except TimeoutError:
                return False
        return True

    async def close(self, *, drain: bool = True, timeout: float | None = None) -> None:
        """Stop sending (after draining, unless ``drain=False``) and close the outbox; what is
        still pending stays in it for the next sender."""
        if not self._started:
            return
        if drain:
            await self.drain(timeout)
        with self._lock:
            self._closing = True
        tasks = [t for t in (self._dispatcher, *self._tasks) if t is not None]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._client.aclose()
        with self._lock:
            self._started = False
            self.outbox.close()
            self._dead_fd.close()
        for q in self._queues.values():
            q.clear()

    async def abort(self) -> None:
        """Stop at once, as a killed sender would: nothing pending is acknowledged."""
        await self.close(drain=False)

    async def __aenter__(self) -> Delivery:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------------ a loop of its own
    def start_in_thread(self) -> None:
        """Start on an event loop of its own (uvloop when installed) in a daemon thread, for
        synchronous callers: they call the thread-safe :meth:`put_nowait`."""
        started = threading.Event()
        failure: list[BaseException] = []
        loop = new_event_loop()

        def main() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.start())
            except BaseException as e:
                failure.append(e)
                started.set()
                loop.close()
                return
            started.set()
            loop.run_forever()
            loop.close()

        self._thread = threading.Thread(target=main, name="decisioner-delivery", daemon=True)
        self._thread.start()
        started.wait()
        if failure:
            self._thread.join()
            self._thread = None
            raise failure[0]

    def close_in_thread(self, *, drain: bool = True, timeout: float | None = None) -> None:
        """Stop a delivery started with :meth:`start_in_thread` and join its thread."""
        if self._thread is None or self._loop is None:
            return
        loop = self._loop
        asyncio.run_coroutine_threadsafe(self.close(drain=drain, timeout=timeout), loop).result()
        loop.call_soon_threadsafe(loop.stop)
        self._thread.join()
        self._thread = None

    # ------------------------------------------------------------------ putting
    def _require_started(self) -> None:
        if not self._started or self._closing:
            raise NotReadyError(
                "Expected a started delivery, got one not started - call `await delivery.start()` or "
                "`delivery.start_in_thread()` first"
            )

    def put_nowait(self, message: Message) -> bool:
        """Accept ``message`` durably and return at once (safe from any thread).

        Returns
        -------
        bool
            True if accepted; False if a message with this id is already pending (with the
            same body) or was delivered recently: it is not sent again.

        Raises
        ------
        QueueFullError
            If ``queue_size`` messages are pending (nothing changes).
        ConfigError
            If the route is unknown, or the id is pending with a different body.
        NotReadyError
            If the delivery is not started.
        """
        route = self._queues.get(message.route)
        if route is None:
            raise ConfigError(f"Expected one of the routes {sorted(self.routes)}, got {message.route!r} - at `$.route`")
        with self._lock:
            self._require_started()
            ob = self.outbox
            held = ob.pending_.get(message.id)
            if held is not None or message.id in ob.done_:
                if held is not None and (held.body != message.body or held.route != message.route):
                    raise ConfigError(
                        f"Expected the same route and body for a message id already pending, got a different one "
                        f"for {message.id!r} - at `$.id`"
                    )
                self.stats_["duplicates"] += 1
                return False
            if len(ob.pending_) >= self.config.queue_size:
                raise QueueFullError(
                    f"Expected fewer than {self.config.queue_size} pending messages, got {len(ob.pending_)} "
                    "(the receivers are slower than the senders) - `await delivery.put()` waits for room"
                )
            ob.put(message)
            route.append(message)
            self.stats_["accepted"] += 1
            wake = not self._wake_scheduled
            self._wake_scheduled = True
        if wake:
            assert self._loop is not None and self._ready is not None and self._idle is not None
            if threading.get_ident() == self._loop_thread:
                self._ready.set()
            else:
                self._loop.call_soon_threadsafe(self._ready.set)
        return True

    async def put(self, message: Message) -> bool:
        """Accept ``message`` durably, waiting while the queue is full (back-pressure). Call it on
        the delivery's event loop; see :meth:`put_nowait` for the return value and errors."""
        while True:
            assert self._space is not None or not self._started
            if self._space is not None:
                self._space.clear()
            try:
                return self.put_nowait(message)
            except QueueFullError:
                assert self._space is not None
                await self._space.wait()

    def pending(self) -> int:
        """Messages accepted and not yet acknowledged or dead-lettered."""
        return len(self.outbox.pending_)

    def stats(self) -> dict[str, int]:
        """Counters: accepted, duplicates, replayed, requests, retries, delivered, dead, pending."""
        with self._lock:
            return {**self.stats_, "pending": len(self.outbox.pending_)}

    # ------------------------------------------------------------------ sending
    def _take_batch(self) -> tuple[Route, list[Message]] | None:
        """The next batch: the longest waiting route's first messages, no two with one key."""
        with self._lock:
            self._wake_scheduled = False
            names = [n for n in self._order[self._rr:] + self._order[: self._rr] if self._queues[n]]
            if not names:
                return None
            best = names[0]
            self._rr = (self._order.index(best) + 1) % len(self._order)
            q, route = self._queues[best], self.routes[best]
            batch: list[Message] = []
            keys: set[str] = set()
            skipped: list[Message] = []
            scan = 4 * route.max_batch
            while q and len(batch) < route.max_batch and scan > 0:
                m = q.popleft()
                scan -= 1
                if m.key and m.key in keys:
                    skipped.append(m)
                    continue
                keys.add(m.key)
                batch.append(m)
            q.extendleft(reversed(skipped))
            return route, batch

    def _waiting(self) -> int:
        with self._lock:
            return sum(len(q) for q in self._queues.values())

    async def _dispatch(self) -> None:
        assert self._ready is not None and self._sem is not None
        linger = self.config.linger_ms / 1000
        while True:
            if not self._waiting():
                self._ready.clear()
                if not self._waiting():
                    await self._ready.wait()
                continue
            await self._sem.acquire()
            if linger > 0 and self._waiting() < max(r.max_batch for r in self.routes.values()):
                await asyncio.sleep(linger)
            taken = self._take_batch()
            if taken is None:
                self._sem.release()
                continue
            task = asyncio.create_task(self._deliver(*taken, holding=True))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _deliver(self, route: Route, batch: list[Message], *, holding: bool) -> None:
        assert self._sem is not None
        attempt = 1
        while batch:
            if not holding:
                await self._sem.acquire()
            retry_after: float | None = None
            try:
                results, retry_after = await self._attempt(route, batch)
            finally:
                self._sem.release()
                holding = False
            ok = [m for m, r in zip(batch, results) if r.kind == "ok"]
            dead = [(m, r.reason) for m, r in zip(batch, results) if r.kind == "dead"]
            retry = [(m, r.reason) for m, r in zip(batch, results) if r.kind == "retry"]
            if retry and attempt >= self.config.max_attempts:
                dead += [(m, f"{reason} (after {attempt} attempts)") for m, reason in retry]
                retry = []
            self._settle(ok, dead, attempt)
            batch = [m for m, _ in retry]
            if batch:
                with self._lock:
                    self.stats_["retries"] += len(batch)
                await asyncio.sleep(self._delay(attempt, retry_after))
                attempt += 1

    async def _attempt(self, route: Route, batch: list[Message]) -> tuple[list[Result], float | None]:
        httpx = _httpx()
        try:
            req = route.request(batch, int(time.time()))
        except Exception as e:  # a payload the route cannot send: final, never retried
            return [Result("dead", f"request not built: {type(e).__name__}: {e}")] * len(batch), None
        with self._lock:
            self.stats_["requests"] += 1
        try:
            resp = await self._client.request(req.method, req.url, headers=req.headers, content=req.content)
        except httpx.TransportError as e:
            return [Result("retry", f"{type(e).__name__} {str(e)[:200]}".strip())] * len(batch), None
        except Exception as e:  # e.g. an invalid URL: sending again would not help
            return [Result("dead", f"{type(e).__name__} {str(e)[:200]}".strip())] * len(batch), None
        results = route.results(batch, resp.status_code, resp.headers, resp.content)
        if len(results) != len(batch):
            wrong = Result("retry", f"route {route.name!r} reported {len(results)} results for {len(batch)}")
            results = [wrong] * len(batch)
        after = None
        if any(r.kind == "retry" for r in results):
            after = retry_after_seconds(resp.headers.get("retry-after"))
        return results, after

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        c = self.config
        cap = min(c.backoff_max_ms, c.backoff_base_ms * 2.0 ** (attempt - 1)) / 1000
        jitter = self._rng.uniform(0.0, cap)
        if retry_after is not None:
            return max(min(retry_after, c.retry_after_max_s), jitter)
        return jitter

    def _settle(self, ok: list[Message], dead: list[tuple[Message, str]], attempts: int) -> None:
        if dead:
            now = int(time.time() * 1000)
            lines = []
            for m, reason in dead:
                try:
                    body: Any = msgspec.json.decode(m.body)
                except msgspec.DecodeError:
                    body = m.body.decode("utf-8", "replace")
                lines.append(msgspec.json.encode({
                    "id": m.id, "route": m.route, "key": m.key, "created_ms": m.created_ms, "failed_ms": now,
                    "attempts": attempts, "reason": reason, "body": body,
                }) + b"\n")
                _log.warning("message %s on route %s dead-lettered: %s", m.id, m.route, reason)
            self._dead_fd.write(b"".join(lines))
            self._dead_fd.flush()
            if self.config.fsync:
                os.fsync(self._dead_fd.fileno())
        with self._lock:
            if ok:
                self.outbox.ack([m.id for m in ok])
            if dead:
                self.outbox.ack([m.id for m, _ in dead], dead=True)
            self.stats_["delivered"] += len(ok)
            self.stats_["dead"] += len(dead)
            empty = not self.outbox.pending_
        assert self._space is not None and self._idle is not None
        self._space.set()
        if empty:
            self._idle.set()

