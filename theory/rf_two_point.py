"""Symbolic side of the high-dimensional test loss of the random-features score model (beyond
arXiv:2505.17638: docs/theory/random_features.md §9).

The paper's Theorem 3.1 gives one-resolvent traces of ``U``; the test loss at a finite training time needs
the two-resolvent trace ``g(z1, z2) = (1/p) Tr[G(z1) K G(z2) K]``, ``G(z) = (U - z)^{-1}``,
``K = Wbar Wbar^T``.  Everything below is *derived* with sympy, not typed in (docs/theory/random_features.md §9):

* conditionally on ``Wbar``, the Gaussian-equivalent ``U = A + (1/n) sum_nu g_nu g_nu^T`` with
  ``A = s2 I + b2 K`` and i.i.d. ``g_nu ~ N(0, C)``, ``C = ca K + v2 I`` (``ca = e^{-2t} a_t^2 sigma_x^2``,
  isotropic data); ``A`` and ``C`` are functions of ``K``, so the deterministic equivalent
  ``Gbar = (A - z + C/(1 + delta))^{-1}`` is ``h(K)`` with ``h(kappa) = 1/(alpha + beta kappa)``;
* traces of rational functions of ``K`` reduce to the Marchenko-Pastur transform ``m`` of ``K`` (ratio
  ``psi_p``) at ``w = -alpha/beta``; the unknowns ``(delta, m)`` solve two equations (the MP quadratic and
  the ``delta`` equation), whose Newton Jacobian and ``z``-derivative are derived here;
* the two-resolvent trace is the solution of the scalar linear (ladder) equation of the leave-one-out
  expansion, with the pair traces of ``h(z1) h(z2)`` reduced by partial fractions and the recursion
  ``kappa h = (1 - alpha h)/beta``; its diagonal uses ``m'(w)`` from the MP quadratic;
* the diagonal ``g(z, z)`` must equal ``-d s/d b2`` (``U - zeta K`` is ``U`` with ``b2 -> b2 - zeta``): that
  derivative is derived independently here by implicit differentiation of the one-point fixed point, and
  tests compare the two.

Notation: ``dl = delta``, ``pp = psi_p``, ``pn = psi_n``, ``b2 = b_t^2``, ``v2 = v_t^2``, ``s2 = s_t^2``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Callable

import sympy as sp

__all__ = ["TwoPointDerivation", "derive_two_point", "PARAMS"]

#: argument order of the model constants in every lambdified function
PARAMS = ("pp", "pn", "b2", "v2", "s2", "ca")


@dataclass(frozen=True)
class TwoPointDerivation:
    """Result of :func:`derive_two_point`.

    Attributes
    ----------
    symbols : dict[str, sympy.Symbol]
    mp_equation : sympy.Expr
        ``pp w m^2 + (w - 1 + pp) m + 1`` (Marchenko-Pastur for ``K``, ratio ``p/d = psi_p``), derived from
        ``m = 1/(1 - pp - w - pp w m)``.
    alpha, beta : sympy.Expr
        ``A - z + C/(1 + delta) = alpha + beta kappa`` collected in the eigenvalue ``kappa`` of ``K``.
    residuals : tuple[sympy.Expr, sympy.Expr]
        ``(F1, F2)``: the MP equation at ``w = -alpha/beta`` and ``delta - (1/n) Tr(C Gbar)``.
    jacobian, dz : sympy.Matrix
        ``d(F1, F2)/d(delta, m)`` and ``d(F1, F2)/dz``.
    q, s : sympy.Expr
        ``(1/p) Tr Gbar`` and ``(1/p) Tr(Gbar K)`` (the ``q`` and ``s`` of Theorem 3.1).
    ds_dz : sympy.Expr
        Total ``ds/dz`` along the solution (implicit differentiation).
    two_point : sympy.Expr
        ``g(z1, z2)`` in the unknowns of both points (``z1 != z2``).
    two_point_diag : sympy.Expr
        ``g(z, z)`` (``m'(w)`` in place of the divided difference).
    minus_ds_db2 : sympy.Expr
        ``-ds/db2`` along the solution, derived independently of ``two_point``.
    ladder : sympy.Expr
        The solved ladder coefficient ``x`` of ``E[G1 K G2] = Gbar1 K Gbar2 + x Gbar1 C Gbar2``.
    functions : dict[str, callable]
        Lambdified (numpy, ``cse=True``) with the arguments listed in :data:`PARAMS` after the unknowns:
        ``system(dl, m, z, *P) -> (F1, F2, J11, J12, J21, J22, Fz1, Fz2)``, ``one_point(dl, m, z, *P) -> (q, s)``,
        ``ds_dz(dl, m, z, *P)``, ``two_point(dl1, m1, z1, dl2, m2, z2, *P)``, ``two_point_diag(dl, m, z, *P)``,
        ``minus_ds_db2(dl, m, z, *P)``.
    """

    symbols: dict
    mp_equation: sp.Expr
    alpha: sp.Expr
    beta: sp.Expr
    residuals: tuple
    jacobian: sp.Matrix
    dz: sp.Matrix
    q: sp.Expr
    s: sp.Expr
    ds_dz: sp.Expr
    two_point: sp.Expr
    two_point_diag: sp.Expr
    minus_ds_db2: sp.Expr
    ladder: sp.Expr
    functions: dict[str, Callable] = field(repr=False)


def _check(ok, what):
    if not ok:
        raise ArithmeticError(f"derivation step failed: {what}")


@functools.lru_cache(maxsize=None)
def derive_two_point() -> TwoPointDerivation:
    """Derive the deterministic equivalent of the one- and two-resolvent traces of the Gaussian-equivalent ``U``
    (docs/theory/random_features.md §9, steps 1-6) and lambdify it.

    Returns
    -------
    TwoPointDerivation

    Notes
    -----
    Takes about a second (sympy), once per process (cached).

    References
    ----------
    arXiv:2505.17638v2 SM Lemmas C.1-C.2 and eq 85 (the Gaussian-equivalent ``U``), Theorem 3.1 (whose ``q`` and
    ``s`` the one-point part reproduces); the conditional deterministic equivalent is the standard
    sample-covariance one (Marchenko-Pastur / Silverstein).
    """
    pp, pn, b2, v2, s2, ca = sp.symbols("pp pn b2 v2 s2 ca", positive=True)
    z, w, kappa = sp.symbols("z w kappa")
    dl, m = sp.symbols("dl m")
    dl1, m1, z1, dl2, m2, z2 = sp.symbols("dl1 m1 z1 dl2 m2 z2")
    mp_prime = sp.Symbol("mp")
    P = (pp, pn, b2, v2, s2, ca)

    # step 1: MP law of K = Wbar Wbar^T (p x p, d samples, ratio c = p/d = psi_p)
    mp_equation = sp.expand(sp.numer(sp.together(m * (1 - pp - w - pp * w * m) - 1)) * -1)
    # (sanity, large w: m ~ -1/w)
    _check(sp.limit(mp_equation.subs(m, -1 / w), w, sp.oo) == 0, "MP: m ~ -1/w")

    # step 2: conditional deterministic equivalent, collected in the eigenvalue kappa of K
    A = s2 + b2 * kappa
    C = ca * kappa + v2
    pencil = sp.expand(A - z + C / (1 + dl))
    beta = sp.simplify(pencil.coeff(kappa, 1))
    alpha = sp.simplify(pencil.coeff(kappa, 0))
    _check(sp.simplify(pencil - (alpha + beta * kappa)) == 0, "pencil linear in kappa")
    h = 1 / (alpha + beta * kappa)
    w_of = -alpha / beta
    # (1/p) Tr h(K) = m(w)/beta with w = -alpha/beta:  h = (1/beta) / (kappa - w)
    _check(sp.simplify(h - (1 / beta) / (kappa - w_of)) == 0, "h = (1/beta)/(kappa - w)")
    E = m / beta
    # (1/p) Tr(K h(K)) from kappa h = (1 - alpha h)/beta
    _check(sp.simplify(kappa * h - (1 - alpha * h) / beta) == 0, "kappa h = (1 - alpha h)/beta")
    s_expr = (1 - alpha * E) / beta
    q_expr = E
    # delta = (1/n) Tr(C Gbar) = (pp/pn) (1/p) Tr((ca K + v2) h(K))
    F1 = mp_equation.subs(w, w_of)
    F2 = dl - (pp / pn) * (ca * s_expr + v2 * q_expr)
    X = sp.Matrix([dl, m])
    Fv = sp.Matrix([F1, F2])
    J = Fv.jacobian(X)
    Fz = Fv.diff(z)
    # total ds/dz along the solution: ds/dz = d_z s - grad_x s . J^{-1} F_z
    grad_s = sp.Matrix([[s_expr.diff(dl), s_expr.diff(m)]])
    # J^{-1} = adj(J)/det(J) for the 2 x 2 Jacobian (sympy's general inverse is needlessly slow here)
    J_adj = sp.Matrix([[J[1, 1], -J[0, 1]], [-J[1, 0], J[0, 0]]])
    J_det = J[0, 0] * J[1, 1] - J[0, 1] * J[1, 0]
    _check(sp.simplify((J * J_adj - J_det * sp.eye(2)).applyfunc(sp.expand)) == sp.zeros(2, 2), "adjugate")
    ds_dz = s_expr.diff(z) - (grad_s * J_adj * Fz)[0, 0] / J_det
    # independent beta-derivative route: -ds/db2 along the solution
    Fb = Fv.diff(b2)
    minus_ds_db2 = -(s_expr.diff(b2) - (grad_s * J_adj * Fb)[0, 0] / J_det)

    # step 3: pair traces T(phi) = (1/p) Tr[phi(K) h1(K) h2(K)] for phi = 1, kappa, kappa^2
    a1, be1, w1 = (x.subs({dl: dl1, z: z1}) for x in (alpha, beta, w_of))
    a2, be2, w2 = (x.subs({dl: dl2, z: z2}) for x in (alpha, beta, w_of))
    # partial fractions of 1/((kappa - w1)(kappa - w2))
    W1, W2 = sp.symbols("W1 W2")
    pf = sp.apart(1 / ((kappa - W1) * (kappa - W2)), kappa)
    _check(sp.simplify(pf - (1 / (kappa - W1) - 1 / (kappa - W2)) / (W1 - W2)) == 0, "partial fractions")
    D_off = (m1 - m2) / ((w1 - w2) * be1 * be2)
    E2 = m2 / be2                                     # (1/p) Tr h2 = q2

    def pair_traces(D):
        T0 = D
        T1 = (E2 - a1 * D) / be1                      # kappa h1 h2 = (h2 - alpha1 h1 h2)/beta1
        K2 = (1 - a2 * E2) / be2                      # (1/p) Tr(K h2)
        T2 = (K2 - a1 * T1) / be1                     # kappa^2 h1 h2
        return T0, T1, T2

    k1 = sp.Symbol("kappa1")
    for lhs, rhs in ((k1 / ((a1 + be1 * k1) * (a2 + be2 * k1)),
                      (1 / (a2 + be2 * k1) - a1 / ((a1 + be1 * k1) * (a2 + be2 * k1))) / be1),):
        _check(sp.simplify(lhs - rhs) == 0, "pair recursion")

    # step 4: the ladder.  E[G1 M G2] = Gbar1 M Gbar2 + x Gbar1 C Gbar2 with
    #   x = r12 (1/p) Tr(C h1 M h2) + x r12 (1/p) Tr(C h1 C h2),  r12 = (pp/pn) / ((1 + dl1)(1 + dl2))
    x, TCM, TCC, r12 = sp.symbols("x TCM TCC r12")
    ladder = sp.solve(sp.Eq(x, r12 * TCM + x * r12 * TCC), x)[0]

    def g_of(D):
        T0, T1, T2 = pair_traces(D)
        TCK = ca * T2 + v2 * T1                       # (1/p) Tr(C h1 K h2)
        TCCv = sp.expand((ca * k1 + v2) ** 2)         # C^2 as a polynomial in kappa
        TCCt = TCCv.coeff(k1, 2) * T2 + TCCv.coeff(k1, 1) * T1 + TCCv.coeff(k1, 0) * T0
        xx = ladder.subs({TCM: TCK, TCC: TCCt, r12: (pp / pn) / ((1 + dl1) * (1 + dl2))})
        return T2 + xx * TCK                          # (1/p) Tr(Gbar1 K Gbar2 K) + x (1/p) Tr(Gbar1 C Gbar2 K)

    two_point = g_of(D_off)
    # step 5: diagonal, D = m'(w)/beta^2 with m' from the MP quadratic (implicit differentiation)
    mp_prime_expr = sp.solve(sp.Eq(sp.diff(mp_equation.subs(m, sp.Function("M")(w)), w).subs(
        sp.Derivative(sp.Function("M")(w), w), mp_prime).subs(sp.Function("M")(w), m), 0), mp_prime)[0]
    diag_sub = {dl1: dl, m1: m, z1: z, dl2: dl, m2: m, z2: z}
    D_diag = mp_prime_expr.subs(w, w_of) / beta ** 2
    two_point_diag = g_of(sp.Symbol("DD")).subs(diag_sub).subs(sp.Symbol("DD"), D_diag)
    syms = dict(pp=pp, pn=pn, b2=b2, v2=v2, s2=s2, ca=ca, z=z, w=w, kappa=kappa, dl=dl, m=m, dl1=dl1, m1=m1,
                z1=z1, dl2=dl2, m2=m2, z2=z2)
    lam = functools.partial(sp.lambdify, modules="numpy", cse=True)
    functions = dict(
        system=lam((dl, m, z) + P, [F1, F2, J[0, 0], J[0, 1], J[1, 0], J[1, 1], Fz[0], Fz[1]]),
        one_point=lam((dl, m, z) + P, [q_expr, s_expr]),
        ds_dz=lam((dl, m, z) + P, ds_dz),
        two_point=lam((dl1, m1, z1, dl2, m2, z2) + P, two_point),
        two_point_diag=lam((dl, m, z) + P, two_point_diag),
        minus_ds_db2=lam((dl, m, z) + P, minus_ds_db2),
    )
    return TwoPointDerivation(symbols=syms, mp_equation=mp_equation, alpha=alpha, beta=beta,
                              residuals=(F1, F2), jacobian=J, dz=Fz, q=q_expr, s=s_expr, ds_dz=ds_dz,
                              two_point=two_point, two_point_diag=two_point_diag, minus_ds_db2=minus_ds_db2,
                              ladder=ladder, functions=functions)
