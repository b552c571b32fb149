"""Benchmark: random-features learning curves, closed form vs gradient-descent simulation.

Workload: d = 100, psi_p = 64, psi_n = 8 (p = 6400, n = 800), t = 0.1, tanh, sigma_x = 1; 400 training
times log-spaced from 1e-2 to 1e6 (units ``tau = k eta / d^2``).

* closed form (``method="gep"``): seeded Gaussian-equivalent matrices, one ``(n + d)``-dimensional Gram
  eigendecomposition, then the exact gradient-flow losses at all 400 times
  (:func:`memlab.numerics.rf_curves.closed_form_curves`);
* GD simulation: full-batch GD with the exact noise expectation (``m = infinity``: one step is
  ``B <- B - c_u B U - c_v V^T`` with the dense ``p x p`` matrix ``U``, the numba kernel of
  :mod:`memlab.numerics.rf_gd`) and with fresh noise per point per step, at the package's default step
  ``delta_tau = 1e-2 psi_p / Delta_t`` and at 90 % of the stability bound.  Reaching ``tau = 1e6`` takes
  ~10^5 steps of ~4e9 multiply-adds (exact) -- hours -- so the script times a measured number of steps
  and extrapolates linearly (the cost per step is constant); it says so in its output.

Also printed, all measured in this run: numba compile time of the GD kernels (fresh cache, subprocess),
and the agreement of the timed GD iterates with the closed form for discrete GD on the same matrices.

Run: ``python benchmarks/rf_curves.py [--steps 10] [--features]`` (``--features`` adds the closed form
on the true tanh features: the exact Mehler ``U`` plus a dense ``6400 x 6400`` eigendecomposition).
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from background import background_load, load_note, median_time  # noqa: E402

from memlab.numerics.rf_curves import closed_form_curves, eigen_model
from memlab.numerics.rf_learning import rf_learning_curves
from memlab.numerics.rf_gd import gd_exact_steps, gd_fresh_steps, stability_bound
from memlab.numerics.rf_matrices import gep_matrices, true_feature_matrices
from memlab.theory.rf_model import RFModel

D, PSI_P, PSI_N, T = 100, 64.0, 8.0, 0.1
TAUS = np.geomspace(1e-2, 1e6, 400)


def compile_time_fresh_cache() -> float:
    code = ("import time, numpy as np\n"
            "t0 = time.perf_counter()\n"
            "from memlab.numerics.rf_gd import gd_exact_steps, gd_fresh_steps\n"
            "B = np.zeros((3, 5)); U = np.eye(5); V = np.ones((3, 5))\n"
            "gd_exact_steps(B, U, V, 0.1, 0.1, 2)\n"
            "W = np.ones((5, 3)); X = np.ones((3, 4)); xi = np.ones((2, 3, 4))\n"
            "gd_fresh_steps(B, W, X, xi, 0.5, 0.1, 0, 0.0)\n"
            "print(time.perf_counter() - t0)\n")
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, NUMBA_CACHE_DIR=tmp)
        res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return float(res.stdout.strip().splitlines()[-1])


def fmt_s(sec: float) -> str:
    return f"{sec:.3g} s" if sec < 120 else (f"{sec / 60:.3g} min" if sec < 7200 else f"{sec / 3600:.3g} h")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=10, help="GD steps timed per variant (default 10)")
    ap.add_argument("--features", action="store_true", help="also time the closed form on the true features")
    args = ap.parse_args()
    model = RFModel(PSI_P, PSI_N, T, d=D)
    n, p, _ = model.sizes()
    print(f"workload: d={D}, p={p}, n={n}, t={T:g}, tanh; 400 tau points in [1e-2, 1e6]; {load_note()}")
    print(f"numba compile time of the GD kernels (fresh cache, incl. imports): {compile_time_fresh_cache():.2f} s")

    # ---- closed form on the Gaussian-equivalent model (the package's method="gep") ----
    t0 = time.perf_counter()
    mats = gep_matrices(model, dense=False)
    t_mats = time.perf_counter() - t0
    t0 = time.perf_counter()
    em = eigen_model(mats)
    t_eig = time.perf_counter() - t0
    reps = 20
    t0 = time.perf_counter()
    for _ in range(reps):
        train, test = closed_form_curves(em, TAUS)
    t_curves = (time.perf_counter() - t0) / reps
    t_closed = t_mats + t_eig + t_curves
    print(f"closed form (gep): matrices {t_mats:.3f} s + Gram eigendecomposition ({em.lam.size} modes) "
          f"{t_eig:.3f} s + 400 times {t_curves * 1e3:.1f} ms = {t_closed:.2f} s")

    # the public function, as users call it, quiet and under the fixed background load
    rf_learning_curves(model, TAUS, method="gep")                       # warm (caches, kernels)
    quiet = median_time(lambda: rf_learning_curves(model, TAUS, method="gep"), repeats=3)
    with background_load() as info:
        loaded = median_time(lambda: rf_learning_curves(model, TAUS, method="gep"), repeats=3)
    print(f"public rf_learning_curves(model, 400 taus, method='gep'): {quiet:.3f} s quiet (median of 3); "
          f"{loaded:.3f} s under load ({info}) = {loaded / quiet:.2f}x (goal <= 2.5x)")

    if args.features:
        t0 = time.perf_counter()
        tf = true_feature_matrices(model, k_max=120, n_nodes=128, tol=1e-10)
        t_tf = time.perf_counter() - t0
        t0 = time.perf_counter()
        emf = eigen_model(tf)
        closed_form_curves(emf, TAUS)
        t_tf_eig = time.perf_counter() - t0
        print(f"closed form (features): Mehler U {t_tf:.1f} s + dense eigh and 400 times {t_tf_eig:.1f} s "
              f"= {t_tf + t_tf_eig:.1f} s")

    # ---- GD simulation on the same model (dense U needed: p x p) ----
    dense = gep_matrices(model, dense=True)
    c = dense.constants
    dl, sq = c.delta_t, math.sqrt(c.delta_t)
    lam_max = float(em.lam.max())
    bound = stability_bound(PSI_P, dl, lam_max)
    U = np.ascontiguousarray(dense.U)
    VT = np.ascontiguousarray(dense.V.T)
    results = {}
    for label, dtau in (("default step 1e-2 psi_p/Delta_t", 1e-2 * PSI_P / dl), ("0.9 x stability bound", 0.9 * bound)):
        B = np.zeros((D, p))
        gd_exact_steps(B.copy(), U, VT, 0.0, 0.0, 1)                    # warm (cache load)
        coef_u, coef_v = 2.0 * dl * dtau / PSI_P, 2.0 * sq * dtau / PSI_P
        t0 = time.perf_counter()
        gd_exact_steps(B, U, VT, coef_u, coef_v, args.steps)
        per_step = (time.perf_counter() - t0) / args.steps
        n_total = math.ceil(TAUS[-1] / dtau)
        # agreement of the timed iterates with the discrete-GD closed form at step args.steps
        tr_gd = 1.0 + dl / D * float(np.sum((B @ U) * B)) + 2.0 * sq / D * float(np.sum(B * VT))
        tr_cf = float(closed_form_curves(em, [args.steps * dtau], gd_step=dtau)[0][0])
        results[label] = (dtau, per_step, n_total)
        print(f"GD exact (m = inf), {label}: delta_tau = {dtau:.3f}, {per_step * 1e3:.0f} ms/step "
              f"(measured over {args.steps} steps), {n_total} steps to tau = 1e6 -> extrapolated "
              f"{fmt_s(per_step * n_total)}; L_train after {args.steps} steps: GD {tr_gd:.12f}, "
              f"closed form {tr_cf:.12f} (rel. diff {abs(tr_gd / tr_cf - 1):.1e})")

    # fresh noise per point per step (stochastic GD): cost per step ~3 p d n multiply-adds
    rng = np.random.default_rng(1)
    Xt = np.ascontiguousarray(math.exp(-T) * dense.X)
    W_bar = np.ascontiguousarray(dense.W_bar)
    dtau = results["default step 1e-2 psi_p/Delta_t"][0]
    coef = 2.0 * sq * dtau / (n * PSI_P)
    xi = rng.standard_normal((args.steps, D, n))
    B = np.zeros((D, p))
    gd_fresh_steps(B.copy(), W_bar, Xt, xi[:1], sq, coef, 0, 0.0)
    t0 = time.perf_counter()
    gd_fresh_steps(B, W_bar, Xt, xi, sq, coef, 0, 0.0)
    per_fresh = (time.perf_counter() - t0) / args.steps
    n_total = math.ceil(TAUS[-1] / dtau)
    print(f"GD fresh noise, default step: {per_fresh * 1e3:.0f} ms/step (measured over {args.steps} steps), "
          f"{n_total} steps -> extrapolated {fmt_s(per_fresh * n_total)}")

    dtau, per_step, n_total = results["default step 1e-2 psi_p/Delta_t"]
    t_gd = per_step * n_total
    print(f"ratio GD exact (default step, extrapolated) / closed form: {t_gd / t_closed:,.0f}x")
    dtau, per_step, n_total = results["0.9 x stability bound"]
    print(f"ratio GD exact (largest stable step, extrapolated) / closed form: {per_step * n_total / t_closed:,.0f}x")
    print(f"ratio GD fresh (default step, extrapolated) / closed form: {per_fresh * math.ceil(TAUS[-1] / results['default step 1e-2 psi_p/Delta_t'][0]) / t_closed:,.0f}x")
    print(f"closed form in seconds on {os.cpu_count()} cores: {'yes' if t_closed < 10 else 'NO'} ({t_closed:.2f} s)")


if __name__ == "__main__":
    main()
