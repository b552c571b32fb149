"""CLI: outputs checked against the API, bad input -> one line on stderr and exit status 2."""

import json
import re
import subprocess
import sys

import numpy as np
import pytest

import memlab


def run(*args):
    return subprocess.run([sys.executable, "-m", "memlab", *args], capture_output=True, text=True,
                          timeout=300, env={"MPLBACKEND": "Agg", "PATH": "/usr/bin:/bin"})


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
    (["plot", "rf-phase", "--psi-n", "0", "--out", "/tmp/x"], "psi_n_grid"),
    (["plot", "rf-phase", "--d", "0", "--out", "/tmp/x"], "d"),
])
def test_bad_input_one_line_exit_2(args, flag):
    r = run(*args)
    assert r.returncode == 2
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in r.stderr
    # the parameter is named as a word of its own ("t" must not match inside "must")
    assert re.search(rf"(^|[^\w-]){re.escape(flag)}(?![\w])", lines[0]), lines[0]


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
    code = "import sys, memlab, memlab.validation; assert 'torch' not in sys.modules; print('ok')"
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
    api = memlab.predict_timescales(800, 6400, 100, 0.1)
    for key in ("tau_mem", "tau_gen", "window", "tau_mem_numeric", "lambda_min"):
        assert out[key] == pytest.approx(getattr(api, key), rel=1e-9)
    assert out["n_star"] == 6400 and out["regime"] == "I"
    txt = run("timescales", "--n", "800", "--p", "6400", "--d", "100", "--t", "0.1")
    assert txt.returncode == 0 and f"{api.tau_mem:.5g}" in txt.stdout


def test_spectrum_writes_figure_and_counts(tmp_path):
    r = run("spectrum", "--psi-p", "16", "--psi-n", "4", "--t", "0.05", "--d", "50", "--out", str(tmp_path), "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    for suffix in ("png", "pdf"):
        assert any(f.endswith(suffix) and (tmp_path / f.split("/")[-1]).stat().st_size > 1000 for f in out["files"])
    assert abs(out["delta_weight"] - (1 - 5 / 16)) < 1e-3


def test_plot_rf_curves_json_matches_api_and_writes_figure(tmp_path):
    r = run("plot", "rf-curves", "--psi-p", "16", "--psi-n", "2", "4", "--t", "0.1", "--d", "10", "--gd-d", "5",
            "--gd-psi-n", "2", "--gd-tau-max", "50", "--out", str(tmp_path), "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert len(out["curves"]) == 2 and len(out["read_offs"]) == 2
    for cj, rj, pn in zip(out["curves"], out["read_offs"], (2.0, 4.0)):
        taus = np.array(cj["tau"], dtype=float)
        api = memlab.rf_learning_curves(16, pn, 0.1, taus, d=10)
        np.testing.assert_allclose(cj["gen"], api.gen, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(cj["score_error"], api.score_error, rtol=1e-9, atol=1e-12)
        ro = memlab.read_off_timescales(api)
        assert rj["tau_gen"] == pytest.approx(ro.tau_gen, rel=1e-9)
        assert rj["gen_final"] == pytest.approx(ro.gen_final, rel=1e-9)
    for suffix in ("png", "pdf"):
        assert (tmp_path / f"rf_curves_psip16_t0.1.{suffix}").stat().st_size > 1000


def test_plot_rf_phase_json_matches_api(tmp_path):
    r = run("plot", "rf-phase", "--psi-p", "4", "8", "--psi-n", "1", "2", "8", "--t", "0.1", "--tau", "100", "1000",
            "--d", "8", "--out", str(tmp_path), "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)["result"]
    api = memlab.rf_phase_diagram([4, 8], [1, 2, 8], 0.1, [100, 1000], d=8)
    np.testing.assert_allclose(np.array(out["gen"]), api.gen, rtol=1e-9, atol=1e-12)
    assert out["psi_n_mem"] == api.psi_n_mem
    assert (tmp_path / "rf_phase_t0.1.png").stat().st_size > 1000
