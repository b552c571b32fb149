"""The one parameter object of the random-features score model (arXiv:2505.17638 MT §3, eq 7).

Every random-features entry point of memlab (spectrum, timescales, finite-size matrices, learning curves,
phase diagram, GD simulation, PyTorch training) takes an :class:`RFModel` first, so the same idea has the
same name and order everywhere (docs/theory/random_features.md §7).
"""

from __future__ import annotations

import dataclasses
import functools
import math

import numpy as np

from . import checks
from .activations import Activation, resolve_activation
from .gep import SIGMA_X_MAX, SIGMA_X_MIN, GEPConstants, gep_constants

__all__ = ["RFModel", "DEFAULT_D", "MAX_RATIO"]

#: The one default dimension of the finite-size models: the paper's d = 100 (MT Fig. 5, SM D).
DEFAULT_D = 100
#: Largest ratio psi_p, psi_n: p = psi_p d and n = psi_n d must stay exact integers (2**53) at d = 1.
MAX_RATIO = float(checks.MAX_INT)


def _atoms(covariance):
    if not isinstance(covariance, (tuple, list)) or len(covariance) != 2:
        raise TypeError("covariance must be a pair (thetas, omegas) of eigenvalue atoms of Sigma and their weights")
    th = np.atleast_1d(checks.finite_array("covariance thetas", covariance[0]))
    om = np.atleast_1d(checks.finite_array("covariance omegas", covariance[1]))
    if th.ndim != 1 or om.ndim != 1:
        raise ValueError(f"covariance thetas and omegas must be 1-D sequences (got shapes {th.shape} and {om.shape})")
    if th.size == 0 or th.size != om.size:
        raise ValueError(f"covariance thetas and omegas must be non-empty and of equal length "
                         f"(got {th.size} and {om.size})")
    if np.any(th <= 0):
        raise ValueError(f"covariance thetas must be > 0 (got {th[th <= 0][0]!r})")
    if np.any(om <= 0):
        raise ValueError(f"covariance omegas must be > 0: every atom needs a positive mass (got {om[om <= 0][0]!r})")
    om = om / om.sum()
    return tuple(map(float, th)), tuple(map(float, om))


@dataclasses.dataclass(frozen=True)
class RFModel:
    """A random-features score model ``s(x) = (A/sqrt(p)) sigma(W x / sqrt(d))`` trained at one diffusion time.

    Parameters
    ----------
    psi_p, psi_n : float
        ``p/d`` (features per dimension) and ``n/d`` (training points per dimension), both > 0 (at most 2**53).
    t : float
        Diffusion time of the OU process, in ``(0, 50]``; ``Delta_t = 1 - e^{-2t}``.
    d : int, default 100
        Data dimension of the finite-size models (the paper's value).  The high-dimensional routes
        (spectrum, timescales, ``method="asymptotic"``) use only the ratios.
    activation : str, Activation or callable, default "tanh"
        ``"tanh"`` (the paper's), ``"erf"``, ``"relu"``/``"gelu"`` (need ``center=True``) or a vectorised
        callable; stored as an :class:`~memlab.theory.activations.Activation`.
    sigma_x : float, optional
        Data scale, ``Sigma = sigma_x^2 I``, in ``[1e-8, 1e8]``; default 1, or ``sqrt(sum omega theta)`` with
        ``covariance``.
    center : bool, default False
        Use ``sigma(h) - mu0(t)`` in every layer (required when ``mu0 != 0``).
    seed : int, default 0
        Seed of the finite-size draws: ``W``, ``X``, ``Omega`` in that order from
        ``numpy.random.default_rng(seed)``.
    covariance : (thetas, omegas), optional
        Eigenvalue atoms of the data covariance and their weights (e.g. ``([0.5, 1.5], [0.5, 0.5])``, the
        paper's Fig. 4 right); finite-size models need ``omega d`` to be whole numbers.

    Raises
    ------
    ValueError, TypeError
        A field out of range, naming the field and the allowed range.

    Examples
    --------
    >>> m = RFModel.from_sizes(800, 6400, 100, 0.1)
    >>> m.psi_p, m.psi_n, m.n, m.p
    (64.0, 8.0, 800, 6400)
    >>> m.replace(psi_n=16).n
    1600
    """

    psi_p: float
    psi_n: float
    t: float
    d: int = DEFAULT_D
    activation: Activation = "tanh"
    sigma_x: float | None = None
    center: bool = False
    seed: int = 0
    covariance: tuple | None = None

    def __post_init__(self):
        put = object.__setattr__
        put(self, "psi_p", checks.positive_float("psi_p", self.psi_p, maximum=MAX_RATIO))
        put(self, "psi_n", checks.positive_float("psi_n", self.psi_n, maximum=MAX_RATIO))
        put(self, "t", checks.ou_time("t", self.t))
        put(self, "d", checks.positive_int("d", self.d))
        put(self, "seed", checks.seed("seed", self.seed))
        put(self, "center", checks.boolean("center", self.center))
        put(self, "activation", resolve_activation(self.activation))
        sx = None if self.sigma_x is None else checks.real("sigma_x", self.sigma_x, low=SIGMA_X_MIN, high=SIGMA_X_MAX)
        if self.covariance is not None:
            th, om = _atoms(self.covariance)
            s_cov = checks.real("covariance (its data scale sqrt(sum(omega*theta)))",
                                math.sqrt(sum(a * b for a, b in zip(th, om))), low=SIGMA_X_MIN, high=SIGMA_X_MAX)
            if sx is not None and not math.isclose(sx, s_cov, rel_tol=1e-12):
                raise ValueError(f"sigma_x={sx:g} contradicts covariance (sigma_x^2 = sum(omega*theta) = "
                                 f"{s_cov ** 2:.6g}); give only one of them")
            put(self, "covariance", (th, om))
            sx = s_cov
        put(self, "sigma_x", 1.0 if sx is None else sx)

    @classmethod
    def from_sizes(cls, n, p, d, t, **options) -> "RFModel":
        """The model with ``n`` training points, ``p`` features in dimension ``d`` (``psi_n = n/d``, ``psi_p = p/d``)."""
        n = checks.positive_int("n", n)
        p = checks.positive_int("p", p)
        d = checks.positive_int("d", d)
        return cls(psi_p=p / d, psi_n=n / d, t=t, d=d, **options)

    def replace(self, **changes) -> "RFModel":
        """A copy with some fields changed (``covariance`` changes re-derive ``sigma_x``)."""
        if "covariance" in changes and "sigma_x" not in changes:
            changes["sigma_x"] = None
        if "sigma_x" in changes and "covariance" not in changes and self.covariance is not None:
            changes["covariance"] = None
        return dataclasses.replace(self, **changes)

    @property
    def n(self) -> int:
        """Training points ``round(psi_n d)`` (may be 0 for a tiny ``d``; see :meth:`sizes`)."""
        return int(round(self.psi_n * self.d))

    @property
    def p(self) -> int:
        """Random features ``round(psi_p d)`` (may be 0 for a tiny ``d``; see :meth:`sizes`)."""
        return int(round(self.psi_p * self.d))

    def sizes(self) -> tuple[int, int, int]:
        """``(n, p, d)`` of the finite-size model; a ``ValueError`` naming ``d`` when ``n`` or ``p`` rounds to 0."""
        n, p = self.n, self.p
        if n < 1 or p < 1:
            raise ValueError(f"d={self.d} is too small for psi_p={self.psi_p:g}, psi_n={self.psi_n:g}: need "
                             f"p = round(psi_p*d) >= 1 and n = round(psi_n*d) >= 1")
        return n, p, self.d

    @functools.cached_property
    def constants(self) -> GEPConstants:
        """Gaussian-equivalence constants of ``(t, activation, sigma_x, center)`` (computed once)."""
        return gep_constants(self.t, activation=self.activation, sigma_x=self.sigma_x, center=self.center)

    @property
    def thetas(self) -> np.ndarray:
        """Eigenvalue atoms of ``Sigma`` (``[sigma_x^2]`` for isotropic data)."""
        return np.array(self.covariance[0] if self.covariance else (self.sigma_x ** 2,))

    @property
    def omegas(self) -> np.ndarray:
        """Weights of :attr:`thetas` (sum 1)."""
        return np.array(self.covariance[1] if self.covariance else (1.0,))

    @property
    def cov_eigs(self) -> np.ndarray:
        """The ``d`` eigenvalues of the (diagonal) data covariance of the finite-size model."""
        if self.covariance is None:
            return np.full(self.d, self.sigma_x ** 2)
        counts = np.asarray(self.covariance[1]) * self.d
        whole = np.round(counts)
        if np.any(np.abs(counts - whole) > 1e-9) or int(whole.sum()) != self.d:
            raise ValueError(f"covariance weights {self.covariance[1]} times d={self.d} must be whole numbers "
                             f"for a finite-size model (one eigenvalue of Sigma per coordinate)")
        return np.repeat(np.asarray(self.covariance[0]), whole.astype(int))

    def summary(self) -> str:
        """One line: the ratios, sizes at ``d`` and the activation."""
        cov = "" if self.covariance is None else f", covariance atoms {self.covariance}"
        return (f"RF model psi_p={self.psi_p:g}, psi_n={self.psi_n:g}, t={self.t:g} (d={self.d}: p={self.p}, "
                f"n={self.n}), {self.activation.name}{' centred' if self.center else ''}, "
                f"sigma_x={self.sigma_x:g}{cov}, seed={self.seed}")

    def to_dict(self) -> dict:
        """JSON-friendly fields (the activation by name)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["activation"] = self.activation.name
        out.update(n=self.n, p=self.p)
        return out

