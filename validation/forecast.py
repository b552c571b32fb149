"""Forecast memorization for your own model and data: measure ``tau_mem`` on cheap small training sets,
fit ``tau_mem = a n^gamma``, extrapolate (arXiv:2505.17638 MT §2-3; docs/theory/validation.md §5).

Training to memorization at the full training-set size is the expensive thing a practitioner wants to avoid;
training at small ``n`` is cheap, and the random-features result ``tau_mem ∝ n`` (arXiv:2505.17638 MT §3, Fig. 2)
says how to extrapolate.  :func:`forecast_memorization`

1. loads the data (an array, a ``.npy``/``.npz`` file, a folder of PNG images, or a bundled dataset by name:
   ``"digits"``, scikit-learn's 1797 grey-level 8x8 images) and normalises it (recorded in the result);
2. trains one DDPM (epsilon loss, the linear-beta schedule of :class:`memlab.validation.ddpm_torch.DDPMSchedule`)
   per training-set size on nested subsets (the first ``n`` points of one seeded permutation), with horizons
   ``∝ n`` on one log-spaced checkpoint grid; at every checkpoint: the memorization fraction of generated samples
   against that subset (1/3 rule, exact Clopper-Pearson CI, arXiv:2310.02664), the Frechet distance of the samples
   to held-out points (sample quality), and the DDPM loss on the training subset and on held-out points with
   fixed noise draws (their difference is the generalization gap);
3. reads ``tau_mem`` per ``n`` (first crossing of the level ``fthr`` by the fraction; its interval from the
   crossings of the CI's upper and lower ends), fits the law with a prediction interval
   (:func:`memlab.numerics.forecast_fit.fit_tau_mem`), forecasts ``tau_mem(target_n)``, gives the largest ``n``
   that memorizes within a training budget (effective model memorization, arXiv:2310.02664 §4), the theory
   context (``n`` against the model's parameter count ``p``: the random-features picture memorizes only for
   ``n < p``) and the last safe step at ``target_n``;
4. optionally trains ``held_out`` sizes that the fit never sees and compares them with the forecast.

Every run checkpoints atomically after each evaluation and resumes to the same numbers; runs go on a process
pool or Dask like :func:`memlab.validation.timescales.timescale_study`.  ``forecast.json`` and ``summary.txt``
are written to ``out``; re-reading (:func:`forecast_from_json`) needs no torch.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import os
import time
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..numerics.forecast_fit import LAWS, TauMemFit, fit_tau_mem
from ..numerics.readoffs import argmin_log_parabola, first_crossing_log
from ..numerics.threads import thread_budget
from ..theory import checks
from . import runtime

__all__ = ["DATASETS", "ForecastData", "ForecastConfig", "MemorizationForecast", "load_forecast_data",
           "forecast_memorization", "forecast_from_json", "frechet_distance", "MODELS", "STEPS_PER_POINT"]

#: Bundled real datasets available by name (scikit-learn ships the data; ``pip install memlab[digits]``).
DATASETS = ("digits",)
#: Built-in models; a callable ``make_model(dim) -> torch.nn.Module`` is accepted too.
MODELS = ("mlp", "conv")
NORMALIZATIONS = ("auto", "range", "standardize", "none")
#: Default horizon per training point: Adam about 2.5 times the ``tau_mem / n`` of 27-31 steps measured on digits
#: with the built-in MLP (``W = 128``, full batch, lr 4e-3, n = 64 and 128) at ``fthr = 0.05``; SGD ten times that
#: (not calibrated; docs/theory/validation.md §5).
STEPS_PER_POINT = {"adam": 80, "sgd": 800}


# ------------------------------------------------------------------------------------------------ the data
@dataclass(frozen=True)
class ForecastData:
    """Points ready for training (docs/theory/validation.md §5).

    Attributes
    ----------
    x : ndarray, shape (N, D)
        Normalised points (float64).
    name : str
        Dataset name or file path (``"array"`` for an in-memory array).
    image_shape : tuple of int or None
        ``(H, W)`` or ``(H, W, C)`` when the points are images (needed by the ``"conv"`` model).
    normalization : dict
        ``kind`` (``"range"``: ``x' = (x - low) / (high - low) * 2 - 1`` with the known value range; ``"standardize"``:
        ``x' = (x - mean) / std`` with the per-feature mean and one global std; ``"none"``), ``offset``, ``scale``
        (``x' = (x - offset) / scale``; ``offset`` per feature for "standardize"), ``raw_low``, ``raw_high``.
    """

    x: np.ndarray = field(repr=False)
    name: str
    image_shape: tuple | None
    normalization: dict

    @property
    def n(self) -> int:
        return int(self.x.shape[0])

    @property
    def dim(self) -> int:
        return int(self.x.shape[1])


def _digits():
    try:
        from sklearn.datasets import load_digits
    except ImportError:  # pragma: no cover - depends on the installed extras
        raise ValueError("data='digits' needs scikit-learn (pip install 'memlab[digits]')") from None
    return load_digits().data.astype(np.float64), (8, 8), (0.0, 16.0)


def _png_shape(folder: Path, dim: int):
    """``(H, W)`` or ``(H, W, C)`` of the images :func:`memlab.load_points` read from ``folder`` as rows of ``dim``
    values (its rule on alpha channels decides ``C``)."""
    import matplotlib.image as mpimg

    first = sorted(f for f in folder.iterdir() if f.suffix.lower() == ".png" and f.is_file())[0]
    h, w = np.asarray(mpimg.imread(first)).shape[:2]
    c = dim // (h * w)
    return (h, w) if c == 1 else (h, w, c)


def load_forecast_data(data, *, normalize: str = "auto", image_shape=None, key: str | None = None) -> ForecastData:
    """Load and normalise the data of :func:`forecast_memorization` (docs/theory/validation.md §5).

    Parameters
    ----------
    data : str, path or array_like
        A name from :data:`DATASETS` (``"digits"``: scikit-learn's 1797 images 8x8, grey levels 0-16); a ``.npy`` or
        ``.npz`` file (rows are points; 3-D arrays ``(N, H, W)`` are images); a folder of PNG images (read as 0-255
        pixels, :func:`memlab.load_points`); or an array ``(N, D)`` / ``(N, H, W)`` / ``(N, H, W, C)``.
    normalize : {"auto", "range", "standardize", "none"}
        ``"range"`` maps the known value range to [-1, 1] (0-16 for digits, 0-255 for PNG images, else the data's
        min and max); ``"standardize"`` subtracts the per-feature mean and divides by the global standard
        deviation; ``"auto"`` is ``"range"`` for digits and images, ``"standardize"`` for other arrays.
    image_shape : tuple of int, optional
        The image shape of flat rows (for the ``"conv"`` model); inferred for digits, PNG folders and 3-D/4-D
        arrays.
    key : str, optional
        Array name inside a ``.npz`` file.

    Returns
    -------
    ForecastData
    """
    normalize = checks.choice("normalize", normalize, NORMALIZATIONS)
    shape, known = None, None
    if isinstance(data, str) and data in DATASETS:
        raw, shape, known = _digits()
        name = data
    elif isinstance(data, (str, os.PathLike)):
        from memlab.io import load_points   # the package's one file reader (lazy: the facade sits above)

        path = Path(data)
        if isinstance(data, str) and not path.exists() and path.suffix == "":
            raise ValueError(f"data must be one of the bundled datasets {list(DATASETS)}, a .npy/.npz file or a "
                             f"folder of .png images (got {data!r}: no such dataset, file or folder)")
        raw = load_points(path, name="data", key=key).astype(np.float64)
        name = str(path)
        if path.is_dir():
            shape, known = _png_shape(path, raw.shape[1]), (0.0, 255.0)
        else:
            obj = np.load(path, allow_pickle=False, mmap_mode="r" if path.suffix.lower() == ".npy" else None)
            if isinstance(obj, np.ndarray):
                full_shape = obj.shape
            else:   # the array load_points picked: key, else "data", else the only one
                with obj:
                    keys = list(obj.keys())
                    full_shape = obj[key if key is not None else ("data" if "data" in keys else keys[0])].shape
            if len(full_shape) in (3, 4):
                shape = tuple(int(v) for v in full_shape[1:])
    else:
        if isinstance(data, (bool, int, float, complex)) or data is None:
            raise TypeError(f"data must be a dataset name, a path or an array of points (got {data!r})")
        arr = checks.real_array("data", data)
        if arr.ndim < 2:
            raise ValueError(f"data must be an array of points with shape (N, D) or images (N, H, W[, C]) "
                             f"(got shape {arr.shape})")
        if arr.ndim in (3, 4):
            shape = tuple(int(v) for v in arr.shape[1:])
        raw = arr.reshape(arr.shape[0], -1)
        name = "array"
    if raw.ndim != 2 or raw.shape[0] < 4 or raw.shape[1] < 1:
        raise ValueError(f"data must hold at least 4 points of dimension >= 1 (got shape {raw.shape})")
    if not np.all(np.isfinite(raw)):
        raise ValueError("data must be finite (found NaN or inf)")
    if image_shape is not None:
        shape = tuple(checks.positive_int("image_shape", v) for v in image_shape)
        if len(shape) not in (2, 3) or math.prod(shape) != raw.shape[1]:
            raise ValueError(f"image_shape must be (H, W) or (H, W, C) with H W C = D = {raw.shape[1]} "
                             f"(got {image_shape})")
    kind = normalize if normalize != "auto" else ("range" if shape is not None else "standardize")
    lo, hi = float(raw.min()), float(raw.max())
    if kind == "range":
        low, high = known if known is not None else (lo, hi)
        if not high > low:
            raise ValueError("data are constant: cannot normalise a single value to [-1, 1]")
        offset, scale = (low + high) / 2.0, (high - low) / 2.0
        x = (raw - offset) / scale
    elif kind == "standardize":
        offset = raw.mean(axis=0)
        scale = float((raw - offset).std())
        if not scale > 0:
            raise ValueError("data are constant: cannot standardise")
        x = (raw - offset) / scale
    else:
        offset, scale = 0.0, 1.0
        x = raw.copy()
    norm = {"kind": kind, "offset": offset.tolist() if isinstance(offset, np.ndarray) else float(offset),
            "scale": float(scale), "raw_low": lo, "raw_high": hi}
    return ForecastData(x=np.ascontiguousarray(x, dtype=np.float64), name=name, image_shape=shape, normalization=norm)


def frechet_distance(a, b) -> float:
    """Frechet distance between Gaussian fits of two point sets, ``|m_a - m_b|^2 + Tr(C_a + C_b - 2 (C_a C_b)^{1/2})``
    (the FID formula in data space; docs/theory/validation.md §5).  Lower is better; 0 for identical moments."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    ma, mb = a.mean(axis=0), b.mean(axis=0)
    ca, cb = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    w, v = np.linalg.eigh(ca)
    ra = (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T          # C_a^{1/2}
    cross = np.linalg.eigvalsh(ra @ cb @ ra)                 # eigenvalues of C_a^{1/2} C_b C_a^{1/2}
    tr = float(np.trace(ca) + np.trace(cb) - 2.0 * np.sum(np.sqrt(np.clip(cross, 0.0, None))))
    return float(np.sum((ma - mb) ** 2) + max(tr, 0.0))


# ------------------------------------------------------------------------------------------------ settings
@dataclass(frozen=True)
class ForecastConfig:
    """Training and evaluation settings of every run of a forecast (recorded in checkpoints and outputs;
    docs/theory/validation.md §5).

    Attributes
    ----------
    width : int
        Width ``W`` of the residual MLP (``"mlp"``).
    channels : int
        Channels of the convolutional model (``"conv"``).
    optimizer : {"adam", "sgd"}
    lr : float, optional
        Default 4e-3 (Adam; on digits it memorizes about 6 times sooner than 1e-3, which makes CPU ladders
        affordable) or 6e-3 (SGD with momentum).
    momentum : float
        SGD momentum in [0, 1).
    batch : int or None
        Mini-batch size; ``None`` (default): full batch, so every size trains in the same regime (with a fixed
        mini-batch smaller than ``n`` the steps to memorize grew faster than ``n`` on digits: 170 steps per point
        full-batch at n = 64, 310 with batch 64 at n = 128).
    n_checkpoints : int
        Points of the common log-spaced checkpoint grid up to the largest horizon.
    first_checkpoint : int
        First grid step.
    n_gen : int
        Generated samples per checkpoint (memorization fraction and quality).
    sample_steps : int
        Ancestral sampling steps (``<= 1000``).
    n_ref : int
        Held-out reference points for the quality and the test loss (at most what the largest subset leaves).
    seed, data_seed : int
        Initialisation and training noise (the same for every ``n``); the data permutation.
    dtype : {"float32", "float64"}
    """

    width: int = 128
    channels: int = 32
    optimizer: str = "adam"
    lr: float | None = None
    momentum: float = 0.9
    batch: int | None = None
    n_checkpoints: int = 32
    first_checkpoint: int = 50
    n_gen: int = 500
    sample_steps: int = 100
    n_ref: int = 500
    seed: int = 0
    data_seed: int = 0
    dtype: str = "float32"

    def __post_init__(self):
        checks.positive_int("width", self.width)
        checks.positive_int("channels", self.channels)
        checks.choice("optimizer", self.optimizer, ("adam", "sgd"))
        lr = (4e-3 if self.optimizer == "adam" else 6e-3) if self.lr is None else self.lr
        object.__setattr__(self, "lr", checks.positive_float("lr", lr, maximum=10.0))
        m = checks.positive_float("momentum", self.momentum, allow_zero=True)
        if m >= 1:
            raise ValueError(f"momentum must lie in [0, 1) (got {self.momentum!r})")
        if self.batch is not None:
            checks.positive_int("batch", self.batch)
        checks.positive_int("n_checkpoints", self.n_checkpoints, minimum=3, maximum=10_000)
        checks.positive_int("first_checkpoint", self.first_checkpoint)
        checks.positive_int("n_gen", self.n_gen, minimum=8)
        checks.positive_int("sample_steps", self.sample_steps, minimum=2, maximum=1000)
        checks.positive_int("n_ref", self.n_ref, minimum=8)
        checks.seed("seed", self.seed)
        checks.seed("data_seed", self.data_seed)
        runtime.torch_dtype(self.dtype)

    def replace(self, **changes) -> "ForecastConfig":
        if "optimizer" in changes and "lr" not in changes and changes["optimizer"] != self.optimizer:
            changes["lr"] = None
        return dataclasses.replace(self, **changes)


# ------------------------------------------------------------------------------------------------ one run
def _build_model(model, dim, image_shape, cfg):
    import torch

    from .ddpm_torch import ConvDenoiser, ResidualMLP

    if model == "mlp":
        return ResidualMLP(dim, cfg.width, seed=cfg.seed)
    if model == "conv":
        if image_shape is None:
            raise ValueError("model='conv' needs image data (digits, PNG images, an (N, H, W) array or image_shape=)")
        return ConvDenoiser(image_shape, cfg.channels, seed=cfg.seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(cfg.seed))
        net = model(dim)
    if not isinstance(net, torch.nn.Module):
        raise TypeError(f"make_model(dim) must return a torch.nn.Module (got {type(net).__name__})")
    return net


def _model_label(model) -> str:
    if isinstance(model, str):
        return model
    return f"{getattr(model, '__module__', '?')}.{getattr(model, '__qualname__', type(model).__name__)}"


def _fixed_loss(model, x, abar, g_seed, dev, tdt):
    """DDPM loss of ``x`` with fixed draws (one step and one noise per point, seeded): comparable across
    checkpoints."""
    import torch

    g = torch.Generator(device="cpu")
    g.manual_seed(int(g_seed))
    k = torch.randint(0, abar.shape[0], (x.shape[0],), generator=g)
    eps = torch.randn(x.shape, generator=g, dtype=tdt)
    ab = abar[k.to(dev)][:, None]
    xt = ab.sqrt() * x + (1.0 - ab).sqrt() * eps.to(dev)
    out = []
    for i in range(0, x.shape[0], 2048):
        out.append(((model(xt[i:i + 2048], k[i:i + 2048].to(dev)) - eps[i:i + 2048].to(dev)) ** 2).mean(dim=1))
    return float(torch.cat(out).mean())


def _forecast_task(task: dict) -> dict:
    """Train and evaluate one ``n`` (top level so process pools and Dask can pickle it)."""
    with runtime.threads(task["threads"]):
        return _train_one(task)


def _train_one(task: dict) -> dict:
    import torch

    from ..numerics.memorization import memorization_fraction
    from .ddpm_torch import DDPMSchedule, ancestral_sample, ddpm_step

    cfg: ForecastConfig = task["config"]
    X, R = task["train"], task["ref"]
    n, dim = X.shape
    dev = runtime.resolve_device(task["device"])
    tdt = runtime.torch_dtype(cfg.dtype)
    _, abar_np = DDPMSchedule().arrays()
    abar = torch.as_tensor(abar_np, dtype=tdt, device=dev)
    x0 = torch.as_tensor(X, dtype=tdt, device=dev)
    xr = torch.as_tensor(R, dtype=tdt, device=dev)
    net = _build_model(task["model"], dim, task["image_shape"], cfg).to(device=dev, dtype=tdt)
    n_params = int(sum(p.numel() for p in net.parameters()))
    if cfg.optimizer == "adam":
        opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    else:
        opt = torch.optim.SGD(net.parameters(), lr=cfg.lr, momentum=cfg.momentum)
    gen = torch.Generator(device="cpu")
    gen.manual_seed(int(np.random.default_rng([cfg.seed, n, 17]).integers(0, 2 ** 62)))
    steps = [int(s) for s in task["checkpoints"]]
    fingerprint = {"n": n, "config": dataclasses.asdict(cfg), "model": _model_label(task["model"]),
                   "checkpoints": steps, "data": task["data_hash"]}
    rows, start = [], 0
    ck = Path(task["checkpoint"]) if task["checkpoint"] is not None else None
    if ck is not None and ck.exists():
        state = runtime.load_checkpoint(ck, fingerprint, "forecast training")
        net.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        gen.set_state(state["gen"])
        rows, start = list(state["rows"]), int(state["step"])
        if task["stop_fthr"] is not None and rows and rows[-1]["ci_low"] >= task["stop_fthr"]:
            steps = [s for s in steps if s <= start]   # it had stopped early: nothing left to train
    resumed_from = start
    batch = n if cfg.batch is None else min(cfg.batch, n)
    bar = runtime.progress(steps[-1], start, task["quiet"], f"forecast n={n}")
    flush = torch.set_flush_denormal(True) if dev.type == "cpu" else False   # denormals slow CPU training badly
    t0 = time.perf_counter()
    step = start
    try:
        for target in (s for s in steps if s > start):
            net.train()
            while step < target:
                loss = ddpm_step(net, opt, x0, batch, abar, gen)
                step += 1
                if bar is not None:
                    bar.update(1)
            if not math.isfinite(float(loss.detach())):
                raise FloatingPointError(f"training loss became {float(loss.detach())} at step {step} (n = {n}, "
                                         f"lr = {cfg.lr:g}, optimizer = {cfg.optimizer}); lower lr")
            net.eval()
            with torch.no_grad():
                xs = ancestral_sample(net, cfg.n_gen, dim, cfg.sample_steps, abar_np, 1_000_003 + cfg.seed, dev, tdt)
                xs = xs.to(torch.float64).cpu().numpy()
                if not np.all(np.isfinite(xs)):
                    raise FloatingPointError(f"samples are not finite at step {step} (n = {n}); lower lr")
                train_loss = _fixed_loss(net, x0, abar, 5 + cfg.seed, dev, tdt)
                test_loss = _fixed_loss(net, xr, abar, 6 + cfg.seed, dev, tdt)
            mem = memorization_fraction(xs, X, n_boot=0)
            rows.append({"step": int(step), "fraction": mem.fraction, "ci_low": mem.ci_low, "ci_high": mem.ci_high,
                         "quality": frechet_distance(xs, R), "train_loss": train_loss, "test_loss": test_loss})
            if ck is not None:
                runtime.atomic_save({"fingerprint": fingerprint, "model": net.state_dict(), "opt": opt.state_dict(),
                                     "gen": gen.get_state(), "rows": rows, "step": step}, ck)
            if task["stop_fthr"] is not None and mem.ci_low >= task["stop_fthr"]:
                break   # memorization established: tau_mem and both ends of its interval are already read
    finally:
        if flush:
            torch.set_flush_denormal(False)
        if bar is not None:
            bar.close()
    col = {k: [r[k] for r in rows] for k in rows[0]}
    return {"n": n, "steps": col["step"], "fraction": col["fraction"], "ci_low": col["ci_low"],
            "ci_high": col["ci_high"], "quality": col["quality"], "train_loss": col["train_loss"],
            "test_loss": col["test_loss"],
            "diagnostics": {"n_params": n_params, "device": str(dev), "wall_s": time.perf_counter() - t0,
                            "resumed_from": resumed_from, "steps_run": step - resumed_from}}


# ------------------------------------------------------------------------------------------------ read-offs
def read_run(run: dict, fthr: float) -> dict:
    """``tau_mem`` of one run and its interval: the first crossings of ``fthr`` by the fraction, its CI's upper end
    (earliest) and lower end (latest; ``inf`` if not reached within the horizon); ``censored`` when the fraction
    never reaches ``fthr``.  Also ``tau_gen_quality_min`` (argmin of the Frechet distance)."""
    s = run["steps"]
    tm = first_crossing_log(s, run["fraction"], fthr)
    lo = first_crossing_log(s, run["ci_high"], fthr)
    hi = first_crossing_log(s, run["ci_low"], fthr)
    q = np.asarray(run["quality"], dtype=float)
    return {"n": run["n"], "tau_mem": tm, "tau_low": lo if tm is not None else None,
            "tau_high": (hi if hi is not None else float("inf")) if tm is not None else None,
            "censored": tm is None, "horizon": int(s[-1]),
            "tau_gen_quality_min": argmin_log_parabola(s, q) if np.any(np.isfinite(q)) else None}


# ------------------------------------------------------------------------------------------------ the result
@dataclass(frozen=True)
class MemorizationForecast:
    """Result of :func:`forecast_memorization` (field names = JSON keys of ``forecast.json``;
    docs/theory/validation.md §5).

    Attributes
    ----------
    ns : list of int
        The fitted training-set sizes.
    readoffs : list of dict
        Per fitted ``n``: ``tau_mem`` (steps; ``None`` if not reached within the horizon), ``tau_low``,
        ``tau_high`` (from the fraction's CI), ``censored``, ``horizon``, ``tau_gen_quality_min``.
    fit : dict
        :class:`memlab.numerics.forecast_fit.TauMemFit` as a dict (``a``, ``gamma``, ``cov``, ``birge``, ...).
    target_n : int
    forecast : dict
        ``tau_mem``, ``low``, ``high`` at ``target_n`` (steps; prediction interval at ``level``).
    budget : dict or None
        ``steps``, ``n_emm`` with ``low`` and ``high``: the largest training set that memorizes within the budget
        (effective model memorization under a fixed budget, arXiv:2310.02664 §4), and ``target_at_risk``.
    held_out : list of dict
        Per held-out size: measured ``tau_mem`` (with its interval), the forecast and interval at that size,
        ``inside`` (measured within the interval) and ``relative_error`` ``(measured - forecast) / forecast``.
    theory : dict
        ``n_params`` (``p``), per size ``n / p`` and the regime (``"n < p"``: memorization reachable, ``tau_mem ∝ n``
        expected, arXiv:2505.17638 MT §3; ``"n > p"``: the random-features model does not memorize), the expected
        exponent 1.
    recommendation : dict
        ``last_safe_step`` at ``target_n`` (the forecast interval's lower end) and a sentence.
    alternatives : dict
        Every law that can be fitted (``"power"``, ``"linear"``, ``"rf"`` with ``n_c = p / D``): ``a``, ``gamma``,
        ``birge``, its forecast at ``target_n`` and its held-out comparison (``censored_beyond``: a held-out size not
        memorized within a horizon beyond that law's interval).
    runs : list of dict
        Every run's curves (``steps``, ``fraction``, ``ci_low``, ``ci_high``, ``quality``, ``train_loss``,
        ``test_loss``, ``diagnostics``), fitted sizes then held-out sizes.
    data : dict
        ``name``, ``n_points``, ``dim``, ``image_shape``, ``normalization``.
    settings : dict
    diagnostics : dict
    """

    ns: list
    readoffs: list
    fit: dict
    target_n: int
    forecast: dict
    budget: dict | None
    held_out: list
    theory: dict
    recommendation: dict
    alternatives: dict = field(repr=False)
    runs: list = field(repr=False)
    data: dict = field(repr=False)
    settings: dict = field(repr=False)
    diagnostics: dict = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict:
        """JSON-ready: the fields by name, non-finite numbers (an interval's open upper end) as ``None``."""
        return _finite_or_none({f.name: getattr(self, f.name) for f in dataclasses.fields(self)})

    def tau_fit(self) -> TauMemFit:
        """The fitted law as a :class:`TauMemFit` (to predict at other sizes)."""
        f = self.fit
        return TauMemFit(law=f["law"], a=f["a"], gamma=f["gamma"], cov=np.asarray(f["cov"]), ns=np.asarray(f["ns"]),
                         tau=np.asarray(f["tau"]), sigma_log=np.asarray(f["sigma_log"]), birge=f["birge"],
                         level=f["level"], n_c=f.get("n_c"), diagnostics=f["diagnostics"])

    def summary(self) -> str:
        """A short text summary (also written to ``summary.txt``)."""
        f, fc = self.fit, self.forecast
        lines = [f"memorization forecast on {self.data['name']} ({self.data['n_points']} points, D = "
                 f"{self.data['dim']}), model {self.settings['model']} with p = {self.theory['n_params']:,} "
                 f"parameters, {self.settings['optimizer']} lr {self.settings['lr']:g}, "
                 f"{'full batch' if self.settings['batch'] is None else 'batch %d' % self.settings['batch']}, level "
                 f"fthr = {self.settings['fthr']:g}",
                 "     n   tau_mem (steps)   interval              tau_mem/n   tau_gen_quality_min"]
        for r in self.readoffs:
            if r["censored"]:
                lines.append(f"{r['n']:6d}   > {r['horizon']:<13,d}   (not reached within the horizon)")
            else:
                hi = "inf" if not np.isfinite(r["tau_high"]) else f"{r['tau_high']:,.0f}"
                lines.append(f"{r['n']:6d}   {r['tau_mem']:15,.0f}   [{r['tau_low']:,.0f}, {hi}]".ljust(48)
                             + f"{r['tau_mem'] / r['n']:9.1f}   {r['tau_gen_quality_min'] or float('nan'):,.0f}")
        lines.append(f"fit ({f['law']}): {law_text(f)}  (Birge ratio {f['birge']:.2f}, {f['diagnostics']['dof']} dof)")
        lines.append(f"forecast at n = {self.target_n:,}: tau_mem = {_fmt(fc['tau_mem'])} steps, "
                     f"{100 * f['level']:.0f}% interval [{_fmt(fc['low'])}, {_fmt(fc['high'])}]")
        for h in self.held_out:
            m = h["measured"]
            if m is None:
                where = ("beyond the interval's upper end: the forecast fails" if h["censored_beyond"] else
                         "not yet past the interval's upper end: undecided")
                lines.append(f"held out n = {h['n']:,}: not memorized within {h['horizon']:,} steps (forecast "
                             f"{_fmt(h['forecast'])} [{_fmt(h['low'])}, {_fmt(h['high'])}]; {where})")
            else:
                lines.append(f"held out n = {h['n']:,}: measured {m:,.0f} vs forecast {_fmt(h['forecast'])} "
                             f"[{_fmt(h['low'])}, {_fmt(h['high'])}]: {'inside' if h['inside'] else 'OUTSIDE'} the "
                             f"interval, {100 * h['relative_error']:+.0f}%")
        if self.budget is not None:
            b = self.budget
            lines.append(f"budget {b['steps']:,} steps: training sets up to n = {_fmt(b['n_emm'])} "
                         f"[{_fmt(b['low'])}, {_fmt(b['high'])}] memorize within it (effective model memorization)")
        for lw, alt in self.alternatives.items():
            if lw == f["law"]:
                continue
            af = alt["forecast"]
            extra = "".join(f"; n = {h['n']:,}: {_fmt(h['forecast'])} [{_fmt(h['low'])}, {_fmt(h['high'])}]"
                            for h in alt["held_out"])
            lines.append(f"other law {lw}: forecast at n = {self.target_n:,}: {_fmt(af['tau_mem'])} "
                         f"[{_fmt(af['low'])}, {_fmt(af['high'])}]{extra}")
        lines.append(f"theory: {self.theory['note']}")
        lines.append(f"recommendation: {self.recommendation['text']}")
        return "\n".join(lines)


def law_text(fit: dict) -> str:
    """The fitted law as text (for summaries and legends)."""
    if fit["law"] == "rf":
        return f"tau_mem = {fit['a']:.4g} / (sqrt({fit['n_c']:.4g} / n) - 1)^2"
    return f"tau_mem = {fit['a']:.4g} n^{fit['gamma']:.3f}"


def _finite_or_none(obj):
    if isinstance(obj, dict):
        return {k: _finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite_or_none(v) for v in obj]
    if isinstance(obj, (float, np.floating)) and not np.isfinite(obj):
        return None
    return obj


def _fmt(v) -> str:
    return "n/a" if v is None or not np.isfinite(v) else f"{v:,.0f}"


def _assemble(ns, held, runs, fthr, law, level, target_n, budget, data_info, settings, diagnostics):
    by_n = {r["n"]: r for r in runs}
    reads = [read_run(by_n[n], fthr) for n in ns]
    have = [r for r in reads if not r["censored"]]
    if len(have) < (2 if law == "power" else 1):
        missing = [r["n"] for r in reads if r["censored"]]
        raise ValueError(f"memorization (fraction >= fthr = {fthr:g}) was not reached within the horizon for n = "
                         f"{missing}: too few sizes to fit law={law!r}; raise steps_per_point or lower fthr")
    p = int(runs[0]["diagnostics"]["n_params"])
    n_c = p / data_info["dim"]     # random-features interpolation threshold: n D = p (docs/theory/validation.md §5)
    fits = {}
    for lw in LAWS:
        if lw == "power" and len({r["n"] for r in have}) < 2:
            continue
        if lw == "rf" and max(r["n"] for r in have) >= n_c:
            continue
        fits[lw] = fit_tau_mem([r["n"] for r in have], [r["tau_mem"] for r in have],
                               tau_low=[r["tau_low"] for r in have], tau_high=[r["tau_high"] for r in have], law=lw,
                               level=level, n_c=n_c if lw == "rf" else None)
    if law not in fits:
        raise ValueError(f"law={law!r} cannot be fitted here (the fitted sizes reach the interpolation threshold "
                         f"n_c = p / D = {n_c:.4g})")
    fit = fits[law]
    center, low, high = fit.predict(float(target_n))
    forecast = {"tau_mem": center, "low": low, "high": high, "level": level}
    held_rows = []
    for n in held:
        r = read_run(by_n[n], fthr)
        c, lo, hi = fit.predict(float(n))
        m = r["tau_mem"]
        held_rows.append({"n": n, "measured": m, "measured_low": r["tau_low"], "measured_high": r["tau_high"],
                          "horizon": r["horizon"], "forecast": c, "low": lo, "high": hi,
                          "inside": None if m is None else bool(lo <= m <= hi),
                          "relative_error": None if m is None else (m - c) / c,
                          "censored_beyond": None if m is not None else bool(r["horizon"] > hi)})
    alternatives = {}
    for lw, f in fits.items():
        c, lo, hi = f.predict(float(target_n))
        rows = []
        for h in held_rows:
            hc, hl, hh = f.predict(float(h["n"]))
            m = h["measured"]
            rows.append({"n": h["n"], "forecast": hc, "low": hl, "high": hh,
                         "inside": None if m is None else bool(hl <= m <= hh),
                         "relative_error": None if m is None else (m - hc) / hc,
                         "censored_beyond": None if m is not None else bool(h["horizon"] > hh)})
        alternatives[lw] = {"a": f.a, "gamma": f.gamma, "birge": f.birge, "n_c": f.n_c,
                            "forecast": {"tau_mem": c, "low": lo, "high": hi}, "held_out": rows}
    sizes = sorted(set(ns) | set(held) | {int(target_n)})
    dim = data_info["dim"]
    regimes = {str(n): {"nD_over_p": n * dim / p, "regime": "n D < p" if n * dim < p else "n D > p"} for n in sizes}
    big = max(sizes)
    note = (f"p = {p:,} parameters against n D numbers in the data (the analogue of psi_p against psi_n of "
            f"arXiv:2505.17638 MT §3): the interpolation threshold is n_c = p / D = {n_c:,.0f}; "
            + (f"every size here lies below it (largest n D / p = {big * dim / p:.2f}), where tau_mem grows linearly "
               f"in n far from the threshold and faster than linearly near it (law 'rf')" if big < n_c else
               f"sizes at or above it ({[n for n in sizes if n >= n_c]}) are beyond the random-features memorization "
               f"regime (tau_mem -> infinity there): the extrapolation is outside the theory's range"))
    theory = {"n_params": p, "sizes": regimes, "expected_gamma": 1.0, "n_c": n_c, "note": note}
    bud = None
    if budget is not None:
        nc, nl, nh = fit.n_emm(budget)
        bud = {"steps": int(budget), "n_emm": nc, "low": nl, "high": nh,
               "target_at_risk": bool(low <= budget)}
    if not math.isfinite(low):
        last_safe = None
        text = (f"n = {target_n:,} is at or beyond the interpolation threshold of law {law!r}: it forecasts no "
                f"memorization at any training time")
    else:
        last_safe = int(math.floor(low))
        text = (f"for n = {target_n:,}, train at most {last_safe:,} steps (the lower end of the forecast interval) "
                f"to stay below a memorization fraction of {fthr:g}")
    if budget is not None and last_safe is not None:
        text += (f"; the budget of {int(budget):,} steps is {'within' if budget <= low else 'beyond'} that")
    return MemorizationForecast(ns=list(ns), readoffs=reads, fit=fit.to_dict(), target_n=int(target_n),
                                forecast=forecast, budget=bud, held_out=held_rows, theory=theory,
                                recommendation={"last_safe_step": last_safe, "text": text},
                                alternatives=alternatives, runs=runs, data=data_info,
                                settings=settings, diagnostics=diagnostics)


def forecast_memorization(data, ns, *, target_n=None, held_out=(), budget=None, model="mlp",
                          config: ForecastConfig | None = None, steps_per_point=None, fthr: float = 0.05,
                          law: str = "power", level: float = 0.95, normalize: str = "auto",
                          stop_when_memorized: bool = True, out=None,
                          executor: Executor | None = None, threads: int | None = None, device=None,
                          quiet: bool = False) -> MemorizationForecast:
    """Forecast when a diffusion model starts copying its training data at a size you cannot afford to train,
    from cheap runs at small sizes (arXiv:2505.17638 MT §2-3: ``tau_mem ∝ n``; docs/theory/validation.md §5).

    Parameters
    ----------
    data : str, path or array_like
        ``"digits"`` (bundled, needs scikit-learn), a ``.npy``/``.npz`` file, a folder of PNG images, or an array
        (:func:`load_forecast_data`).
    ns : sequence of int
        Small nested training sets to train and fit (at least 2 sizes for the power law).
    target_n : int, optional
        Size to forecast (default: the whole dataset).
    held_out : sequence of int
        Sizes to train and measure but not fit: a test of the forecast.
    budget : int, optional
        A training budget in optimiser steps: the largest ``n`` memorizing within it is reported.
    model : {"mlp", "conv"} or callable
        The residual MLP (:class:`memlab.validation.ddpm_torch.ResidualMLP`, width ``config.width``), a small
        convolutional network for images (:class:`memlab.validation.ddpm_torch.ConvDenoiser`), or
        ``make_model(dim) -> torch.nn.Module`` whose ``forward(x, k)`` predicts epsilon from flat noised points
        ``x`` (``(B, dim)``) and integer diffusion steps ``k`` (``0 <= k < 1000``); it is built under
        ``torch.manual_seed(config.seed)``.  For a process pool it must be picklable (a module-level function).
    config : ForecastConfig, optional
        Optimiser (Adam lr 4e-3 by default), batch (full), checkpoints, evaluation sizes, seeds, dtype.
    steps_per_point : float, optional
        Horizon of each run is ``steps_per_point * n`` (default :data:`STEPS_PER_POINT`: 80 for Adam, 800 for
        SGD); it must pass ``tau_mem(n)`` for the fit to use that size.
    fthr : float, default 0.05
        Memorization-fraction level of ``tau_mem``.
    law : {"power", "linear", "rf"}
        ``tau_mem = a n^gamma``, ``a n``, or the random-features shape ``a / (sqrt(n_c / n) - 1)^2`` with the
        interpolation threshold ``n_c = p / D`` (:func:`memlab.numerics.forecast_fit.rf_shape`).  The other laws'
        forecasts are reported too (``alternatives``).
    level : float, default 0.95
        Coverage of the prediction intervals.
    normalize : {"auto", "range", "standardize", "none"}
    stop_when_memorized : bool, default True
        Stop a run at the first checkpoint where the lower end of the fraction's CI reaches ``fthr``: ``tau_mem``
        and both ends of its interval are then known, and the rest of the horizon would only extend the curves
        (at the largest sizes most of the cost).  ``False``: every run goes to its horizon.
    out : path, optional
        Folder for per-``n`` checkpoints (``ckpt_n{n}.pt``: an interrupted forecast resumes), ``forecast.json`` and
        ``summary.txt``; held for the run (:func:`memlab.validation.runtime.run_lock`).
    executor : concurrent.futures.Executor, optional
        A process pool or a Dask executor running the sizes in parallel; default in this process.
    threads : int, optional
        Torch threads per run on CPU (restored afterwards).  Default 1 in this process, and on a local process
        pool the cores shared among the runs: small models gain little from intra-op threads and slow down badly
        when the cores are shared with other work.
    device : None, "auto", "cpu", "cuda", "cuda:N"
        Default CUDA when available, else CPU.
    quiet : bool

    Returns
    -------
    MemorizationForecast

    Raises
    ------
    ValueError
        Bad input, or too few sizes reached memorization within their horizon to fit the law.
    FloatingPointError
        Training diverged (lower ``lr``).
    """
    runtime.guard_worker_start()
    ns = runtime.training_sizes("ns", ns)
    held = runtime.training_sizes("held_out", held_out, allow_empty=True)
    if set(ns) & set(held):
        raise ValueError(f"held_out must not repeat a fitted size (both hold {sorted(set(ns) & set(held))})")
    cfg = ForecastConfig() if config is None else config
    if not isinstance(cfg, ForecastConfig):
        raise TypeError(f"config must be a ForecastConfig (got {type(cfg).__name__})")
    if isinstance(model, str):
        checks.choice("model", model, MODELS)
    elif not callable(model):
        raise TypeError(f"model must be 'mlp', 'conv' or a callable make_model(dim) (got {model!r})")
    law = checks.choice("law", law, LAWS)
    level = checks.probability("level", level)
    fthr = checks.probability("fthr", fthr)
    stop_when_memorized = checks.boolean("stop_when_memorized", stop_when_memorized)
    spp = (STEPS_PER_POINT[cfg.optimizer] if steps_per_point is None
           else checks.positive_float("steps_per_point", steps_per_point, maximum=1e7))
    resolvable = 1.0 - ((1.0 - level) / 2.0) ** (1.0 / cfg.n_gen)     # upper CI end of 0 memorized samples
    if resolvable >= fthr:
        raise ValueError(f"config.n_gen = {cfg.n_gen} samples cannot resolve fthr = {fthr:g}: with none memorized the "
                         f"{100 * level:.0f}% CI still reaches {resolvable:.3g}; use n_gen >= "
                         f"{math.ceil(math.log((1.0 - level) / 2.0) / math.log(1.0 - fthr)) + 1}")
    if budget is not None:
        budget = checks.positive_int("budget", budget)
    if threads is not None:
        threads = checks.positive_int("threads", threads)
    fd = load_forecast_data(data, normalize=normalize)
    trained = ns + held
    big = max(trained)
    if big > fd.n - 8:
        raise ValueError(f"ns and held_out must leave at least 8 of the {fd.n} points for the held-out reference "
                         f"set (largest size {big}); use sizes <= {fd.n - 8}")
    target_n = fd.n if target_n is None else checks.positive_int("target_n", target_n, minimum=2)
    if model == "conv" and fd.image_shape is None:
        raise ValueError("model='conv' needs image data (digits, a folder of PNG images, an (N, H, W) array)")
    perm = np.random.default_rng([cfg.data_seed, 23]).permutation(fd.n)
    x = fd.x[perm]
    ref = x[fd.n - min(cfg.n_ref, fd.n - big):]
    dev = str(runtime.resolve_device(device))
    horizon = {n: max(int(math.ceil(spp * n)), cfg.first_checkpoint + 2) for n in trained}
    grid = np.unique(np.round(np.geomspace(cfg.first_checkpoint, max(horizon.values()), cfg.n_checkpoints))
                     .astype(np.int64))
    run_on = runtime.usable_executor(executor)
    if threads is None and not dev.startswith("cuda"):
        # one thread per run in this process; on a local pool the cores shared among the runs.  These models are
        # small: extra intra-op threads gain little and, on cores shared with other work, cost up to 15x
        # (60 ms instead of 4 ms per step measured at n = 48 under a 2-process load)
        cores = thread_budget().n
        threads = max(1, cores // min(len(trained), cores)) if isinstance(run_on, ProcessPoolExecutor) else 1
    tasks = []
    for n in trained:
        c = [int(s) for s in grid if s < horizon[n]] + [horizon[n]]
        sub = np.ascontiguousarray(x[:n])
        tasks.append({"n": n, "train": sub, "ref": ref, "config": cfg, "model": model, "image_shape": fd.image_shape,
                      "checkpoints": c, "device": dev, "threads": threads, "quiet": quiet or run_on is not None,
                      "data_hash": hashlib.sha1(sub.tobytes() + ref.tobytes()).hexdigest(),
                      "checkpoint": None if out is None else str(Path(out) / f"ckpt_n{n}.pt"),
                      "stop_fthr": fthr if stop_when_memorized else None})
    settings = dict(dataclasses.asdict(cfg), model=_model_label(model), fthr=fthr, law=law, level=level,
                    steps_per_point=spp, ns=ns, held_out=held, target_n=int(target_n), budget=budget,
                    stop_when_memorized=stop_when_memorized,
                    batch=cfg.batch, n_ref_used=int(ref.shape[0]))
    data_info = {"name": fd.name, "n_points": fd.n, "dim": fd.dim, "image_shape": fd.image_shape,
                 "normalization": fd.normalization}
    with runtime.run_lock(out) if out is not None else contextlib.nullcontext():
        t0 = time.perf_counter()
        runs = sorted(runtime.map_tasks(_forecast_task, tasks[::-1], run_on), key=lambda r: r["n"])
        diag = {"wall_s": time.perf_counter() - t0, "device": dev,
                "train_wall_s": {str(r["n"]): r["diagnostics"]["wall_s"] for r in runs},
                "steps_per_s": {str(r["n"]): r["diagnostics"]["steps_run"] / r["diagnostics"]["wall_s"]
                                for r in runs if r["diagnostics"]["wall_s"] > 0}}
        try:
            res = _assemble(ns, held, runs, fthr, law, level, target_n, budget, data_info, settings, diag)
        except ValueError:
            if out is not None:   # keep the measured curves: forecast_from_json can redo the fit (another fthr)
                runtime.write_json_atomic(Path(out) / "forecast.json", {"runs": runs, "settings": settings,
                                                                       "data": data_info, "diagnostics": diag,
                                                                       "target_n": int(target_n)})
            raise
        if out is not None:
            save_forecast(res, out)
    return res


def save_forecast(res: MemorizationForecast, out) -> Path:
    """Write ``forecast.json`` and ``summary.txt`` into ``out`` (atomically)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    runtime.write_text_atomic(out / "summary.txt", res.summary() + "\n")
    return runtime.write_json_atomic(out / "forecast.json", res.to_dict())


def forecast_from_json(path, *, fthr: float | None = None, law: str | None = None, target_n=None,
                       budget=None) -> MemorizationForecast:
    """Re-read ``forecast.json`` and redo the read-offs and the fit from the stored runs (no torch needed);
    ``fthr``, ``law``, ``target_n`` and ``budget`` may be changed."""
    obj = json.loads(Path(path).read_text())
    s = obj["settings"]
    fthr = s["fthr"] if fthr is None else checks.probability("fthr", fthr)
    law = s["law"] if law is None else checks.choice("law", law, LAWS)
    target_n = obj["target_n"] if target_n is None else checks.positive_int("target_n", target_n, minimum=2)
    budget = s.get("budget") if budget is None else checks.positive_int("budget", budget)
    return _assemble(s["ns"], s["held_out"], obj["runs"], fthr, law, s["level"], target_n, budget,
                     obj["data"], dict(s, fthr=fthr, law=law, target_n=target_n, budget=budget), obj["diagnostics"])
