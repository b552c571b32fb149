"""The optimal empirical denoiser and a deterministic DDIM sampler for any of memlab's schedules.

``D*(x) = sum_nu w_nu x^nu`` with ``w = softmax_nu(-||x - alpha_t x^nu||^2 / (2 sigma_t^2))`` is the MMSE
denoiser of the empirical measure, i.e. the minimiser of the DSM loss over all functions; its score is
``(alpha_t D* - x) / sigma_t^2``.  Sampling with it returns training points, so its samples are
memorized by construction (Gu et al. arXiv:2310.02664 Sec. 2; arXiv:2505.17638 Sec. 1; spec
rf_timescales.md 8.4).  Weights come from difference-vector distances and a stable log-sum-exp (the
numba kernel shared with the GMM laboratory, :func:`memlab.numerics._kernels.denoise_direct`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..theory import _checks
from ..theory.schedules import check_schedule, default_sampling_times, schedule_alpha_sigma
from . import _kernels

__all__ = ["EmpiricalDenoiser", "optimal_denoiser", "ddim", "EmpiricalSamples", "sample_optimal"]


@dataclass(frozen=True)
class EmpiricalDenoiser:
    """MMSE denoiser of the empirical measure of ``train`` under a schedule (spec 8.4).

    Attributes
    ----------
    train : ndarray, shape (N, d)
        Training points (float64).
    schedule : str
        ``"gmm"``, ``"ou"``, ``"edm"`` or ``"vp"`` (see :mod:`memlab.theory.schedules`).
    """

    train: np.ndarray
    schedule: str = "gmm"

    def __post_init__(self):
        tr = _checks.finite_array("train", self.train, ndim=2)
        if tr.shape[0] < 1 or tr.shape[1] < 1:
            raise ValueError(f"train must have shape (N, d) with N, d >= 1 (got {tr.shape})")
        object.__setattr__(self, "train", np.ascontiguousarray(tr, dtype=np.float64))
        object.__setattr__(self, "schedule", check_schedule(self.schedule))

    @property
    def d(self) -> int:
        return self.train.shape[1]

    def coefficients(self, t):
        """``(alpha_t, sigma_t)`` of the schedule."""
        return schedule_alpha_sigma(self.schedule, t)

    def predict(self, t, x):
        """``(x0_hat, eps_hat)`` at time ``t > 0`` for points of shape (d,) or (B, d).

        ``eps_hat = sum_nu w_nu (x - alpha x^nu) / sigma`` in residual form (exact at small t).
        """
        a, s = (float(v) for v in schedule_alpha_sigma(self.schedule, t))
        if s <= 0.0:
            raise ValueError(f"t must be > 0 for the denoiser (sigma_t = 0 at t = {t!r})")
        xa = _checks.finite_array("x", x)
        single = xa.ndim == 1
        xb = np.ascontiguousarray(xa.reshape(1, -1) if single else xa, dtype=np.float64)
        if xb.ndim != 2 or xb.shape[1] != self.d:
            raise ValueError(f"x must have shape (d,) or (B, d) with d = {self.d} (got {xa.shape})")
        x0 = np.empty_like(xb)
        eps = np.empty_like(xb)
        _kernels.denoise_direct(xb, self.train, a, s, 0.0, x0, eps)
        return (x0[0], eps[0]) if single else (x0, eps)

    def x0(self, t, x):
        """``D*(x)``: the posterior mean of the training point given ``x_t = x``."""
        return self.predict(t, x)[0]

    def score(self, t, x):
        """Empirical score ``(alpha_t D*(x) - x) / sigma_t^2 = -eps_hat / sigma_t``."""
        _, s = schedule_alpha_sigma(self.schedule, t)
        return -self.predict(t, x)[1] / float(s)

    __call__ = x0


def optimal_denoiser(train, schedule: str = "gmm") -> EmpiricalDenoiser:
    """The optimal (empirical) denoiser of ``train`` under ``schedule`` (spec rf_timescales.md 8.4)."""
    return EmpiricalDenoiser(np.asarray(train, dtype=np.float64), schedule)


def ddim(predict_x0, x, alphas, sigmas):
    """Deterministic DDIM (eta = 0) loop shared by every sampler in memlab.

    ``x_{l+1} = alpha_{l+1} x0_hat + sigma_{l+1} eps_hat`` with ``eps_hat = (x_l - alpha_l x0_hat) /
    sigma_l`` and ``x0_hat = predict_x0(l, x_l)``; written as ``(sigma_{l+1}/sigma_l) x_l + (alpha_{l+1} -
    (sigma_{l+1}/sigma_l) alpha_l) x0_hat`` (arXiv:2508.17689v1 Eq. 310).  A last time with
    ``sigma = 0`` gives ``alpha x0_hat`` exactly.  ``len(alphas) - 1`` denoiser calls.
    """
    for ell in range(len(alphas) - 1):
        xbar = predict_x0(ell, x)
        ratio = sigmas[ell + 1] / sigmas[ell]
        x = ratio * x + (alphas[ell + 1] - ratio * alphas[ell]) * xbar
    return x


@dataclass(frozen=True)
class EmpiricalSamples:
    """Samples of the optimal-denoiser DDIM sampler with the inputs that made them."""

    samples: np.ndarray
    times: np.ndarray
    schedule: str
    seed: int


def sample_optimal(train, n_samples: int = 50, *, schedule: str = "gmm", times=None, n_steps=None,
                   seed: int = 0) -> EmpiricalSamples:
    """Deterministic DDIM driven by the optimal empirical denoiser: memorized samples by construction.

    Parameters
    ----------
    train : array, shape (N, d)
    n_samples : int
        Number of samples (>= 1).
    schedule : str
        ``"gmm"`` (default), ``"ou"``, ``"edm"`` or ``"vp"``.
    times : array, optional
        Strictly decreasing sampling times in the schedule's domain; the last may be 0 (then the
        sample is ``D*`` of the previous state).  Default :func:`~memlab.theory.schedules.default_sampling_times`.
    n_steps : int, optional
        Number of denoiser calls of the default times.
    seed : int
        Seed of the initial draw ``x_{t_0} ~ N(0, (alpha_0^2 + sigma_0^2) I)`` (unit-variance data
        scale; N(0, I) for the variance-preserving schedules, about N(0, 80^2 I) for EDM).

    Returns
    -------
    EmpiricalSamples

    References
    ----------
    Spec rf_timescales.md 8.4; arXiv:2508.17689v1 App. H.2 (DDIM); Gu et al. arXiv:2310.02664 Sec. 2.

    Examples
    --------
    >>> train = np.random.default_rng(0).standard_normal((20, 8)) * 2
    >>> s = sample_optimal(train, 5, schedule="edm", seed=1).samples
    >>> bool(np.min(np.linalg.norm(s[:, None] - train[None], axis=2), axis=1).max() < 0.01)
    True
    """
    den = optimal_denoiser(train, schedule)
    n_samples = _checks.positive_int("n_samples", n_samples)
    seed = _checks.positive_int("seed", seed, minimum=0)
    if times is None:
        ts = default_sampling_times(schedule, n_steps)
    else:
        ts = np.asarray(times, dtype=np.float64).ravel()
        if ts.size < 2 or np.any(np.diff(ts) >= 0):
            raise ValueError("times must be strictly decreasing with at least two entries")
    a, s = schedule_alpha_sigma(schedule, ts, name="times")
    if np.any(s[:-1] <= 0):
        raise ValueError("times: only the last sampling time may be 0")
    x = np.random.default_rng(seed).standard_normal((n_samples, den.d)) * np.hypot(a[0], s[0])
    x = ddim(lambda ell, z: den.x0(ts[ell], z), x, a, s)
    return EmpiricalSamples(samples=x, times=ts, schedule=schedule, seed=seed)
