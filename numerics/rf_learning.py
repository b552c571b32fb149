"""Public learning-curve and phase-diagram API of the random-features score model (arXiv:2505.17638
MT §3, Fig. 5; docs/theory/random_features.md §2, §5).

:func:`rf_learning_curves` gives ``L_train``, ``L_test``, ``L_gen`` and the score error along training
by four routes: the exact closed form on a finite-size Gaussian-equivalent ``U`` (``"gep"``), the same
on the true random-features matrices of the real activation (``"features"``), the high-dimensional
curves (``"asymptotic"``: Theorem 3.1 and the two-resolvent deterministic equivalent of
docs/theory/random_features.md §9), and a gradient-descent simulation (``"gd"``).
:func:`rf_phase_diagram` maps ``L_gen`` at fixed training times over ``(psi_p, psi_n)``.
Times are in the paper's unit ``tau = k eta / d^2``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import brentq

from ..theory import checks
from ..theory import timescales as ts
from ..theory.rf_model import MAX_RATIO, RFModel
from .rf_curves import LearningCurves, closed_form_curves, eigen_model, asymptotic_train_loss, validate_tau
from .rf_gd import simulate_gd
from .rf_matrices import gep_matrices, true_feature_matrices
from .rf_spectrum import rf_spectrum
from .rf_test_loss import asymptotic_losses
from .threads import blas_threads, thread_budget

__all__ = ["rf_learning_curves", "rf_phase_diagram", "PhaseDiagram", "METHODS"]

METHODS = ("gep", "features", "asymptotic", "gd")
NOISES = ("exact", "fresh")


def _check_model(model):
    if not isinstance(model, RFModel):
        raise TypeError(f"model must be an RFModel (got {type(model).__name__}); e.g. RFModel(psi_p=64, psi_n=8, "
                        f"t=0.1, d=100)")
    return model


def rf_learning_curves(model: RFModel, tau, *, method="gep", delta_tau=None, noise="exact",
                       threads: int | None = None) -> LearningCurves:
    """Learning curves of the random-features score model trained by gradient flow/descent from ``A = 0``.

    Parameters
    ----------
    model : RFModel
        ``psi_p``, ``psi_n``, ``t``, ``d`` (finite-size routes: ``p = round(psi_p d)``, ``n = round(psi_n d)``,
        both >= 1; ignored by ``"asymptotic"``), activation, data covariance and ``seed`` (``W``, ``X``,
        ``Omega``, the GD noise).
    tau : array_like
        Training times ``>= 0`` in units ``k eta / d^2``; ``inf`` is the end of training (not for ``"gd"``).
    method : {"gep", "features", "asymptotic", "gd"}
        ``"gep"``: exact gradient-flow closed form (docs/theory/random_features.md §2) on the seeded
        Gaussian-equivalent ``U, U~, V`` (SM Lemma C.1), ``O(p (n + d)^2)``.  ``"features"``: the same on the
        true random-features matrices of the real activation (exact noise average; ``O(p^3)``).
        ``"asymptotic"``: ``d -> infinity`` curves: training and test loss, gap and score error from the
        deterministic equivalent of the one- and two-resolvent traces of ``U`` integrated over a contour
        (:func:`memlab.numerics.rf_test_loss.asymptotic_losses`, docs/theory/random_features.md §9; ``tau = inf``
        at ``z = 0``); ``diagnostics`` holds the quadrature check.  With an anisotropic ``covariance`` only the
        training loss (from the ``s``-measure of Theorem 3.1); ``test``, ``gen``, ``score_error`` are then ``None``.
        ``"gd"``: full-batch GD on the true features (:func:`memlab.numerics.rf_gd.simulate_gd`); the
        returned ``tau`` are the requested times rounded to whole steps (zeros first, then sorted, unique).
    delta_tau : float, optional
        GD step (``"gd"`` only: any other method rejects it); default ``1e-2 psi_p / Delta_t``; must be below
        ``psi_p/(Delta_t lambda_max)``.  A GD run takes at most ``10**10`` steps (``tau / delta_tau``).
    noise : {"exact", "fresh"}
        GD noise (``"gd"`` only: any other method rejects ``"fresh"``): exact expectation (``m = infinity``) or
        one fresh draw per point per step.
    threads : int, optional
        Threads for BLAS and numba; default the package's thread policy
        (:func:`memlab.numerics.threads.thread_budget`).

    Returns
    -------
    LearningCurves

    Raises
    ------
    ValueError
        Negative or NaN ``tau``; unknown ``method`` or ``noise``; ``delta_tau`` or ``noise="fresh"`` with a method
        other than ``"gd"``; ``d`` too small for the model's ratios; ``delta_tau`` above the stability bound;
        a GD horizon beyond ``10**10`` steps.
    TypeError
        ``model`` is not an :class:`~memlab.theory.rf_model.RFModel`; a complex, string or boolean ``tau``.

    References
    ----------
    arXiv:2505.17638 MT eqs 8-11 and Fig. 5; SM Prop C.1 (eqs 53, 55, 164-165), eq 218.

    Examples
    --------
    >>> c = rf_learning_curves(RFModel(8, 2, 0.1, d=20), [0.0, 10.0, float("inf")])
    >>> float(c.train[0]), bool(c.gen[-1] > 0)
    (1.0, True)
    """
    budget = thread_budget(threads).n  # validates threads
    with blas_threads(budget):
        return _learning_curves(model, tau, method, delta_tau, noise, budget)


def _isotropic(model):
    th = model.thetas
    return th.size == 1 or np.ptp(th) <= 1e-12 * np.max(th)


def _learning_curves(model, tau, method, delta_tau, noise, threads):
    _check_model(model)
    method = checks.choice("method", method, METHODS)
    noise = checks.choice("noise", noise, NOISES)
    if delta_tau is not None:
        delta_tau = checks.positive_float("delta_tau", delta_tau)
    if method != "gd":
        checks.ignored("delta_tau", delta_tau, None, reason=f"only method='gd' takes a step (got method={method!r})")
        checks.ignored("noise", noise, "exact", reason=f"only method='gd' draws noise (got method={method!r}; the "
                                                       f"closed forms average it exactly)")
    tau = validate_tau(tau)
    t0 = time.perf_counter()
    if method == "asymptotic":
        if _isotropic(model):
            r = asymptotic_losses(model, tau)
            diag = dict(r.diagnostics, traces=r.traces, wall_s=time.perf_counter() - t0)
            return LearningCurves(tau=tau, train=r.train, test=r.test, gen=r.gen, score_error=r.score_error,
                                  bayes_floor=r.bayes_floor, method=method, model=model, diagnostics=diag)
        spec = rf_spectrum(model, threads=threads)
        c = spec.constants
        train = asymptotic_train_loss(spec, tau)
        floor = 1.0 - c.delta_t / c.gamma2
        return LearningCurves(tau=tau, train=train, test=None, gen=None, score_error=None, bayes_floor=floor,
                              method=method, model=model,
                              diagnostics=dict(wall_s=time.perf_counter() - t0, bulks=spec.bulks,
                                               note="anisotropic covariance: the asymptotic test loss "
                                                    "(docs/theory/random_features.md §9) needs isotropic data; "
                                                    "use method='gep' at finite d"))
    n, p, d = model.sizes()
    if method == "gep":
        em = eigen_model(gep_matrices(model, dense=p <= n + d))
        train, test = closed_form_curves(em, tau)
        diag = dict(n_modes=int(em.lam.size), lambda_max=float(em.lam.max()))
    else:
        # feature correlations reach ~0.9 at d = 10: allow a long Mehler series (it stops early at large d)
        mats = true_feature_matrices(model, k_max=120, n_nodes=128, tol=1e-10)
        em = eigen_model(mats)
        if method == "features":
            train, test = closed_form_curves(em, tau)
            diag = dict(n_modes=int(em.lam.size), lambda_max=float(em.lam.max()), mehler=mats.diagnostics)
        else:
            if np.any(~np.isfinite(tau)):
                raise ValueError("tau must be finite for method='gd' (a simulation cannot reach tau = inf)")
            zero = tau == 0                      # tau = 0 is B = 0: both losses are exactly 1
            g = (simulate_gd(mats, tau[~zero], delta_tau=delta_tau, noise=noise, threads=threads)
                 if np.any(~zero) else None)
            ones = np.ones(int(zero.sum()))
            tau = np.concatenate([0.0 * ones] + ([g.tau] if g else []))
            train = np.concatenate([ones] + ([g.train] if g else []))
            test = np.concatenate([ones] + ([g.test] if g else []))
            diag = dict(gd=g.diagnostics if g else {}, delta_tau=g.delta_tau if g else delta_tau, noise=noise)
    gen = test - train
    score = (test - 1.0 + em.delta_t * em.j_over_d) / em.delta_t
    diag["wall_s"] = time.perf_counter() - t0
    return LearningCurves(tau=tau, train=train, test=test, gen=gen, score_error=score, bayes_floor=em.bayes_floor,
                          method=method, model=model, diagnostics=diag)


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
        Generalization loss ``L_test - L_train`` from the GEP closed form at the model's dimension ``d``.
    psi_n_mem : list of list
        For each ``tau`` and ``psi_p``: the ``psi_n`` at which ``tau_mem_formula`` equals ``tau``
        (memorization has set in at ``tau`` for smaller ``psi_n``), or ``None`` when ``tau_mem_formula`` stays
        above/below ``tau`` on ``(0, psi_p)``.
    tau_gen_formula : ndarray
        ``tau_gen_formula(psi_p)`` (independent of ``psi_n``; docs/theory/random_features.md §5).
    model : RFModel
        The model that gave ``t``, ``d``, activation, covariance and seed (its ratios are replaced by the grid).
    diagnostics : dict
    """

    psi_p: np.ndarray
    psi_n: np.ndarray
    tau: np.ndarray
    gen: np.ndarray
    psi_n_mem: list
    tau_gen_formula: np.ndarray
    model: RFModel
    diagnostics: dict = field(default_factory=dict, repr=False)


def _grid(name, values):
    arr = np.atleast_1d(checks.real_array(name, values, finite=False))
    if arr.ndim != 1 or arr.size == 0 or not np.all(np.isfinite(arr)) or np.any(arr <= 0) or np.any(arr > MAX_RATIO):
        raise ValueError(f"{name} must be a non-empty 1-D sequence of finite values in (0, {MAX_RATIO:.4g}] "
                         f"(got {checks.show(values)})")
    if arr.size > _MAX_GRID:
        raise ValueError(f"{name} must have at most {_MAX_GRID} values (got {arr.size}): each grid point is a "
                         f"closed-form solve")
    return arr


_MAX_GRID = 10_000


def rf_phase_diagram(model: RFModel, tau, *, psi_p_grid, psi_n_grid) -> PhaseDiagram:
    """Generalization loss at training time(s) ``tau`` over ``(psi_p, psi_n)`` (Fig. 5C analogue).

    Each grid point is the exact closed form on one seeded Gaussian-equivalent model at the dimension
    ``model.d`` (cost ``O(p (n + d)^2)``; ``d = 25`` keeps a 10 x 10 grid at ``psi <= 64`` to seconds), with
    ``model``'s ``t``, activation, covariance and seed.  The boundaries come from the closed forms:
    ``n* = p`` (``psi_n = psi_p``), ``tau_mem_formula(psi_p, psi_n) = tau`` and ``tau_gen_formula(psi_p) = tau``.

    Returns
    -------
    PhaseDiagram
    """
    _check_model(model)
    pp = _grid("psi_p_grid", psi_p_grid)
    pn = _grid("psi_n_grid", psi_n_grid)
    tau_arr = validate_tau(tau)
    models = [[model.replace(psi_p=float(a), psi_n=float(b)) for b in pn] for a in pp]
    for row in models:
        for m in row:
            m.sizes()
    c = model.constants
    t0 = time.perf_counter()
    gen = np.empty((tau_arr.size, pp.size, pn.size))
    for i, row in enumerate(models):
        for j, m in enumerate(row):
            gen[:, i, j] = rf_learning_curves(m, tau_arr, method="gep").gen
    mem = []
    for tv in tau_arr:
        line = []
        for a in pp:
            f = lambda x, a=a: ts.tau_mem_formula(c.s_t2, c.v_t2, a, x, c.delta_t) - tv  # noqa: E731
            lo, hi = 1e-6 * a, a * (1 - 1e-12)
            line.append(float(brentq(f, lo, hi, xtol=1e-12 * a)) if np.isfinite(tv) and f(lo) < 0 < f(hi) else None)
        mem.append(line)
    tg = np.array([ts.tau_gen_formula(c.mu1, c.norm2, a, c.delta_t) for a in pp])
    return PhaseDiagram(psi_p=pp, psi_n=pn, tau=tau_arr, gen=gen, psi_n_mem=mem, tau_gen_formula=tg, model=model,
                        diagnostics=dict(wall_s=time.perf_counter() - t0))
