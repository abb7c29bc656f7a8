"""A local HTTP receiver for adapter tests: stdlib ``http.server`` in a thread on 127.0.0.1.

It checks each request with a test-supplied ``apply`` function (request shapes, authentication,
signatures), which returns the ``(message id, item body)`` pairs the request carried, and
injects failures from a seeded RNG:

* ``429`` with ``Retry-After: 0`` and ``500`` (nothing applied);
* a slow response (applied, then answered after the client's timeout);
* a dropped connection, half before and half after applying (no response at all).

``applied`` keeps every application, duplicates included, so a test can check that after
deduplication by id each message arrived exactly once and always with the same body.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

#: (status, headers, body) of a normal answer
Answer = tuple[int, dict[str, str], bytes]
#: request -> (items applied, answer)
Apply = Callable[[str, str, Mapping[str, str], bytes], tuple[list[tuple[str, bytes]], Answer]]

FAULTS = ("429", "500", "slow", "drop_before", "drop_after")


class Receiver:
    """Run ``apply`` on every request; inject faults with probability ``fail_rate``."""

    def __init__(self, apply: Apply, *, seed: int, fail_rate: float = 0.0, slow_s: float = 0.35,
                 faults: tuple[str, ...] = FAULTS, delay_s: float = 0.0) -> None:
        self.apply = apply
        self.fail_rate = fail_rate
        self.slow_s = slow_s
        self.faults = faults
        self.delay_s = delay_s
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.applied: dict[str, list[bytes]] = {}
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        self.injected: dict[str, int] = dict.fromkeys(FAULTS, 0)
        self.errors: list[str] = []
        self.gate = threading.Event()
        self.gate.set()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                receiver.gate.wait()
                n = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(n)
                if len(body) < n:  # the sender went away mid-request (killed): nothing to answer
                    self.close_connection = True
                    return None
                headers = {k.lower(): v for k, v in self.headers.items()}
                with receiver.lock:
                    receiver.requests.append((self.command, self.path, headers, body))
                    roll = receiver.rng.random()
                    fault = receiver.rng.choice(receiver.faults) if roll < receiver.fail_rate else None
                    if fault:
                        receiver.injected[fault] += 1
                if receiver.delay_s:
                    time.sleep(receiver.delay_s)
                if fault == "429":
                    return self._answer(429, {"retry-after": "0"}, b'{"message":"rate limited"}')
                if fault == "500":
                    return self._answer(500, {}, b"server error")
                if fault == "drop_before":
                    self.close_connection = True
                    return None
                try:
                    items, answer = receiver.apply(self.command, self.path, headers, body)
                except AssertionError as e:
                    with receiver.lock:
                        receiver.errors.append(f"{self.command} {self.path}: {e}")
                    return self._answer(400, {}, json.dumps({"error": str(e)}).encode())
                with receiver.lock:
                    for mid, item in items:
                        receiver.applied.setdefault(mid, []).append(item)
                if fault == "drop_after":
                    self.close_connection = True
                    return None
                if fault == "slow":
                    time.sleep(receiver.slow_s)
                return self._answer(*answer)

            def _answer(self, status: int, headers: dict[str, str], body: bytes) -> None:
                try:
                    self.send_response(status)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.send_header("content-length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_POST = do_PATCH = do_PUT = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.gate.set()
        self.server.shutdown()
        self.server.server_close()

    def unique(self) -> int:
        with self.lock:
            return len(self.applied)

    def check_exactly_once(self, expected: Mapping[str, bytes]) -> None:
        """After deduplication by id: every expected message applied, nothing else, and every
        application of an id carried the same body as expected."""
        with self.lock:
            assert not self.errors, self.errors[:5]
            assert set(self.applied) == set(expected), (
                f"missing {sorted(set(expected) - set(self.applied))[:5]}, "
                f"unexpected {sorted(set(self.applied) - set(expected))[:5]}"
            )
            for mid, bodies in self.applied.items():
                assert all(b == expected[mid] for b in bodies), (mid, bodies[:2], expected[mid])
