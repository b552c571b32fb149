"""Benchmark: exact nearest-two search for the memorization fraction, against FAISS and torch.cdist.

Workloads (float32, D = 3072):

* ``readme``: S = 10,000 generated samples against N = 50,000 training points (CIFAR-sized images).
  Training points are uniform on the 0-255 pixel scale; half of the samples are training points plus
  N(0, 2^2) pixel noise (memorized), half are fresh draws, so the fraction is 0.5.
* ``offset``: S = 500 against N = 5,000 with train = 300 + U(0, 1) (a large common offset); half the
  samples are training points plus N(0, 0.008^2) noise, half fresh draws.
* ``centred``: the offset data minus 300 (exact in float32, so every distance is the same): the offset
  case must run within 2x of it.

Methods, each in its own subprocess so that its peak resident memory (``ru_maxrss``) is its own:

* ``memlab``: :func:`memlab.nearest_two` (blocked float32 GEMM, on shifted data when the offset is large,
  + certified exact recomputation; default 1 GiB working-memory bound, the package's thread policy);
* ``faiss``: ``faiss.knn(xq, xb, 2)`` (exact brute-force L2, what ``IndexFlatL2`` runs), when the
  optional benchmark-only dependency ``faiss-cpu`` is installed (``pip install faiss-cpu``; memlab itself
  never imports it);
* ``torch``: ``torch.cdist`` + ``topk(2, largest=False)`` in row chunks of 1,000 samples, when torch is
  installed;
* ``numpy`` (readme workload only): a naive per-sample loop ``((train - x)**2).sum(1)`` + ``argpartition``,
  timed on the first ``--naive-samples`` samples and extrapolated linearly to S (said so in the output).

For each method: wall time, CPU time (user + sys of its process during the search, all threads), peak
RSS, and the rows it gets wrong against a float64 reference: a row is wrong when its nearest or
second-nearest index differs from the reference's, or a reported squared distance is off by more than
1e-5 relative (float32 arithmetic without cancellation stays near 1e-7).  Rows where the 1/3-rule flag
differs are counted too.

The float64 reference (its own subprocess, numpy only, independent of memlab's code): the float64 GEMM
expansion ``||x||^2 + ||y||^2 - 2 x.y`` in chunks keeps the K = 8 smallest per sample; those candidates are
recomputed from float64 difference vectors and the two smallest kept (ties to the lower index).  A row is
certified when the K-th smallest expansion minus its rounding bound ``4 (D + 4) 2^-53 (||x|| + ||y||)^2``
exceeds the second exact distance (no other training point can be closer); rows that are not certified
are recomputed by brute force over all N training points.  The output says how many rows needed that.

Also measured: the machine's float32 matmul throughput (4096^3 GEMM) and memlab's GEMM throughput
``2 S N D / wall`` as a fraction of it; the numba compile time on a fresh cache; and the README workload
again under a fixed background load (``benchmarks/background.py``: one busy process per core) for memlab
and FAISS, with the loaded / quiet slowdown (goal <= 2.5x).  The 1-minute load average before each
phase is printed: timings on a busy machine are not comparable.

Run: ``python benchmarks/memorization.py`` (several minutes); ``--quick`` runs the readme workload scaled
to 1,000 x 5,000 (a smoke test of about a minute).
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
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from background import background_load, load_note  # noqa: E402

REL_TOL = 1e-5  # a reported squared distance further than this from the float64 one is wrong
K_CAND = 8


# ----------------------------------------------------------------------------------------------- data
def make_data(workload, S, N, D, seed=0):
    rng = np.random.default_rng(seed)
    half = S // 2
    if workload == "readme":
        train = rng.random((N, D), dtype=np.float32)
        train *= 255.0
        near = train[rng.integers(0, N, half)] + 2.0 * rng.standard_normal((half, D), dtype=np.float32)
        fresh = rng.random((S - half, D), dtype=np.float32) * 255.0
    elif workload in ("offset", "centred"):
        train = (300.0 + rng.random((N, D))).astype(np.float32)
        near = train[rng.integers(0, N, half)] + np.float32(0.008) * rng.standard_normal((half, D), dtype=np.float32)
        fresh = (300.0 + rng.random((S - half, D))).astype(np.float32)
    else:
        raise ValueError(f"unknown workload {workload!r}")
    samples = np.ascontiguousarray(np.vstack([near, fresh]))
    if workload == "centred":  # x - 300 is exact for float32 x in [150, 600] (Sterbenz): same distances
        samples -= np.float32(300.0)
        train -= np.float32(300.0)
    return samples, train


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


def cpu_s():
    t = os.times()
    return t.user + t.system


# -------------------------------------------------------------------------------- float64 reference
def reference_two(X, Y, rows=1000, cols=8192):
    """Float64 nearest two of every sample (numpy only; see the module docstring).  Returns the index
    (S, 2), squared distances (S, 2) and the number of rows that needed the full brute force."""
    S, D = X.shape
    N = Y.shape[0]
    K = min(K_CAND, N)
    nx = np.einsum("ij,ij->i", X.astype(np.float64), X.astype(np.float64))
    ny = np.empty(N)
    cq = np.full((S, K), np.inf)
    ci = np.zeros((S, K), dtype=np.int64)
    for c0 in range(0, N, cols):
        Yc = Y[c0:c0 + cols].astype(np.float64)
        ny[c0:c0 + len(Yc)] = np.einsum("ij,ij->i", Yc, Yc)
        for r0 in range(0, S, rows):
            Xr = X[r0:r0 + rows].astype(np.float64)
            q = nx[r0:r0 + rows, None] + ny[None, c0:c0 + len(Yc)] - 2.0 * (Xr @ Yc.T)
            kk = min(K, q.shape[1])
            part = np.argpartition(q, kk - 1, axis=1)[:, :kk]
            allq = np.hstack([cq[r0:r0 + rows], np.take_along_axis(q, part, axis=1)])
            alli = np.hstack([ci[r0:r0 + rows], part + c0])
            keep = np.argsort(allq, axis=1, kind="stable")[:, :K]
            cq[r0:r0 + rows] = np.take_along_axis(allq, keep, axis=1)
            ci[r0:r0 + rows] = np.take_along_axis(alli, keep, axis=1)
    idx = np.empty((S, 2), dtype=np.int64)
    sq = np.empty((S, 2))
    n_full = 0
    u = 2.0 ** -53
    for s in range(S):
        x = X[s].astype(np.float64)
        cand = np.sort(ci[s])
        e = ((Y[cand].astype(np.float64) - x) ** 2).sum(axis=1)
        o = np.lexsort((cand, e))[:2]
        bound = 4.0 * (D + 4) * u * (np.sqrt(nx[s]) + np.sqrt(ny.max())) ** 2
        if K < N and not cq[s, K - 1] - bound > e[o[1]]:
            n_full += 1
            e = np.concatenate([((Y[j:j + 4096].astype(np.float64) - x) ** 2).sum(axis=1) for j in range(0, N, 4096)])
            cand = np.arange(N)
            o = np.lexsort((cand, e))[:2]
        idx[s] = cand[o]
        sq[s] = e[o]
    return idx, sq, n_full


# ------------------------------------------------------------------------------------------ workers
def worker(method, workload, S, N, D, repeats, naive_samples, out_path):
    X, Y = make_data(workload, S, N, D)
    res = {"method": method, "workload": workload, "rss_data_mb": rss_now_mb()}
    arrays = {}

    def timed(fn):
        walls, c0 = [], cpu_s()
        out = None
        for _ in range(repeats):
            t = time.perf_counter()
            out = fn()
            walls.append(time.perf_counter() - t)
        res["wall_s"] = float(np.median(walls))
        res["walls"] = walls
        res["cpu_s"] = (cpu_s() - c0) / repeats
        return out

    if method == "memlab":
        from memlab.numerics.memorization import nearest_two

        nearest_two(X[:4], Y[:8])  # load the compiled kernels (compile cost is measured separately)
        nearest_two(X[:256], Y[:1024], threads=2)  # ... including the parallel ones
        res["rss_data_mb"] = rss_now_mb()  # data + libraries
        nt = timed(lambda: nearest_two(X, Y))
        arrays["index"] = nt.index
        arrays["sq"] = np.stack([nt.sq1, nt.sq2], axis=1)
        res["diag"] = {k: v for k, v in nt.diagnostics.items() if not k.startswith("_")}
    elif method == "faiss":
        import faiss

        faiss.knn(X[:4], Y[:8], 2)
        res["rss_data_mb"] = rss_now_mb()
        res["threads"] = faiss.omp_get_max_threads()
        dist, ind = timed(lambda: faiss.knn(X, Y, 2))  # squared L2, float32
        arrays["index"] = ind.astype(np.int64)
        arrays["sq"] = dist.astype(np.float64)
    elif method == "torch":
        import torch

        torch.set_num_threads(os.cpu_count() or 1)
        Xt, Yt = torch.from_numpy(X), torch.from_numpy(Y)
        torch.cdist(Xt[:4], Yt[:8]).topk(2, largest=False)
        res["rss_data_mb"] = rss_now_mb()

        def run():
            idx, val = [], []
            for s in range(0, S, 1000):
                v, i = torch.cdist(Xt[s:s + 1000], Yt).topk(2, dim=1, largest=False, sorted=True)
                idx.append(i.numpy())
                val.append(v.numpy())
            return np.vstack(idx), np.vstack(val)

        ind, dist = timed(run)
        arrays["index"] = ind.astype(np.int64)
        arrays["sq"] = dist.astype(np.float64) ** 2
        res["threads"] = torch.get_num_threads()
    elif method == "numpy":
        m = naive_samples

        def run():
            idx = np.empty((m, 2), dtype=np.int64)
            sq = np.empty((m, 2))
            for j in range(m):
                d = ((Y - X[j]) ** 2).sum(axis=1)
                two = np.argpartition(d, 1)[:2]
                two = two[np.argsort(d[two], kind="stable")]
                idx[j] = two
                sq[j] = d[two]
            return idx, sq

        idx, sq = timed(run)
        res["measured_samples"] = m
        res["wall_s_measured"] = res["wall_s"]
        res["cpu_s_measured"] = res["cpu_s"]
        res["wall_s"] *= S / m
        res["cpu_s"] *= S / m
        arrays["index"], arrays["sq"] = idx, sq
    elif method == "reference":
        t, c0 = time.perf_counter(), cpu_s()
        idx, sq, n_full = reference_two(X, Y)
        res["wall_s"], res["cpu_s"], res["n_full"] = time.perf_counter() - t, cpu_s() - c0, n_full
        arrays["index"], arrays["sq"] = idx, sq
    elif method == "matmul":
        A = np.random.default_rng(1).random((4096, 4096), dtype=np.float32)
        A @ A
        best = np.inf
        for _ in range(3):
            t = time.perf_counter()
            A @ A
            best = min(best, time.perf_counter() - t)
        res["gflops"] = 2 * 4096 ** 3 / best / 1e9
    else:
        raise ValueError(f"unknown method {method!r}")
    res["rss_peak_mb"] = rss_mb()
    with open(out_path, "w") as f:
        json.dump(res, f)
    if arrays:
        np.savez(out_path + ".npz", **arrays)


def run_worker(method, workload, args, S, N, repeats=1):
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        path = f.name
    cmd = [sys.executable, __file__, "--worker", method, "--workload", workload, "--S", str(S), "--N", str(N),
           "--D", str(args.D), "--repeats", str(repeats), "--naive-samples", str(min(args.naive_samples, S)),
           "--out", path]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        print(f"  {method} on {workload} failed:\n{p.stderr[-2000:]}")
        return None
    with open(path) as f:
        res = json.load(f)
    os.unlink(path)
    if os.path.exists(path + ".npz"):
        with np.load(path + ".npz") as z:
            res.update({k: z[k] for k in z.files})
        os.unlink(path + ".npz")
    return res


def compile_time():
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        code = ("import time, numpy as np; t=time.perf_counter(); from memlab.numerics.memorization import "
                "nearest_two; x=np.ones((2,3),np.float32); y=np.arange(12,dtype=np.float32).reshape(4,3); "
                "nearest_two(x,y); nearest_two(x,y,threads=2); nearest_two(x.astype(float), y.astype(float)); "
                "print(time.perf_counter()-t)")
        p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
        return float(p.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------------ scoring
def score(res, ref, k=1.0 / 3.0):
    """Wrong rows of a method against the float64 reference (on the rows the method computed)."""
    idx, sq = np.asarray(res["index"]), np.asarray(res["sq"], dtype=np.float64)
    m = idx.shape[0]
    ridx, rsq = ref["index"][:m], ref["sq"][:m]
    bad_index = (idx != ridx).any(axis=1)
    rel = np.abs(sq - rsq) / np.maximum(rsq, np.finfo(float).tiny)
    bad_dist = (rel > REL_TOL).any(axis=1)
    flag = sq[:, 0] < k * k * sq[:, 1]
    rflag = rsq[:, 0] < k * k * rsq[:, 1]
    return {"rows": m, "wrong_index": int(bad_index.sum()), "wrong_dist": int(bad_dist.sum()),
            "wrong": int((bad_index | bad_dist).sum()), "max_rel": float(rel.max()),
            "rule_flips": int((flag != rflag).sum()), "fraction": float(flag.mean())}


def table(title, rows, flops=None):
    print(f"\n{title}")
    head = f"{'method':>30} {'wall s':>8} {'CPU s':>8} {'peak RSS MB':>11} {'above data MB':>13} {'wrong rows':>10} " \
           f"{'(index / dist)':>14} {'max rel err':>11} {'rule flips':>10}"
    if flops:
        head += f" {'GFLOP/s':>8}"
    print(head)
    for name, r, sc in rows:
        split = f"{sc['wrong_index']} / {sc['wrong_dist']}"
        line = (f"{name:>30} {r['wall_s']:8.2f} {r['cpu_s']:8.2f} {r['rss_peak_mb']:11.0f} "
                f"{r['rss_peak_mb'] - r['rss_data_mb']:13.0f} {sc['wrong']:10d} "
                f"{split:>14} {sc['max_rel']:11.1e} {sc['rule_flips']:10d}")
        if flops:
            line += f" {flops / r['wall_s'] / 1e9:8.1f}"
        print(line)


def have(module):
    try:
        __import__(module)
        return True
    except ImportError:
        return False


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--S", type=int, default=10000, help="readme workload: samples (default 10000)")
    ap.add_argument("--N", type=int, default=50000, help="readme workload: training points (default 50000)")
    ap.add_argument("--D", type=int, default=3072, help="dimension of every workload (default 3072)")
    ap.add_argument("--naive-samples", type=int, default=100, help="samples the naive numpy loop is timed on")
    ap.add_argument("--quick", action="store_true", help="readme workload at 1,000 x 5,000: a one-minute smoke test")
    ap.add_argument("--no-load", action="store_true", help="skip the runs under background load")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--workload", default="readme", help=argparse.SUPPRESS)
    ap.add_argument("--repeats", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--out", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.worker, args.workload, args.S, args.N, args.D, args.repeats, args.naive_samples, args.out)
        return
    if args.quick:
        args.S, args.N, args.naive_samples = 1000, 5000, 20
    methods = ["memlab"]
    if have("faiss"):
        methods.append("faiss")
    else:
        print("faiss not installed: the FAISS baseline is skipped (benchmark-only optional dependency: "
              "pip install faiss-cpu)")
    if have("torch"):
        methods.append("torch")
    else:
        print("torch not installed: the torch.cdist baseline is skipped")
    names = {"memlab": "memlab.nearest_two", "faiss": "faiss.knn (IndexFlatL2)",
             "torch": "torch.cdist+topk (chunked)", "numpy": "naive numpy (extrapolated)"}
    print(f"nearest-two search, float32, D = {args.D}; {load_note()}")
    versions = [f"numpy {np.__version__}"] + [f"{m} {__import__(m).__version__}" for m in ("faiss", "torch")
                                              if m in methods]
    print("versions: " + ", ".join(versions))

    if not args.quick:
        print(f"numba compile time, fresh cache (float32 + float64 kernels, serial and threaded paths, incl. import): "
              f"{compile_time():.2f} s")
    mm = run_worker("matmul", "readme", args, 1, 2)
    print(f"float32 matmul throughput (4096^3, best of 3): {mm['gflops']:.1f} GFLOP/s")

    # ------------------------------------------------------------------ readme workload
    S, N, D = args.S, args.N, args.D
    print(f"\n== readme workload: S = {S} samples, N = {N} training points (uniform 0-255, half memorized) ==")
    print(f"  {load_note()}")
    ref = run_worker("reference", "readme", args, S, N)
    print(f"  float64 reference: {ref['wall_s']:.1f} s, {ref['n_full']} rows needed the full brute force")
    res = {m: run_worker(m, "readme", args, S, N) for m in methods + ["numpy"]}
    flops = 2.0 * S * N * D
    rows = [(names[m], r, score(r, ref)) for m, r in res.items() if r]
    table(f"readme workload ({S} x {N}; numpy on {min(args.naive_samples, S)} samples, extrapolated)", rows, flops)
    ours = res["memlab"]
    print(f"memlab GEMM throughput: {flops / ours['wall_s'] / 1e9:.1f} GFLOP/s = "
          f"{100 * flops / ours['wall_s'] / 1e9 / mm['gflops']:.0f}% of this machine's float32 matmul (goal >= 90%)")
    print(f"memlab diagnostics: {ours['diag']}; memorization fraction {score(ours, ref)['fraction']:.4f}")
    if res.get("faiss"):
        fa = res["faiss"]
        ok = ours["cpu_s"] <= fa["cpu_s"] and score(ours, ref)["wrong"] == 0
        print(f"goal memlab CPU time <= FAISS CPU time with 0 wrong rows: {ours['cpu_s']:.2f} s vs "
              f"{fa['cpu_s']:.2f} s, {score(ours, ref)['wrong']} wrong rows: {'met' if ok else 'NOT met'} "
              f"(FAISS threads {fa['threads']}; wall {fa['wall_s'] / ours['wall_s']:.2f}x memlab's)")
    if res.get("torch"):
        print(f"speed-up vs torch.cdist+topk: {res['torch']['wall_s'] / ours['wall_s']:.2f}x (wall)")
    print(f"peak memory goal <= 2 GB: memlab peak RSS {ours['rss_peak_mb']:.0f} MB "
          f"({'met' if ours['rss_peak_mb'] <= 2048 else 'NOT met'}; data + libraries {ours['rss_data_mb']:.0f} MB, "
          f"working-memory bound {ours['diag']['memory_limit'] / 2**20:.0f} MiB, largest working set "
          f"{ours['diag']['working_bytes'] / 2**20:.0f} MiB)")

    # ------------------------------------------------------------------ offset workload
    So, No = 500, 5000
    print(f"\n== offset workload: S = {So}, N = {No}, train = 300 + U(0, 1), and the same data centred ==")
    print(f"  {load_note()}")
    rows = []
    off = {}
    for wl in ("offset", "centred"):
        ref_o = run_worker("reference", wl, args, So, No)
        for m in methods:
            r = run_worker(m, wl, args, So, No, repeats=5 if m == "memlab" else 3)
            if r:
                off[(m, wl)] = r
                rows.append((f"{names[m]} [{wl}]", r, score(r, ref_o)))
    table(f"offset workload ({So} x {No}; median of 5 calls for memlab, 3 for the others)", rows)
    if ("memlab", "offset") in off and ("memlab", "centred") in off:
        a, b = off[("memlab", "offset")], off[("memlab", "centred")]
        ratio = a["wall_s"] / b["wall_s"]
        print(f"memlab offset / centred: {ratio:.2f}x wall, {a['cpu_s'] / b['cpu_s']:.2f}x CPU (goal <= 2x: "
              f"{'met' if ratio <= 2 else 'NOT met'}); exact recomputations per sample "
              f"{a['diag']['exact_per_sample']:.2f} / {b['diag']['exact_per_sample']:.2f}")

    # ------------------------------------------------------------------ under background load
    if not args.no_load:
        print(f"\n== readme workload under a fixed background load ==  ({load_note()})")
        loaded = {}
        with background_load() as info:
            for m in [m for m in methods if m in ("memlab", "faiss")]:
                loaded[m] = run_worker(m, "readme", args, S, N)
        print(f"  load: {info}")
        for m, r in loaded.items():
            if r and res.get(m):
                slow = r["wall_s"] / res[m]["wall_s"]
                goal = f" (goal <= 2.5x: {'met' if slow <= 2.5 else 'NOT met'})" if m == "memlab" else ""
                print(f"  {names[m]:>26}: quiet {res[m]['wall_s']:.2f} s, loaded {r['wall_s']:.2f} s "
                      f"(CPU {r['cpu_s']:.2f} s): slowdown {slow:.2f}x{goal}; wrong rows {score(r, ref)['wrong']}")


if __name__ == "__main__":
    main()
