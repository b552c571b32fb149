"""Capacity crossover M* (arXiv:2508.17689v1 Eq. 21; our users' "Eq. 14", docs/theory/capacity_crossover.md §5).

Buchanan, Pai, Ma, De Bortoli, *On the Edge of Memorization in Diffusion Models*,
arXiv:2508.17689v1.  Inserting the two excess-loss approximations

* generalizing denoiser (Thm 3.1, Eq. 18):   ``d sigma2 / (psi_t sigma2 + 1)``
* partially memorizing denoiser (Thm 3.2, Eq. 19):   ``C (1 - M/N) d sigma2``

into the lambda-weighted loss gives the gap Delta(M) (arXiv v1 Eq. 20), which is affine and
strictly decreasing in M.  Its root is the capacity crossover (arXiv v1 Eq. 21)

    M* = N (1 - r / C),    r = E_t[lambda / (psi_t sigma2 + 1)] / E_t[lambda].

The formula is *derived* here with sympy, once (:func:`derive_crossover`), for a symbolic grid
(``Sum`` over ``lambda[l]``, ``psi[l]``) and for a continuous weighting (``Integral`` over an
undefined ``lambda(t)``); every numeric value in this module is computed by functions lambdified
from the solved expressions.  ``sigma2`` is sigma_star^2, the cluster variance.  See
docs/theory/capacity_crossover.md §5.
"""

from __future__ import annotations

import functools
import math
import types
import warnings
from dataclasses import dataclass
from typing import Callable, Mapping

import numpy as np
import sympy as sp
from scipy import integrate

from . import checks, grid

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
_SIGMA2_LATEX = r"\sigma_\star^{2}"


# ---------------------------------------------------------------------------------------------
# Symbolic derivation
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CrossoverDerivation:
    """The sympy derivation of M* (arXiv:2508.17689v1 Eq. 21).

    Attributes
    ----------
    symbols : mapping
        ``d, sigma2, psi, C, M, N, K, t, L, l`` (sympy symbols), ``lam``/``psi_l`` (the
        ``IndexedBase`` objects of the grid), ``lam_t`` (undefined ``Function`` lambda),
        ``S0, S1`` (placeholders for the two grid sums, see ``sums``).
    gen_excess, pmem_excess : sympy.Expr
        Excess-loss approximations of Thm 3.1 (Eq. 18) and Thm 3.2 (Eq. 19), in ``psi``.
    gap_grid, m_star_grid, ratio_grid, r_grid : sympy.Expr
        Delta(M) as ``Sum_l lam[l] (pmem - gen(psi[l]))`` over ``l = 0..L-1``, its root
        ``M*`` from ``sympy.solve``, ``M*/N`` and ``r = Sum lam/(psi sigma2+1) / Sum lam``.
    gap_continuous, m_star_continuous, ratio_continuous, r_continuous : sympy.Expr
        The same with ``Integral(lambda(t) ..., (t, 0, 1))`` and ``psi_t = (1 - t^2)/t^2``.
    identity : sympy.Eq
        ``1/(psi_t sigma2 + 1) = t^2/(sigma2 (1 - t^2) + t^2)`` (checked to simplify to 0).
    inv_snr_t : sympy.Expr
        ``identity.rhs``: 1/(psi_t sigma2 + 1) in a form finite at t = 0.
    sums : mapping
        ``{S0: Sum(lam[l]), S1: Sum(lam[l]/(sigma2 psi[l] + 1))}``: the grid solution depends on
        the weights only through these two sums; ``m_star_grid.xreplace`` with the inverse map
        gives the expressions the numeric functions are lambdified from.
    latex : mapping
        ``sympy.latex`` of every expression above (``sigma2`` printed as sigma_star^2).
    mstar_from_sums, ratio_from_sums, r_from_sums : callable
        ``(N, C, S0, S1)``, ``(C, S0, S1)`` and ``(S0, S1)``: lambdified from ``m_star_grid``,
        ``ratio_grid`` and ``r_grid`` after the two sums are replaced by ``S0, S1``.
    sum1_term : callable
        ``(lam, psi, sigma2)``: the summand of ``S1`` (elementwise, numpy).
    gap_term : callable
        ``(M, N, C, d, sigma2, lam, psi)``: the summand of Delta(M) on the grid.
    gap_from_sums : callable
        ``(M, N, C, d, sigma2, S0, S1)``: Delta(M) on the grid through the two sums (the grid gap expanded,
        its sums replaced by the placeholders); with ``d = sigma2 = 1`` the normalised gap of the weighting fit
        (arXiv:2508.17689v1 Eq. 23).
    inv_snr_t_fn : callable
        ``(t, sigma2)``: ``inv_snr_t`` lambdified, the integrand factor of the continuous ``r``.
    """

    symbols: Mapping[str, object]
    gen_excess: sp.Expr
    pmem_excess: sp.Expr
    gap_grid: sp.Expr
    m_star_grid: sp.Expr
    ratio_grid: sp.Expr
    r_grid: sp.Expr
    gap_continuous: sp.Expr
    m_star_continuous: sp.Expr
    ratio_continuous: sp.Expr
    r_continuous: sp.Expr
    identity: sp.Eq
    inv_snr_t: sp.Expr
    sums: Mapping[sp.Symbol, sp.Expr]
    latex: Mapping[str, str]
    mstar_from_sums: Callable
    ratio_from_sums: Callable
    r_from_sums: Callable
    sum1_term: Callable
    gap_term: Callable
    gap_from_sums: Callable
    inv_snr_t_fn: Callable


def _solve_gap(gap, M):
    """Solve the (affine in M) gap for M; pulls M-free factors out of Sum/Integral first."""
    linear = sp.factor_terms(gap.expand())
    roots = sp.solve(linear, M, simplify=False)
    if len(roots) != 1:
        raise RuntimeError(f"expected exactly one root of Delta(M), sympy returned {roots!r}")
    return roots[0]


@functools.lru_cache(maxsize=None)
def derive_crossover() -> CrossoverDerivation:
    """Derive M* symbolically (arXiv:2508.17689v1 Eq. 21), once (cached).

    Builds the gap Delta(M) (arXiv v1 Eq. 20) from the excess-loss approximations of Thm 3.1
    (Eq. 18) and Thm 3.2 (Eq. 19) on a symbolic grid and for a continuous weighting, solves
    Delta(M) = 0 for M with ``sympy.solve``, simplifies, checks that the result is
    ``N (1 - r/C)`` and that neither d nor K appears in it, and lambdifies the numeric forms.

    Returns
    -------
    CrossoverDerivation

    Examples
    --------
    >>> der = derive_crossover()
    >>> der.m_star_grid
    N - N*Sum(lambda[l]/(sigma2*psi[l] + 1), (l, 0, L - 1))/(C*Sum(lambda[l], (l, 0, L - 1)))
    >>> der.symbols["d"] in der.m_star_grid.free_symbols
    False
    """
    d, sigma2, psi, C, M, N, K = sp.symbols("d sigma2 psi C M N K", positive=True)
    t = sp.Symbol("t", positive=True)
    L = sp.Symbol("L", integer=True, positive=True)
    l = sp.Symbol("l", integer=True, nonnegative=True)
    lam = sp.IndexedBase("lambda", positive=True)
    psi_l = sp.IndexedBase("psi", positive=True)
    lam_t = sp.Function("lambda", positive=True)
    S0, S1 = sp.symbols("S_0 S_1", positive=True)

    # Excess losses over the memorizing denoiser (Thm 3.1, Eq. 18; Thm 3.2, Eq. 19).
    gen_excess = d * sigma2 / (psi * sigma2 + 1)
    pmem_excess = C * (1 - M / N) * d * sigma2

    # --- discrete grid: Delta(M) = sum_l lam_l (pmem - gen(psi_l)) (Eq. 20 on a grid) ---------
    gap_grid = sp.Sum(lam[l] * (pmem_excess - gen_excess.subs(psi, psi_l[l])), (l, 0, L - 1))
    m_star_grid = sp.simplify(_solve_gap(gap_grid, M))
    sum0 = sp.Sum(lam[l], (l, 0, L - 1))
    sum1 = sp.Sum(lam[l] / (sigma2 * psi_l[l] + 1), (l, 0, L - 1))
    r_grid = sum1 / sum0
    ratio_grid = sp.simplify(m_star_grid / N)
    if sp.simplify(m_star_grid - N * (1 - r_grid / C)) != 0:
        raise RuntimeError(f"grid solution {m_star_grid} is not N(1 - r/C)")

    # --- continuous weighting on t in [0, 1], psi_t = (1 - t^2)/t^2 -----------------------
    psi_t = (1 - t**2) / t**2
    gap_continuous = sp.Integral(lam_t(t) * (pmem_excess - gen_excess.subs(psi, psi_t)), (t, 0, 1))
    m_star_continuous = _solve_gap(gap_continuous, M)  # already N - N*Integral/(C*Integral)
    ratio_continuous = sp.expand(m_star_continuous / N)
    r_continuous = (sp.Integral(lam_t(t) / (psi_t * sigma2 + 1), (t, 0, 1))
                    / sp.Integral(lam_t(t), (t, 0, 1)))
    if sp.simplify(m_star_continuous - N * (1 - r_continuous / C)) != 0:
        raise RuntimeError(f"continuous solution {m_star_continuous} is not N(1 - r/C)")

    for name, expr in (("grid", m_star_grid), ("continuous", m_star_continuous)):
        if expr.free_symbols & {d, K}:
            raise RuntimeError(f"d or K did not cancel from the {name} solution {expr}")

    # 1/(psi_t sigma2 + 1) = t^2/(sigma2 (1 - t^2) + t^2)
    identity = sp.Eq(1 / (psi_t * sigma2 + 1), t**2 / (sigma2 * (1 - t**2) + t**2))
    if sp.simplify(identity.lhs - identity.rhs) != 0:
        raise RuntimeError("identity 1/(psi_t sigma2 + 1) = t^2/(sigma2(1-t^2)+t^2) failed")
    inv_snr_t = identity.rhs  # equal to 1/(psi_t sigma2 + 1), finite at t = 0

    # --- numeric functions ---------------------------------------------------------------
    # The grid solution depends on (lam, psi) only through the two sums; replace them by the
    # placeholders S0, S1 (xreplace matches the Sum objects structurally) and lambdify.
    to_placeholders = {sum0: S0, sum1: S1}
    m_star_s = m_star_grid.xreplace(to_placeholders)
    ratio_s = ratio_grid.xreplace(to_placeholders)
    r_s = r_grid.xreplace(to_placeholders)
    gap_s = sp.factor_terms(sp.expand(gap_grid).expand()).xreplace(to_placeholders)
    if gap_s.free_symbols - {M, N, C, d, sigma2, S0, S1}:
        raise RuntimeError(f"sum placeholders did not replace every Sum in the gap {gap_s}")
    if (m_star_s.free_symbols | ratio_s.free_symbols | r_s.free_symbols) - {N, C, S0, S1}:
        raise RuntimeError(f"sum placeholders did not replace every Sum in {m_star_s}")
    lam_s, psi_s = sp.symbols("lam_l psi_l", positive=True)
    indexed_to_plain = {lam[l]: lam_s, psi_l[l]: psi_s}
    term1 = sum1.function.xreplace(indexed_to_plain)
    gap_term = gap_grid.function.xreplace(indexed_to_plain)

    def lamb(args, expr):
        return sp.lambdify(args, expr, modules="numpy", cse=True)

    exprs = {
        "gen_excess": gen_excess, "pmem_excess": pmem_excess,
        "gap_grid": gap_grid, "m_star_grid": m_star_grid, "ratio_grid": ratio_grid,
        "r_grid": r_grid, "gap_continuous": gap_continuous,
        "m_star_continuous": m_star_continuous, "ratio_continuous": ratio_continuous,
        "r_continuous": r_continuous, "identity": identity, "inv_snr_t": inv_snr_t,
    }
    latex = {k: sp.latex(v, symbol_names={sigma2: _SIGMA2_LATEX}) for k, v in exprs.items()}
    symbols = dict(d=d, sigma2=sigma2, psi=psi, C=C, M=M, N=N, K=K, t=t, L=L, l=l, lam=lam,
                   psi_l=psi_l, lam_t=lam_t, S0=S0, S1=S1)
    return CrossoverDerivation(
        symbols=types.MappingProxyType(symbols),
        gen_excess=gen_excess, pmem_excess=pmem_excess,
        gap_grid=gap_grid, m_star_grid=m_star_grid, ratio_grid=ratio_grid, r_grid=r_grid,
        gap_continuous=gap_continuous, m_star_continuous=m_star_continuous,
        ratio_continuous=ratio_continuous, r_continuous=r_continuous,
        identity=identity, inv_snr_t=inv_snr_t,
        sums=types.MappingProxyType({S0: sum0, S1: sum1}),
        latex=types.MappingProxyType(latex),
        mstar_from_sums=lamb((N, C, S0, S1), m_star_s),
        ratio_from_sums=lamb((C, S0, S1), ratio_s),
        r_from_sums=lamb((S0, S1), r_s),
        sum1_term=lamb((lam_s, psi_s, sigma2), term1),
        gap_term=lamb((M, N, C, d, sigma2, lam_s, psi_s), gap_term),
        gap_from_sums=lamb((M, N, C, d, sigma2, S0, S1), gap_s),
        inv_snr_t_fn=lamb((t, sigma2), inv_snr_t),
    )


def mstar_ratio_continuous(lam_expr, sigma2=1):
    """Exact M*/N for a continuous weighting lambda(t) on t in [0, 1] (sympy.integrate).

    Substitutes ``lam_expr`` for lambda(t) in the solved continuous ratio of
    :func:`derive_crossover` (arXiv:2508.17689v1 Eq. 21), evaluates the
    integrals with ``sympy.integrate`` and simplifies.

    Parameters
    ----------
    lam_expr : sympy expression, number or str
        lambda(t) in the symbol ``t`` (``sympy.Symbol("t", positive=True)``; a plain ``t`` in a
        string is fine), non-negative on [0, 1] with a finite, positive integral.
    sigma2 : positive number, default 1
        sigma_star^2, converted to an exact rational.  A concrete value is required: sympy's
        antiderivative for symbolic sigma2 misses the sigma2 != 1 branches.

    Returns
    -------
    sympy.Expr
        M*/N as an expression in ``C = sympy.Symbol("C", positive=True)``.

    Raises
    ------
    ValueError
        ``lam_expr`` has symbols other than t, or its integral over [0, 1] is not finite and
        positive (e.g. lambda = psi_t, which is not integrable at t -> 0); ``sigma2 <= 0``.

    Examples
    --------
    >>> mstar_ratio_continuous(1)
    1 - 1/(3*C)
    >>> mstar_ratio_continuous("t")
    1 - 1/(2*C)
    """
    der = derive_crossover()
    t, C, s2 = der.symbols["t"], der.symbols["C"], der.symbols["sigma2"]
    sigma2 = sp.nsimplify(checks.positive_float("sigma2", sigma2), rational=True)
    expr = sp.sympify(lam_expr, locals={"t": t})
    if expr.free_symbols - {t}:
        raise ValueError(f"lam_expr must be an expression in t only (got symbols "
                         f"{sorted(map(str, expr.free_symbols - {t}))})")
    total = sp.integrate(expr, (t, 0, 1))
    if not (total.is_finite and total.is_positive):
        raise ValueError(f"lam_expr must have a finite, positive integral over [0, 1] (got {total})")
    lam_t = der.symbols["lam_t"]
    ratio = der.ratio_continuous.subs(s2, sigma2).subs(lam_t(t), expr).doit()
    ratio = sp.apart(sp.simplify(ratio), C)  # 1 - r/C form
    if ratio.has(sp.Integral) or not (ratio.free_symbols <= {C}):
        raise ValueError(f"sympy could not evaluate the integrals for lam_expr={expr} (got {ratio})")
    return ratio


# ---------------------------------------------------------------------------------------------
# Small numeric helpers (all through the lambdified derivation)
# ---------------------------------------------------------------------------------------------

def _grid_sums(lam: np.ndarray, psi: np.ndarray, sigma2: float) -> tuple[float, float]:
    der = derive_crossover()
    s1_terms = np.broadcast_to(der.sum1_term(lam, psi, sigma2), lam.shape)
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
    return float(derive_crossover().r_from_sums(*_grid_sums(lam, psi, sigma2)))


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
    return float(derive_crossover().mstar_from_sums(N, C, *_grid_sums(lam, psi, sigma2)))


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
    terms = derive_crossover().gap_term(M[..., None], N, C, d, sigma2, lam, psi)
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
    der = derive_crossover()
    s1 = der.sum1_term(np.ones_like(times), grid.psi(times), sigma2)
    out = np.asarray(der.ratio_from_sums(C, 1.0, s1), dtype=np.float64)
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
        v = float(weighting(t))
        if not math.isfinite(v) or v < 0:
            raise ValueError(f"weighting callable must return finite values >= 0 (got {v!r} at t={t!r})")
        return v

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
        vals = np.asarray(weighting(times), dtype=np.float64)
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
    :func:`derive_crossover`.

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
        "paper" off the paper grid; "paper", "noise" or an array with ``times="continuous"``;
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
    der = derive_crossover()

    continuous = isinstance(times, str)
    if continuous and times != "continuous":
        raise ValueError(f"times must be None, 'continuous' or a sequence of times in (0, 1) (got {times!r})")

    if continuous:
        name, lam = _continuous_weight(weighting)
        s0 = _quad(lam, 0.0, 1.0, "the integral of lambda(t)")
        if s0 <= 0:
            raise ValueError(f"weighting must have a positive integral over (0, 1) (got {s0!r})")
        s1 = _quad(lambda t: lam(t) * der.inv_snr_t_fn(t, sigma2), 0.0, 1.0,
                   "the integral of lambda(t)/(psi_t sigma2 + 1)")
        times_out, weights_out = None, None
    else:
        arr = grid.paper_grid() if times is None else checks.unit_interval_times("times", times)
        name, lam_arr = _grid_weight(weighting, arr)
        s0, s1 = _grid_sums(lam_arr, grid.psi(arr), sigma2)
        times_out, weights_out = tuple(map(float, arr)), tuple(map(float, lam_arr))

    r = float(der.r_from_sums(s0, s1))
    crossover = r < C
    if crossover:
        ratio = float(der.ratio_from_sums(C, s0, s1))
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

@functools.lru_cache(maxsize=None)
def _excess_functions():
    der = derive_crossover()
    s = der.symbols
    gen = sp.lambdify((s["d"], s["sigma2"], s["psi"]), der.gen_excess, modules="numpy", cse=True)
    pmem = sp.lambdify((s["M"], s["N"], s["C"], s["d"], s["sigma2"]), der.pmem_excess,
                       modules="numpy", cse=True)
    return gen, pmem


def gen_excess_value(d, sigma2, psi):
    """Thm 3.1 approximation ``d sigma2 / (psi sigma2 + 1)`` (arXiv:2508.17689v1 Eq. 18), x0 units.

    Lambdified from ``derive_crossover().gen_excess``; ``psi`` may be an array.

    Examples
    --------
    >>> round(float(gen_excess_value(50, 1.0, grid.psi(grid.paper_grid()[16]))), 3)
    6.49
    """
    return _excess_functions()[0](d, sigma2, np.asarray(psi, dtype=np.float64))


def pmem_excess_value(M, N, C, d, sigma2):
    """Thm 3.2 approximation ``C (1 - M/N) d sigma2`` (arXiv:2508.17689v1 Eq. 19), x0 units.

    Lambdified from ``derive_crossover().pmem_excess``; ``M`` may be an array.
    """
    return _excess_functions()[1](np.asarray(M, dtype=np.float64), N, C, d, sigma2)
