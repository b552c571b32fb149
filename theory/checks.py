"""Input validation shared by every layer: the one vocabulary of memlab's checks.

Every public entry point validates its arguments here so that bad input gets a ``ValueError`` (a value out of
range: NaN, inf, negative, too large, wrong shape, empty) or a ``TypeError`` (a wrong type: a string where a
number belongs, a complex or boolean array, a ragged nested list, ``None``) whose message names the parameter,
shows the value and states the allowed range.  Numpy's own conversion messages ("could not convert string to
float", "setting an array element with a sequence") and its ``ComplexWarning`` never reach the user.

Vocabulary
----------
- sizes and counts: :func:`positive_int` (alias :func:`integer`), upper bound :data:`MAX_INT`; seeds:
  :func:`seed`; the memory a size implies: :func:`memory`;
- reals: :func:`real` (finite, in a range), :func:`positive_float`; times: :func:`unit_time`,
  :func:`unit_interval_times` (the laboratory's ``t`` in (0, 1)), :func:`ou_time` (the OU time of the
  random-features model, in (0, :data:`MAX_OU_TIME`]), :func:`probability`;
- arrays: :func:`real_array` (real dtype, optional shape and finiteness), :func:`finite_array`, :func:`weights`;
- options: :func:`choice`, :func:`boolean` (no truthiness: ``"abc"`` is not ``True``), :func:`ignored` (an
  option the chosen method does not use).
"""

from __future__ import annotations

import numbers
import os

import numpy as np

__all__ = ["MAX_INT", "MAX_SEED", "MAX_OU_TIME", "MemlabValidityWarning", "positive_int", "integer", "seed",
           "memory", "memory_limit_bytes", "real", "positive_float", "unit_time", "unit_interval_times", "ou_time",
           "probability", "real_array", "finite_array", "weights", "choice", "boolean", "ignored", "show"]

#: Largest size or count accepted: integers beyond 2**53 are not exact as float64, so no array, index or
#: step count of memlab can use them (the memory check of :func:`memory` usually binds far earlier).
MAX_INT = 2 ** 53
#: Largest seed (seeds are stored as int64 in checkpoints).
MAX_SEED = 2 ** 63 - 1
#: Largest OU time ``t`` of the random-features model: beyond t = 18.4, e^{-2t} < 1e-16 and every quantity
#: equals its t = infinity value to float64; at t = 50 the signal scale e^{-t} sigma_x is still representable.
MAX_OU_TIME = 50.0


def show(value, limit: int = 60) -> str:
    """A short ``repr`` of ``value`` for error messages (arrays summarised by shape and dtype)."""
    if isinstance(value, np.ndarray) and value.size > 8:
        return f"array of shape {value.shape} and dtype {value.dtype}"
    if isinstance(value, np.generic) and value.dtype.kind in "biuf":   # np.float64(1.5) shows as 1.5
        value = value.item()
    try:
        text = repr(value)
    except Exception:  # pragma: no cover - a broken __repr__
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _scalar(value):
    """A 0-d numpy array of a real dtype becomes its Python scalar; everything else is returned unchanged."""
    if isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "iuf":
        return value.item()
    return value


def positive_int(name: str, value, *, minimum: int = 1, maximum: int | None = MAX_INT) -> int:
    """Return ``value`` as an ``int`` in ``[minimum, maximum]`` or raise naming ``name``.

    Integer-valued floats (``10.0``) are accepted; booleans, strings, complex numbers and non-whole floats are not.
    ``maximum=None`` removes the upper bound.
    """
    value = _scalar(value)
    top = "2**53" if maximum == MAX_INT else "2**63 - 1" if maximum == MAX_SEED else str(maximum)
    rng = f">= {minimum}" if maximum is None else f"in [{minimum}, {top}]"
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be an integer {rng} (got {show(value)} of type {type(value).__name__})")
    if isinstance(value, numbers.Integral):
        out = int(value)
    else:
        try:
            f = float(value)
        except (OverflowError, ValueError):
            raise ValueError(f"{name} must be an integer {rng} (got {show(value)})") from None
        if not np.isfinite(f) or not f.is_integer():
            raise ValueError(f"{name} must be an integer {rng} (got {show(value)})")
        out = int(f)
    if out < minimum or (maximum is not None and out > maximum):
        raise ValueError(f"{name} must be an integer {rng} (got {show(value)})")
    return out


integer = positive_int


def seed(name: str, value) -> int:
    """A seed: an integer in ``[0, MAX_SEED]``."""
    return positive_int(name, value, minimum=0, maximum=MAX_SEED)


def memory_limit_bytes() -> int:
    """Physical memory of this machine (bytes): the most any one array of memlab may take."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):  # pragma: no cover - non-POSIX
        return 1 << 40


def memory(what: str, n_bytes) -> None:
    """Raise a ``ValueError`` when ``what`` (a phrase naming the parameters, e.g. ``"N*d = ..."``) needs more
    than the machine's physical memory."""
    limit = memory_limit_bytes()
    if float(n_bytes) > limit:
        raise ValueError(f"{what} needs {float(n_bytes) / 2 ** 30:.3g} GiB, more than this machine's "
                         f"{limit / 2 ** 30:.3g} GiB of memory")


def real(name: str, value, *, low: float | None = None, high: float | None = None, low_open: bool = False,
         high_open: bool = False) -> float:
    """Return ``value`` as a finite ``float`` in the interval given by ``low``/``high`` (closed unless
    ``low_open``/``high_open``)."""
    value = _scalar(value)
    lo = "-inf" if low is None else f"{low:g}"
    hi = "inf" if high is None else f"{high:g}"
    rng = f"{'(' if low_open or low is None else '['}{lo}, {hi}{')' if high_open or high is None else ']'}"
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number in {rng} (got {show(value)} of type {type(value).__name__})")
    try:
        f = float(value)
    except (OverflowError, ValueError):
        raise ValueError(f"{name} must be a finite real number in {rng} (got {show(value)})") from None
    ok = np.isfinite(f)
    if ok and low is not None:
        ok = f > low if low_open else f >= low
    if ok and high is not None:
        ok = f < high if high_open else f <= high
    if not ok:
        raise ValueError(f"{name} must be a finite real number in {rng} (got {show(value)})")
    return f


def positive_float(name: str, value, *, allow_zero: bool = False, maximum: float | None = None) -> float:
    """Return ``value`` as a finite ``float`` > 0 (>= 0 with ``allow_zero``), at most ``maximum`` when given."""
    return real(name, value, low=0.0, low_open=not allow_zero, high=maximum)


def ou_time(name: str, value) -> float:
    """The OU diffusion time of the random-features model: a finite float in ``(0, MAX_OU_TIME]``."""
    return real(name, value, low=0.0, low_open=True, high=MAX_OU_TIME)


def probability(name: str, value, *, open_low: bool = True, open_high: bool = True) -> float:
    """A number in the unit interval (open at either end unless told otherwise)."""
    return real(name, value, low=0.0, high=1.0, low_open=open_low, high_open=open_high)


def unit_time(name: str, value) -> float:
    """Return a scalar time as a ``float`` strictly inside (0, 1)."""
    return real(name, value, low=0.0, high=1.0, low_open=True, high_open=True)


def _real_array(name: str, values) -> np.ndarray:
    """``values`` as a float64 array; a ``TypeError`` naming ``name`` for strings, ``None``, booleans, complex
    numbers and other non-real entries, a ``ValueError`` for ragged nested sequences and overflowing integers."""
    what = f"{name} must be an array of real numbers"
    if values is None or isinstance(values, (str, bytes)):
        raise TypeError(f"{what} (got {show(values)} of type {type(values).__name__})")
    if isinstance(values, np.ndarray) and values.dtype.kind in "iuf":
        return values.astype(np.float64, copy=False)
    try:
        raw = np.asarray(values)
    except (ValueError, TypeError):
        raise ValueError(f"{name} must be a rectangular array of real numbers (got a ragged nested sequence "
                         f"{show(values)})") from None
    kind = raw.dtype.kind
    if kind == "c":
        raise TypeError(f"{what}, not complex (got dtype {raw.dtype}); pass the real part explicitly if the "
                        f"imaginary part is meant to be dropped")
    if kind == "b":
        raise TypeError(f"{what}, not booleans (got {show(values)})")
    if kind not in "iuf":
        if kind not in "O" or any(isinstance(v, (str, bytes, complex, np.complexfloating, bool, np.bool_))
                                  or v is None for v in raw.reshape(-1)):
            raise TypeError(f"{what} (got {show(values)} of dtype {raw.dtype})")
        try:
            return raw.astype(np.float64)
        except OverflowError:
            raise ValueError(f"{name} must hold finite real numbers (got an entry too large for float64)") from None
        except (TypeError, ValueError):
            raise TypeError(f"{what} (got {show(values)})") from None
    return raw.astype(np.float64, copy=False)


def _shape_text(shape) -> str:
    return "(" + ", ".join("*" if s is None else str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def real_array(name: str, values, *, ndim: int | None = None, shape: tuple | None = None, finite: bool = True,
               nonempty: bool = False) -> np.ndarray:
    """Return ``values`` as a float64 array of a real dtype.

    Parameters
    ----------
    name : str
        The parameter named in the error.
    ndim : int, optional
        Required number of dimensions.
    shape : tuple of (int or None), optional
        Required shape; ``None`` entries match any length (e.g. ``(None, d)``).
    finite : bool, default True
        Reject NaN and inf.
    nonempty : bool, default False
        Reject arrays with no elements.
    """
    arr = _real_array(name, values)
    if shape is not None:
        ok = arr.ndim == len(shape) and all(s is None or s == a for s, a in zip(shape, arr.shape))
        if not ok:
            raise ValueError(f"{name} must have shape {_shape_text(shape)} (got shape {arr.shape})")
    elif ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must be a {ndim}-D array (got shape {arr.shape})")
    if nonempty and arr.size == 0:
        raise ValueError(f"{name} must not be empty (got shape {arr.shape})")
    if finite and not np.all(np.isfinite(arr)):
        bad = arr[~np.isfinite(arr)].reshape(-1)[0]
        raise ValueError(f"{name} must contain only finite values (got {bad!r})")
    return arr


def finite_array(name: str, values, *, ndim: int | None = None, shape: tuple | None = None,
                 nonempty: bool = False) -> np.ndarray:
    """Return ``values`` as a finite float64 array (optionally of ``ndim`` dimensions or a given shape)."""
    return real_array(name, values, ndim=ndim, shape=shape, finite=True, nonempty=nonempty)


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


def choice(name: str, value, options):
    """Return ``value`` if it is one of ``options`` (compared as strings); else a ``ValueError`` listing them
    (a ``TypeError`` for a non-string)."""
    listed = ", ".join(repr(o) for o in options)
    if not isinstance(value, str):
        raise TypeError(f"{name} must be one of {listed} (got {show(value)} of type {type(value).__name__})")
    if value not in options:
        raise ValueError(f"{name} must be one of {listed} (got {value!r})")
    return value


def boolean(name: str, value) -> bool:
    """Return ``value`` as a ``bool``; only ``True``/``False`` (and numpy booleans) are accepted, so a string or a
    number is never read by its truthiness."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False (got {show(value)} of type {type(value).__name__})")
    return bool(value)


def ignored(name: str, value, default, *, reason: str) -> None:
    """Raise a ``ValueError`` when an option that the chosen method does not use was set to anything but its
    default (``reason`` says which method uses it)."""
    try:
        same = value is default or (type(value) is type(default) and bool(value == default))
    except (TypeError, ValueError):  # e.g. an array compared with a number
        same = False
    if same:
        return
    raise ValueError(f"{name}={show(value)} is not used here: {reason}; leave it at its default {default!r}")


class MemlabValidityWarning(UserWarning):
    """A prediction is used outside the assumptions of the theorem it comes from.

    The same message is also stored in the result's diagnostics (``warnings`` field).
    """
