"""Theorem 3.1 spectrum: sympy derivation vs the numba solver, solver properties, masses, timescales.

Reference values are derived (docs/theory/random_features.md §4-§5); no stored outputs.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from memlab.numerics.rf_spectrum import (SpectrumConvergenceError, rf_spectrum, solve_stieltjes,
                                         spectrum_upper_bound, stieltjes_system)
from memlab.numerics.timescales import lambda_min_spectrum, predict_timescales
from memlab.theory import rf_formulas
from memlab.theory.checks import MemlabValidityWarning
from memlab.theory import timescales as ts
from memlab.theory.rf_model import RFModel
from memlab.theory.rf_symbolic import derive_rf, formula_exprs


@pytest.fixture(scope="module")
def der():
    return derive_rf()


@pytest.fixture(scope="module")
def spectrum64_8():
    return rf_spectrum(RFModel(64, 8, 0.01))


def _kernel_constants(model):
    """``(a_t^2 e^{-2t}, b_t^2, v_t^2, s_t^2)`` typed in here, independently of the package's kernel_aE."""
    c = model.constants
    return float(c.a_t ** 2 * np.exp(-2 * c.t)), float(c.b_t ** 2), float(c.v_t2), float(c.s_t2)


#: Model constants drawn over the regimes the package serves (tanh and erf, data scale 0.5..2, t 0.005..2).
models = st.builds(RFModel, psi_p=st.floats(2.0, 256.0), psi_n=st.floats(1.2, 128.0),
                   t=st.floats(math.log(0.005), math.log(2.0)).map(math.exp),
                   activation=st.sampled_from(["tanh", "erf"]), sigma_x=st.floats(0.5, 2.0))
complex_pts = st.tuples(st.floats(-3, 3), st.floats(0.01, 3)).map(lambda v: complex(*v))


# ------------------------------------------------------------------ symbolic ----------------------

@settings(deadline=None, max_examples=40)
@given(model=models, q=complex_pts, r=complex_pts, s=complex_pts, lam=st.floats(0.01, 50), eps=st.floats(1e-3, 5))
def test_generated_kernels_evaluate_the_derivation(der, model, q, r, s, lam, eps):
    """The committed numba kernels (numerics/_rf_generated.py, printed from the derivation) give the same numbers as
    sympy's own lambdified residuals over drawn model constants, and their analytic Jacobian equals central
    differences of those residuals: a sympy release that prints differently cannot break this."""
    z = complex(lam, eps)
    F, J = stieltjes_system(model, q, r, s, z)
    aE, b2, v2, s2 = _kernel_constants(model)
    fn = der.residuals_numpy()
    args = (model.psi_p, model.psi_n, aE, b2, v2, s2, model.thetas, model.omegas)
    R = np.array(fn(q, r, s, z, *args), dtype=complex)
    np.testing.assert_allclose(F, R, rtol=1e-10, atol=1e-12 * (1 + np.abs(R).max()))
    x0 = np.array([q, r, s])
    for k in range(3):
        h = 1e-6 * max(1.0, abs(x0[k]))
        xp, xm = x0.copy(), x0.copy()
        xp[k] += h
        xm[k] -= h
        fd = (np.array(fn(*xp, z, *args)) - np.array(fn(*xm, z, *args))) / (2 * h)
        np.testing.assert_allclose(J[:, k], fd, rtol=1e-5, atol=1e-7 * (1 + np.abs(fd).max()))


@settings(deadline=None, max_examples=40)
@given(vals=st.lists(st.floats(0.05, 50.0), min_size=5, max_size=5), c=st.floats(1.01, 400.0))
def test_generated_formulas_evaluate_the_derivation(vals, c):
    """theory/rf_formulas.py (the printed closed forms every layer evaluates) equals the sympy expressions of
    the derivation, evaluated with mpmath, at drawn arguments."""
    for name, (args, expr, _) in formula_exprs().items():
        x = [float(v) for v in vals[:len(args)]]
        if name in ("lambda_minus", "lambda_plus"):
            x[2] = c
        if name in ("tau_mem", "lambda_min", "delta_weight"):
            x[args.index(sp.Symbol("psi_p", positive=True))] = c * x[args.index(sp.Symbol("psi_n", positive=True))]
        ref = float(sp.lambdify(args, expr, modules="mpmath")(*x))
        got = float(getattr(rf_formulas, name)(*x))
        assert got == pytest.approx(ref, rel=1e-12, abs=1e-300), name


def test_stationarity_gives_conjugates_and_envelope(der):
    S = der.symbols
    # dS/dr = 0 -> r_hat = psi_p a^2 E / L ; dS/ds = 0 -> s_hat = b2 psi_p + 1/q   (Theorem 3.1)
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
    assert sp.simplify(der.lambda2_mean - (S["mu1"] ** 2 * (S["psi_p"] - 1) + S["norm2"])) == 0
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


@settings(deadline=None, max_examples=12)
@given(model=models, q=complex_pts, r=complex_pts, s=complex_pts, lam=st.floats(0.01, 50), eps=st.floats(1e-3, 5))
def test_sympy_equations_equal_numeric_residuals(der, model, q, r, s, lam, eps):
    """The derived E1-E3 (two covariance atoms) equal the numba kernel's residuals at random points."""
    S = der.symbols
    model = model.replace(covariance=([0.5, 1.5], [0.3, 0.7]))
    z = complex(lam, eps)
    aE, b2, v2, s2 = _kernel_constants(model)
    a = math.sqrt(model.constants.a_t ** 2)
    E = aE / a ** 2
    pp, pn = model.psi_p, model.psi_n
    vals = {S["q"]: q, S["r"]: r, S["s"]: s, S["z"]: z, S["psi_p"]: pp, S["psi_n"]: pn, S["a"]: a,
            S["E"]: E, S["b2"]: b2, S["v2"]: v2, S["s2"]: s2, S["n_atoms"]: 2}
    atoms = {S["theta"][1]: 0.5, S["theta"][2]: 1.5, S["omega"][1]: 0.3, S["omega"][2]: 0.7}

    def ev(expr):
        return complex(expr.subs(vals).doit().subs(atoms).evalf(20))

    E1, E2, E3 = ev(der.E1), ev(der.E2), ev(der.E3)
    (F1, F2, F3), _ = stieltjes_system(model, q, r, s, z)
    L = 1 + pp / pn * (a * a * E * r + v2 * q)
    assert abs(F1 - E1) <= 1e-10 * (1 + abs(E1))
    assert abs(F2 - E2) <= 1e-10 * (1 + abs(E2))
    assert abs(F3 - E3 * q * q * L) <= 1e-9 * (1 + abs(E3 * q * q * L))


def test_envelope_dS_dz_equals_minus_psi_p_q(der):
    """dS*/dz = -psi_p q along the solution (Theorem 3.1's replica action), by finite differences of the action."""
    S = der.symbols
    model = RFModel(16, 4, 0.1)
    c = model.constants
    pp = 16.0
    h = 1e-5
    z0 = complex(0.5, 0.3)
    subs_c = {S["psi_p"]: pp, S["psi_n"]: 4.0, S["a"]: c.a_t, S["E"]: math.exp(-0.2), S["b2"]: c.b_t ** 2,
              S["v2"]: c.v_t2, S["s2"]: c.s_t2, S["n_atoms"]: 1, S["theta"][1]: 1.0, S["omega"][1]: 1.0}
    act = der.action.subs(subs_c).doit().subs({S["theta"][1]: 1.0, S["omega"][1]: 1.0})
    act = act.subs({S["s_hat"]: der.s_hat_solution.subs(subs_c), S["r_hat"]: der.r_hat_solution.subs(subs_c)})
    f = sp.lambdify((S["q"], S["r"], S["s"], S["z"]), act, modules="mpmath")

    def value(z):
        sol = solve_stieltjes(model, [z.real], eps=z.imag)
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
        mu1, norm2 = rng.uniform(0.1, 1), rng.uniform(0.5, 2)
        assert np.isclose(ts.lambda_min_formula(s2, v2, pp, pn), fn["lambda_min"](s2, v2, pp, pn), rtol=1e-13)
        assert np.isclose(ts.tau_mem_formula(s2, v2, pp, pn, D), fn["tau_mem"](s2, v2, pp, pn, D), rtol=1e-13)
        assert np.isclose(ts.tau_mem_limit(v2, pn, D), fn["tau_mem_limit"](v2, pn, D), rtol=1e-13)
        assert np.isclose(ts.tau_gen_formula(mu1, norm2, pp, D), fn["tau_gen"](mu1, norm2, pp, D), rtol=1e-13)
        lo, hi = fn["edges"](s2, v2, pp / pn)
        assert np.allclose(ts.first_bulk_edges(s2, v2, pp, pn), (lo, hi), rtol=1e-13)
        if pp > 1 + pn:
            assert np.isclose(ts.delta_weight(pp, pn), fn["delta_weight"](pp, pn), rtol=1e-13)


# ------------------------------------------------------------------ solver ------------------------

@pytest.mark.parametrize("t,sx", [(0.01, 1.0), (0.1, 0.5), (1.0, 2.0)])
def test_large_z_asymptotics(t, sx):
    model = RFModel(16, 4, t, sigma_x=sx)
    c = model.constants
    zs = np.array([3e3, 1e4])
    sol = solve_stieltjes(model, zs, eps=1e3)
    z = zs + 1e3j
    # q = -1/z - ||sigma||^2/z^2 + O(z^-3), s = -1/z + O(z^-2), r = -sigma_x^2/z + O(z^-2)
    assert np.all(np.abs(sol.q * z + 1) < 5 * c.norm2 * 16 / np.abs(z))
    np.testing.assert_allclose(((sol.q + 1 / z) * z ** 2).real, -c.norm2, rtol=0.05)
    assert np.all(np.abs(sol.s * z + 1) < 50 / np.abs(z))
    assert np.all(np.abs(sol.r * z + sx ** 2) < 50 * sx ** 2 / np.abs(z))


def test_herglotz_and_conjugation(spectrum64_8):
    model = spectrum64_8.model
    lam = np.geomspace(1e-3, 50, 60)
    up = solve_stieltjes(model, lam, eps=1e-3)
    assert np.all(up.q.imag > 0) and np.all(up.s.imag > 0) and np.all(up.r.imag > 0)
    # Cauchy-Schwarz for a probability measure: Im q >= eps |q|^2
    assert np.all(up.q.imag >= 1e-3 * np.abs(up.q) ** 2 * (1 - 1e-9))
    # q(conj z) = conj q(z): the residuals vanish at the conjugate point
    for j in (5, 30, 55):
        zc = complex(lam[j], -1e-3)
        F, _ = stieltjes_system(model, np.conj(up.q[j]), np.conj(up.r[j]), np.conj(up.s[j]), zc)
        assert max(abs(F[0]), abs(F[1])) < 1e-10 and abs(F[2]) < 1e-9 * (1 + abs(up.q[j]) ** 3)


def test_masses_regime_I(spectrum64_8):
    """delta, small cluster, rho_1, rho_2 masses = 1-(1+psi_n)/psi_p, 1/psi_p, (psi_n-1)/psi_p, 1/psi_p.

    Tolerances are what the method achieves: the Lorentzian of width eps = 1e-9 lambda leaks ~1e-10 of each
    bulk's mass past its edges (measured 4e-11 to 2e-10 here), the delta weight is exact to 1e-14."""
    sp_ = spectrum64_8
    pp, pn = 64.0, 8.0
    assert abs(sp_.delta_weight - (1 - (1 + pn) / pp)) < 1e-12
    masses = [m for _, _, m in sp_.bulks]
    assert len(masses) == 3
    np.testing.assert_allclose(masses, [1 / pp, (pn - 1) / pp, 1 / pp], rtol=0, atol=1e-9)
    assert abs(sp_.delta_weight + sum(masses) - 1) < 1e-9
    # mu_s: mass 1, no atom at s2 (eps Im s -> 0)
    assert abs(sum(sp_.bulk_mass_s) - 1) < 1e-8
    c = sp_.constants
    at = solve_stieltjes(sp_.model, [c.s_t2], eps=1e-9 * c.s_t2)
    assert abs(1e-9 * c.s_t2 * at.s[0].imag) < 1e-12
    # first moment of rho is ||sigma||^2 (Tr U / p): delta at s2 plus the bulks
    first = sp_.delta_weight * c.s_t2 + np.sum(sp_.weights * sp_.nodes)
    assert abs(first - c.norm2) < 1e-4 * c.norm2
    # rho_2 lies where the paper's Fig. 4 puts it (roughly 10 to 45)
    lo2, hi2, _ = sp_.bulks[-1]
    assert 8 < lo2 < 12 and 40 < hi2 < 50


def test_masses_regime_II_and_no_delta():
    res = rf_spectrum(RFModel(16, 32, 0.1))
    assert res.delta_weight == 0.0
    np.testing.assert_allclose([m for *_, m in res.bulks], [1 - 1 / 16, 1 / 16], rtol=0, atol=1e-8)


def _scales_with_eps(model, lam, eps_rel=1e-12):
    """Outside the support Im q(lambda + i eps) is proportional to eps, inside it is the density: the ratio of Im q
    at eps and 100 eps is 0.01 outside and 1 inside (the support test of the former bisection route, typed in)."""
    a = solve_stieltjes(model, lam, eps_rel=eps_rel).q.imag
    b = solve_stieltjes(model, lam, eps_rel=100 * eps_rel).q.imag
    return a / b


def test_cluster_about_to_merge_is_a_separate_bulk():
    """At psi_p = 16, psi_n = 4, t = 0.1 the small cluster has not yet merged with rho_1: a gap of relative width 2e-4
    (near lambda = 0.031), far below the coarse grid's spacing, separates them.  The bulk quadrature sees the
    square-root dip, zooms in, finds the gap and splits the bulk: three bulks of masses 1/psi_p, (psi_n - 1)/psi_p,
    1/psi_p (the cluster and rho_1 together 4/16, as the former adaptive rule integrated them as one bulk).
    Independent checks: Im q scales with eps in the gap and not next to it; a single edge-clustered 200-node rule over
    cluster + gap + rho_1 misses the dip (mass 0.249805); a coarse rule (n_mass = 20) gives the same masses."""
    res = rf_spectrum(RFModel(16, 4, 0.1))
    assert len(res.bulks) == 3 and res.diagnostics["hidden_gaps"] == 1
    (a0, b0, m0), (a1, b1, m1), (_, _, m2) = res.bulks
    np.testing.assert_allclose([m0, m1, m2], [1 / 16, 3 / 16, 1 / 16], rtol=0, atol=1e-8)
    np.testing.assert_allclose([m0 + m1, m2], [4 / 16, 1 / 16], rtol=0, atol=1e-8)
    assert 0.0309 < b0 < a1 < 0.0311 and 1e-4 < (a1 - b0) / a1 < 4e-4
    assert abs(res.delta_weight - (1 - 5 / 16)) < 1e-12
    assert abs(sum(res.bulk_mass_s) - 1) < 1e-8
    gap = np.array([b0 + 0.25 * (a1 - b0), 0.5 * (b0 + a1), b0 + 0.75 * (a1 - b0)])
    np.testing.assert_allclose(_scales_with_eps(res.model, gap), 0.01, rtol=1e-3)
    near = np.array([b0 - 0.1 * (a1 - b0), a1 + 0.1 * (a1 - b0)])
    np.testing.assert_allclose(_scales_with_eps(res.model, near), 1.0, rtol=1e-3)
    # one edge-clustered 200-node rule over the whole interval misses the dip: the case needs the split
    lo, hi = a0, b1
    x, w = np.polynomial.legendre.leggauss(200)
    th = 0.5 * np.pi * (x + 1)
    lam = 0.5 * (lo + hi) - 0.5 * (hi - lo) * np.cos(th)
    sol = solve_stieltjes(res.model, lam)
    single = float(np.sum(0.5 * (hi - lo) * np.sin(th) * 0.5 * np.pi * w * np.clip(sol.q.imag, 0, None) / np.pi))
    assert abs(single - 0.25) > 1e-4
    # a coarse rule per sub-interval still converges to the same masses
    coarse = rf_spectrum(RFModel(16, 4, 0.1), n_mass=20)
    np.testing.assert_allclose([m for *_, m in coarse.bulks], [1 / 16, 3 / 16, 1 / 16], rtol=0, atol=1e-8)


def test_merged_cluster_is_one_bulk():
    """At t = 0.2 the cluster has merged with rho_1: one bulk of mass psi_n/psi_p, no gap inside (Im q does not scale
    with eps anywhere between its edges)."""
    res = rf_spectrum(RFModel(16, 4, 0.2))
    assert len(res.bulks) == 2 and res.diagnostics["hidden_gaps"] == 0
    np.testing.assert_allclose([m for *_, m in res.bulks], [4 / 16, 1 / 16], rtol=0, atol=1e-8)
    lo, hi, _ = res.bulks[0]
    inner = lo + (hi - lo) * np.linspace(0.01, 0.99, 60)
    assert np.all(_scales_with_eps(res.model, inner) > 0.9)


def _bisected_edges(model, out_pts, in_pts, eps_rel=1e-12, steps=45):
    """The former route, typed in as a slow reference: bisection in log(lambda - s_t^2) on the eps-scaling test."""
    s2 = model.constants.s_t2
    a, b = np.log(np.asarray(out_pts) - s2), np.log(np.asarray(in_pts) - s2)
    for _ in range(steps):
        m = 0.5 * (a + b)
        inside = _scales_with_eps(model, s2 + np.exp(m), eps_rel) > 0.1
        a, b = np.where(inside, a, m), np.where(inside, m, b)
    return s2 + np.exp(0.5 * (a + b))


@pytest.mark.parametrize("args", [(64, 8, 0.01), (16, 4, 0.1), (16, 32, 0.1)])
def test_fold_edges_against_bisection_and_square_root_law(args):
    """The edges (folds of the real branch, found in one vectorised kernel call) against (i) the former bisection route
    at eps = 1e-12 lambda and (ii) the square-root law just inside each edge: rho(e + d) / rho(e + 4 d) = 1/2 and
    Im q proportional to eps just outside."""
    res = rf_spectrum(RFModel(*args))
    assert res.diagnostics["edges_bisected"] == 0 and res.diagnostics["edges_fold"] >= 2 * len(res.bulks) - 2
    lo = np.array([a for a, _, _ in res.bulks])
    hi = np.array([b for _, b, _ in res.bulks])
    edges = np.concatenate([lo, hi])
    sign = np.concatenate([np.ones(lo.size), -np.ones(hi.size)])     # direction into the bulk
    width = np.concatenate([hi - lo, hi - lo])
    out_pts = edges - sign * 1e-4 * width
    in_pts = edges + sign * 1e-4 * width
    ref = _bisected_edges(res.model, out_pts, in_pts)
    np.testing.assert_allclose(edges, ref, rtol=1e-9)
    d = 1e-7 * width
    rho = lambda x: solve_stieltjes(res.model, x, eps_rel=1e-13).q.imag  # noqa: E731
    ratio = rho(edges + sign * d) / rho(edges + sign * 4 * d)
    np.testing.assert_allclose(ratio, 0.5, rtol=0.02)
    np.testing.assert_allclose(_scales_with_eps(res.model, edges - sign * d), 0.01, rtol=0.02)


def test_threads_do_not_change_the_numbers():
    """The same chunks whatever the thread count: threads=1 (serial kernel) and threads=2 (parallel region) agree
    bit for bit, for the solver on 1500 points and for the public spectrum."""
    model = RFModel(64, 8, 0.01)
    lam = model.constants.s_t2 + np.geomspace(1e-6, 60, 1500)
    a = solve_stieltjes(model, lam, threads=1)
    b = solve_stieltjes(model, lam, threads=2)
    for f in ("q", "r", "s", "dq", "residual", "n_iter"):
        assert np.array_equal(getattr(a, f), getattr(b, f)), f
    ra, rb = rf_spectrum(model, threads=1), rf_spectrum(model, threads=2)
    assert ra.bulks == rb.bulks and ra.delta_weight == rb.delta_weight
    assert np.array_equal(ra.density, rb.density) and np.array_equal(ra.weights_s, rb.weights_s)
    with pytest.raises(ValueError, match="threads"):
        rf_spectrum(model, threads=0)
    with pytest.raises(ValueError, match="threads"):
        solve_stieltjes(model, lam[:5], threads=0)


def test_spectrum_reuses_its_solves(spectrum64_8):
    """The default call solves the delta peak, the coarse grid and the bulk nodes once each (a few kernel calls, no
    bisection), and the densities it reports are those of an independent solve at the same points."""
    d = spectrum64_8.diagnostics
    assert d["solver_calls"] <= 4 and d["edges_bisected"] == 0 and d["hidden_gaps"] == 0
    assert d["quad_intervals"] == [1, 1, 1]
    sol = solve_stieltjes(spectrum64_8.model, spectrum64_8.lambdas)
    np.testing.assert_allclose(spectrum64_8.q, sol.q, rtol=1e-10, atol=0)
    c = spectrum64_8.constants
    lor = spectrum64_8.delta_weight * sol.eps / ((sol.lambdas - c.s_t2) ** 2 + sol.eps ** 2)
    dens = np.clip(sol.q.imag - lor, 0, None) / np.pi
    # under the delta peak (within 1e4 eps of s_t^2) a continuous Im q below 1e-7 |q| is rounding noise of the
    # Lorentzian's subtraction: reported as 0 there, and only there
    near = np.abs(sol.lambdas - c.s_t2) < 1e4 * sol.eps
    noise = near & (np.pi * dens <= 1e-7 * np.abs(sol.q)) & (lor > np.pi * dens)
    assert np.all(spectrum64_8.density[noise] == 0.0)
    assert np.all(np.abs(sol.lambdas[noise] - c.s_t2) < 1e4 * sol.eps[noise])
    np.testing.assert_allclose(spectrum64_8.density[~noise], dens[~noise], rtol=1e-8, atol=1e-12 * dens.max())


@settings(deadline=None, max_examples=15)
@given(model=models)
def test_spectrum_structure_over_drawn_models(model):
    """Over the regimes the package serves: sorted, disjoint bulks of positive mass above s_t^2; the delta weight of
    Thm 3.2 and total masses of rho and mu_s equal to 1, up to the Lorentzian smoothing: a bulk loses a mass of order
    eps/scale past its edges, the scale being its width or its distance to the singular point below it (s_t^2 or the
    bulk below), whichever is smaller (eps = 1e-9 lambda; at t ~ 1 with sigma_x = 0.5 the first bulk is only ~1e-6
    wide, and at psi_p = psi_n + 1 it touches s_t^2)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MemlabValidityWarning)
        res = rf_spectrum(model)
    s2 = res.delta_location
    edges = np.array([(a, b) for a, b, _ in res.bulks]).ravel()
    assert np.all(np.diff(edges) > 0) and edges[0] > s2
    assert all(m > 0 for *_, m in res.bulks)
    below = np.concatenate([[s2], edges[1:-1:2]])
    tol = 1e-6 + 100 * max(1e-9 * max(a, s2) / min(b - a, a - g) for (a, b, _), g in zip(res.bulks, below))
    assert abs(res.delta_weight - max(0.0, 1 - (1 + model.psi_n) / model.psi_p)) < tol
    assert abs(res.diagnostics["total_mass"] - 1) < tol and abs(sum(res.bulk_mass_s) - 1) < tol


def test_second_covariance_changes_rho2_not_rho1():
    """Fig. 4 right: rho_Sigma = (delta_0.5 + delta_1.5)/2 leaves rho_1 (nearly) unchanged, moves rho_2."""
    a = rf_spectrum(RFModel(64, 8, 0.01))
    b = rf_spectrum(RFModel(64, 8, 0.01, covariance=([0.5, 1.5], [0.5, 0.5])))
    ra = max(a.bulks, key=lambda x: x[2])
    rb = max(b.bulks, key=lambda x: x[2])
    assert abs(ra[0] - rb[0]) < 0.01 * ra[0] and abs(ra[1] - rb[1]) < 0.01 * ra[1]
    assert abs(rb[2] - 7 / 64) < 1e-8
    # rho_2 (everything above rho_1) keeps mass 1/psi_p but spreads out (it splits into two bulks here)
    above_a = [x for x in a.bulks if x[0] > ra[1]]
    above_b = [x for x in b.bulks if x[0] > rb[1]]
    assert abs(sum(x[2] for x in above_b) - 1 / 64) < 1e-8
    span = lambda bs: max(x[1] for x in bs) - min(x[0] for x in bs)  # noqa: E731
    assert span(above_b) > 1.2 * span(above_a)
    assert abs(b.delta_weight + sum(x[2] for x in b.bulks) - 1) < 1e-8


def _linear_pencil_residuals(q, r, z, *, t, mu1, v2, s2, psi_p, psi_n):
    """Residuals of the corrected linear-pencil system (Sigma = I, sigma_x = 1; arXiv:2505.17638 SM eqs 101-106 with
    ``zeta_2 zeta_4`` in eq 101 and ``psi_p v_t^2 zeta_1`` in eq 102, docs/theory/random_features.md §8) through the
    dictionary ``zeta_1 = q``, ``zeta_2 = 1/L``, ``zeta_3 = -e^{-t} mu1 psi_p r``, ``zeta_4 = r/q``: an independent,
    typed-in statement that checks the Theorem 3.1 solution."""
    e = np.exp(-t)
    D = 1.0 - np.exp(-2.0 * t)
    L = 1.0 + psi_p / psi_n * (mu1 ** 2 * e ** 2 * r + v2 * q)
    z1, z2, z3, z4 = q, 1.0 / L, -e * mu1 * psi_p * r, r / q
    R1 = z1 * (s2 - z + e ** 2 * mu1 ** 2 * z2 * z4 + v2 * z2 + D * mu1 ** 2 * z4) - 1.0
    R2 = z2 * (psi_n + v2 * psi_p * z1 - e * mu1 * z3) - psi_n
    R3 = e * mu1 * psi_p * z1 * (1.0 + e * mu1 * z2 * z3) + (1.0 + D * mu1 ** 2 * psi_p * z1) * z3
    R4 = e ** 2 * mu1 ** 2 * psi_p * z1 * z2 * z4 + (1.0 + D * mu1 ** 2 * psi_p * z1) * z4 - 1.0
    return R1, R2, R3, R4


def test_linear_pencil_holds_at_solution():
    model = RFModel(32, 8, 0.1)
    c = model.constants
    lam = np.array([0.02, 0.1, 0.5, 5.0, 20.0])
    sol = solve_stieltjes(model, lam, eps=1e-6)
    z = lam + 1e-6j
    R = _linear_pencil_residuals(sol.q, sol.r, z, t=0.1, mu1=c.mu1, v2=c.v_t2, s2=c.s_t2, psi_p=32.0, psi_n=8.0)
    for Rk in R:
        assert np.all(np.abs(Rk) < 1e-10 * (1 + np.abs(sol.q) * 100))


def test_first_bulk_edges_approach_leading_order():
    """At fixed psi_p/psi_n = 8 the rho_1 edges tend to s2 + v2 (1 -+ sqrt 8)^2 as psi_n grows."""
    errs = []
    for pn in (4.0, 16.0, 64.0):
        res = rf_spectrum(RFModel(8 * pn, pn, 0.1), n_grid=300, n_mass=30)
        c = res.constants
        lo, hi = ts.first_bulk_edges(c.s_t2, c.v_t2, 8 * pn, pn)
        rho1 = max(res.bulks[:-1], key=lambda b: b[2])
        errs.append(max(abs(rho1[0] - lo) / lo, abs(rho1[1] - hi) / hi))
    assert errs[0] > errs[1] > errs[2]
    assert errs[2] < 0.05


def test_lambda_min_spectrum_skips_cluster(spectrum64_8):
    lam = lambda_min_spectrum(spectrum64_8)
    assert lam == spectrum64_8.bulks[1][0]
    assert spectrum64_8.cumulative_mass(lam) == pytest.approx(1 / 64, abs=1e-6)


def test_solver_against_independent_scipy_root():
    """A few points re-solved by scipy's Levenberg-Marquardt on the lambdified sympy residuals."""
    from scipy.optimize import root

    model = RFModel(32, 8, 0.1)
    pp, pn = 32.0, 8.0
    aE, b2, v2, s2 = _kernel_constants(model)
    fn = derive_rf().residuals_numpy()
    th, om = np.array([1.0]), np.array([1.0])
    lam = np.array([0.05, 0.3, 12.0])
    ours = solve_stieltjes(model, lam, eps=1e-4)
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


def test_dq_is_the_derivative_of_q():
    """``StieltjesSolution.dq`` (implicit differentiation, used by the support test and the predictor) against central
    differences of the solved q along lambda (q is holomorphic: dq/dz = dq/dlambda)."""
    model = RFModel(32, 8, 0.1)
    lam = np.array([0.05, 0.3, 12.0, 60.0])
    sol = solve_stieltjes(model, lam, eps=1e-3)
    h = 1e-5 * lam
    fd = (solve_stieltjes(model, lam + h, eps=1e-3).q - solve_stieltjes(model, lam - h, eps=1e-3).q) / (2 * h)
    np.testing.assert_allclose(sol.dq, fd, rtol=1e-6)


def test_nonconvergence_raises_with_lambdas():
    with pytest.raises(SpectrumConvergenceError, match="lambda=") as ei:
        solve_stieltjes(RFModel(64, 8, 0.01), np.array([0.1, 0.2]), tol=1e-30)
    assert ei.value.lambdas.size >= 1 and np.all(np.isfinite(ei.value.lambdas))


def test_upper_bound_above_spectrum(spectrum64_8):
    assert spectrum_upper_bound(spectrum64_8.model) > spectrum64_8.bulks[-1][1]


# ------------------------------------------------------------------ timescales --------------------

@settings(deadline=None, max_examples=40)
@given(n=st.integers(200, 100_000), k=st.integers(2, 10))
def test_tau_mem_linear_in_n_for_large_psi_p(n, k):
    d, t = 100, 0.1
    p = 10 ** 8 * n   # psi_p / psi_n >= 1e7 for both n and k n
    a = predict_timescales(RFModel.from_sizes(n, p, d, t), numeric=False)
    b = predict_timescales(RFModel.from_sizes(k * n, p, d, t), numeric=False)
    assert b.tau_mem_formula / a.tau_mem_formula == pytest.approx(k, rel=2e-3)   # linear in n when psi_p >> psi_n
    c = a.constants
    assert a.tau_mem_formula / (n / d) == pytest.approx(1 / (c.delta_t * c.v_t2), rel=2e-3)
    assert a.tau_gen_formula == b.tau_gen_formula                                # independent of n


def test_lambda_min_at_psi_p_four_psi_n():
    r = predict_timescales(RFModel.from_sizes(400, 1600, 100, 0.3), numeric=False)
    c = r.constants
    assert r.lambda_min_formula == pytest.approx(c.norm2 - c.mu1 ** 2, rel=1e-12)


@pytest.mark.parametrize("psi_p,t,sx", [(16, 0.1, 1.0), (8, 1.0, 1.5), (32, 0.5, 0.7)])
def test_tau_gen_formula_is_the_mean_of_the_solved_fast_bulk(psi_p, t, sx):
    """lambda2_mean = mu1^2 psi_p + ||sigma||^2 - mu1^2 against the mean of rho_2 integrated from the solved spectrum.

    The formula is the leading order of the fast bulk (the population matrix U~); at finite psi_n the solved rho_2
    mean sits slightly above it, by about 0.03/psi_n relative (measured), so the gap must shrink as psi_n grows and
    stay below 1%.  Flipping the sign of a mu1^2 term moves the formula by 2 mu1^2 / lambda2_mean, 6% to 25% here, so
    this test pins every term (and hence tau_gen_formula = psi_p / (Delta_t lambda2_mean)).
    """
    gaps = []
    for psi_n in (4.0, 16.0, 64.0):
        model = RFModel(psi_p, psi_n, t, sigma_x=sx)
        spec = rf_spectrum(model)
        lo, hi, mass = spec.bulks[-1]
        assert mass == pytest.approx(1 / psi_p, abs=1e-8)          # the top bulk is rho_2
        top = spec.nodes >= lo
        mean = float(np.sum(spec.weights[top] * spec.nodes[top]) / np.sum(spec.weights[top]))
        c = model.constants
        formula = ts.lambda2_mean(c.mu1, c.norm2, psi_p)
        gaps.append(mean / formula - 1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MemlabValidityWarning)   # psi_n >= psi_p: regime II, expected
            r = predict_timescales(model.replace(d=200), numeric=False)
        assert r.lambda2_mean == formula
        assert r.tau_gen_formula == pytest.approx(psi_p / (c.delta_t * mean), rel=0.01)
        assert abs(2 * c.mu1 ** 2 / formula) > 5 * abs(mean / formula - 1)   # a sign flip would fail
    assert max(abs(g) for g in gaps) < 0.01
    assert abs(gaps[0]) > abs(gaps[1]) > abs(gaps[2])


def test_predict_timescales_numeric_and_regimes():
    r = predict_timescales(RFModel.from_sizes(800, 6400, 100, 0.01))
    assert r.regime == "I" and r.n_star == 6400
    # the spectrum's lambda_min is the lower edge of rho_1: within 10% of the formula at psi_p/psi_n = 8
    assert abs(r.lambda_min_spectrum / r.lambda_min_formula - 1) < 0.1
    assert r.tau_mem_spectrum == pytest.approx(64 / (r.constants.delta_t * r.lambda_min_spectrum), rel=1e-14)
    assert r.window == pytest.approx(r.tau_mem_formula / r.tau_gen_formula)
    with pytest.warns(Warning, match="no memorization phase"):
        r2 = predict_timescales(RFModel.from_sizes(6400, 3200, 100, 0.1))
    assert r2.regime == "II"


@pytest.mark.parametrize("kw,match", [
    (dict(psi_p=0.0), "psi_p"), (dict(psi_p=float("nan")), "psi_p"), (dict(psi_n=-1.0), "psi_n"),
    (dict(t=0.0), "t"), (dict(t=float("inf")), "t"), (dict(activation="softsign"), "activation"),
    (dict(activation=lambda x: float(x)), "activation"), (dict(covariance=([1.0, -1.0], [0.5, 0.5])), "thetas"),
    (dict(covariance=([1.0, 2.0], [1.0, 0.0])), "omegas"), (dict(d=0), "d"), (dict(seed=-1), "seed"),
    (dict(center="yes"), "center"), (dict(sigma_x=2.0, covariance=([1.0], [1.0])), "sigma_x"),
])
def test_rf_model_bad_input(kw, match):
    args = dict(psi_p=16.0, psi_n=4.0, t=0.1)
    args.update(kw)
    with pytest.raises((ValueError, TypeError), match=match):
        RFModel(**args)


def test_rf_entry_points_reject_what_is_not_a_model():
    for fn in (rf_spectrum, predict_timescales):
        with pytest.raises(TypeError, match="RFModel"):
            fn((16, 4, 0.1))


@pytest.mark.parametrize("args,match", [
    ((0, 100, 10, 0.1), "n"), ((10, -1, 10, 0.1), "p"), ((10, 100, 0, 0.1), "d"), ((10, 100, 10, -0.1), "t"),
    ((10, 100, 10, float("nan")), "t"), ((10.5, 100, 10, 0.1), "n"),
])
def test_rf_model_from_sizes_bad_input(args, match):
    with pytest.raises((ValueError, TypeError), match=match):
        RFModel.from_sizes(*args)


def test_rf_model_sizes_and_replace():
    m = RFModel.from_sizes(800, 6400, 100, 0.1)
    assert (m.psi_p, m.psi_n, m.n, m.p, m.d) == (64.0, 8.0, 800, 6400, 100)
    assert m.replace(psi_n=16).n == 1600 and m.replace(d=50).p == 3200
    with pytest.raises(ValueError, match="d=1 is too small"):
        RFModel(0.4, 8, 0.1, d=1).sizes()
    cov = RFModel(64, 8, 0.01, d=4, covariance=([0.5, 1.5], [0.5, 0.5]))
    assert cov.sigma_x == 1.0 and list(cov.cov_eigs) == [0.5, 0.5, 1.5, 1.5]
    assert cov.replace(covariance=None).sigma_x == 1.0
    with pytest.raises(ValueError, match="whole numbers"):
        RFModel(64, 8, 0.01, d=5, covariance=([0.5, 1.5], [0.5, 0.5])).cov_eigs


def test_docstring_examples_run():
    import doctest

    from memlab.numerics import readoffs, rf_learning, rf_matrices, rf_spectrum as rs, timescales as nts
    from memlab.theory import activations, gep, rf_model

    for mod in (activations, gep, rf_matrices, rs, nts, rf_model, readoffs, rf_learning):
        res = doctest.testmod(mod, optionflags=doctest.NORMALIZE_WHITESPACE)
        assert res.attempted >= 1 and res.failed == 0, mod.__name__


def test_mass_near_s_t2_edge_is_not_fooled_by_the_nested_estimate():
    """Regression (found by the drawn-model test): at psi_p = psi_n = 2 the bulk's lower edge sits 4.5e-4 above
    s_t^2 and a first rule of N = 64 agreed with its nested N/2 rule to 3e-8 while the mass was off by 2.2e-5.
    With the default rule the total mass is 1 (Thm 3.2: no delta peak for psi_p <= psi_n + 1) to 1e-8 and equals
    a run with a rule twice as fine."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MemlabValidityWarning)
        model = RFModel(2.0, 2.0, math.exp(-3.5), sigma_x=1.1875)
        res, fine = rf_spectrum(model), rf_spectrum(model, n_mass=256)
    assert res.delta_weight == 0.0
    assert abs(res.diagnostics["total_mass"] - 1) < 1e-8
    assert abs(res.diagnostics["total_mass"] - fine.diagnostics["total_mass"]) < 1e-9


@pytest.mark.parametrize("model", [RFModel(64, 8, 0.01), RFModel.from_sizes(800, 6400, 100, 0.1), RFModel(4, 2, 0.5)],
                         ids=["64-8", "timescales-cli", "4-2"])
def test_python_engine_runs_the_same_kernels(model):
    """``engine="python"`` (the kernels' source run uncompiled) reproduces the compiled spectrum: the same bulks and
    masses to rounding, the same densities away from the solver's noise floor, the same tau_mem_spectrum."""
    a = rf_spectrum(model)
    b = rf_spectrum(model, engine="python", lambdas=a.lambdas)
    assert len(a.bulks) == len(b.bulks)
    np.testing.assert_allclose(np.array(a.bulks), np.array(b.bulks), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(a.density, b.density, rtol=1e-7, atol=1e-7 * a.density.max())
    np.testing.assert_allclose(a.delta_weight, b.delta_weight, rtol=1e-12, atol=1e-13)
    ta = predict_timescales(model).tau_mem_spectrum
    tb = predict_timescales(model, engine="python").tau_mem_spectrum
    # lambda_min_spectrum interpolates the cumulative mass between quadrature nodes: where a rounding-level
    # difference cuts a bulk's panels elsewhere (4-2) it moves within that interpolation's accuracy
    assert ta == pytest.approx(tb, rel=1e-6)


def test_python_engine_solver_matches_compiled_pointwise():
    model = RFModel(16, 4, 0.1, sigma_x=1.3)
    lams = np.linspace(0.05, 3.0, 37)
    a = solve_stieltjes(model, lams)
    b = solve_stieltjes(model, lams, engine="python")
    np.testing.assert_allclose(b.q, a.q, rtol=1e-11)
    np.testing.assert_allclose(b.s, b.s, rtol=1e-11)
    assert np.all(b.status == 0)


def test_one_off_timescales_import_no_numba():
    """The command-line answer runs the kernels interpreted: neither numba, memlab's caching njit (numerics/_jit.py)
    nor scipy is imported, and the answer is the compiled kernels' to rounding."""
    import subprocess
    import sys

    code = ("import sys, io, contextlib\nfrom memlab.cli import main\nbuf = io.StringIO()\n"
            "with contextlib.redirect_stdout(buf):\n"
            "    rc = main(['timescales', '--n', '800', '--p', '6400', '--d', '100', '--t', '0.1', '--json'])\n"
            "import json\nout = json.loads(buf.getvalue())\n"
            "print(rc, out['tau_mem_spectrum'], any(m.split('.')[0] == 'numba' or m.endswith('._jit') "
            "for m in sys.modules), 'scipy' in sys.modules)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    rc, tau, numba_loaded, scipy_loaded = res.stdout.split()
    assert rc == "0" and numba_loaded == "False" and scipy_loaded == "False"
    ref = predict_timescales(RFModel.from_sizes(800, 6400, 100, 0.1)).tau_mem_spectrum
    assert float(tau) == pytest.approx(ref, rel=1e-11)


def test_engine_and_check_are_validated():
    model = RFModel(8, 2, 0.1)
    for bad in ("cuda", None, 1):
        with pytest.raises(ValueError, match="engine"):
            rf_spectrum(model, engine=bad)
        with pytest.raises(ValueError, match="engine"):
            predict_timescales(model, engine=bad)
        with pytest.raises(ValueError, match="engine"):
            solve_stieltjes(model, [1.0], engine=bad)
    with pytest.raises(TypeError, match="check"):
        rf_spectrum(model, check="yes")


@pytest.mark.parametrize("psi_p,psi_n", [(32.0, 5e7), (8.0, 1e6)])
def test_narrow_first_bulk_is_found(psi_p, psi_n):
    """psi_n >> psi_p: rho_1 is narrower than the coarse grid's spacing; the grid is refined around its
    leading-order position, so the masses add up to 1 and lambda_min_spectrum meets the formula's limit."""
    model = RFModel(psi_p, psi_n, 0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MemlabValidityWarning)
        spec = rf_spectrum(model)
        res = predict_timescales(model)
    assert spec.diagnostics["total_mass"] == pytest.approx(1.0, abs=1e-5)
    c = model.constants
    lo, hi = ts.first_bulk_edges(c.s_t2, c.v_t2, psi_p, psi_n)
    a, b, m = spec.bulks[0]
    assert m == pytest.approx(1 - 1 / psi_p, rel=1e-5)
    # leading order in sqrt(psi_p / psi_n): the edges agree to a small fraction of the bulk's width
    assert abs(a - lo) < 0.05 * (hi - lo) and abs(b - hi) < 0.05 * (hi - lo)
    assert res.tau_mem_spectrum == pytest.approx(res.tau_mem_formula, rel=1e-3)


def test_spectrum_that_fails_its_checks_raises_with_the_result():
    """A spectrum whose masses miss 1 by more than the Lorentzian smoothing explains must not come back as a
    result.  A Lorentzian about as wide as rho_1 (eps_rel = 1e-3 against its relative width 1.6e-3) hides rho_1
    from the support test: the mass check raises with the result attached; check=False returns it marked
    invalid."""
    from memlab.numerics.rf_spectrum import SpectrumAccuracyError

    model = RFModel(8, 1e6, 0.1)
    spec = rf_spectrum(model)
    assert spec.diagnostics["valid"] and not spec.diagnostics["failed_checks"]
    with pytest.raises(SpectrumAccuracyError, match="total mass") as err:
        rf_spectrum(RFModel(32, 5e7, 0.1), eps_rel=1e-3)
    bad = err.value.result
    assert not bad.diagnostics["valid"] and abs(bad.diagnostics["total_mass"] - 1) > 1e-3
    with pytest.warns(MemlabValidityWarning, match="fails its checks"):
        again = rf_spectrum(RFModel(32, 5e7, 0.1), eps_rel=1e-3, check=False)
    assert again.diagnostics["total_mass"] == pytest.approx(bad.diagnostics["total_mass"], rel=1e-12)
