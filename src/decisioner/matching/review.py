"""Review of suggestions against a durable engine directory: accepted suggestions become identity
links with evidence source ``match``; rejected ones become do-not-link pairs.

**Accepting** suggestion ``s`` links its two records through a bridge identifier of type
``match`` (value: the suggestion id): two ``identify`` events on channel ``match``, each carrying
one record's keyed id and the bridge, applied through :meth:`Engine.apply_record` (logged,
durable, replayed like any event; nothing raw is sent: the ids are the keyed hashes the
suggestion carries). A record id type shared by both records (one system deduplicated) cannot sit
in one event twice; the bridge links them anyway. The identity merge rules apply as to any
event: a merge that would give a person two values of a unique type is refused (reported as
``refused``), and the link is reversible with the existing unmerge, ``engine.unlink({"match":
suggestion_id})``, which splits the records apart again and keeps them apart (do-not-link pairs
with the bridge).

**Rejecting** suggestion ``s`` adds the pair of record keys to ``DIR/matching/do_not_link.npy``
(uint64[D, 2], keyed record keys, never ids): later matches never link or suggest that pair.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import xxhash

from ..errors import SchemaError

if TYPE_CHECKING:
    from ..engine import Engine

__all__ = ["suggestion_id", "load_do_not_link", "add_do_not_link", "review", "BRIDGE_TYPE"]

#: the identifier type of the bridge that links an accepted suggestion's records
BRIDGE_TYPE = "match"
_DNL = "do_not_link.npy"


def suggestion_id(a_key: str, b_key: str) -> str:
    """Stable id of the suggestion between two keyed records (order-free; 16 hex digits)."""
    lo, hi = sorted((a_key, b_key))
    return f"{xxhash.xxh3_64_intdigest(f'{lo}|{hi}'.encode()):016x}"


def load_do_not_link(directory: str | Path) -> np.ndarray:
    """uint64[D, 2] do-not-link pairs of record keys kept in ``directory`` (none: shape (0, 2))."""
    p = Path(directory) / "matching" / _DNL
    if not p.is_file():
        return np.zeros((0, 2), dtype=np.uint64)
    arr: np.ndarray = np.load(p)
    return arr


def add_do_not_link(directory: str | Path, pairs: np.ndarray) -> int:
    """Add do-not-link pairs (uint64[k, 2] record keys); returns how many were new."""
    have = load_do_not_link(directory)
    known = {tuple(sorted(p)) for p in have.tolist()}
    new = [tuple(sorted(p)) for p in pairs.tolist() if tuple(sorted(p)) not in known]
    new = list(dict.fromkeys(new))
    if new:
        d = Path(directory) / "matching"
        d.mkdir(parents=True, exist_ok=True)
        out = np.concatenate([have, np.array(new, dtype=np.uint64).reshape(-1, 2)])
        tmp = d / "do_not_link.tmp.npy"
        np.save(tmp, out)
        tmp.replace(d / _DNL)
    return len(new)


def _key_of(hexkey: object, sid: str, side: str) -> tuple[int, str]:
    if not isinstance(hexkey, str) or len(hexkey) != 32:
        raise SchemaError(
            f"Expected a keyed record id (32 hex digits; match with a secret), got {hexkey!r} - at suggestion "
            f"{sid!r}, `{side}_key`"
        )
    try:
        return int(hexkey[:16], 16), hexkey
    except ValueError:
        raise SchemaError(
            f"Expected 32 hex digits, got {hexkey[:40]!r} - at suggestion {sid!r}, `{side}_key`"
        ) from None


def review(
    engine: Engine, directory: str | Path, suggestions: Iterable[dict[str, Any]], *, accept: Iterable[str] = (),
    reject: Iterable[str] = (), time: int,
) -> dict[str, Any]:
    """Apply review decisions: ``accept`` / ``reject`` are suggestion ids (``"linked"`` in
    ``accept`` accepts every suggestion auto-link joined). Everything is checked before anything
    changes.

    Returns ``{"accepted": {id: "linked" | "refused"}, "rejected": [ids], "do_not_link_added": k}``.

    Raises
    ------
    SchemaError
        If an id is unknown, both accepted and rejected, or its suggestion lacks keyed ids.
    """
    from ..journal import Record, TrackOp
    from ..schemas import Identify

    by_id = {s["id"]: s for s in suggestions}
    acc = list(dict.fromkeys(accept))
    if "linked" in acc:
        acc = [x for x in acc if x != "linked"] + [i for i, s in by_id.items() if s.get("status") == "linked"]
        acc = list(dict.fromkeys(acc))
    rej = list(dict.fromkeys(reject))
    for sid in acc + rej:
        if sid not in by_id:
            raise SchemaError(f"Expected a suggestion id of the file, got {sid[:40]!r} - at `--accept`/`--reject`")
    both = set(acc) & set(rej)
    if both:
        raise SchemaError(f"Expected each suggestion accepted or rejected, got {sorted(both)[0]!r} both")
    plan = []
    for sid in acc + rej:
        s = by_id[sid]
        plan.append((sid, _key_of(s.get("a_key"), sid, "a"), _key_of(s.get("b_key"), sid, "b"), s))
    accepted: dict[str, str] = {}
    dnl = []
    bridge_of = engine.identity.hashed_ids
    for sid, (ka, ha), (kb, hb), s in plan:
        if sid in rej:
            dnl.append((ka, kb))
            continue
        keys, _ = engine.identity.keys_of({BRIDGE_TYPE: sid})
        bridge = bridge_of({BRIDGE_TYPE: sid}, keys)[BRIDGE_TYPE]
        for side, hexkey in (("a", ha), ("b", hb)):
            ev = Identify(time=time, ids={s[f"{side}_type"]: hexkey, BRIDGE_TYPE: bridge}, channel="match")
            engine.apply_record(Record(engine.ops_, TrackOp(ev)))
        # resolved after both events: the second merge may move the first record's profile
        rows = [engine.identity.resolve_key(int(h[:16], 16), int(h[16:], 16) & 0xFFFFFFFF) for h in (ha, hb)]
        accepted[sid] = "linked" if rows[0] >= 0 and rows[0] == rows[1] else "refused"
    added = add_do_not_link(directory, np.array(dnl, dtype=np.uint64).reshape(-1, 2)) if dnl else 0
    return {"accepted": accepted, "rejected": rej, "do_not_link_added": added}
