"""Capacity crossover M* (arXiv:2508.17689v1 Eq. 21; our users' "Eq. 14", docs/theory/capacity_crossover.md §5).

Buchanan, Pai, Ma, De Bortoli, *On the Edge of Memorization in Diffusion Models*,
arXiv:2508.17689v1.  Inserting the two excess-loss approximations

* generalizing denoiser (Thm 3.1, Eq. 18):   ``d sigma2 / (psi_t sigma2 + 1)``
* partially memorizing denoiser (Thm 3.2, Eq. 19):   ``C (1 - M/N) d sigma2``

into the lambda-weighted loss gives the gap Delta(M) (arXiv v1 Eq. 20), which is affine and
strictly decreasing in M.  Its root is the capacity crossover (arXiv v1 Eq. 21)

    M* = N (1 - r / C),    r = E_t[lambda / (psi_t sigma2 + 1)] / E_t[lambda].

The formula is *derived* with sympy (:func:`derive_crossover`, in :mod:`memlab.theory.crossover_symbolic`)
for a symbolic grid (``Sum`` over ``lambda[l]``, ``psi[l]``) and for a continuous weighting (``Integral``
over an undefined ``lambda(t)``); every numeric value in this module is computed by the solved
expressions as printed in :mod:`memlab.theory.crossover_formulas` (generated from the derivation and
checked against it by the tests), so a prediction does not import sympy.  ``sigma2`` is sigma_star^2, the cluster variance.  See
docs/theory/capacity_crossover.md §5.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np

from . import checks, grid
from . import crossover_formulas as formulas

__all__ = [
    "WEIGHTINGS",
    "CrossoverDerivation",
    "MStarResult",
    "derive_crossover",
    "gap_grid_numeric",
    "mstar_grid",
    "mstar_ratio_continuous",
    "predict_mstar",
    "r_value",
    "single_time_ratio",
]

REFERENCE = ("capacity crossover (arXiv:2508.17689v1 Eq. 21, users' 'Eq. 14'; gap Delta(M) = Eq. 20); "
             "Buchanan, Pai, Ma, De Bortoli, On the Edge of Memorization in Diffusion Models")

#: Names of the weighting presets (arXiv:2508.17689v1 Fig. 3; docs/theory/capacity_crossover.md §3).
WEIGHTINGS = ("paper", "uniform", "noise")


# ---------------------------------------------------------------------------------------------
# Small numeric helpers (all through the lambdified derivation)
# ---------------------------------------------------------------------------------------------

def _grid_sums(lam: np.ndarray, psi: np.ndarray, sigma2: float) -> tuple[float, float]:
    s1_terms = np.broadcast_to(formulas.sum1_term(lam, psi, sigma2), lam.shape)
    return float(np.sum(lam)), float(np.sum(s1_terms))


def _psi_array(psi) -> np.ndarray:
    arr = checks.finite_array("psi", psi, ndim=1)
    if arr.size == 0 or np.any(arr <= 0):
        raise ValueError("psi must be a non-empty 1-D array of SNR values > 0")
    return arr


def r_value(weights, psi, sigma2: float = 1.0) -> float:
    """The lambda-weighted mean r of 1/(psi sigma2 + 1) on a grid (docs/theory/capacity_crossover.md §5).

    Parameters
    ----------
    weights : array_like
        Non-negative, not-all-zero weights lambda_l, one per grid time.
    psi : array_like
        SNR values psi_l > 0 (``grid.psi(times)``).
    sigma2 : float, default 1.0
        sigma_star^2 > 0.

    Returns
    -------
    float
        ``r = sum lam/(psi sigma2 + 1) / sum lam`` in (0, 1).

    Examples
    --------
    >>> round(r_value(grid.PAPER_LAMBDA, grid.psi(grid.paper_grid())), 5)
    0.39993
    """
    psi = _psi_array(psi)
    lam = checks.weights("weights", weights, psi.size)
    sigma2 = checks.positive_float("sigma2", sigma2)
    return float(formulas.r_from_sums(*_grid_sums(lam, psi, sigma2)))


def mstar_grid(N, C, sigma2, lam_array, psi_array) -> float:
    """Root M* of the grid gap Delta(M) (arXiv:2508.17689v1 Eq. 21).

    Evaluates the lambdified ``m_star_grid`` of :func:`derive_crossover` at the sums
    ``S0 = sum lam`` and ``S1 = sum lam/(psi sigma2 + 1)``.  This is the raw root: it is
    negative when there is no crossover (r > C).  Use :func:`predict_mstar` for diagnostics.

    Examples
    --------
    >>> round(mstar_grid(100, 2.0, 1.0, grid.PAPER_LAMBDA, grid.psi(grid.paper_grid())), 2)
    80.0
    """
    N = checks.positive_float("N", N)
    C = checks.positive_float("C", C)
    sigma2 = checks.positive_float("sigma2", sigma2)
    psi = _psi_array(psi_array)
    lam = checks.weights("lam_array", lam_array, psi.size)
    return float(formulas.mstar_from_sums(N, C, *_grid_sums(lam, psi, sigma2)))


def gap_grid_numeric(M, N, C, d, sigma2, lam_array, psi_array):
    """Delta(M) on a grid (arXiv:2508.17689v1 Eq. 20), lambdified from the symbolic gap.

    ``Delta(M) = sum_l lam_l (C (1 - M/N) d sigma2 - d sigma2/(psi_l sigma2 + 1))``; ``M`` may be
    an array (the result then has its shape).

    Examples
    --------
    >>> lam, psi = grid.PAPER_LAMBDA, grid.psi(grid.paper_grid())
    >>> abs(gap_grid_numeric(mstar_grid(50, 2.0, 1.0, lam, psi), 50, 2.0, 50, 1.0, lam, psi)) < 1e-9
    True
    """
    N = checks.positive_float("N", N)
    C = checks.positive_float("C", C)
    d = checks.positive_float("d", d)
    sigma2 = checks.positive_float("sigma2", sigma2)
    psi = _psi_array(psi_array)
    lam = checks.weights("lam_array", lam_array, psi.size)
    M = checks.finite_array("M", M)
    terms = formulas.gap_term(M[..., None], N, C, d, sigma2, lam, psi)
    out = np.sum(terms, axis=-1)
    return float(out) if out.ndim == 0 else out


def single_time_ratio(t, C: float = 2.0, sigma2: float = 1.0):
    """Crossover M/N = 1 - 1/(C (psi_t sigma2 + 1)) at a single time t (docs/theory/capacity_crossover.md §5).

    The grid formula (arXiv:2508.17689v1 Eq. 21) with all weight on one time.
    A value <= 0 means no crossover at that time (only possible for C < 1).

    Examples
    --------
    >>> round(single_time_ratio(grid.paper_grid()[16], C=2.0), 3)
    0.935
    """
    times = checks.unit_interval_times("t", t)
    C = checks.positive_float("C", C)
    sigma2 = checks.positive_float("sigma2", sigma2)
    s1 = formulas.sum1_term(np.ones_like(times), grid.psi(times), sigma2)
    out = np.asarray(formulas.ratio_from_sums(C, 1.0, s1), dtype=np.float64)
    return float(out[0]) if np.ndim(t) == 0 else out


# ---------------------------------------------------------------------------------------------
# predict_mstar
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class MStarResult:
    """Prediction of the capacity crossover (arXiv:2508.17689v1 Eq. 21).

    Attributes
    ----------
    m_star : float or None
        M* = N * ratio, in training points (``unit``); None when there is no crossover.
    ratio : float or None
        M*/N = 1 - r/C, in (0, 1]; None when there is no crossover.
    r : float
        lambda-weighted mean of 1/(psi_t sigma2 + 1).
    crossover : bool
        Whether Delta(M) has a root in [0, N] (r < C).
    N, C, sigma2 : inputs.
    weighting : str
        "paper", "uniform", "noise", "custom" (array) or "callable".
    times : tuple of float or None
        Grid times used; None for the continuous weighting.
    weights : tuple of float or None
        Grid weights used; None for the continuous weighting.
    d, K : int or None
        Dimension and number of clusters (diagnostics only; M* does not depend on them).
    coupon_bound : float or None
        (1 + log d) K log K (Lemma C.4), when both d and K are given.
    window_psi_min, window_t_max : float or None
        Validity window psi_t >= log^2 d / d, i.e. t <= window_t_max (when d is given).
    times_outside_window : tuple of float
        Grid times with psi_t < log^2 d / d (empty when d is None or continuous).
    weight_outside_window : float or None
        Fraction of the total weight on times outside the window (when d is given).
    warnings : tuple of str
        Validity-diagnostic messages (each also emitted as ``MemlabValidityWarning``).
    message : str
        One-line description of the result.
    unit, reference : str
    """

    m_star: float | None
    ratio: float | None
    r: float
    crossover: bool
    N: int
    C: float
    sigma2: float
    weighting: str
    times: tuple | None
    weights: tuple | None
    d: int | None = None
    K: int | None = None
    coupon_bound: float | None = None
    window_psi_min: float | None = None
    window_t_max: float | None = None
    times_outside_window: tuple = ()
    weight_outside_window: float | None = None
    warnings: tuple = ()
    message: str = ""
    unit: str = "training points"
    reference: str = REFERENCE

    def summary(self) -> str:
        """Short human-readable line."""
        where = "continuous t in (0, 1)" if self.times is None else f"{len(self.times)} grid times"
        head = (f"M* = {self.m_star:.4g} of N = {self.N} (M*/N = {self.ratio:.5f})"
                if self.crossover else f"no crossover for N = {self.N}")
        tail = f" [{len(self.warnings)} validity warning(s)]" if self.warnings else ""
        return (f"{head}; r = {self.r:.5f}, C = {self.C:g}, sigma2 = {self.sigma2:g}, "
                f"weighting '{self.weighting}' on {where}{tail}")

    __str__ = summary


def _quad(f, a: float, b: float, what: str) -> float:
    """scipy quad that raises (never returns NaN) when it does not converge."""
    from scipy import integrate

    out = integrate.quad(f, a, b, limit=200, epsabs=1e-14, epsrel=1e-12, full_output=1)
    value, abserr, info = out[0], out[1], out[2]
    if len(out) > 3 or not math.isfinite(value):
        msg = out[3].strip() if len(out) > 3 else "non-finite result"
        raise ValueError(
            f"weighting: scipy.integrate.quad did not converge for {what} on [{a:g}, {b:g}] "
            f"(estimate {value!r}, abserr {abserr!r}, {info.get('neval')} evaluations, "
            f"{info.get('last')} subintervals): {msg}. The weighting must be integrable on (0, 1).")
    return float(value)


def _continuous_weight(weighting) -> tuple[str, Callable[[float], float]]:
    if isinstance(weighting, str):
        if weighting == "uniform":
            return "uniform", lambda t: 1.0
        if weighting == "paper":
            raise ValueError("weighting='paper' is defined only on the 26-point paper grid; "
                             "it cannot be used with times='continuous'")
        if weighting == "noise":
            raise ValueError("weighting='noise' (lambda = psi_t) cannot be used with "
                             "times='continuous': psi_t = (1 - t^2)/t^2 is not integrable at "
                             "t -> 0, so the continuous noise weighting gives M*/N -> 1 (no "
                             "finite prediction); use a grid")
        raise ValueError(f"weighting must be one of {WEIGHTINGS}, an array of weights or "
                         f"a callable (got {weighting!r})")
    if not callable(weighting):
        raise ValueError("weighting must be 'uniform' or a callable lambda(t) when "
                         "times='continuous' (an array of weights needs grid times)")

    def lam(t: float) -> float:
        return checks.real(f"weighting (the callable's value at t={t:.6g})", weighting(t), low=0.0)

    return "callable", lam


def _grid_weight(weighting, times: np.ndarray) -> tuple[str, np.ndarray]:
    n = times.size
    if isinstance(weighting, str):
        if weighting == "paper":
            ref = grid.paper_grid()
            if n != ref.size or not np.allclose(times, ref, rtol=0.0, atol=1e-9):
                raise ValueError("weighting='paper' is defined only on the 26-point paper grid "
                                 "(times=None or grid.paper_grid()); got different times")
            return "paper", np.array(grid.PAPER_LAMBDA, dtype=np.float64)
        if weighting == "uniform":
            return "uniform", np.ones(n)
        if weighting == "noise":
            return "noise", checks.weights("weighting", grid.psi(times), n)
        raise ValueError(f"weighting must be one of {WEIGHTINGS}, an array of weights or "
                         f"a callable (got {weighting!r})")
    if callable(weighting):
        vals = checks.real_array("weighting (the callable's values)", weighting(times), finite=False)
        try:
            vals = np.broadcast_to(vals, times.shape).copy()
        except ValueError:
            raise ValueError(f"weighting callable must return one weight per time: length {n} "
                             f"(got shape {vals.shape})") from None
        return "callable", checks.weights("weighting", vals, n)
    return "custom", checks.weights("weighting", weighting, n)


def predict_mstar(N, *, C=2.0, weighting="paper", sigma2=1.0, times=None, d=None, K=None) -> MStarResult:
    """Capacity crossover M* (arXiv:2508.17689v1 Eq. 21; our users' "Eq. 14", docs/theory/capacity_crossover.md §5).

    M* = N (1 - r/C) is the root of the gap Delta(M) (arXiv v1 Eq. 20) between the weighted
    excess losses of a partially memorizing denoiser with M memorized points (Thm 3.2, Eq. 19)
    and of the generalizing denoiser (Thm 3.1, Eq. 18); r is the lambda-weighted mean of
    1/(psi_t sigma2 + 1).  The value is computed by the functions lambdified in
    :func:`derive_crossover` (printed in :mod:`memlab.theory.crossover_formulas`).

    Parameters
    ----------
    N : int
        Number of training points, >= 1.
    C : float, default 2.0
        Leading constant of Thm 3.2, > 0 (the theorem gives C in [1, 2]; the paper uses 2).
    weighting : {"paper", "uniform", "noise"}, array_like or callable, default "paper"
        lambda over the times: "paper" = the fitted lambda~ (only on the paper grid),
        "uniform" = 1, "noise" = psi_t (grid only), an array of non-negative weights (one per
        time, not all zero) or a callable lambda(t) (vectorised on grid times; scalar under
        ``times="continuous"``).  M* is invariant under lambda -> c lambda.
    sigma2 : float, default 1.0
        sigma_star^2 > 0.
    times : None, array_like or "continuous", default None
        None: the 26-point paper grid; an array of times in (0, 1); "continuous": t in (0, 1)
        with ``scipy.integrate.quad`` ("uniform" or a callable weighting only).
    d, K : int, optional
        Data dimension and number of clusters, for the validity diagnostics only (M* does not
        depend on them): d gives the window psi_t >= log^2 d / d (docs/theory/capacity_crossover.md §4); d and K together
        give the coupon-collector bound (1 + log d) K log K of Lemma C.4.

    Returns
    -------
    MStarResult
        ``m_star``/``ratio`` are None and ``crossover`` is False when r >= C (only possible for
        C < 1): then Delta(M) <= 0 on all of [0, N].

    Raises
    ------
    ValueError
        N, d or K not a positive integer; C or sigma2 not > 0; times not in (0, 1); weights
        negative, all zero, non-finite or of the wrong length; unknown weighting name;
        "paper" off the paper grid; "paper", "noise" or an array with ``times="continuous"``; K without d;
        quad not converging (the message gives quad's diagnostics).
    TypeError
        Arguments of the wrong type (e.g. a string N).

    Warns
    -----
    MemlabValidityWarning
        Grid times (or continuous weight) outside the validity window, or M* below the
        coupon-collector bound; each message is also stored in ``warnings``.

    Notes
    -----
    The ratio M*/N depends only on C, sigma2 and the weighting over the times, through r; d
    cancels and K never enters, so M* is exactly linear in N.  For C >= 1, M*/N lies in
    (1 - 1/C, 1).  The paper's 4/5 (weighting "paper", C = 2, sigma2 = 1) is a calibration of
    its training recipe and memorization criterion, not a universal constant (docs/theory/capacity_crossover.md §5).
    K without d gives no coupon bound.

    References
    ----------
    S. Buchanan, D. Pai, Y. Ma, V. De Bortoli, "On the Edge of Memorization in Diffusion
    Models", arXiv:2508.17689v1, Thms 3.1-3.2 and Eqs. 18-21; docs/theory/capacity_crossover.md §4-§5.

    Examples
    --------
    >>> res = predict_mstar(50)
    >>> round(res.ratio, 3), round(res.m_star, 1), round(res.r, 5)
    (0.8, 40.0, 0.39993)
    >>> round(predict_mstar(100, weighting="uniform", C=1.0).ratio, 3)
    0.66
    >>> round(predict_mstar(30, times="continuous", weighting="uniform", C=2.0).ratio, 6)
    0.833333
    >>> predict_mstar(10, C=0.3).crossover
    False
    """
    N = checks.positive_int("N", N)
    C = checks.positive_float("C", C)
    sigma2 = checks.positive_float("sigma2", sigma2)
    d = None if d is None else checks.positive_int("d", d)
    K = None if K is None else checks.positive_int("K", K)
    if K is not None and d is None:
        raise ValueError(f"K={K} needs d: the coupon-collector check of K, (1 + log d) K log K (Lemma C.4), uses the "
                         "data dimension d; pass d as well, or leave K out")

    continuous = isinstance(times, str)
    if continuous and times != "continuous":
        raise ValueError(f"times must be None, 'continuous' or a sequence of times in (0, 1) (got {times!r})")

    if continuous:
        name, lam = _continuous_weight(weighting)
        s0 = _quad(lam, 0.0, 1.0, "the integral of lambda(t)")
        if s0 <= 0:
            raise ValueError(f"weighting must have a positive integral over (0, 1) (got {s0!r})")
        s1 = _quad(lambda t: lam(t) * formulas.inv_snr_t(t, sigma2), 0.0, 1.0,
                   "the integral of lambda(t)/(psi_t sigma2 + 1)")
        times_out, weights_out = None, None
    else:
        arr = grid.paper_grid() if times is None else checks.unit_interval_times("times", times)
        name, lam_arr = _grid_weight(weighting, arr)
        s0, s1 = _grid_sums(lam_arr, grid.psi(arr), sigma2)
        times_out, weights_out = tuple(map(float, arr)), tuple(map(float, lam_arr))

    r = float(formulas.r_from_sums(s0, s1))
    crossover = r < C
    if crossover:
        ratio = float(formulas.ratio_from_sums(C, s0, s1))
        m_star = N * ratio
        message = (f"crossover at M* = {m_star:.6g} of N = {N} (M*/N = 1 - r/C = {ratio:.6g}); "
                   f"the partially memorizing approximation has the lower weighted loss for M > M*")
    else:
        ratio = m_star = None
        message = (f"no crossover: r = {r:.6g} >= C = {C:g}, so Delta(M) <= 0 on all of [0, N]: "
                   f"the partially memorizing approximation never has the higher weighted loss "
                   f"(possible only for C < 1)")

    # --- validity diagnostics --------------------------------------------------------------
    msgs: list[str] = []
    psi_min = t_max = frac_out = coupon = None
    outside: tuple = ()
    if d is not None:
        psi_min = grid.validity_psi_min(d)
        t_max = float(grid.varsigma(psi_min))
        if continuous:
            frac_out = _quad(lam, t_max, 1.0, "the weight outside the window") / s0 if t_max < 1 else 0.0
            if frac_out > 0:
                msgs.append(f"validity window (docs/theory/capacity_crossover.md §4): t in ({t_max:.5g}, 1) has psi_t < log(d)^2/d = "
                            f"{psi_min:.4g} for d={d} and carries {100 * frac_out:.3g}% of the weight; "
                            f"Thms 3.1-3.2 do not hold uniformly there")
        else:
            mask = grid.psi(arr) < psi_min
            outside = tuple(float(x) for x in arr[mask])
            frac_out = float(np.sum(lam_arr[mask]) / s0)
            if outside:
                shown = ", ".join(f"{x:.5g}" for x in outside)
                msgs.append(f"validity window (docs/theory/capacity_crossover.md §4): {len(outside)} of {arr.size} times have "
                            f"psi_t < log(d)^2/d = {psi_min:.4g} for d={d} (t = {shown}), carrying "
                            f"{100 * frac_out:.3g}% of the weight; Thms 3.1-3.2 do not hold uniformly there")
        if K is not None:
            coupon = grid.coupon_collector_bound(d, K)
            if m_star is not None and m_star < coupon:
                msgs.append(f"coupon-collector condition (Lemma C.4): M* = {m_star:.4g} < "
                            f"(1 + log d) K log K = {coupon:.4g} for d={d}, K={K}; Thm 3.2 is "
                            f"not guaranteed below this M")
    for msg in msgs:
        warnings.warn(msg, checks.MemlabValidityWarning, stacklevel=2)

    return MStarResult(
        m_star=m_star, ratio=ratio, r=r, crossover=crossover, N=N, C=C, sigma2=sigma2,
        weighting=name, times=times_out, weights=weights_out, d=d, K=K, coupon_bound=coupon,
        window_psi_min=psi_min, window_t_max=t_max, times_outside_window=outside,
        weight_outside_window=frac_out, warnings=tuple(msgs), message=message,
    )


# ---------------------------------------------------------------------------------------------
# Excess-loss approximations as numeric functions (for Monte Carlo overlays)
# ---------------------------------------------------------------------------------------------

def gen_excess_value(d, sigma2, psi):
    """Thm 3.1 approximation ``d sigma2 / (psi sigma2 + 1)`` (arXiv:2508.17689v1 Eq. 18), x0 units.

    The derivation's ``gen_excess`` (``crossover_formulas.gen_excess``); ``psi`` may be an array.

    Examples
    --------
    >>> round(float(gen_excess_value(50, 1.0, grid.psi(grid.paper_grid()[16]))), 3)
    6.49
    """
    return formulas.gen_excess(checks.positive_float("d", d), checks.positive_float("sigma2", sigma2),
                               checks.real_array("psi", psi))


def pmem_excess_value(M, N, C, d, sigma2):
    """Thm 3.2 approximation ``C (1 - M/N) d sigma2`` (arXiv:2508.17689v1 Eq. 19), x0 units.

    The derivation's ``pmem_excess`` (``crossover_formulas.pmem_excess``); ``M`` may be an array.
    """
    return formulas.pmem_excess(checks.real_array("M", M), checks.positive_float("N", N), checks.positive_float("C", C),
                                checks.positive_float("d", d), checks.positive_float("sigma2", sigma2))


_SYMBOLIC = ("CrossoverDerivation", "derive_crossover", "mstar_ratio_continuous")


def __getattr__(name):
    """The symbolic side (sympy) loads on first use: ``crossover.derive_crossover`` is
    :func:`memlab.theory.crossover_symbolic.derive_crossover`."""
    if name in _SYMBOLIC:
        from . import crossover_symbolic

        return getattr(crossover_symbolic, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
