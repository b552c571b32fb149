"""PyTorch trainer of the isotropic GMM denoiser (arXiv:2508.17689v1, Eqs. 14-15; docs/theory/validation.md §2).

The trainable model has M means and one standard deviation ``std`` (sigma^2 = std^2), weights fixed at
1/M.  Training starts from the partial-memorization initialisation (M distinct random training points,
sigma^2 = 1e-6) and minimises the full-batch epsilon-prediction loss with unit time weights (one grid
time per point and ``n_noise`` noises per step) with Adam, linear warm-up then linear decay, and an
optional bias-corrected EMA of the updates.  The settings come as a named protocol (:data:`PROTOCOLS`:
``"paper"``, the paper's App. H.1 protocol, and ``"cpu-quick"``, the reduced CPU protocol; what they cost
is in docs/theory/validation.md §2).  Runs checkpoint atomically and resume bit-identically on CPU
(:mod:`memlab.validation.runtime`).

Numerics (docs/theory/capacity_crossover.md §2): squared distances by a GEMM expansion whose nearest ``_TOPK``
entries per row are recomputed from difference vectors (the expansion cancels at small t), a stable
softmax, and the epsilon output in residual form ``sigma/D sum_i p_i (x - alpha mu_i)`` (the same
nearest entries from difference vectors), never ``(x - alpha xbar)/sigma``.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..theory import checks, grid
from . import runtime
from .search import coarse_ms

__all__ = ["TorchGMMDenoiser", "GMMProtocol", "PROTOCOLS", "resolve_protocol", "GMMTrainConfig", "GMMTrainResult",
           "train_gmm", "lr_at", "estimate_sweep_seconds"]

_TOPK = 4


class TorchGMMDenoiser(torch.nn.Module):
    """Isotropic shared-variance GMM denoiser with trainable means and std (Eq. 14).

    ``forward(alpha, sig, x)`` takes per-row ``alpha_t, sigma_t`` (shape (B,)) and points (B, d) and
    returns ``(x0_hat, eps_hat)``.
    """

    def __init__(self, means, std):
        super().__init__()
        self.means = torch.nn.Parameter(torch.as_tensor(means).clone())
        self.std = torch.nn.Parameter(torch.as_tensor(std, dtype=self.means.dtype).clone().reshape(()))

    @property
    def sigma2(self):
        return self.std * self.std

    def forward(self, alpha, sig, x):
        mu = self.means
        M = mu.shape[0]
        s2 = self.sigma2
        a = alpha[:, None]
        D = a * a * s2 + (sig * sig)[:, None]  # (B, 1)
        # GEMM expansion of ||x - a mu||^2, then exact recomputation of the nearest entries
        nx = (x * x).sum(1, keepdim=True)
        nmu = (mu * mu).sum(1)
        q = (nx - 2.0 * a * (x @ mu.T) + (a * a) * nmu[None, :]).clamp_min(0.0)
        k = min(_TOPK, M)
        idx = torch.topk(q.detach(), k, dim=1, largest=False).indices  # (B, k)
        diff = x[:, None, :] - a[:, :, None] * mu[idx]  # (B, k, d) exact differences
        q = q.scatter(1, idx, (diff * diff).sum(-1))
        p = torch.softmax(-q / (2.0 * D), dim=1)  # stable (max-shifted) softmax
        pk = p.gather(1, idx)
        p_rest = p.scatter(1, idx, torch.zeros_like(pk))
        # residual sum_i p_i (x - a mu_i): exact differences for the nearest, expansion for the rest
        res = (pk[:, :, None] * diff).sum(1) + p_rest.sum(1, keepdim=True) * x - a * (p_rest @ mu)
        x0 = p @ mu + (a * s2 / D) * res
        eps = (sig[:, None] / D) * res
        return x0, eps


_SETTINGS = ("steps", "n_noise", "peak_lr", "final_lr", "warmup_frac", "ema", "beta2", "t_min")


def _fmt(v) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


@dataclass(frozen=True)
class GMMProtocol:
    """A named training protocol of the GMM denoiser (docs/theory/validation.md §2,
    docs/theory/capacity_crossover.md §7).

    Attributes
    ----------
    name : str
        ``"paper"``, ``"cpu-quick"``, or ``"<base>+<setting>=<value>+..."`` for a modified protocol
        (:meth:`replace` writes it).
    steps : int
        Full-batch Adam steps (the paper: 50,000).
    n_noise : int
        Noise draws per training point per step (the paper: 100).
    peak_lr, final_lr : float
        Learning rate after the linear warm-up and at the last step (linear decay in between).
    warmup_frac : float
        Fraction of the steps spent in the linear warm-up, in [0, 1).
    ema : float or None
        Bias-corrected EMA factor of Adam's updates (None: off).
    beta2 : float
        Adam's second-moment factor.
    t_min : float or None
        Train on the grid times ``t >= t_min`` only; ``None``: all 26 times of the paper grid.

    Examples
    --------
    >>> PROTOCOLS["cpu-quick"].times().size
    22
    >>> PROTOCOLS["cpu-quick"].replace(steps=40).name
    'cpu-quick+steps=40'
    """

    name: str
    steps: int = 50_000
    n_noise: int = 100
    peak_lr: float = 1e-3
    final_lr: float = 1e-6
    warmup_frac: float = 0.1
    ema: float | None = 0.99
    beta2: float = 0.999
    t_min: float | None = None

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError(f"protocol name must be a non-empty string (got {self.name!r})")
        put = object.__setattr__
        put(self, "steps", checks.positive_int("steps", self.steps))
        put(self, "n_noise", checks.positive_int("n_noise", self.n_noise))
        for key in ("peak_lr", "final_lr"):
            put(self, key, checks.positive_float(key, getattr(self, key)))
        if not (0.0 <= self.warmup_frac < 1.0):
            raise ValueError(f"warmup_frac must lie in [0, 1) (got {self.warmup_frac!r})")
        if not (0.0 < self.beta2 < 1.0):
            raise ValueError(f"beta2 must lie in (0, 1) (got {self.beta2!r})")
        if self.ema is not None and not (0.0 < self.ema < 1.0):
            raise ValueError(f"ema must be None or lie in (0, 1) (got {self.ema!r})")
        if self.t_min is not None:
            t_max = float(grid.paper_grid().max())
            if not (0.0 < float(self.t_min) <= t_max):
                raise ValueError(f"t_min must be None (all grid times) or lie in (0, {t_max:g}] so that at least "
                                 f"one grid time is kept (got {self.t_min!r})")
            put(self, "t_min", float(self.t_min))

    def times(self) -> np.ndarray:
        """The grid times trained on: the paper grid (decreasing), restricted to ``t >= t_min``."""
        g = grid.paper_grid()
        return g.copy() if self.t_min is None else g[g >= self.t_min]

    def settings(self) -> dict:
        """Every setting but the name (JSON-ready), with the grid times used."""
        out = {k: getattr(self, k) for k in _SETTINGS}
        out["times"] = [float(t) for t in self.times()]
        return out

    def to_dict(self) -> dict:
        """Name and every setting (JSON-ready)."""
        return {"name": self.name, **self.settings()}

    def replace(self, **overrides) -> "GMMProtocol":
        """This protocol with some settings changed.

        Unless ``name`` is given, a changed protocol is named after its base protocol and the settings that
        differ from it (``"cpu-quick+steps=40+n_noise=5"``), so a recorded name never hides a change.
        """
        allowed = ("name",) + _SETTINGS
        unknown = sorted(set(overrides) - set(allowed))
        if unknown:
            raise TypeError(f"unknown protocol setting(s) {unknown}; allowed: {', '.join(allowed)}")
        name = overrides.pop("name", None)
        changed = {k: v for k, v in overrides.items() if getattr(self, k) != v}
        if not changed and name is None:
            return self
        new = dataclasses.replace(self, **changed)
        if name is None:
            base = self.name.split("+", 1)[0]
            ref = PROTOCOLS.get(base, self)
            diffs = [f"{k}={_fmt(getattr(new, k))}" for k in _SETTINGS if getattr(new, k) != getattr(ref, k)]
            name = "+".join([base, *diffs])
        return dataclasses.replace(new, name=name)


#: The named protocols (docs/theory/validation.md §2): the paper's (App. H.1: 50,000 Adam steps x 100 noise
#: draws, about 82 CPU-minutes per N = M = 200, d = 50 model on the 2-core development machine) and the
#: reduced CPU protocol behind docs/figures/gmm_validation_N200_d50_K12_reduced.png.
PROTOCOLS = {
    "paper": GMMProtocol("paper"),
    "cpu-quick": GMMProtocol("cpu-quick", steps=1500, n_noise=20, peak_lr=1e-2, t_min=0.15),
}


def resolve_protocol(protocol="paper", **overrides) -> GMMProtocol:
    """A :class:`GMMProtocol` from a name in :data:`PROTOCOLS` or a protocol, with settings overridden
    (:meth:`GMMProtocol.replace`)."""
    if isinstance(protocol, str):
        if protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {', '.join(PROTOCOLS)} or a GMMProtocol (got {protocol!r})")
        protocol = PROTOCOLS[protocol]
    elif not isinstance(protocol, GMMProtocol):
        raise TypeError(f"protocol must be a name ({', '.join(PROTOCOLS)}) or a GMMProtocol "
                        f"(got {type(protocol).__name__})")
    return protocol.replace(**overrides) if overrides else protocol


@dataclass(frozen=True)
class GMMTrainConfig:
    """What to train: ``M`` components under a protocol (a name in :data:`PROTOCOLS` or a :class:`GMMProtocol`).

    Attributes
    ----------
    M : int
        Number of components, ``1 <= M <= N``.
    protocol : GMMProtocol
        Resolved from a name in ``__post_init__``.
    seed : int
        Seeds the initial subset and every time/noise draw.
    dtype : {"float32", "float64"}
    init_sigma2 : float
        sigma^2 of the partial-memorization initialisation (App. H.1: 1e-6).
    """

    M: int
    protocol: GMMProtocol = "paper"
    seed: int = 0
    dtype: str = "float32"
    init_sigma2: float = 1e-6

    def __post_init__(self):
        put = object.__setattr__
        put(self, "M", checks.positive_int("M", self.M))
        put(self, "protocol", resolve_protocol(self.protocol))
        put(self, "seed", checks.positive_int("seed", self.seed, minimum=0))
        put(self, "init_sigma2", checks.positive_float("init_sigma2", self.init_sigma2))
        runtime.torch_dtype(self.dtype)

    def fingerprint(self) -> dict:
        """The settings a checkpoint must match (the protocol by its settings, not its name)."""
        return {"M": self.M, "seed": self.seed, "dtype": self.dtype, "init_sigma2": self.init_sigma2,
                "protocol": self.protocol.settings()}


def lr_at(step: int, protocol) -> float:
    """Learning rate of (0-based) step s: linear warm-up to ``peak_lr`` over ``W = warmup_frac S`` steps, then
    linear decay to ``final_lr`` at the last step (docs/theory/validation.md §2).

    ``protocol`` is a :class:`GMMProtocol` (or a :class:`GMMTrainConfig`, whose protocol is used).
    """
    p = protocol.protocol if isinstance(protocol, GMMTrainConfig) else protocol
    S = p.steps
    W = int(round(p.warmup_frac * S))
    if step < W:
        return p.peak_lr * step / W
    if S - W <= 1:
        return p.peak_lr
    return p.peak_lr + (p.final_lr - p.peak_lr) * (step - W) / (S - W - 1)


@dataclass(frozen=True)
class GMMTrainResult:
    """A trained GMM denoiser.

    Attributes
    ----------
    means : ndarray, shape (M, d)
    sigma2 : float
        Learned shared variance ``std^2``.
    init_index : ndarray
        Training points the means started from.
    losses : ndarray
        Training loss (epsilon units, unit time weights) per logged step.
    logged_steps : ndarray
    config : GMMTrainConfig
    device : str
    wall_s : float
        Seconds of the training loop (set-up excluded).
    resumed_from : int
        Step the run resumed from (0: fresh).
    """

    means: np.ndarray
    sigma2: float
    init_index: np.ndarray
    losses: np.ndarray
    logged_steps: np.ndarray
    config: GMMTrainConfig
    device: str
    wall_s: float
    resumed_from: int = 0
    diagnostics: dict = field(default_factory=dict)


def _step_loss(model, x0, ts_alpha, ts_sigma, t_idx, eps):
    """Full-batch epsilon loss: mean over points and draws of ||eps_hat - eps||^2 (sum over d)."""
    N, R, d = eps.shape
    alpha = ts_alpha[t_idx].repeat_interleave(R)
    sig = ts_sigma[t_idx].repeat_interleave(R)
    x = (alpha[:, None] * x0.repeat_interleave(R, dim=0) + sig[:, None] * eps.reshape(N * R, d))
    _, eh = model(alpha, sig, x)
    return ((eh - eps.reshape(N * R, d)) ** 2).sum(1).mean()


def train_gmm(train, config: GMMTrainConfig, *, device=None, checkpoint=None, checkpoint_every: int = 1000,
              metrics=None, log_every: int = 50, quiet: bool = False) -> GMMTrainResult:
    """Train the GMM denoiser of Eqs. 14-15 from the partial-memorization initialisation (arXiv:2508.17689v1
    App. H.1; docs/theory/validation.md §2).

    Parameters
    ----------
    train : array, shape (N, d)
        Training set.
    config : GMMTrainConfig
        ``M`` (``1 <= M <= N``: the initialisation needs M distinct training points), the protocol
        (steps, noise draws, learning-rate schedule, update EMA, grid times), seed, dtype.
    device : None, "auto", "cpu", "cuda" or "cuda:N"
        Default CUDA when available, else CPU.  Asking for CUDA without CUDA raises.
    checkpoint : path, optional
        Checkpoint file, written atomically every ``checkpoint_every`` steps and at the end.  If it
        exists, the run resumes from it (it must belong to the same data and configuration).
    metrics : path, optional
        JSON-lines file of ``{"step", "loss", "lr", "sigma2"}`` every ``log_every`` steps (rewritten up to
        the resumed step on resume, so a resumed file equals an uninterrupted one).
    quiet : bool
        No progress bar (it is also off when stderr is not a terminal).

    Returns
    -------
    GMMTrainResult

    Notes
    -----
    Each step draws one grid time per point (``alpha_t`` and ``sigma_t`` of arXiv:2508.17689v1 Eq. 2, from
    :mod:`memlab.theory.grid`) and ``n_noise`` noises, and takes one Adam step on the mean epsilon loss;
    about ``3 N n_noise M d`` multiply-adds per step.

    References
    ----------
    arXiv:2508.17689v1, Eqs. 2, 14-15 and App. H.1.
    """
    X = checks.finite_array("train", train, ndim=2)
    N, d = X.shape
    if not isinstance(config, GMMTrainConfig):
        raise TypeError(f"config must be a GMMTrainConfig (got {type(config).__name__}); e.g. "
                        f"GMMTrainConfig(M=20, protocol='cpu-quick')")
    cfg, proto = config, config.protocol
    M = cfg.M
    if M > N:
        raise ValueError(f"M must satisfy 1 <= M <= N = {N}: the partial-memorization initialisation needs M "
                         f"distinct training points (got M = {M})")
    checkpoint_every = checks.positive_int("checkpoint_every", checkpoint_every)
    log_every = checks.positive_int("log_every", log_every)
    dev = runtime.resolve_device(device)
    tdt = runtime.torch_dtype(cfg.dtype)
    rng = np.random.default_rng(cfg.seed)
    init_index = np.sort(rng.choice(N, size=M, replace=False))
    gen = torch.Generator(device="cpu")
    gen.manual_seed(int(rng.integers(0, 2 ** 62)))
    x0 = torch.as_tensor(X, dtype=tdt, device=dev)
    model = TorchGMMDenoiser(torch.as_tensor(X[init_index], dtype=tdt, device=dev),
                             torch.tensor(math.sqrt(cfg.init_sigma2), dtype=tdt, device=dev))
    opt = torch.optim.Adam(model.parameters(), lr=proto.peak_lr, betas=(0.9, proto.beta2), eps=1e-8)
    ema_state = [torch.zeros_like(p) for p in model.parameters()]
    times = proto.times()
    ts_alpha = torch.as_tensor(grid.alpha(times), dtype=tdt, device=dev)
    ts_sigma = torch.as_tensor(grid.sigma(times), dtype=tdt, device=dev)
    fingerprint = {"N": N, "d": d, "data_sum": float(np.sum(X)), "data_sq": float(np.sum(X * X)),
                   "config": cfg.fingerprint()}
    losses, logged = [], []
    start = 0
    ck = Path(checkpoint) if checkpoint is not None else None
    if ck is not None and ck.exists():
        state = runtime.load_checkpoint(ck, fingerprint, "GMM training")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        ema_state = [e.to(dev) for e in state["ema"]]
        gen.set_state(state["gen"])
        init_index = state["init_index"]
        losses, logged = list(state["losses"]), list(state["logged"])
        start = int(state["step"])
    # the log up to the resumed step, rewritten atomically (a line cut short by a kill is dropped)
    mfile = (runtime.JsonLines(metrics, keep=lambda rec: isinstance(rec.get("step"), int) and rec["step"] < start)
             if metrics is not None else None)
    resumed_from = start
    flush = torch.set_flush_denormal(True) if dev.type == "cpu" else False  # subnormals: slow, no effect on results
    bar = runtime.progress(proto.steps, start, quiet, "train gmm")
    t0 = time.perf_counter()
    params = list(model.parameters())
    try:
        for s in range(start, proto.steps):
            lr = lr_at(s, proto)
            for g in opt.param_groups:
                g["lr"] = lr
            t_idx = torch.randint(0, times.size, (N,), generator=gen).to(dev)
            eps = torch.randn((N, proto.n_noise, d), generator=gen, dtype=tdt).to(dev)
            opt.zero_grad(set_to_none=True)
            loss = _step_loss(model, x0, ts_alpha, ts_sigma, t_idx, eps)
            loss.backward()
            if proto.ema is None:
                opt.step()
            else:
                old = [p.detach().clone() for p in params]
                opt.step()
                with torch.no_grad():
                    bc = 1.0 - proto.ema ** (s + 1)
                    for p, o, e in zip(params, old, ema_state):
                        e.mul_(proto.ema).add_(p - o, alpha=1.0 - proto.ema)
                        p.copy_(o + e / bc)
            lv = float(loss.detach())
            if not math.isfinite(lv):
                raise FloatingPointError(f"training loss became {lv} at step {s} (M = {M}, lr = {lr:g}, "
                                         f"sigma2 = {float(model.sigma2):.3g}); lower peak_lr or use float64")
            if s % log_every == 0 or s == proto.steps - 1:
                losses.append(lv)
                logged.append(s)
                if mfile is not None:
                    row = {"step": s, "loss": lv, "lr": lr, "sigma2": float(model.sigma2.detach())}
                    mfile.write(row)                   # one whole line per record
            if bar is not None:
                bar.update(1)
            done = s + 1
            if ck is not None and (done % checkpoint_every == 0 or done == proto.steps):
                runtime.atomic_save({"fingerprint": fingerprint, "model": model.state_dict(), "opt": opt.state_dict(),
                                     "ema": [e.cpu() for e in ema_state], "gen": gen.get_state(),
                                     "init_index": init_index, "losses": losses, "logged": logged, "step": done}, ck)
    finally:
        if flush:
            torch.set_flush_denormal(False)
        if bar is not None:
            bar.close()
        if mfile is not None:
            mfile.close()
    return GMMTrainResult(means=model.means.detach().cpu().numpy().astype(np.float64),
                          sigma2=float(model.sigma2.detach().cpu()), init_index=np.asarray(init_index),
                          losses=np.array(losses), logged_steps=np.array(logged), config=cfg, device=str(dev),
                          wall_s=time.perf_counter() - t0, resumed_from=resumed_from)


def estimate_sweep_seconds(N: int, d: int, protocol="paper", *, device=None, n_models: int | None = None,
                           workers: int = 1, dtype: str = "float32", measure_steps: int = 5,
                           threads: int | None = None) -> dict:
    """Estimated training time of a capacity sweep, from a few real training steps on ``device``.

    Times ``measure_steps`` steps (after two warm-up steps) of :func:`train_gmm` at the largest ``M`` of the
    coarse pass (``M = N``, the most expensive model) on random data of shape ``(N, d)`` under the protocol's
    ``n_noise``; the cost of a step grows like ``N n_noise M d`` (docs/theory/validation.md §2).

    Parameters
    ----------
    N, d : int
        Configuration (the number of clusters does not change the cost).
    protocol : str or GMMProtocol
        The protocol to price (``steps`` and ``n_noise`` matter).
    device : None, "auto", "cpu", "cuda", "cuda:N"
    n_models : int, optional
        Models to train; default the coarse pass plus about 10 refined models
        (``len(coarse_ms(N)) + 10``, docs/theory/capacity_crossover.md §7).
    workers : int
        Models trained at the same time (the process pool's size on CPU; 1 on one GPU).
    dtype : {"float32", "float64"}
    measure_steps : int
        Steps timed.
    threads : int, optional
        Torch threads during the measurement (a worker's share of the cores, when workers share a CPU).

    Returns
    -------
    dict
        ``steps_per_s`` (measured at ``M``), ``seconds_per_model`` (``steps / steps_per_s``), ``models``,
        ``workers``, ``total_seconds`` (``models seconds_per_model / workers``), ``M``, ``device``,
        ``protocol`` (name), ``steps``, ``measure_steps``, ``note``.  Training only: the evaluation of each
        model (a few seconds) and worker start-up are not included.

    Examples
    --------
    >>> est = estimate_sweep_seconds(20, 4, "cpu-quick", device="cpu", measure_steps=2)
    >>> est["models"], round(est["seconds_per_model"] * est["steps_per_s"])
    (20, 1500)
    """
    N = checks.positive_int("N", N)
    d = checks.positive_int("d", d)
    proto = resolve_protocol(protocol)
    workers = checks.positive_int("workers", workers)
    measure_steps = checks.positive_int("measure_steps", measure_steps)
    coarse = coarse_ms(N)
    models = len(coarse) + 10 if n_models is None else checks.positive_int("n_models", n_models)
    dev = runtime.resolve_device(device)
    M = max(coarse)
    X = np.random.default_rng(0).standard_normal((N, d))
    with runtime.threads(threads):
        train_gmm(X, GMMTrainConfig(M, proto.replace(steps=2), dtype=dtype), device=dev, quiet=True)
        run = train_gmm(X, GMMTrainConfig(M, proto.replace(steps=measure_steps), dtype=dtype), device=dev, quiet=True)
    sps = measure_steps / max(run.wall_s, 1e-9)
    per_model = proto.steps / sps
    return {"steps_per_s": sps, "seconds_per_model": per_model, "models": models, "workers": workers,
            "total_seconds": per_model * models / workers, "M": M, "device": str(dev), "protocol": proto.name,
            "steps": proto.steps, "measure_steps": measure_steps,
            "note": "training steps only; evaluation and worker start-up not included"}
