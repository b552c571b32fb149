"""Noise schedule and the paper's time grid (arXiv:2508.17689v1, Eq. 2 and App. H.1).

The forward process is ``X_t = alpha_t X_0 + sigma_t Z`` with ``alpha_t = sqrt(1 - t^2)`` and
``sigma_t = t``; the SNR is ``psi_t = alpha_t^2 / sigma_t^2 = (1 - t^2) / t^2`` and its inverse is
``t = varsigma(psi) = (1 + psi)^(-1/2)``.  Training, loss evaluation and sampling share one grid of
26 times evenly spaced on [0.001, 0.999] in *descending* order (App. H.1 with the corrections of
docs/theory/capacity_crossover.md §9: the constant is 0.001, not 0.01, and the times decrease).
"""

from __future__ import annotations

import numpy as np

from . import checks

#: Number of grid intervals L; the grid has L + 1 = 26 times.
GRID_L = 25
#: First and last grid time.
T_MAX, T_MIN = 0.999, 0.001

#: The paper's fitted weighting lambda~_ell on the 26-point grid (Fig. 3 of arXiv:2508.17689v1,
#: three significant figures, read off the figure; docs/theory/capacity_crossover.md §3).  Index ell = 0 is
#: t = 0.999.
PAPER_LAMBDA = np.array(
    [0.384, 0.400, 0.420, 0.445, 0.477, 0.517, 0.569, 0.638, 0.724, 0.817, 0.873, 0.817, 0.689,
     0.565, 0.466, 0.392, 0.337, 0.296, 0.265, 0.241, 0.223, 0.209, 0.199, 0.192, 0.188, 0.187]
)
PAPER_LAMBDA.setflags(write=False)


def paper_grid() -> np.ndarray:
    """The 26 grid times ``t_ell = 0.999 - 0.998 ell / 25``, ell = 0..25 (descending).

    References
    ----------
    arXiv:2508.17689v1, App. H.1 and H.2 (corrected: docs/theory/capacity_crossover.md §9).

    Examples
    --------
    >>> t = paper_grid()
    >>> round(float(t[16]), 5), t.size
    (0.36028, 26)
    """
    return np.linspace(T_MIN, T_MAX, GRID_L + 1)[::-1].copy()


def _times(t, *, zero_ok: bool) -> np.ndarray:
    """``t`` as a float64 array of times in [0, 1] (``(0, 1]`` unless ``zero_ok``), errors naming ``t``."""
    arr = checks.real_array("t", t, finite=False)
    bad = ~((arr >= 0.0) if zero_ok else (arr > 0.0)) | ~(arr <= 1.0)
    if np.any(bad):
        raise ValueError(f"t must lie in {'[0' if zero_ok else '(0'}, 1] (got {arr[bad].reshape(-1)[0]!r})")
    return arr


def alpha(t):
    """Signal scale ``alpha_t = sqrt(1 - t^2)`` (arXiv:2508.17689v1, Eq. 2), ``t`` in [0, 1]."""
    t = _times(t, zero_ok=True)
    return np.sqrt(1.0 - t * t)


def sigma(t):
    """Noise scale ``sigma_t = t`` (arXiv:2508.17689v1, Eq. 2), ``t`` in [0, 1]."""
    return _times(t, zero_ok=True) * 1.0


def psi(t):
    """SNR ``psi_t = (1 - t^2) / t^2`` (arXiv:2508.17689v1, Sec. 2), ``t`` in (0, 1]."""
    t = _times(t, zero_ok=False)
    return (1.0 - t * t) / (t * t)


def varsigma(psi_value):
    """Inverse SNR map ``t = (1 + psi)^(-1/2)``, ``psi >= 0`` (``inf`` gives 0)."""
    p = checks.real_array("psi_value", psi_value, finite=False)
    if np.any(~(p >= 0.0)):
        raise ValueError(f"psi_value must be >= 0 (got {p[~(p >= 0.0)].reshape(-1)[0]!r})")
    return 1.0 / np.sqrt(1.0 + p)


def validity_psi_min(d: int) -> float:
    """Lower edge ``log^2 d / d`` of the theorems' validity window ``psi_t >~ log^2 d / d``.

    The constant is unspecified in the paper; memlab uses 1 (natural log), docs/theory/capacity_crossover.md §4.
    """
    d = checks.positive_int("d", d)
    return float(np.log(d) ** 2 / d)


def coupon_collector_bound(d: int, K: int) -> float:
    """Coupon-collector condition ``M >= (1 + log d) K log K`` of Lemma C.4 (natural log).

    References
    ----------
    arXiv:2508.17689v1, Lemma C.4 (docs/theory/capacity_crossover.md §4).

    Examples
    --------
    >>> round(coupon_collector_bound(50, 12), 1)
    146.5
    """
    d = checks.positive_int("d", d)
    K = checks.positive_int("K", K)
    return float((1.0 + np.log(d)) * K * np.log(K))
