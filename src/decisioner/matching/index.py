"""The match index of a durable engine directory: what later loads are matched against.

Kept in ``DIR/matching/`` (``index.npz`` plus ``index.json``), never a raw value:

* ``record`` uint64[2, m]: each indexed record's identity key and check tag (the keyed hash of
  its record id as identifier type ``<source>_<id_type>``, :func:`record_keys`), the key the
  identity graph knows the record by once linked;
* ``blocks`` uint64[R, m]: its keyed blocking keys, one per rule (0: none);
* ``fields`` uint64[F, m]: per compared field the keyed hash of its normalised value (0:
  missing): a blocking key of one field, which lets a pair be compared at the ``exact`` level.

Against the index a pair's level on a field is therefore ``exact`` (equal keys), ``else`` or
missing: fuzzy levels need the values, which are not kept. The weights are the ones learned on
the new load. ``index.json`` holds the rules' fingerprint: a load with other rules is refused
against it (its keys would mean something else). Records of erased people leave the index
(:meth:`MatchIndex.without_erased`) when ``decisioner privacy forget`` erases them and at every
match against the graph.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from ..config.matching import MatchingSpec
from ..errors import ConfigError
from ..hashing import identifier_key
from .comparisons import FieldColumn

__all__ = ["MatchIndex", "record_type", "record_keys", "field_keys", "rules_fingerprint", "identity_suggestions",
           "forget_erased", "records_of"]

INDEX_VERSION = 1


def record_type(spec: MatchingSpec, source: str) -> str:
    """The identifier type of a record id: ``<source>_<id_type>``, or ``id_type`` without a source."""
    return f"{source}_{spec.id_type}" if source else spec.id_type


def record_keys(
    spec: MatchingSpec, ids: list[str], sources: np.ndarray, names: list[str], secret: bytes,
) -> np.ndarray:
    """uint64[2, n]: the identity key and check tag of each record id (as the identity graph
    hashes it: type ``record_type``, the id trimmed)."""
    out = np.empty((2, len(ids)), dtype=np.uint64)
    for i, (rid, s) in enumerate(zip(ids, sources.tolist(), strict=True)):
        out[0, i], out[1, i] = identifier_key(secret, record_type(spec, names[s]), rid.strip())
    return out


def field_keys(cols: list[FieldColumn], secret: bytes) -> np.ndarray:
    """uint64[F, n]: keyed hash of each record's normalised value per field (0: missing)."""
    n = cols[0].enc.codes.shape[0] if cols else 0
    out = np.zeros((len(cols), n), dtype=np.uint64)
    for f, col in enumerate(cols):
        label = "field:" + col.spec.field
        hashed = np.array([identifier_key(secret, label, v)[0] for v in col.enc.values] or [0], dtype=np.uint64)
        c = col.enc.codes
        ok = c >= 0
        out[f, ok] = hashed[c[ok]]
    return out


def rules_fingerprint(spec: MatchingSpec) -> str:
    """A digest of what the keys depend on: the blocking rules and the fields with their kinds."""
    text = json.dumps([[list(r) for r in spec.blocking], [[c.field, c.kind] for c in spec.comparisons],
                       spec.id_type, spec.default_phone_region])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class MatchIndex:
    """Keyed keys of the records matched before (see the module docstring)."""

    def __init__(
        self, spec: MatchingSpec, record: np.ndarray, blocks: np.ndarray, fields: np.ndarray,
        tcode: np.ndarray | None = None, tnames: list[str] | None = None,
    ) -> None:
        self.spec = spec
        self.record = record
        self.blocks = blocks
        self.fields = fields
        self.tcode = tcode if tcode is not None else np.zeros(record.shape[1], np.int64)
        self.tnames = tnames if tnames is not None else [spec.id_type]

    @property
    def types(self) -> list[str]:
        """The identifier type of each indexed record id."""
        return [self.tnames[c] for c in self.tcode.tolist()]

    @classmethod
    def empty(cls, spec: MatchingSpec) -> MatchIndex:
        """An index with no record."""
        return cls(spec, np.zeros((2, 0), np.uint64), np.zeros((len(spec.blocking), 0), np.uint64),
                   np.zeros((len(spec.comparisons), 0), np.uint64))

    def __len__(self) -> int:
        return int(self.record.shape[1])

    @classmethod
    def load(cls, directory: str | Path, spec: MatchingSpec) -> MatchIndex:
        """The index of ``directory`` (empty when there is none).

        Raises
        ------
        ConfigError
            If it was built with other rules or by another version.
        """
        d = Path(directory) / "matching"
        meta_path = d / "index.json"
        if not meta_path.is_file():
            return cls.empty(spec)
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if meta.get("version") != INDEX_VERSION or meta.get("rules") != rules_fingerprint(spec):
            raise ConfigError(
                f"Expected a match index of version {INDEX_VERSION} built with these rules ({rules_fingerprint(spec)}),"
                f" got version {meta.get('version')!r} with rules {meta.get('rules')!r} - at {str(meta_path)!r} "
                "(match with the rules it was built with, or move the directory's `matching/` away)"
            )
        with np.load(d / "index.npz") as z:
            return cls(spec, z["record"], z["blocks"], z["fields"], z["tcode"], list(meta["types"]))

    def extend(self, record: np.ndarray, blocks: np.ndarray, fields: np.ndarray, types: list[str]) -> MatchIndex:
        """This index with more records (``types``: their record id types; records already in it,
        by record key, are not added again)."""
        known = set(self.record[0].tolist())
        new = np.array([k not in known for k in record[0].tolist()], dtype=bool)
        names = list(self.tnames)
        code = {t: i for i, t in enumerate(names)}
        tc = np.array([code.setdefault(t, len(code)) for t in types], dtype=np.int64)
        names = sorted(code, key=code.__getitem__)
        return MatchIndex(self.spec, np.concatenate([self.record, record[:, new]], axis=1),
                          np.concatenate([self.blocks, blocks[:, new]], axis=1),
                          np.concatenate([self.fields, fields[:, new]], axis=1),
                          np.concatenate([self.tcode, tc[new]]), names)

    def without_erased(self, identity: Any) -> tuple[MatchIndex, int]:
        """This index without the records whose identifier the identity graph ``identity`` holds
        as a tombstone (erased: what the index kept about them goes too), and how many left."""
        if not len(self):
            return self, 0
        keep = ~np.asarray(identity.tombstoned(self.record), dtype=bool)
        gone = int((~keep).sum())
        if not gone:
            return self, 0
        return MatchIndex(self.spec, self.record[:, keep], self.blocks[:, keep], self.fields[:, keep],
                          self.tcode[keep], list(self.tnames)), gone

    def save(self, directory: str | Path) -> None:
        """Write the index atomically (arrays first, then the metadata that makes them current)."""
        d = Path(directory) / "matching"
        d.mkdir(parents=True, exist_ok=True)
        tmp = d / "index.tmp.npz"
        np.savez(tmp, record=self.record, blocks=self.blocks, fields=self.fields, tcode=self.tcode)
        tmp.replace(d / "index.npz")
        meta = d / "index.json.tmp"
        meta.write_text(json.dumps({"version": INDEX_VERSION, "rules": rules_fingerprint(self.spec),
                                    "records": len(self), "types": self.tnames}),
                        encoding="utf-8")
        meta.replace(d / "index.json")

    def candidates(self, blocks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pairs (new record row, index row) sharing a keyed blocking key under some rule, each
        once; a key shared by more than ``max_block_size`` indexed records is skipped."""
        pa, pb = [], []
        cap = self.spec.max_block_size
        for r in range(blocks.shape[0]):
            old = self.blocks[r]
            order = np.argsort(old, kind="stable")
            sorted_old = old[order]
            new = blocks[r]
            lo = np.searchsorted(sorted_old, new, side="left")
            hi = np.searchsorted(sorted_old, new, side="right")
            cnt = np.where(new == 0, 0, hi - lo)
            cnt[cnt > cap] = 0
            rows = np.repeat(np.arange(new.shape[0]), cnt)
            starts = np.repeat(lo, cnt)
            offs = np.arange(rows.shape[0]) - np.repeat(np.cumsum(cnt) - cnt, cnt)
            pa.append(rows.astype(np.int64))
            pb.append(order[starts + offs].astype(np.int64))
        if not pa:
            return np.empty(0, np.int64), np.empty(0, np.int64)
        a, b = np.concatenate(pa), np.concatenate(pb)
        key = np.unique(a * np.int64(max(len(self), 1)) + b)
        return key // max(len(self), 1), key % max(len(self), 1)

    def levels(self, fields: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """int8[E, F] levels of pairs (new row, index row): 0 (exact) on equal keys, else the
        ``else`` level, -1 when either value is missing."""
        out = np.empty((a.shape[0], fields.shape[0]), dtype=np.int8)
        for f, c in enumerate(self.spec.comparisons):
            x, y = fields[f, a], self.fields[f, b]
            lv = np.where(x == y, 0, len(c.levels)).astype(np.int8)
            lv[(x == 0) | (y == 0)] = -1
            out[:, f] = lv
        return out


def identity_suggestions(
    graph: Any, spec: MatchingSpec, ids: list[str], sources: np.ndarray, source_names: list[str],
    columns: dict[str, list[str | None]], rkeys: np.ndarray, linked: set[tuple[str, str]] | None = None,
) -> list[dict[str, Any]]:
    """Records of a load whose email or phone number (comparisons of kind ``email`` / ``phone``)
    the identity graph already knows: one suggestion per record and identifier, to link the
    record to the person who holds it (probability 1 on that field alone; status ``review``).
    The graph normalises and hashes the value with its own rules and secret; nothing is kept.
    Pairs already linked (``linked``: (record key hex, identifier key hex)) are left out."""
    from ..errors import DecisionerError
    from .review import suggestion_id

    out: list[dict[str, Any]] = []
    for c in spec.comparisons:
        if c.kind not in ("email", "phone"):
            continue
        id_type = c.kind
        col = columns.get(c.field, [])
        for i, v in enumerate(col):
            if v is None:
                continue
            try:
                keys, _ = graph.keys_of({id_type: v})
            except DecisionerError:
                continue  # a value the identity rules refuse is a record error already
            row = int(graph.resolve_keys(keys)[0])
            if row < 0:
                continue
            a_key = f"{int(rkeys[0, i]):016x}{int(rkeys[1, i]):016x}"
            b_key = f"{int(keys[0, 0]):016x}{int(keys[1, 0]) & 0xFFFFFFFF:016x}"
            if linked is not None and (a_key, b_key) in linked:
                continue
            out.append({
                "id": suggestion_id(a_key, b_key), "a": ids[i], "b": None, "probability": 1.0, "status": "review",
                "against": "identity", "evidence": {c.field: {"level": "exact", "weight": None}},
                "a_key": a_key, "a_type": record_type(spec, source_names[int(sources[i])]),
                "b_key": b_key, "b_type": id_type,
            })
    return out


def forget_erased(directory: str | Path, identity: Any, named: np.ndarray | None = None) -> int:
    """Drop from ``directory``'s match index every record the identity graph holds as erased,
    and those whose record key is among ``named`` (uint64[2, m]: the keys an erasure request
    names, which the graph may never have linked), whatever rules built it; returns how many
    (0 when there is no index)."""
    d = Path(directory) / "matching"
    meta_path = d / "index.json"
    if not meta_path.is_file():
        return 0
    with np.load(d / "index.npz") as z:
        arrays = {k: z[k] for k in ("record", "blocks", "fields", "tcode")}
    keep = ~np.asarray(identity.tombstoned(arrays["record"]), dtype=bool)
    if named is not None and named.size:
        keep &= ~np.isin(arrays["record"][0], np.asarray(named, dtype=np.uint64)[0])
    gone = int((~keep).sum())
    if gone:
        tmp = d / "index.tmp.npz"
        np.savez(tmp, record=arrays["record"][:, keep], blocks=arrays["blocks"][:, keep],
                 fields=arrays["fields"][:, keep], tcode=arrays["tcode"][keep])
        tmp.replace(d / "index.npz")
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        meta["records"] = int(keep.sum())
        new_meta = d / "index.json.tmp"
        new_meta.write_text(json.dumps(meta), encoding="utf-8")
        new_meta.replace(meta_path)
    return gone


def records_of(directory: str | Path, identity: Any, named: np.ndarray, row: int = -1) -> int:
    """How many records of ``directory``'s match index are about the person: record keys among
    ``named`` (uint64[2, m]) or among the identifiers of profile ``row`` (for an access export;
    the index holds keyed hashes only, so a count is what it can say about them)."""
    d = Path(directory) / "matching"
    if not (d / "index.json").is_file():
        return 0
    keys = [np.asarray(named, dtype=np.uint64)[0]]
    if row >= 0:
        keys.append(identity.nodes_["key"][identity.members(row)].astype(np.uint64))
    with np.load(d / "index.npz") as z:
        record = z["record"]
    return int(np.isin(record[0], np.concatenate(keys)).sum())
