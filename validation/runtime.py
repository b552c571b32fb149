"""The trainer runtime shared by the GMM, random-features and DDPM trainers (docs/theory/validation.md §1).

One home for what every trainer needs around its training loop:

* files: :func:`atomic_save` (torch checkpoints) and :func:`write_json_atomic` write a temporary file in the
  target folder and rename it, so a killed run never leaves a half-written file; :func:`load_checkpoint`
  checks that a checkpoint belongs to the run that resumes it;
* settings: :func:`resolve_device`, :func:`torch_dtype`, :func:`threads` (torch and BLAS thread counts,
  restored on exit), :func:`progress` (a tqdm bar only on a terminal);
* executors: :func:`executor_for` (a local process pool or a Dask executor) and :func:`map_tasks`, which runs
  independent tasks on one and falls back to this process, with a ``RuntimeWarning`` that says why, when the
  pool's worker processes cannot start because they cannot re-import the caller's main module.

Importing this module does not import torch (the JSON writer and the executors work without it).
"""

from __future__ import annotations

import contextlib
import inspect
import json
import multiprocessing
import os
import sys
import threading
import warnings
import weakref
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import numpy as np

from ..numerics.threads import thread_budget

__all__ = ["atomic_save", "load_checkpoint", "write_json_atomic", "progress", "torch_dtype", "resolve_device",
           "threads", "format_seconds", "executor_for", "map_tasks", "usable_executor", "main_module_problem",
           "guard_worker_start"]


# ------------------------------------------------------------------------------------------------- files
def _tmp_name(path: Path) -> Path:
    return path.with_name(path.name + f".tmp{os.getpid()}")


def atomic_save(obj, path) -> Path:
    """``torch.save(obj)`` to ``path`` atomically: a temporary file in the same folder, then ``os.replace``.

    The parent folder is created.  Trainers call this function through the module
    (``runtime.atomic_save``), so a test can replace it to simulate a run killed after some checkpoints.
    """
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_name(path)
    torch.save(obj, tmp)
    os.replace(tmp, path)
    return path


def load_checkpoint(path, fingerprint: dict, what: str) -> dict:
    """Load a checkpoint written by :func:`atomic_save` and check that it belongs to the run ``fingerprint``
    describes (data summary and configuration).

    Raises
    ------
    ValueError
        The file is unreadable, is not a memlab ``what`` checkpoint, or belongs to a different run (the
        message names the path and says what to do).
    """
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
        ok = isinstance(state, dict) and "fingerprint" in state
    except Exception as exc:  # noqa: BLE001 - any unreadable file
        raise ValueError(f"checkpoint {str(path)!r} is unreadable ({type(exc).__name__}: {exc}); delete it "
                         f"to start afresh") from None
    if not ok:
        raise ValueError(f"checkpoint {str(path)!r} is not a memlab {what} checkpoint")
    if state["fingerprint"] != fingerprint:
        raise ValueError(f"checkpoint {str(path)!r} belongs to a different run (data or configuration differ: "
                         f"{state['fingerprint']} vs {fingerprint}); use another path")
    return state


def _json_default(obj):
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def write_json_atomic(path, obj) -> Path:
    """Write ``obj`` as indented JSON to ``path`` atomically (temporary file, then ``os.replace``); numpy
    arrays and scalars are written as lists and numbers.  The parent folder is created."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_name(path)
    tmp.write_text(json.dumps(obj, indent=1, default=_json_default))
    os.replace(tmp, path)
    return path


# ---------------------------------------------------------------------------------------------- settings
def progress(total: int, initial: int = 0, quiet: bool = False, desc: str = "train"):
    """A tqdm progress bar, or ``None`` when ``quiet``, when stderr is not a terminal or without tqdm."""
    if quiet or not sys.stderr.isatty():
        return None
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm ships with the torch extra
        return None
    return tqdm(total=total, initial=initial, desc=desc, leave=False)


def torch_dtype(name):
    """``torch.float32`` or ``torch.float64`` from ``"float32"`` / ``"float64"`` (or the dtype itself)."""
    import torch

    table = {"float32": torch.float32, "float64": torch.float64, torch.float32: torch.float32,
             torch.float64: torch.float64}
    if name not in table:
        raise ValueError(f"dtype must be 'float32' or 'float64' (got {name!r})")
    return table[name]


def resolve_device(device=None):
    """The ``torch.device`` to run on.

    ``None`` or ``"auto"``: CUDA when available, else CPU.  ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or a
    ``torch.device``: that device; asking for CUDA on a machine without it raises ``ValueError`` (no silent
    fallback), as does an index beyond the devices present.
    """
    import torch

    if device is None or (isinstance(device, str) and device == "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if isinstance(device, torch.device):
        dev = device
    else:
        if not isinstance(device, str):
            raise TypeError(f"device must be None, 'auto', 'cpu', 'cuda' or 'cuda:N' (got {device!r})")
        try:
            dev = torch.device(device)
        except RuntimeError:
            raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N' (got {device!r})") from None
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N' (got {device!r})")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was requested but CUDA is not available on this machine "
                         f"(torch {torch.__version__}); pass device='cpu' or leave device unset")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ValueError(f"device={device!r}: only {torch.cuda.device_count()} CUDA device(s) present")
    return dev


def format_seconds(seconds: float) -> str:
    """A duration for people: ``"45 s"``, ``"12 min"``, ``"3.4 h"``, ``"2.1 days"``."""
    s = float(seconds)
    if not np.isfinite(s):
        return str(s)
    if s < 90:
        return f"{s:.0f} s"
    if s < 5400:
        return f"{s / 60:.0f} min"
    if s < 2 * 86400:
        return f"{s / 3600:.1f} h"
    return f"{s / 86400:.1f} days"


_THREADS_LOCK = threading.Lock()
_THREADS_STATE = {"depth": 0, "torch": None, "blas": None}


@contextlib.contextmanager
def threads(n: int | None):
    """Run the block with ``n`` torch intra-op threads (and ``n`` BLAS/OpenMP threads through threadpoolctl);
    the previous settings are restored on exit, also after an exception.

    ``None`` leaves every setting as it is.  Callers that share cores (a process pool's tasks) pass their
    share of :func:`memlab.numerics.threads.thread_budget`, the package's one thread policy.  Thread counts are global to the process: blocks that overlap
    (nested, or tasks of a thread-based executor such as an in-process Dask cluster) share the setting, and
    the values from before the first block are restored when the last one ends.
    """
    if n is None:
        yield
        return
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"threads must be None or an integer >= 1 (got {n!r})")
    import torch

    n = int(n)
    with _THREADS_LOCK:
        st = _THREADS_STATE
        if st["depth"] == 0:
            st["torch"] = torch.get_num_threads()
            try:
                from threadpoolctl import threadpool_limits
            except ImportError:
                st["blas"] = None
            else:
                st["blas"] = threadpool_limits(limits=n)
        st["depth"] += 1
        torch.set_num_threads(n)
    try:
        yield
    finally:
        with _THREADS_LOCK:
            st["depth"] -= 1
            if st["depth"] == 0:
                torch.set_num_threads(st["torch"])
                if st["blas"] is not None:
                    st["blas"].restore_original_limits()
                st["torch"] = st["blas"] = None


# --------------------------------------------------------------------------------------------- executors
def _reimporting_main() -> bool:
    """Whether this call comes from the top-level code of a main module that a worker process re-imports
    (multiprocessing runs it under the name ``__mp_main__``)."""
    frame = inspect.currentframe()
    while frame is not None:
        if frame.f_code.co_name == "<module>" and frame.f_globals.get("__name__") == "__mp_main__":
            return True
        frame = frame.f_back
    return False


def guard_worker_start() -> None:
    """Raise ``RuntimeError`` when called while a worker process re-runs the main module's top-level code.

    A script without an ``if __name__ == "__main__":`` guard starts its sweep again in every worker process
    the pool spawns; this stops the worker at once (the pool in the parent then reports it, and
    :func:`map_tasks` falls back to running in the parent)."""
    if _reimporting_main():
        raise RuntimeError("memlab: a worker process re-ran the main module's top-level code, which starts "
                           "another sweep; put the script's work under `if __name__ == \"__main__\":`")


def main_module_problem() -> str | None:
    """Why worker processes started with ``spawn`` cannot re-import the caller's main module, or ``None``.

    ``spawn`` workers re-import ``__main__`` from its file (or by module name under ``python -m``).  A script
    read from standard input (``python -``, ``python < script.py``) names a file ``<stdin>`` that does not
    exist, and every worker dies on start-up.  ``python -c`` and interactive sessions have no main file;
    their workers skip the re-import and run tasks defined in importable modules (all memlab tasks are).
    """
    main = sys.modules.get("__main__")
    if main is None or getattr(getattr(main, "__spec__", None), "name", None):
        return None
    path = getattr(main, "__file__", None)
    if path is None or os.path.isfile(path):
        return None
    return (f"worker processes cannot re-import the main module {path!r} (a script read from standard input, "
            f"e.g. piped to `python -`)")


def executor_for(scheduler: str | None = None, *, max_workers: int | None = None) -> Executor:
    """A local process pool (``scheduler=None``; ``spawn`` start method, ``max_workers`` default all cores) or
    the Dask executor of ``distributed.Client(scheduler)`` (needs ``dask.distributed``)."""
    guard_worker_start()
    if scheduler is None:
        if max_workers is not None and (isinstance(max_workers, bool) or not isinstance(max_workers, int)
                                        or max_workers < 1):
            raise ValueError(f"max_workers must be None or an integer >= 1 (got {max_workers!r})")
        return ProcessPoolExecutor(max_workers=max_workers or thread_budget().n,
                                   mp_context=multiprocessing.get_context("spawn"))
    try:
        from distributed import Client
    except ImportError:
        raise ValueError("scheduler given but dask.distributed is not installed: pip install 'memlab[dask]'") from None
    return Client(scheduler).get_executor()


_POOL_STATUS: "weakref.WeakKeyDictionary[Executor, str | None]" = weakref.WeakKeyDictionary()


def _pool_problem(executor: ProcessPoolExecutor) -> tuple[str | None, bool]:
    """``(None, ...)`` when the pool's workers start and run a trivial task, else ``(reason, first)`` with
    ``first`` True the first time the pool is found unusable (the check runs once per pool)."""
    if executor in _POOL_STATUS:
        return _POOL_STATUS[executor], False
    reason = main_module_problem()
    if reason is None:
        try:
            executor.submit(os.getpid).result()
        except BrokenProcessPool:
            main = getattr(sys.modules.get("__main__"), "__file__", None)
            reason = ("the process pool's workers died on start-up" +
                      (f" while re-importing the main module {main!r} (a script whose work is not under "
                       f"`if __name__ == \"__main__\":` re-runs it in every worker)" if main else ""))
    _POOL_STATUS[executor] = reason
    return reason, True


def usable_executor(executor: Executor | None) -> Executor | None:
    """``executor``, or ``None`` (run in this process) when it is a process pool whose workers cannot start.

    A process pool is checked once (a trivial task, after the cheap test of :func:`main_module_problem`); the
    first time it is found unusable a ``RuntimeWarning`` says why and how to get parallel runs.  Other
    executors (threads, Dask) are returned as they are.
    """
    if not isinstance(executor, ProcessPoolExecutor):
        return executor
    reason, first = _pool_problem(executor)
    if reason is None:
        return executor
    if first:
        warnings.warn(f"memlab: {reason}; running the tasks one after another in this process instead "
                      f"(no parallelism). For parallel runs, save the script to a file with its work under "
                      f"`if __name__ == \"__main__\":` and run `python script.py`, or pass an executor "
                      f"(e.g. a Dask client's get_executor()).", RuntimeWarning, stacklevel=3)
    return None


def map_tasks(fn, tasks, executor: Executor | None = None):
    """Run ``fn(task)`` for every task and yield the results in task order.

    Parameters
    ----------
    fn : callable
        A module-level function (process pools and Dask pickle it by name).
    tasks : iterable
        One argument per call.
    executor : concurrent.futures.Executor, optional
        ``None``: one task after another in this process (each runs when its result is asked for).
        A process pool is first checked (:func:`usable_executor`): when its workers cannot re-import the
        caller's main module (a script piped to ``python -``, an unguarded script) the tasks run in this
        process instead, with a ``RuntimeWarning`` that says why and how to get parallel runs (never a bare
        ``BrokenProcessPool``).

    Yields
    ------
    The results of ``fn``, in the order of ``tasks``.
    """
    guard_worker_start()
    tasks = list(tasks)
    if tasks:
        executor = usable_executor(executor)
    if executor is None:
        for task in tasks:
            yield fn(task)
        return
    futures = [executor.submit(fn, task) for task in tasks]
    try:
        for fut in futures:
            yield fut.result()
    finally:
        for fut in futures:
            fut.cancel()
