"""Outbound adapters (optional extra ``decisioner[adapters]``; nothing in the core imports them).

* :mod:`~decisioner.adapters.delivery`: the async delivery core (bounded queue with
  back-pressure, batches, retries with backoff and jitter honouring ``Retry-After``, a durable
  outbox for exactly-once delivery across restarts, a dead-letter file);
* :mod:`~decisioner.adapters.webhooks`: Standard Webhooks signer, verifier and endpoint;
* :mod:`~decisioner.adapters.salesforce`: Contact/Lead field updates, platform events, reactions;
* :mod:`~decisioner.adapters.hubspot`: contact property batch updates, custom events;
* :mod:`~decisioner.adapters.web` (Starlette, extra ``mcp``): JSON responses for results, decisioner
  errors as HTTP statuses; not imported here;
* :mod:`~decisioner.adapters.mcp_server` (the ``mcp`` SDK, extra ``mcp``): agent tools over MCP;
  not imported here.

Importing this package needs only msgspec; ``httpx`` is imported when a delivery starts.
"""

from __future__ import annotations

from ._mapping import REACTIONS, person_values
from .delivery import (
    Delivery,
    DeliveryConfig,
    QueueFullError,
    Request,
    Result,
    Route,
    new_event_loop,
    run,
)
from .hubspot import HubSpot, HubSpotConfig
from .message import Message, make_message, new_message_id
from .outbox import Outbox
from .salesforce import Salesforce, SalesforceConfig
from .webhooks import (
    WebhookEndpoint,
    WebhookReplayError,
    WebhookSigner,
    WebhookVerificationError,
    WebhookVerifier,
    generate_secret,
)

__all__ = [
    "Delivery",
    "DeliveryConfig",
    "QueueFullError",
    "Route",
    "Request",
    "Result",
    "Message",
    "make_message",
    "new_message_id",
    "Outbox",
    "new_event_loop",
    "run",
    "WebhookEndpoint",
    "WebhookSigner",
    "WebhookVerifier",
    "WebhookVerificationError",
    "WebhookReplayError",
    "generate_secret",
    "Salesforce",
    "SalesforceConfig",
    "HubSpot",
    "HubSpotConfig",
    "person_values",
    "REACTIONS",
]
