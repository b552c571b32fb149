"""Benchmark: RF training in PyTorch and the DDPM n ladder (docs/theory/validation.md §3-§4).

1. Random-features fresh-noise GD, one step = ``O(p d n)``: PyTorch (autograd, ``train_rf``) against the numba
   kernel of ``memlab.numerics.rf_gd.simulate_gd(noise="fresh")`` on the same matrices, steps/s and the ratio;
   numba's compile time is measured separately (first call) and kept out of the rate.
2. DDPM (residual MLP, W = 128, d = 8, full-batch SGD): steps/s for several n, and the cost of one checkpoint
   evaluation (1000 samples with 200 and 1000 ancestral steps, memorization fraction, score error, KL proxy).
   CUDA is measured too when present.

Run: ``python benchmarks/timescales.py [--quick]``.
"""

from __future__ import annotations

import argparse
import time

import torch

from memlab.numerics.rf_gd import simulate_gd
from memlab.numerics.rf_matrices import true_feature_matrices
from memlab.theory.rf_model import RFModel
from memlab.validation.ddpm_torch import DDPMConfig, train_ddpm
from memlab.validation.rf_torch import RFTrainConfig, train_rf


def rf_bench(d, psi_p, psi_n, steps):
    model = RFModel(psi_p=psi_p, psi_n=psi_n, t=0.1, d=d, seed=0)
    n, p = model.n, model.p
    mats = true_feature_matrices(model, k_max=60, n_nodes=80)
    dtau = 1e-2 * psi_p / model.constants.delta_t
    t0 = time.perf_counter()
    simulate_gd(mats, [dtau], noise="fresh")                       # compile (or load the cache) + 1 step
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    simulate_gd(mats, [steps * dtau], noise="fresh")
    numba_rate = steps / (time.perf_counter() - t0)
    cfg = RFTrainConfig(tau=[steps * dtau], n_eval_noise=1, n_score=10)
    r = train_rf(model, cfg, quiet=True)
    torch_rate = r.diagnostics["steps_per_s"]
    print(f"RF fresh-noise GD d={d} p={p} n={n} (3 p d n = {3 * p * d * n / 1e6:.0f} M mult-adds/step): numba "
          f"{numba_rate:.1f} steps/s (compile/cache load {compile_s:.2f} s, excluded), PyTorch CPU autograd "
          f"{torch_rate:.1f} steps/s -> ratio torch/numba = {torch_rate / numba_rate:.2f}")
    if torch.cuda.is_available():
        r = train_rf(model, cfg.replace(tau=[steps * 10 * dtau]), quiet=True, device="cuda")
        print(f"  PyTorch CUDA {r.diagnostics['steps_per_s']:.1f} steps/s -> ratio cuda/numba = "
              f"{r.diagnostics['steps_per_s'] / numba_rate:.2f}")


def ddpm_rate(n, steps, device):
    cfg = DDPMConfig(steps=steps, n_checkpoints=2, first_checkpoint=steps // 2, n_gen=16, sample_steps=2, n_score=16)
    train_ddpm(n, cfg.replace(steps=20, first_checkpoint=10), device=device, quiet=True)   # warm-up
    t0 = time.perf_counter()
    train_ddpm(n, cfg, device=device, quiet=True)
    return steps / (time.perf_counter() - t0)


def eval_cost(sample_steps, device):
    t0 = time.perf_counter()
    train_ddpm(64, DDPMConfig(steps=1, n_checkpoints=2, first_checkpoint=1, n_gen=1000, sample_steps=sample_steps),
               device=device, quiet=True)
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="smaller sizes")
    args = ap.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, CUDA: {torch.cuda.is_available()}")
    rf_bench(50 if args.quick else 100, 16, 4, 100 if args.quick else 300)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for dev in devices:
        for n in ([64, 256] if args.quick else [64, 256, 1024]):
            rate = ddpm_rate(n, 500 if args.quick else 2000, dev)
            print(f"DDPM W=128 d=8 full batch n={n:5d} on {dev}: {rate:7.0f} steps/s "
                  f"(1e6 steps = {1e6 / rate / 60:.0f} min)")
        for ss in (200, 1000):
            print(f"checkpoint evaluation on {dev} (1000 samples, {ss} ancestral steps, 1/3 rule + bootstrap, "
                  f"score error on 10^4 points, KL proxy): {eval_cost(ss, dev):.2f} s")


if __name__ == "__main__":
    main()
