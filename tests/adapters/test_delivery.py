"""The delivery core: back-pressure, Retry-After, dead letters, duplicate ids, the outbox (torn
tail, one sender per directory), a loop of its own for threaded callers, and its errors."""

from __future__ import annotations

import asyncio
import re
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path

import msgspec
import pytest

from decisioner.adapters import (
    Delivery,
    DeliveryConfig,
    Outbox,
    QueueFullError,
    WebhookEndpoint,
    make_message,
    run,
)
from decisioner.adapters.routes import retry_after_seconds
from decisioner.errors import ConfigError, LogLockedError, MissingDependencyError, NotReadyError

from ._receiver import Answer, Receiver

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
FAST = {"backoff_base_ms": 2.0, "backoff_max_ms": 20.0, "timeout_s": 1.0, "linger_ms": 0.0}


def full(msg: str) -> str:
    return "^" + re.escape(msg) + "$"


def plain(status_for: dict[str, int] | None = None):  # type: ignore[no-untyped-def]
    """A receiver that applies every webhook and answers ``status_for[id]`` (default 204)."""
    def apply(method: str, path: str, headers: Mapping[str, str], body: bytes) -> tuple[list[tuple[str, bytes]], Answer]:
        mid = headers["webhook-id"]
        status = (status_for or {}).get(mid, 204)
        return ([(mid, body)] if status < 300 else []), (status, {}, b'{"error":"no"}' if status >= 300 else b"")
    return apply


def test_back_pressure_put_nowait_raises_and_put_waits(tmp_path: Path, seed: int) -> None:
    with Receiver(plain(), seed=seed) as rx:
        rx.gate.clear()  # the receiver stalls: nothing is acknowledged
        hook = WebhookEndpoint("h", url=rx.url + "/h", secret=SECRET)
        cfg = DeliveryConfig(outbox=str(tmp_path / "o"), queue_size=3, seed=seed, **FAST)  # type: ignore[arg-type]

        async def main() -> None:
            async with Delivery(cfg, routes=[hook]) as d:
                for i in range(3):
                    assert d.put_nowait(hook.message({"i": i}, message_id=f"m{i}"))
                with pytest.raises(QueueFullError, match=full(
                        "Expected fewer than 3 pending messages, got 3 (the receivers are slower than the senders) "
                        "- `await delivery.put()` waits for room")):
                    d.put_nowait(hook.message({"i": 3}, message_id="m3"))
                assert d.pending() == 3  # the refused put changed nothing
                waiter = asyncio.create_task(d.put(hook.message({"i": 3}, message_id="m3")))
                await asyncio.sleep(0.1)
                assert not waiter.done()  # waits for room
                rx.gate.set()
                assert await asyncio.wait_for(waiter, 5)
                assert await d.drain(5)

        run(main())
        assert sorted(rx.applied) == ["m0", "m1", "m2", "m3"]


def test_retry_after_is_honoured(tmp_path: Path, seed: int) -> None:
    times: list[float] = []

    def apply(method: str, path: str, headers: Mapping[str, str], body: bytes) -> tuple[list[tuple[str, bytes]], Answer]:
        times.append(time.monotonic())
        if len(times) == 1:
            return [], (429, {"retry-after": "1"}, b"")
        return [(headers["webhook-id"], body)], (204, {}, b"")

    with Receiver(apply, seed=seed) as rx:
        hook = WebhookEndpoint("h", url=rx.url + "/h", secret=SECRET)
        cfg = DeliveryConfig(outbox=str(tmp_path / "o"), seed=seed, **FAST)  # type: ignore[arg-type]

        async def main() -> None:
            async with Delivery(cfg, routes=[hook]) as d:
                await d.put(hook.message({"x": 1}, message_id="m1"))
                assert await d.drain(5)

        run(main())
    assert len(times) == 2 and times[1] - times[0] >= 0.95
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None


def test_final_failures_go_to_the_dead_letter_file(tmp_path: Path, seed: int) -> None:
    with Receiver(plain({"bad": 400, "down": 503}), seed=seed) as rx:
        hook = WebhookEndpoint("h", url=rx.url + "/h", secret=SECRET)
        cfg = DeliveryConfig(outbox=str(tmp_path / "o"), max_attempts=3, seed=seed, **FAST)  # type: ignore[arg-type]

        async def main() -> dict[str, int]:
            async with Delivery(cfg, routes=[hook]) as d:
                for mid in ("ok", "bad", "down"):
                    await d.put(hook.message({"id": mid}, message_id=mid, created_ms=5))
                assert await d.drain(5)
                return d.stats()

        stats = run(main())
        assert stats["delivered"] == 1 and stats["dead"] == 2 and stats["pending"] == 0
        down = [r for r in rx.requests if r[2]["webhook-id"] == "down"]
        assert len(down) == 3  # max_attempts, then no more
    lines = [msgspec.json.decode(x) for x in (tmp_path / "o" / "dead-letter.jsonl").read_bytes().splitlines()]
    by_id = {x["id"]: x for x in lines}
    assert by_id["bad"]["reason"] == 'HTTP 400: {"error":"no"}' and by_id["bad"]["attempts"] == 1
    assert by_id["down"]["reason"] == 'HTTP 503: {"error":"no"} (after 3 attempts)' and by_id["down"]["attempts"] == 3
    assert by_id["bad"]["body"] == {"id": "bad"} and by_id["bad"]["route"] == "webhook:h"
    assert by_id["bad"]["created_ms"] == 5
    assert b"whsec" not in (tmp_path / "o" / "dead-letter.jsonl").read_bytes()


def test_duplicate_ids_and_unknown_routes(tmp_path: Path, seed: int) -> None:
    with Receiver(plain(), seed=seed) as rx:
        rx.gate.clear()
        hook = WebhookEndpoint("h", url=rx.url + "/h", secret=SECRET)
        cfg = DeliveryConfig(outbox=str(tmp_path / "o"), seed=seed, **FAST)  # type: ignore[arg-type]

        async def main() -> None:
            async with Delivery(cfg, routes=[hook]) as d:
                assert d.put_nowait(hook.message({"a": 1}, message_id="m1"))
                assert not d.put_nowait(hook.message({"a": 1}, message_id="m1"))
                with pytest.raises(ConfigError, match=full(
                        "Expected the same route and body for a message id already pending, got a different one "
                        "for 'm1' - at `$.id`")):
                    d.put_nowait(hook.message({"a": 2}, message_id="m1"))
                with pytest.raises(ConfigError, match=full(
                        "Expected one of the routes ['webhook:h'], got 'elsewhere' - at `$.route`")):
                    d.put_nowait(make_message("elsewhere", {}, message_id="m2"))
                rx.gate.set()
                assert await d.drain(5)
                assert not d.put_nowait(hook.message({"a": 1}, message_id="m1"))  # delivered already
                assert d.stats()["duplicates"] == 2

        run(main())
        assert list(rx.applied) == ["m1"] and len(rx.applied["m1"]) == 1


def test_outbox_cuts_a_torn_tail_and_keeps_one_sender(tmp_path: Path) -> None:
    ob = Outbox(tmp_path)
    assert ob.open() == []
    msgs = [make_message("r", {"i": i}, message_id=f"m{i}", created_ms=i) for i in range(4)]
    for m in msgs:
        ob.put(m)
    ob.ack(["m1"])
    ob.ack(["m2"], dead=True)
    with pytest.raises(LogLockedError, match="Expected no other sender on the outbox"):
        Outbox(tmp_path).open()
    ob.close()
    with open(tmp_path / "outbox.log", "ab") as f:
        f.write(b"\x30\x00\x00\x00garbage")  # a record torn by a crash
    again = Outbox(tmp_path)
    assert again.open() == [msgs[0], msgs[3]]
    assert set(again.done_) == {"m1", "m2"}
    again.close()
    assert Outbox(tmp_path).open() == [msgs[0], msgs[3]]  # compacted, still the same


def test_threaded_callers_with_a_loop_of_its_own(tmp_path: Path, seed: int) -> None:
    with Receiver(plain(), seed=seed, fail_rate=0.2, faults=("429", "500")) as rx:
        hook = WebhookEndpoint("h", url=rx.url + "/h", secret=SECRET)
        d = Delivery(DeliveryConfig(outbox=str(tmp_path / "o"), seed=seed, **FAST), routes=[hook])  # type: ignore[arg-type]
        with pytest.raises(NotReadyError, match=full(
                "Expected a started delivery, got one not started - call `await delivery.start()` or "
                "`delivery.start_in_thread()` first")):
            d.put_nowait(hook.message({}))
        d.start_in_thread()

        def worker(k: int) -> None:
            for i in range(50):
                d.put_nowait(hook.message({"k": k, "i": i}, message_id=f"t{k}_{i}"))

        threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        d.close_in_thread(timeout=10)
        assert d.stats()["delivered"] == 200
        assert len(rx.applied) == 200


def test_config_errors_and_a_missing_httpx(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for kw, msg in [
        ({"concurrency": 0}, "Expected `concurrency` >= 1, got 0 - at `$.delivery.concurrency`"),
        ({"linger_ms": -1.0}, "Expected `linger_ms` a finite number >= 0, got -1.0 - at `$.delivery.linger_ms`"),
        ({"backoff_max_ms": 1.0}, "Expected `backoff_max_ms` finite and >= `backoff_base_ms` (250.0), got 1.0 "
                                  "- at `$.delivery.backoff_max_ms`"),
        ({"timeout_s": 0.0}, "Expected `timeout_s` > 0, got 0.0 - at `$.delivery.timeout_s`"),
    ]:
        with pytest.raises(ConfigError, match=full(msg)):
            DeliveryConfig(outbox=str(tmp_path), **kw)  # type: ignore[arg-type]
    hook = WebhookEndpoint("h", url="http://127.0.0.1:9/h", secret=SECRET)
    with pytest.raises(ConfigError, match=full(
            "Expected distinct non-empty route names, got 'webhook:h' twice or empty - at `$.routes[1]`")):
        Delivery(DeliveryConfig(outbox=str(tmp_path)), routes=[hook, hook])
    with pytest.raises(ConfigError, match=full("Expected an http:// or https:// URL, got 'ftp://x' - at `$.webhooks.h.url`")):
        WebhookEndpoint("h", url="ftp://x", secret=SECRET)
    with pytest.raises(ConfigError, match=full(
            "Expected `message_id` of 1 to 200 characters from A-Z a-z 0-9 _ - :, got 'a.b' "
            "- at `$.webhooks.webhook:h.message_id`")):
        hook.message({}, message_id="a.b")
    with pytest.raises(ConfigError, match=r"^Expected a JSON-encodable payload, got a dict that is not \(.+\) - at `\$\.payload`$"):
        make_message("r", {"x": object()})
    monkeypatch.setitem(sys.modules, "httpx", None)
    d = Delivery(DeliveryConfig(outbox=str(tmp_path / "o")), routes=[hook])
    with pytest.raises(MissingDependencyError, match=full(
            'Expected httpx to send adapter messages, got no `httpx` module - install it with '
            'pip install "decisioner[adapters]"')):
        run(d.start())
    assert not (tmp_path / "o").exists()  # nothing moved
