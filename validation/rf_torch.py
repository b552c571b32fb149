"""Random-features score model trained in PyTorch, against the closed-form learning curves
(spec rf_timescales.md 6; arXiv:2505.17638 MT eqs 9-11, SM D).

Model ``s(x) = B sigma(W_bar x)`` (``B = A / sqrt(p)``, ``d x p``, ``B(0) = 0``; frozen ``W_bar = W / sqrt(d)``), loss
``L = (1/(n d)) sum_nu ||sqrt(Delta_t) s(x_t^nu) + xi^nu||^2`` with one fresh ``xi`` per data point per step
(an unbiased gradient of the ``m = infinity`` loss, spec 6 "Optimiser"), gradients by autograd.

* ``optimizer="gd"``: ``torch.optim.SGD`` (no momentum) with ``eta_B = d delta_tau / psi_p``, so one step is
  ``delta_tau`` in the paper's unit ``tau = k eta / d^2`` (spec 6 "Time units"); default
  ``delta_tau = 1e-2 psi_p / Delta_t`` (spec 6 "Step size").
* ``optimizer="adam"``: ``torch.optim.Adam(lr)``; the nominal time is ``tau = k lr p / d^2`` (the GD
  conversion with ``eta_B = lr``), indicative only (spec 6; Fig. 15).

The same ``W``, data and exact ``U, V, U~, V~`` come from :func:`memlab.numerics.rf_matrices.true_feature_matrices`
(same seed), so the closed form of :func:`memlab.numerics.rf_curves.closed_form_curves` (discrete-GD exponent,
``gd_step = delta_tau``) is the noise-free curve of the same run.  Logged at each time: Monte Carlo losses
(train: ``n_eval_noise`` draws per training point; test: ``n_eval_noise n`` fresh points; score error on
``n_score`` points of ``P_t`` against ``-y / Gamma_t^2`` for ``sigma_x``-Gaussian data) and the exact
``m = infinity`` losses of the current ``B`` (quadratic forms in ``U, V, U~, V~``).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..numerics.rf_curves import closed_form_curves, eigen_model
from ..numerics.rf_gd import exact_losses, stability_bound
from ..numerics.rf_matrices import true_feature_matrices
from ..theory import _checks
from .gmm_torch import _atomic_save, _dtype, _progress, load_checkpoint, resolve_device

__all__ = ["RFTrainResult", "train_rf"]

_ACTS = {"tanh": torch.tanh, "erf": torch.erf, "relu": torch.relu,
         "gelu": lambda x: torch.nn.functional.gelu(x)}


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
        Exact score error of the trained ``B`` from its test loss (DSM identity, spec 1.4).
    closed_train, closed_test, closed_score : ndarray
        Closed form (spec 2.3) on the same matrices: discrete GD with ``gd_step = delta_tau`` for
        ``optimizer="gd"``, gradient flow for Adam (reference only).
    agreement : dict
        ``max_rel_train``, ``max_rel_test`` (exact losses of the trained ``B`` vs closed form),
        ``max_rel_train_mc``, ``max_rel_test_mc`` (Monte Carlo vs closed form); relative to the closed form.
    inputs : dict
    diagnostics : dict
        ``wall_s``, ``device``, ``steps_per_s``, ``resumed_from``, ``delta_tau``, ``stability_bound``.
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
    inputs: dict
    diagnostics: dict = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict:
        out = {k: getattr(self, k).tolist() for k in ("tau", "steps", "train_mc", "test_mc", "score_mc", "train_mc_se",
                                                      "test_mc_se", "score_mc_se", "train_exact", "score_exact",
                                                      "test_exact", "closed_train", "closed_test", "closed_score")}
        out.update(agreement=self.agreement, inputs=self.inputs, diagnostics=self.diagnostics)
        return out


def train_rf(psi_p: float, psi_n: float, t: float, taus, *, d: int = 20, optimizer: str = "gd",
             delta_tau: float | None = None, lr: float | None = None, activation: str = "tanh",
             sigma_x: float = 1.0, seed: int = 0, device=None, dtype: str = "float64", n_eval_noise: int = 100,
             n_score: int = 10_000, checkpoint=None, quiet: bool = False) -> RFTrainResult:
    """Train the random-features score model with PyTorch and compare with the closed form (spec 6).

    Parameters
    ----------
    psi_p, psi_n : float
        ``p/d`` and ``n/d``; ``p = round(psi_p d)``, ``n = round(psi_n d)`` (both >= 1).
    t : float
        Diffusion time (> 0).
    taus : array_like
        Finite logging times ``> 0`` in units ``k eta / d^2``.
    d : int, default 20
    optimizer : {"gd", "adam"}
    delta_tau : float, optional
        GD step in ``tau`` units (default ``1e-2 psi_p / Delta_t``); must be below the stability bound
        ``psi_p / (Delta_t lambda_max(U))``.
    lr : float, optional
        Adam learning rate (default 1e-3).
    activation : {"tanh", "erf", "relu", "gelu"}
    sigma_x : float
        Data ``x ~ N(0, sigma_x^2 I)``.
    seed : int
        Seed of ``W`` and data (as in :func:`true_feature_matrices`) and of the training / evaluation noise.
    device : None, "cpu", "cuda", "cuda:N"
    dtype : "float64" (default) or "float32"
    n_eval_noise : int
        Noise draws per training point of the Monte Carlo train loss (and ``n_eval_noise n`` test points).
    n_score : int
        Points of ``P_t`` for the Monte Carlo score error.
    checkpoint : path, optional
        Written atomically at every logging time; an existing checkpoint of the same run is resumed.

    Returns
    -------
    RFTrainResult
    """
    psi_p = _checks.positive_float("psi_p", psi_p)
    psi_n = _checks.positive_float("psi_n", psi_n)
    d = _checks.positive_int("d", d)
    p, n = int(round(psi_p * d)), int(round(psi_n * d))
    if p < 1 or n < 1:
        raise ValueError(f"psi_p d and psi_n d must round to >= 1 (got p = {p}, n = {n} at d = {d})")
    if optimizer not in ("gd", "adam"):
        raise ValueError(f"optimizer must be 'gd' or 'adam' (got {optimizer!r})")
    if activation not in _ACTS:
        raise ValueError(f"activation must be one of {sorted(_ACTS)} (got {activation!r})")
    tau_req = np.atleast_1d(np.asarray(taus, dtype=np.float64))
    if tau_req.ndim != 1 or tau_req.size == 0 or not np.all(np.isfinite(tau_req)) or np.any(tau_req <= 0):
        raise ValueError("taus must be a non-empty 1-D sequence of finite times > 0")
    n_eval_noise = _checks.positive_int("n_eval_noise", n_eval_noise)
    n_score = _checks.positive_int("n_score", n_score)
    dev = resolve_device(device)
    tdt = _dtype(dtype)
    mats = true_feature_matrices(n, p, d, t, activation=activation, sigma_x=sigma_x, seed=seed, k_max=60, n_nodes=80)
    c = mats.constants
    dl = c.delta_t
    lam_max = float(np.linalg.eigvalsh(mats.U)[-1])
    pp = p / d
    bound = stability_bound(pp, dl, lam_max)
    if optimizer == "gd":
        delta_tau = 1e-2 * pp / dl if delta_tau is None else _checks.positive_float("delta_tau", delta_tau)
        if delta_tau >= bound:
            raise ValueError(f"delta_tau must be below the GD stability bound psi_p/(Delta_t lambda_max) = {bound:.4g} "
                             f"(got {delta_tau:.4g})")
        step_tau = delta_tau
        eta = d * delta_tau / pp
    else:
        lr = 1e-3 if lr is None else _checks.positive_float("lr", lr)
        step_tau = lr * p / d ** 2
        eta = lr
    steps = np.unique(np.maximum(1, np.round(tau_req / step_tau)).astype(np.int64))
    tau = steps * step_tau
    em = eigen_model(mats)
    ctr, cte = closed_form_curves(em, tau, gd_step=step_tau if optimizer == "gd" else None)
    csc = (cte - em.bayes_floor) / dl

    act = _ACTS[activation]
    shift = float(c.mu0) if c.center else 0.0
    W_bar = torch.as_tensor(mats.W_bar, dtype=tdt, device=dev)
    Xt = torch.as_tensor(math.exp(-t) * mats.X, dtype=tdt, device=dev)          # (d, n)
    sq = math.sqrt(dl)
    B = torch.zeros((d, p), dtype=tdt, device=dev, requires_grad=True)
    opt = torch.optim.SGD([B], lr=eta) if optimizer == "gd" else torch.optim.Adam([B], lr=eta)
    gen = torch.Generator(device="cpu")
    gen.manual_seed(int(np.random.default_rng([seed, 5]).integers(0, 2 ** 62)))
    # fixed evaluation noise / points (independent of the training stream)
    ev = torch.Generator(device="cpu")
    ev.manual_seed(int(np.random.default_rng([seed, 6]).integers(0, 2 ** 62)))
    xi_tr = torch.randn((n_eval_noise, d, n), generator=ev, dtype=tdt).to(dev)
    gamma_t = math.sqrt(math.exp(-2 * t) * sigma_x ** 2 + dl)
    x_te = sigma_x * torch.randn((d, n * n_eval_noise), generator=ev, dtype=tdt).to(dev)
    xi_te = torch.randn((d, n * n_eval_noise), generator=ev, dtype=tdt).to(dev)
    y_sc = gamma_t * torch.randn((d, n_score), generator=ev, dtype=tdt).to(dev)

    def feats(x):
        return act(W_bar @ x) - shift

    def _mean_se(r):
        per = (r * r).mean(dim=-2).reshape(-1)          # loss per (draw, point): mean over the d coordinates
        return float(per.mean()), float(per.std() / math.sqrt(per.numel()))

    def evaluate(Bd):
        with torch.no_grad():
            tr_mc, tr_se = _mean_se(sq * (Bd @ feats(Xt[None] + sq * xi_tr)) + xi_tr)
            te_mc, te_se = _mean_se(sq * (Bd @ feats(math.exp(-t) * x_te + sq * xi_te)) + xi_te)
            sc_mc, sc_se = _mean_se(Bd @ feats(y_sc) + y_sc / gamma_t ** 2)
        tr, te = exact_losses(Bd.detach().cpu().numpy().astype(np.float64), mats)
        return tr_mc, te_mc, sc_mc, tr, te, tr_se, te_se, sc_se

    inputs = {"psi_p": psi_p, "psi_n": psi_n, "t": float(t), "d": d, "p": p, "n": n, "optimizer": optimizer,
              "delta_tau": step_tau, "eta_B": eta, "activation": activation, "sigma_x": float(sigma_x), "seed": seed,
              "dtype": dtype, "n_eval_noise": n_eval_noise, "n_score": n_score}
    fingerprint = {"inputs": inputs, "steps": steps.tolist()}
    rows, start = [], 0
    ck = Path(checkpoint) if checkpoint is not None else None
    if ck is not None and ck.exists():
        state = load_checkpoint(ck, fingerprint, "random-features training")
        with torch.no_grad():
            B.copy_(state["B"].to(dev))
        opt.load_state_dict(state["opt"])
        gen.set_state(state["gen"])
        rows, start = list(state["rows"]), int(state["done"])
    resumed = start
    bar = _progress(int(steps[-1]), start, quiet, "train rf")
    t0 = time.perf_counter()
    done = start
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
            row = evaluate(B.detach())
            if not all(math.isfinite(v) for v in row):
                raise FloatingPointError(f"random-features training diverged at step {done} (tau = {done * step_tau:.4g});"
                                         f" losses {row}; reduce delta_tau / lr (GD bound {bound:.4g})")
            rows.append(row)
            if ck is not None:
                _atomic_save({"fingerprint": fingerprint, "B": B.detach().cpu(), "opt": opt.state_dict(),
                              "gen": gen.get_state(), "rows": rows, "done": done}, ck)
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
                         closed_test=cte, closed_score=csc, agreement=agreement, inputs=inputs,
                         diagnostics={"wall_s": wall, "device": str(dev), "resumed_from": resumed,
                                      "steps_per_s": (int(steps[-1]) - resumed) / wall if wall > 0 else float("nan"),
                                      "stability_bound": bound, "lambda_max": lam_max,
                                      "bayes_floor": em.bayes_floor})
