"""Public learning-curve and phase-diagram API of the random-features score model (arXiv:2505.17638
MT §3, Fig. 5; spec 2, 5, 6).

:func:`rf_learning_curves` gives ``L_train``, ``L_test``, ``L_gen`` and the score error along training
by four routes: the exact closed form on a finite-size Gaussian-equivalent ``U`` (``"gep"``), the same
on the true random-features matrices of the real activation (``"features"``), the high-dimensional
training loss from Theorem 3.1 (``"asymptotic"``), and a gradient-descent simulation (``"gd"``).
:func:`rf_phase_diagram` maps ``L_gen`` at fixed training times over ``(psi_p, psi_n)``.
Times are in the paper's unit ``tau = k eta / d^2``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import brentq

from ..theory import _checks
from ..theory import timescales as ts
from ..theory.gep import GEPConstants, gep_constants
from .rf_curves import (LearningCurves, asymptotic_train_loss, closed_form_curves, eigen_model,
                        validate_taus)
from .rf_gd import simulate_gd
from .rf_matrices import gep_matrices, true_feature_matrices
from .rf_spectrum import rf_spectrum

__all__ = ["rf_learning_curves", "rf_phase_diagram", "PhaseDiagram", "METHODS"]

METHODS = ("gep", "features", "asymptotic", "gd")


def _sizes(psi_p, psi_n, d):
    psi_p = _checks.positive_float("psi_p", psi_p)
    psi_n = _checks.positive_float("psi_n", psi_n)
    d = _checks.positive_int("d", d)
    p, n = int(round(psi_p * d)), int(round(psi_n * d))
    if p < 1 or n < 1:
        raise ValueError(f"d={d} is too small for psi_p={psi_p:g}, psi_n={psi_n:g}: need p = round(psi_p*d) >= 1 "
                         f"and n = round(psi_n*d) >= 1")
    return psi_p, psi_n, d, p, n


def rf_learning_curves(psi_p, psi_n, t, taus, *, d=100, activation="tanh", sigma_x=1.0, center=False,
                       method="gep", seed=0, delta_tau=None, noise="exact") -> LearningCurves:
    """Learning curves of the random-features score model trained by gradient flow/descent from ``A = 0``.

    Parameters
    ----------
    psi_p, psi_n : float
        ``p/d`` and ``n/d`` (> 0); ``p = round(psi_p d)``, ``n = round(psi_n d)`` must be >= 1.
    t : float
        Diffusion time (> 0).
    taus : array_like
        Training times ``>= 0`` in units ``k eta / d^2``; ``inf`` is the end of training (not for ``"gd"``).
    d : int, default 100
        Dimension of the finite-size model (ignored by ``"asymptotic"``).
    activation, sigma_x, center
        As in :func:`memlab.gep_constants` (``Sigma = sigma_x^2 I``).
    method : {"gep", "features", "asymptotic", "gd"}
        ``"gep"``: exact gradient-flow closed form (spec 2.3) on the seeded Gaussian-equivalent
        ``U, U~, V`` (Lemma C.1), ``O(p (n + d)^2)``.  ``"features"``: the same on the true
        random-features matrices of the real activation (exact noise average; ``O(p^3)``).
        ``"asymptotic"``: ``d -> infinity`` training loss from the ``s``-measure of Theorem 3.1 (spec 2.4);
        ``test``, ``gen`` and ``score_error`` are ``None`` (they need a two-resolvent quantity, spec 11.1).
        ``"gd"``: full-batch GD on the true features (:func:`memlab.numerics.rf_gd.simulate_gd`); the
        returned ``tau`` are the requested times rounded to whole steps (zeros first, then sorted, unique).
    seed : int, default 0
        Seed of ``W``, ``X`` (and ``Omega`` / the GD noise).
    delta_tau : float, optional
        GD step (``"gd"`` only); default ``1e-2 psi_p / Delta_t``; must be below ``psi_p/(Delta_t lambda_max)``.
    noise : {"exact", "fresh"}
        GD noise: exact expectation (``m = infinity``) or one fresh draw per point per step.

    Returns
    -------
    LearningCurves

    Raises
    ------
    ValueError
        Non-positive or non-finite ``psi_p``, ``psi_n``, ``t``; negative or NaN ``taus``; unknown
        ``method``; ``d`` too small for the requested ``psi``; ``delta_tau`` above the stability bound.

    References
    ----------
    arXiv:2505.17638 MT eqs 8-11 and Fig. 5; SM Prop C.1 (eqs 53, 55, 164-165), eq 218.

    Examples
    --------
    >>> c = rf_learning_curves(8, 2, 0.1, [0.0, 10.0, float("inf")], d=20)
    >>> float(c.train[0]), bool(c.gen[-1] > 0)
    (1.0, True)
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)} (got {method!r})")
    psi_p, psi_n, d, p, n = _sizes(psi_p, psi_n, d)
    t = _checks.positive_float("t", t)
    tau = validate_taus(taus)
    inputs = dict(psi_p=psi_p, psi_n=psi_n, t=t, d=d, p=p, n=n, activation=getattr(activation, "__name__", activation),
                  sigma_x=sigma_x, center=center, seed=seed, method=method)
    t0 = time.perf_counter()
    if method == "asymptotic":
        spec = rf_spectrum(psi_p, psi_n, t, activation=activation, sigma_x=sigma_x, center=center)
        c = spec.constants
        train = asymptotic_train_loss(spec, tau)
        floor = 1.0 - c.delta_t / c.gamma2
        return LearningCurves(tau=tau, train=train, test=None, gen=None, score_error=None, bayes_floor=floor,
                              method=method, inputs=inputs, constants=c,
                              diagnostics=dict(wall_s=time.perf_counter() - t0, bulks=spec.bulks,
                                               note="test/gen/score_error need a two-resolvent quantity "
                                                    "(spec 11.1); use method='gep' at finite d"))
    if method == "gep":
        mats = gep_matrices(n, p, d, t, activation=activation, sigma_x=sigma_x, center=center, seed=seed,
                            dense=p <= n + d)
        em = eigen_model(mats)
        train, test = closed_form_curves(em, tau)
        diag = dict(n_modes=int(em.lam.size), lambda_max=float(em.lam.max()))
    else:
        # feature correlations reach ~0.9 at d = 10: allow a long Mehler series (it stops early at large d)
        mats = true_feature_matrices(n, p, d, t, activation=activation, sigma_x=sigma_x, center=center, seed=seed,
                                     k_max=120, n_nodes=128, tol=1e-10)
        em = eigen_model(mats)
        if method == "features":
            train, test = closed_form_curves(em, tau)
            diag = dict(n_modes=int(em.lam.size), lambda_max=float(em.lam.max()), mehler=mats.diagnostics)
        else:
            if np.any(~np.isfinite(tau)):
                raise ValueError("taus must be finite for method='gd' (a simulation cannot reach tau = inf)")
            zero = tau == 0                      # tau = 0 is B = 0: both losses are exactly 1
            g = simulate_gd(mats, tau[~zero], delta_tau=delta_tau, noise=noise, seed=seed) if np.any(~zero) else None
            ones = np.ones(int(zero.sum()))
            tau = np.concatenate([0.0 * ones] + ([g.tau] if g else []))
            train = np.concatenate([ones] + ([g.train] if g else []))
            test = np.concatenate([ones] + ([g.test] if g else []))
            dt = g.delta_tau if g else delta_tau
            diag = dict(gd=g.diagnostics if g else {}, delta_tau=dt, noise=noise)
            inputs.update(delta_tau=dt, noise=noise)
    c = mats.constants
    gen = test - train
    score = (test - 1.0 + em.delta_t * em.j_over_d) / em.delta_t
    diag["wall_s"] = time.perf_counter() - t0
    return LearningCurves(tau=tau, train=train, test=test, gen=gen, score_error=score, bayes_floor=em.bayes_floor,
                          method=method, inputs=inputs, constants=c, diagnostics=diag)


@dataclass(frozen=True)
class PhaseDiagram:
    """``L_gen`` at fixed training times over a ``(psi_p, psi_n)`` grid (arXiv:2505.17638 Fig. 5C).

    Attributes
    ----------
    psi_p, psi_n : ndarray
        Grid axes.
    tau : ndarray
        Training times (units ``k eta / d^2``).
    gen : ndarray (len(tau), len(psi_p), len(psi_n))
        Generalization loss ``L_test - L_train`` from the GEP closed form at dimension ``d``.
    psi_n_mem : list of list
        For each ``tau`` and ``psi_p``: the ``psi_n`` at which the paper's ``tau_mem`` equals ``tau``
        (memorization has set in at ``tau`` for smaller ``psi_n``), or ``None`` when ``tau_mem`` stays
        above/below ``tau`` on ``(0, psi_p)``.
    tau_gen : ndarray
        Operational ``tau_gen(psi_p)`` (independent of ``psi_n``; spec 5.1).
    d : int
    constants : GEPConstants
    diagnostics : dict
    """

    psi_p: np.ndarray
    psi_n: np.ndarray
    tau: np.ndarray
    gen: np.ndarray
    psi_n_mem: list
    tau_gen: np.ndarray
    d: int
    constants: GEPConstants = field(repr=False)
    diagnostics: dict = field(default_factory=dict, repr=False)


def _grid(name, values):
    arr = np.atleast_1d(np.asarray(values, dtype=np.float64))
    if arr.ndim != 1 or arr.size == 0 or not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise ValueError(f"{name} must be a non-empty 1-D sequence of finite values > 0")
    return arr


def rf_phase_diagram(psi_p_grid, psi_n_grid, t, tau, *, d=25, activation="tanh", sigma_x=1.0, center=False,
                     seed=0) -> PhaseDiagram:
    """Generalization loss at training time(s) ``tau`` over ``(psi_p, psi_n)`` (Fig. 5C analogue).

    Each grid point is the exact closed form on one seeded Gaussian-equivalent model at dimension ``d``
    (cost ``O(p (n + d)^2)``; ``d = 25`` keeps a 10 x 10 grid at ``psi <= 64`` to seconds).  The
    boundaries come from the closed forms: ``n* = p`` (``psi_n = psi_p``), ``tau_mem(psi_p, psi_n) = tau``
    and ``tau_gen(psi_p) = tau``.

    Returns
    -------
    PhaseDiagram
    """
    pp = _grid("psi_p_grid", psi_p_grid)
    pn = _grid("psi_n_grid", psi_n_grid)
    tau_arr = validate_taus(tau, "tau")
    t = _checks.positive_float("t", t)
    d = _checks.positive_int("d", d)
    for a in pp:
        for b in pn:
            _sizes(a, b, d)
    c = gep_constants(t, activation=activation, sigma_x=sigma_x, center=center)
    t0 = time.perf_counter()
    gen = np.empty((tau_arr.size, pp.size, pn.size))
    for i, a in enumerate(pp):
        for j, b in enumerate(pn):
            cur = rf_learning_curves(a, b, t, tau_arr, d=d, activation=activation, sigma_x=sigma_x, center=center,
                                     seed=seed, method="gep")
            gen[:, i, j] = cur.gen
    mem = []
    for tv in tau_arr:
        row = []
        for a in pp:
            f = lambda x, a=a: ts.tau_mem(c.s_t2, c.v_t2, a, x, c.delta_t) - tv  # noqa: E731
            lo, hi = 1e-6 * a, a * (1 - 1e-12)
            row.append(float(brentq(f, lo, hi, xtol=1e-12 * a)) if np.isfinite(tv) and f(lo) < 0 < f(hi) else None)
        mem.append(row)
    tg = np.array([ts.tau_gen(c.mu1, c.norm2, a, c.delta_t) for a in pp])
    return PhaseDiagram(psi_p=pp, psi_n=pn, tau=tau_arr, gen=gen, psi_n_mem=mem, tau_gen=tg, d=d, constants=c,
                        diagnostics=dict(wall_s=time.perf_counter() - t0, seed=seed))
