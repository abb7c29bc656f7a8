"""``warm_up()``: compile (or load from cache) every kernel of the request path once on tiny
canonical inputs, so no request pays compile time. Services call it at start-up; the CLI has
``decisioner warmup`` (``--all`` for the admin kernels too).

The calls use exactly the dtypes the library passes on the hot path, so after warm-up each
kernel has one compiled signature (a test asserts it: a second one would be a silent recompile).

Request path versus admin kernels: ``warm_up()`` covers everything ``decide``, ``track``,
``observe``, ``recommend`` and ``recommend_many`` can reach, including identity linking, table
and array growth, merges and memory-bound eviction (a test runs that workload after
``warm_up()`` and asserts no kernel compiled or loaded). The kernels in :data:`ADMIN` serve only
the privacy and admin operations (``forget``, ``unlink``, ``split``, ``expire``, ``block``,
``evidence_of``, ``readmit``), offline bulk loading (``IdentityGraph.link_many``: identity
evaluation, benchmark set-up), the standalone ``AffinityScorer.score_one`` (the engine scores
in the fused decide kernels) or tests; they compile on first use instead (a few seconds, once
per cache directory), which keeps a cold ``warm_up()`` short. ``warm_up(admin=True)`` compiles
them too, e.g. to fill a cache directory at build time.

Cost, CPU seconds on the shared 2-core VM: a cold ``decisioner warmup`` (empty
``NUMBA_CACHE_DIR``) about 17 (median of four runs alternating with the previous main's 22.7;
the issue-9 target, 15, is not met), a warm one (every kernel loaded) about 1.3. Compile time by
kernel, callees included, one fresh process: ``decide_slate`` 4.6 (with the scoring and pool
helpers it shares with ``recommend_rows``, which then takes 0.8), ``rank_probabilities`` 4.2,
``graph_link`` 2.8 (the first kernel compiled: it also pays numba's one-off set-up),
``graph_block`` 0.9, every other kernel 0.7 or less. About a third is LLVM; the rest is numba's
own Python passes, which cost 50-100 ms for every function compiled however small (about 90
functions here), so fewer functions is what pays now (see ``_kernels/_jit.py``).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from ._kernels import (
    activity,
    affinity,
    attributes,
    bandit,
    decide,
    features,
    graph,
    linear,
    matching,
    rng,
    segments,
    topk,
    trees,
)
from .identity.normalise import warm_up_phones

__all__ = ["ADMIN", "KERNELS", "RANKER", "warm_up", "warm_ranker"]

#: every public kernel (dispatchers), for warm-up and the one-signature check
KERNELS: tuple[Any, ...] = (
    graph.graph_find_root, graph.graph_lookup_many, graph.graph_lookup_one, graph.graph_find_nodes,
    graph.graph_link, graph.graph_link_many, graph.graph_rehash,
    graph.graph_component_rows, graph.graph_members, graph.graph_edges_of, graph.graph_block,
    graph.graph_remove, graph.graph_recompute, graph.graph_expired, graph.graph_compact_edges,
    affinity.affinity_update, affinity.affinity_read, affinity.affinity_merge, affinity.score_items,
    topk.top_k, bandit.rank_slate, bandit.rank_probabilities, bandit.categorical_select,
    bandit.posterior_top_k, bandit.arm_select, bandit.arm_stats_update,
    linear.linear_update, linear.linear_scores, linear.linucb_select,
    rng.rng_fill_uniform, rng.rng_fill_beta,
    decide.decide_slate, decide.recommend_rows, decide.slate_ranked,
    segments.segment_eval, segments.affinity_share,
    activity.activity_record, activity.activity_count, activity.activity_merge,
    attributes.attributes_set, attributes.attributes_merge,
    features.featurize, trees.predict_rows, trees.predict_rows_qs,
    trees.predict_rows_qs8, trees.predict_rows_qs16, trees.predict_row,
    matching.block_pairs, matching.cluster_pairs,
)

#: kernels off the request path (privacy and admin operations, bulk loading, tests):
#: ``warm_up()`` leaves them to compile on first use unless ``admin=True``
ADMIN: tuple[Any, ...] = (
    graph.graph_link_many, graph.graph_recompute, graph.graph_expired, graph.graph_find_nodes, graph.graph_find_root,
    graph.graph_edges_of, rng.rng_fill_uniform, rng.rng_fill_beta, affinity.score_items,
    matching.block_pairs, matching.cluster_pairs,
)


#: the learned ranker's kernels (features, compiled trees, the ranked slate): ``warm_up()`` leaves
#: them cold unless ``ranker=True`` (or ``admin=True``); an engine with a ranker configured warms
#: them when it is built (:func:`warm_ranker`), so a deployment without one pays nothing for them
RANKER: tuple[Any, ...] = (
    decide.slate_ranked, features.featurize, trees.predict_rows, trees.predict_rows_qs, trees.predict_rows_qs8,
    trees.predict_rows_qs16, trees.predict_row,
)


def warm_ranker() -> float:
    """Compile or load the :data:`RANKER` kernels; returns the seconds it took."""
    t0 = time.perf_counter()
    plc = (np.ones(2, np.uint8), np.zeros(2), np.zeros(2), np.zeros(2), np.zeros(2))
    params = np.zeros(decide.N_PARAMS)
    params[[decide.P_AFFINITY_W, decide.P_SLOTS, decide.P_PRIOR_TRIALS]] = 1.0
    dout, counts = decide.new_out(1), np.zeros(decide.N_COUNTS, np.int64)
    rwork = (np.empty(2, np.int64), np.empty(2, np.int64), np.empty(2, np.int64), np.empty(2))
    decide.slate_ranked(np.array([0.5, 1.0]), np.array([1, 0], np.int64), plc, params, rng.seed_state(0), rwork,
                        np.empty(2), dout, counts)
    _warm_features()
    # a two-leaf tree with a categorical split, the bundle's dtypes (ranking/model.py)
    _warm_trees()
    return time.perf_counter() - t0


def _warm_identity() -> None:
    """Every request-path identity kernel through the public API, so the dtypes are the
    library's own: linking (one event, bulk, merges, refusals), lookups, growth, blocked values,
    and eviction (member walks, node removal, evidence compaction)."""
    from .identity import IdentityGraph

    g = IdentityGraph(b"w" * 16, capacity=2)
    g.reserve(g.tab_.shape[0])  # grow the arrays once: rehashes the key table
    g.link_one({"cookie": "c1"}, time=1_700_000_000_000, source="web")
    g.link_one({"cookie": "c1", "user_id": "u1", "email": "w@x.io"}, time=1_700_000_000_000)
    g.link_one({"cookie": "c2", "user_id": "u2"})
    g.link_one({"cookie": "c1", "user_id": "u2"})  # refused: two user ids
    for i in range(12):  # enough links to grow the edge set
        g.link_one({"cookie": f"k{i}", "device": f"d{i}", "crm_id": f"r{i}"})
    keys, types = g.keys_of({"device": "d1", "cookie": "c3"})
    types = g.register_types({"device": "d1", "cookie": "c3"}, types)
    g.link_keys(keys, types)
    g.resolve_keys(keys)
    g.resolve_key(int(keys[0, 0]), int(keys[1, 0]))
    g.component_rows()
    g.evict(np.array([g.resolve_one({"cookie": "k0"})], np.int32))  # member walk, removal
    g.evict(np.arange(g.n_rows, dtype=np.int32)[g.rows_["root"][: g.n_rows] >= 0][:2])
    graph.graph_compact_edges(g.edges_, g.ev_head_, g.meta_, int(g.meta_[graph.C_NODES]))


def _warm_admin() -> None:
    """The :data:`ADMIN` kernels, through the public API where there is one."""
    from .identity import IdentityGraph

    g = IdentityGraph(b"w" * 16, capacity=2)
    g.link_one({"cookie": "c1", "user_id": "u1", "email": "w@x.io"}, time=1_700_000_000_000)
    g.link_one({"cookie": "c2", "user_id": "u2"})
    keys, types = g.keys_of({"device": "d1", "cookie": "c3"})
    types = g.register_types({"device": "d1", "cookie": "c3"}, types)
    g.link_many(keys, types, np.array([0, 1, 2], np.int64), times=1_700_000_000_000)
    g.evidence_of(g.resolve_one({"cookie": "c1"}))
    g.unlink({"email": "w@x.io"})
    g.split(g.resolve_one({"cookie": "c1"}))
    g.forget({"cookie": "c2"})
    g.readmit(g.keys_of({"cookie": "c2"})[0])
    g.expire(1_800_000_000_000)
    graph.graph_find_root(g.nodes_, 0)
    state = rng.seed_state(0)
    rng.rng_fill_uniform(state, np.empty(1))
    rng.rng_fill_beta(state, 1.0, 1.0, np.empty(1))
    out = np.empty(2, np.float64)
    affinity.score_items(np.array([0, 1, 2, 2], np.int64), np.array([0, 1], np.int32), np.ones(2, np.float32),
                         np.array([0, 1], np.int32), np.ones(2), 2, 1.0, np.zeros(2), 0.5, np.zeros(2),
                         np.ones(2, np.uint8), np.empty(0, np.int32), out)
    _warm_matching()


def _warm_matching() -> None:
    """The record matching kernels through their callers (:mod:`decisioner.matching`)."""
    from .matching.blocking import candidate_pairs
    from .matching.clustering import cluster

    codes = np.array([[0, 0, 1], [-1, 2, 2]], np.int64)
    a, b, _ = candidate_pairs(codes, np.zeros(3, np.int64), link_only=False, max_block=10)
    cluster(3, a, b, np.full(a.shape[0], 0.99), auto_link=0.9, unique=np.full((3, 1), -1, np.int64),
            sources=np.zeros(3, np.int64), one_per_source=False, do_not_link=(np.array([0]), np.array([2])))


def _warm_attributes() -> None:
    """The attribute kernels through :class:`~decisioner.attributes.AttributeStore` (its dtypes):
    an event's values by every rule kind, then a merge."""
    from .attributes import AttributeStore
    from .config import AttributeSpec

    store = AttributeStore({"c": AttributeSpec(type="category", rule="most_frequent", slots=1),
                            "n": AttributeSpec(type="number", rule="source_priority", sources=("crm",)),
                            "t": AttributeSpec(type="timestamp", rule="max")}, capacity=2)
    values = {"c": "a", "n": 1.0, "t": 1_700_000_000_000}
    store.set(0, store.check(values), source="crm", time=1_700_000_000_000)
    store.set(1, store.check(values), source="web", time=1_700_000_000_001)
    store.merge(0, 1)


def _warm_trees() -> None:
    """The tree kernels (QuickScorer and the walk) on a tiny compiled model (numerical and categorical
    splits)."""
    from .ranking.model import RankerModel

    model = RankerModel.from_text(
        "tree\nversion=v4\nnum_class=1\nnum_tree_per_iteration=1\nlabel_index=0\nmax_feature_idx=1\n"
        "objective=binary sigmoid:1\nfeature_names=a b\nfeature_infos=[0:1] 0:1\ntree_sizes=1\n\n"
        "Tree=0\nnum_leaves=3\nnum_cat=1\nsplit_feature=0 1\nthreshold=0.5 0\ndecision_type=2 1\n"
        "left_child=1 -1\nright_child=-2 -3\nleaf_value=-1 1 0\ncat_boundaries=0 1\ncat_threshold=2\n"
        "is_linear=0\nshrinkage=1\n\n\nend of trees\n",
        source="<warm-up>",
    )
    X = np.array([[0.0, 1.0], [1.0, np.nan]])
    out = np.empty(2)
    model.predict_into(X, 2, out)  # scalar QuickScorer (every tree <= 64 leaves, a few rows)
    wide = np.repeat(X, trees.QS_LANES // 2, axis=0)
    model.predict_into(wide, wide.shape[0], np.empty(wide.shape[0]))  # 16-row QuickScorer (>= 8 rows, <= 32 leaves)
    assert model._qs is not None
    trees.predict_rows_qs8(model.bundle, model._qs, wide, wide.shape[0], np.empty(wide.shape[0]))  # 33-64 leaves
    trees.predict_rows(model.bundle, X, 2, out)  # the walk: models with a wider tree
    trees.predict_row(model.bundle, X, 0)


def warm_up(*, admin: bool = False, ranker: bool = False) -> float:
    """Compile or load every request-path kernel (the :data:`RANKER` ones with ``ranker``, and
    every kernel, :data:`ADMIN` and :data:`RANKER` included, with ``admin``); returns the
    seconds it took.

    Examples
    --------
    >>> warm_up() >= 0.0
    True
    """
    t0 = time.perf_counter()
    _warm_identity()
    warm_up_phones()  # libphonenumber's import and the default region's metadata, if installed
    if admin:
        _warm_admin()
    # profiles
    fid = np.full((2, 4), -1, np.int32)
    score = np.zeros((2, 4), np.float32)
    t = np.zeros(2, np.int64)
    hl = np.ones(3, np.float64)
    affinity.affinity_update(fid, score, t, 0, np.array([1], np.int32), np.array([1.0]), 1, hl)
    affinity.affinity_update(fid, score, t, 1, np.array([2], np.int32), np.array([1.0]), 1, hl)
    of = np.empty(4, np.int32)
    osc = np.empty(4, np.float64)
    affinity.affinity_read(fid, score, t, 0, 2, hl, of, osc)
    affinity.affinity_merge(fid, score, t, 0, 1, hl)
    # scoring: the most popular items (fallback, slates)
    topk.top_k(np.array([0.5, 1.0]), 1, np.empty(1, np.int64))
    # allocation
    state = rng.seed_state(0)
    two = np.ones(2, np.uint8)
    probs = np.empty((2, 1), np.float64)
    bandit.rank_probabilities(bandit.FAMILY_BETA, np.ones(2), np.ones(2), two, 1, 12.0, 48, 64, 1e-4, probs)
    bandit.categorical_select(np.array([0.5, 1.0]), state)
    bandit.posterior_top_k(bandit.FAMILY_BETA, np.ones(2), np.ones(2), two, state, np.empty(1, np.int64))
    bandit.arm_select(bandit.MODE_UCB1, 1.0, np.zeros(2), np.zeros(2), two, state)
    bandit.arm_stats_update(np.zeros(2), np.zeros(2), np.zeros(2), 0, 1.0, 1.0, 1.0, 1.0,
                            np.zeros(1, np.int64), np.zeros((1, 3)), np.zeros(2, np.int64))
    chol = np.ones((2, 1, 1))
    theta = np.zeros((2, 1))
    work = np.empty(1)
    linear.linear_update(chol, np.ones((2, 1, 1)), np.zeros((2, 1)), theta, 0, np.ones(1), 1.0, 1.0, work)
    linear.linear_scores(chol, theta, np.ones(1), two, np.empty(2), np.empty(2))
    linear.linucb_select(chol, theta, np.ones(1), two, 1.0)
    bandit.rank_slate(np.array([0, 1], np.int64), np.array([1.0, 0.5]), 2, 1, bandit.MODE_EPSILON, 0.1,
                      state, np.empty(1, np.int64), np.empty(1, np.float64))
    # fused decide / read (decide.py): the bundles the engine passes
    prof = (fid, score, t, np.full((2, 2), -1, np.int32))
    cat = (np.array([0, 1, 2, 2], np.int64), np.array([0, 1], np.int32), np.ones(2, np.float32))
    plc = (np.ones(2, np.uint8), np.zeros(2), np.zeros(2), np.zeros(2), np.zeros(2))
    params = np.zeros(decide.N_PARAMS)
    params[[decide.P_AFFINITY_W, decide.P_SLOTS, decide.P_PRIOR_TRIALS]] = 1.0
    dwork, dout, counts = decide.new_work(2, 4), decide.new_out(1), np.zeros(decide.N_COUNTS, np.int64)
    decide.decide_slate(prof, 0, 2, 1, np.array([1], np.int32), np.array([1.0]), hl, cat, np.zeros(2), plc, params,
                        state, dwork, dout, counts)
    decide.recommend_one(prof, 0, 2, 1, hl, cat, np.zeros(2), plc, params, 1, dwork, dout, counts)
    batch_out = (np.empty((2, 1), np.int64), np.empty((2, 1)), np.empty((2, 1)))
    decide.recommend_batch(prof, np.array([0, -1], np.int64), np.array([2, 2], np.int64), np.ones(2, np.uint8), hl, cat,
                           np.zeros(2), plc, params, 1, batch_out, np.zeros((2, decide.N_COUNTS), np.int64))
    # segments (segments/compile.py) and activity (activity.py): the dtypes of their stores
    prog = np.array([[segments.OP_CMP, 0, segments.CMP_GE, 0], [segments.OP_TRUE, 0, 0, 0],
                     [segments.OP_AND, 0, 0, 0]], np.int64)
    segments.segment_eval(prog, np.zeros(1), np.zeros(1, np.uint8), np.ones((1, 2)), np.empty(2, np.uint8))
    segments.affinity_share(fid, score, t, np.zeros(3, np.int32), 1.0, 0, 1, 2, np.empty(2))
    last, ring, head = np.zeros((2, 1), np.int64), np.zeros((2, 1, 2), np.uint16), np.full(2, -1, np.int32)
    activity.activity_record(last, ring, head, 0, 0, 5, 2)
    activity.activity_count(ring, head, 0, 2, 1, np.empty(2))
    activity.activity_merge(last, ring, head, 0, 1)
    _warm_attributes()
    if ranker or admin:
        warm_ranker()
    return time.perf_counter() - t0


def _warm_features() -> None:
    """The ranking features through :class:`~decisioner.ranking.features.Featurizer` (its dtypes)."""
    from .catalog import Catalog
    from .config import CatalogSpec, ProfileSpec
    from .profiles import ProfileStore, half_lives
    from .ranking.features import Featurizer
    from .scoring import AffinityScorer

    cat = Catalog([{"id": "a", "category": "x", "price": 10.0}, {"id": "b", "category": "y"}],
                  CatalogSpec(facets=("category",), price_bands=(25.0,)))
    store = ProfileStore(slots=2, capacity=2, purchased_slots=1, recent_slots=2)
    store.add_recent(0, 0, 1)
    fz = Featurizer(store, cat, AffinityScorer(cat), half_lives=half_lives(ProfileSpec(), cat))
    fz.features(0, 2, np.array([0, 1], np.int64), channel="web", device="mobile")
