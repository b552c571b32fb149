"""Private numba kernels of the nearest-two search (docs/theory/memorization_metrics.md §2).

The public wrapper (:func:`memlab.numerics.memorization.nearest_two`) shifts both point sets by one
per-feature vector ``c`` when that pays (distances are translation invariant), forms
``G = X'_b Y'_c^T`` with BLAS (float32 or float64) block by block, and hands each block to
:func:`scan_block`.  The scan turns the block into squared distances by the expansion
``||x'||^2 + ||y'||^2 - 2 G`` and keeps, per sample, the two nearest training points by **exact**
squared distances: an entry is recomputed from its difference vector on the ORIGINAL values whenever the
expansion's certified lower bound ``q - gamma (||x'|| + ||y'||)^2 - eta`` does not exceed the current
second-nearest exact distance.  An entry that is never recomputed therefore has a recomputed distance
larger than the final second-nearest one, so the result is exact whatever the cancellation, and
independent of ``c``.

Three recomputations: float64 on the values (float data; :func:`exact_sqdist`), float64 on the exact
int64 differences (integer data; exact while squared distances stay below 2^53), int64 (integer data
whose squared distances fit in int64: exact).

Ties are broken by the lowest training index: columns are visited in increasing order and a new entry
replaces a kept one only when strictly closer.  :func:`scan_block` is serial and releases the GIL: the
wrapper runs one GEMM + scan worker per thread, each with single-threaded BLAS, so no thread pool
spins while another works.  Float64 accumulation in a fixed order, ``cache=True``, no ``fastmath``.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from ._jit import njit

#: "no candidate yet" for the int64 state (every admitted squared distance is below 2^63 - 1)
INT_INF = np.iinfo(np.int64).max


@njit(cache=True)
def row_stats(A, w, out_sq, out_hash):
    """Per row: float64 squared norm and a float64 hash ``sum_k w_k a_k`` (fixed order, 4 lanes).

    Equal rows give bit-identical hashes (same operations in the same order), which is what the
    duplicate detection relies on; distinct rows that collide are separated by an exact comparison.
    """
    n, D = A.shape
    D4 = D - D % 4
    for i in range(n):
        s0 = s1 = s2 = s3 = 0.0
        h0 = h1 = h2 = h3 = 0.0
        for k in range(0, D4, 4):
            v0 = np.float64(A[i, k])
            v1 = np.float64(A[i, k + 1])
            v2 = np.float64(A[i, k + 2])
            v3 = np.float64(A[i, k + 3])
            s0 += v0 * v0
            s1 += v1 * v1
            s2 += v2 * v2
            s3 += v3 * v3
            h0 += w[k] * v0
            h1 += w[k + 1] * v1
            h2 += w[k + 2] * v2
            h3 += w[k + 3] * v3
        for k in range(D4, D):
            v0 = np.float64(A[i, k])
            s0 += v0 * v0
            h0 += w[k] * v0
        out_sq[i] = (s0 + s1) + (s2 + s3)
        out_hash[i] = (h0 + h1) + (h2 + h3)


@njit(cache=True)
def _row_sqnorm(A, c, i):
    """||A[i] - c||^2 in float64: four lanes over the features, added in a fixed order."""
    D = A.shape[1]
    D4 = D - D % 4
    s0 = s1 = s2 = s3 = 0.0
    for k in range(0, D4, 4):
        v0 = np.float64(A[i, k] - c[k])
        v1 = np.float64(A[i, k + 1] - c[k + 1])
        v2 = np.float64(A[i, k + 2] - c[k + 2])
        v3 = np.float64(A[i, k + 3] - c[k + 3])
        s0 += v0 * v0
        s1 += v1 * v1
        s2 += v2 * v2
        s3 += v3 * v3
    for k in range(D4, D):
        v0 = np.float64(A[i, k] - c[k])
        s0 += v0 * v0
    return (s0 + s1) + (s2 + s3)


@njit(cache=True)
def shifted_sqnorms(A, c, out):
    """``out[i] = sum_k fl64(A[i, k] - c[k])^2`` in float64 (fixed order, 4 lanes).

    Float data with a float64 ``c``: the difference is one float64 rounding of the exact difference.
    Integer data with an int64 ``c`` (uint64 passed as an int64 view): the difference is taken in
    wrap-around int64 arithmetic, exact whenever the true difference fits in int64, then rounded once.
    """
    for i in range(A.shape[0]):
        out[i] = _row_sqnorm(A, c, i)


@njit(cache=True, parallel=True)
def shifted_sqnorms_parallel(A, c, out):
    """:func:`shifted_sqnorms` with the rows in a ``prange`` (same per-row arithmetic)."""
    for i in prange(A.shape[0]):
        out[i] = _row_sqnorm(A, c, i)


@njit(cache=True)
def exact_sqdist(X, R, Y, j):
    """``||X[R] - Y[j]||^2`` from the difference vector in float64 (fixed order: 8 lanes, then pairwise)."""
    D = X.shape[1]
    D8 = D - D % 8
    e0 = e1 = e2 = e3 = e4 = e5 = e6 = e7 = 0.0
    for k in range(0, D8, 8):
        u0 = np.float64(X[R, k]) - np.float64(Y[j, k])
        u1 = np.float64(X[R, k + 1]) - np.float64(Y[j, k + 1])
        u2 = np.float64(X[R, k + 2]) - np.float64(Y[j, k + 2])
        u3 = np.float64(X[R, k + 3]) - np.float64(Y[j, k + 3])
        u4 = np.float64(X[R, k + 4]) - np.float64(Y[j, k + 4])
        u5 = np.float64(X[R, k + 5]) - np.float64(Y[j, k + 5])
        u6 = np.float64(X[R, k + 6]) - np.float64(Y[j, k + 6])
        u7 = np.float64(X[R, k + 7]) - np.float64(Y[j, k + 7])
        e0 += u0 * u0
        e1 += u1 * u1
        e2 += u2 * u2
        e3 += u3 * u3
        e4 += u4 * u4
        e5 += u5 * u5
        e6 += u6 * u6
        e7 += u7 * u7
    for k in range(D8, D):
        u0 = np.float64(X[R, k]) - np.float64(Y[j, k])
        e0 += u0 * u0
    return ((e0 + e1) + (e2 + e3)) + ((e4 + e5) + (e6 + e7))


@njit(cache=True)
def exact_sqdist_int(X, R, Y, j):
    """``||X[R] - Y[j]||^2`` in int64: exact when every squared distance is below 2^63 (checked by the
    caller: the sum over features of the squared spread is below 2^63).  uint64 data come as int64 views;
    the wrap-around difference equals the true one because it fits in int64."""
    D = X.shape[1]
    D4 = D - D % 4
    e0 = e1 = e2 = e3 = 0
    for k in range(0, D4, 4):
        u0 = np.int64(X[R, k]) - np.int64(Y[j, k])
        u1 = np.int64(X[R, k + 1]) - np.int64(Y[j, k + 1])
        u2 = np.int64(X[R, k + 2]) - np.int64(Y[j, k + 2])
        u3 = np.int64(X[R, k + 3]) - np.int64(Y[j, k + 3])
        e0 += u0 * u0
        e1 += u1 * u1
        e2 += u2 * u2
        e3 += u3 * u3
    for k in range(D4, D):
        u0 = np.int64(X[R, k]) - np.int64(Y[j, k])
        e0 += u0 * u0
    return (e0 + e1) + (e2 + e3)


@njit(cache=True)
def exact_sqdist_intdiff(X, R, Y, j):
    """``||X[R] - Y[j]||^2`` in float64 from the exact int64 differences (same order as :func:`exact_sqdist`;
    exact while the squared distances stay below 2^53)."""
    D = X.shape[1]
    D8 = D - D % 8
    e0 = e1 = e2 = e3 = e4 = e5 = e6 = e7 = 0.0
    for k in range(0, D8, 8):
        u0 = np.float64(np.int64(X[R, k]) - np.int64(Y[j, k]))
        u1 = np.float64(np.int64(X[R, k + 1]) - np.int64(Y[j, k + 1]))
        u2 = np.float64(np.int64(X[R, k + 2]) - np.int64(Y[j, k + 2]))
        u3 = np.float64(np.int64(X[R, k + 3]) - np.int64(Y[j, k + 3]))
        u4 = np.float64(np.int64(X[R, k + 4]) - np.int64(Y[j, k + 4]))
        u5 = np.float64(np.int64(X[R, k + 5]) - np.int64(Y[j, k + 5]))
        u6 = np.float64(np.int64(X[R, k + 6]) - np.int64(Y[j, k + 6]))
        u7 = np.float64(np.int64(X[R, k + 7]) - np.int64(Y[j, k + 7]))
        e0 += u0 * u0
        e1 += u1 * u1
        e2 += u2 * u2
        e3 += u3 * u3
        e4 += u4 * u4
        e5 += u5 * u5
        e6 += u6 * u6
        e7 += u7 * u7
    for k in range(D8, D):
        u0 = np.float64(np.int64(X[R, k]) - np.int64(Y[j, k]))
        e0 += u0 * u0
    return ((e0 + e1) + (e2 + e3)) + ((e4 + e5) + (e6 + e7))


#: candidate slots per row before the scan compacts them (see :func:`scan_row`)
CAND = 64


@njit(cache=True)
def _float_up(a):
    """A float64 >= the int64 ``a >= 0`` (rounded conversion, then nudged up by more than its error)."""
    return np.float64(a) * (1.0 + 2.0 ** -51)


@njit(cache=True)
def _recompute(G, r, X, Y, R, col0, A, B, sxr, base, mode, cand, n, a1, a2, b1, b2, j1, j2, thr):
    """Recompute exactly, in column order, the candidates (block columns) whose lower bound is still
    <= ``thr``; update the running pair (``a`` float64 or, in mode 2, ``b`` int64) and the threshold.
    ``A``, ``B`` are the block's slices.  Returns the new state and the number of recomputations."""
    count = 0
    rhs = thr - base
    for p in range(n):
        cc = cand[p]
        if A[cc] - 2.0 * np.float64(G[r, cc]) - B[cc] * sxr > rhs:
            continue
        count += 1
        jc = col0 + cc
        if mode == 2:
            e2 = exact_sqdist_int(X, R, Y, jc)
            if e2 < b1:
                b2 = b1
                j2 = j1
                b1 = e2
                j1 = jc
            elif e2 < b2:
                b2 = e2
                j2 = jc
            if _float_up(b2) < thr:
                thr = _float_up(b2)
                rhs = thr - base
        else:
            if mode == 1:
                e = exact_sqdist_intdiff(X, R, Y, jc)
            else:
                e = exact_sqdist(X, R, Y, jc)
            if e < a1:
                a2 = a1
                j2 = j1
                a1 = e
                j1 = jc
            elif e < a2:
                a2 = e
                j2 = jc
            if a2 < thr:
                thr = a2
                rhs = thr - base
    return a1, a2, b1, b2, j1, j2, thr, count


@njit(cache=True)
def _compact(G, r, A, B, sxr, rhs, cand, n):
    """Keep the candidates whose lower bound is still <= the threshold; returns how many."""
    m = 0
    for p in range(n):
        cc = cand[p]
        if A[cc] - 2.0 * np.float64(G[r, cc]) - B[cc] * sxr <= rhs:
            cand[m] = cc
            m += 1
    return m


@njit(cache=True)
def scan_row(G, r, X, Y, row0, col0, nx, ny, sx, A, B, ub_const, gamma, eta, mode, q1, i1, q2, i2, k1, k2,
             cand):
    """One row of the scan; returns its recomputation count.

    ``ny``, ``A``, ``B``: the block's slices (column ``cc`` is training point ``col0 + cc``).  One pass over
    the row of G collects candidates: per entry, with ``g = 2 G_r,cc``, the certified lower bound
    ``q - gamma (sx + sy)^2 - eta`` is tested against the threshold ``thr`` in the expanded form
    ``A_cc - g - B_cc sx <= thr - (1 - gamma) nx + eta`` (``A = (1 - gamma) ny``, ``B = 2 gamma sy``).
    ``thr`` starts at the exact second-nearest distance found so far.  While that is still infinite (the
    row's first block), the pass also tracks the two smallest ``t = ny - g``: ``t2 + nx + ub_const``
    (``ub_const = gamma (sx + max sy)^2 + eta``) bounds the second-nearest distance from above and lowers
    ``thr``.

    ``thr`` only falls, so the candidates include every entry whose lower bound is below its final value;
    they are then filtered by the final threshold and recomputed in column order (ties to the lowest
    index).  When the ``CAND`` slots fill up, the list is filtered by the current threshold, and
    recomputed at once if that frees too little.

    ``mode``: 0 float64 on the values, 1 float64 on int64 differences, 2 exact int64 (state in ``k1, k2``;
    ``q1, q2`` unused).
    """
    c = G.shape[1]
    R = row0 + r
    j1 = i1[R]
    j2 = i2[R]
    a1 = q1[R]
    a2 = q2[R]
    if mode == 2:
        b1 = k1[R]
        b2 = k2[R]
        thr = _float_up(b2)
    else:
        b1 = 0
        b2 = 0
        thr = a2
    nxr = nx[R]
    sxr = sx[R]
    base = (1.0 - gamma) * nxr - eta
    rhs = thr - base
    n = 0
    count = 0
    Gr = G[r]
    if thr < np.inf:
        for cc in range(c):
            if A[cc] - 2.0 * np.float64(Gr[cc]) - B[cc] * sxr <= rhs:
                if n == CAND:
                    n = _compact(G, r, A, B, sxr, rhs, cand, n)
                    if n > CAND // 2:
                        a1, a2, b1, b2, j1, j2, thr, k = _recompute(G, r, X, Y, R, col0, A, B, sxr, base, mode,
                                                                    cand, n, a1, a2, b1, b2, j1, j2, thr)
                        count += k
                        rhs = thr - base
                        n = 0
                cand[n] = cc
                n += 1
    else:  # first block of the row: bound the second-nearest distance from the block itself
        ubr = nxr + ub_const
        t1 = np.inf
        t2 = np.inf
        for cc in range(c):
            g = 2.0 * np.float64(Gr[cc])
            t = ny[cc] - g
            if t < t2:
                if t < t1:
                    t2 = t1
                    t1 = t
                else:
                    t2 = t
                u = t2 + ubr
                if u < thr:
                    thr = u
                    rhs = thr - base
            if A[cc] - g - B[cc] * sxr <= rhs:
                if n == CAND:
                    n = _compact(G, r, A, B, sxr, rhs, cand, n)
                    if n > CAND // 2:
                        a1, a2, b1, b2, j1, j2, thr, k = _recompute(G, r, X, Y, R, col0, A, B, sxr, base, mode,
                                                                    cand, n, a1, a2, b1, b2, j1, j2, thr)
                        count += k
                        rhs = thr - base
                        n = 0
                cand[n] = cc
                n += 1
    a1, a2, b1, b2, j1, j2, thr, k = _recompute(G, r, X, Y, R, col0, A, B, sxr, base, mode, cand, n,
                                                a1, a2, b1, b2, j1, j2, thr)
    count += k
    i1[R] = j1
    i2[R] = j2
    if mode == 2:
        k1[R] = b1
        k2[R] = b2
    else:
        q1[R] = a1
        q2[R] = a2
    return count


@njit(cache=True, nogil=True)
def scan_block(G, X, Y, row0, col0, nx, ny, sx, A, B, sy_max, gamma, eta, mode, q1, i1, q2, i2, k1, k2):
    """Update the exact nearest two of rows ``row0 .. row0 + b`` with columns ``col0 .. col0 + c``.

    G: (b, c) block of ``X'[row0:row0+b] @ Y'[col0:col0+c].T`` on the shifted data (float32 or float64);
    X, Y: the ORIGINAL sample and training arrays (uint64 as int64 views);
    nx, ny: float64 squared norms of the shifted rows; sx: the samples' square roots;
    A, B: ``(1 - gamma) ny`` and ``2 gamma sy`` (the bound's per-column terms, computed once);
    sy_max: the largest training norm ``sy`` of the block (for the block's upper bound);
    gamma, eta: relative and absolute error constants of the expansion (see module docstring);
    mode: see :func:`scan_row`; q1, i1, q2, i2 (k1, k2 in mode 2): running state (in-out).

    Returns the number of exact recomputations.
    """
    count = 0
    cand = np.empty(CAND, dtype=np.int64)
    c = G.shape[1]
    nyb = ny[col0:col0 + c]
    Ab = A[col0:col0 + c]
    Bb = B[col0:col0 + c]
    for r in range(G.shape[0]):
        s = sx[row0 + r] + sy_max
        count += scan_row(G, r, X, Y, row0, col0, nx, nyb, sx, Ab, Bb, gamma * s * s + eta, gamma, eta, mode,
                          q1, i1, q2, i2, k1, k2, cand)
    return count
