"""Predicted training timescales and the threshold n* = p of the random-features model (arXiv:2505.17638 MT §3).

:func:`predict_timescales` combines the closed forms of :mod:`memlab.theory.timescales` (the paper's
``tau_mem_formula`` from the first-bulk edge, the operational ``tau_gen_formula``) with the solved spectrum of
Theorem 3.1 (``tau_mem_spectrum`` from the memorization bulk).  Each estimator has its own name
(docs/theory/random_features.md §5).  Unit: ``tau = k eta / d^2``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from ..theory import checks
from ..theory import timescales as ts
from ..theory.gep import GEPConstants
from ..theory.rf_model import RFModel
from .rf_spectrum import ENGINES, SpectrumAccuracyError, SpectrumResult, rf_spectrum

__all__ = ["TimescalesResult", "predict_timescales", "lambda_min_spectrum"]


@dataclass(frozen=True)
class TimescalesResult:
    """Predicted timescales of one random-features model.

    Attributes
    ----------
    tau_mem_formula : float
        The paper's ``psi_p / (Delta_t lambda_min_formula)``, ``lambda_min_formula = s_t^2 + v_t^2 (1 -
        sqrt(psi_p/psi_n))^2`` (MT §3).
    tau_mem_spectrum : float or None
        ``psi_p / (Delta_t lambda_min_spectrum)`` from the solved spectrum (``None`` with ``numeric=False``).
    tau_mem_limit : float
        ``psi_n / (Delta_t v_t^2)``, the ``psi_p >> psi_n`` limit (linear in ``n``).
    tau_gen_formula : float
        ``psi_p / (Delta_t lambda2_mean)``, ``lambda2_mean = mu1^2 psi_p + ||sigma||^2 - mu1^2``: memlab's
        operational definition (the paper says only that ``tau_gen = O(1/Delta_t)``).
    window : float
        ``tau_mem_formula / tau_gen_formula``.
    n_star : int
        ``p``: a memorization phase exists only for ``n < p`` (MT §3).
    regime : str
        ``"I"`` (``n < p``), ``"II"`` (``n > p``: no memorization phase; ``tau_mem_formula`` is still the
        formula value) or ``"threshold"``.
    lambda_min_formula, lambda_min_spectrum, lambda2_mean : float
    units : str
        ``tau = k eta / d^2``.
    model : RFModel
    diagnostics : dict
        ``warnings``, ``spectrum`` (bulks and masses when ``numeric``), ``message``.
    """

    tau_mem_formula: float
    tau_mem_spectrum: float | None
    tau_mem_limit: float
    tau_gen_formula: float
    window: float
    n_star: int
    regime: str
    lambda_min_formula: float
    lambda_min_spectrum: float | None
    lambda2_mean: float
    units: str
    model: RFModel
    diagnostics: dict = field(default_factory=dict, repr=False)

    @property
    def constants(self) -> GEPConstants:
        """Gaussian-equivalence constants of the model."""
        return self.model.constants


def lambda_min_spectrum(spec: SpectrumResult) -> float:
    """``inf{lambda > s_t^2 : continuous mass of (s_t^2, lambda] >= 1/psi_p}`` (package choice,
    docs/theory/random_features.md §5).

    Skips the small cluster of weight ``1/psi_p`` just above ``s_t^2`` and stays defined when the
    cluster merges with rho_1.  In regime II (``psi_n >= psi_p``) it is the lower edge of rho_1.
    A separate cluster whose mass matches ``1/psi_p`` to 1e-4 (relative) is skipped whole, so the
    result is then the lower edge of the next bulk.
    """
    if not spec.bulks:
        raise ValueError("spectrum has no continuous bulk")
    psi_p, psi_n = spec.model.psi_p, spec.model.psi_n
    if psi_n >= psi_p:
        return spec.bulks[0][0]
    target = 1.0 / psi_p
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


def predict_timescales(model: RFModel, *, numeric=True, engine: str = "numba") -> TimescalesResult:
    """Predicted ``tau_gen_formula``, ``tau_mem_formula`` (and ``tau_mem_spectrum``), their window and ``n* = p``.

    Parameters
    ----------
    model : RFModel
        The random-features model (``RFModel.from_sizes(n, p, d, t)`` for sizes); ``n* = p`` and the regime
        use its sizes at ``model.d``.
    numeric : bool, default True
        Also solve the spectrum (Theorem 3.1) for ``tau_mem_spectrum`` (well under a second).
    engine : {"numba", "python"}, default "numba"
        How the spectrum's kernels run (:func:`memlab.numerics.rf_spectrum.rf_spectrum`): ``"python"`` skips
        numba's import and compiled-cache load (about 1 s in a new process) for a one-off answer, as
        ``memlab timescales`` does; the two agree to rounding.

    Returns
    -------
    TimescalesResult

    Raises
    ------
    SpectrumAccuracyError
        ``numeric=True`` and the solved spectrum fails its checks (:func:`memlab.numerics.rf_spectrum.rf_spectrum`).

    Notes
    -----
    ``tau_mem_formula = psi_p/(Delta_t lambda_min)``, ``lambda_min = s_t^2 + v_t^2 (1 - sqrt(psi_p/psi_n))^2``;
    for ``psi_p >> psi_n``, ``tau_mem ~ psi_n/(Delta_t v_t^2)``, linear in ``n``.  Times are in the
    paper's unit ``tau = k eta / d^2``; a mode of eigenvalue ``lambda`` relaxes on ``psi_p/(Delta_t lambda)``
    (losses decay as ``exp(-4 Delta_t lambda tau / psi_p)``: correction 3 of docs/theory/random_features.md §8).

    References
    ----------
    arXiv:2505.17638 MT §3 (Thm 3.2 and the text after it, with correction 2 of
    docs/theory/random_features.md §8), SM C.5 and D.

    Examples
    --------
    >>> r = predict_timescales(RFModel.from_sizes(800, 6400, 100, 0.1), numeric=False)
    >>> r.regime, r.n_star, round(r.window, 1)
    ('I', 6400, 392.8)
    """
    if not isinstance(model, RFModel):
        raise TypeError(f"model must be an RFModel (got {type(model).__name__}); e.g. "
                        f"RFModel.from_sizes(n=800, p=6400, d=100, t=0.1)")
    if not isinstance(numeric, bool):
        raise TypeError(f"numeric must be True or False (got {numeric!r})")
    if not isinstance(engine, str) or engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES} (got {engine!r})")
    n, p, _ = model.sizes()
    psi_n, psi_p = model.psi_n, model.psi_p
    c = model.constants
    warn = []
    if psi_n <= 1 or psi_p <= 1:
        warn.append(f"psi_n = n/d = {psi_n:g} and psi_p = p/d = {psi_p:g} should both exceed 1: Theorem 3.2 "
                    "and the timescale formulas assume psi_p, psi_n >> 1")
    lam_min = float(ts.lambda_min_formula(c.s_t2, c.v_t2, psi_p, psi_n))
    tau_mem = float(ts.tau_mem_formula(c.s_t2, c.v_t2, psi_p, psi_n, c.delta_t))
    lam2 = float(ts.lambda2_mean(c.mu1, c.norm2, psi_p))
    tau_gen = float(ts.tau_gen_formula(c.mu1, c.norm2, psi_p, c.delta_t))
    reg = ts.regime(n, p)
    if reg != "I":
        warn.append(f"regime {reg}: n = {n} >= p = {p}, so there is no memorization phase; tau_mem_formula is the "
                    "formula value only")
    lam_num = tau_num = None
    spec_diag = None
    if numeric:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", checks.MemlabValidityWarning)
            try:
                spec = rf_spectrum(model, engine=engine)
            except SpectrumAccuracyError as err:
                raise SpectrumAccuracyError(f"{err}; tau_mem_spectrum needs that spectrum (numeric=False gives the "
                                            "formula values alone)", err.result) from err
        lam_num = float(lambda_min_spectrum(spec))
        tau_num = psi_p / (c.delta_t * lam_num)
        spec_diag = dict(bulks=spec.bulks, delta_weight=spec.delta_weight,
                         total_mass=spec.diagnostics["total_mass"], engine=engine)
    for m in warn:
        warnings.warn(m, checks.MemlabValidityWarning, stacklevel=2)
    return TimescalesResult(
        tau_mem_formula=tau_mem, tau_mem_spectrum=tau_num,
        tau_mem_limit=float(ts.tau_mem_limit(c.v_t2, psi_n, c.delta_t)), tau_gen_formula=tau_gen,
        window=tau_mem / tau_gen, n_star=p, regime=reg, lambda_min_formula=lam_min, lambda_min_spectrum=lam_num,
        lambda2_mean=lam2, units=ts.TIME_UNIT, model=model,
        diagnostics=dict(warnings=warn, spectrum=spec_diag,
                         message=f"regime {reg}: tau_gen_formula={tau_gen:.4g}, tau_mem_formula={tau_mem:.4g} "
                                 f"({ts.TIME_UNIT})"))
