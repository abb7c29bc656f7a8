"""LightGBM's two model formats read into trees: the text format (``Booster.save_model``) and
the ``dump_model()`` JSON, each checked field by field (:func:`check_tree`: every index a
kernel follows is in range and the children form one tree), so a malformed, truncated or
unsupported model raises :class:`~decisioner.errors.ModelError` naming the file, the tree and
the field. :mod:`decisioner.ranking.model` compiles the result.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from .._kernels import trees as K
from ..errors import ModelError

__all__ = ["OBJECTIVES", "Parsed", "Tree", "check_tree", "parse_dump", "parse_text"]

#: objectives whose models are one tree per iteration and whose raw score we serve
OBJECTIVES: frozenset[str] = frozenset({
    "binary", "lambdarank", "rank_xendcg", "regression", "regression_l1", "huber", "fair", "poisson", "quantile",
    "mape", "gamma", "tweedie", "cross_entropy", "cross_entropy_lambda",
})

_MISSING = {"None": 0, "Zero": K.K_MISSING_ZERO, "NaN": K.K_MISSING_NAN}

class Tree:
    """One parsed tree in LightGBM's own (per-tree) indexing, before it is checked and flattened."""

    __slots__ = ("cat_bits", "cat_bound", "dtype", "feat", "leaf", "left", "num_leaves", "right", "thr")

    def __init__(self, num_leaves: int, feat: np.ndarray, thr: np.ndarray, dtype: np.ndarray, left: np.ndarray,
                 right: np.ndarray, leaf: np.ndarray, cat_bound: np.ndarray, cat_bits: np.ndarray) -> None:
        self.num_leaves = num_leaves
        self.feat, self.thr, self.dtype, self.left, self.right = feat, thr, dtype, left, right
        self.leaf, self.cat_bound, self.cat_bits = leaf, cat_bound, cat_bits


def check_tree(tree: Tree, n_features: int, where: str) -> None:
    """Every index the kernel follows is in range and the children form one tree from node 0
    (no cycle, no node or leaf reached twice or never): a model that passes cannot make the
    kernel read out of bounds or loop."""
    n_int = tree.num_leaves - 1
    if not np.all(np.isfinite(tree.leaf)):
        bad = int(np.flatnonzero(~np.isfinite(tree.leaf))[0])
        raise ModelError(
            f"Expected finite leaf values, got {float(tree.leaf[bad])!r} at leaf {bad}"
            f" - at `{where}.leaf_value`"
        )
    if n_int == 0:
        return
    bad_f = np.flatnonzero((tree.feat < 0) | (tree.feat >= n_features))
    if bad_f.size:
        raise ModelError(
            f"Expected split features in [0, {n_features - 1}], got {int(tree.feat[bad_f[0]])} at node {int(bad_f[0])}"
            f" - at `{where}.split_feature`"
        )
    cat = (tree.dtype & K.K_CATEGORICAL) != 0
    num_cat = tree.cat_bound.shape[0] - 1
    if cat.any():
        idx = tree.thr[cat]
        ok = (idx == np.floor(idx)) & (idx >= 0) & (idx < num_cat)
        if not ok.all():
            raise ModelError(
                f"Expected categorical thresholds indexing `cat_boundaries` (0..{num_cat - 1}), got "
                f"{float(idx[~ok][0])!r} - at `{where}.threshold`"
            )
    if (~cat & np.isnan(tree.thr)).any():
        raise ModelError(f"Expected numerical thresholds that are numbers, got nan - at `{where}.threshold`")
    if (tree.dtype > 15).any() or ((tree.dtype >> 2) == 3).any():
        raise ModelError(
            f"Expected decision types in 0..11 (missing type None, Zero or NaN), got "
            f"{int(tree.dtype[(tree.dtype > 15) | ((tree.dtype >> 2) == 3)][0])} - at `{where}.decision_type`"
        )
    # every node but the root and every leaf is the child of exactly one node, reached from 0
    seen_node = np.zeros(n_int, np.bool_)
    seen_leaf = np.zeros(tree.num_leaves, np.bool_)
    seen_node[0] = True
    stack = [0]
    left, right = tree.left.tolist(), tree.right.tolist()
    while stack:
        i = stack.pop()
        for c in (left[i], right[i]):
            if c >= 0:
                if c >= n_int or seen_node[c]:
                    raise ModelError(
                        f"Expected children forming one tree, got node {c} "
                        f"{'out of range' if c >= n_int else 'reached twice'} under node {i} - at `{where}.left_child`"
                    )
                seen_node[c] = True
                stack.append(c)
            else:
                lf = ~c
                if lf >= tree.num_leaves or seen_leaf[lf]:
                    raise ModelError(
                        f"Expected children forming one tree, got leaf {lf} "
                        f"{'out of range' if lf >= tree.num_leaves else 'reached twice'} under node {i}"
                        f" - at `{where}.left_child`"
                    )
                seen_leaf[lf] = True
    if not seen_leaf.all() or not seen_node.all():
        raise ModelError(
            f"Expected children forming one tree, got nodes or leaves not reached from the root"
            f" - at `{where}.left_child`"
        )




class Parsed(NamedTuple):
    """A model as read: feature names, objective name, trees, LightGBM's ``average_output``."""

    names: tuple[str, ...]
    objective: str
    trees: list[Tree]
    average_output: bool


# ---------------------------------------------------------------------- LightGBM text format


def _num_array(raw: str, n: int, conv: type, where: str) -> np.ndarray:
    parts = raw.split()
    if len(parts) != n:
        raise ModelError(f"Expected {n} values, got {len(parts)} - at `{where}`")
    try:
        vals = [conv(p) for p in parts]
    except ValueError as e:
        raise ModelError(f"Expected {conv.__name__} values, got {raw[:40]!r} - at `{where}`") from e
    if conv is int:
        return np.array(vals, dtype=np.int64)
    return np.array(vals, dtype=np.float64)


def _header_int(fields: Mapping[str, str], key: str, where: str) -> int:
    if key not in fields:
        raise ModelError(f"Expected a `{key}=` line in the header, got none - at `{where}`")
    try:
        return int(fields[key])
    except ValueError as e:
        raise ModelError(f"Expected an integer, got {fields[key]!r} - at `{where}:{key}`") from e


def _check_header(num_class: int, per_iter: int, objective: str, max_feature_idx: int, names: Sequence[str],
                  where: str) -> None:
    if num_class != 1 or per_iter != 1:
        raise ModelError(
            f"Expected one tree per iteration (num_class=1), got num_class={num_class} and "
            f"num_tree_per_iteration={per_iter} (multiclass models are not supported) - at `{where}:num_class`"
        )
    if objective not in OBJECTIVES:
        raise ModelError(
            f"Expected an objective in {sorted(OBJECTIVES)}, got {objective!r} - at `{where}:objective`"
        )
    if max_feature_idx < 0 or len(names) != max_feature_idx + 1:
        raise ModelError(
            f"Expected {max_feature_idx + 1} feature names (max_feature_idx={max_feature_idx}), got {len(names)}"
            f" - at `{where}:feature_names`"
        )
    if len(set(names)) != len(names):
        dup = next(n for i, n in enumerate(names) if n in names[:i])
        raise ModelError(f"Expected distinct feature names, got {dup!r} twice - at `{where}:feature_names`")


def parse_text(s: str, source: str) -> Parsed:
    lines = s.splitlines()
    if not lines or lines[0].strip() != "tree":
        raise ModelError(
            f"Expected a LightGBM text model starting with `tree`, got {lines[0][:40] if lines else ''!r}"
            f" - at `{source}`"
        )
    i = 1
    fields: dict[str, str] = {}
    flags: set[str] = set()
    while i < len(lines) and not lines[i].startswith("Tree="):
        line = lines[i].strip()
        if line == "end of trees":
            break
        if "=" in line:
            k, _, v = line.partition("=")
            fields[k] = v
        elif line:
            flags.add(line)
        i += 1
    num_class = _header_int(fields, "num_class", source)
    per_iter = _header_int(fields, "num_tree_per_iteration", source)
    max_feature_idx = _header_int(fields, "max_feature_idx", source)
    if "objective" not in fields:
        raise ModelError(f"Expected an `objective=` line in the header, got none - at `{source}`")
    objective = fields["objective"].split(" ")[0]
    names = fields.get("feature_names", "").split()
    _check_header(num_class, per_iter, objective, max_feature_idx, names, source)
    n_sizes = len(fields["tree_sizes"].split()) if "tree_sizes" in fields else None
    trees: list[Tree] = []
    ended = False
    while i < len(lines):
        line = lines[i].strip()
        if line == "end of trees":
            ended = True
            break
        if not line:
            i += 1
            continue
        if not line.startswith("Tree="):
            raise ModelError(
                f"Expected `Tree={len(trees)}` or `end of trees`, got {line[:40]!r}"
                f" - at `{source}` line {i + 1}"
            )
        if line != f"Tree={len(trees)}":
            raise ModelError(f"Expected `Tree={len(trees)}`, got {line[:40]!r} - at `{source}` line {i + 1}")
        block: dict[str, str] = {}
        i += 1
        while i < len(lines) and lines[i].strip() and "=" in lines[i]:
            k, _, v = lines[i].strip().partition("=")
            block[k] = v
            i += 1
        trees.append(_text_tree(block, f"{source}:Tree={len(trees)}", max_feature_idx + 1))
    if not ended:
        raise ModelError(
            f"Expected `end of trees` after the last tree, got the end of the file after {len(trees)} trees "
            f"(truncated) - at `{source}`"
        )
    if n_sizes is not None and n_sizes != len(trees):
        raise ModelError(f"Expected {n_sizes} trees (tree_sizes), got {len(trees)} - at `{source}:tree_sizes`")
    if not trees:
        raise ModelError(f"Expected at least one tree, got none - at `{source}`")
    return Parsed(tuple(names), objective, trees, "average_output" in flags)


def _text_tree(block: Mapping[str, str], where: str, n_features: int) -> Tree:
    def need(key: str) -> str:
        if key not in block:
            raise ModelError(f"Expected a `{key}=` field, got none - at `{where}`")
        return block[key]

    try:
        num_leaves = int(need("num_leaves"))
        num_cat = int(block.get("num_cat", "0"))
    except ValueError as e:
        raise ModelError(f"Expected integer `num_leaves` and `num_cat`, got {e} - at `{where}`") from e
    if num_leaves < 1:
        raise ModelError(f"Expected num_leaves >= 1, got {num_leaves} - at `{where}.num_leaves`")
    if block.get("is_linear", "0").strip() not in ("0", ""):
        raise ModelError(
            f"Expected a constant-leaf tree, got a linear tree (is_linear=1; linear_tree models are not supported)"
            f" - at `{where}.is_linear`"
        )
    leaf = _num_array(need("leaf_value"), num_leaves, float, f"{where}.leaf_value")
    m = num_leaves - 1
    empty_i = np.empty(0, np.int64)
    if m == 0:
        return Tree(1, empty_i, np.empty(0), empty_i, empty_i, empty_i, leaf, np.zeros(1, np.int64),
                     np.empty(0, np.uint32))
    feat = _num_array(need("split_feature"), m, int, f"{where}.split_feature")
    thr = _num_array(need("threshold"), m, float, f"{where}.threshold")
    dtype = _num_array(need("decision_type"), m, int, f"{where}.decision_type")
    left = _num_array(need("left_child"), m, int, f"{where}.left_child")
    right = _num_array(need("right_child"), m, int, f"{where}.right_child")
    if num_cat < 0:
        raise ModelError(f"Expected num_cat >= 0, got {num_cat} - at `{where}.num_cat`")
    if num_cat > 0:
        bound = _num_array(need("cat_boundaries"), num_cat + 1, int, f"{where}.cat_boundaries")
        n_words = int(bound[-1]) if bound.size else 0
        if bound[0] != 0 or np.any(np.diff(bound) < 0):
            raise ModelError(
                f"Expected non-decreasing cat_boundaries from 0, got {need('cat_boundaries')[:40]!r}"
                f" - at `{where}.cat_boundaries`"
            )
        words = _num_array(need("cat_threshold"), n_words, int, f"{where}.cat_threshold")
        if np.any((words < 0) | (words > 0xFFFFFFFF)):
            raise ModelError(
                f"Expected 32-bit unsigned bitset words, got a value out of range"
                f" - at `{where}.cat_threshold`"
            )
        bits = words.astype(np.uint32)
    else:
        bound, bits = np.zeros(1, np.int64), np.empty(0, np.uint32)
    if ((dtype & K.K_CATEGORICAL) != 0).any() and num_cat == 0:
        raise ModelError(f"Expected num_cat > 0 for a tree with categorical splits, got 0 - at `{where}.num_cat`")
    tree = Tree(num_leaves, feat, thr, dtype, left, right, leaf, bound, bits)
    check_tree(tree, n_features, where)
    return tree


# ---------------------------------------------------------------------- dump_model() JSON


def _get(obj: Any, key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if not isinstance(obj, Mapping) or key not in obj:
        raise ModelError(f"Expected a `{key}` field, got none - at `{where}`")
    v = obj[key]
    if isinstance(v, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        raise ModelError(f"Expected a {getattr(kind, '__name__', kind)}, got {v!r} - at `{where}.{key}`")
    if not isinstance(v, kind):
        raise ModelError(f"Expected a {getattr(kind, '__name__', kind)}, got {v!r} - at `{where}.{key}`")
    return v


def parse_dump(obj: Mapping[str, Any], source: str) -> Parsed:
    where = f"{source}:$"
    num_class = _get(obj, "num_class", int, where)
    per_iter = _get(obj, "num_tree_per_iteration", int, where)
    max_feature_idx = _get(obj, "max_feature_idx", int, where)
    objective = str(_get(obj, "objective", str, where)).split(" ")[0]
    names = _get(obj, "feature_names", list, where)
    if not all(isinstance(n, str) for n in names):
        raise ModelError(f"Expected feature names as strings, got {names[:5]!r} - at `{where}.feature_names`")
    _check_header(num_class, per_iter, objective, max_feature_idx, names, where)
    infos = _get(obj, "tree_info", list, where)
    trees: list[Tree] = []
    for t, info in enumerate(infos):
        tw = f"{where}.tree_info[{t}]"
        trees.append(_dump_tree(info, tw, max_feature_idx + 1))
    if not trees:
        raise ModelError(f"Expected at least one tree, got none - at `{where}.tree_info`")
    average = bool(obj.get("average_output", False))
    return Parsed(tuple(names), objective, trees, average)


def _dump_tree(info: Any, where: str, n_features: int) -> Tree:
    num_leaves = _get(info, "num_leaves", int, where)
    num_cat = int(info.get("num_cat", 0)) if isinstance(info, Mapping) else 0
    root = _get(info, "tree_structure", dict, where)
    if num_leaves < 1:
        raise ModelError(f"Expected num_leaves >= 1, got {num_leaves} - at `{where}.num_leaves`")
    m = num_leaves - 1
    feat = np.zeros(m, np.int64)
    thr = np.zeros(m, np.float64)
    dtype = np.zeros(m, np.int64)
    left = np.zeros(m, np.int64)
    right = np.zeros(m, np.int64)
    leaf = np.full(num_leaves, np.nan)
    bound = [0]
    words: list[int] = []
    seen_node = np.zeros(m, np.bool_)
    seen_leaf = np.zeros(num_leaves, np.bool_)

    def index_of(node: Any, path: str) -> int:
        """The child code of ``node`` (node index, or ``~leaf``), filling the leaf value of a leaf."""
        if not isinstance(node, Mapping):
            raise ModelError(f"Expected a node object, got {type(node).__name__} - at `{path}`")
        if "leaf_coeff" in node or "leaf_const" in node:
            raise ModelError(
                f"Expected a constant-leaf tree, got a linear tree (leaf_coeff; linear_tree models are not supported)"
                f" - at `{path}`"
            )
        if "split_index" not in node:
            li = node.get("leaf_index", 0)
            if not isinstance(li, int) or isinstance(li, bool) or not 0 <= li < num_leaves or seen_leaf[li]:
                raise ModelError(
                    f"Expected a leaf_index in [0, {num_leaves - 1}] seen once, got {li!r}"
                    f" - at `{path}.leaf_index`"
                )
            v = _get(node, "leaf_value", (int, float), path)
            seen_leaf[li] = True
            leaf[li] = float(v)
            return int(~li)
        si = node["split_index"]
        if not isinstance(si, int) or isinstance(si, bool) or not 0 <= si < m or seen_node[si]:
            raise ModelError(f"Expected a split_index in [0, {m - 1}] seen once, got {si!r} - at `{path}.split_index`")
        seen_node[si] = True
        return si

    code = index_of(root, f"{where}.tree_structure")
    if m == 0:
        if code >= 0:
            raise ModelError(f"Expected a leaf for num_leaves=1, got a split - at `{where}.tree_structure`")
    elif code != 0:
        raise ModelError(f"Expected the root to be split 0, got {code!r} - at `{where}.tree_structure.split_index`")
    stack: list[tuple[Any, str]] = [(root, f"{where}.tree_structure")] if code >= 0 else []
    while stack:
        node, path = stack.pop()
        i = int(node["split_index"])
        feat[i] = _get(node, "split_feature", int, path)
        dt = _get(node, "decision_type", str, path)
        mt = _get(node, "missing_type", str, path)
        if mt not in _MISSING:
            raise ModelError(f"Expected missing_type None, Zero or NaN, got {mt!r} - at `{path}.missing_type`")
        d = _MISSING[mt] | (K.K_DEFAULT_LEFT if _get(node, "default_left", bool, path) else 0)
        if dt == "<=":
            v = float(_get(node, "threshold", (int, float), path))
            # dump_model writes an infinite threshold as +-1e300 (LightGBM's AvoidInf); the text model keeps inf
            thr[i] = math.copysign(math.inf, v) if abs(v) >= 1e300 else v
        elif dt == "==":
            raw = node.get("threshold")
            try:
                cats = [int(c) for c in str(raw).split("||")]
            except ValueError as e:
                raise ModelError(f"Expected categories joined by `||`, got {raw!r} - at `{path}.threshold`") from e
            if any(c < 0 for c in cats):
                raise ModelError(f"Expected non-negative categories, got {raw!r} - at `{path}.threshold`")
            n_w = max(cats) // 32 + 1
            bits = [0] * n_w
            for c in cats:
                bits[c // 32] |= 1 << (c % 32)
            thr[i] = float(len(bound) - 1)
            words.extend(bits)
            bound.append(len(words))
            d |= K.K_CATEGORICAL
        else:
            raise ModelError(f"Expected decision_type `<=` or `==`, got {dt!r} - at `{path}.decision_type`")
        dtype[i] = d
        for side, arr in (("left_child", left), ("right_child", right)):
            ch = _get(node, side, dict, path)
            c = index_of(ch, f"{path}.{side}")
            arr[i] = c
            if c >= 0:
                stack.append((ch, f"{path}.{side}"))
    if not seen_leaf.all() or not seen_node[: m].all():
        raise ModelError(f"Expected {num_leaves} leaves and {m} splits, got fewer - at `{where}.tree_structure`")
    if num_cat and len(bound) - 1 != num_cat:
        raise ModelError(f"Expected {num_cat} categorical splits, got {len(bound) - 1} - at `{where}.num_cat`")
    tree = Tree(num_leaves, feat, thr, dtype, left, right, leaf, np.array(bound, np.int64),
                 np.array(words, np.uint32))
    check_tree(tree, n_features, where)
    return tree
