"""Benchmark: exact nearest-two search for the memorization fraction (issue 5).

Workload: S = 10,000 generated samples against N = 50,000 training points in D = 3072 (CIFAR-sized
images), float32.  Training points are uniform on the 0-255 pixel scale; half of the samples are
training points plus N(0, 2^2) pixel noise (memorized), half are fresh draws, so the fraction is 0.5.

Each method runs in its own subprocess so that its peak resident memory (``ru_maxrss``) is its own:

* ``memlab``: :func:`memlab.nearest_two` (blocked float32 GEMM + certified exact recomputation,
  default 1 GiB working-memory bound);
* ``torch``: ``torch.cdist`` + ``topk(2, largest=False)`` in row chunks of 1,000 samples (the full
  10k x 50k distance matrix alone would be 2 GB), when torch is installed;
* ``numpy``: a naive per-sample loop ``((train - x)**2).sum(1)`` + ``argpartition``, timed on the first
  ``--naive-samples`` samples and extrapolated linearly to S (said so in the output).

Also measured in this run: the machine's float32 matmul throughput (4096^3 GEMM) and our GEMM
throughput ``2 S N D / wall`` as a fraction of it; the numba compile time on a fresh cache; agreement
of the indices between the methods.

Run: ``python benchmarks/memorization.py`` (``--small`` for a quick 1,000 x 5,000 run).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np


def make_data(S, N, D, seed=0):
    rng = np.random.default_rng(seed)
    train = rng.random((N, D), dtype=np.float32)
    train *= 255.0
    half = S // 2
    near = train[rng.integers(0, N, half)] + 2.0 * rng.standard_normal((half, D), dtype=np.float32)
    fresh = rng.random((S - half, D), dtype=np.float32) * 255.0
    return np.ascontiguousarray(np.vstack([near, fresh])), train


def rss_mb():
    """Peak resident set size of this process so far (MB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def rss_now_mb():
    """Current resident set size (MB), from /proc where available."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return rss_mb()


def worker(method, S, N, D, naive_samples, out_path):
    X, Y = make_data(S, N, D)
    res = {"method": method, "rss_data_mb": rss_now_mb()}
    if method == "memlab":
        from memlab.numerics.memorization import nearest_two

        nearest_two(X[:4], Y[:8])  # load the compiled kernels (compile cost is measured separately)
        res["rss_data_mb"] = rss_now_mb()  # data + libraries
        t = time.perf_counter()
        nt = nearest_two(X, Y)
        res["wall_s"] = time.perf_counter() - t
        res["index"] = nt.index.tolist()
        res["diag"] = {k: v for k, v in nt.diagnostics.items() if not k.startswith("_")}
        from memlab.numerics.memorization import memorized_mask

        res["fraction"] = float(memorized_mask(nt.sq1, nt.sq2).mean())
    elif method == "torch":
        import torch

        torch.set_num_threads(os.cpu_count() or 1)
        Xt, Yt = torch.from_numpy(X), torch.from_numpy(Y)
        torch.cdist(Xt[:4], Yt[:8]).topk(2, largest=False)
        res["rss_data_mb"] = rss_now_mb()  # data + libraries
        t = time.perf_counter()
        idx = []
        for s in range(0, S, 1000):
            d = torch.cdist(Xt[s:s + 1000], Yt)
            v, i = d.topk(2, dim=1, largest=False, sorted=True)
            idx.append(i.numpy())
        res["wall_s"] = time.perf_counter() - t
        res["index"] = np.vstack(idx).tolist()
        res["threads"] = torch.get_num_threads()
    elif method == "numpy":
        m = naive_samples
        t = time.perf_counter()
        idx = np.empty((m, 2), dtype=np.int64)
        for j in range(m):
            d = ((Y - X[j]) ** 2).sum(axis=1)
            two = np.argpartition(d, 1)[:2]
            idx[j] = two[np.argsort(d[two], kind="stable")]
        el = time.perf_counter() - t
        res["wall_s_measured"] = el
        res["measured_samples"] = m
        res["wall_s"] = el * S / m
        res["index"] = idx.tolist()
    elif method == "matmul":
        A = np.random.default_rng(1).random((4096, 4096), dtype=np.float32)
        A @ A
        best = np.inf
        for _ in range(3):
            t = time.perf_counter()
            A @ A
            best = min(best, time.perf_counter() - t)
        res["gflops"] = 2 * 4096 ** 3 / best / 1e9
    res["rss_peak_mb"] = rss_mb()
    with open(out_path, "w") as f:
        json.dump(res, f)


def run_worker(method, args, env=None):
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        path = f.name
    cmd = [sys.executable, __file__, "--worker", method, "--S", str(args.S), "--N", str(args.N), "--D", str(args.D),
           "--naive-samples", str(args.naive_samples), "--out", path]
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if p.returncode != 0:
        print(f"{method} failed:\n{p.stderr[-2000:]}")
        return None
    with open(path) as f:
        res = json.load(f)
    os.unlink(path)
    return res


def compile_time():
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        code = ("import time, numpy as np; t=time.perf_counter(); from memlab.numerics.memorization import "
                "nearest_two; x=np.ones((2,3),np.float32); y=np.arange(12,dtype=np.float32).reshape(4,3); "
                "nearest_two(x,y); nearest_two(x.astype(float), y.astype(float)); print(time.perf_counter()-t)")
        p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
        return float(p.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--S", type=int, default=10000)
    ap.add_argument("--N", type=int, default=50000)
    ap.add_argument("--D", type=int, default=3072)
    ap.add_argument("--naive-samples", type=int, default=100)
    ap.add_argument("--small", action="store_true", help="1,000 x 5,000 in D = 3072")
    ap.add_argument("--worker", default=None)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    if args.small:
        args.S, args.N = 1000, 5000
    if args.worker:
        worker(args.worker, args.S, args.N, args.D, min(args.naive_samples, args.S), args.out)
        return
    print(f"nearest-two search: S = {args.S} samples, N = {args.N} training points, D = {args.D}, float32; "
          f"{os.cpu_count()} CPU cores")
    ct = compile_time()
    print(f"numba compile time, fresh cache (float32 + float64 kernels, incl. import): {ct:.2f} s")
    mm = run_worker("matmul", args)
    ours = run_worker("memlab", args)
    try:
        import torch  # noqa: F401
        th = run_worker("torch", args)
    except ImportError:
        th = None
        print("torch not installed: torch.cdist baseline skipped")
    nv = run_worker("numpy", args)
    flops = 2.0 * args.S * args.N * args.D
    print(f"\nfloat32 matmul throughput (4096^3, best of 3): {mm['gflops']:.1f} GFLOP/s")
    print(f"{'method':>28} {'wall s':>9} {'peak RSS MB':>12} {'above data+libs MB':>19} {'GFLOP/s':>9}")
    rows = [("memlab.nearest_two", ours)]
    if th:
        rows.append(("torch.cdist+topk (chunked)", th))
    rows.append(("naive numpy (extrapolated)", nv))
    for name, r in rows:
        print(f"{name:>28} {r['wall_s']:9.2f} {r['rss_peak_mb']:12.0f} {r['rss_peak_mb'] - r['rss_data_mb']:19.0f} "
              f"{flops / r['wall_s'] / 1e9:9.1f}")
    print(f"\nmemlab GEMM throughput: {flops / ours['wall_s'] / 1e9:.1f} GFLOP/s = "
          f"{100 * flops / ours['wall_s'] / 1e9 / mm['gflops']:.0f}% of this machine's float32 matmul")
    print(f"memlab diagnostics: {ours['diag']}; memorization fraction {ours['fraction']:.4f}")
    if th:
        print(f"speed-up vs torch.cdist+topk: {th['wall_s'] / ours['wall_s']:.2f}x")
        a, b = np.array(ours["index"]), np.array(th["index"])
        print(f"nearest index equal to torch's for {100 * np.mean(a[:, 0] == b[:, 0]):.3f}% of samples, "
              f"both indices for {100 * np.mean((a == b).all(1)):.3f}% (torch's cdist is float32 GEMM "
              f"without correction)")
        bad = np.flatnonzero((a != b).any(1))
        if bad.size:
            X, Y = make_data(args.S, args.N, args.D)
            X64 = X[bad].astype(np.float64)
            ours_q = ((X64[:, None, :] - Y[a[bad]].astype(np.float64)) ** 2).sum(-1)
            th_q = ((X64[:, None, :] - Y[b[bad]].astype(np.float64)) ** 2).sum(-1)
            better = np.sum(ours_q.sum(1) < th_q.sum(1)) + np.sum(
                (ours_q[:, 0] < th_q[:, 0]) & (ours_q.sum(1) == th_q.sum(1)))
            print(f"  where they differ ({bad.size} samples), float64 distances: memlab's pair is closer for "
                  f"{better}, torch's for {bad.size - better}; "
                  f"e.g. sample {bad[0]}: memlab {np.sqrt(ours_q[0]).round(4).tolist()} "
                  f"(indices {a[bad[0]].tolist()}), torch {np.sqrt(th_q[0]).round(4).tolist()} "
                  f"(indices {b[bad[0]].tolist()})")
    print(f"speed-up vs naive numpy: {nv['wall_s'] / ours['wall_s']:.1f}x (numpy timed on "
          f"{nv['measured_samples']} samples: {nv['wall_s_measured']:.2f} s, extrapolated to {args.S})")
    a, c = np.array(ours["index"])[:nv["measured_samples"]], np.array(nv["index"])
    print(f"indices equal to the naive float32 loop on those samples: {100 * np.mean((a == c).all(1)):.1f}%")
    print(f"peak memory goal <= 2 GB: memlab peak RSS {ours['rss_peak_mb']:.0f} MB "
          f"({'met' if ours['rss_peak_mb'] <= 2048 else 'NOT met'}; data + libraries {ours['rss_data_mb']:.0f} MB, "
          f"working-memory bound {ours['diag']['memory_limit'] / 2**20:.0f} MiB, largest working set "
          f"{ours['diag']['working_bytes'] / 2**20:.0f} MiB)")


if __name__ == "__main__":
    main()
