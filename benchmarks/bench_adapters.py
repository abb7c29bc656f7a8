"""What a decision path pays to hand a message to the adapters, and decide with and without it.

* ``enqueue``: build a webhook message from a small payload and ``put_nowait`` it into a
  :class:`~decisioner.adapters.Delivery` running on its own loop thread (the outbox write is one
  ``write(2)``; the network send happens on the delivery thread, through an in-memory transport
  answering 204 so nothing else is measured), against building the same payload and nothing else.
* ``decide``: ``Engine.decide`` on the populated engine, alone and followed by enqueuing a
  message about the decision (same engine, same requests, same run).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

import workloads
from decisioner.adapters import Delivery, DeliveryConfig, WebhookEndpoint
from decisioner.bench import BenchState

ROUNDS = 5_000
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.fixture(scope="module")
def delivery() -> Iterator[tuple[Delivery, WebhookEndpoint]]:
    hook = WebhookEndpoint("bench", url="http://127.0.0.1:9/hook", secret=SECRET)
    transport = httpx.MockTransport(lambda request: httpx.Response(204))
    with tempfile.TemporaryDirectory() as tmp:
        d = Delivery(DeliveryConfig(outbox=tmp, queue_size=1_000_000, seed=1), routes=[hook], transport=transport)
        d.start_in_thread()
        yield d, hook
        d.close_in_thread(timeout=60)
        assert d.stats()["dead"] == 0


def _payload(i: int) -> dict[str, Any]:
    return {"type": "decision", "decision_id": f"d{i}", "person": f"p{i}", "placement": "home",
            "slots": [{"content": f"item-{i % 1000}", "score": 0.25, "propensity": 0.9}]}


@pytest.mark.benchmark(group="adapters-enqueue")
def test_enqueue_nothing(benchmark: Any) -> None:
    """Baseline: build the payload only."""
    it = iter(range(10**9))
    benchmark.pedantic(lambda: _payload(next(it)), rounds=ROUNDS, iterations=1, warmup_rounds=1)


@pytest.mark.benchmark(group="adapters-enqueue")
def test_enqueue_webhook(benchmark: Any, delivery: tuple[Delivery, WebhookEndpoint]) -> None:
    """Build the payload, make a signed-webhook message (JSON once) and ``put_nowait`` it."""
    d, hook = delivery
    it = iter(range(10**9))

    def enqueue() -> bool:
        return d.put_nowait(hook.message(_payload(next(it))))

    assert benchmark.pedantic(enqueue, rounds=ROUNDS, iterations=1, warmup_rounds=1)


def _decide(benchmark: Any, state: BenchState, sizes: tuple[int, int], after: Callable[[Any], Any] | None) -> None:
    reqs = workloads.events(ROUNDS + 1, 3, profiles=sizes[0], items=sizes[1])
    it = iter(reqs)
    decide = state.engine.decide

    def one(event: Any) -> Any:
        d = decide(event, placement="home")
        if after is not None:
            after(d)
        return d

    benchmark.pedantic(one, setup=lambda: ((next(it),), {}), rounds=ROUNDS, iterations=1, warmup_rounds=1)


@pytest.mark.benchmark(group="adapters-decide")
def test_decide_without_adapters(
    benchmark: Any, state: BenchState, sizes: tuple[int, int], record_latency: Callable[[], None]
) -> None:
    _decide(benchmark, state, sizes, None)
    record_latency()


@pytest.mark.benchmark(group="adapters-decide")
def test_decide_with_a_webhook_per_decision(
    benchmark: Any, state: BenchState, sizes: tuple[int, int], record_latency: Callable[[], None],
    delivery: tuple[Delivery, WebhookEndpoint],
) -> None:
    d, hook = delivery

    def send(dec: Any) -> None:
        d.put_nowait(hook.message({"decision_id": dec.decision_id, "placement": dec.placement,
                                   "slots": [s.content for s in dec.slots]}))

    _decide(benchmark, state, sizes, send)
    record_latency()
