"""Standard Webhooks: signatures (a published vector), the verifier's refusals, and delivery of
signed messages to a local receiver through injected failures and a killed sender."""

from __future__ import annotations

import base64
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Mapping
from pathlib import Path

import msgspec
import pytest

import decisioner
from decisioner.adapters import (
    Delivery,
    DeliveryConfig,
    WebhookEndpoint,
    WebhookReplayError,
    WebhookSigner,
    WebhookVerificationError,
    WebhookVerifier,
    generate_secret,
    run,
)
from decisioner.errors import ConfigError

from ._receiver import Answer, Receiver

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
# the example of the Standard Webhooks reference libraries (svix): id, timestamp, body, signature
VECTOR = ("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}',
          "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
FAST = {"backoff_base_ms": 2.0, "backoff_max_ms": 20.0, "timeout_s": 0.2, "max_attempts": 40, "linger_ms": 1.0,
        "concurrency": 8}


def full(msg: str) -> str:
    return "^" + re.escape(msg) + "$"


# --------------------------------------------------------------------------- signing
def test_signature_matches_the_published_vector() -> None:
    mid, ts, body, sig = VECTOR
    assert WebhookSigner(SECRET).sign(mid, ts, body) == sig
    raw = base64.b64decode(SECRET.removeprefix("whsec_"))
    assert WebhookSigner(raw).sign(mid, ts, body) == sig  # raw key bytes give the same
    assert WebhookSigner(SECRET.removeprefix("whsec_")).sign(mid, ts, body) == sig  # bare base64 too


def test_generated_secrets_are_whsec_base64_and_sign() -> None:
    s = generate_secret()
    assert s.startswith("whsec_") and len(base64.b64decode(s[6:])) == 32
    assert generate_secret() != s
    headers = WebhookSigner(s).headers("msg_1", 100, b"{}")
    assert WebhookVerifier(s, clock=lambda: 100.0).verify(b"{}", headers) == "msg_1"
    with pytest.raises(ConfigError, match=full("Expected `n_bytes` in [24, 64], got 8 - at `generate_secret.n_bytes`")):
        generate_secret(8)


def test_bad_secrets_are_refused() -> None:
    with pytest.raises(ConfigError, match=full(
            "Expected a secret `whsec_` + base64, got text that is not base64 (8 characters) - at `$.secret`")):
        WebhookSigner("whsec_not*base")
    with pytest.raises(ConfigError, match=full("Expected a secret of at least 16 bytes, got 3 - at `$.secret`")):
        WebhookSigner(b"abc")
    with pytest.raises(ConfigError, match=full(
            "Expected `replay_window_s` >= `tolerance_s` (300), got 10: a replay inside the tolerance would pass "
            "- at `$.replay_window_s`")):
        WebhookVerifier(SECRET, replay_window_s=10)
    assert "MfKQ" not in repr(WebhookSigner(SECRET)) + repr(WebhookVerifier(SECRET))


# --------------------------------------------------------------------------- verifying
@pytest.fixture
def signed() -> tuple[bytes, dict[str, str]]:
    mid, ts, body, _ = VECTOR
    return body, WebhookSigner(SECRET).headers(mid, ts, body)


def verifier(now: float = VECTOR[1] + 10) -> WebhookVerifier:
    return WebhookVerifier(SECRET, clock=lambda: now)


def test_verify_accepts_any_header_case_and_rotated_secrets(signed: tuple[bytes, dict[str, str]]) -> None:
    body, headers = signed
    assert verifier().verify(body, {k.upper(): v for k, v in headers.items()}) == VECTOR[0]
    other = generate_secret()
    two = {**headers, "webhook-signature": WebhookSigner(other).sign(VECTOR[0], VECTOR[1], body) + " " + VECTOR[3]}
    assert WebhookVerifier(SECRET, clock=lambda: VECTOR[1]).verify(body, two) == VECTOR[0]
    assert WebhookVerifier([other, SECRET], clock=lambda: VECTOR[1]).verify(body, headers) == VECTOR[0]


SIG_ERROR = (
    "Expected a `v1` signature of the id, timestamp and body under this endpoint's secret, got {n} signature(s) that "
    "do not match (a forged or altered request, or the wrong secret) - at `$.headers.webhook-signature`"
)


@pytest.mark.parametrize(("change", "message"), [
    ({"body": b'{"test": 2432232315}'}, SIG_ERROR.format(n=1)),
    ({"webhook-signature": "v1,AAAA" + VECTOR[3][7:]}, SIG_ERROR.format(n=1)),
    ({"webhook-signature": "v1,not base64!"}, SIG_ERROR.format(n=2)),
    ({"webhook-signature": "v2," + VECTOR[3][3:] + " v1a,x"}, SIG_ERROR.format(n=2)),
    ({"webhook-id": "msg_other"}, SIG_ERROR.format(n=1)),
    ({"webhook-timestamp": str(VECTOR[1] + 1)}, SIG_ERROR.format(n=1)),
    ({"secret": generate_secret()}, SIG_ERROR.format(n=1)),
    ({"webhook-signature": ""}, "Expected a `webhook-signature` header, got none - at `$.headers.webhook-signature`"),
    ({"webhook-id": None}, "Expected a `webhook-id` header, got none - at `$.headers.webhook-id`"),
    ({"webhook-timestamp": None}, "Expected a `webhook-timestamp` header, got none - at `$.headers.webhook-timestamp`"),
    ({"webhook-timestamp": "1614265330.5"},
     "Expected `webhook-timestamp` as integer Unix seconds, got '1614265330.5' - at `$.headers.webhook-timestamp`"),
    ({"webhook-id": "msg.1"},
     "Expected a `webhook-id` of at most 256 characters without dots or spaces, got 'msg.1' - at `$.headers.webhook-id`"),
    ({"now": VECTOR[1] + 301},
     "Expected `webhook-timestamp` within 300 s of now (1614265631), got 1614265330 (301 s old) "
     "- at `$.headers.webhook-timestamp`"),
    ({"now": VECTOR[1] - 400},
     "Expected `webhook-timestamp` within 300 s of now (1614264930), got 1614265330 (400 s in the future) "
     "- at `$.headers.webhook-timestamp`"),
])
def test_forged_altered_or_stale_requests_are_refused_and_remember_nothing(
    signed: tuple[bytes, dict[str, str]], change: dict[str, object], message: str
) -> None:
    body, headers = signed
    headers = dict(headers)
    body = change.pop("body", body)  # type: ignore[assignment]
    now = change.pop("now", VECTOR[1] + 10)
    secret = change.pop("secret", SECRET)
    for k, v in change.items():
        if v is None:
            headers.pop(k)
        else:
            headers[k] = v  # type: ignore[assignment]
    v = WebhookVerifier(secret, clock=lambda: now)  # type: ignore[arg-type]
    with pytest.raises(WebhookVerificationError, match=full(message)):
        v.verify(body, headers)
    # a refused request changes nothing: the genuine one still verifies once
    if secret == SECRET and abs(now - VECTOR[1]) <= 300:  # type: ignore[operator]
        assert v.verify(*signed) == VECTOR[0]


def test_replays_within_the_window_are_refused(signed: tuple[bytes, dict[str, str]]) -> None:
    body, headers = signed
    now = [VECTOR[1] + 10.0]
    v = WebhookVerifier(SECRET, clock=lambda: now[0])
    assert v.verify(body, headers) == VECTOR[0]
    replay = ("Expected a `webhook-id` not verified in the last 300 s, got 'msg_p5jXN8AQM9LWM0D4loKWxJek' first "
              "verified at 1614265340 (a replay, or a retry of a message already processed) - at `$.headers.webhook-id`")
    with pytest.raises(WebhookReplayError, match=full(replay)):
        v.verify(body, headers)
    # re-signed with a fresh timestamp (a sender's retry): still the same id, still refused as a replay
    now[0] += 100
    fresh = WebhookSigner(SECRET).headers(VECTOR[0], int(now[0]), body)
    with pytest.raises(WebhookReplayError):
        v.verify(body, fresh)
    # past the window the old timestamp is refused anyway, by the tolerance
    now[0] = VECTOR[1] + 400
    with pytest.raises(WebhookVerificationError, match="within 300 s of now"):
        v.verify(body, headers)


# --------------------------------------------------------------------------- delivery
def webhook_apply(verifier: WebhookVerifier):  # type: ignore[no-untyped-def]
    def apply(method: str, path: str, headers: Mapping[str, str], body: bytes) -> tuple[list[tuple[str, bytes]], Answer]:
        assert (method, path) == ("POST", "/hook"), (method, path)
        assert headers["content-type"] == "application/json"
        assert headers["x-tenant"] == "t1"
        try:
            mid = verifier.verify(body, headers)
        except WebhookReplayError:  # a retry of a message already processed: acknowledge, apply nothing new
            return [(headers["webhook-id"], body)], (200, {}, b"")
        except WebhookVerificationError as e:
            raise AssertionError(str(e)) from None
        return [(mid, body)], (204, {}, b"")

    return apply


def payloads(n: int) -> dict[str, dict[str, object]]:
    return {f"msg_{i:05d}": {"type": "decision", "person": f"p{i % 37}", "slot": i, "score": i / 7} for i in range(n)}


def test_every_message_arrives_exactly_once_through_injected_failures(tmp_path: Path, seed: int) -> None:
    sent = payloads(300)
    v = WebhookVerifier(SECRET)
    with Receiver(webhook_apply(v), seed=seed, fail_rate=0.3) as rx:
        hook = WebhookEndpoint("crm", url=rx.url + "/hook", secret=SECRET, headers={"x-tenant": "t1"})
        cfg = DeliveryConfig(outbox=str(tmp_path / "outbox"), seed=seed, **FAST)  # type: ignore[arg-type]

        async def main() -> dict[str, int]:
            async with Delivery(cfg, routes=[hook]) as d:
                for mid, p in sent.items():
                    assert await d.put(hook.message(p, message_id=mid))
                assert not await d.put(hook.message(sent["msg_00000"], message_id="msg_00000"))  # a duplicate put
                assert await d.drain(timeout=30)
                return d.stats()

        stats = run(main())
        expected = {mid: msgspec.json.encode(p) for mid, p in sent.items()}
        rx.check_exactly_once(expected)
        attempts = len(rx.requests)
    assert stats["delivered"] == 300 and stats["dead"] == 0 and stats["pending"] == 0 and stats["duplicates"] == 1
    assert all(rx.injected[f] > 0 for f in rx.injected), rx.injected  # every kind of fault happened
    assert sum(rx.injected.values()) >= 0.2 * attempts
    assert not (tmp_path / "outbox" / "dead-letter.jsonl").read_bytes()


SENDER = textwrap.dedent("""
    import asyncio, sys
    from decisioner.adapters import Delivery, DeliveryConfig, WebhookEndpoint, run
    url, outbox, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    hook = WebhookEndpoint("crm", url=url, headers={"x-tenant": "t1"})  # the secret from the environment
    cfg = DeliveryConfig(outbox=outbox, backoff_base_ms=2, backoff_max_ms=20, timeout_s=0.2, linger_ms=1,
                         concurrency=2, max_attempts=40, seed=1)

    async def main():
        d = Delivery(cfg, routes=[hook])
        await d.start()
        for i in range(n):
            await d.put(hook.message({"type": "decision", "person": f"p{i % 37}", "slot": i, "score": i / 7},
                                     message_id=f"msg_{i:05d}"))
        print("accepted", flush=True)
        await d.drain()
        print("drained", flush=True)

    run(main())
""")


def test_nothing_is_lost_or_doubled_when_the_sender_is_killed(tmp_path: Path, seed: int) -> None:
    """A sender process accepts 200 messages, is killed (SIGKILL) mid-run; a new sender on the same
    outbox delivers the rest. After deduplication by ``webhook-id`` each arrived exactly once,
    always with the same body, and the killed sender's in-flight ones were replayed."""
    n = 200
    sent = payloads(n)
    outbox = tmp_path / "outbox"
    with Receiver(webhook_apply(WebhookVerifier(SECRET)), seed=seed, fail_rate=0.25, delay_s=0.01) as rx:
        env = {**os.environ, "DECISIONER_WEBHOOK_SECRET": SECRET,
               "PYTHONPATH": str(Path(decisioner.__file__).resolve().parents[1])}
        with subprocess.Popen([sys.executable, "-c", SENDER, rx.url + "/hook", str(outbox), str(n)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True) as proc:
            try:
                assert proc.stdout is not None and proc.stderr is not None
                line = proc.stdout.readline().strip()
                assert line == "accepted", proc.stderr.read()
                deadline = time.monotonic() + 20
                while rx.unique() < n // 3 and time.monotonic() < deadline:
                    time.sleep(0.005)
                os.kill(proc.pid, signal.SIGKILL)
            finally:
                if proc.poll() is None:
                    proc.kill()
                proc.wait(10)
        first = rx.unique()
        assert n // 3 <= first < n, first  # killed mid-run

        hook = WebhookEndpoint("crm", url=rx.url + "/hook", secret=SECRET, headers={"x-tenant": "t1"})
        cfg = DeliveryConfig(outbox=str(outbox), seed=seed, **FAST)  # type: ignore[arg-type]

        async def resume() -> dict[str, int]:
            async with Delivery(cfg, routes=[hook]) as d:
                assert await d.drain(timeout=30)
                # a message the killed sender delivered, put again: recognised, not sent twice
                assert not d.put_nowait(hook.message(sent["msg_00000"], message_id="msg_00000"))
                return d.stats()

        stats = run(resume())
        rx.check_exactly_once({mid: msgspec.json.encode(p) for mid, p in sent.items()})
    assert stats["replayed"] >= n - first and stats["delivered"] == stats["replayed"] and stats["dead"] == 0
