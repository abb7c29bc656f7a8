"""Pseudonyms and phone numbers: what one identifier costs at the edge (issue 11).

Each body processes a batch of :data:`BATCH` distinct values (or events), so the cost per
identifier is the batch median divided by :data:`BATCH` (stored in ``extra_info`` as
``per_item_ns``). Groups:

* ``pseudonym-hash``: the key and check tag of one normalised identifier, keyed BLAKE2b-128
  (:func:`decisioner.hashing.identifier_key`, the persisted format since snapshot format 4),
  against the xxh3 pair it replaced (``xxh3_64(secret || data)`` and the same with the tag
  seed, reproduced here) and against BLAKE2b re-keyed on every call (what caching the keyed
  state saves);
* ``pseudonym-keys-of``: ``IdentityKeys.keys_of`` of a typical 3-identifier event (cookie,
  email with case noise, user id): normalise, check the blocked values, hash;
* ``phone``: :func:`decisioner.identity.normalise.normalise_phone` of national US spellings,
  international numbers and Italian national numbers (libphonenumber's parse, validity check
  and E.164 formatting), and ``keys_of`` of an event holding a phone number.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Any, Final

import numpy as np
import pytest
import xxhash

from decisioner.config import IdentitySpec
from decisioner.hashing import SEPARATOR, identifier_key
from decisioner.identity import IdentityGraph
from decisioner.identity.normalise import normalise_phone

#: values (or events) per benchmark round
BATCH: Final = 1_000
#: seed of the old check-tag hash (format 3), for the comparison only
OLD_TAG_SEED: Final = 0x9E3779B97F4A7C15
SECRET: Final = secrets.token_bytes(32)
AREAS: Final = (201, 202, 212, 305, 312, 415, 617, 713, 801, 919)


def _emails() -> list[str]:
    return [f"person.{i}@example.com" for i in range(BATCH)]


def _per_item(benchmark: Any) -> None:
    stats = getattr(benchmark, "stats", None)
    if not benchmark.disabled and stats:
        benchmark.extra_info["per_item_ns"] = stats.stats.median / BATCH * 1e9


# ---------------------------------------------------------------- one identifier: key and tag


@pytest.mark.benchmark(group="pseudonym-hash")
def test_identifier_key_blake2b(benchmark: Any) -> None:
    values = _emails()

    def run() -> list[tuple[int, int]]:
        return [identifier_key(SECRET, "email", v) for v in values]

    out = benchmark(run)
    _per_item(benchmark)
    assert len(set(out)) == BATCH and all(0 < t < 2**32 for _, t in out)


@pytest.mark.benchmark(group="pseudonym-hash")
def test_identifier_key_blake2b_rekeyed(benchmark: Any) -> None:
    values = _emails()

    def run() -> list[tuple[int, int]]:
        out = []
        for v in values:
            d = int.from_bytes(
                hashlib.blake2b(b"email" + SEPARATOR + v.encode(), key=SECRET, digest_size=16).digest(), "little"
            )
            out.append((d & (2**64 - 1), ((d >> 64) & (2**32 - 1)) or 1))
        return out

    out = benchmark(run)
    _per_item(benchmark)
    assert out == [identifier_key(SECRET, "email", v) for v in values]


@pytest.mark.benchmark(group="pseudonym-hash")
def test_identifier_key_xxh3_before(benchmark: Any) -> None:
    """The format-3 key and tag: xxh3_64 of the secret-prefixed bytes, twice (two seeds)."""
    values = _emails()
    h = xxhash.xxh3_64_intdigest

    def run() -> list[tuple[int, int]]:
        out = []
        for v in values:
            data = SECRET + b"email" + SEPARATOR + v.encode()
            out.append((h(data), (h(data, OLD_TAG_SEED) >> 32) or 1))
        return out

    out = benchmark(run)
    _per_item(benchmark)
    assert len(set(out)) == BATCH


# ---------------------------------------------------------------- one event: keys_of


@pytest.mark.benchmark(group="pseudonym-keys-of")
def test_keys_of_three_identifiers(benchmark: Any) -> None:
    graph = IdentityGraph(SECRET)
    events = [
        {"cookie": f"ck-{i:016x}", "email": f"Person.{i}@Example.com", "user_id": f"u-{10_000_000 + i}"}
        for i in range(BATCH)
    ]

    def run() -> list[np.ndarray]:
        return [graph.keys_of(ids)[0] for ids in events]

    out = benchmark(run)
    _per_item(benchmark)
    assert out[7][0, 1] == identifier_key(SECRET, "email", "person.7@example.com")[0]
    assert graph.rules.code_of("user_id") is not None and len(graph.types) == len(IdentitySpec().types)


# ---------------------------------------------------------------- phone numbers


def _us_national() -> list[str]:
    return [f"({AREAS[i % len(AREAS)]}) {200 + i % 800:03d}-{i:04d}" for i in range(BATCH)]


@pytest.mark.benchmark(group="phone")
def test_phone_us_national(benchmark: Any) -> None:
    values = _us_national()
    out = benchmark(lambda: [normalise_phone(v, "US") for v in values])
    _per_item(benchmark)
    assert out[3] == "+1305203" + "0003" and len(set(out)) == BATCH


@pytest.mark.benchmark(group="phone")
def test_phone_international(benchmark: Any) -> None:
    values = [f"+44 20 7946 {i:04d}" if i % 2 else f"+39 06 1234 {i:04d}" for i in range(BATCH)]
    out = benchmark(lambda: [normalise_phone(v, "US") for v in values])
    _per_item(benchmark)
    assert out[1] == "+442079460001" and out[2] == "+390612340002"


@pytest.mark.benchmark(group="phone")
def test_phone_italian_national(benchmark: Any) -> None:
    values = [f"06 1234 {i:04d}" for i in range(BATCH)]
    out = benchmark(lambda: [normalise_phone(v, "IT") for v in values])
    _per_item(benchmark)
    assert out[5] == "+390612340005" and len(set(out)) == BATCH


@pytest.mark.benchmark(group="phone")
def test_keys_of_cookie_and_phone(benchmark: Any) -> None:
    graph = IdentityGraph(SECRET)
    events = [{"cookie": f"ck-{i:016x}", "phone": p} for i, p in enumerate(_us_national())]

    def run() -> list[np.ndarray]:
        return [graph.keys_of(ids)[0] for ids in events]

    out = benchmark(run)
    _per_item(benchmark)
    assert out[3][0, 1] == identifier_key(SECRET, "phone", "+13052030003")[0]
