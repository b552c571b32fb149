"""The thread policy: one place decides how many threads numba and BLAS use.

Users run memlab beside other work (a notebook next to a training job, Dask workers, the sweep's own
process pool).  Two thread pools on the same cores at the same time — numba's parallel region and a
multi-threaded BLAS call — oversubscribe them, and OpenBLAS's spinning threads then lose a factor 3–30 on a
busy machine.  The rules, applied by every numba-parallel and BLAS-heavy routine in memlab:

1. **Budget.**  :func:`thread_budget` resolves the number of threads this call may use, first match wins:

   * an explicit ``threads=`` argument;
   * the ``MEMLAB_NUM_THREADS`` environment variable;
   * otherwise the smallest of the limits that apply: the CPUs this process may actually run on (CPU
     affinity and a cgroup CPU quota, e.g. a container's ``--cpus``), the usual variables
     ``OMP_NUM_THREADS``, ``OPENBLAS_NUM_THREADS``, ``MKL_NUM_THREADS``, ``NUMBA_NUM_THREADS``, and, inside a
     Dask worker, the worker's share ``cpus // nthreads`` (its ``nthreads`` tasks run at once).

2. **One pool at a time.**  :func:`numba_parallel` runs a numba parallel region with the budget and BLAS
   pinned to one thread (a kernel that calls BLAS from inside ``prange`` must not fan out again);
   :func:`blas_threads` runs BLAS-heavy numpy code with the budget while no numba region runs.

3. **Small work runs serially.**  :func:`threads_for` gives one thread to work below a size at which a
   parallel region costs more than it saves (one λ point, a small N).

Everything here is cheap after the first call (the threadpoolctl controller is built once).
"""

from __future__ import annotations

import contextlib
import math
import numbers
import os
import sys
import threading
from dataclasses import dataclass

from ..theory import checks

__all__ = ["ThreadBudget", "available_cpus", "cgroup_cpu_quota", "dask_worker_threads", "thread_budget", "threads_for",
           "numba_parallel", "blas_threads", "ENV_VARS"]

#: environment variables read by the policy (``MEMLAB_NUM_THREADS`` overrides the others)
#: Most threads one call may be given: far above any machine's cores, below what spawning threads can hold.
MAX_THREADS = 1024
ENV_VARS = ("MEMLAB_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
            "NUMBA_NUM_THREADS")


@dataclass(frozen=True)
class ThreadBudget:
    """How many threads a call may use, and why.

    Attributes
    ----------
    n : int
        Threads granted (>= 1).
    source : str
        What decided it: ``"argument"``, ``"MEMLAB_NUM_THREADS"``, ``"cpus"`` (affinity/cgroup),
        ``"dask-worker"`` or the name of the environment variable that was the tightest limit.
    cpus : int
        CPUs this process may run on (affinity and cgroup quota).
    limits : tuple of (str, int)
        Every limit that applied, for diagnostics.
    """

    n: int
    source: str
    cpus: int
    limits: tuple = ()


def cgroup_cpu_quota(root: str = "/sys/fs/cgroup") -> float | None:
    """The cgroup CPU quota in CPUs (v2 ``cpu.max``, v1 ``cpu/cpu.cfs_quota_us / cpu.cfs_period_us``) under
    ``root``, or None when there is none (or it cannot be read)."""
    candidates = [os.path.join(root, "cpu.max")]
    try:  # cgroup v2 without a cgroup namespace: this process's own group, named in /proc/self/cgroup
        with open("/proc/self/cgroup") as fh:
            for line in fh:
                if line.startswith("0::/") and line.strip() != "0::/":
                    candidates.append(os.path.join(root, line.strip()[4:], "cpu.max"))
    except OSError:
        pass
    for path in candidates:
        try:
            with open(path) as fh:
                quota, period = fh.read().split()[:2]
            return int(quota) / int(period) if quota != "max" else None
        except (OSError, ValueError):
            continue
    try:
        with open(os.path.join(root, "cpu", "cpu.cfs_quota_us")) as fh:
            quota = int(fh.read())
        with open(os.path.join(root, "cpu", "cpu.cfs_period_us")) as fh:
            period = int(fh.read())
        if quota > 0 and period > 0:
            return quota / period
    except (OSError, ValueError):
        pass
    return None


_CPUS: list = []


def available_cpus() -> int:
    """CPUs this process may actually use: the affinity mask, capped by a cgroup CPU quota (rounded up).

    Cached after the first call (affinity and quotas do not change under a running process in practice).
    """
    if _CPUS:
        return _CPUS[0]
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    quota = cgroup_cpu_quota()
    if quota is not None and quota > 0:
        n = min(n, max(1, math.ceil(quota)))
    _CPUS.append(max(1, n))
    return _CPUS[0]


def dask_worker_threads() -> int | None:
    """``nthreads`` of the Dask worker running this code, or None outside a worker.

    Never imports ``distributed``: code can only be inside a worker if it is already imported.
    """
    mod = sys.modules.get("distributed")
    if mod is None:
        return None
    try:
        worker = mod.get_worker()
    except (ValueError, AttributeError):
        return None
    n = getattr(getattr(worker, "state", None), "nthreads", None) or getattr(worker, "nthreads", None)
    try:
        return int(n) if n else None
    except (TypeError, ValueError):
        return None


def _env_int(name: str) -> int | None:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    try:
        value = int(raw.split(",")[0])  # OMP_NUM_THREADS may list nested levels: "4,2"
    except ValueError:
        raise ValueError(f"environment variable {name} must be a positive integer (got {raw!r})") from None
    if value < 1:
        raise ValueError(f"environment variable {name} must be a positive integer (got {raw!r})")
    return value


def thread_budget(threads: int | None = None) -> ThreadBudget:
    """Resolve how many threads a call may use (see the module docstring for the order of the rules).

    Parameters
    ----------
    threads : int or None
        An explicit count (>= 1) wins over everything else; None applies the policy.

    Returns
    -------
    ThreadBudget

    Raises
    ------
    ValueError
        ``threads`` is not None or an integer in ``[1, MAX_THREADS]`` (1024), or an environment variable of the
        policy is not a positive integer.
    TypeError
        ``threads`` is not an integer (a string, a bool, a float with a fraction).

    Examples
    --------
    >>> thread_budget(1).n
    1
    """
    cpus = available_cpus()
    if threads is not None:
        if isinstance(threads, bool) or not isinstance(threads, numbers.Integral):  # a count, never a float
            raise TypeError(f"threads must be None or an integer >= 1 and <= {MAX_THREADS} (got "
                            f"{checks.show(threads)} of type {type(threads).__name__})")
        threads = int(threads)
        if not 1 <= threads <= MAX_THREADS:
            raise ValueError(f"threads must be None or an integer >= 1 and <= {MAX_THREADS} (got {threads})")
        return ThreadBudget(threads, "argument", cpus, (("argument", threads),))
    own = _env_int("MEMLAB_NUM_THREADS")
    if own is not None:
        return ThreadBudget(own, "MEMLAB_NUM_THREADS", cpus, (("MEMLAB_NUM_THREADS", own),))
    limits = [("cpus", cpus)]
    for name in ENV_VARS[1:]:
        value = _env_int(name)
        if value is not None:
            limits.append((name, value))
    worker = dask_worker_threads()
    if worker is not None:
        limits.append(("dask-worker", max(1, cpus // worker)))
    source, n = min(limits, key=lambda kv: kv[1])
    return ThreadBudget(n, source, cpus, tuple(limits))


def threads_for(work: float, min_work_per_thread: float, threads: int | None = None) -> int:
    """Threads to use for ``work`` units when one thread should get at least ``min_work_per_thread`` units.

    Small work (below two threads' worth) runs serially; otherwise the budget, capped by the work.
    An explicit ``threads`` is honoured as given.
    """
    if threads is not None:
        return thread_budget(threads).n
    budget = thread_budget().n
    if work < 2 * min_work_per_thread:
        return 1
    return max(1, min(budget, int(work // min_work_per_thread)))


# ------------------------------------------------------------------------------------------ scoping
_LOCK = threading.RLock()
_CONTROLLER: list = []


def _controller():
    """The threadpoolctl controller of the BLAS/OpenMP libraries loaded in this process (built once)."""
    if not _CONTROLLER:
        # numba's np.dot calls scipy's BLAS (scipy.linalg.cython_blas), a library of its own: load it before the
        # controller lists the libraries, or a limit would miss the BLAS that numba kernels use
        import scipy.linalg.cython_blas  # noqa: F401
        from threadpoolctl import ThreadpoolController

        _CONTROLLER.append(ThreadpoolController())
    return _CONTROLLER[0]


@contextlib.contextmanager
def blas_threads(n: int):
    """Run the block with BLAS (and its OpenMP runtime) limited to ``n`` threads; restored on exit.

    The limits are process-wide (BLAS libraries keep one setting), so overlapping blocks from several
    Python threads share them: the tightest limit applies while both run.
    """
    n = max(1, checks.positive_int("n", n, minimum=0, maximum=MAX_THREADS))
    with _LOCK:
        ctl = _controller()
        limiter = ctl.limit(limits=n, user_api="blas")
    try:
        yield n
    finally:
        with _LOCK:
            limiter.restore_original_limits()


@contextlib.contextmanager
def numba_parallel(n: int):
    """Run a numba parallel region with ``n`` threads and BLAS at one thread; restored on exit.

    ``n`` is capped by numba's launch-time maximum (``NUMBA_NUM_THREADS``).  numba's thread count is
    per calling thread, so concurrent Python threads do not disturb each other's setting.
    """
    import numba

    n = max(1, min(checks.positive_int("n", n, minimum=0), numba.config.NUMBA_NUM_THREADS))
    before = numba.get_num_threads()
    numba.set_num_threads(n)
    try:
        with blas_threads(1):
            yield n
    finally:
        numba.set_num_threads(before)
