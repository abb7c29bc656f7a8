"""``decisioner.ranking``: compiled LightGBM models equal ``Booster.predict(raw_score=True)``, load
from text, JSON dump or a model directory, and refuse malformed or unsupported models with our
``ModelError`` messages."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from decisioner.errors import ModelError, SchemaError
from decisioner.ranking import RankerModel, load_model, read_schema

lgb = pytest.importorskip("lightgbm")

N_FEATURES = 8
CAT = (6, 7)  # categorical columns


def training_data(seed: int, n: int = 3000) -> tuple[np.ndarray, np.ndarray]:
    """Features with NaN and exact zeros, two categorical columns, a noisy binary label."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, N_FEATURES))
    X[:, 6] = rng.integers(0, 30, n)
    X[:, 7] = rng.integers(0, 5, n)
    X[rng.random(X.shape) < 0.08] = np.nan
    X[:, 2][rng.random(n) < 0.3] = 0.0
    signal = np.nan_to_num(X[:, 0]) - np.nan_to_num(X[:, 1]) + (X[:, 6] % 4 == 1) + 0.5 * np.nan_to_num(X[:, 2])
    y = (signal + rng.normal(scale=0.7, size=n) > 0.3).astype(np.float64)
    return X, y


def hostile_rows(seed: int, n: int) -> np.ndarray:
    """Rows far outside training: NaN, zeros, tiny values, infinities, out-of-range numbers,
    negative, fractional, unseen and huge categories."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, N_FEATURES)) * 3
    X[:, 6] = rng.integers(-3, 80, n) + rng.choice([0.0, 0.5], n)
    X[:, 7] = rng.integers(-2, 9, n)
    specials = np.array([np.nan, 0.0, -0.0, 1e-36, -1e-40, np.inf, -np.inf, 1e12, -1e12, 3e9, 2147483648.0, -0.7])
    mask = rng.random(X.shape) < 0.15
    X[mask] = rng.choice(specials, size=int(mask.sum()))
    return X


def train(objective: str, rounds: int, seed: int = 0, **params: Any) -> Any:
    X, y = training_data(seed)
    base = {"objective": objective, "num_leaves": 15, "learning_rate": 0.05, "num_threads": 1, "verbose": -1,
            "seed": seed, "deterministic": True, "min_data_in_leaf": 10, "max_cat_to_onehot": 4, **params}
    if objective == "lambdarank":
        y = np.minimum(y * 2 + (np.nan_to_num(X[:, 0]) > 1), 3)
        ds = lgb.Dataset(X, y, group=[30] * (len(y) // 30), categorical_feature=list(CAT))
    else:
        ds = lgb.Dataset(X, y, categorical_feature=list(CAT))
    return lgb.train(base, ds, num_boost_round=rounds)


@pytest.fixture(scope="module")
def rows() -> np.ndarray:
    return hostile_rows(11, 100_000)


def assert_parity(booster: Any, rows: np.ndarray) -> RankerModel:
    model = RankerModel.from_text(booster.model_to_string())
    want = booster.predict(rows, raw_score=True, num_threads=1)
    got = model.predict(rows)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-9)
    dumped = RankerModel.from_dump(booster.dump_model())
    assert np.array_equal(dumped.predict(rows), got)  # text and JSON compile to the same scores
    assert model.n_trees == booster.num_trees()
    assert model.feature_names == tuple(booster.feature_name())
    return model


@pytest.mark.parametrize("objective", ["binary", "lambdarank"])
def test_parity_500_trees(objective: str, rows: np.ndarray) -> None:
    model = assert_parity(train(objective, 500), rows)
    assert model.objective == objective and model.n_trees == 500
    kinds = model.bundle[4]
    assert (kinds & 1).any(), "the model has categorical splits"


def test_parity_zero_as_missing(rows: np.ndarray) -> None:
    model = assert_parity(train("binary", 120, seed=1, zero_as_missing=True), rows)
    assert (model.bundle[4] & 4).any(), "the model has missing-type Zero splits"


def test_parity_missing_nan_and_random_forest(rows: np.ndarray) -> None:
    assert_parity(train("binary", 60, seed=2, linear_tree=False), rows)
    rf = assert_parity(train("binary", 40, seed=3, boosting="rf", bagging_freq=1, bagging_fraction=0.7), rows)
    assert rf.average_output


def test_parity_single_leaf_trees(rows: np.ndarray) -> None:
    """Trees that could not split (min_data_in_leaf above the data) are single leaves."""
    X, y = training_data(4, n=40)
    b = lgb.train({"objective": "binary", "num_leaves": 7, "verbose": -1, "num_threads": 1, "min_data_in_leaf": 30},
                  lgb.Dataset(X, y), num_boost_round=5)
    assert "num_leaves=1" in b.model_to_string()
    assert_parity(b, rows[:1000])


# ---------------------------------------------------------------------- loading


@pytest.fixture(scope="module")
def small() -> Any:
    return train("binary", 20, seed=5)


def write_dir(root: Path, booster: Any, names: list[str], version: int = 1) -> Path:
    d = root / "ranker"
    d.mkdir()
    booster.save_model(str(d / "model.txt"))
    (d / "features.json").write_text(json.dumps({"version": version, "names": names}))
    return d


def test_load_text_json_and_directory_agree(small: Any, tmp_path: Path) -> None:
    X = hostile_rows(1, 500)
    small.save_model(str(tmp_path / "m.txt"))
    (tmp_path / "m.json").write_text(json.dumps(small.dump_model()))
    d = write_dir(tmp_path, small, small.feature_name(), version=3)
    a, b, c = load_model(tmp_path / "m.txt"), load_model(str(tmp_path / "m.json")), load_model(d)
    assert np.array_equal(a.predict(X), b.predict(X)) and np.array_equal(a.predict(X), c.predict(X))
    assert a.fingerprint == c.fingerprint and len(a.fingerprint) == 64
    assert read_schema(d) == (3, tuple(small.feature_name()))


def test_directory_with_other_feature_names_names_the_first_difference(small: Any, tmp_path: Path) -> None:
    names = list(small.feature_name())
    names[3] = "price_band"
    d = write_dir(tmp_path, small, names, version=2)
    msg = (f"Expected the model's feature 3 to be 'price_band' as in features.json (version 2), got 'Column_3'"
           f" - at `{d / 'model.txt'}:feature_names`")
    with pytest.raises(ModelError, match=re.escape(msg)):
        load_model(d)


def test_directory_with_fewer_schema_names(small: Any, tmp_path: Path) -> None:
    d = write_dir(tmp_path, small, list(small.feature_name())[:-1])
    with pytest.raises(ModelError, match=re.escape("Expected the model's feature 7 to be None as in features.json")):
        load_model(d)


@pytest.mark.parametrize(
    ("content", "msg"),
    [
        ("{", "Expected a JSON feature schema, got text that is not JSON - at `{p}`"),
        ("[]", "Expected an object {{\"version\": int, \"names\": [...]}}, got list - at `{p}`"),
        ('{"version": "1", "names": []}', "Expected an integer, got '1' - at `{p}:$.version`"),
        ('{"version": 1, "names": [1]}', "Expected a list of feature names, got [1] - at `{p}:$.names`"),
    ],
)
def test_bad_schema_files(tmp_path: Path, content: str, msg: str) -> None:
    (tmp_path / "features.json").write_text(content)
    with pytest.raises(ModelError, match=re.escape(msg.format(p=tmp_path / "features.json"))):
        read_schema(tmp_path)


def test_missing_schema_and_model_files(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=re.escape(f"Expected a feature schema file, got none (No such file or "
                                                   f"directory) - at `{tmp_path / 'features.json'}`")):
        load_model(tmp_path)
    with pytest.raises(ModelError, match=re.escape(f"Expected a model file, got none (No such file or directory)"
                                                   f" - at `{tmp_path / 'x.txt'}`")):
        load_model(tmp_path / "x.txt")


def test_predict_validates_x(small: Any) -> None:
    model = RankerModel.from_text(small.model_to_string())
    with pytest.raises(SchemaError, match=re.escape("Expected a 2-D feature matrix with 8 columns, got shape (3, 7)"
                                                    " - at `X`")):
        model.predict(np.zeros((3, 7)))
    with pytest.raises(SchemaError, match=re.escape("Expected a 2-D feature matrix with 8 columns, got shape (8,)")):
        model.predict(np.zeros(8))
    with pytest.raises(SchemaError, match=re.escape("Expected a feature matrix convertible to float64, got list")):
        model.predict([["a"] * 8])
    with pytest.raises(SchemaError, match=re.escape("Expected a C-contiguous float64 matrix of >= 2 rows and 8 "
                                                    "columns, got float32(2, 8) - at `X`")):
        model.predict_into(np.zeros((2, 8), np.float32), 2, np.empty(2))
    with pytest.raises(SchemaError, match=re.escape("Expected a C-contiguous float64 matrix of >= 3 rows")):
        model.predict_into(np.zeros((2, 8)), 3, np.empty(3))
    with pytest.raises(SchemaError, match=re.escape("Expected a C-contiguous float64 matrix")):
        model.predict_into(np.zeros((8, 2)).T, 2, np.empty(2))
    with pytest.raises(SchemaError, match=re.escape("Expected a float64 vector of >= 2 values, got float64(1,)"
                                                    " - at `out`")):
        model.predict_into(np.zeros((2, 8)), 2, np.empty(1))
    X = np.zeros((3, 8))
    assert model.predict(X.tolist()).tolist() == model.predict(X).tolist()  # lists convert


# ---------------------------------------------------------------------- malformed and unsupported models


def edit(text: str, old: str, new: str, count: int = 1) -> str:
    assert old in text
    return text.replace(old, new, count)


def field(text: str, tree: int, key: str) -> str:
    """The ``key=...`` line of tree ``tree``."""
    block = text.split(f"Tree={tree}\n", 1)[1]
    return next(line for line in block.splitlines() if line.startswith(key + "="))


MALFORMED: list[tuple[str, Callable[[str], str], str]] = [
    ("truncated after a tree", lambda t: t[: t.index("Tree=3")],
     "Expected `end of trees` after the last tree, got the end of the file after 3 trees (truncated) - at `m.txt`"),
    ("truncated inside a tree", lambda t: t[: t.index("leaf_value=", t.index("Tree=2")) + 20],
     "Expected 15 values, got 1 - at `m.txt:Tree=2.leaf_value`"),
    ("missing field", lambda t: edit(t, field(t, 1, "threshold") + "\n", ""),
     "Expected a `threshold=` field, got none - at `m.txt:Tree=1`"),
    ("tree count", lambda t: edit(t, "tree_sizes=", "tree_sizes=1 "),
     "Expected 21 trees (tree_sizes), got 20 - at `m.txt:tree_sizes`"),
    ("trees out of order", lambda t: edit(t, "Tree=4\n", "Tree=5\n"),
     "Expected `Tree=4`, got 'Tree=5' - at `m.txt` line"),
    ("non-finite leaf", lambda t: edit(t, field(t, 0, "leaf_value"), "leaf_value=nan" + " 0" * 14),
     "Expected finite leaf values, got nan at leaf 0 - at `m.txt:Tree=0.leaf_value`"),
    ("bad number", lambda t: edit(t, field(t, 0, "threshold"), "threshold=x" + " 0" * 13),
     "Expected float values, got 'x 0 0 0 0 0 0 0 0 0 0 0 0 0' - at `m.txt:Tree=0.threshold`"),
    ("feature out of range", lambda t: edit(t, field(t, 0, "split_feature"), "split_feature=9" + " 0" * 13),
     "Expected split features in [0, 7], got 9 at node 0 - at `m.txt:Tree=0.split_feature`"),
    ("child cycle", lambda t: edit(t, field(t, 0, "left_child"), "left_child=0" + " -1" * 13),
     "Expected children forming one tree, got node 0 reached twice under node 0 - at `m.txt:Tree=0.left_child`"),
    ("linear tree", lambda t: edit(t, "is_linear=0", "is_linear=1"),
     "Expected a constant-leaf tree, got a linear tree (is_linear=1; linear_tree models are not supported)"
     " - at `m.txt:Tree=0.is_linear`"),
    ("multiclass", lambda t: edit(t, "num_class=1", "num_class=3"),
     "Expected one tree per iteration (num_class=1), got num_class=3 and num_tree_per_iteration=1 (multiclass"
     " models are not supported) - at `m.txt:num_class`"),
    ("unknown objective", lambda t: edit(t, "objective=binary sigmoid:1", "objective=my_loss"),
     "Expected an objective in ['binary', 'cross_entropy', 'cross_entropy_lambda', 'fair', 'gamma', 'huber', "
     "'lambdarank', 'mape', 'poisson', 'quantile', 'rank_xendcg', 'regression', 'regression_l1', 'tweedie'], "
     "got 'my_loss' - at `m.txt:objective`"),
    ("missing header", lambda t: edit(t, "max_feature_idx=7\n", ""),
     "Expected a `max_feature_idx=` line in the header, got none - at `m.txt`"),
    ("feature names", lambda t: edit(t, "feature_names=Column_0 ", "feature_names="),
     "Expected 8 feature names (max_feature_idx=7), got 7 - at `m.txt:feature_names`"),
    ("not a model", lambda t: "hello",
     "Expected a LightGBM text model starting with `tree`, got 'hello' - at `m.txt`"),
]


@pytest.mark.parametrize(("case", "damage", "msg"), MALFORMED, ids=[c[0] for c in MALFORMED])
def test_malformed_text_models(small: Any, tmp_path: Path, case: str, damage: Callable[[str], str], msg: str) -> None:
    text = small.model_to_string()
    assert "num_cat=0" in text.split("Tree=0\n", 1)[1][:40], "the fixture's first tree is numerical"
    path = tmp_path / "m.txt"
    path.write_text(damage(text))
    with pytest.raises(ModelError, match=re.escape(msg.replace("`m.txt", f"`{path}"))):
        load_model(path)


def test_real_multiclass_and_linear_tree_models_are_refused(tmp_path: Path) -> None:
    X, y = training_data(6, n=600)
    multi = lgb.train({"objective": "multiclass", "num_class": 3, "verbose": -1, "num_threads": 1},
                      lgb.Dataset(X, (np.nan_to_num(X[:, 0]) > 0) + y), num_boost_round=2)
    with pytest.raises(ModelError, match=re.escape("got num_class=3 and num_tree_per_iteration=3")):
        RankerModel.from_text(multi.model_to_string())
    with pytest.raises(ModelError, match=re.escape("got num_class=3 and num_tree_per_iteration=3")):
        RankerModel.from_dump(multi.dump_model())
    Xl = np.nan_to_num(X[:, :6])
    linear = lgb.train({"objective": "regression", "linear_tree": True, "verbose": -1, "num_threads": 1},
                       lgb.Dataset(Xl, y), num_boost_round=2)
    with pytest.raises(ModelError, match=re.escape("got a linear tree (is_linear=1; linear_tree models are not")):
        RankerModel.from_text(linear.model_to_string())
    with pytest.raises(ModelError, match=re.escape("got a linear tree (leaf_coeff; linear_tree models are not")):
        RankerModel.from_dump(linear.dump_model())


def test_malformed_json_dumps(small: Any) -> None:
    dump = small.dump_model()
    with pytest.raises(ModelError, match=re.escape("Expected a LightGBM JSON dump, got text that is not JSON")):
        RankerModel.from_dump('{"tree_info": [', source="d.json")
    broken = json.loads(json.dumps(dump))
    del broken["tree_info"][2]["tree_structure"]["left_child"]
    with pytest.raises(ModelError, match=re.escape("Expected a `left_child` field, got none - at "
                                                   "`d.json:$.tree_info[2].tree_structure`")):
        RankerModel.from_dump(broken, source="d.json")
    broken = json.loads(json.dumps(dump))
    broken["tree_info"][1]["tree_structure"]["missing_type"] = "Sometimes"
    with pytest.raises(ModelError, match=re.escape("Expected missing_type None, Zero or NaN, got 'Sometimes' - at "
                                                   "`d.json:$.tree_info[1].tree_structure.missing_type`")):
        RankerModel.from_dump(broken, source="d.json")
    broken = json.loads(json.dumps(dump))
    broken["tree_info"][0]["num_leaves"] += 1
    with pytest.raises(ModelError, match=re.escape("Expected 16 leaves and 15 splits, got fewer - at "
                                                   "`d.json:$.tree_info[0].tree_structure`")):
        RankerModel.from_dump(broken, source="d.json")
    with pytest.raises(ModelError, match=re.escape("Expected a `num_class` field, got none - at `d.json:$`")):
        RankerModel.from_dump({}, source="d.json")
