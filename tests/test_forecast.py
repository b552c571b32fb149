"""Memorization forecast (docs/theory/validation.md §5): the tau_mem fit and its prediction interval against
synthetic laws with known a and gamma, the Frechet distance against an independent computation, data loading from
every input kind, a tiny training ladder whose tau_mem grows with n, resume after a kill, a user model, the CLI and
bad inputs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.linalg
from hypothesis import given, settings, strategies as st

from memlab.numerics.forecast_fit import fit_tau_mem

torch = pytest.importorskip("torch")

from memlab.cli import main  # noqa: E402
from memlab.validation import forecast as F  # noqa: E402
from memlab.validation.ddpm_torch import sample_two_mode  # noqa: E402


# ---------------------------------------------------------------------------------------------- the fit
@settings(max_examples=60, deadline=None)
@given(a=st.floats(1.0, 1e4), gamma=st.floats(0.3, 2.5), n0=st.integers(2, 200), k=st.integers(2, 6))
def test_noise_free_power_law_is_recovered_exactly(a, gamma, n0, k):
    ns = n0 * 2 ** np.arange(k)
    fit = fit_tau_mem(ns, a * ns ** gamma)
    assert fit.a == pytest.approx(a, rel=1e-9)
    assert fit.gamma == pytest.approx(gamma, rel=1e-9, abs=1e-12)
    c, lo, hi = fit.predict(float(ns[-1] * 8))
    assert c == pytest.approx(a * (ns[-1] * 8.0) ** gamma, rel=1e-8)
    assert lo < c < hi
    # effective model memorization inverts the law: tau(n_emm(B)) = B
    b = a * (n0 * 3.0) ** gamma
    assert fit.n_emm(b)[0] == pytest.approx(n0 * 3.0, rel=1e-9)


@settings(max_examples=40, deadline=None)
@given(a=st.floats(1.0, 1e4), n0=st.integers(2, 200), k=st.integers(1, 5))
def test_linear_law_fixes_gamma_one(a, n0, k):
    ns = n0 * 2 ** np.arange(k)
    fit = fit_tau_mem(ns, a * ns * 1.0, law="linear")
    assert fit.gamma == 1.0 and fit.a == pytest.approx(a, rel=1e-9)


@settings(max_examples=40, deadline=None)
@given(a=st.floats(1.0, 1e5), n_c=st.floats(50.0, 1e5), fracs=st.lists(st.floats(0.01, 0.9), min_size=1, max_size=5,
                                                                      unique=True))
def test_rf_law_is_recovered_and_inverted(a, n_c, fracs):
    """``law="rf"``: noise-free times a / (sqrt(n_c/n) - 1)^2 give back a; tau(n_emm(B)) = B; no memorization at
    or beyond the threshold; far below it the law is linear with slope a / n_c."""
    ns = np.array(sorted(fracs)) * n_c
    tau = a / (np.sqrt(n_c / ns) - 1.0) ** 2
    fit = fit_tau_mem(ns, tau, law="rf", n_c=n_c)
    assert fit.a == pytest.approx(a, rel=1e-9)
    n_star = 0.5 * n_c
    b = a / (np.sqrt(2.0) - 1.0) ** 2
    assert fit.n_emm(b)[0] == pytest.approx(n_star, rel=1e-9)
    assert fit.predict(n_c * 1.01)[0] == np.inf
    assert fit.predict(n_c * 1e-6)[0] == pytest.approx(a * 1e-6, rel=1e-2)


def test_rf_law_needs_sizes_below_the_threshold():
    with pytest.raises(ValueError, match="n_c"):
        fit_tau_mem([64, 128], [10.0, 20.0], law="rf", n_c=100.0)
    with pytest.raises(ValueError, match="n_c"):
        fit_tau_mem([64, 128], [10.0, 20.0], law="power", n_c=100.0)


def test_prediction_interval_covers_at_its_level():
    """Seeded Monte Carlo: log tau_i = log a + gamma log n_i + sigma z_i with sigma given through the intervals;
    the 95% prediction interval at an extrapolated size covers a fresh draw about 95% of the time (the normal
    quantile with Birge scaling: at least 90% over 600 trials)."""
    rng = np.random.default_rng(1)
    ns = np.array([64.0, 128.0, 256.0, 512.0])
    a, gamma, sigma = 30.0, 1.1, 0.15
    z95 = 1.959963984540054
    hits = 0
    trials = 600
    for _ in range(trials):
        tau = a * ns ** gamma * np.exp(sigma * rng.standard_normal(ns.size))
        fit = fit_tau_mem(ns, tau, tau_low=tau * np.exp(-z95 * sigma), tau_high=tau * np.exp(z95 * sigma))
        new = a * 2048.0 ** gamma * np.exp(sigma * rng.standard_normal())
        _, lo, hi = fit.predict(2048.0)
        hits += lo <= new <= hi
    assert 0.90 <= hits / trials <= 0.995, hits / trials


def test_fit_rejects_bad_input():
    with pytest.raises(ValueError, match="at least 2 distinct"):
        fit_tau_mem([64, 64], [10.0, 12.0])
    with pytest.raises(ValueError, match="> 0"):
        fit_tau_mem([64, 128], [10.0, -1.0])
    with pytest.raises(ValueError, match="tau_low <= tau"):
        fit_tau_mem([64, 128], [10.0, 20.0], tau_low=[11.0, 5.0], tau_high=[12.0, 30.0])
    with pytest.raises(ValueError, match="law"):
        fit_tau_mem([64, 128], [10.0, 20.0], law="cubic")
    fit = fit_tau_mem([64, 128], [200.0, 100.0])
    with pytest.raises(ValueError, match="gamma"):
        fit.n_emm(1000)


# ---------------------------------------------------------------------------------------------- quality measure
def test_frechet_distance_matches_scipy_sqrtm():
    rng = np.random.default_rng(2)
    a = rng.standard_normal((400, 5)) @ rng.standard_normal((5, 5))
    b = rng.standard_normal((300, 5)) * 1.5 + 0.3
    ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    ref = np.sum((a.mean(0) - b.mean(0)) ** 2) + np.trace(ca + cb - 2 * np.real(scipy.linalg.sqrtm(ca @ cb)))
    assert F.frechet_distance(a, b) == pytest.approx(ref, rel=1e-8)
    assert F.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)
    # 1-D closed form: (m1 - m2)^2 + (s1 - s2)^2
    x, y = rng.standard_normal((500, 1)), 2.0 + 3.0 * rng.standard_normal((500, 1))
    sx, sy = np.std(x, ddof=1), np.std(y, ddof=1)
    assert F.frechet_distance(x, y) == pytest.approx((x.mean() - y.mean()) ** 2 + (sx - sy) ** 2, rel=1e-10)


# ---------------------------------------------------------------------------------------------- data loading
def test_digits_by_name():
    pytest.importorskip("sklearn")
    from sklearn.datasets import load_digits

    fd = F.load_forecast_data("digits")
    raw = load_digits().data
    assert fd.x.shape == (1797, 64) and fd.image_shape == (8, 8)
    np.testing.assert_allclose(fd.x, raw / 8.0 - 1.0)        # grey levels 0-16 mapped to [-1, 1]
    assert fd.normalization["kind"] == "range" and fd.normalization["scale"] == 8.0


def test_every_input_kind_loads_the_same_points(tmp_path):
    import matplotlib.image as mpimg

    rng = np.random.default_rng(3)
    imgs = rng.integers(0, 256, size=(6, 5, 4)).astype(np.uint8)
    folder = tmp_path / "png"
    folder.mkdir()
    for i, im in enumerate(imgs):
        mpimg.imsave(folder / f"{i:02d}.png", im, cmap="gray", vmin=0, vmax=255)
    fd = F.load_forecast_data(folder)
    assert fd.image_shape is not None and fd.x.shape[0] == 6
    np.testing.assert_allclose(fd.x.min(), -1.0, atol=0.01)
    arr = imgs.astype(float)
    np.save(tmp_path / "imgs.npy", arr)
    np.savez(tmp_path / "imgs.npz", data=arr)
    a = F.load_forecast_data(arr)
    b = F.load_forecast_data(tmp_path / "imgs.npy")
    c = F.load_forecast_data(str(tmp_path / "imgs.npz"))
    assert a.image_shape == b.image_shape == c.image_shape == (5, 4)
    np.testing.assert_array_equal(a.x, b.x)
    np.testing.assert_array_equal(a.x, c.x)
    # standardisation: per-feature mean zero, global std one
    s = F.load_forecast_data(rng.standard_normal((50, 3)) * 4 + 7)
    np.testing.assert_allclose(s.x.mean(0), 0.0, atol=1e-12)
    assert s.x.std() == pytest.approx(1.0)
    r = F.load_forecast_data(arr.reshape(6, -1), normalize="range")
    assert r.x.min() == pytest.approx(-1.0) and r.x.max() == pytest.approx(1.0)


@pytest.mark.parametrize("data,kw,exc,match", [
    ("no_such_dataset", {}, ValueError, "bundled datasets"),
    (np.zeros((10, 3)), {}, ValueError, "constant"),
    (np.full((10, 3), np.nan), {}, ValueError, "finite"),
    (np.ones(5), {}, ValueError, "shape"),
    (np.ones((3, 2)), {}, ValueError, "at least 4"),
    (np.ones((10, 2)) * np.arange(2), {"image_shape": (3, 3)}, ValueError, "image_shape"),
    (np.ones((10, 2)), {"normalize": "log"}, ValueError, "normalize"),
    (3.0, {}, TypeError, "data"),
    (np.ones((10, 2), dtype=complex), {}, TypeError, "data"),
])
def test_bad_data_is_refused(data, kw, exc, match):
    with pytest.raises(exc, match=match):
        F.load_forecast_data(data, **kw)


# ---------------------------------------------------------------------------------------------- training
TINY = F.ForecastConfig(width=64, n_checkpoints=10, first_checkpoint=20, n_gen=200, sample_steps=20, n_ref=100)


def test_tiny_ladder_tau_mem_grows_with_n(tmp_path):
    """The 2-mode Gaussian mixture in d = 8 with Adam: every size memorizes within its horizon, tau_mem grows with
    n, the fitted exponent is positive, and the forecast at a larger size lies above the largest measured time."""
    X = sample_two_mode(300, 8, seed=0)
    res = F.forecast_memorization(X, [8, 16, 32], target_n=128, budget=2000, config=TINY, steps_per_point=150,
                                  quiet=True, out=tmp_path)
    tau = [r["tau_mem"] for r in res.readoffs]
    assert all(t is not None for t in tau), res.readoffs
    assert tau[0] < tau[-1], tau
    assert res.fit["gamma"] > 0.3
    assert res.forecast["tau_mem"] > tau[-1]
    assert res.forecast["low"] < res.forecast["tau_mem"] < res.forecast["high"]
    assert res.theory["sizes"]["128"]["regime"] == "n D < p"
    assert set(res.alternatives) == {"power", "linear", "rf"}
    saved = json.loads((tmp_path / "forecast.json").read_text())
    assert saved["fit"]["gamma"] == pytest.approx(res.fit["gamma"])
    again = F.forecast_from_json(tmp_path / "forecast.json")          # no training: the same read-offs
    assert again.readoffs == res.readoffs and again.forecast == pytest.approx(res.forecast)
    for r in res.runs:                                                 # fresh start: nothing memorized
        assert r["fraction"][0] == 0.0


def test_resume_after_kill_gives_the_same_numbers(tmp_path, monkeypatch, kill_after_saves):
    X = sample_two_mode(120, 4, seed=1)
    cfg = TINY.replace(n_checkpoints=6)
    kw = dict(target_n=64, config=cfg, steps_per_point=40, law="linear", fthr=0.05, quiet=True)
    try:
        ref = F.forecast_memorization(X, [8, 12], out=tmp_path / "ref", **kw)
        ref_runs = ref.runs
    except ValueError:   # not memorized in this short horizon: compare the stored curves instead
        ref_runs = json.loads((tmp_path / "ref" / "forecast.json").read_text())["runs"]
    with monkeypatch.context() as mp:
        kill_after_saves(mp, 3)
        with pytest.raises(KeyboardInterrupt):
            F.forecast_memorization(X, [8, 12], out=tmp_path / "killed", **kw)
    assert any(p.name.startswith("ckpt_n") for p in (tmp_path / "killed").iterdir())
    try:
        runs = F.forecast_memorization(X, [8, 12], out=tmp_path / "killed", **kw).runs
    except ValueError:
        runs = json.loads((tmp_path / "killed" / "forecast.json").read_text())["runs"]
    for a, b in zip(ref_runs, runs):
        for key in ("steps", "fraction", "quality", "train_loss", "test_loss"):
            assert a[key] == b[key], key
    assert max(r["diagnostics"]["resumed_from"] for r in runs) > 0


class TinyEps(torch.nn.Module):
    """A user model: predicts epsilon from (x_t, k) with an embedding of k."""

    def __init__(self, dim):
        super().__init__()
        self.emb = torch.nn.Embedding(1000, 16)
        self.net = torch.nn.Sequential(torch.nn.Linear(dim + 16, 32), torch.nn.GELU(), torch.nn.Linear(32, dim))

    def forward(self, x, k):
        return self.net(torch.cat([x, self.emb(k)], dim=1))


def make_tiny(dim):
    return TinyEps(dim)


def test_user_make_model_is_trained_and_recorded(tmp_path):
    X = sample_two_mode(100, 4, seed=2)
    cfg = TINY.replace(n_checkpoints=4)
    with pytest.raises(ValueError, match="not reached"):   # this small model does not memorize in 80 steps
        F.forecast_memorization(X, [8, 12], config=cfg, model=make_tiny, steps_per_point=10, quiet=True,
                                out=tmp_path)
    saved = json.loads((tmp_path / "forecast.json").read_text())
    assert saved["settings"]["model"].endswith("make_tiny")
    assert saved["runs"][0]["diagnostics"]["n_params"] == sum(p.numel() for p in TinyEps(4).parameters())
    assert saved["runs"][0]["train_loss"][-1] < saved["runs"][0]["train_loss"][0]   # it did learn

    def not_a_module(dim):
        return 3

    with pytest.raises(TypeError, match="make_model"):
        F.forecast_memorization(X, [8, 12], config=cfg, model=not_a_module, steps_per_point=10, quiet=True)


def test_conv_model_runs_on_images():
    from memlab.validation.ddpm_torch import ConvDenoiser

    net = ConvDenoiser((8, 8), 16, seed=0)
    x = torch.randn(5, 64)
    out = net(x, torch.randint(0, 1000, (5,)))
    assert out.shape == (5, 64)
    # initialisation from the seed does not touch the global random state and repeats exactly
    state = torch.random.get_rng_state()
    again = ConvDenoiser((8, 8), 16, seed=0)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert all(torch.equal(p, q) for p, q in zip(net.parameters(), again.parameters()))


@pytest.mark.parametrize("kw,exc,match", [
    (dict(ns=[8, 8]), ValueError, "repeat"),
    (dict(ns=[]), ValueError, "ns"),
    (dict(ns="8"), TypeError, "ns"),
    (dict(ns=[1]), ValueError, "ns"),
    (dict(ns=[8], held_out=[8]), ValueError, "held_out"),
    (dict(ns=[8], model="transformer"), ValueError, "model"),
    (dict(ns=[8], model=3), TypeError, "model"),
    (dict(ns=[8], model="conv"), ValueError, "conv"),
    (dict(ns=[8], fthr=1.5), ValueError, "fthr"),
    (dict(ns=[8], fthr=0.001), ValueError, "n_gen"),
    (dict(ns=[8], level=0.0), ValueError, "level"),
    (dict(ns=[8], law="cubic"), ValueError, "law"),
    (dict(ns=[8], budget=-5), ValueError, "budget"),
    (dict(ns=[8], steps_per_point=float("nan")), ValueError, "steps_per_point"),
    (dict(ns=[8], target_n=1), ValueError, "target_n"),
    (dict(ns=[8], threads=0), ValueError, "threads"),
    (dict(ns=[8], device="tpu"), ValueError, "device"),
    (dict(ns=[8], config="fast"), TypeError, "config"),
    (dict(ns=[95]), ValueError, "at least 8"),
])
def test_bad_forecast_input_is_refused_before_training(kw, exc, match, tmp_path):
    X = sample_two_mode(100, 4, seed=0)
    with pytest.raises(exc, match=match):
        F.forecast_memorization(X, **kw, out=tmp_path / "never")
    assert not (tmp_path / "never").exists()


@pytest.mark.parametrize("field,value", [("width", 0), ("optimizer", "lbfgs"), ("lr", -1.0), ("momentum", 1.0),
                                         ("batch", 0), ("n_checkpoints", 2), ("n_gen", 3), ("sample_steps", 5000),
                                         ("n_ref", 2), ("seed", -1), ("dtype", "float16")])
def test_bad_config_names_the_field(field, value):
    with pytest.raises((ValueError, TypeError), match=field if field != "dtype" else "dtype"):
        F.ForecastConfig(**{field: value})


# ---------------------------------------------------------------------------------------------- the CLI
def test_cli_forecast_writes_figure_json_and_summary(tmp_path, capsys):
    X = sample_two_mode(200, 8, seed=0)
    np.save(tmp_path / "x.npy", X)
    out = tmp_path / "out"
    rc = main(["forecast", "--data", str(tmp_path / "x.npy"), "--ns", "8", "16", "--held-out", "24",
               "--target-n", "64", "--budget", "1500", "--width", "64", "--n-checkpoints", "10", "--n-gen", "200",
               "--sample-steps", "20", "--steps-per-point", "150", "--out", str(out), "--json"])
    assert rc == 0
    payload = json.loads(capsys.readouterr().out)
    for name in ("forecast.png", "forecast.pdf", "forecast.json", "summary.txt"):
        assert (out / name).stat().st_size > 0
    assert payload["target_n"] == 64 and payload["held_out"][0]["n"] == 24
    h = payload["held_out"][0]
    if h["measured"] is not None:
        assert h["inside"] == (h["low"] <= h["measured"] <= h["high"])
        assert h["relative_error"] == pytest.approx((h["measured"] - h["forecast"]) / h["forecast"])
    assert "forecast at n = 64" in (out / "summary.txt").read_text()


CLI_BAD = [
    (["--data", "no_such", "--ns", "8"], "--data"),
    (["--data", "digits", "--ns", "1"], "--ns"),
    (["--data", "digits", "--ns", "8", "x"], "--ns"),
    (["--data", "digits", "--ns", "8", "--target-n", "0"], "--target-n"),
    (["--data", "digits", "--ns", "8", "--held-out", "nan"], "--held-out"),
    (["--data", "digits", "--ns", "8", "--budget", "-1"], "--budget"),
    (["--data", "digits", "--ns", "8", "--model", "vit"], "--model"),
    (["--data", "digits", "--ns", "8", "--optimizer", "lbfgs"], "--optimizer"),
    (["--data", "digits", "--ns", "8", "--law", "cubic"], "--law"),
    (["--data", "digits", "--ns", "8", "--normalize", "log"], "--normalize"),
    (["--data", "digits", "--ns", "8", "--lr", "0"], "--lr"),
    (["--data", "digits", "--ns", "8", "--batch", "-3"], "--batch"),
    (["--data", "digits", "--ns", "8", "--width", "0"], "--width"),
    (["--data", "digits", "--ns", "8", "--channels", "1.5"], "--channels"),
    (["--data", "digits", "--ns", "8", "--steps-per-point", "inf"], "--steps-per-point"),
    (["--data", "digits", "--ns", "8", "--n-checkpoints", "2"], "--n-checkpoints"),
    (["--data", "digits", "--ns", "8", "--n-gen", "4"], "--n-gen"),
    (["--data", "digits", "--ns", "8", "--sample-steps", "1001"], "--sample-steps"),
    (["--data", "digits", "--ns", "8", "--fthr", "1"], "--fthr"),
    (["--data", "digits", "--ns", "8", "--seed", "-1"], "--seed"),
    (["--data", "digits", "--ns", "8", "--data-seed", "x"], "--data-seed"),
    (["--data", "digits", "--ns", "8", "--workers", "0"], "--workers"),
    (["--data", "digits", "--ns", "8", "--threads", "nan"], "--threads"),
    (["--data", "digits", "--ns", "8", "--device", "tpu"], "device"),
    (["--data", "digits", "--ns", "8", "--fthr", "0.001"], "n_gen"),
]


@pytest.mark.parametrize("argv,name", CLI_BAD)
def test_cli_bad_input_one_line_exit_2(argv, name, tmp_path, capsys):
    out = tmp_path / "never"
    rc = main(["forecast", *argv, "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("memlab: error:") and name in err[0], err
    assert "Traceback" not in err[0]


def test_cli_catalogue_covers_every_forecast_option():
    """Every option of ``memlab forecast`` that takes a value has a bad-input case above (``--out`` and
    ``--scheduler`` are the shared run options, tested with the validate commands)."""
    import contextlib
    import io
    import re

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(["forecast", "--help"]) == 0
    takes_value = set(re.findall(r"^  (--[\w-]+) [A-Z{[]", buf.getvalue(), flags=re.M))
    covered = {argv[4] if len(argv) > 5 else name for argv, name in CLI_BAD} | {"--out", "--scheduler"}
    assert takes_value == covered, takes_value ^ covered
