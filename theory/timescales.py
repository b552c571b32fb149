"""Closed-form timescales of the random-features score model (arXiv:2505.17638 MT §3, SM C.5, D).

These are the formulas of spec section 5, written out for fast evaluation; the tests check each
against the sympy derivation in :mod:`memlab.theory.rf_symbolic` (``derive_rf().functions``).
Time unit throughout: the paper's ``tau = k eta / d^2`` (``k`` GD steps of size ``eta`` on ``A``).
"""

from __future__ import annotations

import numpy as np

__all__ = ["first_bulk_edges", "lambda_min", "tau_mem", "tau_mem_limit", "lambda2_mean", "tau_gen",
           "delta_weight", "regime", "TIME_UNIT"]

TIME_UNIT = "tau = k*eta/d^2 (k GD steps of size eta on A; arXiv:2505.17638 MT eq 9)"


def first_bulk_edges(s2, v2, psi_p, psi_n):
    """Leading-order edges of rho_1: ``s_t^2 + v_t^2 (1 -+ sqrt(psi_p/psi_n))^2`` (SM eq 162)."""
    c = np.sqrt(np.asarray(psi_p, dtype=float) / psi_n)
    return s2 + v2 * (1.0 - c) ** 2, s2 + v2 * (1.0 + c) ** 2


def lambda_min(s2, v2, psi_p, psi_n):
    """``lambda_min = s_t^2 + v_t^2 (1 - sqrt(psi_p/psi_n))^2`` (MT §3 after Thm 3.2)."""
    return first_bulk_edges(s2, v2, psi_p, psi_n)[0]


def tau_mem(s2, v2, psi_p, psi_n, delta_t):
    """``tau_mem = psi_p / (Delta_t lambda_min)`` (MT §3; spec 5.1, correction 2)."""
    return psi_p / (delta_t * lambda_min(s2, v2, psi_p, psi_n))


def tau_mem_limit(v2, psi_n, delta_t):
    """``psi_p >> psi_n`` limit of :func:`tau_mem`: ``psi_n / (Delta_t v_t^2)`` (linear in n)."""
    return psi_n / (delta_t * v2)


def lambda2_mean(mu1, norm2, psi_p):
    """Mean of the fast bulk rho_2: ``mu1^2 psi_p + ||sigma||^2 - mu1^2`` (spec 4.5, derived)."""
    return mu1 ** 2 * psi_p + norm2 - mu1 ** 2


def tau_gen(mu1, norm2, psi_p, delta_t):
    """Operational ``tau_gen = psi_p / (Delta_t lambda2_mean)`` (spec 5.1, package choice)."""
    return psi_p / (delta_t * lambda2_mean(mu1, norm2, psi_p))


def delta_weight(psi_p, psi_n):
    """Weight of the delta peak at ``s_t^2``: ``max(0, 1 - (1 + psi_n)/psi_p)`` (SM eq 161)."""
    return max(0.0, 1.0 - (1.0 + psi_n) / psi_p)


def regime(n, p):
    """``"I"`` for ``n < p`` (memorization phase after tau_mem), ``"II"`` for ``n > p``, else ``"threshold"``."""
    if n < p:
        return "I"
    if n > p:
        return "II"
    return "threshold"
