"""Benchmark: PyTorch GMM-denoiser training throughput (issue 6).

N = M = 200, d = 50, K = 12, 100 noise draws per point per step (the paper's protocol), Adam + update
EMA, full batch.  Reports steps per second on CPU (all cores) and on CUDA when available, float32 and
float64, measured after a warm-up of 5 steps; and the multiply-add rate against the spec's count of about
3 N n_noise M d per step (forward plus backward).  The paper's 50,000-step model then takes
50,000 / (steps/s) seconds, printed too.

Run: ``python benchmarks/gmm_training.py [--steps 30]``.
"""

from __future__ import annotations

import argparse
import time

import torch

import memlab
from memlab.validation.gmm_torch import train_gmm


def measure(train, device, dtype, steps):
    train_gmm(train, 200, steps=5, device=device, dtype=dtype, quiet=True)  # warm-up (allocations, kernels)
    if device == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    train_gmm(train, 200, steps=steps, device=device, dtype=dtype, quiet=True)
    if device == "cuda":
        torch.cuda.synchronize()
    return steps / (time.perf_counter() - t)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=30)
    args = ap.parse_args()
    data = memlab.sample_gmm(200, 50, 12, seed=0)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    madds = 3 * 200 * 100 * 200 * 50
    print(f"GMM training step, N = M = 200, d = 50, 100 draws (torch {torch.__version__}, "
          f"{torch.get_num_threads()} CPU threads{', ' + torch.cuda.get_device_name() if 'cuda' in devices else ''})")
    for dev in devices:
        for dt in ("float32", "float64"):
            sps = measure(data.train, dev, dt, args.steps)
            print(f"  {dev:>4} {dt}: {sps:8.2f} steps/s  ({sps * madds / 1e9:6.1f} G multiply-adds/s by the 3 N R M d "
                  f"count); 50,000 steps = {50000 / sps / 60:6.1f} min")
    if "cuda" not in devices:
        print("  no CUDA device on this machine: GPU figure not measured")


if __name__ == "__main__":
    main()
