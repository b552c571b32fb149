"""Tests for memlab.theory.crossover: the capacity crossover M*.

arXiv:2508.17689v1 Eq. 21 (our users' "Eq. 14"; docs/theory/capacity_crossover.md §5).  Reference numbers below
are the values of docs/theory/capacity_crossover.md §4-§5 (computed from the paper's grid and its fitted weighting
of Fig. 3); everything else is compared with
independent computations written here (numpy gap + brentq, scipy quad, sympy by hand).
"""

from __future__ import annotations

import dataclasses
import doctest
import math
import warnings

import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings, strategies as st
from scipy import integrate, optimize

from memlab.theory import crossover
from memlab.theory.checks import MemlabValidityWarning
from memlab.theory.crossover import MStarResult, predict_mstar

# App. H.1 (corrected, docs/theory/capacity_crossover.md §1): t_ell = 0.999 - 0.03992 ell, descending; t_16 = 0.36028.
PAPER_GRID = 0.999 - 0.03992 * np.arange(26)


def grid_psi(t):
    t = np.asarray(t, dtype=float)
    return (1.0 - t * t) / (t * t)


def gap_numpy(M, N, C, d, sigma2, lam, times):
    """Independent Delta(M) = sum_l lam_l (C(1 - M/N) d s2 - d s2/(psi_l s2 + 1))."""
    psi = grid_psi(times)
    return float(np.sum(lam * (C * (1.0 - M / N) * d * sigma2 - d * sigma2 / (psi * sigma2 + 1.0))))


def quiet(*args, **kwargs) -> MStarResult:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MemlabValidityWarning)
        return predict_mstar(*args, **kwargs)


# ---------------------------------------------------------------------------------------------
# strategies
# ---------------------------------------------------------------------------------------------

def log_uniform(lo, hi):
    return st.floats(math.log(lo), math.log(hi)).map(math.exp)


@st.composite
def grids(draw):
    n = draw(st.integers(2, 40))
    t = st.floats(0.001, 0.999, exclude_min=True, exclude_max=True)
    times = np.array(draw(st.lists(t, min_size=n, max_size=n)))
    lam = np.array(draw(st.lists(log_uniform(1e-3, 1e3), min_size=n, max_size=n)))
    return times, lam


SIGMA2 = log_uniform(0.05, 20.0)
HYP = settings(deadline=None, max_examples=50)


# ---------------------------------------------------------------------------------------------
# check 8: symbolic M* equals the brentq root of an independent Delta(M)
# ---------------------------------------------------------------------------------------------

def _check_against_brentq(grid_draw, sigma2, C, N, d):
    times, lam = grid_draw
    res = quiet(N, C=C, weighting=lam, sigma2=sigma2, times=times)
    g0 = gap_numpy(0.0, N, C, d, sigma2, lam, times)
    gN = gap_numpy(float(N), N, C, d, sigma2, lam, times)
    assert gN < 0
    if res.crossover:
        assert g0 > 0
        root = optimize.brentq(gap_numpy, 0.0, float(N), args=(N, C, d, sigma2, lam, times),
                               xtol=1e-13 * N, rtol=4 * np.finfo(float).eps)
        assert res.m_star == pytest.approx(root, rel=1e-9, abs=1e-9 * N)
        assert 0.0 <= res.m_star <= N
        assert res.ratio == pytest.approx(root / N, rel=1e-9, abs=1e-9)
    else:
        # Delta is affine in M: same non-positive sign at both ends -> no root in (0, N].
        assert g0 <= 0
        assert res.m_star is None and res.ratio is None
        assert res.message.startswith("no crossover")


@HYP
@given(grids(), SIGMA2, st.floats(1.0, 2.0), st.integers(1, 10**6), st.integers(1, 1000))
def test_symbolic_root_matches_brentq_C_1_to_2(grid_draw, sigma2, C, N, d):
    _check_against_brentq(grid_draw, sigma2, C, N, d)


@HYP
@given(grids(), SIGMA2, st.floats(0.2, 3.0, exclude_min=True, exclude_max=True),
       st.integers(1, 10**6), st.integers(1, 1000))
def test_symbolic_root_matches_brentq_C_wide(grid_draw, sigma2, C, N, d):
    _check_against_brentq(grid_draw, sigma2, C, N, d)


def test_no_crossover_case_is_reported():
    # paper weighting has r = 0.39993 (docs/theory/capacity_crossover.md §5) > C = 0.3
    with pytest.warns(MemlabValidityWarning, match="window"):
        res = predict_mstar(50, C=0.3, d=50, K=12)
    assert res.crossover is False and res.m_star is None and res.ratio is None
    assert round(res.r, 5) == 0.39993
    assert not any("coupon" in w for w in res.warnings)
    assert "no crossover" in str(res)


# ---------------------------------------------------------------------------------------------
# check 10: structure of M*
# ---------------------------------------------------------------------------------------------

@HYP
@given(grids(), SIGMA2, st.floats(1.0, 2.0), st.integers(1, 10**4), st.integers(2, 50),
       st.integers(1, 500), st.integers(1, 30), log_uniform(1e-6, 1e6))
def test_linear_in_N_independent_of_d_K_scale_invariant(grid_draw, sigma2, C, N, k, d, K, c):
    times, lam = grid_draw
    base = predict_mstar(N, C=C, weighting=lam, sigma2=sigma2, times=times)
    scaled_N = predict_mstar(k * N, C=C, weighting=lam, sigma2=sigma2, times=times)
    assert scaled_N.ratio == base.ratio
    assert scaled_N.m_star == pytest.approx(k * base.m_star, rel=1e-14)
    with_dK = quiet(N, C=C, weighting=lam, sigma2=sigma2, times=times, d=d, K=K)
    with_other_dK = quiet(N, C=C, weighting=lam, sigma2=sigma2, times=times, d=d + 7, K=K + 3)
    for other in (with_dK, with_other_dK):
        assert (other.m_star, other.ratio, other.r) == (base.m_star, base.ratio, base.r)
    rescaled = predict_mstar(N, C=C, weighting=c * lam, sigma2=sigma2, times=times)
    assert rescaled.ratio == pytest.approx(base.ratio, rel=1e-12)
    # C >= 1: ratio in (1 - 1/C, 1)
    assert 1.0 - 1.0 / C < base.ratio < 1.0


@HYP
@given(grids(), SIGMA2, st.floats(1.0, 2.0), log_uniform(1.01, 3.0))
def test_monotone_in_C_and_sigma2(grid_draw, sigma2, C, factor):
    times, lam = grid_draw
    base = predict_mstar(100, C=C, weighting=lam, sigma2=sigma2, times=times)
    bigger_C = predict_mstar(100, C=C * factor, weighting=lam, sigma2=sigma2, times=times)
    bigger_s2 = predict_mstar(100, C=C, weighting=lam, sigma2=sigma2 * factor, times=times)
    assert bigger_C.ratio > base.ratio
    assert bigger_s2.ratio > base.ratio
    assert bigger_s2.r < base.r


# ---------------------------------------------------------------------------------------------
# reference values (docs/theory/capacity_crossover.md §4-§5)
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("weighting, r_ref, ratio_C2, ratio_C1", [
    ("paper", 0.39993, 0.800, 0.600),
    ("uniform", 0.33964, 0.830, 0.660),
])
def test_reference_values(weighting, r_ref, ratio_C2, ratio_C1):
    res2 = predict_mstar(100, C=2.0, weighting=weighting)
    res1 = predict_mstar(100, C=1.0, weighting=weighting)
    assert round(res2.r, 5) == r_ref
    assert round(res2.ratio, 3) == ratio_C2
    assert round(res1.ratio, 3) == ratio_C1
    assert res2.times == pytest.approx(tuple(PAPER_GRID), abs=1e-12)


def test_paper_weighting_accepts_explicit_paper_grid():
    assert predict_mstar(100, times=PAPER_GRID).ratio == predict_mstar(100).ratio


def test_noise_weighting():
    for C in (1.0, 2.0):
        res = predict_mstar(100, C=C, weighting="noise")
        assert res.ratio > 0.9999
        assert res.weights == pytest.approx(tuple(grid_psi(PAPER_GRID)), rel=1e-12)


def test_continuous_uniform_sympy_exact():
    C = sp.Symbol("C", positive=True)
    assert sp.simplify(crossover.mstar_ratio_continuous(1) - (1 - 1 / (3 * C))) == 0
    assert sp.simplify(crossover.mstar_ratio_continuous(sp.Integer(1), sigma2=1) - (1 - 1 / (3 * C))) == 0


@pytest.mark.parametrize("C", [0.5, 1.0, 1.5, 2.0, 3.0])
def test_continuous_uniform_numeric(C):
    res = predict_mstar(40, C=C, weighting="uniform", times="continuous")
    assert res.ratio == pytest.approx(1.0 - 1.0 / (3.0 * C), rel=1e-12)
    assert res.r == pytest.approx(1.0 / 3.0, rel=1e-12)
    assert res.times is None and res.weights is None


def test_single_time_ratio_at_t16():
    assert round(crossover.single_time_ratio(0.36028, C=2.0), 3) == 0.935
    out = crossover.single_time_ratio(PAPER_GRID, C=2.0)
    assert out.shape == (26,)
    np.testing.assert_allclose(out, 1 - 1 / (2.0 * (grid_psi(PAPER_GRID) + 1)), rtol=1e-13)
    # one-point grid through predict_mstar gives the same
    assert predict_mstar(10, weighting="uniform", times=[0.36028]).ratio == pytest.approx(
        crossover.single_time_ratio(0.36028), rel=1e-14)


def test_generalizing_anchor_t16():
    der = crossover.derive_crossover()
    s = der.symbols
    val = der.gen_excess.subs({s["d"]: 50, s["sigma2"]: 1, s["psi"]: grid_psi(0.36028)})
    assert round(float(val), 3) == 6.490


def test_r_value_and_mstar_grid_helpers():
    psi = grid_psi(PAPER_GRID)
    lam = np.linspace(1.0, 3.0, 26)
    r_direct = np.sum(lam / (psi * 0.7 + 1)) / np.sum(lam)
    assert crossover.r_value(lam, psi, 0.7) == pytest.approx(r_direct, rel=1e-13)
    assert crossover.mstar_grid(80, 1.5, 0.7, lam, psi) == pytest.approx(80 * (1 - r_direct / 1.5), rel=1e-13)
    M = np.array([0.0, 10.0, 80.0])
    got = crossover.gap_grid_numeric(M, 80, 1.5, 30, 0.7, lam, psi)
    want = [gap_numpy(m, 80, 1.5, 30, 0.7, lam, PAPER_GRID) for m in M]
    np.testing.assert_allclose(got, want, rtol=1e-12)


# ---------------------------------------------------------------------------------------------
# sympy derivation
# ---------------------------------------------------------------------------------------------

def test_d_and_K_cancel():
    der = crossover.derive_crossover()
    d, K = sp.Symbol("d", positive=True), sp.Symbol("K", positive=True)
    assert d in der.gap_grid.free_symbols and d in der.gap_continuous.free_symbols
    for expr in (der.m_star_grid, der.ratio_grid, der.m_star_continuous, der.ratio_continuous):
        assert d not in expr.free_symbols and K not in expr.free_symbols


def test_root_substitutes_back_to_zero():
    der = crossover.derive_crossover()
    M = der.symbols["M"]
    for gap, root in ((der.gap_grid, der.m_star_grid), (der.gap_continuous, der.m_star_continuous)):
        back = sp.factor_terms(gap.subs(M, root).expand())
        assert sp.simplify(back) == 0
    # and the grid root is N (1 - r/C) with r as in docs/theory/capacity_crossover.md §5
    s = der.symbols
    l, L, lam, psi = s["l"], s["L"], s["lam"], s["psi_l"]
    r = (sp.Sum(lam[l] / (psi[l] * s["sigma2"] + 1), (l, 0, L - 1)) / sp.Sum(lam[l], (l, 0, L - 1)))
    assert sp.simplify(der.m_star_grid - s["N"] * (1 - r / s["C"])) == 0


def test_gap_strictly_decreasing_in_M():
    der = crossover.derive_crossover()
    s = der.symbols
    slope = sp.factor_terms(sp.diff(der.gap_grid, s["M"]).expand())
    assert slope.is_negative is True
    expected = -s["C"] * s["d"] * s["sigma2"] * sp.Sum(s["lam"][s["l"]], (s["l"], 0, s["L"] - 1)) / s["N"]
    assert sp.simplify(slope - expected) == 0
    t = s["t"]
    slope_c = sp.factor_terms(sp.diff(der.gap_continuous, s["M"]).expand())
    for lam_expr in (sp.Integer(1), t, 1 - t):
        val = slope_c.subs(s["lam_t"](t), lam_expr).doit()
        assert sp.simplify(val).is_negative is True


def test_identity_inverse_snr():
    t, s2 = sp.symbols("t sigma2", positive=True)
    lhs = 1 / ((1 - t**2) / t**2 * s2 + 1)
    rhs = t**2 / (s2 * (1 - t**2) + t**2)
    assert sp.simplify(lhs - rhs) == 0
    der = crossover.derive_crossover()
    assert sp.simplify(der.identity.lhs - lhs) == 0 and sp.simplify(der.identity.rhs - rhs) == 0
    assert sp.simplify(rhs.subs(s2, 1) - t**2) == 0  # 1/(psi_l + 1) = t_l^2 for sigma2 = 1


def test_grid_solution_on_concrete_small_grid():
    """Sum.doit on a 3-point grid vs the lambdified pipeline (mstar_grid)."""
    der = crossover.derive_crossover()
    s = der.symbols
    lam_v, psi_v = [0.5, 2.0, 1.25], [0.3, 4.0, 11.0]
    expr = der.m_star_grid.subs(s["L"], 3).doit()
    subs = {s["lam"][i]: lam_v[i] for i in range(3)} | {s["psi_l"][i]: psi_v[i] for i in range(3)}
    subs |= {s["N"]: 70, s["C"]: 1.7, s["sigma2"]: 0.4}
    want = float(expr.subs(subs))
    assert crossover.mstar_grid(70, 1.7, 0.4, lam_v, psi_v) == pytest.approx(want, rel=1e-13)


def test_latex_strings():
    der = crossover.derive_crossover()
    for key in ("gen_excess", "pmem_excess", "gap_grid", "m_star_grid", "ratio_grid", "r_grid",
                "gap_continuous", "m_star_continuous", "ratio_continuous", "r_continuous", "identity"):
        tex = der.latex[key]
        assert isinstance(tex, str) and tex
        assert "\\frac" in tex
        assert tex.count("{") == tex.count("}")
    assert "\\sum" in der.latex["m_star_grid"] and "\\int" in der.latex["m_star_continuous"]


def _quad_ratio(lam, sigma2, C):
    num = integrate.quad(lambda t: lam(t) * t * t / (sigma2 * (1 - t * t) + t * t), 0, 1,
                         epsabs=0, epsrel=1e-13)[0]
    den = integrate.quad(lam, 0, 1, epsabs=0, epsrel=1e-13)[0]
    return 1 - num / den / C


@pytest.mark.parametrize("sigma2", [1, sp.Rational(1, 2), 3])
@pytest.mark.parametrize("lam_expr, lam_fn", [("t", lambda t: t), ("1 - t", lambda t: 1 - t)])
def test_continuous_ratio_vs_quad(lam_expr, lam_fn, sigma2):
    C = sp.Symbol("C", positive=True)
    exact = crossover.mstar_ratio_continuous(lam_expr, sigma2=sigma2)
    assert exact.free_symbols == {C}
    for c_val in (1.0, 2.0):
        want = _quad_ratio(lam_fn, float(sigma2), c_val)
        assert float(exact.subs(C, c_val)) == pytest.approx(want, rel=1e-12, abs=1e-12)
        got = predict_mstar(10, C=c_val, sigma2=float(sigma2), times="continuous", weighting=lam_fn)
        assert got.ratio == pytest.approx(want, rel=1e-12, abs=1e-12)
        assert got.weighting == "callable"


def test_doctests():
    from memlab.theory import crossover_symbolic

    result = doctest.testmod(crossover, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 5 and result.failed == 0
    result = doctest.testmod(crossover_symbolic, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 3 and result.failed == 0


# ---------------------------------------------------------------------------------------------
# validity diagnostics (docs/theory/capacity_crossover.md §4)
# ---------------------------------------------------------------------------------------------

def test_window_d50_K12_and_coupon_warning():
    with pytest.warns(MemlabValidityWarning) as record:
        res = predict_mstar(50, d=50, K=12)
    assert len(res.times_outside_window) == 4
    assert res.times_outside_window == pytest.approx((0.999, 0.95908, 0.91916, 0.87924), abs=1e-12)
    assert round(res.coupon_bound, 1) == 146.5
    assert res.m_star < res.coupon_bound
    assert any("coupon" in w for w in res.warnings)
    emitted = [str(w.message) for w in record if issubclass(w.category, MemlabValidityWarning)]
    assert set(res.warnings) <= set(emitted)
    psi_min = math.log(50) ** 2 / 50
    assert res.window_psi_min == pytest.approx(psi_min, rel=1e-14)
    mask = grid_psi(PAPER_GRID) < psi_min
    frac = crossover.grid.PAPER_LAMBDA[mask].sum() / crossover.grid.PAPER_LAMBDA.sum()
    assert res.weight_outside_window == pytest.approx(frac, rel=1e-12)


@pytest.mark.parametrize("d, n_out", [(30, 4), (40, 4), (50, 4), (60, 3)])
def test_window_counts(d, n_out):
    with pytest.warns(MemlabValidityWarning, match="window"):
        res = predict_mstar(100, d=d)
    assert res.times_outside_window == pytest.approx(tuple(PAPER_GRID[:n_out]), abs=1e-12)
    assert res.coupon_bound is None


def test_no_coupon_warning_when_mstar_above_bound():
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        res = predict_mstar(1000, d=50, K=3)
    assert res.m_star > res.coupon_bound
    assert not any("coupon" in w for w in res.warnings)
    assert not any("coupon" in str(w.message) for w in record)
    assert any("window" in str(w.message) for w in record)  # the window still applies


def test_no_diagnostics_without_d():
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        res = predict_mstar(100)
    assert not record and res.warnings == () and res.times_outside_window == ()
    assert res.coupon_bound is None and res.window_psi_min is None
    with pytest.raises(ValueError, match="K=12 needs d"):   # K alone would be silently unused
        predict_mstar(100, K=12)


def test_continuous_window_fraction():
    d = 50
    with pytest.warns(MemlabValidityWarning, match="window"):
        res = predict_mstar(100, times="continuous", weighting="uniform", d=d)
    t_max = 1 / math.sqrt(1 + math.log(d) ** 2 / d)
    assert res.window_t_max == pytest.approx(t_max, rel=1e-13)
    assert res.weight_outside_window == pytest.approx(1 - t_max, rel=1e-10)
    assert res.times_outside_window == ()


def test_result_is_frozen_and_summarised():
    res = predict_mstar(50)
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.m_star = 1.0
    assert f"{res.ratio:.5f}" in str(res) and res.summary() == str(res)
    assert "arXiv:2508.17689v1 Eq. 21" in res.reference
    assert res.weighting == "paper" and res.N == 50 and res.C == 2.0 and res.sigma2 == 1.0


# ---------------------------------------------------------------------------------------------
# bad inputs
# ---------------------------------------------------------------------------------------------

T3 = [0.2, 0.5, 0.8]


def _diverging(t):
    return 1.0 / (t * t)


@pytest.mark.parametrize("kwargs, match", [
    (dict(N=0), "N"), (dict(N=-3), "N"), (dict(N=2.5), "N"), (dict(N=float("nan")), "N"),
    (dict(N=10, d=0), "d"), (dict(N=10, d=2.5), "d"), (dict(N=10, d=-50), "d"),
    (dict(N=10, d=50, K=0), "K"), (dict(N=10, d=50, K=1.5), "K"), (dict(N=10, K=-2), "K"),
    (dict(N=10, sigma2=0.0), "sigma2"), (dict(N=10, sigma2=-1.0), "sigma2"),
    (dict(N=10, sigma2=float("inf")), "sigma2"), (dict(N=10, sigma2=float("nan")), "sigma2"),
    (dict(N=10, C=0.0), "C"), (dict(N=10, C=-2.0), "C"), (dict(N=10, C=float("inf")), "C"),
    (dict(N=10, times=[0.5, 1.0], weighting="uniform"), "times"),
    (dict(N=10, times=[0.0, 0.5], weighting="uniform"), "times"),
    (dict(N=10, times=[-0.1, 0.5], weighting="uniform"), "times"),
    (dict(N=10, times=[0.2, float("nan")], weighting="uniform"), "times"),
    (dict(N=10, times=[], weighting="uniform"), "times"),
    (dict(N=10, times=[[0.2, 0.3]], weighting="uniform"), "times"),
    (dict(N=10, times="grid"), "times"),
    (dict(N=10, times=T3, weighting=[-1.0, 1.0, 1.0]), "weighting"),
    (dict(N=10, times=T3, weighting=[0.0, 0.0, 0.0]), "weighting"),
    (dict(N=10, times=T3, weighting=[1.0, float("nan"), 1.0]), "weighting"),
    (dict(N=10, times=T3, weighting=[1.0, float("inf"), 1.0]), "weighting"),
    (dict(N=10, times=T3, weighting=[1.0, 1.0]), "weighting"),
    (dict(N=10, weighting=np.ones(25)), "weighting"),
    (dict(N=10, weighting="bogus"), "weighting"),
    (dict(N=10, times=T3, weighting="paper"), "weighting"),
    (dict(N=10, times=T3, weighting=lambda t: t - 0.5), "weighting"),
    (dict(N=10, times=T3, weighting=lambda t: np.ones(2)), "weighting"),
    (dict(N=10, times="continuous", weighting="paper"), "weighting"),
    (dict(N=10, times="continuous", weighting="noise"), "not integrable"),
    (dict(N=10, times="continuous", weighting=np.ones(3)), "weighting"),
    (dict(N=10, times="continuous", weighting="bogus"), "weighting"),
    (dict(N=10, times="continuous", weighting=lambda t: -1.0), "weighting"),
    (dict(N=10, times="continuous", weighting=lambda t: float("nan")), "weighting"),
    (dict(N=10, times="continuous", weighting=lambda t: 0.0), "weighting"),
    (dict(N=10, times="continuous", weighting=_diverging), "quad"),
])
def test_bad_inputs_value_error(kwargs, match):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # quad must not merely warn
        with pytest.raises(ValueError, match=match):
            predict_mstar(**kwargs)


@pytest.mark.parametrize("kwargs, match", [
    (dict(N="10"), "N"), (dict(N=True), "N"), (dict(N=None), "N"),
    (dict(N=10, C="2"), "C"), (dict(N=10, sigma2="1"), "sigma2"),
    (dict(N=10, d="50"), "d"), (dict(N=10, d=50, K="3"), "K"),
    (dict(N=10, times=["a", "b"], weighting="uniform"), "times"),
    (dict(N=10, weighting=object()), "weighting"),
])
def test_bad_inputs_type_error(kwargs, match):
    with pytest.raises(TypeError, match=match):
        predict_mstar(**kwargs)


@pytest.mark.parametrize("call, exc, match", [
    (lambda: crossover.mstar_ratio_continuous("t*x"), ValueError, "lam_expr"),
    (lambda: crossover.mstar_ratio_continuous("(1 - t**2)/t**2"), ValueError, "lam_expr"),
    (lambda: crossover.mstar_ratio_continuous(1, sigma2=0), ValueError, "sigma2"),
    (lambda: crossover.single_time_ratio(1.0), ValueError, "t"),
    (lambda: crossover.single_time_ratio(0.5, C=0), ValueError, "C"),
    (lambda: crossover.r_value([1.0, -1.0], [1.0, 2.0]), ValueError, "weights"),
    (lambda: crossover.r_value([1.0, 1.0], [1.0, -2.0]), ValueError, "psi"),
    (lambda: crossover.mstar_grid(10, 2.0, 1.0, [1.0], [1.0, 2.0]), ValueError, "lam_array"),
])
def test_helper_bad_inputs(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


# ------------------------------------------------------------------------------------------ generated formulas
def test_generated_formula_file_is_the_derivation_printed():
    """theory/crossover_formulas.py (what a prediction evaluates, without sympy) is exactly what the
    derivation prints today: a change to the derivation without regenerating the file fails here."""
    from pathlib import Path

    from memlab.theory import crossover_formulas
    from memlab.theory.crossover_symbolic import generate_formula_source

    assert Path(crossover_formulas.__file__).read_text() == generate_formula_source()


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(0.05, 50.0), min_size=7, max_size=7))
def test_generated_formulas_equal_the_sympy_expressions_in_mpmath(vals):
    """Each printed function equals its sympy expression evaluated with mpmath (an independent evaluator)
    at drawn arguments, and the derivation's own lambdified callables."""
    from memlab.theory import crossover_formulas
    from memlab.theory.crossover_symbolic import derive_crossover

    der = derive_crossover()
    for name, (args, expr) in der.numeric.items():
        x = vals[:len(args)]
        if name == "inv_snr_t":
            x = [x[0] / 51.0, x[1]]                      # t in (0, 1)
        ref = float(sp.lambdify(args, expr, modules="mpmath")(*x))
        got = float(getattr(crossover_formulas, name)(*x))
        assert got == pytest.approx(ref, rel=1e-12, abs=1e-12 * max(1.0, *map(abs, x))), name
    s0, s1 = vals[0], vals[1]
    assert der.r_from_sums(s0, s1) == pytest.approx(crossover_formulas.r_from_sums(s0, s1), rel=1e-14)


def test_a_prediction_does_not_import_sympy_or_scipy():
    """``memlab mstar`` answers from the generated formulas: a fresh interpreter that predicts M* on the
    paper grid loads neither sympy nor scipy (nor numba, matplotlib or torch), and gets the derivation's value."""
    import subprocess
    import sys

    code = ("import sys, memlab\n"
            "r = memlab.predict_mstar(200)\n"
            "print(repr(r.m_star), sorted(m for m in ('sympy', 'scipy', 'numba', 'matplotlib', 'torch') "
            "if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split(" ", 1)
    assert out[1].strip() == "[]"
    from memlab.theory.crossover_symbolic import derive_crossover
    from memlab.theory import grid

    lam = np.asarray(grid.PAPER_LAMBDA)
    s1 = float(np.sum(lam / (grid.psi(grid.paper_grid()) + 1.0)))
    assert float(out[0]) == pytest.approx(float(derive_crossover().mstar_from_sums(200, 2.0, lam.sum(), s1)),
                                          rel=1e-14)
