"""Benchmark and accuracy table: the asymptotic test loss, gap and score error (docs/theory/random_features.md §9).

Workload: psi_p = 64, psi_n = 8, t = 0.1, tanh, sigma_x = 1; 400 training times (399 log-spaced in [1e-1, 1e7]
and inf), ``asymptotic_losses`` with its defaults (96 nodes, checked against 48, tol 1e-8).

Printed, all measured in this run:

* the one-off cost per process: sympy derivation and lambdify of ``derive_two_point()`` (in a fresh subprocess;
  this route has no numba kernels, so this is its "compilation");
* the 400-point curve quiet and under the fixed background load (benchmarks/background.py), median of 5, and
  their ratio;
* with ``--table``: the relative difference between the asymptotic curves and the finite-d closed form
  (``method="gep"``) at d = 100, 200, 400 (``--seeds`` seeds each; mean and standard deviation over seeds) at
  tau = 1e2, 1e3, 1e4 and inf, for L_test, L_gen and E_score, and the extrapolation of the seed means in 1/d
  (least squares ``a + b/d`` over the listed d); the d = 400 closed form takes seconds to minutes per seed.

Run: ``python benchmarks/rf_test_loss.py [--table] [--seeds 3] [--ds 100 200 400]``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from background import background_load, load_note, median_time  # noqa: E402

from memlab.numerics.rf_learning import rf_learning_curves
from memlab.numerics.rf_test_loss import asymptotic_losses
from memlab.theory.rf_model import RFModel

MODEL = RFModel(64, 8, 0.1)
TAUS = np.concatenate([np.geomspace(1e-1, 1e7, 399), [np.inf]])
TABLE_TAUS = np.array([1e2, 1e3, 1e4, np.inf])


def derivation_time() -> float:
    code = ("import time\nt0 = time.perf_counter()\nfrom memlab.theory.rf_two_point import derive_two_point\n"
            "derive_two_point()\nprint(time.perf_counter() - t0)\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(res.stdout.strip().splitlines()[-1])


def timing():
    print(f"machine: {load_note()}")
    print(f"one-off per process: derive_two_point() (sympy + lambdify) {derivation_time():.2f} s")
    r = asymptotic_losses(MODEL, TAUS)
    dg = r.diagnostics
    print(f"400-point curve psi_p=64, psi_n=8, t=0.1: {dg['n_top']} + 2x{dg['n_arc']} nodes (checked against half), "
          f"quad_error {dg['quad_error']:.2g}, tau=inf route vs contour {dg['infinity_route_diff']:.2g}")
    quiet = median_time(lambda: asymptotic_losses(MODEL, TAUS))
    with background_load() as info:
        loaded = median_time(lambda: asymptotic_losses(MODEL, TAUS))
    print(f"  quiet  {quiet * 1e3:.0f} ms (median of 5)")
    print(f"  loaded {loaded * 1e3:.0f} ms under {info}: {loaded / quiet:.2f}x")


def table(ds, seeds):
    a = asymptotic_losses(MODEL, TABLE_TAUS)
    keys = (("test", "test"), ("gen", "gen"), ("score_error", "score_error"))
    means = {k: [] for k, _ in keys}
    print("relative difference (closed form - asymptotic)/asymptotic, mean +- standard error over seeds, at tau = "
          + ", ".join(f"{x:g}" for x in TABLE_TAUS))
    for d in ds:
        runs = []
        for s in range(seeds):
            t0 = time.perf_counter()
            runs.append(rf_learning_curves(MODEL.replace(d=d, seed=s), TABLE_TAUS, method="gep"))
            print(f"  (d={d} seed={s}: {time.perf_counter() - t0:.1f} s)", file=sys.stderr)
        for k, attr in keys:
            vals = np.array([getattr(c, attr) for c in runs])
            ref = getattr(a, attr)
            rel = (vals - ref) / ref
            means[k].append(vals.mean(axis=0))
            print(f"  d={d:4d} {k:12s} " + "  ".join(f"{m * 100:+.3f}% +- {sd * 100:.3f}%"
                                                      for m, sd in zip(rel.mean(axis=0), rel.std(axis=0) / np.sqrt(seeds))))
    A = np.vstack([np.ones(len(ds)), 1.0 / np.asarray(ds, float)]).T
    for k, attr in keys:
        ext = np.linalg.lstsq(A, np.array(means[k]), rcond=None)[0][0]
        ref = getattr(a, attr)
        print(f"  1/d extrapolation {k:12s} " + "  ".join(f"{e:.6f} ({(e - x) / x * 100:+.3f}%)"
                                                          for e, x in zip(ext, ref)))
        print(f"  asymptotic        {k:12s} " + "  ".join(f"{x:.6f}" for x in ref))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--table", action="store_true")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--ds", type=int, nargs="+", default=[100, 200, 400])
    a = p.parse_args()
    timing()
    if a.table:
        table(a.ds, a.seeds)


if __name__ == "__main__":
    main()
