"""Validation layer I: the PyTorch GMM trainer, checkpoint/resume, the capacity sweep on executors, the
M-search rules and the weighting fit."""

import json
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import memlab

torch = pytest.importorskip("torch", reason="the validation layer needs torch (installed by the test extra)")

from memlab.numerics.gmm import GMMDenoiser  # noqa: E402
from memlab.numerics.weighting_fit import fit_weighting  # noqa: E402
from memlab.validation.gmm_sweep import evaluate_gmm, sweep_capacity, sweep_grid  # noqa: E402
from memlab.validation.gmm_torch import TorchGMMDenoiser, lr_at, TrainConfig, train_gmm  # noqa: E402
from memlab.validation.search import coarse_ms, m_pt, refine_ms, transition_bounds  # noqa: E402

GRID = memlab.paper_grid()
# Reduced protocol for CPU tests: grid times t > 0.15 (psi_t <= 43).  With the full grid psi_t spans 1e6, so
# Adam's second moment (memory 1/(1 - beta2) = 1000 steps) keeps the early giant small-t gradients and the
# variance barely moves within 1,500 steps; the paper's 50k steps absorb that, a fast test cannot.
TIMES = GRID[GRID > 0.15]
FAST = dict(steps=1500, n_noise=50, peak_lr=1e-2, times=TIMES)


@pytest.fixture(scope="module")
def tiny():
    data = memlab.sample_gmm(40, 16, 4, seed=0)
    runs = {M: train_gmm(data.train, M, quiet=True, **FAST) for M in (4, 20, 40)}
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
            x = np.sqrt(1 - t * t) * means[rng.integers(0, M, 20)] + t * rng.standard_normal((20, d))
            x0_n, eps_n = num.predict(t, x)
            a = torch.full((20,), np.sqrt(1 - t * t), dtype=torch.float64)
            x0_t, eps_t = tm(a, torch.full((20,), t, dtype=torch.float64), torch.tensor(x))
            np.testing.assert_allclose(x0_t.detach().numpy(), x0_n, rtol=1e-6, atol=1e-6 * np.abs(means).max())
            np.testing.assert_allclose(eps_t.detach().numpy(), eps_n, rtol=1e-6, atol=1e-6)


def test_kill_and_resume_is_bit_identical(tmp_path):
    data = memlab.sample_gmm(30, 8, 3, seed=2)
    kw = dict(steps=60, n_noise=7, seed=3, quiet=True, checkpoint_every=20, log_every=5)
    ref = train_gmm(data.train, 10, metrics=tmp_path / "ref.jsonl", **kw)
    ck = tmp_path / "run.pt"
    with pytest.raises(KeyboardInterrupt):
        train_gmm(data.train, 10, checkpoint=ck, metrics=tmp_path / "run.jsonl", _stop_after=47, **kw)
    assert json.loads((tmp_path / "run.jsonl").read_text().splitlines()[-1])["step"] == 45
    res = train_gmm(data.train, 10, checkpoint=ck, metrics=tmp_path / "run.jsonl", **kw)
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
    with pytest.raises(ValueError, match="unreadable"):
        train_gmm(data.train, 5, steps=5, checkpoint=bad, quiet=True)
    ck = tmp_path / "a.pt"
    train_gmm(data.train, 5, steps=5, checkpoint=ck, quiet=True)
    with pytest.raises(ValueError, match="different run"):
        train_gmm(data.train, 6, steps=5, checkpoint=ck, quiet=True)


@pytest.mark.parametrize("kwargs,match", [
    (dict(M=5, steps=0), "steps"), (dict(M=5, n_noise=0), "n_noise"), (dict(M=31), "M must satisfy"),
    (dict(M=5, device="tpu"), "device"), (dict(M=5, device="cuda:7"), "cuda"), (dict(M=5, dtype="float16"), "dtype"),
    (dict(M=0), "M"),
])
def test_trainer_bad_input(kwargs, match):
    data = memlab.sample_gmm(30, 8, 3, seed=2)
    if kwargs.get("device", "").startswith("cuda") and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")  # the check is for machines without it
    with pytest.raises(ValueError, match=match):
        train_gmm(data.train, quiet=True, **kwargs)


def test_learning_rate_schedule():
    cfg = TrainConfig(M=1, steps=1000)
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
    kw = dict(steps=40, n_noise=5, n_samples=20, times=TIMES, out=tmp_path, log=lambda *a: None)
    ex = CountingExecutor()
    first = sweep_capacity(20, 6, 2, executor=ex, **kw)
    assert ex.n == len(first.M) >= 10
    ex2 = CountingExecutor()
    again = sweep_capacity(20, 6, 2, executor=ex2, **kw)
    assert ex2.n == 0
    assert again.results == first.results
    assert (tmp_path / "sweep.csv").read_text().count("\n") == len(first.M) + 1
    assert json.loads((tmp_path / "sweep.json").read_text())["predicted_ratio"] == pytest.approx(
        memlab.predict_mstar(20).ratio)


def test_sweep_on_dask_equals_process_pool(tmp_path):
    distributed = pytest.importorskip("distributed", reason="dask.distributed is installed by the test extra")
    kw = dict(steps=30, n_noise=5, n_samples=20, times=TIMES, log=lambda *a: None, threads=1)
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
    ratio = lambda m: 0.0 if m < 105 else (0.5 if m < 135 else 0.95)  # noqa: E731 - the spec's example
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
