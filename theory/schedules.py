"""Noise schedules ``x_t = alpha_t x_0 + sigma_t z`` used across memlab (docs/theory/memorization_metrics.md §5).

=========  ==========================================  ==================================================
name       (alpha_t, sigma_t)                           time variable
=========  ==========================================  ==================================================
``gmm``    (sqrt(1 - t^2), t)                          t in [0, 1) (arXiv:2508.17689v1, Eq. 2)
``ou``     (e^{-t}, sqrt(1 - e^{-2t}))                 OU time t >= 0 (arXiv:2505.17638, eqs 1-5)
``edm``    (1, t)                                      t = sigma >= 0 (Karras et al. 2022; x = y + sigma n)
``vp``     (sqrt(abar_t), sqrt(1 - abar_t))            t in [0, 1], abar_t = exp(-(b0 t + (b1 - b0) t^2 / 2)),
                                                       b0 = 0.1, b1 = 20 (the VP-SDE of Song et al. 2021,
                                                       continuous limit of DDPM's linear beta schedule)
=========  ==========================================  ==================================================

``sigma_t = 0`` only at t = 0 (for every schedule): a sampler may end there, a denoiser is never
evaluated there.

The OU schedule of the random-features model (arXiv:2505.17638 MT eqs 1-5) has its own helpers, the one
home of ``Delta_t``, ``Gamma_t^2`` and ``Sigma_t`` for every layer: :func:`ou_delta`, :func:`ou_gamma2`,
:func:`ou_sigma_t`.  The GMM laboratory's ``alpha_t`` lives in :mod:`memlab.theory.grid`.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from . import checks, grid

__all__ = ["SCHEDULES", "schedule_alpha_sigma", "default_sampling_times", "check_schedule", "ou_delta",
           "ou_gamma2", "ou_sigma_t"]

SCHEDULES = ("gmm", "ou", "edm", "vp")
VP_BETA_MIN, VP_BETA_MAX = 0.1, 20.0
EDM_SIGMA_MIN, EDM_SIGMA_MAX, EDM_RHO = 0.002, 80.0, 7.0
_MAX_STEPS = 10 ** 7  # denoiser calls of one DDIM run: beyond it the time grid alone is 80 MB and the run takes days


def check_schedule(schedule) -> str:
    return checks.choice("schedule", schedule, SCHEDULES)


def _time_range(schedule):
    return {"gmm": (0.0, 1.0, False), "ou": (0.0, np.inf, True), "edm": (0.0, np.inf, True),
            "vp": (0.0, 1.0, True)}[schedule]


def schedule_alpha_sigma(schedule: str, t, *, name: str = "t"):
    """``(alpha_t, sigma_t)`` as float64 arrays for a schedule (see the module table).

    Raises ``ValueError`` naming ``name`` when a time lies outside the schedule's domain
    (gmm: [0, 1); ou, edm: [0, inf); vp: [0, 1]) or is not finite.
    """
    schedule = check_schedule(schedule)
    t = checks.real_array(name, t, finite=False)
    lo, hi, closed = _time_range(schedule)
    bad = ~np.isfinite(t) | (t < lo) | ((t > hi) if closed else (t >= hi))
    if np.any(bad):
        rng = f"[{lo:g}, {hi:g}{']' if closed else ')'}"
        raise ValueError(f"{name} must lie in {rng} for the {schedule!r} schedule (got {t[bad].ravel()[0]!r})")
    if schedule == "gmm":
        return grid.alpha(t), grid.sigma(t)
    if schedule == "ou":
        return np.exp(-t), np.sqrt(ou_delta(t))
    if schedule == "edm":
        return np.ones_like(t), t * 1.0
    log_abar = -(VP_BETA_MIN * t + 0.5 * (VP_BETA_MAX - VP_BETA_MIN) * t * t)
    return np.exp(0.5 * log_abar), np.sqrt(-np.expm1(log_abar))


def default_sampling_times(schedule: str, n_steps: int | None = None) -> np.ndarray:
    """Decreasing sampling times ending at a small positive time (no final denoising step).

    * gmm: the paper's 26-point grid 0.999 .. 0.001 (``n_steps`` = 25 denoiser calls; other n_steps:
      the same endpoints with n_steps + 1 equally spaced times);
    * ou: geometric from t = 5 (e^{-5} = 0.007: nearly the stationary law) to 1e-5 (sigma = 0.0045);
    * edm: Karras et al.'s rho = 7 grid from sigma = 80 to 0.002 (default 18 calls);
    * vp: equally spaced from 1 to 1e-3.
    Default ``n_steps``: 25 (gmm), 50 (ou, vp), 18 (edm).
    """
    schedule = check_schedule(schedule)
    if n_steps is None:
        n_steps = {"gmm": 25, "ou": 50, "edm": 18, "vp": 50}[schedule]
    n = checks.positive_int("n_steps", n_steps, maximum=_MAX_STEPS)
    if schedule == "gmm":
        return np.linspace(grid.T_MIN, grid.T_MAX, n + 1)[::-1].copy()
    if schedule == "ou":
        return np.geomspace(5.0, 1e-5, n + 1)
    if schedule == "vp":
        return np.linspace(1.0, 1e-3, n + 1)
    i = np.arange(n + 1) / n
    a, b = EDM_SIGMA_MAX ** (1 / EDM_RHO), EDM_SIGMA_MIN ** (1 / EDM_RHO)
    return (a + i * (b - a)) ** EDM_RHO


def _ou_times(t) -> np.ndarray:
    arr = checks.real_array("t", t)
    if np.any(arr < 0):
        raise ValueError(f"t must be >= 0 (got {arr[arr < 0].reshape(-1)[0]!r})")
    return arr


def ou_delta(t):
    """``Delta_t = 1 - e^{-2t}``: the noise variance of the OU process at time ``t`` (arXiv:2505.17638 MT eq 2).

    Computed as ``-expm1(-2t)`` (no cancellation at small ``t``); scalar in, float out; arrays in, arrays out.
    """
    if isinstance(t, numbers.Real) or (isinstance(t, np.ndarray) and t.ndim == 0):
        return -math.expm1(-2.0 * checks.real("t", t, low=0.0))
    return -np.expm1(-2.0 * _ou_times(t))


def ou_gamma2(t, sigma_x):
    """``Gamma_t^2 = e^{-2t} sigma_x^2 + Delta_t``: the variance per coordinate of ``x_t`` for data of variance
    ``sigma_x^2`` (arXiv:2505.17638 SM eq 41; the main text's "Gamma_t" is this square, docs/theory/random_features.md §8)."""
    if isinstance(t, numbers.Real) and isinstance(sigma_x, numbers.Real):
        sx = checks.real("sigma_x", sigma_x, low=0.0, high=1e150)
        return math.exp(-2.0 * checks.real("t", t, low=0.0)) * sx ** 2 + ou_delta(t)
    sx = checks.real_array("sigma_x", sigma_x)
    if np.any(sx < 0) or np.any(sx > 1e150):
        raise ValueError(f"sigma_x must lie in [0, 1e150] (got {checks.show(sigma_x)})")
    return np.exp(-2.0 * _ou_times(t)) * sx ** 2 + ou_delta(t)


def ou_sigma_t(t, cov_eigs):
    """Eigenvalues of ``Sigma_t = e^{-2t} Sigma + Delta_t I``, the covariance of ``x_t`` for data of covariance
    ``Sigma`` with eigenvalues ``cov_eigs`` (arXiv:2505.17638 MT §3; docs/theory/random_features.md §1)."""
    t = checks.real("t", t, low=0.0)
    eigs = checks.real_array("cov_eigs", cov_eigs)
    if np.any(eigs < 0):
        raise ValueError(f"cov_eigs must be >= 0: eigenvalues of a covariance (got {eigs[eigs < 0].reshape(-1)[0]!r})")
    return math.exp(-2.0 * t) * eigs + ou_delta(t)
