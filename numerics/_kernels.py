"""Private numba kernels for the isotropic GMM denoiser (arXiv:2508.17689v1, Eqs. 14-15).

Public wrappers in :mod:`memlab.numerics.gmm` and :mod:`memlab.numerics.losses` validate and cast inputs;
random numbers are drawn outside the loss kernels and passed in.  Everything is float64, ``cache=True``, no
``fastmath``.

Two routes compute the softmax weights ``p_i = softmax(w)_i``, ``w_i = -||x - alpha mu_i||^2 / (2 D_t)``
with ``D_t = alpha_t^2 sigma^2 + sigma_t^2``:

* :func:`denoise_direct` forms every squared distance from the difference vector and returns both the
  x0 prediction and the epsilon prediction in the residual form of docs/theory/capacity_crossover.md §2 (no subtraction of
  nearly equal vectors).  It is the reference route, used for sampling and the public ``denoise``.
* :func:`mc_losses` is the fast route for Monte Carlo losses.  Squared distances come from a blocked
  GEMM expansion ``||x||^2 - 2 alpha x.mu + alpha^2 ||mu||^2``; every entry whose weight is within
  ``_EXACT_WINDOW`` nats of its segment maximum and whose distance is small against the norms (where the
  expansion cancels) is recomputed from the difference vector, so the weights that matter are exact
  even at t = 0.001 (exponents ~1e8).  Entries more than ``_SPARSE_CUT`` nats below the maximum are
  dropped; a row left with few entries forms its weighted mean directly, the other rows in a second GEMM.
  Prefixes of the mean list (the partially memorizing denoisers for several M) share one pass through the
  columns via a streaming log-sum-exp merge of segments.  Several threads may run the kernel at once
  (it releases the GIL): each claims row blocks from an atomic counter and runs its own single-threaded
  BLAS calls; a block's result does not depend on the thread count.

:func:`pcg64_parse_ranges` and :func:`pcg64_stitch` draw numpy's standard normals (PCG64 + ziggurat), bit
for bit, in parallel (see the comment above them; threads share the work as in :func:`mc_losses`); the
losses draw their noise with them.
"""

from __future__ import annotations

import threading

import numpy as np
from llvmlite import ir
from numba import config
from numba.core import cgutils, types
from numba.extending import intrinsic

from ._jit import njit

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
# Entries more than this many nats below their segment maximum are dropped from the softmax: together
# they weigh < M e^-60 of it (below 1e-20 relative for M < 1e6, far below float64 rounding).
_SPARSE_CUT = 60.0
# Rounding bound of the GEMM expansion q = ||x||^2 - 2 a x.mu + a^2 ||mu||^2 in units of ||x||^2 + a^2 ||mu||^2:
# 2 gamma_{d+3} (gamma_n = n u / (1 - n u), u = 2^-53) covers the two dot products and the two additions.  The
# survivor cut and the exactness window are widened by twice this bound, so that for data far from the origin
# (where every distance is small against the norms) no entry within the cut of the true minimum is lost to
# rounding before its exact distance is computed.
_UNIT_ROUNDOFF = 2.0 ** -53


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


@intrinsic
def _fetch_add(typingctx, counter, value):
    """Atomically add ``value`` to ``counter[0]`` (int64 array) and return the old value: threads claim
    work items one at a time, so a thread slowed by other work on its core takes fewer of them."""
    if not (isinstance(counter, types.Array) and counter.dtype == types.int64 and counter.ndim == 1):
        return None
    sig = types.int64(counter, types.int64)

    def codegen(context, builder, signature, args):
        ary = context.make_array(signature.args[0])(context, builder, args[0])
        zero = context.get_constant(types.intp, 0)
        ptr = cgutils.get_item_pointer(context, builder, signature.args[0], ary, [zero])
        return builder.atomic_rmw("add", ptr, args[1], "seq_cst")

    return sig, codegen


@njit(cache=True)
def _count_survivors(q, m, thr, win, cq, cnmu, lo):
    """Entries of q[:m] up to ``thr`` and entries that need the exactness correction (vectorised counts).

    ``<=``: the minimum itself always counts, also when ``thr = qmin + cut`` rounds to ``qmin`` (data far from
    the origin, ``|x|^2`` beyond ``cut / 2^-53``)."""
    cnt = 0
    n_corr = 0
    for ii in range(m):
        qi = q[ii]
        cnt += qi <= thr
        n_corr += (qi <= win) & (qi < cq + cnmu[lo + ii])
    return cnt, n_corr


@intrinsic
def _bits_as_float(typingctx, bits):
    """The float64 whose bit pattern is the int64 ``bits``."""
    sig = types.float64(types.int64)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return sig, codegen


if config.DISABLE_JIT:  # pure-Python stand-ins for the intrinsics (coverage runs with NUMBA_DISABLE_JIT=1)
    _FALLBACK_LOCK = threading.Lock()

    def _fetch_add(counter, value):  # noqa: F811
        with _FALLBACK_LOCK:
            old = int(counter[0])
            counter[0] = old + value
        return old

    def _bits_as_float(bits):  # noqa: F811
        return float(np.array([bits], dtype=np.int64).view(np.float64)[0])


@njit(cache=True)
def _block_losses(x0, noise, b0, b, mu, muT, nmu, cnmu, seg_ends, alpha, sig, D, c_x, c_mu, X, nx, G, q, w, idx,
                  ev, vs, Pflat, Vflat, drow, dmax, dsum, V, m_run, t_run, bits, out):
    """Losses of the rows b0 .. b0 + b - 1 (row = i R + r) for every prefix segment; see :func:`mc_losses`.

    Workspace (one set per thread): X (B, d), nx (B,), G (B, M), q (M,), w (M,), idx (M,), ev (M,), vs (d,),
    Pflat (B M,), Vflat (B d,), drow (B,), dmax (B,), dsum (B,), V (B, d), m_run (B,), t_run (B,), bits (M,).
    """
    R = noise.shape[1]
    d = mu.shape[1]
    S = seg_ends.shape[0]
    a2 = alpha * alpha
    inv2D = 1.0 / (2.0 * D)
    cut_q = 2.0 * D * _SPARSE_CUT  # the cuts in squared-distance units
    window_q = 2.0 * D * _EXACT_WINDOW
    n_ops = (d + 3) * _UNIT_ROUNDOFF
    gamma2 = 2.0 * n_ops / (1.0 - n_ops)  # see _UNIT_ROUNDOFF
    qbits = q.view(np.int64)
    for r in range(b):
        i = (b0 + r) // R
        j = (b0 + r) % R
        s = 0.0
        for k in range(d):
            v = alpha * x0[i, k] + sig * noise[i, j, k]
            X[r, k] = v
            s += v * v
        nx[r] = s
        m_run[r] = -np.inf
        t_run[r] = 0.0
        for k in range(d):
            V[r, k] = 0.0
    np.dot(X[:b], muT, G[:b])  # (b, M) = x . mu, BLAS
    lo = 0
    for s in range(S):
        hi = seg_ends[s]
        m = hi - lo
        P = Pflat[:X.shape[0] * m].reshape((X.shape[0], m))
        nmu_seg = 0.0
        for ii in range(lo, hi):
            nmu_seg = max(nmu_seg, nmu[ii])
        nd = 0
        for r in range(b):
            # squared distances from the expansion (clamped at 0) and their minimum; non-negative doubles
            # order like their bit patterns, so the minimum is an integer reduction (vectorised)
            for ii in range(m):
                qq = nx[r] - 2.0 * alpha * G[r, lo + ii] + a2 * nmu[lo + ii]
                q[ii] = qq if qq > 0.0 else 0.0
            qmin_bits = qbits[0]
            for ii in range(m):
                qmin_bits = min(qmin_bits, qbits[ii])
            qmin = _bits_as_float(qmin_bits)
            # survivors: weights within _SPARSE_CUT nats of the maximum (the others weigh < e^-60 of it);
            # exactness correction where the GEMM expansion cancels (near the maximum only: rare but for small t)
            slack = 2.0 * gamma2 * (nx[r] + a2 * nmu_seg)  # twice the rounding bound of the expansion
            thr = qmin + cut_q + slack
            win = qmin + window_q + slack
            cq = _CANCEL * nx[r]
            cnt, n_corr = _count_survivors(q, m, thr, win, cq, cnmu, lo)
            sparse = 4 * cnt < m
            nnz = 0
            if sparse:
                for ii in range(m):  # branch-free compress (the test is unpredictable at mid times)
                    idx[nnz] = ii
                    nnz += q[ii] <= thr
            if n_corr > 0:
                n_scan = nnz if sparse else m
                for jj in range(n_scan):
                    ii = idx[jj] if sparse else jj
                    if q[ii] <= win and q[ii] < cq + cnmu[lo + ii]:
                        qq = 0.0
                        for k in range(d):
                            u = X[r, k] - alpha * mu[lo + ii, k]
                            qq += u * u
                        q[ii] = qq
                qmin = np.inf  # the corrected entries are within a rounding error of their old values
                for jj in range(n_scan):
                    qmin = min(qmin, q[idx[jj] if sparse else jj])
                thr = max(thr, qmin)  # far from the origin the correction can move every survivor past thr
            wm = -qmin * inv2D
            if sparse:  # few survivors: exponentiate them, weighted mean directly
                for jj in range(nnz):
                    w[jj] = -q[idx[jj]] * inv2D
                exp_shifted(w, wm, nnz, ev, bits)
                tot = _sum4(ev, nnz)
                for k in range(d):
                    vs[k] = 0.0
                for jj in range(nnz):
                    e = ev[jj]
                    i = lo + idx[jj]
                    for k in range(d):
                        vs[k] += e * mu[i, k]
                _merge_segment(V, m_run, t_run, r, wm, tot, vs)
            else:  # dense row: vectorised exp now, weighted mean in the block GEMM below
                for ii in range(m):
                    w[ii] = -q[ii] * inv2D
                exp_shifted(w, wm, m, P[nd], bits)
                for ii in range(m):  # drop what the sparse rows drop (and keep subnormals out of the GEMM)
                    P[nd, ii] = P[nd, ii] if q[ii] <= thr else 0.0
                drow[nd] = r
                dmax[nd] = wm
                dsum[nd] = _sum4(P[nd], m)
                nd += 1
        if nd > 0:
            Vd = Vflat[:nd * d].reshape((nd, d))
            np.dot(P[:nd], mu[lo:hi], Vd)  # (nd, d) weighted sums of the means, BLAS
            for jj in range(nd):
                _merge_segment(V, m_run, t_run, drow[jj], dmax[jj], dsum[jj], Vd[jj])
        for r in range(b):
            i = (b0 + r) // R
            inv = 1.0 / t_run[r]
            e = 0.0
            for k in range(d):
                u = c_x * X[r, k] + c_mu * (V[r, k] * inv) - x0[i, k]
                e += u * u
            out[s, b0 + r] = e
        lo = hi


@njit(cache=True)
def _merge_segment(V, m_run, t_run, r, ms, ss, vs):
    """Streaming log-sum-exp merge of one segment (max ms, sum ss, weighted sum vs) into row r."""
    d = vs.shape[0]
    if ms > m_run[r]:
        f = np.exp(m_run[r] - ms)
        t_run[r] = t_run[r] * f + ss
        for k in range(d):
            V[r, k] = V[r, k] * f + vs[k]
        m_run[r] = ms
    else:
        f = np.exp(ms - m_run[r])
        if f > 0.0:
            t_run[r] += f * ss
            for k in range(d):
                V[r, k] += f * vs[k]


@njit(cache=True, nogil=True)
def mc_losses(x0, noise, mu, seg_ends, alpha, sig, sigma2, block, next_block, out):
    """Per-draw squared errors ``||xbar_s(alpha x0_i + sig z_ir) - x0_i||^2`` (x0 units, summed).

    x0: (N, d) clean points; noise: (N, R, d) standard normal draws; mu: (M, d) means of the GMM
    denoiser (Eq. 14) with shared variance sigma2; seg_ends: increasing prefix sizes with last == M.
    For each prefix size seg_ends[s] the denoiser uses the first seg_ends[s] means.
    out: (S, N * R), row-major over (i, r).

    Rows are cut into blocks of ``block``.  Several threads may call this at once with the same
    ``next_block`` (int64 array of one zero): each claims the next block (atomic counter) and computes it
    in its own workspace with its own GEMMs (the caller pins BLAS to one thread).  A block's result does not
    depend on which thread computes it, so the output is the same for every thread count.
    """
    N, R, d = noise.shape
    M = mu.shape[0]
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
    cnmu = _CANCEL * alpha * alpha * nmu
    rows = N * R
    nblocks = (rows + block - 1) // block
    X = np.empty((block, d))
    nx = np.empty(block)
    G = np.empty((block, M))
    q = np.empty(M)
    w = np.empty(M)
    idx = np.empty(M, dtype=np.int64)
    ev = np.empty(M)
    vs = np.empty(d)
    Pflat = np.empty(block * M)
    Vflat = np.empty(block * d)
    drow = np.empty(block, dtype=np.int64)
    dmax = np.empty(block)
    dsum = np.empty(block)
    V = np.empty((block, d))
    m_run = np.empty(block)
    t_run = np.empty(block)
    bits = np.empty(M, dtype=np.int64)
    while True:
        blk = _fetch_add(next_block, 1)
        if blk >= nblocks:
            break
        b0 = blk * block
        b = min(block, rows - b0)
        _block_losses(x0, noise, b0, b, mu, muT, nmu, cnmu, seg_ends, alpha, sig, D, c_x, c_mu, X, nx, G, q, w, idx,
                      ev, vs, Pflat, Vflat, drow, dmax, dsum, V, m_run, t_run, bits, out)


# ------------------------------------------------------------------------------------------------------------
# Standard normal draws, bit for bit those of ``numpy.random.Generator(PCG64).standard_normal``, in parallel.
#
# numpy draws each normal by the ziggurat method from one 64-bit output of PCG64 (99% of the time) or a few
# (the rejection and tail branches), so the k-th normal sits at a data-dependent position of the PCG64 stream.
# The parallel generator cuts the stream into ranges; the thread that claims a range jumps to its start (the
# LCG jumps ahead in O(log n)) and parses from there as if a normal started at that position.  A parse that
# meets a position where the true parse (of the range before) starts a normal agrees with it from then on, and
# the ziggurat accepts 99% of first draws, so the two meet within a draw or two; the serial fix-up finds the
# meeting point and stitches the ranges (or, should they not meet, re-parses the range from the true start).
# PCG64 (XSL-RR 128/64, O'Neill 2014) and the ziggurat tables are numpy's:
# numpy/random/src/distributions/ziggurat_constants.h and distributions.c (``random_standard_normal``).

_PCG_MULT_HI = np.uint64(2549297995355413924)
_PCG_MULT_LO = np.uint64(4865540595714422341)
_U0 = np.uint64(0)
_U1 = np.uint64(1)
_U8 = np.uint64(8)
_U9 = np.uint64(9)
_U11 = np.uint64(11)
_U58 = np.uint64(58)
_U63 = np.uint64(63)
_U64 = np.uint64(64)
_UFF = np.uint64(0xFF)
_MASK52 = np.uint64(0x000FFFFFFFFFFFFF)
_TWO_M53 = 1.0 / 9007199254740992.0
ZIG_KI = np.array([
    0xEF33D8025EF6A, 0x0000000000000, 0xC08BE98FBC6A8, 0xDA354FABD8142, 0xE51F67EC1EEEA, 0xEB255E9D3F77E,
    0xEEF4B817ECAB9, 0xF19470AFA44AA, 0xF37ED61FFCB18, 0xF4F469561255C, 0xF61A5E41BA396, 0xF707A755396A4,
    0xF7CB2EC28449A, 0xF86F10C6357D3, 0xF8FA6578325DE, 0xF9724C74DD0DA, 0xF9DA907DBF509, 0xFA360F581FA74,
    0xFA86FDE5B4BF8, 0xFACF160D354DC, 0xFB0FB6718B90F, 0xFB49F8D5374C6, 0xFB7EC2366FE77, 0xFBAECE9A1E50E,
    0xFBDAB9D040BED, 0xFC03060FF6C57, 0xFC2821037A248, 0xFC4A67AE25BD1, 0xFC6A2977AEE31, 0xFC87AA92896A4,
    0xFCA325E4BDE85, 0xFCBCCE902231A, 0xFCD4D12F839C4, 0xFCEB54D8FEC99, 0xFD007BF1DC930, 0xFD1464DD6C4E6,
    0xFD272A8E2F450, 0xFD38E4FF0C91E, 0xFD49A9990B478, 0xFD598B8920F53, 0xFD689C08E99EC, 0xFD76EA9C8E832,
    0xFD848547B08E8, 0xFD9178BAD2C8C, 0xFD9DD07A7ADD2, 0xFDA9970105E8C, 0xFDB4D5DC02E20, 0xFDBF95C5BFCD0,
    0xFDC9DEBB99A7D, 0xFDD3B8118729D, 0xFDDD288342F90, 0xFDE6364369F64, 0xFDEEE708D514E, 0xFDF7401A6B42E,
    0xFDFF46599ED40, 0xFE06FE4BC24F2, 0xFE0E6C225A258, 0xFE1593C28B84C, 0xFE1C78CBC3F99, 0xFE231E9DB1CAA,
    0xFE29885DA1B91, 0xFE2FB8FB54186, 0xFE35B33558D4A, 0xFE3B799D0002A, 0xFE410E99EAD7F, 0xFE46746D47734,
    0xFE4BAD34C095C, 0xFE50BAED29524, 0xFE559F74EBC78, 0xFE5A5C8E41212, 0xFE5EF3E138689, 0xFE6366FD91078,
    0xFE67B75C6D578, 0xFE6BE661E11AA, 0xFE6FF55E5F4F2, 0xFE73E5900A702, 0xFE77B823E9E39, 0xFE7B6E37070A2,
    0xFE7F08D774243, 0xFE8289053F08C, 0xFE85EFB35173A, 0xFE893DC840864, 0xFE8C741F0CEBC, 0xFE8F9387D4EF6,
    0xFE929CC879B1D, 0xFE95909D388EA, 0xFE986FB939AA2, 0xFE9B3AC714866, 0xFE9DF2694B6D5, 0xFEA0973ABE67C,
    0xFEA329CF166A4, 0xFEA5AAB32952C, 0xFEA81A6D5741A, 0xFEAA797DE1CF0, 0xFEACC85F3D920, 0xFEAF07865E63C,
    0xFEB13762FEC13, 0xFEB3585FE2A4A, 0xFEB56AE3162B4, 0xFEB76F4E284FA, 0xFEB965FE62014, 0xFEBB4F4CF9D7C,
    0xFEBD2B8F449D0, 0xFEBEFB16E2E3E, 0xFEC0BE31EBDE8, 0xFEC2752B15A15, 0xFEC42049DAFD3, 0xFEC5BFD29F196,
    0xFEC75406CEEF4, 0xFEC8DD2500CB4, 0xFECA5B6911F12, 0xFECBCF0C427FE, 0xFECD38454FB15, 0xFECE97488C8B3,
    0xFECFEC47F91B7, 0xFED1377358528, 0xFED278F844903, 0xFED3B10242F4C, 0xFED4DFBAD586E, 0xFED605498C3DD,
    0xFED721D414FE8, 0xFED8357E4A982, 0xFED9406A42CC8, 0xFEDA42B85B704, 0xFEDB3C8746AB4, 0xFEDC2DF416652,
    0xFEDD171A46E52, 0xFEDDF813C8AD3, 0xFEDED0F909980, 0xFEDFA1E0FD414, 0xFEE06AE124BC4, 0xFEE12C0D95A06,
    0xFEE1E579006E0, 0xFEE29734B6524, 0xFEE34150AE4BC, 0xFEE3E3DB89B3C, 0xFEE47EE2982F4, 0xFEE51271DB086,
    0xFEE59E9407F41, 0xFEE623528B42E, 0xFEE6A0B5897F1, 0xFEE716C3E077A, 0xFEE7858327B82, 0xFEE7ECF7B06BA,
    0xFEE84D2484AB2, 0xFEE8A60B66343, 0xFEE8F7ACCC851, 0xFEE94207E25DA, 0xFEE9851A829EA, 0xFEE9C0E13485C,
    0xFEE9F557273F4, 0xFEEA22762CCAE, 0xFEEA4836B42AC, 0xFEEA668FC2D71, 0xFEEA7D76ED6FA, 0xFEEA8CE04FA0A,
    0xFEEA94BE8333B, 0xFEEA950296410, 0xFEEA8D9C0075E, 0xFEEA7E7897654, 0xFEEA678481D24, 0xFEEA48AA29E83,
    0xFEEA21D22E4DA, 0xFEE9F2E352024, 0xFEE9BBC26AF2E, 0xFEE97C524F2E4, 0xFEE93473C0A3A, 0xFEE8E40557516,
    0xFEE88AE369C7A, 0xFEE828E7F3DFD, 0xFEE7BDEA7B888, 0xFEE749BFF37FF, 0xFEE6CC3A9BD5E, 0xFEE64529E007E,
    0xFEE5B45A32888, 0xFEE51994E57B6, 0xFEE474A0006CF, 0xFEE3C53E12C50, 0xFEE30B2E02AD8, 0xFEE2462AD8205,
    0xFEE175EB83C5A, 0xFEE09A22A1447, 0xFEDFB27E349CC, 0xFEDEBEA76216C, 0xFEDDBE422047E, 0xFEDCB0ECE39D3,
    0xFEDB964042CF4, 0xFEDA6DCE938C9, 0xFED937237E98D, 0xFED7F1C38A836, 0xFED69D2B9C02B, 0xFED538D06AE00,
    0xFED3C41DEA422, 0xFED23E76A2FD8, 0xFED0A732FE644, 0xFECEFDA07FE34, 0xFECD4100EB7B8, 0xFECB708956EB4,
    0xFEC98B61230C1, 0xFEC790A0DA978, 0xFEC57F50F31FE, 0xFEC356686C962, 0xFEC114CB4B335, 0xFEBEB948E6FD0,
    0xFEBC429A0B692, 0xFEB9AF5EE0CDC, 0xFEB6FE1C98542, 0xFEB42D3AD1F9E, 0xFEB13B00B2D4B, 0xFEAE2591A02E9,
    0xFEAAEAE992257, 0xFEA788D8EE326, 0xFEA3FCFFD73E5, 0xFEA044C8DD9F6, 0xFE9C5D62F563B, 0xFE9843BA947A4,
    0xFE93F471D4728, 0xFE8F6BD76C5D6, 0xFE8AA5DC4E8E6, 0xFE859E07AB1EA, 0xFE804F690A940, 0xFE7AB488233C0,
    0xFE74C751F6AA5, 0xFE6E8102AA202, 0xFE67DA0B6ABD8, 0xFE60C9F38307E, 0xFE5947338F742, 0xFE51470977280,
    0xFE48BD436F458, 0xFE3F9BFFD1E37, 0xFE35D35EEB19C, 0xFE2B5122FE4FE, 0xFE20003995557, 0xFE13C82788314,
    0xFE068C4EE67B0, 0xFDF82B02B71AA, 0xFDE87C57EFEAA, 0xFDD7509C63BFD, 0xFDC46E529BF13, 0xFDAF8F82E0282,
    0xFD985E1B2BA75, 0xFD7E6EF48CF04, 0xFD613ADBD650B, 0xFD40149E2F012, 0xFD1A1A7B4C7AC, 0xFCEE204761F9E,
    0xFCBA8D85E11B2, 0xFC7D26ECD2D22, 0xFC32B2F1E22ED, 0xFBD6581C0B83A, 0xFB606C4005434, 0xFAC40582A2874,
    0xF9E971E014598, 0xF89FA48A41DFC, 0xF66C5F7F0302C, 0xF1A5A4B331C4A,
], dtype=np.uint64)
ZIG_WI = np.array([
    8.683627060801306e-16, 4.779330175727737e-17, 6.354352417405262e-17, 7.454870481247696e-17,
    8.3293668157931e-17, 9.068060405059482e-17, 9.714860076567762e-17, 1.0294750314241019e-16,
    1.0823430288447684e-16, 1.131147019610903e-16, 1.176635945702292e-16, 1.2193617278714363e-16,
    1.2597439914637093e-16, 1.2981099886264032e-16, 1.3347203736824123e-16, 1.3697864842571203e-16,
    1.4034823001242382e-16, 1.4359529452056943e-16, 1.4673208742364422e-16, 1.4976904668391037e-16,
    1.5271515003596198e-16, 1.5557818169460764e-16, 1.5836494009290885e-16, 1.6108140175274928e-16,
    1.6373285203969853e-16, 1.6632399058420835e-16, 1.6885901708676596e-16, 1.713417017655966e-16,
    1.737754436586486e-16, 1.7616331923000996e-16, 1.7850812316976727e-16, 1.8081240285799152e-16,
    1.830784876482675e-16, 1.853085138861802e-16, 1.8750444639373882e-16, 1.896680970077476e-16,
    1.918011406483862e-16, 1.9390512930625104e-16, 1.9598150426628824e-16, 1.9803160683128174e-16,
    2.000566877627333e-16, 2.0205791562071654e-16, 2.0403638415480212e-16, 2.0599311887403706e-16,
    2.079290829041402e-16, 2.0984518222370352e-16, 2.1174227035760342e-16, 2.1362115259449868e-16,
    2.1548258978581458e-16, 2.1732730177564367e-16, 2.191559705042727e-16, 2.2096924282235318e-16,
    2.2276773304789553e-16, 2.2455202529414355e-16, 2.263226755928568e-16, 2.280802138345017e-16,
    2.2982514554424684e-16, 2.3155795351040804e-16, 2.3327909928004356e-16, 2.3498902453470955e-16,
    2.3668815235791604e-16, 2.3837688840454243e-16, 2.4005562198135063e-16, 2.4172472704675025e-16,
    2.433845631371103e-16, 2.4503547622614954e-16, 2.466777995232705e-16, 2.4831185421610877e-16,
    2.4993795016204524e-16, 2.515563865329658e-16, 2.5316745241713583e-16, 2.547714273816944e-16,
    2.563685819989397e-16, 2.579591783392867e-16, 2.5954347043351707e-16, 2.6112170470670194e-16,
    2.6269412038597256e-16, 2.6426094988411895e-16, 2.658224191608307e-16, 2.6737874806323633e-16,
    2.689301506472616e-16, 2.704768354811995e-16, 2.720190059327732e-16, 2.735568604408679e-16,
    2.7509059277301666e-16, 2.7662039226963903e-16, 2.781464440759544e-16, 2.79668929362423e-16,
    2.8118802553450207e-16, 2.827039064324479e-16, 2.842167425218406e-16, 2.8572670107546015e-16,
    2.87233946347098e-16, 2.887386397378482e-16, 2.9024093995538423e-16, 2.9174100316669455e-16,
    2.9323898314471816e-16, 2.947350314092935e-16, 2.9622929736280665e-16, 2.977219284209029e-16,
    2.992130701386013e-16, 3.007028663321331e-16, 3.0219145919680615e-16, 3.036789894211802e-16,
    3.051655962978219e-16, 3.0665141783089545e-16, 3.081365908408297e-16, 3.0962125106629225e-16,
    3.111055332636893e-16, 3.125895713043999e-16, 3.140734982699446e-16, 3.1555744654528006e-16,
    3.1704154791040285e-16, 3.1852593363044065e-16, 3.2001073454440114e-16, 3.214960811527447e-16,
    3.2298210370394156e-16, 3.244689322801698e-16, 3.2595669688230784e-16, 3.2744552751437067e-16,
    3.2893555426753697e-16, 3.3042690740391284e-16, 3.3191971744017523e-16, 3.3341411523123725e-16,
    3.3491023205407785e-16, 3.364081996918765e-16, 3.37908150518595e-16, 3.394102175841489e-16,
    3.409145347003126e-16, 3.424212365275018e-16, 3.4393045866258313e-16, 3.454423377278584e-16,
    3.4695701146137835e-16, 3.4847461880874137e-16, 3.499953000165381e-16, 3.5151919672760744e-16,
    3.53046452078274e-16, 3.5457721079774357e-16, 3.5611161930983884e-16, 3.5764982583726505e-16,
    3.59191980508603e-16, 3.6073823546823514e-16, 3.6228874498941915e-16, 3.6384366559073444e-16,
    3.65403156156137e-16, 3.669673780588701e-16, 3.685364952894914e-16, 3.7011067458828983e-16,
    3.716900855823823e-16, 3.7327490092779435e-16, 3.7486529645684887e-16, 3.7646145133120287e-16,
    3.7806354820089604e-16, 3.7967177336979443e-16, 3.8128631696783774e-16, 3.829073731305243e-16,
    3.8453514018609596e-16, 3.8616982085091493e-16, 3.878116224335587e-16, 3.894607570481926e-16,
    3.9111744183782054e-16, 3.9278189920805415e-16, 3.944543570720877e-16, 3.9613504910761354e-16,
    3.9782421502646826e-16, 3.995221008578565e-16, 4.012289592460629e-16, 4.029450497636328e-16,
    4.04670639241075e-16, 4.0640600211422504e-16, 4.0815142079049387e-16, 4.0990718603532664e-16,
    4.1167359738030257e-16, 4.134509635544236e-16, 4.1523960294026883e-16, 4.170398440568316e-16,
    4.1885202607101123e-16, 4.206764993399015e-16, 4.2251362598620494e-16, 4.243637805093078e-16,
    4.262273504347798e-16, 4.2810473700531167e-16, 4.2999635591638323e-16, 4.3190263810026294e-16,
    4.338240305622791e-16, 4.357609972736849e-16, 4.3771402012585875e-16, 4.3968359995105214e-16,
    4.4167025761542035e-16, 4.4367453519065673e-16, 4.456969972112043e-16, 4.477382320247534e-16,
    4.49798853244555e-16, 4.518795013130059e-16, 4.539808451870034e-16, 4.561035841567422e-16,
    4.582484498109567e-16, 4.604162081631153e-16, 4.626076619547846e-16, 4.648236531543207e-16,
    4.670650656712631e-16, 4.693328283093329e-16, 4.716279179838351e-16, 4.739513632325867e-16,
    4.763042480533137e-16, 4.786877161048723e-16, 4.811029753147417e-16, 4.835513029411525e-16,
    4.860340511450812e-16, 4.885526531353603e-16, 4.91108629959527e-16, 4.937035980240335e-16,
    4.963392774403987e-16, 4.990175013091822e-16, 5.017402260718089e-16, 5.045095430818727e-16,
    5.073276915733542e-16, 5.101970732341562e-16, 5.131202686306784e-16, 5.161000557743228e-16,
    5.191394311757699e-16, 5.222416338000234e-16, 5.254101724177597e-16, 5.286488569504945e-16,
    5.3196183453384e-16, 5.353536311816497e-16, 5.388292001334053e-16, 5.423939782201712e-16,
    5.46053951907478e-16, 5.498157350892814e-16, 5.536866612467876e-16, 5.576748932926576e-16,
    5.617895553555417e-16, 5.660408920082422e-16, 5.704404621291389e-16, 5.750013768919895e-16,
    5.797385945724594e-16, 5.846692893455479e-16, 5.898133176477899e-16, 5.951938149641444e-16,
    6.008379696271908e-16, 6.067780409333449e-16, 6.130527208725282e-16, 6.197089894581626e-16,
    6.268046963301284e-16, 6.344122407127506e-16, 6.426239659548055e-16, 6.515603317344994e-16,
    6.613827885097664e-16, 6.723150462505587e-16, 6.846803417564259e-16, 6.98971833638762e-16,
    7.159994934830664e-16, 7.372424301798799e-16, 7.658936370805573e-16, 8.113849337656484e-16,
])
ZIG_FI = np.array([
    1.0, 0.9771017012676716, 0.9598790918001067, 0.9451989534422996,
    0.9320600759592305, 0.919991505039347, 0.9087264400521309, 0.8980959218983434,
    0.8879846607558334, 0.8783096558089174, 0.869008688036857, 0.8600336211963315,
    0.851346258458678, 0.8429156531122042, 0.8347162929868834, 0.8267268339462214,
    0.8189291916037024, 0.8113078743126563, 0.8038494831709643, 0.796542330422959,
    0.7893761435660246, 0.7823418326548025, 0.7754313049811872, 0.7686373157984863,
    0.7619533468367954, 0.7553735065070961, 0.7488924472191568, 0.742505296340151,
    0.7362075981268627, 0.7299952645614762, 0.7238645334686302, 0.717811932630722,
    0.7118342488782484, 0.7059285013327543, 0.7000919181365116, 0.6943219161261167,
    0.6886160830046718, 0.6829721616449949, 0.6773880362187735, 0.6718617198970821,
    0.6663913439087501, 0.6609751477766631, 0.6556114705796973, 0.6502987431108167,
    0.6450354808208223, 0.6398202774530566, 0.6346517992876236, 0.6295287799248367,
    0.6244500155470265, 0.6194143606058343, 0.6144207238889139, 0.6094680649257734,
    0.6045553906974678, 0.5996817526191253, 0.5948462437679874, 0.590047996332826,
    0.5852861792633715, 0.5805599961007909, 0.5758686829723537, 0.5712115067352532,
    0.5665877632561644, 0.5619967758145243, 0.557437893618766, 0.5529104904258323,
    0.5484139632552658, 0.5439477311900263, 0.5395112342569521, 0.5351039323804576,
    0.5307253044036621, 0.5263748471716845, 0.5220520746723218, 0.5177565172297564,
    0.513487720747327, 0.5092452459957479, 0.5050286679434681, 0.5008375751261487,
    0.4966715690524897, 0.49253026364386854, 0.48841328470545803, 0.4843202694266833,
    0.48025086590904675, 0.47620473271950586, 0.4721815384677302, 0.4681809614056936,
    0.46420268904817436, 0.46024641781284287, 0.45631185267871643, 0.4523987068618485,
    0.44850670150720306, 0.4446355653957394, 0.440785034665804, 0.43695485254798555,
    0.43314476911265226, 0.4293545410294414, 0.42558393133802197, 0.4218327092294959,
    0.4181006498378482, 0.4143875340408911, 0.41069314827018816, 0.40701728432947337,
    0.4033597392211145, 0.3997203149801972, 0.39609881851583245, 0.3924950614593156,
    0.3889088600187887, 0.3853400348400773, 0.38178841087339366, 0.3782538172456192,
    0.37473608713789114, 0.3712350576682395, 0.3677505697790326, 0.36428246812900406,
    0.36083060098964803, 0.3573948201457805, 0.3539749808000768, 0.3505709414814061,
    0.34718256395679364, 0.3438097131468507, 0.34045225704452187, 0.33711006663700605,
    0.33378301583071845, 0.3304709813791636, 0.3271738428136014, 0.3238914823763911,
    0.32062378495690536, 0.3173706380299136, 0.3141319315963372, 0.3109075581262865,
    0.30769741250429206, 0.30450139197665, 0.30131939610080305, 0.2981513266966855,
    0.2949970877999618, 0.2918565856170952, 0.2887297284821829, 0.28561642681550176,
    0.2825165930837076, 0.27943014176163794, 0.2763569892956683, 0.27329705406857707,
    0.27025025636587546, 0.26721651834356147, 0.2641957639972612, 0.2611879191327212,
    0.25819291133761924, 0.25521066995466196, 0.2522411260559422, 0.24928421241852852,
    0.24633986350126383, 0.2434080154227503, 0.2404886059405006, 0.2375815744312381,
    0.23468686187233, 0.23180441082433872, 0.22893416541468034, 0.22607607132238028,
    0.22323007576391748, 0.220396127480152, 0.21757417672433113, 0.21476417525117358,
    0.21196607630703018, 0.20917983462112508, 0.2064054063978808, 0.2036427493103349,
    0.2008918224946566, 0.19815258654577514, 0.1954250035141343, 0.19270903690358918,
    0.19000465167046499, 0.1873118142238003, 0.18463049242679927, 0.18196065559952251,
    0.17930227452284758, 0.17665532144373486, 0.17401977008183855, 0.17139559563750575,
    0.1687827748012113, 0.1661812857644819, 0.16359110823236558, 0.161012223437511,
    0.15844461415592428, 0.1558882647244792, 0.15334316106026286, 0.15080929068184568,
    0.14828664273257455, 0.14577520800599403, 0.14327497897351346, 0.1407859498144447,
    0.13830811644855073, 0.13584147657125376, 0.13338602969166916, 0.13094177717364436,
    0.12850872227999957, 0.1260868702201859, 0.12367622820159657, 0.1212768054847903,
    0.11888861344291006, 0.11651166562561087, 0.11414597782783849, 0.11179156816383809,
    0.1094484571468118, 0.1071166677746838, 0.10479622562248707, 0.10248715894193525,
    0.10018949876881002, 0.09790327903886246, 0.095628536713009, 0.09336531191269101,
    0.09111364806637376, 0.08887359206827589, 0.08664519445055807, 0.08442850957035347,
    0.0822235958132029, 0.08003051581466307, 0.07784933670209612, 0.07568013035892718,
    0.07352297371398132, 0.0713779490588904, 0.06924514439700676, 0.0671246538277885,
    0.0650165779712429, 0.06292102443775814, 0.06083810834953988, 0.05876795292093374,
    0.0567106901062029, 0.05466646132488892, 0.05263541827679219, 0.05061772386094778,
    0.04861355321586854, 0.04662309490193038, 0.044646552251294463, 0.04268414491647446,
    0.04073611065594094, 0.03880270740452615, 0.036884215688567305, 0.034980941461716125,
    0.03309321945857858, 0.0312214171919203, 0.02936593975813336, 0.027527235669603113,
    0.02570580400854891, 0.02390220330579588, 0.02211706270730885, 0.02035109623004451,
    0.018605121275724622, 0.016880083152543142, 0.01517708830793531, 0.013497450601739867,
    0.011842757857907879, 0.010214971439701459, 0.008616582769398726, 0.007050875471373222,
    0.0055224032992509916, 0.0040379725933630236, 0.0026090727461021593, 0.001260285930498598,
])
_ZIG_R = 3.654152885361009
_ZIG_INV_R = 0.2736612373297583
# at most this many stream positions per parallel pass (bounds the scratch memory: about 10 bytes per position)
_RAW_PER_PASS = 1 << 21
# stream positions per range (a range costs one O(log n) jump and one meeting-point search)
_RAW_PER_RANGE = 1 << 16


@intrinsic
def _umulh(typingctx, a, b):
    """High 64 bits of the 128-bit product of two uint64 (one ``mul`` on x86-64)."""
    sig = types.uint64(types.uint64, types.uint64)

    def codegen(context, builder, signature, args):
        wide = ir.IntType(128)
        prod = builder.mul(builder.zext(args[0], wide), builder.zext(args[1], wide))
        return builder.trunc(builder.lshr(prod, ir.Constant(wide, 64)), ir.IntType(64))

    return sig, codegen


if config.DISABLE_JIT:
    def _umulh(a, b):  # noqa: F811
        return np.uint64((int(a) * int(b)) >> 64)


@njit(cache=True)
def _mul128(ahi, alo, bhi, blo):
    """``a * b mod 2^128`` on (high, low) uint64 halves."""
    return _umulh(alo, blo) + ahi * blo + alo * bhi, alo * blo


@njit(cache=True)
def _add128(ahi, alo, bhi, blo):
    """``a + b mod 2^128`` on (high, low) uint64 halves."""
    lo = alo + blo
    carry = _U1 if lo < alo else _U0
    return ahi + bhi + carry, lo


@njit(cache=True)
def _pcg_next(hi, lo, inc_hi, inc_lo):
    """One PCG64 step: the new state and its XSL-RR output ``rotr(hi ^ lo, hi >> 58)``."""
    mhi, mlo = _mul128(hi, lo, _PCG_MULT_HI, _PCG_MULT_LO)
    hi, lo = _add128(mhi, mlo, inc_hi, inc_lo)
    v = hi ^ lo
    rot = hi >> _U58
    return hi, lo, (v >> rot) | (v << ((_U64 - rot) & _U63))


@njit(cache=True)
def pcg_jump(hi, lo, inc_hi, inc_lo, delta):
    """The PCG64 state ``delta >= 0`` steps ahead (Brown's O(log delta) LCG jump, as numpy's ``advance``)."""
    acc_mhi, acc_mlo = _U0, _U1
    acc_phi, acc_plo = _U0, _U0
    cur_mhi, cur_mlo = _PCG_MULT_HI, _PCG_MULT_LO
    cur_phi, cur_plo = inc_hi, inc_lo
    while delta > 0:
        if delta & 1:
            acc_mhi, acc_mlo = _mul128(acc_mhi, acc_mlo, cur_mhi, cur_mlo)
            phi, plo = _mul128(acc_phi, acc_plo, cur_mhi, cur_mlo)
            acc_phi, acc_plo = _add128(phi, plo, cur_phi, cur_plo)
        ahi, alo = _add128(cur_mhi, cur_mlo, _U0, _U1)
        cur_phi, cur_plo = _mul128(ahi, alo, cur_phi, cur_plo)
        cur_mhi, cur_mlo = _mul128(cur_mhi, cur_mlo, cur_mhi, cur_mlo)
        delta >>= 1
    shi, slo = _mul128(acc_mhi, acc_mlo, hi, lo)
    return _add128(shi, slo, acc_phi, acc_plo)


@njit(cache=True)
def _parse_normals(hi, lo, inc_hi, inc_lo, pos, stop, vals, v0, ev_at, ev_extra, e0, ev_cap, ki, wi, fi):
    """Parse the PCG64 stream from position ``pos`` (state (hi, lo) is the state before that draw) as numpy's
    ziggurat, a normal starting at ``pos``, until the next normal would start at or after ``stop``.

    Writes the normals to vals[v0:]; every normal that took more than one draw is logged as an event
    (ev_at: its index in this parse, ev_extra: its draws beyond one; at most ev_cap events, then the parse
    stops early).  Returns (count, next start position, state there (hi, lo), number of events).
    """
    count = 0
    n_ev = 0
    while pos < stop and n_ev < ev_cap:
        start = pos
        while True:
            hi, lo, r = _pcg_next(hi, lo, inc_hi, inc_lo)
            pos += 1
            idx = r & _UFF
            rabs = (r >> _U9) & _MASK52
            x = rabs * wi[idx]
            if (r >> _U8) & _U1:
                x = -x
            if rabs < ki[idx]:
                break
            if idx == 0:  # the tail beyond r, Marsaglia's exponential rejection
                while True:
                    hi, lo, r1 = _pcg_next(hi, lo, inc_hi, inc_lo)
                    hi, lo, r2 = _pcg_next(hi, lo, inc_hi, inc_lo)
                    pos += 2
                    xx = -_ZIG_INV_R * np.log1p(-((r1 >> _U11) * _TWO_M53))
                    yy = -np.log1p(-((r2 >> _U11) * _TWO_M53))
                    if yy + yy > xx * xx:
                        x = -(_ZIG_R + xx) if (rabs >> _U8) & _U1 else _ZIG_R + xx
                        break
                break
            hi, lo, r1 = _pcg_next(hi, lo, inc_hi, inc_lo)
            pos += 1
            if (fi[idx - _U1] - fi[idx]) * ((r1 >> _U11) * _TWO_M53) + fi[idx] < np.exp(-0.5 * x * x):
                break
        vals[v0 + count] = x
        if pos - start > 1:
            ev_at[e0 + n_ev] = count
            ev_extra[e0 + n_ev] = pos - start - 1
            n_ev += 1
        count += 1
    return count, pos, hi, lo, n_ev


@njit(cache=True)
def _start_of(j, base, ev_at, ev_extra, e0, n_ev):
    """Stream position where normal j of a parse that began at ``base`` starts."""
    p = base + j
    for e in range(e0, e0 + n_ev):
        if ev_at[e] >= j:
            break
        p += ev_extra[e]
    return p


def normal_pass_plan(need: int, n_threads: int) -> tuple:
    """(stream positions, ranges, event capacity per range) of one pass of the parallel normal generator."""
    raw = min(need + (need >> 5) + 64, _RAW_PER_PASS)  # 2.2% of stream positions are not a normal's first draw
    n_threads = max(1, n_threads)
    T = n_threads * max(1, raw // (n_threads * _RAW_PER_RANGE))  # ranges: a multiple of the threads
    return raw, T, raw // (16 * T) + 64  # multi-draw normals: 1.5% of normals expected


@njit(cache=True, nogil=True)
def pcg64_parse_ranges(hi, lo, inc_hi, inc_lo, raw, vals, ev_at, ev_extra, counts, ends, end_state, n_evs,
                       next_range, ki, wi, fi):
    """Parse ranges of one pass (positions ``k raw / T .. (k + 1) raw / T`` of the stream that starts at state
    (hi, lo)), each from its first position as if a normal started there; every thread that calls this claims
    ranges from ``next_range`` (atomic).  Writes vals[start:], the range's multi-draw events, its count, its
    end position and the state there (end_state[k] = hi, lo).
    """
    T = counts.size
    ev_cap = ev_at.size // T
    while True:
        k = _fetch_add(next_range, 1)
        if k >= T:
            break
        s = k * raw // T
        e = (k + 1) * raw // T
        shi, slo = pcg_jump(hi, lo, inc_hi, inc_lo, s)
        c, p, h2, l2, ne = _parse_normals(shi, slo, inc_hi, inc_lo, s, e, vals, s, ev_at, ev_extra, k * ev_cap,
                                          ev_cap, ki, wi, fi)
        counts[k] = c
        ends[k] = p
        end_state[k, 0] = h2
        end_state[k, 1] = l2
        n_evs[k] = ne


@njit(cache=True, nogil=True)
def pcg64_stitch(hi, lo, inc_hi, inc_lo, raw, vals, ev_at, ev_extra, counts, ends, end_state, n_evs, n, done,
                 copies, ki, wi, fi):
    """Serial fix-up of one pass: range 0 starts at a true normal; find where each next range meets the true
    parse (re-parse it from the true position if it never does) and plan the copies of the values to
    out[done:n]: copies[k] = (start in vals, start in out, count).  Returns the new ``done`` and the PCG64
    state where the next normal starts.
    """
    T = counts.size
    ev_cap = ev_at.size // T
    true_end = 0
    thi, tlo = hi, lo
    for k in range(T):
        s = k * raw // T
        e0 = k * ev_cap
        j = 0
        base = s
        if k > 0:
            while j < counts[k] and _start_of(j, base, ev_at, ev_extra, e0, n_evs[k]) < true_end:
                j += 1
            if j == counts[k] or _start_of(j, base, ev_at, ev_extra, e0, n_evs[k]) != true_end:
                e = (k + 1) * raw // T
                c, p, h2, l2, ne = _parse_normals(thi, tlo, inc_hi, inc_lo, true_end, max(e, true_end), vals, s,
                                                  ev_at, ev_extra, e0, ev_cap, ki, wi, fi)
                counts[k] = c
                ends[k] = p
                end_state[k, 0] = h2
                end_state[k, 1] = l2
                n_evs[k] = ne
                j = 0
                base = true_end
        avail = counts[k] - j
        take = min(avail, n - done)
        copies[k, 0] = s + j
        copies[k, 1] = done
        copies[k, 2] = take
        done += take
        if take < avail:  # out is full inside this range: the state where its normal j + take starts
            p = _start_of(j + take, base, ev_at, ev_extra, e0, n_evs[k])
            thi, tlo = pcg_jump(hi, lo, inc_hi, inc_lo, p)
            return done, thi, tlo
        true_end = ends[k]
        thi, tlo = end_state[k, 0], end_state[k, 1]
    return done, thi, tlo
