"""Blocking: which pairs of records are compared at all.

A blocking rule is a list of parts, ``field`` (its normalised value) or ``field:transform``
(``metaphone``, ``nysiis``, ``soundex``, ``year``, ``prefixN``); two records meet under a rule
when every part is equal and present. The candidate pairs are the union over the rules, each
pair once (a pair is produced by the first rule under which it meets: Splink's scheme), so the
work is bounded by the blocks' sizes, never by ``n^2``. A block larger than
``max_block_size`` is skipped and counted (a value shared by thousands of records, such as a
placeholder, identifies nobody).

Within a load, blocks are int64 codes in memory. What is kept after a load (the index that later
loads are matched against, :mod:`.index`) is the keyed hash of each rule's key, with the
deployment secret (:func:`decisioner.hashing.identifier_key` over ``block:<rule>`` and the
parts joined by 0x1f): the values themselves are never stored.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .._kernels import matching as K
from ..config.matching import blocking_part
from ..hashing import identifier_key
from .comparisons import FieldColumn
from .normalise import codes_of, phonetic

__all__ = ["block_codes", "candidate_pairs", "keyed_block_keys", "random_pairs"]


def _part_codes(col: FieldColumn, transform: str | None, prefix: int) -> tuple[np.ndarray, list[str]]:
    """int32 code per record of one rule part (-1 missing) and the strings the codes stand for."""
    codes = col.enc.codes
    if transform is None:
        return codes, col.enc.values
    if transform == "prefix":
        fn: Callable[[str], str] = lambda v: v[:prefix]  # noqa: E731
    elif transform == "year":
        fn = lambda v: v[:4] if len(v) >= 4 else ""  # noqa: E731
    else:
        fn = phonetic(transform)
    outputs = [fn(v) for v in col.enc.values]
    per_value = codes_of(outputs, lambda v: v)
    names: dict[int, str] = {}
    for c, v in zip(per_value.tolist(), outputs, strict=True):
        names.setdefault(c, v)
    out = np.full(codes.shape[0], -1, dtype=np.int32)
    ok = codes >= 0
    if per_value.shape[0]:
        out[ok] = per_value[codes[ok]]
    return out, [names.get(i, "") for i in range(len(names))]


def _combine(parts: list[np.ndarray], idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Dense codes (int64) of the tuples of part codes at rows ``idx``, and one row per code
    (int64[k, P]: the part codes it stands for)."""
    comb = np.zeros(idx.shape[0], dtype=np.int64)
    for c in parts:
        x = c[idx].astype(np.int64)
        comb = comb * (int(x.max()) + 1) + x
        _, comb = np.unique(comb, return_inverse=True)  # re-densify: never overflows
        comb = comb.reshape(-1).astype(np.int64)
    first = np.full(int(comb.max()) + 1 if comb.shape[0] else 0, -1, dtype=np.int64)
    first[comb[::-1]] = np.arange(comb.shape[0] - 1, -1, -1)
    rows = np.stack([c[idx][first] for c in parts], axis=1).astype(np.int64)
    return comb, rows


def block_codes(
    cols: dict[str, FieldColumn], rules: tuple[tuple[str, ...], ...],
) -> tuple[np.ndarray, list[tuple[np.ndarray, list[list[str]]]]]:
    """int64[R, n] block code of every record under every rule (-1: not blocked under it), and
    per rule what its codes stand for: (int64[k, P] part codes per block code, the strings of
    each part's codes), for keyed hashing."""
    n = next(iter(cols.values())).enc.codes.shape[0] if cols else 0
    out = np.full((len(rules), n), -1, dtype=np.int64)
    keys: list[tuple[np.ndarray, list[list[str]]]] = []
    fields = set(cols)
    for r, rule in enumerate(rules):
        present = np.ones(n, dtype=bool)
        codes, strings = [], []
        for p in rule:
            name, tr, prefix = blocking_part(p, fields, f"`matching.blocking[{r}]`")
            c, s = _part_codes(cols[name], tr, prefix)
            codes.append(c)
            strings.append(s)
            present &= c >= 0
        idx = np.flatnonzero(present)
        if idx.shape[0] == 0:
            keys.append((np.zeros((0, len(rule)), np.int64), strings))
            continue
        comb, rows = _combine(codes, idx)
        out[r, idx] = comb
        keys.append((rows, strings))
    return out, keys


def keyed_block_keys(
    codes: np.ndarray, keys: list[tuple[np.ndarray, list[list[str]]]], rules: tuple[tuple[str, ...], ...],
    secret: bytes,
) -> np.ndarray:
    """uint64[R, n] keyed hash of each record's key under each rule (0: none); each distinct key
    hashed once."""
    out = np.zeros(codes.shape, dtype=np.uint64)
    for r, rule in enumerate(rules):
        label = "block:" + "+".join(rule)
        rows, strings = keys[r]
        hashed = np.array(
            [identifier_key(secret, label, "\x1f".join(strings[j][k] for j, k in enumerate(row)))[0]
             for row in rows.tolist()] or [0], dtype=np.uint64)
        c = codes[r]
        ok = c >= 0
        out[r, ok] = hashed[c[ok]]
    return out


def candidate_pairs(
    codes: np.ndarray, sources: np.ndarray, *, link_only: bool, max_block: int,
) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """Candidate pairs (int64[E] a < b) of the union of the rules' blocks, each pair once; and
    counts: pairs per rule, pairs before de-duplication, records in skipped blocks."""
    r_count = codes.shape[0]
    src = np.ascontiguousarray(sources, dtype=np.int64)
    codes = np.array(codes, dtype=np.int64, order="C")  # a copy: oversized blocks are dropped from it
    skipped = 0
    for r in range(r_count):
        c = codes[r]
        ok = c >= 0
        if not ok.any():
            continue
        sizes = np.bincount(c[ok])
        big = np.zeros(c.shape[0], dtype=bool)
        big[ok] = sizes[c[ok]] > max_block
        skipped += int(big.sum())
        c[big] = -1  # a skipped block makes no pairs, nor hides the pairs of later rules
    mode = 1 if link_only else 0
    a_parts, b_parts = [], []
    stats: dict[str, int] = {"generated": 0, "skipped_records": skipped}
    empty = np.empty(0, dtype=np.int64)
    for r in range(r_count):
        order = np.argsort(codes[r]).astype(np.int64)  # blocks need grouping, not stability
        counts = np.zeros(2, dtype=np.int64)
        k = K.block_pairs(codes, order, r, src, mode, max_block, empty, empty, counts)
        stats[f"rule_{r}"] = int(k)
        stats["generated"] += int(counts[0])
        a = np.empty(k, dtype=np.int64)
        b = np.empty(k, dtype=np.int64)
        if k:
            K.block_pairs(codes, order, r, src, mode, max_block, a, b, counts)
        a_parts.append(a)
        b_parts.append(b)
    a_all = np.concatenate(a_parts) if a_parts else np.empty(0, np.int64)
    b_all = np.concatenate(b_parts) if b_parts else np.empty(0, np.int64)
    return a_all, b_all, stats


def random_pairs(
    n: int, sources: np.ndarray, count: int, *, link_only: bool, seed: int,
) -> tuple[np.ndarray, np.ndarray]:
    """``count`` random pairs of distinct records (across sources with ``link_only``), seeded:
    the sample ``u`` is estimated from."""
    rng = np.random.default_rng(seed)
    if n < 2:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    a = rng.integers(0, n, size=count, dtype=np.int64)
    b = rng.integers(0, n, size=count, dtype=np.int64)
    keep = a != b
    if link_only:
        keep &= sources[a] != sources[b]
    return a[keep], b[keep]
