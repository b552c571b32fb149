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
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..theory import checks
from . import _nn_kernels

__all__ = ["NearestTwo", "nearest_two", "MemorizationResult", "memorization_fraction", "memorized_mask",
           "bootstrap_ci", "find_duplicates", "EMMResult", "estimate_emm"]

DEFAULT_MEMORY_LIMIT = 1 << 30  # 1 GiB of working memory
_COL_BLOCK = 8192
_MIN_MEMORY = 1 << 20
_F32_MAX_SQNORM = 1e36  # float32 GEMM entries stay far from overflow (max ~3.4e38)


# --------------------------------------------------------------------------------------------------
# input handling
# --------------------------------------------------------------------------------------------------

def _points(name: str, values) -> np.ndarray:
    """A finite 2-D real array (a 1-D array is one point); integer and float dtypes kept."""
    if isinstance(values, (str, bytes, Path)):
        raise TypeError(f"{name} must be an array of shape (n, D); got a path or string "
                        f"({values!r}); load it first, e.g. with memlab.load_points")
    arr = np.asarray(values)
    if arr.dtype == np.bool_:
        arr = arr.astype(np.uint8)
    if arr.dtype.kind not in "iuf":
        raise TypeError(f"{name} must be an array of real numbers (got dtype {arr.dtype})")
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


def _compute_dtype(dtype, X, Y):
    if dtype is None:
        small = all(a.dtype == np.float32 or (a.dtype.kind in "iu" and a.dtype.itemsize <= 2) for a in (X, Y))
        return np.dtype(np.float32 if small else np.float64), True
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype must be 'float32', 'float64' or None (got {dtype!r})") from None
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"dtype must be 'float32', 'float64' or None (got {dtype!r})")
    return dt, False


def _exact_view(A, dt):
    """(GEMM operand, exact operand).  The exact operand holds the true values (the kernel reads them
    as float64); the GEMM operand is a cast when needed (made block by block by the caller)."""
    if A.dtype == dt:
        return A, A
    if A.dtype.kind in "iu":
        lim = 1 << (24 if dt == np.float32 else 53)
        if A.size and int(np.abs(A).max()) > lim:
            # the cast is not exact: keep the integers as float64 for the exact pass
            return None, A.astype(np.float64)
        return None, A
    return None, A  # float64 data, float32 GEMM: cast per block, exact pass on the float64 values


# --------------------------------------------------------------------------------------------------
# nearest-two search
# --------------------------------------------------------------------------------------------------

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
        The exact squared distances (what the rule compares, without rounding through sqrt).
    dtype : str
        Precision of the GEMM pass (``"float32"`` or ``"float64"``).
    diagnostics : dict
        ``n_exact`` (entries recomputed exactly), ``block`` (rows, columns), ``memory_limit``,
        ``working_bytes`` (largest working set), ``gamma`` (certified relative error constant).
    """

    d1: np.ndarray
    d2: np.ndarray
    index: np.ndarray
    sq1: np.ndarray
    sq2: np.ndarray
    dtype: str
    diagnostics: dict = field(default_factory=dict, repr=False)

    def __repr__(self):
        return (f"NearestTwo(S={self.d1.size}, dtype={self.dtype!r}, median d1={np.median(self.d1):.4g}, "
                f"median d2={np.median(self.d2):.4g}, n_exact={self.diagnostics.get('n_exact')})")


def _blocks(S, N, D, item, cast_rows, cast_cols, memory_limit):
    """Row and column block sizes whose working set fits ``memory_limit`` bytes.

    Working set: the G block (b c item), cast copies of the current blocks (b D item, c D item when the
    inputs need a cast) and the per-sample state (S * 48 bytes: q1, q2, i1, i2, norms).
    """
    state = S * 48 + N * 24
    budget = memory_limit - state
    c = min(N, _COL_BLOCK)
    while c >= 1:
        col_cost = c * D * item if cast_cols else 0
        per_row = c * item + (D * item if cast_rows else 0)
        b = (budget - col_cost) // per_row if budget > col_cost else 0
        if b >= min(S, 64) or (c == 1 and b >= 1):
            b = int(min(S, b))
            work = state + b * c * item + col_cost + (b * D * item if cast_rows else 0)
            return b, c, work
        c //= 2
    raise ValueError(f"memory_limit = {memory_limit} bytes is too small for S = {S} samples, N = {N} training "
                     f"points in D = {D}: the per-sample state alone needs {state} bytes; raise memory_limit")


def nearest_two(samples, train, *, dtype=None, memory_limit: int = DEFAULT_MEMORY_LIMIT) -> NearestTwo:
    """Exact nearest and second-nearest training points of every sample by blocked GEMM.

    Squared distances are expanded as ``||x||^2 + ||y||^2 - 2 x.y`` with the dot products from BLAS
    (float32 or float64), block by block so the working memory stays under ``memory_limit``.  The
    expansion cancels when ``d1 << ||x||`` (memorized samples); every entry whose certified lower bound
    ``q - gamma (||x|| + ||y||)^2`` could beat the current second-nearest distance is recomputed from
    its difference vector in float64 (``gamma = 1.01 (D + 8) u / (1 - (D + 8) u)``, ``u`` the GEMM unit
    roundoff: the worst-case bound of a length-D dot product plus the input cast).  The result is
    therefore exact: equal to a brute-force float64 computation.

    Parameters
    ----------
    samples : array, shape (S, D)
        Generated samples, one flattened point per row (a 1-D array is one sample).
    train : array, shape (N, D), N >= 2
        Training set.
    dtype : {None, "float32", "float64"}
        Precision of the GEMM pass.  Default: float32 when both inputs are float32 or small integers
        (uint8 images), else float64.  The exact pass is always float64 on the original values.
    memory_limit : int
        Bound in bytes on the working memory (blocks, casts and per-sample state; the inputs themselves
        are not counted).  Default 1 GiB.

    Returns
    -------
    NearestTwo

    Raises
    ------
    ValueError
        Empty samples, fewer than two training points, different feature dimensions, NaN or inf,
        memory_limit below 1 MiB or too small for the per-sample state, float32 overflow risk.
    TypeError
        Non-numeric input or an unknown dtype.

    References
    ----------
    docs/theory/memorization_metrics.md §2 (GEMM expansion, exact recomputation of the top candidates).

    Examples
    --------
    >>> nt = nearest_two([[0.0, 0.1]], [[0.0, 0.0], [5.0, 0.0], [0.0, 1.0]])
    >>> nt.index.tolist(), float(round(nt.d1[0], 12)), float(round(nt.d2[0], 12))
    ([[0, 2]], 0.1, 0.9)
    """
    X, Y = _pair(samples, train)
    dt, auto = _compute_dtype(dtype, X, Y)
    if isinstance(memory_limit, bool) or not isinstance(memory_limit, numbers.Integral):
        raise TypeError(f"memory_limit must be an integer number of bytes >= {_MIN_MEMORY} (got {memory_limit!r})")
    memory_limit = int(memory_limit)
    if memory_limit < _MIN_MEMORY:
        raise ValueError(f"memory_limit must be >= {_MIN_MEMORY} bytes (1 MiB; got {memory_limit})")
    S, D = X.shape
    N = Y.shape[0]

    w = np.random.default_rng(12345).standard_normal(D)
    nx = np.empty(S)
    ny = np.empty(N)
    hx = np.empty(S)
    hy = np.empty(N)
    _nn_kernels.row_stats(X, w, nx, hx)
    _nn_kernels.row_stats(Y, w, ny, hy)
    if dt == np.float32 and max(nx.max(), ny.max()) > _F32_MAX_SQNORM:
        if not auto:
            raise ValueError(f"dtype='float32' would overflow: squared norms reach {max(nx.max(), ny.max()):.3g} "
                             f"(> {_F32_MAX_SQNORM:g}); use dtype='float64'")
        dt = np.dtype(np.float64)
    gx, ex = _exact_view(X, dt)
    gy, ey = _exact_view(Y, dt)
    item = dt.itemsize
    b, c, work = _blocks(S, N, D, item, gx is None, gy is None, memory_limit)

    u = 2.0 ** -24 if dt == np.float32 else 2.0 ** -53
    m = D + 8
    gamma = 1.01 * m * u / (1.0 - m * u)
    eta = 4.0 * D * float(np.finfo(dt).tiny) * 8  # subnormal products: absolute error floor
    sx = np.sqrt(nx)
    sy = np.sqrt(ny)
    q1 = np.full(S, np.inf)
    q2 = np.full(S, np.inf)
    i1 = np.full(S, -1, dtype=np.int64)
    i2 = np.full(S, -1, dtype=np.int64)
    n_exact = 0
    gbuf = np.empty(b * c, dtype=dt)  # one G buffer for every block (no second copy while BLAS writes)
    for c0 in range(0, N, c):
        c1 = min(N, c0 + c)
        Yb = gy[c0:c1] if gy is not None else Y[c0:c1].astype(dt)
        YbT = Yb.T
        for r0 in range(0, S, b):
            r1 = min(S, r0 + b)
            Xb = gx[r0:r1] if gx is not None else X[r0:r1].astype(dt)
            G = gbuf[:(r1 - r0) * (c1 - c0)].reshape(r1 - r0, c1 - c0)
            np.matmul(Xb, YbT, out=G)
            n_exact += _nn_kernels.scan_block(G, ex, ey, r0, c0, nx, ny, sx, sy, gamma, eta, q1, i1, q2, i2)
    if np.any(i2 < 0) or not np.all(np.isfinite(q2)):  # pragma: no cover - guarded by N >= 2
        raise RuntimeError("nearest_two: internal error, a sample has no second neighbour "
                           f"(S={S}, N={N}, D={D}, dtype={dt})")
    return NearestTwo(d1=np.sqrt(q1), d2=np.sqrt(q2), index=np.stack([i1, i2], axis=1), sq1=q1, sq2=q2,
                      dtype=str(dt), diagnostics={"n_exact": int(n_exact), "exact_per_sample": n_exact / S,
                                                  "block": (b, c), "memory_limit": memory_limit,
                                                  "working_bytes": int(work), "gamma": gamma})


# --------------------------------------------------------------------------------------------------
# duplicates, the rule, the bootstrap
# --------------------------------------------------------------------------------------------------

def find_duplicates(train) -> np.ndarray:
    """Indices of training rows that exactly repeat an earlier row (first occurrences are kept).

    Rows are grouped by a float64 hash and compared exactly within a group, so the cost is one pass
    over the data plus a sort.
    """
    Y = _points("train", train)
    N, D = Y.shape
    w = np.random.default_rng(12345).standard_normal(D)
    row_hash = np.empty(N)
    _nn_kernels.row_stats(Y, w, np.empty(N), row_hash)
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

    ``d2 = 0`` (a sample on an exactly duplicated training point) gives ``0 < 0``: not memorized; NaN
    compares false: not memorized (docs/theory/memorization_metrics.md §1).
    """
    k = _check_k(k)
    sq1 = np.asarray(sq1, dtype=np.float64)
    sq2 = np.asarray(sq2, dtype=np.float64)
    return sq1 < (k * k) * sq2


def bootstrap_ci(memorized, *, n_boot: int = 1000, level: float = 0.95, seed: int = 0):
    """Seeded percentile bootstrap interval of the memorization fraction (BUBM, 1000 resamples, 95%).

    Resampling the S per-sample flags with replacement and averaging is exactly a Binomial(S, f) / S
    draw (f the observed fraction), which is what is drawn: the same distribution at O(n_boot) cost.

    Returns ``(low, high)``.
    """
    flags = np.asarray(memorized, dtype=bool).ravel()
    if flags.size < 1:
        raise ValueError("memorized must contain at least one flag")
    n_boot = checks.positive_int("n_boot", n_boot)
    level = float(level)
    if not (0.0 < level < 1.0):
        raise ValueError(f"level must lie in the open interval (0, 1) (got {level!r})")
    seed = checks.positive_int("seed", seed, minimum=0)
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
        Fraction of memorized samples, ``f_mem = (1/S) sum_j 1[d1_j < k d2_j]``.
    ci_low, ci_high : float or None
        Seeded percentile-bootstrap interval at ``level`` (None when ``n_boot = 0``).
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
        Bootstrap settings.
    diagnostics : dict
        From the nearest-two search (``n_exact``, ``block``, ``working_bytes``, ...), plus ``deduped``.
    """

    fraction: float
    ci_low: float | None
    ci_high: float | None
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
        ci = "" if self.ci_low is None else f", {100 * self.level:g}% CI [{self.ci_low:.4g}, {self.ci_high:.4g}]"
        return (f"MemorizationResult(fraction={self.fraction:.4g}{ci}, memorized {self.n_memorized} of "
                f"{self.n_samples} samples, N={self.n_train}, k={self.k:.4g}, duplicates={self.n_duplicates})")

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
                          memory_limit: int = DEFAULT_MEMORY_LIMIT) -> MemorizationResult:
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
        Bootstrap resamples for the interval (default 1000; 0 skips the interval).
    seed : int
        Seed of the bootstrap (the result is deterministic given it).
    level : float in (0, 1)
        Confidence level of the percentile interval (default 0.95).
    dedupe : bool
        Drop training rows that repeat an earlier row before the search.  Without it, exact duplicates
        are kept and a sample lying on a duplicated point has ``d1 = d2`` and is **not** memorized
        (as in Gu et al.); a warning says how many duplicates there are.
    dtype, memory_limit
        Passed to :func:`nearest_two`.

    Returns
    -------
    MemorizationResult

    References
    ----------
    Gu et al., arXiv:2310.02664 (rule, k = 1/3); arXiv:2505.17638 MT eq 6 (per sample; 95% bootstrap
    with 1000 resamples); arXiv:2508.17689v1 Def. 2.2 (strict squared form).  docs/theory/memorization_metrics.md §1-§3.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> train = rng.standard_normal((100, 20))
    >>> near = train[:10] + 1e-3 * rng.standard_normal((10, 20))   # memorized copies
    >>> fresh = rng.standard_normal((10, 20))                       # new draws: not memorized
    >>> res = memorization_fraction(np.vstack([near, fresh]), train)
    >>> res.fraction, bool(res.memorized[:10].all()), bool(res.memorized[10:].any())
    (0.5, True, False)
    """
    k = _check_k(k)
    if isinstance(n_boot, bool) or not isinstance(n_boot, numbers.Integral) or n_boot < 0:
        raise ValueError(f"n_boot must be an integer >= 0 (0: no interval; got {n_boot!r})")
    seed = checks.positive_int("seed", seed, minimum=0)
    level = float(level)
    if not (0.0 < level < 1.0):
        raise ValueError(f"level must lie in the open interval (0, 1) (got {level!r})")
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
    nt = nearest_two(X, Y, dtype=dtype, memory_limit=memory_limit)
    idx = nt.index if keep is None else keep[nt.index]
    mem = memorized_mask(nt.sq1, nt.sq2, k)
    frac = float(mem.mean())
    if n_boot:
        lo, hi = bootstrap_ci(mem, n_boot=int(n_boot), level=level, seed=seed)
    else:
        lo = hi = None
    diag = {kk: v for kk, v in nt.diagnostics.items() if not kk.startswith("_")}
    diag["deduped"] = bool(keep is not None)
    diag["dtype"] = nt.dtype
    return MemorizationResult(fraction=frac, ci_low=lo, ci_high=hi, memorized=mem, d1=nt.d1, d2=nt.d2,
                              nn_index=idx, k=k, n_samples=X.shape[0], n_train=N, n_duplicates=int(dups.size),
                              level=level, n_boot=int(n_boot), seed=seed, diagnostics=diag)


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
        Bisection between the bracketing grid sizes (default True).
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
    if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real) or not (0.0 < threshold <= 1.0):
        raise ValueError(f"threshold must lie in (0, 1] (got {threshold!r}); Gu et al. use 0.9")
    threshold = float(threshold)
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
