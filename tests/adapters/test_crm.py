"""Salesforce and HubSpot adapters against a local receiver that checks request shapes and the
bearer token and injects 429s, 500s, slow responses, dropped connections and per-record
failures: every message is applied exactly once, also when the sender is stopped mid-run and a
new one resumes from the outbox."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import msgspec
import pytest

from decisioner.adapters import (
    Delivery,
    DeliveryConfig,
    HubSpot,
    HubSpotConfig,
    Message,
    Salesforce,
    SalesforceConfig,
    person_values,
    run,
)
from decisioner.adapters.hubspot import event_uuid
from decisioner.errors import ConfigError

from ._receiver import Answer, Receiver

FAST = {"backoff_base_ms": 2.0, "backoff_max_ms": 20.0, "timeout_s": 0.2, "max_attempts": 40, "linger_ms": 2.0,
        "concurrency": 4}
SF_TOKEN = "00Dxx0000001gPL!AR8AQJXg5oj8jXSgxJfA0lBog"
HS_TOKEN = "pat-na1-11111111-2222-3333-4444-555555555555"


def full(msg: str) -> str:
    return "^" + re.escape(msg) + "$"


def sf_config(url: str, **kw: object) -> SalesforceConfig:
    return SalesforceConfig(
        instance_url=url,
        fields={"Contact": {"tier": "Engagement_Tier__c", "segments": "Segments__c",
                            "interests.category": "Top_Category__c"},
                "Lead": {"tier": "Lead_Tier__c"}},
        message_id_field="Decisioner_Message_Id__c", **kw,  # type: ignore[arg-type]
    )


def sf_id(i: int, prefix: str = "003") -> str:
    return f"{prefix}{i:015d}"


# --------------------------------------------------------------------------- Salesforce
def salesforce_apply(seed: int):  # type: ignore[no-untyped-def]
    import random

    rng = random.Random(seed + 1)

    def apply(method: str, path: str, headers: Mapping[str, str], body: bytes) -> tuple[list[tuple[str, bytes]], Answer]:
        assert headers["authorization"] == f"Bearer {SF_TOKEN}", "bad token"
        assert headers["content-type"] == "application/json"
        doc = msgspec.json.decode(body)
        if path.endswith("/composite/sobjects"):
            assert path == "/services/data/v61.0/composite/sobjects", path
            assert doc["allOrNone"] is False and 1 <= len(doc["records"]) <= 200
            records = doc["records"]
            if method == "PATCH":
                ids = [r["id"] for r in records]
                assert len(set(ids)) == len(ids), "one record twice in a request"
                assert all(set(r) - {"attributes", "id", "Decisioner_Message_Id__c"} for r in records)
            else:
                assert method == "POST" and all("id" not in r for r in records)
        else:  # one sObject request
            m = re.fullmatch(r"/services/data/v61\.0/sobjects/(\w+)(?:/(\w+))?", path)
            assert m, path
            rec = {"attributes": {"type": m.group(1)}, **({"id": m.group(2)} if m.group(2) else {}), **doc}
            records = [rec]
        items, saves = [], []
        for r in records:
            assert r["attributes"]["type"] in {"Contact", "Lead", "Decisioner_Event__e", "NBA_Reaction__c"}
            if rng.random() < 0.05:  # a locked row: this record fails alone, retried by the sender
                saves.append({"success": False, "errors": [{"statusCode": "UNABLE_TO_LOCK_ROW", "message": "locked"}]})
                continue
            items.append((r["Decisioner_Message_Id__c"], msgspec.json.encode(r)))
            saves.append({"id": r.get("id", "e00xx0000000001AAA"), "success": True, "errors": []})
        if path.endswith("/composite/sobjects"):
            return items, (200, {"content-type": "application/json"}, msgspec.json.encode(saves))
        if not saves[0]["success"]:
            return items, (503, {}, b"[]")
        return items, ((204, {}, b"") if method == "PATCH" else (201, {}, b'{"id":"e00","success":true,"errors":[]}'))

    return apply


def salesforce_messages(sf: Salesforce, n: int) -> list[Message]:
    out = []
    for i in range(n):
        values = person_values(tier=["bronze", "silver", "gold"][i % 3], segments=["vip", f"s{i % 5}"],
                               interests={"category": ["shoes", "bags"][i % 2]}, attributes={"email": "x@y.z"})
        if i % 4 == 3:
            out.append(sf.event({"Person__c": f"p{i}", "Tier__c": values["tier"]}, message_id=f"sfe_{i}"))
        elif i % 7 == 6:
            out.append(sf.reaction(sf_id(i % 40), decision_id=f"d{i}", action="offer_a", reaction="accepted",
                                   value=1.0, time_ms=1_700_000_000_000 + i))
        else:  # several updates of one record (i % 40): never in one request together
            out.append(sf.update(sf_id(i % 40), values, sobject="Contact" if i % 5 else "Lead", message_id=f"sfu_{i}"))
    return out


@pytest.mark.parametrize("composite", [True, False], ids=["composite", "one-record"])
def test_salesforce_exactly_once_through_faults_and_a_restart(tmp_path: Path, seed: int, composite: bool) -> None:
    n = 600 if composite else 160
    with Receiver(salesforce_apply(seed), seed=seed, fail_rate=0.25) as rx:
        sf = Salesforce(sf_config(rx.url, composite=composite, reaction_target="NBA_Reaction__c", batch_size=50),
                        token=SF_TOKEN)
        msgs = salesforce_messages(sf, n)
        cfg = DeliveryConfig(outbox=str(tmp_path / "outbox"), seed=seed, **FAST)  # type: ignore[arg-type]

        async def first() -> None:  # accept everything, deliver some, stop without acknowledging the rest
            d = Delivery(cfg, routes=sf.routes)
            await d.start()
            for m in msgs:
                await d.put(m)
            while d.stats()["delivered"] < n // 3:
                import asyncio

                await asyncio.sleep(0.002)
            await d.abort()

        async def second() -> dict[str, int]:
            async with Delivery(cfg, routes=sf.routes) as d:
                assert await d.drain(timeout=30)
                return d.stats()

        run(first())
        stats = run(second())
        # the receiver's view of each record: the message minus nothing (what it applied)
        expected = {m.id: m.body for m in msgs}
        rx.check_exactly_once(expected)
    assert 0 < stats["replayed"] < n and stats["delivered"] == stats["replayed"] and stats["dead"] == 0
    assert sum(rx.injected.values()) >= 0.2 * len(rx.requests) * 0.8
    outbox_bytes = (tmp_path / "outbox" / "outbox.log").read_bytes()
    assert SF_TOKEN.encode() not in outbox_bytes


def test_salesforce_request_shapes_and_mapping(tmp_path: Path) -> None:
    sf = Salesforce(sf_config("https://example.my.salesforce.com", api_version="v59.0"), token=lambda: "tok-1")
    m = sf.update(sf_id(1), {"tier": "gold", "segments": ["vip", "eu"], "attributes.email": "x@y.z"}, message_id="u1")
    assert msgspec.json.decode(m.body) == {
        "attributes": {"type": "Contact"}, "id": sf_id(1), "Engagement_Tier__c": "gold", "Segments__c": "vip;eu",
        "Decisioner_Message_Id__c": "u1",
    }  # attributes.email is not mapped: it never leaves
    req = sf.updates.request([m], 0)
    assert (req.method, req.url) == ("PATCH", "https://example.my.salesforce.com/services/data/v59.0/composite/sobjects")
    assert req.headers["authorization"] == "Bearer tok-1"
    r = sf.reaction(sf_id(2), decision_id="dec-1", action="offer_a", reaction="rejected", time_ms=1_700_000_000_123)
    assert r.id == sf.reaction(sf_id(2), decision_id="dec-1", action="offer_a", reaction="rejected").id
    body = msgspec.json.decode(r.body)
    assert body["attributes"] == {"type": "Decisioner_Reaction__e"} and body["Reacted_At__c"] == "2023-11-14T22:13:20.123Z"
    assert body["Reaction__c"] == "rejected" and body["Decision_Id__c"] == "dec-1" and body["Record_Id__c"] == sf_id(2)
    single = Salesforce(sf_config("https://example.my.salesforce.com", composite=False), token="t")
    req = single.updates.request([single.update(sf_id(3), {"tier": "gold"}, sobject="Lead", message_id="u3")], 0)
    assert (req.method, req.url) == ("PATCH", f"https://example.my.salesforce.com/services/data/v61.0/sobjects/Lead/{sf_id(3)}")
    assert msgspec.json.decode(req.content) == {"Lead_Tier__c": "gold", "Decisioner_Message_Id__c": "u3"}
    req = single.inserts.request([single.event({"A__c": 1}, message_id="e1")], 0)
    assert (req.method, req.url) == ("POST", "https://example.my.salesforce.com/services/data/v61.0/sobjects/Decisioner_Event__e")


def test_salesforce_refuses_bad_input_with_clear_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SALESFORCE_ACCESS_TOKEN", raising=False)
    with pytest.raises(ConfigError, match=full(
            "Expected a Salesforce access token in the environment variable `SALESFORCE_ACCESS_TOKEN` or the "
            "configuration, got neither - at `$.salesforce.token`")):
        Salesforce(sf_config("https://x.my.salesforce.com"))
    monkeypatch.setenv("SALESFORCE_ACCESS_TOKEN", "from-env")
    sf = Salesforce(sf_config("https://x.my.salesforce.com"))
    assert sf.token() == "from-env" and "from-env" not in repr(sf)
    with pytest.raises(ConfigError, match=full("Expected a 15 or 18 character Salesforce id, got '003' - at `$.record_id`")):
        sf.update("003", {"tier": "gold"})
    with pytest.raises(ConfigError, match=full(
            "Expected an sObject with a field mapping ['Contact', 'Lead'], got 'Account' - at `$.sobject`")):
        sf.update(sf_id(1), {"tier": "gold"}, sobject="Account")
    with pytest.raises(ConfigError, match=full(
            "Expected at least one of the mapped keys ['interests.category', 'segments', 'tier'], got ['email'] "
            "- at `$.values (Contact)`")):
        sf.update(sf_id(1), {"email": "x"})
    with pytest.raises(ConfigError, match=full(
            "Expected `reaction` in ['accepted', 'rejected', 'outcome'], got 'liked' - at `$.reaction`")):
        sf.reaction(sf_id(1), decision_id="d", action="a", reaction="liked")
    with pytest.raises(ConfigError, match=full(
            "Expected a platform event API name ending in `__e`, got 'Contact' - at `$.event`")):
        sf.event({"A__c": 1}, event="Contact")
    with pytest.raises(ConfigError, match=full("Expected `batch_size` in [1, 200], got 201 - at `$.salesforce.batch_size`")):
        sf_config("https://x", batch_size=201)
    with pytest.raises(ConfigError, match=full("Expected `api_version` like 'v61.0', got '61' - at `$.salesforce.api_version`")):
        sf_config("https://x", api_version="61")


# --------------------------------------------------------------------------- HubSpot
def hubspot_apply(ids_by_uuid: dict[str, str]):  # type: ignore[no-untyped-def]
    def apply(method: str, path: str, headers: Mapping[str, str], body: bytes) -> tuple[list[tuple[str, bytes]], Answer]:
        assert method == "POST" and headers["authorization"] == f"Bearer {HS_TOKEN}"
        doc = msgspec.json.decode(body)
        if path == "/crm/v3/objects/contacts/batch/update":
            inputs = doc["inputs"]
            assert 1 <= len(inputs) <= 100
            assert len({i["id"] for i in inputs}) == len(inputs), "one contact twice in a batch"
            for i in inputs:
                assert i["id"].isdigit() and all(isinstance(v, str) for v in i["properties"].values())
            return ([(i["objectWriteTraceId"], msgspec.json.encode(i)) for i in inputs],
                    (200, {}, b'{"status":"COMPLETE","results":[]}'))
        if path in ("/events/v3/send/batch", "/events/v3/send"):
            inputs = doc["inputs"] if path.endswith("batch") else [doc]
            assert 1 <= len(inputs) <= 500
            for e in inputs:
                assert e["eventName"].startswith("pe123_") and re.fullmatch(r"\d{4}-\d\d-\d\dT.*Z", e["occurredAt"])
            return [(ids_by_uuid[e["uuid"]], msgspec.json.encode(e)) for e in inputs], (204, {}, b"")
        raise AssertionError(f"unexpected path {path}")

    return apply


def test_hubspot_exactly_once_through_faults_and_a_restart(tmp_path: Path, seed: int) -> None:
    n = 800
    hs_cfg = dict(contact_properties={"tier": "engagement_tier", "segments": "segments", "vip": "is_vip"},
                  reaction_event="pe123_nba_reaction", batch_size=40, events_batch_size=60)
    msgs: list[Message] = []
    hs = HubSpot(HubSpotConfig(**hs_cfg), token=HS_TOKEN)  # type: ignore[arg-type]
    for i in range(n):
        if i % 3 == 0:
            msgs.append(hs.event("pe123_page_seen", contact_id=str(500 + i % 50), properties={"slot": i},
                                 occurred_ms=1_700_000_000_000 + i, message_id=f"hse_{i}"))
        elif i % 3 == 1:
            msgs.append(hs.reaction(str(500 + i % 50), decision_id=f"d{i}", action="offer_b", reaction="outcome",
                                    value=12.5, time_ms=1_700_000_000_000))
        else:
            msgs.append(hs.contact_update(str(500 + i % 50), {"tier": "gold", "segments": ["a", "b"], "vip": i % 2 == 0},
                                          message_id=f"hsc_{i}"))
    ids_by_uuid = {event_uuid(m.id): m.id for m in msgs if m.route == "hubspot:events"}
    with Receiver(hubspot_apply(ids_by_uuid), seed=seed, fail_rate=0.25) as rx:
        hs = HubSpot(HubSpotConfig(base_url=rx.url, **hs_cfg), token=HS_TOKEN)  # type: ignore[arg-type]
        cfg = DeliveryConfig(outbox=str(tmp_path / "outbox"), seed=seed, **FAST)  # type: ignore[arg-type]

        async def first() -> None:
            import asyncio

            d = Delivery(cfg, routes=hs.routes)
            await d.start()
            for m in msgs:
                await d.put(m)
            while d.stats()["delivered"] < n // 3:
                await asyncio.sleep(0.002)
            await d.abort()

        async def second() -> dict[str, int]:
            async with Delivery(cfg, routes=hs.routes) as d:
                assert await d.drain(timeout=30)
                return d.stats()

        run(first())
        stats = run(second())
        rx.check_exactly_once({m.id: m.body for m in msgs})
    assert 0 < stats["replayed"] < n and stats["dead"] == 0
    body = msgspec.json.decode(next(m for m in msgs if m.id == "hsc_2").body)
    assert body == {"id": "502", "properties": {"engagement_tier": "gold", "segments": "a;b", "is_vip": "true"},
                    "objectWriteTraceId": "hsc_2"}


def test_hubspot_partial_failures_and_bad_input(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hs = HubSpot(HubSpotConfig(contact_properties={"tier": "engagement_tier"}), token=HS_TOKEN)
    batch = [hs.contact_update(str(i), {"tier": "gold"}, message_id=f"c{i}") for i in (1, 2, 3)]
    multi = msgspec.json.encode({"status": "COMPLETE", "errors": [
        {"category": "OBJECT_NOT_FOUND", "message": "gone", "context": {"ids": ["2"]}},
        {"category": "RATE_LIMITS", "message": "slow down", "context": {"ids": ["3"]}},
    ]})
    kinds = [r.kind for r in hs.contacts.results(batch, 207, {}, multi)]
    assert kinds == ["ok", "dead", "retry"]
    monkeypatch.delenv("HUBSPOT_ACCESS_TOKEN", raising=False)
    with pytest.raises(ConfigError, match=full(
            "Expected a HubSpot private app token in the environment variable `HUBSPOT_ACCESS_TOKEN` or the "
            "configuration, got neither - at `$.hubspot.token`")):
        HubSpot(HubSpotConfig())
    with pytest.raises(ConfigError, match=full("Expected a numeric HubSpot contact id, got 'abc' - at `$.contact_id`")):
        hs.contact_update("abc", {"tier": "gold"})
    with pytest.raises(ConfigError, match=full(
            "Expected exactly one of `contact_id` and `email`, got None and None - at `$`")):
        hs.event("pe123_x")
    with pytest.raises(ConfigError, match=full("Expected `reaction_event` configured, got None - at `$.hubspot.reaction_event`")):
        hs.reaction("1", decision_id="d", action="a", reaction="accepted")
    with pytest.raises(ConfigError, match=full("Expected `batch_size` in [1, 100], got 101 - at `$.hubspot.batch_size`")):
        HubSpotConfig(batch_size=101)
    assert HS_TOKEN not in repr(hs)
