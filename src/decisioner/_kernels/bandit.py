"""Allocation kernels: posterior rank probabilities (the propensities of Thompson sampling),
categorical and arm-level selection with propensities, decayed / windowed arm statistics,
posterior draws for top-k slates, and slate exploration over a ranked candidate pool.

Every selection kernel returns the probability with which it made its choice.

Thompson sampling by probability matching
-----------------------------------------
Thompson sampling picks arm k with probability ``P_k = P(X_k > X_j for all j != k)`` where the
``X_j`` are independent posterior draws. ``rank_probabilities`` computes these (and, for slates,
``P(arm k has rank r)``) by numerical integration,

    P(k at rank r) = integral f_k(x) * e_r^(-k)(x) dx,

where ``e_r^(-k)(x)`` is the probability that exactly ``r`` of the other arms draw above ``x``
(the coefficient of ``z^r`` in ``prod_{j != k} (F_j(x) + (1 - F_j(x)) z)``, formed from prefix and
suffix products so nothing is divided). A coarse pass finds the region where the top
``n_ranks`` draws live (outside it: below ~1e-12 of the mass); there the integral runs over
panels of four intervals, each at most half the standard deviation of every posterior that
overlaps it (fine near narrow posteriors, coarse elsewhere), by composite Simpson; ``F_j``
advances by 4-point Gauss-Legendre integration of the density (or exact CDFs for normal and
small or singular Beta posteriors). The two-interval Simpson rule of each panel gives an error
estimate; the grid is halved until every probability's estimated error is below ``tol`` times
(itself + 1 / arms). Measured against adaptive quadrature and Monte Carlo (tests): absolute
error below 1e-5 at ``tol`` 1e-6 and below 1e-4 at the policies' 1e-4. Selecting with
``categorical_select`` from the normalised probabilities makes the logged propensity exactly the
probability of the choice made; it equals Thompson sampling up to that integration error.
"""

from __future__ import annotations

import math

import numpy as np

from ._jit import helper, kernel
from .rng import rng_below, rng_beta, rng_normal, rng_uniform

#: slate and arm selection modes (integer codes: kernels take no Python objects)
MODE_GREEDY = 0
MODE_EPSILON = 1
MODE_SOFTMAX = 2
MODE_UNIFORM = 3
MODE_UCB1 = 4

#: posterior families of ``rank_probabilities`` / ``posterior_top_k``
FAMILY_BETA = 0  # p1 = alpha, p2 = beta
FAMILY_NORMAL = 1  # p1 = mean, p2 = standard deviation

_SQRT2 = math.sqrt(2.0)
_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)
# 4-point Gauss-Legendre on [0, 1]
_GL_T0 = 0.5 - 0.5 * 0.8611363115940526
_GL_T1 = 0.5 - 0.5 * 0.3399810435848563
_GL_T2 = 0.5 + 0.5 * 0.3399810435848563
_GL_T3 = 0.5 + 0.5 * 0.8611363115940526
_GL_W0 = 0.5 * 0.3478548451374538
_GL_W1 = 0.5 * 0.6521451548625461


# --------------------------------------------------------------------------- distributions


@helper
def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    qab = a + b
    qap = a + 1.0
    qam = a - 1.0
    c = 1.0
    d = 1.0 - qab * x / qap
    if abs(d) < tiny:
        d = tiny
    d = 1.0 / d
    h = d
    for m in range(1, 10_000):
        m2 = 2.0 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        if abs(d) < tiny:
            d = tiny
        c = 1.0 + aa / c
        if abs(c) < tiny:
            c = tiny
        d = 1.0 / d
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        if abs(d) < tiny:
            d = tiny
        c = 1.0 + aa / c
        if abs(c) < tiny:
            c = tiny
        d = 1.0 / d
        de = d * c
        h *= de
        if abs(de - 1.0) < 1e-15:
            break
    return h


@helper
def beta_cdf(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta ``I_x(a, b)``; relative error ~1e-14."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    lbt = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(lbt) * _betacf(a, b, x) / a
    return 1.0 - math.exp(lbt) * _betacf(b, a, 1.0 - x) / b


@helper(hot=True)
def _cdf(family: int, p1: float, p2: float, x: float) -> float:
    if family == FAMILY_BETA:
        return beta_cdf(p1, p2, x)
    return 0.5 * math.erfc(-(x - p1) / (p2 * _SQRT2))


@helper(hot=True)
def _log_pdf(family: int, p1: float, p2: float, c: float, x: float) -> float:
    """Log density; ``c`` is the family's normalising constant for (p1, p2)."""
    if family == FAMILY_BETA:
        if x <= 0.0:
            return c if p1 == 1.0 else -np.inf
        if x >= 1.0:
            return c if p2 == 1.0 else -np.inf
        return c + (p1 - 1.0) * math.log(x) + (p2 - 1.0) * math.log1p(-x)
    u = (x - p1) / p2
    return c - 0.5 * u * u


# --------------------------------------------------------------------------- rank probabilities


@helper(nrt=True)
def _region(
    family: int, p1: np.ndarray, p2: np.ndarray, mu: np.ndarray, sd: np.ndarray, cand: np.ndarray,
    n_c: int, x0: float, x1: float, n_grid: int, n_ranks: int, region: np.ndarray,
) -> None:
    """Coarse pass over ``n_grid`` equal intervals of [x0, x1]: writes ``region`` = [xa, xb],
    outside which the top ``n_ranks`` draws lie with probability below about 1e-12 each way
    (widened by one interval on each side). Beta posteriors with both shapes >= 30 (skewness
    below ~0.4) use their moment-matched normal CDF, which is cheap and ample for locating the
    region; the rest use the exact CDF."""
    h = (x1 - x0) / n_grid
    k = n_ranks
    poly = np.empty(k)
    xa = x0
    xb = x1
    found_a = False
    for g in range(n_grid + 1):
        x = x0 + g * h if g < n_grid else x1
        for r in range(k):
            poly[r] = 0.0
        poly[0] = 1.0
        for i in range(n_c):
            j = cand[i]
            if family == FAMILY_NORMAL or (p1[j] >= 30.0 and p2[j] >= 30.0):
                f = 0.5 * math.erfc(-(x - mu[j]) / (sd[j] * _SQRT2))
            else:
                f = beta_cdf(p1[j], p2[j], x)
            for r in range(k - 1, 0, -1):
                poly[r] = poly[r] * f + poly[r - 1] * (1.0 - f)
            poly[0] *= f
        below = 0.0  # P(fewer than k draws exceed x)
        for r in range(k):
            below += poly[r]
        if below < 1e-12:
            xa = x
        else:
            found_a = True
        if poly[0] >= 1.0 - 1e-12:
            xb = x
            break
    a = (xa if found_a else x0) - h
    b = xb + h
    region[0] = a if a > x0 else x0
    region[1] = b if b < x1 else x1


@helper
def _panels(
    cand: np.ndarray, n_c: int, lo: np.ndarray, hi: np.ndarray, sd: np.ndarray, xa: float,
    xb: float, base: float, refine: float, max_points: int, xs: np.ndarray,
) -> int:
    """Grid points of [xa, xb] in panels of four equal intervals whose width ``h`` is at most
    ``base / refine`` and at most half the standard deviation of every posterior whose support
    overlaps the panel (divided by ``refine``): fine where a narrow posterior lives, coarse
    elsewhere. Writes the points into ``xs`` and returns their number (4 * panels + 1)."""
    m = 0
    xs[0] = xa
    x = xa
    while x < xb and m + 4 < max_points:
        h = base / refine
        for _ in range(3):  # shrinking h can only drop arms from the panel: a few passes settle
            w = 4.0 * h
            for i in range(n_c):
                j = cand[i]
                if hi[j] > x and lo[j] < x + w:
                    hj = 0.5 * sd[j] / refine
                    if hj < h:
                        h = hj
        w = 4.0 * h
        if x + w >= xb or m + 8 >= max_points:
            w = xb - x
            h = 0.25 * w
        for q in range(1, 5):
            xs[m + q] = x + q * h if q < 4 else x + w
        m += 4
        x = xs[m]
    return m + 1


@helper(nrt=True)
def _integrate(
    family: int, p1: np.ndarray, p2: np.ndarray, cand: np.ndarray, n_c: int, lo: np.ndarray,
    hi: np.ndarray, logc: np.ndarray, xs: np.ndarray, n_pts: int, n_ranks: int, out: np.ndarray,
    alt: np.ndarray,
) -> None:
    """For candidate ``i`` (arm ``j = cand[i]``) integrates ``f_j(x) e_r(x)`` over the panel
    grid ``xs``: composite Simpson per panel into ``out[j, r]`` and the two-interval Simpson
    of each panel into ``alt[j, r]`` (the difference / 15 estimates the error). Arms with a
    density singular at 0 or 1 (Beta shape < 1) use the trapezoid rule on the measure ``dF_j``
    (exact CDF differences) on the fine and on the pair grid instead (difference / 3).

    ``F_j`` advances from the exact CDF at ``xs[0]`` by 4-point Gauss-Legendre integration of the
    density over each interval (panels are at most half a standard deviation wide wherever the
    density lives), or exactly for normal posteriors, singular or small-parameter Beta ones.
    ``e_r`` comes from prefix and suffix products of ``(F + (1 - F) z)``, truncated to degree
    ``n_ranks - 1``.
    """
    k = n_ranks
    fcur = np.empty(n_c)
    fnew = np.empty(n_c)
    f2 = np.empty(n_c)  # F two grid points back (trapezoid on the pair grid)
    exact = np.empty(n_c)  # 1.0 / 0.0 flags
    singular = np.empty(n_c)
    for i in range(n_c):
        j = cand[i]
        fcur[i] = _cdf(family, p1[j], p2[j], xs[0])
        f2[i] = fcur[i]
        singular[i] = 1.0 if family == FAMILY_BETA and (p1[j] < 1.0 or p2[j] < 1.0) else 0.0
        # exact CDFs where integrating the density is unsafe (singular) or no dearer (normal:
        # erfc; small Beta parameters: the continued fraction is short)
        exact[i] = 1.0 if family == FAMILY_NORMAL or singular[i] == 1.0 or p1[j] + p2[j] < 16.0 else 0.0
    pre = np.empty((n_c + 1, k))
    suf = np.empty((n_c + 1, k))
    e_prev = np.empty((n_c, k))
    e_prev2 = np.empty((n_c, k))
    e_cur = np.empty((n_c, k))
    la0 = la1 = la2 = la3 = lb0 = lb1 = lb2 = lb3 = 0.0
    n_int = n_pts - 1
    for g in range(n_pts):
        x = xs[g]
        h = x - xs[g - 1] if g > 0 else xs[1] - xs[0]
        if g > 0:
            xl = xs[g - 1]
            if family == FAMILY_BETA:
                # log x and log(1 - x) at the Gauss-Legendre nodes, shared by every arm
                q0 = xl + _GL_T0 * h
                q1 = xl + _GL_T1 * h
                q2 = xl + _GL_T2 * h
                q3 = xl + _GL_T3 * h
                la0 = _log0(q0)
                la1 = _log0(q1)
                la2 = _log0(q2)
                la3 = _log0(q3)
                lb0 = _log1m(q0)
                lb1 = _log1m(q1)
                lb2 = _log1m(q2)
                lb3 = _log1m(q3)
            for i in range(n_c):
                j = cand[i]
                if hi[j] <= xl or lo[j] >= x:
                    fnew[i] = fcur[i]  # outside the arm's support: its CDF is flat here
                elif exact[i] == 1.0:
                    fnew[i] = _cdf(family, p1[j], p2[j], x)
                else:
                    am = p1[j] - 1.0
                    bm = p2[j] - 1.0
                    c = logc[j]
                    s = _GL_W0 * (math.exp(c + am * la0 + bm * lb0) + math.exp(c + am * la3 + bm * lb3))
                    s += _GL_W1 * (math.exp(c + am * la1 + bm * lb1) + math.exp(c + am * la2 + bm * lb2))
                    f = fcur[i] + s * h
                    fnew[i] = f if f < 1.0 else 1.0
        else:
            for i in range(n_c):
                fnew[i] = fcur[i]
        # prefix / suffix products of (F + (1 - F) z), truncated to degree k - 1
        for r in range(k):
            pre[0, r] = 0.0
            suf[n_c, r] = 0.0
        pre[0, 0] = 1.0
        suf[n_c, 0] = 1.0
        for i in range(n_c):
            f = fnew[i]
            pre[i + 1, 0] = pre[i, 0] * f
            for r in range(1, k):
                pre[i + 1, r] = pre[i, r] * f + pre[i, r - 1] * (1.0 - f)
        for i in range(n_c - 1, -1, -1):
            f = fnew[i]
            suf[i, 0] = suf[i + 1, 0] * f
            for r in range(1, k):
                suf[i, r] = suf[i + 1, r] * f + suf[i + 1, r - 1] * (1.0 - f)
        for i in range(n_c):
            for r in range(k):
                acc = 0.0
                for q in range(r + 1):
                    acc += pre[i, q] * suf[i + 1, r - q]
                e_cur[i, r] = acc
        # Simpson weights of this point in its panel(s): four intervals of width h (1 4 2 4 1)
        # and two of width 2h (1 0 4 0 1); panel ends belong to two panels
        loc = g % 4
        w1 = 0.0
        w2 = 0.0
        if loc == 0:
            if g > 0:
                w1 += h / 3.0
                w2 += 2.0 * h / 3.0
            if g < n_int:
                hn = xs[g + 1] - x
                w1 += hn / 3.0
                w2 += 2.0 * hn / 3.0
        elif loc == 2:
            w1 = 2.0 * h / 3.0
            w2 = 8.0 * h / 3.0
        else:
            w1 = 4.0 * h / 3.0
        lx = 0.0
        l1x = 0.0
        if family == FAMILY_BETA and 0.0 < x < 1.0:
            lx = math.log(x)  # shared by every arm's density at this grid point
            l1x = math.log1p(-x)
        for i in range(n_c):
            j = cand[i]
            if singular[i] == 1.0:
                if g > 0:
                    df = fnew[i] - fcur[i]
                    for r in range(k):
                        out[j, r] += df * 0.5 * (e_prev[i, r] + e_cur[i, r])
                if g > 0 and g % 2 == 0:
                    df = fnew[i] - f2[i]
                    for r in range(k):
                        alt[j, r] += df * 0.5 * (e_prev2[i, r] + e_cur[i, r])
                    f2[i] = fnew[i]
            elif hi[j] > x - h and lo[j] < x + h:
                if family == FAMILY_BETA and 0.0 < x < 1.0:
                    dens = math.exp(logc[j] + (p1[j] - 1.0) * lx + (p2[j] - 1.0) * l1x)
                else:
                    dens = math.exp(_log_pdf(family, p1[j], p2[j], logc[j], x))
                for r in range(k):
                    v = dens * e_cur[i, r]
                    out[j, r] += w1 * v
                    alt[j, r] += w2 * v
        for i in range(n_c):
            fcur[i] = fnew[i]
            for r in range(k):
                if g % 2 == 0:
                    e_prev2[i, r] = e_cur[i, r]
                e_prev[i, r] = e_cur[i, r]


@helper(hot=True)
def _log0(q: float) -> float:
    """log q, -inf at q <= 0 (as compiled code gives; Python's math raises instead)."""
    return math.log(q) if q > 0.0 else -math.inf


@helper(hot=True)
def _log1m(q: float) -> float:
    """log(1 - q), -inf at q >= 1 (as compiled code gives; Python's math raises instead)."""
    return math.log1p(-q) if q < 1.0 else -math.inf


@kernel
def rank_probabilities(
    family: int, p1: np.ndarray, p2: np.ndarray, eligible: np.ndarray, n_ranks: int, z: float,
    coarse_grid: int, max_grid: int, tol: float, out: np.ndarray,
) -> float:
    """``out[k, r]`` = probability that arm k's posterior draw has rank r (0 = highest) among
    the eligible arms, for independent posteriors of one family; returns an error estimate.

    ``p1``, ``p2`` float64[n]: Beta (alpha, beta) or Normal (mean, sd) parameters;
    ``eligible`` uint8[n]; ``out`` float64[n, n_ranks] (overwritten; ineligible arms get 0).
    ``z``: each posterior's support is taken as mean +- z sd (clipped to [0, 1] for Beta);
    arms that cannot reach the top ``n_ranks`` on those supports get probability 0.
    ``coarse_grid``: intervals of the first pass, which locates the region of the top draws.
    The fine pass uses panels of four intervals at most half the local narrowest sd wide (and
    at most 1/32 of the region), refined by halving, up to ``max_grid`` points, until every
    probability's estimated error is at most ``tol`` times (itself + 1 / arms). The estimate
    returned is the largest absolute error estimate or the probability mass missing from a
    rank, whichever is larger.

    Assumes: alpha, beta > 0, sd > 0, 1 <= n_ranks. O(g * c * n_ranks^2) for c contending arms
    and g grid points.

    Cold compile: about 4 s of CPU with its helpers, the most of any request-path kernel.
    """
    n = p1.shape[0]
    k = n_ranks
    for j in range(n):
        for r in range(k):
            out[j, r] = 0.0
    mu = np.empty(n)
    sd = np.empty(n)
    lo = np.empty(n)
    hi = np.empty(n)
    logc = np.empty(n)
    m = 0
    for j in range(n):
        if eligible[j] == 0:
            continue
        m += 1
        if family == FAMILY_BETA:
            a = p1[j]
            b = p2[j]
            mu[j] = a / (a + b)
            sd[j] = math.sqrt(a * b / ((a + b) * (a + b) * (a + b + 1.0)))
            lo_j = mu[j] - z * sd[j]
            hi_j = mu[j] + z * sd[j]
            lo[j] = lo_j if lo_j > 0.0 else 0.0
            hi[j] = hi_j if hi_j < 1.0 else 1.0
            logc[j] = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
        else:
            mu[j] = p1[j]
            sd[j] = p2[j]
            lo[j] = mu[j] - z * sd[j]
            hi[j] = mu[j] + z * sd[j]
            logc[j] = -math.log(p2[j]) - _LOG_SQRT_2PI
    if m == 0:
        return 0.0
    if m == 1:
        for j in range(n):
            if eligible[j] != 0:
                out[j, 0] = 1.0
        return 0.0
    # the k-th highest lower end (the lowest when m <= k): the top-k draws exceed it unless a
    # support bound fails. The highest min(k, m) lower ends kept best first (O(m k), k the
    # slots): no sort to compile for this one use (about half a second of a cold warm_up)
    kk = k if m > k else m
    top = np.empty(kk)
    filled = 0
    for j in range(n):
        if eligible[j] != 0:
            v = lo[j]
            if filled < kk:
                i = filled
                filled += 1
            elif v > top[kk - 1]:
                i = kk - 1
            else:
                continue
            while i > 0 and top[i - 1] < v:
                top[i] = top[i - 1]
                i -= 1
            top[i] = v
    floor_k = top[kk - 1]
    cand = np.empty(m, dtype=np.int64)
    n_c = 0
    x0 = np.inf
    x1 = -np.inf
    for j in range(n):
        if eligible[j] != 0 and (hi[j] > floor_k or m <= k):
            cand[n_c] = j
            n_c += 1
            if lo[j] < x0:
                x0 = lo[j]
            if hi[j] > x1:
                x1 = hi[j]
    if m > k and floor_k > x0:
        x0 = floor_k
    region = np.empty(2)
    _region(family, p1, p2, mu, sd, cand, n_c, x0, x1, coarse_grid, k, region)
    xa = region[0]
    xb = region[1]
    if xb <= xa:
        xa = x0
        xb = x1
    base = (xb - xa) / 32.0
    scratch = np.empty((n, k))  # written for the candidates before each pass
    xs = np.empty((max_grid if max_grid > 64 else 64) + 1)
    refine = 1.0
    err = 0.0
    while True:
        n_pts = _panels(cand, n_c, lo, hi, sd, xa, xb, base, refine, xs.shape[0], xs)
        for i in range(n_c):
            j = cand[i]
            for r in range(k):
                out[j, r] = 0.0
                scratch[j, r] = 0.0
        _integrate(family, p1, p2, cand, n_c, lo, hi, logc, xs, n_pts, k, out, scratch)
        err = 0.0
        worst = 0.0  # relative to each probability plus that of a uniform choice
        for i in range(n_c):
            j = cand[i]
            singular = family == FAMILY_BETA and (p1[j] < 1.0 or p2[j] < 1.0)
            for r in range(k):
                if singular:
                    d = abs(out[j, r] - scratch[j, r]) / 3.0
                    out[j, r] += (out[j, r] - scratch[j, r]) / 3.0  # Richardson
                else:
                    d = abs(out[j, r] - scratch[j, r]) / 15.0
                if 0.0 > out[j, r]:
                    out[j, r] = 0.0
                if d > err:
                    err = d
                rel = d / (out[j, r] + 1.0 / n_c)
                if rel > worst:
                    worst = rel
        if worst <= tol or 2 * n_pts > xs.shape[0]:
            break
        refine *= 2.0
    # probability mass the grid did not place (pruned arms, tails beyond the region)
    for r in range(k if k < m else m):
        s = 0.0
        for j in range(n):
            s += out[j, r]
        miss = abs(1.0 - s)
        if miss > err:
            err = miss
    return err


@kernel
def categorical_select(cum: np.ndarray, state: np.ndarray) -> int:
    """Index drawn with probability proportional to the increments of ``cum`` (float64[n],
    non-decreasing cumulative weights, ``cum[-1] > 0``): the smallest i with u < cum[i] for
    u uniform on [0, cum[-1]). Zero-weight entries are never drawn.

    Assumes: ``cum`` non-decreasing, last entry > 0; ``state`` uint64[1]. O(log n).
    """
    n = cum.shape[0]
    u = rng_uniform(state) * cum[n - 1]
    lo = 0
    hi = n - 1
    while lo < hi:
        mid = (lo + hi) // 2
        if u < cum[mid]:
            hi = mid
        else:
            lo = mid + 1
    return lo


@kernel
def posterior_top_k(
    family: int, p1: np.ndarray, p2: np.ndarray, eligible: np.ndarray, state: np.ndarray,
    out_idx: np.ndarray,
) -> int:
    """One posterior draw per eligible arm (Beta(p1, p2) or Normal(p1, p2)); writes the arms of
    the ``out_idx.shape[0]`` highest draws, best first (ties: lower index), into ``out_idx``
    (int64) and returns how many it wrote (at most the number of eligible arms).

    The per-position propensities of such a slate are ``rank_probabilities`` of the same
    posteriors. Assumes: valid parameters; ``state`` uint64[1]. O(n * k).
    """
    n = p1.shape[0]
    k = out_idx.shape[0]
    vals = np.empty(k)
    filled = 0
    for j in range(n):
        if eligible[j] == 0:
            continue
        if family == FAMILY_BETA:
            v = rng_beta(state, p1[j], p2[j])
        else:
            v = p1[j] + p2[j] * rng_normal(state)
        # insertion into the sorted top-k (strictly greater: ties keep the lower index first)
        pos = filled
        while pos > 0 and v > vals[pos - 1]:
            pos -= 1
        if pos < k:
            last = k - 1 if k - 1 < filled else filled
            for q in range(last, pos, -1):
                vals[q] = vals[q - 1]
                out_idx[q] = out_idx[q - 1]
            vals[pos] = v
            out_idx[pos] = j
            if filled < k:
                filled += 1
    return filled


# --------------------------------------------------------------------------- arm policies


@kernel
def arm_select(
    mode: int, param: float, means: np.ndarray, counts: np.ndarray, eligible: np.ndarray,
    state: np.ndarray,
) -> tuple[int, float]:
    """Choose one eligible arm from per-arm statistics; returns ``(arm, propensity)``.

    * greedy (0): the highest mean (ties: lower index); propensity 1.
    * epsilon-greedy (1, ``param`` = epsilon): the best with probability 1 - eps, else uniform
      over the eligible arms; propensity ``(1 - eps) [best] + eps / m``.
    * softmax (2, ``param`` = temperature): ``exp((mean - max) / tau)``; its probability.
    * uniform (3): ``1 / m``.
    * UCB1 (4, ``param`` = exploration scale c): any eligible arm with ``counts <= 0`` first
      (lower index), else the highest ``mean + c sqrt(2 ln N / n)`` with N the eligible arms'
      total count; deterministic, propensity 1.

    Returns ``(-1, 0.0)`` when no arm is eligible. Assumes: ``means``, ``counts`` float64[n],
    ``eligible`` uint8[n]; ``state`` uint64[1]. O(n).
    """
    n = means.shape[0]
    m = 0
    best = -1
    total = 0.0
    for j in range(n):
        if eligible[j] != 0:
            m += 1
            total += counts[j]
            if best < 0 or means[j] > means[best]:
                best = j
    if m == 0:
        return -1, 0.0
    if mode == MODE_GREEDY:
        return best, 1.0
    if mode == MODE_UNIFORM or (mode == MODE_EPSILON and rng_uniform(state) < param):
        pick = rng_below(state, m)
        for j in range(n):
            if eligible[j] != 0:
                if pick == 0:
                    prop = 1.0 / m if mode == MODE_UNIFORM else param / m
                    if mode == MODE_EPSILON and j == best:
                        prop += 1.0 - param
                    return j, prop
                pick -= 1
    if mode == MODE_EPSILON:
        return best, 1.0 - param + param / m
    if mode == MODE_SOFTMAX:
        top = means[best]
        z = 0.0
        for j in range(n):
            if eligible[j] != 0:
                z += math.exp((means[j] - top) / param)
        u = rng_uniform(state) * z
        acc = 0.0
        last = best
        for j in range(n):
            if eligible[j] != 0:
                w = math.exp((means[j] - top) / param)
                acc += w
                last = j
                if u < acc:
                    return j, w / z
        return last, math.exp((means[last] - top) / param) / z
    # UCB1
    log_total = math.log(1.0 if 1.0 > total else total)
    pick = -1
    best_u = -np.inf
    for j in range(n):
        if eligible[j] != 0:
            if counts[j] <= 0.0:
                return j, 1.0
            u = means[j] + param * math.sqrt(2.0 * log_total / counts[j])
            if u > best_u:
                best_u = u
                pick = j
    return pick, 1.0


@kernel
def arm_stats_update(
    counts: np.ndarray, sums: np.ndarray, sumsq: np.ndarray, arm: int, dn: float, dr: float,
    dr2: float, discount: float, ring_arm: np.ndarray, ring_val: np.ndarray, ring_meta: np.ndarray,
) -> None:
    """Add ``(dn, dr, dr2)`` (count, reward, squared reward) to ``arm``'s sums.

    ``discount`` < 1 first multiplies every arm's sums by it (exponential forgetting for
    drifting rewards; O(n)). A sliding window keeps only the last W additions: ``ring_arm``
    int64[W], ``ring_val`` float64[W, 3] and ``ring_meta`` int64[2] (next slot, slots used);
    W = 0 disables it. Evicted contributions are subtracted, clipped at zero against float
    drift. Assumes: 0 <= arm < n; 0 < discount <= 1; not both a discount and a window (the
    window stores undiscounted contributions). O(1) without discount.
    """
    if discount < 1.0:
        for j in range(counts.shape[0]):
            counts[j] *= discount
            sums[j] *= discount
            sumsq[j] *= discount
    w = ring_arm.shape[0]
    if w > 0:
        pos = ring_meta[0]
        if ring_meta[1] == w:
            old = ring_arm[pos]
            c = counts[old] - ring_val[pos, 0]
            counts[old] = 0.0 if 0.0 > c else c
            sums[old] -= ring_val[pos, 1]
            q = sumsq[old] - ring_val[pos, 2]
            sumsq[old] = 0.0 if 0.0 > q else q
        else:
            ring_meta[1] += 1
        ring_arm[pos] = arm
        ring_val[pos, 0] = dn
        ring_val[pos, 1] = dr
        ring_val[pos, 2] = dr2
        ring_meta[0] = (pos + 1) % w
    counts[arm] += dn
    sums[arm] += dr
    sumsq[arm] += dr2


# --------------------------------------------------------------------------- slates


@kernel
def rank_slate(
    pool: np.ndarray, pool_scores: np.ndarray, n_pool: int, n_slots: int, mode: int,
    param: float, state: np.ndarray, out_idx: np.ndarray, out_prop: np.ndarray,
) -> int:
    """Fill up to ``n_slots`` slots from a candidate pool sorted best first.

    ``pool`` int64[>= n_pool] (item indices) and ``pool_scores`` float64 are sorted by score,
    descending. Per slot, among the candidates not yet placed:

    * greedy (0): the best; propensity 1.
    * epsilon-greedy (1, ``param`` = epsilon): the best with probability 1 - eps, else a uniform
      draw; propensity ``(1 - eps) [chosen is best] + eps / remaining``.
    * softmax (2, ``param`` = temperature tau): a draw from ``exp((s - s_max) / tau)``;
      propensity its probability (Plackett-Luce).
    * uniform (3): a uniform draw; propensity ``1 / remaining``.

    Each slot's propensity is conditional on the slots before it, so the slate's probability
    is their product. Writes ``out_idx`` (int64) and ``out_prop`` (float64); returns the slots
    filled (``min(n_slots, n_pool)``).

    Assumes: ``state`` uint64[1]; 0 <= param (<= 1 for epsilon); tau > 0. O(n_slots * n_pool).
    """
    m = n_pool
    filled = m if m < n_slots else n_slots
    # work on a copy so the caller's pool stays sorted; removal keeps order (best first)
    idx = np.empty(m, dtype=np.int64)
    sc = np.empty(m)
    for j in range(m):
        idx[j] = pool[j]
        sc[j] = pool_scores[j]
    weights = np.empty(m)
    for s in range(filled):
        remaining = m - s
        pick = 0
        prop = 1.0
        if mode == MODE_EPSILON:
            if rng_uniform(state) < param:
                pick = rng_below(state, remaining)
            prop = param / remaining
            if pick == 0:
                prop += 1.0 - param
        elif mode == MODE_SOFTMAX:
            top = sc[0]
            total = 0.0
            for j in range(remaining):
                w = math.exp((sc[j] - top) / param)
                weights[j] = w
                total += w
            u = rng_uniform(state) * total
            acc = 0.0
            pick = remaining - 1
            for j in range(remaining):
                acc += weights[j]
                if u < acc:
                    pick = j
                    break
            prop = weights[pick] / total
        elif mode == MODE_UNIFORM:
            pick = rng_below(state, remaining)
            prop = 1.0 / remaining
        out_idx[s] = idx[pick]
        out_prop[s] = prop
        for j in range(pick, remaining - 1):
            idx[j] = idx[j + 1]
            sc[j] = sc[j + 1]
    return filled
