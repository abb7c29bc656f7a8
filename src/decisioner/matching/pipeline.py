"""One batch match of a load: normalise, block, compare, weigh (EM), cluster, suggest.

:func:`match_records` runs the steps of :mod:`decisioner.matching` over a load's records (and,
optionally, the index of records matched before, :mod:`.index`) and returns a
:class:`MatchResult`: the compared pairs with their levels and probabilities, the clusters, the
suggestions, pair counts, timings, and precision/recall/F1 when the load carries true entities.

Privacy: the raw values live only in the :class:`~.records.Records` given and in the encoded
columns while the call runs; the result holds record ids, levels, weights, probabilities and
keyed blocking keys, never a value.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..config.matching import ComparisonSpec, MatchingSpec
from ..errors import SchemaError
from .blocking import block_codes, candidate_pairs, keyed_block_keys, random_pairs
from .clustering import cluster, pair_metrics
from .comparisons import FieldColumn, compare_pairs, conflicts, level_names
from .em import Weights, estimate_u, fit_em, pattern_codes
from .index import MatchIndex, field_keys, record_keys, record_type
from .normalise import Encoded, encode
from .records import Records
from .review import suggestion_id

__all__ = ["MatchResult", "match_records"]


@dataclass
class MatchResult:
    """What a match of one load found (see :func:`match_records`).

    ``a``, ``b`` (int64[E]): the compared pairs (record rows); ``levels`` (int8[E, F]); ``prob``
    (float64[E]) match probabilities; ``label`` (int64[n]) the cluster of each record (its
    lowest row); ``weights`` the Fellegi-Sunter parameters; ``block_keys`` (uint64[R, n]) the
    keyed blocking keys of the records (with a secret); ``stats``, ``timings`` (seconds) and
    ``metrics`` (precision, recall, f1 when the load has true entities, else empty).
    """

    records: Records
    spec: MatchingSpec
    a: np.ndarray
    b: np.ndarray
    levels: np.ndarray
    prob: np.ndarray
    label: np.ndarray
    weights: Weights
    block_keys: np.ndarray | None
    stats: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    #: with a secret: uint64[2, n] keyed record ids, uint64[F, n] keyed field values
    record_keys: np.ndarray | None = None
    field_keys: np.ndarray | None = None
    #: against an index: pairs (load row, index row), their levels and probabilities
    index: MatchIndex | None = None
    index_pairs: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None
    #: per field with term-frequency adjustment, each compared pair's log2 adjustment
    tf_adjust: dict[int, np.ndarray] = field(default_factory=dict)

    def _evidence(self, levels: np.ndarray, pair: int = -1) -> dict[str, Any]:
        factors = self.weights.log2_factors()
        ev = {}
        for f, c in enumerate(self.spec.comparisons):
            lv = int(levels[f])
            extra = float(self.tf_adjust[f][pair]) if pair >= 0 and f in self.tf_adjust else 0.0
            ev[c.field] = {"level": "missing", "weight": 0.0} if lv < 0 else {
                "level": level_names(c)[lv], "weight": round(float(factors[f][lv]) + extra, 3)}
        return ev

    def _keyed(self, out: dict[str, Any], side: str, key: np.ndarray | None, row: int, source: str) -> None:
        if key is not None:
            out[f"{side}_key"] = f"{int(key[0, row]):016x}{int(key[1, row]):016x}"
        out[f"{side}_type"] = record_type(self.spec, source)

    def suggestions(self) -> Iterator[dict[str, Any]]:
        """One dict per pair at or above ``review``, most probable first: record ids (``a``,
        ``b``), ``probability``, ``status`` (``linked``: joined by auto-link; ``review``: for a
        person to accept or reject) and the field-by-field ``evidence`` (level name and weight
        ``log2(m/u)``; a missing value: level ``missing``, weight 0)."""
        keep = np.flatnonzero(self.prob >= self.spec.review)
        keep = keep[np.argsort(-self.prob[keep], kind="stable")]
        ids = self.records.ids
        srcs = self.records.source_names
        for e in keep.tolist():
            ra, rb = int(self.a[e]), int(self.b[e])
            out: dict[str, Any] = {
                "id": "", "a": ids[ra], "b": ids[rb], "probability": round(float(self.prob[e]), 6),
                "status": "linked" if self.label[ra] == self.label[rb] else "review",
                "evidence": self._evidence(self.levels[e], e),
            }
            s = self.records.sources
            self._keyed(out, "a", self.record_keys, ra, srcs[int(s[ra])])
            self._keyed(out, "b", self.record_keys, rb, srcs[int(s[rb])])
            out["id"] = suggestion_id(out.get("a_key", out["a"]), out.get("b_key", out["b"]))
            yield out
        if self.index_pairs is None or self.index is None:
            return
        ia, ib, ilev, iprob = self.index_pairs
        keep = np.flatnonzero(iprob >= self.spec.review)
        for e in keep[np.argsort(-iprob[keep], kind="stable")].tolist():
            ra, rb = int(ia[e]), int(ib[e])
            rec = self.index.record
            out = {"id": "", "a": ids[ra], "b": None, "probability": round(float(iprob[e]), 6),
                   "status": "linked" if iprob[e] >= self.spec.auto_link else "review", "against": "graph",
                   "evidence": self._evidence(ilev[e])}
            self._keyed(out, "a", self.record_keys, ra, srcs[int(self.records.sources[ra])])
            out["b_key"] = f"{int(rec[0, rb]):016x}{int(rec[1, rb]):016x}"
            out["b_type"] = self.index.types[rb] if self.index.types else self.spec.id_type
            out["id"] = suggestion_id(out.get("a_key", out["a"]), out["b_key"])
            yield out

    def report(self) -> dict[str, Any]:
        """Counts, timings and metrics, JSON-ready."""
        sizes = np.bincount(self.label) if self.label.shape[0] else np.zeros(0, np.int64)
        return {
            "records": len(self.records), "bad_records": len(self.records.errors),
            "errors": [{"line": e.line, "error": e.message} for e in self.records.errors[:100]],
            "candidate_pairs": int(self.a.shape[0]), **self.stats,
            "review_pairs": int(((self.prob >= self.spec.review) & (self.label[self.a] != self.label[self.b])).sum())
            if self.a.shape[0] else 0,
            "clusters": int((sizes >= 2).sum()), "records_in_clusters": int(sizes[sizes >= 2].sum()),
            "prior": self.weights.prior, "em_iterations": self.weights.iterations,
            "timings": {k: round(v, 4) for k, v in self.timings.items()}, **self.metrics,
        }


def _tf_adjustments(
    specs: list[ComparisonSpec], encoded: dict[str, Encoded], weights: Weights, levels: np.ndarray, a: np.ndarray,
    b: np.ndarray,
) -> dict[int, np.ndarray]:
    """Per field with ``term_frequency``, the log2 adjustment of each pair (float64[E], 0 off the
    ``exact`` level): ``log2(u_exact / tf(value))``, ``tf`` the value's share of the field's
    present values, so two records agreeing on a rare value gain more than on a common one."""
    out: dict[int, np.ndarray] = {}
    for f, c in enumerate(specs):
        if not c.term_frequency:
            continue
        codes = encoded[c.field].codes
        present = codes[codes >= 0]
        if present.shape[0] == 0:
            continue
        tf = np.bincount(present).astype(np.float64) / present.shape[0]
        adj = np.zeros(a.shape[0], dtype=np.float64)
        hit = np.flatnonzero(levels[:, f] == 0)
        adj[hit] = np.log2(weights.u[f][0] / np.maximum(tf[codes[a[hit]]], 1e-12))
        out[f] = adj
    return out


def _refuse(records: Records) -> None:
    first = "; ".join(f"line {e.line}: {e.message}" for e in records.errors[:5])
    raise SchemaError(
        f"Expected no bad records (`matching.on_bad_record = \"refuse\"`), got {len(records.errors)}: {first}"
    )


def match_records(
    records: Records, spec: MatchingSpec, *, secret: bytes | None = None, seed: int = 0,
    do_not_link: list[tuple[str, str]] | None = None, index: MatchIndex | None = None,
    do_not_link_keys: np.ndarray | None = None,
) -> MatchResult:
    """Match the records of one load among themselves.

    Parameters
    ----------
    records
        The load (:func:`~.records.read_records`); records whose values the normalisers refuse
        join its errors and are left out.
    spec
        The match rules.
    secret
        The deployment secret: with it the result carries keyed blocking keys (for the index).
    seed
        Seeds the random pairs ``u`` is estimated from.
    do_not_link
        Pairs of record ids never to be joined (rejected suggestions).
    index
        Records of earlier loads (keyed keys only) to match the load against too (needs
        ``secret``); pairs with them are suggested, never clustered here.
    do_not_link_keys
        uint64[D, 2] pairs of keyed record ids never to be joined or suggested (needs ``secret``).

    Raises
    ------
    SchemaError
        With ``on_bad_record = "refuse"`` and any bad record (nothing is matched).
    """
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    if spec.on_bad_record == "refuse" and records.errors:
        _refuse(records)
    specs = list(spec.comparisons)
    encoded = {}
    bad: dict[int, str] = {}
    for c in specs:
        enc, errs = encode(records.columns[c.field], c.kind, region=spec.default_phone_region)
        encoded[c.field] = enc
        for i, msg in errs.items():
            bad.setdefault(i, f"{msg} - at line {int(records.lines[i])}, column {c.field!r}")
    if bad:
        records = records.drop(bad)
        if spec.on_bad_record == "refuse":
            _refuse(records)
        keep = np.array([i not in bad for i in range(len(next(iter(encoded.values())).codes))], dtype=bool)
        for enc in encoded.values():
            enc.codes = enc.codes[keep]
    cols = {c.field: FieldColumn(c, encoded[c.field]) for c in specs}
    n = len(records)
    timings["normalise"] = time.perf_counter() - t0

    t = time.perf_counter()
    codes, keys = block_codes(cols, spec.blocking)
    link_only = spec.link_type == "link_only"
    a, b, bstats = candidate_pairs(codes, records.sources, link_only=link_only, max_block=spec.max_block_size)
    block_keys = keyed_block_keys(codes, keys, spec.blocking, secret) if secret is not None else None
    timings["block"] = time.perf_counter() - t

    t = time.perf_counter()
    col_list = [cols[c.field] for c in specs]
    levels = compare_pairs(col_list, a, b)
    timings["compare"] = time.perf_counter() - t

    t = time.perf_counter()
    ua, ub = random_pairs(n, records.sources, spec.u_pairs, link_only=link_only, seed=seed)
    u = estimate_u(specs, compare_pairs(col_list, ua, ub))
    pats, counts, inv = pattern_codes(levels)
    weights = fit_em(specs, pats, counts, u, prior=None, iterations=spec.em_iterations)
    # predictions use the chance that two random records match (Splink's scheme): the blocking
    # agreement is evidence already counted in the levels, so the enriched share of matches
    # among candidate pairs would count it twice
    if link_only:
        per = np.bincount(records.sources).astype(np.float64)
        total = float((per.sum() ** 2 - (per ** 2).sum()) / 2.0)
    else:
        total = n * (n - 1) / 2.0
    expected = weights.prior * a.shape[0]
    weights.prior = spec.prior if spec.prior is not None else float(min(max(expected / max(total, 1.0), 1e-12), 0.5))
    tf_adjust = _tf_adjustments(specs, encoded, weights, levels, a, b)
    total_adjust = sum(tf_adjust.values()) if tf_adjust else None
    if total_adjust is None:
        prob = weights.probability(pats)[inv] if a.shape[0] else np.empty(0)
    else:
        prob = weights.probability(levels, np.asarray(total_adjust))
    # a clear disagreement on an identifying field (a first name, a date of birth) is two people,
    # whatever the other fields share: the independence of Fellegi-Sunter adds up a household's
    # surname, street, zip and landline as if they were separate evidence
    veto = conflicts(specs, levels)
    prob[veto] = 0.0
    timings["weights"] = time.perf_counter() - t

    t = time.perf_counter()
    uniq_cols = [encoded[c.field].codes for c in specs if c.unique]
    unique = np.stack(uniq_cols, axis=1).astype(np.int64) if uniq_cols else np.full((n, 0), -1, np.int64)
    dnl = None
    rkeys = record_keys(spec, records.ids, records.sources, records.source_names, secret) if secret else None
    pairs: list[tuple[int, int]] = []
    if do_not_link:
        row = {rid: i for i, rid in enumerate(records.ids)}
        pairs = [(row[x], row[y]) for x, y in do_not_link if x in row and y in row]
    if do_not_link_keys is not None and rkeys is not None and do_not_link_keys.shape[0]:
        krow = {k: i for i, k in enumerate(rkeys[0].tolist())}
        pairs += [(krow[x], krow[y]) for x, y in do_not_link_keys.tolist() if x in krow and y in krow]
    if pairs:
        arr = np.array(pairs, dtype=np.int64)
        dnl = (arr[:, 0], arr[:, 1])
    if veto.any():  # and their records never share a cluster, not through a third record either
        va, vb = a[veto], b[veto]
        dnl = (va, vb) if dnl is None else (np.concatenate([dnl[0], va]), np.concatenate([dnl[1], vb]))
    label, merges = cluster(
        n, a, b, prob, auto_link=spec.auto_link, unique=unique, sources=records.sources,
        one_per_source=spec.one_per_source, do_not_link=dnl,
    )
    timings["cluster"] = time.perf_counter() - t
    fkeys = None
    index_pairs = None
    if secret is not None:
        t = time.perf_counter()
        fkeys = field_keys(col_list, secret)
        if index is not None and len(index):
            ia, ib = index.candidates(block_keys if block_keys is not None else np.zeros((0, n), np.uint64))
            if rkeys is not None:  # a record loaded again meets its own indexed copy: not a suggestion
                other = rkeys[0, ia] != index.record[0, ib]
                ia, ib = ia[other], ib[other]
            if do_not_link_keys is not None and do_not_link_keys.shape[0] and rkeys is not None:
                banned = {tuple(sorted(p)) for p in do_not_link_keys.tolist()}
                ok = np.array([tuple(sorted((x, y))) not in banned
                               for x, y in zip(rkeys[0, ia].tolist(), index.record[0, ib].tolist(), strict=True)],
                              dtype=bool)
                ia, ib = ia[ok], ib[ok]
            ilev = index.levels(fkeys, ia, ib)
            index_pairs = (ia, ib, ilev, weights.probability(ilev))
        timings["index"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t0
    stats = {"pairs_generated": bstats["generated"], "records_in_skipped_blocks": bstats["skipped_records"],
             "pairs_per_rule": [bstats[f"rule_{r}"] for r in range(len(spec.blocking))],
             "auto_link_pairs": int((prob >= spec.auto_link).sum()), "merges": merges,
             "conflict_pairs": int(veto.sum())}
    metrics: dict[str, Any] = {}
    if records.truth is not None:
        metrics = pair_metrics(label, records.truth, records.sources if link_only else None)
    # the result keeps ids, sources, lines and errors of the records, never their values
    records = Records(ids=records.ids, sources=records.sources, source_names=records.source_names, columns={},
                      lines=records.lines, truth=records.truth, errors=records.errors)
    if index_pairs is not None:
        stats["index_records"] = len(index) if index is not None else 0
        stats["index_pairs"] = int(index_pairs[0].shape[0])
    return MatchResult(records, spec, a, b, levels, prob, label, weights, block_keys, stats, timings, metrics,
                       rkeys, fkeys, index, index_pairs, tf_adjust)
