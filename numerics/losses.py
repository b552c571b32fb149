"""Monte Carlo per-time training losses of GMM denoisers (arXiv:2508.17689v1, Eqs. 6-7 and 16).

``L_{N,t}(xbar) = (1/N) sum_i E_Z ||xbar(t, alpha_t x^i + sigma_t Z) - x^i||^2`` with the squared norm
summed over the d coordinates ("x0 units").  Denoisers that are compared see the same (i, Z) draws
(common random numbers), so excess losses are averages of per-draw differences, and the standard
error conditional on the data is ``SE = (1/N) sqrt(sum_i s_i^2 / n_noise)`` (docs/theory/capacity_crossover.md §3).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..theory import checks, crossover, grid
from . import _kernels
from .gmm import GMMDenoiser, pmem_subset, sample_gmm

__all__ = ["LossResult", "ExcessLosses", "per_draw_losses", "training_loss", "gmm_excess_losses",
           "mc_standard_error"]

UNIT_X0 = "x0 units: squared error on xbar, summed over the d coordinates"
_BLOCK = 256            # rows per GEMM block in the kernel (fits in L2 with M <= a few hundred)
_NOISE_CHUNK_BYTES = 64 << 20


def mc_standard_error(values: np.ndarray) -> float:
    """``(1/N) sqrt(sum_i s_i^2 / R)`` for per-draw values of shape (N, R), R >= 2 (docs/theory/capacity_crossover.md §3)."""
    N, R = values.shape
    s2 = values.var(axis=1, ddof=1)
    return float(np.sqrt(s2.sum() / R) / N)


def _noise_chunks(N: int, R: int, d: int, rng: np.random.Generator):
    per_point = R * d * 8
    step = max(1, _NOISE_CHUNK_BYTES // per_point)
    for lo in range(0, N, step):
        hi = min(N, lo + step)
        yield lo, hi, rng.standard_normal((hi - lo, R, d))


def per_draw_losses(points, t, denoisers, *, n_noise: int = 100, seed: int = 0,
                    prefixes=None) -> np.ndarray:
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

    Returns
    -------
    list of ndarray
        For each denoiser an array of shape (len(prefixes[j]), N, n_noise).
    """
    t = checks.unit_time("t", t)
    pts = checks.finite_array("points", points, ndim=2)
    n_noise = checks.positive_int("n_noise", n_noise, minimum=2)
    N, d = pts.shape
    dens = list(denoisers)
    for den in dens:
        if not isinstance(den, GMMDenoiser):
            raise TypeError(f"denoisers must be GMMDenoiser instances (got {type(den).__name__})")
        if den.d != d:
            raise ValueError(f"denoiser dimension {den.d} does not match points dimension d = {d}")
        if den.schedule != "gmm":
            raise ValueError(f"denoisers must use the laboratory's 'gmm' schedule (the losses of Eqs. 6-7 noise with "
                             f"alpha_t = sqrt(1 - t^2), sigma_t = t); got {den.name!r} with schedule {den.schedule!r}")
    if prefixes is None:
        prefixes = [[den.M] for den in dens]
    segs = []
    for den, pre in zip(dens, prefixes):
        arr = np.unique(np.asarray(pre, dtype=np.int64))
        if arr.size == 0 or arr[0] < 1 or arr[-1] > den.M:
            raise ValueError(f"prefix sizes must lie in 1..{den.M} for denoiser {den.name!r}")
        if arr[-1] != den.M:
            arr = np.append(arr, den.M)
        segs.append(arr)
    alpha = float(grid.alpha(t))
    rng = np.random.default_rng(checks.positive_int("seed", seed, minimum=0))
    outs = [np.empty((len(s), N * n_noise)) for s in segs]
    x0 = np.ascontiguousarray(pts)
    for lo, hi, z in _noise_chunks(N, n_noise, d, rng):
        for den, seg, out in zip(dens, segs, outs):
            buf = np.empty((len(seg), (hi - lo) * n_noise))
            _kernels.mc_losses(x0[lo:hi], z, den.means, seg, alpha, t, den.sigma2, _BLOCK, buf)
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


def training_loss(denoiser: GMMDenoiser, points, t, *, n_noise: int = 100, seed: int = 0) -> LossResult:
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
    (v,) = per_draw_losses(points, t, [denoiser], n_noise=n_noise, seed=seed)
    v = v[0]
    t = float(t)  # validated by per_draw_losses
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
                      seed: int = 0, subset: str = "first") -> ExcessLosses:
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
    if isinstance(Ms, (str, bytes)):
        raise TypeError("Ms must be a sequence of integers")
    Ms_list = [checks.positive_int("M", m) for m in np.atleast_1d(np.asarray(Ms, dtype=object))]
    if not Ms_list:
        raise ValueError("Ms must contain at least one value in 1..N")
    for m in Ms_list:
        if m > N:
            raise ValueError(f"M must satisfy 1 <= M <= N = {N} (got {m})")
    data = sample_gmm(N, d, K, sigma2=sigma2, seed=seed)
    order = pmem_subset(N, N, subset=subset, seed=seed)
    mem = GMMDenoiser(data.train[order], 0.0, "memorizing")
    gen = GMMDenoiser(data.means, data.sigma2, "generalizing")
    noise_seed = int(np.random.SeedSequence([seed, 1]).generate_state(1)[0])
    pre = sorted(set(Ms_list) | {N})
    v_mem_all, v_gen = per_draw_losses(data.train, t, [mem, gen], n_noise=n_noise, seed=noise_seed,
                                       prefixes=[pre, [K]])
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
