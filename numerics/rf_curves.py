"""Closed-form learning curves of the random-features score model (arXiv:2505.17638 MT eqs 9-11;
SM Prop C.1, eqs 53, 55, 164-165; docs/theory/random_features.md §2).

Gradient flow on ``B = A / sqrt(p)`` from ``B(0) = 0`` is solved exactly in the eigenbasis of ``U``
(``U = sum_i lambda_i u_i u_i^T``, ``e_i = exp(-2 Delta_t lambda_i tau / psi_p)``,
``f_i = -(1 - e_i) / lambda_i``)::

    L_train(tau) = 1 - (1/d) sum_i N'_ii / lambda_i (1 - e_i^2)
    L_test(tau)  = 1 + (1/d) [ sum_ij f_i f_j U~'_ij N'_ij + 2 sum_i f_i C'_ii ]

with ``N = V V^T``, ``C = V V~^T`` and ``M' = Q^T M Q``; ``L_gen = L_test - L_train``; the score error
against the noised law follows from the DSM identity ``L_test = Delta_t E_score + 1 - Delta_t J/d``
(docs/theory/random_features.md §1), ``J/d = Tr(Sigma_t^{-1}) / d``.  One symmetric eigendecomposition, then ``O(k^2)`` per
``tau`` (``k`` = number of modes that enter the losses).  For Gaussian-equivalent matrices with
``p > n + d`` only the ``n + d`` modes in the span of ``[G, W_bar]`` enter (the delta-peak eigenvectors
satisfy ``W_bar^T u = 0``, docs/theory/random_features.md §2), and they come from an ``(n + d) x (n + d)`` Gram
matrix.

Times are in the paper's unit ``tau = k eta / d^2``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..theory import checks
from ..theory.gep import GEPConstants
from ..theory.rf_model import RFModel
from ..theory.schedules import ou_sigma_t
from .readoffs import argmin_log_parabola, first_crossing_log
from .rf_matrices import GEPMatrices, TrueFeatureMatrices, gram_factor, population_matrix
from .rf_spectrum import SpectrumResult, solve_stieltjes

__all__ = ["EigenModel", "LearningCurves", "CurveReadOff", "eigen_model", "closed_form_curves",
           "asymptotic_train_loss", "read_off_timescales", "validate_tau"]


@dataclass(frozen=True)
class EigenModel:
    """The losses' ingredients in the eigenbasis of ``U`` (docs/theory/random_features.md §2).

    Attributes
    ----------
    lam : ndarray (k,)
        Eigenvalues of ``U`` of the modes kept.
    n_diag, c_diag : ndarray (k,)
        ``N'_ii`` and ``C'_ii``.
    M : ndarray (k, k)
        ``U~' * N'`` (element-wise).
    d, psi_p, delta_t, j_over_d : float
        Dimension, ``p/d``, ``Delta_t``, ``Tr(Sigma_t^{-1})/d``.
    p : int
        Total number of modes; ``p - k`` were dropped because ``V`` has no component on them.
    """

    lam: np.ndarray
    n_diag: np.ndarray
    c_diag: np.ndarray
    M: np.ndarray = field(repr=False)
    d: int
    psi_p: float
    delta_t: float
    j_over_d: float
    p: int

    @property
    def bayes_floor(self) -> float:
        """``1 - Delta_t J / d``: the smallest possible test loss (``e^{-2t}`` for ``Sigma = I``)."""
        return 1.0 - self.delta_t * self.j_over_d


def _j_over_d(t: float, cov_eigs: np.ndarray) -> float:
    """``J/d = Tr(Sigma_t^{-1}) / d`` for Gaussian data (the Fisher information of ``P_t`` per dimension)."""
    return float(np.mean(1.0 / ou_sigma_t(t, cov_eigs)))


def eigen_model(mats) -> EigenModel:
    """Diagonalise ``U`` once for :func:`closed_form_curves`.

    Parameters
    ----------
    mats : GEPMatrices or TrueFeatureMatrices
        GEP matrices with ``p > n + d`` use the ``(n + d)``-dimensional Gram route (``O(p (n + d)^2)``);
        everything else a dense ``eigh`` of ``U`` (``O(p^3)``).
    """
    if isinstance(mats, GEPMatrices):
        c = mats.constants
        p, d = mats.p, mats.d
        cov = mats.cov_eigs
        Z = gram_factor(mats)
        k = Z.shape[1]
        if p > k:
            lz, Y = np.linalg.eigh(Z.T @ Z)
            if lz[0] <= 1e-12 * lz[-1]:
                raise np.linalg.LinAlgError(f"the [G, W_bar] Gram matrix is rank-deficient (smallest eigenvalue "
                                            f"{lz[0]:.3g} of {lz[-1]:.3g}) at n={mats.n}, p={p}, d={d}: draw the "
                                            f"model with another seed")
            Wq = (Y.T @ (Z.T @ mats.W_bar)) / np.sqrt(lz)[:, None]          # Q^T W_bar  (k x d)
            lam = lz + c.s_t2
        else:
            if mats.U is None:
                raise ValueError("p <= n + d needs the dense U: build the matrices with dense=True")
            lam, Q = np.linalg.eigh(mats.U)
            Wq = Q.T @ mats.W_bar
        Vq = c.b_t * Wq
        Ut = population_matrix(c, Wq, ou_sigma_t(mats.t, cov))
        nd = np.einsum("ij,ij->i", Vq, Vq)
        return EigenModel(lam=lam, n_diag=nd, c_diag=nd.copy(), M=Ut * (Vq @ Vq.T), d=d, psi_p=p / d,
                          delta_t=c.delta_t, j_over_d=_j_over_d(mats.t, cov), p=p)
    if isinstance(mats, TrueFeatureMatrices):
        lam, Q = np.linalg.eigh(mats.U)
        Vq, Vtq = Q.T @ mats.V, Q.T @ mats.V_tilde
        Ut = Q.T @ mats.U_tilde @ Q
        return EigenModel(lam=lam, n_diag=np.einsum("ij,ij->i", Vq, Vq), c_diag=np.einsum("ij,ij->i", Vq, Vtq),
                          M=Ut * (Vq @ Vq.T), d=mats.d, psi_p=mats.p / mats.d, delta_t=mats.constants.delta_t,
                          j_over_d=_j_over_d(mats.t, mats.cov_eigs), p=mats.p)
    raise TypeError(f"mats must be GEPMatrices or TrueFeatureMatrices (got {type(mats).__name__})")


def validate_tau(tau, name="tau") -> np.ndarray:
    """1-D float array of training times ``>= 0``; ``inf`` allowed (the ``tau = infinity`` limit).
    ``name`` is the parameter named in the error message."""
    arr = np.atleast_1d(checks.real_array(name, tau, finite=False))
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D sequence of training times >= 0 (inf allowed; got shape "
                         f"{arr.shape})")
    if np.any(np.isnan(arr)) or np.any(arr < 0) or np.any(arr == -np.inf):
        bad = float(arr[np.isnan(arr) | (arr < 0)][0])
        raise ValueError(f"{name} must be >= 0 (inf allowed for the tau -> infinity limit; got {bad!r})")
    return arr


def closed_form_curves(model: EigenModel, tau, *, gd_step=None):
    """Train and test loss at every ``tau`` (docs/theory/random_features.md §2), exact for gradient flow or
    for discrete GD.

    Parameters
    ----------
    model : EigenModel
    tau : array_like
        Training times ``>= 0`` in units ``k eta / d^2``; ``inf`` gives ``f_i = -1/lambda_i``.
    gd_step : float, optional
        ``delta_tau`` of discrete GD: ``e_i`` becomes ``(1 - 2 Delta_t lambda_i delta_tau / psi_p)^k`` with
        ``k = tau / delta_tau``, which reproduces the GD iterates exactly.

    Returns
    -------
    (train, test) : ndarray, ndarray
    """
    tau = validate_tau(tau)
    if gd_step is not None:
        gd_step = checks.positive_float("gd_step", gd_step)
    rate = 2.0 * model.delta_t * model.lam / model.psi_p
    fin = np.isfinite(tau)
    E = np.zeros((tau.size, model.lam.size))
    if gd_step is None:
        E[fin] = np.exp(-np.outer(tau[fin], rate))
    else:
        base = 1.0 - rate * gd_step
        E[fin] = np.power(base[None, :], np.round(tau[fin] / gd_step)[:, None])
    train = 1.0 - ((1.0 - E * E) @ (model.n_diag / model.lam)) / model.d
    F = -(1.0 - E) / model.lam
    test = 1.0 + (np.einsum("ti,ti->t", F @ model.M, F) + 2.0 * F @ model.c_diag) / model.d
    return train, test


def asymptotic_train_loss(spec: SpectrumResult, tau) -> np.ndarray:
    """High-dimensional ``L_train(tau) = 1 - b_t^2 psi_p int d mu_s(lambda)/lambda (1 - e^{-4 Delta_t lambda tau/psi_p})``
    (docs/theory/random_features.md §2, derived from Theorem 3.1); ``tau = inf`` uses ``1 - b_t^2 psi_p s(0)``
    with ``s(0)`` solved directly at ``z = 0`` (below the spectrum, so real)."""
    tau = validate_tau(tau)
    c = spec.constants
    b2, pp = c.b_t ** 2, spec.model.psi_p
    lam, ws = spec.nodes, spec.weights_s
    fin = np.isfinite(tau)
    out = np.empty(tau.size)
    E = np.exp(-np.outer(tau[fin], 4.0 * c.delta_t * lam / pp))
    out[fin] = 1.0 - b2 * pp * ((1.0 - E) @ (ws / lam))
    if np.any(~fin):
        sol = solve_stieltjes(spec.model, np.array([0.0]), eps=np.array([1e-10 * c.s_t2]))
        out[~fin] = 1.0 - b2 * pp * float(sol.s[0].real)
    return out


@dataclass(frozen=True)
class LearningCurves:
    """Training, test and generalization losses and the score error along training (docs/theory/random_features.md §2).

    Attributes
    ----------
    tau : ndarray
        Training times in the paper's unit ``tau = k eta / d^2`` (``inf`` allowed).
    train : ndarray
        ``L_train(tau)`` (per ``d``; 1 at ``tau = 0``).
    test, gen, score_error : ndarray or None
        ``L_test``, ``L_gen = L_test - L_train`` and ``E_score = (L_test - 1 + Delta_t J/d)/Delta_t``.
        For ``method="asymptotic"`` they come from the two-resolvent deterministic equivalent
        (docs/theory/random_features.md §9); ``None`` only there with an anisotropic covariance.
    bayes_floor : float
        ``1 - Delta_t J / d`` (``e^{-2t}`` for ``Sigma = I``): the smallest test loss.
    method : str
        ``"gep"``, ``"features"``, ``"asymptotic"`` or ``"gd"``.
    model : RFModel
    diagnostics : dict
        Method-specific (number of modes, GD step and noise, wall time, ...).
    """

    tau: np.ndarray
    train: np.ndarray
    test: np.ndarray | None
    gen: np.ndarray | None
    score_error: np.ndarray | None
    bayes_floor: float
    method: str
    model: RFModel
    diagnostics: dict = field(default_factory=dict, repr=False)

    @property
    def constants(self) -> GEPConstants:
        """Gaussian-equivalence constants of the model."""
        return self.model.constants


@dataclass(frozen=True)
class CurveReadOff:
    """Timescales read off learning curves (package choices, docs/theory/random_features.md §6).

    Attributes
    ----------
    tau_gen_score_min : float
        Time of the score-error minimum (parabola in ``log tau``).
    tau_mem_half_rise : float or None
        First time after ``tau_gen_score_min`` where ``L_gen`` reaches ``mem_fraction`` of its final value
        (log-linear interpolation); ``None`` if it never does on the grid.
    score_min, gen_final : float
        The minimum score error and the final ``L_gen`` (at ``tau = inf`` when on the grid).
    mem_fraction : float
    """

    tau_gen_score_min: float
    tau_mem_half_rise: float | None
    score_min: float
    gen_final: float
    mem_fraction: float


def read_off_timescales(curves: LearningCurves, *, mem_fraction=0.5) -> CurveReadOff:
    """``tau_gen_score_min`` = time of the score-error minimum; ``tau_mem_half_rise`` = first time after it where
    ``L_gen`` reaches ``mem_fraction`` of its final value (``tau = inf`` when on the grid, else the last logged
    time).

    Both are package choices (docs/theory/random_features.md §6; they are separate quantities from the
    formulas of :func:`memlab.predict_timescales`): the score error is minimal where the fast modes have
    converged and the slow (memorization) modes have not started; ``L_gen`` rises from ``O(psi_n^{-1/2})`` to
    its final value as the slow modes converge, and its half-rise time is proportional to their relaxation
    time.  Both use :mod:`memlab.numerics.readoffs` (parabola / linear interpolation in ``log tau``).
    """
    if not isinstance(curves, LearningCurves):
        raise TypeError(f"curves must be a LearningCurves from rf_learning_curves (got {type(curves).__name__})")
    if curves.score_error is None or curves.gen is None:
        raise ValueError(f"these method={curves.method!r} curves have no test loss (anisotropic covariance): time "
                         f"read-offs need 'gep', 'features', 'gd', or 'asymptotic' with isotropic data")
    f = checks.probability("mem_fraction", mem_fraction)
    tau = curves.tau
    fin = np.isfinite(tau) & (tau > 0)
    tf, sc, gn = tau[fin], curves.score_error[fin], curves.gen[fin]
    tg = argmin_log_parabola(tf, sc)
    g_end = float(curves.gen[~np.isfinite(tau)][0]) if np.any(~np.isfinite(tau)) else float(gn[-1])
    tm = first_crossing_log(tf, gn, f * g_end, after=tg) if g_end > 0 else None
    return CurveReadOff(tau_gen_score_min=tg, tau_mem_half_rise=tm, score_min=float(np.min(sc)), gen_final=g_end,
                        mem_fraction=f)
