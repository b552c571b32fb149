"""Spectrum of the random-features matrix U from Theorem 3.1 (arXiv:2505.17638 MT Thm 3.1, SM Thm C.1).

The Stieltjes transforms ``q, r, s`` solve E1-E3 (spec 4.1).  :func:`solve_stieltjes` evaluates them
at ``z = lambda + i eps`` on a grid of ``lambda`` with the numba Newton kernels of
:mod:`memlab.numerics._rf_solver` (analytic Jacobian generated from the sympy derivation,
epsilon-continuation from a large imaginary part, warm start along ``lambda``).  :func:`rf_spectrum`
adds the bulk structure: support intervals, masses, the delta-peak weight and the measure ``mu_s``
(``Im s / pi``) that the learning curves integrate against (spec 2.4).
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field

import numpy as np

from ..theory import _checks
from ..theory import timescales as ts
from ..theory.gep import GEPConstants, gep_constants
from . import _rf_solver as _ks

__all__ = ["StieltjesSolution", "SpectrumResult", "SpectrumConvergenceError", "solve_stieltjes",
           "rf_spectrum", "covariance_atoms", "spectrum_upper_bound", "count_per_bulk"]

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
    """

    lambdas: np.ndarray
    eps: np.ndarray
    q: np.ndarray
    r: np.ndarray
    s: np.ndarray
    residual: np.ndarray
    n_iter: np.ndarray
    full_ladder: np.ndarray


@dataclass(frozen=True)
class SpectrumResult:
    """Theory spectrum of ``U`` (Theorem 3.1) with its bulk structure.

    Attributes
    ----------
    lambdas : ndarray
        Spectral points (sorted).  By default a log-spaced grid in ``lambda - s_t^2`` plus
        edge-clustered nodes inside every bulk.
    density : ndarray
        Continuous part of the eigenvalue density ``rho(lambda) = Im q / pi`` at ``lambda + i eps``,
        with the delta peak's Lorentzian ``w eps / (pi ((lambda - s_t^2)^2 + eps^2))`` removed.
    density_s : ndarray
        Density of the measure ``mu_s`` (``Im s / pi``; spec 2.4), which has no atom.
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
        ``int g d mu_s ~ sum(weights_s * g(nodes))``.
    constants : GEPConstants
        Gaussian-equivalence constants used.
    psi_p, psi_n, t : float
    thetas, omegas : ndarray
        Covariance atoms (``Sigma = sigma_x^2 I`` is one atom).
    diagnostics : dict
        ``converged``, ``max_residual``, ``n_newton``, ``n_full_ladder``, ``total_mass``,
        ``theory_masses`` (Thm 3.2 / spec 4.6), ``eps_rel``, ``warnings``, ``message``.
    """

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
    constants: GEPConstants = field(repr=False)
    psi_p: float = 0.0
    psi_n: float = 0.0
    t: float = 0.0
    thetas: np.ndarray = field(default=None, repr=False)
    omegas: np.ndarray = field(default=None, repr=False)
    diagnostics: dict = field(default_factory=dict, repr=False)

    def cumulative_mass(self, lam) -> np.ndarray:
        """Continuous mass of ``rho`` in ``(s_t^2, lam]`` (delta peak excluded)."""
        lam = np.asarray(lam, dtype=float)
        order = np.argsort(self.nodes)
        cum = np.cumsum(self.weights[order])
        x = self.nodes[order]
        return np.interp(lam, x, cum, left=0.0, right=cum[-1] if cum.size else 0.0)

    def integrate_s(self, g) -> float:
        """``int g(lambda) d mu_s(lambda)`` by the bulk quadrature (spec 2.4)."""
        return float(np.sum(self.weights_s * g(self.nodes)))


def covariance_atoms(covariance, sigma_x: float):
    """Validate ``covariance = (thetas, omegas)`` atoms of ``rho_Sigma``; ``None`` is ``sigma_x^2 I``.

    Returns ``(thetas, omegas, sigma_x)`` with weights normalised to 1 and
    ``sigma_x^2 = sum(omega theta)`` (``Tr Sigma / d``).
    """
    if covariance is None:
        return np.array([sigma_x ** 2]), np.array([1.0]), sigma_x
    if not isinstance(covariance, (tuple, list)) or len(covariance) != 2:
        raise TypeError("covariance must be a pair (thetas, omegas) of eigenvalue atoms and weights")
    th = _checks.finite_array("covariance thetas", covariance[0]).reshape(-1)
    om = _checks.finite_array("covariance omegas", covariance[1]).reshape(-1)
    if th.size == 0 or th.size != om.size:
        raise ValueError(f"covariance thetas and omegas must be non-empty and of equal length "
                         f"(got {th.size} and {om.size})")
    if np.any(th <= 0):
        raise ValueError(f"covariance thetas must be > 0 (got {th[th <= 0][0]!r})")
    if np.any(om <= 0):
        raise ValueError(f"covariance omegas must be > 0: every atom needs a positive mass (got {om[om <= 0][0]!r})")
    om = om / om.sum()
    return th, om, float(np.sqrt(np.sum(om * th)))


def spectrum_upper_bound(c: GEPConstants, psi_p: float, psi_n: float, theta_max: float) -> float:
    """An upper bound (d -> oo) on the top of the spectrum of ``U_GEP`` (triangle inequality).

    ``||G||/sqrt(n) <= e^-t a_t sqrt(theta_max) (sqrt(psi_p)+1)(1+1/sqrt(psi_n)) + v_t (sqrt(psi_p/psi_n)+1)``
    and ``||b_t^2 K|| <= b_t^2 (sqrt(psi_p)+1)^2``; 20% margin.
    """
    g = (np.exp(-c.t) * c.a_t * np.sqrt(theta_max) * (np.sqrt(psi_p) + 1) * (1 + 1 / np.sqrt(psi_n))
         + np.sqrt(c.v_t2) * (np.sqrt(psi_p / psi_n) + 1))
    return 1.2 * (c.s_t2 + g ** 2 + c.b_t ** 2 * (np.sqrt(psi_p) + 1) ** 2)


def _params(c: GEPConstants, psi_p, psi_n, thetas, omegas):
    return (np.ascontiguousarray(thetas, dtype=np.float64), np.ascontiguousarray(omegas, dtype=np.float64),
            float(psi_p), float(psi_n), float(c.a_t ** 2 * np.exp(-2 * c.t)), float(c.b_t ** 2),
            float(c.v_t2), float(c.s_t2), float(np.sum(omegas * thetas)))


def _n_chunks(n):
    return int(max(1, min(n // 16, 4 * (os.cpu_count() or 1))))


def solve_stieltjes(lambdas, *, psi_p, psi_n, constants: GEPConstants, thetas=None, omegas=None,
                    eps=None, eps_rel=1e-9, warm=True, max_iter=60, tol=1e-12, raise_on_failure=True):
    """Solve Theorem 3.1 for ``(q, r, s)`` at ``lambdas + i eps`` (spec 4.4).

    Parameters
    ----------
    lambdas : array_like
        Real parts (any order; solved in sorted order and returned in the given order).
    psi_p, psi_n : float
        ``p/d`` and ``n/d``.
    constants : GEPConstants
        From :func:`memlab.theory.gep.gep_constants`.
    thetas, omegas : array_like, optional
        Covariance atoms; default the single atom ``sigma_x^2`` of ``constants``.
    eps : float or array_like, optional
        Imaginary parts; default ``eps_rel * max(|lambda|, s_t^2)``.
    warm : bool
        Warm start along ``lambda`` (short local ladder, full ladder on failure).
    max_iter, tol : int, float
        Newton iterations per ladder step and the relative-residual acceptance level.
    raise_on_failure : bool
        After one retry with a denser ladder, raise :class:`SpectrumConvergenceError` listing the
        failed ``lambda`` values and residuals (default); never returns NaN silently.

    Returns
    -------
    StieltjesSolution

    Notes
    -----
    Cost: about 0.3 microseconds per Newton iteration and of order 100 iterations per point with the
    warm start (``benchmarks/spectrum.py``).  The first call compiles the kernels (cached on disk).

    References
    ----------
    arXiv:2505.17638 MT Thm 3.1 (SM Thm C.1), with ``Wbar = W/sqrt(d)`` (spec correction 6).
    """
    lam = _checks.finite_array("lambdas", lambdas).reshape(-1)
    if lam.size == 0:
        raise ValueError("lambdas must be non-empty")
    if thetas is None:
        thetas, omegas = np.array([constants.sigma_x ** 2]), np.array([1.0])
    pars = _params(constants, psi_p, psi_n, thetas, omegas)
    if eps is None:
        e = eps_rel * np.maximum(np.abs(lam), constants.s_t2)
    else:
        e = np.broadcast_to(np.asarray(eps, dtype=float), lam.shape).copy()
        if not np.all(np.isfinite(e)) or np.any(e <= 0):
            raise ValueError("eps must be finite and > 0")
    order = np.argsort(lam, kind="stable")
    ls, es = lam[order], e[order]
    top = max(float(np.max(np.abs(ls))), spectrum_upper_bound(constants, psi_p, psi_n, float(np.max(thetas))))
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
            + (" ..." if idx.size > 8 else "") + "; try a larger eps_rel or fewer/shifted lambdas",
            ls[idx], res[idx], st[idx])
    inv = np.empty_like(order)
    inv[order] = np.arange(order.size)
    return StieltjesSolution(lambdas=lam, eps=e, q=Q[inv], r=R[inv], s=S[inv], residual=res[inv],
                             n_iter=it[inv], full_ladder=full[inv])


# ---------------------------------------------------------------- bulk structure -----------------

def _continuous_im(sol: StieltjesSolution, s2: float, w: float):
    lor = w * sol.eps / ((sol.lambdas - s2) ** 2 + sol.eps ** 2)
    return sol.q.imag - lor


def _in_support(lams, common, s2, w, eps_rel):
    """Scale-free support test: inside the support Im q(lambda + i eps) does not depend on eps,
    outside it is proportional to eps.  Compare eps and 100 eps (geometric threshold 0.1)."""
    a = solve_stieltjes(lams, eps_rel=eps_rel, **common)
    b = solve_stieltjes(lams, eps_rel=100 * eps_rel, **common)
    ia, ib = _continuous_im(a, s2, w), _continuous_im(b, s2, w)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(ib > 0, ia / ib, 0.0)
    return (ia > 0) & (ratio > 0.1), a


def _refine_edges(lo_out, hi_in, common, s2, w, eps_rel, rising, n_bisect=48):
    """Bisection (in log(lambda - s2)) between a point outside and one inside the support."""
    a = np.log(np.asarray(lo_out) - s2)
    b = np.log(np.asarray(hi_in) - s2)
    for _ in range(n_bisect):
        m = 0.5 * (a + b)
        inside, _ = _in_support(s2 + np.exp(m), common, s2, w, eps_rel)
        # a: outside side, b: inside side
        a = np.where(inside, a, m)
        b = np.where(inside, m, b)
    return s2 + np.exp(0.5 * (a + b))


def _gauss_legendre_theta(n):
    x, wts = np.polynomial.legendre.leggauss(n)
    theta = 0.5 * np.pi * (x + 1.0)
    return theta, 0.5 * np.pi * wts


def rf_spectrum(psi_p, psi_n, t, *, activation="tanh", sigma_x=1.0, lambdas=None, covariance=None,
                center=False, n_grid=400, n_mass=200, eps_rel=1e-9) -> SpectrumResult:
    """Eigenvalue density of the random-features matrix ``U`` (Theorem 3.1) and its bulks.

    Parameters
    ----------
    psi_p, psi_n : float
        ``p/d`` (features per dimension) and ``n/d`` (samples per dimension), both > 0.
    t : float
        Diffusion time of the OU process (> 0); ``Delta_t = 1 - exp(-2t)``.
    activation : str or callable
        ``"tanh"`` (default, the paper's), ``"erf"``, ``"relu"``/``"gelu"`` (need ``center=True``),
        or a vectorised callable.
    sigma_x : float
        Data standard deviation (``Sigma = sigma_x^2 I``); ignored when ``covariance`` is given.
    lambdas : array_like, optional
        Where to report the density; default an automatic grid (log-spaced in ``lambda - s_t^2``
        plus edge-clustered nodes in each bulk).
    covariance : (thetas, omegas), optional
        Eigenvalue atoms and weights of ``rho_Sigma`` (e.g. ``([0.5, 1.5], [0.5, 0.5])`` for the
        paper's Fig. 4 right).  Then ``sigma_x^2 = sum(omega theta)``.
    center : bool
        Use ``sigma(h) - mu0(t)`` (required for activations with ``mu0 != 0``; spec 1.3).
    n_grid, n_mass : int
        Coarse-grid points and quadrature nodes per bulk.
    eps_rel : float
        ``eps = eps_rel * max(lambda, s_t^2)``.

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
    ``100 eps``); edges are bisected to relative precision ~1e-12; masses are Gauss-Legendre
    integrals in ``theta`` with ``lambda = (a+b)/2 - (b-a)/2 cos(theta)``, which resolves the
    square-root edges.  In regime I (``psi_p > 1 + psi_n``, ``psi_n > 1``) expect four parts
    (spec 4.6): the delta peak ``1 - (1+psi_n)/psi_p`` at ``s_t^2``, a small cluster of mass
    ``1/psi_p`` just above it, rho_1 of mass ``(psi_n - 1)/psi_p`` and rho_2 of mass ``1/psi_p``;
    the number of intervals is not hard-coded (the cluster can merge with rho_1).

    References
    ----------
    arXiv:2505.17638 MT Thm 3.1-3.2, SM C.4-C.5 (eqs 147, 161-163); spec sections 4.4-4.6.

    Examples
    --------
    >>> res = rf_spectrum(64, 8, 0.01)
    >>> round(res.delta_weight, 4), len(res.bulks)
    (0.8594, 3)
    """
    psi_p = _checks.positive_float("psi_p", psi_p)
    psi_n = _checks.positive_float("psi_n", psi_n)
    t = _checks.positive_float("t", t)
    n_grid = _checks.positive_int("n_grid", n_grid, minimum=50)
    n_mass = _checks.positive_int("n_mass", n_mass, minimum=20)
    eps_rel = _checks.positive_float("eps_rel", eps_rel)
    if not 1e-12 <= eps_rel <= 1e-3:
        raise ValueError(f"eps_rel must be in [1e-12, 1e-3] (got {eps_rel!r})")
    sigma_x = _checks.positive_float("sigma_x", sigma_x)
    if covariance is not None and sigma_x != 1.0:
        raise ValueError("give either sigma_x or covariance, not both (covariance sets sigma_x^2 = sum(omega*theta))")
    thetas, omegas, sx = covariance_atoms(covariance, sigma_x)
    c = gep_constants(t, activation=activation, sigma_x=sx, center=center)
    if not (c.v_t2 > 1e-14 and c.s_t2 > 1e-300):
        raise ValueError(f"activation={c.activation!r} has v_t^2 = {c.v_t2:.3g}, s_t^2 = {c.s_t2:.3g} at "
                         f"t={t}: a (near-)linear activation has no memorization bulk; use a nonlinear one")
    warn = []
    if psi_n <= 1 or psi_p <= 1:
        warn.append(f"psi_n={psi_n:g}, psi_p={psi_p:g}: the spectrum for psi <= 1 is outside the "
                    "structure of Theorem 3.2 (spec 4.6); the density is still the solution of Thm 3.1")
    for m in warn:
        warnings.warn(m, _checks.MemlabValidityWarning, stacklevel=2)

    s2 = c.s_t2
    common = dict(psi_p=psi_p, psi_n=psi_n, constants=c, thetas=thetas, omegas=omegas)

    # delta-peak weight: eps Im q(s2 + i eps) as eps -> 0 (two eps values as a check)
    w_eps = 1e-9 * s2
    pk = solve_stieltjes(np.array([s2, s2]), eps=np.array([w_eps, 10 * w_eps]), **common)
    w_num = float(pk.eps[0] * pk.q[0].imag)
    w_check = float(pk.eps[1] * pk.q[1].imag)
    if w_num < 1e-9:
        w_num = 0.0

    top = spectrum_upper_bound(c, psi_p, psi_n, float(np.max(thetas)))
    x = np.geomspace(1e-7 * min(c.v_t2, top), top - s2, n_grid)
    grid = s2 + x
    inside, coarse = _in_support(grid, common, s2, w_num, eps_rel)
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
        lo_edges = _refine_edges(lows_out, lows_in, common, s2, w_num, eps_rel, True)
        hi_edges = _refine_edges(highs_out, highs_in, common, s2, w_num, eps_rel, False)
    else:
        lo_edges = hi_edges = np.array([])

    th, wt = _gauss_legendre_theta(n_mass)
    nodes, wq, ws, bulks, mass_s = [], [], [], [], []
    for a, b in zip(lo_edges, hi_edges):
        lam_b = 0.5 * (a + b) - 0.5 * (b - a) * np.cos(th)
        sol = solve_stieltjes(lam_b, eps_rel=eps_rel, **common)
        jac = 0.5 * (b - a) * np.sin(th) * wt
        rho = np.clip(_continuous_im(sol, s2, w_num), 0.0, None) / np.pi
        rho_s = np.clip(sol.s.imag, 0.0, None) / np.pi
        if np.sum(rho * jac) < 1e-9 and a - s2 < 1e-4 * s2:
            continue   # residue of the delta peak's Lorentzian right at s2, not a bulk
        bulks.append((float(a), float(b), float(np.sum(rho * jac))))
        nodes.append(lam_b)
        wq.append(rho * jac)
        ws.append(rho_s * jac)
        mass_s.append(float(np.sum(rho_s * jac)))
    nodes = np.concatenate(nodes) if nodes else np.array([])
    wq = np.concatenate(wq) if wq else np.array([])
    ws = np.concatenate(ws) if ws else np.array([])

    if lambdas is None:
        lam_out = np.unique(np.concatenate([grid, nodes]))
    else:
        lam_out = _checks.finite_array("lambdas", lambdas).reshape(-1)
    sol = solve_stieltjes(lam_out, eps_rel=eps_rel, **common)
    dens = np.clip(_continuous_im(sol, s2, w_num), 0.0, None) / np.pi
    dens_s = np.clip(sol.s.imag, 0.0, None) / np.pi

    total = w_num + sum(m for _, _, m in bulks)
    theory = dict(delta=ts.delta_weight(psi_p, psi_n))
    if psi_p > 1 + psi_n and psi_n > 1:
        theory.update(cluster=1 / psi_p, rho1=(psi_n - 1) / psi_p, rho2=1 / psi_p)
    elif psi_n > psi_p:
        theory.update(rho1=1 - 1 / psi_p, rho2=1 / psi_p)
    if abs(total - 1.0) > 1e-3:
        warn.append(f"total mass {total:.6f} differs from 1 by more than 1e-3 (a bulk may be missed; "
                    "increase n_grid)")
        warnings.warn(warn[-1], _checks.MemlabValidityWarning, stacklevel=2)
    diag = dict(converged=True, max_residual=float(max(sol.residual.max(), coarse.residual.max())),
                n_newton=int(sol.n_iter.sum()), n_full_ladder=int(sol.full_ladder.sum()),
                total_mass=float(total), delta_weight_check=w_check, mass_s_total=float(sum(mass_s)),
                theory_masses=theory, eps_rel=eps_rel, grid_top=float(top), warnings=warn,
                message=f"{len(bulks)} bulk(s); total mass {total:.6f}")
    return SpectrumResult(lambdas=lam_out, density=dens, density_s=dens_s, q=sol.q, s=sol.s, bulks=bulks,
                          bulk_mass_s=mass_s, delta_weight=w_num, delta_location=float(s2), nodes=nodes,
                          weights=wq, weights_s=ws, constants=c, psi_p=psi_p, psi_n=psi_n, t=t,
                          thetas=thetas, omegas=omegas, diagnostics=diag)


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
