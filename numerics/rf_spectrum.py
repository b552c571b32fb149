"""Spectrum of the random-features matrix U from Theorem 3.1 (arXiv:2505.17638 MT Thm 3.1, SM Thm C.1).

The Stieltjes transforms ``q, r, s`` solve E1-E3 (docs/theory/random_features.md §4).  :func:`solve_stieltjes`
evaluates them
at ``z = lambda + i eps`` on a grid of ``lambda`` with the numba Newton kernels of
:mod:`memlab.numerics._rf_solver` (analytic Jacobian generated from the sympy derivation,
epsilon-continuation from a large imaginary part, warm start along ``lambda``).  :func:`rf_spectrum`
adds the bulk structure: support intervals, masses, the delta-peak weight and the measure ``mu_s``
(``Im s / pi``) that the learning curves integrate against (docs/theory/random_features.md §2).
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field

import numpy as np

from ..theory import checks
from ..theory import timescales as ts
from ..theory.gep import GEPConstants
from ..theory.rf_model import RFModel
from ..theory.rf_formulas import kernel_aE
from . import _rf_solver as _ks

__all__ = ["StieltjesSolution", "SpectrumResult", "SpectrumConvergenceError", "solve_stieltjes",
           "stieltjes_system", "rf_spectrum", "spectrum_upper_bound", "count_per_bulk"]

_STATUS = {0: "converged", 1: "Newton did not converge", 2: "Herglotz/branch check failed",
           3: "non-finite values", 4: "spurious root q = 0"}


class SpectrumConvergenceError(RuntimeError):
    """The Stieltjes solver failed at some spectral points; carries ``lambdas``, ``residuals``, ``status``."""

    def __init__(self, message, lambdas, residuals, status):
        super().__init__(message)
        self.lambdas = lambdas
        self.residuals = residuals
        self.status = status


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
        ``int g d mu_s ~ sum(weights_s * g(nodes))`` (adaptive composite rule, see :func:`rf_spectrum`).
    diagnostics : dict
        ``converged``, ``max_residual``, ``n_newton``, ``n_full_ladder``, ``total_mass``,
        ``theory_masses`` (Thm 3.2, docs/theory/random_features.md §4), ``quad_intervals`` (sub-intervals per
        bulk), ``quad_error`` (largest mass change of the last refinement), ``eps_rel``, ``warnings``, ``message``.
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
        """Continuous mass of ``rho`` in ``(s_t^2, lam]`` (delta peak excluded)."""
        lam = np.asarray(lam, dtype=float)
        order = np.argsort(self.nodes)
        cum = np.cumsum(self.weights[order])
        x = self.nodes[order]
        return np.interp(lam, x, cum, left=0.0, right=cum[-1] if cum.size else 0.0)

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
    out = _ks.system(complex(q), complex(r), complex(s), complex(z), th, om, pp, pn, aE, b2, v2, s2)
    F = np.array(out[:3])
    J = np.array([[out[3], out[4], 1.0], [out[5], out[6], 0.0], [out[7], out[8], out[9]]])
    return F, J


def _n_chunks(n):
    return int(max(1, min(n // 16, 4 * (os.cpu_count() or 1))))


def solve_stieltjes(model: RFModel, lambdas, *, eps=None, eps_rel=1e-9, warm=True, max_iter=60, tol=1e-12,
                    raise_on_failure=True):
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
        Warm start along ``lambda`` (short local ladder, full ladder on failure).
    max_iter, tol : int, float
        Newton iterations per ladder step and the relative-residual acceptance level.
    raise_on_failure : bool
        After one retry with a denser ladder, raise :class:`SpectrumConvergenceError` listing the
        failed ``lambda`` values and residuals (default); ``False`` keeps the failed points with their
        ``status`` (never NaN silently).

    Returns
    -------
    StieltjesSolution

    Notes
    -----
    Cost: about 0.3 microseconds per Newton iteration and of order 100 iterations per point with the
    warm start (``benchmarks/spectrum.py``).  The first call compiles the kernels (cached on disk).

    References
    ----------
    arXiv:2505.17638 MT Thm 3.1 (SM Thm C.1), with ``Wbar = W/sqrt(d)`` (correction 6 of
    docs/theory/random_features.md §8).
    """
    if not isinstance(model, RFModel):
        raise TypeError(f"model must be an RFModel (got {type(model).__name__})")
    lam = checks.finite_array("lambdas", lambdas).reshape(-1)
    if lam.size == 0:
        raise ValueError("lambdas must be non-empty")
    pars = _params(model)
    if eps is None:
        e = eps_rel * np.maximum(np.abs(lam), model.constants.s_t2)
    else:
        e = np.broadcast_to(np.asarray(eps, dtype=float), lam.shape).copy()
        if not np.all(np.isfinite(e)) or np.any(e <= 0):
            raise ValueError("eps must be finite and > 0")
    order = np.argsort(lam, kind="stable")
    ls, es = lam[order], e[order]
    top = max(float(np.max(np.abs(ls))), spectrum_upper_bound(model))
    eps0 = 10.0 * top
    out = _ks.solve_grid(ls, es, eps0, *pars, 0.1, max_iter, tol, 600, _n_chunks(ls.size), warm)
    Q, R, S, st, it, res, full = (np.array(x) for x in out)
    bad = st != 0
    if np.any(bad):   # retry: full ladder with a denser step
        idx = np.flatnonzero(bad)
        out2 = _ks.solve_grid(ls[idx], es[idx], eps0, *pars, 0.5, 4 * max_iter, tol, 5000, 1, False)
        for arr, new in zip((Q, R, S, st, it, res, full), out2):
            arr[idx] = new
        bad = st != 0
    if np.any(bad) and raise_on_failure:
        idx = np.flatnonzero(bad)
        pts = ", ".join(f"lambda={ls[i]:.6g} (residual {res[i]:.2e}, {_STATUS[int(st[i])]})" for i in idx[:8])
        raise SpectrumConvergenceError(
            f"Stieltjes solver failed at {idx.size} of {ls.size} points: {pts}"
            + (" ..." if idx.size > 8 else "") + "; a larger eps (eps_rel) moves the points off the real axis",
            ls[idx], res[idx], st[idx])
    inv = np.empty_like(order)
    inv[order] = np.arange(order.size)
    return StieltjesSolution(lambdas=lam, eps=e, q=Q[inv], r=R[inv], s=S[inv], residual=res[inv],
                             n_iter=it[inv], full_ladder=full[inv], status=st[inv])


# ---------------------------------------------------------------- bulk structure -----------------

def _continuous_im(sol: StieltjesSolution, s2: float, w: float):
    lor = w * sol.eps / ((sol.lambdas - s2) ** 2 + sol.eps ** 2)
    return sol.q.imag - lor


def _in_support(lams, model, s2, w, eps_rel):
    """Scale-free support test: inside the support Im q(lambda + i eps) does not depend on eps,
    outside it is proportional to eps.  Compare eps and 100 eps (geometric threshold 0.1)."""
    a = solve_stieltjes(model, lams, eps_rel=eps_rel)
    b = solve_stieltjes(model, lams, eps_rel=100 * eps_rel)
    ia, ib = _continuous_im(a, s2, w), _continuous_im(b, s2, w)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(ib > 0, ia / ib, 0.0)
    return (ia > 0) & (ratio > 0.1), a


def _refine_edges(lo_out, hi_in, model, s2, w, eps_rel, n_bisect=48):
    """Bisection (in log(lambda - s2)) between a point outside and one inside the support."""
    a = np.log(np.asarray(lo_out) - s2)
    b = np.log(np.asarray(hi_in) - s2)
    for _ in range(n_bisect):
        m = 0.5 * (a + b)
        inside, _ = _in_support(s2 + np.exp(m), model, s2, w, eps_rel)
        # a: outside side, b: inside side
        a = np.where(inside, a, m)
        b = np.where(inside, m, b)
    return s2 + np.exp(0.5 * (a + b))


def _gauss_legendre_theta(n):
    x, wts = np.polynomial.legendre.leggauss(n)
    theta = 0.5 * np.pi * (x + 1.0)
    return theta, 0.5 * np.pi * wts


def _densities(model, lam, s2, w, eps_rel):
    sol = solve_stieltjes(model, lam, eps_rel=eps_rel)
    return (np.clip(_continuous_im(sol, s2, w), 0.0, None) / np.pi, np.clip(sol.s.imag, 0.0, None) / np.pi,
            sol)


def _bulk_quadrature(model, a, b, s2, w, eps_rel, n, rtol=1e-10, max_intervals=64):
    """Masses of ``rho`` and ``mu_s`` on ``[a, b]`` by a globally adaptive composite edge-clustered rule.

    Each sub-interval ``[l, r]`` is integrated with ``n`` Gauss-Legendre nodes in ``theta`` and
    ``lambda = (l+r)/2 - (r-l)/2 cos(theta)`` (square-root behaviour at the ends is resolved) on each of its
    two halves; the difference to the same rule on the whole sub-interval is its error estimate.  The
    sub-intervals with the largest errors are halved until the summed error of both measures is below
    ``rtol`` (relative to the bulk masses) or ``max_intervals`` is reached, so an interior square-root dip (a
    cluster that has just merged with rho_1) ends on sub-interval boundaries after a few splits.

    Returns ``(nodes, w_rho, w_s, n_intervals, error, max_residual)``.
    """
    th, wt = _gauss_legendre_theta(n)
    ct, st_w = np.cos(th), np.sin(th) * wt
    resid = [0.0]

    def halves(lo, hi):
        """Rules on both halves of every ``[lo_i, hi_i]``: nodes and weights of shape (len, 2 n)."""
        mid = 0.5 * (lo + hi)
        L = np.concatenate([lo, mid])[:, None]
        R = np.concatenate([mid, hi])[:, None]
        lam = 0.5 * (L + R) - 0.5 * (R - L) * ct
        jac = 0.5 * (R - L) * st_w
        rho, rho_s, sol = _densities(model, lam.ravel(), s2, w, eps_rel)
        resid[0] = max(resid[0], float(sol.residual.max()))
        k = lo.size
        wr, wsr = jac * rho.reshape(lam.shape), jac * rho_s.reshape(lam.shape)
        cat = lambda x: np.concatenate([x[:k], x[k:]], axis=1)  # noqa: E731 - left half then right half
        return cat(lam), cat(wr), cat(wsr)

    lam0 = 0.5 * (a + b) - 0.5 * (b - a) * ct
    rho0, rho0_s, sol0 = _densities(model, lam0, s2, w, eps_rel)
    jac0 = 0.5 * (b - a) * st_w
    whole = [(float(np.sum(jac0 * rho0)), float(np.sum(jac0 * rho0_s)))]
    resid[0] = float(sol0.residual.max())
    lo, hi = np.array([a]), np.array([b])
    lam, wr, wsr = halves(lo, hi)
    scale = max(float(wr.sum()), 1e-300)
    scale_s = max(float(wsr.sum()), 1e-300)

    def errors():
        return np.array([max(abs(wr[i].sum() - m) / scale, abs(wsr[i].sum() - ms) / scale_s)
                         for i, (m, ms) in enumerate(whole)])

    err = errors()
    while err.sum() > rtol and lo.size < max_intervals:
        worst = np.argsort(err)[::-1][:max(1, min(8, max_intervals - lo.size))]
        worst = worst[err[worst] > rtol / max_intervals]
        if worst.size == 0:
            break
        keep = np.setdiff1d(np.arange(lo.size), worst)
        mid = 0.5 * (lo[worst] + hi[worst])
        new_lo, new_hi = np.concatenate([lo[worst], mid]), np.concatenate([mid, hi[worst]])
        new_whole = ([(float(wr[i, :n].sum()), float(wsr[i, :n].sum())) for i in worst]
                     + [(float(wr[i, n:].sum()), float(wsr[i, n:].sum())) for i in worst])
        nl, nw, nws = halves(new_lo, new_hi)
        lo, hi = np.concatenate([lo[keep], new_lo]), np.concatenate([hi[keep], new_hi])
        lam, wr, wsr = np.vstack([lam[keep], nl]), np.vstack([wr[keep], nw]), np.vstack([wsr[keep], nws])
        whole = [whole[i] for i in keep] + new_whole
        err = errors()
    nodes = lam.ravel()
    order = np.argsort(nodes, kind="stable")
    return nodes[order], wr.ravel()[order], wsr.ravel()[order], int(lo.size), float(err.sum()), resid[0]


def rf_spectrum(model: RFModel, *, lambdas=None, n_grid=400, n_mass=64, eps_rel=1e-9) -> SpectrumResult:
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
    n_mass : int, default 64
        Quadrature nodes per sub-interval of the adaptive mass rule.
    eps_rel : float, default 1e-9
        ``eps = eps_rel * max(lambda, s_t^2)``, in ``[1e-12, 1e-3]``.

    Returns
    -------
    SpectrumResult

    Raises
    ------
    ValueError, TypeError
        Bad parameters (named).
    SpectrumConvergenceError
        The solver failed at some points (lists them with residuals).

    Notes
    -----
    The bulks are the set where ``Im q`` does not scale with ``eps`` (tested at ``eps`` and
    ``100 eps``); edges are bisected to relative precision ~1e-12.  Masses come from an adaptive
    composite rule: Gauss-Legendre in ``theta`` with ``lambda = (l+r)/2 - (r-l)/2 cos(theta)`` on each
    sub-interval (square-root edges are resolved), halving sub-intervals until the masses of ``rho`` and
    ``mu_s`` change by less than 1e-10 of the bulk mass, so a cluster that has just merged with rho_1 (an
    interior square-root dip) is integrated as accurately as the edges.  What remains is the Lorentzian smoothing
    of width ``eps``: each bulk loses a mass of order ``eps / width`` past its edges (1e-10 to 2e-7 of 1 in the
    cases the tests cover; ``eps_rel`` scales it linearly).  In regime I (``psi_p > 1 + psi_n``,
    ``psi_n > 1``) expect four parts (docs/theory/random_features.md §4): the delta peak ``1 - (1+psi_n)/psi_p``
    at ``s_t^2``, a small cluster of mass ``1/psi_p`` just above it, rho_1 of mass ``(psi_n - 1)/psi_p`` and
    rho_2 of mass ``1/psi_p``; the number of intervals is not hard-coded (the cluster can merge with rho_1).

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
    n_grid = checks.positive_int("n_grid", n_grid, minimum=50)
    n_mass = checks.positive_int("n_mass", n_mass, minimum=20)
    eps_rel = checks.positive_float("eps_rel", eps_rel)
    if not 1e-12 <= eps_rel <= 1e-3:
        raise ValueError(f"eps_rel must be in [1e-12, 1e-3] (got {eps_rel!r})")
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

    s2 = c.s_t2
    # delta-peak weight: eps Im q(s2 + i eps) as eps -> 0 (two eps values as a check)
    w_eps = 1e-9 * s2
    pk = solve_stieltjes(model, np.array([s2, s2]), eps=np.array([w_eps, 10 * w_eps]))
    w_num = float(pk.eps[0] * pk.q[0].imag)
    w_check = float(pk.eps[1] * pk.q[1].imag)
    if w_num < 1e-9:
        w_num = 0.0

    top = spectrum_upper_bound(model)
    x = np.geomspace(1e-7 * min(c.v_t2, top), top - s2, n_grid)
    grid = s2 + x
    inside, coarse = _in_support(grid, model, s2, w_num, eps_rel)
    if inside[-1]:
        raise SpectrumConvergenceError(f"support reaches the grid top {top:.4g}", grid[-1:], coarse.residual[-1:],
                                       np.array([0]))
    # intervals of consecutive inside points
    bulks_idx = []
    j = 0
    while j < grid.size:
        if inside[j]:
            k = j
            while k + 1 < grid.size and inside[k + 1]:
                k += 1
            bulks_idx.append((j, k))
            j = k + 1
        else:
            j += 1
    lows_out = np.array([grid[a - 1] if a > 0 else s2 + 0.5 * x[0] for a, _ in bulks_idx])
    lows_in = np.array([grid[a] for a, _ in bulks_idx])
    highs_in = np.array([grid[b] for _, b in bulks_idx])
    highs_out = np.array([grid[b + 1] for _, b in bulks_idx])
    if bulks_idx:
        lo_edges = _refine_edges(lows_out, lows_in, model, s2, w_num, eps_rel)
        hi_edges = _refine_edges(highs_out, highs_in, model, s2, w_num, eps_rel)
    else:
        lo_edges = hi_edges = np.array([])

    nodes, wq, ws, bulks, mass_s, n_int = [], [], [], [], [], []
    quad_err, quad_res = 0.0, 0.0
    for a, b in zip(lo_edges, hi_edges):
        if a - s2 < 1e-4 * s2:   # right at s2: possibly the residue of the delta peak's Lorentzian, not a bulk
            if np.sum(_bulk_quadrature(model, a, b, s2, w_num, eps_rel, n_mass, max_intervals=1)[1]) < 1e-9:
                continue
        lam_b, w_b, ws_b, k, err, res = _bulk_quadrature(model, a, b, s2, w_num, eps_rel, n_mass)
        bulks.append((float(a), float(b), float(np.sum(w_b))))
        nodes.append(lam_b)
        wq.append(w_b)
        ws.append(ws_b)
        mass_s.append(float(np.sum(ws_b)))
        n_int.append(k)
        quad_err, quad_res = max(quad_err, err), max(quad_res, res)
    nodes = np.concatenate(nodes) if nodes else np.array([])
    wq = np.concatenate(wq) if wq else np.array([])
    ws = np.concatenate(ws) if ws else np.array([])

    if lambdas is None:
        lam_out = np.unique(np.concatenate([grid, nodes]))
    else:
        lam_out = checks.finite_array("lambdas", lambdas).reshape(-1)
    dens, dens_s, sol = _densities(model, lam_out, s2, w_num, eps_rel)

    total = w_num + sum(m for _, _, m in bulks)
    theory = dict(delta=ts.delta_weight(psi_p, psi_n))
    if psi_p > 1 + psi_n and psi_n > 1:
        theory.update(cluster=1 / psi_p, rho1=(psi_n - 1) / psi_p, rho2=1 / psi_p)
    elif psi_n > psi_p:
        theory.update(rho1=1 - 1 / psi_p, rho2=1 / psi_p)
    if abs(total - 1.0) > 1e-3:
        warn.append(f"total mass {total:.6f} differs from 1 by more than 1e-3 (a bulk may be missed; "
                    "increase n_grid)")
        warnings.warn(warn[-1], checks.MemlabValidityWarning, stacklevel=2)
    diag = dict(converged=True, max_residual=float(max(sol.residual.max(), coarse.residual.max(), quad_res)),
                n_newton=int(sol.n_iter.sum()), n_full_ladder=int(sol.full_ladder.sum()),
                total_mass=float(total), delta_weight_check=w_check, mass_s_total=float(sum(mass_s)),
                theory_masses=theory, quad_intervals=n_int, quad_error=quad_err, eps_rel=eps_rel,
                grid_top=float(top), warnings=warn, message=f"{len(bulks)} bulk(s); total mass {total:.6f}")
    return SpectrumResult(model=model, lambdas=lam_out, density=dens, density_s=dens_s, q=sol.q, s=sol.s,
                          bulks=bulks, bulk_mass_s=mass_s, delta_weight=w_num, delta_location=float(s2), nodes=nodes,
                          weights=wq, weights_s=ws, diagnostics=diag)


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
