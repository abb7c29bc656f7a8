"""Privacy operations on an engine: erasure that sticks, access export, unmerge, retention.

* :func:`forget` erases identifiers or a whole person: their keys and evidence leave the
  identity graph, keyed tombstones stay (the key is the keyed hash, never the raw value), and a
  profile left without identifiers is wiped before its row is reused. Later events or batch
  loads carrying an erased identifier link nothing and create nothing, unless the event
  carries explicit consent: ``"consent": {"personalization": true}`` lifts the tombstones of
  its identifiers and starts a new, empty person (nothing of the erased state exists to come
  back).
* :func:`export` lists everything held for one person: identifiers (type, key, last seen),
  evidence links, profile state (interests, recent purchases, consent, activity) and the
  decisions logged for the profile.
* :func:`unlink` and :func:`split` undo merges (see :mod:`decisioner.identity.graph` for the
  profile-state rule); :func:`expire` applies the time-to-live of volatile identifiers.

Every state change takes the engine's write lock and is appended to the engine's event log
(when one is attached) by key, never by raw value, so recovery replays it in order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import msgspec
import numpy as np

from .errors import SchemaError
from .identity.graph import UnmergeResult
from .profiles import CONSENT_BITS

if TYPE_CHECKING:
    from .engine import Engine

__all__ = ["forget", "export", "unlink", "split", "expire", "replay_admin", "ADMIN_OPS"]

#: event-log operations written by this module
ADMIN_OPS = ("forget", "unlink", "split", "expire")


def _keys(engine: Engine, ids: Mapping[str, str]) -> np.ndarray:
    keys, _ = engine.identity.keys_of(ids)
    return keys


def _body(keys: np.ndarray | None = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = dict(extra)
    if keys is not None:
        body["keys"] = [[int(k) for k in keys[0]], [int(t) for t in keys[1]]]
    return body


def _result(res: UnmergeResult) -> dict[str, Any]:
    return {"row": res.row, "new_rows": res.new_rows.tolist(), "erased": res.erased.tolist()}


def forget(engine: Engine, ids: Mapping[str, str] | None = None, *, row: int | None = None) -> dict[str, Any]:
    """Erase identifiers (``ids``: type -> value) or a whole person (``row``: every identifier
    of that profile; ``row=engine.profile_row(ids)`` forgets the person ``ids`` belongs to).

    Returns
    -------
    dict
        ``row`` (the profile that kept its state, -1 if none), ``new_rows`` (pieces split off),
        ``erased`` (profile rows wiped), ``tombstones`` (total held).

    Raises
    ------
    SchemaError
        If neither or both of ``ids`` and ``row`` are given, or a value is malformed.
    """
    if (ids is None) == (row is None):
        raise SchemaError("Expected either `ids` or `row`, got " + ("both" if ids is not None else "neither") + " - at `forget`")
    keys = _keys(engine, ids) if ids is not None else None
    with engine._lock:
        return _forget(engine, keys, row)


def _forget(engine: Engine, keys: np.ndarray | None, row: int | None) -> dict[str, Any]:
    g = engine.identity
    if keys is not None:
        res = g.forget(keys)
        engine._admit("forget", None, _body(keys))
    else:
        assert row is not None
        # logged by key: row numbers of a replay are the same, but keys also survive a snapshot
        mem = g.members(row)
        keys = np.stack([g.nodes_["key"][mem], g.nodes_["tag"][mem].astype(np.uint64)])
        res = g.forget(row=row)
        engine._admit("forget", None, _body(keys))
    out = _result(res)
    out["tombstones"] = g.metrics()["tombstones"]
    return out


def unlink(engine: Engine, ids: Mapping[str, str]) -> dict[str, Any]:
    """Detach one identifier from its profile (:meth:`IdentityGraph.unlink`).

    Raises
    ------
    SchemaError
        If the identifier is malformed or not linked.
    """
    keys = _keys(engine, ids)
    with engine._lock:
        res = engine.identity.unlink(keys)
        engine._admit("unlink", None, _body(keys))
    return _result(res)


def split(engine: Engine, row: int, *, apart: Sequence[Mapping[str, str]] = ()) -> dict[str, Any]:
    """Recompute profile ``row`` from its evidence, keeping the identifiers in ``apart`` in
    different profiles (:meth:`IdentityGraph.split`).

    Raises
    ------
    SchemaError
        If the row holds no identifier or an identifier of ``apart`` is not in it.
    """
    seeds = [_keys(engine, ids) for ids in apart]
    with engine._lock:
        res = engine.identity.split(row, apart=seeds)
        engine._admit("split", None, {"row": row, "apart": [_body(k)["keys"] for k in seeds]})
    return _result(res)


def expire(engine: Engine, now: int) -> dict[str, Any]:
    """Retention: drop volatile identifiers past their time-to-live at ``now`` (epoch ms)."""
    with engine._lock:
        res = engine.identity.expire(now)
        engine._admit("expire", None, {"now": int(now)})
    return _result(res)


def replay_admin(engine: Engine, op: str, body: bytes) -> None:
    """Apply one logged privacy operation (called by the engine's log replay).

    Raises
    ------
    SchemaError
        If ``op`` is not one of :data:`ADMIN_OPS`.
    """
    data = msgspec.json.decode(body)
    if op == "expire":
        expire(engine, int(data["now"]))
        return
    if op == "split":
        seeds = [np.array(k, dtype=np.uint64) for k in data["apart"]]
        with engine._lock:
            engine.identity.split(int(data["row"]), apart=seeds)
            engine._admit("split", None, data)
        return
    keys = np.array(data["keys"], dtype=np.uint64).reshape(2, -1)
    with engine._lock:
        if op == "forget":
            _forget(engine, keys, None)
        elif op == "unlink":
            engine.identity.unlink(keys)
            engine._admit("unlink", None, data)
        else:
            raise SchemaError(f"Expected one of {list(ADMIN_OPS)}, got {op!r} - at `op`")


def export(engine: Engine, ids: Mapping[str, str], *, now: int | None = None) -> dict[str, Any]:
    """Everything held for the person ``ids`` resolves to (a data-subject access export).

    Parameters
    ----------
    engine
        The engine.
    ids
        Any identifiers of the person (type -> value).
    now
        Time (epoch ms) the interests are decayed to (default: the profile's last activity).

    Returns
    -------
    dict
        ``found`` (False when no identifier is linked; then also ``erased``: which of the given
        identifiers are tombstoned), ``profile`` (row), ``identifiers``, ``evidence``,
        ``interests``, ``purchased``, ``consent``, ``last_seen``, ``events``, ``decisions``.

    Raises
    ------
    SchemaError
        If a value is malformed.
    """
    keys = _keys(engine, ids)
    g = engine.identity
    with engine._lock:
        rows = g.resolve_keys(keys)
        hit = rows[rows >= 0]
        if hit.shape[0] == 0:
            k = keys.copy()
            k[1] &= np.uint64(0xFFFFFFFF)
            nodes = g._node_of(k)
            erased = {
                t: bool(n >= 0 and (int(g.nodes_["state"][n]) & 0x0F) == 2) for t, n in zip(ids, nodes.tolist())
            }
            return {"found": False, "erased": erased}
        row = int(hit[0])
        prof = engine.profiles
        t = int(prof.last_seen_[row]) if now is None else now
        fids, scores = prof.read(row, t, engine.half_lives_)
        cat = engine.catalog
        purchased = [cat.ids[int(i)] for i in prof.purchased_[row].tolist() if i >= 0]
        consent = {name: bool(int(prof.consent_[row]) & bit) for name, bit in CONSENT_BITS.items()}
        log = engine.decision_log
        prof_col = log.column("profile")
        mask = prof_col == row
        decisions = []
        if mask.any():
            seq, time_, slot = log.column("seq")[mask], log.column("time")[mask], log.column("slot")[mask]
            placement, content = log.column("placement")[mask], log.column("content")[mask]
            names = engine.placements
            for s, tt, sl, pl, c in zip(seq.tolist(), time_.tolist(), slot.tolist(), placement.tolist(), content.tolist()):
                pname = names[pl] if 0 <= pl < len(names) else str(pl)
                contents = engine.placement(pname).contents if pname in names else []
                decisions.append({
                    "decision_id": f"{engine.instance}-{s}", "time": tt, "placement": pname, "slot": sl,
                    "content": contents[c] if 0 <= c < len(contents) else c,
                })
        return {
            "found": True,
            "profile": row,
            "identifiers": g.identifiers_of(row),
            "evidence": g.evidence_of(row),
            "interests": [(cat.fv_names[int(f)], float(s)) for f, s in zip(fids, scores)],
            "purchased": purchased,
            "consent": consent,
            "last_seen": int(prof.last_seen_[row]),
            "events": int(prof.events_[row]),
            "decisions": decisions,
        }
