"""Activation functions for the random-features score model (arXiv:2505.17638 MT eq 7).

Built-ins: ``tanh`` (the paper's choice), ``erf``, ``relu`` and ``gelu`` (exact ``x Phi(x)``, not the
tanh approximation).  Any vectorised user callable ``f(np.ndarray) -> np.ndarray`` is accepted too.
An :class:`Activation` records the kinks (points where ``f`` is not smooth) so that the Gaussian
quadratures of :mod:`memlab.theory.gep` can split the real line there (docs/theory/random_features.md §3).

This module is the one table of the built-in activations for every layer: besides the numpy function,
each built-in carries the code of its numba implementation (:mod:`memlab.numerics.rf_gd`) and the name of
its PyTorch function (:mod:`memlab.validation.rf_torch`), so no other module keeps a list of activations.

``relu`` and ``gelu`` have ``mu0 = E sigma(Gamma_t z) != 0``; they are outside the theory unless
centred (docs/theory/random_features.md §1), which :func:`memlab.theory.gep.gep_constants` enforces.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from . import checks

__all__ = ["Activation", "BUILTIN_ACTIVATIONS", "resolve_activation"]

_PROBE = np.linspace(-3.0, 3.0, 7)


@dataclass(frozen=True)
class Activation:
    """An element-wise activation ``sigma`` with the metadata the quadratures need.

    Attributes
    ----------
    name : str
        ``"tanh"``, ``"erf"``, ``"relu"``, ``"gelu"`` or the callable's ``__name__``.
    func : callable
        Vectorised ``f(np.ndarray) -> np.ndarray`` (float64 in, float64 out).
    kinks : tuple of float
        Points where ``f`` is not infinitely differentiable (``(0.0,)`` for relu).  Quadratures split
        the real line there; a user callable with an unknown kink still works but converges slowly
        (the reported ``quad_error`` says how well).
    odd : bool
        ``f(-x) == -f(x)``, hence ``mu0 = 0`` at every ``t`` (checked on a probe grid for callables).
    kernel_code : int
        Branch of the numba activation kernel (built-ins only; ``-1``: a user callable, evaluated in numpy).
    torch_op : str or None
        Dotted name of the PyTorch function under ``torch`` (``"tanh"``, ``"nn.functional.gelu"``; built-ins
        only).
    """

    name: str
    func: Callable = field(repr=False, compare=False)
    kinks: tuple = ()
    odd: bool = False
    kernel_code: int = -1
    torch_op: str | None = None

    def __call__(self, x):
        return np.asarray(self.func(np.asarray(x, dtype=np.float64)), dtype=np.float64)


def _relu(x):
    return np.maximum(x, 0.0)


def _erf(x):
    from scipy import special  # on first use: a prediction for tanh does not load scipy.special

    return special.erf(x)


_erf.__name__ = "erf"


def _gelu(x):
    from scipy import special

    return x * special.ndtr(x)


_BUILTINS = {
    "tanh": Activation("tanh", np.tanh, (), True, 0, "tanh"),
    "erf": Activation("erf", _erf, (), True, 1, "erf"),
    "relu": Activation("relu", _relu, (0.0,), False, 2, "relu"),
    "gelu": Activation("gelu", _gelu, (), False, 3, "nn.functional.gelu"),
}
BUILTIN_ACTIVATIONS = tuple(_BUILTINS)


def resolve_activation(activation) -> Activation:
    """Return the :class:`Activation` for a built-in name, an ``Activation`` or a vectorised callable.

    Parameters
    ----------
    activation : str, Activation or callable
        One of :data:`BUILTIN_ACTIVATIONS`, or ``f(np.ndarray) -> np.ndarray`` of the same shape.

    Raises
    ------
    ValueError
        Unknown name, or a callable that is not vectorised / returns non-finite values on
        ``linspace(-3, 3, 7)``.
    TypeError
        Neither a string nor a callable.

    Examples
    --------
    >>> resolve_activation("relu").kinks
    (0.0,)
    >>> resolve_activation(lambda x: x**3).name
    '<lambda>'
    """
    if isinstance(activation, Activation):
        return activation
    if isinstance(activation, str):
        key = activation.strip().lower()
        if key not in _BUILTINS:
            raise ValueError(f"activation must be one of {', '.join(BUILTIN_ACTIVATIONS)} or a vectorised "
                             f"callable (got {activation!r})")
        return _BUILTINS[key]
    if not callable(activation):
        raise TypeError(f"activation must be a name ({', '.join(BUILTIN_ACTIVATIONS)}) or a vectorised callable "
                        f"(got {type(activation).__name__})")
    try:
        raw = activation(_PROBE.copy())
    except Exception as exc:  # noqa: BLE001 -- any failure means "not usable on arrays"
        raise ValueError(f"activation callable must be vectorised: f(np.ndarray) -> np.ndarray of the same "
                         f"shape (calling it on linspace(-3, 3, 7) raised {type(exc).__name__}: {exc})") from None
    y = checks.real_array("activation (the callable's values on linspace(-3, 3, 7))", raw, finite=False)
    if y.shape != _PROBE.shape:
        raise ValueError(f"activation callable must be vectorised: f(np.ndarray) -> np.ndarray of the same shape "
                         f"(got shape {y.shape} for an input of shape {_PROBE.shape})")
    if not np.all(np.isfinite(y)):
        raise ValueError("activation callable must return finite values (got non-finite values on linspace(-3, 3, 7))")
    y_neg = checks.real_array("activation (the callable's values on -linspace(-3, 3, 7))", activation(-_PROBE),
                              finite=False)
    odd = bool(np.allclose(y_neg, -y, rtol=1e-14, atol=1e-15))
    name = getattr(activation, "__name__", type(activation).__name__)
    return Activation(str(name), activation, (), odd)
