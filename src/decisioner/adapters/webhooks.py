"""Webhooks that follow the Standard Webhooks specification (v1, symmetric signatures).

A message is sent as an HTTP POST of its JSON body with three headers:

* ``webhook-id``: the message id, the same on every retry (receivers deduplicate by it);
* ``webhook-timestamp``: integer Unix seconds of this attempt;
* ``webhook-signature``: ``v1,`` and the base64 HMAC-SHA256 of ``"{id}.{timestamp}.{body}"``
  under the endpoint's secret; several space-separated signatures while a secret is rotated.

Secrets are 24 to 64 random bytes, written ``whsec_`` and their base64 (:func:`generate_secret`).

:class:`WebhookSigner` signs, :class:`WebhookEndpoint` is the delivery route that sends signed
messages, and :class:`WebhookVerifier` is the receiver's side: it rejects missing headers, forged
signatures, timestamps outside a tolerance and message ids it already verified within a window,
each with a :class:`WebhookVerificationError` that says what was expected, what came and where.

Examples
--------
>>> signer = WebhookSigner("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
>>> body = b'{"test": 2432232314}'
>>> signer.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body)
'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE='
>>> verifier = WebhookVerifier("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", clock=lambda: 1614265340.0)
>>> verifier.verify(body, signer.headers("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body))
'msg_p5jXN8AQM9LWM0D4loKWxJek'
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..errors import ConfigError, DecisionerError
from .message import Message, make_message
from .routes import Request, Route, secret_from

__all__ = [
    "WebhookSigner",
    "WebhookVerifier",
    "WebhookEndpoint",
    "WebhookVerificationError",
    "WebhookReplayError",
    "generate_secret",
    "SECRET_PREFIX",
]

SECRET_PREFIX = "whsec_"


class WebhookVerificationError(DecisionerError, ValueError):
    """A webhook request failed verification (missing header, bad timestamp, forged signature)."""


class WebhookReplayError(WebhookVerificationError):
    """A correctly signed message whose id was already verified within the replay window: a
    replay, or the sender's retry of a message already processed (answer it with a 2xx)."""


def generate_secret(n_bytes: int = 32) -> str:
    """A new random endpoint secret, ``whsec_`` and the base64 of ``n_bytes`` random bytes."""
    if not 24 <= n_bytes <= 64:
        raise ConfigError(f"Expected `n_bytes` in [24, 64], got {n_bytes!r} - at `generate_secret.n_bytes`")
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(n_bytes)).decode("ascii")


def _key(secret: str | bytes, where: str) -> bytes:
    """The HMAC key of a secret: raw bytes, or ``whsec_``-prefixed (or bare) base64 text."""
    if isinstance(secret, bytes):
        key = secret
    else:
        text = secret[len(SECRET_PREFIX):] if secret.startswith(SECRET_PREFIX) else secret
        try:
            key = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise ConfigError(
                f"Expected a secret `whsec_` + base64, got text that is not base64 ({len(text)} characters) - at "
                f"`{where}`"
            ) from None
    if len(key) < 16:
        raise ConfigError(f"Expected a secret of at least 16 bytes, got {len(key)} - at `{where}`")
    return key


class WebhookSigner:
    """Signs messages for one endpoint.

    Parameters
    ----------
    secret
        ``whsec_`` + base64 text, or the raw key bytes.
    """

    def __init__(self, secret: str | bytes) -> None:
        self._key = _key(secret, "$.secret")

    def __repr__(self) -> str:
        return "WebhookSigner(secret=***)"

    def sign(self, message_id: str, timestamp: int, body: bytes) -> str:
        """The ``webhook-signature`` value, ``v1,<base64 HMAC-SHA256>``."""
        mac = hmac.new(self._key, f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
        return "v1," + base64.b64encode(mac).decode("ascii")

    def headers(self, message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
        """The three Standard Webhooks headers of one attempt."""
        return {
            "webhook-id": message_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": self.sign(message_id, timestamp, body),
        }


class WebhookVerifier:
    """The receiver's check of a Standard Webhooks request.

    Parameters
    ----------
    secret
        The endpoint's secret, or a sequence of secrets (all accepted while rotating).
    tolerance_s
        The largest difference between ``webhook-timestamp`` and the clock, either way.
    replay_window_s
        How long a verified message id is remembered and refused again; at least
        ``tolerance_s`` (``None``: equal to it), since an older timestamp is refused anyway.
    max_ids
        Ids remembered at most (the oldest are forgotten first).
    clock
        Current Unix time in seconds (tests pass a fixed one).

    Raises
    ------
    ConfigError
        If a secret is malformed or the windows are inconsistent.
    """

    def __init__(
        self,
        secret: str | bytes | Sequence[str | bytes],
        *,
        tolerance_s: int = 300,
        replay_window_s: int | None = None,
        max_ids: int = 1_000_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        many = [secret] if isinstance(secret, str | bytes) else list(secret)
        if not many:
            raise ConfigError("Expected at least one secret, got none - at `$.secret`")
        self._keys = [_key(s, f"$.secret[{i}]") for i, s in enumerate(many)]
        if tolerance_s < 1:
            raise ConfigError(f"Expected `tolerance_s` >= 1, got {tolerance_s!r} - at `$.tolerance_s`")
        window = tolerance_s if replay_window_s is None else replay_window_s
        if window < tolerance_s:
            raise ConfigError(
                f"Expected `replay_window_s` >= `tolerance_s` ({tolerance_s}), got {window!r}: a replay inside the "
                "tolerance would pass - at `$.replay_window_s`"
            )
        self.tolerance_s = tolerance_s
        self.replay_window_s = window
        self.max_ids = max_ids
        self.clock = clock
        self._seen: OrderedDict[str, float] = OrderedDict()  # id -> when verified (clock seconds)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"WebhookVerifier(secrets=*** x{len(self._keys)}, tolerance_s={self.tolerance_s})"

    def verify(self, body: bytes, headers: Mapping[str, str]) -> str:
        """Check one request; remember its id. Returns the message id.

        ``headers`` may use any case (an ``httpx.Headers``, a WSGI/ASGI mapping, a dict).

        Raises
        ------
        WebhookVerificationError
            Missing or malformed headers, a timestamp outside the tolerance, or no signature
            made with the secret (nothing is remembered).
        WebhookReplayError
            A correct signature on an id already verified within the replay window.
        """
        low = {k.lower(): v for k, v in headers.items()}
        for name in ("webhook-id", "webhook-timestamp", "webhook-signature"):
            if not low.get(name):
                raise WebhookVerificationError(f"Expected a `{name}` header, got none - at `$.headers.{name}`")
        mid, ts_text, sig = low["webhook-id"], low["webhook-timestamp"], low["webhook-signature"]
        if len(mid) > 256 or "." in mid or any(c.isspace() for c in mid):
            raise WebhookVerificationError(
                f"Expected a `webhook-id` of at most 256 characters without dots or spaces, got {mid[:60]!r} - at "
                "`$.headers.webhook-id`"
            )
        if not ts_text.isdigit() or len(ts_text) > 12:
            raise WebhookVerificationError(
                f"Expected `webhook-timestamp` as integer Unix seconds, got {ts_text[:30]!r} - at "
                "`$.headers.webhook-timestamp`"
            )
        ts = int(ts_text)
        now = self.clock()
        if abs(now - ts) > self.tolerance_s:
            age = "old" if ts < now else "in the future"
            raise WebhookVerificationError(
                f"Expected `webhook-timestamp` within {self.tolerance_s} s of now ({int(now)}), got {ts} "
                f"({abs(int(now) - ts)} s {age}) - at `$.headers.webhook-timestamp`"
            )
        signed = f"{mid}.{ts}.".encode() + body
        expected = [hmac.new(k, signed, hashlib.sha256).digest() for k in self._keys]
        offered = [s for s in sig.split(" ") if s]
        matched = False
        for entry in offered:
            version, _, b64 = entry.partition(",")
            if version != "v1":
                continue
            try:
                got = base64.b64decode(b64, validate=True)
            except (binascii.Error, ValueError):
                continue
            if any(hmac.compare_digest(got, e) for e in expected):
                matched = True
        if not matched:
            raise WebhookVerificationError(
                f"Expected a `v1` signature of the id, timestamp and body under this endpoint's secret, got "
                f"{len(offered)} signature(s) that do not match (a forged or altered request, or the wrong secret) "
                "- at `$.headers.webhook-signature`"
            )
        with self._lock:
            horizon = now - self.replay_window_s
            while self._seen and next(iter(self._seen.values())) < horizon:
                self._seen.popitem(last=False)
            when = self._seen.get(mid)
            if when is not None:
                raise WebhookReplayError(
                    f"Expected a `webhook-id` not verified in the last {self.replay_window_s} s, got {mid!r} first "
                    f"verified at {int(when)} (a replay, or a retry of a message already processed) "
                    "- at `$.headers.webhook-id`"
                )
            self._seen[mid] = now
            while len(self._seen) > self.max_ids:
                self._seen.popitem(last=False)
        return mid


class WebhookEndpoint(Route):
    """A delivery route that POSTs Standard Webhooks messages to one URL, one per request.

    Parameters
    ----------
    name
        The endpoint's name; the route is ``webhook:<name>``.
    url
        Where messages are POSTed.
    secret
        The signing secret (``whsec_...``); ``None``: from the environment variable ``secret_env``.
    secret_env
        The environment variable that holds the secret when ``secret`` is not given.
    headers
        Extra request headers (e.g. a routing header; never put credentials in payloads).

    Raises
    ------
    ConfigError
        If the URL is not http(s), or no secret is configured.
    """

    max_batch = 1

    def __init__(
        self,
        name: str,
        *,
        url: str,
        secret: str | bytes | None = None,
        secret_env: str = "DECISIONER_WEBHOOK_SECRET",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"Expected an http:// or https:// URL, got {url!r} - at `$.webhooks.{name}.url`")
        self.name = f"webhook:{name}"
        self.url = url
        self.signer = WebhookSigner(secret_from(secret, secret_env, what="a webhook secret",
                                                where=f"$.webhooks.{name}.secret"))
        self.extra_headers = dict(headers or {})

    def __repr__(self) -> str:
        return f"WebhookEndpoint({self.name!r}, url={self.url!r})"

    def message(self, payload: Any, *, message_id: str | None = None, created_ms: int | None = None) -> Message:
        """A message of this endpoint: ``payload`` JSON-encoded once, ``message_id`` (default a
        fresh ``msg_...``) as its ``webhook-id``."""
        return make_message(self.name, payload, message_id=message_id, created_ms=created_ms,
                            where=f"$.webhooks.{self.name}")

    def request(self, batch: Sequence[Message], now_s: int) -> Request:
        (m,) = batch
        headers = {**self.extra_headers, "content-type": "application/json",
                   **self.signer.headers(m.id, now_s, m.body)}
        return Request("POST", self.url, headers, m.body)
