"""Capacity sweep: train GMM denoisers over M, measure the memorization transition, compare with M*.

Each model is an independent task submitted to a ``concurrent.futures.Executor`` (a local process pool
by default, a Dask cluster through ``distributed.Client(address).get_executor()``).  Finished models are
stored as JSON under ``out/models`` (written atomically), so an interrupted sweep resumes without
redoing them; a model interrupted mid-training resumes from its own checkpoint.

References: arXiv:2508.17689v1 App. H.1 (protocol, M search) and Eq. 21 (M*); spec gmm_laboratory.md
sections 5-7.  The memorization fraction is :func:`memlab.numerics.memorization.memorization_fraction`.
"""

from __future__ import annotations

import csv
import json
import os
import time
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..numerics.gmm import GMMDenoiser, sample_gmm
from ..numerics.losses import training_loss
from ..numerics.memorization import memorization_fraction
from ..numerics.sampler import ddim_sample
from ..theory import _checks
from ..theory.crossover import predict_mstar
from ..theory.grid import paper_grid
from .search import coarse_ms, m_pt, refine_ms, transition_bounds

__all__ = ["GMMEvaluation", "evaluate_gmm", "CapacitySweep", "sweep_capacity", "sweep_grid",
           "executor_for", "DEFAULT_GRID"]

T16 = float(paper_grid()[16])
DEFAULT_GRID = {"N": (50, 100, 150, 200), "d": (30, 40, 50, 60), "K": (3, 6, 9, 12)}


@dataclass(frozen=True)
class GMMEvaluation:
    """Per-model evaluation (spec section 7): memorization of DDIM samples, losses at t (x0 units),
    learned sigma^2, distances of the learned means to the nearest training point and true mean."""

    M: int
    fraction: float
    ci_low: float | None
    ci_high: float | None
    sigma2: float
    train_loss: float
    test_loss: float
    loss_t: float
    dist_train: float
    dist_true: float
    n_samples: int


def evaluate_gmm(means, sigma2, data, *, n_samples: int = 50, sample_seed: int = 0, t: float = T16,
                 n_noise: int = 100, noise_seed: int = 0, n_boot: int = 1000) -> GMMEvaluation:
    """Evaluate learned GMM parameters on a :class:`memlab.GMMData` draw.

    Samples: deterministic DDIM on the paper grid from the learned denoiser (seeded; same seed for every
    M).  Losses: ``L_{N,t}`` (x0 units, per point, summed over d) on the training and held-out points at
    ``t`` (default t_16 = 0.36028) with ``n_noise`` draws.
    """
    means = np.asarray(means, dtype=np.float64)
    den = GMMDenoiser(means, float(sigma2), "trained")
    samples = ddim_sample(den, n_samples, seed=sample_seed).samples
    mf = memorization_fraction(samples, data.train, n_boot=n_boot, seed=sample_seed)
    tr = training_loss(den, data.train, t, n_noise=n_noise, seed=noise_seed).value
    te = training_loss(den, data.heldout, t, n_noise=n_noise, seed=noise_seed).value
    dtr = np.sqrt(((means[:, None, :] - data.train[None]) ** 2).sum(-1)).min(1).mean()
    dtrue = np.sqrt(((means[:, None, :] - data.means[None]) ** 2).sum(-1)).min(1).mean()
    return GMMEvaluation(M=means.shape[0], fraction=mf.fraction, ci_low=mf.ci_low, ci_high=mf.ci_high,
                         sigma2=float(sigma2), train_loss=float(tr), test_loss=float(te), loss_t=float(t),
                         dist_train=float(dtr), dist_true=float(dtrue), n_samples=n_samples)


def _model_task(task: dict) -> dict:
    """Train and evaluate one model (top-level so process pools and Dask can pickle it)."""
    import torch

    from .gmm_torch import train_gmm

    if task.get("threads"):
        torch.set_num_threads(int(task["threads"]))
    data = sample_gmm(task["N"], task["d"], task["K"], seed=task["data_seed"])
    t0 = time.perf_counter()
    res = train_gmm(data.train, task["M"], steps=task["steps"], n_noise=task["n_noise"], peak_lr=task["peak_lr"],
                    final_lr=task["final_lr"], ema=task["ema"], seed=task["seed"], device=task["device"],
                    dtype=task["dtype"], times=task["times"], checkpoint=task.get("checkpoint"),
                    checkpoint_every=task["checkpoint_every"], metrics=task.get("metrics"), quiet=True)
    ev = evaluate_gmm(res.means, res.sigma2, data, n_samples=task["n_samples"], sample_seed=task["sample_seed"])
    out = asdict(ev)
    out.update({"steps": task["steps"], "train_wall_s": res.wall_s, "wall_s": time.perf_counter() - t0,
                "final_loss": float(res.losses[-1]), "device": res.device, "phase": task["phase"]})
    return out


def executor_for(scheduler: str | None = None, *, max_workers: int | None = None) -> Executor:
    """A local process pool (default) or a Dask executor for ``scheduler`` (``distributed`` required)."""
    if scheduler is None:
        import multiprocessing as mp

        return ProcessPoolExecutor(max_workers=max_workers or os.cpu_count(), mp_context=mp.get_context("spawn"))
    try:
        from distributed import Client
    except ImportError:
        raise ValueError("scheduler given but dask.distributed is not installed: pip install 'memlab[dask]'") from None
    return Client(scheduler).get_executor()


@dataclass(frozen=True)
class CapacitySweep:
    """Result of a capacity sweep for one (N, d, K) configuration.

    Attributes
    ----------
    N, d, K : int
    M : ndarray
        Every trained M (coarse and refined), increasing.
    results : list of dict
        Per-M evaluation (fields of :class:`GMMEvaluation` plus timing), in the order of ``M``.
    start, end : int or None
        Transition start and end of the coarse pass (spec 7).
    m_pt : int or None
        First M with memorization fraction >= 0.5.
    ratio_pt : float or None
        ``m_pt / N``.
    mstar : MStarResult
        ``predict_mstar`` for the same N (weighting and C as given).
    flags : list of str
    settings : dict
    """

    N: int
    d: int
    K: int
    M: np.ndarray
    results: list
    start: int | None
    end: int | None
    m_pt: int | None
    ratio_pt: float | None
    mstar: object
    flags: list = field(default_factory=list)
    settings: dict = field(default_factory=dict)

    @property
    def fractions(self) -> np.ndarray:
        return np.array([r["fraction"] for r in self.results])


def _write_json_atomic(path: Path, obj):
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(obj, indent=1))
    os.replace(tmp, path)


def sweep_capacity(N: int, d: int, K: int, *, steps: int = 50_000, seed: int = 0, executor: Executor | None = None,
                   out=None, n_noise: int = 100, peak_lr: float = 1e-3, final_lr: float = 1e-6,
                   ema: float | None = 0.99, device=None, dtype: str = "float32", times=None, n_samples: int = 50,
                   C: float = 2.0, weighting="paper", checkpoint_every: int = 1000, threads: int | None = None,
                   log=print) -> CapacitySweep:
    """Measure the memorization transition over M and compare it with ``predict_mstar`` (spec 7).

    Coarse pass ``M = j floor(N/10)``; start/end of the transition (ratio >= 0.1 / >= 0.9); refinement
    ``start + k Delta``; ``M_pt`` = first M with ratio >= 0.5.  Each model: ``train_gmm`` from the
    partial-memorization initialisation, then ``evaluate_gmm`` (50 DDIM samples, same sampler seed for
    every M).

    Parameters
    ----------
    N, d, K : int
        Configuration (data seed ``seed``; sigma_*^2 = 1).
    steps, n_noise, peak_lr, final_lr, ema, device, dtype, times
        Training settings passed to :func:`memlab.validation.gmm_torch.train_gmm` (spec defaults).
    seed : int
        Seed of the data, the initial subsets, the training draws and the sampler.
    executor : concurrent.futures.Executor, optional
        Where the models run; default a local process pool (closed at the end).  Pass
        ``distributed.Client(address).get_executor()`` (or use ``memlab validate gmm --scheduler``) for Dask.
    out : path, optional
        Directory for ``models/M*.json`` (resume), checkpoints, ``sweep.json`` and ``sweep.csv``.
    C, weighting
        Passed to ``predict_mstar`` for the side-by-side prediction.

    Returns
    -------
    CapacitySweep
    """
    N = _checks.positive_int("N", N)
    d = _checks.positive_int("d", d)
    K = _checks.positive_int("K", K)
    steps = _checks.positive_int("steps", steps)
    n_noise = _checks.positive_int("n_noise", n_noise)
    seed = _checks.positive_int("seed", seed, minimum=0)
    n_samples = _checks.positive_int("n_samples", n_samples)
    if device is not None:
        from .gmm_torch import resolve_device

        device = str(resolve_device(device))  # fail early on an unavailable device
    mstar = predict_mstar(N, C=C, weighting=weighting)
    odir = Path(out) if out is not None else None
    if odir is not None:
        (odir / "models").mkdir(parents=True, exist_ok=True)
        (odir / "checkpoints").mkdir(parents=True, exist_ok=True)
    settings = {"steps": steps, "n_noise": n_noise, "peak_lr": peak_lr, "final_lr": final_lr, "ema": ema,
                "device": device, "dtype": dtype, "times": None if times is None else [float(x) for x in times],
                "n_samples": n_samples, "seed": seed, "C": C,
                "weighting": weighting if isinstance(weighting, str) else "custom"}
    own = executor is None
    ex = executor_for(None) if own else executor
    done: dict[int, dict] = {}

    def run(ms, phase):
        tasks, keys = [], []
        for M in ms:
            if M in done:
                continue
            path = odir / "models" / f"M{M:05d}.json" if odir is not None else None
            if path is not None and path.exists():
                rec = json.loads(path.read_text())
                if rec.get("settings") == settings:
                    done[M] = rec["result"]
                    log(f"  M = {M}: done earlier (fraction {rec['result']['fraction']:.2f}), skipped")
                    continue
            task = dict(N=N, d=d, K=K, M=M, data_seed=seed, seed=seed + M, sample_seed=seed, steps=steps,
                        n_noise=n_noise, peak_lr=peak_lr, final_lr=final_lr, ema=ema, device=device, dtype=dtype,
                        times=settings["times"], n_samples=n_samples, checkpoint_every=checkpoint_every,
                        phase=phase, threads=threads,
                        checkpoint=str(odir / "checkpoints" / f"M{M:05d}.pt") if odir is not None else None,
                        metrics=str(odir / "checkpoints" / f"M{M:05d}.jsonl") if odir is not None else None)
            tasks.append(task)
            keys.append(M)
        futs = [ex.submit(_model_task, t) for t in tasks]
        for M, f in zip(keys, futs):
            r = f.result()
            done[M] = r
            if odir is not None:
                _write_json_atomic(odir / "models" / f"M{M:05d}.json", {"settings": settings, "result": r})
            log(f"  M = {M:4d} ({phase}): fraction {r['fraction']:.2f}, sigma2 {r['sigma2']:.3g}, "
                f"{r['wall_s']:.0f} s")

    try:
        coarse = coarse_ms(N)
        run(coarse, "coarse")
        tb = transition_bounds(coarse, [done[m]["fraction"] for m in coarse])
        if tb.found:
            run(refine_ms(tb.start, tb.end), "refine")
    finally:
        if own:
            ex.shutdown()
    Ms = np.array(sorted(done))
    results = [done[int(m)] for m in Ms]
    mp_ = m_pt(Ms, [r["fraction"] for r in results])
    sweep = CapacitySweep(N=N, d=d, K=K, M=Ms, results=results, start=tb.start, end=tb.end, m_pt=mp_,
                          ratio_pt=None if mp_ is None else mp_ / N, mstar=mstar, flags=list(tb.flags),
                          settings=settings)
    if odir is not None:
        save_sweep(sweep, odir)
    return sweep


def save_sweep(sweep: CapacitySweep, out) -> list[Path]:
    """Write ``sweep.json`` and ``sweep.csv`` (one row per M) into ``out``."""
    odir = Path(out)
    odir.mkdir(parents=True, exist_ok=True)
    summary = {"N": sweep.N, "d": sweep.d, "K": sweep.K, "start": sweep.start, "end": sweep.end, "m_pt": sweep.m_pt,
               "ratio_pt": sweep.ratio_pt, "predicted_mstar": sweep.mstar.m_star, "predicted_ratio": sweep.mstar.ratio,
               "weighting": sweep.mstar.weighting, "C": sweep.mstar.C, "flags": sweep.flags,
               "settings": sweep.settings, "results": sweep.results}
    p_json = odir / "sweep.json"
    _write_json_atomic(p_json, summary)
    p_csv = odir / "sweep.csv"
    cols = ["M", "fraction", "ci_low", "ci_high", "sigma2", "train_loss", "test_loss", "dist_train", "dist_true",
            "phase", "steps", "wall_s"]
    with open(p_csv, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["N", "d", "K", "M_over_N"] + cols)
        for r in sweep.results:
            w.writerow([sweep.N, sweep.d, sweep.K, r["M"] / sweep.N] + [r.get(c) for c in cols])
    return [p_json, p_csv]


def sweep_grid(Ns=DEFAULT_GRID["N"], ds=DEFAULT_GRID["d"], Ks=DEFAULT_GRID["K"], *, out=None, executor=None,
               log=print, **kwargs) -> list[CapacitySweep]:
    """The paper's configuration sweep (default 4 x 4 x 4 = 64 configurations, spec 7), one
    :func:`sweep_capacity` per (N, d, K), all on the same executor; results under ``out/N{N}_d{d}_K{K}``."""
    own = executor is None
    ex = executor_for(None) if own else executor
    sweeps = []
    try:
        for N in Ns:
            for d in ds:
                for K in Ks:
                    log(f"configuration N = {N}, d = {d}, K = {K}")
                    sub = None if out is None else Path(out) / f"N{N}_d{d}_K{K}"
                    sweeps.append(sweep_capacity(N, d, K, executor=ex, out=sub, log=log, **kwargs))
    finally:
        if own:
            ex.shutdown()
    return sweeps
