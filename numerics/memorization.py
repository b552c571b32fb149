"""Memorization metrics: exact nearest-two search, the 1/3 rule, the memorization fraction with a
bootstrap interval, and the effective-model-memorization (EMM) estimator.

One implementation serves the whole package (the GMM and timescale validation layers call it).

References
----------
* Gu et al., "On Memorization in Diffusion Models", arXiv:2310.02664 (rule, EMM);
  Yoon et al. 2023; Bonnaire et al., arXiv:2505.17638 MT eq 6 (applied per sample: correction 12 of
  docs/theory/random_features.md §8).
* Buchanan et al., arXiv:2508.17689v1, Def. 2.2 (strict squared form ``d1^2 < c d2^2``, ``c = 1/9``).
* docs/theory/memorization_metrics.md, docs/theory/capacity_crossover.md §6.
"""

from __future__ import annotations

import math
import numbers
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..theory import checks
from . import _nn_kernels
from .threads import blas_threads, numba_parallel, thread_budget, threads_for

__all__ = ["NearestTwo", "nearest_two", "MemorizationResult", "memorization_fraction", "memorized_mask",
           "bootstrap_ci", "clopper_pearson_ci", "find_duplicates", "EMMResult", "estimate_emm"]

DEFAULT_MEMORY_LIMIT = 1 << 30  # 1 GiB of working memory
_COL_BLOCK = 4096
_ROW_BLOCK = 2048
_MEAN_ROWS = 1024  # training rows (evenly spaced) whose mean is the float shift
_MIN_MEMORY = 1 << 20
_F32_MAX_SQNORM = 1e36  # float32 GEMM entries stay far from overflow (max ~3.4e38)
_EXACT_INT = 2 ** 53  # integers float64 represents exactly
_INT64_LIMIT = 2 ** 63
_GEMM_FLOPS_PER_THREAD = 5e7  # below two threads' worth the GEMM runs on one thread
_NORM_ELEMENTS_PER_THREAD = 1 << 20  # and for the squared norms
_SPREAD_RANGE = (2.0 ** -100, 2.0 ** 100)  # float data whose largest spread lies outside are rescaled
_F32_MAX_D = 1 << 20  # float32 GEMM certifies at most this many features (D u <= 1/16, u = 2^-24)


# --------------------------------------------------------------------------------------------------
# input handling
# --------------------------------------------------------------------------------------------------

def _points(name: str, values) -> np.ndarray:
    """A finite 2-D real array (a 1-D array is one point); integer and float dtypes kept; booleans, complex
    numbers, strings and ragged sequences refused naming ``name``."""
    if isinstance(values, (str, bytes, Path)):
        raise TypeError(f"{name} must be an array of shape (n, D); got a path or string "
                        f"({values!r}); load it first, e.g. with memlab.load_points")
    if values is None:
        raise TypeError(f"{name} must be an array of shape (n, D) of real numbers (got None)")
    try:
        arr = np.asarray(values)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{name} must be a rectangular array of shape (n, D) of real numbers (got a ragged or "
                         f"unconvertible sequence {checks.show(values)})") from None
    if arr.dtype == np.bool_:
        raise TypeError(f"{name} must be an array of real numbers, not booleans (got dtype bool); for binary data "
                        f"pass {name}.astype(np.uint8)")
    if arr.dtype.kind == "c":
        raise TypeError(f"{name} must be an array of real numbers, not complex (got dtype {arr.dtype}); pass the "
                        f"real part explicitly if the imaginary part is meant to be dropped")
    if arr.dtype.kind not in "iuf":
        raise TypeError(f"{name} must be an array of real numbers (got {checks.show(values)} of dtype {arr.dtype})")
    if arr.ndim == 1:
        arr = arr.reshape(1, -1)
    if arr.ndim != 2:
        raise ValueError(f"{name} must have shape (n, D): one flattened point per row (got shape {arr.shape}); "
                         f"flatten images first, e.g. x.reshape(len(x), -1)")
    if arr.dtype.kind == "f" and arr.dtype.itemsize > 8:
        arr = arr.astype(np.float64)
    if arr.dtype == np.float16:
        arr = arr.astype(np.float32)
    if arr.size and arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise ValueError(f"{name} must contain only finite values (got {arr[tuple(bad)]!r} at row {bad[0]}, "
                         f"column {bad[1]})")
    return np.ascontiguousarray(arr)


def _pair(samples, train, *, min_train: int = 2):
    X = _points("samples", samples)
    Y = _points("train", train)
    if X.shape[0] < 1:
        raise ValueError("samples is empty: need at least one generated sample (got shape "
                         f"{X.shape})")
    if Y.shape[0] < min_train:
        raise ValueError(f"train must have at least {min_train} training points (the rule needs a nearest and "
                         f"a second-nearest one; got {Y.shape[0]})")
    if X.shape[1] != Y.shape[1]:
        raise ValueError(f"samples and train must have the same feature dimension D (got samples D = "
                         f"{X.shape[1]}, train D = {Y.shape[1]}); images must be flattened the same way")
    if X.shape[1] < 1:
        raise ValueError("samples and train must have feature dimension D >= 1 (got 0)")
    return X, Y


def _rescale(X, Y):
    """``(X / s, Y / s, s)`` with ``s`` a power of two that brings the largest spread of a feature (max - min over
    samples and train) into [1/2, 1) when it lies outside ``_SPREAD_RANGE``; else the inputs and ``s = 1``.

    Distances are scale-equivariant and division by a power of two is exact in binary floating point (barring
    entries that fall below 2^-1022 on the way down, i.e. entries 2^-1022 times smaller than the largest spread,
    which cannot move a squared distance of that spread), so the search on the rescaled data finds the same
    neighbours without overflowing (spreads near 1e154 and beyond: squared distances beyond float64) or
    underflowing (spreads near 1e-160: squared distances subnormal or zero).  Integer data are never rescaled
    (their exact integer arithmetic does not overflow); an integer partner of float data is rescaled with it
    when it is exact in float64 (|value| <= 2^53; larger ones are refused later by :func:`_shift_plan`).
    """
    if (X.dtype.kind in "iu" and Y.dtype.kind in "iu") or X.size == 0 or Y.size == 0:
        return X, Y, 1.0
    with np.errstate(over="ignore", invalid="ignore"):
        hi = np.maximum(X.max(axis=0).astype(np.float64), Y.max(axis=0).astype(np.float64))
        lo = np.minimum(X.min(axis=0).astype(np.float64), Y.min(axis=0).astype(np.float64))
        half = float(np.max(0.5 * hi - 0.5 * lo))  # half the largest spread: no overflow near float64's limit
    if half == 0.0 or _SPREAD_RANGE[0] <= 2.0 * half <= _SPREAD_RANGE[1]:
        return X, Y, 1.0
    for A in (X, Y):
        if A.dtype.kind in "iu" and A.size and max(abs(int(A.max())), abs(int(A.min()))) > _EXACT_INT:
            return X, Y, 1.0  # _shift_plan refuses this mix with its own message
    e = min(math.frexp(half)[1] + 1, 1023)  # 2 half / 2^e in [1/2, 1) (below 4 at float64's limit)
    return (np.ldexp(X.astype(np.float64, copy=False), -e), np.ldexp(Y.astype(np.float64, copy=False), -e),
            math.ldexp(1.0, e))


def _compute_dtype(dtype, X, Y):
    if dtype is None:
        small = all(a.dtype == np.float32 or (a.dtype.kind in "iu" and a.dtype.itemsize <= 2) for a in (X, Y))
        return np.dtype(np.float32 if small else np.float64), True
    try:
        dt = np.dtype(dtype)
    except Exception:  # numpy raises TypeError, ValueError or SyntaxError for strings it cannot parse
        raise TypeError(f"dtype must be 'float32', 'float64' or None (got {dtype!r})") from None
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"dtype must be 'float32', 'float64' or None (got {dtype!r})")
    return dt, False


# --------------------------------------------------------------------------------------------------
# nearest-two search
# --------------------------------------------------------------------------------------------------

def _column_mean(A, rows: int = 1024) -> np.ndarray:
    """Float64 column means, summed in row chunks (no full-size float64 copy of ``A``)."""
    total = np.zeros(A.shape[1])
    with np.errstate(over="ignore", invalid="ignore"):  # an overflowing sum is replaced by the caller
        for r0 in range(0, A.shape[0], rows):
            total += A[r0:r0 + rows].sum(axis=0, dtype=np.float64)
        return total / A.shape[0]


def _as_int64(A):
    """Integer data as the kernels read them: uint64 as an int64 view (wrap-around differences are exact
    when the true difference fits in int64), every other integer dtype as it is."""
    return A.view(np.int64) if A.dtype == np.uint64 else A


@dataclass(frozen=True)
class _Shift:
    """How the data are shifted for the GEMM pass and read by the exact pass.

    ``mode``: 0 float64 recomputation on the values, 1 float64 on the exact int64 differences, 2 exact
    int64 (see ``_nn_kernels.scan_row``).  ``cx``, ``cy``: the shift as subtracted from each GEMM operand
    block (same values; float32 where the subtraction can run in float32), or None when the operand is
    the data themselves (cast if needed); ``c``: the shift as the norm kernel reads it (float64, or int64
    for integer data; zeros when not shifted); ``ex``, ``ey``: the original data as the exact pass reads
    them; ``note`` and ``arithmetic`` describe the choices for the diagnostics.
    """

    mode: int
    cx: np.ndarray | None
    cy: np.ndarray | None
    c: np.ndarray
    ex: np.ndarray
    ey: np.ndarray
    note: str
    arithmetic: str


def _pays(Y, c, c_sq: float) -> bool:
    """Whether the shift by ``c`` pays: the error bound scales with the squared norms, so shift when
    ``||c||^2`` exceeds 8 times the training points' mean squared distance to ``c`` (estimated on at most
    512 evenly spaced rows), i.e. when it shrinks the bound more than 9-fold.  Below that the saved exact
    recomputations do not pay for the shifted copies."""
    rows = Y[::max(1, Y.shape[0] // 512)]
    with np.errstate(over="ignore", invalid="ignore"):
        spread = float(np.mean([np.sum(np.subtract(r, c).astype(np.float64) ** 2) for r in rows]))
    return not (c_sq <= 8.0 * spread)


def _shift_plan(X, Y, dt) -> _Shift:
    """The per-feature shift ``c`` (distances are translation invariant) and the exact arithmetic.

    Float (or mixed) data: ``c`` = the mean of at most ``_MEAN_ROWS`` evenly spaced training rows (any
    ``c`` keeps the result exact; this one centres well), rounded to float32 when the GEMM runs in float32
    so that ``x - c`` of float32 data is one float32 rounding.  Integer data: ``c`` = the integer midpoint of
    each feature's training range, subtracted in exact integer arithmetic.  No shift (``c = 0``) when it
    would not pay (:func:`_pays`).
    """
    if X.dtype.kind in "iu" and Y.dtype.kind in "iu":
        lo_x, hi_x = X.min(axis=0).astype(object), X.max(axis=0).astype(object)
        lo_y, hi_y = Y.min(axis=0).astype(object), Y.max(axis=0).astype(object)
        spread = np.maximum(hi_x, hi_y) - np.minimum(lo_x, lo_y)
        k = int(np.argmax(spread))
        if int(spread[k]) >= _INT64_LIMIT:
            raise ValueError(f"samples and train: integer feature {k} spans {int(spread[k])} (max - min over samples "
                             f"and train), beyond the exact int64 range; every feature's spread must be below 2^63 "
                             f"= {_INT64_LIMIT}")
        ex, ey = _as_int64(X), _as_int64(Y)
        mid = lo_y + (hi_y - lo_y) // 2
        c = np.array([int(v) % (1 << 64) for v in mid], dtype=np.uint64).view(np.int64)
        total = sum(int(v) * int(v) for v in spread)  # bounds every squared distance
        if total < _EXACT_INT:
            mode, arithmetic = 1, "float64 on int64 differences (exact: squared distances below 2^53)"
        elif total < _INT64_LIMIT:
            mode, arithmetic = 2, "int64 (exact)"
        else:
            mode, arithmetic = 1, "float64 on int64 differences"
        wraps = any(A.dtype == np.uint64 and A.size and int(A.max()) >= _INT64_LIMIT for A in (X, Y))
        if wraps or _pays(ey, c, sum(float(v) ** 2 for v in mid)):  # (the int64 views need the shift)
            return _Shift(mode, c, c, c, ex, ey, "integer midpoint of each training feature's range", arithmetic)
        zero = np.zeros(X.shape[1], dtype=np.int64)
        return _Shift(mode, None, None, zero, ex, ey, "none (offset small against the spread)", arithmetic)
    for name, A in (("samples", X), ("train", Y)):
        if A.dtype.kind in "iu" and A.size:
            big = max(abs(int(A.max())), abs(int(A.min())))
            if big > _EXACT_INT:
                other = "train" if name == "samples" else "samples"
                raise ValueError(f"{name} holds integers up to |value| = {big}, beyond 2^53 = {_EXACT_INT}, while "
                                 f"{other} is floating point: float64 cannot represent them exactly; pass both as "
                                 f"integer arrays (exact integer arithmetic) or keep |{name}| <= 2^53")
    c = _column_mean(Y[::max(1, Y.shape[0] // _MEAN_ROWS)])  # any c is exact; a sampled mean centres well
    if not np.all(np.isfinite(c)):  # the sum overflowed (values near the float64 limit): the range's midpoint
        c = 0.5 * Y.min(axis=0).astype(np.float64) + 0.5 * Y.max(axis=0).astype(np.float64)
    with np.errstate(over="ignore"):
        c_sq = float(np.sum(c * c))
    if not _pays(Y, c, c_sq):
        return _Shift(0, None, None, np.zeros(X.shape[1]), X, Y, "none (offset small against the spread)", "float64")
    f32 = dt == np.float32 and bool(np.all(np.abs(c) <= np.finfo(np.float32).max))
    if f32:
        c = c.astype(np.float32).astype(np.float64)  # exactly representable in float32
        c32 = c.astype(np.float32)
    cx = c32 if f32 and X.dtype != np.float64 else c
    cy = c32 if f32 and Y.dtype != np.float64 else c
    return _Shift(0, cx, cy, c, X, Y, "training mean" + (" (float32-rounded)" if f32 else ""), "float64")


def _gamma(D: int, u: float) -> float:
    """Certified relative error constant of the shifted expansion (docs/theory/memorization_metrics.md §2).

    ``|q - fl(e)| <= gamma (||x'|| + ||y'||)^2 + eta`` for ``q`` the expansion on the shifted, cast data and
    ``fl(e)`` the float64 recomputation on the original data, with ``g(n, r) = n r / (1 - n r)``:
    GEMM operands off the exactly shifted values by ``ut = u + v + u v`` each (one float64 rounding of the
    shift, one cast), the dot product ``g(D, u)``, the float64 norms ``g(D + 3, v)``, the assembly of ``q``
    and of the tests against it (at most 12 roundings, each of a quantity below 2 s^2: ``g(24, v)``), the
    recomputation ``g(D + 2, v)``; ``v = 2^-53``.  The factor 1.01 covers the rounding of the computed
    norms' square roots and of ``gamma`` itself.
    """
    v = 2.0 ** -53

    def g(n, r):
        return n * r / (1.0 - n * r)

    ut = u + v + u * v
    cross = 2.0 * ut + ut * ut + g(D, u) * (1.0 + ut) ** 2
    return 1.01 * (cross + g(D + 3, v) + g(24, v) + g(D + 2, v))


@dataclass(frozen=True)
class NearestTwo:
    """Exact nearest and second-nearest training points of each sample (Euclidean, raw data).

    Attributes
    ----------
    d1, d2 : ndarray, shape (S,)
        Distances ``||x - a^(1)||`` and ``||x - a^(2)||`` (float64, from difference vectors).
    index : ndarray of int64, shape (S, 2)
        Training indices of ``a^(1)`` and ``a^(2)``; ties go to the lowest index.
    sq1, sq2 : ndarray, shape (S,)
        The exact squared distances (what the rule compares, without rounding through sqrt) of the data
        divided by ``scale``: ``sq1 = (d1 / scale)^2``.  With ``scale = 1`` (all but extreme magnitudes) they
        are the squared distances themselves.
    dtype : str
        Precision of the GEMM pass (``"float32"`` or ``"float64"``).
    scale : float
        1, or the power of two the data were divided by before the search because their largest spread lies
        outside [2^-100, 2^100] (squared distances would overflow or underflow float64; see
        :func:`nearest_two` Notes).  Exact: the indices are those of the unscaled problem.
    diagnostics : dict
        ``n_exact`` (entries recomputed exactly), ``exact_per_sample``, ``block`` (rows, columns),
        ``memory_limit``, ``working_bytes`` (largest working set), ``gamma`` (certified relative error
        constant), ``shift`` (what was subtracted before the GEMM), ``arithmetic`` (of the exact pass:
        see :func:`nearest_two` Notes), ``threads`` (GEMM + scan workers, each with single-threaded BLAS).
    """

    d1: np.ndarray
    d2: np.ndarray
    index: np.ndarray
    sq1: np.ndarray
    sq2: np.ndarray
    dtype: str
    scale: float = 1.0
    diagnostics: dict = field(default_factory=dict, repr=False)

    def __repr__(self):
        return (f"NearestTwo(S={self.d1.size}, dtype={self.dtype!r}, median d1={np.median(self.d1):.4g}, "
                f"median d2={np.median(self.d2):.4g}, n_exact={self.diagnostics.get('n_exact')})")


def _split(S, N, n, by_rows):
    """Each worker's (rows, columns): ``n`` near-equal contiguous ranges of the samples (``by_rows``) or
    of the training points."""
    cuts = [int(v) for v in np.linspace(0, S if by_rows else N, n + 1)]
    if by_rows:
        return [((cuts[w], cuts[w + 1]), (0, N)) for w in range(n)]
    return [((0, S), (cuts[w], cuts[w + 1])) for w in range(n)]


def _by_rows(S, N, n, copy_y):
    """Split the samples when the training blocks need no copy (each worker then reads them in place,
    and its running threshold sees every training point), or when there are more samples; otherwise
    split the training set (each worker shifts only its own part)."""
    return S >= 64 * n and (not copy_y or S > N)


def _blocks(S, N, D, item, state, memory_limit, n_work=1, copy_x=True, copy_y=True, by_rows=False, fixed=0):
    """Row and column block sizes whose working set fits ``memory_limit`` bytes.

    Working set: per worker its G block (b c item), its shifted (or cast) copy of the current training
    block (c D item, when ``copy_y``), of its samples block (b D item, when ``copy_x`` and the samples are
    not shifted whole) and its running state (``state`` bytes); plus ``fixed`` bytes (norms, bound terms)
    and, when ``copy_x`` and they fit, all S shifted samples (shared, shifted once).  Blocks stay at most
    ``_ROW_BLOCK x _COL_BLOCK``: large enough for full GEMM speed, small enough that the scan reads G
    from cache and the process touches little new memory.  Returns ``(b, c, whole, bytes)``.
    """
    rows, cols = _split(S, N, n_work, by_rows)[0]
    Sw, Nw = rows[1] - rows[0], cols[1] - cols[0]
    budget = memory_limit - n_work * state - fixed
    c = min(Nw, _COL_BLOCK)
    row_copy = D * item if copy_x else 0
    while c >= 1:
        col_cost = n_work * (c * D * item if copy_y else 0)
        per_row = n_work * (c * item + row_copy)
        b = (budget - col_cost) // per_row if budget > col_cost else 0
        if b >= min(Sw, 64) or (c == 1 and b >= 1):
            b = int(min(Sw, b, _ROW_BLOCK))
            g_cost = n_work * b * c * item
            whole = copy_x and S * D * item + g_cost + col_cost <= budget
            x_cost = S * D * item if whole else n_work * b * row_copy
            return b, c, whole, fixed + n_work * state + g_cost + col_cost + x_cost
        c //= 2
    raise ValueError(f"memory_limit = {memory_limit} bytes is too small for S = {S} samples, N = {N} training "
                     f"points in D = {D}: the per-point state alone needs {fixed + n_work * state} bytes; raise "
                     f"memory_limit")


def _two_smallest(vals, idx):
    """Per row, the positions of the two smallest ``(value, index)`` pairs (ties to the lower index)."""
    order = np.argsort(idx, axis=1, kind="stable")
    order = np.take_along_axis(order, np.argsort(np.take_along_axis(vals, order, axis=1), axis=1, kind="stable"),
                               axis=1)
    return order[:, :2]


def _sqnorms(A, c, threads):
    """Float64 squared norms of the rows of ``A - c`` (numba threads for large inputs)."""
    out = np.empty(A.shape[0])
    n = threads_for(A.size, _NORM_ELEMENTS_PER_THREAD, threads)
    if n > 1:
        with numba_parallel(n):
            _nn_kernels.shifted_sqnorms_parallel(A, c, out)
    else:
        _nn_kernels.shifted_sqnorms(A, c, out)
    return out


def _operand(A, exact, shift, r0, r1, out):
    """Rows ``r0:r1`` of a GEMM operand written into ``out`` (shape ``(r1 - r0, D)``): ``exact - shift``
    (integers in exact wrap-around int64, then one rounding) or, without a shift, ``A`` cast."""
    if shift is None:
        np.copyto(out, A[r0:r1], casting="unsafe")
    else:
        np.subtract(exact[r0:r1], shift, out=out, casting="unsafe")
    return out


def nearest_two(samples, train, *, dtype=None, memory_limit: int = DEFAULT_MEMORY_LIMIT,
                threads: int | None = None) -> NearestTwo:
    """Exact nearest and second-nearest training points of every sample by blocked GEMM.

    When the data sit far from the origin compared with their spread, both point sets are first shifted
    by one per-feature vector ``c`` (distances are translation invariant): the training mean for float
    data (from at most 1,024 evenly spaced rows), the integer midpoint of each feature's training range for
    integer data; otherwise ``c = 0``.  Squared distances are expanded as ``||x'||^2 + ||y'||^2 - 2 x'.y'``
    on ``x' = x - c`` with the dot products from BLAS (float32 or float64), block by block so the working
    memory stays under ``memory_limit``.  The expansion cancels when ``d1 << ||x'||`` (memorized samples);
    every entry whose certified lower bound ``q - gamma (||x'|| + ||y'||)^2`` could beat the current
    second-nearest distance is recomputed from its difference vector on the ORIGINAL values.  The result
    is therefore exact, and independent of the shift: equal to a brute-force computation on the original
    data (float64, or exact integers; see Notes).

    Parameters
    ----------
    samples : array, shape (S, D)
        Generated samples, one flattened point per row (a 1-D array is one sample).
    train : array, shape (N, D), N >= 2
        Training set.
    dtype : {None, "float32", "float64"}
        Precision of the GEMM pass.  Default: float32 when both inputs are float32 or small integers
        (uint8 images), else float64.  The exact pass always reads the original values.
    memory_limit : int
        Bound in bytes on the working memory (blocks, shifted copies and per-point state; the inputs
        themselves are not counted).  Default 1 GiB.
    threads : int or None
        Worker threads; None applies the package's policy (:func:`memlab.numerics.threads.thread_budget`:
        ``MEMLAB_NUM_THREADS``, the usual ``*_NUM_THREADS`` variables, CPU affinity and quota, a Dask
        worker's share).  Each worker runs the GEMM and the scan of its share of the samples (or of the
        training points, when the training blocks must be copied and are more) with BLAS pinned to one
        thread, so no thread pool spins idle while another works; the squared norms use a numba parallel
        region.  Small problems run on one
        thread.  The result does not depend on it.

    Returns
    -------
    NearestTwo

    Raises
    ------
    ValueError
        Empty samples, fewer than two training points, different feature dimensions, NaN or inf,
        memory_limit below 1 MiB or too small for the per-sample state, ``dtype='float32'`` with a float32
        overflow risk or more than 2^20 features, distances (not their squares) beyond float64's range,
        integers beyond 2^53 mixed with floating-point data, integer features spanning 2^63 or more, a ragged
        nested sequence.
    TypeError
        Non-numeric or complex input, an unknown dtype, a non-integer ``threads`` or ``memory_limit``.

    Notes
    -----
    Error bound: with ``u`` the GEMM unit roundoff, ``v = 2^-53``, ``g(n, r) = n r / (1 - n r)`` and
    ``ut = u + v + u v`` (one rounding of the shift, one cast),
    ``gamma = 1.01 [2 ut + ut^2 + g(D, u) (1 + ut)^2 + g(D + 3, v) + g(24, v) + g(D + 2, v)]``
    (about ``1.01 (D + 2) u`` in float32) bounds ``|q - fl(e)| / (||x'|| + ||y'||)^2`` between the expansion
    ``q`` on the shifted, cast data and the float64 recomputation ``fl(e)`` on the original data (terms:
    operand casts and dot product, float64 norms, assembly of ``q`` and of the tests, recomputation).  An
    entry is skipped only when ``q - gamma s^2 - eta`` exceeds an exact distance already found, so the
    shift changes which entries are recomputed, never the result.  The shift matters for speed: the bound
    scales with ``||x - c||^2`` instead of ``||x||^2`` (data at 300 + U(0, 1) in D = 3072: every entry
    recomputed without it, a few per sample with it).  It is applied when ``||c||^2`` exceeds 8 times the
    training points' mean squared distance to ``c`` (the bound shrinks more than 9-fold); below that the
    saved recomputations do not pay for the shifted copies (uniform 0-255 pixels: ratio 3, not shifted).

    Exact arithmetic: float data are recomputed in float64 from the original values (8 lanes in a fixed
    order, so the same on every machine).  When both inputs are integers, differences are taken in int64
    (wrap-around, exact because every feature's spread ``max - min`` over samples and train is below 2^63).
    With ``M`` the sum over features of the squared spreads, which bounds every squared distance: below
    2^53 (always for 8- and 16-bit images) float64 arithmetic on the differences is exact; below 2^63
    (e.g. int64 data near 2^60 with a small spread) the squared distances are exact int64 integers,
    compared exactly and reported as float64 (rounded to nearest above 2^53); otherwise the exact
    differences are squared and summed in float64.  Integers beyond 2^53 mixed with floating-point data are
    refused.  ``diagnostics["arithmetic"]`` says which applied.

    Magnitudes: distances are scale-equivariant, so float data whose largest feature spread (max - min over
    samples and train) lies outside [2^-100, 2^100] are divided by a power of two ``scale`` (exact) that brings
    it into [1/2, 1), in float64 copies, before the search: data around 1e154 (squared distances beyond
    float64) and around 1e-160 (squared distances subnormal) get the neighbours of the rescaled problem, bit
    for bit.  ``d1``, ``d2`` are reported in the data's units, ``sq1``, ``sq2`` in units of ``scale^2``.  Only
    distances themselves beyond float64's range (about 1.8e308) are refused.  float32 GEMM certifies at most
    2^20 features (``g(D, u)`` needs ``D u << 1``); beyond, ``dtype=None`` uses float64.

    Cost: ``2 S N D`` multiply-adds in the GEMM, one pass over the G block per block (a few operations per
    entry), ``O(D)`` per recomputed entry (a handful per sample when the data are spread;
    ``diagnostics["exact_per_sample"]``), one pass over the data for the squared norms and, when shifted,
    the shifted copies (one per block).

    References
    ----------
    docs/theory/memorization_metrics.md §2 (shifted GEMM expansion, certified bound, exact recomputation).

    Examples
    --------
    >>> nt = nearest_two([[0.0, 0.1]], [[0.0, 0.0], [5.0, 0.0], [0.0, 1.0]])
    >>> nt.index.tolist(), float(round(nt.d1[0], 12)), float(round(nt.d2[0], 12))
    ([[0, 2]], 0.1, 0.9)
    >>> big = 2 ** 60   # beyond float64's integers: the exact int64 pass still tells 1 from 2
    >>> nearest_two(np.array([[big]]), np.array([[big + 2], [big + 1], [big + 100]])).sq1.tolist()
    [1.0]
    """
    X, Y = _pair(samples, train)
    dt, auto = _compute_dtype(dtype, X, Y)
    if isinstance(memory_limit, (bool, np.bool_)) or not isinstance(memory_limit, numbers.Integral):
        raise TypeError(f"memory_limit must be an integer number of bytes >= {_MIN_MEMORY} (got "
                        f"{checks.show(memory_limit)} of type {type(memory_limit).__name__})")
    memory_limit = int(memory_limit)
    if memory_limit < _MIN_MEMORY:
        raise ValueError(f"memory_limit must be >= {_MIN_MEMORY} bytes (1 MiB; got {memory_limit})")
    thread_budget(threads)  # validates threads before any work
    S, D = X.shape
    N = Y.shape[0]
    if dt == np.float32 and D > _F32_MAX_D:
        if not auto:
            raise ValueError(f"dtype='float32' cannot certify D = {D} features: its rounding bound needs D <= "
                             f"{_F32_MAX_D} (2^20); use dtype='float64' or None")
        dt = np.dtype(np.float64)
    X, Y, scale = _rescale(X, Y)
    if auto and scale != 1.0:
        dt = np.dtype(np.float64)  # the rescaled copies are float64

    plan = _shift_plan(X, Y, dt)
    nx = _sqnorms(plan.ex, plan.c, threads)
    ny = _sqnorms(plan.ey, plan.c, threads)
    if not (np.all(np.isfinite(nx)) and np.all(np.isfinite(ny))):
        raise ValueError("samples and train: squared distances overflow float64 (values up to "
                         f"{max(np.abs(plan.ex).max(), np.abs(plan.ey).max()):.3g}); rescale both by one "
                         "factor (the nearest-two indices and the memorization rule do not change)")
    if dt == np.float32 and max(nx.max(), ny.max()) > _F32_MAX_SQNORM:
        if not auto:
            raise ValueError(f"dtype='float32' would overflow: squared norms of the (shifted) data reach "
                             f"{max(nx.max(), ny.max()):.3g} (> {_F32_MAX_SQNORM:g}); use dtype='float64'")
        dt = np.dtype(np.float64)
        plan = _shift_plan(X, Y, dt)
        nx = _sqnorms(plan.ex, plan.c, threads)
        ny = _sqnorms(plan.ey, plan.c, threads)
    item = dt.itemsize
    exact_int = plan.mode == 2
    state = S * (48 if exact_int else 32)  # per worker: running neighbours
    fixed = S * 16 + N * 32 + D * 24  # norms and their roots, bound terms, shift
    copy_x = not (plan.cx is None and X.dtype == dt)
    copy_y = not (plan.cy is None and Y.dtype == dt)
    n_work = max(1, min(threads_for(2.0 * S * N * D, _GEMM_FLOPS_PER_THREAD, threads), max(S, N)))
    by_rows = _by_rows(S, N, n_work, copy_y)
    try:
        b, c, x_whole, work = _blocks(S, N, D, item, state, memory_limit, n_work, copy_x, copy_y, by_rows, fixed)
    except ValueError:
        if n_work == 1:
            raise
        n_work, by_rows = 1, False  # the budget holds one worker's blocks only
        b, c, x_whole, work = _blocks(S, N, D, item, state, memory_limit, 1, copy_x, copy_y, False, fixed)

    u = 2.0 ** -24 if dt == np.float32 else 2.0 ** -53
    gamma = _gamma(D, u)
    eta = 4.0 * D * float(np.finfo(dt).tiny) * 8  # subnormal products: absolute error floor
    sx = np.sqrt(nx)
    sy = np.sqrt(ny)
    A = (1.0 - gamma) * ny  # per-column terms of the bound (see _nn_kernels.scan_row)
    B = (2.0 * gamma) * sy
    xs = None
    if x_whole:  # the samples are shifted (or cast) once, not once per column block
        xs = np.empty((S, D), dtype=dt)

    def worker(task):
        """GEMM + scan of one worker's rows x columns, single-threaded BLAS and numba (no pool spins)."""
        (r_lo, r_hi), (c_lo, c_hi) = task
        st = {"i1": np.full(S, -1, dtype=np.int64), "i2": np.full(S, -1, dtype=np.int64),
              "q1": np.full(S, np.inf), "q2": np.full(S, np.inf),
              "k1": np.full(S if exact_int else 1, _nn_kernels.INT_INF, dtype=np.int64),
              "k2": np.full(S if exact_int else 1, _nn_kernels.INT_INF, dtype=np.int64), "n": 0}
        gbuf = np.empty(b * c, dtype=dt)  # one G buffer for every block (no second copy while BLAS writes)
        ybuf = np.empty(c * D, dtype=dt) if copy_y else None
        xbuf = np.empty(b * D, dtype=dt) if copy_x and not x_whole else None
        for c0 in range(c_lo, c_hi, c):
            c1 = min(c_hi, c0 + c)
            if copy_y:
                Yb = _operand(Y, plan.ey, plan.cy, c0, c1, ybuf[:(c1 - c0) * D].reshape(-1, D))
            else:
                Yb = Y[c0:c1]
            sy_max = float(sy[c0:c1].max())
            for r0 in range(r_lo, r_hi, b):
                r1 = min(r_hi, r0 + b)
                if not copy_x:
                    Xb = X[r0:r1]
                elif x_whole:
                    Xb = xs[r0:r1]
                else:
                    Xb = _operand(X, plan.ex, plan.cx, r0, r1, xbuf[:(r1 - r0) * D].reshape(-1, D))
                G = gbuf[:(r1 - r0) * (c1 - c0)].reshape(r1 - r0, c1 - c0)
                np.matmul(Xb, Yb.T, out=G)
                st["n"] += _nn_kernels.scan_block(G, plan.ex, plan.ey, r0, c0, nx, ny, sx, A, B, sy_max, gamma,
                                                  eta, plan.mode, st["q1"], st["i1"], st["q2"], st["i2"],
                                                  st["k1"], st["k2"])
        return st

    tasks = _split(S, N, n_work, by_rows)
    with blas_threads(1):
        if n_work == 1:
            if x_whole:
                _operand(X, plan.ex, plan.cx, 0, S, xs)
            states = [worker(tasks[0])]
        else:
            with ThreadPoolExecutor(n_work) as pool:
                if x_whole:
                    cuts = [int(v) for v in np.linspace(0, S, n_work + 1)]
                    list(pool.map(lambda w: _operand(X, plan.ex, plan.cx, cuts[w], cuts[w + 1],
                                                     xs[cuts[w]:cuts[w + 1]]), range(n_work)))
                states = list(pool.map(worker, tasks))
    n_exact = sum(st["n"] for st in states)
    i1, i2 = states[0]["i1"], states[0]["i2"]
    key = "k" if exact_int else "q"
    q1, q2 = states[0][key + "1"], states[0][key + "2"]
    if len(states) > 1:  # each worker found the exact two nearest among its columns (or rows): merge
        vals = np.stack([v for st in states for v in (st[key + "1"], st[key + "2"])], axis=1)
        idx = np.stack([v for st in states for v in (st["i1"], st["i2"])], axis=1)
        idx_key = np.where(idx < 0, np.iinfo(np.int64).max, idx)
        order = _two_smallest(vals, idx_key)
        q1, q2 = np.take_along_axis(vals, order, axis=1).T
        i1, i2 = np.take_along_axis(idx, order, axis=1).T
        q1, q2, i1, i2 = (np.ascontiguousarray(a) for a in (q1, q2, i1, i2))
    if exact_int:
        q1 = q1.astype(np.float64)  # exact integers, rounded to nearest above 2^53
        q2 = q2.astype(np.float64)
    if np.any(i2 < 0) or not np.all(np.isfinite(q2)):  # pragma: no cover - guarded by N >= 2
        raise RuntimeError("nearest_two: internal error, a sample has no second neighbour "
                           f"(S={S}, N={N}, D={D}, dtype={dt})")
    with np.errstate(over="ignore"):
        d1, d2 = np.sqrt(q1) * scale, np.sqrt(q2) * scale  # exact scaling by a power of two
    if not np.all(np.isfinite(d2)):
        raise ValueError(f"samples and train: the distance of sample {int(np.argmin(np.isfinite(d2)))} to its "
                         "second-nearest training point exceeds float64's range (about 1.8e308); divide both by "
                         "one factor (the nearest-two indices and the memorization rule do not change)")
    return NearestTwo(d1=d1, d2=d2, index=np.stack([i1, i2], axis=1), sq1=q1, sq2=q2, dtype=str(dt), scale=scale,
                      diagnostics={"n_exact": int(n_exact), "exact_per_sample": n_exact / S, "block": (b, c),
                                   "memory_limit": memory_limit, "working_bytes": int(work), "gamma": gamma,
                                   "shift": plan.note, "arithmetic": plan.arithmetic, "threads": n_work,
                                   "scale": scale})


# --------------------------------------------------------------------------------------------------
# duplicates, the rule, the bootstrap
# --------------------------------------------------------------------------------------------------

def find_duplicates(train) -> np.ndarray:
    """Indices of training rows that exactly repeat an earlier row (first occurrences are kept).

    Rows are grouped by a float64 hash and compared exactly within a group, so the cost is one pass
    over the data plus a sort.  Float data beyond 2^100 (or all below 2^-100) in magnitude are hashed after an
    exact rescaling by a power of two, so that hashes neither overflow nor collapse into subnormals.
    """
    Y = _points("train", train)
    N, D = Y.shape
    w = np.random.default_rng(12345).standard_normal(D)
    row_hash = np.empty(N)
    H = Y
    if Y.dtype.kind == "f" and Y.size:
        big = float(np.max(np.abs(Y)))
        if big > 2.0 ** 100 or 0.0 < big < 2.0 ** -100:  # equal rows stay equal after an exact rescaling
            H = np.ldexp(Y.astype(np.float64), -math.frexp(big)[1])
    with np.errstate(over="ignore", invalid="ignore"):  # (row_stats' squared norms are not used here)
        _nn_kernels.row_stats(H, w, np.empty(N), row_hash)
    order = np.argsort(row_hash, kind="stable")
    hs = row_hash[order]
    dup = []
    start = 0
    for i in range(1, N + 1):
        if i == N or hs[i] != hs[start]:
            if i - start > 1:
                grp = order[start:i]
                grp = np.sort(grp)
                kept = []
                for j in grp:
                    if any(np.array_equal(Y[j], Y[k]) for k in kept):
                        dup.append(j)
                    else:
                        kept.append(j)
            start = i
    return np.array(sorted(dup), dtype=np.int64)


def _check_k(k) -> float:
    if isinstance(k, bool) or not isinstance(k, numbers.Real):
        raise TypeError(f"k must be a number in the open interval (0, 1) (got {k!r})")
    k = float(k)
    if not (0.0 < k < 1.0):
        raise ValueError(f"k must lie in the open interval (0, 1) (got {k!r}); the papers use k = 1/3")
    return k


def memorized_mask(sq1, sq2, k: float = 1.0 / 3.0) -> np.ndarray:
    """The strict rule ``d1^2 < k^2 d2^2`` on squared distances (no division; docs/theory/memorization_metrics.md §1).

    ``d2 = 0`` (a sample on an exactly duplicated training point) gives ``0 < 0``: not memorized.  ``sq1`` and
    ``sq2`` must be real arrays of one shape with entries >= 0 (``inf`` allowed); NaN, negative, complex or
    non-numeric entries are refused (``ValueError`` / ``TypeError`` naming the argument).
    """
    k = _check_k(k)
    a = checks.real_array("sq1", sq1, finite=False)
    b = checks.real_array("sq2", sq2, finite=False)
    if a.shape != b.shape:
        raise ValueError(f"sq1 and sq2 must have the same shape (got {a.shape} and {b.shape})")
    for name, arr in (("sq1", a), ("sq2", b)):
        if not np.all(arr >= 0):  # also catches NaN
            raise ValueError(f"{name} must hold squared distances >= 0 (got {arr[~(arr >= 0)].reshape(-1)[0]!r})")
    return a < (k * k) * b


def _flags(name: str, values) -> np.ndarray:
    """Per-sample memorized flags as a flat bool array: booleans, or numbers equal to 0 or 1."""
    if values is None or isinstance(values, (str, bytes)):
        raise TypeError(f"{name} must be an array of per-sample flags (True/False or 0/1; got "
                        f"{checks.show(values)} of type {type(values).__name__})")
    try:
        arr = np.asarray(values)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{name} must be a rectangular array of flags (got a ragged sequence "
                         f"{checks.show(values)})") from None
    if arr.dtype.kind in "iuf":
        ok = (arr == 0) | (arr == 1)
        if not np.all(ok):
            raise ValueError(f"{name} must hold flags True/False or 0/1 (got {arr[~ok].reshape(-1)[0]!r})")
        arr = arr == 1
    elif arr.dtype.kind != "b":
        raise TypeError(f"{name} must be an array of per-sample flags (True/False or 0/1; got "
                        f"{checks.show(values)} of dtype {arr.dtype})")
    arr = arr.ravel()
    if arr.size < 1:
        raise ValueError(f"{name} must contain at least one flag (got an empty array)")
    return arr


def _n_boot(value) -> int:
    """``n_boot``: an integer >= 0 whose resamples fit in memory (16 bytes each)."""
    n = checks.positive_int("n_boot", value, minimum=0)
    checks.memory(f"n_boot = {n} bootstrap resamples", 16 * n)
    return n


def _clopper_pearson(x: int, n: int, level: float) -> tuple[float, float]:
    """Clopper-Pearson bounds for ``x`` successes in ``n`` trials: Beta quantiles, closed ends at 0 and n."""
    from scipy.special import betaincinv  # (scipy loads only when an interval is asked for)

    a = 0.5 * (1.0 - level)
    lo = 0.0 if x == 0 else float(betaincinv(x, n - x + 1, a))
    hi = 1.0 if x == n else float(betaincinv(x + 1, n - x, 1.0 - a))
    return lo, hi


def clopper_pearson_ci(memorized, *, level: float = 0.95) -> tuple[float, float]:
    """Exact (Clopper-Pearson) binomial confidence interval of the memorization fraction.

    With ``x`` of ``S`` samples memorized and ``a = (1 - level)/2``: ``low = B^-1(a; x, S - x + 1)``
    (0 when ``x = 0``), ``high = B^-1(1 - a; x + 1, S - x)`` (1 when ``x = S``), ``B^-1`` the Beta quantile.
    It covers the true fraction with probability at least ``level`` for every fraction and every ``S``
    (conservative), and never collapses: at ``x = 0`` it is ``[0, 1 - a^(1/S)]``, at ``x = S``
    ``[a^(1/S), 1]``, where a percentile bootstrap returns ``[0, 0]`` and ``[1, 1]``.

    Parameters
    ----------
    memorized : array of bool (or of 0/1)
        Per-sample flags (e.g. :attr:`MemorizationResult.memorized`), at least one.
    level : float in (0, 1)
        Confidence level (default 0.95).

    Returns
    -------
    (low, high) : tuple of float

    References
    ----------
    Clopper & Pearson, Biometrika 26 (1934) 404; the fraction it bounds: Gu et al., arXiv:2310.02664
    (memorization ratio); docs/theory/memorization_metrics.md §3.

    Examples
    --------
    >>> lo, hi = clopper_pearson_ci(np.zeros(50, dtype=bool))   # none memorized: not [0, 0]
    >>> lo, round(hi, 4), round(1 - 0.025 ** (1 / 50), 4)
    (0.0, 0.0711, 0.0711)
    """
    flags = _flags("memorized", memorized)
    level = checks.probability("level", level)
    return _clopper_pearson(int(flags.sum()), int(flags.size), level)


def bootstrap_ci(memorized, *, n_boot: int = 1000, level: float = 0.95, seed: int = 0):
    """Seeded percentile bootstrap interval of the memorization fraction (BUBM, 1000 resamples, 95%).

    Resampling the S per-sample flags with replacement and averaging is exactly a Binomial(S, f) / S
    draw (f the observed fraction), which is what is drawn: the same distribution at O(n_boot) cost.
    At ``f = 0`` or ``f = 1`` every resample equals ``f`` and the interval collapses to ``[f, f]``: use
    :func:`clopper_pearson_ci` for an interval that keeps its coverage there.

    Returns ``(low, high)``.
    """
    flags = _flags("memorized", memorized)
    n_boot = _n_boot(n_boot)
    if n_boot < 1:
        raise ValueError("n_boot must be an integer >= 1 for a bootstrap interval (got 0)")
    level = checks.probability("level", level)
    seed = checks.seed("seed", seed)
    S = flags.size
    f = flags.mean()
    boots = np.random.default_rng(seed).binomial(S, f, size=n_boot) / S
    a = (1.0 - level) / 2.0
    lo, hi = np.quantile(boots, [a, 1.0 - a])
    return float(lo), float(hi)


@dataclass(frozen=True)
class MemorizationResult:
    """Memorization fraction of generated samples against a training set (the 1/3 rule).

    Attributes
    ----------
    fraction : float
        Fraction of memorized samples, ``f_mem = (1/S) sum_j 1[d1_j < k d2_j]`` (Gu et al.,
        arXiv:2310.02664).
    ci_low, ci_high : float
        Exact binomial (Clopper-Pearson) interval at ``level`` (:func:`clopper_pearson_ci`): the interval
        every memlab report shows.  Coverage >= ``level`` for every fraction, also when none or all samples
        are memorized.
    ci_method : str
        ``"clopper-pearson"``: how ``ci_low``, ``ci_high`` were computed.
    bootstrap_low, bootstrap_high : float or None
        Seeded percentile bootstrap at ``level`` (the papers' interval, arXiv:2505.17638; None when
        ``n_boot = 0``).  It collapses to ``[0, 0]`` or ``[1, 1]`` when none or all samples are memorized.
    memorized : ndarray of bool, shape (S,)
        Per-sample flags.
    d1, d2 : ndarray, shape (S,)
        Distances to the nearest and second-nearest training points.
    nn_index : ndarray of int64, shape (S, 2)
        Their indices in the training set as passed (also with ``dedupe=True``).
    k : float
        Ratio threshold (strict).
    n_samples, n_train : int
        S and N (before deduplication).
    n_duplicates : int
        Training rows that repeat an earlier row.
    level, n_boot, seed : float, int, int
        Confidence level and bootstrap settings.
    diagnostics : dict
        From the nearest-two search (``n_exact``, ``block``, ``working_bytes``, ``scale``, ...), plus
        ``deduped``.
    """

    fraction: float
    ci_low: float
    ci_high: float
    ci_method: str
    bootstrap_low: float | None
    bootstrap_high: float | None
    memorized: np.ndarray
    d1: np.ndarray
    d2: np.ndarray
    nn_index: np.ndarray
    k: float
    n_samples: int
    n_train: int
    n_duplicates: int
    level: float
    n_boot: int
    seed: int
    diagnostics: dict = field(default_factory=dict)

    def __repr__(self):
        return (f"MemorizationResult(fraction={self.fraction:.4g}, {100 * self.level:g}% CI [{self.ci_low:.4g}, "
                f"{self.ci_high:.4g}] ({self.ci_method}), memorized {self.n_memorized} of {self.n_samples} "
                f"samples, N={self.n_train}, k={self.k:.4g}, duplicates={self.n_duplicates})")

    @property
    def n_memorized(self) -> int:
        return int(self.memorized.sum())

    @property
    def ratio(self) -> np.ndarray:
        """``d1 / d2`` per sample (NaN where d2 = 0; the rule itself never divides)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.d1 / self.d2


def memorization_fraction(samples, train, *, k: float = 1.0 / 3.0, n_boot: int = 1000, seed: int = 0,
                          level: float = 0.95, dedupe: bool = False, dtype=None,
                          memory_limit: int = DEFAULT_MEMORY_LIMIT, threads: int | None = None) -> MemorizationResult:
    """Memorization fraction of generated samples with the nearest / second-nearest rule.

    A sample ``x`` is memorized iff ``||x - a^(1)|| < k ||x - a^(2)||`` (strict; tested as
    ``d1^2 < k^2 d2^2`` without dividing), with ``a^(1), a^(2)`` its nearest and second-nearest
    training points in L2 on the raw data (images: the 0-255 scale, no feature extractor).

    Parameters
    ----------
    samples : array, shape (S, D)
        Generated samples (S >= 1), one flattened point per row.
    train : array, shape (N, D)
        Training set (N >= 2).
    k : float in (0, 1)
        Threshold (default 1/3; the squared form uses ``c = k^2 = 1/9``).
    n_boot : int
        Bootstrap resamples for the papers' percentile interval (default 1000; 0 skips it).  The exact
        interval ``ci_low``, ``ci_high`` does not depend on it.
    seed : int
        Seed of the bootstrap (the result is deterministic given it).
    level : float in (0, 1)
        Confidence level of both intervals (default 0.95).
    dedupe : bool
        Drop training rows that repeat an earlier row before the search.  Without it, exact duplicates
        are kept and a sample lying on a duplicated point has ``d1 = d2`` and is **not** memorized
        (as in Gu et al.); a warning says how many duplicates there are.  ``True`` or ``False`` only.
    dtype, memory_limit
        Passed to :func:`nearest_two`.
    threads : int or None
        Threads of the nearest-two search (passed to :func:`nearest_two`; None: the package's thread
        policy, :func:`memlab.numerics.threads.thread_budget`).  The result does not depend on it.

    Returns
    -------
    MemorizationResult
        ``ci_low``, ``ci_high``: the exact Clopper-Pearson interval (``ci_method = "clopper-pearson"``);
        ``bootstrap_low``, ``bootstrap_high``: the seeded percentile bootstrap.

    Raises
    ------
    ValueError, TypeError
        As :func:`nearest_two` for the data; a bad ``k``, ``n_boot``, ``seed``, ``level``; a non-boolean
        ``dedupe`` (``TypeError``).

    References
    ----------
    Gu et al., arXiv:2310.02664 (rule, k = 1/3, the memorization fraction); arXiv:2505.17638 MT eq 6 (per
    sample; 95% bootstrap with 1000 resamples); arXiv:2508.17689v1 Def. 2.2 (strict squared form); Clopper &
    Pearson, Biometrika 26 (1934) 404 (exact interval).  docs/theory/memorization_metrics.md §1-§3.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> train = rng.standard_normal((100, 20))
    >>> near = train[:10] + 1e-3 * rng.standard_normal((10, 20))   # memorized copies
    >>> fresh = rng.standard_normal((10, 20))                       # new draws: not memorized
    >>> res = memorization_fraction(np.vstack([near, fresh]), train)
    >>> res.fraction, bool(res.memorized[:10].all()), bool(res.memorized[10:].any())
    (0.5, True, False)
    >>> res.ci_method, bool(res.ci_low < 0.5 < res.ci_high)
    ('clopper-pearson', True)
    """
    k = _check_k(k)
    n_boot = _n_boot(n_boot)
    seed = checks.seed("seed", seed)
    level = checks.probability("level", level)
    dedupe = checks.boolean("dedupe", dedupe)
    thread_budget(threads)  # validates threads before any work
    X, Y = _pair(samples, train)
    N = Y.shape[0]
    dups = find_duplicates(Y)
    keep = None
    if dups.size and dedupe:
        mask = np.ones(N, dtype=bool)
        mask[dups] = False
        keep = np.flatnonzero(mask)
        if keep.size < 2:
            raise ValueError(f"train has only {keep.size} distinct row(s) after deduplication; need >= 2")
        Y = np.ascontiguousarray(Y[keep])
    elif dups.size:
        warnings.warn(f"train contains {dups.size} exact duplicate row(s): samples on a duplicated point have "
                      f"d1 = d2 and count as not memorized (Gu et al.); pass dedupe=True (CLI --dedupe) "
                      f"to drop them", UserWarning, stacklevel=2)
    nt = nearest_two(X, Y, dtype=dtype, memory_limit=memory_limit, threads=threads)
    idx = nt.index if keep is None else keep[nt.index]
    mem = memorized_mask(nt.sq1, nt.sq2, k)  # (squared distances in units of nt.scale^2: the rule is invariant)
    frac = float(mem.mean())
    lo, hi = _clopper_pearson(int(mem.sum()), int(mem.size), level)
    if n_boot:
        b_lo, b_hi = bootstrap_ci(mem, n_boot=n_boot, level=level, seed=seed)
    else:
        b_lo = b_hi = None
    diag = {kk: v for kk, v in nt.diagnostics.items() if not kk.startswith("_")}
    diag["deduped"] = bool(keep is not None)
    diag["dtype"] = nt.dtype
    return MemorizationResult(fraction=frac, ci_low=lo, ci_high=hi, ci_method="clopper-pearson",
                              bootstrap_low=b_lo, bootstrap_high=b_hi, memorized=mem, d1=nt.d1, d2=nt.d2,
                              nn_index=idx, k=k, n_samples=X.shape[0], n_train=N, n_duplicates=int(dups.size),
                              level=level, n_boot=n_boot, seed=seed, diagnostics=diag)


# --------------------------------------------------------------------------------------------------
# effective model memorization
# --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class EMMResult:
    """Effective model memorization (Gu et al.; docs/theory/memorization_metrics.md §4).

    Attributes
    ----------
    emm : int or None
        Largest evaluated size with ``R >= threshold`` before the first failing size that follows it
        (after refinement, when asked).  None when no size passes ("EMM below the smallest size").
    grid_emm : int or None
        The same on the grid pass alone.
    crossing : float or None
        Size where ``R`` crosses ``threshold``, linearly interpolated between ``emm`` and the next
        (failing) evaluated size.  None when no size passes or all pass.
    grid_crossing : float or None
        The same interpolation between ``grid_emm`` and the next grid size (Gu et al.'s interpolated report).
    status : str
        ``"ok"``, ``"below_smallest"`` or ``"at_least_largest"``.
    non_monotone : bool
        True when some size after a failing one passes again (the crossing after the largest passing
        size is reported).
    sizes, fractions : ndarray
        Every evaluated size (increasing) and its measured ``R``.
    threshold : float
        ``1 - epsilon`` (default 0.9).
    n_evals : int
        Calls of ``measure``.
    message : str
        One line for reports.
    """

    emm: int | None
    grid_emm: int | None
    crossing: float | None
    grid_crossing: float | None
    status: str
    non_monotone: bool
    sizes: np.ndarray
    fractions: np.ndarray
    threshold: float
    n_evals: int
    message: str


def _measure_value(measure, size):
    v = measure(int(size))
    v = getattr(v, "fraction", v)
    try:
        v = float(v)
    except (TypeError, ValueError):
        raise TypeError(f"measure({size}) must return a fraction in [0, 1] or an object with a .fraction "
                        f"(got {v!r})") from None
    if not math.isfinite(v) or not (0.0 <= v <= 1.0):
        raise ValueError(f"measure({size}) returned {v!r}; it must be a memorization fraction in [0, 1]")
    return v


def estimate_emm(measure, sizes, *, threshold: float = 0.9, refine: bool = True,
                 max_refine: int = 20) -> EMMResult:
    """Effective model memorization: the largest training-set size a model memorizes (Gu et al.).

    ``EMM = max{|D| : E R_mem(D) >= 1 - epsilon}`` with ``epsilon = 0.1``.  Grid pass over ``sizes``,
    then (``refine=True``) bisection on integers between the largest passing grid size and the next
    (failing) one, keeping "lower end passes, upper end fails".  ``crossing`` is the linear
    interpolation of ``R`` between the final bracketing sizes.

    Parameters
    ----------
    measure : callable
        ``measure(size) -> fraction`` (or an object with ``.fraction``, e.g. a
        :class:`MemorizationResult`): trains and evaluates a model on a training set of that size.
        Called once per distinct size.
    sizes : sequence of int
        Grid of sizes (>= 1, distinct; sorted internally), e.g. 500, 1000, 2000, 4000.
    threshold : float in (0, 1]
        ``1 - epsilon`` (default 0.9).
    refine : bool
        Bisection between the bracketing grid sizes (default True; ``True`` or ``False`` only).
    max_refine : int
        At most this many refinement calls (bisection stops earlier at adjacent integers).

    Returns
    -------
    EMMResult
        Edge cases (docs/theory/memorization_metrics.md §4): no size passes -> ``status="below_smallest"``, ``emm=None``; all pass ->
        ``"at_least_largest"``, ``emm`` = the largest size, ``crossing=None``; a non-monotone curve is
        flagged and the crossing after the largest passing size is reported.

    References
    ----------
    Gu et al., arXiv:2310.02664, Sec. 3 (EMM); docs/theory/memorization_metrics.md §4.

    Examples
    --------
    >>> r = estimate_emm(lambda n: 1.0 / (1.0 + np.exp((n - 3000) / 300)), [500, 1000, 2000, 4000])
    >>> r.grid_emm, r.emm   # R = 0.9 at n = 3000 - 300 ln 9 = 2340.8
    (2000, 2340)
    """
    if not callable(measure):
        raise TypeError(f"measure must be a callable measure(size) -> fraction (got {type(measure).__name__})")
    threshold = checks.probability("threshold", threshold, open_high=False)
    refine = checks.boolean("refine", refine)
    try:
        grid = [checks.positive_int("sizes", s) for s in np.atleast_1d(np.asarray(sizes, dtype=object))]
    except TypeError:
        raise TypeError(f"sizes must be a sequence of integers >= 1 (got {sizes!r})") from None
    if not grid:
        raise ValueError("sizes must contain at least one training-set size")
    if len(set(grid)) != len(grid):
        raise ValueError(f"sizes must be distinct (got {list(sizes)!r})")
    grid = sorted(grid)
    max_refine = checks.positive_int("max_refine", max_refine, minimum=0)
    vals: dict[int, float] = {}

    def R(n):
        if n not in vals:
            vals[n] = _measure_value(measure, n)
        return vals[n]

    g = [R(n) for n in grid]
    passing = [i for i, v in enumerate(g) if v >= threshold]
    # a failing size below the largest passing one: the curve is not monotone
    non_mono = bool(passing) and any(g[j] < threshold for j in range(passing[-1]))

    def done(emm, grid_emm, crossing, grid_crossing, status, msg):
        s = np.array(sorted(vals))
        return EMMResult(emm=emm, grid_emm=grid_emm, crossing=crossing, grid_crossing=grid_crossing,
                         status=status, non_monotone=non_mono,
                         sizes=s, fractions=np.array([vals[n] for n in s]), threshold=threshold,
                         n_evals=len(vals), message=msg + (" (non-monotone curve: crossing after the largest "
                                                           "passing size)" if non_mono else ""))

    if not passing:
        return done(None, None, None, None, "below_smallest",
                    f"EMM below the smallest size: R({grid[0]}) = {g[0]:.3f} < {threshold:g}")
    i = passing[-1]
    if i == len(grid) - 1:
        return done(grid[-1], grid[-1], None, None, "at_least_largest",
                    f"EMM at least the largest size {grid[-1]}: R = {g[-1]:.3f} >= {threshold:g}")
    lo, hi = grid[i], grid[i + 1]
    grid_emm = lo
    grid_crossing = float(lo + (g[i] - threshold) / (g[i] - g[i + 1]) * (hi - lo))
    if refine:
        for _ in range(max_refine):
            if hi - lo <= 1:
                break
            mid = (lo + hi) // 2
            if R(mid) >= threshold:
                lo = mid
            else:
                hi = mid
    rlo, rhi = vals[lo], vals[hi]
    crossing = lo + (rlo - threshold) / (rlo - rhi) * (hi - lo)
    return done(lo, grid_emm, float(crossing), grid_crossing, "ok",
                f"EMM = {lo} (R = {rlo:.3f}); R crosses {threshold:g} at about {crossing:.1f} "
                f"(R({hi}) = {rhi:.3f})")
