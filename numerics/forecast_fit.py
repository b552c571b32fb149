"""The memorization-time law ``tau_mem = a n^gamma`` fitted on small training sets, with prediction intervals
(arXiv:2505.17638 MT §2-3: ``tau_mem ∝ n``; docs/theory/validation.md §5).

:func:`fit_tau_mem` fits ``log tau_mem = log a + gamma log n`` by weighted least squares.  Each measured
``tau_mem(n)`` comes with an interval from the memorization fraction's confidence interval (the first crossings
of the level by the CI's upper and lower ends); its half-width in ``log tau`` divided by the normal quantile
is that point's standard error, floored by the resolution of the checkpoint grid.  When the points scatter more
than their errors allow (``chi^2 / dof > 1``) every error is scaled by ``sqrt(chi^2 / dof)`` (the Birge ratio).
The forecast at a new ``n`` carries the fit's parameter uncertainty plus the measurement error of one more point
(a prediction interval, not a confidence interval of the mean line).

The inverse of the law at a training budget ``B`` (steps) is the largest training set that memorizes within the
budget, ``n_emm(B) = (B / a)^{1/gamma}``: Gu et al.'s effective model memorization (arXiv:2310.02664 §4) under a
fixed budget.  Pure numpy; no torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.stats import norm

from ..theory import checks

__all__ = ["TauMemFit", "fit_tau_mem", "rf_shape", "LAWS"]

#: ``"power"``: ``tau = a n^gamma`` (two parameters); ``"linear"``: ``tau = a n`` (``gamma = 1`` fixed, the
#: random-features prediction far from the interpolation threshold); ``"rf"``: ``tau = a / (sqrt(n_c / n) - 1)^2``,
#: the shape of the random-features ``tau_mem_formula`` with ``s_t^2`` neglected (linear for ``n << n_c``, diverging
#: at the interpolation threshold ``n_c``; one parameter ``a``, ``n_c`` given).
LAWS = ("power", "linear", "rf")


def rf_shape(n, n_c):
    """``1 / (sqrt(n_c / n) - 1)^2`` (``inf`` for ``n >= n_c``): the ``n`` dependence of the random-features
    ``tau_mem_formula = psi_p / (Delta_t lambda_min)`` with ``lambda_min = s_t^2 + v_t^2 (1 - sqrt(psi_p/psi_n))^2``
    when ``s_t^2`` is neglected and ``psi_p / psi_n = n_c / n`` (arXiv:2505.17638 MT §3; docs/theory/validation.md
    §5).  For ``n << n_c`` it is ``n / n_c`` (``tau ∝ n``)."""
    n = np.asarray(n, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = 1.0 / (np.sqrt(n_c / n) - 1.0) ** 2
    return np.where(n < n_c, out, np.inf)


@dataclass(frozen=True)
class TauMemFit:
    """A fitted memorization-time law ``tau_mem = a n^gamma`` (docs/theory/validation.md §5).

    Attributes
    ----------
    law : {"power", "linear", "rf"}
    a : float
        Steps per ``n^gamma`` (per :func:`rf_shape` for ``law="rf"``).
    gamma : float
        Exponent (1 exactly for ``law="linear"`` and ``"rf"``, where it multiplies ``log rf_shape(n)``).
    cov : ndarray, shape (2, 2)
        Covariance of ``(log a, gamma)`` after the Birge scaling (``gamma`` row and column zero for "linear").
    ns, tau, sigma_log : ndarray
        The fitted points and their standard errors in ``log tau``.
    birge : float
        ``sqrt(chi^2 / dof)`` (1 when there are no degrees of freedom left); errors are scaled by
        ``max(1, birge)``.
    level : float
        Coverage of the intervals (default 0.95).
    n_c : float or None
        Interpolation threshold of ``law="rf"``.
    diagnostics : dict
        ``chi2``, ``dof``, ``r2_log`` (of the log-log fit), ``sigma_new`` (log-space error of one new point).
    """

    law: str
    a: float
    gamma: float
    cov: np.ndarray = field(repr=False)
    ns: np.ndarray = field(repr=False)
    tau: np.ndarray = field(repr=False)
    sigma_log: np.ndarray = field(repr=False)
    birge: float
    level: float
    n_c: float | None = None
    diagnostics: dict = field(default_factory=dict, repr=False)

    def _x(self, n):
        return np.log(rf_shape(n, self.n_c)) if self.law == "rf" else np.log(n)

    @property
    def z(self) -> float:
        """The normal quantile of :attr:`level` (two-sided)."""
        return float(norm.ppf(0.5 + self.level / 2.0))

    def predict(self, n):
        """Forecast ``tau_mem(n)`` with its prediction interval.

        Parameters
        ----------
        n : float or array_like
            Training-set sizes (> 0).

        Returns
        -------
        (center, low, high) : ndarrays (or floats for a scalar ``n``)
            ``a n^gamma`` and the interval ``exp(log center -+ z s)``, ``s^2 = x^T cov x + sigma_new^2`` with
            ``x = (1, log n)``.
        """
        arr = checks.real_array("n", n)
        if np.any(arr <= 0):
            raise ValueError(f"n must be > 0 (got {float(arr.min())!r})")
        x_raw = self._x(arr)
        x = np.where(np.isfinite(x_raw), x_raw, 0.0)
        center = np.where(np.isfinite(x_raw), np.log(self.a) + self.gamma * x, np.inf)
        var = self.cov[0, 0] + 2.0 * x * self.cov[0, 1] + x * x * self.cov[1, 1] + self.diagnostics["sigma_new"] ** 2
        s = np.sqrt(var)
        with np.errstate(invalid="ignore"):
            out = np.exp(center), np.exp(center - self.z * s), np.exp(center + self.z * s)
        return tuple(float(v) for v in out) if np.ndim(n) == 0 else out

    def n_emm(self, budget):
        """Largest training set that memorizes within ``budget`` steps, ``(budget / a)^{1/gamma}``, with the
        interval where the prediction band of ``tau_mem(n)`` crosses the budget (Gu et al.'s effective model
        memorization under a fixed budget, arXiv:2310.02664 §4).

        Returns
        -------
        (center, low, high) : floats (``low``: where the band's upper edge reaches the budget; ``high``: where
        its lower edge does).
        """
        b = checks.positive_float("budget", budget)
        if self.gamma <= 0:
            raise ValueError(f"the fitted exponent gamma = {self.gamma:.3g} is not positive: tau_mem does not grow "
                             f"with n, so no training-set size is safe at any budget")
        if self.law == "rf":   # a / (sqrt(n_c / n) - 1)^2 = b
            center = self.n_c / (1.0 + np.sqrt(self.a / b)) ** 2
        else:
            center = (b / self.a) ** (1.0 / self.gamma)
        # invert the band on a fine log grid (the band's edges need not be monotone far from the data)
        grid = np.exp(np.linspace(np.log(center) - 30.0, np.log(center) + 30.0, 12001))
        _, lo_edge, hi_edge = self.predict(grid)

        def largest(edge):   # largest n whose band edge is still within the budget
            ok = np.nonzero(edge <= b)[0]
            if ok.size == 0 or ok[-1] == grid.size - 1:
                return float("nan")
            return float(grid[ok[-1]])

        return float(center), largest(hi_edge), largest(lo_edge)

    def to_dict(self) -> dict:
        return {"law": self.law, "a": self.a, "gamma": self.gamma, "cov": self.cov.tolist(),
                "ns": self.ns.tolist(), "tau": self.tau.tolist(), "sigma_log": self.sigma_log.tolist(),
                "birge": self.birge, "level": self.level, "n_c": self.n_c, "diagnostics": self.diagnostics}


def fit_tau_mem(ns, tau, *, tau_low=None, tau_high=None, sigma_floor: float = 0.05, law: str = "power",
                level: float = 0.95, n_c=None) -> TauMemFit:
    """Fit ``tau_mem = a n^gamma`` in log-log space with per-point errors (docs/theory/validation.md §5).

    Parameters
    ----------
    ns : array_like
        Training-set sizes (> 0, at least 2 distinct; 1 suffices for ``law="linear"``).
    tau : array_like
        Measured memorization times (> 0), one per size.
    tau_low, tau_high : array_like, optional
        Each time's interval (``tau_low <= tau <= tau_high``; ``inf`` allowed for ``tau_high``).  The standard
        error of ``log tau`` is ``max(log(tau_high / tau_low) / (2 z), sigma_floor)`` with ``z`` the normal
        quantile of ``level``; an infinite end uses the other end alone.  Default: ``sigma_floor`` everywhere.
    sigma_floor : float, default 0.05
        Smallest error in ``log tau`` (the resolution of the checkpoint grid).
    law : {"power", "linear", "rf"}
        ``"linear"`` fixes ``gamma = 1`` (the random-features law of arXiv:2505.17638 MT §3 for ``n << p``);
        ``"rf"`` fits ``tau = a rf_shape(n, n_c)`` (:func:`rf_shape`).
    level : float, default 0.95
        Coverage of the prediction intervals.
    n_c : float, optional
        Interpolation threshold of ``law="rf"`` (required there; every fitted size must lie below it).

    Returns
    -------
    TauMemFit
    """
    law = checks.choice("law", law, LAWS)
    level = checks.probability("level", level)
    sigma_floor = checks.positive_float("sigma_floor", sigma_floor)
    n = np.atleast_1d(checks.real_array("ns", ns)).astype(np.float64)
    t = np.atleast_1d(checks.real_array("tau", tau)).astype(np.float64)
    if n.ndim != 1 or t.shape != n.shape:
        raise ValueError(f"ns and tau must be 1-D of equal length (got shapes {n.shape} and {t.shape})")
    if np.any(n <= 0) or np.any(t <= 0):
        raise ValueError("ns and tau must be > 0 (a memorization time is a positive number of steps)")
    need = 2 if law == "power" else 1
    if law == "rf":
        n_c = checks.positive_float("n_c", n_c)
        if np.any(n >= n_c):
            raise ValueError(f"law='rf' needs every fitted size below the interpolation threshold n_c = {n_c:g} "
                             f"(got n up to {float(n.max()):g})")
    elif n_c is not None:
        raise ValueError(f"n_c is used by law='rf' only (got law={law!r})")
    if np.unique(n).size < need:
        raise ValueError(f"law={law!r} needs at least {need} distinct training-set size(s) with a measured tau_mem "
                         f"(got {np.unique(n).size}); measure more sizes or use law='linear'")
    z = float(norm.ppf(0.5 + level / 2.0))
    lo = t.copy() if tau_low is None else np.atleast_1d(checks.real_array("tau_low", tau_low, finite=False))
    hi = t.copy() if tau_high is None else np.atleast_1d(checks.real_array("tau_high", tau_high, finite=False))
    if lo.shape != n.shape or hi.shape != n.shape:
        raise ValueError("tau_low and tau_high must have the shape of ns")
    if np.any(~(lo > 0)) or np.any(~(lo <= t * (1 + 1e-12))) or np.any(~(hi >= t * (1 - 1e-12))):
        raise ValueError("each interval must satisfy 0 < tau_low <= tau <= tau_high (tau_high may be inf)")
    with np.errstate(divide="ignore", invalid="ignore"):
        half = np.where(np.isfinite(hi), 0.5 * np.log(hi / lo), np.log(t / lo))
    sig = np.maximum(half / z, sigma_floor)
    x = np.log(rf_shape(n, n_c)) if law == "rf" else np.log(n)
    y = np.log(t)
    w = 1.0 / sig ** 2
    if law == "power":
        A = np.stack([np.ones_like(x), x], axis=1)
        cov0 = np.linalg.inv(A.T @ (A * w[:, None]))
        beta = cov0 @ (A.T @ (w * y))
        resid = y - A @ beta
    else:
        c = float(np.sum(w * (y - x)) / np.sum(w))
        beta = np.array([c, 1.0])
        cov0 = np.array([[1.0 / np.sum(w), 0.0], [0.0, 0.0]])
        resid = y - (c + x)
    dof = n.size - need
    chi2 = float(np.sum(w * resid ** 2))
    birge = float(np.sqrt(chi2 / dof)) if dof > 0 else 1.0
    scale = max(1.0, birge)
    cov = cov0 * scale ** 2
    sigma_new = float(np.sqrt(np.mean(sig ** 2))) * scale
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    r2 = 1.0 - float(np.sum(resid ** 2)) / ss_tot if ss_tot > 0 else float("nan")
    return TauMemFit(law=law, a=float(np.exp(beta[0])), gamma=float(beta[1]), cov=cov, ns=n, tau=t, sigma_log=sig,
                     birge=birge, level=float(level), n_c=None if n_c is None else float(n_c),
                     diagnostics={"chi2": chi2, "dof": int(dof), "r2_log": r2, "sigma_new": sigma_new})
