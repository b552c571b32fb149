"""Asymptotic test loss, generalization gap and score error (docs/theory/random_features.md §9).

Independent routes: Theorem 3.1's solver (one-point traces), the finite-d Gaussian-equivalent matrices (two-point
traces at complex z and the closed-form learning curves of §2, extrapolated in 1/d), the beta-derivative of the
one-point fixed point (implicit and finite difference), the existing asymptotic training loss of §2, and the
direct form of the score error (Stein) against the DSM identity.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from memlab import RFModel, gep_matrices, rf_learning_curves, rf_spectrum
from memlab.numerics.rf_curves import asymptotic_train_loss, read_off_timescales
from memlab.numerics.rf_spectrum import solve_stieltjes
from memlab.numerics.rf_test_loss import (AsymptoticLosses, TwoPointConvergenceError, asymptotic_losses,
                                          two_point_trace)
from memlab.theory.rf_two_point import PARAMS, derive_two_point

TAUS = np.array([0.0, 10.0, 100.0, 1e3, 1e4, np.inf])


def _consts(model):
    """The derivation's constants in the order of PARAMS (c_a = e^{-2t} a_t^2 sigma_x^2, docs §9 step 1)."""
    c = model.constants
    sx2 = c.sigma_x ** 2
    return dict(pp=model.psi_p, pn=model.psi_n, b2=c.b_t ** 2, v2=c.v_t2, s2=c.s_t2,
                ca=math.exp(-2 * model.t) * c.a_t ** 2 * sx2)


@pytest.mark.parametrize("model", [RFModel(16, 4, 0.1), RFModel(64, 8, 0.01), RFModel(8, 16, 0.3)])
def test_one_point_traces_equal_theorem_3_1(model):
    z = np.array([0.05 + 0.3j, 3.0 + 2.0j, 0.2 + 1e-3j, 40.0 + 5.0j, -0.3 + 0.2j])
    _, s, _ = two_point_trace(model, z, z)
    ref = solve_stieltjes(model, z.real, eps=z.imag)
    np.testing.assert_allclose(s, ref.s, rtol=1e-10)


def _fixed_point_from_theorem_3_1(model, z):
    """(delta, m) recovered from Theorem 3.1's (q, s): s beta = 1 - alpha q with u = 1/(1 + delta)."""
    P = _consts(model)
    ref = solve_stieltjes(model, np.array([z.real]), eps=np.array([abs(z.imag) or 1e-13]))
    q, s = complex(ref.q[0]), complex(ref.s[0])
    if z.imag < 0:
        q, s = q.conjugate(), s.conjugate()
    u = (1 - (P["s2"] - z) * q - s * P["b2"]) / (s * P["ca"] + P["v2"] * q)
    beta = P["b2"] + P["ca"] * u
    return 1 / u - 1, q * beta


def _newton(f, dl, m, z, P):
    for _ in range(30):
        F1, F2, a, b, c, d, _, _ = f["system"](dl, m, z, *P)
        det = a * d - b * c
        dl, m = dl + (-F1 * d + F2 * b) / det, m + (-F2 * a + F1 * c) / det
    return dl, m


@pytest.mark.parametrize("z", [0.0 + 0.0j, 0.1 + 0.2j, 5.0 - 3.0j])
def test_diagonal_two_point_is_minus_beta_derivative(z):
    """g(z, z) = -ds/db2 three ways: the numerics' diagonal, the derivation's implicit derivative at the point
    recovered from Theorem 3.1, and a central finite difference of the fixed point in b2 (docs §9 step 5)."""
    model = RFModel(16, 4, 0.1)
    f = derive_two_point().functions
    P = _consts(model)
    dl, m = _fixed_point_from_theorem_3_1(model, z)
    args = tuple(P[k] for k in PARAMS)
    F1, F2 = f["system"](dl, m, z, *args)[:2]
    assert abs(F1) + abs(F2) < 1e-9
    g_diag = f["two_point_diag"](dl, m, z, *args)
    implicit = f["minus_ds_db2"](dl, m, z, *args)
    h = 1e-5 * P["b2"]
    s_of = []
    for sign in (1, -1):
        Q = dict(P, b2=P["b2"] + sign * h)
        qargs = tuple(Q[k] for k in PARAMS)
        a, b = _newton(f, dl, m, z, qargs)
        s_of.append(f["one_point"](a, b, z, *qargs)[1])
    fd = -(s_of[0] - s_of[1]) / (2 * h)
    g_num = two_point_trace(model, z, z)[0]
    assert abs(g_diag - implicit) < 1e-10 * abs(implicit)
    assert abs(fd - implicit) < 1e-6 * abs(implicit)
    assert abs(g_num - implicit) < 1e-8 * abs(implicit)
    # off the diagonal, the divided-difference formula tends to the diagonal one
    g_near = two_point_trace(model, z + 1e-5 * (1 + abs(z)), z)[0]
    assert abs(g_near - g_diag) < 1e-3 * abs(g_diag)


def test_two_point_against_finite_d_traces():
    """(1/p) Tr[G(z1) K G(z2) K] of seeded finite-d GEP matrices approaches g(z1, z2) as d grows."""
    model = RFModel(8, 2, 0.1)
    z1, z2 = 0.3 + 0.4j, 2.0 - 1.0j
    g, s1, _ = two_point_trace(model, [z1, z1], [z2, z1])
    errs = []
    for d in (25, 100):
        vals = []
        for seed in range(3):
            M = gep_matrices(model.replace(d=d, seed=seed))
            eye = np.eye(M.p)
            G1 = np.linalg.solve(M.U - z1 * eye, M.K)
            G2 = np.linalg.solve(M.U - z2 * eye, M.K)
            vals.append([np.trace(G1 @ G2) / M.p, np.trace(G1 @ G1) / M.p, np.trace(G1) / M.p])
        errs.append(np.abs(np.mean(vals, axis=0) - np.r_[g, s1[0]]) / np.abs(np.r_[g, s1[0]]))
    assert np.all(errs[1] < errs[0] / 3)
    assert np.all(errs[1] < 0.02)


@pytest.mark.parametrize("model", [RFModel(16, 4, 0.1), RFModel(64, 8, 0.01)])
def test_train_loss_equals_the_theorem_3_1_route(model):
    r = asymptotic_losses(model, TAUS)
    ref = asymptotic_train_loss(rf_spectrum(model), TAUS)
    np.testing.assert_allclose(r.train, ref, rtol=0, atol=3e-8)
    assert r.diagnostics["converged"] and r.diagnostics["quad_error"] <= r.diagnostics["tol"]
    assert r.diagnostics["infinity_route_diff"] < 1e-9


def test_losses_against_gep_closed_form_extrapolated_in_inverse_d():
    """The d = 25, 50, 100 closed forms (3 seeds each) approach the asymptotic curves; their 1/d extrapolation
    lands on them."""
    model = RFModel(16, 4, 0.1)
    taus = np.array([10.0, 100.0, 1e3, 1e4, np.inf])
    a = asymptotic_losses(model, taus)
    ds = np.array([25.0, 50.0, 100.0])
    means = {k: [] for k in ("test", "gen")}     # score_error is the same affine map of test for both routes
    for d in ds:
        runs = [rf_learning_curves(model.replace(d=int(d), seed=s), taus) for s in range(3)]
        for k in means:
            means[k].append(np.mean([getattr(c, k) for c in runs], axis=0))
    A = np.vstack([np.ones(ds.size), 1 / ds]).T
    for k in means:
        mk = np.array(means[k])
        ref = getattr(a, k)
        # L_gen is small early on: its error is measured against its final value
        scale = np.abs(a.gen[-1]) if k == "gen" else np.abs(ref)
        rel = np.abs(mk - ref) / scale
        assert np.all(rel[-1] < rel[0] + 1e-4), k
        assert np.all(rel[-1] < 0.01), (k, rel[-1])
        ext = np.linalg.lstsq(A, mk, rcond=None)[0][0]
        assert np.all(np.abs(ext - ref) / scale < 4e-3), (k, ext, ref)


def test_score_error_direct_form_equals_dsm_identity():
    """E_score from (1/d) E||B sigma(W y) + y/Gamma^2||^2 with E[sigma(W y) y^T] = mu1 Gamma W (Stein), against the
    DSM identity (L_test - 1 + Delta_t/Gamma^2)/Delta_t used by the curves."""
    model = RFModel(32, 4, 0.05, sigma_x=1.3)
    r = asymptotic_losses(model, TAUS)
    c = model.constants
    tr, pp = r.traces, model.psi_p
    direct = (c.b_t ** 2 / c.delta_t * pp * (c.mu1 ** 2 * tr["FKFK"] + (c.norm2 - c.mu1 ** 2) * tr["F2K"])
              + 2 * c.mu1 * c.b_t / (math.sqrt(c.gamma2) * math.sqrt(c.delta_t)) * pp * tr["FK"] + 1 / c.gamma2)
    np.testing.assert_allclose(r.score_error, direct, rtol=1e-12)
    assert np.all(r.score_error >= 0) and np.all(r.test >= r.bayes_floor - 1e-12)
    assert r.score_error[0] == pytest.approx(1 / c.gamma2)     # B = 0: the error is E||y||^2/(d Gamma^4)


def test_early_time_slope():
    """L_train = L_test = 1 - 4 Delta_t b_t^2 tau + O(tau^2) (docs/theory/random_features.md §2)."""
    model = RFModel(16, 4, 0.1)
    tau = np.array([1e-6, 2e-6])
    r = asymptotic_losses(model, tau)
    c = model.constants
    slope = -4 * c.delta_t * c.b_t ** 2
    for y in (r.train, r.test):
        est = (y - 1) / tau
        assert abs(2 * est[0] - est[1] - slope) < 1e-6 * abs(slope)


def test_quadrature_diagnostics_and_failure():
    model = RFModel(16, 4, 0.1)
    lo = asymptotic_losses(model, TAUS, n_nodes=48, tol=1e-2, max_doublings=0)
    hi = asymptotic_losses(model, TAUS, n_nodes=192, tol=1.0, max_doublings=0)
    err = max(np.max(np.abs(lo.test - hi.test)), np.max(np.abs(lo.train - hi.train)))
    assert err <= 10 * lo.diagnostics["quad_error"] + 1e-12
    with pytest.raises(TwoPointConvergenceError) as info:
        asymptotic_losses(model, TAUS, n_nodes=16, tol=1e-15, max_doublings=0)
    assert info.value.diagnostics["quad_error"] > 1e-15 and "n_nodes" in str(info.value)


def test_learning_curves_api_and_read_offs():
    model = RFModel(64, 8, 0.1, d=400)
    taus = np.concatenate([np.geomspace(0.1, 1e6, 200), [np.inf]])
    curves = rf_learning_curves(model, taus, method="asymptotic")
    assert curves.test is not None and curves.gen is not None and curves.score_error is not None
    assert curves.diagnostics["converged"]
    ro = read_off_timescales(curves)
    from memlab import predict_timescales

    pred = predict_timescales(model, numeric=False)
    # the theory read-offs sit near the formulas (docs/theory/random_features.md §9 table: 16.0 vs 15.0, 4923 vs 5899)
    assert abs(ro.tau_gen_score_min / pred.tau_gen_formula - 1) < 0.15
    assert 0.6 < ro.tau_mem_half_rise / pred.tau_mem_formula < 1.2
    assert curves.bayes_floor == pytest.approx(math.exp(-2 * 0.1))
    aniso = rf_learning_curves(RFModel(16, 4, 0.1, covariance=([0.5, 1.5], [0.5, 0.5])), [1.0, np.inf],
                               method="asymptotic")
    assert aniso.test is None and "isotropic" in aniso.diagnostics["note"]
    with pytest.raises(ValueError, match="covariance"):
        asymptotic_losses(RFModel(16, 4, 0.1, covariance=([0.5, 1.5], [0.5, 0.5])), [1.0])
    with pytest.raises(ValueError, match="z1"):
        two_point_trace(RFModel(16, 4, 0.1), 1.0, 1j)


@settings(max_examples=6, deadline=None, derandomize=True, database=None)
@given(psi_p=st.floats(2.0, 64.0), psi_n=st.floats(0.5, 16.0), t=st.floats(0.02, 1.0))
def test_curve_structure(psi_p, psi_n, t):
    r = asymptotic_losses(RFModel(psi_p, psi_n, t), np.concatenate([[0.0], np.geomspace(1e-2, 1e7, 40), [np.inf]]))
    assert isinstance(r, AsymptoticLosses)
    assert r.train[0] == 1.0 and r.test[0] == 1.0
    assert np.all(np.diff(r.train) <= 1e-10) and np.all(r.train > 0)
    assert np.all(r.test >= r.bayes_floor - 1e-10) and np.all(r.score_error >= -1e-10)
    assert np.all(np.isfinite(r.test)) and r.diagnostics["infinity_route_diff"] < 1e-8


def test_theory_figures_and_cli(tmp_path):
    from memlab.cli import main
    from memlab.figures import rf_theory_figure, score_exponent_figure

    tau = np.concatenate([np.geomspace(0.1, 1e6, 60), [np.inf]])
    f = rf_theory_figure(RFModel(16, 4, 0.1), [2.0, 4.0], tau=tau, marker_d=10, out=tmp_path)
    assert [p.suffix for p in f.paths] == [".png", ".pdf"] and "tau_gen_score_min" in f.table()
    assert len(f.curves) == 2 and f.curves[0].method == "asymptotic" and f.finite[0].model.d == 10
    f.close()
    e = score_exponent_figure(RFModel(16, 4, 0.1), [4.0, 8.0, 16.0], finite_d=0)
    assert e.fit["gamma"] < 0 and e.score_min_finite is None and "exponent" in e.summary()
    e.close()
    assert main(["plot", "rf-theory", "--psi-p", "8", "--psi-n", "2", "--d", "5", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "rf_theory_psip8_t0.1.png").exists()
