"""PyTorch trainer of the isotropic GMM denoiser (arXiv:2508.17689v1, Eqs. 14-15; spec gmm_laboratory.md 7).

The trainable model has M means and one standard deviation ``std`` (sigma^2 = std^2), weights fixed at
1/M.  Training starts from the partial-memorization initialisation (M distinct random training points,
sigma^2 = 1e-6) and minimises the full-batch epsilon-prediction loss with unit time weights (one grid
time per point and ``n_noise`` noises per step) with Adam, linear warm-up then linear decay, and an
optional bias-corrected EMA of the updates.  Runs checkpoint atomically and resume bit-identically on CPU.

Numerics (spec section 2, binding): squared distances by a GEMM expansion whose nearest ``_TOPK``
entries per row are recomputed from difference vectors (the expansion cancels at small t), a stable
softmax, and the epsilon output in residual form ``sigma/D sum_i p_i (x - alpha mu_i)`` (the same
nearest entries from difference vectors), never ``(x - alpha xbar)/sigma``.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..theory import _checks
from ..theory.grid import paper_grid

__all__ = ["TorchGMMDenoiser", "TrainConfig", "TrainResult", "train_gmm", "resolve_device", "lr_at"]

_TOPK = 4
_CHUNK_ROWS = 8192


def resolve_device(device=None) -> torch.device:
    """``None`` -> CUDA when available else CPU; ``"cuda"`` that is not available raises (no fallback)."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if isinstance(device, torch.device):
        dev = device
    else:
        if not isinstance(device, str):
            raise TypeError(f"device must be None, 'cpu', 'cuda' or 'cuda:N' (got {device!r})")
        try:
            dev = torch.device(device)
        except RuntimeError:
            raise ValueError(f"device must be 'cpu', 'cuda' or 'cuda:N' (got {device!r})") from None
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu', 'cuda' or 'cuda:N' (got {device!r})")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was requested but CUDA is not available on this machine "
                         f"(torch {torch.__version__}); pass device='cpu' or leave device unset")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ValueError(f"device={device!r}: only {torch.cuda.device_count()} CUDA device(s) present")
    return dev


def _dtype(dtype) -> torch.dtype:
    m = {"float32": torch.float32, "float64": torch.float64, torch.float32: torch.float32,
         torch.float64: torch.float64}
    if dtype not in m:
        raise ValueError(f"dtype must be 'float32' or 'float64' (got {dtype!r})")
    return m[dtype]


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


@dataclass(frozen=True)
class TrainConfig:
    """Training settings (defaults from spec gmm_laboratory.md section 7)."""

    M: int
    steps: int = 50_000
    n_noise: int = 100
    peak_lr: float = 1e-3
    final_lr: float = 1e-6
    warmup_frac: float = 0.1
    ema: float | None = 0.99
    seed: int = 0
    dtype: str = "float32"
    init_sigma2: float = 1e-6
    beta2: float = 0.999
    times: tuple | None = None

    def __post_init__(self):
        _checks.positive_int("M", self.M)
        _checks.positive_int("steps", self.steps)
        _checks.positive_int("n_noise", self.n_noise)
        _checks.positive_int("seed", self.seed, minimum=0)
        for name in ("peak_lr", "final_lr", "init_sigma2"):
            _checks.positive_float(name, getattr(self, name))
        if not (0.0 <= self.warmup_frac < 1.0):
            raise ValueError(f"warmup_frac must lie in [0, 1) (got {self.warmup_frac!r})")
        if not (0.0 < self.beta2 < 1.0):
            raise ValueError(f"beta2 must lie in (0, 1) (got {self.beta2!r})")
        if self.ema is not None and not (0.0 < self.ema < 1.0):
            raise ValueError(f"ema must be None or lie in (0, 1) (got {self.ema!r})")
        _dtype(self.dtype)


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Learning rate of (0-based) step s: linear warm-up to peak over W = warmup_frac*S steps, then linear
    decay to final_lr at the last step (spec 7)."""
    S = cfg.steps
    W = int(round(cfg.warmup_frac * S))
    if step < W:
        return cfg.peak_lr * step / W
    if S - W <= 1:
        return cfg.peak_lr
    return cfg.peak_lr + (cfg.final_lr - cfg.peak_lr) * (step - W) / (S - W - 1)


@dataclass(frozen=True)
class TrainResult:
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
    config : TrainConfig
    device : str
    wall_s : float
    resumed_from : int
        Step the run resumed from (0: fresh).
    """

    means: np.ndarray
    sigma2: float
    init_index: np.ndarray
    losses: np.ndarray
    logged_steps: np.ndarray
    config: TrainConfig
    device: str
    wall_s: float
    resumed_from: int = 0
    diagnostics: dict = field(default_factory=dict)


def _atomic_save(obj, path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path, fingerprint: dict, what: str) -> dict:
    """Load a checkpoint written by :func:`_atomic_save` and check that it belongs to the run described by
    ``fingerprint``; unreadable, foreign or mismatched files raise ``ValueError`` naming the path."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
        ok = isinstance(state, dict) and "fingerprint" in state
    except Exception as exc:  # noqa: BLE001 - any unreadable file
        raise ValueError(f"checkpoint {str(path)!r} is unreadable ({type(exc).__name__}: {exc}); delete it "
                         f"to start afresh") from None
    if not ok:
        raise ValueError(f"checkpoint {str(path)!r} is not a memlab {what} checkpoint")
    if state["fingerprint"] != fingerprint:
        raise ValueError(f"checkpoint {str(path)!r} belongs to a different run (data or configuration differ: "
                         f"{state['fingerprint']} vs {fingerprint}); use another path")
    return state


def _progress(total, initial, quiet, desc="train gmm"):
    if quiet or not sys.stderr.isatty():
        return None
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm ships with the torch extra
        return None
    return tqdm(total=total, initial=initial, desc=desc, leave=False)


def _step_loss(model, x0, ts_alpha, ts_sigma, t_idx, eps):
    """Full-batch epsilon loss: mean over points and draws of ||eps_hat - eps||^2 (sum over d)."""
    N, R, d = eps.shape
    alpha = ts_alpha[t_idx].repeat_interleave(R)
    sig = ts_sigma[t_idx].repeat_interleave(R)
    x = (alpha[:, None] * x0.repeat_interleave(R, dim=0) + sig[:, None] * eps.reshape(N * R, d))
    _, eh = model(alpha, sig, x)
    return ((eh - eps.reshape(N * R, d)) ** 2).sum(1).mean()


def train_gmm(train, M: int, *, steps: int = 50_000, n_noise: int = 100, peak_lr: float = 1e-3,
              final_lr: float = 1e-6, warmup_frac: float = 0.1, ema: float | None = 0.99, seed: int = 0,
              device=None, dtype: str = "float32", beta2: float = 0.999, times=None, checkpoint=None, checkpoint_every: int = 1000,
              metrics=None, log_every: int = 50, quiet: bool = False, _stop_after: int | None = None) -> TrainResult:
    """Train the GMM denoiser from the partial-memorization initialisation (spec gmm_laboratory.md 7).

    Parameters
    ----------
    train : array, shape (N, d)
        Training set.
    M : int
        Number of components, ``1 <= M <= N`` (the initialisation needs M distinct training points).
    steps, n_noise, peak_lr, final_lr, warmup_frac, ema
        Spec defaults: 50,000 full-batch Adam steps, 100 noises per point per step, peak 1e-3 after a
        10% linear warm-up, linear decay to 1e-6, bias-corrected EMA 0.99 of the updates (None: off).
    seed : int
        Seeds the initial subset and every time/noise draw (CPU runs are deterministic).
    device : None, "cpu", "cuda" or "cuda:N"
        Default CUDA when available, else CPU.  Asking for CUDA without CUDA raises.
    dtype : "float32" (default) or "float64"
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
    TrainResult

    References
    ----------
    arXiv:2508.17689v1, Eqs. 14-15, App. H.1; spec gmm_laboratory.md section 7.
    """
    X = _checks.finite_array("train", train, ndim=2)
    N, d = X.shape
    M = _checks.positive_int("M", M)
    if M > N:
        raise ValueError(f"M must satisfy 1 <= M <= N = {N}: the partial-memorization initialisation needs M "
                         f"distinct training points (got M = {M})")
    cfg = TrainConfig(M=M, steps=steps, n_noise=n_noise, peak_lr=peak_lr, final_lr=final_lr,
                      warmup_frac=warmup_frac, ema=ema, seed=seed, dtype=dtype, beta2=beta2,
                      times=None if times is None else tuple(float(v) for v in
                                                             _checks.unit_interval_times("times", times)))
    checkpoint_every = _checks.positive_int("checkpoint_every", checkpoint_every)
    log_every = _checks.positive_int("log_every", log_every)
    dev = resolve_device(device)
    tdt = _dtype(dtype)
    rng = np.random.default_rng(seed)
    init_index = np.sort(rng.choice(N, size=M, replace=False))
    gen = torch.Generator(device="cpu")
    gen.manual_seed(int(rng.integers(0, 2 ** 62)))
    x0 = torch.as_tensor(X, dtype=tdt, device=dev)
    model = TorchGMMDenoiser(torch.as_tensor(X[init_index], dtype=tdt, device=dev),
                             torch.tensor(math.sqrt(cfg.init_sigma2), dtype=tdt, device=dev))
    opt = torch.optim.Adam(model.parameters(), lr=cfg.peak_lr, betas=(0.9, cfg.beta2), eps=1e-8)
    ema_state = [torch.zeros_like(p) for p in model.parameters()]
    ts = torch.as_tensor(paper_grid() if cfg.times is None else np.array(cfg.times), dtype=tdt, device=dev)
    ts_alpha, ts_sigma = torch.sqrt(1.0 - ts * ts), ts
    fingerprint = {"N": N, "d": d, "data_sum": float(np.sum(X)), "data_sq": float(np.sum(X * X)),
                   "config": cfg.__dict__}
    losses, logged = [], []
    start = 0
    ck = Path(checkpoint) if checkpoint is not None else None
    if ck is not None and ck.exists():
        state = load_checkpoint(ck, fingerprint, "GMM training")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        ema_state = [e.to(dev) for e in state["ema"]]
        gen.set_state(state["gen"])
        init_index = state["init_index"]
        losses, logged = list(state["losses"]), list(state["logged"])
        start = int(state["step"])
    if metrics is not None:
        mp = Path(metrics)
        mp.parent.mkdir(parents=True, exist_ok=True)
        keep = []
        if start and mp.exists():
            keep = [ln for ln in mp.read_text().splitlines() if ln.strip() and json.loads(ln)["step"] < start]
        mp.write_text("".join(ln + "\n" for ln in keep))
    resumed_from = start
    flush = torch.set_flush_denormal(True) if dev.type == "cpu" else False  # subnormals: slow, no effect on results
    bar = _progress(cfg.steps, start, quiet)
    t0 = time.perf_counter()
    params = list(model.parameters())
    mfile = open(metrics, "a") if metrics is not None else None
    try:
        for s in range(start, cfg.steps):
            lr = lr_at(s, cfg)
            for g in opt.param_groups:
                g["lr"] = lr
            t_idx = torch.randint(0, ts.numel(), (N,), generator=gen).to(dev)
            eps = torch.randn((N, cfg.n_noise, d), generator=gen, dtype=tdt).to(dev)
            opt.zero_grad(set_to_none=True)
            loss = _step_loss(model, x0, ts_alpha, ts_sigma, t_idx, eps)
            loss.backward()
            if cfg.ema is None:
                opt.step()
            else:
                old = [p.detach().clone() for p in params]
                opt.step()
                with torch.no_grad():
                    bc = 1.0 - cfg.ema ** (s + 1)
                    for p, o, e in zip(params, old, ema_state):
                        e.mul_(cfg.ema).add_(p - o, alpha=1.0 - cfg.ema)
                        p.copy_(o + e / bc)
            lv = float(loss.detach())
            if not math.isfinite(lv):
                raise FloatingPointError(f"training loss became {lv} at step {s} (M = {M}, lr = {lr:g}, "
                                         f"sigma2 = {float(model.sigma2):.3g}); lower peak_lr or use float64")
            if s % log_every == 0 or s == cfg.steps - 1:
                losses.append(lv)
                logged.append(s)
                if mfile is not None:
                    mfile.write(json.dumps({"step": s, "loss": lv, "lr": lr, "sigma2": float(model.sigma2.detach())}) + "\n")
                    mfile.flush()
            if bar is not None:
                bar.update(1)
            done = s + 1
            if ck is not None and (done % checkpoint_every == 0 or done == cfg.steps):
                _atomic_save({"fingerprint": fingerprint, "model": model.state_dict(), "opt": opt.state_dict(),
                              "ema": [e.cpu() for e in ema_state], "gen": gen.get_state(),
                              "init_index": init_index, "losses": losses, "logged": logged, "step": done}, ck)
            if _stop_after is not None and done >= _stop_after:  # test hook: simulate a killed run
                raise KeyboardInterrupt(f"stopped after step {done}")
    finally:
        if flush:
            torch.set_flush_denormal(False)
        if bar is not None:
            bar.close()
        if mfile is not None:
            mfile.close()
    return TrainResult(means=model.means.detach().cpu().numpy().astype(np.float64),
                       sigma2=float(model.sigma2.detach().cpu()), init_index=np.asarray(init_index),
                       losses=np.array(losses), logged_steps=np.array(logged), config=cfg, device=str(dev),
                       wall_s=time.perf_counter() - t0, resumed_from=resumed_from)
