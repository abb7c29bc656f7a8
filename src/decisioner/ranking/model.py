"""LightGBM models compiled to flat arrays: :class:`RankerModel` and :func:`load_model`.

A model comes from LightGBM's text format (``Booster.save_model``), from its ``dump_model()``
JSON (a file or the dict) or from a model directory ``models/NAME/`` holding ``model.txt`` and
``features.json`` (``{"version": int, "names": [...]}``, read by :func:`read_schema`). Loading
is pure (it touches no engine) and imports no LightGBM; it checks everything a kernel relies
on, so a malformed, truncated or unsupported model raises :class:`~decisioner.errors.ModelError`
naming the file, the tree and the field, and never reaches the kernel.

Supported: one tree per iteration (binary, lambdarank, rank_xendcg and the regression
objectives), numerical splits with every missing-value type (None, Zero, NaN; so models trained
with ``zero_as_missing``), categorical splits, single-leaf trees and ``average_output`` (random
forests, whose raw score LightGBM gives as the sum of the trees). Refused: linear trees
(``is_linear=1``), several trees per iteration (multiclass, ``num_class`` > 1) and objectives
outside :data:`OBJECTIVES`. ``shrinkage`` is already folded into LightGBM's leaf values, so it
is not applied again. ``dump_model()`` writes infinite thresholds as +-1e300 (its
``AvoidInf``); they are read back as infinite, as the text model has them, so an infinite input
goes the same way from either form.

The compiled form is the bundle of :mod:`decisioner._kernels.trees` (its docstring gives the
layout and LightGBM's decision rules); :meth:`RankerModel.predict` equals
``Booster.predict(X, raw_score=True)`` (the same additions in the same order).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._kernels import trees as K
from ..errors import ModelError, SchemaError
from .lgbm_format import OBJECTIVES, Parsed, Tree, parse_dump, parse_text

__all__ = ["OBJECTIVES", "RankerModel", "load_model", "read_schema"]


#: the two files of a model directory
MODEL_FILE = "model.txt"
SCHEMA_FILE = "features.json"



def _fingerprint(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=32).hexdigest()


def _bundle(trees: Sequence[Tree]) -> tuple[np.ndarray, ...]:
    """Flatten checked trees into the kernel's bundle (global node and leaf indices)."""
    n_trees = len(trees)
    n_int = sum(t.num_leaves - 1 for t in trees)
    n_leaf = sum(t.num_leaves for t in trees)
    n_cat = sum(t.cat_bound.shape[0] - 1 for t in trees)
    n_words = sum(t.cat_bits.shape[0] for t in trees)
    root = np.empty(n_trees, np.int32)
    feat = np.empty(n_int, np.int32)
    thr = np.empty(n_int, np.float64)
    child = np.empty(2 * n_int, np.int32)
    kind = np.empty(n_int, np.uint8)
    leaf = np.empty(n_leaf, np.float64)
    cat_bound = np.empty(n_cat + 1, np.int32)
    cat_bits = np.empty(n_words, np.uint32)
    cat_bound[0] = 0
    no = lo = co = wo = 0  # offsets: nodes, leaves, categorical splits, bitset words
    for i, t in enumerate(trees):
        m = t.num_leaves - 1
        leaf[lo : lo + t.num_leaves] = t.leaf
        if m == 0:
            root[i] = ~lo
            lo += 1
            continue
        root[i] = no
        feat[no : no + m] = t.feat
        th = t.thr.copy()
        cat = (t.dtype & K.K_CATEGORICAL) != 0
        th[cat] += co
        thr[no : no + m] = th
        k = t.dtype.astype(np.uint8)
        near = ~cat & (np.abs(t.thr) <= K.ZERO_THRESHOLD)
        kind[no : no + m] = k | np.where(near, K.K_NEAR_ZERO, 0).astype(np.uint8)
        for src, col in ((t.left, 0), (t.right, 1)):
            child[2 * no + col : 2 * (no + m) : 2] = np.where(src >= 0, src + no, ~(~src + lo))
        c = t.cat_bound.shape[0] - 1
        cat_bound[co + 1 : co + c + 1] = t.cat_bound[1:] + wo
        cat_bits[wo : wo + t.cat_bits.shape[0]] = t.cat_bits
        no += m
        lo += t.num_leaves
        co += c
        wo += t.cat_bits.shape[0]
    return root, feat, thr, child, kind, leaf, cat_bound, cat_bits


def _quickscorer(bundle: tuple[np.ndarray, ...], n_features: int) -> tuple[np.ndarray, ...] | None:
    """The ``qs`` arrays of :func:`decisioner._kernels.trees.predict_rows_qs` for a bundle, or
    None when a tree has more than :data:`~decisioner._kernels.trees.QS_MAX_LEAVES` leaves (the
    walk scores those models)."""
    root, feat, thr, child, kind, leaf = bundle[:6]
    n_trees = root.shape[0]
    l_off = np.empty(n_trees, np.int32)
    l_val = np.empty(leaf.shape[0], np.float64)
    node_tree = np.empty(feat.shape[0], np.int32)
    clear = np.zeros(feat.shape[0], np.uint64)
    children = child.tolist()
    pos = 0
    for t in range(n_trees):
        l_off[t] = pos
        start = int(root[t])
        if start < 0:
            l_val[pos] = leaf[~start]
            pos += 1
            continue
        # in-order walk: leaves numbered left to right; a node's left subtree holds leaves [first, mid)
        first: dict[int, int] = {}
        count = 0
        stack: list[tuple[int, int]] = [(start, 0)]
        while stack:
            node, state = stack.pop()
            if node < 0:
                l_val[pos + count] = leaf[~node]
                count += 1
                continue
            if state == 0:
                first[node] = count
                stack.append((node, 1))
                stack.append((children[2 * node], 0))
            else:
                node_tree[node] = t
                width = count - first[node]
                if count > K.QS_MAX_LEAVES:  # a leaf past bit 63
                    return None
                clear[node] = np.uint64(((1 << width) - 1) << first[node])
                stack.append((children[2 * node + 1], 0))
        if count > K.QS_MAX_LEAVES:
            return None
        pos += count
    categorical = (kind & K.K_CATEGORICAL) != 0
    zero_missing = (kind & K.K_MISSING_ZERO) != 0
    nan_type = (kind & K.K_MISSING_NAN) != 0
    # where LightGBM sends a NaN: missing type None compares it as 0.0, NaN goes the default side
    nan_right = np.where(nan_type, (kind & K.K_DEFAULT_LEFT) == 0, thr < 0.0)
    plain = ~categorical & ~zero_missing
    nan_as = np.zeros(n_features, np.float64)
    scanned = np.zeros(feat.shape[0], np.bool_)
    for f in range(n_features):
        nodes = plain & (feat == f)
        best, best_ok = 0.0, None
        for cand in (0.0, -math.inf, math.inf):
            ok = nodes & ((cand > thr) == nan_right)
            if best_ok is None or ok.sum() > best_ok.sum():
                best, best_ok = cand, ok
        nan_as[f] = best
        assert best_ok is not None
        scanned |= best_ok
    idx = np.flatnonzero(scanned)
    idx = idx[np.lexsort((thr[idx], feat[idx]))]
    bound = np.searchsorted(feat[idx], np.arange(n_features + 1)).astype(np.int32)
    exc = np.flatnonzero(~scanned)
    keep = ~clear
    return (bound, np.ascontiguousarray(thr[idx]), node_tree[idx], keep[idx], nan_as, exc.astype(np.int32),
            node_tree[exc], keep[exc], l_off, l_val)


def _quickscorer16(qs: tuple[np.ndarray, ...] | None) -> tuple[np.ndarray, ...] | None:
    """The ``qs`` arrays of :func:`decisioner._kernels.trees.predict_rows_qs16` from those of
    :func:`_quickscorer`, or None when a tree has more than
    :data:`~decisioner._kernels.trees.QS16_MAX_LEAVES` leaves."""
    if qs is None:
        return None
    bound, q_thr, q_tree, q_keep, nan_as, e_node, e_tree, e_keep, l_off, l_val = qs
    widths = np.diff(np.append(l_off, l_val.shape[0]))
    if widths.shape[0] and int(widths.max()) > K.QS16_MAX_LEAVES:
        return None
    low = np.uint64(0xFFFFFFFF)
    rec = np.empty(2 * q_thr.shape[0], np.uint64)
    rec[0::2] = q_thr.view(np.uint64)
    rec[1::2] = (q_tree.astype(np.uint64) * np.uint64(K.QS16_LANES) << np.uint64(32)) | (q_keep & low)
    return bound, rec, nan_as, e_node, e_tree, (e_keep & low).astype(np.uint32), l_off, l_val


class RankerModel:
    """A LightGBM model compiled to flat arrays, scored by one numba kernel for every model.

    Build one with :func:`load_model`, :meth:`from_text` or :meth:`from_dump`.

    Parameters
    ----------
    feature_names
        The model's feature names, in column order.
    objective
        The objective's name (``"binary"``, ``"lambdarank"`` ...), without its parameters.
    bundle
        The arrays of :mod:`decisioner._kernels.trees`, in its order.
    fingerprint
        BLAKE2b (32 bytes, hex) of the model's text or JSON bytes.
    source
        Where the model came from (file path or ``"<text>"``), for messages.
    average_output
        The model is a random forest (LightGBM's ``average_output``). Its raw score is still the
        sum of its trees, as ``Booster.predict(raw_score=True)`` returns it; divide by
        :attr:`n_trees` for the mean.

    Examples
    --------
    >>> import numpy as np
    >>> text = (
    ...     "tree\\nversion=v4\\nnum_class=1\\nnum_tree_per_iteration=1\\nlabel_index=0\\nmax_feature_idx=1\\n"
    ...     "objective=binary sigmoid:1\\nfeature_names=a b\\nfeature_infos=[0:1] [0:1]\\ntree_sizes=1\\n\\n"
    ...     "Tree=0\\nnum_leaves=2\\nnum_cat=0\\nsplit_feature=1\\nthreshold=0.5\\ndecision_type=2\\n"
    ...     "left_child=-1\\nright_child=-2\\nleaf_value=-1 1\\nis_linear=0\\nshrinkage=1\\n\\n\\nend of trees\\n"
    ... )
    >>> model = RankerModel.from_text(text)
    >>> model.feature_names, model.n_trees
    (('a', 'b'), 1)
    >>> model.predict(np.array([[0.0, 0.2], [0.0, 0.9], [0.0, np.nan]]))
    array([-1.,  1., -1.])
    """

    def __init__(self, feature_names: tuple[str, ...], objective: str, bundle: tuple[np.ndarray, ...],
                 fingerprint: str, *, source: str = "<model>", average_output: bool = False) -> None:
        self.feature_names = feature_names
        self.objective = objective
        self.bundle = bundle
        self.fingerprint = fingerprint
        self.source = source
        self.average_output = average_output
        self._qs = _quickscorer(bundle, len(feature_names))
        self._qs16 = _quickscorer16(self._qs)

    @property
    def n_trees(self) -> int:
        """Number of trees."""
        return int(self.bundle[0].shape[0])

    @property
    def n_features(self) -> int:
        """Number of feature columns ``X`` must have."""
        return len(self.feature_names)

    def __repr__(self) -> str:
        return (
            f"RankerModel(objective={self.objective!r}, n_trees={self.n_trees}, n_features={self.n_features}, "
            f"fingerprint={self.fingerprint[:12]!r})"
        )

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_text(cls, text: str | bytes, *, source: str = "<text>") -> RankerModel:
        """Compile a model in LightGBM's text format (``Booster.save_model``/``model_to_string``).

        Raises
        ------
        ModelError
            The text is malformed, truncated or unsupported (the message names the field).
        """
        data = text.encode() if isinstance(text, str) else bytes(text)
        try:
            s = data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ModelError(f"Expected a LightGBM text model in UTF-8, got undecodable bytes - at `{source}`") from e
        return cls._compiled(parse_text(s, source), source, _fingerprint(data))

    @classmethod
    def from_dump(cls, dump: Mapping[str, Any] | str | bytes, *, source: str = "<dump>") -> RankerModel:
        """Compile a model from ``Booster.dump_model()``: the dict, or its JSON text.

        Raises
        ------
        ModelError
            The dump is malformed or unsupported (the message names the JSON path).
        """
        if isinstance(dump, (str, bytes)):
            data = dump.encode() if isinstance(dump, str) else bytes(dump)
            try:
                obj = json.loads(data)
            except (ValueError, UnicodeDecodeError) as e:
                raise ModelError(
                    f"Expected a LightGBM JSON dump, got text that is not JSON ({e})"
                    f" - at `{source}`"
                ) from e
        else:
            obj = dump
            try:
                data = json.dumps(obj, sort_keys=True, allow_nan=True).encode()
            except (TypeError, ValueError) as e:
                raise ModelError(f"Expected a LightGBM JSON dump, got a dict that is not JSON - at `{source}`") from e
        if not isinstance(obj, Mapping):
            raise ModelError(f"Expected a LightGBM JSON dump (an object), got {type(obj).__name__} - at `{source}`")
        return cls._compiled(parse_dump(obj, source), source, _fingerprint(data))

    @classmethod
    def _compiled(cls, parsed: Parsed, source: str, fingerprint: str) -> RankerModel:
        return cls(parsed.names, parsed.objective, _bundle(parsed.trees), fingerprint, source=source,
                   average_output=parsed.average_output)

    # ------------------------------------------------------------------ scoring

    def predict(self, X: Any) -> np.ndarray:
        """Raw scores of the rows of ``X``: ``Booster.predict(X, raw_score=True)``.

        Parameters
        ----------
        X
            A 2-D matrix convertible to float64 with :attr:`n_features` columns (NaN means
            missing, as in LightGBM).

        Returns
        -------
        numpy.ndarray
            float64[n_rows].

        Raises
        ------
        SchemaError
            ``X`` is not 2-D, not numeric or has the wrong number of columns.
        """
        try:
            arr = np.ascontiguousarray(X, dtype=np.float64)
        except (TypeError, ValueError) as e:
            raise SchemaError(
                f"Expected a feature matrix convertible to float64, got {type(X).__name__} ({e}) - at `X`"
            ) from e
        if arr.ndim != 2 or arr.shape[1] != self.n_features:
            raise SchemaError(
                f"Expected a 2-D feature matrix with {self.n_features} columns, got shape {arr.shape} - at `X`"
            )
        out = np.empty(arr.shape[0], np.float64)
        self._score(arr, arr.shape[0], out)
        return out

    def predict_into(self, X: np.ndarray, n: int, out: np.ndarray) -> None:
        """Raw scores of the first ``n`` rows of ``X`` into ``out[:n]``, allocating nothing (hot path).

        Parameters
        ----------
        X
            C-contiguous float64[>= n, :attr:`n_features`].
        n
            Rows to score.
        out
            float64[>= n], written in place.

        Raises
        ------
        SchemaError
            ``X`` or ``out`` is not of that dtype, layout or shape.
        """
        if (
            not isinstance(X, np.ndarray) or X.dtype != np.float64 or X.ndim != 2 or not X.flags.c_contiguous
            or X.shape[1] != self.n_features or not 0 <= n <= X.shape[0]
        ):
            got = f"{X.dtype}{X.shape}" if isinstance(X, np.ndarray) else type(X).__name__
            raise SchemaError(
                f"Expected a C-contiguous float64 matrix of >= {n} rows and {self.n_features} columns, got {got}"
                f" - at `X`"
            )
        if not isinstance(out, np.ndarray) or out.dtype != np.float64 or out.ndim != 1 or out.shape[0] < n:
            got = f"{out.dtype}{out.shape}" if isinstance(out, np.ndarray) else type(out).__name__
            raise SchemaError(f"Expected a float64 vector of >= {n} values, got {got} - at `out`")
        self._score(X, n, out)

    def _score(self, X: np.ndarray, n: int, out: np.ndarray) -> None:
        if self._qs is None:  # a tree wider than 64 leaves: the walk
            K.predict_rows(self.bundle, X, n, out)
        elif self._qs16 is not None and n >= K.QS_LANES:  # trees <= 32 leaves: uint32 masks, 16 rows a block
            K.predict_rows_qs16(self.bundle, self._qs16, X, n, out)
        elif n >= K.QS_LANES:  # trees of 33-64 leaves: vector QuickScorer, 8 rows a node test
            K.predict_rows_qs8(self.bundle, self._qs, X, n, out)
        else:  # a few rows: scalar QuickScorer (a vector block would be mostly empty lanes)
            K.predict_rows_qs(self.bundle, self._qs, X, n, out)


# ---------------------------------------------------------------------- files and directories


def read_schema(directory: str | os.PathLike[str]) -> tuple[int, tuple[str, ...]]:
    """The feature schema of a model directory: ``features.json``'s ``(version, names)``.

    Raises
    ------
    ModelError
        The file is missing, not JSON or not ``{"version": int, "names": [str, ...]}``.
    """
    path = Path(directory) / SCHEMA_FILE
    try:
        obj = json.loads(path.read_bytes())
    except OSError as e:
        raise ModelError(f"Expected a feature schema file, got none ({e.strerror}) - at `{path}`") from e
    except (ValueError, UnicodeDecodeError) as e:
        raise ModelError(f"Expected a JSON feature schema, got text that is not JSON - at `{path}`") from e
    if not isinstance(obj, dict):
        raise ModelError(
            f"Expected an object {{\"version\": int, \"names\": [...]}}, got {type(obj).__name__}"
            f" - at `{path}`"
        )
    version = obj.get("version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise ModelError(f"Expected an integer, got {version!r} - at `{path}:$.version`")
    names = obj.get("names")
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ModelError(f"Expected a list of feature names, got {names!r:.60} - at `{path}:$.names`")
    return version, tuple(names)


def load_model(path: str | os.PathLike[str]) -> RankerModel:
    """Load and compile a LightGBM model: a text model file, a ``dump_model()`` JSON file, or a
    model directory holding ``model.txt`` and ``features.json``.

    For a directory the model's feature names must equal the schema's, in order.

    Raises
    ------
    ModelError
        The file is missing, malformed, truncated or unsupported, or the schema's feature names
        differ from the model's (the message names the first differing feature).

    Examples
    --------
    >>> load_model("no/such/model.txt")
    Traceback (most recent call last):
    ...
    decisioner.errors.ModelError: Expected a model file, got none (No such file or directory) - at `no/such/model.txt`
    """
    p = Path(path)
    if p.is_dir():
        version, names = read_schema(p)
        model = _load_file(p / MODEL_FILE)
        if names != model.feature_names:
            for k in range(max(len(names), model.n_features)):
                a = names[k] if k < len(names) else None
                b = model.feature_names[k] if k < model.n_features else None
                if a != b:
                    raise ModelError(
                        f"Expected the model's feature {k} to be {a!r} as in {SCHEMA_FILE} (version {version}), "
                        f"got {b!r} - at `{p / MODEL_FILE}:feature_names`"
                    )
        return model
    return _load_file(p)


def _load_file(p: Path) -> RankerModel:
    try:
        data = p.read_bytes()
    except OSError as e:
        raise ModelError(f"Expected a model file, got none ({e.strerror}) - at `{p}`") from e
    if data.lstrip()[:1] == b"{":
        return RankerModel.from_dump(data, source=str(p))
    return RankerModel.from_text(data, source=str(p))
