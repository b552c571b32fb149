"""High-dimensional test loss, generalization gap and score error of the random-features score model along
training (beyond arXiv:2505.17638; docs/theory/random_features.md §9).

The losses of gradient flow from ``A = 0`` (docs/theory/random_features.md §2) in the eigenbasis of ``U``, with
``F = f(U)``, ``f(lambda) = -(1 - exp(-2 Delta_t lambda tau / psi_p)) / lambda`` and, for isotropic data,
``U~ = mu1^2 K + (||sigma||^2 - mu1^2) I``::

    L_test  = 1 + b_t^2 psi_p [ mu1^2 T(FKFK) + (||sigma||^2 - mu1^2) T(F^2 K) + 2 T(FK) ]
    L_train = 1 + b_t^2 psi_p [ T(U F^2 K) + 2 T(FK) ],        T(X) = (1/p) Tr X  (d -> infinity)

The one-resolvent traces are contour integrals of ``f`` against ``s(z) = (1/p) Tr(G(z) K)``; ``T(FKFK)`` is
the double contour integral of ``f(z1) f(z2) g(z1, z2)``, ``g = (1/p) Tr(G(z1) K G(z2) K)``, whose deterministic
equivalent is derived in :mod:`memlab.theory.rf_two_point` (every formula evaluated here comes from there).
The contour is the boundary of ``{x e^{i theta}: x_L <= x <= x_R, |theta| <= pi/4}`` with ``x_L = s_t^2/2`` (the
spectrum of ``U`` lies in ``[s_t^2, ub]``) and ``x_R = 2 ub``: ``Re z > 0`` on it, so ``exp(-c z)`` stays
bounded for every ``tau``; in ``log z`` it is a rectangle and Gauss-Legendre on each side converges
geometrically.  The unknowns ``(delta, m)`` are continued along the contour from the far right of the real
axis (a Newton solve per node, predictor from ``dx/dz``, step halving when the correction is not small
against the predicted move).  ``tau = infinity`` is computed by its own route at ``z = 0``
(``T(FKFK) = g(0, 0)``, ``T(F^2 K) = s'(0)``, ``T(FK) = -s(0)``), with the contour value as a diagnostic.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from ..theory import checks
from ..theory.rf_model import RFModel
from ..theory.rf_two_point import derive_two_point
from .rf_curves import validate_tau

__all__ = ["AsymptoticLosses", "TwoPointConvergenceError", "asymptotic_losses", "two_point_trace",
           "ANGLE"]

#: half-opening angle of the contour (``|arg z| <= ANGLE``, so ``Re z > 0`` and ``|exp(-c z)| <= 1``)
ANGLE = math.pi / 4
#: a warm-started Newton solve is kept only if its correction is below KAPPA times the predicted move
KAPPA = 0.25


class TwoPointConvergenceError(ArithmeticError):
    """The contour continuation or the quadrature did not converge; ``.diagnostics`` says where."""

    def __init__(self, message, diagnostics=None):
        super().__init__(message)
        self.diagnostics = diagnostics or {}


@dataclass(frozen=True)
class AsymptoticLosses:
    """``d -> infinity`` learning curves of the random-features model (docs/theory/random_features.md §9).

    Attributes
    ----------
    tau : ndarray
        Training times (unit ``k eta / d^2``; ``inf`` allowed).
    train, test, gen, score_error : ndarray
        ``L_train``, ``L_test``, ``L_gen = L_test - L_train`` and ``E_score = (L_test - 1 + Delta_t/Gamma_t^2)/Delta_t``
        (DSM identity, docs/theory/random_features.md §1).
    bayes_floor : float
        ``1 - Delta_t / Gamma_t^2``.
    traces : dict[str, ndarray]
        ``T(FK)``, ``T(F^2 K)``, ``T(U F^2 K)``, ``T(FKFK)`` per ``p`` at each ``tau``.
    model : RFModel
    diagnostics : dict
        ``converged``, ``n_top``/``n_arc`` (nodes of the rule used), ``quad_error`` (largest difference of any loss
        between that rule and the one with half the nodes), ``infinity_route_diff`` (``tau = inf`` from ``z = 0``
        against the contour), ``newton_steps``, ``continuation_steps``, ``x_left``, ``x_right``, ``wall_s``.
    """

    tau: np.ndarray
    train: np.ndarray
    test: np.ndarray
    gen: np.ndarray
    score_error: np.ndarray
    bayes_floor: float
    traces: dict
    model: RFModel
    diagnostics: dict = field(default_factory=dict, repr=False)


def _check_model(model):
    if not isinstance(model, RFModel):
        raise TypeError(f"model must be an RFModel (got {type(model).__name__})")
    th = model.thetas
    if th.size > 1 and np.ptp(th) > 1e-12 * np.max(th):
        raise ValueError("model.covariance must be isotropic (one atom) for the asymptotic test loss: the "
                         "two-resolvent route needs U~ = mu1^2 K + (||sigma||^2 - mu1^2) I; use method='gep' at finite d")
    c = model.constants
    if not c.s_t2 > 1e-12 * c.norm2:
        raise ValueError(f"model.t={model.t!r} gives s_t^2 = {c.s_t2:.3g}: the asymptotic route needs s_t^2 > 0 "
                         f"(the spectrum of U is bounded below by s_t^2)")
    return model


def _params(model):
    c = model.constants
    ca = math.exp(-2.0 * model.t) * c.a_t ** 2 * float(np.sum(model.thetas * model.omegas))
    return (float(model.psi_p), float(model.psi_n), c.b_t ** 2, c.v_t2, c.s_t2, ca)


def _upper_bound(P):
    """Upper bound of the asymptotic spectrum of ``U``: ``s2 + b2 ||K|| + ||C|| (1 + sqrt(psi_p/psi_n))^2``."""
    pp, pn, b2, v2, s2, ca = P
    k = (math.sqrt(pp) + 1.0) ** 2
    return s2 + b2 * k + (ca * k + v2) * (1.0 + math.sqrt(pp / pn)) ** 2


class _Solver:
    """Newton and continuation for the unknowns ``x = (delta, m)`` of the derivation's fixed point."""

    def __init__(self, model):
        self.P = _params(model)
        self.f = derive_two_point().functions
        self.newton_steps = 0
        self.steps = 0

    def newton(self, dl, m, z, max_iter=40):
        sysf, P = self.f["system"], self.P
        prev = math.inf
        for _ in range(max_iter):
            F1, F2, a, b, c, d, _, _ = sysf(dl, m, z, *P)
            det = a * d - b * c
            if det == 0 or not np.isfinite(det):
                return dl, m, False
            ddl = (-F1 * d + F2 * b) / det
            dm = (-F2 * a + F1 * c) / det
            dl, m = dl + ddl, m + dm
            self.newton_steps += 1
            if not (np.isfinite(dl) and np.isfinite(m)):
                return dl, m, False
            step = max(abs(ddl) / (abs(dl) + 1e-300), abs(dm) / (abs(m) + 1e-300))
            if step < 1e-14 or (step < 1e-8 and step <= prev * prev):
                return dl, m, True
            prev = step
        return dl, m, prev < 1e-11

    def tangent(self, dl, m, z):
        _, _, a, b, c, d, fz1, fz2 = self.f["system"](dl, m, z, *self.P)
        det = a * d - b * c
        return (-fz1 * d + fz2 * b) / det, (-fz2 * a + fz1 * c) / det

    def herglotz_ok(self, dl, m, z):
        if z.imag <= 1e-9 * abs(z):
            return True
        q, s = self.f["one_point"](dl, m, z, *self.P)
        return q.imag >= -1e-12 * abs(q) and s.imag >= -1e-12 * abs(s)

    def start(self, z0):
        """Solution at a real ``z0`` far right of the spectrum (large-``z`` initial guess, then Newton)."""
        pp, pn, b2, v2, s2, ca = self.P
        dl = -(pp / pn) * (ca + v2) / z0
        w = (z0 - s2 - v2) / (b2 + ca)
        dl, m, ok = self.newton(complex(dl), complex(-1.0 / w), complex(z0))
        if not ok:
            raise TwoPointConvergenceError(f"no solution at z = {z0:.4g} right of the spectrum", {"z": z0})
        return dl, m

    def walk(self, x, z_from, targets):
        """Continue ``x`` (solution at ``z_from``) through the complex points ``targets`` in order."""
        dl, m = x
        z = complex(z_from)
        out = np.empty((len(targets), 2), complex)
        h_frac = 1.0
        for j, zt in enumerate(targets):
            zt = complex(zt)
            while z != zt:
                h = zt - z
                frac = min(1.0, h_frac)
                z1 = zt if frac >= 1.0 else z + frac * h
                ddl, ddm = self.tangent(dl, m, z)
                pdl, pm = dl + ddl * (z1 - z), m + ddm * (z1 - z)
                ndl, nm, ok = self.newton(pdl, pm, z1)
                self.steps += 1
                moved = max(abs(pdl - dl) / (abs(dl) + 1e-300), abs(pm - m) / (abs(m) + 1e-300))
                corr = max(abs(ndl - pdl) / (abs(ndl) + 1e-300), abs(nm - pm) / (abs(nm) + 1e-300))
                if ok and corr <= KAPPA * moved + 1e-10 and self.herglotz_ok(ndl, nm, z1):
                    dl, m, z = ndl, nm, z1
                    h_frac = min(1.0, 2.0 * frac)
                else:
                    h_frac = 0.5 * frac
                    if h_frac < 1e-9:
                        raise TwoPointConvergenceError(
                            f"continuation stalled near z = {z:.6g} (model constants {self.P})",
                            dict(z=z, target=zt, newton_steps=self.newton_steps))
            out[j] = dl, m
        return out

    def solve_at(self, zs):
        """Solutions at arbitrary points off the support: far right -> up to a height -> left -> down."""
        zs = np.asarray(zs, complex).ravel()
        ub = _upper_bound(self.P)
        out = np.empty((zs.size, 2), complex)
        for k, z in enumerate(zs):
            conj = z.imag < 0
            zz = z.conjugate() if conj else z
            if zz.imag == 0 and self.P[4] <= zz.real <= ub:
                raise ValueError(f"z={z!r} lies in [s_t^2, ub] = [{self.P[4]:.4g}, {ub:.4g}], where the spectrum of U "
                                 f"may be: the resolvent traces need z off the support")
            far = 8.0 * ub + abs(zz)
            x = self.start(far)
            hgt = max(zz.imag, 0.5 * ub)
            path = [far + 1j * hgt, zz.real + 1j * hgt, zz]
            sol = self.walk(x, far, path)[-1]
            out[k] = np.conj(sol) if conj else sol
        return out


def _rule(n_top, n_arc, x_l, x_r):
    """Upper half of the contour in the order of the continuation: right arc (angle 0 -> ANGLE), top side
    (``x_R -> x_L`` along ``arg z = ANGLE``), left arc (``ANGLE -> 0``).  Nodes ``z`` and weights ``dz``."""
    xa, wa = np.polynomial.legendre.leggauss(n_arc)
    xt, wt = np.polynomial.legendre.leggauss(n_top)
    th = ANGLE * (xa + 1) / 2
    z_r = x_r * np.exp(1j * th)
    dz_r = 1j * z_r * (ANGLE / 2) * wa
    lr, ll = math.log(x_r), math.log(x_l)
    u = lr + (ll - lr) * (xt + 1) / 2
    z_t = np.exp(u + 1j * ANGLE)
    dz_t = z_t * ((ll - lr) / 2) * wt
    th2 = ANGLE * (1 - (xa + 1) / 2)
    z_l = x_l * np.exp(1j * th2)
    dz_l = -1j * z_l * (ANGLE / 2) * wa
    return np.concatenate([z_r, z_t, z_l]), np.concatenate([dz_r, dz_t, dz_l])


def _pair_matrix(f, P, x1, z1, x2, z2):
    """``g(z1_j, z2_k)`` for all pairs (diagonal formula where the two points coincide)."""
    with np.errstate(divide="ignore", invalid="ignore"):   # coinciding pairs are replaced just below
        g = f["two_point"](x1[:, 0][:, None], x1[:, 1][:, None], z1[:, None],
                           x2[:, 0][None, :], x2[:, 1][None, :], z2[None, :], *P)
    g = np.broadcast_to(g, (z1.size, z2.size)).copy()
    same = np.abs(z1[:, None] - z2[None, :]) <= 1e-14 * np.abs(z1[:, None])
    if np.any(same):
        i, k = np.nonzero(same)
        g[i, k] = f["two_point_diag"](x1[i, 0], x1[i, 1], z1[i], *P)
    return g


class _Contour:
    def __init__(self, solver, n_top, n_arc):
        P = solver.P
        self.x_l = 0.5 * P[4]
        self.x_r = 2.0 * _upper_bound(P)
        z, dz = _rule(n_top, n_arc, self.x_l, self.x_r)
        x0 = solver.start(8.0 * self.x_r)
        xr = solver.walk(x0, 8.0 * self.x_r, [self.x_r])[0]
        x = solver.walk(xr, self.x_r, z)
        f = solver.f
        self.z, self.dz, self.x = z, dz, x
        self.s = f["one_point"](x[:, 0], x[:, 1], z, *P)[1]
        self.g_uu = _pair_matrix(f, P, x, z, x, z)
        self.g_ul = _pair_matrix(f, P, x, z, np.conj(x), np.conj(z))
        if not (np.all(np.isfinite(self.g_uu)) and np.all(np.isfinite(self.g_ul)) and np.all(np.isfinite(self.s))):
            raise TwoPointConvergenceError("non-finite two-point values on the contour", dict(n_top=n_top))
        self.n_top, self.n_arc = n_top, n_arc

    def traces(self, rates, inf_mask):
        """Per-``p`` traces at each rate ``c = 2 Delta_t tau/psi_p`` (``inf_mask``: ``f = -1/z``)."""
        z, dz = self.z, self.dz
        F = np.empty((rates.size, z.size), complex)
        fin = ~inf_mask
        F[fin] = np.expm1(-np.outer(rates[fin], z)) / z
        F[inf_mask] = -1.0 / z
        sw = self.s * dz
        t_fk = -np.imag(F @ sw) / np.pi
        F2 = F * F
        t_f2k = -np.imag(F2 @ sw) / np.pi
        t_uf2k = -np.imag(F2 @ (z * sw)) / np.pi
        Fw = F * dz
        a = np.einsum("ti,ti->t", Fw @ self.g_uu, Fw)
        b = np.einsum("ti,ti->t", Fw @ self.g_ul, np.conj(Fw))
        t_fkfk = (b.real - a.real) / (2 * np.pi ** 2)
        return dict(FK=t_fk, F2K=t_f2k, UF2K=t_uf2k, FKFK=t_fkfk)


def _losses(model, tr):
    c = model.constants
    pp, b2 = float(model.psi_p), c.b_t ** 2
    mustar2 = c.norm2 - c.mu1 ** 2
    train = 1.0 + b2 * pp * (tr["UF2K"] + 2.0 * tr["FK"])
    test = 1.0 + b2 * pp * (c.mu1 ** 2 * tr["FKFK"] + mustar2 * tr["F2K"] + 2.0 * tr["FK"])
    return train, test


def asymptotic_losses(model: RFModel, tau, *, n_nodes=128, tol=1e-7, max_doublings=3) -> AsymptoticLosses:
    """``d -> infinity`` train, test, generalization loss and score error of gradient flow from ``A = 0``.

    Parameters
    ----------
    model : RFModel
        ``psi_p``, ``psi_n``, ``t``, activation (any; ``center=True`` for relu/gelu) and isotropic data
        (``covariance`` with one atom or ``None``); ``d`` and ``seed`` are not used.
    tau : array_like
        Training times ``>= 0`` in units ``k eta / d^2``; ``inf`` is the end of training (computed at ``z = 0``).
    n_nodes : int
        Gauss-Legendre nodes on the long side of the contour (``n_nodes // 3`` on each half arc); doubled up to
        ``max_doublings`` times until two rules agree to ``tol``.
    tol : float
        Largest accepted difference of any loss between the rule used and the rule with half the nodes.
    max_doublings : int

    Returns
    -------
    AsymptoticLosses

    Raises
    ------
    ValueError
        Anisotropic covariance; ``s_t^2 = 0``; bad ``tau``, ``n_nodes``, ``tol``.
    TypeError
        ``model`` is not an RFModel.
    TwoPointConvergenceError
        The continuation stalls, or the rules still disagree by more than ``tol`` after the doublings.

    Notes
    -----
    Cost: the fixed point at about ``1.7 n_nodes`` contour nodes (each continued from the previous one), the
    two-point matrix over node pairs, then ``O(n_nodes^2)`` per ``tau`` (a 400-point curve: about 0.2 s on 2 cores).  The
    derivation is lambdified once per process (:func:`memlab.theory.rf_two_point.derive_two_point`).

    References
    ----------
    arXiv:2505.17638v2 MT eqs 8-11, SM Prop C.1 (the closed-form flow) and Lemmas C.1-C.2, eq 85 (the
    Gaussian-equivalent matrices); docs/theory/random_features.md §2 and §9.

    Examples
    --------
    >>> r = asymptotic_losses(RFModel(16, 4, 0.1), [0.0, 100.0, float("inf")])
    >>> float(r.test[0]), bool(r.gen[-1] > r.gen[1] > 0)
    (1.0, True)
    """
    t0 = time.perf_counter()
    _check_model(model)
    n_nodes = checks.positive_int("n_nodes", n_nodes, minimum=8, maximum=4096)
    tol = checks.positive_float("tol", tol)
    max_doublings = checks.positive_int("max_doublings", max_doublings, minimum=0, maximum=8)
    tau = validate_tau(tau)
    c = model.constants
    solver = _Solver(model)
    pp = float(model.psi_p)
    inf_mask = ~np.isfinite(tau)
    rates = np.where(inf_mask, 0.0, 2.0 * c.delta_t * np.where(inf_mask, 0.0, tau) / pp)
    ev = np.concatenate([rates, [0.0]])
    evinf = np.concatenate([inf_mask, [True]])       # last column: the contour's tau = inf (diagnostic)

    def run(n):
        ct = _Contour(solver, n, max(8, n // 3))
        tr = ct.traces(ev, evinf)
        return ct, tr, _losses(model, tr)

    n = n_nodes
    half = run(max(8, n // 2))
    err = math.inf
    for k in range(max_doublings + 1):
        full = run(n)
        err = max(float(np.max(np.abs(full[2][0] - half[2][0]))), float(np.max(np.abs(full[2][1] - half[2][1]))))
        if err <= tol:
            break
        if k < max_doublings:
            half, n = full, 2 * n
    ct, tr, (train, test) = full
    diag = dict(converged=err <= tol, n_top=ct.n_top, n_arc=ct.n_arc, quad_error=err, tol=tol,
                x_left=ct.x_l, x_right=ct.x_r)
    if err > tol:
        diag["wall_s"] = time.perf_counter() - t0
        raise TwoPointConvergenceError(
            f"the contour rules with {ct.n_top} and {ct.n_top // 2} nodes still differ by {err:.3g} > tol={tol:.3g}: "
            f"raise n_nodes or max_doublings", diag)
    # tau = infinity by its own route at z = 0 (below the spectrum): g(0,0), s'(0), s(0)
    f = solver.f
    x0 = solver.walk(ct.x[-1], ct.z[-1], [ct.x_l, 0.0])[-1]
    q0, s0 = f["one_point"](x0[0], x0[1], 0j, *solver.P)
    ds0 = f["ds_dz"](x0[0], x0[1], 0j, *solver.P)
    g00 = f["two_point_diag"](x0[0], x0[1], 0j, *solver.P)
    inf_tr = dict(FK=-s0.real, F2K=ds0.real, UF2K=s0.real, FKFK=g00.real)
    tr_inf_route = {k: np.array([v]) for k, v in inf_tr.items()}
    tr_i, te_i = _losses(model, tr_inf_route)
    diag["infinity_route_diff"] = max(abs(float(tr_i[0]) - float(train[-1])), abs(float(te_i[0]) - float(test[-1])))
    diag["infinity_imag"] = max(abs(s0.imag), abs(ds0.imag), abs(g00.imag))
    train, test = train[:-1].copy(), test[:-1].copy()
    traces = {k: v[:-1].copy() for k, v in tr.items()}
    train[inf_mask], test[inf_mask] = tr_i[0], te_i[0]
    for k in traces:
        traces[k][inf_mask] = tr_inf_route[k][0]
    traces["FKFK_inf_route"] = float(g00.real)
    diag.update(newton_steps=solver.newton_steps, continuation_steps=solver.steps,
                wall_s=time.perf_counter() - t0)
    if diag["infinity_route_diff"] > max(10 * tol, 1e-8):
        raise TwoPointConvergenceError(f"tau = inf from z = 0 and from the contour differ by "
                                       f"{diag['infinity_route_diff']:.3g}", diag)
    floor = 1.0 - c.delta_t / c.gamma2
    score = (test - 1.0 + c.delta_t / c.gamma2) / c.delta_t
    return AsymptoticLosses(tau=tau, train=train, test=test, gen=test - train, score_error=score, bayes_floor=floor,
                            traces=traces, model=model, diagnostics=diag)


def _points(name, v):
    if v is None or isinstance(v, (str, bytes, bool, np.bool_)):
        raise TypeError(f"{name} must be a complex number or array of them (got {checks.show(v)})")
    try:
        arr = np.asarray(v)
    except Exception as exc:  # ragged lists and the like
        raise TypeError(f"{name} must be a complex number or array of them (got {checks.show(v)})") from exc
    if arr.dtype.kind not in "iufc":
        raise TypeError(f"{name} must be a complex number or array of them (got dtype {arr.dtype})")
    arr = arr.astype(complex)
    if arr.size == 0:
        raise ValueError(f"{name} must be non-empty")
    if arr.size > 10_000:
        raise ValueError(f"{name} must have at most 10000 points (got {arr.size}): each is a continuation solve")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite (got {checks.show(v)})")
    return arr


def two_point_trace(model: RFModel, z1, z2):
    """Deterministic equivalent of ``g(z1, z2) = (1/p) Tr[G(z1) K G(z2) K]``, ``G(z) = (U - z)^{-1}``, and of
    ``s(z) = (1/p) Tr[G(z) K]`` (the ``s`` of Theorem 3.1) at points off the spectrum.

    Parameters
    ----------
    model : RFModel
        Isotropic data; ``d`` is not used.
    z1, z2 : complex or array_like
        Points off ``[s_t^2, ub]`` (``ub`` an upper bound of the spectrum), broadcast against each other.

    Returns
    -------
    (g, s1, s2) : complex ndarrays
        ``g(z1, z2)``, ``s(z1)`` and ``s(z2)`` (docs/theory/random_features.md §9).

    Raises
    ------
    ValueError
        A real point inside ``[s_t^2, ub]``, a non-finite point, an anisotropic covariance.
    TypeError
        A point that is not a number.

    Examples
    --------
    >>> g, s1, s2 = two_point_trace(RFModel(16, 4, 0.1), 1j, -1j)
    >>> bool(abs(g - g.conj()) < 1e-12)
    True
    """
    _check_model(model)
    z1, z2 = np.broadcast_arrays(_points("z1", z1), _points("z2", z2))
    ub = _upper_bound(_params(model))
    for name, z in (("z1", z1), ("z2", z2)):
        bad = (z.imag == 0) & (z.real >= model.constants.s_t2) & (z.real <= ub)
        if np.any(bad):
            raise ValueError(f"{name} has a real point {z[bad][0].real!r} in [s_t^2, ub] = [{model.constants.s_t2:.4g}, "
                             f"{ub:.4g}], where the spectrum of U may lie: the traces need points off the support")
    solver = _Solver(model)
    x1 = solver.solve_at(z1.ravel())
    x2 = solver.solve_at(z2.ravel())
    f, P = solver.f, solver.P
    a, b = z1.ravel(), z2.ravel()
    with np.errstate(divide="ignore", invalid="ignore"):   # coinciding pairs are replaced just below
        g = np.asarray(f["two_point"](x1[:, 0], x1[:, 1], a, x2[:, 0], x2[:, 1], b, *P), complex)
    same = np.abs(a - b) <= 1e-14 * np.abs(a)
    if np.any(same):
        g[same] = f["two_point_diag"](x1[same, 0], x1[same, 1], a[same], *P)
    s1 = f["one_point"](x1[:, 0], x1[:, 1], a, *P)[1]
    s2 = f["one_point"](x2[:, 0], x2[:, 1], b, *P)[1]
    shape = z1.shape
    return g.reshape(shape), np.asarray(s1).reshape(shape), np.asarray(s2).reshape(shape)
