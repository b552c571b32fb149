"""Deterministic DDIM sampling for every denoiser and schedule of memlab (arXiv:2508.17689v1, App. H.2, Eq. 310).

:func:`ddim` is the one DDIM loop; :func:`ddim_sample` drives it with a :class:`~memlab.numerics.gmm.GMMDenoiser`
under that denoiser's schedule (the laboratory's 26-point grid by default), and :func:`sample_optimal` with the
optimal empirical denoiser of a training set (docs/theory/capacity_crossover.md §6,
docs/theory/memorization_metrics.md §5).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..theory import checks
from ..theory.schedules import default_sampling_times, schedule_alpha_sigma
from .gmm import GMMDenoiser, optimal_denoiser

__all__ = ["SampleResult", "ddim", "ddim_sample", "sample_optimal"]


@dataclass(frozen=True)
class SampleResult:
    """DDIM samples ``x_hat_{t_L}`` (no final denoising step) with the inputs that made them.

    Attributes
    ----------
    samples : ndarray, shape (n_samples, d)
    times : ndarray
        The decreasing sampling times.
    seed : int
        Seed of the initial draw.
    denoiser : str
        Name of the denoiser.
    schedule : str
        Its noise schedule.
    """

    samples: np.ndarray
    times: np.ndarray
    seed: int
    denoiser: str
    schedule: str = "gmm"


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


def ddim_sample(denoiser: GMMDenoiser, n_samples: int = 50, *, times=None, n_steps=None, seed: int = 0) -> SampleResult:
    """Deterministic DDIM from ``t_0`` down to ``t_L`` under the denoiser's schedule.

    ``x_{l+1} = (sigma_{l+1}/sigma_l) x_l + (alpha_{l+1} - (sigma_{l+1}/sigma_l) alpha_l) xbar(t_l, x_l)``
    with ``x_{t_0} ~ N(0, (alpha_0^2 + sigma_0^2) I_d)`` (``N(0, I)`` for the laboratory's schedule); len(times) - 1
    denoiser calls; the sample is ``x_{t_L}`` itself.

    Parameters
    ----------
    denoiser : GMMDenoiser
    n_samples : int
        Number of samples (the paper uses 50 per model).
    times : array, optional
        Strictly decreasing times in the schedule's domain; only the last may have ``sigma_t = 0``.  Default:
        the schedule's default times (for ``"gmm"`` the paper's 26-point grid).
    n_steps : int, optional
        Number of denoiser calls of the default times (``1 .. 10**7``; only without ``times``).
    seed : int
        Seed of the initial Gaussian draw (same seed for every M in a sweep).

    Returns
    -------
    SampleResult

    References
    ----------
    arXiv:2508.17689v1, App. H.2, Eq. 310.

    Examples
    --------
    >>> from memlab.numerics.gmm import memorizing_denoiser
    >>> train = np.random.default_rng(0).standard_normal((10, 4)) * 3
    >>> s = ddim_sample(memorizing_denoiser(train), 5, seed=1).samples
    >>> bool(np.min(np.linalg.norm(s[:, None] - train[None], axis=2), axis=1).max() < 0.01)
    True
    """
    if not isinstance(denoiser, GMMDenoiser):
        raise TypeError(f"denoiser must be a GMMDenoiser (got {type(denoiser).__name__})")
    n_samples = checks.positive_int("n_samples", n_samples)
    seed = checks.seed("seed", seed)
    checks.memory(f"ddim_sample(n_samples={n_samples}) in d = {denoiser.d} (n_samples*d*(M + 3) float64 entries per "
                  f"step, M = {denoiser.M})", 8.0 * n_samples * denoiser.d * 3 + 8.0 * n_samples * denoiser.M)
    schedule = denoiser.schedule
    if times is None:
        ts = default_sampling_times(schedule, n_steps)
    else:
        checks.ignored("n_steps", n_steps, None, reason="it sets the number of default times; times were given")
        ts = checks.finite_array("times", times, ndim=1)
        if ts.size < 2 or np.any(np.diff(ts) >= 0):
            raise ValueError(f"times must be a strictly decreasing 1-D sequence with at least two entries "
                             f"(got {checks.show(times)})")
    a, s = schedule_alpha_sigma(schedule, ts, name="times")
    if np.any(s[:-1] <= 0):
        raise ValueError("times: only the last sampling time may have sigma_t = 0")
    x = np.random.default_rng(seed).standard_normal((n_samples, denoiser.d)) * np.hypot(a[0], s[0])
    x = ddim(lambda ell, z: denoiser.x0(ts[ell], z), x, a, s)
    return SampleResult(samples=x, times=ts, seed=seed, denoiser=denoiser.name, schedule=schedule)


def sample_optimal(train, n_samples: int = 50, *, schedule: str = "gmm", times=None, n_steps=None,
                   seed: int = 0) -> SampleResult:
    """Deterministic DDIM driven by the optimal empirical denoiser of ``train``: memorized samples by construction.

    :func:`ddim_sample` with :func:`~memlab.numerics.gmm.optimal_denoiser` (``schedule`` ``"gmm"``, ``"ou"``,
    ``"edm"`` or ``"vp"``); the initial draw is ``N(0, (alpha_0^2 + sigma_0^2) I)`` (unit-variance data
    scale; about ``N(0, 80^2 I)`` for EDM).

    References
    ----------
    docs/theory/memorization_metrics.md §5; arXiv:2508.17689v1 App. H.2 (DDIM); Gu et al. arXiv:2310.02664 Sec. 2.

    Examples
    --------
    >>> train = np.random.default_rng(0).standard_normal((20, 8)) * 2
    >>> s = sample_optimal(train, 5, schedule="edm", seed=1).samples
    >>> bool(np.min(np.linalg.norm(s[:, None] - train[None], axis=2), axis=1).max() < 0.01)
    True
    """
    return ddim_sample(optimal_denoiser(train, schedule), n_samples, times=times, n_steps=n_steps, seed=seed)
