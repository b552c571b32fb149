"""A fixed background load for the benchmarks: one busy process per core, started and stopped by the script.

Users share their cores with other work (a notebook beside a training job, Dask workers, a process pool).
Every headline benchmark times its workload quiet and again under this load and reports the slowdown.  With
one busy process per core the fair share of a CPU-bound program is about half the machine, so a slowdown of
about 2x is what a well-behaved program shows; thread pools that oversubscribe the cores (a numba parallel
region and a multi-threaded BLAS call at once, spinning OpenBLAS threads) lose far more.

Usage::

    from background import background_load, median_time
    quiet = median_time(fn)
    with background_load() as info:
        loaded = median_time(fn)
    print(f"under load ({info}): {loaded / quiet:.2f}x")
"""

from __future__ import annotations

import contextlib
import os
import statistics
import subprocess
import sys
import time

from memlab.numerics.threads import available_cpus

_SPIN = "import signal, sys\nsignal.signal(signal.SIGTERM, lambda *a: sys.exit(0))\nx = 0\nwhile True:\n    x += 1\n"


@contextlib.contextmanager
def background_load(n_procs: int | None = None, warmup_s: float = 0.5):
    """Start ``n_procs`` busy-looping Python processes (default: one per usable CPU); stop them on exit.

    Yields a short description of the load (for the benchmark's printout).
    """
    n = available_cpus() if n_procs is None else int(n_procs)
    procs = [subprocess.Popen([sys.executable, "-c", _SPIN], stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(n)]
    try:
        time.sleep(warmup_s)
        yield f"{n} busy process{'es' if n != 1 else ''} on {available_cpus()} CPU(s)"
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def median_time(fn, repeats: int = 5, min_time: float = 0.0) -> float:
    """Median wall time of ``fn()`` over ``repeats`` calls (each call repeated until ``min_time`` s)."""
    times = []
    for _ in range(repeats):
        k, t0 = 0, time.perf_counter()
        while True:
            fn()
            k += 1
            el = time.perf_counter() - t0
            if el >= min_time:
                break
        times.append(el / k)
    return statistics.median(times)


def load_note() -> str:
    """One line on the machine the figures come from."""
    try:
        load1 = os.getloadavg()[0]
    except OSError:
        load1 = float("nan")
    return f"{available_cpus()} usable CPU(s), 1-min load average {load1:.1f} before the run"
