"""Evaluation of a compiled LightGBM tree ensemble (``decisioner.ranking``): one generic kernel
for every model, which is data (no compile per model).

Memory layout (the ``model`` bundle, built by :mod:`decisioner.ranking.model`; T trees, N
internal nodes, L leaves, C categorical splits, W bitset words, all C-contiguous):

* ``root`` int32[T]: the first node of each tree; ``~leaf`` (negative) for a single-leaf tree.
* ``feat`` int32[N]: the split feature of each node (a column of ``X``).
* ``thr`` float64[N]: the threshold (numerical split: left when ``x <= thr``); for a
  categorical split the index of its bitset in ``cat_bound`` (a whole number).
* ``child`` int32[2N]: ``child[2i]`` left, ``child[2i + 1]`` right; an internal node by its
  index, a leaf as ``~leaf`` (negative, LightGBM's encoding, global over the ensemble).
* ``kind`` uint8[N]: :data:`K_CATEGORICAL`, :data:`K_DEFAULT_LEFT`, :data:`K_MISSING_ZERO`,
  :data:`K_MISSING_NAN` (LightGBM's ``decision_type`` bits) and :data:`K_NEAR_ZERO` (a
  numerical threshold in ``[-kZeroThreshold, kZeroThreshold]``, where treating tiny inputs as
  zero can change the side). A node with none of :data:`SLOW` takes the fast path for a
  present (non-NaN) input: ``x <= thr``.
* ``leaf`` float64[L]: leaf outputs (shrinkage already folded in by LightGBM).
* ``cat_bound`` int32[C + 1], ``cat_bits`` uint32[W]: categorical split ``j`` holds the
  categories whose bit is set in ``cat_bits[cat_bound[j]:cat_bound[j + 1]]`` (bit ``c % 32`` of
  word ``c // 32``); those go left.

Semantics are LightGBM's (``Tree::NumericalDecision``, ``Tree::CategoricalDecision`` and the
dense-row reader of its C API): an input with ``|x| <= kZeroThreshold`` (1e-35 as a float32) is
zero; a numerical split with missing type None treats NaN as zero; with missing type Zero a zero
goes the default direction (NaN too, being zero first); with missing type NaN a NaN goes the
default direction. A categorical split sends NaN, negative values (``int(x) < 0``, i.e.
``x <= -1``) and values past int32 right; otherwise the category ``int(x)`` (truncated toward
zero) goes left when its bit is set. The raw score of a row is the sum of its trees' leaves in
tree order, from 0.0 (exactly LightGBM's order of additions). A random forest
(``average_output``) is summed too: LightGBM's ``Booster.predict(raw_score=True)`` returns the
sum of its trees (measured with the locked LightGBM 4.7), not their mean.

Speed: node arrays are flat, children interleaved (one cache line holds both), thresholds
float64 so no conversion; the common numerical split is one compare and a branch-free child
load. ``predict_rows`` walks rows in blocks of :data:`BLOCK` through each tree (tree-major
within a block) so the walks of a block overlap in the CPU instead of waiting on each other's
loads, and a tree's nodes stay in cache for the whole block. QuickScorer (below) is the path for
models whose trees have at most 64 leaves: ``predict_rows_qs16`` (uint32 masks, 16 rows a block)
for trees of <= 32 leaves, ``predict_rows_qs8`` (uint64 masks, 8 rows) for wider ones, the scalar
``predict_rows_qs`` for fewer than 8 rows; on 1,000 rows of the issue-13 shape about 0.9, 1.5 and
4 ms against the walk's 10. The walk stays the reference and the path for wider trees.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np

from ._jit import helper, kernel

QS_LANES = 8  # rows per block of predict_rows_qs8: one 512-bit vector of uint64 masks

#: ``kind`` bits (the low four are LightGBM's ``decision_type`` bits)
K_CATEGORICAL = 1
K_DEFAULT_LEFT = 2
K_MISSING_ZERO = 4
K_MISSING_NAN = 8
K_NEAR_ZERO = 16
#: nodes that never take the fast path
SLOW = K_CATEGORICAL | K_MISSING_ZERO | K_NEAR_ZERO

#: LightGBM's kZeroThreshold (1e-35f) as a double
ZERO_THRESHOLD = 1.0000000180025095e-35
#: 2**31: a categorical value at or past it does not fit LightGBM's int cast
INT32_LIMIT = 2147483648.0

#: a bundle of arrays (numba types it as one tuple argument)
Arrays = tuple[np.ndarray, ...]

#: rows walked together through one tree by ``predict_rows``
BLOCK = 16


@helper(hot=True)
def _load_lanes(X: np.ndarray, b0: int, nb: int, f: int, B: int, nan_as: np.ndarray, xb: np.ndarray) -> float:
    """Feature ``f`` of rows ``b0 .. b0 + nb - 1`` into lanes ``xb[f * B : f * B + B]`` as the
    scans compare them (NaN as the feature's ``nan_as``, a tiny value as 0, a lane past the rows
    -inf: never false); returns the largest."""
    top = -np.inf
    for r in range(B):
        x = -np.inf
        if r < nb:
            x = X[b0 + r, f]
            if x != x:
                x = nan_as[f]
            elif -ZERO_THRESHOLD <= x <= ZERO_THRESHOLD:
                x = 0.0
        xb[f * B + r] = x
        top = max(top, x)
    return top


@helper(hot=True)
def _slow_step(node: int, x: float, thr: np.ndarray, child: np.ndarray, kind: np.ndarray, cat_bound: np.ndarray,
               cat_bits: np.ndarray) -> int:
    """The next node of ``node`` for the input ``x`` by LightGBM's full rules (module docstring)."""
    k = kind[node]
    if -ZERO_THRESHOLD <= x <= ZERO_THRESHOLD:
        x = 0.0
    if k & K_CATEGORICAL:
        if x != x or x <= -1.0 or x >= INT32_LIMIT:
            return int(child[2 * node + 1])
        c = int(x)
        j = int(thr[node])
        lo = cat_bound[j]
        word = c >> 5
        if word < cat_bound[j + 1] - lo and (cat_bits[lo + word] >> np.uint32(c & 31)) & np.uint32(1):
            return int(child[2 * node])
        return int(child[2 * node + 1])
    if x != x and not k & K_MISSING_NAN:
        x = 0.0
    if (k & K_MISSING_ZERO and x == 0.0) or (k & K_MISSING_NAN and x != x):
        return int(child[2 * node]) if k & K_DEFAULT_LEFT else int(child[2 * node + 1])
    return int(child[2 * node]) if x <= thr[node] else int(child[2 * node + 1])


@helper(hot=True)
def predict_one(model: Arrays, X: np.ndarray, r: int) -> float:
    """The raw score of row ``r`` of ``X``: the sum of every tree's leaf, in tree order.

    ``model`` is the bundle of the module docstring; ``X`` float64[n, F] (C-contiguous).
    Assumes: a valid bundle (every ``feat`` < F, children and categorical indices in range:
    :mod:`decisioner.ranking.model` checks them) and ``0 <= r < n``. O(trees x depth).
    """
    root, feat, thr, child, kind, leaf, cat_bound, cat_bits = model
    total = 0.0
    for t in range(root.shape[0]):
        node = int(root[t])
        while node >= 0:
            x = X[r, feat[node]]
            if (kind[node] & SLOW) == 0 and x == x:
                node = int(child[2 * node + int(x > thr[node])])
            else:
                node = int(_slow_step(node, x, thr, child, kind, cat_bound, cat_bits))
        total += leaf[~node]
    return total


@kernel(nrt=False)
def predict_rows(model: Arrays, X: np.ndarray, n: int, out: np.ndarray) -> None:
    """Raw scores of rows ``0..n-1`` of ``X`` into ``out[:n]`` (LightGBM's ``raw_score``).

    ``model``: the bundle (module docstring); ``X`` float64[>= n, F] C-contiguous; ``out``
    float64[>= n]. Allocates nothing. Rows go in blocks of :data:`BLOCK`, tree by tree within a
    block; each row's sum still adds its trees in order from 0.0, so the result equals
    :func:`predict_one` bit for bit.
    Assumes: a valid bundle, F columns as the model expects, ``n <= X.shape[0]``,
    ``n <= out.shape[0]``. O(n x trees x depth).
    """
    root, feat, thr, child, kind, leaf, cat_bound, cat_bits = model
    n_trees = root.shape[0]
    for r in range(n):
        out[r] = 0.0
    for b0 in range(0, n, BLOCK):
        b1 = min(b0 + BLOCK, n)
        for t in range(n_trees):
            start = int(root[t])
            for r in range(b0, b1):
                node = start
                while node >= 0:
                    x = X[r, feat[node]]
                    if (kind[node] & SLOW) == 0 and x == x:
                        node = int(child[2 * node + int(x > thr[node])])
                    else:
                        node = int(_slow_step(node, x, thr, child, kind, cat_bound, cat_bits))
                out[r] += leaf[~node]


@kernel(nrt=False)
def predict_row(model: Arrays, X: np.ndarray, r: int) -> float:
    """The raw score of row ``r`` of ``X`` (:func:`predict_one` as a kernel, for one-row callers).

    Assumes: as :func:`predict_one`. O(trees x depth).
    """
    return predict_one(model, X, r)


# ---------------------------------------------------------------------- QuickScorer

#: the widest tree ``predict_rows_qs`` takes (one uint64 leaf mask per tree and row)
QS_MAX_LEAVES = 64
_ALL = np.uint64(0xFFFFFFFFFFFFFFFF)


def _trailing_zeros_py(v: int) -> int:
    """Index of the lowest set bit of ``v`` (> 0)."""
    v = int(v)
    return (v & -v).bit_length() - 1


def _trailing_zeros_jit() -> Any:
    from numba.cpython.unsafe.numbers import trailing_zeros  # llvm.cttz

    return trailing_zeros


#: ``trailing_zeros(v)`` inside a kernel: the index of the lowest set bit of a uint64 ``v`` > 0
trailing_zeros: Any = _trailing_zeros_py if getattr(numba.config, "DISABLE_JIT", False) else _trailing_zeros_jit()


@kernel
def predict_rows_qs(model: Arrays, qs: Arrays, X: np.ndarray, n: int, out: np.ndarray) -> None:
    """Raw scores of rows ``0..n-1`` of ``X`` into ``out[:n]`` by QuickScorer (Lucchese et al., 2015).

    Equal to :func:`predict_rows` bit for bit (same leaves, added in tree order from 0.0), for a
    model whose trees have at most :data:`QS_MAX_LEAVES` leaves. Each tree's leaves are numbered
    left to right; a row starts with every leaf of every tree possible (a mask of ones per tree)
    and each node the row does not go left at (a "false" node) clears the leaves of its left
    subtree; the row's leaf in a tree is then the lowest bit left (the leftmost leaf no false node
    excluded, which is the exit leaf). Nodes are visited feature by feature in increasing
    threshold order, so a row's scan of a feature stops at the first threshold it does not exceed:
    no walk, no unpredictable branch per node.

    ``qs`` (built by :mod:`decisioner.ranking.model`, Q scanned nodes, E exception nodes, F
    features, T trees):

    * ``bound`` int32[F + 1]: the scanned nodes of feature ``f`` are ``bound[f]:bound[f + 1]``,
      sorted by threshold.
    * ``q_thr`` float64[Q], ``q_tree`` int32[Q], ``q_keep`` uint64[Q]: threshold, tree and the
      leaves (bits) a scanned node keeps when it is false (all but its left subtree's).
    * ``nan_as`` float64[F]: what a NaN input of feature ``f`` is compared as (0.0, -inf or +inf),
      chosen so that every scanned node of ``f`` sends NaN the way LightGBM does. Tiny inputs
      (``|x| <= kZeroThreshold``) are compared as 0.0, as LightGBM reads them.
    * ``e_node`` int32[E], ``e_tree`` int32[E], ``e_keep`` uint64[E]: the exception nodes
      (categorical, missing type Zero, or NaN going where ``nan_as`` would not send it), decided
      by LightGBM's full rules (``_slow_step`` on ``model``) for each row.
    * ``l_off`` int32[T], ``l_val`` float64[L]: leaf values of tree ``t`` left to right from
      ``l_off[t]``.

    A false node costs one compare and one AND into its tree's mask: about 3,000 of the 6,000
    nodes of the issue-13 model (200 trees, 31 leaves) per row, against about 1,450 dependent
    node loads and branches of a walk. Allocates one mask per tree per call.
    Assumes: a valid bundle and its ``qs`` (every tree <= 64 leaves), F columns,
    ``n <= X.shape[0]``, ``n <= out.shape[0]``. O(n x nodes) worst case, far less in practice.
    """
    root, feat, thr, child, kind, _leaf, cat_bound, cat_bits = model
    bound, q_thr, q_tree, q_keep, nan_as, e_node, e_tree, e_keep, l_off, l_val = qs
    n_trees = root.shape[0]
    n_feat = nan_as.shape[0]
    v = np.empty(n_trees, np.uint64)
    for r in range(n):
        for t in range(n_trees):
            v[t] = _ALL
        for f in range(n_feat):
            x = X[r, f]
            if x != x:
                x = nan_as[f]
            elif -ZERO_THRESHOLD <= x <= ZERO_THRESHOLD:
                x = 0.0
            # unsigned indices: no negative-index wraparound code in the loop
            i = np.uint64(bound[f])
            end = np.uint64(bound[f + 1])
            while i < end and q_thr[i] < x:  # the false nodes of f: clear their left subtrees
                v[np.uint64(q_tree[i])] &= q_keep[i]
                i += np.uint64(1)
        for j in range(e_node.shape[0]):
            node = int(e_node[j])
            if _slow_step(node, X[r, feat[node]], thr, child, kind, cat_bound, cat_bits) == child[2 * node + 1]:
                v[np.uint64(e_tree[j])] &= e_keep[j]
        total = 0.0
        for t in range(n_trees):
            total += l_val[np.uint64(l_off[t]) + np.uint64(trailing_zeros(v[t]))]
        out[r] = total


def _and_lanes_py(v: np.ndarray, o: int, xb: np.ndarray, xo: int, t: float, keep: int) -> None:
    for r in range(QS_LANES):
        if xb[xo + r] > t:
            v[o + r] &= keep


def _and_lanes_typer(typingctx: Any, v: Any, o: Any, xb: Any, xo: Any, t: Any, keep: Any) -> Any:
    from numba.core import types

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        from llvmlite import ir

        va = context.make_array(sig.args[0])(context, builder, args[0])
        xa = context.make_array(sig.args[2])(context, builder, args[2])
        i64, f64 = ir.IntType(64), ir.DoubleType()
        vt, xt = ir.VectorType(i64, QS_LANES), ir.VectorType(f64, QS_LANES)
        vp = builder.bitcast(builder.gep(va.data, [args[1]]), vt.as_pointer())
        xp = builder.bitcast(builder.gep(xa.data, [args[3]]), xt.as_pointer())
        xs = builder.load(xp, align=8)
        vs = builder.load(vp, align=8)
        zero = ir.Constant(ir.VectorType(ir.IntType(32), QS_LANES), [0] * QS_LANES)
        first = ir.Constant(ir.IntType(32), 0)

        def broadcast(vec_t: Any, value: Any) -> Any:
            undef = ir.Constant(vec_t, ir.Undefined)
            return builder.shuffle_vector(builder.insert_element(undef, value, first), undef, zero)

        tb = broadcast(xt, args[4])
        kb = broadcast(vt, args[5])
        cond = builder.fcmp_ordered(">", xs, tb)
        sel = builder.select(cond, kb, ir.Constant(vt, [-1] * QS_LANES))
        builder.store(builder.and_(vs, sel), vp, align=8)
        return context.get_dummy_value()

    return types.void(v, o, xb, xo, t, keep), codegen


def _and_lanes_jit() -> Any:
    from numba.extending import intrinsic

    return intrinsic(_and_lanes_typer)


#: ``and_lanes(v, o, xb, xo, t, keep)``: for r < QS_LANES, ``v[o + r] &= keep`` where ``xb[xo + r] > t``
#: (one vector compare, select and AND; uint64 ``o``, ``xo``)
and_lanes: Any = _and_lanes_py if getattr(numba.config, "DISABLE_JIT", False) else _and_lanes_jit()


@kernel
def predict_rows_qs8(model: Arrays, qs: Arrays, X: np.ndarray, n: int, out: np.ndarray) -> None:
    """:func:`predict_rows_qs` on blocks of :data:`QS_LANES` rows, a node's test and mask update
    one vector operation for the block (V-QuickScorer). Same ``qs``, same results bit for bit."""
    root, feat, thr, child, kind, _leaf, cat_bound, cat_bits = model
    bound, q_thr, q_tree, q_keep, nan_as, e_node, e_tree, e_keep, l_off, l_val = qs
    n_trees = root.shape[0]
    n_feat = nan_as.shape[0]
    B = QS_LANES
    v = np.empty(n_trees * B, np.uint64)
    xb = np.empty(n_feat * B, np.float64)
    for b0 in range(0, n, B):
        nb = min(B, n - b0)
        for k in range(n_trees * B):
            v[k] = _ALL
        for f in range(n_feat):
            top = _load_lanes(X, b0, nb, f, B, nan_as, xb)
            xo = np.uint64(f * B)
            i = np.uint64(bound[f])
            end = np.uint64(bound[f + 1])
            while i < end and q_thr[i] < top:
                and_lanes(v, np.uint64(q_tree[i]) * np.uint64(B), xb, xo, q_thr[i], q_keep[i])
                i += np.uint64(1)
        for j in range(e_node.shape[0]):
            node = int(e_node[j])
            right = child[2 * node + 1]
            for r in range(nb):
                if _slow_step(node, X[b0 + r, feat[node]], thr, child, kind, cat_bound, cat_bits) == right:
                    v[np.uint64(e_tree[j]) * np.uint64(B) + np.uint64(r)] &= e_keep[j]
        for r in range(nb):
            out[b0 + r] = 0.0
        for t in range(n_trees):
            base = np.uint64(l_off[t])
            for r in range(nb):
                out[b0 + r] += l_val[base + np.uint64(trailing_zeros(v[t * B + r]))]


# ---------------------------------------------------------------------- QuickScorer, 32-leaf trees, 16 rows

#: rows per block of predict_rows_qs16: sixteen uint32 leaf masks, one 512-bit vector
QS16_LANES = 16
#: the widest tree ``predict_rows_qs16`` takes (one uint32 leaf mask per tree and row)
QS16_MAX_LEAVES = 32
_ALL32 = np.uint32(0xFFFFFFFF)


def _scan16_py(v: np.ndarray, xb: np.ndarray, xo: int, rec: np.ndarray, i: int, end: int, top: float) -> None:
    thr = rec.view(np.float64)
    while i < end and thr[2 * i] < top:
        p = int(rec[2 * i + 1])
        o = p >> 32
        keep = np.uint32(p & 0xFFFFFFFF)
        t = thr[2 * i]
        for r in range(QS16_LANES):
            if xb[xo + r] > t:
                v[o + r] &= keep
        i += 1


def _scan16_typer(typingctx: Any, v: Any, xb: Any, xo: Any, rec: Any, i0: Any, end: Any, top: Any) -> Any:
    from numba.core import types

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        from llvmlite import ir

        va = context.make_array(sig.args[0])(context, builder, args[0])
        xa = context.make_array(sig.args[1])(context, builder, args[1])
        ra = context.make_array(sig.args[3])(context, builder, args[3])
        i32, i64, f64 = ir.IntType(32), ir.IntType(64), ir.DoubleType()
        n = QS16_LANES
        vt, xt = ir.VectorType(i32, n), ir.VectorType(f64, n)
        zero = ir.Constant(ir.VectorType(i32, n), [0] * n)
        first = ir.Constant(i32, 0)

        def broadcast(vec_t: Any, value: Any) -> Any:
            undef = ir.Constant(vec_t, ir.Undefined)
            return builder.shuffle_vector(builder.insert_element(undef, value, first), undef, zero)

        # the block's inputs of this feature: loaded once, held in registers for the whole scan
        xs = builder.load(builder.bitcast(builder.gep(xa.data, [args[2]]), xt.as_pointer()), align=8)
        ones = ir.Constant(vt, [-1] * n)
        fn = builder.function
        entry = builder.block
        head = fn.append_basic_block("scan16.head")
        test = fn.append_basic_block("scan16.test")
        body = fn.append_basic_block("scan16.body")
        done = fn.append_basic_block("scan16.done")
        builder.branch(head)
        builder.position_at_end(head)
        i = builder.phi(i64)
        i.add_incoming(args[4], entry)
        builder.cbranch(builder.icmp_unsigned("<", i, args[5]), test, done)
        builder.position_at_end(test)
        k = builder.shl(i, ir.Constant(i64, 1))
        t = builder.bitcast(builder.load(builder.gep(ra.data, [k]), align=8), f64)
        builder.cbranch(builder.fcmp_ordered("<", t, args[6]), body, done)
        builder.position_at_end(body)
        p = builder.load(builder.gep(ra.data, [builder.add(k, ir.Constant(i64, 1))]), align=8)
        off = builder.lshr(p, ir.Constant(i64, 32))
        keep = builder.trunc(p, i32)
        cond = builder.fcmp_ordered(">", xs, broadcast(xt, t))
        sel = builder.select(cond, broadcast(vt, keep), ones)
        vp = builder.bitcast(builder.gep(va.data, [off]), vt.as_pointer())
        builder.store(builder.and_(builder.load(vp, align=4), sel), vp, align=4)
        i.add_incoming(builder.add(i, ir.Constant(i64, 1)), body)
        builder.branch(head)
        builder.position_at_end(done)
        return context.get_dummy_value()

    return types.void(v, xb, xo, rec, i0, end, top), codegen


def _scan16_jit() -> Any:
    from numba.extending import intrinsic

    return intrinsic(_scan16_typer)


#: ``scan16(v, xb, xo, rec, i, end, top)``: QuickScorer's scan of one feature for a block of
#: :data:`QS16_LANES` rows (inputs ``xb[xo:xo + 16]``, largest ``top``): for the records ``i..end-1``
#: while their threshold is below ``top``, ``v[o + r] &= keep`` for each lane ``r`` whose input
#: exceeds the threshold. Record ``i`` is ``rec[2i]`` (the float64 threshold's bits) and ``rec[2i + 1]``
#: (the tree's mask offset ``o`` in the high 32 bits, the uint32 leaves kept in the low ones): one
#: contiguous stream. The whole loop is one piece of LLVM IR, so the inputs stay in registers.
scan16: Any = _scan16_py if getattr(numba.config, "DISABLE_JIT", False) else _scan16_jit()


@kernel
def predict_rows_qs16(model: Arrays, qs: Arrays, X: np.ndarray, n: int, out: np.ndarray) -> None:
    """:func:`predict_rows_qs8` for models whose trees have at most :data:`QS16_MAX_LEAVES` leaves:
    uint32 leaf masks, blocks of :data:`QS16_LANES` rows, each feature's scanned nodes one stream of
    (threshold, tree offset, mask) records (:func:`scan16`). Same results bit for bit.

    ``qs``: ``bound`` int32[F + 1], ``rec`` uint64[2Q] (records of :func:`scan16`, per feature sorted
    by threshold), ``nan_as``, ``e_node``, ``e_tree``, ``e_keep`` uint32[E], ``l_off``, ``l_val`` as
    in :func:`predict_rows_qs`. Allocates one mask per tree and lane per call.
    Assumes: a valid bundle and its ``qs`` (every tree <= 32 leaves), F columns, ``n <= X.shape[0]``,
    ``n <= out.shape[0]``.
    """
    root, feat, thr, child, kind, _leaf, cat_bound, cat_bits = model
    bound, rec, nan_as, e_node, e_tree, e_keep, l_off, l_val = qs
    n_trees = root.shape[0]
    n_feat = nan_as.shape[0]
    B = QS16_LANES
    v = np.empty(n_trees * B, np.uint32)
    xb = np.empty(n_feat * B, np.float64)
    for b0 in range(0, n, B):
        nb = min(B, n - b0)
        for k in range(n_trees * B):
            v[k] = _ALL32
        for f in range(n_feat):
            top = _load_lanes(X, b0, nb, f, B, nan_as, xb)
            scan16(v, xb, np.uint64(f * B), rec, np.uint64(bound[f]), np.uint64(bound[f + 1]), top)
        for j in range(e_node.shape[0]):
            node = int(e_node[j])
            right = child[2 * node + 1]
            for r in range(nb):
                if _slow_step(node, X[b0 + r, feat[node]], thr, child, kind, cat_bound, cat_bits) == right:
                    v[np.uint64(e_tree[j]) * np.uint64(B) + np.uint64(r)] &= e_keep[j]
        for r in range(nb):
            out[b0 + r] = 0.0
        for t in range(n_trees):
            base = np.uint64(l_off[t])
            for r in range(nb):
                out[b0 + r] += l_val[base + np.uint64(trailing_zeros(np.uint64(v[t * B + r])))]
