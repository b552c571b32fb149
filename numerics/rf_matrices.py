"""Finite-size random-features matrices: Gaussian-equivalent and true-feature ``U``, ``U~``, ``V``, ``V~``.

arXiv:2505.17638 SM Lemmas C.1, C.2, C.4 and eq 85 (docs/theory/random_features.md §3)::

    U_GEP = G G^T / n + b_t^2 K + s_t^2 I_p,   G = e^{-t} a_t W_bar X + v_t Omega,   K = W_bar W_bar^T
    U~_GEP = mu1^2 / Gamma_t^2 W_bar Sigma_t W_bar^T + (||sigma||^2 - mu1^2) I_p,   V = V~ = b_t W_bar

with ``W_bar = W / sqrt(d)``, ``W`` (p x d), ``X`` (d x n, columns ~ N(0, Sigma)) and ``Omega`` (p x n)
drawn in that order from ``numpy.random.default_rng(model.seed)``.  The true-feature matrices of the real
activation (docs/theory/random_features.md §3) average over the noise exactly, by a
Mehler series whose coefficients are 1-D Gauss-Hermite integrals per feature and sample, or by Monte
Carlo over ``xi`` for comparison.  Every matrix uses the centred activation when ``center=True``.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np

from ..theory import checks
from ..theory.activations import Activation
from ..theory.gep import GEPConstants, gaussian_rule, hermite_projections
from ..theory.rf_model import RFModel
from ..theory.schedules import ou_sigma_t

__all__ = ["GEPMatrices", "TrueFeatureMatrices", "gep_matrices", "gep_eigenvalues", "true_feature_matrices",
           "eigenvalues", "gram_factor", "population_matrix"]


class _Sized:
    """``n, p, d, t, seed, constants, cov_eigs`` of the model the matrices were drawn for."""

    @property
    def n(self) -> int:
        return self.model.n

    @property
    def p(self) -> int:
        return self.model.p

    @property
    def d(self) -> int:
        return self.model.d

    @property
    def t(self) -> float:
        return self.model.t

    @property
    def constants(self) -> GEPConstants:
        return self.model.constants

    @property
    def cov_eigs(self) -> np.ndarray:
        """Eigenvalues of the (diagonal) data covariance ``Sigma``."""
        return self.model.cov_eigs


@dataclass(frozen=True)
class GEPMatrices(_Sized):
    """Gaussian-equivalent matrices of one seeded draw (docs/theory/random_features.md §3).

    Attributes
    ----------
    model : RFModel
        The model (sizes ``n, p, d``, ``t``, ``seed``, ``constants`` and ``cov_eigs`` are its properties).
    W_bar, X, Omega, G : ndarray
        ``W / sqrt(d)`` (p x d), data (d x n), feature noise (p x n), ``e^{-t} a_t W_bar X + v_t Omega``.
    K, U, U_tilde : ndarray (p x p) or None
        ``W_bar W_bar^T``, ``U_GEP``, ``U~_GEP``; ``None`` when built with ``dense=False`` (use
        :func:`gep_eigenvalues`, which never forms them).
    V, V_tilde : ndarray (p x d)
        ``b_t W_bar`` (both).
    """

    model: RFModel
    W_bar: np.ndarray = field(repr=False)
    X: np.ndarray = field(repr=False)
    Omega: np.ndarray = field(repr=False)
    G: np.ndarray = field(repr=False)
    K: np.ndarray | None = field(repr=False)
    U: np.ndarray | None = field(repr=False)
    U_tilde: np.ndarray | None = field(repr=False)
    V: np.ndarray = field(repr=False)
    V_tilde: np.ndarray = field(repr=False)


@dataclass(frozen=True)
class TrueFeatureMatrices(_Sized):
    """True random-features matrices of the real activation at finite ``d`` (docs/theory/random_features.md §3).

    Attributes
    ----------
    model : RFModel
        The model; ``constants.effective_activation()`` is the activation used (centred when ``center``).
    W_bar, X : ndarray
        The same draws as :func:`gep_matrices` with the same seed.
    U, U_tilde : ndarray (p x p)
        ``(1/n) sum_nu E_xi[phi phi^T]`` and its population version ``E_{y ~ P_t}[...]``.
    V, V_tilde : ndarray (p x d)
    diagnostics : dict
        ``method`` (``"mehler"`` or ``"monte_carlo"``), ``k_max`` (Mehler order used for ``U`` and
        ``U~``), ``truncation`` (bound on the first dropped term), ``n_noise`` (Monte Carlo draws).
    """

    model: RFModel
    W_bar: np.ndarray = field(repr=False)
    X: np.ndarray = field(repr=False)
    U: np.ndarray = field(repr=False)
    U_tilde: np.ndarray = field(repr=False)
    V: np.ndarray = field(repr=False)
    V_tilde: np.ndarray = field(repr=False)
    diagnostics: dict = field(default_factory=dict, repr=False)


def _draws(model: RFModel):
    """``W_bar`` (p x d) and the data ``X`` (d x n), then the generator (for ``Omega``, noise)."""
    if not isinstance(model, RFModel):
        raise TypeError(f"model must be an RFModel (got {type(model).__name__}); e.g. "
                        f"RFModel.from_sizes(n=40, p=160, d=20, t=0.1)")
    n, p, d = model.sizes()
    # the smallest finite-size route holds W (p x d), X (d x n) and the p x n feature matrix
    checks.memory(f"the finite-size model with psi_p={model.psi_p:g}, psi_n={model.psi_n:g}, d={d} "
                  f"(p*(n + d) + d*n = {p * (n + d) + d * n:.3g} float64 entries)", 8.0 * (p * (n + d) + d * n))
    cov = model.cov_eigs
    model.constants  # noqa: B018 - validates the activation (mu0, centring) before any draw
    rng = np.random.default_rng(model.seed)
    W = rng.standard_normal((p, d))
    X = rng.standard_normal((d, n)) * np.sqrt(cov)[:, None]
    return rng, W / math.sqrt(d), X


def population_matrix(c: GEPConstants, A, sigma_t) -> np.ndarray:
    """``(mu1^2/Gamma_t^2) A diag(Sigma_t) A^T + (||sigma||^2 - mu1^2) I``: the Gaussian-equivalent ``U~``
    (arXiv:2505.17638 SM eq 85, with the ``1/Gamma_t^2`` of correction 7 of docs/theory/random_features.md §8)
    for ``A = W_bar``, or ``Q^T U~ Q`` for ``A = Q^T W_bar``; ``sigma_t`` holds the eigenvalues of ``Sigma_t``."""
    A = np.asarray(A, dtype=np.float64)
    out = (c.mu1 ** 2 / c.gamma2) * (A * sigma_t) @ A.T
    out[np.diag_indices_from(out)] += c.norm2 - c.mu1 ** 2
    return out


def gram_factor(mats: "GEPMatrices") -> np.ndarray:
    """``Z = [G / sqrt(n), b_t W_bar]`` (p x (n + d)) with ``U_GEP = Z Z^T + s_t^2 I`` (SM Lemma C.1)."""
    return np.concatenate([mats.G / math.sqrt(mats.n), mats.constants.b_t * mats.W_bar], axis=1)


def gep_matrices(model: RFModel, *, dense=True) -> GEPMatrices:
    """Seeded Gaussian-equivalent ``U``, ``U~``, ``V``, ``V~`` (arXiv:2505.17638 SM Lemma C.1, eq 85).

    Parameters
    ----------
    model : RFModel
        Sizes ``n = round(psi_n d)``, ``p = round(psi_p d)``, ``d``; time, activation, data covariance;
        ``W``, ``X``, ``Omega`` are drawn in that order from ``default_rng(model.seed)``.
    dense : bool, default True
        Form the ``p x p`` matrices ``K``, ``U``, ``U~``.  ``False`` keeps only the factors
        (``O((n + d) p)`` memory); :func:`gep_eigenvalues` works either way.

    Returns
    -------
    GEPMatrices

    Examples
    --------
    >>> m = gep_matrices(RFModel.from_sizes(40, 160, 20, 0.1, seed=1))
    >>> bool(np.allclose(m.U, m.U.T)), m.U.shape
    (True, (160, 160))
    """
    dense = checks.boolean("dense", dense)
    if isinstance(model, RFModel) and dense and model.n >= 1 and model.p >= 1:
        checks.memory(f"gep_matrices(dense=True) with p = {model.p} (psi_p={model.psi_p:g}, d={model.d}; three p x p "
                      f"matrices; dense=False keeps only "
                      f"the p x (n + d) factors)", 24.0 * model.p * model.p)
    rng, W_bar, X = _draws(model)
    n, p = model.n, model.p
    c = model.constants
    Omega = rng.standard_normal((p, n))
    G = math.exp(-model.t) * c.a_t * (W_bar @ X) + c.v_t * Omega
    V = c.b_t * W_bar
    K = U = U_tilde = None
    if dense:
        K = W_bar @ W_bar.T
        U = G @ G.T / n + c.b_t ** 2 * K
        U[np.diag_indices(p)] += c.s_t2
        U_tilde = population_matrix(c, W_bar, ou_sigma_t(model.t, model.cov_eigs))
    return GEPMatrices(model=model, W_bar=W_bar, X=X, Omega=Omega, G=G, K=K, U=U, U_tilde=U_tilde, V=V,
                       V_tilde=V.copy())


def gep_eigenvalues(mats: GEPMatrices) -> np.ndarray:
    """All ``p`` eigenvalues of ``U_GEP`` (ascending), without forming the ``p x p`` matrix when ``p > n + d``.

    ``U_GEP - s_t^2 I = Z Z^T`` with ``Z`` = :func:`gram_factor` (``p x (n + d)``).  Its non-zero
    eigenvalues are those of the ``(n + d) x (n + d)`` Gram matrix ``Z^T Z``; the other
    ``p - n - d`` eigenvalues equal ``s_t^2`` exactly (the delta peak, docs/theory/random_features.md §4).
    Cost ``O(p (n + d)^2 + (n + d)^3)`` instead of ``O(p^3)``.
    """
    if not isinstance(mats, GEPMatrices):
        raise TypeError(f"mats must be a GEPMatrices from gep_matrices (got {type(mats).__name__})")
    Z = gram_factor(mats)
    p, k = Z.shape
    if p > k:
        ev = np.linalg.eigvalsh(Z.T @ Z)
        ev = np.concatenate([np.zeros(p - k), np.maximum(ev, 0.0)])
    else:
        ev = np.maximum(np.linalg.eigvalsh(Z @ Z.T), 0.0)
    return np.sort(ev + mats.constants.s_t2)


def eigenvalues(U) -> np.ndarray:
    """Ascending eigenvalues of a symmetric matrix (``numpy.linalg.eigvalsh``), for histograms."""
    U = checks.finite_array("U", U)
    if U.ndim != 2 or U.shape[0] != U.shape[1]:
        raise ValueError(f"U must be a square matrix (got shape {U.shape})")
    return np.linalg.eigvalsh(U)


def _hermite_table(act: Activation, means: np.ndarray, scale: np.ndarray, k_max: int, n_nodes: int):
    """``h[k, ...] = E[sigma(mean + scale z) He_k(z)] / sqrt(k!)`` for ``k <= k_max`` and the second moment."""
    shape = means.shape
    m = means.reshape(-1)
    sc = np.broadcast_to(scale, shape).reshape(-1)
    out = np.empty((k_max + 1, m.size))
    m2 = np.empty(m.size)
    chunk = max(1, 2_000_000 // (n_nodes * (1 + len(act.kinks))))
    for lo in range(0, m.size, chunk):
        sl = slice(lo, lo + chunk)
        z, w = gaussian_rule(act, m[sl], sc[sl], n_nodes)   # split at z = (kink - mean) / scale
        s = act(m[sl, None] + sc[sl, None] * z)
        m2[sl] = (w * s * s).sum(axis=1)
        out[:, sl] = hermite_projections(z, w, s, k_max)
    return out.reshape((k_max + 1,) + shape), m2.reshape(shape)


def _mehler(H: np.ndarray, m2: np.ndarray, rho: np.ndarray, tol: float):
    """``sum_k rho^{.k} * (H_k H_k^T / n)`` with the exact diagonal ``mean_nu m2``.

    Truncation bound after order ``k`` (Cauchy-Schwarz and Parseval): every dropped entry is at most
    ``max|rho_offdiag|^(k+1) * max_i mean_nu (m2 - sum_{j<=k} h_j^2)``, the exact remaining Hermite
    energy; the series stops once that is below ``tol``.
    """
    k_max = H.shape[0] - 1
    n = H.shape[2]
    off = rho.copy()
    np.fill_diagonal(off, 0.0)
    rmax = float(np.max(np.abs(off))) if off.size > 1 else 0.0
    out = np.zeros_like(rho)
    power = np.ones_like(rho)
    energy = m2.copy()
    bound = float("inf")
    used = k_max
    for k in range(k_max + 1):
        Hk = H[k]
        out += power * (Hk @ Hk.T) / n
        power = power * off
        energy -= Hk * Hk
        bound = rmax ** (k + 1) * max(float(np.max(energy.mean(axis=1))), 0.0)
        if bound < tol:
            used = k
            break
    np.fill_diagonal(out, m2.mean(axis=1))
    return out, used, bound


def true_feature_matrices(model: RFModel, *, method="mehler", n_noise=1000, k_max=30, n_nodes=48,
                          tol=1e-12) -> TrueFeatureMatrices:
    """True random-features ``U``, ``U~``, ``V``, ``V~`` of the real activation at finite ``d``
    (docs/theory/random_features.md §3).

    ``phi^nu = sigma(W_bar x_t^nu)`` with ``x_t = e^{-t} x + sqrt(Delta_t) xi``;
    ``U = (1/n) sum_nu E_xi[phi^nu phi^nu^T]``, ``V = (1/n) sum_nu E_xi[phi^nu xi^T]`` and the population
    versions over ``y ~ P_t`` (arXiv:2505.17638 MT eqs 9-11).

    Parameters
    ----------
    model : RFModel
        As in :func:`gep_matrices`; the same model gives the same ``W`` and ``X``.
    method : {"mehler", "monte_carlo"}
        ``"mehler"``: exact noise average.  Pre-activations ``m_i + sqrt(Delta_t K_ii) z`` with
        ``m_i = e^{-t} W_bar_i . x``; for ``i != j`` their noise correlation is ``rho_ij = K_ij /
        sqrt(K_ii K_jj)`` and ``U_ij = sum_k rho_ij^k / k! (1/n) sum_nu h_k(i,nu) h_k(j,nu)`` with
        ``h_k = E[sigma(m + s z) He_k(z)]`` (Gauss-Hermite, ``n_nodes`` nodes, split at kinks);
        ``U_ii`` is a 1-D integral; ``V = sqrt(Delta_t) diag(c) W_bar`` with
        ``c_i = (1/n) sum_nu E sigma'(...)`` (Stein).  ``U~``, ``V~`` likewise with
        ``h ~ N(0, W_bar Sigma_t W_bar^T)``.
        ``"monte_carlo"``: ``n_noise`` fresh noise draws per training point for ``U``, ``V`` and
        ``n n_noise`` fresh points of ``P_t`` for ``U~``, ``V~`` (drawn after ``W``, ``X``).
    n_noise : int, default 1000
        ``"monte_carlo"`` only (``1 .. 10**7``; ``"mehler"`` rejects another value).
    k_max : int, default 30
        Largest Mehler order (``1 .. 1000``); the series stops earlier once ``max|rho|^k max_i mean_nu h_k^2 <
        tol``.  ``k_max``, ``n_nodes`` and ``tol`` are ``"mehler"`` only (``"monte_carlo"`` rejects other values).
    n_nodes : int, default 48
        Gauss-Hermite nodes (``8 .. 10000``, above ``k_max``).
    tol : float, default 1e-12

    Returns
    -------
    TrueFeatureMatrices

    Notes
    -----
    Cost (Mehler): ``O(p n n_nodes)`` activation calls plus ``k`` GEMMs of ``O(p^2 n)``; at ``d = 100``,
    ``t >= 0.01`` the series stops after about 8-12 terms.
    """
    method = checks.choice("method", method, ("mehler", "monte_carlo"))
    k_max = checks.positive_int("k_max", k_max, minimum=1, maximum=1000)
    n_nodes = checks.positive_int("n_nodes", n_nodes, minimum=8, maximum=10_000)
    n_noise = checks.positive_int("n_noise", n_noise, maximum=10 ** 7)
    if method == "mehler" and n_nodes <= k_max:
        raise ValueError(f"n_nodes must exceed k_max so the quadrature keeps He_0..He_k_max orthonormal "
                         f"(got n_nodes={n_nodes}, k_max={k_max})")
    tol = checks.positive_float("tol", tol)
    if method == "mehler":
        checks.ignored("n_noise", n_noise, 1000, reason="it is the number of draws of method='monte_carlo'")
    else:
        for name, value, default in (("k_max", k_max, 30), ("n_nodes", n_nodes, 48), ("tol", tol, 1e-12)):
            checks.ignored(name, value, default, reason="it sets the Mehler series of method='mehler'")
    if isinstance(model, RFModel) and model.n >= 1 and model.p >= 1:
        checks.memory(f"true_feature_matrices with p = {model.p}, n = {model.n} (psi_p={model.psi_p:g}, "
                      f"psi_n={model.psi_n:g}, d={model.d}; p x p matrices and a "
                      f"(k_max + 1) x p x n Hermite table)", 8.0 * model.p * (4 * model.p + (k_max + 2) * model.n))
    rng, W_bar, X = _draws(model)
    n, p, d, t = model.n, model.p, model.d, model.t
    c, cov = model.constants, model.cov_eigs
    act = c.effective_activation()
    delta = c.delta_t
    K = W_bar @ W_bar.T
    kdiag = np.diag(K).copy()
    sigma_t = ou_sigma_t(t, cov)
    C = (W_bar * sigma_t) @ W_bar.T
    cdiag = np.diag(C).copy()
    diag = {"method": method}
    if method == "mehler":
        means = math.exp(-t) * (W_bar @ X)                                     # (p, n)
        s_noise = np.sqrt(delta * kdiag)[:, None]
        H, m2 = _hermite_table(act, means, s_noise, k_max, n_nodes)
        rho = K / np.sqrt(np.outer(kdiag, kdiag))
        U, k_u, b_u = _mehler(H, m2, rho, tol)
        V = math.sqrt(delta) * (H[1].mean(axis=1) / s_noise[:, 0])[:, None] * W_bar
        Hp, m2p = _hermite_table(act, np.zeros((p, 1)), np.sqrt(cdiag)[:, None], k_max, n_nodes)
        rho_p = C / np.sqrt(np.outer(cdiag, cdiag))
        U_tilde, k_p, b_p = _mehler(Hp, m2p, rho_p, tol)
        # E[sigma(h_i) xi] = sqrt(Delta_t) W_bar_i^T E sigma'(h_i), E sigma'(h) = E[sigma(sqrt(C) z) z] / sqrt(C)
        V_tilde = math.sqrt(delta) * (Hp[1, :, 0] / np.sqrt(cdiag))[:, None] * W_bar
        diag.update(k_max=max(k_u, k_p), truncation=max(b_u, b_p))
        if max(b_u, b_p) > tol:
            warnings.warn(f"true_feature_matrices: Mehler series not converged at k_max={k_max} (entries may be off "
                          f"by up to {max(b_u, b_p):.2e} > tol={tol:.0e}; feature correlations reach "
                          f"{float(np.max(np.abs(rho - np.eye(p)))):.2f} at d={d}, and fall as 1/sqrt(d)); a larger d "
                          f"converges faster; true_feature_matrices also takes a larger k_max (with n_nodes > k_max) "
                          f"or method='monte_carlo'", checks.MemlabValidityWarning, stacklevel=2)
    else:
        U = np.zeros((p, p))
        V = np.zeros((p, d))
        U_tilde = np.zeros((p, p))
        V_tilde = np.zeros((p, d))
        sq = math.sqrt(delta)
        for _ in range(n_noise):
            xi = rng.standard_normal((d, n))
            phi = act(W_bar @ (math.exp(-t) * X + sq * xi))
            U += phi @ phi.T
            V += phi @ xi.T
        for _ in range(n_noise):
            x = rng.standard_normal((d, n)) * np.sqrt(cov)[:, None]
            xi = rng.standard_normal((d, n))
            phi = act(W_bar @ (math.exp(-t) * x + sq * xi))
            U_tilde += phi @ phi.T
            V_tilde += phi @ xi.T
        U /= n * n_noise
        V /= n * n_noise
        U_tilde /= n * n_noise
        V_tilde /= n * n_noise
        diag.update(n_noise=n_noise)
    return TrueFeatureMatrices(model=model, W_bar=W_bar, X=X, U=U, U_tilde=U_tilde, V=V, V_tilde=V_tilde,
                               diagnostics=diag)
