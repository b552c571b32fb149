"""Benchmark: training speed of the forecast's built-in models on the digits ladder (docs/theory/validation.md §5).

For each built-in model (``mlp``: the residual MLP, W = 128; ``conv``: the small convolutional network, 32 channels)
and each training-set size of the digits ladder, time ``steps`` full-batch Adam updates through the public
training path (one ``forecast_memorization`` run is many of these steps plus evaluations) and print steps/s, in
this process with one torch thread (the forecast's default on CPU) and with all cores, quiet and under the fixed
background load of ``background.py`` (one busy process per core), with the loaded/quiet ratio.  One checkpoint
evaluation (500 samples with 100 ancestral steps, the memorization fraction, the Frechet distance, two fixed-draw
losses) is timed separately.  CUDA is measured too when present.

Run: ``python benchmarks/forecast.py [--quick]`` (needs ``memlab[digits]`` and torch).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
from background import background_load  # noqa: E402

from memlab.numerics.memorization import memorization_fraction  # noqa: E402
from memlab.validation.ddpm_torch import ConvDenoiser, DDPMSchedule, ResidualMLP, ancestral_sample  # noqa: E402
from memlab.validation.forecast import frechet_distance, load_forecast_data  # noqa: E402


def make(model, dim, shape):
    return ResidualMLP(dim, 128, seed=0) if model == "mlp" else ConvDenoiser(shape, 32, seed=0)


def steps_per_s(model, x, shape, steps, device, threads):
    """Full-batch Adam steps/s on the points ``x`` (the loop of the forecast's trainer)."""
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        dev = torch.device(device)
        _, abar_np = DDPMSchedule().arrays()
        abar = torch.as_tensor(abar_np, dtype=torch.float32, device=dev)
        x0 = torch.as_tensor(x, dtype=torch.float32, device=dev)
        net = make(model, x.shape[1], shape).to(dev)
        opt = torch.optim.Adam(net.parameters(), lr=4e-3)
        g = torch.Generator().manual_seed(0)

        def one():
            k = torch.randint(0, 1000, (x0.shape[0],), generator=g).to(dev)
            eps = torch.randn(x0.shape, generator=g).to(dev)
            ab = abar[k][:, None]
            loss = ((net(ab.sqrt() * x0 + (1 - ab).sqrt() * eps, k) - eps) ** 2).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        for _ in range(5):
            one()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(steps):
            one()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        return steps / (time.perf_counter() - t0)
    finally:
        torch.set_num_threads(old)


def eval_seconds(x, ref, shape, device):
    dev = torch.device(device)
    net = make("mlp", x.shape[1], shape).to(dev).eval()
    _, abar_np = DDPMSchedule().arrays()
    t0 = time.perf_counter()
    with torch.no_grad():
        xs = ancestral_sample(net, 500, x.shape[1], 100, abar_np, 1, dev, torch.float32).double().cpu().numpy()
    memorization_fraction(xs, x, n_boot=0)
    frechet_distance(xs, ref)
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer sizes and steps")
    args = ap.parse_args()
    fd = load_forecast_data("digits")
    ns = [64, 256, 1024] if args.quick else [32, 64, 128, 256, 512, 1024]
    cores = os.cpu_count() or 1
    memorization_fraction(fd.x[:10], fd.x[:20], n_boot=0)   # numba compile outside the timings
    print(f"digits: {fd.n} points, D = {fd.dim}; full-batch Adam; {cores} cores; torch {torch.__version__}")
    rows = []
    for model in ("mlp", "conv"):
        for n in ns:
            steps = max(10, int((4000 if model == "mlp" else 800) / max(1, n / 64))) // (3 if args.quick else 1)
            q1 = steps_per_s(model, fd.x[:n], fd.image_shape, steps, "cpu", 1)
            qa = steps_per_s(model, fd.x[:n], fd.image_shape, steps, "cpu", cores)
            rows.append([model, n, steps, q1, qa])
    with background_load() as info:
        for r in rows:
            r.append(steps_per_s(r[0], fd.x[:r[1]], fd.image_shape, r[2], "cpu", 1))
            r.append(steps_per_s(r[0], fd.x[:r[1]], fd.image_shape, r[2], "cpu", cores))
    print(f"\nCPU steps/s (quiet, then under load: {info})")
    print(f"{'model':6s} {'n':>5s} {'1 thread':>9s} {f'{cores} threads':>10s} {'loaded 1t':>10s} "
          f"{f'loaded {cores}t':>10s} {'slowdown 1t':>12s} {f'slowdown {cores}t':>12s}")
    for model, n, steps, q1, qa, l1, la in rows:
        print(f"{model:6s} {n:5d} {q1:9.1f} {qa:10.1f} {l1:10.1f} {la:10.1f} {q1 / l1:11.2f}x {qa / la:11.2f}x")
    ev = eval_seconds(fd.x[:256], fd.x[-500:], fd.image_shape, "cpu")
    print(f"\none checkpoint evaluation (500 samples x 100 steps, fraction, Frechet distance): {ev:.2f} s on CPU")
    if torch.cuda.is_available():
        print("\nCUDA steps/s")
        for model in ("mlp", "conv"):
            for n in ns:
                print(f"{model:6s} {n:5d} {steps_per_s(model, fd.x[:n], fd.image_shape, 500, 'cuda', 1):9.1f}")


if __name__ == "__main__":
    main()
