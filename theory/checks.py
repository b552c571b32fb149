"""Input validation shared by every layer.

Every public entry point validates its arguments here so that bad input gets a
``ValueError`` (wrong value) or ``TypeError`` (wrong type) whose message names
the parameter and states the allowed range.
"""

from __future__ import annotations

import numbers

import numpy as np


def positive_int(name: str, value, *, minimum: int = 1) -> int:
    """Return ``value`` as an ``int`` >= ``minimum`` or raise naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be an integer >= {minimum} (got {value!r} of type {type(value).__name__})")
    if isinstance(value, numbers.Integral):
        out = int(value)
    else:
        f = float(value)
        if not np.isfinite(f) or not f.is_integer():
            raise ValueError(f"{name} must be an integer >= {minimum} (got {value!r})")
        out = int(f)
    if out < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum} (got {value!r})")
    return out


def positive_float(name: str, value, *, allow_zero: bool = False) -> float:
    """Return ``value`` as a finite ``float`` > 0 (>= 0 with ``allow_zero``)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number (got {value!r} of type {type(value).__name__})")
    f = float(value)
    rng = ">= 0" if allow_zero else "> 0"
    if not np.isfinite(f) or f < 0 or (f == 0 and not allow_zero):
        raise ValueError(f"{name} must be a finite number {rng} (got {value!r})")
    return f


def unit_interval_times(name: str, values) -> np.ndarray:
    """Return a 1-D float64 array of times, each strictly inside (0, 1)."""
    arr = _real_array(name, values)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D sequence of times in (0, 1) (got shape {arr.shape})")
    if not np.all(np.isfinite(arr)) or np.any(arr <= 0.0) or np.any(arr >= 1.0):
        bad = arr[~(np.isfinite(arr) & (arr > 0) & (arr < 1))][0]
        raise ValueError(f"{name} must lie in the open interval (0, 1) (got {bad!r})")
    return arr


def unit_time(name: str, value) -> float:
    """Return a scalar time as a ``float`` strictly inside (0, 1)."""
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, np.ndarray)):
        raise TypeError(f"{name} must be a number in (0, 1) (got {value!r})")
    try:
        tf = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number in (0, 1) (got {value!r})") from None
    if not np.isfinite(tf) or not 0.0 < tf < 1.0:
        raise ValueError(f"{name} must lie in the open interval (0, 1) (got {value!r})")
    return tf


def weights(name: str, values, n: int) -> np.ndarray:
    """Return a 1-D float64 array of ``n`` finite, non-negative, not-all-zero weights."""
    arr = _real_array(name, values)
    if arr.ndim != 1 or arr.size != n:
        raise ValueError(f"{name} must have one weight per time: length {n} (got shape {arr.shape})")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite (got a non-finite weight)")
    if np.any(arr < 0):
        raise ValueError(f"{name} must be >= 0 (got {arr[arr < 0][0]!r})")
    if not np.any(arr > 0):
        raise ValueError(f"{name} must have at least one weight > 0 (got all zeros)")
    return arr


def finite_array(name: str, values, *, ndim: int | None = None) -> np.ndarray:
    """Return ``values`` as a finite float64 array (optionally of ``ndim`` dimensions)."""
    arr = _real_array(name, values)
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must be a {ndim}-D array (got shape {arr.shape})")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must contain only finite values (got NaN or inf)")
    return arr


def _real_array(name: str, values) -> np.ndarray:
    if isinstance(values, (str, bytes)):
        raise TypeError(f"{name} must be an array of real numbers (got a string)")
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be an array of real numbers ({exc})") from None
    return arr


class MemlabValidityWarning(UserWarning):
    """A prediction is used outside the assumptions of the theorem it comes from.

    The same message is also stored in the result's diagnostics (``warnings`` field).
    """
