"""Gaussian-equivalence constants of the random-features score model (arXiv:2505.17638 MT eqs 12-14,
SM C.1-C.3 eqs 41, 48; docs/theory/random_features.md §3).

With ``u, v, z ~ N(0, 1)`` i.i.d., ``alpha = e^{-t} sigma_x``, ``beta_t = sqrt(Delta_t)``,
``Delta_t = 1 - e^{-2t}`` and ``Gamma_t^2 = e^{-2t} sigma_x^2 + Delta_t``::

    ||sigma||^2 = E sigma(Gamma_t z)^2           mu1 = E[sigma(Gamma_t z) z]
    a_t = mu1 / Gamma_t                          b_t = sqrt(Delta_t) mu1 / Gamma_t      (Stein)
    v_t^2 = E_u[sigma_0(alpha u)^2] - a_t^2 alpha^2,   sigma_0(eta) = E_v sigma(eta + beta_t v)
    s_t^2 = ||sigma||^2 - a_t^2 alpha^2 - v_t^2 - b_t^2

Expectations use probabilists' Gauss-Hermite quadrature (1-D, and nested 2-D for ``sigma_0``).  For
activations with kinks the real line is split at the kinks and each piece integrated by
Gauss-Legendre against the normal density.  The node count doubles until two successive rules agree
to ``1e-13`` (relative to ``||sigma||^2``); the difference is reported as ``quad_error``.

Activations with ``mu0 = E sigma(Gamma_t z) != 0`` (relu, gelu) are outside the theory (docs/theory/random_features.md §1):
``gep_constants`` rejects them unless ``center=True``, which uses ``sigma(h) - mu0(t)`` everywhere.
"""

from __future__ import annotations

import functools
import math
import warnings
from dataclasses import dataclass, field

import numpy as np
from threadpoolctl import threadpool_limits

from . import checks
from .activations import Activation, resolve_activation
from .schedules import ou_delta, ou_gamma2

__all__ = ["GEPConstants", "gaussian_rule", "gep_constants", "hermite_coefficients", "hermite_projections",
           "v_s_from_hermite"]

_TRUNC = 12.0          # |z| beyond which the normal density (< 2e-32) is dropped on kinked pieces
_N_START = 96          # first rule of the adaptive doubling
_N_MAX = 3072          # last rule; beyond it a MemlabValidityWarning reports quad_error
_REL_TOL = 1e-13
_RAISE_TOL = 1e-3      # an adaptive rule that ends above this relative error returns no constants (ValueError)
#: moments whose convergence the rule checks: all but E[sigma u]/alpha, the a_t_integral diagnostic, which divides
#: by alpha = e^{-t} sigma_x and loses every digit at large t for kinked activations without touching a constant
_CONVERGED = np.array([0, 1, 2, 3, 5])
_N_NODES_MAX = 20_000  # a fixed rule: the nested 2-D rule holds n^2 values (3.2 GB at 20,000)
#: Range of the data scale sigma_x (here and in RFModel): outside it the Gaussian moments of a saturating
#: activation are no longer resolved by any quadrature rule (sigma_x^2 = 1e16 against an activation that varies
#: on the scale 1).
SIGMA_X_MIN, SIGMA_X_MAX = 1e-8, 1e8


@dataclass(frozen=True)
class GEPConstants:
    """Gaussian-equivalence constants at one diffusion time (arXiv:2505.17638 MT eqs 12-14).

    Attributes
    ----------
    t, sigma_x : float
        Diffusion time (OU, ``x_t = e^{-t} x_0 + sqrt(Delta_t) xi``) and data scale (``Tr Sigma / d``
        ``= sigma_x^2``).
    activation : str
        Name of the activation.
    center : bool
        Whether ``sigma(h) - mu0(t)`` is used (docs/theory/random_features.md §1).
    delta_t, gamma2, alpha : float
        ``1 - e^{-2t}``, ``Gamma_t^2 = e^{-2t} sigma_x^2 + Delta_t``, ``e^{-t} sigma_x``.
    mu0 : float
        ``E sigma(Gamma_t z)`` of the *uncentred* activation.
    norm2, mu1, mustar2 : float
        ``||sigma||^2``, ``mu1``, ``mu*^2 = ||sigma||^2 - mu1^2`` (of the centred activation when
        ``center``).
    a_t, b_t : float
        ``mu1 / Gamma_t`` and ``sqrt(Delta_t) mu1 / Gamma_t`` (Stein identities, docs/theory/random_features.md §3).
    v_t2, s_t2 : float
        ``v_t^2`` and ``s_t^2`` (MT eq 14).
    a_t_integral, b_t_integral : float
        ``E[sigma(alpha u + beta_t v) u] / alpha`` and ``E[v sigma(alpha u + beta_t v)]`` by the nested
        2-D rule -- the defining integrals, kept as a diagnostic of the Stein identities.
    n_nodes : int
        Nodes per dimension of the rule that produced the values.
    quad_error : float
        Largest change of any moment that enters the constants between this rule and the rule with half
        (adaptive) or twice (fixed ``n_nodes``) the nodes (the ``a_t_integral`` diagnostic is not included).
    activation_def : Activation
        The (uncentred) activation with its kinks and backend names.
    """

    t: float
    sigma_x: float
    activation: str
    center: bool
    delta_t: float
    gamma2: float
    alpha: float
    mu0: float
    norm2: float
    mu1: float
    mustar2: float
    a_t: float
    b_t: float
    v_t2: float
    s_t2: float
    a_t_integral: float
    b_t_integral: float
    n_nodes: int
    quad_error: float
    activation_def: Activation = field(repr=False, compare=False, default=None)

    @property
    def gamma(self) -> float:
        """``Gamma_t``."""
        return math.sqrt(self.gamma2)

    @property
    def v_t(self) -> float:
        """``v_t = sqrt(v_t^2)``."""
        return math.sqrt(max(self.v_t2, 0.0))

    @property
    def shift(self) -> float:
        """What every layer subtracts from the activation: ``mu0(t)`` with ``center``, else 0."""
        return float(self.mu0) if self.center else 0.0

    def effective_activation(self) -> Activation:
        """The activation every layer must use, ``sigma`` or, with ``center``, ``sigma - mu0(t)``, as an
        :class:`Activation` with the same kinks (numba and PyTorch backends subtract :attr:`shift`)."""
        act = self.activation_def
        if not self.center:
            return act
        mu0 = self.mu0

        def centred(x, _f=act.func, _m=mu0):
            return np.asarray(_f(x), dtype=np.float64) - _m

        centred.__name__ = f"{act.name}_centred"
        return Activation(centred.__name__, centred, act.kinks, act.odd, act.kernel_code, act.torch_op)

    def activation_function(self):
        """The callable of :meth:`effective_activation`."""
        return self.effective_activation().func


def _log_orthonormal_hermite(z, n):
    """(log|p_n(z)|, p_{n-1}(z)/p_n(z)) for the orthonormal probabilists' Hermite polynomials
    p_k = He_k/sqrt(k!), by their three-term recurrence with rescaling (no overflow for |z| up to ~60)."""
    p_prev, p, log_scale = np.zeros_like(z), np.ones_like(z), np.zeros_like(z)
    for k in range(n):
        p_prev, p = p, (z * p - math.sqrt(k) * p_prev) / math.sqrt(k + 1)
        big = np.abs(p) > 1e150
        if np.any(big):
            p_prev[big] *= 1e-150
            p[big] *= 1e-150
            log_scale[big] += 150 * math.log(10.0)
    return np.log(np.abs(p)) + log_scale, p_prev / p


@functools.lru_cache(maxsize=16)
def _gauss_hermite(n: int):
    """Probabilists' Gauss-Hermite rule normalised to weight 1.

    Up to n = 512 with numpy only (so a quick prediction does not load scipy.special): Golub-Welsch nodes
    (eigenvalues of the Jacobi matrix with off-diagonal sqrt(k), on one BLAS thread), one Newton step on p_n,
    and the weights
    w_i = 1/(n p_{n-1}(z_i)^2) from the scaled recurrence, accurate in relative terms also in the far tails
    (where the Hermite series of docs/theory/random_features.md §3 multiplies them by He_k(z_i)^2).  Agrees with
    scipy's rule to 1e-13 relative in every weight.  scipy's asymptotic rule beyond n = 512."""
    if n > 512:
        from scipy import special

        z, w = special.roots_hermitenorm(n)
        return z, w / w.sum()
    k = np.sqrt(np.arange(1.0, n))
    # a small LAPACK call on one BLAS thread: OpenBLAS's threads would spin against other work on a busy machine
    # for a call that takes about a millisecond (the thread policy's "small work runs serially")
    with threadpool_limits(1, user_api="blas"):
        z = np.linalg.eigvalsh(np.diag(k, 1) + np.diag(k, -1))
    z = 0.5 * (z - z[::-1])                          # the rule is symmetric
    _, ratio = _log_orthonormal_hermite(z, n)        # p_n' = sqrt(n) p_{n-1}: Newton step dz = p_n/p_n'
    z = z - 1.0 / (math.sqrt(n) * ratio)
    z = 0.5 * (z - z[::-1])
    log_pn1, _ = _log_orthonormal_hermite(z, n - 1)
    w = np.exp(-math.log(n) - 2.0 * log_pn1)
    w = 0.5 * (w + w[::-1])
    return z, w / w.sum()


@functools.lru_cache(maxsize=16)
def _gauss_legendre(n: int):
    return np.polynomial.legendre.leggauss(n)


def gaussian_rule(act: Activation, eta, beta, n: int):
    """Nodes ``v`` (shape (m, N)) and weights ``w`` (same shape) with ``sum w g(v) ~ E_v g(v)`` for
    integrands ``g`` smooth between the kinks of ``sigma(eta_i + beta_i v)`` (``beta`` scalar or
    broadcastable to ``eta``).

    Without kinks: probabilists' Gauss-Hermite with ``n`` nodes (the same for every ``eta_i``).  With
    kinks: ``[-12, 12]`` split at ``(kink - eta_i) / beta``, ``n`` Gauss-Legendre nodes per piece,
    weighted by the normal density (the mass beyond ``|v| = 12`` is below ``2e-32``).
    """
    eta = np.atleast_1d(np.asarray(eta, dtype=np.float64))
    m = eta.size
    if not act.kinks:
        z, w = _gauss_hermite(n)
        return np.broadcast_to(z, (m, n)), np.broadcast_to(w, (m, n))
    x, gw = _gauss_legendre(n)
    beta = np.broadcast_to(np.asarray(beta, dtype=np.float64), eta.shape)
    br = (np.asarray(act.kinks, dtype=np.float64)[None, :] - eta[:, None]) / beta[:, None]
    br = np.sort(np.clip(br, -_TRUNC, _TRUNC), axis=1)
    edges = np.concatenate([np.full((m, 1), -_TRUNC), br, np.full((m, 1), _TRUNC)], axis=1)
    a, b = edges[:, :-1, None], edges[:, 1:, None]
    half = 0.5 * (b - a)
    v = 0.5 * (a + b) + half * x[None, None, :]
    w = half * gw[None, None, :] * np.exp(-0.5 * v * v) / math.sqrt(2.0 * math.pi)
    return v.reshape(m, -1), w.reshape(m, -1)


def _moments(act: Activation, t: float, sigma_x: float, n: int) -> np.ndarray:
    """``[mu0, E sigma^2, mu1, E sigma_0^2, E[sigma u]/alpha, E[v sigma]]`` with ``n`` nodes/dimension."""
    gamma = math.sqrt(ou_gamma2(t, sigma_x))
    alpha, beta = math.exp(-t) * sigma_x, math.sqrt(ou_delta(t))
    # 1-D: h = Gamma z
    z, w = gaussian_rule(act, np.zeros(1), gamma, n)
    s = act(gamma * z)
    mu0, m2, mu1 = float((w * s).sum()), float((w * s * s).sum()), float((w * s * z).sum())
    # nested 2-D: sigma_0 is smooth for beta > 0 but varies on the scale beta/alpha around a kink,
    # so the outer rule in u is split at the kinks as well (u = kink/alpha)
    u, wu = gaussian_rule(act, np.zeros(1), alpha, n)
    u, wu = u[0], wu[0]
    eta = alpha * u
    v, wv = gaussian_rule(act, eta, beta, n)
    sv = act(eta[:, None] + beta * v)
    sig0 = (wv * sv).sum(axis=1)                 # sigma_0(alpha u_i)
    vsig = (wv * sv * v).sum(axis=1)             # E_v[v sigma(alpha u_i + beta v)]
    es0 = float(wu @ (sig0 * sig0))
    a_int = float(wu @ (sig0 * u)) / alpha
    b_int = float(wu @ vsig)
    return np.array([mu0, m2, mu1, es0, a_int, b_int])


def gep_constants(t, *, activation="tanh", sigma_x=1.0, center=False, n_nodes=None) -> GEPConstants:
    """Gaussian-equivalence constants ``Gamma_t, ||sigma||^2, mu1, a_t, b_t, v_t^2, s_t^2``.

    Parameters
    ----------
    t : float
        Diffusion time in ``(0, 50]`` (OU process, docs/theory/random_features.md §1; beyond t = 18 every
        constant equals its t = infinity value to float64).
    activation : str, Activation or callable, default "tanh"
        ``tanh``, ``erf``, ``relu``, ``gelu`` or a vectorised callable.
    sigma_x : float, default 1.0
        Data scale, ``sigma_x^2 = Tr Sigma / d``, in ``[1e-8, 1e8]``.
    center : bool, default False
        Use ``sigma(h) - mu0(t)``; required when ``mu0 != 0`` (relu, gelu; docs/theory/random_features.md §1).
    n_nodes : int, optional
        Fixed nodes per dimension (``>= 20``).  Default: adaptive doubling from 96 to 3072 until two
        rules agree to ``1e-13 * max(1, ||sigma||^2)``.

    Returns
    -------
    GEPConstants

    Raises
    ------
    ValueError
        ``t`` outside ``(0, 50]``, ``sigma_x`` outside ``[1e-8, 1e8]``, ``n_nodes`` outside ``[20, 20000]``,
        unknown activation, or
        ``mu0 != 0`` without ``center=True``.
    TypeError
        ``center`` not a bool; a number of the wrong type.

    Warns
    -----
    MemlabValidityWarning
        The adaptive rule did not reach its tolerance (``quad_error`` says how far it got); beyond a relative
        ``1e-3`` it raises a ``ValueError`` instead (no constants with fewer than three correct digits).

    Notes
    -----
    ``a_t`` and ``b_t`` are evaluated by the Stein identities ``mu1/Gamma_t`` and
    ``sqrt(Delta_t) mu1/Gamma_t`` (the defining integral divides by ``alpha`` and is ill-conditioned
    for small ``alpha``); the integrals are kept in ``a_t_integral`` / ``b_t_integral``.  Cost: one
    nested ``n x n`` evaluation per rule, milliseconds.

    References
    ----------
    arXiv:2505.17638, MT eqs 12-14; SM eqs 41, 48.

    Examples
    --------
    >>> c = gep_constants(0.1)
    >>> round(c.mu1, 4), round(c.norm2, 4), round(c.mustar2, 4)
    (0.6057, 0.3943, 0.0274)
    """
    t = checks.ou_time("t", t)
    sigma_x = checks.real("sigma_x", sigma_x, low=SIGMA_X_MIN, high=SIGMA_X_MAX)
    center = checks.boolean("center", center)
    act = resolve_activation(activation)
    if n_nodes is not None:
        n_nodes = checks.positive_int("n_nodes", n_nodes, minimum=20, maximum=_N_NODES_MAX)

    with np.errstate(over="ignore", under="ignore"):
        if n_nodes is None:
            n = _N_START
            prev = _moments(act, t, sigma_x, n)
            while True:
                n *= 2
                cur = _moments(act, t, sigma_x, n)
                err = float(np.max(np.abs(cur - prev)[_CONVERGED]))
                if err <= _REL_TOL * max(1.0, abs(cur[1])) or n >= _N_MAX:
                    break
                prev = cur
            mom = cur
        else:
            n = n_nodes
            mom = _moments(act, t, sigma_x, n)
            err = float(np.max(np.abs(_moments(act, t, sigma_x, 2 * n) - mom)[_CONVERGED]))
    if not np.all(np.isfinite(mom)):
        raise ValueError(f"activation={act.name!r} gives non-finite Gaussian moments at t={t}, sigma_x={sigma_x}: "
                         f"{mom.tolist()}; the activation must be square-integrable against a Gaussian")
    if n_nodes is None and err > _RAISE_TOL * max(1.0, abs(mom[1])):
        raise ValueError(f"gep_constants: no quadrature rule up to {n} nodes resolves activation={act.name!r} at "
                         f"t={t}, sigma_x={sigma_x} (quad_error={err:.2e}: fewer than three correct digits); if the "
                         f"activation has kinks, declare them with memlab.theory.activations.Activation(kinks=...), "
                         f"otherwise bring sigma_x closer to the activation's scale")
    if n_nodes is None and err > _REL_TOL * max(1.0, abs(mom[1])):
        warnings.warn(f"gep_constants: quadrature for activation={act.name!r} at t={t}, sigma_x={sigma_x} reached "
                      f"only quad_error={err:.2e} with {n} nodes (target {_REL_TOL:.0e}); if the activation has "
                      f"kinks, declare them with memlab.theory.activations.Activation(kinks=...)",
                      checks.MemlabValidityWarning, stacklevel=2)
    mu0, m2, mu1, es0, a_int, b_int = (float(x) for x in mom)

    delta = ou_delta(t)
    gamma2 = ou_gamma2(t, sigma_x)
    gamma = math.sqrt(gamma2)
    alpha = math.exp(-t) * sigma_x
    rms = math.sqrt(max(m2, 0.0))
    if abs(mu0) > 1e-8 * max(rms, 1e-300):
        if not center:
            raise ValueError(
                f"activation={act.name!r} has mu0 = E sigma(Gamma_t z) = {mu0:.6g} != 0 at t={t}, sigma_x={sigma_x}: "
                f"a non-zero mean adds about mu0^2 * 11^T to U, an outlier eigenvalue near p*mu0^2 that Theorem 3.1 "
                f"does not describe (docs/theory/random_features.md §1); pass center=True (CLI: --center) to use "
                f"sigma(h) - mu0(t)")
    if center:
        m2 -= mu0 * mu0
        es0 -= mu0 * mu0
    a_t = mu1 / gamma
    b_t = math.sqrt(delta) * mu1 / gamma
    v_t2 = es0 - a_t * a_t * alpha * alpha
    s_t2 = m2 - a_t * a_t * alpha * alpha - v_t2 - b_t * b_t
    # round-off can leave -1e-17 for (near-)linear activations; these are squares (Hermite form)
    tiny = 1e-14 * max(1.0, m2)
    if -tiny < v_t2 < 0.0:
        v_t2 = 0.0
    if -tiny < s_t2 < 0.0:
        s_t2 = 0.0
    return GEPConstants(t=t, sigma_x=sigma_x, activation=act.name, center=center, delta_t=delta, gamma2=gamma2,
                        alpha=alpha, mu0=mu0, norm2=m2, mu1=mu1, mustar2=m2 - mu1 * mu1, a_t=a_t, b_t=b_t,
                        v_t2=v_t2, s_t2=s_t2, a_t_integral=a_int, b_t_integral=b_int, n_nodes=int(n),
                        quad_error=err, activation_def=act)


def hermite_coefficients(t, *, activation="tanh", sigma_x=1.0, center=False, k_max=60, n_nodes=None) -> np.ndarray:
    """Normalised Hermite coefficients ``c_k / sqrt(k!)`` of ``sigma(Gamma_t z)``, ``k = 0..k_max``.

    ``sigma(Gamma_t z) = sum_k c_k / k! He_k(z)`` with ``c_k = E[sigma(Gamma_t z) He_k(z)]``, so
    ``c_0 = mu0`` (``0`` when ``center``) and ``c_1 = mu1`` (docs/theory/random_features.md §3).  Computed with
    the orthonormal recurrence ``h_{k+1} = (z h_k - sqrt(k) h_{k-1}) / sqrt(k+1)`` (no factorial
    overflow) on a rule with ``max(4 k_max, 400)`` nodes unless ``n_nodes`` is given.
    """
    t = checks.ou_time("t", t)
    sigma_x = checks.real("sigma_x", sigma_x, low=SIGMA_X_MIN, high=SIGMA_X_MAX)
    k_max = checks.positive_int("k_max", k_max, minimum=1, maximum=_N_NODES_MAX // 4)
    center = checks.boolean("center", center)
    act = resolve_activation(activation)
    n = (checks.positive_int("n_nodes", n_nodes, minimum=20, maximum=_N_NODES_MAX) if n_nodes is not None
         else max(4 * k_max, 400))
    gamma = math.sqrt(ou_gamma2(t, sigma_x))
    z, w = gaussian_rule(act, np.zeros(1), gamma, n)
    z, w = z[0], w[0]
    s = act(gamma * z)
    if center:
        s = s - float(w @ s)
    return hermite_projections(z, w, s, k_max)


def hermite_projections(z, w, s, k_max: int) -> np.ndarray:
    """``out[k, ...] = sum(w * s * h_k(z), axis=-1)`` for ``k = 0..k_max``, ``h_k = He_k / sqrt(k!)``.

    Orthonormal recurrence ``h_{k+1} = (z h_k - sqrt(k) h_{k-1}) / sqrt(k+1)`` (no factorial overflow);
    ``z``, ``w``, ``s`` are quadrature nodes, weights and integrand values with the nodes on the last axis.
    """
    z = np.asarray(z, dtype=np.float64)
    ws = np.asarray(w, dtype=np.float64) * np.asarray(s, dtype=np.float64)
    out = np.empty((k_max + 1,) + ws.shape[:-1])
    h_prev, h = np.zeros_like(z), np.ones_like(z)
    for k in range(k_max + 1):
        out[k] = (ws * h).sum(axis=-1)
        h_prev, h = h, (z * h - math.sqrt(k) * h_prev) / math.sqrt(k + 1)
    return out


def v_s_from_hermite(chat, rho2) -> tuple[float, float]:
    """``(v_t^2, s_t^2)`` from normalised Hermite coefficients (docs/theory/random_features.md §3).

    ``v_t^2 = sum_{k>=2} chat_k^2 rho^{2k}`` and ``s_t^2 = sum_{k>=2} chat_k^2 (1 - rho^{2k})`` with
    ``rho^2 = e^{-2t} sigma_x^2 / Gamma_t^2`` and ``chat_k = c_k / sqrt(k!)``.
    """
    chat = checks.real_array("chat", chat, ndim=1)
    rho2 = checks.real("rho2", rho2, low=0.0, high=1.0)
    k = np.arange(chat.size)
    pw = rho2 ** k
    c2 = chat[2:] ** 2
    return float(c2 @ pw[2:]), float(c2 @ (1.0 - pw[2:]))
