"""Random-features score model trained in PyTorch, against the closed-form learning curves
(arXiv:2505.17638 MT eqs 7-11, SM D; docs/theory/validation.md §3).

Model ``s(x) = B sigma(W_bar x)`` (``B = A / sqrt(p)``, ``d x p``, ``B(0) = 0``; frozen ``W_bar = W / sqrt(d)``), loss
``L = (1/(n d)) sum_nu ||sqrt(Delta_t) s(x_t^nu) + xi^nu||^2`` with one fresh ``xi`` per data point per step
(an unbiased gradient of the ``m = infinity`` loss), gradients by autograd.

* ``optimizer="gd"``: ``torch.optim.SGD`` (no momentum) with ``eta_B = d delta_tau / psi_p``, so one step is
  ``delta_tau`` in the paper's unit ``tau = k eta / d^2`` (docs/theory/random_features.md §2); default
  ``delta_tau = 1e-2 psi_p / Delta_t``, below the stability bound ``psi_p / (Delta_t lambda_max(U))``.
* ``optimizer="adam"``: ``torch.optim.Adam(lr)``; the nominal time is ``tau = k lr p / d^2`` (the GD
  conversion with ``eta_B = lr``), indicative only (arXiv:2505.17638 Fig. 15).

The same ``W``, data and exact ``U, V, U~, V~`` come from :func:`memlab.numerics.rf_matrices.true_feature_matrices`
of the same :class:`~memlab.theory.rf_model.RFModel` (same seed), so the closed form of
:func:`memlab.numerics.rf_curves.closed_form_curves` (discrete-GD exponent, ``gd_step = delta_tau``) is the
noise-free curve of the same run.  The activation is the model's (the PyTorch function named by
:attr:`memlab.theory.activations.Activation.torch_op`), minus ``GEPConstants.shift`` when centred.  Logged at
each time: Monte Carlo losses (train: ``n_eval_noise`` draws per training point; test: ``n_eval_noise n``
fresh points; score error on ``n_score`` points of ``P_t = N(0, Sigma_t)`` against ``-Sigma_t^{-1} y``) and the
exact ``m = infinity`` losses of the current ``B`` (quadratic forms in ``U, V, U~, V~``).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..numerics.rf_curves import closed_form_curves, eigen_model
from ..numerics.rf_gd import exact_losses, stability_bound
from ..numerics.rf_matrices import true_feature_matrices
from ..theory import checks
from ..theory.rf_model import RFModel
from ..theory.schedules import ou_delta, ou_sigma_t
from . import runtime

__all__ = ["RFTrainConfig", "RFTrainResult", "train_rf"]


@dataclass(frozen=True)
class RFTrainConfig:
    """How to train the random-features model in PyTorch (docs/theory/validation.md §3).

    Attributes
    ----------
    tau : tuple of float
        Logging times ``> 0`` in the paper's unit ``tau = k eta / d^2`` (rounded to whole steps).
    optimizer : {"gd", "adam"}
    delta_tau : float, optional
        GD step in ``tau`` units (``optimizer="gd"`` only); default ``1e-2 psi_p / Delta_t``.
    lr : float, optional
        Adam learning rate (``optimizer="adam"`` only); default 1e-3.
    dtype : {"float64", "float32"}
    n_eval_noise : int
        Noise draws per training point of the Monte Carlo train loss (and ``n_eval_noise n`` test points).
    n_score : int
        Points of ``P_t`` for the Monte Carlo score error.
    """

    tau: tuple
    optimizer: str = "gd"
    delta_tau: float | None = None
    lr: float | None = None
    dtype: str = "float64"
    n_eval_noise: int = 100
    n_score: int = 10_000

    def __post_init__(self):
        put = object.__setattr__
        try:
            arr = np.atleast_1d(np.asarray(self.tau, dtype=np.float64))
        except (TypeError, ValueError):
            arr = None
        if arr is None or arr.ndim != 1 or arr.size == 0 or not np.all(np.isfinite(arr)) or np.any(arr <= 0):
            raise ValueError(f"tau must be a non-empty 1-D sequence of finite times > 0 (got {self.tau!r})")
        put(self, "tau", tuple(float(v) for v in arr))
        if self.optimizer not in ("gd", "adam"):
            raise ValueError(f"optimizer must be 'gd' or 'adam' (got {self.optimizer!r})")
        if self.delta_tau is not None:
            if self.optimizer != "gd":
                raise ValueError("delta_tau sets the step of optimizer='gd'; Adam's step is lr")
            put(self, "delta_tau", checks.positive_float("delta_tau", self.delta_tau))
        if self.lr is not None:
            if self.optimizer != "adam":
                raise ValueError("lr sets optimizer='adam'; the GD step is delta_tau (in tau units)")
            put(self, "lr", checks.positive_float("lr", self.lr))
        runtime.torch_dtype(self.dtype)
        put(self, "n_eval_noise", checks.positive_int("n_eval_noise", self.n_eval_noise))
        put(self, "n_score", checks.positive_int("n_score", self.n_score))

    def replace(self, **changes) -> "RFTrainConfig":
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class RFTrainResult:
    """Losses of a PyTorch random-features run and the closed form on the same ``W`` and data.

    Attributes
    ----------
    tau : ndarray
        Logged times (paper unit ``k eta / d^2``; requested times rounded to whole steps).
    steps : ndarray of int
    train_mc, test_mc, score_mc : ndarray
        Monte Carlo train / test loss and score error of the trained ``B``.
    train_mc_se, test_mc_se, score_mc_se : ndarray
        Their Monte Carlo standard errors.
    train_exact, test_exact : ndarray
        Exact ``m = infinity`` train / test loss of the trained ``B``.
    score_exact : ndarray
        Exact score error of the trained ``B`` from its test loss (DSM identity,
        docs/theory/random_features.md §1).
    closed_train, closed_test, closed_score : ndarray
        Closed form (docs/theory/random_features.md §2) on the same matrices: discrete GD with
        ``gd_step = delta_tau`` for ``optimizer="gd"``, gradient flow for Adam (reference only).
    agreement : dict
        ``max_rel_train``, ``max_rel_test`` (exact losses of the trained ``B`` vs closed form),
        ``max_rel_train_mc``, ``max_rel_test_mc`` (Monte Carlo vs closed form); relative to the closed form.
    model : RFModel
        The model trained (sizes, ``t``, activation, data scale, seed).
    config : RFTrainConfig
        The training settings with the defaults filled in (``delta_tau`` for GD, ``lr`` for Adam).
    diagnostics : dict
        ``wall_s``, ``device``, ``steps_per_s``, ``resumed_from``, ``step_tau`` (one step in ``tau``
        units), ``eta_B``, ``stability_bound``, ``lambda_max``, ``bayes_floor``.
    """

    tau: np.ndarray
    steps: np.ndarray
    train_mc: np.ndarray
    test_mc: np.ndarray
    score_mc: np.ndarray
    train_mc_se: np.ndarray
    test_mc_se: np.ndarray
    score_mc_se: np.ndarray
    train_exact: np.ndarray
    test_exact: np.ndarray
    score_exact: np.ndarray
    closed_train: np.ndarray
    closed_test: np.ndarray
    closed_score: np.ndarray
    agreement: dict
    model: RFModel
    config: RFTrainConfig
    diagnostics: dict = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict:
        """JSON-ready curves, agreement, model, configuration and diagnostics."""
        out = {k: getattr(self, k).tolist() for k in ("tau", "steps", "train_mc", "test_mc", "score_mc", "train_mc_se",
                                                      "test_mc_se", "score_mc_se", "train_exact", "score_exact",
                                                      "test_exact", "closed_train", "closed_test", "closed_score")}
        cfg = dataclasses.asdict(self.config)
        cfg["tau"] = list(cfg["tau"])
        out.update(agreement=self.agreement, model=self.model.to_dict(), config=cfg, diagnostics=self.diagnostics)
        return out


def _torch_activation(model: RFModel):
    act = model.activation
    if act.torch_op is None:
        raise ValueError(f"the PyTorch trainer needs a built-in activation (tanh, erf, relu, gelu) with a PyTorch "
                         f"function; got the callable {act.name!r}")
    return functools.reduce(getattr, act.torch_op.split("."), torch)


def train_rf(model: RFModel, config: RFTrainConfig, *, device=None, checkpoint=None, quiet: bool = False,
             checkpoint_every_s: float = 60.0) -> RFTrainResult:
    """Train the random-features score model (arXiv:2505.17638 MT eq 7) with PyTorch and compare with the closed
    form on the same ``W`` and data (MT eqs 9-11; docs/theory/validation.md §3).

    Parameters
    ----------
    model : RFModel
        ``psi_p, psi_n, t, d`` (``p = round(psi_p d)``, ``n = round(psi_n d)``, both >= 1), activation (a
        built-in), ``sigma_x`` or ``covariance``, ``center``, ``seed`` (of ``W`` and the data, as in
        :func:`memlab.numerics.rf_matrices.true_feature_matrices`, and of the training / evaluation noise).
    config : RFTrainConfig
        Logging times, optimiser and step, dtype, Monte Carlo sizes.
    device : None, "auto", "cpu", "cuda", "cuda:N"
    checkpoint : path, optional
        Written atomically (:func:`memlab.validation.runtime.atomic_save`) at every logging time and, between
        logging times, every ``checkpoint_every_s`` seconds of training; an existing checkpoint of the same
        run is resumed, and the resumed run gives the same numbers bit for bit as an uninterrupted one (the
        checkpoint holds ``B``, the optimiser state, the training-noise generator and the rows logged).  One
        process per checkpoint: hold its folder with :func:`memlab.validation.runtime.run_lock` when runs may
        share it (``memlab validate rf`` does).
    quiet : bool
        No progress bar (it is also off when stderr is not a terminal).
    checkpoint_every_s : float, default 60
        Seconds of training between checkpoints inside a logging interval (``0``: after every step), so a
        long last interval does not lose its work when the run is killed.

    Returns
    -------
    RFTrainResult

    Raises
    ------
    ValueError
        ``delta_tau`` at or above the GD stability bound ``psi_p / (Delta_t lambda_max(U))``, a user callable
        activation, an unavailable device, or a checkpoint of another run.

    Notes
    -----
    One GD step costs ``O(p d n)``; ``Delta_t = 1 - e^{-2t}`` and ``Sigma_t = e^{-2t} Sigma + Delta_t I`` come
    from :mod:`memlab.theory.schedules` (arXiv:2505.17638 MT eq 2).
    """
    if not isinstance(model, RFModel):
        raise TypeError(f"model must be an RFModel (got {type(model).__name__}); e.g. "
                        f"RFModel(psi_p=8, psi_n=2, t=0.1, d=20)")
    if not isinstance(config, RFTrainConfig):
        raise TypeError(f"config must be an RFTrainConfig (got {type(config).__name__}); e.g. "
                        f"RFTrainConfig(tau=np.geomspace(1, 300, 10))")
    every_s = checks.positive_float("checkpoint_every_s", checkpoint_every_s, allow_zero=True)
    n, p, d = model.sizes()
    t = model.t
    act = _torch_activation(model)
    dev = runtime.resolve_device(device)
    tdt = runtime.torch_dtype(config.dtype)
    mats = true_feature_matrices(model, k_max=60, n_nodes=80)
    c = model.constants
    dl = ou_delta(t)
    lam_max = float(np.linalg.eigvalsh(mats.U)[-1])
    pp = p / d
    bound = stability_bound(pp, dl, lam_max)
    if config.optimizer == "gd":
        delta_tau = 1e-2 * pp / dl if config.delta_tau is None else config.delta_tau
        if delta_tau >= bound:
            raise ValueError(f"delta_tau must be below the GD stability bound psi_p/(Delta_t lambda_max) = {bound:.4g} "
                             f"(got {delta_tau:.4g})")
        cfg = config.replace(delta_tau=delta_tau)
        step_tau = delta_tau
        eta = d * delta_tau / pp
    else:
        cfg = config.replace(lr=1e-3 if config.lr is None else config.lr)
        step_tau = cfg.lr * p / d ** 2
        eta = cfg.lr
    tau_req = np.asarray(cfg.tau)
    steps = np.unique(np.maximum(1, np.round(tau_req / step_tau)).astype(np.int64))
    tau = steps * step_tau
    em = eigen_model(mats)
    ctr, cte = closed_form_curves(em, tau, gd_step=step_tau if cfg.optimizer == "gd" else None)
    csc = (cte - em.bayes_floor) / dl

    shift = c.shift
    W_bar = torch.as_tensor(mats.W_bar, dtype=tdt, device=dev)
    Xt = torch.as_tensor(math.exp(-t) * mats.X, dtype=tdt, device=dev)          # (d, n)
    sq = math.sqrt(dl)
    B = torch.zeros((d, p), dtype=tdt, device=dev, requires_grad=True)
    opt = torch.optim.SGD([B], lr=eta) if cfg.optimizer == "gd" else torch.optim.Adam([B], lr=eta)
    gen = torch.Generator(device="cpu")
    gen.manual_seed(int(np.random.default_rng([model.seed, 5]).integers(0, 2 ** 62)))
    # fixed evaluation noise / points (independent of the training stream)
    ev = torch.Generator(device="cpu")
    ev.manual_seed(int(np.random.default_rng([model.seed, 6]).integers(0, 2 ** 62)))
    ne = cfg.n_eval_noise
    xi_tr = torch.randn((ne, d, n), generator=ev, dtype=tdt).to(dev)
    sd_x = torch.as_tensor(np.sqrt(model.cov_eigs), dtype=tdt, device=dev)[:, None]           # Sigma^{1/2}
    var_t = torch.as_tensor(ou_sigma_t(t, model.cov_eigs), dtype=tdt, device=dev)[:, None]    # diag Sigma_t
    x_te = sd_x * torch.randn((d, n * ne), generator=ev, dtype=tdt).to(dev)
    xi_te = torch.randn((d, n * ne), generator=ev, dtype=tdt).to(dev)
    y_sc = var_t.sqrt() * torch.randn((d, cfg.n_score), generator=ev, dtype=tdt).to(dev)

    def feats(x):
        return act(W_bar @ x) - shift

    def mean_se(r):
        per = (r * r).mean(dim=-2).reshape(-1)          # loss per (draw, point): mean over the d coordinates
        return float(per.mean()), float(per.std() / math.sqrt(per.numel()))

    def evaluate(Bd):
        with torch.no_grad():
            tr_mc, tr_se = mean_se(sq * (Bd @ feats(Xt[None] + sq * xi_tr)) + xi_tr)
            te_mc, te_se = mean_se(sq * (Bd @ feats(math.exp(-t) * x_te + sq * xi_te)) + xi_te)
            sc_mc, sc_se = mean_se(Bd @ feats(y_sc) + y_sc / var_t)
        tr, te = exact_losses(Bd.detach().cpu().numpy().astype(np.float64), mats)
        return tr_mc, te_mc, sc_mc, tr, te, tr_se, te_se, sc_se

    cfg_dict = dataclasses.asdict(cfg)
    fingerprint = {"model": model.to_dict(), "config": cfg_dict, "steps": steps.tolist()}
    rows, start = [], 0
    ck = Path(checkpoint) if checkpoint is not None else None
    if ck is not None and ck.exists():
        state = runtime.load_checkpoint(ck, fingerprint, "random-features training")
        with torch.no_grad():
            B.copy_(state["B"].to(dev))
        opt.load_state_dict(state["opt"])
        gen.set_state(state["gen"])
        rows, start = list(state["rows"]), int(state["done"])
    resumed = start
    bar = runtime.progress(int(steps[-1]), start, quiet, "train rf")
    t0 = time.perf_counter()
    done = start

    def save():
        runtime.atomic_save({"fingerprint": fingerprint, "B": B.detach().cpu(), "opt": opt.state_dict(),
                             "gen": gen.get_state(), "rows": rows, "done": done}, ck)
        return time.perf_counter()

    saved = t0
    try:
        for target in steps[len(rows):]:
            while done < target:
                xi = torch.randn((d, n), generator=gen, dtype=tdt).to(dev)
                r = sq * (B @ feats(Xt + sq * xi)) + xi
                loss = (r * r).sum() / (n * d)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                done += 1
                if bar is not None:
                    bar.update(1)
                if ck is not None and done < target and time.perf_counter() - saved >= every_s:
                    saved = save()                 # mid-interval: B, optimiser and generator after `done` steps
            row = evaluate(B.detach())
            if not all(math.isfinite(v) for v in row):
                raise FloatingPointError(f"random-features training diverged at step {done} (tau = "
                                         f"{done * step_tau:.4g}); losses {row}; reduce delta_tau / lr "
                                         f"(GD bound {bound:.4g})")
            rows.append(row)
            if ck is not None:
                saved = save()
    finally:
        if bar is not None:
            bar.close()
    wall = time.perf_counter() - t0
    a = np.array(rows)

    def rel(x, y):
        return float(np.max(np.abs(x - y) / np.abs(y)))

    agreement = {"max_rel_train": rel(a[:, 3], ctr), "max_rel_test": rel(a[:, 4], cte),
                 "max_rel_train_mc": rel(a[:, 0], ctr), "max_rel_test_mc": rel(a[:, 1], cte)}
    return RFTrainResult(tau=tau, steps=steps, train_mc=a[:, 0], test_mc=a[:, 1], score_mc=a[:, 2],
                         train_mc_se=a[:, 5], test_mc_se=a[:, 6], score_mc_se=a[:, 7], train_exact=a[:, 3],
                         test_exact=a[:, 4], score_exact=(a[:, 4] - em.bayes_floor) / dl, closed_train=ctr,
                         closed_test=cte, closed_score=csc, agreement=agreement, model=model, config=cfg,
                         diagnostics={"wall_s": wall, "device": str(dev), "resumed_from": resumed,
                                      "steps_per_s": (int(steps[-1]) - resumed) / wall if wall > 0 else float("nan"),
                                      "step_tau": step_tau, "eta_B": eta, "stability_bound": bound,
                                      "lambda_max": lam_max, "bayes_floor": em.bayes_floor})
