"""Deterministic DDIM sampler on the paper's time grid (arXiv:2508.17689v1, App. H.2, Eq. 310)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..theory import _checks, grid
from .empirical import ddim
from .gmm import GMMDenoiser

__all__ = ["SampleResult", "ddim_sample"]


@dataclass(frozen=True)
class SampleResult:
    """DDIM samples ``x_hat_{t_L}`` (no final denoising step) with the inputs that made them."""

    samples: np.ndarray
    times: np.ndarray
    seed: int
    denoiser: str


def ddim_sample(denoiser: GMMDenoiser, n_samples: int = 50, *, times=None, seed: int = 0) -> SampleResult:
    """Deterministic DDIM from ``t_0`` down to ``t_L`` (spec section 6).

    ``x_{l+1} = (sigma_{l+1}/sigma_l) x_l + (alpha_{l+1} - (sigma_{l+1}/sigma_l) alpha_l) xbar(t_l, x_l)``
    with ``x_{t_0} ~ N(0, I_d)``; len(times) - 1 denoiser calls; the sample is ``x_{t_L}`` itself.

    Parameters
    ----------
    denoiser : GMMDenoiser
    n_samples : int
        Number of samples (the paper uses 50 per model).
    times : array, optional
        Strictly decreasing times in (0, 1); default the paper's 26-point grid.
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
    n_samples = _checks.positive_int("n_samples", n_samples)
    seed = _checks.positive_int("seed", seed, minimum=0)
    ts = grid.paper_grid() if times is None else _checks.unit_interval_times("times", times)
    if ts.size < 2 or np.any(np.diff(ts) >= 0):
        raise ValueError("times must be strictly decreasing with at least two entries")
    x = np.random.default_rng(seed).standard_normal((n_samples, denoiser.d))
    x = ddim(lambda ell, z: denoiser.x0(ts[ell], z), x, grid.alpha(ts), grid.sigma(ts))
    return SampleResult(samples=x, times=ts, seed=seed, denoiser=denoiser.name)
