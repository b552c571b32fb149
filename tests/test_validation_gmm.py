"""Validation layer I: the PyTorch GMM trainer, checkpoint/resume, the capacity sweep on executors, the
M-search rules and the weighting fit."""

import csv
import io
import json
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import memlab

torch = pytest.importorskip("torch", reason="the validation layer needs torch (installed by the test extra)")

from memlab.numerics.gmm import GMMDenoiser  # noqa: E402
from memlab.numerics.weighting_fit import fit_weighting  # noqa: E402
from memlab.theory.grid import alpha  # noqa: E402
from memlab.validation import runtime  # noqa: E402
from memlab.validation.gmm_sweep import evaluate_gmm, sweep_capacity, sweep_grid  # noqa: E402
from memlab.validation.gmm_torch import (PROTOCOLS, GMMProtocol, GMMTrainConfig, TorchGMMDenoiser,  # noqa: E402
                                         estimate_sweep_seconds, lr_at, resolve_protocol, train_gmm)
from memlab.validation.search import coarse_ms, m_pt, refine_ms, transition_bounds  # noqa: E402

# Reduced protocol for CPU tests: cpu-quick (grid times t >= 0.15, psi_t <= 43; docs/theory/validation.md §2)
# with 50 noise draws.  With the full grid psi_t spans 1e6, so Adam's second moment (memory 1/(1 - beta2) = 1000
# steps) keeps the early giant small-t gradients and the variance barely moves within 1,500 steps; the paper's
# 50k steps absorb that, a fast test cannot.
FAST = PROTOCOLS["cpu-quick"].replace(n_noise=50)


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Tiny models run fastest on one thread, and several torch threads slow down badly on a busy machine."""
    with runtime.threads(1):
        yield


def _cfg(M, protocol=FAST, **kw):
    return GMMTrainConfig(M, protocol, **kw)


@pytest.fixture(scope="module")
def tiny():
    data = memlab.sample_gmm(40, 16, 4, seed=0)
    runs = {M: train_gmm(data.train, _cfg(M), quiet=True) for M in (4, 20, 40)}
    return data, runs


def test_tiny_configuration_shows_the_transition(tiny):
    data, runs = tiny
    ev = {M: evaluate_gmm(r.means, r.sigma2, data) for M, r in runs.items()}
    assert ev[4].fraction == 0.0  # M = N/10: generalizes
    assert ev[40].fraction >= 0.9  # M = N: stays at the memorizing solution
    assert runs[4].sigma2 > runs[20].sigma2 > runs[40].sigma2  # learned variance shrinks as M grows
    assert runs[40].sigma2 < 1e-2 and runs[4].sigma2 > 0.5
    # generalizing model: means near the true means, test loss near the Thm 3.1 level
    assert ev[4].dist_true < ev[40].dist_true
    for M in (4, 20):  # the loss decreases
        L = runs[M].losses
        assert L[-5:].mean() < 0.5 * L[:5].mean(), (M, L[:5], L[-5:])


def test_torch_denoiser_equals_numba_denoiser_float64():
    rng = np.random.default_rng(1)
    for M, d, s2 in [(5, 3, 0.0), (30, 12, 0.37), (200, 50, 1e-6)]:
        means = 2.0 * rng.standard_normal((M, d))
        num = GMMDenoiser(means, s2)
        tm = TorchGMMDenoiser(torch.tensor(means), torch.tensor(np.sqrt(s2), dtype=torch.float64))
        for t in (0.001, 0.04092, 0.36028, 0.999):
            x = alpha(t) * means[rng.integers(0, M, 20)] + t * rng.standard_normal((20, d))
            x0_n, eps_n = num.predict(t, x)
            a = torch.full((20,), float(alpha(t)), dtype=torch.float64)
            x0_t, eps_t = tm(a, torch.full((20,), t, dtype=torch.float64), torch.tensor(x))
            np.testing.assert_allclose(x0_t.detach().numpy(), x0_n, rtol=1e-6, atol=1e-6 * np.abs(means).max())
            np.testing.assert_allclose(eps_t.detach().numpy(), eps_n, rtol=1e-6, atol=1e-6)


def _kill_at_save(monkeypatch, k):
    """Simulate a run killed while it writes its k-th checkpoint (that write never happens)."""
    orig, calls = runtime.atomic_save, {"n": 0}

    def save(obj, path):
        calls["n"] += 1
        if calls["n"] == k:
            raise KeyboardInterrupt(f"simulated kill at checkpoint {k}")
        return orig(obj, path)

    monkeypatch.setattr(runtime, "atomic_save", save)


def test_kill_and_resume_is_bit_identical(tmp_path, monkeypatch):
    data = memlab.sample_gmm(30, 8, 3, seed=2)
    cfg = _cfg(10, PROTOCOLS["paper"].replace(steps=60, n_noise=7), seed=3)
    kw = dict(quiet=True, checkpoint_every=20, log_every=5)
    ref = train_gmm(data.train, cfg, metrics=tmp_path / "ref.jsonl", **kw)
    ck = tmp_path / "run.pt"
    with monkeypatch.context() as mp:
        _kill_at_save(mp, 3)                          # checkpoints at steps 20 and 40 exist; killed at step 60
        with pytest.raises(KeyboardInterrupt):
            train_gmm(data.train, cfg, checkpoint=ck, metrics=tmp_path / "run.jsonl", **kw)
    assert json.loads((tmp_path / "run.jsonl").read_text().splitlines()[-1])["step"] == 59  # logged past step 40
    res = train_gmm(data.train, cfg, checkpoint=ck, metrics=tmp_path / "run.jsonl", **kw)
    assert res.resumed_from == 40  # the last checkpoint before the kill
    np.testing.assert_array_equal(res.means, ref.means)
    assert res.sigma2 == ref.sigma2
    np.testing.assert_array_equal(res.losses, ref.losses)
    assert (tmp_path / "run.jsonl").read_text() == (tmp_path / "ref.jsonl").read_text()
    assert not list(tmp_path.glob("*.tmp*"))  # atomic writes leave no temporary files


def test_checkpoint_errors(tmp_path):
    data = memlab.sample_gmm(30, 8, 3, seed=2)
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"garbage")
    five = PROTOCOLS["paper"].replace(steps=5)
    with pytest.raises(ValueError, match="unreadable"):
        train_gmm(data.train, _cfg(5, five), checkpoint=bad, quiet=True)
    ck = tmp_path / "a.pt"
    train_gmm(data.train, _cfg(5, five), checkpoint=ck, quiet=True)
    with pytest.raises(ValueError, match="different run"):
        train_gmm(data.train, _cfg(6, five), checkpoint=ck, quiet=True)


@pytest.mark.parametrize("kwargs,match", [
    (dict(M=5, steps=0), "steps"), (dict(M=5, n_noise=0), "n_noise"), (dict(M=31), "M must satisfy"),
    (dict(M=5, device="tpu"), "device"), (dict(M=5, device="cuda:7"), "cuda"), (dict(M=5, dtype="float16"), "dtype"),
    (dict(M=0), "M"), (dict(M=5, protocol="fast"), "protocol"), (dict(M=5, t_min=1.5), "t_min"),
])
def test_trainer_bad_input(kwargs, match):
    data = memlab.sample_gmm(30, 8, 3, seed=2)
    if kwargs.get("device", "").startswith("cuda") and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")  # the check is for machines without it
    device = kwargs.pop("device", None)
    with pytest.raises(ValueError, match=match):
        M, name, dtype = kwargs.pop("M"), kwargs.pop("protocol", "paper"), kwargs.pop("dtype", "float32")
        cfg = GMMTrainConfig(M, resolve_protocol(name, **{"steps": 5, **kwargs}), dtype=dtype)
        train_gmm(data.train, cfg, device=device, quiet=True)


def test_protocols_named_priced_and_overridable():
    paper, quick = PROTOCOLS["paper"], PROTOCOLS["cpu-quick"]
    assert (paper.steps, paper.n_noise, paper.peak_lr, paper.t_min, paper.times().size) == (50_000, 100, 1e-3, None, 26)
    assert (quick.steps, quick.n_noise, quick.peak_lr, quick.times().size) == (1500, 20, 1e-2, 22)
    assert np.all(quick.times() >= 0.15) and (quick.final_lr, quick.ema, quick.beta2) == (1e-6, 0.99, 0.999)
    mod = quick.replace(steps=40, n_noise=5)
    assert mod.name == "cpu-quick+steps=40+n_noise=5" and mod.replace(steps=1500).name == "cpu-quick+n_noise=5"
    assert quick.replace(steps=1500) is quick and GMMTrainConfig(3, "cpu-quick").protocol == quick
    fields = mod.to_dict()
    assert fields.pop("times") == quick.times().tolist() and GMMProtocol(**fields) == mod
    with pytest.raises(TypeError, match="unknown protocol setting"):
        quick.replace(step=3)


def test_estimate_sweep_seconds_tiny():
    est = estimate_sweep_seconds(20, 4, PROTOCOLS["cpu-quick"].replace(steps=100), device="cpu", measure_steps=3)
    assert est["models"] == len(coarse_ms(20)) + 10 and est["M"] == 20 and est["workers"] == 1
    assert est["steps_per_s"] > 0 and np.isfinite(est["total_seconds"]) and est["total_seconds"] > 0
    assert est["seconds_per_model"] * est["steps_per_s"] == pytest.approx(100, rel=1e-12)
    assert est["total_seconds"] == pytest.approx(est["seconds_per_model"] * est["models"], rel=1e-12)
    big = estimate_sweep_seconds(20, 4, PROTOCOLS["cpu-quick"].replace(steps=10_000), device="cpu", measure_steps=3,
                                 n_models=5, workers=2)
    # 100x the steps: about 100x the time per model (the measured rate is noisy, not the scaling)
    assert 20 < big["seconds_per_model"] / est["seconds_per_model"] < 500
    assert big["total_seconds"] == pytest.approx(big["seconds_per_model"] * 5 / 2, rel=1e-12)


def test_learning_rate_schedule():
    cfg = PROTOCOLS["paper"].replace(steps=1000)
    lrs = np.array([lr_at(s, cfg) for s in range(1000)])
    assert lrs[0] == 0 and lrs[50] == pytest.approx(0.5e-3) and lrs[100] == pytest.approx(1e-3)
    assert lrs[-1] == pytest.approx(1e-6) and np.all(np.diff(lrs[100:]) < 0)


class CountingExecutor(ThreadPoolExecutor):
    def __init__(self):
        super().__init__(max_workers=2)
        self.n = 0

    def submit(self, fn, *a, **k):
        self.n += 1
        return super().submit(fn, *a, **k)


def test_sweep_resume_skips_finished_models(tmp_path):
    lines = []
    kw = dict(protocol="cpu-quick", steps=40, n_noise=5, n_samples=20, out=tmp_path, log=lines.append)
    ex = CountingExecutor()
    first = sweep_capacity(20, 6, 2, executor=ex, **kw)
    assert ex.n == len(first.M) >= 10
    assert any(ln.startswith("estimated training time on cpu") for ln in lines)     # priced before training
    ex2 = CountingExecutor()
    again = sweep_capacity(20, 6, 2, executor=ex2, **kw)
    assert ex2.n == 0
    assert again.results == first.results
    rows = list(csv.reader(io.StringIO((tmp_path / "sweep.csv").read_text())))
    assert len(rows) == len(first.M) + 1 and rows[0][3] == "protocol"
    assert all(row[3] == "cpu-quick+steps=40+n_noise=5" for row in rows[1:])
    summary = json.loads((tmp_path / "sweep.json").read_text())
    assert summary["predicted_ratio"] == pytest.approx(memlab.predict_mstar(20).ratio)
    # the protocol (name and every setting) is in sweep.json, each model's JSON and CapacitySweep.settings
    assert summary["protocol"] == first.settings["protocol"] == "cpu-quick+steps=40+n_noise=5"
    assert summary["settings"]["steps"] == 40 and summary["settings"]["t_min"] == 0.15
    assert summary["settings"]["times"] == PROTOCOLS["cpu-quick"].times().tolist()
    model = json.loads(next((tmp_path / "models").glob("M*.json")).read_text())
    assert model["settings"] == first.settings and model["result"]["protocol"] == first.settings["protocol"]
    assert first.protocol == PROTOCOLS["cpu-quick"].replace(steps=40, n_noise=5)
    note = first.prediction_note
    assert note.startswith(f"predicted M*/N = {memlab.predict_mstar(20).ratio:.3f}: paper weighting")
    assert "C = 2, full 26-point grid" in note and "22 grid times t >= 0.15" in note
    assert summary["prediction_note"] == note


def test_sweep_on_dask_equals_process_pool(tmp_path):
    distributed = pytest.importorskip("distributed", reason="dask.distributed is installed by the test extra")
    kw = dict(protocol="cpu-quick", steps=30, n_noise=5, n_samples=20, log=lambda *a: None, threads=1)
    pool = sweep_grid([20], [6], [2, 3], **kw)
    with distributed.LocalCluster(processes=False, n_workers=1, threads_per_worker=2,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        dask = sweep_grid([20], [6], [2, 3], executor=client.get_executor(), **kw)
    assert len(pool) == len(dask) == 2
    for a, b in zip(pool, dask):
        assert (a.N, a.d, a.K) == (b.N, b.d, b.K)
        np.testing.assert_array_equal(a.M, b.M)
        for ra, rb in zip(a.results, b.results):
            assert ra["fraction"] == rb["fraction"] and ra["sigma2"] == rb["sigma2"]
            assert ra["train_loss"] == rb["train_loss"]


def test_search_rules_on_synthetic_curves():
    assert coarse_ms(150) == list(range(15, 151, 15))
    assert coarse_ms(155) == list(range(15, 151, 15)) + [155]
    assert coarse_ms(7) == list(range(1, 8))
    ms = coarse_ms(150)
    ratio = lambda m: 0.0 if m < 105 else (0.5 if m < 135 else 0.95)  # noqa: E731 - a three-step curve
    tb = transition_bounds(ms, [ratio(m) for m in ms])
    assert (tb.start, tb.end, tb.flags) == (90, 135, [])
    assert refine_ms(tb.start, tb.end) == list(range(90, 135, 4))
    assert m_pt([90, 94, 98, 135], [0.0, 0.6, 0.3, 0.95]) == 94  # first M with >= 0.5, not assumed monotone
    first = transition_bounds(ms, [0.2] * 10)
    assert first.start == 15 and "smallest" in first.flags[0] and "incomplete" in first.flags[1]
    none = transition_bounds(ms, [0.05] * 10)
    assert not none.found and none.flags == ["no transition for M <= N"]
    assert m_pt(ms, [0.0] * 10) is None


def test_weighting_fit_recovers_the_measured_ratio_and_feeds_predict_mstar():
    target = 0.84
    measured = [(n, round(target * n)) for n in (50, 100, 150, 200)]
    fit = fit_weighting(measured)
    mean_ratio = np.mean([m / n for n, m in measured])
    assert fit.ratio == pytest.approx(mean_ratio, abs=2e-3)
    assert fit.mse < 1e-4
    res = memlab.predict_mstar(200, weighting=fit.weights)
    assert res.ratio == pytest.approx(fit.ratio, rel=1e-12)  # identical r -> identical M*
    with pytest.raises(ValueError, match="M_pt"):
        fit_weighting([(50, 60)])
