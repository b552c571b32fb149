"""Fit a time weighting to measured transitions (arXiv:2508.17689v1 Eqs. 22-23, App. H.3;
docs/theory/capacity_crossover.md §8).

For a configuration with training-set size N and measured transition M_pt, a candidate weighting
``lam >= 0`` on the 26-point grid predicts ``S_M = sum_l lam_l (C (1 - M/N) - 1/(psi_l sigma^2 + 1))``
(normalised approximate losses, divided by ``d sigma^2``: package choice), the soft arg-min
``p(M) = softmax_M(-S_M^2 / tau)`` with ``tau = 1/20`` over M = 1..N, and ``Mbar = sum_M M p(M)``.  The
objective is ``sum_configs (Mbar/N - M_pt/N)^2 + beta sum_configs H(p)`` with ``beta = 1e-3``;
``lam = softplus(theta)``, L-BFGS-B from the ``paper`` preset (package choices).

Every formula comes from the crossover derivation (:func:`memlab.theory.crossover.derive_crossover`): ``S_M`` is
its grid gap ``Delta(M)`` at ``d = sigma^2 = 1`` through the two sums, ``r`` and ``1 - r/C`` its lambdified ratio.

Non-identifiability (docs/theory/capacity_crossover.md §8): the hard arg-min depends on ``lam`` only through
``r = sum lam_l/(psi_l sigma^2+1) / sum lam_l``; the fit effectively determines one number, r, with
``1 - r/C`` near the mean measured ratio.  The shape of the fitted ``lam`` comes from the initialisation
and the entropy penalty, not from the data; the overall scale acts as an inverse temperature.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import minimize
from scipy.special import logsumexp

from ..theory import checks, grid
from ..theory.crossover import derive_crossover

__all__ = ["WeightingFit", "fit_weighting"]


@dataclass(frozen=True)
class WeightingFit:
    """Fitted weighting: ``weights`` (26,) can be passed as ``predict_mstar(weighting=fit.weights)``.

    Attributes
    ----------
    weights : ndarray, shape (26,)
    r : float
        ``sum lam/(psi sigma^2+1) / sum lam`` of the fit (the identifiable quantity).
    ratio : float
        Implied ``M*/N = 1 - r/C``.
    mse : float
        Mean over configurations of ``(Mbar/N - M_pt/N)^2`` (the reported fit error; no entropy term).
    predicted : ndarray
        Soft-argmin ``Mbar/N`` per configuration.
    diagnostics : dict
        Optimiser status, iterations, the non-identifiability note.
    """

    weights: np.ndarray
    r: float
    ratio: float
    mse: float
    predicted: np.ndarray
    diagnostics: dict = field(default_factory=dict)


def _softplus(x):
    return np.logaddexp(0.0, x)


def fit_weighting(measured, *, C: float = 2.0, sigma2: float = 1.0, tau: float = 1.0 / 20.0, beta: float = 1e-3,
                  init="paper", maxiter: int = 500) -> WeightingFit:
    """Fit ``lam`` to measured transitions ``[(N, M_pt), ...]`` (docs/theory/capacity_crossover.md §8).

    Parameters
    ----------
    measured : sequence of (N, M_pt)
        One pair per configuration (configurations without a transition are left out by the caller).
    C, sigma2 : float
        Theorem 3.2 constant and sigma_*^2 of the normalised losses.
    tau, beta : float
        Soft-argmin temperature (1/20) and entropy penalty (1e-3).
    init : "paper", "uniform" or array (26,)
        Starting weighting.

    Returns
    -------
    WeightingFit

    References
    ----------
    arXiv:2508.17689v1 Eqs. 22-23, App. H.3 (Eq. 311).
    """
    if measured is None or isinstance(measured, (str, bytes)) or not hasattr(measured, "__iter__"):
        raise TypeError(f"measured must be a sequence of (N, M_pt) pairs (got {checks.show(measured)})")
    pairs = []
    for item in measured:
        if isinstance(item, (str, bytes)) or not hasattr(item, "__len__") or len(item) != 2:
            raise TypeError(f"measured must be a sequence of (N, M_pt) pairs (got the entry {checks.show(item)})")
        n = checks.positive_int("measured N", item[0])
        pairs.append((n, checks.real("measured M_pt", item[1], low=0.0, low_open=True, high=float(n))))
    if not pairs:
        raise ValueError("measured must contain at least one (N, M_pt) pair")
    C = checks.positive_float("C", C)
    sigma2 = checks.positive_float("sigma2", sigma2)
    tau = checks.positive_float("tau", tau)
    beta = checks.positive_float("beta", beta, allow_zero=True)
    maxiter = checks.positive_int("maxiter", maxiter, maximum=10 ** 6)
    der = derive_crossover()
    g = der.sum1_term(1.0, grid.psi(grid.paper_grid()), sigma2)  # normalised generalizing loss per grid time
    if isinstance(init, str):
        init = checks.choice("init", init, ("paper", "uniform"))
        lam0 = grid.PAPER_LAMBDA.copy() if init == "paper" else np.ones(26)
    else:
        lam0 = checks.weights("init", init, 26)
    theta0 = np.log(np.expm1(np.maximum(lam0, 1e-8)))
    Ms = [np.arange(1, n + 1, dtype=float) for n, _ in pairs]

    def parts(theta):
        lam = _softplus(theta)
        S0, S1 = lam.sum(), lam @ g
        preds, ents = [], []
        for (n, m), M in zip(pairs, Ms):
            S = der.gap_from_sums(M, n, C, 1.0, 1.0, S0, S1)   # Delta(M) / (d sigma^2), Eq. 23
            logits = -S * S / tau
            lp = logits - logsumexp(logits)
            p = np.exp(lp)
            preds.append(p @ M / n)
            ents.append(-(p * lp).sum())
        return np.array(preds), np.array(ents)

    target = np.array([m / n for n, m in pairs])

    def objective(theta):
        preds, ents = parts(theta)
        return float(((preds - target) ** 2).sum() + beta * ents.sum())

    opt = minimize(objective, theta0, method="L-BFGS-B", options={"maxiter": maxiter})
    lam = _softplus(opt.x)
    preds, _ = parts(opt.x)
    r = float(der.r_from_sums(lam.sum(), lam @ g))
    mse = float(np.mean((preds - target) ** 2))
    if not np.isfinite(mse):
        raise RuntimeError(f"fit_weighting did not converge: objective {opt.fun}, status {opt.status}: {opt.message}")
    return WeightingFit(weights=lam, r=r, ratio=float(der.ratio_from_sums(C, lam.sum(), lam @ g)), mse=mse,
                        predicted=preds,
                        diagnostics={"success": bool(opt.success), "message": str(opt.message), "nit": int(opt.nit),
                                     "objective": float(opt.fun), "mean_measured_ratio": float(target.mean()),
                                     "note": "only r = sum lam/(psi sigma^2+1)/sum lam is identified; the shape of "
                                             "lam comes from the initialisation and the entropy penalty"})
