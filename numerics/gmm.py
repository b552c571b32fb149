"""The Gaussian-mixture memorization laboratory: data and exact denoisers (arXiv:2508.17689v1).

Data model (Eq. 10): ``pi_* = (1/K) sum_k N(mu_*^k, sigma_*^2 I_d)`` with means uniform on the sphere
of radius ``sqrt(d)``.  Denoisers are instances of the isotropic shared-variance GMM denoiser
(Eqs. 14-15) evaluated by the numba kernels of memlab's numerics layer with a stable log-sum-exp that stays
exact at t = 0.001.  The same class, with ``sigma^2 = 0`` and the training points as means, is the optimal
empirical denoiser under any of memlab's noise schedules (:func:`optimal_denoiser`;
docs/theory/memorization_metrics.md §5): one class over one kernel.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..theory import checks, grid
from ..theory.schedules import check_schedule, schedule_alpha_sigma
from . import _kernels

__all__ = ["GMMData", "GMMDenoiser", "sample_gmm", "gmm_denoiser", "generalizing_denoiser",
           "memorizing_denoiser", "pmem_denoiser", "optimal_denoiser", "pmem_subset", "eps_to_x0", "x0_to_eps",
           "exp_nonpositive", "bounded", "MAX_ABS"]


@dataclass(frozen=True)
class GMMData:
    """A draw of the laboratory data set (arXiv:2508.17689v1, Eq. 10 and App. H.1).

    Attributes
    ----------
    means : ndarray, shape (K, d)
        True component means ``mu_*^k``, uniform on the sphere of radius ``sqrt(d)``.
    train : ndarray, shape (N, d)
        Training points ``x^i = mu_*^{c_i} + sigma_* z_i``.
    labels : ndarray, shape (N,)
        Component labels ``c_i`` (uniform, independent; cluster counts are random).
    heldout : ndarray, shape (n_heldout, d)
        Fresh draws from the same mixture (test set).
    heldout_labels : ndarray
        Their labels.
    sigma2 : float
        Component variance ``sigma_*^2``.
    seed : int
        Seed the draw was made from.
    """

    means: np.ndarray
    train: np.ndarray
    labels: np.ndarray
    heldout: np.ndarray
    heldout_labels: np.ndarray
    sigma2: float
    seed: int

    @property
    def N(self) -> int:
        return self.train.shape[0]

    @property
    def d(self) -> int:
        return self.train.shape[1]

    @property
    def K(self) -> int:
        return self.means.shape[0]


def sample_gmm(N: int, d: int, K: int, *, sigma2: float = 1.0, n_heldout: int = 100,
               seed: int = 0) -> GMMData:
    """Draw means, a training set and a held-out set of the laboratory mixture.

    Parameters
    ----------
    N, d, K : int
        Training-set size, dimension and number of components (all >= 1).
    sigma2 : float
        Component variance ``sigma_*^2 > 0`` (the paper uses 1).
    n_heldout : int
        Size of the held-out set (the paper uses 100).
    seed : int
        Seed of ``numpy.random.default_rng``; the same seed gives the same data.

    Returns
    -------
    GMMData

    References
    ----------
    arXiv:2508.17689v1, Eq. 10 and App. H.1.

    Examples
    --------
    >>> data = sample_gmm(20, 5, 3, seed=1)
    >>> data.train.shape, bool(np.allclose(np.linalg.norm(data.means, axis=1), np.sqrt(5)))
    ((20, 5), True)
    """
    N = checks.positive_int("N", N)
    d = checks.positive_int("d", d)
    K = checks.positive_int("K", K)
    sigma2 = checks.positive_float("sigma2", sigma2)
    n_heldout = checks.positive_int("n_heldout", n_heldout)
    seed = checks.seed("seed", seed)
    checks.memory(f"sample_gmm(N={N}, d={d}, K={K}, n_heldout={n_heldout}): (N + K + n_heldout)*d = "
                  f"{(N + K + n_heldout) * d:.3g} float64 entries", 8.0 * (N + K + n_heldout) * d)
    rng = np.random.default_rng(seed)
    g = rng.standard_normal((K, d))
    means = np.sqrt(d) * g / np.linalg.norm(g, axis=1, keepdims=True)
    sd = np.sqrt(sigma2)
    labels = rng.integers(0, K, size=N)
    train = means[labels] + sd * rng.standard_normal((N, d))
    h_labels = rng.integers(0, K, size=n_heldout)
    heldout = means[h_labels] + sd * rng.standard_normal((n_heldout, d))
    return GMMData(means=means, train=train, labels=labels, heldout=heldout,
                   heldout_labels=h_labels, sigma2=sigma2, seed=seed)


@dataclass(frozen=True)
class GMMDenoiser:
    """Isotropic shared-variance GMM denoiser (arXiv:2508.17689v1, Eqs. 14-15) under a noise schedule.

    ``xbar(t, x) = sum_i p_i (mu_i + alpha_t sigma^2 / D_t (x - alpha_t mu_i))`` with
    ``D_t = alpha_t^2 sigma^2 + sigma_t^2`` and ``p = softmax(-||x - alpha_t mu_i||^2 / (2 D_t))``;
    weights fixed at 1/M.  Special cases (docs/theory/capacity_crossover.md §2): generalizing (true means,
    ``sigma_*^2``), memorizing (all training points, 0), partially memorizing (M training points, 0), trainable
    (any means and ``sigma^2 >= 0``), and the optimal empirical denoiser of any schedule (training points, 0).

    Attributes
    ----------
    means : ndarray, shape (M, d)
    sigma2 : float
        Shared component variance ``sigma^2 >= 0``.
    name : str
        Label used in plots and reports.
    schedule : str
        ``"gmm"`` (the laboratory's ``alpha_t = sqrt(1 - t^2)``, ``sigma_t = t``; default), ``"ou"``, ``"edm"``
        or ``"vp"`` (:mod:`memlab.theory.schedules`).
    """

    means: np.ndarray
    sigma2: float = 0.0
    name: str = "gmm"
    schedule: str = "gmm"

    def __post_init__(self):
        object.__setattr__(self, "means", np.ascontiguousarray(_points("means", self.means)))
        object.__setattr__(self, "sigma2", checks.positive_float("sigma2", self.sigma2, allow_zero=True))
        object.__setattr__(self, "schedule", check_schedule(self.schedule))
        if not isinstance(self.name, str):
            raise TypeError(f"name must be a string (got {checks.show(self.name)} of type {type(self.name).__name__})")

    @property
    def M(self) -> int:
        return self.means.shape[0]

    @property
    def d(self) -> int:
        return self.means.shape[1]

    def coefficients(self, t):
        """``(alpha_t, sigma_t)`` of the schedule at a scalar time ``t`` (``sigma_t > 0`` required)."""
        t = checks.unit_time("t", t) if self.schedule == "gmm" else checks.real("t", t)
        a, s = (float(v) for v in schedule_alpha_sigma(self.schedule, t))
        if s <= 0.0:
            raise ValueError(f"t must be > 0 for the denoiser (sigma_t = 0 at t = {t!r})")
        return a, s

    def predict(self, t, x):
        """Return ``(x0_hat, eps_hat)`` at time ``t`` for points ``x`` of shape (d,) or (B, d).

        ``eps_hat`` uses the residual form ``sigma_t / D_t sum_i p_i (x - alpha_t mu_i)`` (no
        cancellation at small t); ``x0_hat`` is the posterior mean of Eq. 14.
        """
        a, s = self.coefficients(t)
        xa = bounded("x", checks.finite_array("x", x))
        single = xa.ndim == 1
        xb = np.ascontiguousarray(xa.reshape(1, -1) if single else xa)
        if xb.ndim != 2 or xb.shape[1] != self.d:
            raise ValueError(f"x must have shape (d,) or (B, d) with d = {self.d} (got shape {xa.shape})")
        out_x0 = np.empty_like(xb)
        out_eps = np.empty_like(xb)
        _kernels.denoise_direct(xb, self.means, a, s, self.sigma2, out_x0, out_eps)
        if single:
            return out_x0[0], out_eps[0]
        return out_x0, out_eps

    def x0(self, t, x):
        """Posterior-mean (x0) prediction ``xbar(t, x)`` (Eq. 14)."""
        return self.predict(t, x)[0]

    def eps(self, t, x):
        """Noise (epsilon) prediction in residual form (docs/theory/capacity_crossover.md §2)."""
        return self.predict(t, x)[1]

    def score(self, t, x):
        """Score ``(alpha_t xbar - x) / sigma_t^2 = -eps_hat / sigma_t`` (Tweedie, arXiv:2508.17689v1 Eq. 5)."""
        return -self.predict(t, x)[1] / self.coefficients(t)[1]

    __call__ = x0


#: Largest magnitude of a coordinate of the means and of the points a denoiser or a loss sees: squared distances
#: summed over d coordinates must stay finite in float64 (4 d MAX_ABS^2 < 1.8e308 for d up to 10^6).
MAX_ABS = 1e150


def bounded(name: str, arr: np.ndarray, limit: float = MAX_ABS) -> np.ndarray:
    """``arr`` unchanged when every entry is at most ``limit`` in magnitude, else a ``ValueError``."""
    if arr.size and float(np.max(np.abs(arr))) > limit:
        raise ValueError(f"{name} must have entries of magnitude <= {limit:g} (got {float(np.max(np.abs(arr))):.3g}): "
                         f"squared distances would overflow float64; rescale the data (the losses scale as its square)")
    return arr


def _points(name: str, values) -> np.ndarray:
    """A finite float64 array of shape (M, d), M, d >= 1, entries at most MAX_ABS, with errors naming ``name``."""
    arr = checks.finite_array(name, values, ndim=2)
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(f"{name} must have shape (M, d) with M, d >= 1 (got shape {arr.shape})")
    return bounded(name, arr)


def gmm_denoiser(means, sigma2: float) -> GMMDenoiser:
    """Trainable-family denoiser with given means and shared variance (Eq. 14)."""
    return GMMDenoiser(means, sigma2, "trainable")


def generalizing_denoiser(data: GMMData) -> GMMDenoiser:
    """Exact MMSE denoiser of the true mixture ``pi_*`` (Eq. 14 with M = K, true means, sigma_*^2)."""
    if not isinstance(data, GMMData):
        raise TypeError(f"data must be a GMMData from sample_gmm (got {type(data).__name__})")
    return GMMDenoiser(data.means, data.sigma2, "generalizing")


def memorizing_denoiser(train) -> GMMDenoiser:
    """MMSE denoiser of the empirical measure (Eqs. 8-9): all N training points, sigma^2 = 0."""
    return GMMDenoiser(_points("train", train), 0.0, "memorizing")


def pmem_subset(N: int, M: int, *, subset: str = "first", seed: int | None = None) -> np.ndarray:
    """Indices of the M memorized points: the first M, or a seeded random subset (nested in M)."""
    N = checks.positive_int("N", N)
    M = checks.positive_int("M", M)
    if M > N:
        raise ValueError(f"M must satisfy 1 <= M <= N = {N} (got {M})")
    subset = checks.choice("subset", subset, ("first", "random"))
    if subset == "first":
        if seed is not None:
            raise ValueError(f"seed={checks.show(seed)} is not used with subset='first' (the first M points); "
                             f"pass subset='random' or leave seed at None")
        return np.arange(M)
    seed = 0 if seed is None else checks.seed("seed", seed)
    return np.random.default_rng(seed).permutation(N)[:M]


def pmem_denoiser(train, M: int, *, subset: str = "first", seed: int | None = None) -> GMMDenoiser:
    """Partially memorizing denoiser (Eq. 13): M of the N training points, sigma^2 = 0.

    ``subset="first"`` (the paper's choice) or ``"random"`` (seeded; equivalent in distribution).
    With M = N it is the memorizing denoiser.
    """
    train = _points("train", train)
    idx = pmem_subset(train.shape[0], M, subset=subset, seed=seed)
    return GMMDenoiser(train[idx], 0.0, f"pmem(M={len(idx)})")


def optimal_denoiser(train, schedule: str = "gmm") -> GMMDenoiser:
    """The optimal (empirical) denoiser of ``train`` under ``schedule``: the MMSE denoiser of the empirical
    measure, ``sigma^2 = 0`` and every training point a mean (docs/theory/memorization_metrics.md §5).

    Sampling with it returns training points, so its samples are memorized by construction (Gu et al.
    arXiv:2310.02664 Sec. 2; arXiv:2505.17638 Sec. 1).
    """
    return GMMDenoiser(_points("train", train), 0.0, "optimal", schedule)


def x0_to_eps(t, x, x0_hat):
    """``eps_hat = (x - alpha_t x0_hat) / sigma_t`` (docs/theory/capacity_crossover.md §2; loses digits at
    small t)."""
    t = checks.unit_time("t", t)
    return (checks.finite_array("x", x) - grid.alpha(t) * checks.finite_array("x0_hat", x0_hat)) / t


def eps_to_x0(t, x, eps_hat):
    """``x0_hat = (x - sigma_t eps_hat) / alpha_t`` (docs/theory/capacity_crossover.md §2)."""
    t = checks.unit_time("t", t)
    return (checks.finite_array("x", x) - t * checks.finite_array("eps_hat", eps_hat)) / grid.alpha(t)


def exp_nonpositive(x) -> np.ndarray:
    """``exp(x)`` for ``x <= 0`` as the denoiser kernels compute their softmax weights (docs/theory/capacity_crossover.md §2).

    A branch-free Cody-Waite reduction with a degree-13 polynomial that the compiler vectorises, within 1 ulp of
    the exact value; arguments below -708 give exactly 0 (their weight is below 1e-307 of the maximum).
    """
    x = checks.real_array("x", x, finite=False)
    if np.any(np.isnan(x)) or np.any(x > 0):
        raise ValueError("x must be <= 0 and not NaN (the kernels shift every exponent by its maximum; -inf gives 0)")
    flat = np.ascontiguousarray(x, dtype=np.float64).reshape(-1)
    out = np.empty_like(flat)
    _kernels.exp_shifted(flat, 0.0, flat.size, out, np.empty(flat.size, dtype=np.int64))
    return out.reshape(np.shape(x))
