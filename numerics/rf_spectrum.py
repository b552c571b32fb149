"""Spectrum of the random-features matrix U from Theorem 3.1 (arXiv:2505.17638 MT Thm 3.1, SM Thm C.1).

The Stieltjes transforms ``q, r, s`` solve E1-E3 (docs/theory/random_features.md §4).  :func:`solve_stieltjes`
evaluates them at ``z = lambda + i eps`` on a grid of ``lambda`` with the numba Newton kernels of
``numerics/_rf_solver.py`` (analytic Jacobian generated from the sympy derivation, epsilon-continuation from a
large imaginary part, warm start along ``lambda`` by a tangent predictor).  :func:`rf_spectrum` adds the bulk
structure: support intervals (edges as folds of the real branch), masses (nested Gauss-Chebyshev rules), the
delta-peak weight and the measure ``mu_s`` (``Im s / pi``) that the learning curves integrate against
(docs/theory/random_features.md §2).  Both follow the package's thread policy (:mod:`memlab.numerics.threads`):
the default workloads run on the calling thread.  ``engine="python"`` runs the same kernels uncompiled
(:mod:`memlab.numerics._interpreted`): no numba import or cache load, for one-off answers.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass, field

import numpy as np

from ..theory import checks
from ..theory import timescales as ts
from ..theory.gep import GEPConstants
from ..theory.rf_model import RFModel
from ..theory.rf_formulas import kernel_aE
from ._interpreted import interpreted, is_interpreted
from .threads import numba_parallel, thread_budget, threads_for

__all__ = ["StieltjesSolution", "SpectrumResult", "SpectrumConvergenceError", "SpectrumAccuracyError",
           "solve_stieltjes", "stieltjes_system", "rf_spectrum", "spectrum_upper_bound", "count_per_bulk"]

_STATUS = {0: "converged", 1: "Newton did not converge", 2: "Herglotz/branch check failed",
           3: "non-finite values", 4: "spurious root q = 0"}


class SpectrumConvergenceError(RuntimeError):
    """The Stieltjes solver failed at some spectral points; carries ``lambdas``, ``residuals``, ``status``."""

    def __init__(self, message, lambdas, residuals, status):
        super().__init__(message)
        self.lambdas = lambdas
        self.residuals = residuals
        self.status = status


class SpectrumAccuracyError(RuntimeError):
    """The solved spectrum fails a check it can make (total mass 1, the quadrature's error estimate).

    ``result`` holds the :class:`SpectrumResult` (``diagnostics["valid"]`` is False) for inspection;
    ``rf_spectrum(..., check=False)`` returns it with a warning instead of raising.
    """

    def __init__(self, message, result):
        super().__init__(message)
        self.result = result


@dataclass(frozen=True)
class StieltjesSolution:
    """``q, r, s`` of Theorem 3.1 at ``z = lambdas + i eps`` and a per-point convergence report.

    Attributes
    ----------
    lambdas, eps : ndarray
        Real parts and imaginary parts of the spectral points.
    q, r, s : ndarray of complex
        ``q = Tr(U-z)^-1/p``, ``r = Tr(Sigma^1/2 Wbar^T (U-z)^-1 Wbar Sigma^1/2)/p``,
        ``s = Tr(Wbar^T (U-z)^-1 Wbar)/p``.
    residual : ndarray
        Max relative residual of E1-E3 per point (each equation over its largest term).
    n_iter : ndarray of int
        Newton iterations spent per point (all ladder steps).
    full_ladder : ndarray of bool
        Whether the point needed the full epsilon ladder (warm start failed or first of a chunk).
    status : ndarray of int
        0 converged; 1 Newton did not converge; 2 Herglotz/branch check failed; 3 non-finite; 4 spurious q = 0.
    dq : ndarray of complex
        ``dq/dz`` at the points (implicit differentiation of E1-E3); outside the support
        ``Im q(lambda + i eps) = eps Re dq/dz`` to first order in ``eps``.
    """

    lambdas: np.ndarray
    eps: np.ndarray
    q: np.ndarray
    r: np.ndarray
    s: np.ndarray
    residual: np.ndarray
    n_iter: np.ndarray
    full_ladder: np.ndarray
    status: np.ndarray = field(default=None, repr=False)
    dq: np.ndarray = field(default=None, repr=False)


@dataclass(frozen=True)
class SpectrumResult:
    """Theory spectrum of ``U`` (Theorem 3.1) with its bulk structure.

    Attributes
    ----------
    model : RFModel
        The model (``psi_p``, ``psi_n``, ``t``, activation, data covariance; ``d`` is not used).
    lambdas : ndarray
        Spectral points (sorted).  By default a log-spaced grid in ``lambda - s_t^2`` plus
        edge-clustered nodes inside every bulk.
    density : ndarray
        Continuous part of the eigenvalue density ``rho(lambda) = Im q / pi`` at ``lambda + i eps``,
        with the delta peak's Lorentzian ``w eps / (pi ((lambda - s_t^2)^2 + eps^2))`` removed.
    density_s : ndarray
        Density of the measure ``mu_s`` (``Im s / pi``; docs/theory/random_features.md §2), which has no atom.
    q, s : ndarray of complex
        Stieltjes transforms at the points.
    bulks : list of (low, high, mass)
        Support intervals of the continuous part, sorted, with their masses.
    bulk_mass_s : list of float
        Mass of ``mu_s`` on each bulk.
    delta_weight : float
        Weight of the delta peak at ``s_t^2`` measured as ``eps Im q(s_t^2 + i eps)``.
    delta_location : float
        ``s_t^2``.
    nodes, weights, weights_s : ndarray
        Quadrature of the continuous parts: ``int g d rho ~ sum(weights * g(nodes))`` and
        ``int g d mu_s ~ sum(weights_s * g(nodes))`` (nested Gauss-Chebyshev rules per bulk, see :func:`rf_spectrum`).
    diagnostics : dict
        ``converged``, ``max_residual``, ``n_newton``, ``n_full_ladder``, ``total_mass``,
        ``theory_masses`` (Thm 3.2, docs/theory/random_features.md §4), ``quad_intervals`` (panels per
        bulk), ``quad_error`` (largest error estimate of a bulk's mass), ``edges_fold`` / ``edges_bisected``
        (edges found as folds / by the bisection fallback), ``hidden_gaps`` (gaps below the grid's resolution
        found by the quadrature), ``solver_calls``, ``threads`` (most numba threads a solve used),
        ``thread_budget``, ``eps_rel``, ``warnings``, ``message``.
    """

    model: RFModel
    lambdas: np.ndarray
    density: np.ndarray
    density_s: np.ndarray
    q: np.ndarray
    s: np.ndarray
    bulks: list
    bulk_mass_s: list
    delta_weight: float
    delta_location: float
    nodes: np.ndarray = field(repr=False)
    weights: np.ndarray = field(repr=False)
    weights_s: np.ndarray = field(repr=False)
    diagnostics: dict = field(default_factory=dict, repr=False)

    @property
    def constants(self) -> GEPConstants:
        """Gaussian-equivalence constants of the model."""
        return self.model.constants

    def cumulative_mass(self, lam) -> np.ndarray:
        """Continuous mass of ``rho`` in ``(s_t^2, lam]`` (delta peak excluded).

        Exact at the bulk edges and in the gaps (the masses of the bulks below); inside a bulk each quadrature
        weight is spread over the cell between the midpoints to its neighbouring nodes (linear there), so the
        error is at most one node's weight.
        """
        lam = np.asarray(lam, dtype=float)
        xs, cs, cum = [], [], 0.0
        for a, b, _ in self.bulks:
            sel = (self.nodes >= a) & (self.nodes <= b)
            order = np.argsort(self.nodes[sel], kind="stable")
            x, w = self.nodes[sel][order], self.weights[sel][order]
            cw = cum + np.cumsum(w)
            xs += [[a], 0.5 * (x[1:] + x[:-1]), [b]]
            cs += [[cum], cw[:-1], [cw[-1] if w.size else cum]]
            cum = cs[-1][0]
        if not xs:
            return np.zeros_like(lam)
        return np.interp(lam, np.concatenate(xs), np.concatenate(cs), left=0.0, right=cum)

    def integrate_s(self, g) -> float:
        """``int g(lambda) d mu_s(lambda)`` by the bulk quadrature (docs/theory/random_features.md §2)."""
        return float(np.sum(self.weights_s * g(self.nodes)))

    def integrate(self, g) -> float:
        """``int g(lambda) d rho(lambda)`` over the continuous part (the delta peak excluded)."""
        return float(np.sum(self.weights * g(self.nodes)))


def spectrum_upper_bound(model: RFModel) -> float:
    """An upper bound (d -> oo) on the top of the spectrum of ``U_GEP`` (triangle inequality).

    ``||G||/sqrt(n) <= sqrt(a_t^2 e^{-2t} theta_max) (sqrt(psi_p)+1)(1+1/sqrt(psi_n)) + v_t (sqrt(psi_p/psi_n)+1)``
    and ``||b_t^2 K|| <= b_t^2 (sqrt(psi_p)+1)^2``; 20% margin.
    """
    c = model.constants
    psi_p, psi_n = model.psi_p, model.psi_n
    aE = _params(model)[4]
    g = (np.sqrt(aE * float(np.max(model.thetas))) * (np.sqrt(psi_p) + 1) * (1 + 1 / np.sqrt(psi_n))
         + np.sqrt(c.v_t2) * (np.sqrt(psi_p / psi_n) + 1))
    return 1.2 * (c.s_t2 + g ** 2 + c.b_t ** 2 * (np.sqrt(psi_p) + 1) ** 2)


#: the most spectral points one call solves (about 100 MB of results)
_MAX_POINTS = 10 ** 7


def _check_lambdas(model: RFModel, lambdas) -> np.ndarray:
    """``lambdas`` as a non-empty 1-D float array (a scalar is one point) within 1e6 times the spectrum's scale."""
    lam = checks.finite_array("lambdas", lambdas)
    if lam.ndim == 0:
        lam = lam.reshape(1)
    if lam.ndim != 1 or not 1 <= lam.size <= _MAX_POINTS:
        raise ValueError(f"lambdas must be a 1-D array of 1 to {_MAX_POINTS:.0e} real numbers (got shape {lam.shape})")
    bound = 1e6 * spectrum_upper_bound(model)
    if np.max(np.abs(lam)) > bound:
        raise ValueError(f"lambdas must lie in [-{bound:.3g}, {bound:.3g}], 1e6 times an upper bound of the spectrum "
                         f"(there q = -1/z to 1e-6); got {float(lam[np.argmax(np.abs(lam))])!r}")
    return lam


def _params(model: RFModel):
    """The constants of the generated kernels, in their argument order (``aE`` from the derivation)."""
    c = model.constants
    th, om = model.thetas, model.omegas
    return (np.ascontiguousarray(th, dtype=np.float64), np.ascontiguousarray(om, dtype=np.float64),
            float(model.psi_p), float(model.psi_n), float(kernel_aE(c.a_t, c.t)),
            float(c.b_t ** 2), float(c.v_t2), float(c.s_t2), float(np.sum(om * th)))


def stieltjes_system(model: RFModel, q, r, s, z):
    """Residuals ``(F1, F2, F3)`` of Theorem 3.1 at one point and their analytic Jacobian.

    ``F1 = s - sum_k w_k T_k``, ``F2 = r - sum_k w_k theta_k T_k`` (E1, E2) and ``F3 = E3 q^2 L`` (E3 with its
    denominators cleared), as the Newton solver evaluates them with the kernels generated from the sympy
    derivation.  Returns ``(F, J)``: ``F`` of shape (3,), ``J[i, j] = dF_i / d(q, r, s)_j`` of shape (3, 3).
    """
    th, om, pp, pn, aE, b2, v2, s2, _ = _params(model)
    out = _kernels("numba").system(complex(q), complex(r), complex(s), complex(z), th, om, pp, pn, aE, b2, v2, s2)
    F = np.array(out[:3])
    J = np.array([[out[3], out[4], 1.0], [out[5], out[6], 0.0], [out[7], out[8], out[9]]])
    return F, J


#: the engines that run the kernels: compiled by numba, or the same source interpreted
ENGINES = ("numba", "python")
#: points per chunk of the kernels' solve_serial / solve_parallel (each chunk starts with a full ladder)
_CHUNK = 256
#: spectral points per numba thread below which a solve runs serially (one point costs ~2-10 us; a parallel
#: region costs tens of microseconds on an idle machine and far more on a busy one)
_MIN_POINTS_PER_THREAD = 2 * _CHUNK


def _engine(engine) -> str:
    if not isinstance(engine, str) or engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES} (got {engine!r}): 'numba' compiles the kernels (fast "
                         "per point, about 1 s to load them in a new process), 'python' runs the same source "
                         "uncompiled (no load cost, about 40-50x slower per point)")
    return engine


def _kernels(engine: str):
    """The Newton kernels: numba-compiled (``numerics/_rf_solver.py``) or its interpreted twin."""
    if engine == "python":
        return interpreted("_rf_solver")
    from . import _rf_solver

    return _rf_solver
#: relative accuracy of q under the delta peak (see _Context.unresolved)
_RESOLUTION = 1e-7
#: a grid point is inside the support when the continuous Im q exceeds this many times eps |dq/dz|
_SUPPORT_RATIO = 10.0


def _solve_sorted(ks, lam, eps, pars, eps0, *, threads=None, factor0=0.1, max_iter=60, tol=1e-12, max_steps=600,
                  warm=True):
    """The kernels ``ks`` on sorted ``lam`` (serial below two threads' worth of points or interpreted, else a
    numba parallel region).

    Returns ``(n_threads, q, r, s, dq/dz, status, n_iter, residual, full_ladder)``."""
    n_thr = threads_for(lam.size, _MIN_POINTS_PER_THREAD, threads)
    args = (lam, eps, eps0, *pars, factor0, max_iter, tol, max_steps, _CHUNK, warm)
    if n_thr == 1 or lam.size <= _CHUNK or is_interpreted(ks):
        return (1, *ks.solve_serial(*args))
    with numba_parallel(n_thr) as n_thr:
        return (n_thr, *ks.solve_parallel(*args))


def solve_stieltjes(model: RFModel, lambdas, *, eps=None, eps_rel=1e-9, warm=True, max_iter=60, tol=1e-12,
                    raise_on_failure=True, threads: int | None = None, engine: str = "numba"):
    """Solve Theorem 3.1 for ``(q, r, s)`` at ``lambdas + i eps`` (docs/theory/random_features.md §4).

    Parameters
    ----------
    model : RFModel
        ``psi_p``, ``psi_n``, the Gaussian-equivalence constants and the covariance atoms.
    lambdas : array_like
        Real parts (any order; solved in sorted order and returned in the given order).
    eps : float or array_like, optional
        Imaginary parts; default ``eps_rel * max(|lambda|, s_t^2)``.
    warm : bool
        Warm start along ``lambda`` (tangent predictor and one Newton solve; short local ladder, then the
        full ladder on failure).
    max_iter, tol : int, float
        Newton iterations per ladder step and the relative-residual acceptance level.
    raise_on_failure : bool
        After one retry with a denser ladder, raise :class:`SpectrumConvergenceError` listing the
        failed ``lambda`` values and residuals (default); ``False`` keeps the failed points with their
        ``status`` (never NaN silently).
    threads : int or None
        numba threads; None applies the package's thread policy (:mod:`memlab.numerics.threads`), which
        solves fewer than ``2 * 512`` points on the calling thread.  The points are cut into the same
        chunks of 256 whatever the thread count, so the result does not depend on it.
    engine : {"numba", "python"}, default "numba"
        ``"numba"`` runs the compiled kernels; ``"python"`` runs the same source uncompiled, serially (no numba
        import or compiled-cache load, about 1 s in a new process; about 40-50x slower per point): for a one-off
        answer.  The two agree to rounding.

    Returns
    -------
    StieltjesSolution

    Notes
    -----
    Cost: about 6 Newton iterations per point with the warm start (about 1 ms for the 400 points of
    ``benchmarks/spectrum.py`` on the 2-core development machine); each chunk of 256 points starts with one full
    epsilon ladder (50-150 iterations).  The first call compiles the kernels (cached on disk).

    References
    ----------
    arXiv:2505.17638 MT Thm 3.1 (SM Thm C.1), with ``Wbar = W/sqrt(d)`` (correction 6 of
    docs/theory/random_features.md §8).
    """
    if not isinstance(model, RFModel):
        raise TypeError(f"model must be an RFModel (got {type(model).__name__})")
    lam = _check_lambdas(model, lambdas)
    thread_budget(threads)   # validates threads
    engine = _engine(engine)
    pars = _params(model)
    if eps is None:
        e = eps_rel * np.maximum(np.abs(lam), model.constants.s_t2)
    else:
        e = np.broadcast_to(np.asarray(eps, dtype=float), lam.shape).copy()
        if not np.all(np.isfinite(e)) or np.any(e <= 0):
            raise ValueError("eps must be finite and > 0")
    order = np.argsort(lam, kind="stable")
    ls, es = np.ascontiguousarray(lam[order]), np.ascontiguousarray(e[order])
    eps0 = 10.0 * max(float(np.max(np.abs(ls))), spectrum_upper_bound(model))
    sol, _ = _finish(_kernels(engine), ls, es, pars, eps0, threads, max_iter, tol, raise_on_failure, warm)
    if np.all(order[1:] > order[:-1]):
        return dataclasses.replace(sol, lambdas=lam, eps=e)
    inv = np.empty_like(order)
    inv[order] = np.arange(order.size)
    return StieltjesSolution(lambdas=lam, eps=e, q=sol.q[inv], r=sol.r[inv], s=sol.s[inv],
                             residual=sol.residual[inv], n_iter=sol.n_iter[inv], full_ladder=sol.full_ladder[inv],
                             status=sol.status[inv], dq=sol.dq[inv])


def _finish(ks, ls, es, pars, eps0, threads, max_iter=60, tol=1e-12, raise_on_failure=True, warm=True):
    """Solve sorted points, retry failures once with a denser ladder, raise (or keep) what still fails.

    Returns ``(StieltjesSolution, threads used)``."""
    n_thr, Q, R, S, DQ, st, it, res, full = _solve_sorted(ks, ls, es, pars, eps0, threads=threads, max_iter=max_iter,
                                                          tol=tol, warm=warm)
    bad = st != 0
    if np.any(bad):   # retry: full ladder with a denser step, each point on its own
        idx = np.flatnonzero(bad)
        out2 = _solve_sorted(ks, ls[idx], es[idx], pars, eps0, threads=1, factor0=0.5, max_iter=4 * max_iter,
                             tol=tol, max_steps=5000, warm=False)[1:]
        for arr, new in zip((Q, R, S, DQ, st, it, res, full), out2):
            arr[idx] = new
        bad = st != 0
    if np.any(bad) and raise_on_failure:
        idx = np.flatnonzero(bad)
        pts = ", ".join(f"lambda={ls[i]:.6g} (residual {res[i]:.2e}, {_STATUS[int(st[i])]})" for i in idx[:8])
        raise SpectrumConvergenceError(
            f"Stieltjes solver failed at {idx.size} of {ls.size} points: {pts}"
            + (" ..." if idx.size > 8 else "") + "; a larger eps (eps_rel) moves the points off the real axis",
            ls[idx], res[idx], st[idx])
    return StieltjesSolution(lambdas=ls, eps=es, q=Q, r=R, s=S, residual=res, n_iter=it, full_ladder=full,
                             status=st, dq=DQ), n_thr


# ---------------------------------------------------------------- bulk structure -----------------

class _Context:
    """What the bulk-structure steps of :func:`rf_spectrum` share: model constants, delta weight, counters."""

    def __init__(self, model, eps_rel, threads, ks):
        self.model = model
        self.ks = ks
        self.pars = _params(model)
        self.s2 = float(model.constants.s_t2)
        self.eps_rel = eps_rel
        self.threads = threads
        self.w = 0.0
        self.eps0 = 10.0 * spectrum_upper_bound(model)
        self.calls = 0
        self.n_newton = 0
        self.max_residual = 0.0
        self.threads_used = 1

    def solve(self, lam, eps=None):
        """Solve at sorted ``lam`` (default ``eps = eps_rel max(lambda, s_t^2)``); raises on failure."""
        lam = np.ascontiguousarray(lam, dtype=np.float64)
        e = self.eps_rel * np.maximum(np.abs(lam), self.s2) if eps is None else np.ascontiguousarray(eps)
        eps0 = max(self.eps0, 10.0 * float(np.max(np.abs(lam))))
        sol, n_thr = _finish(self.ks, lam, e, self.pars, eps0, self.threads)
        self.threads_used = max(self.threads_used, n_thr)
        self.calls += 1
        self.n_newton += int(sol.n_iter.sum())
        self.max_residual = max(self.max_residual, float(sol.residual.max()))
        return sol

    def continuous_im(self, sol):
        """``Im q`` with the delta peak's Lorentzian ``w eps / ((lambda - s_t^2)^2 + eps^2)`` removed."""
        return sol.q.imag - self.w * sol.eps / ((sol.lambdas - self.s2) ** 2 + sol.eps ** 2)

    def inside(self, sol):
        """Scale-free support test at one ``eps``: inside the support the continuous ``Im q`` is the density,
        independent of ``eps``; outside it is ``eps Re q_c'(lambda)`` to first order (``q_c' = dq/dz`` less the
        delta peak's ``w / (s_t^2 - z)^2``).  Inside iff it exceeds ``_SUPPORT_RATIO eps |q_c'|`` (the transition
        sits a few ``eps`` from an edge) and stands above the rounding of the Lorentzian's subtraction (1e-8 of
        ``Im q``: within the peak's width both sides of the first test are rounding noise)."""
        ic = self.continuous_im(sol)
        z = sol.lambdas + 1j * sol.eps
        dqc = sol.dq - self.w / (self.s2 - z) ** 2
        return (ic > 1e-8 * sol.q.imag) & (ic > _SUPPORT_RATIO * sol.eps * np.abs(dqc))

    def unresolved(self, sol):
        """Points where the continuous ``Im q`` is below the solver's resolution under the delta peak.

        Within about a hundred ``eps`` of ``s_t^2`` the peak's Lorentzian is up to ``1/eps`` times the continuous
        part, ``|q|`` is of order ``w/eps``, and the solution is accurate to about ``1e-8 |q|`` there (two
        rounding-level variants of the same kernels differ by that much): the difference ``Im q - Lorentzian``
        is then noise.  Such points (within ``1e4 eps`` of ``s_t^2``, the Lorentzian dominating and the difference
        below ``1e-7 |q|``) report a continuous density of 0."""
        ic = self.continuous_im(sol)
        lor = sol.q.imag - ic
        near = np.abs(sol.lambdas - self.s2) < 1e4 * sol.eps
        return near & (lor > ic) & (ic <= _RESOLUTION * np.abs(sol.q))

    def densities(self, sol):
        """``rho`` (continuous part, 0 where :meth:`unresolved`) and the density of ``mu_s`` at the points of
        ``sol``, clipped at 0."""
        ic = np.where(self.unresolved(sol), 0.0, self.continuous_im(sol))
        return (np.clip(ic, 0.0, None) / np.pi, np.clip(sol.s.imag, 0.0, None) / np.pi)


def _bisect_edges(ctx, out_pts, in_pts, n_bisect=60):
    """Bisection in ``log(lambda - s_t^2)`` between points outside and inside the support (all edges'
    midpoints solved together, one call per step), down to a relative width of 1e-13 or ``n_bisect`` steps.

    Returns ``(outside ends, their (q, r, s), inside ends)``."""
    a = np.log(np.asarray(out_pts, dtype=float) - ctx.s2)
    b = np.log(np.asarray(in_pts, dtype=float) - ctx.s2)
    sol_a = [np.full(a.size, np.nan + 0j) for _ in range(3)]
    for _ in range(n_bisect):
        m = 0.5 * (a + b)
        order = np.argsort(m)
        sol = ctx.solve(ctx.s2 + np.exp(m[order]))
        ins = np.empty(m.size, dtype=bool)
        ins[order] = ctx.inside(sol)
        for f, new in zip(sol_a, (sol.q, sol.r, sol.s)):
            f[order[~ins[order]]] = new[~ins[order]]
        a = np.where(ins, a, m)
        b = np.where(ins, m, b)
        if np.all(np.abs(b - a) < 1e-13):
            break
    return ctx.s2 + np.exp(a), sol_a, ctx.s2 + np.exp(b)


def _edges(ctx, lam_out, sol_out, lam_in):
    """Edges between outside points ``lam_out`` (with their ``(q, r, s)``) and inside points ``lam_in``.

    Folds of the real branch (``_rf_solver.fold_edges``), all edges in one kernel call.  An edge whose fold is
    not found inside its bracket (a start too far from it) is bracketed 256 times closer by 8 bisection steps on
    the support test and its fold sought again from there; if that fails too, bisection to the end (the edge
    then sits within a few ``eps`` of the fold).

    Returns ``(edges, n_fold, n_bisected)``."""
    lam_out = np.asarray(lam_out, dtype=float)
    lam_in = np.asarray(lam_in, dtype=float)
    if lam_out.size == 0:
        return lam_out, 0, 0
    q0, r0, s0 = (np.asarray(f, dtype=complex) for f in sol_out)
    lam_e, _, _, _, ok, _ = ctx.ks.fold_edges(lam_out, q0, r0, s0, lam_out, lam_in, *ctx.pars[:-1], 60)
    n_bis = 0
    if not np.all(ok):
        bad = np.flatnonzero(~ok)
        a, (qa, ra, sa), b = _bisect_edges(ctx, lam_out[bad], lam_in[bad], n_bisect=8)
        moved = np.isfinite(qa.real)
        again, _, _, _, ok2, _ = ctx.ks.fold_edges(a, np.where(moved, qa, q0[bad]), np.where(moved, ra, r0[bad]),
                                                np.where(moved, sa, s0[bad]), a, b, *ctx.pars[:-1], 60)
        lam_e[bad[ok2]] = again[ok2]
        ok[bad[ok2]] = True
        if not np.all(ok2):
            worse = np.flatnonzero(~ok2)
            ea, _, eb = _bisect_edges(ctx, a[worse], b[worse])
            lam_e[bad[worse]] = 0.5 * (ea + eb)
            n_bis = worse.size
    lam_e = np.clip(lam_e, np.minimum(lam_out, lam_in), np.maximum(lam_out, lam_in))
    return lam_e, int(lam_out.size - n_bis), n_bis


def _gc2(N):
    """Gauss-Chebyshev rule of the second kind (Gauss-Jacobi with ``alpha = beta = 1/2``) in the variable
    ``lambda = (l+r)/2 - (r-l)/2 cos(theta)``: nodes ``theta_k = k pi / N``, ``k = 1..N-1``, and weights
    ``(pi/N) sin(theta_k)`` per unit half-width (the trapezoidal rule in ``theta``).  Exact for
    ``sqrt((lambda-l)(r-lambda))`` times a polynomial of degree ``2N-3``; the rule of ``N/2`` uses the
    even ``k`` (nested)."""
    th = np.arange(1, N) * (np.pi / N)
    return th, (np.pi / N) * np.sin(th)


def _cc(N):
    """Clenshaw-Curtis rule in ``theta`` on ``[0, pi]`` for the same variable, without its end nodes (the factor
    ``sin(theta)`` of ``d lambda`` vanishes there): spectrally accurate for any ``rho`` smooth on the panel, also
    where it does not vanish at an end (a panel cut inside a bulk).  Nested like :func:`_gc2`."""
    k = np.arange(1, N)
    phi = k * (np.pi / N)
    v = np.ones(N - 1)
    for j in range(1, N // 2):
        v -= 2.0 * np.cos(2 * j * phi) / (4 * j * j - 1)
    v -= np.cos(N * phi) / (N * N - 1)
    th = 0.5 * np.pi * (1.0 - np.cos(phi))
    return th, 0.5 * np.pi * (2.0 * v / N) * np.sin(th)


_FIELDS = ("lambdas", "eps", "q", "r", "s", "dq", "residual", "n_iter", "full_ladder", "status")


class _Panel:
    """One sub-interval ``[l, r]`` of a bulk, integrated in ``theta`` (``lambda = (l+r)/2 - (r-l)/2 cos(theta)``)
    with ``N`` intervals: :func:`_gc2` when both ends are bulk edges (square-root ends), :func:`_cc` when an end
    is a cut inside the bulk.

    ``f`` holds the solution at the ``N - 1`` nodes (the fields of :class:`StieltjesSolution`) and the two
    densities ``rho``, ``rho_s``."""

    def __init__(self, l, r, N, edges=(True, True)):
        self.l, self.r, self.N = float(l), float(r), int(N)
        self.edges = tuple(edges)
        self.f = None
        self.smooth = self.final = False

    @property
    def lam(self):
        return self.f["lambdas"]

    @property
    def rho(self):
        return self.f["rho"]

    @property
    def rho_s(self):
        return self.f["rho_s"]

    def _rule(self, N):
        th, w = _gc2(N) if all(self.edges) else _cc(N)
        return 0.5 * (self.l + self.r) - 0.5 * (self.r - self.l) * np.cos(th), 0.5 * (self.r - self.l) * w

    def new_nodes(self):
        """Nodes to solve for: all of the rule ``N`` at first, the odd ones of ``N`` after a doubling."""
        x = self._rule(self.N)[0]
        return x if self.f is None else x[0::2]

    def fill(self, new):
        """Store the solution at :meth:`new_nodes` (a dict of arrays), interleaved with the previous rule's."""
        if self.f is None:
            self.f = new
            return
        out = {}
        for k, v in new.items():
            a = np.empty(self.N - 1, dtype=v.dtype)
            a[0::2], a[1::2] = v, self.f[k]     # odd k are new, even k are the rule N/2
            out[k] = a
        self.f = out

    def weights(self):
        return self._rule(self.N)[1]

    def masses(self):
        """``(I_N, I_N/2)`` for ``rho`` and for ``mu_s``."""
        w = self.weights()
        w2 = self._rule(self.N // 2)[1]
        return (float(w @ self.rho), float(w2 @ self.rho[1::2]), float(w @ self.rho_s),
                float(w2 @ self.rho_s[1::2]))

    def split(self, x, n_mass):
        """Two panels cut at ``x`` (an interior end each)."""
        return [_Panel(self.l, x, n_mass, (self.edges[0], False)), _Panel(x, self.r, n_mass, (False, self.edges[1]))]


def _zoom_dips(ctx, brackets, max_rounds=12, n_pts=33):
    """Zoom into interior density minima (one solve per round for all of them) and classify each.

    A minimum where the density touches zero in a square-root way is a gap the coarse grid could not see (a
    small cluster about to merge with rho_1).  Each round samples ``n_pts - 2`` points across the bracket and
    keeps the neighbours of the lowest.  Returns per bracket ``("gap", (out_lo, q0_lo...), ...)``, ``("cusp", x)``
    (a sharp minimum still inside the support at relative width 1e-12) or ``("smooth", x)`` (the minimum is
    resolved: its density is at least half of the bracket ends', which a square-root dip never reaches).
    """
    out = [None] * len(brackets)
    br = [list(b) for b in brackets]   # [l, r, rho_l, rho_r]
    active = list(range(len(br)))
    for _ in range(max_rounds):
        if not active:
            break
        pts = [np.linspace(br[i][0], br[i][1], n_pts)[1:-1] for i in active]
        allp = np.concatenate(pts)
        order = np.argsort(allp)
        sol = ctx.solve(allp[order])
        inv = np.empty_like(order)
        inv[order] = np.arange(order.size)
        ins_all = ctx.inside(sol)[inv]
        rho_all = ctx.densities(sol)[0][inv]
        fields = [f[inv] for f in (sol.q, sol.r, sol.s)]
        nxt = []
        for j, i in enumerate(active):
            sl = slice(j * (n_pts - 2), (j + 1) * (n_pts - 2))
            p, ins, rho = pts[j], ins_all[sl], rho_all[sl]
            l, r, rl, rr = br[i]
            if not np.all(ins):
                o = np.flatnonzero(~ins)
                iL, iR = int(o[0]), int(o[-1])
                lo_in = p[iL - 1] if iL > 0 else l
                hi_in = p[iR + 1] if iR + 1 < p.size else r
                if o.size < 4 and hi_in - lo_in > 1e-12 * abs(hi_in):
                    # few points in the gap: sample it once more, so that each edge gets its own nearby start
                    br[i] = [lo_in, hi_in, rho[iL - 1] if iL > 0 else rl, rho[iR + 1] if iR + 1 < p.size else rr]
                    nxt.append(i)
                    continue
                start = [tuple(f[sl][k] for f in fields) for k in (iL, iR)]
                out[i] = ("gap", (p[iL], start[0], lo_in), (p[iR], start[1], hi_in))
                continue
            k = int(np.argmin(rho))
            if rho[k] >= 0.5 * min(rl, rr):
                out[i] = ("smooth", float(p[k]))
                continue
            nl = p[k - 1] if k > 0 else l
            nr = p[k + 1] if k + 1 < p.size else r
            rnl = rho[k - 1] if k > 0 else rl
            rnr = rho[k + 1] if k + 1 < p.size else rr
            if nr - nl <= 1e-12 * abs(p[k]):
                out[i] = ("cusp", float(p[k]))
                continue
            br[i] = [nl, nr, rnl, rnr]
            nxt.append(i)
        active = nxt
    for i in active:
        out[i] = ("cusp", float(0.5 * (br[i][0] + br[i][1])))
    return out


def _graded_panels(a, b, lo_gap, hi_gap, n_mass, ratio=0.1, reach=30.0):
    """First panels of a bulk ``[a, b]`` whose ends lie ``lo_gap``/``hi_gap`` from the nearest singular point outside
    it (a neighbouring bulk's edge, or ``s_t^2``).  The density continues analytically past an edge only up to that
    point, which slows the rule of the whole bulk when the gap is small against the width (convergence like
    ``exp(-2 N sqrt(4 gap / width))``); a panel of width ``reach * gap`` at that end restores fast convergence on
    both pieces."""
    w = b - a
    cuts = []
    if lo_gap < ratio * w:
        cuts.append(a + min(reach * lo_gap, 0.3 * w))
    if hi_gap < ratio * w:
        cuts.append(b - min(reach * hi_gap, 0.3 * w))
    pts = [a] + sorted(cuts) + [b]
    return [_Panel(l, r, n_mass, (l == a, r == b)) for l, r in zip(pts[:-1], pts[1:])]


def _bulk_panels(bulks, s2, n_mass, which=None):
    """Graded first panels for the bulks ``which`` (default all) of the sorted list ``bulks`` of ``[a, b, ...]``."""
    edges = [(x[0], x[1]) for x in bulks]
    for k in (range(len(bulks)) if which is None else which):
        a, b = edges[k]
        lo_gap = a - (edges[k - 1][1] if k > 0 else s2)
        hi_gap = edges[k + 1][0] - b if k + 1 < len(edges) else np.inf
        bulks[k][2] = _graded_panels(a, b, lo_gap, hi_gap, n_mass)


def _solve_panels(ctx, panels):
    """Solve the new nodes of ``panels`` in one call (sorted, so each point warm-starts from its neighbour) and
    store the solutions in the panels; returns the number of nodes."""
    if not panels:
        return 0
    xs = [p.new_nodes() for p in panels]
    allx = np.concatenate(xs)
    order = np.argsort(allx)
    sol = ctx.solve(allx[order])
    inv = np.empty_like(order)
    inv[order] = np.arange(order.size)
    got = {k: getattr(sol, k)[inv] for k in _FIELDS}
    got["rho"], got["rho_s"] = (v[inv] for v in ctx.densities(sol))
    k = 0
    for p, x in zip(panels, xs):
        p.fill({name: v[k:k + x.size] for name, v in got.items()})
        k += x.size
    return allx.size


def _integrate_bulks(ctx, edges, n_mass, rtol=1e-10, max_panels=32, max_N=1024, max_nodes=30000, max_rounds=30):
    """Masses of ``rho`` and ``mu_s`` on each bulk by nested Gauss-Chebyshev rules of the second kind.

    Each bulk starts as one panel with the rule of ``N = n_mass`` (``N - 1`` nodes), or three where a neighbour is
    close (:func:`_graded_panels`); a panel's error estimate is the difference to the nested rule of ``N/2`` (no
    extra solves).  All panels' nodes go to the solver in one call
    per round.  The target for a bulk ``[a, b]`` is ``max(rtol, eps(a) / (b - a))`` of its masses: below the
    Lorentzian smoothing of width ``eps`` (which moves a mass of that order past the edges) a finer rule
    changes nothing.  A panel above its share of the target is examined: an interior density minimum is
    zoomed into (:func:`_zoom_dips`); a square-root dip to zero is a gap, whose two edges are found as folds
    and which splits the bulk in two; a sharp minimum inside the support splits the panel; otherwise ``N`` is
    doubled (up to ``max_N``, then the panel is halved, up to ``max_panels``).  At most ``max_nodes`` nodes and
    ``max_rounds`` rounds.

    Returns ``(bulks, n_hidden_gaps, error, converged)`` with ``bulks`` a list of ``(a, b, panels)`` and
    ``error`` the largest estimate relative to its bulk's masses.
    """
    bulks = [[a, b, None] for a, b in edges]
    _bulk_panels(bulks, ctx.s2, n_mass)
    pending = [p for _, _, ps in bulks for p in ps]
    hidden = used = 0
    err_max, converged = 0.0, True
    for rnd in range(max_rounds + 1):
        used += _solve_panels(ctx, pending)
        if rnd == max_rounds:     # every panel holds its solution; what is still above target stays so
            converged = False
            break
        pending, dips = [], []
        err_max, converged = 0.0, True
        for bi, (a, b, panels) in enumerate(bulks):
            # a bulk narrower than rounding (b == a) has no resolvable mass error: any estimate passes
            tol = max(rtol, ctx.eps_rel * max(a, ctx.s2) / max(b - a, 1e-300))
            ms = [p.masses() for p in panels]
            scale = max(sum(m[0] for m in ms), 1e-300)
            scale_s = max(sum(m[2] for m in ms), 1e-300)
            halve = []
            for p, m in zip(panels, ms):
                err = max(abs(m[0] - m[1]) / scale, abs(m[2] - m[3]) / scale_s)
                err_max = max(err_max, err)
                if err <= tol / len(panels):
                    continue
                if p.final or used >= max_nodes:
                    converged = False
                    continue
                j = np.flatnonzero((p.rho[1:-1] < p.rho[:-2]) & (p.rho[1:-1] < p.rho[2:])) + 1
                if j.size and not p.smooth:
                    i = j[np.argmin(p.rho[j])]
                    dips.append((bi, p, [p.lam[i - 1], p.lam[i + 1], p.rho[i - 1], p.rho[i + 1]]))
                elif p.N < max_N:
                    p.N *= 2
                    pending.append(p)
                elif len(panels) + len(halve) < max_panels:
                    halve.append(p)
                else:
                    p.final = True
                    converged = False
            for p in halve:
                panels.remove(p)
                panels.extend(p.split(0.5 * (p.l + p.r), n_mass))
                pending.extend(panels[-2:])
        if dips:
            n_before = len(bulks)
            pending += _resolve_dips(ctx, bulks, dips, n_mass)
            hidden += len(bulks) - n_before
        if not pending:
            break
    return bulks, hidden, err_max, converged


def _resolve_dips(ctx, bulks, dips, n_mass, max_N=1024):
    """Classify the interior minima ``dips`` (``(bulk index, panel, bracket)``) by :func:`_zoom_dips` and act:
    a gap splits its bulk in two (edges by :func:`_edges`), a cusp splits the panel, a smooth minimum doubles ``N``.
    Modifies ``bulks`` in place; returns the panels to solve."""
    pending = []
    kinds = _zoom_dips(ctx, [d[2] for d in dips])
    gaps = []
    for (bi, p, _), kind in zip(dips, kinds):
        if kind[0] == "gap":
            gaps.append((bi, kind))
        elif kind[0] == "cusp":
            panels = bulks[bi][2]
            panels.remove(p)
            panels.extend(p.split(kind[1], n_mass))
            pending.extend(panels[-2:])
        else:
            p.smooth = True
            if p.N < max_N:
                p.N *= 2
                pending.append(p)
    if not gaps:
        return pending
    outs = [g[1][1] for g in gaps] + [g[1][2] for g in gaps]
    lam_e, _, _ = _edges(ctx, [o[0] for o in outs], tuple(np.array([o[1][c] for o in outs]) for c in range(3)),
                         [o[2] for o in outs])
    n = len(gaps)
    split = {}
    for k, (bi, _) in enumerate(gaps):
        split.setdefault(bi, []).append((lam_e[k], lam_e[n + k]))
    new, fresh = [], []
    for bi, (a, b, panels) in enumerate(bulks):
        if bi not in split:
            new.append([a, b, panels])
            continue
        lo = a
        for g_lo, g_hi in sorted(split[bi]):
            fresh.append(len(new))
            new.append([lo, g_lo, None])
            lo = g_hi
        fresh.append(len(new))
        new.append([lo, b, None])
    _bulk_panels(new, ctx.s2, n_mass, fresh)
    pending.extend(p for k in fresh for p in new[k][2])
    bulks[:] = new
    return pending


def rf_spectrum(model: RFModel, *, lambdas=None, n_grid=400, n_mass=128, eps_rel=1e-9,
                threads: int | None = None, engine: str = "numba", check: bool = True) -> SpectrumResult:
    """Eigenvalue density of the random-features matrix ``U`` (Theorem 3.1) and its bulks.

    Parameters
    ----------
    model : RFModel
        ``psi_p``, ``psi_n``, ``t``, activation, ``sigma_x`` or covariance atoms (``d`` is not used: this is
        the high-dimensional limit).
    lambdas : array_like, optional
        Where to report the density; default an automatic grid (log-spaced in ``lambda - s_t^2``
        plus the quadrature nodes in each bulk).
    n_grid : int, default 400
        Points of the coarse grid that finds the bulks.
    n_mass : int, default 128
        ``N`` of the first Gauss-Chebyshev rule on each bulk (``N - 1`` nodes; its error estimate is the
        nested rule of ``N/2``).  With 64 the estimate can be fooled where a bulk's lower edge lies close to
        ``s_t^2`` (psi_p = psi_n = 2, t = e^-3.5, sigma_x = 1.1875: estimate 3e-8, true mass error 2.2e-5; 128
        gives 1.1e-10 there, and costs 0.3 ms more on the default model).
    eps_rel : float, default 1e-9
        ``eps = eps_rel * max(lambda, s_t^2)``, in ``[1e-12, 1e-3]``.
    threads : int or None
        numba threads for the solves; None applies the package's thread policy
        (:mod:`memlab.numerics.threads`: the default workload is small and runs on the calling thread).
        The result does not depend on it.
    engine : {"numba", "python"}, default "numba"
        ``"numba"`` runs the compiled kernels; ``"python"`` runs the same source uncompiled on the calling thread
        (no numba import or compiled-cache load, about 1 s in a new process; about 40-50x slower per point), as
        ``memlab timescales`` does for a one-off answer.  The two agree to rounding.
    check : bool, default True
        Raise :class:`SpectrumAccuracyError` when the result fails a check it can make (total mass 1 to 1e-3,
        the bulk quadrature's error estimate); ``False`` returns it with ``diagnostics["valid"] = False``,
        the reasons in ``diagnostics["failed_checks"]`` and a warning.

    Returns
    -------
    SpectrumResult

    Raises
    ------
    ValueError, TypeError
        Bad parameters (named).
    SpectrumConvergenceError
        The solver failed at some points (lists them with residuals).
    SpectrumAccuracyError
        The spectrum fails its mass or quadrature check (``check=True``); the result is attached.

    Notes
    -----
    Support: a grid point is inside when the continuous ``Im q`` exceeds ``10 eps |dq/dz|`` (outside the
    support it is ``eps Re dq/dz`` to first order; inside it is the density, independent of ``eps``).  Each edge
    is the fold of the real solution branch next to it, ``F = 0`` and ``det dF/dx = 0``, solved by Newton in
    real arithmetic from the outside grid point, all edges in one kernel call (bisection on the support test if
    a fold is not found in its bracket): the ``eps -> 0`` edge, to rounding.  Masses: nested Gauss-Chebyshev
    rules of the second kind on each bulk (the trapezoidal rule in ``theta`` with
    ``lambda = (a+b)/2 - (b-a)/2 cos(theta)``, exact for square-root edges times a polynomial of degree
    ``2N - 3``), the rule of ``N/2`` as the error estimate, ``N = n_mass``; a bulk with a close neighbour gets a
    short panel at that end (Clenshaw-Curtis in ``theta`` on panels cut inside a bulk).  A bulk above its
    target (``max(1e-10, eps/width)`` of its mass) is examined for a gap narrower than the grid (a square-root
    dip to zero: the cluster just before it merges with rho_1, split off as its own bulk), a sharp minimum
    (split there) or gets ``N`` doubled.  What remains is the Lorentzian smoothing of width ``eps``: each bulk
    loses a mass of order ``eps / width`` past its edges (1e-11 to 1e-9 in the cases the tests cover, up to
    1e-5 for a bulk 1e-6 wide; ``eps_rel`` scales it linearly).  In regime I (``psi_p > 1 + psi_n``,
    ``psi_n > 1``) expect four parts (docs/theory/random_features.md §4): the delta peak ``1 - (1+psi_n)/psi_p``
    at ``s_t^2``, a small cluster of mass ``1/psi_p`` just above it, rho_1 of mass ``(psi_n - 1)/psi_p`` and
    rho_2 of mass ``1/psi_p``; the number of intervals is not hard-coded.  The coarse grid and the quadrature
    nodes are solved once each and reported as they are.  Cost at the defaults: about 3 ms after compilation,
    three solver calls (``benchmarks/spectrum.py``).

    References
    ----------
    arXiv:2505.17638 MT Thm 3.1-3.2, SM C.4-C.5 (eqs 147, 161-163).

    Examples
    --------
    >>> res = rf_spectrum(RFModel(psi_p=64, psi_n=8, t=0.01))
    >>> round(res.delta_weight, 4), len(res.bulks)
    (0.8594, 3)
    """
    if not isinstance(model, RFModel):
        raise TypeError(f"model must be an RFModel (got {type(model).__name__}); e.g. RFModel(psi_p=64, psi_n=8, "
                        f"t=0.01)")
    n_grid = checks.positive_int("n_grid", n_grid, minimum=50, maximum=10 ** 6)
    n_mass = checks.positive_int("n_mass", n_mass, minimum=20, maximum=1024)
    if lambdas is not None:
        _check_lambdas(model, lambdas)
    eps_rel = checks.positive_float("eps_rel", eps_rel)
    if not 1e-12 <= eps_rel <= 1e-3:
        raise ValueError(f"eps_rel must be in [1e-12, 1e-3] (got {eps_rel!r})")
    budget = thread_budget(threads)
    engine = _engine(engine)
    if not isinstance(check, bool):
        raise TypeError(f"check must be True or False (got {check!r})")
    c = model.constants
    psi_p, psi_n = model.psi_p, model.psi_n
    if not (c.v_t2 > 1e-14 and c.s_t2 > 1e-300):
        raise ValueError(f"activation={c.activation!r} has v_t^2 = {c.v_t2:.3g}, s_t^2 = {c.s_t2:.3g} at "
                         f"t={model.t}: a (near-)linear activation has no memorization bulk; use a nonlinear one")
    warn = []
    if psi_n <= 1 or psi_p <= 1:
        warn.append(f"psi_n={psi_n:g}, psi_p={psi_p:g}: the spectrum for psi <= 1 is outside the "
                    "structure of Theorem 3.2 (docs/theory/random_features.md §4); the density is still the "
                    "solution of Thm 3.1")
    for m in warn:
        warnings.warn(m, checks.MemlabValidityWarning, stacklevel=2)
    result, failed = _solve_spectrum(model, lambdas, n_grid, n_mass, eps_rel, threads, engine, budget, warn)
    if failed:
        msg = (f"rf_spectrum(psi_p={psi_p:g}, psi_n={psi_n:g}, t={model.t:g}): the solved spectrum fails its checks: "
               + "; ".join(failed) + " (check=False returns it marked invalid)")
        if check:
            raise SpectrumAccuracyError(msg, result)
        result.diagnostics["warnings"].append(msg)
        warnings.warn(msg, checks.MemlabValidityWarning, stacklevel=2)
    return result


def _solve_spectrum(model, lambdas, n_grid, n_mass, eps_rel, threads, engine, budget, warn):
    """The body of :func:`rf_spectrum`: returns ``(result, failed checks)``."""
    warn = list(warn)
    c = model.constants
    psi_p, psi_n = model.psi_p, model.psi_n
    ctx = _Context(model, eps_rel, threads, _kernels(engine))
    s2 = ctx.s2
    # delta-peak weight: eps Im q(s2 + i eps) as eps -> 0 (two eps values as a check)
    w_eps = 1e-9 * s2
    pk = ctx.solve(np.array([s2, s2]), np.array([w_eps, 10 * w_eps]))
    w_num = float(pk.eps[0] * pk.q[0].imag)
    w_check = float(pk.eps[1] * pk.q[1].imag)
    if w_num < 1e-9:
        w_num = 0.0
    ctx.w = w_num

    top = spectrum_upper_bound(model)
    x = np.geomspace(1e-7 * min(c.v_t2, top), top - s2, n_grid)
    grid = s2 + x
    # a bulk narrower than the grid's spacing falls between its points: where the leading-order rho_1
    # (docs/theory/random_features.md §4) is narrow (psi_n >> psi_p or psi_p >> psi_n), add points across it
    lo_f, hi_f = (float(v) for v in ts.first_bulk_edges(s2, c.v_t2, psi_p, psi_n))
    width = hi_f - lo_f
    if lo_f > s2 and hi_f < top and 0.0 < width < 8.0 * (x[1] / x[0] - 1.0) * (lo_f - s2):
        margin = max(2.0 * width, 0.1 * (lo_f - s2))
        n_extra = int(np.clip(np.ceil((width + 2.0 * margin) / (width / 8.0)), 33, 513))
        extra = np.linspace(max(lo_f - margin, grid[0]), min(hi_f + margin, top), n_extra)
        grid = np.unique(np.concatenate([grid, extra]))
        x = grid - s2
    coarse = ctx.solve(grid)
    inside = ctx.inside(coarse)
    if inside[-1]:
        raise SpectrumConvergenceError(f"support reaches the grid top {top:.4g}", grid[-1:], coarse.residual[-1:],
                                       np.array([0]))
    # runs of consecutive inside points; an edge lies between each run's end and its outside neighbour
    d = np.diff(np.concatenate([[0], inside.astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(d == 1), np.flatnonzero(d == -1) - 1
    fields = (coarse.q, coarse.r, coarse.s)
    lo_out, lo_sol = grid[np.maximum(starts - 1, 0)], [f[np.maximum(starts - 1, 0)] for f in fields]
    if starts.size and starts[0] == 0:   # a bulk from the grid's first point on: start below it
        below = ctx.solve(np.array([s2 + 0.5 * x[0]]))
        lo_out[0] = below.lambdas[0]
        for f, fb in zip(lo_sol, (below.q, below.r, below.s)):
            f[0] = fb[0]
    hi_out, hi_sol = grid[ends + 1], [f[ends + 1] for f in fields]
    edges, n_fold, n_bis = _edges(ctx, np.concatenate([lo_out, hi_out]),
                                  tuple(np.concatenate([a, b]) for a, b in zip(lo_sol, hi_sol)),
                                  np.concatenate([grid[starts], grid[ends]]))
    nb = starts.size
    lo_edges, hi_edges = edges[:nb], edges[nb:]

    qbulks, hidden, quad_err, quad_ok = _integrate_bulks(ctx, list(zip(lo_edges, hi_edges)), n_mass)
    nodes, wq, ws, bulks, mass_s, n_int, node_sol = [], [], [], [], [], [], []
    for a, b, panels in qbulks:
        lam_b = np.concatenate([p.lam for p in panels])
        w_b = np.concatenate([p.weights() * p.rho for p in panels])
        ws_b = np.concatenate([p.weights() * p.rho_s for p in panels])
        m = float(np.sum(w_b))
        if a - s2 < 1e-4 * s2 and m < 1e-9:   # right at s2: the residue of the delta peak's Lorentzian, not a bulk
            continue
        order = np.argsort(lam_b, kind="stable")
        bulks.append((float(a), float(b), m))
        nodes.append(lam_b[order])
        wq.append(w_b[order])
        ws.append(ws_b[order])
        node_sol.append({k: np.concatenate([p.f[k] for p in panels])[order] for k in _FIELDS})
        mass_s.append(float(np.sum(ws_b)))
        n_int.append(len(panels))
    nodes = np.concatenate(nodes) if nodes else np.array([])
    wq = np.concatenate(wq) if wq else np.array([])
    ws = np.concatenate(ws) if ws else np.array([])

    if lambdas is None:
        # the coarse grid and the quadrature nodes were solved at the same eps: reported without solving again
        lam_out, idx = np.unique(np.concatenate([grid, nodes]), return_index=True)
        sol = StieltjesSolution(**{k: np.concatenate([getattr(coarse, k)] + [f[k] for f in node_sol])[idx]
                                   for k in _FIELDS})
    else:
        lam_out = _check_lambdas(model, lambdas)
        order = np.argsort(lam_out, kind="stable")
        s_sorted = ctx.solve(lam_out[order])
        inv = np.empty_like(order)
        inv[order] = np.arange(order.size)
        sol = StieltjesSolution(**{k: getattr(s_sorted, k)[inv] for k in _FIELDS})
    dens, dens_s = ctx.densities(sol)

    total = w_num + sum(m for _, _, m in bulks)
    theory = dict(delta=ts.delta_weight(psi_p, psi_n))
    if psi_p > 1 + psi_n and psi_n > 1:
        theory.update(cluster=1 / psi_p, rho1=(psi_n - 1) / psi_p, rho2=1 / psi_p)
    elif psi_n > psi_p:
        theory.update(rho1=1 - 1 / psi_p, rho2=1 / psi_p)
    failed = []
    if abs(total - 1.0) > 1e-3:
        # the Lorentzian smoothing moves a mass of order eps / scale past a bulk's edges, the scale being its width
        # or its distance to the singular point below it (s_t^2 or the bulk below), whichever is smaller
        below = [s2] + [b for _, b, _ in bulks[:-1]]
        smooth = max((eps_rel * max(a, s2) / max(min(b - a, a - g), 1e-300) for (a, b, _), g in zip(bulks, below)),
                     default=0.0)
        if abs(total - 1.0) <= 100.0 * smooth:
            warn.append(f"total mass {total:.6f} differs from 1 by more than 1e-3: a bulk only {1 / smooth:.2g} eps "
                        "wide (or that close to the point below it) loses mass to the Lorentzian smoothing; decrease "
                        "eps_rel")
            warnings.warn(warn[-1], checks.MemlabValidityWarning, stacklevel=3)
        else:
            failed.append(f"total mass {total:.6f} differs from 1 by more than 1e-3, more than the Lorentzian "
                          f"smoothing explains (at most {100 * smooth:.1e}): a bulk narrower than the grid was missed; "
                          f"increase n_grid (now {n_grid})")
    if not quad_ok and quad_err > 1e-3:
        failed.append(f"bulk quadrature stopped at an error estimate of {quad_err:.1e} of a bulk's mass (node "
                      "budget spent: a bulk whose density the solver does not resolve, e.g. one starting within a "
                      "few hundred eps of the delta peak)")
    elif not quad_ok:
        warn.append(f"bulk quadrature stopped at an error estimate of {quad_err:.1e} of a bulk's mass (node budget "
                    "spent)")
        warnings.warn(warn[-1], checks.MemlabValidityWarning, stacklevel=3)
    diag = dict(converged=True, max_residual=ctx.max_residual, n_newton=ctx.n_newton,
                n_full_ladder=int(sol.full_ladder.sum()), total_mass=float(total), delta_weight_check=w_check,
                mass_s_total=float(sum(mass_s)), theory_masses=theory, quad_intervals=n_int, quad_error=quad_err,
                edges_fold=n_fold, edges_bisected=n_bis, hidden_gaps=hidden, solver_calls=ctx.calls,
                threads=ctx.threads_used, thread_budget=budget.n, engine=engine, eps_rel=eps_rel, grid_top=float(top),
                warnings=warn, valid=not failed, failed_checks=failed,
                message=f"{len(bulks)} bulk(s); total mass {total:.6f}")
    result = SpectrumResult(model=model, lambdas=lam_out, density=dens, density_s=dens_s, q=sol.q, s=sol.s,
                          bulks=bulks, bulk_mass_s=mass_s, delta_weight=w_num, delta_location=float(s2), nodes=nodes,
                          weights=wq, weights_s=ws, diagnostics=diag)
    return result, failed


def count_per_bulk(spec: SpectrumResult, eigenvalues, *, rtol_delta=1e-9):
    """Count finite-size eigenvalues in the delta peak and in each theory bulk.

    Eigenvalues within ``rtol_delta * max(1, s_t^2)`` of ``s_t^2`` count as the delta peak; the others
    are assigned to bulks by the geometric midpoints of the gaps between consecutive bulks (so
    finite-size edge fluctuations smaller than the gaps do not change the counts).

    Returns
    -------
    (int, list of int)
        Delta-peak count and one count per bulk of ``spec.bulks``.
    """
    ev = np.asarray(eigenvalues, dtype=float).reshape(-1)
    s2 = spec.delta_location
    at = np.abs(ev - s2) <= rtol_delta * max(1.0, s2)
    rest = ev[~at]
    bounds = [-np.inf]
    for (a0, b0, _), (a1, _, _) in zip(spec.bulks[:-1], spec.bulks[1:]):
        bounds.append(np.sqrt(b0 * a1))
    bounds.append(np.inf)
    counts, _ = np.histogram(rest, bins=np.array(bounds))
    return int(at.sum()), [int(c) for c in counts]
