"""Learning curves of the random-features model (docs/theory/random_features.md §2): closed form, GD, asymptotic,
DSM identity, read-offs."""

import math
import re

import numpy as np
import pytest

from memlab.numerics.rf_curves import asymptotic_train_loss, closed_form_curves, eigen_model, read_off_timescales
from memlab.numerics.rf_gd import simulate_gd
from memlab.numerics.rf_learning import rf_learning_curves, rf_phase_diagram
from memlab.numerics.rf_matrices import gep_matrices, true_feature_matrices
from memlab.numerics.rf_spectrum import rf_spectrum
from memlab.theory.rf_model import RFModel

TAUS = np.array([0.0, 0.3, 3.0, 30.0, 300.0, 3000.0, np.inf])


def _direct_losses(U, Ut, V, Vt, tau, d, psi_p, delta):
    """Independent route: B(tau) = Delta^{-1/2} V^T F(tau) by a matrix function, then the quadratic losses."""
    lam, Q = np.linalg.eigh(U)
    out = []
    for tv in tau:
        f = -1.0 / lam if np.isinf(tv) else -(1 - np.exp(-2 * delta * lam * tv / psi_p)) / lam
        B = (V.T @ (Q * f) @ Q.T) / math.sqrt(delta)
        tr = 1 + delta / d * np.sum((B @ U) * B) + 2 * math.sqrt(delta) / d * np.sum(B * V.T)
        te = 1 + delta / d * np.sum((B @ Ut) * B) + 2 * math.sqrt(delta) / d * np.sum(B * Vt.T)
        out.append((tr, te))
    return np.array(out).T


def test_gram_closed_form_equals_direct_matrix_function():
    m = gep_matrices(RFModel.from_sizes(60, 480, 20, 0.1, seed=2))
    tr, te = closed_form_curves(eigen_model(m), TAUS)
    tr2, te2 = _direct_losses(m.U, m.U_tilde, m.V, m.V_tilde, TAUS, 20, 24.0, m.constants.delta_t)
    assert np.allclose(tr, tr2, rtol=0, atol=1e-10) and np.allclose(te, te2, rtol=0, atol=1e-9)
    assert tr[0] == 1.0 and te[0] == 1.0


def test_delta_peak_eigenvectors_enter_no_loss():
    m = gep_matrices(RFModel.from_sizes(40, 400, 20, 0.1, seed=1))
    lam, Q = np.linalg.eigh(m.U)
    at = np.abs(lam - m.constants.s_t2) < 1e-10
    assert at.sum() == 400 - 40 - 20
    assert np.max(np.abs(Q[:, at].T @ m.V)) < 1e-12          # N'_ij, C'_ii vanish on the delta-peak
    # dropping them changes nothing: the Gram route keeps only n + d modes and equals the direct route
    assert eigen_model(m).lam.size == 60


def test_gd_exact_reproduces_closed_form():
    mats = true_feature_matrices(RFModel.from_sizes(40, 160, 10, 0.1, seed=0), k_max=120, n_nodes=128, tol=1e-10)
    em = eigen_model(mats)
    taus = np.geomspace(1, 2e3, 12)
    g = simulate_gd(mats, taus, delta_tau=0.5)
    trd, ted = closed_form_curves(em, g.tau, gd_step=0.5)       # discrete-GD factors: exact
    assert np.max(np.abs(g.train - trd)) < 1e-11 and np.max(np.abs(g.test - ted)) < 1e-11
    g2 = simulate_gd(mats, taus, delta_tau=0.02)                 # small step: gradient flow within 1e-3
    tr, te = closed_form_curves(em, g2.tau)
    assert np.max(np.abs(g2.train - tr) / tr) < 1e-3 and np.max(np.abs(g2.test - te) / te) < 1e-3


def test_gd_fresh_noise_tracks_flow_and_checkpoint_resumes(tmp_path, monkeypatch):
    mats = true_feature_matrices(RFModel.from_sizes(30, 90, 10, 0.1, seed=1), k_max=120, n_nodes=128, tol=1e-10)
    em = eigen_model(mats)
    taus = np.geomspace(5, 500, 6)
    g = simulate_gd(mats, taus, delta_tau=0.1, noise="fresh", seed=3)
    tr, te = closed_form_curves(em, g.tau)
    assert np.max(np.abs(g.train - tr)) < 0.03 and np.max(np.abs(g.test - te)) < 0.03
    ck = tmp_path / "gd.npz"
    a = simulate_gd(mats, taus[:3], delta_tau=0.1, noise="fresh", seed=3, checkpoint=ck)
    assert ck.exists()
    b = simulate_gd(mats, taus, delta_tau=0.1, noise="fresh", seed=3, checkpoint=tmp_path / "other.npz")
    assert np.array_equal(a.train, b.train[:3])
    # interrupt-and-resume: crash after 3 logged points, then resume from the atomic checkpoint
    import memlab.numerics.rf_gd as rg

    full = tmp_path / "full.npz"
    real, calls = rg.exact_losses, []

    def crashing(B, mats_):
        calls.append(1)
        if len(calls) > 3:
            raise KeyboardInterrupt("simulated crash")
        return real(B, mats_)

    monkeypatch.setattr(rg, "exact_losses", crashing)
    with pytest.raises(KeyboardInterrupt):
        simulate_gd(mats, taus, delta_tau=0.1, noise="fresh", seed=3, checkpoint=full, checkpoint_every_s=0.0)
    monkeypatch.setattr(rg, "exact_losses", real)
    c = simulate_gd(mats, taus, delta_tau=0.1, noise="fresh", seed=3, checkpoint=full)
    assert c.diagnostics["resumed_from_step"] == int(round(taus[2] / 0.1))
    assert np.array_equal(c.train, b.train) and np.array_equal(c.test, b.test)


def test_dsm_identity_against_monte_carlo_score_error():
    """L_test - 1 + Delta_t J/d = Delta_t E_score, with E_score by Monte Carlo on fresh y ~ P_t."""
    m = true_feature_matrices(RFModel.from_sizes(60, 240, 20, 0.2, seed=4), k_max=120, n_nodes=128, tol=1e-10)
    em = eigen_model(m)
    c = m.constants
    for tv in (5.0, 200.0):
        lam, Q = np.linalg.eigh(m.U)
        f = -(1 - np.exp(-2 * c.delta_t * lam * tv / 12.0)) / lam
        B = (m.V.T @ (Q * f) @ Q.T) / math.sqrt(c.delta_t)
        rng = np.random.default_rng(0)
        y = rng.standard_normal((20, 20000)) * math.sqrt(c.gamma2)
        err = np.sum((B @ np.tanh(m.W_bar @ y) + y / c.gamma2) ** 2, axis=0) / 20
        _, te = closed_form_curves(em, [tv])
        score = (te[0] - 1 + c.delta_t * em.j_over_d) / c.delta_t
        assert abs(err.mean() - score) < 4 * err.std() / math.sqrt(err.size)


def test_asymptotic_train_loss_approached_as_d_grows():
    spec = rf_spectrum(RFModel(16, 4, 0.1))
    taus = np.array([10.0, 300.0, 3000.0, np.inf])
    ref = asymptotic_train_loss(spec, taus)
    # s(0) = int dmu_s/lambda by the adaptive bulk quadrature vs the direct solve at z = 0 (the tau = inf route):
    # the quadrature now keeps all of mu_s's mass (it missed ~1.5e-5 of it with one rule per bulk)
    s0 = spec.integrate_s(lambda x: 1 / x)
    assert abs((1 - spec.constants.b_t ** 2 * 16 * s0) - ref[-1]) < 1e-7
    errs = []
    for d in (25, 50, 100):
        e = [np.max(np.abs(rf_learning_curves(RFModel(16, 4, 0.1, d=d, seed=s), taus).train - ref)) for s in range(3)]
        errs.append(np.mean(e))
    assert errs[0] > errs[1] > errs[2]


def test_tau_mem_half_rise_proportional_to_psi_n():
    taus = np.concatenate([np.geomspace(1e-1, 1e7, 500), [np.inf]])
    pns = np.array([2.0, 3.0, 4.0, 6.0, 8.0])
    reads = [read_off_timescales(rf_learning_curves(RFModel(256, pn, 0.1, d=25), taus)) for pn in pns]
    tm = np.array([r.tau_mem_half_rise for r in reads])
    tg = np.array([r.tau_gen_score_min for r in reads])
    A = np.vstack([pns, np.ones_like(pns)]).T
    coef = np.linalg.lstsq(A, tm, rcond=None)[0]
    r2 = 1 - np.sum((tm - A @ coef) ** 2) / np.sum((tm - tm.mean()) ** 2)
    assert r2 > 0.98 and coef[0] > 0
    # tau_gen_score_min grows far slower than psi_n (log-log slope < 0.3 against ~1 for tau_mem_half_rise)
    assert np.polyfit(np.log(pns), np.log(tg), 1)[0] < 0.3
    assert np.polyfit(np.log(pns), np.log(tm), 1)[0] > 0.8


def test_read_offs_against_direct_definitions():
    """tau_gen_score_min is a minimum of the score error (no logged point is lower than the curve there) and
    tau_mem_half_rise is where L_gen, interpolated linearly in log tau, equals half its final value."""
    taus = np.concatenate([np.geomspace(1e-1, 1e7, 300), [np.inf]])
    c = rf_learning_curves(RFModel(64, 8, 0.1, d=50), taus)
    ro = read_off_timescales(c)
    fin = np.isfinite(c.tau) & (c.tau > 0)
    i = int(np.argmin(c.score_error[fin]))
    assert c.tau[fin][i - 1] <= ro.tau_gen_score_min <= c.tau[fin][i + 1]
    half = 0.5 * c.gen[-1]
    assert np.interp(np.log(ro.tau_mem_half_rise), np.log(c.tau[fin]), c.gen[fin]) == pytest.approx(half, rel=1e-9)
    assert ro.gen_final == c.gen[-1] and ro.score_min == np.min(c.score_error[fin])


def test_phase_diagram_shapes_and_n_star():
    pdg = rf_phase_diagram(RFModel(8, 8, 0.1, d=12), [1e3, 1e4], psi_p_grid=[8, 32], psi_n_grid=[1, 4, 64])
    assert pdg.gen.shape == (2, 2, 3)
    assert np.all(pdg.gen[:, :, 0] > pdg.gen[:, :, -1])       # memorization (L_gen) larger at n << p
    # each cell is the closed form of the model with the grid's ratios
    one = rf_learning_curves(RFModel(32, 4, 0.1, d=12), [1e3, 1e4])
    np.testing.assert_array_equal(pdg.gen[:, 1, 1], one.gen)


@pytest.mark.parametrize("kw,err,name", [
    (dict(tau=[-1.0]), ValueError, "tau"), (dict(tau=[float("nan")]), ValueError, "tau"),
    (dict(method="magic"), ValueError, "method"), (dict(model=RFModel(0.01, 2.0, 0.1, d=10)), ValueError, "too small"),
    (dict(method="gd", tau=[1.0, float("inf")]), ValueError, "finite"),
    (dict(method="gd", model=RFModel(8.0, 2.0, 0.1, d=8), delta_tau=1e3), ValueError, "stability"),
    (dict(model=(8.0, 2.0, 0.1)), TypeError, "RFModel"),
])
def test_bad_input(kw, err, name):
    args = dict(model=RFModel(8.0, 2.0, 0.1, d=10), tau=[1.0])
    args.update(kw)
    with pytest.raises(err, match=name):
        rf_learning_curves(args.pop("model"), args.pop("tau"), **args)


def test_gd_horizon_beyond_the_step_cap_is_a_clear_error():
    """A time beyond MAX_STEPS steps must not wrap around int64 into a negative tau: a ValueError giving the cap."""
    from memlab.numerics.rf_gd import MAX_STEPS

    model = RFModel(psi_p=4, psi_n=2, t=0.1, d=5)
    step = 0.01
    for tau in (2.0 * MAX_STEPS * step, 1e300, 2.0 ** 63 * step):
        with pytest.raises(ValueError, match="tau must be at most") as err:
            rf_learning_curves(model, [1.0, tau], method="gd", delta_tau=step)
        cap = float(re.search(r"tau <= ([0-9.e+]+)", str(err.value)).group(1))
        assert cap == pytest.approx(MAX_STEPS * step, rel=1e-3)
    ok = rf_learning_curves(model, [1.0, 10.0], method="gd", delta_tau=step)
    assert np.all(ok.tau > 0) and np.all(np.diff(ok.tau) > 0)
