"""Theorem 3.1 spectrum: sympy derivation vs the numba solver, solver properties, masses, timescales.

Reference values are derived (spec sections 4-5, 10); no stored outputs.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from memlab.numerics import _rf_solver as ks
from memlab.numerics.rf_spectrum import (SpectrumConvergenceError, rf_spectrum, solve_stieltjes,
                                         spectrum_upper_bound)
from memlab.numerics.timescales import numeric_lambda_min, predict_timescales
from memlab.theory import timescales as ts
from memlab.theory.gep import gep_constants
from memlab.theory.rf_symbolic import derive_rf, generate_solver_source, linear_pencil_residuals

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def der():
    return derive_rf()


@pytest.fixture(scope="module")
def spec64_8():
    return rf_spectrum(64, 8, 0.01)


def _consts(c):
    return (float(c.a_t ** 2 * np.exp(-2 * c.t)), float(c.b_t ** 2), float(c.v_t2), float(c.s_t2))


# ------------------------------------------------------------------ symbolic ----------------------

def test_generated_kernels_match_derivation():
    text = (ROOT / "numerics" / "_rf_generated.py").read_text()
    assert text == generate_solver_source(), "regenerate numerics/_rf_generated.py from theory.rf_symbolic"


def test_stationarity_gives_conjugates_and_envelope(der):
    S = der.symbols
    # dS/dr = 0 -> r_hat = psi_p a^2 E / L ; dS/ds = 0 -> s_hat = b2 psi_p + 1/q   (spec 4.1)
    assert sp.simplify(der.r_hat_solution - S["psi_p"] * S["a"] ** 2 * S["E"] / der.L) == 0
    assert sp.simplify(der.s_hat_solution - (S["b2"] * S["psi_p"] + 1 / S["q"])) == 0
    assert sp.simplify(der.envelope + S["psi_p"] * S["q"]) == 0


def test_leading_order_results(der):
    S = der.symbols
    c, v2, s2 = S["c"], S["v2"], S["s2"]
    lo, hi = der.edges
    assert sp.simplify(lo - (s2 + v2 * (1 - sp.sqrt(c)) ** 2)) == 0
    assert sp.simplify(hi - (s2 + v2 * (1 + sp.sqrt(c)) ** 2)) == 0
    assert sp.simplify(der.delta_weight - (1 - (1 + S["psi_n"]) / S["psi_p"])) == 0
    assert sp.simplify(der.tau_mem_limit - S["psi_n"] / (S["Delta"] * v2)) == 0
    # the quadratic is the Stieltjes equation of s2 + v2 * MP(c): its root at large z is ~ -1/z
    z = S["z"]
    roots = sp.solve(der.mp_quadratic, S["q"])
    vals = [complex(r.subs({c: 4, v2: 1, s2: 0.1, z: 1e6j})) for r in roots]
    assert min(abs(v * 1e6j + 1) for v in vals) < 1e-5


def test_stein_identities_symbolic(der):
    st_ = der.stein
    assert sp.simplify(st_["a_t"] - st_["mu1"] / sp.sqrt(st_["Gamma2"])) == 0
    assert sp.simplify(st_["b_t"] - st_["beta"] * st_["mu1"] / sp.sqrt(st_["Gamma2"])) == 0
    assert sp.simplify(st_["mu1_squared_eq48"] - st_["mu1"] ** 2) == 0


@settings(deadline=None, max_examples=25)
@given(qr=st.floats(-3, 3), qi=st.floats(0.01, 3), rr=st.floats(-1, 1), ri=st.floats(0.01, 1),
       sr=st.floats(-1, 1), si=st.floats(0.01, 1), lam=st.floats(0.01, 50), eps=st.floats(1e-3, 5))
def test_sympy_equations_equal_numeric_residuals(der, qr, qi, rr, ri, sr, si, lam, eps):
    """The derived E1-E3 (two covariance atoms) equal the numba kernel's residuals at random points."""
    S = der.symbols
    q, r, s, z = complex(qr, qi), complex(rr, ri), complex(sr, si), complex(lam, eps)
    pp, pn, a, E, b2, v2, s2 = 64.0, 8.0, 0.6, math.exp(-0.2), 0.01, 0.03, 0.002
    thetas, omegas = np.array([0.5, 1.5]), np.array([0.3, 0.7])
    vals = {S["q"]: q, S["r"]: r, S["s"]: s, S["z"]: z, S["psi_p"]: pp, S["psi_n"]: pn, S["a"]: a,
            S["E"]: E, S["b2"]: b2, S["v2"]: v2, S["s2"]: s2, S["n_atoms"]: 2}
    atoms = {S["theta"][1]: 0.5, S["theta"][2]: 1.5, S["omega"][1]: 0.3, S["omega"][2]: 0.7}

    def ev(expr):
        return complex(expr.subs(vals).doit().subs(atoms).evalf(20))

    E1, E2, E3 = ev(der.E1), ev(der.E2), ev(der.E3)
    F1, F2, F3, *_ = ks._system(q, r, s, z, thetas, omegas, pp, pn, a * a * E, b2, v2, s2)
    L = 1 + pp / pn * (a * a * E * r + v2 * q)
    assert abs(F1 - E1) <= 1e-11 * (1 + abs(E1))
    assert abs(F2 - E2) <= 1e-11 * (1 + abs(E2))
    assert abs(F3 - E3 * q * q * L) <= 1e-10 * (1 + abs(E3 * q * q * L))
    # the lambdified numpy residuals agree too
    R = der.residuals_numpy()(q, r, s, z, pp, pn, a * a * E, b2, v2, s2, thetas, omegas)
    assert abs(R[0] - F1) < 1e-12 * (1 + abs(F1)) and abs(R[2] - F3) < 1e-10 * (1 + abs(F3))


def test_analytic_jacobian_matches_finite_differences():
    rng = np.random.default_rng(3)
    th, om = np.array([0.5, 1.5]), np.array([0.4, 0.6])
    pars = (64.0, 8.0, 0.3, 0.01, 0.03, 0.002)
    for _ in range(5):
        x = rng.normal(size=3) + 1j * rng.uniform(0.1, 1, size=3)
        z = complex(rng.uniform(0.1, 10), rng.uniform(0.01, 1))
        out = ks._system(x[0], x[1], x[2], z, th, om, *pars)
        J = np.array([[out[3], out[4], 1.0], [out[5], out[6], 0.0], [out[7], out[8], out[9]]])
        h = 1e-6
        for k in range(3):
            xp, xm = x.copy(), x.copy()
            xp[k] += h
            xm[k] -= h
            fp = np.array(ks._system(xp[0], xp[1], xp[2], z, th, om, *pars)[:3])
            fm = np.array(ks._system(xm[0], xm[1], xm[2], z, th, om, *pars)[:3])
            np.testing.assert_allclose((fp - fm) / (2 * h), J[:, k], rtol=1e-6, atol=1e-8)


def test_envelope_dS_dz_equals_minus_psi_p_q(der):
    """dS*/dz = -psi_p q along the solution (spec check 3), by finite differences of the action."""
    S = der.symbols
    c = gep_constants(0.1)
    pp, pn = 16.0, 4.0
    h = 1e-5
    z0 = complex(0.5, 0.3)
    subs_c = {S["psi_p"]: pp, S["psi_n"]: pn, S["a"]: c.a_t, S["E"]: math.exp(-0.2), S["b2"]: c.b_t ** 2,
              S["v2"]: c.v_t2, S["s2"]: c.s_t2, S["n_atoms"]: 1, S["theta"][1]: 1.0, S["omega"][1]: 1.0}
    act = der.action.subs(subs_c).doit().subs({S["theta"][1]: 1.0, S["omega"][1]: 1.0})
    act = act.subs({S["s_hat"]: der.s_hat_solution.subs(subs_c), S["r_hat"]: der.r_hat_solution.subs(subs_c)})
    f = sp.lambdify((S["q"], S["r"], S["s"], S["z"]), act, modules="mpmath")

    def value(z):
        sol = solve_stieltjes([z.real], eps=z.imag, psi_p=pp, psi_n=pn, constants=c)
        return complex(f(sol.q[0], sol.r[0], sol.s[0], z)), sol.q[0]

    (sp_, _), (sm, _), (_, q0) = value(z0 + h), value(z0 - h), value(z0)
    deriv = (sp_ - sm) / (2 * h)
    assert abs(deriv + pp * q0) < 1e-6 * abs(pp * q0)


def test_closed_form_timescales_equal_sympy(der):
    fn = der.functions
    rng = np.random.default_rng(0)
    for _ in range(20):
        s2, v2 = rng.uniform(1e-4, 0.05), rng.uniform(1e-3, 0.1)
        pp, pn, D = rng.uniform(2, 200), rng.uniform(1.5, 100), rng.uniform(0.01, 0.9)
        assert np.isclose(ts.lambda_min(s2, v2, pp, pn), fn["lambda_min"](s2, v2, pp, pn), rtol=1e-13)
        assert np.isclose(ts.tau_mem(s2, v2, pp, pn, D), fn["tau_mem"](s2, v2, pp, pn, D), rtol=1e-13)
        assert np.isclose(ts.tau_mem_limit(v2, pn, D), fn["tau_mem_limit"](v2, pn, D), rtol=1e-13)
        lo, hi = fn["edges"](s2, v2, pp / pn)
        assert np.allclose(ts.first_bulk_edges(s2, v2, pp, pn), (lo, hi), rtol=1e-13)
        if pp > 1 + pn:
            assert np.isclose(ts.delta_weight(pp, pn), fn["delta_weight"](pp, pn), rtol=1e-13)


# ------------------------------------------------------------------ solver ------------------------

@pytest.mark.parametrize("t,sx", [(0.01, 1.0), (0.1, 0.5), (1.0, 2.0)])
def test_large_z_asymptotics(t, sx):
    c = gep_constants(t, sigma_x=sx)
    zs = np.array([3e3, 1e4])
    sol = solve_stieltjes(zs, eps=1e3, psi_p=16.0, psi_n=4.0, constants=c)
    z = zs + 1e3j
    # q = -1/z - ||sigma||^2/z^2 + O(z^-3), s = -1/z + O(z^-2), r = -sigma_x^2/z + O(z^-2)
    assert np.all(np.abs(sol.q * z + 1) < 5 * c.norm2 * 16 / np.abs(z))
    np.testing.assert_allclose(((sol.q + 1 / z) * z ** 2).real, -c.norm2, rtol=0.05)
    assert np.all(np.abs(sol.s * z + 1) < 50 / np.abs(z))
    assert np.all(np.abs(sol.r * z + sx ** 2) < 50 * sx ** 2 / np.abs(z))


def test_herglotz_and_conjugation(spec64_8):
    c = spec64_8.constants
    lam = np.geomspace(1e-3, 50, 60)
    up = solve_stieltjes(lam, eps=1e-3, psi_p=64.0, psi_n=8.0, constants=c)
    assert np.all(up.q.imag > 0) and np.all(up.s.imag > 0) and np.all(up.r.imag > 0)
    # Cauchy-Schwarz for a probability measure: Im q >= eps |q|^2
    assert np.all(up.q.imag >= 1e-3 * np.abs(up.q) ** 2 * (1 - 1e-9))
    # q(conj z) = conj q(z): the residuals vanish at the conjugate point
    th, om = np.array([1.0]), np.array([1.0])
    aE, b2, v2, s2 = _consts(c)
    for j in (5, 30, 55):
        zc = complex(lam[j], -1e-3)
        F = ks._system(np.conj(up.q[j]), np.conj(up.r[j]), np.conj(up.s[j]), zc, th, om, 64.0, 8.0, aE, b2, v2, s2)
        assert max(abs(F[0]), abs(F[1])) < 1e-10 and abs(F[2]) < 1e-9 * (1 + abs(up.q[j]) ** 3)


def test_masses_regime_I(spec64_8):
    """delta, small cluster, rho_1, rho_2 masses = 1-(1+psi_n)/psi_p, 1/psi_p, (psi_n-1)/psi_p, 1/psi_p."""
    sp_ = spec64_8
    pp, pn = 64.0, 8.0
    assert abs(sp_.delta_weight - (1 - (1 + pn) / pp)) < 1e-3
    masses = [m for _, _, m in sp_.bulks]
    assert len(masses) == 3
    np.testing.assert_allclose(masses, [1 / pp, (pn - 1) / pp, 1 / pp], atol=1e-3)
    assert abs(sp_.delta_weight + sum(masses) - 1) < 1e-6
    # mu_s: mass 1, no atom at s2 (eps Im s -> 0)
    assert abs(sum(sp_.bulk_mass_s) - 1) < 1e-6
    c = sp_.constants
    at = solve_stieltjes([c.s_t2], eps=1e-9 * c.s_t2, psi_p=pp, psi_n=pn, constants=c)
    assert abs(1e-9 * c.s_t2 * at.s[0].imag) < 1e-12
    # first moment of rho is ||sigma||^2 (Tr U / p): delta at s2 plus the bulks
    first = sp_.delta_weight * c.s_t2 + np.sum(sp_.weights * sp_.nodes)
    assert abs(first - c.norm2) < 1e-4 * c.norm2
    # rho_2 lies where the paper's Fig. 4 puts it (roughly 10 to 45)
    lo2, hi2, _ = sp_.bulks[-1]
    assert 8 < lo2 < 12 and 40 < hi2 < 50


def test_masses_regime_II_and_no_delta():
    res = rf_spectrum(16, 32, 0.1)
    assert res.delta_weight == 0.0
    np.testing.assert_allclose([m for *_, m in res.bulks], [1 - 1 / 16, 1 / 16], atol=1e-3)


def test_second_covariance_changes_rho2_not_rho1():
    """Fig. 4 right: rho_Sigma = (delta_0.5 + delta_1.5)/2 leaves rho_1 (nearly) unchanged, moves rho_2."""
    a = rf_spectrum(64, 8, 0.01)
    b = rf_spectrum(64, 8, 0.01, covariance=([0.5, 1.5], [0.5, 0.5]))
    ra = max(a.bulks, key=lambda x: x[2])
    rb = max(b.bulks, key=lambda x: x[2])
    assert abs(ra[0] - rb[0]) < 0.01 * ra[0] and abs(ra[1] - rb[1]) < 0.01 * ra[1]
    assert abs(rb[2] - 7 / 64) < 1e-3
    # rho_2 (everything above rho_1) keeps mass 1/psi_p but spreads out (it splits into two bulks here)
    above_a = [x for x in a.bulks if x[0] > ra[1]]
    above_b = [x for x in b.bulks if x[0] > rb[1]]
    assert abs(sum(x[2] for x in above_b) - 1 / 64) < 1e-3
    span = lambda bs: max(x[1] for x in bs) - min(x[0] for x in bs)  # noqa: E731
    assert span(above_b) > 1.2 * span(above_a)
    assert abs(b.delta_weight + sum(x[2] for x in b.bulks) - 1) < 1e-6


def test_linear_pencil_holds_at_solution():
    c = gep_constants(0.1)
    lam = np.array([0.02, 0.1, 0.5, 5.0, 20.0])
    sol = solve_stieltjes(lam, eps=1e-6, psi_p=32.0, psi_n=8.0, constants=c)
    z = lam + 1e-6j
    R = linear_pencil_residuals(sol.q, sol.r, z, t=0.1, mu1=c.mu1, v2=c.v_t2, s2=c.s_t2, psi_p=32.0, psi_n=8.0)
    for Rk in R:
        assert np.all(np.abs(Rk) < 1e-10 * (1 + np.abs(sol.q) * 100))


def test_first_bulk_edges_approach_leading_order():
    """At fixed psi_p/psi_n = 8 the rho_1 edges tend to s2 + v2 (1 -+ sqrt 8)^2 as psi_n grows."""
    errs = []
    for pn in (4.0, 16.0, 64.0):
        res = rf_spectrum(8 * pn, pn, 0.1, n_grid=300, n_mass=60)
        c = res.constants
        lo, hi = ts.first_bulk_edges(c.s_t2, c.v_t2, 8 * pn, pn)
        rho1 = max(res.bulks[:-1], key=lambda b: b[2])
        errs.append(max(abs(rho1[0] - lo) / lo, abs(rho1[1] - hi) / hi))
    assert errs[0] > errs[1] > errs[2]
    assert errs[2] < 0.05


def test_numeric_lambda_min_skips_cluster(spec64_8):
    lam = numeric_lambda_min(spec64_8)
    assert lam == spec64_8.bulks[1][0]
    assert spec64_8.cumulative_mass(lam) == pytest.approx(1 / 64, abs=1e-6)


def test_solver_against_independent_scipy_root():
    """A few points re-solved by scipy's Levenberg-Marquardt on the lambdified sympy residuals."""
    from scipy.optimize import root

    c = gep_constants(0.1)
    pp, pn = 32.0, 8.0
    aE, b2, v2, s2 = _consts(c)
    fn = derive_rf().residuals_numpy()
    th, om = np.array([1.0]), np.array([1.0])
    lam = np.array([0.05, 0.3, 12.0])
    ours = solve_stieltjes(lam, eps=1e-4, psi_p=pp, psi_n=pn, constants=c)
    for j, l in enumerate(lam):
        x = None
        for e in np.geomspace(100, 1e-4, 49):
            z = complex(l, e)
            if x is None:
                q0 = -1 / z
                x = np.array([q0.real, q0.imag, q0.real, q0.imag, q0.real, q0.imag])

            def f(v, z=z):
                F = fn(v[0] + 1j * v[1], v[2] + 1j * v[3], v[4] + 1j * v[5], z, pp, pn, aE, b2, v2, s2, th, om)
                return np.array([F[0].real, F[0].imag, F[1].real, F[1].imag, F[2].real, F[2].imag])
            x = root(f, x, method="lm", options=dict(xtol=1e-14, ftol=1e-14)).x
        assert abs(complex(x[0], x[1]) - ours.q[j]) < 1e-7 * abs(ours.q[j])


def test_nonconvergence_raises_with_lambdas():
    c = gep_constants(0.01)
    with pytest.raises(SpectrumConvergenceError, match="lambda=") as ei:
        solve_stieltjes(np.array([0.1, 0.2]), psi_p=64.0, psi_n=8.0, constants=c, tol=1e-30)
    assert ei.value.lambdas.size >= 1 and np.all(np.isfinite(ei.value.lambdas))


def test_upper_bound_above_spectrum(spec64_8):
    c = spec64_8.constants
    assert spectrum_upper_bound(c, 64, 8, 1.0) > spec64_8.bulks[-1][1]


# ------------------------------------------------------------------ timescales --------------------

@settings(deadline=None, max_examples=40)
@given(n=st.integers(200, 100_000), k=st.integers(2, 10))
def test_tau_mem_linear_in_n_for_large_psi_p(n, k):
    d, t = 100, 0.1
    p = 10 ** 8 * n   # psi_p / psi_n >= 1e7 for both n and k n
    a = predict_timescales(n, p, d, t, numeric=False)
    b = predict_timescales(k * n, p, d, t, numeric=False)
    assert b.tau_mem / a.tau_mem == pytest.approx(k, rel=2e-3)   # linear in n when psi_p >> psi_n
    c = a.constants
    assert a.tau_mem / (n / d) == pytest.approx(1 / (c.delta_t * c.v_t2), rel=2e-3)
    assert a.tau_gen == b.tau_gen                                 # independent of n


def test_lambda_min_at_psi_p_four_psi_n():
    r = predict_timescales(400, 1600, 100, 0.3, numeric=False)
    c = r.constants
    assert r.lambda_min == pytest.approx(c.norm2 - c.mu1 ** 2, rel=1e-12)


def test_predict_timescales_numeric_and_regimes():
    r = predict_timescales(800, 6400, 100, 0.01)
    assert r.regime == "I" and r.n_star == 6400
    # numeric lambda_min is the lower edge of rho_1: within 10% of the formula at psi_p/psi_n = 8
    assert abs(r.lambda_min_numeric / r.lambda_min - 1) < 0.1
    assert r.window == pytest.approx(r.tau_mem / r.tau_gen)
    with pytest.warns(Warning, match="no memorization phase"):
        r2 = predict_timescales(6400, 3200, 100, 0.1)
    assert r2.regime == "II"


@pytest.mark.parametrize("kw,match", [
    (dict(psi_p=0.0), "psi_p"), (dict(psi_p=float("nan")), "psi_p"), (dict(psi_n=-1.0), "psi_n"),
    (dict(t=0.0), "t"), (dict(t=float("inf")), "t"), (dict(activation="softsign"), "activation"),
    (dict(activation=lambda x: float(x)), "activation"), (dict(covariance=([1.0, -1.0], [0.5, 0.5])), "thetas"),
    (dict(covariance=([1.0, 2.0], [1.0, 0.0])), "omegas"),
])
def test_rf_spectrum_bad_input(kw, match):
    args = dict(psi_p=16.0, psi_n=4.0, t=0.1)
    args.update(kw)
    with pytest.raises((ValueError, TypeError), match=match):
        rf_spectrum(args.pop("psi_p"), args.pop("psi_n"), args.pop("t"), **args)


@pytest.mark.parametrize("args,match", [
    ((0, 100, 10, 0.1), "n"), ((10, -1, 10, 0.1), "p"), ((10, 100, 0, 0.1), "d"), ((10, 100, 10, -0.1), "t"),
    ((10, 100, 10, float("nan")), "t"), ((10.5, 100, 10, 0.1), "n"),
])
def test_predict_timescales_bad_input(args, match):
    with pytest.raises((ValueError, TypeError), match=match):
        predict_timescales(*args, numeric=False)


def test_docstring_examples_run():
    import doctest

    from memlab.numerics import rf_matrices, rf_spectrum as rs, timescales as nts
    from memlab.theory import activations, gep

    for mod in (activations, gep, rf_matrices, rs, nts):
        res = doctest.testmod(mod, optionflags=doctest.NORMALIZE_WHITESPACE)
        assert res.attempted >= 1 and res.failed == 0, mod.__name__
