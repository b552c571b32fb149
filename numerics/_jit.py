"""``numba.njit`` for memlab's kernels: on-disk caching that degrades instead of failing.

Every kernel module of :mod:`memlab.numerics` imports ``njit`` from here (``from ._jit import njit``) and
decorates with ``@njit(cache=True, ...)`` exactly as with numba's.  Without a writable cache location numba
refuses ``cache=True`` at decoration time ("cannot cache function ...: no locator available"), which made
``import memlab.numerics.<kernels>`` fail on a read-only install (a container image, a read-only
site-packages) whose user has no writable home.  Here ``cache=True`` means, in this order:

1. numba's own locations, unchanged: ``NUMBA_CACHE_DIR`` when set, else the ``__pycache__`` folder next to
   the source, else the user-wide cache (``$XDG_CACHE_HOME/numba`` or ``~/.cache/numba``);
2. when numba finds none of them writable: the per-user folder ``<tempfile.gettempdir()>/memlab-numba-<uid>``
   (``NUMBA_CACHE_DIR`` semantics for memlab's kernels only; created with mode 0700, and used only when it is
   a real folder owned by this user and not writable by group or others, since numba cache files are
   pickles that a planted file could abuse).  No warning: the kernels are cached as usual, only elsewhere;
3. otherwise the kernels compile in every process without caching (slower first calls, same results), and
   ONE :class:`RuntimeWarning` per process says so, why, and how to restore caching (set
   ``NUMBA_CACHE_DIR`` to a writable folder).  A ``RuntimeWarning``, not
   :class:`memlab.theory.checks.MemlabValidityWarning`: the results are unaffected, only the speed.

Any other numba error propagates unchanged.  ``NUMBA_DISABLE_JIT=1`` keeps its meaning (plain Python).
``tests/test_numba_cache.py`` runs a copy of the package whose cache locations are all unusable.
"""

from __future__ import annotations

import os
import stat
import tempfile
import threading
import warnings

import numba
from numba.core import config

__all__ = ["njit"]

_NO_LOCATOR = "no locator available"
_LOCK = threading.Lock()
_UNSET = object()
_fallback: dict = {"dir": _UNSET, "why": "", "warned": False}


def njit(*args, **options):
    """``numba.njit`` whose ``cache=True`` degrades: numba's locations, then a per-user temp folder, then no
    cache with one :class:`RuntimeWarning` (see the module docstring).

    Used as ``@njit``, ``@njit(cache=True, parallel=True, ...)`` or ``njit(signature, **options)``.
    """
    if len(args) == 1 and callable(args[0]) and not options:
        return _compile(args[0], (), {})
    return lambda func: _compile(func, args, options)


def _compile(func, args, options):
    try:
        return numba.njit(*args, **options)(func)
    except RuntimeError as exc:
        if not options.get("cache") or _NO_LOCATOR not in str(exc):
            raise
    with _LOCK:
        path = _fallback_dir()
        if path is not None:
            old = config.CACHE_DIR
            config.CACHE_DIR = path  # read by numba's locator when the dispatcher is built, not later
            try:
                return numba.njit(*args, **options)(func)
            except RuntimeError as exc:
                if _NO_LOCATOR not in str(exc):
                    raise
                _fallback["why"] = f"{path} is not writable"
            finally:
                config.CACHE_DIR = old
        if not _fallback["warned"]:
            _fallback["warned"] = True
            env = (f"NUMBA_CACHE_DIR={config.CACHE_DIR!r} not writable" if config.CACHE_DIR
                   else "NUMBA_CACHE_DIR unset")
            warnings.warn(f"memlab: numba found no writable cache folder ({env}, the package's __pycache__ and "
                          f"the user cache folder not writable) and {_fallback['why']}: memlab's numba "
                          "kernels compile in every process without on-disk caching (slower first calls, same "
                          "results); set NUMBA_CACHE_DIR to a writable folder to cache them",
                          RuntimeWarning, stacklevel=3)
    return numba.njit(*args, **{**options, "cache": False})(func)


def _fallback_dir() -> str | None:
    """``<tempdir>/memlab-numba-<uid>`` when it is (or can be made) a private writable folder, else None with
    the reason in ``_fallback["why"]``.  Call with ``_LOCK`` held."""
    if _fallback["dir"] is not _UNSET:
        return _fallback["dir"]
    path = None
    try:
        user = str(os.getuid()) if hasattr(os, "getuid") else os.environ.get("USERNAME", "user")
        path = os.path.join(tempfile.gettempdir(), f"memlab-numba-{user}")
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            pass
        st = os.lstat(path)
        if not stat.S_ISDIR(st.st_mode):
            raise OSError("it is not a folder (a file or a symbolic link)")
        if hasattr(os, "getuid") and (st.st_uid != os.getuid() or st.st_mode & 0o022):
            raise OSError("it belongs to another user or is writable by group or others")
        tempfile.TemporaryFile(dir=path).close()
        _fallback["dir"] = path
    except OSError as exc:  # includes no usable temp folder at all (FileNotFoundError from gettempdir)
        where = path or "no temporary folder"
        _fallback["why"] = f"the fallback {where} is not usable ({getattr(exc, 'strerror', None) or exc})"
        _fallback["dir"] = None
    return _fallback["dir"]
