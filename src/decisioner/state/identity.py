"""The identity graph on Redis: the embedded graph's rules, executed atomically on the server.

:class:`RedisIdentity` keeps the semantics of :class:`~decisioner.identity.IdentityGraph`
(``_kernels/graph.py`` is the reference): identifiers are normalised, checked against the
blocked values and hashed with the deployment secret in the worker (the key layer
:class:`~decisioner.identity.keys.IdentityKeys` is shared), so only 64-bit keys and 32-bit check
tags reach Redis, never a raw value. One event is one ``FCALL dcs1_idg_link``: it looks the keys
up, accepts the components they touch in type-priority order under the merge rules (blocked
values, tombstones, per-type limits and unique types, the size cap, do-not-link pairs; each
refusal counted by reason, as the embedded graph counts them), picks the survivor (the largest
person; ties: the lowest id, the oldest), relabels the absorbed identifiers, and records the
evidence (the anchor linked to every other stored identifier, once). Redis runs a function to
completion before anything else, so two workers merging the same people at once are
serialised: no lost identifier, never two survivors.

**Person ids** come from a server counter (``HINCRBY``) and are never reused: a merge keeps
the survivor's id and retires the others (the caller folds their profile state into the
survivor's, :attr:`RedisLinkResult.absorbed`); an unmerge gives new ids to the pieces that do
not keep the person. Events with no usable identifier resolve to no person (``-1``), where the
embedded graph uses its scratch row.

**Not on Redis yet**: time-to-live expiry, eviction, run-time blocking, ``split`` and evidence
compaction of the embedded graph (:mod:`decisioner.identity.unmerge`); linking, resolving,
erasure, readmission and ``unlink`` are.

**Layout on the server** (all keys under the hash tag ``{<prefix>:idg}``; persisted format,
:data:`~decisioner.state.functions.VERSION` 1):

* ``:n:<b>`` hashes, key (8 bytes, little-endian) -> node: check tag u32, person i64 (0: none),
  creation order i64, last seen (minutes since 2000) i32, type i8, limit slot i8, state u8
  (live, blocked, tombstone; bit 7: in a do-not-link pair) -- 27 bytes;
* ``:p:<b>`` hashes, person id -> size i32, flags i32, per-slot counts u16, member keys (8 bytes
  each);
* ``:a:<b>`` hashes, key -> evidence edges of the key (other key, sequence, time ms, source, end);
* ``:d`` hash, key -> do-not-link partner keys; ``:c`` hash of counters; ``:g`` hash of the
  rules (a fingerprint every worker must match), the bucket count and the type and source codes.

``<b>`` is the bucket: the key's low 16 bits (or the person id) modulo the bucket count (a power
of two fixed when the graph is made, 4096 by default). Many small hashes keep Redis's compact
listpack encoding (up to ``hash-max-listpack-entries``, 128 by default, per bucket), which needs
about half the memory of one large hash table; past that a bucket turns into a hash table and
costs what one large hash would. Raise ``hash-max-listpack-entries`` (to 512, say) or the
bucket count for graphs past half a million identifiers.

**One slot.** Redis Cluster runs a function on one slot only, and a merge may touch any two
identifiers, so the whole graph shares one hash tag: it lives on one master and its
throughput is that master's single thread (on loopback one client does about 17,000 lookups
or 4,000 merges a second; ``benchmarks/bench_state_identity.py``), and its size is bounded by
that master's memory. Profiles, counters and logs are per person and spread over the
Cluster; only identity is concentrated. A lookup (:meth:`RedisIdentity.resolve_keys`) is one
round trip (``HGET`` on the key's bucket, or ``FCALL_RO`` for many keys) that replicas of that
master can serve.
Splitting the graph would need cross-slot merges (two-phase locking across slots), which Redis
does not make atomic.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Mapping, Sequence
from typing import Any, Final, NamedTuple

import msgspec
import numpy as np

from ..config import IdentitySpec
from ..errors import ConfigError, SchemaError
from ..identity.keys import IdentityKeys
from .connection import RedisState

__all__ = ["RedisIdentity", "RedisLinkResult", "RedisUnmergeResult", "NODE_FORMAT", "partition_digest"]

#: a node record on the server (see the module docstring)
NODE_FORMAT: Final = struct.Struct("<IqqibbB")
#: one end of an evidence edge: other key, sequence, time ms, source, 0 when this end is `a`
_EDGE: Final = struct.Struct("<8sqqhB")
_EPOCH_MS, _MINUTE_MS = 946_684_800_000, 60_000
_LIVE, _BLOCKED, _TOMB = 0, 1, 2
_PARTS: Final = ("n", "p", "a", "d", "c", "g")
_REFUSALS: Final = ("blocked", "tombstoned", "collision", "unique", "limit", "size_cap", "do_not_link")
# the embedded graph's link status bits (``_kernels.graph.S_*``)
S_NEW, S_REFUSED, S_SUPPRESSED, S_ANONYMOUS, S_COLLISION = 1, 2, 4, 8, 16


class RedisLinkResult(NamedTuple):
    """The person an event resolved to (-1: none, no usable identifier), the persons merged
    into it (retired ids), whether the person is new, and the status bits (as
    :class:`~decisioner.identity.LinkResult`)."""

    person: int
    absorbed: tuple[int, ...]
    new: bool
    status: int

    @property
    def refused(self) -> bool:
        """Some identifier or link of the event was refused by a rule."""
        return bool(self.status & S_REFUSED)

    @property
    def anonymous(self) -> bool:
        """No usable identifier: no person."""
        return bool(self.status & S_ANONYMOUS)

    @property
    def suppressed(self) -> bool:
        """The event carried an erased identifier, so nothing was linked."""
        return bool(self.status & S_SUPPRESSED)


class RedisUnmergeResult(NamedTuple):
    """Outcome of a forget or unlink: the person that kept its id (-1 if none), the new ids of
    the other pieces, and the persons erased entirely."""

    person: int
    new: tuple[int, ...]
    erased: tuple[int, ...]


def _pairs(reply: Any) -> list[tuple[bytes, bytes]]:
    """Field-value pairs of a hash reply (redis-py gives a dict or a flat list)."""
    if isinstance(reply, dict):
        return list(reply.items())
    return list(zip(reply[::2], reply[1::2]))


def partition_digest(partition: set[frozenset[int]]) -> str:
    """A digest of a partition of identifier keys into people (``partition()`` of either
    backend), independent of row numbers, person ids and order: equal for the embedded graph
    and the Redis graph when they hold the same people.

    >>> partition_digest({frozenset({3, 1}), frozenset({2})}) == partition_digest({frozenset({2}), frozenset({1, 3})})
    True
    """
    h = hashlib.blake2b(digest_size=16)
    for comp in sorted(sorted(c) for c in partition):
        h.update(len(comp).to_bytes(8, "little"))  # length-prefixed: unambiguous
        h.update(np.asarray(comp, dtype=np.uint64).tobytes())
    return h.hexdigest()


def _link_result(out: Any) -> RedisLinkResult:
    person, status = int(out[0]), int(out[1])
    return RedisLinkResult(person if person > 0 else -1, tuple(int(x) for x in out[2:]), bool(status & S_NEW), status)


def _kb(k: int) -> bytes:
    return int(k).to_bytes(8, "little")


class RedisIdentity:
    """The identity graph of a :class:`~decisioner.state.connection.RedisState`.

    Parameters
    ----------
    state
        The connection.
    key
        The deployment secret (bytes, >= 16): identifiers are hashed in this process.
    spec
        Identity configuration (as :class:`~decisioner.identity.IdentityGraph` takes it). Every
        worker on one graph must use the same rules (checked: a worker with other rules gets a
        :class:`~decisioner.errors.ConfigError`).
    default_region
        Region of national phone numbers (default: ``spec.default_phone_region``).
    buckets
        Bucket hashes per part of the graph (a power of two up to 65536; see the module
        docstring). Used when this worker makes the graph; a graph keeps its count for good.

    Raises
    ------
    ConfigError
        If ``buckets`` is not a power of two in [1, 65536].

    Examples
    --------
    A running server is needed (``tests/state/test_identity.py`` shows the whole cycle)::

        ids = RedisIdentity(RedisState.from_url("redis://127.0.0.1:6379"), b"0" * 16)
        p = ids.link_one({"cookie": "c1", "email": "ada@example.com"}).person
        assert ids.resolve_one({"email": "ADA@example.com"}) == p
    """

    def __init__(self, state: RedisState, key: bytes, *, spec: IdentitySpec | None = None,
                 default_region: str | None = None, buckets: int = 4096) -> None:
        if buckets < 1 or buckets > 65536 or buckets & (buckets - 1):
            raise ConfigError(f"expected `buckets` a power of two in [1, 65536], got {buckets!r} - at `buckets`")
        self.state = state
        self.keys = IdentityKeys(key, spec=spec, default_region=default_region)
        self.spec = self.keys.spec
        self.buckets = buckets
        self._names = [state.idg_key(p) for p in _PARTS]
        self._codes: dict[tuple[str, str], int] = {}
        self._rules: dict[str, tuple[int, int]] = {}
        self._ready = False
        self._nb = buckets

    # ------------------------------------------------------------------ setup
    def fingerprint(self) -> str:
        """A digest of the merge rules (on/off, size cap, limits, per-type priority and limit
        slot): equal in every worker that may share the graph."""
        r = self.keys.rules
        types = sorted({*r.types, *(s.name for s in self.spec.identifiers)})
        doc = {
            "on": r.on, "cap": self.spec.max_identifiers if r.on else 0, "limits": r.slot_limits,
            "slots": sorted(r.slot_of.items()),
            "types": [(t, r.rule_for(t).priority if r.on else 0) for t in types],
        }
        return hashlib.sha256(msgspec.json.encode(doc)).hexdigest()[:16]

    def _setup(self) -> None:
        r = self.keys.rules
        limits = ",".join(str(v) for v in r.slot_limits) or "0"
        self._nb = int(self.state.fcall("dcs1_idg_setup", self._names, [
            self.fingerprint(), "1" if r.on else "0", self.spec.max_identifiers if r.on else 0,
            len(r.slot_of), limits, self.buckets,
        ]))
        self._ready = True

    def _ensure(self) -> None:
        if not self._ready:
            self._setup()

    def _bucket_names(self, part: int) -> list[str]:
        """Every bucket hash of part ``part`` (0 nodes, 1 persons, 2 adjacency)."""
        self._ensure()
        return [f"{self._names[part]}:{b}" for b in range(self._nb)]

    def _read_buckets(self, part: int) -> list[tuple[bytes, bytes]]:
        """Every field of every bucket of part ``part`` (pipelined ``HGETALL``)."""
        names = self._bucket_names(part)

        def run() -> list[Any]:
            out: list[Any] = []
            for i in range(0, len(names), 512):
                pipe = self.state.client.pipeline(transaction=False)
                for name in names[i : i + 512]:
                    pipe.execute_command("HGETALL", name)
                out += pipe.execute()
            return out

        return [kv for reply in self.state.run(run, "HGETALL buckets") for kv in _pairs(reply)]

    def _code(self, kind: str, names: list[str]) -> list[int]:
        missing = [n for n in dict.fromkeys(names) if (kind, n) not in self._codes]
        if missing:
            if not self._ready:
                self._setup()
            got = self.state.fcall("dcs1_idg_codes", self._names, [kind, *missing])
            for n, c in zip(missing, got):
                self._codes[(kind, n)] = int(c)
        return [self._codes[(kind, n)] for n in names]

    def _rule_args(self, id_type: str) -> tuple[int, int]:
        """(priority, limit slot) of a type, compiled once per type."""
        got = self._rules.get(id_type)
        if got is None:
            r = self.keys.rules
            got = self._rules[id_type] = (r.rule_for(id_type).priority, r.slot_of.get(id_type, -1) if r.on else -1)
        return got

    # ------------------------------------------------------------------ linking
    def link_one(self, ids: Mapping[str, str], *, time: int | None = None, source: str | None = None,
                 consent: Mapping[str, object] | None = None) -> RedisLinkResult:
        """Resolve an event's identifiers (type -> value) to one person, merging the persons
        they touch where the rules allow (one atomic call on the server).

        Parameters
        ----------
        ids
            Identifier type -> raw value (hashed here; the value never leaves the process).
        time
            Event time (epoch ms): evidence time and last-seen of the identifiers.
        source
            Where the link comes from (channel or system), kept with the evidence.
        consent
            ``{"personalization": True}`` lifts the tombstones of erased identifiers it carries.

        Raises
        ------
        SchemaError
            If there is no identifier or one is malformed (nothing is sent then).
        StateUnavailable
            If Redis cannot be reached (then nothing was linked, or, when only the reply was
            lost, the link was made and repeating it changes no partition).
        """
        if len(ids) == 0:
            raise SchemaError("Expected at least one identifier, got none - at `$.ids`")
        keys, _ = self.keys.keys_of(ids)
        return self.link_keys(keys, list(ids), time=time, source=source, consent=consent)

    def link_keys(self, keys: np.ndarray, types: list[str], *, time: int | None = None, source: str | None = None,
                  consent: Mapping[str, object] | None = None) -> RedisLinkResult:
        """Link the pre-hashed keys (uint64[2, m]: keys, tag words) of one event, whose type
        names are ``types``; see :meth:`link_one`."""
        args = self._link_args(keys, types, time, source, consent)
        return _link_result(self.state.fcall("dcs1_idg_link", self._names, args))

    def link_many(self, events: Sequence[Mapping[str, str]], *, times: Sequence[int] | None = None,
                  source: str | None = None) -> list[RedisLinkResult]:
        """Link many events (type -> value each) in one round trip (a pipeline); each event is
        still one atomic function call, applied in order, so the result equals calling
        :meth:`link_one` on each. Every event is checked before anything is sent.

        Raises
        ------
        SchemaError
            If an event has no identifier or a malformed one (nothing is sent then).
        StateUnavailable
            If Redis cannot be reached (a prefix of the events may have been linked: sending
            them again changes no partition).
        """
        if times is not None and len(times) != len(events):
            raise SchemaError(f"Expected {len(events)} `times`, got {len(times)} - at `times`")
        calls = []
        for i, ids in enumerate(events):
            if len(ids) == 0:
                raise SchemaError(f"Expected at least one identifier, got none - at `$[{i}].ids`")
            keys, _ = self.keys.keys_of(ids)
            calls.append((keys, list(ids), None if times is None else int(times[i])))
        args = [self._link_args(k, t, when, source, None) for k, t, when in calls]
        if not self._ready:
            self._setup()
        self.state.fcall("dcs1_version", [], [], readonly=True)  # loads the library when needed
        names = self._names

        def run() -> list[Any]:
            pipe = self.state.client.pipeline(transaction=False)
            for a in args:
                pipe.execute_command("FCALL", "dcs1_idg_link", len(names), *names, *a)
            return list(pipe.execute())

        return [_link_result(out) for out in self.state.run(run, "dcs1_idg_link pipeline")]

    def _link_args(self, keys: np.ndarray, types: list[str], time: int | None, source: str | None,
                   consent: Mapping[str, object] | None) -> list[Any]:
        m = keys.shape[1]
        if m == 0 or len(types) != m:
            raise SchemaError(f"Expected {max(m, 1)} identifier types for {m} keys, got {len(types)} - at `types`")
        codes = self._code("t", types)
        src = self._code("s", [source])[0] if source else 0
        readmit = consent is not None and consent.get("personalization") is True
        args: list[Any] = [0 if time is None else int(time), src, "1" if readmit else "0", m]
        k0, k1 = keys[0].tolist(), keys[1].tolist()
        for j in range(m):
            prio, slot = self._rule_args(types[j])
            args += [_kb(k0[j]), k1[j] & 0xFFFFFFFF, "1" if (k1[j] >> 32) & 1 else "0", codes[j], prio, slot]
        if not self._ready:
            self._setup()
        return args

    # ------------------------------------------------------------------ resolving
    def resolve_keys(self, keys: np.ndarray) -> np.ndarray:
        """Person of each pre-hashed key (uint64[2, m]; int64, -1 when unknown, blocked, erased
        or colliding): one round trip (see :meth:`_node_values`), changes nothing."""
        m = keys.shape[1]
        out = np.full(m, -1, dtype=np.int64)
        if m == 0:
            return out
        k0 = keys[0].tolist()
        k1 = keys[1].tolist() if keys.shape[0] > 1 else [0] * m
        vals = self._node_values(k0)
        for j, v in enumerate(vals):
            if v is None:
                continue
            tag, pid, _born, _seen, _t, _s, st = NODE_FORMAT.unpack(v)
            want = k1[j] & 0xFFFFFFFF
            if (st & 15) == _LIVE and (want == 0 or tag == 0 or tag == want) and not (k1[j] >> 32) & 1:
                out[j] = pid
        return out

    def _node_values(self, keys: list[int]) -> list[bytes | None]:
        """The raw node records of ``keys`` (None when absent) in one round trip: a plain
        ``HGET`` on its bucket for one key (the cheapest read), the read-only function
        ``dcs1_idg_lookup`` for more (one command instead of a pipeline of many, which costs
        the client more than the server). Replicas can serve both."""
        self._ensure()
        if len(keys) == 1:
            k = keys[0]
            return [self.state.execute("HGET", f"{self._names[0]}:{(k & 0xFFFF) % self._nb}", _kb(k))]
        return list(self.state.fcall("dcs1_idg_lookup", self._names, [_kb(k) for k in keys], readonly=True))

    def resolve_one(self, ids: Mapping[str, str]) -> int:
        """Person of the first known identifier in ``ids``, or -1. Changes nothing."""
        keys, _ = self.keys.keys_of(ids)
        hit = [p for p in self.resolve_keys(keys).tolist() if p > 0]
        return hit[0] if hit else -1

    # ------------------------------------------------------------------ removal
    def forget(self, ids: Mapping[str, str] | None = None, *, person: int | None = None) -> RedisUnmergeResult:
        """Erase identifiers (``ids``) or a whole person and keep keyed tombstones (also for
        identifiers never seen); what remains of each person is recomputed from its evidence
        (the largest piece keeps the id). Later events carrying a tombstoned identifier link
        nothing unless they carry explicit consent.

        Raises
        ------
        SchemaError
            If neither or both of ``ids`` and ``person`` are given, or a value is malformed.
        """
        if (ids is None) == (person is None):
            got = "both" if ids is not None else "neither"
            raise SchemaError(f"Expected either `ids` or `person`, got {got} - at `forget`")
        if not self._ready:
            self._setup()
        if person is not None:
            out = self.state.fcall("dcs1_idg_forget", self._names, ["p", int(person)])
        else:
            assert ids is not None
            keys, _ = self.keys.keys_of(ids)
            rules = self.keys.rules
            # an exact blocked value is a blocked key already (the embedded graph stores them
            # up front): nothing to erase and no tombstone
            names = [t for t, v in ids.items() if rules.canonical(t, v)[0] not in rules.rule_for(t).blocked]
            at = {t: j for j, t in enumerate(ids)}
            codes = self._code("t", names)
            args: list[Any] = [len(names)]
            for i, t in enumerate(names):
                j = at[t]
                args += [_kb(int(keys[0, j])), int(keys[1, j]) & 0xFFFFFFFF, codes[i], self._rule_args(t)[1]]
            out = self.state.fcall("dcs1_idg_forget", self._names, args)
        kept, n_new = int(out[0]), int(out[1])
        vals = [int(x) for x in out[2:]]
        return RedisUnmergeResult(kept if kept > 0 else -1, tuple(vals[:n_new]), tuple(vals[n_new:]))

    def unlink(self, ids: Mapping[str, str]) -> RedisUnmergeResult:
        """Detach one identifier (the first given) into a person of its own, with do-not-link
        pairs to every identifier of its person it has evidence with; the rest is recomputed
        from its evidence and keeps the person id.

        Raises
        ------
        SchemaError
            If the identifier is not linked (unknown, blocked or erased).
        """
        keys, _ = self.keys.keys_of(dict(list(ids.items())[:1]))
        if not self._ready:
            self._setup()
        out = self.state.fcall("dcs1_idg_unlink", self._names,
                               [_kb(int(keys[0, 0])), int(keys[1, 0]) & 0xFFFFFFFF])
        n_new = int(out[1])
        return RedisUnmergeResult(int(out[0]), tuple(int(x) for x in out[2 : 2 + n_new]), ())

    # ------------------------------------------------------------------ reading out
    def members(self, person: int) -> list[int]:
        """The keys of a person's identifiers (empty when the id is retired or unknown)."""
        self._ensure()
        v = self.state.execute("HGET", f"{self._names[1]}:{int(person) % self._nb}", int(person))
        if v is None:
            return []
        head = 8 + 2 * len(self.keys.rules.slot_of)
        body = v[head:]
        return [int.from_bytes(body[i : i + 8], "little") for i in range(0, len(body), 8)]

    def _type_names(self, kind: str = "t") -> dict[int, str]:
        raw = _pairs(self.state.execute("HGETALL", self._names[5]))
        tag = f"{kind}#".encode()
        return {int(k[2:]): v.decode() for k, v in raw if k.startswith(tag)}

    def identifiers_of(self, person: int) -> list[dict[str, Any]]:
        """What the graph holds for a person: per identifier its type, key (hex: the raw value
        is never stored), check tag and last-seen time (epoch ms, minute resolution), as
        :meth:`~decisioner.identity.IdentityGraph.identifiers_of` gives them."""
        members = self.members(person)
        if not members:
            return []
        vals = self.state.fcall("dcs1_idg_lookup", self._names, [_kb(k) for k in members], readonly=True)
        names = self._type_names()
        out = []
        for k, v in zip(members, vals):
            tag, _pid, _born, seen, typ, _slot, _st = NODE_FORMAT.unpack(v)
            out.append({"type": names.get(typ, str(typ)), "key": f"{k:016x}", "tag": f"{tag:08x}",
                        "last_seen": _EPOCH_MS + seen * _MINUTE_MS if seen else None})
        return out

    def evidence_of(self, person: int) -> list[dict[str, Any]]:
        """Every evidence edge touching a person's identifiers, oldest first: both keys and
        types, first event time, source, and whether the link is inside the person (else it
        was refused), as :meth:`~decisioner.identity.IdentityGraph.evidence_of` gives them."""
        members = self.members(person)
        if not members:
            return []
        inside = set(members)
        types, sources = self._type_names("t"), self._type_names("s")
        blobs = self.state.run(lambda: self._adjacency(members), "HGET adjacency")
        edges: dict[int, tuple[int, int, int, int]] = {}
        for k, got in zip(members, blobs):
            blob = got or b""
            for i in range(0, len(blob), _EDGE.size):
                other, seq, t, src, end = _EDGE.unpack_from(blob, i)
                o = int.from_bytes(other, "little")
                edges[seq] = (k, o, t, src) if end == 0 else (o, k, t, src)
        keys = sorted({x for a, b, _, _ in edges.values() for x in (a, b)})
        recs = self.state.fcall("dcs1_idg_lookup", self._names, [_kb(k) for k in keys], readonly=True)
        type_of = {k: NODE_FORMAT.unpack(v)[4] for k, v in zip(keys, recs) if v is not None}
        return [{
            "a_type": types.get(type_of.get(a, -1), ""), "a_key": f"{a:016x}",
            "b_type": types.get(type_of.get(b, -1), ""), "b_key": f"{b:016x}",
            "time": t, "source": sources.get(src, ""), "linked": a in inside and b in inside,
        } for _, (a, b, t, src) in sorted(edges.items())]

    def _adjacency(self, members: list[int]) -> list[bytes | None]:
        pipe = self.state.client.pipeline(transaction=False)
        for k in members:
            pipe.execute_command("HGET", f"{self._names[2]}:{(k & 0xFFFF) % self._nb}", _kb(k))
        return list(pipe.execute())

    def nodes(self) -> dict[int, tuple[int, int]]:
        """Every stored key -> (person, state): live (0), blocked (1), tombstone (2). For checks
        and tests (reads the whole graph)."""
        return {k: (rec[1], rec[6] & 15) for k, rec in self._node_records().items()}

    def _node_records(self) -> dict[int, tuple[int, ...]]:
        return {int.from_bytes(k, "little"): NODE_FORMAT.unpack(v) for k, v in self._read_buckets(0)}

    def persons(self) -> dict[int, tuple[int, int, list[int], list[int]]]:
        """Every person id -> (size, flags, per-slot counts, member keys). For checks and tests
        (reads the whole graph)."""
        nslots = len(self.keys.rules.slot_of) if self.keys.rules.on else 0
        nslots = int(self.state.execute("HGET", self._names[5], "nslots") or nslots)
        head = 8 + 2 * nslots
        out: dict[int, tuple[int, int, list[int], list[int]]] = {}
        for k, v in self._read_buckets(1):
            size, flags = struct.unpack_from("<ii", v)
            counts = list(struct.unpack_from(f"<{nslots}H", v, 8))
            body = v[head:]
            members = [int.from_bytes(body[i : i + 8], "little") for i in range(0, len(body), 8)]
            out[int(k)] = (size, flags, counts, members)
        return out

    def check(self) -> list[str]:
        """Check the graph's invariants on the server; returns what is wrong (empty: nothing).

        Every live identifier belongs to exactly one person, whose record lists it; every
        listed member is live and points back; sizes and per-type counts match the members and
        obey the limits and the size cap; the two ends of every do-not-link pair are in two
        persons; the ``identifiers`` and ``profiles`` counters match. Reads the whole graph:
        for tests and maintenance, not for the request path.
        """
        problems: list[str] = []
        records = self._node_records()
        nodes = {k: (rec[1], rec[6] & 15) for k, rec in records.items()}
        slot_of_node = {k: rec[5] for k, rec in records.items()}
        persons = self.persons()
        rules = self.keys.rules
        cap = self.spec.max_identifiers if rules.on else 0
        seen: dict[int, int] = {}
        for pid, (size, _flags, counts, members) in persons.items():
            if size != len(members):
                problems.append(f"person {pid}: size {size} but {len(members)} members")
            if cap and size > cap:
                problems.append(f"person {pid}: {size} identifiers over the size cap {cap}")
            got = [0] * len(counts)
            for k in members:
                if k in seen:
                    problems.append(f"key {k:016x} in persons {seen[k]} and {pid}")
                seen[k] = pid
                pid_k, st = nodes.get(k, (0, -1))
                if st != _LIVE or pid_k != pid:
                    problems.append(f"key {k:016x} listed in person {pid} but its node says {pid_k} (state {st})")
                s = slot_of_node.get(k, -1)
                if 0 <= s < len(got):
                    got[s] += 1
            if got != counts:
                problems.append(f"person {pid}: counts {counts} but members give {got}")
            for s, n in enumerate(got):
                if rules.on and n > rules.slot_limits[s]:
                    problems.append(f"person {pid}: {n} identifiers of limit slot {s} over {rules.slot_limits[s]}")
        for k, (pid, st) in nodes.items():
            if st == _LIVE and seen.get(k) != pid:
                problems.append(f"live key {k:016x} of person {pid} not in its member list")
        for kb, partners in _pairs(self.state.execute("HGETALL", self._names[3])):
            a = int.from_bytes(kb, "little")
            for i in range(0, len(partners), 8):
                b = int.from_bytes(partners[i : i + 8], "little")
                if nodes.get(a, (0, 0))[0] == nodes.get(b, (-1, 0))[0]:
                    problems.append(f"do-not-link pair {a:016x} {b:016x} in one person")
        m = self.metrics()
        n_live = sum(1 for _, st in nodes.values() if st == _LIVE)
        if m["identifiers"] != n_live or m["profiles"] != len(persons):
            problems.append(f"counters say {m['identifiers']} identifiers and {m['profiles']} persons, the graph holds "
                            f"{n_live} and {len(persons)}")
        return problems

    def partition(self) -> set[frozenset[int]]:
        """The current persons as sets of keys (for checks and tests)."""
        comps: dict[int, set[int]] = {}
        for k, (pid, st) in self.nodes().items():
            if st == _LIVE:
                comps.setdefault(pid, set()).add(k)
        return {frozenset(c) for c in comps.values()}

    def metrics(self) -> dict[str, Any]:
        """Counters, named as :meth:`~decisioner.identity.IdentityGraph.metrics` names them."""
        c = {k.decode(): int(v) for k, v in _pairs(self.state.execute("HGETALL", self._names[4]))}
        return {
            "identifiers": c.get("identifiers", 0), "profiles": c.get("profiles", 0),
            "tombstones": c.get("tombstones", 0), "blocked_values": c.get("blocked_values", 0),
            "evidence_edges": c.get("edges", 0), "do_not_link_pairs": c.get("dnl", 0),
            "merges": c.get("merges", 0), "events": c.get("events", 0),
            "suppressed_events": c.get("suppressed", 0), "anonymous_events": c.get("anonymous", 0),
            "readmitted": c.get("readmitted", 0), "refused": {r: c.get(r, 0) for r in _REFUSALS},
            "persons_issued": c.get("pid", 0),
        }

    def memory(self) -> dict[str, float]:
        """Bytes the graph's keys hold on the server (``MEMORY USAGE``, all fields sampled), by
        part and per identifier: core (nodes: what resolving needs), persons, evidence."""
        self._ensure()
        use = {}
        for i, (part, name) in enumerate(zip(_PARTS, self._names)):
            names = self._bucket_names(i) if i < 3 else [name]

            def run(names: list[str] = names) -> list[Any]:
                out: list[Any] = []
                for j in range(0, len(names), 512):
                    pipe = self.state.client.pipeline(transaction=False)
                    for nm in names[j : j + 512]:
                        pipe.execute_command("MEMORY", "USAGE", nm, "SAMPLES", 0)
                    out += pipe.execute()
                return out

            use[part] = sum(int(v or 0) for v in self.state.run(run, "MEMORY USAGE"))
        n = max(self.metrics()["identifiers"], 1)
        total = sum(use.values())
        return {
            "identifiers": self.metrics()["identifiers"],
            "core_bytes": use["n"], "core_bytes_per_identifier": round(use["n"] / n, 1),
            "person_bytes": use["p"], "evidence_bytes": use["a"] + use["d"],
            "total_bytes": total, "total_bytes_per_identifier": round(total / n, 1),
        }

    def clear(self) -> None:
        """Delete the whole graph from the server (every key of this prefix's identity)."""
        names = [*self._names, *(nm for part in range(3) for nm in self._bucket_names(part))]
        for i in range(0, len(names), 1000):
            self.state.execute("UNLINK", *names[i : i + 1000])
        self._codes.clear()
        self._ready = False
