"""Peer: Splink (v5, DuckDB backend; Fellegi-Sunter with EM, the open reference of probabilistic
record linkage) on FEBRL4, beside ``decisioner.matching`` on the same data in the same run.

Both get the same 10,000 records (:func:`decisioner.datasets.febrl.febrl4_columns`), the same
blocking rules and comparable comparisons (names by Jaro-Winkler, date of birth and social
security number by Damerau-Levenshtein, exact street number, postcode, state; address and
suburb by Jaro-Winkler), learn ``u`` from random pairs and ``m`` by EM without labels, and are
scored by pairwise precision/recall/F1 against the true pairs of the record ids. Splink links
pairs at ``match_probability >= 0.95`` (the threshold ours auto-links at) and, like ours, keeps
one record per source in a cluster (its one-to-one clustering). Timings cover everything after
the records are in memory (Splink: registering the table, training, predicting, clustering;
ours: :func:`decisioner.matching.match_records`).

Run ``python benchmarks/compare/splink_febrl.py`` (``--json`` for one JSON object)."""

from __future__ import annotations

import json
import re
import sys
import time
from typing import Any

NAME = "splink (DuckDB)"

_ENTITY = re.compile(r"rec-(\d+)")


def _truth_pairs(ids_a: list[str], ids_b: list[str]) -> set[tuple[str, str]]:
    ent_b: dict[str, list[str]] = {}
    for b in ids_b:
        m = _ENTITY.search(b)
        if m:
            ent_b.setdefault(m.group(1), []).append(b)
    out = set()
    for a in ids_a:
        m = _ENTITY.search(a)
        if m:
            out |= {(a, b) for b in ent_b.get(m.group(1), [])}
    return out


def _scores(pred: set[tuple[str, str]], truth: set[tuple[str, str]]) -> dict[str, float]:
    tp = len(pred & truth)
    p = tp / len(pred) if pred else 1.0
    r = tp / len(truth) if truth else 1.0
    return {"precision": round(p, 6), "recall": round(r, 6), "f1": round(2 * p * r / (p + r) if p + r else 0.0, 6)}


def match_febrl4(columns: dict[str, list[str | None]], *, seed: int = 0) -> dict[str, Any]:
    """Link FEBRL4 with Splink; returns precision, recall, f1, pairs and seconds."""
    import pandas as pd
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    t0 = time.perf_counter()
    df = pd.DataFrame(columns)
    df_a = df[df["source"] == "a"].drop(columns=["source"]).rename(columns={"rec_id": "unique_id"})
    df_b = df[df["source"] == "b"].drop(columns=["source"]).rename(columns={"rec_id": "unique_id"})
    db = DuckDBAPI()
    blocking = [block_on("given_name"), block_on("surname"), block_on("date_of_birth"), block_on("soc_sec_id"),
                block_on("postcode", "street_number"), block_on("suburb", "substr(date_of_birth, 1, 4)")]
    settings = SettingsCreator(
        link_type="link_only", unique_id_column_name="unique_id",
        blocking_rules_to_generate_predictions=blocking,
        comparisons=[
            cl.JaroWinklerAtThresholds("given_name", [0.92, 0.8]),
            cl.JaroWinklerAtThresholds("surname", [0.92, 0.8]),
            cl.DamerauLevenshteinAtThresholds("date_of_birth", [1, 2]),
            cl.DamerauLevenshteinAtThresholds("soc_sec_id", [1, 2]),
            cl.ExactMatch("street_number"),
            cl.JaroWinklerAtThresholds("address_1", [0.9, 0.7]),
            cl.JaroWinklerAtThresholds("address_2", [0.9]),
            cl.JaroWinklerAtThresholds("suburb", [0.9]),
            cl.DamerauLevenshteinAtThresholds("postcode", [1]),
            cl.ExactMatch("state"),
        ],
        retain_intermediate_calculation_columns=False,
    )
    linker = Linker([db.register(df_a), db.register(df_b)], settings, log_level="ERROR")
    linker.training.estimate_probability_two_random_records_match(
        [block_on("soc_sec_id", "date_of_birth")], recall=0.7)
    linker.training.estimate_u_using_random_sampling(max_pairs=1e6, seed=seed)
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("given_name", "surname"))
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("date_of_birth"))
    pred = linker.inference.predict(threshold_match_probability=0.5)
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(
        pred, threshold_match_probability=0.95).as_pandas_dataframe()
    seconds = time.perf_counter() - t0
    in_a = set(df_a["unique_id"])
    by_cluster: dict[Any, tuple[list[str], list[str]]] = {}
    for uid, cid in zip(clusters["unique_id"], clusters["cluster_id"], strict=True):
        sides = by_cluster.setdefault(cid, ([], []))
        sides[0 if uid in in_a else 1].append(uid)
    pairs = {(a, b) for left, right in by_cluster.values() for a in left for b in right}
    truth = _truth_pairs(list(df_a["unique_id"]), list(df_b["unique_id"]))
    return {"name": NAME, "seconds": round(seconds, 3), "predicted_pairs": len(pairs), "true_pairs": len(truth),
            **_scores(pairs, truth)}


def match_febrl4_ours(columns: dict[str, list[str | None]], *, seed: int = 0) -> dict[str, Any]:
    """Link FEBRL4 with ``decisioner.matching``; returns precision, recall, f1, pairs and seconds."""
    from decisioner.matching import match_records, records_from_columns
    from decisioner.matching.febrl import FEBRL4_SPEC

    t0 = time.perf_counter()
    res = match_records(records_from_columns(columns, FEBRL4_SPEC), FEBRL4_SPEC, seed=seed)
    seconds = time.perf_counter() - t0
    m = res.metrics
    return {"name": "decisioner.matching", "seconds": round(seconds, 3), "predicted_pairs": m["predicted_pairs"],
            "true_pairs": m["true_pairs"], "precision": m["precision"], "recall": m["recall"], "f1": m["f1"]}


def main(argv: list[str]) -> int:
    """Run both on FEBRL4 (ours first warmed on a copy, so neither pays numba compilation)."""
    from decisioner.datasets.febrl import febrl4_columns

    cols = febrl4_columns()
    match_febrl4_ours(cols)  # warm: numba kernels compile or load from the cache once per process
    ours = match_febrl4_ours(cols)
    peer = match_febrl4(cols)
    out = {"ours": ours, "splink": peer, "speedup": round(peer["seconds"] / max(ours["seconds"], 1e-9), 2)}
    if "--json" in argv:
        print(json.dumps(out))
    else:
        for r in (ours, peer):
            print(f"{r['name']:<22} precision {r['precision']:.4f}  recall {r['recall']:.4f}  f1 {r['f1']:.4f}  "
                  f"{r['seconds']:.2f} s  ({r['predicted_pairs']} pairs, {r['true_pairs']} true)")
        print(f"ours is {out['speedup']}x as fast")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
