"""Predicted training timescales tau_gen, tau_mem and the threshold n* = p (arXiv:2505.17638 MT §3).

:func:`predict_timescales` combines the closed forms of :mod:`memlab.theory.timescales` (the paper's
``tau_mem`` from the first-bulk edge formula, the operational ``tau_gen``) with the solved spectrum
of Theorem 3.1 (``tau_mem_numeric`` from the memorization bulk).  Unit: ``tau = k eta / d^2``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from ..theory import _checks
from ..theory import timescales as ts
from ..theory.gep import GEPConstants, gep_constants
from .rf_spectrum import SpectrumResult, rf_spectrum

__all__ = ["TimescalesResult", "predict_timescales", "numeric_lambda_min"]


@dataclass(frozen=True)
class TimescalesResult:
    """Timescales of the random-features score model at one ``(n, p, d, t)``.

    Attributes
    ----------
    tau_mem : float
        ``psi_p / (Delta_t lambda_min)`` with ``lambda_min = s_t^2 + v_t^2 (1 - sqrt(psi_p/psi_n))^2``
        (the paper's definition, MT §3; spec 5.1).
    tau_mem_numeric : float or None
        ``psi_p / (Delta_t lambda_min_numeric)`` from the solved spectrum (``None`` with ``numeric=False``).
    tau_mem_limit : float
        ``psi_n / (Delta_t v_t^2)``, the ``psi_p >> psi_n`` limit (linear in ``n``).
    tau_gen : float
        ``psi_p / (Delta_t lambda2_mean)``, ``lambda2_mean = mu1^2 psi_p + ||sigma||^2 - mu1^2``
        (operational definition, spec 5.1; a package choice -- the paper only says O(1/Delta_t)).
    window : float
        ``tau_mem / tau_gen``.
    n_star : int
        ``p``: memorization phase only for ``n < p`` (MT §3, from GVM).
    regime : str
        ``"I"`` (``n < p``), ``"II"`` (``n > p``: no memorization phase; ``tau_mem`` is still the
        formula value) or ``"threshold"``.
    lambda_min, lambda_min_numeric, lambda2_mean : float
    units : str
        ``tau = k eta / d^2``.
    inputs : dict
        ``n, p, d, t, psi_n, psi_p, activation, sigma_x, center``.
    constants : GEPConstants
    diagnostics : dict
        ``warnings``, ``spectrum`` (bulks and masses when ``numeric``), ``message``.
    """

    tau_mem: float
    tau_mem_numeric: float | None
    tau_mem_limit: float
    tau_gen: float
    window: float
    n_star: int
    regime: str
    lambda_min: float
    lambda_min_numeric: float | None
    lambda2_mean: float
    units: str
    inputs: dict
    constants: GEPConstants = field(repr=False)
    diagnostics: dict = field(default_factory=dict, repr=False)


def numeric_lambda_min(spec: SpectrumResult) -> float:
    """``inf{lambda > s_t^2 : continuous mass of (s_t^2, lambda] >= 1/psi_p}`` (spec 5.1, package choice).

    Skips the small cluster of weight ``1/psi_p`` just above ``s_t^2`` and stays defined when the
    cluster merges with rho_1.  In regime II (``psi_n > psi_p``) it is the lower edge of rho_1.
    A separate cluster whose mass matches ``1/psi_p`` to 1e-4 (relative) is skipped whole, so the
    result is then the lower edge of the next bulk.
    """
    if not spec.bulks:
        raise ValueError("spectrum has no continuous bulk")
    if spec.psi_n >= spec.psi_p:
        return spec.bulks[0][0]
    target = 1.0 / spec.psi_p
    cum = 0.0
    for k, (a, b, m) in enumerate(spec.bulks):
        if cum + m <= target * (1 + 1e-4):
            cum += m
            if abs(cum - target) <= 1e-4 * target and k + 1 < len(spec.bulks):
                return spec.bulks[k + 1][0]
            continue
        if cum >= target * (1 - 1e-4):
            return a
        sel = (spec.nodes >= a) & (spec.nodes <= b)
        x = spec.nodes[sel]
        order = np.argsort(x)
        x = np.concatenate([[a], x[order]])
        cm = cum + np.concatenate([[0.0], np.cumsum(spec.weights[sel][order])])
        return float(np.interp(target, cm, x))
    raise ValueError("continuous mass never reaches 1/psi_p")


def predict_timescales(n, p, d, t, *, activation="tanh", sigma_x=1.0, center=False,
                       numeric=True) -> TimescalesResult:
    """Predicted ``tau_gen``, ``tau_mem``, their window and ``n* = p`` for a random-features score model.

    Parameters
    ----------
    n, p, d : int
        Training-set size, number of random features, data dimension (``psi_n = n/d``, ``psi_p = p/d``).
    t : float
        OU diffusion time (> 0) at which the model is trained.
    activation : str or callable
        ``"tanh"`` (default), ``"erf"``, ``"relu"``/``"gelu"`` with ``center=True``, or a vectorised callable.
    sigma_x : float
        Data standard deviation (``Sigma = sigma_x^2 I``).
    center : bool
        Subtract ``mu0(t)`` from the activation (spec 1.3).
    numeric : bool
        Also solve the spectrum (Theorem 3.1) for ``tau_mem_numeric`` (about 0.3 s).

    Returns
    -------
    TimescalesResult

    Notes
    -----
    ``tau_mem = psi_p/(Delta_t lambda_min)``, ``lambda_min = s_t^2 + v_t^2 (1 - sqrt(psi_p/psi_n))^2``;
    for ``psi_p >> psi_n``, ``tau_mem ~ psi_n/(Delta_t v_t^2)``, linear in ``n``.  Times are in the
    paper's unit ``tau = k eta / d^2``; a mode of eigenvalue ``lambda`` relaxes on ``psi_p/(Delta_t lambda)``
    (losses decay as ``exp(-4 Delta_t lambda tau / psi_p)``, spec correction 3).

    References
    ----------
    arXiv:2505.17638 MT §3 (Thm 3.2 and the text after it, corrected per spec 12.2), SM C.5 and D.

    Examples
    --------
    >>> r = predict_timescales(800, 6400, 100, 0.1, numeric=False)
    >>> r.regime, r.n_star, round(r.window, 1)
    ('I', 6400, 392.8)
    """
    n = _checks.positive_int("n", n)
    p = _checks.positive_int("p", p)
    d = _checks.positive_int("d", d)
    t = _checks.positive_float("t", t)
    if not isinstance(numeric, bool):
        raise TypeError(f"numeric must be True or False (got {numeric!r})")
    psi_n, psi_p = n / d, p / d
    c = gep_constants(t, activation=activation, sigma_x=sigma_x, center=center)
    warn = []
    if psi_n <= 1 or psi_p <= 1:
        warn.append(f"psi_n = n/d = {psi_n:g} and psi_p = p/d = {psi_p:g} should both exceed 1: Theorem 3.2 "
                    "and the timescale formulas assume psi_p, psi_n >> 1")
    lam_min = float(ts.lambda_min(c.s_t2, c.v_t2, psi_p, psi_n))
    tau_mem = float(ts.tau_mem(c.s_t2, c.v_t2, psi_p, psi_n, c.delta_t))
    lam2 = float(ts.lambda2_mean(c.mu1, c.norm2, psi_p))
    tau_gen = float(ts.tau_gen(c.mu1, c.norm2, psi_p, c.delta_t))
    reg = ts.regime(n, p)
    if reg != "I":
        warn.append(f"regime {reg}: n = {n} >= p = {p}, so there is no memorization phase; tau_mem is the "
                    "formula value only")
    lam_num = tau_num = None
    spec_diag = None
    if numeric:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", _checks.MemlabValidityWarning)
            spec = rf_spectrum(psi_p, psi_n, t, activation=activation, sigma_x=sigma_x, center=center)
        lam_num = float(numeric_lambda_min(spec))
        tau_num = psi_p / (c.delta_t * lam_num)
        spec_diag = dict(bulks=spec.bulks, delta_weight=spec.delta_weight,
                         total_mass=spec.diagnostics["total_mass"])
    for m in warn:
        warnings.warn(m, _checks.MemlabValidityWarning, stacklevel=2)
    inputs = dict(n=n, p=p, d=d, t=t, psi_n=psi_n, psi_p=psi_p, activation=c.activation,
                  sigma_x=float(sigma_x), center=bool(center))
    return TimescalesResult(
        tau_mem=tau_mem, tau_mem_numeric=tau_num,
        tau_mem_limit=float(ts.tau_mem_limit(c.v_t2, psi_n, c.delta_t)), tau_gen=tau_gen,
        window=tau_mem / tau_gen, n_star=p, regime=reg, lambda_min=lam_min, lambda_min_numeric=lam_num,
        lambda2_mean=lam2, units=ts.TIME_UNIT, inputs=inputs, constants=c,
        diagnostics=dict(warnings=warn, spectrum=spec_diag,
                         message=f"regime {reg}: tau_gen={tau_gen:.4g}, tau_mem={tau_mem:.4g} ({ts.TIME_UNIT})"))
