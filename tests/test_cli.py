"""CLI: outputs checked against the API, bad input -> one line on stderr and exit status 2."""

import json
import re
import subprocess
import sys

import numpy as np
import pytest

import memlab


def names(line, flag):
    """``line`` names the parameter as a word of its own ("t" must not match inside "must"): as the API calls it
    (``psi_p``) or as its option (``--psi-p``, named when the value is refused as it is parsed)."""
    opt = "--" + flag.lstrip("-").replace("_", "-")
    return any(re.search(rf"(^|[^\w-]){re.escape(f)}(?![\w-])", line) for f in (flag, opt))


def run(*args):
    return subprocess.run([sys.executable, "-m", "memlab", *args], capture_output=True, text=True,
                          timeout=300, env={"MPLBACKEND": "Agg", "PATH": "/usr/bin:/bin"})


def test_mstar_help_explains_eq14_once():
    r = run("mstar", "--help")
    assert r.returncode == 0
    text = " ".join(r.stdout.split())
    assert "arXiv:2508.17689v1 Eq. 21" in text and text.count("Eq. 14") == 1
    top = run("--help")
    assert "Eq. 14" not in top.stdout


def test_mstar_json_matches_api():
    r = run("mstar", "--N", "200", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    api = memlab.predict_mstar(200)
    assert round(out["ratio"], 3) == 0.8
    assert out["m_star"] == pytest.approx(api.m_star, rel=1e-15)


def test_mstar_text_and_validity_warning():
    r = run("mstar", "--N", "50", "--d", "50", "--K", "12", "--weighting", "uniform")
    assert r.returncode == 0, r.stderr
    with pytest.warns(memlab.MemlabValidityWarning):
        api = memlab.predict_mstar(50, weighting="uniform", d=50, K=12)
    assert f"{api.m_star:.4f}" in r.stdout
    assert "warning" in r.stderr and "coupon" in r.stderr.lower()


@pytest.mark.parametrize("args,flag", [
    (["mstar", "--N", "0"], "N"),
    (["mstar", "--N", "2.5"], "--N"),
    (["mstar", "--N", "100", "--C", "-1"], "C"),
    (["mstar", "--N", "100", "--sigma2", "0"], "sigma2"),
    (["mstar", "--N", "100", "--weighting", "bogus"], "--weighting"),
    (["mstar", "--N", "100", "--d", "0"], "d"),
    (["mstar"], "--N"),
    (["plot", "gmm-losses", "--N", "20", "--d", "5", "--K", "2", "--t", "1.5", "--out", "/tmp/x"], "t"),
    (["plot", "gmm-losses", "--N", "20", "--d", "5", "--K", "0", "--out", "/tmp/x"], "K"),
    (["plot", "gmm-losses", "--N", "20", "--d", "5", "--K", "2", "--n-noise", "0", "--out", "/tmp/x"], "n_noise"),
    (["timescales", "--n", "0", "--p", "100", "--d", "10", "--t", "0.1"], "n"),
    (["timescales", "--n", "10", "--p", "100", "--d", "10", "--t", "-1"], "t"),
    (["timescales", "--n", "10", "--p", "100", "--d", "10", "--t", "nan"], "t"),
    (["timescales", "--n", "10", "--p", "100", "--d", "10", "--t", "0.1", "--activation", "softsign"], "activation"),
    (["timescales", "--n", "10", "--p", "100", "--d", "10", "--t", "0.1", "--activation", "relu"], "center"),
    (["spectrum", "--psi-p", "0", "--psi-n", "8", "--t", "0.01", "--out", "/tmp/x"], "psi_p"),
    (["spectrum", "--psi-p", "64", "--psi-n", "8", "--t", "0.01", "--d", "0", "--out", "/tmp/x"], "d"),
    (["plot", "rf-curves", "--psi-p", "0", "--out", "/tmp/x"], "psi_p"),
    (["plot", "rf-curves", "--psi-n", "4", "-1", "--out", "/tmp/x"], "psi_n"),
    (["plot", "rf-curves", "--t", "nan", "--out", "/tmp/x"], "t"),
    (["plot", "rf-curves", "--d", "0", "--out", "/tmp/x"], "d"),
    (["plot", "rf-curves", "--psi-p", "0.01", "--d", "10", "--out", "/tmp/x"], "too small"),
    (["plot", "rf-curves", "--gd-d", "-1", "--out", "/tmp/x"], "gd_d"),
    (["plot", "rf-curves", "--gd-tau-max", "-5", "--out", "/tmp/x"], "gd_tau_max"),
    (["plot", "rf-curves", "--activation", "softsign", "--out", "/tmp/x"], "activation"),
    (["plot", "rf-phase", "--tau", "-1", "--out", "/tmp/x"], "tau"),
    (["plot", "rf-phase", "--psi-n", "0", "--out", "/tmp/x"], "--psi-n"),       # the API's psi_n_grid
    (["plot", "rf-phase", "--psi-p", "4", "nan", "--out", "/tmp/x"], "--psi-p"),  # the API's psi_p_grid
    (["plot", "rf-phase", "--d", "0", "--out", "/tmp/x"], "d"),
    (["plot", "rf-phase", "--d", "1", "--psi-p", "0.1", "--out", "/tmp/x"], "too small"),
    (["spectrum", "--psi-p", "64", "--psi-n", "8", "--t", "0.01", "--activation", "relu", "--out", "/tmp/x"], "center"),
    (["plot", "rf-curves", "--gd-psi-n", "0", "--out", "/tmp/x"], "--gd-psi-n"),
    (["plot", "gmm-losses", "--N", "20", "--d", "5", "--K", "2", "--n-m", "0", "--out", "/tmp/x"], "n_m"),
])
def test_bad_input_one_line_exit_2(args, flag):
    r = run(*args)
    assert r.returncode == 2
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in r.stderr
    assert names(lines[0], flag), lines[0]


def test_plot_gmm_losses_writes_png_and_pdf(tmp_path):
    r = run("plot", "gmm-losses", "--N", "40", "--d", "20", "--K", "3", "--n-noise", "5", "--n-m", "8",
            "--out", str(tmp_path), "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    for suffix in ("png", "pdf"):
        p = tmp_path / f"gmm_losses.{suffix}"
        assert p.exists() and p.stat().st_size > 1000
    api = memlab.gmm_excess_losses(40, 20, 3, 0.36028, out["result"]["M"], n_noise=5)
    np.testing.assert_allclose(out["result"]["pmem"], api.pmem, rtol=1e-12)


def test_import_memlab_without_torch_and_layer_imports():
    code = ("import sys, memlab, memlab.validation, memlab.cli, memlab.figures, memlab.demo; "
            "assert 'torch' not in sys.modules; print('ok')")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr
    import ast
    import pathlib
    root = pathlib.Path(memlab.__file__).resolve().parent.parent
    forbidden = {"theory": {"numba", "torch"}, "numerics": {"torch"}, "memlab": {"torch"}}
    for layer, banned in forbidden.items():
        for path in (root / layer).glob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                names = []
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    names = [node.module]
                for n in names:
                    assert n.split(".")[0] not in banned, f"{path} imports {n}"


def test_timescales_json_matches_api():
    r = run("timescales", "--n", "800", "--p", "6400", "--d", "100", "--t", "0.1", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    api = memlab.predict_timescales(memlab.RFModel.from_sizes(800, 6400, 100, 0.1))
    for key in ("tau_mem_formula", "tau_gen_formula", "window", "tau_mem_spectrum", "tau_mem_limit",
                "lambda_min_formula", "lambda_min_spectrum", "lambda2_mean"):
        assert out[key] == pytest.approx(getattr(api, key), rel=1e-9)
    assert out["n_star"] == 6400 and out["regime"] == "I"
    assert out["model"]["psi_p"] == 64.0 and out["model"]["activation"] == "tanh"
    txt = run("timescales", "--n", "800", "--p", "6400", "--d", "100", "--t", "0.1")
    assert txt.returncode == 0
    head, row = txt.stdout.splitlines()[:2]
    assert head.split() == ["n", "p", "d", "t", "regime", "tau_gen_formula", "tau_mem_formula", "tau_mem_spectrum",
                            "window", "n*"]
    assert row.split()[5:8] == [f"{api.tau_gen_formula:.5g}", f"{api.tau_mem_formula:.5g}",
                                f"{api.tau_mem_spectrum:.5g}"]


def test_timescales_regime_ii_warns_on_stderr():
    r = run("timescales", "--n", "1000", "--p", "500", "--d", "100", "--t", "0.1", "--no-numeric")
    assert r.returncode == 0, r.stderr
    assert "memlab: warning: regime II" in r.stderr and r.stdout.split("\n")[1].split()[4] == "II"


def test_spectrum_writes_figure_and_counts(tmp_path):
    r = run("spectrum", "--psi-p", "16", "--psi-n", "4", "--t", "0.05", "--d", "50", "--out", str(tmp_path), "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    for suffix in ("png", "pdf"):
        assert any(f.endswith(suffix) and (tmp_path / f.split("/")[-1]).stat().st_size > 1000 for f in out["files"])
    assert abs(out["delta_weight"] - (1 - 5 / 16)) < 1e-3
    assert out["delta_count"] == 550 and out["bulk_counts"] == [50, 150, 50]   # p (1 - masses), p = 800
    api = memlab.rf_spectrum(memlab.RFModel(16, 4, 0.05, d=50))
    np.testing.assert_allclose(np.array(out["bulks"]), np.array(api.bulks), rtol=1e-12)


def test_plot_rf_curves_json_matches_api_and_writes_figure(tmp_path):
    r = run("plot", "rf-curves", "--psi-p", "16", "--psi-n", "2", "4", "--t", "0.1", "--d", "10", "--gd-d", "5",
            "--gd-psi-n", "2", "--gd-tau-max", "50", "--out", str(tmp_path), "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert len(out["curves"]) == 2 and len(out["read_offs"]) == 2
    for cj, rj, pj, pn in zip(out["curves"], out["read_offs"], out["predictions"], (2.0, 4.0)):
        taus = np.array(cj["tau"], dtype=float)
        model = memlab.RFModel(16, pn, 0.1, d=10)
        api = memlab.rf_learning_curves(model, taus)
        np.testing.assert_allclose(cj["gen"], api.gen, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(cj["score_error"], api.score_error, rtol=1e-9, atol=1e-12)
        ro = memlab.read_off_timescales(api)
        assert rj["tau_gen_score_min"] == pytest.approx(ro.tau_gen_score_min, rel=1e-9)
        assert rj["tau_mem_half_rise"] == pytest.approx(ro.tau_mem_half_rise, rel=1e-9)
        assert rj["gen_final"] == pytest.approx(ro.gen_final, rel=1e-9)
        pred = memlab.predict_timescales(model, numeric=False)
        assert pj["tau_gen_formula"] == pytest.approx(pred.tau_gen_formula, rel=1e-12)
        assert pj["tau_mem_formula"] == pytest.approx(pred.tau_mem_formula, rel=1e-12)
    for suffix in ("png", "pdf"):
        assert (tmp_path / f"rf_curves_psip16_t0.1.{suffix}").stat().st_size > 1000
    txt = run("plot", "rf-curves", "--psi-p", "16", "--psi-n", "2", "--t", "0.1", "--d", "10", "--gd-d", "0",
              "--out", str(tmp_path / "txt"))
    assert txt.returncode == 0, txt.stderr
    assert txt.stdout.split()[:7] == ["psi_n", "tau_gen_score_min", "tau_gen_formula", "tau_mem_half_rise",
                                      "tau_mem_formula", "L_gen(inf)", "min"]
    assert "GD (" not in txt.stdout and f"wrote {tmp_path / 'txt'}" in txt.stdout


def test_plot_rf_phase_json_matches_api(tmp_path):
    r = run("plot", "rf-phase", "--psi-p", "4", "8", "--psi-n", "1", "2", "8", "--t", "0.1", "--tau", "100", "1000",
            "--d", "8", "--out", str(tmp_path), "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)["result"]
    api = memlab.rf_phase_diagram(memlab.RFModel(4, 1, 0.1, d=8), [100, 1000], psi_p_grid=[4, 8], psi_n_grid=[1, 2, 8])
    np.testing.assert_allclose(np.array(out["gen"]), api.gen, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(out["tau_gen_formula"], api.tau_gen_formula, rtol=1e-12)
    assert out["psi_n_mem"] == api.psi_n_mem
    assert (tmp_path / "rf_phase_t0.1.png").stat().st_size > 1000


# ------------------------------------------------------------------------------------------------
# memlab memorization
# ------------------------------------------------------------------------------------------------

@pytest.fixture()
def mem_files(tmp_path):
    import matplotlib.image as mpimg

    rng = np.random.default_rng(0)
    train = rng.standard_normal((300, 32))
    samples = np.vstack([train[:40] + 1e-3 * rng.standard_normal((40, 32)), rng.standard_normal((60, 32))])
    np.save(tmp_path / "train.npy", train)
    np.save(tmp_path / "samples.npy", samples)
    np.savez(tmp_path / "samples.npz", samples=samples, other=np.zeros(3))
    np.savez(tmp_path / "two.npz", a=samples, b=samples)
    imgs = rng.integers(0, 256, size=(30, 6, 6, 3), dtype=np.uint8)
    (tmp_path / "train_png").mkdir()
    (tmp_path / "gen_png").mkdir()
    for i, im in enumerate(imgs):
        mpimg.imsave(tmp_path / "train_png" / f"{i:03d}.png", im)
    for i in range(12):  # 8 exact copies (memorized), 4 new images
        im = imgs[i] if i < 8 else rng.integers(0, 256, size=(6, 6, 3), dtype=np.uint8)
        mpimg.imsave(tmp_path / "gen_png" / f"{i:03d}.png", im)
    (tmp_path / "broken.npy").write_bytes(b"not a numpy file")
    (tmp_path / "empty_dir").mkdir()
    return tmp_path, train, samples, imgs


def test_memorization_cli_npy_and_npz_match_api(mem_files):
    d, train, samples, _ = mem_files
    api = memlab.memorization_fraction(samples, train)
    for src in ("samples.npy", "samples.npz"):
        r = run("memorization", "--samples", str(d / src), "--train", str(d / "train.npy"), "--json")
        assert r.returncode == 0, r.stderr
        out = json.loads(r.stdout)
        assert out["fraction"] == api.fraction == 0.4
        assert (out["ci_low"], out["ci_high"]) == (api.ci_low, api.ci_high)
        assert out["n_memorized"] == 40
    r = run("memorization", "--samples", str(d / "samples.npy"), "--train", str(d / "train.npy"),
            "--k", "0.5", "--out", str(d / "o"))
    assert r.returncode == 0, r.stderr
    assert "memorization fraction 0.4000" in r.stdout and "40 of 100 samples" in r.stdout
    assert f"wrote {d / 'o' / 'memorization_per_sample.npz'}" in r.stdout
    assert (d / "o" / "memorization.png").stat().st_size > 10000 and (d / "o" / "memorization.pdf").exists()
    per = np.load(d / "o" / "memorization_per_sample.npz")
    np.testing.assert_array_equal(per["nn_index"], memlab.memorization_fraction(samples, train, k=0.5).nn_index)


def test_memorization_cli_png_folder_on_0_255_scale(mem_files):
    d, _, _, imgs = mem_files
    r = run("memorization", "--samples", str(d / "gen_png"), "--train", str(d / "train_png"), "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["fraction"] == pytest.approx(8 / 12)
    pts = memlab.load_points(d / "train_png")
    assert pts.dtype == np.uint8 and pts.shape == (30, 6 * 6 * 3)  # the opaque alpha channel is dropped
    np.testing.assert_array_equal(pts, imgs.reshape(30, -1))  # raw 0-255 values, sorted by file name


@pytest.mark.parametrize("which,flag", [
    ("missing", "samples"), ("broken", "samples"), ("empty_dir", "samples"), ("two", "samples"),
    ("dims", "feature dimension"), ("k", "k"), ("mem", "--memory-limit-mb"), ("txt", "samples"),
])
def test_memorization_cli_bad_input(mem_files, which, flag):
    d = mem_files[0]
    s, t, extra = str(d / "samples.npy"), str(d / "train.npy"), []
    if which == "missing":
        s = str(d / "nope.npy")
    elif which == "broken":
        s = str(d / "broken.npy")
    elif which == "empty_dir":
        s = str(d / "empty_dir")
    elif which == "two":
        s = str(d / "two.npz")
    elif which == "dims":
        t = str(d / "train_png")
    elif which == "k":
        extra = ["--k", "1.2"]
    elif which == "mem":
        extra = ["--memory-limit-mb", "0"]
    elif which == "txt":
        (d / "x.txt").write_text("1 2 3")
        s = str(d / "x.txt")
    r = run("memorization", "--samples", s, "--train", t, *extra)
    assert r.returncode == 2
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in r.stderr
    assert flag in lines[0], lines[0]


# ------------------------------------------------------------------------------------------------
# memlab validate
# ------------------------------------------------------------------------------------------------

def test_validate_gmm_cli_matches_saved_sweep(tmp_path):
    pytest.importorskip("torch", reason="installed by the test extra")
    out = tmp_path / "v"
    r = run("validate", "gmm", "--N", "20", "--d", "6", "--K", "2", "--protocol", "cpu-quick", "--steps", "20",
            "--n-noise", "4", "--workers", "2", "--threads", "1", "--out", str(out), "--json")
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    saved = json.loads((out / "sweep.json").read_text())
    assert res["m_pt"] == saved["m_pt"] and res["results"] == saved["results"]
    assert res["predicted_ratio"] == pytest.approx(memlab.predict_mstar(20).ratio)
    assert [x["M"] for x in res["results"]][:10] == list(range(2, 21, 2))
    st = res["settings"]            # the protocol, its overrides and the grid it trained on are recorded
    assert re.fullmatch(r"cpu-quick\+steps=20[+,]n_noise=4", st["protocol"]) and (st["steps"], st["n_noise"]) == (20, 4)
    assert st["peak_lr"] == 1e-2 and st["t_min"] == 0.15 and len(st["times"]) == 22
    assert "full 26-point grid" in res["prediction_note"] and "cpu-quick" in res["prediction_note"]
    assert "estimated training time on cpu" in r.stderr         # logged before training (stderr with --json)
    assert (out / "gmm_validation_N20_d6_K2.png").stat().st_size > 20000
    assert {str(out / f) for f in ("gmm_validation_N20_d6_K2.pdf", "sweep.json", "sweep.csv")} <= set(res["files"])
    g = run("validate", "gmm-sweep", "--N", "20", "--d", "6", "--K", "2", "3", "--protocol", "cpu-quick", "--steps",
            "10", "--n-noise", "3", "--no-ema", "--workers", "2", "--threads", "1", "--out", str(tmp_path / "g"))
    assert g.returncode == 0, g.stderr
    lines = g.stdout.splitlines()
    est = [i for i, ln in enumerate(lines) if ln.startswith("estimated training time on cpu")]
    rows = [i for i, ln in enumerate(lines) if ln.startswith("N=20 d=6 K=")]
    assert len(est) == 2 and len(rows) == 2 and max(est) < min(rows), g.stdout
    assert re.search(r"models trained with cpu-quick\+steps=10[+,]n_noise=3[+,]ema=None", g.stdout), g.stdout
    assert (tmp_path / "g" / "N20_d6_K3" / "sweep.csv").exists()
    assert (tmp_path / "g" / "gmm_sweep_grid.png").stat().st_size > 10000


@pytest.mark.parametrize("extra,flag", [
    (["--steps", "0"], "steps"), (["--n-noise", "0"], "n_noise"), (["--device", "tpu"], "device"),
    (["--N", "0"], "N"), (["--t-min", "1.5"], "t_min"), (["--workers", "0"], "--workers"),
    (["--peak-lr", "-1"], "peak_lr"), (["--protocol", "fast"], "--protocol"), (["--C", "0"], "C"),
])
def test_validate_cli_bad_input(tmp_path, extra, flag):
    pytest.importorskip("torch", reason="installed by the test extra")
    r = run("validate", "gmm", "--out", str(tmp_path / "x"), *extra)
    assert r.returncode == 2
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in r.stderr
    assert re.search(rf"(^|[^\w-]){re.escape(flag)}(?![\w])", lines[0]), lines[0]
    assert r.stdout == ""                                     # nothing estimated or trained


def test_validate_timescales_tiny(tmp_path, capsys):
    pytest.importorskip("torch", reason="installed by the test extra")
    from memlab.cli import main

    argv = ["validate", "timescales", "--n", "8", "16", "--steps", "160", "--n-checkpoints", "6", "--n-gen", "64",
            "--sample-steps", "20", "--width", "16", "--device", "cpu", "--out", str(tmp_path)]
    assert main(argv + ["--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    saved = json.loads((tmp_path / "study.json").read_text())
    assert out["ns"] == [8, 16] and len(out["tau_gen_quality_min"]) == 2
    for key in ("tau_gen_quality_min", "tau_gen_score_min", "tau_gen_plateau", "tau_mem_onset", "fit"):
        assert out[key] == saved[key]
    assert (tmp_path / "timescales_study.png").stat().st_size > 10_000
    assert (tmp_path / "timescales_study.pdf").exists() and str(tmp_path / "study.json") in out["files"]
    assert main(argv) == 0                                    # resumes from the checkpoints: same numbers, as a table
    head, row8 = capsys.readouterr().out.splitlines()[:2]
    assert head.split() == ["n", "tau_gen_quality_min", "tau_gen_score_min", "tau_gen_plateau", "tau_mem_onset",
                            "tau_mem_onset/n"]
    assert row8.split()[:2] == ["8", f"{out['tau_gen_quality_min'][0]:.4g}"]


@pytest.mark.parametrize("argv, match", [
    (["--n", "0", "8"], "ns"), (["--n", "8", "--width", "0"], "width"), (["--n", "8", "--device", "tpu"], "device"),
    (["--n", "8", "--steps", "2"], "steps"), (["--n", "8", "--workers", "0"], "workers"),
    (["--n", "8", "--fthr", "1.5"], "fthr"), (["--n", "8", "--sample-steps", "2000"], "sample_steps"),
])
def test_validate_timescales_bad_input_one_line_exit_2(tmp_path, capsys, argv, match):
    pytest.importorskip("torch", reason="installed by the test extra")
    from memlab.cli import main

    rc = main(["validate", "timescales", *argv, "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and err.startswith("memlab: error:") and match in err
    assert "Traceback" not in err


def test_validate_rf(tmp_path, capsys):
    pytest.importorskip("torch", reason="installed by the test extra")
    from memlab.cli import main

    rc = main(["validate", "rf", "--d", "10", "--psi-p", "4", "--psi-n", "1", "--tau-max", "50", "--n-taus", "5",
               "--device", "cpu", "--out", str(tmp_path), "--json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["agreement"]["max_rel_train"] < 0.05
    assert (out["model"]["d"], out["model"]["psi_p"], out["model"]["psi_n"]) == (10, 4.0, 1.0)
    assert out["config"]["optimizer"] == "gd" and len(out["config"]["tau"]) == 5
    saved = json.loads((tmp_path / "rf_training.json").read_text())
    assert saved["agreement"] == out["agreement"]
    assert (tmp_path / "rf_training_d10_p40_n10.png").stat().st_size > 10_000
    assert any(f.endswith(".pdf") for f in out["files"])


@pytest.mark.parametrize("argv, match", [
    (["--n-taus", "0"], "tau"), (["--tau-max", "-1"], "tau"),
    (["--optimizer", "adam", "--delta-tau", "1"], "delta_tau"),
    (["--d", "0"], "d"), (["--psi-n", "0"], "psi_n"), (["--device", "tpu"], "device"),
])
def test_validate_rf_bad_input_one_line_exit_2(tmp_path, capsys, argv, match):
    pytest.importorskip("torch", reason="installed by the test extra")
    from memlab.cli import main

    rc = main(["validate", "rf", *argv, "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and err.startswith("memlab: error:") and match in err
