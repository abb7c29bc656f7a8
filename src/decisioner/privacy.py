"""Privacy operations over the stores that hold a person: erasure that sticks, access export,
unmerge, retention.

This module works on components (:class:`PersonStores`), never on the engine: the engine asks
for the operation (:func:`forget_op`, :func:`unlink_op`, :func:`split_op`, or an ``ExpireOp``;
each validates its input and is logged by key, so it replays after a snapshot too), takes its
writer lock, calls :func:`apply` and admits the operation to its journal.

* **forget** erases identifiers or a whole person: their keys and evidence leave the identity
  graph, keyed tombstones stay (the key is the keyed hash, never the raw value), and a profile
  left without identifiers is wiped before its row is reused; its person id and every id merged
  into it are erased from the decision log (its spill files too) and the exposures (the rows
  stay as anonymous counts). Later events or batch loads carrying an erased identifier link
  nothing and create nothing, unless the event carries explicit consent:
  ``"consent": {"personalization": true}`` lifts the tombstones of its identifiers and starts a
  new, empty person. Tombstones are never evicted (they hold no profile); what bounds them and
  what each costs is in :mod:`decisioner.identity.unmerge`.
* **export** lists everything held for one person: identifiers (type, key, last seen),
  evidence links, profile state (interests, recent purchases, consent, activity, outbound sends,
  attributes with their provenance), the decisions
  logged for the person and every person merged into it (in memory and in the decision log's
  spill files), and experiment assignments.
  The consent grid with its history (every change: time, source, old and new value) and the
  attributes with their provenance are in it too, and nothing of anyone else.
* **unlink** and **split** undo merges (see :mod:`decisioner.identity.graph` for the
  profile-state rule).
* **expire** is retention at an event time: volatile identifiers past their time-to-live go,
  and profiles idle longer than ``profiles.idle_retention_days`` are erased with every record
  (no tombstone: such a person may come back, as a new person).
* Every operation, the export included, appends an entry to the audit log
  (:mod:`decisioner.audit`): who asked, when, which people (stable ids) and identifiers (keyed
  hashes), and what was removed, by kind.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from . import arguments
from .activity import ActivityStore
from .attributes import AttributeStore
from .audit import AuditLog, now_ms
from .audit import actor as audit_actor
from .consent import CHANNELS
from .engagement import EngagementStore
from .errors import SchemaError
from .identity import IdentityGraph
from .identity.graph import UnmergeResult
from .journal import ExpireOp, ExportOp, ForgetOp, SplitOp, UnlinkOp
from .outbound import SendHistory
from .profiles import ProfileStore
from .schemas import EVENT_TYPES

if TYPE_CHECKING:
    from .allocation.experiments import ExperimentRuntime
    from .catalog import Catalog
    from .consent.store import ConsentStore
    from .decisionlog import DecisionLog
    from .people import People
    from .placements import Placements

__all__ = [
    "Erasures", "PersonStores", "PrivacyOp", "forget_keys", "forget_op", "unlink_op", "split_op", "export_op", "apply",
    "export", "audit_export",
]

#: the operations :func:`apply` carries out
PrivacyOp = ForgetOp | UnlinkOp | SplitOp | ExpireOp


@dataclass
class Erasures:
    """What erasures removed since the last :meth:`take`: counts by kind and the people erased
    (the tracking stage adds to it as the stores drop a person's records)."""

    counts: Counter[str] = field(default_factory=Counter)
    people: set[int] = field(default_factory=set)

    def take(self) -> tuple[dict[str, int], set[int]]:
        out = dict(self.counts), set(self.people)
        self.counts.clear()
        self.people.clear()
        return out


@dataclass(frozen=True)
class PersonStores:
    """Every store that holds something about a person, and what is needed to name it."""

    identity: IdentityGraph
    profiles: ProfileStore
    consent: ConsentStore
    people: People
    decision_log: DecisionLog
    experiments: ExperimentRuntime
    catalog: Catalog
    half_lives: np.ndarray
    placements: Placements
    instance: str
    attributes: AttributeStore
    engagement: EngagementStore
    audit: AuditLog = field(default_factory=AuditLog)
    erasures: Erasures = field(default_factory=Erasures)
    #: profiles idle longer than this are erased by ``expire`` (0: never)
    idle_retention_ms: int = 0
    #: recency and frequency of counted event types (segments); None: not kept
    activity: ActivityStore | None = None
    #: outbound send history (frequency caps); None: not kept
    sends: SendHistory | None = None


def _result(res: UnmergeResult, stores: PersonStores) -> dict[str, Any]:
    return {
        "row": res.row,
        "new_rows": res.new_rows.tolist(),
        "erased": res.erased.tolist(),
        "tombstones": stores.identity.metrics()["tombstones"],
    }


def forget_keys(stores: PersonStores, ids: Mapping[str, str] | None, *, row: int | None) -> np.ndarray:
    """The keys (uint64[2, m]: key and check-tag word) a forget of ``ids`` or of profile
    ``row`` erases: logged by key, so the erasure replays after a snapshot too.

    Raises
    ------
    SchemaError
        If neither or both of ``ids`` and ``row`` are given, a value is malformed, or ``row`` is
        not a profile row.
    """
    if (ids is None) == (row is None):
        raise SchemaError(
            "Expected either `ids` or `row`, got " + ("both" if ids is not None else "neither") + " - at `forget`"
        )
    g = stores.identity
    if ids is not None:
        keys, _ = g.keys_of(ids)
        return keys
    mem = g.members(arguments.row(int(row) if isinstance(row, np.integer) else row, g.n_rows))
    return np.stack([g.nodes_["key"][mem], g.nodes_["tag"][mem].astype(np.uint64)])


def forget_op(
    stores: PersonStores, ids: Mapping[str, str] | None, *, row: int | None, actor: str = "api", at: int | None = None
) -> ForgetOp:
    """The erasure of ``ids`` or of the whole person at profile ``row`` (see :func:`forget_keys`),
    asked by ``actor`` at ``at`` (wall clock, epoch ms; default: now).

    Raises
    ------
    SchemaError
        As :func:`forget_keys`, or a malformed ``actor`` (:func:`decisioner.audit.actor`).
    """
    who, when = _asked(actor, at)
    keys = forget_keys(stores, ids, row=row)
    return ForgetOp(keys[0].tolist(), keys[1].tolist(), who, when)


def unlink_op(stores: PersonStores, ids: Mapping[str, str], *, actor: str = "api", at: int | None = None) -> UnlinkOp:
    """One identifier detached from its profile (see :meth:`IdentityGraph.unlink`).

    Raises
    ------
    SchemaError
        If a value or ``actor`` is malformed.
    """
    who, when = _asked(actor, at)
    keys, _ = stores.identity.keys_of(ids)
    return UnlinkOp(keys[0].tolist(), keys[1].tolist(), who, when)


def split_op(
    stores: PersonStores, row: int, apart: list[dict[str, str]], *, actor: str = "api", at: int | None = None
) -> SplitOp:
    """Profile ``row`` recomputed from its evidence, each of ``apart`` kept in a different profile
    (see :meth:`IdentityGraph.split`).

    Raises
    ------
    SchemaError
        If a value or ``actor`` is malformed.
    """
    who, when = _asked(actor, at)
    row = arguments.row(int(row) if isinstance(row, np.integer) else row, stores.identity.n_rows)
    seeds = [stores.identity.keys_of(ids)[0] for ids in arguments.id_maps(apart, "apart")]
    return SplitOp(row, [(k[0].tolist(), k[1].tolist()) for k in seeds], who, when)


def expire_op(now: int, *, actor: str = "api", at: int | None = None) -> ExpireOp:
    """Retention at event time ``now`` (see the module docstring).

    Raises
    ------
    SchemaError
        If ``now`` or ``actor`` is malformed.
    """
    who, when = _asked(actor, at)
    return ExpireOp(arguments.epoch_ms(now, "now"), who, when)


def export_op(stores: PersonStores, ids: Mapping[str, str], *, actor: str = "api", at: int | None = None) -> ExportOp:
    """The access export of the person ``ids`` resolves to, as the audit log records it.

    Raises
    ------
    SchemaError
        If a value or ``actor`` is malformed.
    """
    who, when = _asked(actor, at)
    keys, _ = stores.identity.keys_of(ids)
    return ExportOp(keys[0].tolist(), keys[1].tolist(), who, when)


def _asked(actor: str, at: int | None) -> tuple[str, int]:
    return audit_actor(actor), now_ms() if at is None else arguments.epoch_ms(at, "at")


def _people_of(stores: PersonStores, keys: list[int], tags: list[int]) -> set[int]:
    """The people (canonical ids) the keys resolve to now."""
    if not keys:
        return set()
    rows = stores.identity.resolve_keys(np.array([keys, tags], dtype=np.uint64).reshape(2, -1))
    people = stores.people
    return {people.canonical(p) for p in (people.person_of(int(r)) for r in rows.tolist() if r >= 0) if p >= 0}


def apply(stores: PersonStores, op: PrivacyOp) -> dict[str, Any]:
    """Carry out one privacy or unmerge operation (the engine holds its writer lock) and write it
    to the audit log.

    Returns ``row`` (the profile that kept its state, -1 if none), ``new_rows`` (pieces split
    off), ``erased`` (profile rows wiped), ``tombstones`` (total held), ``removed`` (counts by
    kind) and ``audit`` (the audit entry's number).
    """
    g = stores.identity
    stores.erasures.take()
    if isinstance(op, SplitOp):
        persons = {stores.people.person_of(op.row)}
    elif isinstance(op, ExpireOp):
        persons = set()
    else:
        persons = _people_of(stores, op.keys, op.tags)
    if isinstance(op, ExpireOp):
        res = _result(g.expire(op.now), stores)
        res["retired"] = _retire(stores, op.now)
    elif isinstance(op, SplitOp):
        seeds = [np.array([k, t], dtype=np.uint64).reshape(2, -1) for k, t in op.apart]
        res = _result(g.split(op.row, apart=seeds), stores)
    else:
        keys = np.array([op.keys, op.tags], dtype=np.uint64).reshape(2, -1)
        if isinstance(op, ForgetOp):
            empty = UnmergeResult(-1, np.zeros(0, np.int32), np.zeros(0, np.int32))
            res = _result(g.forget(keys) if keys.shape[1] else empty, stores)
        else:
            res = _result(g.unlink(keys), stores)
    removed, gone = stores.erasures.take()
    kind = str(type(op).__struct_config__.tag)
    keys_named: list[int] = []
    if isinstance(op, SplitOp):
        keys_named = [k for seed, _ in op.apart for k in seed]
    elif not isinstance(op, ExpireOp):
        keys_named = op.keys
    entry = stores.audit.append(
        at=op.at, actor=op.actor or "api", op=kind, persons=sorted((persons - {-1}) | gone), keys=keys_named,
        removed=removed,
    )
    res["removed"] = {k: v for k, v in removed.items() if v}
    res["audit"] = entry.seq
    return res


def _retire(stores: PersonStores, now: int) -> int:
    """Erase the profiles idle longer than the retention limit at ``now``; returns how many."""
    limit = stores.idle_retention_ms
    g = stores.identity
    if not limit or not g.n_profiles:
        return 0
    root = g.rows_["root"][: g.n_rows]
    seen = stores.profiles.last_seen_[: g.n_rows]
    idle = np.flatnonzero((root >= 0) & (seen < now - limit))
    if idle.shape[0]:
        g.evict(idle)
    return int(idle.shape[0])


def audit_export(stores: PersonStores, op: ExportOp) -> int:
    """Write the access export ``op`` to the audit log; returns the entry's number."""
    persons = _people_of(stores, op.keys, op.tags)
    return stores.audit.append(at=op.at, actor=op.actor or "api", op="export", persons=sorted(persons),
                               keys=op.keys).seq


def export(stores: PersonStores, ids: Mapping[str, str], *, now: int | None = None) -> dict[str, Any]:
    """Everything held for the person ``ids`` resolves to (a data-subject access export).

    Returns
    -------
    dict
        ``found`` (False when no identifier is linked; then also ``erased``: which of the given
        identifiers are tombstoned), ``person`` (stable id), ``merged_people`` (ids merged into
        it), ``profile`` (row), ``identifiers``, ``evidence``, ``interests``, ``purchased``,
        ``consent`` (purpose -> channel -> allowed), ``consent_history`` (every change: time,
        source, purpose, channel, old and new value, how it came), ``last_seen``, ``events``,
        ``decisions``, ``experiments``, ``attributes`` (name -> value, source, time, rule, and
        the counted values of ``most_frequent``), ``engagement`` (the tier at ``now`` or the
        last event, its inputs and the spend held; None without engagement or a counted event),
        ``activity`` (counted event type -> last time and counts per held bucket), ``sends``
        (outbound channel -> the held send times, newest first).

    Raises
    ------
    SchemaError
        If a value is malformed.
    """
    g = stores.identity
    if now is not None:
        now = arguments.epoch_ms(now, "now")
    keys, _ = g.keys_of(ids)
    rows = g.resolve_keys(keys)
    hit = rows[rows >= 0]
    if hit.shape[0] == 0:
        return {"found": False, "erased": dict(zip(ids, g.tombstoned(keys).tolist()))}
    row = int(hit[0])
    prof = stores.profiles
    t = int(prof.last_seen_[row]) if now is None else now
    fids, scores = prof.read_copy(row, t, stores.half_lives)
    cat = stores.catalog
    person = stores.people.person_of(row)
    members = stores.people.members(person) if person >= 0 else set()
    decisions = []
    log = stores.decision_log
    if members:
        found = log.rows_of(members, ("seq", "time", "slot", "placement", "content", "person"))
        for s, tt, sl, pl, c, p in zip(*(a.tolist() for a in found.values())):
            placement = stores.placements.by_index(pl)
            contents = placement.contents
            decisions.append(
                {
                    "decision_id": f"{stores.instance}-{s}",
                    "time": tt,
                    "placement": placement.spec.name,
                    "slot": sl,
                    "content": contents[c] if 0 <= c < len(contents) else c,
                    "person": p,
                }
            )
    exps = stores.experiments
    assignments = {}
    if row < exps.holdout_.shape[0]:
        for e_i, e in enumerate(exps.experiments):
            code = int(exps.assign_[e_i, row])
            if code >= 0:
                assignments[e.name] = e.variants[code].name
        if int(exps.holdout_[row]) == 1:
            assignments["holdout"] = "holdout"
    return {
        "found": True,
        "person": person,
        "merged_people": sorted(members - {person}),
        "profile": row,
        "identifiers": g.identifiers_of(row),
        "evidence": g.evidence_of(row),
        "interests": [(cat.fv_names[int(f)], float(s)) for f, s in zip(fids, scores)],
        "purchased": [cat.ids[int(i)] for i in prof.purchased_[row].tolist() if i >= 0],
        "recent_items": [(cat.ids[i], t) for i, t in prof.recent(row)],
        "journey": [
            {"time": t, "event": EVENT_TYPES[k], "channel": CHANNELS[c], "item": cat.ids[i] if i >= 0 else None}
            for t, k, c, i in prof.journey(row)
        ],
        "consent": stores.consent.grid(row),
        "consent_history": stores.consent.history_of(members),
        "last_seen": int(prof.last_seen_[row]),
        "events": int(prof.events_[row]),
        "decisions": decisions,
        "experiments": assignments,
        "attributes": stores.attributes.export(row),
        "engagement": stores.engagement.export(row, t),
        "activity": stores.activity.export(row) if stores.activity is not None else {},
        "sends": stores.sends.export(row) if stores.sends is not None else {},
    }
