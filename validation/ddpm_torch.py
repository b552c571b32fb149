"""A small DDPM on the two-component Gaussian mixture, trained with checkpoints (arXiv:2505.17638 SM B;
docs/theory/validation.md §4).

Data ``P_0 = 1/2 N(mu, I_d) + 1/2 N(-mu, I_d)`` with ``mu = 1_d``; in OU time the noised law is the mixture of
``N(+-e^{-t} mu, I)`` and its exact score is ``s(x, t) = e^{-t} mu tanh(e^{-t} mu . x) - x``.

Model: a residual MLP (``Linear d -> W``; 3 blocks of two ``Linear W -> W`` with GELU, a skip connection and
one LayerNorm, a fixed sinusoidal embedding of the diffusion step added at each block; ``Linear W -> d``),
``p = W(2d + 13) + d + 6 W^2`` parameters, initialised from an explicit ``torch.Generator`` seeded with the
run's seed.  DDPM epsilon-prediction, ``T = 1000``, linear beta from 1e-4 to 2e-2 (OU time
``t_k = -1/2 log alpha_bar_k``), full-batch SGD with momentum (lr 6e-3, momentum 0.95, as in SM B; Adam with
lr 1e-3 optional).

:func:`train_ddpm` trains one model and evaluates it at log-spaced checkpoint steps: memorization fraction
of generated samples (1/3 rule with its exact Clopper-Pearson CI, :func:`memlab.numerics.memorization.memorization_fraction`),
score error against the exact score at a fixed diffusion step on fresh ``P_t`` points, and a sample-quality
proxy (:func:`kl_proxy`: cross-entropy under the exact ``P_0`` minus a Kozachenko-Leonenko entropy estimate,
an estimate of ``KL(P_theta || P_0)``).  The run checkpoints atomically after every evaluation and resumes
bit-identically (model, optimiser, generator state, evaluations; :mod:`memlab.validation.runtime`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from scipy.special import digamma, gammaln

from ..numerics.memorization import memorization_fraction
from ..theory import checks
from . import runtime

__all__ = ["ResidualMLP", "ConvDenoiser", "ancestral_sample", "ddpm_step", "DDPMSchedule", "DDPMConfig", "DDPMRun", "train_ddpm", "two_mode_score",
           "two_mode_log_density", "sample_two_mode", "kl_proxy", "checkpoint_steps", "n_params_formula"]


# ----------------------------------------------------------------------------------------------- the data
def sample_two_mode(n: int, d: int = 8, *, seed: int = 0, stream: int = 0) -> np.ndarray:
    """``n`` points of ``1/2 N(1_d, I) + 1/2 N(-1_d, I)`` (arXiv:2505.17638 SM B) from one fixed stream: the
    first ``n`` points of the stream ``(seed, stream)`` do not depend on ``n`` (nested training sets,
    docs/theory/validation.md §4)."""
    n = checks.positive_int("n", n)
    d = checks.positive_int("d", d)
    rng = np.random.default_rng([int(seed), int(stream), 7])
    out = np.empty((n, d))
    for i in range(n):  # one point at a time keeps the stream prefix-stable for every n
        sign = 1.0 if rng.random() < 0.5 else -1.0
        out[i] = sign + rng.standard_normal(d)
    return out


def two_mode_score(x: torch.Tensor, t) -> torch.Tensor:
    """Exact score of the noised two-mode mixture in OU time (arXiv:2505.17638 SM B data, OU process of MT eq 2):
    ``grad log P_t(x) = e^{-t} mu tanh(e^{-t} mu . x) - x`` with ``mu = 1_d``.

    ``t`` is a scalar or a tensor broadcastable to ``x.shape[:-1]``; the reference of the DDPM score error
    (docs/theory/validation.md §4)."""
    a = torch.exp(-torch.as_tensor(t, dtype=x.dtype, device=x.device))
    return (a * torch.tanh(a * x.sum(-1)))[..., None] - x


def two_mode_log_density(x: torch.Tensor, t) -> torch.Tensor:
    """``log P_t(x)`` of the noised mixture ``1/2 N(e^{-t} 1_d, I_d) + 1/2 N(-e^{-t} 1_d, I_d)`` (arXiv:2505.17638
    SM B data in OU time), written stably through ``log cosh``; used for autograd checks of the score and as the
    cross-entropy term of :func:`kl_proxy`."""
    d = x.shape[-1]
    a = torch.exp(-torch.as_tensor(t, dtype=x.dtype, device=x.device))
    q = (x * x).sum(-1)
    m = a * x.sum(-1)
    # log(1/2 e^{m} + 1/2 e^{-m}) = log cosh m, written stably
    logcosh = torch.abs(m) + torch.log1p(torch.exp(-2.0 * torch.abs(m))) - math.log(2.0)
    return -0.5 * (q + a * a * d) + logcosh - 0.5 * d * math.log(2.0 * math.pi)


def kl_proxy(samples, *, k: int = 3) -> float:
    """Estimate of ``KL(P_theta || P_0)`` from samples: ``-H_KL - mean log P_0``.

    ``H_KL`` is the Kozachenko-Leonenko ``k``-nearest-neighbour entropy estimate
    ``psi(S) - psi(k) + log V_d + (d/S) sum log r_k``.  It is biased at finite ``S`` (exact ``P_0`` samples
    give a small non-zero value, reported alongside as the floor) but consistent, and it punishes
    collapse onto training points (``r_k -> 0``) as well as poor coverage (low ``log P_0``).  Package choice:
    it stands in for the FID of arXiv:2505.17638 MT §2 (docs/theory/validation.md §4).
    """
    x = np.asarray(samples, dtype=np.float64)
    S, d = x.shape
    if S <= k:
        raise ValueError(f"kl_proxy needs more than k={k} samples (got {S})")
    sq = (x * x).sum(1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * x @ x.T, 0.0)
    np.fill_diagonal(d2, np.inf)
    rk2 = np.partition(d2, k - 1, axis=1)[:, k - 1]
    rk2 = np.maximum(rk2, 1e-300)
    log_vd = 0.5 * d * math.log(math.pi) - gammaln(0.5 * d + 1.0)
    h = digamma(S) - digamma(k) + log_vd + 0.5 * d * float(np.mean(np.log(rk2)))
    return float(-h - two_mode_log_density(torch.as_tensor(x), 0.0).mean())


# ------------------------------------------------------------------------------------------------ the model
def n_params_formula(d: int, width: int) -> int:
    """``p = W(2d + 13) + d + 6 W^2``: parameters of :class:`ResidualMLP` (docs/theory/validation.md §4)."""
    return width * (2 * d + 13) + d + 6 * width * width


def _sinusoidal(k: torch.Tensor, width: int) -> torch.Tensor:
    half = width // 2
    freqs = torch.exp(-math.log(10_000.0) * torch.arange(half, dtype=torch.float64) / max(half, 1))
    ang = k.to(torch.float64)[:, None] * freqs[None, :].to(k.device)
    emb = torch.cat([torch.sin(ang), torch.cos(ang)], dim=1)
    if width % 2:
        emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=1)
    return emb


class ResidualMLP(torch.nn.Module):
    """The residual-MLP epsilon-predictor of the DDPM study (docs/theory/validation.md §4).

    ``h = Linear_in(x)``; for each of the 3 blocks ``h = h + e(k)``, ``h = LayerNorm(h + L2(GELU(L1(h))))``;
    output ``Linear_out(h)``.  ``e(k)`` is the fixed sinusoidal embedding (dimension ``width``) of the
    diffusion step ``k`` (no parameters).

    Parameters
    ----------
    d, width : int
        Data dimension and hidden width ``W``.
    n_blocks : int, default 3
    T : int, default 1000
        Diffusion steps of the embedding table.
    seed : int, optional
        Initialise every ``Linear`` (in construction order: input, the blocks' first layers, their second
        layers, output; weight then bias) from a ``torch.Generator`` seeded with ``seed``, with PyTorch's
        default rule (Kaiming-uniform weights with ``a = sqrt(5)``, biases uniform in ``+-1/sqrt(fan_in)``).
        The values equal those of ``torch.manual_seed(seed); ResidualMLP(d, width)``, and the global random
        state is left untouched.  ``None``: PyTorch's default initialisation from the global state.
    """

    def __init__(self, d: int, width: int, n_blocks: int = 3, T: int = 1000, *, seed: int | None = None):
        super().__init__()
        self.d, self.width = d, width
        with torch.random.fork_rng(devices=[]) if seed is not None else contextlib.nullcontext():
            self.inp = torch.nn.Linear(d, width)
            self.l1 = torch.nn.ModuleList([torch.nn.Linear(width, width) for _ in range(n_blocks)])
            self.l2 = torch.nn.ModuleList([torch.nn.Linear(width, width) for _ in range(n_blocks)])
            self.norms = torch.nn.ModuleList([torch.nn.LayerNorm(width) for _ in range(n_blocks)])
            self.out = torch.nn.Linear(width, d)
        self.register_buffer("emb", _sinusoidal(torch.arange(T), width).to(torch.get_default_dtype()),
                             persistent=False)
        if seed is not None:
            self.reset_parameters(seed)

    def linears(self) -> list:
        """The ``Linear`` layers in construction order."""
        return [self.inp, *self.l1, *self.l2, self.out]

    @torch.no_grad()
    def reset_parameters(self, seed: int) -> None:
        """Re-initialise every ``Linear`` from ``torch.Generator().manual_seed(seed)`` (PyTorch's default rule,
        in construction order; LayerNorms are reset to weight 1, bias 0)."""
        g = torch.Generator(device="cpu")
        g.manual_seed(int(seed))
        for lin in self.linears():
            torch.nn.init.kaiming_uniform_(lin.weight, a=math.sqrt(5), generator=g)
            fan_in = lin.weight.shape[1]
            bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
            torch.nn.init.uniform_(lin.bias, -bound, bound, generator=g)
        for ln in self.norms:
            ln.reset_parameters()

    def forward(self, x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        e = self.emb[k]
        h = self.inp(x)
        for l1, l2, ln in zip(self.l1, self.l2, self.norms):
            h = h + e
            h = ln(h + l2(torch.nn.functional.gelu(l1(h))))
        return self.out(h)


class ConvDenoiser(torch.nn.Module):
    """A small convolutional epsilon-predictor for image data (docs/theory/validation.md §5).

    Flat inputs ``x`` of shape ``(B, C H W)`` are viewed as ``(B, C, H, W)`` images; ``h = Conv3x3(x)``
    (``channels`` maps), then ``n_blocks`` residual blocks ``h = h + Conv3x3(GELU(GroupNorm(h + e(k))))`` with the
    fixed sinusoidal embedding ``e(k)`` of the diffusion step added per channel, and ``Conv3x3`` back to ``C``
    maps, flattened.  Same interface as :class:`ResidualMLP`: ``forward(x, k)`` with integer steps ``k``.

    Parameters
    ----------
    shape : tuple of int
        Image shape ``(H, W)`` or ``(H, W, C)`` (channels last, as images are stored).
    channels : int, default 32
    n_blocks : int, default 4
    T : int, default 1000
    seed : int, optional
        Initialisation from a ``torch.Generator`` seeded with ``seed`` (the global random state is left untouched).
    """

    def __init__(self, shape, channels: int = 32, n_blocks: int = 4, T: int = 1000, *, seed: int | None = None):
        super().__init__()
        shape = tuple(int(v) for v in shape)
        if len(shape) not in (2, 3) or min(shape) < 1:
            raise ValueError(f"shape must be (H, W) or (H, W, C) with positive sizes (got {shape})")
        self.shape = shape
        self.c_in = 1 if len(shape) == 2 else shape[2]
        self.d = shape[0] * shape[1] * self.c_in
        self.channels = channels
        groups = 8 if channels % 8 == 0 else 1
        with torch.random.fork_rng(devices=[]) if seed is not None else contextlib.nullcontext():
            if seed is not None:
                torch.manual_seed(int(seed))
            self.inp = torch.nn.Conv2d(self.c_in, channels, 3, padding=1)
            self.convs = torch.nn.ModuleList([torch.nn.Conv2d(channels, channels, 3, padding=1)
                                              for _ in range(n_blocks)])
            self.norms = torch.nn.ModuleList([torch.nn.GroupNorm(groups, channels) for _ in range(n_blocks)])
            self.out = torch.nn.Conv2d(channels, self.c_in, 3, padding=1)
        self.register_buffer("emb", _sinusoidal(torch.arange(T), channels).to(torch.get_default_dtype()),
                             persistent=False)

    def forward(self, x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        H, W = self.shape[0], self.shape[1]
        img = x.reshape(x.shape[0], H, W, self.c_in).permute(0, 3, 1, 2)
        e = self.emb[k].to(x.dtype)[:, :, None, None]
        h = self.inp(img)
        for conv, norm in zip(self.convs, self.norms):
            h = h + conv(torch.nn.functional.gelu(norm(h + e)))
        return self.out(h).permute(0, 2, 3, 1).reshape(x.shape[0], -1)


@dataclass(frozen=True)
class DDPMSchedule:
    """Linear beta schedule of DDPM (``T`` steps, ``beta_1 .. beta_T`` from 1e-4 to 2e-2; arXiv:2006.11239 §4); the
    OU time of step ``k`` is ``t_k = -1/2 log alpha_bar_k`` (docs/theory/validation.md §4)."""

    T: int = 1000
    beta_min: float = 1e-4
    beta_max: float = 2e-2

    def arrays(self):
        beta = np.linspace(self.beta_min, self.beta_max, self.T)
        abar = np.cumprod(1.0 - beta)
        return beta, abar

    def ou_time(self, k: int) -> float:
        return float(-0.5 * math.log(self.arrays()[1][k]))


def checkpoint_steps(steps: int, n_checkpoints: int, *, first: int | None = None) -> np.ndarray:
    """Log-spaced distinct checkpoint steps from ``first`` (default ``max(1, steps // 10^4)``) to ``steps``
    (docs/theory/validation.md §4).

    Examples
    --------
    >>> checkpoint_steps(120, 6, first=10).tolist()
    [10, 16, 27, 44, 73, 120]
    """
    steps = checks.positive_int("steps", steps)
    n_checkpoints = checks.positive_int("n_checkpoints", n_checkpoints, minimum=2)
    first = max(1, steps // 10_000) if first is None else checks.positive_int("first", first)
    if first > steps:
        raise ValueError(f"steps={steps} is below the first checkpoint ({first}); no checkpoint would be reached")
    s = np.unique(np.round(np.geomspace(first, steps, n_checkpoints)).astype(np.int64))
    return s


@dataclass(frozen=True)
class DDPMConfig:
    """Settings of one DDPM training run (all recorded in checkpoints and outputs; docs/theory/validation.md §4).

    Attributes
    ----------
    d, width : int
        Data dimension (8) and residual-MLP width ``W`` (128).
    steps : int
        Optimiser updates.
    optimizer : {"sgd", "adam"}
        Full-batch SGD with momentum (arXiv:2505.17638 SM B) or Adam.
    lr : float, optional
        Default 6e-3 for SGD, 1e-3 for Adam (filled in by ``__post_init__``).
    momentum : float
        SGD momentum in [0, 1).
    batch : int, optional
        Mini-batch size; ``None``: full batch.
    n_checkpoints, first_checkpoint : int
        Log-spaced evaluation steps (:func:`checkpoint_steps`) unless ``checkpoints`` is given.
    checkpoints : tuple of int, optional
        Explicit increasing evaluation steps ending at ``steps``.
    n_gen, sample_steps : int
        Samples per evaluation and ancestral sampling steps (``<= T = 1000``).
    score_step : int
        Diffusion step of the score error (``t ~ 0.01`` at ``k = 40``).
    n_score : int
        Fresh ``P_t`` points of the score error.
    seed : int
        Initialisation (the same for every training-set size) and training noise.
    data_seed : int
        Data stream and evaluation sets.
    dtype : {"float32", "float64"}
    """

    d: int = 8
    width: int = 128
    steps: int = 100_000
    optimizer: str = "sgd"
    lr: float | None = None
    momentum: float = 0.95
    batch: int | None = None            # None: full batch
    n_checkpoints: int = 30
    first_checkpoint: int | None = None
    checkpoints: tuple | None = None    # explicit checkpoint steps (overrides n_checkpoints / first_checkpoint)
    n_gen: int = 1000
    sample_steps: int = 1000
    score_step: int = 40                # diffusion step of the score error (t ~ 0.01 at k = 40)
    n_score: int = 10_000
    seed: int = 0
    data_seed: int = 0
    dtype: str = "float32"

    def __post_init__(self):
        checks.positive_int("d", self.d)
        checks.positive_int("width", self.width)
        checks.positive_int("steps", self.steps)
        if self.optimizer not in ("sgd", "adam"):
            raise ValueError(f"optimizer must be 'sgd' or 'adam' (got {self.optimizer!r})")
        lr = (6e-3 if self.optimizer == "sgd" else 1e-3) if self.lr is None else checks.positive_float("lr", self.lr)
        object.__setattr__(self, "lr", float(lr))
        m = checks.positive_float("momentum", self.momentum, allow_zero=True)
        if m >= 1:
            raise ValueError(f"momentum must lie in [0, 1) (got {self.momentum!r})")
        if self.batch is not None:
            checks.positive_int("batch", self.batch)
        checks.positive_int("n_checkpoints", self.n_checkpoints, minimum=2)
        checks.positive_int("n_gen", self.n_gen, minimum=8)
        checks.positive_int("sample_steps", self.sample_steps, minimum=2)
        if self.sample_steps > 1000:
            raise ValueError(f"sample_steps must be in [2, T=1000] (got {self.sample_steps})")
        if not 0 <= int(self.score_step) < 1000:
            raise ValueError(f"score_step must be a diffusion step in [0, 999] (got {self.score_step})")
        checks.positive_int("n_score", self.n_score)
        checks.positive_int("seed", self.seed, minimum=0)
        checks.positive_int("data_seed", self.data_seed, minimum=0)
        runtime.torch_dtype(self.dtype)
        if self.checkpoints is not None:
            object.__setattr__(self, "checkpoints", tuple(int(s) for s in self.checkpoint_list()))
        self.checkpoint_list()

    def checkpoint_list(self) -> np.ndarray:
        """The evaluation steps."""
        if self.checkpoints is None:
            return checkpoint_steps(self.steps, self.n_checkpoints, first=self.first_checkpoint)
        c = np.asarray(self.checkpoints)
        if c.ndim != 1 or c.size == 0 or not np.issubdtype(c.dtype, np.integer) or np.any(c < 1) \
                or np.any(np.diff(c) <= 0) or int(c[-1]) != self.steps:
            raise ValueError(f"checkpoints must be increasing integer steps >= 1 ending at steps={self.steps} "
                             f"(got {self.checkpoints!r})")
        return c.astype(np.int64)

    def replace(self, **changes) -> "DDPMConfig":
        """A copy with some fields changed (``lr`` is re-derived when ``optimizer`` changes and ``lr`` is not
        given)."""
        if "optimizer" in changes and "lr" not in changes and changes["optimizer"] != self.optimizer:
            changes["lr"] = None
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class DDPMRun:
    """Per-checkpoint evaluations of one DDPM training run.

    Attributes
    ----------
    n : int
        Training-set size.
    steps : ndarray of int
        Checkpoint steps (the training time ``tau`` in optimiser updates).
    fraction, ci_low, ci_high : ndarray
        Memorization fraction of ``n_gen`` generated samples (1/3 rule) and its exact 95% (Clopper-Pearson) CI.
    score_error : ndarray
        ``mean ||s_theta - s||^2 / d`` at diffusion step ``score_step`` on fresh ``P_t`` points.
    quality : ndarray
        :func:`kl_proxy` of the samples (lower is better).
    train_loss : ndarray
        Full-batch DDPM loss at the checkpoint step.
    config : DDPMConfig
    diagnostics : dict
        ``n_params``, ``device``, ``wall_s``, ``resumed_from``, ``quality_floor`` (the proxy on exact
        ``P_0`` samples of the same size), ``score_t``.
    """

    n: int
    steps: np.ndarray
    fraction: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    score_error: np.ndarray
    quality: np.ndarray
    train_loss: np.ndarray
    config: DDPMConfig
    diagnostics: dict = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict:
        return {"n": self.n, "steps": self.steps.tolist(), "fraction": self.fraction.tolist(),
                "ci_low": self.ci_low.tolist(), "ci_high": self.ci_high.tolist(),
                "score_error": self.score_error.tolist(), "quality": self.quality.tolist(),
                "train_loss": self.train_loss.tolist(), "config": asdict(self.config),
                "diagnostics": self.diagnostics}


@torch.no_grad()
def ancestral_sample(model, n_gen, d, sample_steps, abar_np, gen_seed, dev, tdt):
    """Ancestral DDPM sampling on ``sample_steps`` respaced steps (DDIM with eta = 1; ``sample_steps = T``
    is the original DDPM / Euler-Maruyama-type sampler).  Fixed seed: same noise at every checkpoint.

    ``model(x, k)`` predicts epsilon from flat points ``x`` of shape ``(n_gen, d)`` and integer diffusion steps
    ``k`` (``torch.long``, ``0 <= k < T``); ``abar_np`` is the ``alpha_bar`` table of :class:`DDPMSchedule`.
    Returns the ``(n_gen, d)`` tensor of samples."""
    T = abar_np.size
    ks = np.unique(np.round(np.linspace(0, T - 1, sample_steps)).astype(np.int64))[::-1]
    g = torch.Generator(device="cpu")
    g.manual_seed(int(gen_seed))
    x = torch.randn((n_gen, d), generator=g, dtype=tdt).to(dev)
    for i, k in enumerate(ks):
        ab = float(abar_np[k])
        ab_prev = float(abar_np[ks[i + 1]]) if i + 1 < ks.size else 1.0
        kk = torch.full((n_gen,), int(k), dtype=torch.long, device=dev)
        eps = model(x, kk)
        x0 = (x - math.sqrt(1.0 - ab) * eps) / math.sqrt(ab)
        if i + 1 == ks.size:
            x = x0
            break
        beta_t = 1.0 - ab / ab_prev
        var = (1.0 - ab_prev) / (1.0 - ab) * beta_t
        mean = (math.sqrt(ab_prev) * beta_t / (1.0 - ab)) * x0 + (math.sqrt(1.0 - beta_t) * (1.0 - ab_prev) / (1.0 - ab)) * x
        z = torch.randn((n_gen, d), generator=g, dtype=tdt).to(dev)
        x = mean + math.sqrt(var) * z
    return x


def ddpm_step(model, opt, x0: torch.Tensor, batch: int, abar: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """One optimiser update on the DDPM epsilon loss ``mean ||eps_theta(sqrt(abar_k) x + sqrt(1 - abar_k) eps, k) -
    eps||^2`` (Ho et al. 2020, arXiv:2006.11239 Eq. 14): a mini-batch of ``batch`` rows of ``x0`` (all of them, in
    order, when ``batch`` equals their number), one uniform diffusion step and one noise per row, all drawn from the
    CPU generator ``gen`` in that order (so a resumed run with the generator's state repeats the draws).  Returns
    the loss before the update."""
    n, dim = x0.shape
    dev = x0.device
    xb = x0 if batch == n else x0[torch.randperm(n, generator=gen)[:batch].to(dev)]
    kk = torch.randint(0, abar.shape[0], (batch,), generator=gen).to(dev)
    eps = torch.randn((batch, dim), generator=gen, dtype=x0.dtype).to(dev)
    ab = abar[kk][:, None]
    loss = ((model(ab.sqrt() * xb + (1.0 - ab).sqrt() * eps, kk) - eps) ** 2).mean()
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss


def train_ddpm(n: int, config: DDPMConfig | None = None, *, device=None, checkpoint=None, quiet: bool = False,
               progress_desc: str | None = None) -> DDPMRun:
    """Train the residual-MLP DDPM on the first ``n`` points of the fixed data stream and evaluate it at
    log-spaced checkpoints (arXiv:2505.17638 SM B; docs/theory/validation.md §4).

    Parameters
    ----------
    n : int
        Training-set size (>= 2): the first ``n`` points of :func:`sample_two_mode` (``config.data_seed``).
    config : DDPMConfig, optional
        Model, optimiser, horizon, checkpoints, evaluation sizes, seeds, dtype; default ``DDPMConfig()``.
    device : None, "auto", "cpu", "cuda", "cuda:N"
    checkpoint : path, optional
        Checkpoint file, written atomically after every evaluation; an existing one (same ``n`` and
        configuration) is resumed and gives the same numbers as an uninterrupted run.
    quiet : bool
        No progress bar (it is also off when stderr is not a terminal).
    progress_desc : str, optional
        Label of the progress bar.

    Returns
    -------
    DDPMRun

    Notes
    -----
    DDPM epsilon-prediction loss ``E ||eps_theta(sqrt(abar_k) x + sqrt(1 - abar_k) eps, k) - eps||^2`` (Ho et al.
    2020, arXiv:2006.11239 Eq. 14); the initialisation depends on ``config.seed`` only (the same for every
    ``n``) and uses no global random state.
    """
    n = checks.positive_int("n", n, minimum=2)
    cfg = DDPMConfig() if config is None else config
    if not isinstance(cfg, DDPMConfig):
        raise TypeError(f"config must be a DDPMConfig (got {type(cfg).__name__})")
    dev = runtime.resolve_device(device)
    tdt = runtime.torch_dtype(cfg.dtype)
    ck_steps = cfg.checkpoint_list()
    sched = DDPMSchedule()
    _, abar_np = sched.arrays()
    X = sample_two_mode(n, cfg.d, seed=cfg.data_seed)
    x0 = torch.as_tensor(X, dtype=tdt, device=dev)
    abar = torch.as_tensor(abar_np, dtype=tdt, device=dev)
    model = ResidualMLP(cfg.d, cfg.width, seed=cfg.seed).to(device=dev, dtype=tdt)
    if cfg.optimizer == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum)
    else:
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    gen = torch.Generator(device="cpu")
    gen.manual_seed(int(np.random.default_rng([cfg.seed, n, 11]).integers(0, 2 ** 62)))
    # fixed evaluation sets (independent of the training stream)
    sc_k = int(cfg.score_step)
    ab_s = float(abar_np[sc_k])
    y0 = sample_two_mode(cfg.n_score, cfg.d, seed=cfg.data_seed, stream=1)
    rs = np.random.default_rng([cfg.data_seed, 2])
    y = math.sqrt(ab_s) * y0 + math.sqrt(1.0 - ab_s) * rs.standard_normal(y0.shape)
    y_t = torch.as_tensor(y, dtype=tdt, device=dev)
    score_t = sched.ou_time(sc_k)
    s_exact = two_mode_score(torch.as_tensor(y, dtype=torch.float64), score_t).numpy()
    floor = kl_proxy(sample_two_mode(cfg.n_gen, cfg.d, seed=cfg.data_seed, stream=3))
    fingerprint = {"n": n, "config": asdict(cfg)}
    rows: list[dict] = []
    start = 0
    ck = Path(checkpoint) if checkpoint is not None else None
    if ck is not None and ck.exists():
        state = runtime.load_checkpoint(ck, fingerprint, "DDPM training")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        gen.set_state(state["gen"])
        rows = list(state["rows"])
        start = int(state["step"])
    resumed_from = start
    flush = torch.set_flush_denormal(True) if dev.type == "cpu" else False
    bar = runtime.progress(cfg.steps, start, quiet, progress_desc or f"ddpm n={n}")
    t0 = time.perf_counter()
    batch = n if cfg.batch is None else min(cfg.batch, n)
    pending = [int(s) for s in ck_steps if s > start]
    step = start
    loss_v = float("nan")
    try:
        while pending:
            target = pending.pop(0)
            model.train()
            while step < target:
                loss = ddpm_step(model, opt, x0, batch, abar, gen)
                step += 1
                if bar is not None:
                    bar.update(1)
            loss_v = float(loss.detach())
            if not math.isfinite(loss_v):
                raise FloatingPointError(f"DDPM training loss became {loss_v} at step {step} (n = {n}, "
                                         f"lr = {cfg.lr:g}, optimizer = {cfg.optimizer}); lower lr")
            model.eval()
            rows.append(_evaluate(model, cfg, X, abar_np, y_t, s_exact, ab_s, dev, tdt, step, loss_v))
            if ck is not None:
                runtime.atomic_save({"fingerprint": fingerprint, "model": model.state_dict(), "opt": opt.state_dict(),
                                     "gen": gen.get_state(), "rows": rows, "step": step}, ck)
    finally:
        if flush:
            torch.set_flush_denormal(False)
        if bar is not None:
            bar.close()
    col = {k: np.array([r[k] for r in rows]) for k in rows[0]}
    return DDPMRun(n=n, steps=col["step"].astype(np.int64), fraction=col["fraction"], ci_low=col["ci_low"],
                   ci_high=col["ci_high"], score_error=col["score_error"], quality=col["quality"],
                   train_loss=col["train_loss"], config=cfg,
                   diagnostics={"n_params": sum(p.numel() for p in model.parameters()), "device": str(dev),
                                "wall_s": time.perf_counter() - t0, "resumed_from": resumed_from,
                                "quality_floor": floor, "score_t": score_t})


def _evaluate(model, cfg, X, abar_np, y_t, s_exact, ab_s, dev, tdt, step, loss_v) -> dict:
    with torch.no_grad():
        xs = ancestral_sample(model, cfg.n_gen, cfg.d, cfg.sample_steps, abar_np, 1_000_003 + cfg.seed, dev, tdt)
        xs = xs.to(torch.float64).cpu().numpy()
        if not np.all(np.isfinite(xs)):
            raise FloatingPointError(f"DDPM samples are not finite at step {step} (n = {X.shape[0]}); lower lr")
        kk = torch.full((y_t.shape[0],), int(cfg.score_step), dtype=torch.long, device=dev)
        s_model = (-model(y_t, kk) / math.sqrt(1.0 - ab_s)).to(torch.float64).cpu().numpy()
    mem = memorization_fraction(xs, X, n_boot=1000, seed=0)
    return {"step": int(step), "fraction": mem.fraction, "ci_low": mem.ci_low, "ci_high": mem.ci_high,
            "score_error": float(np.mean(np.sum((s_model - s_exact) ** 2, axis=1)) / cfg.d),
            "quality": kl_proxy(xs), "train_loss": loss_v,
            "median_ratio": float(np.median(mem.ratio))}
