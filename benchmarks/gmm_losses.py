"""Benchmark: Monte Carlo losses of the GMM laboratory, numba kernel vs a vectorised numpy baseline.

Workload: N = M = 200 (memorizing denoiser: the means are the training points), d = 50, K = 12,
100 noise draws per point, all 26 grid times.  memlab is timed through its public function
``per_draw_losses`` (which draws its noise from the seed); the baseline gets the same noise, drawn the same
way outside its timing.  Reports, all measured in this run:

* numba compile time (fresh cache, in a subprocess) and the cache-load time of the first call;
* wall time of ``per_draw_losses`` and of the numpy baseline, and their ratio (goal >= 5x);
* this machine's float64 matmul throughput (2000 x 2000 GEMM) and the kernel's multiply-adds per
  second as a fraction of it (goal >= 30%).  The kernel's multiply-add count is 2 B M d per time
  (B = N x draws rows; one d-long dot product for the squared distance and one axpy for the weighted
  mean per row and mean); the exactness corrections and the exponentials are not counted.

Run: ``python benchmarks/gmm_losses.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

import numpy as np

from memlab.numerics.gmm import memorizing_denoiser, sample_gmm
from memlab.numerics.losses import per_draw_losses
from memlab.theory import grid

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
            "x0 = np.arange(12.0).reshape(4, 3)\n"
            "per_draw_losses(x0, 0.5, [memorizing_denoiser(x0)], n_noise=2)\n"
            "print(time.perf_counter() - t0)\n")
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, NUMBA_CACHE_DIR=tmp)
        res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return float(res.stdout.strip())


def main():
    print(f"workload: N = M = {N}, d = {D_DIM}, K = {K}, {R} noise draws, 26 grid times; "
          f"{os.cpu_count()} CPU cores")
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
    print(f"noise generation: {t_noise:.2f} s (inside memlab's timing, outside the baseline's)")

    t_first = _timed(lambda: memlab_losses(x0, float(times[0]), den, seeds[0]))
    print(f"first memlab call (cache load or compile): {t_first:.2f} s")

    def run_numba():
        return [memlab_losses(x0, float(t), den, s) for t, s in zip(times, seeds)]

    def run_numpy():
        return [numpy_losses(x0, z, mu, float(grid.alpha(t)), float(t), 0.0) for t, z in zip(times, noises)]

    t_numba = min(_timed(run_numba) for _ in range(3))
    t0 = time.perf_counter()
    ref = run_numpy()
    t_numpy = time.perf_counter() - t0
    fast = run_numba()
    err = max(float(np.max(np.abs(a - b))) for a, b in zip(fast, ref))
    scale = max(float(np.max(np.abs(b))) for b in ref)

    madds = 26 * 2 * N * R * N * D_DIM
    peak = matmul_madds_per_s()
    rate = madds / t_numba
    print(f"memlab per_draw_losses: {t_numba:.3f} s   numpy baseline: {t_numpy:.3f} s   "
          f"speed-up: {t_numpy / t_numba:.1f}x (goal >= 5x)")
    print(f"max |numba - numpy| per-draw loss: {err:.2e} (largest loss {scale:.3g})")
    print(f"float64 matmul: {peak / 1e9:.1f} G multiply-adds/s; kernel: {rate / 1e9:.1f} G multiply-adds/s "
          f"= {100 * rate / peak:.0f}% of matmul (goal >= 30%)")


if __name__ == "__main__":
    main()
