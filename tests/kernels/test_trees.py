"""``_kernels/trees.py`` against ``reference.lgb_predict_ref`` (LightGBM's decision rules walked in
plain Python) on hand-made edge cases and seeded random models, no LightGBM needed."""

from __future__ import annotations

import math

import numpy as np
import pytest

import reference as ref
from decisioner._kernels import trees as K
from decisioner.ranking import RankerModel

from ._helpers import size

NAN, INF = math.nan, math.inf


def model_text(trees: list[dict[str, list[float] | list[int]]], n_features: int, *, average: bool = False) -> str:
    """A LightGBM text model from per-tree field lists (the fields ``save_model`` writes)."""
    head = [
        "tree", "version=v4", "num_class=1", "num_tree_per_iteration=1", "label_index=0",
        f"max_feature_idx={n_features - 1}", "objective=binary sigmoid:1",
        "feature_names=" + " ".join(f"f{i}" for i in range(n_features)),
        "feature_infos=" + " ".join("none" for _ in range(n_features)),
        "tree_sizes=" + " ".join("1" for _ in trees),
    ]
    if average:
        head.insert(7, "average_output")
    body = []
    for i, t in enumerate(trees):
        body.append(f"Tree={i}")
        body.extend(f"{k}={' '.join(repr(v) for v in vals)}" for k, vals in t.items())
        body.append("is_linear=0\nshrinkage=1\n\n")
    return "\n".join(head) + "\n\n" + "\n".join(body) + "\nend of trees\n\nparameters:\nend of parameters\n"


def random_tree(rng: np.random.Generator, n_features: int, num_leaves: int) -> dict[str, list[float] | list[int]]:
    """A random tree grown like LightGBM's (split a random leaf; new node ids in order) with every
    split kind: numerical (missing None, Zero, NaN; either default side; thresholds near 0) and
    categorical (a bitset of one or two words)."""
    left: list[int] = []
    right: list[int] = []
    parent_slot: dict[int, tuple[int, int]] = {}  # leaf -> (node, 0 left / 1 right)
    feat: list[int] = []
    thr: list[float] = []
    dtype: list[int] = []
    bounds = [0]
    words: list[int] = []
    for node in range(num_leaves - 1):
        leaf = int(rng.integers(0, node + 1))  # split this leaf: it stays left, the new leaf is right
        if leaf in parent_slot:
            p, side = parent_slot[leaf]
            (left if side == 0 else right)[p] = node
        left.append(~leaf)
        right.append(~(node + 1))
        parent_slot[leaf] = (node, 0)
        parent_slot[node + 1] = (node, 1)
        feat.append(int(rng.integers(0, n_features)))
        if rng.random() < 0.25:
            n_words = int(rng.integers(1, 3))
            words.extend(int(w) for w in rng.integers(0, 2**32, n_words, dtype=np.uint64))
            thr.append(float(len(bounds) - 1))
            bounds.append(len(words))
            dtype.append(1)
        else:
            kind = rng.random()
            thr.append(float(rng.choice([0.0, ref.LGB_ZERO, -ref.LGB_ZERO, 1e300])) if kind < 0.2
                       else float(np.round(rng.normal(), 3)))
            dtype.append(int(rng.integers(0, 3)) << 2 | int(rng.integers(0, 2)) << 1)
    tree: dict[str, list[float] | list[int]] = {
        "num_leaves": [num_leaves], "num_cat": [len(bounds) - 1], "split_feature": feat, "threshold": thr,
        "decision_type": dtype, "left_child": left, "right_child": right,
        "leaf_value": [float(v) for v in np.round(rng.normal(size=num_leaves), 6)],
    }
    if len(bounds) > 1:
        tree["cat_boundaries"] = bounds
        tree["cat_threshold"] = words
    return tree


def hostile_rows(rng: np.random.Generator, n: int, n_features: int) -> np.ndarray:
    """Rows mixing normal values with NaN, +-0, tiny values around kZeroThreshold, infinities,
    huge values, negative and fractional categories."""
    X = rng.normal(size=(n, n_features)) * 2
    specials = np.array([NAN, 0.0, -0.0, 1e-36, -1e-36, ref.LGB_ZERO, -ref.LGB_ZERO, INF, -INF, 3e9, -0.5, 0.5,
                         -1.0, 31.0, 32.0, 63.9, 2147483647.0, 2147483648.0, 1e300])
    mask = rng.random(X.shape) < 0.35
    X[mask] = rng.choice(specials, size=int(mask.sum()))
    cats = rng.random(X.shape) < 0.2
    X[cats] = rng.integers(-3, 70, size=int(cats.sum()))
    return X


def check(text: str, X: np.ndarray) -> np.ndarray:
    model = RankerModel.from_text(text)
    trees, average = ref.lgb_text_trees(text)
    want = np.array([ref.lgb_predict_ref(trees, average, row) for row in X])
    got = model.predict(X)
    assert np.array_equal(got, want), np.flatnonzero(got != want)[:5]
    for r in range(min(len(X), 8)):  # the one-row helper, through its kernel
        assert K.predict_row(model.bundle, np.ascontiguousarray(X), r) == want[r]
    return got


def test_single_leaf_trees_only() -> None:
    text = model_text([{"num_leaves": [1], "num_cat": [0], "leaf_value": [0.25]},
                       {"num_leaves": [1], "num_cat": [0], "leaf_value": [-1.5]}], 2)
    assert check(text, np.array([[NAN, 1.0], [0.0, 0.0]])).tolist() == [-1.25, -1.25]


def test_empty_batch_scores_nothing() -> None:
    model = RankerModel.from_text(model_text([{"num_leaves": [1], "num_cat": [0], "leaf_value": [1.0]}], 1))
    assert model.predict(np.empty((0, 1))).shape == (0,)
    out = np.full(2, 7.0)
    model.predict_into(np.zeros((2, 1)), 0, out)
    assert out.tolist() == [7.0, 7.0]  # writes nothing past n


STUMP = {"num_leaves": [2], "num_cat": [0], "split_feature": [0], "threshold": [0.5], "left_child": [-1],
         "right_child": [-2], "leaf_value": [-1.0, 1.0]}


@pytest.mark.parametrize(
    ("decision_type", "threshold", "nan", "zero", "tiny"),
    [
        (0, 0.5, -1.0, -1.0, -1.0),  # missing None: NaN is zero, zero compares (0 <= 0.5: left)
        (0, -0.5, 1.0, 1.0, 1.0),  # missing None, threshold below zero: NaN and zero go right
        (2 | 4, -0.5, -1.0, -1.0, -1.0),  # missing Zero, default left: NaN and zero go left
        (4, 0.5, 1.0, 1.0, 1.0),  # missing Zero, default right
        (2 | 8, -0.5, -1.0, 1.0, 1.0),  # missing NaN, default left: zero compares
        (8, 0.5, 1.0, -1.0, -1.0),  # missing NaN, default right
        (0, -ref.LGB_ZERO, 1.0, 1.0, 1.0),  # tiny values are zero: -kZero itself goes right
    ],
)
def test_numerical_missing_types(decision_type: int, threshold: float, nan: float, zero: float, tiny: float) -> None:
    tree = dict(STUMP, decision_type=[decision_type], threshold=[threshold])
    X = np.array([[NAN], [0.0], [-ref.LGB_ZERO], [1e-36], [-INF], [INF]])
    got = check(model_text([tree], 1), X)
    assert got[:4].tolist() == [nan, zero, tiny, zero]
    assert got[4:].tolist() == [-1.0, 1.0]


def test_categorical_split_sends_nan_negative_and_huge_right() -> None:
    tree = dict(STUMP, decision_type=[1], threshold=[0.0], num_cat=[1], cat_boundaries=[0, 2],
                cat_threshold=[(1 << 0) | (1 << 3), 1 << 1])  # categories 0, 3 and 33 go left
    X = np.array([[0.0], [3.0], [3.9], [33.0], [-0.5], [-1.0], [NAN], [1.0], [64.0], [3e9], [2147483648.0 + 3],
                  [1e-40], [INF], [-INF]])
    got = check(model_text([tree], 1), X)
    assert got.tolist() == [-1, -1, -1, -1, -1, 1, 1, 1, 1, 1, 1, -1, 1, 1]


def test_average_output_still_sums_the_trees() -> None:
    """LightGBM's raw score of a random forest is the sum of its trees (its mean is the caller's)."""
    text = model_text([dict(STUMP, decision_type=[2]), {"num_leaves": [1], "num_cat": [0], "leaf_value": [2.0]}], 1,
                      average=True)
    assert check(text, np.array([[0.0], [1.0]])).tolist() == [1.0, 3.0]
    assert RankerModel.from_text(text).average_output


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_models_match_the_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_features = 6
    trees = [random_tree(rng, n_features, int(rng.integers(1, 40))) for _ in range(size(40, 8))]
    check(model_text(trees, n_features), hostile_rows(rng, size(2000, 150), n_features))


def test_blocks_and_single_rows_agree() -> None:
    """``predict_rows`` walks rows in blocks of ``BLOCK``: every batch size around a block edge
    gives each row the score it gets alone."""
    rng = np.random.default_rng(7)
    model = RankerModel.from_text(model_text([random_tree(rng, 4, 20) for _ in range(5)], 4))
    X = hostile_rows(rng, 2 * K.BLOCK + 3, 4)
    alone = [K.predict_row(model.bundle, X, r) for r in range(X.shape[0])]
    for n in (1, K.BLOCK - 1, K.BLOCK, K.BLOCK + 1, X.shape[0]):
        out = np.full(X.shape[0], NAN)
        model.predict_into(X, n, out)
        assert out[:n].tolist() == alone[:n]
        assert np.isnan(out[n:]).all()


def walk(model: RankerModel, X: np.ndarray) -> np.ndarray:
    out = np.empty(X.shape[0])
    K.predict_rows(model.bundle, np.ascontiguousarray(X), X.shape[0], out)
    return out


def test_quickscorer_equals_the_walk_on_every_split_kind() -> None:
    """QuickScorer, scalar and vector (the default for trees of <= 64 leaves), gives the walk's
    scores bit for bit on
    random models with every split kind, so its exception nodes (categorical, missing Zero, NaN
    sent against the feature's ``nan_as``) are exercised, and on the reference."""
    rng = np.random.default_rng(11)
    n_features = 5
    trees = [random_tree(rng, n_features, int(rng.integers(1, 65))) for _ in range(size(30, 6))]
    text = model_text(trees, n_features)
    model = RankerModel.from_text(text)
    assert model._qs is not None and model._qs[5].shape[0] > 0  # some exception nodes
    X = hostile_rows(rng, size(3000, 120), n_features)
    want = walk(model, X)
    for kern in (K.predict_rows_qs, K.predict_rows_qs8):
        for n in (X.shape[0], 1, K.QS_LANES - 1, K.QS_LANES + 3):  # full vector blocks and a partial one
            out = np.full(X.shape[0] + 1, NAN)
            kern(model.bundle, model._qs, X, n, out)
            assert np.array_equal(out[:n], want[:n])
            assert np.isnan(out[n:]).all()  # nothing past n
    ref_trees, average = ref.lgb_text_trees(text)
    assert out[:8].tolist() == [ref.lgb_predict_ref(ref_trees, average, row) for row in X[:8]]


def test_quickscorer16_equals_the_walk_on_every_split_kind() -> None:
    """The uint32 / 16-row QuickScorer (the default when every tree has <= 32 leaves) gives the
    walk's scores bit for bit on random models with every split kind, for full and partial blocks,
    writing nothing past ``n``; a tree of 32 leaves uses the mask's top bit."""
    rng = np.random.default_rng(12)
    n_features = 5
    trees = [random_tree(rng, n_features, int(rng.integers(1, 33))) for _ in range(size(30, 6))]
    trees.append(random_tree(rng, n_features, 32))
    model = RankerModel.from_text(model_text(trees, n_features))
    assert model._qs16 is not None and model._qs16[3].shape[0] > 0  # some exception nodes
    X = hostile_rows(rng, size(3000, 120), n_features)
    want = walk(model, X)
    for n in (X.shape[0], 1, K.QS16_LANES - 1, K.QS16_LANES, K.QS16_LANES + 3):
        out = np.full(X.shape[0] + 1, NAN)
        K.predict_rows_qs16(model.bundle, model._qs16, X, n, out)
        assert np.array_equal(out[:n], want[:n])
        assert np.isnan(out[n:]).all()
    assert np.array_equal(model.predict(X), want)


def test_a_tree_of_33_leaves_leaves_the_16_row_quickscorer() -> None:
    rng = np.random.default_rng(13)
    model = RankerModel.from_text(model_text([random_tree(rng, 3, 33), random_tree(rng, 3, 8)], 3))
    assert model._qs is not None and model._qs16 is None
    X = hostile_rows(rng, 100, 3)
    assert np.array_equal(model.predict(X), walk(model, X))


@pytest.mark.parametrize(("decision_type", "threshold", "nan_as"), [
    (0, 0.5, 0.0),  # missing None: NaN compares as zero
    (2 | 8, -0.5, -INF),  # missing NaN, default left: below every threshold
    (8, 0.5, INF),  # missing NaN, default right: above every finite threshold
])
def test_quickscorer_compares_nan_where_lightgbm_sends_it(decision_type: int, threshold: float, nan_as: float) -> None:
    tree = dict(STUMP, decision_type=[decision_type], threshold=[threshold])
    model = RankerModel.from_text(model_text([tree, tree], 1))
    assert model._qs is not None
    assert model._qs[4].tolist() == [nan_as] and model._qs[5].shape[0] == 0  # no exception node
    X = np.array([[NAN], [0.0], [1e-36], [0.5], [0.6], [INF], [-INF]])
    assert np.array_equal(model.predict(X), walk(model, X))


def test_nan_default_right_at_an_infinite_threshold_is_an_exception() -> None:
    """``x > inf`` never holds, so a NaN sent right at an infinite threshold cannot be compared as
    +inf: the node is decided by LightGBM's rules row by row."""
    trees = [dict(STUMP, decision_type=[8], threshold=[INF]), dict(STUMP, decision_type=[8], threshold=[0.5])]
    model = RankerModel.from_text(model_text(trees, 1))
    assert model._qs is not None and model._qs[5].tolist() == [0]
    X = np.array([[NAN], [0.0], [INF], [1e300]])
    assert model.predict(X).tolist() == [2.0, -2.0, 0.0, 0.0]  # x <= inf goes left at the first tree


def test_trees_wider_than_64_leaves_use_the_walk() -> None:
    rng = np.random.default_rng(5)
    trees = [random_tree(rng, 3, 65), random_tree(rng, 3, 8)]
    text = model_text(trees, 3)
    model = RankerModel.from_text(text)
    assert model._qs is None
    X = hostile_rows(rng, 40, 3)
    ref_trees, average = ref.lgb_text_trees(text)
    assert model.predict(X).tolist() == [ref.lgb_predict_ref(ref_trees, average, row) for row in X]
