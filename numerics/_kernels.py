"""Private numba kernels for the isotropic GMM denoiser (arXiv:2508.17689v1, Eqs. 14-15).

Public wrappers in :mod:`memlab.numerics.gmm` validate and cast inputs; random numbers are drawn
outside the kernels and passed in.  Everything is float64, ``cache=True``, no ``fastmath``.

Two routes compute the softmax weights ``p_i = softmax(w)_i``, ``w_i = -||x - alpha mu_i||^2 / (2 D_t)``
with ``D_t = alpha_t^2 sigma^2 + sigma_t^2``:

* :func:`denoise_direct` forms every squared distance from the difference vector and returns both the
  x0 prediction and the epsilon prediction in the residual form of docs/theory/capacity_crossover.md §2 (no subtraction of
  nearly equal vectors).  It is the reference route, used for sampling and the public ``denoise``.
* :func:`mc_losses` is the fast route for Monte Carlo losses.  Squared distances come from a blocked
  GEMM expansion ``||x||^2 - 2 alpha x.mu + alpha^2 ||mu||^2``; every entry whose weight is within
  ``_EXACT_WINDOW`` nats of its segment maximum and whose distance is small against the norms (where the
  expansion cancels) is recomputed from the difference vector, so the weights that matter are exact
  even at t = 0.001 (exponents ~1e8).  Weighted sums of the means are a second GEMM.  Prefixes of the
  mean list (the partially memorizing denoisers for several M) share one pass through the columns via
  a streaming log-sum-exp merge of segments.
"""

from __future__ import annotations

import numpy as np
from numba import njit

# exp(x) for x in [-708, 0]: Cody-Waite reduction x = k ln2 + r, |r| <= ln2/2, degree-13 Taylor
# polynomial (truncation < 5e-18 relative), scaling by 2^k through the exponent bits.  The loop has
# no calls or branches, so LLVM vectorises it; accuracy <= 1 ulp against mpmath (tests).  Arguments
# below -708 return exactly 0: their weight is below 1e-307 of the maximum (which has weight 1), so
# they cannot change a float64 sum that contains the maximum.
_LOG2E = 1.4426950408889634
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
_EXP_FLOOR = -708.0
# Entries within this many nats of their (segment) maximum get an exact difference-vector distance
# when the GEMM expansion cancels; farther entries weigh < e^-40 ~ 4e-18 of the maximum.
_EXACT_WINDOW = 42.0
# The GEMM expansion is trusted when ||x - a mu||^2 >= _CANCEL * (||x||^2 + a^2 ||mu||^2): then its
# rounding error is within a small factor of the direct formula's.
_CANCEL = 0.25


@njit(cache=True)
def exp_shifted(w, shift, n, out, bits):
    """``out[j] = exp(w[j] - shift)`` for ``j < n`` (0 below -708); vectorisable."""
    for j in range(n):
        v = w[j] - shift
        v = v if v > _EXP_FLOOR else _EXP_FLOOR
        kf = np.floor(v * _LOG2E + 0.5)
        r = v - kf * _LN2_HI
        r = r - kf * _LN2_LO
        p = 1.0 / 6227020800.0
        p = p * r + 1.0 / 479001600.0
        p = p * r + 1.0 / 39916800.0
        p = p * r + 1.0 / 3628800.0
        p = p * r + 1.0 / 362880.0
        p = p * r + 1.0 / 40320.0
        p = p * r + 1.0 / 5040.0
        p = p * r + 1.0 / 720.0
        p = p * r + 1.0 / 120.0
        p = p * r + 1.0 / 24.0
        p = p * r + 1.0 / 6.0
        p = p * r + 0.5
        p = p * r + 1.0
        p = p * r + 1.0
        out[j] = p
        bits[j] = (np.int64(kf) + 1023) << 52
    scale = bits.view(np.float64)
    for j in range(n):
        out[j] = out[j] * scale[j] if w[j] - shift > _EXP_FLOOR else 0.0


@njit(cache=True)
def denoise_direct(x, mu, alpha, sig, sigma2, out_x0, out_eps):
    """Isotropic GMM denoiser, direct difference-vector route (docs/theory/capacity_crossover.md §2).

    x: (B, d) noisy points; mu: (M, d) means; alpha, sig: alpha_t, sigma_t; sigma2 >= 0: shared variance.
    Writes the x0 prediction ``sum_i p_i (mu_i + a s2/D (x - a mu_i))`` and the epsilon prediction
    ``sig/D sum_i p_i (x - a mu_i)`` (residual form).
    """
    B, d = x.shape
    M = mu.shape[0]
    D = alpha * alpha * sigma2 + sig * sig
    c_shrink = alpha * sigma2 / D
    w = np.empty(M)
    p = np.empty(M)
    bits = np.empty(M, dtype=np.int64)
    res = np.empty(d)
    for b in range(B):
        wmax = -np.inf
        for i in range(M):
            s = 0.0
            for k in range(d):
                u = x[b, k] - alpha * mu[i, k]
                s += u * u
            w[i] = -s / (2.0 * D)
            if w[i] > wmax:
                wmax = w[i]
        exp_shifted(w, wmax, M, p, bits)
        tot = 0.0
        for i in range(M):
            tot += p[i]
        for k in range(d):
            res[k] = 0.0
            out_x0[b, k] = 0.0
        for i in range(M):
            pi = p[i] / tot
            if pi == 0.0:
                continue
            for k in range(d):
                u = x[b, k] - alpha * mu[i, k]
                res[k] += pi * u
                out_x0[b, k] += pi * mu[i, k]
        for k in range(d):
            out_x0[b, k] += c_shrink * res[k]
            out_eps[b, k] = sig / D * res[k]


@njit(cache=True)
def _max4(w, lo, hi):
    """Maximum of w[lo:hi] with four independent lanes (lets LLVM pipeline the compares)."""
    m0 = m1 = m2 = m3 = -np.inf
    i = lo
    while i + 4 <= hi:
        m0 = max(m0, w[i])
        m1 = max(m1, w[i + 1])
        m2 = max(m2, w[i + 2])
        m3 = max(m3, w[i + 3])
        i += 4
    while i < hi:
        m0 = max(m0, w[i])
        i += 1
    return max(max(m0, m1), max(m2, m3))


@njit(cache=True)
def _sum4(p, n):
    """Sum of p[:n] in four interleaved partial sums (fixed, deterministic order)."""
    s0 = s1 = s2 = s3 = 0.0
    i = 0
    while i + 4 <= n:
        s0 += p[i]
        s1 += p[i + 1]
        s2 += p[i + 2]
        s3 += p[i + 3]
        i += 4
    while i < n:
        s0 += p[i]
        i += 1
    return (s0 + s1) + (s2 + s3)


@njit(cache=True)
def _segment_softmax_block(X, nx, mu, muT, nmu, seg_ends, alpha, D, m_seg, s_seg, P):
    """Exact-corrected weights of one row block, split into segments of the mean list.

    Fills P (b, M) with exp(w - m_seg[row, s]) per segment, m_seg (b, S) with segment maxima and s_seg
    (b, S) with segment sums.
    """
    b, d = X.shape
    G = np.dot(X, muT)  # (b, M) = x . mu
    S = seg_ends.shape[0]
    M = mu.shape[0]
    a2 = alpha * alpha
    inv2D = 1.0 / (2.0 * D)
    w = np.empty(M)
    bits = np.empty(M, dtype=np.int64)
    idx = np.empty(M, dtype=np.int64)
    for r in range(b):
        for i in range(M):
            q = nx[r] - 2.0 * alpha * G[r, i] + a2 * nmu[i]
            w[i] = -(q if q > 0.0 else 0.0) * inv2D
        lo = 0
        for s in range(S):
            hi = seg_ends[s]
            wm = _max4(w, lo, hi)
            # exactness correction where the expansion cancels; collect the entries that do not
            # underflow (far below the maximum they are exactly 0 in float64 sums, see exp_shifted)
            corrected = False
            nnz = 0
            for i in range(lo, hi):
                if w[i] > wm - _EXACT_WINDOW and -w[i] < _CANCEL * (nx[r] + a2 * nmu[i]) * inv2D:
                    q = 0.0
                    for k in range(d):
                        u = X[r, k] - alpha * mu[i, k]
                        q += u * u
                    w[i] = -q * inv2D
                    corrected = True
                if w[i] > wm + _EXP_FLOOR - 1.0:
                    idx[nnz] = i
                    nnz += 1
            if corrected:
                wm = _max4(w, lo, hi)
            m_seg[r, s] = wm
            if 4 * nnz < hi - lo:  # sparse row: exponentiate only the survivors
                tot = 0.0
                for i in range(lo, hi):
                    P[r, i] = 0.0
                for jj in range(nnz):
                    i = idx[jj]
                    v = w[i] - wm
                    e = np.exp(v) if v > _EXP_FLOOR else 0.0
                    P[r, i] = e
                    tot += e
                s_seg[r, s] = tot
            else:
                exp_shifted(w[lo:hi], wm, hi - lo, P[r, lo:hi], bits)
                s_seg[r, s] = _sum4(P[r, lo:hi], hi - lo)
            lo = hi


@njit(cache=True)
def mc_losses(x0, noise, mu, seg_ends, alpha, sig, sigma2, block, out):
    """Per-draw squared errors ``||xbar_s(alpha x0_i + sig z_ir) - x0_i||^2`` (x0 units, summed).

    x0: (N, d) clean points; noise: (N, R, d) standard normal draws; mu: (M, d) means of the GMM
    denoiser (Eq. 14) with shared variance sigma2; seg_ends: increasing prefix sizes with last == M.
    For each prefix size seg_ends[s] the denoiser uses the first seg_ends[s] means.
    out: (S, N * R), row-major over (i, r).
    """
    N, R, d = noise.shape
    M = mu.shape[0]
    S = seg_ends.shape[0]
    D = alpha * alpha * sigma2 + sig * sig
    c_x = alpha * sigma2 / D
    c_mu = sig * sig / D
    muT = np.ascontiguousarray(mu.T)
    nmu = np.empty(M)
    for i in range(M):
        s = 0.0
        for k in range(d):
            s += mu[i, k] * mu[i, k]
        nmu[i] = s
    rows = N * R
    for b0 in range(0, rows, block):
        b = min(block, rows - b0)
        X = np.empty((b, d))
        X0 = np.empty((b, d))
        nx = np.empty(b)
        for r in range(b):
            i = (b0 + r) // R
            j = (b0 + r) % R
            s = 0.0
            for k in range(d):
                v = alpha * x0[i, k] + sig * noise[i, j, k]
                X[r, k] = v
                X0[r, k] = x0[i, k]
                s += v * v
            nx[r] = s
        m_seg = np.empty((b, S))
        s_seg = np.empty((b, S))
        P = np.empty((b, M))
        _segment_softmax_block(X, nx, mu, muT, nmu, seg_ends, alpha, D, m_seg, s_seg, P)
        # running merge over segments: (m, tot, V) with V = sum exp(w - m) mu
        m_run = np.full(b, -np.inf)
        t_run = np.zeros(b)
        V = np.zeros((b, d))
        lo = 0
        for s in range(S):
            hi = seg_ends[s]
            if S == 1:
                Vs = np.dot(P, mu)  # (b, d)
            else:
                Vs = np.dot(np.ascontiguousarray(P[:, lo:hi]), mu[lo:hi])
            for r in range(b):
                ms = m_seg[r, s]
                if ms > m_run[r]:
                    f = np.exp(m_run[r] - ms)
                    t_run[r] = t_run[r] * f + s_seg[r, s]
                    for k in range(d):
                        V[r, k] = V[r, k] * f + Vs[r, k]
                    m_run[r] = ms
                else:
                    f = np.exp(ms - m_run[r])
                    if f > 0.0:
                        t_run[r] += f * s_seg[r, s]
                        for k in range(d):
                            V[r, k] += f * Vs[r, k]
                inv = 1.0 / t_run[r]
                e = 0.0
                for k in range(d):
                    u = c_x * X[r, k] + c_mu * (V[r, k] * inv) - X0[r, k]
                    e += u * u
                out[s, b0 + r] = e
            lo = hi
