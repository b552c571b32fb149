"""Private numba kernels of the nearest-two search (docs/theory/memorization_metrics.md §2).

The public wrapper (:func:`memlab.numerics.memorization.nearest_two`) forms ``G = X_b Y_c^T`` with BLAS
(float32 or float64) block by block; :func:`scan_block` turns each block into squared distances by the
expansion ``||x||^2 + ||y||^2 - 2 G`` and keeps, per sample, the two nearest training points by
**exact** squared distances: an entry is recomputed from its difference vector in float64 whenever the
expansion's certified lower bound ``q - gamma (||x|| + ||y||)^2 - eta`` does not exceed the current
second-nearest exact distance.  An entry that is never recomputed therefore has true distance larger
than the final second-nearest one, so the result is exact whatever the cancellation.

Ties are broken by the lowest training index: columns are visited in increasing order and a new entry
replaces a kept one only when strictly closer.  Serial on purpose: the GEMM between calls already uses
the BLAS threads (numba threads and OpenBLAS threads fight, see README).  Float64, ``cache=True``,
no ``fastmath``.
"""

from __future__ import annotations

import numpy as np
from numba import njit


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
def exact_sqdist(X, R, Y, j):
    """``||X[R] - Y[j]||^2`` from the difference vector in float64 (fixed order, 4 lanes)."""
    D = X.shape[1]
    D4 = D - D % 4
    e0 = e1 = e2 = e3 = 0.0
    for k in range(0, D4, 4):
        u0 = np.float64(X[R, k]) - np.float64(Y[j, k])
        u1 = np.float64(X[R, k + 1]) - np.float64(Y[j, k + 1])
        u2 = np.float64(X[R, k + 2]) - np.float64(Y[j, k + 2])
        u3 = np.float64(X[R, k + 3]) - np.float64(Y[j, k + 3])
        e0 += u0 * u0
        e1 += u1 * u1
        e2 += u2 * u2
        e3 += u3 * u3
    for k in range(D4, D):
        u0 = np.float64(X[R, k]) - np.float64(Y[j, k])
        e0 += u0 * u0
    return (e0 + e1) + (e2 + e3)


@njit(cache=True)
def scan_block(G, X, Y, row0, col0, nx, ny, sx, sy, gamma, eta, q1, i1, q2, i2):
    """Update the exact nearest two of rows ``row0 .. row0 + b`` with columns ``col0 .. col0 + c``.

    G: (b, c) block of ``X[row0:row0+b] @ Y[col0:col0+c].T`` (float32 or float64);
    X, Y: the exact-valued sample and training arrays (any real dtype, read as float64);
    nx, ny: float64 squared norms; sx, sy: their square roots;
    gamma, eta: relative and absolute error constants of the expansion (see module docstring);
    q1, i1, q2, i2: running nearest / second-nearest exact squared distances and indices (in-out).

    Two passes per row: the first computes the certified bounds ``q -+ (gamma s^2 + eta)`` and the
    second-smallest upper bound ``u2`` of the block (the true second-nearest distance is <= u2); the
    second recomputes exactly only the entries whose lower bound is <= min(current exact q2, u2).
    Returns the number of exact recomputations.
    """
    b, c = G.shape
    count = 0
    lb = np.empty(c)
    for r in range(b):
        R = row0 + r
        a1 = q1[R]
        a2 = q2[R]
        j1 = i1[R]
        j2 = i2[R]
        nxr = nx[R]
        sxr = sx[R]
        u1 = np.inf
        u2 = np.inf
        for cc in range(c):
            j = col0 + cc
            q = nxr + ny[j] - 2.0 * np.float64(G[r, cc])
            s = sxr + sy[j]
            err = gamma * s * s + eta
            lb[cc] = q - err
            ub = q + err
            if ub < u2:
                if ub < u1:
                    u2 = u1
                    u1 = ub
                else:
                    u2 = ub
        thr = min(a2, u2)
        for cc in range(c):
            if lb[cc] <= thr:
                j = col0 + cc
                e = exact_sqdist(X, R, Y, j)
                count += 1
                if e < a1:
                    a2 = a1
                    j2 = j1
                    a1 = e
                    j1 = j
                elif e < a2:
                    a2 = e
                    j2 = j
                if a2 < thr:
                    thr = a2
        q1[R] = a1
        q2[R] = a2
        i1[R] = j1
        i2[R] = j2
    return count
