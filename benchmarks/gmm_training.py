"""Benchmark: PyTorch GMM-denoiser training throughput (docs/theory/validation.md §2).

N = M = 200, d = 50, K = 12, 100 noise draws per point per step (the ``paper`` protocol), Adam + update
EMA, full batch.  Reports steps per second on CPU (all cores) and on CUDA when available, float32 and
float64, measured after a warm-up of 5 steps; and the multiply-add rate against the count of about
3 N n_noise M d per step (forward plus backward).  The paper's 50,000-step model then takes
50,000 / (steps/s) seconds, printed too, next to what ``estimate_sweep_seconds`` (the estimate
``sweep_capacity`` logs before training) predicts for one configuration.

Run: ``python benchmarks/gmm_training.py [--steps 30]``.
"""

from __future__ import annotations

import argparse
import time

import torch

import memlab
from memlab.validation.gmm_torch import PROTOCOLS, GMMTrainConfig, estimate_sweep_seconds, train_gmm
from memlab.validation.runtime import format_seconds


def measure(train, device, dtype, steps):
    def config(s):
        return GMMTrainConfig(200, PROTOCOLS["paper"].replace(steps=s), dtype=dtype)

    train_gmm(train, config(5), device=device, quiet=True)  # warm-up (allocations, kernels)
    if device == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    train_gmm(train, config(steps), device=device, quiet=True)
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
    for dev in devices:
        est = estimate_sweep_seconds(200, 50, "paper", device=dev)
        print(f"  estimate_sweep_seconds(200, 50, 'paper') on {dev}: {est['steps_per_s']:.2f} steps/s, "
              f"{format_seconds(est['seconds_per_model'])} per model, {est['models']} models: "
              f"{format_seconds(est['total_seconds'])} on one worker")
    if "cuda" not in devices:
        print("  no CUDA device on this machine: GPU figure not measured")


if __name__ == "__main__":
    main()
