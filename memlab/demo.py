"""The ``memlab demo`` run: the capacity crossover tables, the GMM-laboratory figures and the random-features
timescales, spectrum, learning curves and phase diagram, built from :mod:`memlab.figures` (about a minute
on two cores after the numba kernels are compiled).

Examples
--------
>>> from memlab.demo import timescales_table
>>> from memlab import RFModel, predict_timescales
>>> print(timescales_table([predict_timescales(RFModel.from_sizes(800, 6400, 100, 0.1), numeric=False)])
...       .splitlines()[1])
    800    6400   100     0.1         I          15.019          5899.4                -     392.8    6400
"""

from __future__ import annotations

import builtins
import time
import warnings

from .io import output_dir
from .numerics.timescales import predict_timescales
from .theory.crossover import WEIGHTINGS, predict_mstar
from .theory.rf_model import RFModel

__all__ = ["run_demo", "mstar_table", "timescales_table"]


def mstar_table(Ns=(50, 100, 150, 200), C: float = 2.0, weightings=WEIGHTINGS) -> str:
    """``r``, ``M*/N`` and ``M*`` per weighting (rows) and ``N`` (columns) for one ``C``: :func:`memlab.predict_mstar`
    on the 26-point grid (the capacity crossover, arXiv:2508.17689v1 Eq. 21; docs/theory/capacity_crossover.md §5)."""
    lines = [f"{'weighting':>9} {'r':>9} {'M*/N':>8} " + " ".join(f"{'N=' + str(n):>9}" for n in Ns)]
    for w in weightings:
        rows = [predict_mstar(n, C=C, weighting=w) for n in Ns]
        lines.append(f"{w:>9} {rows[0].r:9.5f} {rows[0].ratio:8.4f} " + " ".join(f"{x.m_star:9.2f}" for x in rows))
    return "\n".join(lines)


def timescales_table(results) -> str:
    """One row per :class:`~memlab.numerics.timescales.TimescalesResult` with the estimator names of
    docs/theory/random_features.md §5 as column headers, and a units line."""
    lines = [f"{'n':>7} {'p':>7} {'d':>5} {'t':>7} {'regime':>9} {'tau_gen_formula':>15} {'tau_mem_formula':>15} "
             f"{'tau_mem_spectrum':>16} {'window':>9} {'n*':>7}"]
    for r in results:
        m = r.model
        num = f"{r.tau_mem_spectrum:16.5g}" if r.tau_mem_spectrum is not None else f"{'-':>16}"
        lines.append(f"{m.n:7d} {m.p:7d} {m.d:5d} {m.t:7.4g} {r.regime:>9} {r.tau_gen_formula:15.5g} "
                     f"{r.tau_mem_formula:15.5g} {num} {r.window:9.4g} {r.n_star:7d}")
    lines.append(f"units: {results[0].units}; tau_mem_formula = psi_p/(Delta_t lambda_min_formula) (arXiv:2505.17638 "
                 "MT §3), tau_mem_spectrum = psi_p/(Delta_t lambda_min_spectrum) from the solved spectrum, "
                 "tau_gen_formula = psi_p/(Delta_t lambda2_mean) (docs/theory/random_features.md §5)")
    return "\n".join(lines)


def run_demo(out="memlab_out", *, print=builtins.print) -> dict:
    """Run the demo, writing its figures to ``out`` (``None``: draw without saving) and its text through ``print``.

    ``out`` is checked first (:func:`memlab.io.output_dir`): an unwritable folder fails before any work.

    Returns
    -------
    dict
        Name -> figure result of :mod:`memlab.figures` (``"gmm_losses"``, ``"memorization"``,
        ``"spectrum"``, ``"rf_curves"``, ``"rf_phase"``; figures closed after saving), plus
        ``"timescales"`` (list of :class:`~memlab.numerics.timescales.TimescalesResult`) and ``"wall_s"``.
    """
    if out is not None:
        output_dir(out)
    from . import figures  # matplotlib loads here, not for the tables above

    t_start = time.perf_counter()
    done = {}

    def show(name, fig, text):
        fig.close()
        done[name] = fig
        print(text)
        for p in fig.paths:
            print(f"wrote {p}")

    print("memlab demo: the capacity crossover M* (arXiv:2508.17689v1 Eq. 21; docs/theory/capacity_crossover.md §5)")
    print("M* = N (1 - r/C), r = sum_l lam_l/(psi_l sigma*^2 + 1) / sum_l lam_l on the 26-point grid, sigma*^2 = 1\n")
    for C in (2.0, 1.0):
        print(f"C = {C:g}")
        print(mstar_table(C=C))
        print()
    print("'paper' is the fitted weighting of the paper (Fig. 3); 'noise' (lambda = psi_t) is the training "
          "objective, dominated by t = 0.001, and does not predict the transition.\n")
    g = figures.gmm_losses_figure(200, 50, 12, n_noise=100, seed=0, n_m=20, out=out)
    show("gmm_losses", g, g.summary(Ms=(40, 100, 160)))

    print("\nmemorization fraction (1/3 rule, 95% Clopper-Pearson CI) of 200 DDIM samples, GMM lab N=200, d=50, K=12:")
    mf = figures.gmm_memorization_figure(200, 50, 12, M=100, n_samples=200, seed=0, sample_seed=1, out=out)
    show("memorization", mf, mf.table())

    print("\nrandom-features timescales (arXiv:2505.17638 MT §3): p = 6400, d = 100, t = 0.1, tanh")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")             # n = 12800 > p is regime II: flagged in the table
        rows = [predict_timescales(RFModel.from_sizes(n, 6400, 100, 0.1)) for n in (200, 400, 800, 1600, 3200, 12800)]
    done["timescales"] = rows
    print(timescales_table(rows))
    print("tau_gen_formula does not depend on n; tau_mem_formula grows linearly with n, so the early-stopping window "
          "tau_mem_formula/tau_gen_formula widens with n; for n > p (regime II) there is no memorization phase.\n")
    sp = figures.rf_spectrum_figure(RFModel(psi_p=64.0, psi_n=8.0, t=0.01, d=100), out=out)
    show("spectrum", sp, sp.summary())

    print("\nrandom-features learning curves (Fig. 5 analogue): psi_p = 64, t = 0.1; closed form at d = 100, "
          "GD on real tanh features at d = 10 (kept small so the demo stays under a minute)")
    rc = figures.rf_curves_figure(RFModel(psi_p=64.0, psi_n=4.0, t=0.1, d=100), [4.0, 8.0, 16.0, 32.0], gd_d=10,
                                  gd_psi_ns=[4.0, 8.0], gd_tau_max=3e4, out=out)
    show("rf_curves", rc, rc.table())
    ph = figures.rf_phase_figure(RFModel(psi_p=4.0, psi_n=1.0, t=0.1, d=16), [1e3, 1e4],
                                 psi_p_grid=[4, 8, 16, 32, 64, 128], psi_n_grid=[1, 2, 4, 8, 16, 32, 64, 128], out=out)
    show("rf_phase", ph, f"phase diagram of L_gen (Fig. 5C analogue): 6 x 8 GEP closed forms at d = 16 in "
                         f"{ph.phase.diagnostics['wall_s']:.1f} s")
    done["wall_s"] = time.perf_counter() - t_start
    print(f"demo finished in {done['wall_s']:.1f} s")
    return done
