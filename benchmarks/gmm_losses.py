"""Benchmark: Monte Carlo losses of the GMM laboratory, numba kernel vs a vectorised numpy baseline.

Workload: N = M = 200 (memorizing denoiser: the means are the training points), d = 50, K = 12,
100 noise draws per point, all 26 grid times.  memlab is timed through its public function
``per_draw_losses`` (which draws its noise from the seed); the baseline gets the same noise, drawn the same
way outside its timing.  Reports, all measured in this run:

* numba compile time (fresh cache, in a subprocess) and the cache-load time of the first call;
* the thread budget memlab's policy grants (``memlab.numerics.threads.thread_budget``);
* wall time of ``per_draw_losses`` and of the numpy baseline, and their ratio (goal >= 5x), with the split of
  memlab's time into noise generation (``standard_normal_draws``: numpy's values, drawn in parallel) and the
  loss kernel;
* this machine's float64 matmul throughput (2000 x 2000 GEMM) and the kernel's multiply-adds per
  second as a fraction of it (goal >= 30%).  The kernel's multiply-add count is 2 B M d per time
  (B = N x draws rows; one d-long dot product for the squared distance and one axpy for the weighted
  mean per row and mean); the exactness corrections and the exponentials are not counted;
* the same 26-time workload timed again under a fixed background load (one busy process per core,
  ``benchmarks/background.py``) and the slowdown loaded / quiet (goal <= 2.5x; the fair share is about 2x).

Run: ``python benchmarks/gmm_losses.py`` (from anywhere).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from background import background_load, load_note, median_time  # noqa: E402

from memlab.numerics.gmm import memorizing_denoiser, sample_gmm  # noqa: E402
from memlab.numerics.losses import per_draw_losses, standard_normal_draws  # noqa: E402
from memlab.numerics.threads import thread_budget  # noqa: E402
from memlab.theory import grid  # noqa: E402

N, D_DIM, K, R = 200, 50, 12, 100


def numpy_losses(x0, noise, mu, alpha, sig, sigma2, chunk=1000):
    """Straightforward vectorised numpy: difference-vector distances, max-shifted softmax."""
    Dt = alpha * alpha * sigma2 + sig * sig
    X = (alpha * x0[:, None, :] + sig * noise).reshape(-1, x0.shape[1])
    T = np.repeat(x0, noise.shape[1], axis=0)
    out = np.empty(X.shape[0])
    for lo in range(0, X.shape[0], chunk):
        xb = X[lo:lo + chunk]
        d2 = ((xb[:, None, :] - alpha * mu[None, :, :]) ** 2).sum(axis=2)
        w = -d2 / (2 * Dt)
        p = np.exp(w - w.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        xbar = alpha * sigma2 / Dt * xb + sig * sig / Dt * (p @ mu)
        out[lo:lo + chunk] = ((xbar - T[lo:lo + chunk]) ** 2).sum(axis=1)
    return out


def memlab_losses(x0, t, den, seed):
    """The public function: per-draw losses of one denoiser, its noise drawn from ``seed``."""
    (v,) = per_draw_losses(x0, t, [den], n_noise=R, seed=seed)
    return v[0].ravel()


def matmul_madds_per_s(n=2000, repeats=3):
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((n, n)), rng.standard_normal((n, n))
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return n ** 3 / best


def _timed(f):
    t0 = time.perf_counter()
    f()
    return time.perf_counter() - t0


def compile_time_fresh_cache() -> float:
    code = ("import time, numpy as np\n"
            "t0 = time.perf_counter()\n"
            "from memlab.numerics.gmm import memorizing_denoiser\n"
            "from memlab.numerics.losses import per_draw_losses\n"
            "x0 = np.arange(24.0).reshape(8, 3)\n"  # 192 draws: the parallel normal generator runs too
            "per_draw_losses(x0, 0.5, [memorizing_denoiser(x0)], n_noise=8)\n"
            "print(time.perf_counter() - t0)\n")
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, NUMBA_CACHE_DIR=tmp)
        res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return float(res.stdout.strip())


def main():
    budget = thread_budget()
    print(f"workload: N = M = {N}, d = {D_DIM}, K = {K}, {R} noise draws, 26 grid times; "
          f"{os.cpu_count()} CPU cores; {load_note()}")
    print(f"thread budget: {budget.n} thread(s) (decided by {budget.source}; limits {dict(budget.limits)})")
    t_compile = compile_time_fresh_cache()
    print(f"numba compile time (fresh cache, incl. imports): {t_compile:.2f} s")

    data = sample_gmm(N, D_DIM, K, seed=0)
    den = memorizing_denoiser(data.train)
    mu = den.means
    x0 = np.ascontiguousarray(data.train)
    times = grid.paper_grid()
    seeds = list(range(1, times.size + 1))
    t0 = time.perf_counter()
    # the noise per_draw_losses draws from each seed (one chunk: N R d doubles are below its 64 MB chunk)
    noises = [np.random.default_rng(s).standard_normal((N, R, D_DIM)) for s in seeds]
    t_noise = time.perf_counter() - t0
    print(f"numpy noise generation for the baseline, 26 x {N * R * D_DIM:,} draws kept in memory: {t_noise:.2f} s "
          f"(outside the baseline's timing)")

    t_first = _timed(lambda: memlab_losses(x0, float(times[0]), den, seeds[0]))
    print(f"first memlab call (cache load or compile): {t_first:.2f} s")

    def run_numba():
        return [memlab_losses(x0, float(t), den, s) for t, s in zip(times, seeds)]

    def run_numpy():
        return [numpy_losses(x0, z, mu, float(grid.alpha(t)), float(t), 0.0) for t, z in zip(times, noises)]

    def run_memlab_noise():
        return [standard_normal_draws(s, (N, R, D_DIM)) for s in seeds]

    def run_numpy_noise():
        return [np.random.default_rng(s).standard_normal((N, R, D_DIM)) for s in seeds]

    t_numba = min(_timed(run_numba) for _ in range(3))
    t_mnoise = min(_timed(run_memlab_noise) for _ in range(3))
    t_nnoise = min(_timed(run_numpy_noise) for _ in range(3))
    t0 = time.perf_counter()
    ref = run_numpy()
    t_numpy = time.perf_counter() - t0
    fast = run_numba()
    same_noise = all(np.array_equal(a, b) for a, b in zip(run_memlab_noise(), noises))
    err = max(float(np.max(np.abs(a - b))) for a, b in zip(fast, ref))
    scale = max(float(np.max(np.abs(b))) for b in ref)

    madds = 26 * 2 * N * R * N * D_DIM
    peak = matmul_madds_per_s()
    rate = madds / t_numba
    print(f"memlab per_draw_losses: {t_numba:.3f} s   numpy baseline: {t_numpy:.3f} s   "
          f"speed-up: {t_numpy / t_numba:.1f}x (goal >= 5x)")
    print(f"  of which noise generation (memlab's parallel generator, separately timed): {t_mnoise:.3f} s "
          f"(numpy's own generator, one at a time: {t_nnoise:.3f} s; identical values: {same_noise}); "
          f"loss kernel and the rest: {t_numba - t_mnoise:.3f} s")
    print(f"max |numba - numpy| per-draw loss: {err:.2e} = {err / scale:.1e} relative (largest loss {scale:.3g})")
    print(f"float64 matmul: {peak / 1e9:.1f} G multiply-adds/s; kernel: {rate / 1e9:.1f} G multiply-adds/s "
          f"= {100 * rate / peak:.0f}% of matmul (goal >= 30%)")

    repeats = 5
    quiet = median_time(run_numba, repeats)
    with background_load() as info:
        loaded = median_time(run_numba, repeats)
    print(f"26 times, median of {repeats}: quiet {quiet:.3f} s; under load ({info}) {loaded:.3f} s; "
          f"slowdown {loaded / quiet:.2f}x (goal <= 2.5x; fair share about 2x)")


if __name__ == "__main__":
    main()
