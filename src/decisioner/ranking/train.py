"""Training the learned ranker from an engine's events, with a time split (needs LightGBM).

:func:`build_queries` replays events through an engine. At each interaction with an item
(:data:`INTERACTIONS`) it first builds a query from the state *before* the event: the person's
affinity top-N (what serving re-ranks), the item(s) interacted with, and a few random catalog
items (so that "outside the top-N" does not mark the positive), each with its features
(:mod:`.features`) and a label (1; a purchase 2 under ``lambdarank``), then applies the event.
Every other event is just applied. A query belongs to training when its event time is before
the split boundary (``train_fraction`` of the time span), else it is held out; features never
see a later event, so no query sees the future.

With ``labels="exposures"`` (an engine log only: :func:`log_events`) the queries are the
engine's own decisions instead: each logged decision is re-made, and its shown slate, with the
features as the decision left them, is a query whose labels come from the outcomes logged later
for that decision id (a click 1, a conversion 2 under ``lambdarank``; shown and never clicked
0). What people clicked among what they were shown is what a re-ranker must learn; organic
interactions also reward what people find without being shown it.

:func:`train` fits LightGBM on the training queries and reports on the held-out ones NDCG@10
and AUC of the model and of the affinity-only scorer (the ``affinity_score`` feature), per
query, with paired bootstrap 95% intervals (over queries, fixed seed) of each and of their
difference; :func:`write_model` writes ``model.txt``, ``features.json``, ``metrics.json`` and
``provenance.json``.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np

from ..errors import ConfigError, MissingDependencyError, NotReadyError
from .features import FEATURE_NAMES, Featurizer, schema

__all__ = ["INTERACTIONS", "LABELS", "OBJECTIVES", "Queries", "build_queries", "ndcg_at", "auc", "train", "write_model"]

#: event types that make a query (an interaction with an item)
INTERACTIONS: Final = frozenset({"click", "add_to_cart", "purchase"})
OBJECTIVES: Final = ("lambdarank", "binary")
#: where labels come from: interactions with items, or the outcomes of logged decisions
LABELS: Final = ("interactions", "exposures")
#: what :func:`log_events` marks: a logged decision (a key), an outcome (a pseudo event type)
_DECIDE, _OUTCOME = "_decide", "_outcome"
_SCORE_COL: Final = FEATURE_NAMES.index("affinity_score")


@dataclass
class Queries:
    """Feature rows grouped by query: ``X`` float64[n, F], ``y`` float64[n], ``qid`` int64[n]
    (consecutive), ``qtime`` int64[q] (event time per query), ``retrieved`` bool[q] (a positive
    was in the affinity top-N)."""

    X: np.ndarray
    y: np.ndarray
    qid: np.ndarray
    qtime: np.ndarray
    retrieved: np.ndarray
    events: int = 0
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def n_queries(self) -> int:
        return int(self.qtime.shape[0])

    def bounds(self) -> np.ndarray:
        """Start of each query's rows, and the end (int64[q + 1])."""
        return np.searchsorted(self.qid, np.arange(self.n_queries + 1)).astype(np.int64)


def _positives(ev: dict[str, Any], engine: Any) -> list[int]:
    names = ([ev["item"]] if isinstance(ev.get("item"), str) else []) + [
        x for x in (ev.get("items") or []) if isinstance(x, str)
    ]
    idx = engine.catalog.index
    return list(dict.fromkeys(idx[n] for n in names if n in idx))


def build_queries(
    engine: Any, events: Iterable[tuple[dict[str, Any], Any]], *, candidates: int = 50, negatives: int = 10,
    graded: bool = True, seed: int = 0, max_events: int | None = None, labels: str = "interactions",
) -> Queries:
    """Replay ``events`` through ``engine`` and build one query per interaction (see the module
    docstring). ``events`` yields ``(event dict, apply)`` pairs: ``apply()`` applies the event
    (``engine.track`` of it, or the logged record's ``apply_record``); the dict is read for the
    type, time, identifiers (``hashed`` ids when from a log: see :func:`log_events`), channel,
    device and items; with ``labels="exposures"`` only logged decisions make queries.
    """
    if labels == "exposures":
        return _exposure_queries(engine, events, graded=graded, max_events=max_events)
    fz = Featurizer.of(engine)
    scorer = engine.scorer
    n_items = engine.catalog.n_items
    rng = np.random.default_rng(seed)
    eligible = np.ones(n_items, dtype=np.uint8)
    extra = np.zeros(n_items, dtype=np.float64)
    width = candidates + negatives + 8
    buf = np.empty((width, len(FEATURE_NAMES)), dtype=np.float64)
    xs: list[np.ndarray] = []
    ys: list[np.ndarray] = []
    times: list[int] = []
    retrieved: list[bool] = []
    counts = dict.fromkeys(sorted(INTERACTIONS), 0)
    n_events = 0
    for ev, apply in events:
        if max_events is not None and n_events >= max_events:
            break
        n_events += 1
        etype = ev.get("type")
        pos = _positives(ev, engine) if etype in INTERACTIONS else []
        if pos:
            now = int(ev["time"])
            row = ev["_row"] if "_row" in ev else engine.profile_row(ev["ids"])
            if 0 <= row < engine.profiles.n_rows:
                fids, sc = engine.profiles.read_copy(row, now, engine.half_lives_)
            else:
                fids, sc = np.empty(0, np.int32), np.empty(0, np.float64)
            scores, _ = scorer.score_one(fids, sc, eligible=eligible, extra=extra)
            top = scorer.top(scores, candidates).tolist()
            rand = rng.choice(n_items, size=min(negatives, n_items), replace=False).tolist() if negatives else []
            items = list(dict.fromkeys(top + pos[:8] + rand))[:width]
            pos_set = set(pos)
            m = len(items)
            arr = np.asarray(items, dtype=np.int64)
            fz.fill(row, now, arr, m, fz.context(ev.get("channel") or "", ev.get("device"), now), buf)
            label = 2.0 if graded and etype == "purchase" else 1.0
            xs.append(buf[:m].copy())
            ys.append(np.array([label if i in pos_set else 0.0 for i in items], dtype=np.float64))
            times.append(now)
            retrieved.append(bool(pos_set & set(top)))
            counts[str(etype)] += 1
        apply()
    if xs:
        X = np.concatenate(xs)
        y = np.concatenate(ys)
        qid = np.repeat(np.arange(len(xs), dtype=np.int64), [x.shape[0] for x in xs])
    else:
        X, y, qid = np.empty((0, len(FEATURE_NAMES))), np.empty(0), np.empty(0, np.int64)
    return Queries(X, y, qid, np.asarray(times, dtype=np.int64), np.asarray(retrieved, dtype=bool),
                   events=n_events, counts=counts)


def _exposure_queries(
    engine: Any, events: Iterable[tuple[dict[str, Any], Any]], *, graded: bool, max_events: int | None,
) -> Queries:
    fz = Featurizer.of(engine)
    index = engine.catalog.index
    buf = np.empty((64, len(FEATURE_NAMES)), dtype=np.float64)
    xs: list[np.ndarray] = []
    ys: list[np.ndarray] = []
    times: list[int] = []
    shown: dict[str, tuple[int, dict[int, int]]] = {}  # decision id -> (query, item -> its row)
    counts = {"decisions": 0, "clicks": 0, "conversions": 0}
    n_events = 0
    for ev, apply in events:
        if max_events is not None and n_events >= max_events:
            break
        n_events += 1
        etype = ev.get("type")
        if ev.get(_DECIDE):
            d = apply()
            items = [index[s.content] for s in d.slots if s.content in index]
            if not items or d.profile < 0:
                continue
            now = int(ev["time"])
            m = min(len(items), buf.shape[0])
            arr = np.asarray(items[:m], dtype=np.int64)
            fz.fill(d.profile, now, arr, m, fz.context(ev.get("channel") or "", ev.get("device"), now), buf)
            shown[d.decision_id] = (len(xs), {it: i for i, it in enumerate(items[:m])})
            xs.append(buf[:m].copy())
            ys.append(np.zeros(m, dtype=np.float64))
            times.append(now)
            counts["decisions"] += 1
            continue
        apply()
        if etype == _OUTCOME and ev["decision_id"] in shown:
            q, rows = shown[ev["decision_id"]]
            i = rows.get(index.get(ev["content"], -1))
            if i is not None:
                conv = ev["kind"] == "conversion"
                counts["conversions" if conv else "clicks"] += 1
                ys[q][i] = max(ys[q][i], 2.0 if conv and graded else 1.0)
    if xs:
        X = np.concatenate(xs)
        y = np.concatenate(ys)
        qid = np.repeat(np.arange(len(xs), dtype=np.int64), [x.shape[0] for x in xs])
    else:
        X, y, qid = np.empty((0, len(FEATURE_NAMES))), np.empty(0), np.empty(0, np.int64)
    return Queries(X, y, qid, np.asarray(times, dtype=np.int64), np.ones(len(xs), dtype=bool),
                   events=n_events, counts=counts)


# ---------------------------------------------------------------------- metrics
def ndcg_at(scores: np.ndarray, labels: np.ndarray, k: int = 10) -> float:
    """NDCG@k of one query (gain ``2**label - 1``; ties in score keep the candidates' order)."""
    order = np.argsort(-scores, kind="stable")[:k]
    disc = 1.0 / np.log2(np.arange(2, order.shape[0] + 2))
    dcg = float(((2.0 ** labels[order] - 1.0) * disc).sum())
    ideal = np.sort(labels)[::-1][:k]
    idcg = float(((2.0 ** ideal - 1.0) * disc[: ideal.shape[0]]).sum())
    return dcg / idcg if idcg > 0.0 else 0.0


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Share of (positive, negative) pairs of one query ordered correctly (ties count half);
    NaN without both."""
    pos, neg = scores[labels > 0], scores[labels <= 0]
    if not pos.shape[0] or not neg.shape[0]:
        return math.nan
    d = pos[:, None] - neg[None, :]
    return float(((d > 0).sum() + 0.5 * (d == 0).sum()) / d.size)


def _per_query(scores: np.ndarray, q: Queries, sel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    b = q.bounds()
    nd, au = [], []
    for j in np.flatnonzero(sel).tolist():
        s, lab = scores[b[j]: b[j + 1]], q.y[b[j]: b[j + 1]]
        nd.append(ndcg_at(s, lab, 10))
        au.append(auc(s, lab))
    return np.asarray(nd), np.asarray(au)


def _interval(values: np.ndarray, idx_chunks: list[np.ndarray]) -> list[float]:
    means = np.concatenate([values[ix].mean(axis=1) for ix in idx_chunks])
    lo, hi = np.percentile(means, [2.5, 97.5])
    return [round(float(lo), 5), round(float(hi), 5)]


def compare(model: np.ndarray, base: np.ndarray, *, seed: int, rounds: int = 1000) -> dict[str, Any]:
    """Means of per-query ``model`` and ``base`` values (NaN dropped pairwise) and paired
    bootstrap 95% intervals of each and of the difference."""
    ok = ~(np.isnan(model) | np.isnan(base))
    a, b = model[ok], base[ok]
    n = a.shape[0]
    if n == 0:
        return {"queries": 0}
    rng = np.random.default_rng(seed)
    chunk = max(1, 4_000_000 // n)
    idx = [rng.integers(0, n, size=(min(chunk, rounds - s), n)) for s in range(0, rounds, chunk)]
    return {
        "queries": int(n),
        "model": round(float(a.mean()), 5), "model_ci": _interval(a, idx),
        "affinity": round(float(b.mean()), 5), "affinity_ci": _interval(b, idx),
        "difference": round(float((a - b).mean()), 5), "difference_ci": _interval(a - b, idx),
    }


# ---------------------------------------------------------------------- training
def _lightgbm() -> Any:
    try:
        import lightgbm
    except ImportError:
        raise MissingDependencyError(
            'Expected LightGBM to train a ranker, got no `lightgbm` module - install it with '
            'pip install "decisioner[lightgbm]"'
        ) from None
    return lightgbm


def params_for(objective: str, *, seed: int, trees: int) -> dict[str, Any]:
    """The LightGBM parameters of :func:`train` (two threads, deterministic)."""
    if objective not in OBJECTIVES:
        raise ConfigError(f"Expected `objective` to be one of {list(OBJECTIVES)}, got {objective!r} - at `--objective`")
    p: dict[str, Any] = {
        "objective": objective, "learning_rate": 0.05, "num_leaves": 31, "min_data_in_leaf": 20,
        "feature_fraction": 0.9, "bagging_fraction": 0.8, "bagging_freq": 1, "lambda_l2": 1.0,
        "num_threads": 2, "seed": seed, "deterministic": True, "force_row_wise": True, "verbosity": -1,
        "num_iterations": trees,
    }
    if objective == "lambdarank":
        p["eval_at"] = [10]
        p["lambdarank_truncation_level"] = 20
    return p


def split_time(q: Queries, train_fraction: float) -> int:
    """The boundary event time: queries before it train, the rest are held out."""
    t0, t1 = int(q.qtime.min()), int(q.qtime.max())
    return t0 + int((t1 - t0) * train_fraction)


def train(
    q: Queries, *, objective: str = "lambdarank", seed: int = 0, trees: int = 200, train_fraction: float = 0.8,
) -> tuple[Any, dict[str, Any]]:
    """Fit LightGBM on the queries before the time boundary; returns the booster and the report
    (held-out NDCG@10 and AUC against the affinity scorer, with intervals).

    Raises
    ------
    ConfigError
        An unknown objective, or a bad ``train_fraction``.
    NotReadyError
        No interaction to learn from, or no query on one side of the time split.
    """
    params = params_for(objective, seed=seed, trees=trees)
    if not 0.0 < train_fraction < 1.0:
        raise ConfigError(f"Expected `train_fraction` in (0, 1), got {train_fraction!r} - at `--train-fraction`")
    if q.n_queries == 0:
        raise NotReadyError(
            f"Expected interactions with items ({', '.join(sorted(INTERACTIONS))}) to learn from, got none in "
            f"{q.events} events - at `training data`"
        )
    boundary = split_time(q, train_fraction)
    train_q = q.qtime < boundary
    if not train_q.any() or train_q.all():
        raise NotReadyError(
            f"Expected queries on both sides of the time split at {boundary}, got {int(train_q.sum())} before and "
            f"{int((~train_q).sum())} after - at `training data`"
        )
    lgb = _lightgbm()
    rows = train_q[q.qid]
    y = q.y if objective == "lambdarank" else (q.y > 0).astype(np.float64)
    ds = lgb.Dataset(q.X[rows], label=y[rows], group=np.bincount(q.qid[rows]).tolist() if objective == "lambdarank"
                     else None, feature_name=list(FEATURE_NAMES), free_raw_data=True)
    booster = lgb.train(params, ds)
    pred = booster.predict(q.X, raw_score=True)
    held = ~train_q
    nd_m, au_m = _per_query(pred, q, held)
    nd_b, au_b = _per_query(q.X[:, _SCORE_COL], q, held)
    ret = q.retrieved[held]
    report = {
        "objective": objective,
        "queries": {"train": int(train_q.sum()), "held_out": int(held.sum()),
                    "held_out_retrieved": int(ret.sum())},
        "rows": {"train": int(rows.sum()), "held_out": int((~rows).sum())},
        "split_time": boundary,
        "ndcg@10": compare(nd_m, nd_b, seed=seed),
        "auc": compare(au_m, au_b, seed=seed + 1),
        # the re-ranking serving does: queries whose positive the affinity top-N retrieved
        "ndcg@10_retrieved": compare(nd_m[ret], nd_b[ret], seed=seed + 2),
        "trees": int(booster.num_trees()),
    }
    return booster, report


# ---------------------------------------------------------------------- sources and output
def file_digest(path: Path) -> str:
    """BLAKE2b (32 bytes) of a file, hex."""
    h = hashlib.blake2b(digest_size=32)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def world_events(engine: Any, events: list[dict[str, Any]]) -> Iterator[tuple[dict[str, Any], Any]]:
    """A world's event dicts with ``engine.track`` of each."""
    for ev in events:
        yield ev, (lambda e=ev: engine.track(e))


def log_events(engine: Any, records: list[Any]) -> Iterator[tuple[dict[str, Any], Any]]:
    """An event log's records as event dicts (their profile row resolved from the hashed
    identifiers before the record applies) with ``engine.apply_record`` of each."""
    from ..journal import DecideOp, ObserveOp, TrackOp

    for rec in records:
        op = rec.op
        ev: dict[str, Any] = {}
        if isinstance(op, ObserveOp):
            o = op.outcome
            ev = {"type": _OUTCOME, "decision_id": o.decision_id, "kind": o.kind, "content": o.content,
                  "time": o.time}
        elif isinstance(op, (TrackOp, DecideOp)):
            e = op.event
            ev = {"type": str(type(e).__struct_config__.tag), "time": e.time, "channel": e.channel,
                  "device": getattr(e, "device", None), "item": getattr(e, "item", None),
                  "items": list(getattr(e, "items", None) or [])}
            ev[_DECIDE] = isinstance(op, DecideOp)
            if ev["type"] in INTERACTIONS:
                keys, _ = engine.identity.keys_of_hashed(e.ids)
                rows = engine.identity.resolve_keys(keys)
                hit = rows[rows >= 0]
                ev["_row"] = int(hit[0]) if hit.shape[0] else -1
        yield ev, (lambda r=rec: engine.apply_record(r))


def write_model(out: Path, booster: Any, report: dict[str, Any], provenance: dict[str, Any]) -> Path:
    """Write ``model.txt``, ``features.json``, ``metrics.json`` and ``provenance.json`` into
    ``out`` (all at once: a temporary directory renamed into place)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        booster.save_model(str(tmp / "model.txt"))
        (tmp / "features.json").write_text(json.dumps(schema(), indent=1) + "\n")
        (tmp / "metrics.json").write_text(json.dumps(report, indent=1) + "\n")
        (tmp / "provenance.json").write_text(json.dumps(provenance, indent=1) + "\n")
        if out.exists():
            shutil.rmtree(out)
        tmp.chmod(0o755)  # mkdtemp makes it private; a model directory is read by the service
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def train_from(
    *, world: str | Path | None = None, log: str | Path | None = None, out: str | Path, objective: str = "lambdarank",
    seed: int = 0, max_events: int | None = None, trees: int = 200, candidates: int = 50, negatives: int = 10,
    train_fraction: float = 0.8, hash_key: str | None = None, labels: str = "interactions",
) -> dict[str, Any]:
    """Replay a world (``world``: a directory of ``decisioner generate``) or an engine's event
    log (``log``: ``events.log`` of a durable directory, whose snapshot gives the configuration
    and catalog), train, and write the model directory ``out``; returns the report with the
    provenance. Everything is checked before anything is written. ``labels`` (see the module
    docstring): ``interactions``, or ``exposures`` (an engine log's decisions and outcomes).

    Raises
    ------
    ConfigError
        Not exactly one source, an unknown objective, bad numbers.
    NotReadyError
        A missing or empty source, no interactions, no query on one side of the split.
    """
    params_for(objective, seed=seed, trees=trees)  # the objective, before any work
    if (world is None) == (log is None):
        raise ConfigError("Expected exactly one of `--world DIR` or `--log FILE`, got "
                          f"{'both' if world is not None else 'neither'} - at `train`")
    if labels not in LABELS:
        raise ConfigError(f"Expected `labels` in {list(LABELS)}, got {labels!r} - at `--labels`")
    if labels == "exposures" and log is None:
        raise ConfigError("Expected `--log FILE` with `--labels exposures` (the engine's logged decisions and their "
                          "outcomes), got a world - at `--labels`")
    for name, v, lo in (("trees", trees, 1), ("candidates", candidates, 1), ("negatives", negatives, 0)):
        if v < lo:
            raise ConfigError(f"Expected `{name}` >= {lo}, got {v} - at `--{name}`")
    if max_events is not None and max_events < 1:
        raise ConfigError(f"Expected `max_events` >= 1, got {max_events} - at `--max-events`")
    from ..engine import Engine
    from ..warmup import warm_up

    if world is not None:
        src = Path(world)
        ev_path = src / "events.jsonl"
        if not src.is_dir() or not ev_path.is_file() or not (src / "config.toml").is_file():
            raise NotReadyError(f"Expected a world directory with config.toml, catalog.jsonl and events.jsonl, got "
                                f"{str(src)!r} - at `--world`")
        from ..datasets.synthetic.files import _read_jsonl

        events = _read_jsonl(ev_path)
        if not events:
            raise NotReadyError(f"Expected events in {str(ev_path)!r}, got an empty file - at `--world`")
        warm_up()
        engine = Engine.from_world(src, seed=seed)
        stream = world_events(engine, events)
        digest_of = ev_path
    else:
        from ..journal import read_records
        from ..persistence import read_engine_snapshot

        lp = Path(log)  # type: ignore[arg-type]
        if not lp.is_file():
            raise NotReadyError(f"Expected an event log file, got {str(lp)!r} (no such file) - at `--log`")
        records = read_records(lp)
        if not records:
            raise NotReadyError(f"Expected records in the event log {str(lp)!r}, got none - at `--log`")
        r = read_engine_snapshot(lp.parent, hash_key=hash_key)
        warm_up()
        h = r.header  # the logged engine's own seed and instance: its decisions are re-made as they were
        engine = Engine(r.config, r.catalog, identity=r.identity, seed=h["seed"], instance=h["instance"],
                        feedback_weight=h["feedback_weight"])
        engine.load_state(r.components)
        records = engine.journal.pending(records)
        stream = log_events(engine, records)
        digest_of = lp
    q = build_queries(engine, stream, candidates=candidates, negatives=negatives, graded=objective == "lambdarank",
                      seed=seed, max_events=max_events, labels=labels)
    booster, report = train(q, objective=objective, seed=seed, trees=trees, train_fraction=train_fraction)
    lgb = _lightgbm()
    fz = Featurizer.of(engine)
    provenance = {
        "source": {"kind": "world" if world is not None else "log", "path": str(digest_of),
                   "blake2b": file_digest(digest_of)},
        "events": q.events, "labels": labels, labels: q.counts, "queries": q.n_queries,
        "time": {"first": int(q.qtime.min()), "last": int(q.qtime.max()), "split": report["split_time"],
                 "train_fraction": train_fraction},
        "seed": seed, "lightgbm": str(lgb.__version__), "params": params_for(objective, seed=seed, trees=trees),
        "candidates": candidates, "negatives": negatives, "feature_schema": schema()["version"],
        "facets": list(fz.facets), "catalog_version": engine.catalog.version,
    }
    path = write_model(Path(out), booster, report, provenance)
    return {**report, "out": str(path), "provenance": provenance}
