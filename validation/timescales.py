"""Generalization and memorization times in real training: the n ladder of small DDPMs
(arXiv:2505.17638 MT §2, SM B, Fig. 2 analogue; docs/theory/validation.md §4).

:func:`timescale_study` trains one :func:`memlab.validation.ddpm_torch.train_ddpm` model per training-set size
``n`` (nested training sets, the same initialisation seed), in this process or on an executor (a process pool,
a Dask cluster), with one checkpoint file per ``n`` so an interrupted study resumes.  From each run it reads
off (estimator names of docs/theory/random_features.md §5, rules in :mod:`memlab.numerics.readoffs`)

* ``tau_gen_quality_min``: the argmin of the sample-quality proxy over the checkpoints, refined by a parabola
  in ``log tau`` through the minimum and its two neighbours;
* ``tau_gen_score_min``: the same read-off on the score error;
* ``tau_gen_plateau``: the first checkpoint with quality ``<= 1.5 x`` its minimum (entry into the quality
  valley);
* ``tau_mem_onset``: the first ``tau`` with memorization fraction ``>= fthr`` (default 0.05), log-linearly
  interpolated between the checkpoints around the crossing; the sensitivity at 0.01 and 0.1 is reported;

and fits ``tau_mem_onset = a n`` (least squares through the origin, ``R^2`` against the mean) and
``tau_mem_onset ∝ n^gamma`` (log-log least squares).  Times are optimiser updates (the training time ``tau`` of
arXiv:2505.17638 MT §2 in steps).  Re-reading a saved study (:func:`study_from_json`) needs no torch.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import time
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..numerics.readoffs import argmin_log_parabola, first_crossing_log, fit_power_law
from ..numerics.threads import thread_budget
from ..theory import checks
from . import runtime

__all__ = ["TimescaleStudy", "timescale_study", "read_tau_onset", "read_tau_plateau", "ladder_checkpoints",
           "save_study", "study_from_json", "STEPS_PER_POINT", "SENSITIVITY"]

#: Memorization-fraction levels at which ``tau_mem_onset`` and its fit are always reported.
SENSITIVITY = (0.01, 0.05, 0.1)
#: Default horizon per training point of the largest ``n``: about 3 ``tau_mem_onset / n`` measured at
#: ``W = 128`` (docs/theory/validation.md §4).
STEPS_PER_POINT = {"sgd": 1000, "adam": 100}


def read_tau_onset(steps, fraction, fthr: float = 0.05) -> float | None:
    """``tau_mem_onset``: the first ``tau`` where the memorization fraction reaches ``fthr``, log-linearly
    interpolated from the previous checkpoint (docs/theory/validation.md §4).

    Parameters
    ----------
    steps : array_like
        Checkpoint steps (increasing, > 0).
    fraction : array_like
        Memorization fraction at each checkpoint.
    fthr : float
        Level (default 0.05).

    Returns
    -------
    float or None
        ``None`` if the level is never reached; the first checkpoint if it is reached there.

    References
    ----------
    The onset of memorization of arXiv:2505.17638 MT §2 (Fig. 2); rule
    :func:`memlab.numerics.readoffs.first_crossing_log`.
    """
    return first_crossing_log(steps, fraction, fthr)


def read_tau_plateau(steps, quality, factor: float = 1.5) -> float:
    """``tau_gen_plateau``: the first checkpoint where ``quality <= factor * min(quality)``, the entry into the
    quality valley (package choice, docs/theory/validation.md §4).

    When the quality minimum is a long, shallow valley (large ``n``, memorization far away) its argmin
    (``tau_gen_quality_min``) wanders along the valley floor with the estimator noise, while the entry time
    stays put.

    Parameters
    ----------
    steps, quality : array_like
        Checkpoint steps and the sample-quality proxy (lower is better, minimum > 0).
    factor : float
        Multiple of the minimum that counts as inside the valley (default 1.5).

    Returns
    -------
    float

    References
    ----------
    A read-off of the generalization time of arXiv:2505.17638 MT §2 (the FID minimum of Fig. 2).
    """
    s = np.asarray(steps, dtype=np.float64)
    q = np.asarray(quality, dtype=np.float64)
    if s.size == 0 or s.size != q.size or not np.any(np.isfinite(q)):
        raise ValueError("steps and quality must be non-empty, of equal length, with a finite quality")
    qmin = float(np.nanmin(q))
    if qmin <= 0:
        raise ValueError(f"read_tau_plateau needs a positive quality minimum (got {qmin:g})")
    return float(s[np.nonzero(q <= factor * qmin)[0][0]])


def ladder_checkpoints(ns, steps: int, n_checkpoints: int, *, scale_steps: bool = True, first: int | None = None,
                       min_steps: int | None = None) -> dict:
    """Checkpoint steps per ``n``: one log-spaced grid up to ``steps`` (the horizon of the largest ``n``); with
    ``scale_steps`` each ``n`` stops at ``max(min_steps, steps n / n_max)`` (``tau_mem ∝ n``, so every run covers
    the same range of ``tau / n``), keeping the grid points below its horizon plus the horizon itself."""
    from .ddpm_torch import checkpoint_steps

    grid = checkpoint_steps(steps, n_checkpoints, first=first)
    nmax = max(ns)
    lo = int(grid[min(3, grid.size - 1)]) if min_steps is None else int(min_steps)
    out = {}
    for n in ns:
        h = steps if not scale_steps else int(min(steps, max(lo, math.ceil(steps * n / nmax))))
        c = [int(s) for s in grid if s < h] + [h]
        out[int(n)] = tuple(c)
    return out


@dataclass(frozen=True)
class TimescaleStudy:
    """Result of :func:`timescale_study` (field names = JSON keys of ``study.json``; estimator names of
    docs/theory/random_features.md §5).

    Attributes
    ----------
    ns : ndarray of int
    runs : list of dict
        Per-``n`` curves (:meth:`DDPMRun.to_dict`): ``steps``, ``fraction``, ``ci_low``, ``ci_high``,
        ``score_error``, ``quality``, ``train_loss``, ``config``, ``diagnostics``.
    tau_gen_quality_min : ndarray
        Argmin of the quality proxy per ``n`` (steps, parabola in ``log tau``).
    tau_gen_score_min : ndarray
        Argmin of the score error per ``n`` (steps, parabola in ``log tau``).
    tau_gen_plateau : ndarray
        Entry into the quality valley (:func:`read_tau_plateau`, factor 1.5).
    tau_mem_onset : ndarray
        First ``tau`` with memorization fraction ``>= fthr`` per ``n``; ``nan`` where it was not reached.
    fit : dict
        :func:`memlab.numerics.readoffs.fit_power_law` over the ``n`` with a ``tau_mem_onset``: ``a`` (steps
        per training point), ``r2``, ``gamma``, ``c``, ``r2_log``, ``n_points``.
    tau_gen_quality_spread : float
        ``max / min`` of ``tau_gen_quality_min`` over ``n``.
    tau_gen_plateau_spread : float
        ``max / min`` of ``tau_gen_plateau`` over ``n``.
    sensitivity : dict
        ``{fthr: {"tau_mem_onset": [...], "fit": {...}}}`` at 0.01, 0.05, 0.1 (and ``fthr``).
    fthr : float
    settings : dict
    diagnostics : dict
        ``wall_s``, per-``n`` training wall times, ``device``.
    """

    ns: np.ndarray
    runs: list
    tau_gen_quality_min: np.ndarray
    tau_gen_score_min: np.ndarray
    tau_gen_plateau: np.ndarray
    tau_mem_onset: np.ndarray
    fit: dict
    tau_gen_quality_spread: float
    tau_gen_plateau_spread: float
    sensitivity: dict
    fthr: float
    settings: dict = field(default_factory=dict)
    diagnostics: dict = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict:
        """JSON-ready (``nan`` as ``null``); the keys are the field names."""
        def nan2none(a):
            return [None if not np.isfinite(v) else float(v) for v in a]

        return {"ns": self.ns.tolist(), "tau_gen_quality_min": nan2none(self.tau_gen_quality_min),
                "tau_gen_score_min": nan2none(self.tau_gen_score_min),
                "tau_gen_plateau": nan2none(self.tau_gen_plateau), "tau_mem_onset": nan2none(self.tau_mem_onset),
                "fit": self.fit, "tau_gen_quality_spread": self.tau_gen_quality_spread,
                "tau_gen_plateau_spread": self.tau_gen_plateau_spread, "sensitivity": self.sensitivity,
                "fthr": self.fthr, "settings": self.settings, "diagnostics": self.diagnostics, "runs": self.runs}


def _analyse(ns, runs, fthr, settings, diagnostics) -> TimescaleStudy:
    tgq = np.array([argmin_log_parabola(r["steps"], r["quality"]) for r in runs])
    tgs = np.array([argmin_log_parabola(r["steps"], r["score_error"]) for r in runs])
    tgp = np.array([read_tau_plateau(r["steps"], r["quality"]) for r in runs])
    sens = {}
    for f in sorted(set(SENSITIVITY) | {fthr}):
        tm = [read_tau_onset(r["steps"], r["fraction"], f) for r in runs]
        have = [(n, v) for n, v in zip(ns, tm) if v is not None]
        sens[f"{f:g}"] = {"tau_mem_onset": tm, "fit": fit_power_law([h[0] for h in have], [h[1] for h in have])}
    tm = sens[f"{fthr:g}"]["tau_mem_onset"]
    return TimescaleStudy(ns=np.asarray(ns), runs=runs, tau_gen_quality_min=tgq, tau_gen_score_min=tgs,
                          tau_gen_plateau=tgp, tau_mem_onset=np.array([np.nan if v is None else v for v in tm]),
                          fit=sens[f"{fthr:g}"]["fit"], tau_gen_quality_spread=float(tgq.max() / tgq.min()),
                          tau_gen_plateau_spread=float(tgp.max() / tgp.min()), sensitivity=sens, fthr=float(fthr),
                          settings=settings, diagnostics=diagnostics)


def _study_task(task: dict) -> dict:
    """Train and evaluate one ``n`` (top level so process pools and Dask can pickle it)."""
    from .ddpm_torch import train_ddpm

    with runtime.threads(task["threads"]):
        run = train_ddpm(task["n"], task["config"], checkpoint=task["checkpoint"], device=task["device"],
                         quiet=task["quiet"])
    return run.to_dict()


def timescale_study(ns, config=None, *, steps: int | None = None, scale_steps: bool = True, fthr: float = 0.05,
                    out=None, executor: Executor | None = None, threads: int | None = None, device=None,
                    quiet: bool = False) -> TimescaleStudy:
    """Memorization and generalization times of a small DDPM across training-set sizes
    (arXiv:2505.17638 MT §2, SM B, Fig. 2 analogue; docs/theory/validation.md §4).

    Parameters
    ----------
    ns : sequence of int
        Training-set sizes (each >= 2, distinct); nested sets (the first ``n`` points of one stream).
    config : DDPMConfig, optional
        Model, optimiser, evaluation sizes, seeds, dtype and ``n_checkpoints`` / ``first_checkpoint``
        (default ``DDPMConfig()``: ``W = 128``, full-batch SGD, lr 6e-3, momentum 0.95).  Its ``steps`` and
        ``checkpoints`` are ignored: the study sets them per ``n``.
    steps : int, optional
        Training horizon (optimiser updates) of the largest ``n``; choose about 3 ``tau_mem_onset(n_max)``.
        Default ``STEPS_PER_POINT[optimizer] n_max``: ``1000 n_max`` for SGD, ``100 n_max`` for Adam (about 3
        ``tau_mem_onset`` at the measured 300 and 35 updates per point for ``W = 128``; smaller widths
        memorize later).
    scale_steps : bool, default True
        Horizon ``∝ n`` (``steps n / n_max``, at least the fourth grid point) on one common log-spaced
        checkpoint grid; ``False``: every ``n`` trains for ``steps``.
    fthr : float, default 0.05
        Memorization-fraction level of ``tau_mem_onset`` (the sensitivity at 0.01 and 0.1 is always reported).
    out : path, optional
        Folder for per-``n`` checkpoints (``ckpt_n{n}.pt``; an interrupted study resumes from them) and
        ``study.json`` (written atomically).  Held for the run (:func:`memlab.validation.runtime.run_lock`):
        a second run on the same folder raises ``OutputFolderBusy`` before any training.
    executor : concurrent.futures.Executor, optional
        Runs the ``n`` in parallel (e.g. :func:`memlab.validation.runtime.executor_for`, a Dask
        ``Client(...).get_executor()``); default one after another in this process.  A process pool whose
        workers cannot re-import the caller's main module falls back to this process with a warning.
    threads : int, optional
        Torch threads inside each task (restored afterwards); default on a local process pool: the cores
        divided among the runs that can go at once (``cores // min(len(ns), cores)``), so workers do not
        oversubscribe the CPU.
    device : None, "auto", "cpu", "cuda", "cuda:N"
        Default CUDA when available, else CPU.
    quiet : bool
        No progress bars (always off on an executor).

    Returns
    -------
    TimescaleStudy
    """
    from .ddpm_torch import DDPMConfig

    runtime.guard_worker_start()
    ns = runtime.training_sizes("ns", ns)
    cfg = DDPMConfig() if config is None else config
    if not isinstance(cfg, DDPMConfig):
        raise TypeError(f"config must be a DDPMConfig (got {type(cfg).__name__})")
    steps = STEPS_PER_POINT[cfg.optimizer] * max(ns) if steps is None else checks.positive_int("steps", steps)
    checks.positive_int("n_checkpoints", cfg.n_checkpoints, minimum=3)
    fthr = checks.positive_float("fthr", fthr)
    if fthr >= 1:
        raise ValueError(f"fthr must lie in (0, 1) (got {fthr!r})")
    if threads is not None:
        threads = checks.positive_int("threads", threads)
    dev = str(runtime.resolve_device(device))
    ck = ladder_checkpoints(ns, steps, cfg.n_checkpoints, scale_steps=scale_steps, first=cfg.first_checkpoint)
    if len(ck[ns[0]]) < 3:
        raise ValueError(f"steps={steps} with n_checkpoints={cfg.n_checkpoints} leaves n={ns[0]} fewer than 3 "
                         f"checkpoints; raise steps or n_checkpoints (or pass scale_steps=False)")
    run_on = runtime.usable_executor(executor)   # None: in this process (a pool that cannot start, with a warning)
    if threads is None and isinstance(run_on, ProcessPoolExecutor) and not dev.startswith("cuda"):
        cores = thread_budget().n
        threads = max(1, cores // min(len(ns), cores))   # the pool's workers share the cores
    tasks = []
    for n in ns:
        run_cfg = cfg.replace(steps=ck[n][-1], checkpoints=ck[n])   # validates before any work starts
        tasks.append({"n": n, "config": run_cfg, "device": dev, "threads": threads,
                      "quiet": quiet or run_on is not None,
                      "checkpoint": None if out is None else str(Path(out) / f"ckpt_n{n}.pt")})
    with runtime.run_lock(out) if out is not None else contextlib.nullcontext():   # one run per folder
        t0 = time.perf_counter()
        order = tasks[::-1]  # largest n first: it takes longest, so a pool finishes sooner
        runs = sorted(runtime.map_tasks(_study_task, order, run_on), key=lambda r: r["n"])
        base = {k: v for k, v in dataclasses.asdict(cfg).items() if k not in ("steps", "checkpoints")}
        settings = dict(base, fthr=fthr, steps=steps, scale_steps=scale_steps, ns=ns)
        diag = {"wall_s": time.perf_counter() - t0, "device": dev,
                "train_wall_s": {str(r["n"]): r["diagnostics"]["wall_s"] for r in runs}}
        study = _analyse(ns, runs, fthr, settings, diag)
        if out is not None:
            save_study(study, out)
    return study


def save_study(study: TimescaleStudy, out) -> Path:
    """Write ``study.json`` (all curves, read-offs, fits, settings) into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    return runtime.write_json_atomic(out / "study.json", study.to_dict())


def study_from_json(path) -> TimescaleStudy:
    """Re-read a ``study.json`` and redo the read-offs from the stored runs (no torch needed)."""
    obj = json.loads(Path(path).read_text())
    return _analyse(obj["ns"], obj["runs"], obj["fthr"], obj["settings"], obj["diagnostics"])
