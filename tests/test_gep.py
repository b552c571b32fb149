"""Gaussian-equivalence constants (docs/theory/random_features.md §3): Stein identities, mpmath, closed forms,
Hermite form, limits."""

import math
import warnings

import mpmath as mp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memlab.theory.checks import MemlabValidityWarning
from memlab.theory.activations import Activation, resolve_activation
from memlab.theory.gep import gaussian_rule, gep_constants, hermite_coefficients, v_s_from_hermite

log_t = st.floats(min_value=math.log(1e-3), max_value=math.log(5.0)).map(math.exp)
sig_x = st.floats(min_value=0.3, max_value=2.5)


@settings(deadline=None, max_examples=25)
@given(t=log_t, sx=sig_x, act=st.sampled_from(["tanh", "erf"]))
def test_stein_identities(t, sx, act):
    """a_t = mu1/Gamma_t and b_t = sqrt(Delta_t) mu1/Gamma_t against the defining 2-D integrals; SM eq 48."""
    c = gep_constants(t, activation=act, sigma_x=sx)
    alpha = math.exp(-t) * sx
    # the defining a_t integral is divided by alpha: its quadrature error is amplified by 1/alpha
    assert abs(c.a_t_integral - c.a_t) <= 1e-10 * max(1.0, 1e-2 / alpha)
    assert abs(c.b_t_integral - c.b_t) <= 1e-10
    lhs = math.exp(-2 * t) * sx ** 2 * c.a_t_integral ** 2 + c.b_t_integral ** 2
    assert abs(lhs - c.mu1 ** 2) <= 1e-10
    assert abs(c.s_t2 + c.v_t2 - (c.norm2 - c.mu1 ** 2)) <= 1e-12


def _mp_expect(f, scale, weight=lambda z: 1, points=(0,)):
    mp.mp.dps = 30
    dens = lambda z: mp.exp(-z * z / 2) / mp.sqrt(2 * mp.pi)  # noqa: E731
    return float(mp.quad(lambda z: f(scale * z) * weight(z) * dens(z), [-mp.inf, *points, mp.inf]))


@pytest.mark.parametrize("t,sx", [(0.01, 1.0), (0.3, 0.5), (1.5, 2.0), (0.05, 3.0)])
def test_one_d_moments_against_mpmath(t, sx):
    c = gep_constants(t, sigma_x=sx)
    g = math.sqrt(math.exp(-2 * t) * sx ** 2 - math.expm1(-2 * t))
    assert abs(c.mu1 - _mp_expect(mp.tanh, g, weight=lambda z: z)) < 1e-12
    assert abs(c.norm2 - _mp_expect(lambda h: mp.tanh(h) ** 2, g)) < 1e-12
    assert abs(c.gamma2 - g * g) < 1e-14 * g * g


@pytest.mark.slow
@pytest.mark.parametrize("t,sx", [(0.1, 1.0), (0.7, 1.5)])
def test_v_t2_against_mpmath_nested(t, sx):
    """v_t^2 = E_u[sigma_0(alpha u)^2] - a_t^2 alpha^2 with sigma_0 by an inner mpmath quadrature."""
    mp.mp.dps = 20
    alpha, beta = math.exp(-t) * sx, math.sqrt(-math.expm1(-2 * t))
    dens = lambda z: mp.exp(-z * z / 2) / mp.sqrt(2 * mp.pi)  # noqa: E731

    def sigma0(eta):
        return mp.quad(lambda v: mp.tanh(eta + beta * v) * dens(v), [-mp.inf, 0, mp.inf])

    es0 = float(mp.quad(lambda u: sigma0(alpha * u) ** 2 * dens(u), [-mp.inf, 0, mp.inf]))
    c = gep_constants(t, sigma_x=sx)
    assert abs(c.v_t2 - (es0 - c.a_t ** 2 * alpha ** 2)) < 1e-10


@settings(deadline=None, max_examples=25)
@given(t=log_t, sx=sig_x)
def test_erf_closed_forms(t, sx):
    """Closed forms of docs/theory/random_features.md §3: mu1, ||sigma||^2 and E sigma_0^2 of erf."""
    c = gep_constants(t, activation="erf", sigma_x=sx)
    g2 = c.gamma2
    a2 = (math.exp(-t) * sx) ** 2
    assert abs(c.mu1 - 2 * math.sqrt(g2) / math.sqrt(math.pi * (1 + 2 * g2))) < 1e-12
    assert abs(c.norm2 - 2 / math.pi * math.asin(2 * g2 / (1 + 2 * g2))) < 1e-12
    es0 = c.v_t2 + c.a_t ** 2 * a2
    assert abs(es0 - 2 / math.pi * math.asin(2 * a2 / (1 + 2 * g2))) < 1e-12


@settings(deadline=None, max_examples=20)
@given(t=log_t, sx=sig_x)
def test_relu_closed_forms_centred(t, sx):
    """relu with the kink split against the closed forms; centring subtracts mu0^2 from both second moments."""
    c = gep_constants(t, activation="relu", sigma_x=sx, center=True)
    g2 = c.gamma2
    g = math.sqrt(g2)
    a2 = (math.exp(-t) * sx) ** 2
    mu0 = g / math.sqrt(2 * math.pi)
    cc = a2 / g2
    assert abs(c.mu0 - mu0) < 1e-12
    assert abs(c.mu1 - g / 2) < 1e-12
    assert abs(c.norm2 - (g2 / 2 - mu0 ** 2)) < 1e-12
    es0 = g2 / (2 * math.pi) * (math.sqrt(1 - cc * cc) + cc * (math.pi - math.acos(cc)))
    assert abs(c.v_t2 + c.a_t ** 2 * a2 - (es0 - mu0 ** 2)) < 1e-11
    assert abs(c.b_t_integral - c.b_t) < 1e-11


def test_relu_without_center_is_rejected_with_reason():
    with pytest.raises(ValueError, match=r"mu0.*outlier.*center=True"):
        gep_constants(0.1, activation="relu")
    with pytest.raises(ValueError, match="center=True"):
        gep_constants(0.1, activation="gelu")


@pytest.mark.parametrize("act,center", [("tanh", False), ("erf", False), ("gelu", True)])
@pytest.mark.parametrize("t,sx", [(0.02, 1.0), (0.5, 0.7), (2.0, 1.8)])
def test_hermite_form_matches_quadrature(act, center, t, sx):
    """v_t^2 and s_t^2 from the Hermite series (docs/theory/random_features.md §3) equal the direct quadrature."""
    c = gep_constants(t, activation=act, sigma_x=sx, center=center)
    ch = hermite_coefficients(t, activation=act, sigma_x=sx, center=center, k_max=120)
    assert abs(ch[0]) < 1e-12                     # c_0 = mu0 = 0 (after centring)
    assert abs(ch[1] - c.mu1) < 1e-12             # c_1 = mu1
    rho2 = math.exp(-2 * t) * sx ** 2 / c.gamma2
    v2, s2 = v_s_from_hermite(ch, rho2)
    assert abs(v2 - c.v_t2) < 1e-10
    assert abs(s2 - c.s_t2) < 1e-10
    assert abs(float(np.sum(ch ** 2)) - c.norm2) < 1e-10      # Parseval


def test_tanh_sanity_values_and_unit_variance_invariance():
    c1, c2 = gep_constants(0.01), gep_constants(2.0)
    assert round(c1.mu1, 4) == 0.6057 and round(c1.norm2, 4) == 0.3943 and round(c1.mustar2, 4) == 0.0274
    # sigma_x = 1: Gamma_t = 1, so mu1, ||sigma||^2, a_t and v^2 + s^2 do not depend on t
    assert abs(c1.gamma2 - 1) < 1e-15 and abs(c2.gamma2 - 1) < 1e-15
    assert abs(c1.mu1 - c2.mu1) < 1e-13 and abs(c1.norm2 - c2.norm2) < 1e-13
    assert abs((c1.v_t2 + c1.s_t2) - (c2.v_t2 + c2.s_t2)) < 1e-13


@pytest.mark.parametrize("sx", [0.5, 1.0, 2.0])
def test_limits(sx):
    """t -> 0: b_t -> 0, v^2 -> mu*^2(sigma_x), s^2 = O(Delta_t); t -> inf: v^2 -> 0."""
    small = [gep_constants(t, sigma_x=sx) for t in (1e-3, 1e-4, 1e-5)]
    for c in small:
        assert c.b_t <= 2 * math.sqrt(c.delta_t) * c.mu1
    ratios = [c.s_t2 / c.delta_t for c in small]
    assert max(ratios) / min(ratios) < 1.01                   # s^2 / Delta_t tends to a constant
    assert abs(small[-1].v_t2 - small[-1].mustar2) < 1e-4
    # mu*^2 at t = 0 is E tanh(sigma_x z)^2 - E[tanh(sigma_x z) z]^2
    mustar0 = _mp_expect(lambda h: mp.tanh(h) ** 2, sx) - _mp_expect(mp.tanh, sx, weight=lambda z: z) ** 2
    assert abs(small[-1].v_t2 - mustar0) < 1e-4
    big = [gep_constants(t, sigma_x=sx).v_t2 for t in (2.0, 4.0, 8.0)]
    assert big[0] > big[1] > big[2] and big[2] < 1e-8


def test_user_callable_and_kinked_activation():
    c0 = gep_constants(0.2, sigma_x=1.3)
    c1 = gep_constants(0.2, sigma_x=1.3, activation=lambda x: np.tanh(x))
    for f in ("mu1", "norm2", "v_t2", "s_t2"):
        assert abs(getattr(c0, f) - getattr(c1, f)) < 1e-13
    # hard tanh (odd, kinks at +-1) declared with its kinks, against mpmath split at the kinks
    ht = Activation("hardtanh", lambda x: np.clip(x, -1.0, 1.0), kinks=(-1.0, 1.0), odd=True)
    c = gep_constants(0.3, activation=ht)
    g = math.sqrt(c.gamma2)
    clip = lambda h: mp.mpf(max(-1, min(1, h)))  # noqa: E731
    pts = (-1 / g, 0, 1 / g)
    assert abs(c.mu1 - _mp_expect(clip, g, weight=lambda z: z, points=pts)) < 1e-11
    assert abs(c.norm2 - _mp_expect(lambda h: clip(h) ** 2, g, points=pts)) < 1e-11
    assert resolve_activation(lambda x: np.sin(x)).odd and not resolve_activation("relu").odd


def test_centred_activation_function_has_zero_mean():
    c = gep_constants(0.3, activation="gelu", sigma_x=1.4, center=True)
    f = c.activation_function()
    z, w = gaussian_rule(resolve_activation("gelu"), np.zeros(1), 1.0, 200)
    assert abs(float(w[0] @ f(math.sqrt(c.gamma2) * z[0]))) < 1e-13
    assert abs(c.mu0) > 0.1


@settings(deadline=None, max_examples=30)
@given(eta=st.floats(-3, 3), beta=st.floats(0.05, 3), k=st.integers(0, 8))
def test_gaussian_rule_integrates_polynomials(eta, beta, k):
    """The kink-split rule is a quadrature for N(0, 1): E v^k = (k-1)!! for even k, 0 for odd k."""
    v, w = gaussian_rule(resolve_activation("relu"), np.array([eta]), beta, 64)
    exact = 0.0 if k % 2 else float(np.prod(np.arange(k - 1, 0, -2))) if k else 1.0
    assert abs(float((w * v ** k).sum()) - exact) < 1e-11 * max(1.0, exact)


def test_adaptive_rule_reports_its_error():
    c = gep_constants(0.1, sigma_x=3.0)
    assert c.quad_error < 1e-12 and c.n_nodes >= 192
    c_fixed = gep_constants(0.1, sigma_x=3.0, n_nodes=40)
    assert c_fixed.n_nodes == 40 and c_fixed.quad_error > 1e-8       # 40 nodes are not enough at Gamma = 3
    assert abs(c_fixed.mu1 - c.mu1) <= 2 * c_fixed.quad_error + 1e-12


def test_unresolved_quadrature_warns():
    """An undeclared kink at Gamma_t ~ 1 is not resolved by the smooth rule: warning with quad_error."""
    with pytest.warns(MemlabValidityWarning, match="quad_error"):
        gep_constants(0.001, activation=lambda x: np.abs(x), sigma_x=1.0, center=True)


@pytest.mark.parametrize("kwargs,err,name", [
    (dict(t=0.0), ValueError, "t"), (dict(t=-1.0), ValueError, "t"), (dict(t=float("nan")), ValueError, "t"),
    (dict(t=float("inf")), ValueError, "t"), (dict(t=0.1, sigma_x=0.0), ValueError, "sigma_x"),
    (dict(t=0.1, center="yes"), TypeError, "center"), (dict(t=0.1, n_nodes=5), ValueError, "n_nodes"),
    (dict(t=0.1, activation="softsign"), ValueError, "activation"),
    (dict(t=0.1, activation=3), TypeError, "activation"),
    (dict(t=0.1, activation=lambda x: float(x)), ValueError, "vectorised"),
    (dict(t=0.1, activation=lambda x: np.ones(3)), ValueError, "vectorised"),
    (dict(t=0.1, activation=lambda x: np.where(x > 0, 1.0, np.nan)), ValueError, "finite"),
])
def test_bad_input(kwargs, err, name):
    with pytest.raises(err, match=name):
        gep_constants(**kwargs)


@pytest.mark.parametrize("n", [20, 96, 192, 384, 512, 640])
def test_gauss_hermite_rule_against_scipy_and_exact_moments(n):
    """The rule memlab builds without scipy (Golub-Welsch + Newton + recurrence weights, n <= 512) equals
    scipy's ``roots_hermitenorm`` (an independent implementation) node for node, every weight to 1e-11
    relative (also the tiny tail weights the Hermite series multiplies by He_k^2), and integrates the even
    moments E z^{2k} = (2k-1)!! exactly."""
    from scipy import special

    from memlab.theory.activations import resolve_activation
    from memlab.theory.gep import gaussian_rule

    z, w = (a[0] for a in gaussian_rule(resolve_activation("tanh"), 0.0, 1.0, n))
    zs, ws = special.roots_hermitenorm(n)
    ws = ws / ws.sum()
    assert np.max(np.abs(z - zs)) < 1e-13 * max(1.0, np.abs(zs).max())
    keep = ws > 1e-290                                   # below that both underflow towards 0
    assert np.max(np.abs(w[keep] - ws[keep]) / ws[keep]) < 1e-11
    for k in range(1, 16):
        assert np.sum(w * z ** (2 * k)) == pytest.approx(float(np.prod(np.arange(1, 2 * k, 2))), rel=1e-12)


def test_kinked_activation_at_large_t_converges_without_warning():
    """At t = 50 the pre-activation is N(0, Gamma_t^2) with Gamma_t = 1 to float64; relu's moments are then
    mu0 = 1/sqrt(2 pi), E relu^2 = 1/2, mu1 = 1/2 in closed form.  The ill-conditioned a_t_integral diagnostic
    (it divides by alpha = e^{-50}) must not stop the rule from converging or raise a warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", MemlabValidityWarning)
        c = gep_constants(50.0, activation="relu", center=True)
    assert c.quad_error < 1e-12
    assert c.mu0 == pytest.approx(1 / math.sqrt(2 * math.pi), rel=1e-12)
    assert c.mu1 == pytest.approx(0.5, rel=1e-12)
    assert c.norm2 == pytest.approx(0.5 - 1 / (2 * math.pi), rel=1e-12)


def test_unresolvable_quadrature_raises_instead_of_returning():
    """erf at Gamma_t = 100 is a step the smooth rule cannot resolve to three digits: no constants come back."""
    with pytest.raises(ValueError, match="quad_error"):
        gep_constants(1.0, activation="erf", sigma_x=100.0)


@pytest.mark.parametrize("t", [50.0 + 1e-9, 1e3, 1e300])
def test_time_beyond_the_horizon_is_rejected(t):
    with pytest.raises(ValueError, match=r"t must be a finite real number in \(0, 50\]"):
        gep_constants(t)
