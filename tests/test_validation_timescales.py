"""Validation layer II: RF training in PyTorch vs the closed form, the DDPM n ladder, read-offs
(docs/theory/validation.md §3-§4)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")  # the test extra installs torch; without it the validation layer is absent

from memlab.numerics.readoffs import argmin_log_parabola, fit_power_law  # noqa: E402
from memlab.theory.rf_model import RFModel  # noqa: E402
from memlab.validation import runtime  # noqa: E402
from memlab.validation.ddpm_torch import (DDPMConfig, ResidualMLP, kl_proxy, n_params_formula,  # noqa: E402
                                          sample_two_mode, train_ddpm, two_mode_log_density, two_mode_score)
from memlab.validation.rf_torch import RFTrainConfig, train_rf  # noqa: E402
from memlab.validation.timescales import (ladder_checkpoints, read_tau_onset, read_tau_plateau,  # noqa: E402
                                          study_from_json, timescale_study)

TINY = DDPMConfig(n_checkpoints=6, first_checkpoint=10, n_gen=64, sample_steps=20, n_score=256, width=16)


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Small models run fastest on one thread, and several torch threads slow down badly on a busy machine."""
    with runtime.threads(1):
        yield


# ------------------------------------------------------------------------------------- exact score / data
@settings(max_examples=40, deadline=None)
@given(x=st.lists(st.floats(-4, 4), min_size=8, max_size=8), t=st.floats(1e-3, 3.0))
def test_exact_score_matches_autograd_of_log_density(x, t):
    xt = torch.tensor([x], dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(two_mode_log_density(xt, t).sum(), xt)
    s = two_mode_score(xt.detach(), t)
    assert torch.allclose(g, s, rtol=1e-10, atol=1e-10)


def test_log_density_normalised_and_matches_mixture():
    # independent form: 1/2 N(a mu, I) + 1/2 N(-a mu, I) written out directly, in d = 2 where a grid integral is cheap
    t = 0.3
    a = math.exp(-t)
    g = np.linspace(-9, 9, 601)
    X, Y = np.meshgrid(g, g)
    pts = torch.tensor(np.c_[X.ravel(), Y.ravel()])
    lp = two_mode_log_density(pts, t).numpy()
    direct = 0.5 * (np.exp(-0.5 * ((X.ravel() - a) ** 2 + (Y.ravel() - a) ** 2))
                    + np.exp(-0.5 * ((X.ravel() + a) ** 2 + (Y.ravel() + a) ** 2))) / (2 * np.pi)
    np.testing.assert_allclose(np.exp(lp), direct, rtol=1e-12, atol=1e-300)
    assert abs(np.exp(lp).sum() * (g[1] - g[0]) ** 2 - 1.0) < 1e-6


def test_two_mode_stream_is_nested_and_has_the_right_moments():
    big = sample_two_mode(4000, 8, seed=3)
    np.testing.assert_array_equal(sample_two_mode(50, 8, seed=3), big[:50])
    # E x = 0, E x x^T = I + mu mu^T (mu = 1)
    assert np.abs(big.mean(0)).max() < 4 * math.sqrt(2.0 / 4000)
    cov = big.T @ big / 4000
    np.testing.assert_allclose(cov, np.eye(8) + np.ones((8, 8)), atol=0.15)


@settings(max_examples=10, deadline=None)
@given(d=st.integers(1, 12), w=st.integers(2, 40))
def test_residual_mlp_parameter_count(d, w):
    m = ResidualMLP(d, w)
    assert sum(p.numel() for p in m.parameters()) == n_params_formula(d, w)


def test_residual_mlp_default_size():
    assert sum(p.numel() for p in ResidualMLP(8, 128).parameters()) == 102_024 == n_params_formula(8, 128)


@pytest.mark.parametrize("seed, d, width", [(0, 8, 128), (7, 3, 17)])
def test_residual_mlp_generator_init_equals_global_seed_init(seed, d, width):
    """The seeded initialisation (explicit torch.Generator) gives exactly the parameters of the global-seed
    construction ``torch.manual_seed(seed); ResidualMLP(d, width)``, and leaves the global random state alone."""
    with torch.random.fork_rng(devices=[]):                     # this test leaves no global state behind
        torch.manual_seed(seed)
        old = ResidualMLP(d, width).state_dict()
        torch.manual_seed(12345)
        before = torch.get_rng_state()
        new = ResidualMLP(d, width, seed=seed).state_dict()
        assert torch.equal(torch.get_rng_state(), before)
    assert list(new) == list(old)
    for k in old:
        assert torch.equal(new[k], old[k]), k


def test_kl_proxy_against_monte_carlo_kl():
    rng = np.random.default_rng(0)
    exact = sample_two_mode(3000, 8, seed=11)
    assert abs(kl_proxy(exact)) < 0.15
    # KL(N(0, I) || P_0) by plain Monte Carlo of log N(0, I) - log P_0 (1e5 points), against the kNN estimate
    z = rng.standard_normal((100_000, 8))
    log_q = -0.5 * (z * z).sum(1) - 4 * math.log(2 * math.pi)
    log_p = two_mode_log_density(torch.tensor(z), 0.0).numpy()
    kl = float(np.mean(log_q - log_p))
    est = kl_proxy(rng.standard_normal((3000, 8)))
    assert kl > 1.0 and abs(est - kl) < 0.2
    # collapse onto 16 points is punished
    assert kl_proxy(np.repeat(exact[:16], 20, axis=0) + 1e-3 * rng.standard_normal((320, 8))) > 10


# ----------------------------------------------------------------------------------------- read-offs
@settings(max_examples=50, deadline=None)
@given(s0=st.floats(30, 3e4), curv=st.floats(0.1, 5))
def test_quality_min_read_off_recovers_parabola_minimum(s0, curv):
    s = np.geomspace(10, 1e5, 25)
    q = curv * (np.log(s) - math.log(s0)) ** 2 + 1.0
    assert argmin_log_parabola(s, q) == pytest.approx(s0, rel=1e-8)


def test_quality_min_read_off_end_point_and_nan():
    s = np.array([1.0, 10.0, 100.0])
    assert argmin_log_parabola(s, [3.0, 2.0, 1.0]) == 100.0
    assert argmin_log_parabola(s, [np.nan, 1.0, 2.0]) == 10.0
    with pytest.raises(ValueError, match="finite value"):
        argmin_log_parabola(s, [np.nan] * 3)


@settings(max_examples=50, deadline=None)
@given(s_entry=st.floats(30, 3e4), noise=st.floats(0, 0.2), seed=st.integers(0, 10_000))
def test_read_tau_plateau_finds_entry_despite_noisy_floor(s_entry, noise, seed):
    # power-law descent onto a floor of 1 with multiplicative noise up to +-20% on the floor: the argmin wanders,
    # the first point within 1.5x of the minimum is the first checkpoint past the descent's 1.5x crossing
    s = np.geomspace(10, 1e6, 41)
    q = 1.0 + np.maximum(s_entry / s, 0) ** 2 * 10
    q = q * (1 + noise * np.random.default_rng(seed).uniform(-1, 1, s.size))
    got = read_tau_plateau(s, q)
    i = int(np.nonzero(s == got)[0][0])
    assert q[i] <= 1.5 * q.min() and np.all(q[:i] > 1.5 * q.min())
    assert got >= s_entry * math.sqrt(0.5 * 0.8 / 10) / 1.6      # not before the descent has nearly ended


@settings(max_examples=50, deadline=None)
@given(s0=st.floats(50, 5e4), fthr=st.sampled_from([0.01, 0.05, 0.1]))
def test_read_tau_onset_log_linear_interpolation(s0, fthr):
    s = np.geomspace(10, 1e6, 31)
    f = 0.5 * (np.log(s) - math.log(s0))              # linear in log tau: the interpolation is exact
    expect = s0 * math.exp(2 * fthr)
    assert read_tau_onset(s, f, fthr) == pytest.approx(expect, rel=1e-9)
    assert read_tau_onset(s, np.zeros_like(s), fthr) is None


@settings(max_examples=30, deadline=None)
@given(a=st.floats(1, 1e4), gamma=st.floats(0.5, 2.0))
def test_fit_power_law_recovers_slope_and_exponent(a, gamma):
    n = np.array([16.0, 32, 64, 128, 256])
    f = fit_power_law(n, a * n)
    assert f["a"] == pytest.approx(a, rel=1e-12) and f["r2"] == pytest.approx(1.0) and f["gamma"] == pytest.approx(1.0)
    g = fit_power_law(n, a * n ** gamma)
    assert g["gamma"] == pytest.approx(gamma, rel=1e-9) and g["r2_log"] == pytest.approx(1.0)
    if abs(gamma - 1) > 0.3:
        assert g["r2"] < 0.995


def test_ladder_checkpoints_common_grid_and_scaled_horizons():
    ck = ladder_checkpoints([16, 64], 6400, 20, first=10)
    assert ck[64][-1] == 6400 and ck[16][-1] == 1600
    assert set(ck[16][:-1]) <= set(ck[64])
    assert all(np.diff(ck[16]) > 0)


# ------------------------------------------------------------------------------------------ bad input
@pytest.mark.parametrize("kw, match", [
    (dict(ns=[]), "at least one"), (dict(ns=[0, 8]), "ns"), (dict(ns=[-4]), "ns"), (dict(ns=[8, 8]), "repeat"),
    (dict(ns=[8], width=0), "width"), (dict(ns=[8], steps=5), "checkpoint"), (dict(ns=[8], device="tpu"), "device"),
    (dict(ns=[8], optimizer="lbfgs"), "optimizer"), (dict(ns=[8], fthr=1.5), "fthr"),
])
def test_timescale_study_bad_input(kw, match):
    ns, steps = kw.pop("ns"), kw.pop("steps", 200)
    options = {k: kw.pop(k) for k in ("device", "fthr") if k in kw}
    with pytest.raises((ValueError, TypeError), match=match):
        timescale_study(ns, TINY.replace(**kw), steps=steps, **options)      # the rest are DDPMConfig fields


def test_timescale_study_rejects_non_sequence():
    with pytest.raises(TypeError, match="ns"):
        timescale_study(64, steps=100)


def test_train_rf_bad_input():
    model = RFModel(psi_p=2, psi_n=1, t=0.1, d=10)
    with pytest.raises(ValueError, match="tau"):
        RFTrainConfig(tau=[-1.0])
    with pytest.raises(ValueError, match="optimizer"):
        RFTrainConfig(tau=[1.0], optimizer="sgd")
    with pytest.raises(ValueError, match="stability bound"):
        train_rf(model, RFTrainConfig(tau=[1.0], delta_tau=1e6))
    with pytest.raises(ValueError, match="device"):
        train_rf(model, RFTrainConfig(tau=[1.0]), device="tpu")
    with pytest.raises(ValueError, match="built-in activation"):
        train_rf(model.replace(activation=lambda x: x ** 3), RFTrainConfig(tau=[1.0]))
    with pytest.raises(TypeError, match="RFModel"):
        train_rf((2, 1, 0.1), RFTrainConfig(tau=[1.0]))


# ------------------------------------------------------------------------- RF training vs the closed form
def _excess(r):
    return (np.r_[r.train_exact - r.closed_train, r.test_exact - r.closed_test]
            / np.r_[r.closed_train, r.closed_test])


def test_rf_torch_gd_matches_closed_form_at_d20():
    """Fresh-noise GD at d = 20 against the discrete-GD closed form on the same W and data
    (docs/theory/validation.md §3).

    Tolerance: E[B_k] follows the noise-free GD iterate exactly (the gradient is linear in B and unbiased),
    so the losses of the trained B exceed the closed form by the SGD-noise term
    (Delta_t/d) E tr(dB U dB^T), whose stationary size is proportional to delta_tau.  At the default step
    (delta_tau = 1e-2 psi_p / Delta_t) it measured 1.2-1.9% (3 seeds) for these sizes, so 4% is the bound;
    a quarter step must shrink it at least 2x (measured 3.5-4x), which a systematic error would not do.
    """
    model = RFModel(psi_p=8, psi_n=2, t=0.1, d=20, seed=0)
    cfg = RFTrainConfig(tau=np.geomspace(1, 300, 10))
    r = train_rf(model, cfg, quiet=True)
    dt = r.config.delta_tau
    assert dt == pytest.approx(1e-2 * 8 / (1 - math.exp(-0.2)), rel=1e-12) == r.diagnostics["step_tau"]
    e1 = _excess(r)
    assert np.max(np.abs(e1)) < 0.04
    assert np.min(e1) > -0.01                                   # the noise term is positive
    r4 = train_rf(model, cfg.replace(delta_tau=dt / 4), quiet=True)
    e4 = _excess(r4)
    assert np.max(np.abs(e4)) < 0.5 * np.max(np.abs(e1))
    # Monte Carlo losses of the trained B vs its exact losses: within 4 standard errors
    assert np.all(np.abs(r.train_mc - r.train_exact) < 4 * r.train_mc_se + 1e-12)
    assert np.all(np.abs(r.test_mc - r.test_exact) < 4 * r.test_mc_se + 1e-12)


def test_rf_torch_long_run_memorizes_like_the_closed_form():
    r = train_rf(RFModel(psi_p=8, psi_n=2, t=0.1, d=20, seed=1), RFTrainConfig(tau=np.geomspace(1, 2e4, 12)),
                 quiet=True)
    assert r.agreement["max_rel_train"] < 0.04 and r.agreement["max_rel_test"] < 0.04
    # train falls below the Bayes floor and test rises after its minimum, in both
    for tr, te in ((r.train_exact, r.test_exact), (r.closed_train, r.closed_test)):
        assert tr[-1] < r.diagnostics["bayes_floor"] and te[-1] > te.min() + 0.1
    # score error of the trained B: Monte Carlo on P_t against -y/Gamma_t^2 vs the exact value from its test loss
    # through the DSM identity E_score = (L_test - e^{-2t}) / Delta_t (docs/theory/random_features.md §1), within 4 SE
    delta = 1 - math.exp(-2 * 0.1)
    exact_score = (r.test_exact - r.diagnostics["bayes_floor"]) / delta
    np.testing.assert_allclose(r.score_exact, exact_score, rtol=1e-12)
    assert np.all(np.abs(r.score_mc - exact_score) < 4 * r.score_mc_se)


def test_rf_torch_adam_trains_and_checkpoint_resumes(tmp_path, monkeypatch, kill_after_saves):
    model = RFModel(psi_p=4, psi_n=1, t=0.1, d=10, seed=2)
    cfg = RFTrainConfig(tau=np.geomspace(0.1, 5, 6), optimizer="adam", lr=1e-2)
    ck = tmp_path / "rf.pt"
    full = train_rf(model, cfg, quiet=True)
    assert full.train_exact[-1] < full.train_exact[0] < 1.0
    with monkeypatch.context() as mp:
        kill_after_saves(mp, 3)
        with pytest.raises(KeyboardInterrupt):
            train_rf(model, cfg, quiet=True, checkpoint=ck)
    again = train_rf(model, cfg, quiet=True, checkpoint=ck)
    assert again.diagnostics["resumed_from"] > 0
    np.testing.assert_array_equal(again.train_exact, full.train_exact)
    np.testing.assert_array_equal(again.test_mc, full.test_mc)


# ---------------------------------------------------------------------------------------- the DDPM ladder
def test_ddpm_resume_is_bit_identical(tmp_path, monkeypatch, kill_after_saves):
    cfg = TINY.replace(steps=120)                 # checkpoints at steps 10, 16, 27, 44, 73, 120
    full = train_ddpm(12, cfg, quiet=True)
    ck = tmp_path / "ck.pt"
    with monkeypatch.context() as mp:
        kill_after_saves(mp, 4)                  # killed after the checkpoint of step 44
        with pytest.raises(KeyboardInterrupt):
            train_ddpm(12, cfg, quiet=True, checkpoint=ck)
    again = train_ddpm(12, cfg, quiet=True, checkpoint=ck)
    assert again.diagnostics["resumed_from"] >= 30
    for key in ("fraction", "score_error", "quality", "train_loss"):
        np.testing.assert_array_equal(getattr(again, key), getattr(full, key))
    with pytest.raises(ValueError, match="different run"):
        train_ddpm(12, cfg.replace(seed=1), quiet=True, checkpoint=ck)
    with pytest.raises(ValueError, match="different run"):
        train_ddpm(13, cfg, quiet=True, checkpoint=ck)


def test_ddpm_ladder_memorization_onset_grows_with_n():
    """CPU ladder n = 32, 64, 128 (Adam, the fast variant of docs/theory/validation.md §4, so it fits in CI): the
    memorization onset is later for larger n and tau_gen_quality_min does not grow with n beyond one checkpoint
    spacing."""
    cfg = DDPMConfig(optimizer="adam", n_checkpoints=20, first_checkpoint=50, n_gen=500, sample_steps=50,
                     n_score=2000)
    stdy = timescale_study([32, 64, 128], cfg, steps=12000, device="cpu", quiet=True)
    tm = stdy.tau_mem_onset
    assert np.all(np.isfinite(tm)), tm
    assert np.all(np.diff(tm) > 0), tm
    spacing = (12000 / 50) ** (1 / 19)
    assert stdy.tau_gen_quality_min[-1] <= stdy.tau_gen_quality_min[0] * spacing * 1.01, stdy.tau_gen_quality_min
    assert stdy.fit["gamma"] > 0.5
    # every run starts with no memorization and ends above the threshold
    for r in stdy.runs:
        assert r["fraction"][0] == 0.0 and r["fraction"][-1] >= stdy.fthr


def test_timescale_study_executor_matches_sequential_and_json_roundtrip(tmp_path):
    kw = dict(steps=160, device="cpu", quiet=True, threads=1)   # same thread count: same float32 sums
    seq = timescale_study([8, 16], TINY, **kw)
    with runtime.executor_for(max_workers=2) as ex:
        par = timescale_study([8, 16], TINY, out=tmp_path, executor=ex, **kw)
    for a, b in zip(seq.runs, par.runs):
        assert a["fraction"] == b["fraction"] and a["quality"] == b["quality"] and a["steps"] == b["steps"]
    back = study_from_json(tmp_path / "study.json")
    np.testing.assert_array_equal(back.tau_gen_quality_min, par.tau_gen_quality_min)
    assert back.fit == par.fit
    assert (tmp_path / "ckpt_n16.pt").exists()
    saved = (tmp_path / "study.json").read_text()
    for key in ("tau_gen_quality_min", "tau_gen_score_min", "tau_gen_plateau", "tau_mem_onset",
                "tau_gen_quality_spread", "tau_gen_plateau_spread"):
        assert f'"{key}"' in saved                # the estimator names are the JSON keys


def test_committed_cpu_ladder_reads_off_as_documented():
    """docs/figures/timescales_study_cpu_n32-512.json: the read-offs recomputed from its runs give the numbers of
    docs/theory/validation.md §4 (tau_mem_onset = 302 n, gamma = 1.03)."""
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "docs" / "figures" / "timescales_study_cpu_n32-512.json"
    st = study_from_json(path)
    np.testing.assert_array_equal(np.round(st.tau_mem_onset), [8862, 18230, 36202, 69748, 159116])
    assert round(st.fit["a"]) == 302 and round(st.fit["gamma"], 2) == 1.03 and round(st.fit["r2"], 3) == 0.994
    assert round(st.tau_gen_quality_spread, 1) == 7.4 and round(st.tau_gen_plateau_spread, 2) == 1.95
