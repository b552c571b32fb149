"""Capacity sweep: train GMM denoisers over M, measure the memorization transition, compare with M*.

Each model is an independent task run by :func:`memlab.validation.runtime.map_tasks` on a
``concurrent.futures.Executor`` (a local process pool by default, a Dask cluster through
``distributed.Client(address).get_executor()``; in this process, with a warning, when the pool's workers
cannot re-import the caller's main module).  Finished models are stored as JSON under ``out/models``
(written atomically), so an interrupted sweep resumes without redoing them; a model interrupted
mid-training resumes from its own checkpoint.  The training protocol is named (``"paper"`` or
``"cpu-quick"``, :data:`memlab.validation.gmm_torch.PROTOCOLS`), priced before training and recorded in every
output.

References: arXiv:2508.17689v1 App. H.1 (protocol, M search) and Eq. 21 (M*, the capacity crossover);
docs/theory/capacity_crossover.md §5-§7 and docs/theory/validation.md §2.  The memorization fraction is
:func:`memlab.numerics.memorization.memorization_fraction`.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import json
import time
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..numerics.gmm import GMMDenoiser, sample_gmm
from ..numerics.losses import training_loss
from ..numerics.memorization import memorization_fraction
from ..numerics.sampler import ddim_sample
from ..numerics.threads import thread_budget
from ..theory import checks
from ..theory.crossover import predict_mstar
from ..theory.grid import paper_grid
from . import runtime
from .search import coarse_ms, m_pt, refine_ms, transition_bounds

__all__ = ["GMMEvaluation", "evaluate_gmm", "CapacitySweep", "sweep_capacity", "save_sweep", "sweep_grid",
           "DEFAULT_GRID"]

T16 = float(paper_grid()[16])
DEFAULT_GRID = {"N": (50, 100, 150, 200), "d": (30, 40, 50, 60), "K": (3, 6, 9, 12)}
REFINED_MODELS = 10   # about how many models the refinement adds (docs/theory/capacity_crossover.md §7)


@dataclass(frozen=True)
class GMMEvaluation:
    """Per-model evaluation (docs/theory/capacity_crossover.md §7): memorization of DDIM samples, losses at t
    (x0 units), learned sigma^2, distances of the learned means to the nearest training point and true mean."""

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
    """Evaluate learned GMM parameters (arXiv:2508.17689v1 Eqs. 14-15) on a :class:`memlab.GMMData` draw.

    Samples: deterministic DDIM on the paper grid from the learned denoiser (seeded; same seed for every
    M), memorization by the 1/3 rule (docs/theory/capacity_crossover.md §6).  Losses: ``L_{N,t}`` (Eq. 6,
    x0 units, per point, summed over d) on the training and held-out points at ``t`` (default
    t_16 = 0.36028) with ``n_noise`` draws.

    Returns
    -------
    GMMEvaluation
    """
    means = np.asarray(means, dtype=np.float64)
    den = GMMDenoiser(means, float(sigma2), name="trained")
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
    from .gmm_torch import GMMTrainConfig, train_gmm

    with runtime.threads(task["threads"]):
        data = sample_gmm(task["N"], task["d"], task["K"], seed=task["data_seed"])
        t0 = time.perf_counter()
        cfg = GMMTrainConfig(task["M"], task["protocol"], seed=task["seed"], dtype=task["dtype"])
        res = train_gmm(data.train, cfg, device=task["device"], checkpoint=task["checkpoint"],
                        checkpoint_every=task["checkpoint_every"], metrics=task["metrics"], quiet=True)
        ev = evaluate_gmm(res.means, res.sigma2, data, n_samples=task["n_samples"], sample_seed=task["sample_seed"])
    out = asdict(ev)
    out.update({"protocol": cfg.protocol.name, "steps": cfg.protocol.steps, "train_wall_s": res.wall_s,
                "wall_s": time.perf_counter() - t0, "final_loss": float(res.losses[-1]), "device": res.device,
                "phase": task["phase"]})
    return out


_WEIGHTING_TEXT = {"paper": "paper weighting (fitted to the paper's protocol)", "uniform": "uniform weighting",
                   "noise": "noise weighting (lambda = psi_t)"}


@dataclass(frozen=True)
class CapacitySweep:
    """Result of a capacity sweep for one (N, d, K) configuration.

    Attributes
    ----------
    N, d, K : int
    M : ndarray
        Every trained M (coarse and refined), increasing.
    results : list of dict
        Per-M evaluation (fields of :class:`GMMEvaluation` plus ``protocol``, timing and phase), in the
        order of ``M``.
    start, end : int or None
        Transition start and end of the coarse pass (docs/theory/capacity_crossover.md §7).
    m_pt : int or None
        First M with memorization fraction >= 0.5.
    ratio_pt : float or None
        ``m_pt / N``.
    mstar : MStarResult
        ``predict_mstar(N, C=C, weighting=weighting)`` on the full 26-point paper grid (the capacity crossover,
        arXiv:2508.17689v1 Eq. 21); the ``paper`` weighting is fitted to the paper's protocol.
    flags : list of str
    settings : dict
        ``protocol`` (its name), every protocol setting (``steps``, ``n_noise``, ``peak_lr``, ``final_lr``,
        ``warmup_frac``, ``ema``, ``beta2``, ``t_min``, ``times``), ``device``, ``dtype``, ``n_samples``,
        ``seed``, ``C``, ``weighting``.
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

    @property
    def protocol(self):
        """The :class:`~memlab.validation.gmm_torch.GMMProtocol` the models were trained with."""
        from .gmm_torch import GMMProtocol

        keys = [f.name for f in dataclasses.fields(GMMProtocol) if f.name != "name"]
        return GMMProtocol(self.settings["protocol"], **{k: self.settings[k] for k in keys})

    @property
    def prediction_note(self) -> str:
        """One line for a figure or a log: which prediction is drawn and for which protocol it holds, e.g.
        ``"predicted M*/N = 0.800: paper weighting (fitted to the paper's protocol), C = 2, full 26-point grid;
        models trained with cpu-quick (22 grid times t >= 0.15)"``."""
        m = self.mstar
        head = (f"predicted M*/N = {m.ratio:.3f}" if m.ratio is not None
                else f"no predicted crossover (r = {m.r:.3f} >= C = {m.C:g})")
        wtext = _WEIGHTING_TEXT.get(m.weighting, f"{m.weighting} weighting")
        grid = (f"full {len(m.times)}-point grid" if m.times is not None and len(m.times) == paper_grid().size
                else "continuous times" if m.times is None else f"{len(m.times)} grid times")
        s = self.settings
        n_times = len(s.get("times") or ())
        trained = (f"models trained with {s.get('protocol')} ({n_times} grid times"
                   + (f" t >= {s['t_min']:g})" if s.get("t_min") is not None else ")"))
        return f"{head}: {wtext}, C = {m.C:g}, {grid}; {trained}"


def _settings_of(protocol, *, device, dtype, n_samples, seed, C, weighting) -> dict:
    return {"protocol": protocol.name, **protocol.settings(), "device": device, "dtype": dtype,
            "n_samples": n_samples, "seed": seed, "C": float(C),
            "weighting": weighting if isinstance(weighting, str) else "custom"}


def sweep_capacity(N: int, d: int, K: int, *, protocol="paper", seed: int = 0, executor: Executor | None = None,
                   out=None, device=None, dtype: str = "float32", n_samples: int = 50, C: float = 2.0,
                   weighting="paper", threads: int | None = None, workers: int | None = None,
                   checkpoint_every: int = 1000, log=print, **overrides) -> CapacitySweep:
    """Measure the memorization transition over M and compare it with the capacity crossover M*
    (arXiv:2508.17689v1 Eq. 21, App. H.1; docs/theory/capacity_crossover.md §7).

    Coarse pass ``M = j floor(N/10)``; start/end of the transition (ratio >= 0.1 / >= 0.9); refinement
    ``start + k Delta``; ``M_pt`` = first M with ratio >= 0.5.  Each model:
    :func:`memlab.validation.gmm_torch.train_gmm` from the partial-memorization initialisation, then
    :func:`evaluate_gmm` (50 DDIM samples, same sampler seed for every M).  Before training, the estimated
    time on the chosen device is logged (:func:`memlab.validation.gmm_torch.estimate_sweep_seconds`).

    Parameters
    ----------
    N, d, K : int
        Configuration (data seed ``seed``; sigma_*^2 = 1).
    protocol : str or GMMProtocol, default "paper"
        ``"paper"`` (50,000 Adam steps x 100 noise draws: about 82 CPU-minutes per N = 200, d = 50 model on
        2 cores) or ``"cpu-quick"`` (1,500 steps, 20 draws, peak lr 1e-2, grid t >= 0.15); see
        docs/theory/validation.md §2.
    **overrides
        Protocol settings to change (``steps``, ``n_noise``, ``peak_lr``, ``final_lr``, ``warmup_frac``,
        ``ema``, ``beta2``, ``t_min``); the recorded name then lists them (``"cpu-quick+steps=40"``).
    seed : int
        Seed of the data, the initial subsets (``seed + M``), the training draws and the sampler.
    executor : concurrent.futures.Executor, optional
        Where the models run; default a local process pool over all cores (closed at the end).  Pass
        ``distributed.Client(address).get_executor()`` (or use ``memlab validate gmm --scheduler``) for Dask.
    out : path, optional
        Directory for ``models/M*.json`` (resume), checkpoints, ``sweep.json`` and ``sweep.csv`` (all written
        atomically).  Held for the run (:func:`memlab.validation.runtime.run_lock`): a second run on the same
        folder raises ``OutputFolderBusy`` naming the owner's pid, before any training.
    device : None, "auto", "cpu", "cuda", "cuda:N"
        Default CUDA when available, else CPU.
    dtype : {"float32", "float64"}
    n_samples : int
        DDIM samples per model for the memorization ratio (the paper: 50).
    C, weighting
        Passed to ``predict_mstar`` for the side-by-side prediction (on the full paper grid).
    threads : int, optional
        Torch threads inside each task (restored afterwards); default on a local process pool: the cores divided
        among its ``workers`` (1 each when there are as many workers as cores).
    workers : int, optional
        Models trained at the same time, for the time estimate only; default the pool size when this
        function makes the pool, else 1 (and 1 on CUDA, where the models share the device).
    checkpoint_every : int
        Steps between checkpoints of each model (with ``out``).
    log : callable
        Progress lines (default ``print``).

    Returns
    -------
    CapacitySweep
    """
    runtime.guard_worker_start()
    N = checks.positive_int("N", N)
    d = checks.positive_int("d", d)
    K = checks.positive_int("K", K)
    seed = checks.positive_int("seed", seed, minimum=0)
    n_samples = checks.positive_int("n_samples", n_samples)
    checkpoint_every = checks.positive_int("checkpoint_every", checkpoint_every)
    if threads is not None:
        threads = checks.positive_int("threads", threads)
    from .gmm_torch import estimate_sweep_seconds, resolve_protocol

    proto = resolve_protocol(protocol, **overrides)
    dev = str(runtime.resolve_device(device))  # fail early on an unavailable device
    runtime.torch_dtype(dtype)
    mstar = predict_mstar(N, C=C, weighting=weighting)
    odir = Path(out) if out is not None else None
    with runtime.run_lock(odir) if odir is not None else contextlib.nullcontext():   # one run per folder
        if odir is not None:
            (odir / "models").mkdir(parents=True, exist_ok=True)
            (odir / "checkpoints").mkdir(parents=True, exist_ok=True)
        settings = _settings_of(proto, device=dev, dtype=dtype, n_samples=n_samples, seed=seed, C=C,
                                weighting=weighting)
        own = executor is None
        pool_size = thread_budget().n
        ex = runtime.executor_for(None, max_workers=pool_size) if own else executor
        done: dict[int, dict] = {}

        def finished_earlier(M):
            path = odir / "models" / f"M{M:05d}.json" if odir is not None else None
            if path is None or not path.exists():
                return None
            rec = json.loads(path.read_text())
            return rec["result"] if rec.get("settings") == settings else None

        def run(ms, phase):
            tasks = []
            for M in ms:
                if M in done:
                    continue
                earlier = finished_earlier(M)
                if earlier is not None:
                    done[M] = earlier
                    log(f"  M = {M}: done earlier (fraction {earlier['fraction']:.2f}), skipped")
                    continue
                tasks.append(dict(N=N, d=d, K=K, M=M, data_seed=seed, seed=seed + M, sample_seed=seed, protocol=proto,
                                  device=dev, dtype=dtype, n_samples=n_samples, checkpoint_every=checkpoint_every,
                                  phase=phase, threads=threads,
                                  checkpoint=str(odir / "checkpoints" / f"M{M:05d}.pt") if odir is not None else None,
                                  metrics=str(odir / "checkpoints" / f"M{M:05d}.jsonl") if odir is not None else None))
            for task, r in zip(tasks, runtime.map_tasks(_model_task, tasks, run_on)):
                M = task["M"]
                done[M] = r
                if odir is not None:
                    runtime.write_json_atomic(odir / "models" / f"M{M:05d}.json", {"settings": settings, "result": r})
                log(f"  M = {M:4d} ({phase}): fraction {r['fraction']:.2f}, sigma2 {r['sigma2']:.3g}, "
                    f"{r['wall_s']:.0f} s")

        run_on = runtime.usable_executor(ex)         # None: in this process (a pool that cannot start, with a warning)
        local_pool = isinstance(run_on, ProcessPoolExecutor)
        cuda = dev.startswith("cuda")
        if workers is None or run_on is None:
            workers = pool_size if own and local_pool else 1
        workers = 1 if cuda else checks.positive_int("workers", workers)
        if threads is None and not cuda and local_pool:
            threads = max(1, pool_size // workers)   # local pool workers share the cores (no oversubscription)
        try:
            coarse = coarse_ms(N)
            todo = [M for M in coarse if finished_earlier(M) is None]
            share = threads if threads is not None or cuda else max(1, pool_size // workers)
            est = estimate_sweep_seconds(N, d, proto, device=dev, dtype=dtype, workers=workers, threads=share,
                                         n_models=len(todo) + REFINED_MODELS)
            settings_line = (f"protocol {proto.name}: {proto.steps} steps x {proto.n_noise} noise draws, peak lr "
                             f"{proto.peak_lr:g}, {len(proto.times())} grid times")
            log(f"N = {N}, d = {d}, K = {K}; {settings_line}")
            log(f"estimated training time on {dev}: {est['models']} models ({len(todo)} coarse + about "
                f"{REFINED_MODELS} "
                f"refined) x {runtime.format_seconds(est['seconds_per_model'])} ({est['steps_per_s']:.3g} steps/s at "
                f"M = {est['M']}) / {workers} worker(s) = about {runtime.format_seconds(est['total_seconds'])}")
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
    """Write ``sweep.json`` and ``sweep.csv`` (one row per M, with the protocol's name) into ``out``."""
    odir = Path(out)
    odir.mkdir(parents=True, exist_ok=True)
    summary = {"N": sweep.N, "d": sweep.d, "K": sweep.K, "protocol": sweep.settings.get("protocol"),
               "start": sweep.start, "end": sweep.end, "m_pt": sweep.m_pt, "ratio_pt": sweep.ratio_pt,
               "predicted_mstar": sweep.mstar.m_star, "predicted_ratio": sweep.mstar.ratio,
               "weighting": sweep.mstar.weighting, "C": sweep.mstar.C, "prediction_note": sweep.prediction_note,
               "flags": sweep.flags, "settings": sweep.settings, "results": sweep.results}
    p_json = runtime.write_json_atomic(odir / "sweep.json", summary)
    cols = ["M", "fraction", "ci_low", "ci_high", "sigma2", "train_loss", "test_loss", "dist_train", "dist_true",
            "phase", "steps", "wall_s"]
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["N", "d", "K", "protocol", "M_over_N"] + cols)
    for r in sweep.results:
        w.writerow([sweep.N, sweep.d, sweep.K, sweep.settings.get("protocol"), r["M"] / sweep.N]
                   + [r.get(c) for c in cols])
    p_csv = runtime.write_text_atomic(odir / "sweep.csv", buf.getvalue())
    return [p_json, p_csv]


def sweep_grid(Ns=DEFAULT_GRID["N"], ds=DEFAULT_GRID["d"], Ks=DEFAULT_GRID["K"], *, protocol="paper", out=None,
               executor: Executor | None = None, log=print, **kwargs) -> list[CapacitySweep]:
    """The paper's configuration sweep (default 4 x 4 x 4 = 64 configurations, arXiv:2508.17689v1 App. H.1;
    docs/theory/capacity_crossover.md §7): one :func:`sweep_capacity` per (N, d, K) under ``protocol``, all on
    the same executor (default one local process pool); results under ``out/N{N}_d{d}_K{K}``.  ``kwargs`` go to
    :func:`sweep_capacity` (including protocol overrides)."""
    runtime.guard_worker_start()
    for key in ("threads", "workers"):            # checked before the pool starts and anything is logged
        if kwargs.get(key) is not None:
            checks.positive_int(key, kwargs[key])
    own = executor is None
    pool_size = thread_budget().n
    if own and kwargs.get("workers") is None:
        kwargs["workers"] = pool_size
    lock = runtime.run_lock(out) if out is not None else contextlib.nullcontext()
    with lock:                                   # the grid's folder first, then each configuration's
        return _sweep_grid_in(Ns, ds, Ks, protocol, out, executor, own, pool_size, log, kwargs)


def _sweep_grid_in(Ns, ds, Ks, protocol, out, executor, own, pool_size, log, kwargs) -> list:
    ex = runtime.executor_for(None, max_workers=pool_size) if own else executor
    sweeps = []
    try:
        for N in Ns:
            for d in ds:
                for K in Ks:
                    log(f"configuration N = {N}, d = {d}, K = {K}")
                    sub = None if out is None else Path(out) / f"N{N}_d{d}_K{K}"
                    sweeps.append(sweep_capacity(N, d, K, protocol=protocol, executor=ex, out=sub, log=log, **kwargs))
    finally:
        if own:
            ex.shutdown()
    return sweeps
