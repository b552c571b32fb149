"""tau_gen and tau_mem in real training: the n ladder of small DDPMs (spec rf_timescales.md 7.3).

:func:`timescale_study` trains one :func:`memlab.validation.ddpm_torch.train_ddpm` model per training-set size
``n`` (nested training sets, the same initialisation seed), on a process pool or a Dask executor, with one
checkpoint file per ``n`` so an interrupted study resumes.  From each run it reads off

* ``tau_gen``: the argmin of the sample-quality proxy over the checkpoints, refined by a parabola in
  ``log tau`` through the minimum and its two neighbours (spec 7.3);
* ``tau_mem``: the first ``tau`` with memorization fraction ``>= fthr`` (default 0.05), log-linearly
  interpolated between the checkpoints around the crossing; sensitivity at 0.01 and 0.1 is reported;

and fits ``tau_mem = a n`` (least squares through the origin, ``R^2`` against the mean) and
``tau_mem ∝ n^gamma`` (log-log least squares).  Times are optimiser updates (the training time
``tau`` of arXiv:2505.17638 MT §2 in steps).  The read-off helpers need no torch.
"""

from __future__ import annotations

import json
import math
import time
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..theory import _checks
from .gmm_sweep import _write_json_atomic

__all__ = ["TimescaleStudy", "timescale_study", "read_tau_gen", "read_tau_plateau", "read_tau_mem", "fit_linear", "ladder_checkpoints",
           "save_study", "study_from_json"]

SENSITIVITY = (0.01, 0.05, 0.1)


def read_tau_gen(steps, quality) -> float:
    """Argmin of ``quality`` over checkpoints, refined by a parabola in ``log tau`` through the minimum and its
    neighbours (kept inside the neighbours' interval); an end-point minimum is returned as is."""
    s = np.asarray(steps, dtype=np.float64)
    q = np.asarray(quality, dtype=np.float64)
    if s.size == 0 or s.size != q.size:
        raise ValueError("steps and quality must be non-empty and of equal length")
    ok = np.isfinite(q)
    if not np.any(ok):
        raise ValueError("quality has no finite value")
    i = int(np.nanargmin(np.where(ok, q, np.nan)))
    if i == 0 or i == s.size - 1 or not (ok[i - 1] and ok[i + 1]):
        return float(s[i])
    x = np.log(s[i - 1:i + 2])
    c2, c1, _ = np.polyfit(x, q[i - 1:i + 2], 2)
    if c2 <= 0:
        return float(s[i])
    xm = float(np.clip(-c1 / (2.0 * c2), x[0], x[2]))
    return float(math.exp(xm))


def read_tau_plateau(steps, quality, factor: float = 1.5) -> float:
    """First checkpoint where ``quality <= factor * min(quality)``: the entry into the quality plateau.

    A secondary generalization-time read-off (package choice, not in the spec): when the quality minimum
    is a long, shallow valley (large ``n``, memorization far away) its argmin wanders along the valley
    floor with the estimator noise, while the entry time stays put."""
    s = np.asarray(steps, dtype=np.float64)
    q = np.asarray(quality, dtype=np.float64)
    if s.size == 0 or s.size != q.size or not np.any(np.isfinite(q)):
        raise ValueError("steps and quality must be non-empty, of equal length, with a finite quality")
    qmin = float(np.nanmin(q))
    if qmin <= 0:
        raise ValueError(f"read_tau_plateau needs a positive quality minimum (got {qmin:g})")
    return float(s[np.nonzero(q <= factor * qmin)[0][0]])


def read_tau_mem(steps, fraction, fthr: float = 0.05) -> float | None:
    """First ``tau`` where ``fraction >= fthr``, log-linearly interpolated from the previous checkpoint
    (``None`` if the threshold is never reached; the first checkpoint if it is reached there)."""
    s = np.asarray(steps, dtype=np.float64)
    f = np.asarray(fraction, dtype=np.float64)
    hit = np.nonzero(f >= fthr)[0]
    if hit.size == 0:
        return None
    j = int(hit[0])
    if j == 0:
        return float(s[0])
    f0, f1 = f[j - 1], f[j]
    w = (fthr - f0) / (f1 - f0) if f1 > f0 else 1.0
    return float(math.exp(math.log(s[j - 1]) + w * (math.log(s[j]) - math.log(s[j - 1]))))


def fit_linear(ns, taus) -> dict:
    """``tau = a n`` through the origin (``a``, ``R^2`` = 1 - SS_res / SS_tot about the mean) and
    ``tau = c n^gamma`` in log-log (``gamma``, ``c``, ``R^2_log``).  Needs at least two points."""
    n = np.asarray(ns, dtype=np.float64)
    t = np.asarray(taus, dtype=np.float64)
    if n.size < 2:
        return {"a": None, "r2": None, "gamma": None, "c": None, "r2_log": None, "n_points": int(n.size)}
    a = float(n @ t / (n @ n))
    ss_tot = float(np.sum((t - t.mean()) ** 2))
    r2 = 1.0 - float(np.sum((t - a * n) ** 2)) / ss_tot if ss_tot > 0 else float("nan")
    g, lc = np.polyfit(np.log(n), np.log(t), 1)
    res = np.log(t) - (g * np.log(n) + lc)
    ss_log = float(np.sum((np.log(t) - np.log(t).mean()) ** 2))
    r2l = 1.0 - float(np.sum(res ** 2)) / ss_log if ss_log > 0 else float("nan")
    return {"a": a, "r2": r2, "gamma": float(g), "c": float(math.exp(lc)), "r2_log": r2l, "n_points": int(n.size)}


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


def _validate_ns(ns) -> list[int]:
    if isinstance(ns, (str, bytes)) or not hasattr(ns, "__iter__"):
        raise TypeError(f"ns must be a sequence of training-set sizes (got {ns!r})")
    out = [_checks.positive_int("ns", v, minimum=2) for v in ns]
    if not out:
        raise ValueError("ns must hold at least one training-set size >= 2 (got an empty list)")
    if len(set(out)) != len(out):
        raise ValueError(f"ns must not repeat a size (got {list(ns)})")
    return sorted(out)


@dataclass(frozen=True)
class TimescaleStudy:
    """Result of :func:`timescale_study`.

    Attributes
    ----------
    ns : ndarray of int
    runs : list of dict
        Per-``n`` curves (:meth:`DDPMRun.to_dict`): ``steps``, ``fraction``, ``ci_low``, ``ci_high``,
        ``score_error``, ``quality``, ``train_loss``, ``config``, ``diagnostics``.
    tau_gen : ndarray
        Quality-proxy minimum per ``n`` (steps).
    tau_gen_score : ndarray
        Score-error minimum per ``n`` (steps), a second read-off of the generalization time.
    tau_gen_plateau : ndarray
        Entry into the quality plateau (:func:`read_tau_plateau`, factor 1.5), a third read-off.
    tau_mem : ndarray
        Onset of memorization (fraction ``>= fthr``) per ``n``; ``nan`` where the threshold was not reached.
    fit : dict
        :func:`fit_linear` over the ``n`` with a ``tau_mem``: ``a`` (steps per training point), ``r2``,
        ``gamma``, ``r2_log``.
    tau_gen_spread : float
        ``max / min`` of ``tau_gen`` over ``n``.
    tau_gen_plateau_spread : float
        ``max / min`` of ``tau_gen_plateau`` over ``n``.
    sensitivity : dict
        ``{fthr: {"tau_mem": [...], "fit": {...}}}`` at 0.01, 0.05 and 0.1.
    fthr : float
    settings : dict
    diagnostics : dict
        ``wall_s``, per-``n`` training wall times, ``device``.
    """

    ns: np.ndarray
    runs: list
    tau_gen: np.ndarray
    tau_gen_score: np.ndarray
    tau_gen_plateau: np.ndarray
    tau_mem: np.ndarray
    fit: dict
    tau_gen_spread: float
    tau_gen_plateau_spread: float
    sensitivity: dict
    fthr: float
    settings: dict = field(default_factory=dict)
    diagnostics: dict = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict:
        nan2none = lambda a: [None if not np.isfinite(v) else float(v) for v in a]  # noqa: E731
        return {"ns": self.ns.tolist(), "tau_gen": nan2none(self.tau_gen), "tau_gen_score": nan2none(self.tau_gen_score),
                "tau_gen_plateau": nan2none(self.tau_gen_plateau), "tau_gen_plateau_spread": self.tau_gen_plateau_spread,
                "tau_mem": nan2none(self.tau_mem), "fit": self.fit, "tau_gen_spread": self.tau_gen_spread,
                "sensitivity": self.sensitivity, "fthr": self.fthr, "settings": self.settings,
                "diagnostics": self.diagnostics, "runs": self.runs}


def _analyse(ns, runs, fthr, settings, diagnostics) -> TimescaleStudy:
    tg = np.array([read_tau_gen(r["steps"], r["quality"]) for r in runs])
    tgs = np.array([read_tau_gen(r["steps"], r["score_error"]) for r in runs])
    tgp = np.array([read_tau_plateau(r["steps"], r["quality"]) for r in runs])
    sens = {}
    for f in sorted(set(SENSITIVITY) | {fthr}):
        tm = [read_tau_mem(r["steps"], r["fraction"], f) for r in runs]
        have = [(n, v) for n, v in zip(ns, tm) if v is not None]
        sens[f"{f:g}"] = {"tau_mem": tm, "fit": fit_linear([h[0] for h in have], [h[1] for h in have])}
    tm = sens[f"{fthr:g}"]["tau_mem"]
    return TimescaleStudy(ns=np.asarray(ns), runs=runs, tau_gen=tg, tau_gen_score=tgs, tau_gen_plateau=tgp,
                          tau_mem=np.array([np.nan if v is None else v for v in tm]), fit=sens[f"{fthr:g}"]["fit"],
                          tau_gen_spread=float(tg.max() / tg.min()),
                          tau_gen_plateau_spread=float(tgp.max() / tgp.min()), sensitivity=sens, fthr=float(fthr),
                          settings=settings, diagnostics=diagnostics)


def _study_task(task: dict) -> dict:
    """Train and evaluate one ``n`` (top level so process pools and Dask can pickle it)."""
    import torch

    from .ddpm_torch import train_ddpm

    old = torch.get_num_threads()
    if task.get("threads"):
        torch.set_num_threads(int(task["threads"]))
    try:
        run = train_ddpm(task["n"], checkpoint=task.get("checkpoint"), device=task["device"], quiet=task["quiet"],
                         **task["settings"])
    finally:
        torch.set_num_threads(old)
    return run.to_dict()


STEPS_PER_POINT = {"sgd": 1000, "adam": 100}   # about 3 tau_mem / n measured at W = 128 (README, issue 7 note)


def timescale_study(ns, *, steps: int | None = None, width: int = 128, device=None, seed: int = 0,
                    scale_steps: bool = True, optimizer: str = "sgd", lr: float | None = None,
                    momentum: float = 0.95, n_checkpoints: int = 30, first_checkpoint: int | None = None,
                    n_gen: int = 1000, sample_steps: int = 1000, score_step: int = 40, n_score: int = 10_000,
                    fthr: float = 0.05, d: int = 8, data_seed: int = 0, dtype: str = "float32",
                    out=None, executor: Executor | None = None, threads: int | None = None,
                    quiet: bool = False) -> TimescaleStudy:
    """Memorization and generalization times of a small DDPM across training-set sizes
    (spec rf_timescales.md 7.2-7.3; arXiv:2505.17638 MT §2, SM B, Fig. 2 analogue).

    Parameters
    ----------
    ns : sequence of int
        Training-set sizes (each >= 2, distinct); nested sets (the first ``n`` points of one stream).
    steps : int, optional
        Training horizon (optimiser updates) of the largest ``n``; choose about 3 ``tau_mem(n_max)``.
        Default ``1000 n_max`` for SGD, ``100 n_max`` for Adam (about 3 ``tau_mem`` at the measured
        ``tau_mem / n`` of 300 and 35 updates per point for ``W = 128``; smaller widths memorize later).
    width : int, default 128
        Residual-MLP width ``W`` (spec 7.2; ``p = W(2d+13) + d + 6W^2``).
    device : None, "cpu", "cuda", "cuda:N"
        Default CUDA when available, else CPU.
    seed : int
        Initialisation and training-noise seed (the initialisation is the same for every ``n``).
    scale_steps : bool, default True
        Horizon ``∝ n`` (``steps n / n_max``, at least the fourth grid point) on one common log-spaced
        checkpoint grid; ``False``: every ``n`` trains for ``steps``.
    optimizer : {"sgd", "adam"}
        Full-batch SGD with momentum (spec: lr 6e-3, momentum 0.95) or Adam (default lr 1e-3).
    lr, momentum, n_checkpoints, first_checkpoint, n_gen, sample_steps, score_step, n_score, d, data_seed, dtype
        See :class:`memlab.validation.ddpm_torch.DDPMConfig`.
    fthr : float, default 0.05
        Memorization-fraction level of ``tau_mem`` (sensitivity at 0.01 and 0.1 is always reported).
    out : path, optional
        Folder for per-``n`` checkpoints (``ckpt_n{n}.pt``; an interrupted study resumes from them) and
        ``study.json`` (written atomically).
    executor : concurrent.futures.Executor, optional
        Runs the ``n`` in parallel (e.g. :func:`memlab.validation.gmm_sweep.executor_for`; a Dask
        ``Client(...).get_executor()``); default: one after another in this process.
    threads : int, optional
        ``torch.set_num_threads`` inside each task.
    quiet : bool

    Returns
    -------
    TimescaleStudy
    """
    ns = _validate_ns(ns)
    if optimizer not in ("sgd", "adam"):
        raise ValueError(f"optimizer must be 'sgd' or 'adam' (got {optimizer!r})")
    steps = STEPS_PER_POINT[optimizer] * max(ns) if steps is None else _checks.positive_int("steps", steps)
    width = _checks.positive_int("width", width)
    n_checkpoints = _checks.positive_int("n_checkpoints", n_checkpoints, minimum=3)
    lr = (6e-3 if optimizer == "sgd" else 1e-3) if lr is None else lr
    fthr = _checks.positive_float("fthr", fthr)
    if fthr >= 1:
        raise ValueError(f"fthr must lie in (0, 1) (got {fthr!r})")
    if threads is not None:
        threads = _checks.positive_int("threads", threads)
    from .ddpm_torch import DDPMConfig
    from .gmm_torch import resolve_device

    dev = str(resolve_device(device))
    ck = ladder_checkpoints(ns, steps, n_checkpoints, scale_steps=scale_steps, first=first_checkpoint)
    if len(ck[ns[0]]) < 3:
        raise ValueError(f"steps={steps} with n_checkpoints={n_checkpoints} leaves n={ns[0]} fewer than 3 "
                         f"checkpoints; raise steps or n_checkpoints (or pass scale_steps=False)")
    base = {"d": d, "width": width, "optimizer": optimizer, "lr": float(lr), "momentum": float(momentum),
            "n_gen": n_gen, "sample_steps": sample_steps, "score_step": score_step, "n_score": n_score,
            "seed": seed, "data_seed": data_seed, "dtype": dtype}
    tasks = []
    for n in ns:
        s = dict(base, steps=ck[n][-1], checkpoints=ck[n])
        DDPMConfig(n=n, **s)  # validate before any work starts
        tasks.append({"n": n, "settings": s, "device": dev, "threads": threads, "quiet": quiet or executor is not None,
                      "checkpoint": None if out is None else str(Path(out) / f"ckpt_n{n}.pt")})
    if out is not None:
        Path(out).mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    order = tasks[::-1]  # largest n first: it takes longest, so a pool finishes sooner
    if executor is None:
        done = [_study_task(t) for t in order]
    else:
        done = list(executor.map(_study_task, order))
    runs = sorted(done, key=lambda r: r["n"])
    settings = dict(base, fthr=fthr, steps=steps, scale_steps=scale_steps, n_checkpoints=n_checkpoints,
                    first_checkpoint=first_checkpoint, ns=ns)
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
    p = out / "study.json"
    _write_json_atomic(p, study.to_dict())
    return p


def study_from_json(path) -> TimescaleStudy:
    """Re-read a ``study.json`` and redo the read-offs (no torch needed)."""
    obj = json.loads(Path(path).read_text())
    return _analyse(obj["ns"], obj["runs"], obj["fthr"], obj["settings"], obj["diagnostics"])
