"""memlab.figures: each builder returns the numbers of the direct API calls, draws them with the estimator names,
writes PNG + PDF when given ``out`` and nothing without it; memlab.demo prints the same numbers as before."""

import json
import re

import numpy as np
import pytest

import memlab
from memlab import figures
from memlab.numerics.rf_matrices import gep_eigenvalues
from memlab.numerics.rf_spectrum import count_per_bulk


def labels(fig):
    """Every legend entry, axis label and title of a figure (what a reader sees)."""
    out = [fig.get_suptitle()]
    for ax in fig.axes:
        out += [ax.get_xlabel(), ax.get_ylabel(), ax.get_title()]
        leg = ax.get_legend()
        if leg is not None:
            out += [t.get_text() for t in leg.get_texts()]
    return "\n".join(out)


def assert_written(res, tmp_path, stem):
    assert res.paths == (tmp_path / f"{stem}.png", tmp_path / f"{stem}.pdf")
    assert all(p.stat().st_size > 5000 for p in res.paths)
    assert res.paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and res.paths[1].read_bytes()[:5] == b"%PDF-"


def test_gmm_losses_figure_matches_api_and_writes(tmp_path):
    res = figures.gmm_losses_figure(40, 20, 3, 0.36028, n_m=8, n_noise=5, seed=2, out=tmp_path)
    api = memlab.gmm_excess_losses(40, 20, 3, 0.36028, list(range(5, 41, 5)), n_noise=5, seed=2)
    np.testing.assert_array_equal(res.losses.M, api.M)
    np.testing.assert_allclose(res.losses.pmem, api.pmem, rtol=1e-12)
    assert res.losses.generalizing == pytest.approx(api.generalizing, rel=1e-12)
    assert_written(res, tmp_path, "gmm_losses")
    text = res.summary()
    assert f"generalizing: {api.generalizing:.3f} +- {api.generalizing_se:.3f}" in text
    assert [int(m) for m in re.findall(r"pmem M=\s*(\d+)", text)] == [10, 20, 30]     # nearest 0.2, 0.5, 0.8 N
    assert "Thm 3.1" in labels(res.figure) and "Thm 3.2" in labels(res.figure)
    res.close()


def test_figures_without_out_write_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = figures.rf_phase_figure(memlab.RFModel(8, 2, 0.1, d=8), [100.0], psi_p_grid=[4, 8], psi_n_grid=[1, 2])
    assert res.paths == () and list(tmp_path.iterdir()) == []
    res.close()


def test_rf_spectrum_figure_matches_api(tmp_path):
    model = memlab.RFModel(16, 4, 0.05, d=50)
    res = figures.rf_spectrum_figure(model, out=tmp_path)
    api = memlab.rf_spectrum(model)
    eigs = gep_eigenvalues(memlab.gep_matrices(model, dense=False))
    assert res.spectrum.bulks == api.bulks and res.spectrum.delta_weight == api.delta_weight
    np.testing.assert_array_equal(res.eigenvalues, eigs)
    assert (res.delta_count, list(res.bulk_counts)) == count_per_bulk(api, eigs) == (550, [50, 150, 50])
    assert_written(res, tmp_path, "rf_spectrum_psip16_psin4_t0.05")
    assert "finite-size count 150" in res.summary()
    assert "finite-size U eigenvalues (p = 800, d = 50" in labels(res.figure)
    res.close()
    with pytest.raises(ValueError, match="d=1 is too small"):
        figures.rf_spectrum_figure(model.replace(d=1, psi_p=0.4))
    with pytest.raises(TypeError, match="RFModel"):
        figures.rf_spectrum_figure((16, 4, 0.05))


def test_rf_curves_figure_matches_api_and_names_estimators(tmp_path):
    model = memlab.RFModel(16, 2, 0.1, d=10)
    res = figures.rf_curves_figure(model, [2.0, 4.0], gd_d=8, gd_psi_ns=[2.0], gd_tau_max=50, out=tmp_path)
    for c, r, p, pn in zip(res.curves, res.read_offs, res.predictions, (2.0, 4.0)):
        m = model.replace(psi_n=pn)
        api = memlab.rf_learning_curves(m, figures.DEFAULT_RF_TAU)
        np.testing.assert_allclose(c.gen, api.gen, rtol=1e-12, atol=1e-14)
        assert r == memlab.read_off_timescales(api)
        assert p.tau_mem_formula == memlab.predict_timescales(m, numeric=False).tau_mem_formula
    (g,) = res.gd
    api_gd = memlab.rf_learning_curves(model.replace(d=8), np.geomspace(1.0, 50.0, 22), method="gd")
    np.testing.assert_allclose(g.train, api_gd.train, rtol=1e-10)
    assert res.gd_theory[0].method == "features" and res.gd_theory[0].model.d == 8
    assert_written(res, tmp_path, "rf_curves_psip16_t0.1")
    text = labels(res.figure)
    for name in ("tau_gen_score_min", "tau_mem_half_rise", "tau_gen_formula", "tau_mem_formula"):
        assert name in text
    assert "spec" not in text.lower()
    rows = res.table().splitlines()
    assert rows[0].split()[1:5] == ["tau_gen_score_min", "tau_gen_formula", "tau_mem_half_rise", "tau_mem_formula"]
    assert rows[1].split()[1] == f"{res.read_offs[0].tau_gen_score_min:.4g}"
    assert "GD (real tanh features, d=8, psi_n=2" in res.table()
    res.close()
    none = figures.rf_curves_figure(model, gd_d=0)
    assert none.gd == () and len(none.curves) == 1 and none.curves[0].model == model
    none.close()


@pytest.mark.parametrize("kw, match", [({"gd_d": -1}, "gd_d"), ({"gd_tau_max": 0.5}, "gd_tau_max"),
                                       ({"gd_psi_ns": [0.0]}, "psi_n"), ({"psi_ns": [2.0, -1.0]}, "psi_n"),
                                       ({"gd_d": 2, "gd_psi_ns": [0.2]}, "d=2 is too small")])
def test_rf_curves_figure_bad_input_fails_before_work(kw, match, monkeypatch):
    def no_work(*a, **k):
        raise AssertionError("computed before the inputs were checked")

    monkeypatch.setattr(figures, "rf_learning_curves", no_work)
    with pytest.raises(ValueError, match=match):
        figures.rf_curves_figure(memlab.RFModel(16, 2, 0.1, d=10), **kw)


def test_rf_phase_figure_matches_api(tmp_path):
    model = memlab.RFModel(4, 1, 0.1, d=8)
    res = figures.rf_phase_figure(model, [1, 1000], psi_p_grid=[4, 8], psi_n_grid=[1, 2, 8], out=tmp_path)
    api = memlab.rf_phase_diagram(model, [1, 1000], psi_p_grid=[4, 8], psi_n_grid=[1, 2, 8])
    np.testing.assert_allclose(res.phase.gen, api.gen, rtol=1e-12)
    assert res.phase.psi_n_mem == api.psi_n_mem
    assert_written(res, tmp_path, "rf_phase_t0.1")
    assert len([ax for ax in res.figure.axes if ax.get_title()]) == 2     # one panel per tau (plus colour bars)
    assert "tau_gen_formula" in labels(res.figure) and "d = 8" in labels(res.figure)
    res.close()


def test_memorization_figure_matches_api(tmp_path):
    rng = np.random.default_rng(0)
    train = rng.standard_normal((200, 16))
    sets = {"copies": train[:30] + 1e-4 * rng.standard_normal((30, 16)), "fresh": rng.standard_normal((30, 16))}
    res = figures.memorization_figure(sets, train, n_boot=200, out=tmp_path)
    for lab, x in sets.items():
        api = memlab.memorization_fraction(x, train, n_boot=200)
        assert (res.results[lab].fraction, res.results[lab].ci_low) == (api.fraction, api.ci_low)
    assert res.results["copies"].fraction == 1.0 and res.results["fresh"].fraction == 0.0
    assert_written(res, tmp_path, "memorization")
    assert "copies: memorization fraction 1.0000" in res.summary()
    assert "threshold k = 0.333" in labels(res.figure)
    res.close()


def test_gmm_memorization_figure_matches_api():
    res = figures.gmm_memorization_figure(40, 20, 3, M=20, n_samples=30)
    data = memlab.sample_gmm(40, 20, 3, seed=0)
    mem = memlab.ddim_sample(memlab.memorizing_denoiser(data.train), 30, seed=1).samples
    gen = memlab.ddim_sample(memlab.generalizing_denoiser(data), 30, seed=1).samples
    assert res.results["mem (N=40)"].fraction == memlab.memorization_fraction(mem, data.train).fraction == 1.0
    assert res.results["generalizing"].fraction == memlab.memorization_fraction(gen, data.train).fraction
    assert list(res.results) == ["mem (N=40)", "pmem (M=20)", "generalizing", "optimal, EDM", "fresh draws"]
    # all 30 memorized: the exact (Clopper-Pearson) 95% interval is [0.025^(1/30), 1]
    assert res.table().splitlines()[0].strip().startswith(f"mem (N=40): 1.000  [{0.025 ** (1 / 30):.3f}, 1.000]")
    res.close()


def test_to_json_of_results():
    res = memlab.predict_timescales(memlab.RFModel.from_sizes(800, 6400, 100, 0.1), numeric=False)
    back = json.loads(figures.to_json(res))
    assert back["model"]["activation"] == "tanh" and back["tau_gen_formula"] == res.tau_gen_formula
    assert back["tau_mem_spectrum"] is None and back["model"]["d"] == 100


# ------------------------------------------------------------------------------------------------ demo
BASELINE = """\
    paper   0.39993   0.8000     40.00     80.00    120.01    160.01
  uniform   0.33964   0.8302     41.51     83.02    124.53    166.04
    noise   0.00002   1.0000     50.00    100.00    150.00    200.00
    paper   0.39993   0.6001     30.00     60.01     90.01    120.01
  uniform   0.33964   0.6604     33.02     66.04     99.05    132.07
  generalizing: 6.511 +- 0.009  (Thm 3.1: 6.490)
  pmem M= 40:  68.480 +- 0.022  (Thm 3.2, C=1..2: 40.0 .. 80.0)
  pmem M=100:  37.604 +- 0.021  (Thm 3.2, C=1..2: 25.0 .. 50.0)
  pmem M=160:  14.500 +- 0.014  (Thm 3.2, C=1..2: 10.0 .. 20.0)
     mem (N=200): 1.000  [{lo:.3f}, 1.000]  median d1/d2 = 8.61e-04
    pmem (M=100): 1.000  [{lo:.3f}, 1.000]  median d1/d2 = 8.80e-04
    generalizing: 0.000  [0.000, {hi:.3f}]  median d1/d2 = 9.65e-01
    optimal, EDM: 1.000  [{lo:.3f}, 1.000]  median d1/d2 = 1.81e-03
     fresh draws: 0.000  [0.000, {hi:.3f}]  median d1/d2 = 9.66e-01
  delta peak: p*weight = 5500.0; finite-size count 5500
  bulk [0.0036832, 0.010189]  mass 0.01562  (p*mass = 100.0; finite-size count 100)
  bulk [0.09133, 0.35947]  mass 0.10937  (p*mass = 700.0; finite-size count 700)
  bulk [9.8359, 44.693]  mass 0.01563  (p*mass = 100.0; finite-size count 100)""".format(
    # exact (Clopper-Pearson) 95% intervals of 200 samples, all or none memorized: [0.025^(1/200), 1], [0, 1 - that]
    lo=0.025 ** (1 / 200), hi=1 - 0.025 ** (1 / 200))

# psi_n, tau_gen_score_min, tau_gen_formula, tau_mem_half_rise, tau_mem_formula, L_gen(inf), min E_score
CURVES = [["4", "13.42", "15.02", "2854", "2556", "2.9834", "0.0638"],
          ["8", "15.92", "15.02", "4912", "5899", "2.1251", "0.0427"],
          ["16", "18.99", "15.02", "6968", "1.288e+04", "1.2301", "0.0266"],
          ["32", "22.35", "15.02", "7708", "2.214e+04", "0.5744", "0.0168"]]


@pytest.mark.slow
def test_demo_prints_the_baseline_numbers(tmp_path):
    from memlab.demo import run_demo

    lines = []
    done = run_demo(tmp_path, print=lambda *a: lines.append(" ".join(map(str, a))))
    text = "\n".join(lines)
    for line in BASELINE.splitlines():
        assert line in text, line
    rows = text[text.index(" psi_n tau_gen_score_min"):].splitlines()[1:5]
    assert [r.split() for r in rows] == CURVES
    for r in done["timescales"]:          # the table prints the API values under the estimator names
        m = r.model
        assert re.search(rf"^\s+{m.n}\s+6400\s+100\s+0.1\s+{r.regime}\s+{r.tau_gen_formula:.5g}\s+"
                         rf"{r.tau_mem_formula:.5g}\s+{r.tau_mem_spectrum:.5g}\s+{r.window:.4g}\s+6400$", text, re.M)
    assert "GD (real tanh features, d=10, psi_n=4, m=inf, delta_tau=3.53): 8497 steps" in text
    written = sorted(p.name for p in tmp_path.iterdir())
    assert written == sorted(f"{s}.{x}" for s in ("gmm_losses", "memorization_gmm", "rf_spectrum_psip64_psin8_t0.01",
                                                   "rf_curves_psip64_t0.1", "rf_phase_t0.1") for x in ("png", "pdf"))
