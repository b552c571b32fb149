"""Full-batch gradient descent on the random-features score model at finite ``d`` (docs/theory/random_features.md §2).

Model ``s(x) = B sigma(W_bar x)`` with ``B = A / sqrt(p)`` (``d x p``, ``B(0) = 0``), frozen ``W``; one
GD step of size ``delta_tau`` in the paper's time unit (``tau = k eta / d^2``) is
``B <- B - (d delta_tau / psi_p) grad_B L``.

* ``noise="exact"`` (``m = infinity``): ``grad_B L = (2 Delta_t / d) B U + (2 sqrt(Delta_t) / d) V^T`` with
  the true-feature ``U``, ``V`` (noise expectation by the Mehler series);
* ``noise="fresh"``: one fresh ``xi`` per data point per step,
  ``grad = 2 sqrt(Delta_t) / (n d) (sqrt(Delta_t) B Phi + Xi) Phi^T`` with ``Phi = sigma(W_bar x_t)`` --
  an unbiased gradient of the ``m = infinity`` loss (arXiv:2505.17638 SM D).

Losses are logged exactly (the quadratic forms in ``B`` with the true-feature ``U, V, U~, V~``)
at the requested times.  Kernels are ``@njit(cache=True)``; random numbers are drawn outside them
(``numpy.random.default_rng([seed, 1])``, blocks of steps) and passed in; the activation kernel takes the
built-in's ``kernel_code`` from :mod:`memlab.theory.activations`.  Long runs checkpoint
atomically (temporary file + ``os.replace``) and resume to the same numbers.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field

import numpy as np

from ..theory import checks
from ._jit import njit
from .rf_matrices import TrueFeatureMatrices
from .threads import blas_threads, thread_budget

__all__ = ["GDResult", "simulate_gd", "stability_bound", "exact_losses", "gd_exact_steps", "gd_fresh_steps"]

_BLOCK = 128
#: Longest GD run (steps): at a microsecond per step (the smallest models) 10**10 steps are three hours.
MAX_STEPS = 10 ** 10


@njit(cache=True)
def gd_exact_steps(B, U, Vt_T, coef_u, coef_v, n_steps):
    """``n_steps`` of ``B <- B - coef_u B U - coef_v V^T`` (in place)."""
    for _ in range(n_steps):
        BU = B @ U
        B -= coef_u * BU + coef_v * Vt_T
    return B


@njit(cache=True)
def _act(x, code, shift):
    """The built-in activations by ``Activation.kernel_code`` (0 tanh, 1 erf, 2 relu, 3 gelu), minus ``shift``."""
    out = np.empty_like(x)
    r, c = x.shape
    for i in range(r):
        for j in range(c):
            v = x[i, j]
            if code == 0:
                y = math.tanh(v)
            elif code == 1:
                y = math.erf(v)
            elif code == 2:
                y = v if v > 0.0 else 0.0
            else:
                y = 0.5 * v * (1.0 + math.erf(v / math.sqrt(2.0)))
            out[i, j] = y - shift
    return out


@njit(cache=True)
def gd_fresh_steps(B, W_bar, Xt, xi, sq, coef, code, shift):
    """One step per ``xi[k]`` (``d x n``): ``Phi = sigma(W_bar (Xt + sq xi)) - shift``,
    ``B <- B - coef (sq B Phi + xi) Phi^T`` (in place); ``coef = 2 sqrt(Delta) delta_tau / (n psi_p)``."""
    for k in range(xi.shape[0]):
        Phi = _act(W_bar @ (Xt + sq * xi[k]), code, shift)
        R = sq * (B @ Phi) + xi[k]
        B -= coef * (R @ Phi.T)
    return B


def stability_bound(psi_p: float, delta_t: float, lam_max: float) -> float:
    """Largest stable ``delta_tau``: ``psi_p / (Delta_t lambda_max)`` (docs/theory/random_features.md §2)."""
    return (checks.positive_float("psi_p", psi_p)
            / (checks.positive_float("delta_t", delta_t) * checks.positive_float("lam_max", lam_max)))


@dataclass(frozen=True)
class GDResult:
    """Logged losses of a GD run.

    Attributes
    ----------
    tau : ndarray
        Logged times ``k delta_tau`` (the requested times rounded to whole steps).
    steps : ndarray of int
    train, test : ndarray
        Exact ``m = infinity`` losses of the current ``B``.
    delta_tau : float
    noise : str
    diagnostics : dict
        ``wall_s``, ``n_steps``, ``resumed_from_step``, ``stability_bound``.
    """

    tau: np.ndarray
    steps: np.ndarray
    train: np.ndarray
    test: np.ndarray
    delta_tau: float
    noise: str
    diagnostics: dict = field(default_factory=dict, repr=False)


def exact_losses(B, mats: TrueFeatureMatrices) -> tuple[float, float]:
    """Exact ``m = infinity`` train and test loss of ``B``: ``1 + (Delta_t/d) Tr(B U B^T) + (2 sqrt(Delta_t)/d)
    Tr(B V)`` with ``(U, V)`` and with ``(U~, V~)`` (arXiv:2505.17638 MT eq 8, SM Prop C.1)."""
    d = mats.d
    dl = mats.constants.delta_t
    sq = math.sqrt(dl)
    tr = 1.0 + dl / d * float(np.sum((B @ mats.U) * B)) + 2.0 * sq / d * float(np.sum(B * mats.V.T))
    te = 1.0 + dl / d * float(np.sum((B @ mats.U_tilde) * B)) + 2.0 * sq / d * float(np.sum(B * mats.V_tilde.T))
    return tr, te


def _save(path, **arrays):
    tmp = f"{path}.tmp.npz"
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def simulate_gd(mats: TrueFeatureMatrices, tau, *, delta_tau=None, noise="exact", seed=None, checkpoint=None,
                checkpoint_every_s=30.0, threads: int | None = None) -> GDResult:
    """Full-batch GD from ``B = 0`` logged at the training times ``tau`` (docs/theory/random_features.md §2).

    Parameters
    ----------
    mats : TrueFeatureMatrices
        The model (``W``, data ``X``) and its exact ``U, V, U~, V~`` (for ``noise="exact"`` steps and for
        logging).
    tau : array_like
        Finite times ``> 0``; each is rounded to a whole number of steps ``>= 1``, at most :data:`MAX_STEPS`
        (``10**10``).
    delta_tau : float, optional
        Step in units ``k eta / d^2``; default ``1e-2 psi_p / Delta_t`` (arXiv:2505.17638 SM D).  Must be below
        the stability bound ``psi_p / (Delta_t lambda_max(U))``.
    noise : {"exact", "fresh"}
    seed : int, optional
        Seed of the fresh-noise stream (``default_rng([seed, 1])``); default the model's seed.  ``noise="exact"``
        draws no noise and rejects a seed.
    checkpoint : str or path, optional
        ``.npz`` file written atomically at most every ``checkpoint_every_s`` seconds (rejected without a
        checkpoint); an existing
        checkpoint for the same run is resumed and gives the same numbers as an uninterrupted run.
    threads : int, optional
        BLAS threads of the steps; default the package's thread policy
        (:func:`memlab.numerics.threads.thread_budget`).

    Raises
    ------
    ValueError
        Bad ``tau`` (or beyond ``MAX_STEPS`` steps), ``noise``, or ``delta_tau`` at/above the stability bound.
    """
    with blas_threads(thread_budget(threads).n):
        return _simulate(mats, tau, delta_tau, noise, seed, checkpoint, checkpoint_every_s)


def _simulate(mats, tau, delta_tau, noise, seed, checkpoint, checkpoint_every_s):
    if not isinstance(mats, TrueFeatureMatrices):
        raise TypeError(f"mats must be TrueFeatureMatrices (got {type(mats).__name__})")
    noise = checks.choice("noise", noise, ("exact", "fresh"))
    tau = np.atleast_1d(checks.real_array("tau", tau, finite=False))
    if tau.ndim != 1 or tau.size == 0 or not np.all(np.isfinite(tau)) or np.any(tau <= 0):
        raise ValueError(f"tau must be a non-empty 1-D sequence of finite times > 0 for a GD simulation "
                         f"(got {checks.show(tau)})")
    checkpoint_every_s = checks.positive_float("checkpoint_every_s", checkpoint_every_s, allow_zero=True)
    if checkpoint is not None and not isinstance(checkpoint, (str, os.PathLike)):
        raise TypeError(f"checkpoint must be None or a path (got {checks.show(checkpoint)} of type "
                        f"{type(checkpoint).__name__})")
    c = mats.constants
    d, p, n = mats.d, mats.p, mats.n
    psi_p = p / d
    dl = c.delta_t
    lam_max = float(np.linalg.eigvalsh(mats.U)[-1])
    bound = stability_bound(psi_p, dl, lam_max)
    if delta_tau is None:
        delta_tau = 1e-2 * psi_p / dl
    delta_tau = checks.positive_float("delta_tau", delta_tau)
    if delta_tau >= bound:
        raise ValueError(f"delta_tau must be below the GD stability bound psi_p/(Delta_t lambda_max) = {bound:.4g} "
                         f"(got {delta_tau:.4g})")
    horizon = float(np.max(tau)) / delta_tau
    if not horizon <= MAX_STEPS:
        raise ValueError(f"tau must be at most {MAX_STEPS:.0e} steps of delta_tau = {delta_tau:.4g}, i.e. tau <= "
                         f"{MAX_STEPS * delta_tau:.4g} (got tau = {float(np.max(tau)):.4g}, {horizon:.3g} steps); "
                         f"the closed form (method='gep' or 'features') reaches any time, inf included")
    steps = np.unique(np.maximum(1, np.round(tau / delta_tau)).astype(np.int64))
    if seed is not None:
        seed = checks.seed("seed", seed)
        if noise == "exact":
            checks.ignored("seed", seed, None, reason="noise='exact' draws no noise")
    if checkpoint is None:
        checks.ignored("checkpoint_every_s", checkpoint_every_s, 30.0, reason="it applies only with a checkpoint")
    seed = mats.model.seed if seed is None else seed
    rng = np.random.default_rng([seed, 1])
    B = np.zeros((d, p))
    train = np.full(steps.size, np.nan)
    test = np.full(steps.size, np.nan)
    done, i0, resumed = 0, 0, 0
    act = c.activation_def
    key = np.array([d, p, n, seed, steps[-1], act.kernel_code, int(noise == "fresh")], dtype=np.int64)
    if checkpoint is not None and os.path.exists(checkpoint):
        ck = np.load(checkpoint, allow_pickle=False)
        if (np.array_equal(ck["key"], key) and float(ck["delta_tau"]) == delta_tau
                and np.array_equal(ck["steps"], steps)):
            B, done, i0 = ck["B"].copy(), int(ck["done"]), int(ck["i0"])
            train[:i0], test[:i0] = ck["train"][:i0], ck["test"][:i0]
            rng.bit_generator.state = json.loads(str(ck["rng"]))
            resumed = done
    sq = math.sqrt(dl)
    coef_u = 2.0 * dl * delta_tau / psi_p
    coef_v = 2.0 * sq * delta_tau / psi_p
    VT = np.ascontiguousarray(mats.V.T)
    U = np.ascontiguousarray(mats.U)
    W_bar = np.ascontiguousarray(mats.W_bar)
    Xt = np.ascontiguousarray(math.exp(-mats.t) * mats.X)
    code = act.kernel_code
    shift = c.shift
    f_np = c.activation_function()
    coef_f = 2.0 * sq * delta_tau / (n * psi_p)
    t0 = time.perf_counter()
    last_save = t0
    for i in range(i0, steps.size):
        todo = int(steps[i] - done)
        if noise == "exact":
            gd_exact_steps(B, U, VT, coef_u, coef_v, todo)
        else:
            while todo > 0:
                k = min(todo, _BLOCK)
                xi = rng.standard_normal((k, d, n))
                if code >= 0:
                    gd_fresh_steps(B, W_bar, Xt, xi, sq, coef_f, code, shift)
                else:                               # user callable: same update in numpy
                    for j in range(k):
                        Phi = f_np(W_bar @ (Xt + sq * xi[j]))
                        B -= coef_f * ((sq * (B @ Phi) + xi[j]) @ Phi.T)
                todo -= k
        done = int(steps[i])
        train[i], test[i] = exact_losses(B, mats)
        if not (np.isfinite(train[i]) and np.isfinite(test[i])):
            raise FloatingPointError(f"GD diverged at step {done} (tau = {done * delta_tau:.4g}): losses "
                                     f"{train[i]}, {test[i]}; reduce delta_tau (bound {bound:.4g})")
        if checkpoint is not None and (time.perf_counter() - last_save > checkpoint_every_s or i == steps.size - 1):
            _save(checkpoint, key=key, delta_tau=np.float64(delta_tau), steps=steps, B=B, done=np.int64(done),
                  i0=np.int64(i + 1), train=train, test=test, rng=np.array(json.dumps(rng.bit_generator.state)))
            last_save = time.perf_counter()
    return GDResult(tau=steps * delta_tau, steps=steps, train=train, test=test, delta_tau=delta_tau, noise=noise,
                    diagnostics=dict(wall_s=time.perf_counter() - t0, n_steps=int(steps[-1]),
                                     resumed_from_step=resumed, stability_bound=bound, lambda_max=lam_max))
