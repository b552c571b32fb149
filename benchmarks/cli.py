"""Benchmark: one-off answers at the command line, interpreter start included.

Times ``memlab mstar --N 200`` and ``memlab timescales --n 800 --p 6400 --d 100 --t 0.1`` as a user runs them:
a new process each time (wall clock from launch to exit).  The first run of each is reported apart (it may
compile numba kernels into the cache); the figure is the median of the next runs.  Goal: each under 0.7 s
on a quiet machine after the first run.  ``timescales`` runs the spectrum's kernels uncompiled by default
(``--engine python``: no numba import or cache load); ``--engine numba`` is timed beside it.  All are timed
again under the fixed background load of ``background.py`` (one busy process per core).

Run: ``python benchmarks/cli.py [--repeats 7]``.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from background import background_load, load_note  # noqa: E402

COMMANDS = {
    "mstar": ["mstar", "--N", "200"],
    "timescales": ["timescales", "--n", "800", "--p", "6400", "--d", "100", "--t", "0.1"],
    # the same answer from the numba-compiled kernels (numba's import and cache load: for comparison)
    "timescales --engine numba": ["timescales", "--n", "800", "--p", "6400", "--d", "100", "--t", "0.1",
                                  "--engine", "numba"],
}

#: the commands with goals (the numba run is printed for comparison)
GOALS = ("mstar", "timescales")


def _launcher():
    exe = shutil.which("memlab")
    return [exe] if exe else [sys.executable, "-m", "memlab"]


def wall(cmd) -> float:
    t0 = time.perf_counter()
    subprocess.run(_launcher() + cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    a = ap.parse_args(argv)
    print(f"memlab CLI one-off answers ({load_note()}); launcher: {' '.join(_launcher())}")
    quiet = {}
    for name, cmd in COMMANDS.items():
        first = wall(cmd)
        times = [wall(cmd) for _ in range(a.repeats)]
        quiet[name] = statistics.median(times)
        print(f"  memlab {' '.join(cmd)}: first run {first:.3f} s; then median {quiet[name]:.3f} s "
              f"(min {min(times):.3f}, max {max(times):.3f}, {a.repeats} runs"
              + ("; goal < 0.7 s)" if name in GOALS else "; for comparison)"))
    with background_load() as info:
        for name, cmd in COMMANDS.items():
            loaded = statistics.median([wall(cmd) for _ in range(a.repeats)])
            print(f"  under load ({info}): memlab {name} median {loaded:.3f} s = {loaded / quiet[name]:.2f}x quiet"
                  + (" (goal <= 2.5x)" if name in GOALS else ""))


if __name__ == "__main__":
    main()
