"""Closed-form timescales of the random-features score model (arXiv:2505.17638 MT §3, SM C.5, D).

Every function here evaluates the expression derived in :func:`memlab.theory.rf_symbolic.derive_rf`, through
its generated form :mod:`memlab.theory.rf_formulas` (so no call runs sympy): the formulas have one home, the
derivation.  Names say which estimator
each is (docs/theory/random_features.md §5): ``*_formula`` are closed forms in the Gaussian-equivalence
constants, as opposed to the spectrum-based and read-off estimators of :mod:`memlab.numerics`.
Time unit throughout: the paper's ``tau = k eta / d^2`` (``k`` GD steps of size ``eta`` on ``A``).
"""

from __future__ import annotations

import numpy as np

from . import checks
from . import rf_formulas as _f


def _nonneg(name, value):
    """A real scalar or array >= 0 (finite), errors naming ``name``."""
    arr = checks.real_array(name, value)
    if np.any(arr < 0):
        raise ValueError(f"{name} must be >= 0 (got {arr[arr < 0].reshape(-1)[0]!r})")
    return arr if arr.ndim else float(arr)


def _pos(name, value):
    """A real scalar or array > 0 (finite), errors naming ``name``."""
    arr = checks.real_array(name, value)
    if np.any(arr <= 0):
        raise ValueError(f"{name} must be > 0 (got {arr[arr <= 0].reshape(-1)[0]!r})")
    return arr if arr.ndim else float(arr)

__all__ = ["first_bulk_edges", "lambda_min_formula", "tau_mem_formula", "tau_mem_limit", "lambda2_mean",
           "tau_gen_formula", "delta_weight", "regime", "TIME_UNIT"]

TIME_UNIT = "tau = k*eta/d^2 (k GD steps of size eta on A; arXiv:2505.17638 MT eq 9)"


def first_bulk_edges(s2, v2, psi_p, psi_n):
    """Leading-order edges of rho_1, ``s_t^2 + v_t^2 (1 -+ sqrt(psi_p/psi_n))^2`` (SM eq 162), as a pair."""
    s2, v2 = _nonneg("s2", s2), _nonneg("v2", v2)
    c = np.asarray(_pos("psi_p", psi_p), dtype=float) / _pos("psi_n", psi_n)
    return _f.lambda_minus(s2, v2, c), _f.lambda_plus(s2, v2, c)


def lambda_min_formula(s2, v2, psi_p, psi_n):
    """``lambda_min = s_t^2 + v_t^2 (1 - sqrt(psi_p/psi_n))^2``: the lower edge of rho_1 (MT §3 after Thm 3.2)."""
    return _f.lambda_min(_nonneg("s2", s2), _nonneg("v2", v2), _pos("psi_p", psi_p), _pos("psi_n", psi_n))


def tau_mem_formula(s2, v2, psi_p, psi_n, delta_t):
    """The paper's ``tau_mem = psi_p / (Delta_t lambda_min)`` (MT §3; correction 2 of docs/theory/random_features.md §8)."""
    return _f.tau_mem(_nonneg("s2", s2), _nonneg("v2", v2), _pos("psi_p", psi_p), _pos("psi_n", psi_n),
                      _pos("delta_t", delta_t))


def tau_mem_limit(v2, psi_n, delta_t):
    """``psi_p >> psi_n`` limit of :func:`tau_mem_formula`: ``psi_n / (Delta_t v_t^2)``, linear in ``n``."""
    return _f.tau_mem_limit(_nonneg("v2", v2), _pos("psi_n", psi_n), _pos("delta_t", delta_t))


def lambda2_mean(mu1, norm2, psi_p):
    """Mean of the fast bulk rho_2: ``mu1^2 psi_p + ||sigma||^2 - mu1^2`` (docs/theory/random_features.md §5)."""
    return _f.lambda2_mean(checks.real_array("mu1", mu1), _nonneg("norm2", norm2), _pos("psi_p", psi_p))


def tau_gen_formula(mu1, norm2, psi_p, delta_t):
    """Operational ``tau_gen = psi_p / (Delta_t lambda2_mean)`` (package choice: the paper says only that
    ``tau_gen = O(1/Delta_t)``; docs/theory/random_features.md §5)."""
    return _f.tau_gen(checks.real_array("mu1", mu1), _nonneg("norm2", norm2), _pos("psi_p", psi_p),
                      _pos("delta_t", delta_t))


def delta_weight(psi_p, psi_n):
    """Weight of the delta peak at ``s_t^2``: ``max(0, 1 - (1 + psi_n)/psi_p)`` (SM eq 161)."""
    return max(0.0, float(_f.delta_weight(checks.positive_float("psi_p", psi_p), checks.positive_float("psi_n", psi_n))))


def regime(n, p):
    """``"I"`` for ``n < p`` (memorization phase after tau_mem), ``"II"`` for ``n > p``, else ``"threshold"``."""
    n = checks.positive_int("n", n, maximum=None)
    p = checks.positive_int("p", p, maximum=None)
    if n < p:
        return "I"
    if n > p:
        return "II"
    return "threshold"
