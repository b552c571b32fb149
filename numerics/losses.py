"""Monte Carlo per-time training losses of GMM denoisers (arXiv:2508.17689v1, Eqs. 6-7 and 16).

``L_{N,t}(xbar) = (1/N) sum_i E_Z ||xbar(t, alpha_t x^i + sigma_t Z) - x^i||^2`` with the squared norm
summed over the d coordinates ("x0 units").  Denoisers that are compared see the same (i, Z) draws
(common random numbers), so excess losses are averages of per-draw differences, and the standard
error conditional on the data is ``SE = (1/N) sqrt(sum_i s_i^2 / n_noise)`` (docs/theory/capacity_crossover.md §3).
"""

from __future__ import annotations

import threading
import warnings
from dataclasses import dataclass

import numpy as np

from ..theory import checks, crossover, grid
from . import _kernels
from .gmm import GMMDenoiser, bounded, pmem_subset, sample_gmm
from .threads import blas_threads, threads_for

__all__ = ["LossResult", "ExcessLosses", "per_draw_losses", "training_loss", "gmm_excess_losses",
           "mc_standard_error", "standard_normal_draws"]

UNIT_X0 = "x0 units: squared error on xbar, summed over the d coordinates"
_BLOCK_ENTRIES = 1 << 14  # rows x means per GEMM block: 128 kB per workspace array (L2-resident, no page faults)
_NOISE_CHUNK_BYTES = 64 << 20
_MIN_WORK_PER_THREAD = 4e6  # multiply-adds (about a millisecond): below two threads' worth the call runs serially
_MIN_NORMALS_PER_THREAD = 1 << 18  # standard normal draws (about a millisecond)
_MASK64 = (1 << 64) - 1
#: Largest coordinate magnitude of points and means in a loss: the standard error squares the per-draw squared
#: errors, so (4 d x^2)^2 must stay finite in float64 (d up to 10^6).
_MAX_ABS_LOSS = 1e70


def _sizes(name: str, values, N: int) -> list:
    """A non-empty list of integers in 1..N, with errors naming ``name``."""
    what = f"{name} must be an integer or a 1-D sequence of integers in [1, N = {N}] (got {checks.show(values)})"
    if values is None or isinstance(values, (str, bytes)):
        raise TypeError(what)
    try:
        arr = np.atleast_1d(np.asarray(values, dtype=object))
    except (TypeError, ValueError):
        raise TypeError(what) from None
    if arr.ndim != 1:
        raise ValueError(what)
    items = list(arr)
    if not items:
        raise ValueError(f"{name} must contain at least one value in [1, N = {N}] (got an empty sequence)")
    return [checks.positive_int(name, m, maximum=N) for m in items]


def _centred(points: np.ndarray, means: np.ndarray):
    """``(points - c, means - c)`` with ``c`` the mean of the means when the means sit farther from the origin
    than they spread (else unchanged).  The losses are invariant under a common shift of the clean points and the
    means (``x_t - alpha mu`` and ``xbar - x0`` do not change), and the shift keeps the GEMM expansion of the
    distances from cancelling for data far from the origin (docs/theory/capacity_crossover.md §2)."""
    c = means.mean(axis=0)
    spread2 = float(np.mean(np.sum((means - c) ** 2, axis=1)))
    if float(c @ c) <= spread2:
        return np.ascontiguousarray(points), means
    return np.ascontiguousarray(points - c), np.ascontiguousarray(means - c)


def _block_rows(M: int) -> int:
    """Rows per GEMM block of the loss kernel for M means (16..256)."""
    return max(16, min(256, _BLOCK_ENTRIES // max(1, M)))


def mc_standard_error(values: np.ndarray) -> float:
    """``(1/N) sqrt(sum_i s_i^2 / R)`` for per-draw values of shape (N, R), R >= 2 (docs/theory/capacity_crossover.md §3)."""
    values = checks.real_array("values", values, ndim=2)
    N, R = values.shape
    if N < 1 or R < 2:
        raise ValueError(f"values must have shape (N, R) with N >= 1 and R >= 2 draws (got shape {values.shape})")
    s2 = values.var(axis=1, ddof=1)
    return float(np.sqrt(s2.sum() / R) / N)


def _in_threads(n_threads: int, kernel, *args) -> None:
    """Run ``kernel(*args)`` on ``n_threads`` threads at once, this one included.

    The kernels are ``nogil`` numba functions that claim their work items from an atomic counter in ``args``, so
    a thread that starts late or shares its core with other work simply takes fewer items.  Idle threads block
    (no spinning), which keeps the cost fair on a busy machine.  Call with BLAS pinned to one thread.
    """
    if n_threads <= 1:
        kernel(*args)
        return
    errors = []

    def work():
        try:
            kernel(*args)
        except BaseException as exc:  # re-raised in the calling thread
            errors.append(exc)

    helpers = [threading.Thread(target=work, daemon=True) for _ in range(n_threads - 1)]
    for th in helpers:
        th.start()
    work()
    for th in helpers:
        th.join()
    if errors:
        raise errors[0]


_STREAM_CHECK: list = []


def _stream_matches_numpy() -> bool:
    """Whether the numba parse reproduces this numpy's ``standard_normal`` (checked once per process on
    200,000 draws, tails included).  numpy does not promise the Generator stream across releases: should a
    release change it, memlab falls back to numpy's own (serial) draws instead of drawing different noise."""
    if not _STREAM_CHECK:
        _STREAM_CHECK.append(True)  # the check itself runs the fast path
        ref = np.random.default_rng(20260101).standard_normal(200_000)
        got = _draw_normals(np.random.default_rng(20260101), (200_000,), 2)
        _STREAM_CHECK[0] = bool(np.array_equal(ref, got))
        if not _STREAM_CHECK[0]:
            warnings.warn("numpy's Generator.standard_normal stream differs from memlab's parallel parse in this "
                          f"numpy ({np.__version__}); noise is drawn by numpy itself (serially)", RuntimeWarning,
                          stacklevel=3)
    return _STREAM_CHECK[0]


def _draw_normals(gen: np.random.Generator, shape: tuple, n_threads: int) -> np.ndarray:
    """``gen.standard_normal(shape)`` bit for bit, on ``n_threads`` threads where ``gen`` is PCG64-backed.

    Advances ``gen`` exactly as numpy's call would.  Call with BLAS pinned to one thread (no BLAS here, but
    the threads must not meet a BLAS pool spinning on the same cores).
    """
    bitgen = gen.bit_generator
    n = int(np.prod(shape, dtype=np.int64))
    if type(bitgen) is not np.random.PCG64 or n < 64 or not _stream_matches_numpy():
        return gen.standard_normal(shape)
    state = bitgen.state
    s, inc = state["state"]["state"], state["state"]["inc"]
    hi, lo = np.uint64(s >> 64), np.uint64(s & _MASK64)
    inc_hi, inc_lo = np.uint64(inc >> 64), np.uint64(inc & _MASK64)
    tables = (_kernels.ZIG_KI, _kernels.ZIG_WI, _kernels.ZIG_FI)
    out = np.empty(n)
    vals = None
    done = 0
    while done < n:
        raw, n_ranges, ev_cap = _kernels.normal_pass_plan(n - done, n_threads)
        if vals is None:
            vals = np.empty(raw)  # numpy's allocation (huge pages for large arrays: few page faults)
        ev_at = np.empty(n_ranges * ev_cap, dtype=np.int64)
        ev_extra = np.empty(n_ranges * ev_cap, dtype=np.int64)
        counts = np.zeros(n_ranges, dtype=np.int64)
        ends = np.zeros(n_ranges, dtype=np.int64)
        end_state = np.zeros((n_ranges, 2), dtype=np.uint64)
        n_evs = np.zeros(n_ranges, dtype=np.int64)
        parts = (raw, vals, ev_at, ev_extra, counts, ends, end_state, n_evs)
        _in_threads(min(n_threads, n_ranges), _kernels.pcg64_parse_ranges, hi, lo, inc_hi, inc_lo, *parts,
                    np.zeros(1, dtype=np.int64), *tables)
        copies = np.zeros((n_ranges, 3), dtype=np.int64)
        done, hi, lo = _kernels.pcg64_stitch(hi, lo, inc_hi, inc_lo, *parts, n, done, copies, *tables)
        for src, dst, count in copies.tolist():
            out[dst:dst + count] = vals[src:src + count]
    state["state"]["state"] = (int(hi) << 64) | int(lo)
    bitgen.state = state
    return out.reshape(shape)


def standard_normal_draws(rng, size, *, threads: int | None = None) -> np.ndarray:
    """Standard normal draws identical, bit for bit, to ``rng.standard_normal(size)``, drawn by several threads.

    Parameters
    ----------
    rng : int or numpy.random.Generator
        A seed (>= 0; the draws of ``numpy.random.default_rng(seed)``) or a Generator.  A Generator backed
        by PCG64 (numpy's default) advances exactly as numpy's own call would advance it; other bit
        generators are drawn by numpy itself.
    size : int or tuple of int
        Output shape.
    threads : int or None
        Threads to use (>= 1); None applies memlab's thread policy (:mod:`memlab.numerics.threads`).

    Returns
    -------
    ndarray of float64, shape ``size``

    Notes
    -----
    numpy draws each normal by the ziggurat method from one PCG64 output (99% of draws) or a few more
    (rejections, the tail), so where the k-th normal starts in the PCG64 stream depends on the draws before
    it.  The stream is cut into one range per thread; each thread jumps ahead to its range (O(log n)) and
    parses it as numpy's ``random_standard_normal`` would from there; a serial pass finds where each range
    meets the true parse of the one before (within a draw or two, since the ziggurat accepts 99% of first
    draws; a range that does not meet it is re-parsed) and stitches the values.  The values are therefore
    numpy's, whatever the thread count.  Cost about 4 ns per draw on one thread (numpy: about 10 ns), plus
    a copy.  PCG64: O'Neill (2014), the XSL-RR 128/64 generator numpy's ``PCG64`` implements.

    Examples
    --------
    >>> import numpy as np
    >>> a = standard_normal_draws(3, (4, 5), threads=2)
    >>> bool(np.array_equal(a, np.random.default_rng(3).standard_normal((4, 5))))
    True
    """
    if isinstance(rng, np.random.Generator):
        gen = rng
    else:
        gen = np.random.default_rng(checks.seed("rng", rng))
    if isinstance(size, (str, bytes)) or size is None:
        raise TypeError(f"size must be an integer or a tuple of integers >= 0 (got {checks.show(size)})")
    shape = tuple(checks.positive_int("size", v, minimum=0) for v in (size if isinstance(size, (tuple, list)) else (size,)))
    checks.memory(f"standard_normal_draws(size={shape})", 8.0 * float(np.prod(shape, dtype=np.float64)))
    n_threads = threads_for(int(np.prod(shape, dtype=np.int64)), _MIN_NORMALS_PER_THREAD, threads)
    with blas_threads(1):
        return _draw_normals(gen, shape, n_threads)


def _noise_chunks(N: int, R: int, d: int, rng: np.random.Generator, n_threads: int):
    per_point = R * d * 8
    step = max(1, _NOISE_CHUNK_BYTES // per_point)
    for lo in range(0, N, step):
        hi = min(N, lo + step)
        yield lo, hi, _draw_normals(rng, (hi - lo, R, d), n_threads)


def per_draw_losses(points, t, denoisers, *, n_noise: int = 100, seed: int = 0,
                    prefixes=None, threads: int | None = None) -> list:
    """Squared errors ``||xbar(t, alpha_t x^i + sigma_t z_ir) - x^i||^2`` for shared draws.

    Parameters
    ----------
    points : array, shape (N, d)
        Clean points x^i (training or held-out set).
    t : float
        Diffusion time in (0, 1).
    denoisers : sequence of GMMDenoiser
        Evaluated on the same draws (common random numbers).
    n_noise : int
        Noise draws per point (>= 2).
    seed : int
        Seed of the noise stream.
    prefixes : sequence of sequences of int, optional
        For denoiser j, evaluate the denoisers made of its first m means for every m in
        ``prefixes[j]`` (one pass: the partially memorizing family); default: all means.
    threads : int or None
        Threads to use (>= 1); None applies memlab's thread policy (:mod:`memlab.numerics.threads`: the
        budget, one thread for small work).  The result does not depend on it, bit for bit.

    Returns
    -------
    list of ndarray
        For each denoiser an array of shape (len(prefixes[j]), N, n_noise).

    Notes
    -----
    The noise is ``numpy.random.default_rng(seed).standard_normal((N, n_noise, d))`` (drawn as
    :func:`standard_normal_draws` draws it: in parallel, the same values).  The loss kernel cuts the rows
    (i, r) into blocks; each thread claims the next block and runs its own single-threaded GEMMs (BLAS is
    pinned to one thread meanwhile), so a thread slowed by other work on its core takes fewer blocks.  Cost
    about ``2 N n_noise d sum_j M_j`` multiply-adds; softmax entries more than 60 nats below their row's
    maximum are dropped (together < M e^-60 of the total weight), so rows that concentrate on a few means
    skip their second GEMM.
    """
    t = checks.unit_time("t", t)
    pts = checks.finite_array("points", points, ndim=2)
    if pts.shape[0] < 1 or pts.shape[1] < 1:
        raise ValueError(f"points must have shape (N, d) with N, d >= 1 (got shape {pts.shape}): the loss of an "
                         f"empty point set is undefined")
    bounded("points", pts, _MAX_ABS_LOSS)
    n_noise = checks.positive_int("n_noise", n_noise, minimum=2)
    seed = checks.seed("seed", seed)
    N, d = pts.shape
    if isinstance(denoisers, GMMDenoiser):
        raise TypeError("denoisers must be a sequence of GMMDenoiser instances (got a single GMMDenoiser: wrap it "
                        "in a list)")
    try:
        dens = list(denoisers)
    except TypeError:
        raise TypeError(f"denoisers must be a sequence of GMMDenoiser instances (got {type(denoisers).__name__})") from None
    if not dens:
        raise ValueError("denoisers must contain at least one GMMDenoiser (got an empty sequence)")
    for den in dens:
        if not isinstance(den, GMMDenoiser):
            raise TypeError(f"denoisers must be GMMDenoiser instances (got {type(den).__name__})")
        if den.d != d:
            raise ValueError(f"denoiser dimension {den.d} does not match points dimension d = {d}")
        bounded(f"the means of denoiser {den.name!r}", den.means, _MAX_ABS_LOSS)
        if den.schedule != "gmm":
            raise ValueError(f"denoisers must use the laboratory's 'gmm' schedule (the losses of Eqs. 6-7 noise with "
                             f"alpha_t = sqrt(1 - t^2), sigma_t = t); got {den.name!r} with schedule {den.schedule!r}")
    if prefixes is None:
        prefixes = [[den.M] for den in dens]
    elif isinstance(prefixes, (str, bytes)) or not hasattr(prefixes, "__len__") or len(prefixes) != len(dens):
        raise ValueError(f"prefixes must hold one sequence of sizes per denoiser ({len(dens)}; got "
                         f"{checks.show(prefixes)})")
    prefixes = [_sizes(f"prefixes[{j}]", pre, den.M) for j, (den, pre) in enumerate(zip(dens, prefixes))]
    checks.memory(f"per_draw_losses on N*n_noise = {N}*{n_noise} draws of {len(dens)} denoisers",
                  8.0 * N * n_noise * (sum(len(p) + 1 for p in prefixes) + 2))
    segs = []
    for den, pre in zip(dens, prefixes):
        arr = np.unique(np.asarray(pre, dtype=np.int64))
        if arr[-1] != den.M:
            arr = np.append(arr, den.M)
        segs.append(arr)
    alpha = float(grid.alpha(t))
    rng = np.random.default_rng(seed)
    outs = [np.empty((len(s), N * n_noise)) for s in segs]
    frames = [_centred(pts, den.means) for den in dens]
    work = 2.0 * N * n_noise * d * sum(den.M for den in dens)
    n_threads = threads_for(work, _MIN_WORK_PER_THREAD, threads)
    with blas_threads(1):
        for lo, hi, z in _noise_chunks(N, n_noise, d, rng, n_threads):
            for den, (x0, mu), seg, out in zip(dens, frames, segs, outs):
                buf = np.empty((len(seg), (hi - lo) * n_noise))
                block = _block_rows(den.M)
                n_blocks = -(-(hi - lo) * n_noise // block)
                _in_threads(min(n_threads, n_blocks), _kernels.mc_losses, x0[lo:hi], z, mu, seg, alpha, t,
                            den.sigma2, block, np.zeros(1, dtype=np.int64), buf)
                out[:, lo * n_noise:hi * n_noise] = buf
    result = []
    for seg, out, pre in zip(segs, outs, prefixes):
        keep = np.searchsorted(seg, np.asarray(pre, dtype=np.int64))
        result.append(out[keep].reshape(len(keep), N, n_noise))
    return result


@dataclass(frozen=True)
class LossResult:
    """Monte Carlo estimate of ``L_{N,t}`` (arXiv:2508.17689v1, Eq. 6) in x0 units.

    Attributes
    ----------
    value : float
        Mean squared error over points and draws (summed over coordinates).
    se : float
        Standard error conditional on the points (docs/theory/capacity_crossover.md §3).
    t, psi : float
        Time and SNR ``psi_t``.
    n_points, n_noise, seed : int
    unit : str
    """

    value: float
    se: float
    t: float
    psi: float
    n_points: int
    n_noise: int
    seed: int
    unit: str = UNIT_X0


def training_loss(denoiser: GMMDenoiser, points, t, *, n_noise: int = 100, seed: int = 0,
                  threads: int | None = None) -> LossResult:
    """Monte Carlo per-time loss ``L_{N,t}`` of a denoiser on a point set (Eq. 6, x0 units).

    Parameters
    ----------
    denoiser : GMMDenoiser
    points : array, shape (N, d)
        The training set for the training loss, the held-out set for the test loss.
    t : float
        Time in (0, 1).
    n_noise : int
        Draws per point (>= 2; the paper uses 100).
    seed : int
        Noise seed (same seed = same draws = common random numbers across denoisers).
    threads : int or None
        Threads to use (>= 1; the result does not depend on it); None applies memlab's thread policy
        (:mod:`memlab.numerics.threads`).

    Returns
    -------
    LossResult

    References
    ----------
    arXiv:2508.17689v1, Eqs. 6-7; docs/theory/capacity_crossover.md §3.

    Examples
    --------
    >>> from memlab.numerics.gmm import sample_gmm, memorizing_denoiser
    >>> data = sample_gmm(30, 10, 2, seed=0)
    >>> training_loss(memorizing_denoiser(data.train), data.train, 0.05).value < 1e-8
    True
    """
    if not isinstance(denoiser, GMMDenoiser):
        raise TypeError(f"denoiser must be a GMMDenoiser (got {type(denoiser).__name__})")
    (v,) = per_draw_losses(points, t, [denoiser], n_noise=n_noise, seed=seed, threads=threads)
    v = v[0]
    t = checks.unit_time("t", t)  # validated by per_draw_losses
    return LossResult(value=float(v.mean()), se=mc_standard_error(v), t=t, psi=float(grid.psi(t)),
                      n_points=v.shape[0], n_noise=v.shape[1], seed=seed)


@dataclass(frozen=True)
class ExcessLosses:
    """Excess losses over the memorizing denoiser (arXiv:2508.17689v1, Thms 3.1-3.2, Eqs. 16-19).

    All values in x0 units (squared error summed over the d coordinates), estimated with common
    random numbers; ``*_se`` are standard errors conditional on the data set.

    Attributes
    ----------
    M : ndarray of int
        Numbers of memorized points of the partially memorizing denoisers.
    pmem, pmem_se : ndarray
        ``L_{N,t}(xbar_pmem,M) - L_{N,t}(xbar_mem)`` and its standard error, per M.
    generalizing, generalizing_se : float
        ``L_{N,t}(xbar_*) - L_{N,t}(xbar_mem)`` and its standard error.
    mem_loss, mem_loss_se : float
        ``L_{N,t}(xbar_mem)`` itself (exponentially small at moderate-to-high psi_t).
    theory_generalizing : float
        Thm 3.1 approximation ``d sigma_*^2 / (psi_t sigma_*^2 + 1)``.
    N, d, K, t, psi, sigma2, n_noise, seed, subset, coupon_bound, in_window
        Inputs and validity diagnostics (``in_window``: psi_t >= log^2 d / d).
    unit : str
    """

    M: np.ndarray
    pmem: np.ndarray
    pmem_se: np.ndarray
    generalizing: float
    generalizing_se: float
    mem_loss: float
    mem_loss_se: float
    theory_generalizing: float
    N: int
    d: int
    K: int
    t: float
    psi: float
    sigma2: float
    n_noise: int
    seed: int
    subset: str
    coupon_bound: float
    in_window: bool
    unit: str = UNIT_X0

    def theory_pmem(self, C: float = 2.0) -> np.ndarray:
        """Thm 3.2 approximation ``C (1 - M/N) d sigma_*^2`` at this result's M values."""
        C = checks.positive_float("C", C)
        return crossover.pmem_excess_value(self.M, self.N, C, self.d, self.sigma2)


def gmm_excess_losses(N: int, d: int, K: int, t, Ms, *, sigma2: float = 1.0, n_noise: int = 100,
                      seed: int = 0, subset: str = "first", threads: int | None = None) -> ExcessLosses:
    """Monte Carlo excess losses of the generalizing and partially memorizing denoisers.

    Draws the laboratory data (``sample_gmm(N, d, K, sigma2=sigma2, seed=seed)``), then estimates
    ``L_{N,t}(xbar) - L_{N,t}(xbar_mem)`` for the generalizing denoiser and for ``xbar_pmem,M`` at
    each ``M`` in ``Ms``, all on the same noise draws.

    Parameters
    ----------
    N, d, K : int
        Training-set size, dimension, number of components.
    t : float
        Time in (0, 1); the paper's representative time is ``t_16 = 0.36028``.
    Ms : sequence of int
        Numbers of memorized points, each in 1..N.
    sigma2 : float
        Component variance ``sigma_*^2 > 0``.
    n_noise : int
        Noise draws per training point (>= 2).
    seed : int
        Seed of the data; the noise stream is derived from it.
    subset : {"first", "random"}
        Which points pmem memorizes: the first M (paper) or a seeded random nested subset.
    threads : int or None
        Threads to use (>= 1; the result does not depend on it); None applies memlab's thread policy
        (:mod:`memlab.numerics.threads`).

    Returns
    -------
    ExcessLosses

    Notes
    -----
    Cost: one pass of the GEMM kernel over the N training points as means serves every M (the
    pmem denoisers are prefixes; their softmaxes are merged segment by segment), plus one pass with
    the K true means: about ``2 N n_noise (N + K) d`` multiply-adds.

    References
    ----------
    arXiv:2508.17689v1, Thm 3.1 (Eq. 18), Thm 3.2 (Eq. 19), Eq. 16; docs/theory/capacity_crossover.md §3-§4.

    Examples
    --------
    >>> res = gmm_excess_losses(40, 20, 2, 0.36028, [10, 20, 40], n_noise=10)
    >>> res.pmem.shape, float(res.pmem[-1])
    ((3,), 0.0)
    """
    N = checks.positive_int("N", N)
    d = checks.positive_int("d", d)
    K = checks.positive_int("K", K)
    t = checks.unit_time("t", t)
    n_noise = checks.positive_int("n_noise", n_noise, minimum=2)
    seed = checks.seed("seed", seed)
    subset = checks.choice("subset", subset, ("first", "random"))
    Ms_list = _sizes("Ms", Ms, N)
    # per-draw losses of the len(Ms) + 2 denoisers (the prefixes, the memorizing and the generalizing one)
    checks.memory(f"gmm_excess_losses(N={N}, d={d}, n_noise={n_noise}, {len(Ms_list)} values of Ms): "
                  f"(len(Ms) + 2)*N*n_noise per-draw losses", 8.0 * N * n_noise * (len(Ms_list) + 3))
    data = sample_gmm(N, d, K, sigma2=sigma2, seed=seed)
    order = pmem_subset(N, N, subset=subset, seed=seed if subset == "random" else None)
    mem = GMMDenoiser(data.train[order], 0.0, "memorizing")
    gen = GMMDenoiser(data.means, data.sigma2, "generalizing")
    noise_seed = int(np.random.SeedSequence([seed, 1]).generate_state(1)[0])
    pre = sorted(set(Ms_list) | {N})
    v_mem_all, v_gen = per_draw_losses(data.train, t, [mem, gen], n_noise=n_noise, seed=noise_seed,
                                       prefixes=[pre, [K]], threads=threads)
    pos = {m: j for j, m in enumerate(pre)}
    v_mem = v_mem_all[pos[N]]
    diff_gen = v_gen[0] - v_mem
    pm = np.array([(v_mem_all[pos[m]] - v_mem).mean() for m in Ms_list])
    pm_se = np.array([mc_standard_error(v_mem_all[pos[m]] - v_mem) for m in Ms_list])
    psi_t = float(grid.psi(t))
    return ExcessLosses(
        M=np.array(Ms_list), pmem=pm, pmem_se=pm_se,
        generalizing=float(diff_gen.mean()), generalizing_se=mc_standard_error(diff_gen),
        mem_loss=float(v_mem.mean()), mem_loss_se=mc_standard_error(v_mem),
        theory_generalizing=float(crossover.gen_excess_value(d, data.sigma2, psi_t)),
        N=N, d=d, K=K, t=t, psi=psi_t, sigma2=data.sigma2, n_noise=n_noise, seed=seed, subset=subset,
        coupon_bound=grid.coupon_collector_bound(d, K), in_window=psi_t >= grid.validity_psi_min(d),
    )
