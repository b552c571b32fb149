"""numba kernel modules run as plain Python: the same source, executed without numba.

A one-off answer (``memlab timescales`` at the command line) spends about a second importing numba and loading
its compiled kernels from the on-disk cache (numba's import about 0.35 s, its first dispatch about 0.6 s on the
2-core development machine), for a computation that then takes a few milliseconds.  :func:`interpreted` executes
a kernel module's own source with ``njit`` as the identity, ``prange`` as ``range`` and ``literal_unroll`` as
the identity, so the functions run as ordinary Python on Python scalars and numpy arrays: no numba import, no
compilation, about 40-50x slower per point than the compiled kernels.  The arithmetic is the same source's
(IEEE double, the same operation order), so results agree with the compiled kernels to rounding
(``tests/test_rf_spectrum.py`` checks the spectrum).

Only modules whose kernels are written for this (scalar code, no numba-only constructs) are listed in
:data:`KERNEL_MODULES`; their relative imports of each other resolve to the interpreted twins.
"""

from __future__ import annotations

import builtins
import importlib.util
import threading
import types

__all__ = ["interpreted", "is_interpreted", "KERNEL_MODULES"]

#: kernel modules of :mod:`memlab.numerics` that can run interpreted
KERNEL_MODULES = ("_rf_generated", "_rf_solver")


def _njit(*args, **kwargs):
    """``numba.njit`` as the identity, with or without options."""
    if len(args) == 1 and callable(args[0]) and not kwargs:
        return args[0]
    return lambda f: f


def _numba_stub() -> types.ModuleType:
    stub = types.ModuleType("numba")
    stub.njit = _njit
    stub.prange = range
    stub.literal_unroll = lambda x: x
    return stub


_SUFFIX = "[interpreted]"
_LOCK = threading.RLock()
_TWINS: dict[str, types.ModuleType] = {}


def interpreted(name: str) -> types.ModuleType:
    """The interpreted twin of ``memlab.numerics.<name>`` (one per process).

    Parameters
    ----------
    name : str
        One of :data:`KERNEL_MODULES`.

    Raises
    ------
    ValueError
        ``name`` is not a kernel module that runs interpreted.
    ImportError
        The module's source is not installed (only compiled bytecode).
    """
    if name not in KERNEL_MODULES:
        raise ValueError(f"name must be one of {KERNEL_MODULES} (got {name!r})")
    with _LOCK:
        if name in _TWINS:
            return _TWINS[name]
        full = f"{__package__}.{name}"
        spec = importlib.util.find_spec(full)
        source = spec.loader.get_source(full) if spec is not None and spec.loader is not None else None
        if source is None:
            raise ImportError(f"the source of {full} is not installed: the interpreted engine needs it "
                              "(use engine='numba')")
        module = types.ModuleType(full + _SUFFIX)
        module.__file__ = spec.origin
        module.__package__ = __package__
        stub = _numba_stub()

        def _import(mod, globals=None, locals=None, fromlist=(), level=0):
            if (level == 0 and (mod == "numba" or mod.startswith("numba."))) or (level == 1 and mod == "_jit"):
                return stub  # ``from ._jit import njit`` (the caching njit) too: no numba import
            if level == 1 and mod in KERNEL_MODULES:
                return interpreted(mod)
            return builtins.__import__(mod, globals, locals, fromlist, level)

        module.__dict__["__builtins__"] = {**builtins.__dict__, "__import__": _import}
        exec(compile(source, spec.origin, "exec"), module.__dict__)
        _TWINS[name] = module
        return module


def is_interpreted(module: types.ModuleType) -> bool:
    """Whether ``module`` is an interpreted twin (its kernels cannot run a numba parallel region)."""
    return module.__name__.endswith(_SUFFIX)
