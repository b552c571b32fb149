"""numba caching that degrades: a read-only install with no writable cache folder still works.

Each test runs a fresh interpreter on a copy of the package whose every numba cache location is unusable:
the package folders are read-only and each holds a regular FILE named ``__pycache__`` (so even root, who
ignores file modes, cannot create numba's in-tree cache), ``HOME`` lies below a regular file (no
``~/.cache/numba``), ``XDG_CACHE_HOME`` and ``NUMBA_CACHE_DIR`` are unset.  What remains is memlab's fallback,
``<TMPDIR>/memlab-numba-<uid>`` (numerics/_jit.py), which each test makes usable or not.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
#: package folder of each import name (pyproject's package-dir)
LAYOUT = {"memlab": "memlab", "memlab/theory": "theory", "memlab/numerics": "numerics",
          "memlab/validation": "validation"}
WARNING_TEXT = "memlab: numba found no writable cache folder"
UID = str(os.getuid()) if hasattr(os, "getuid") else None

# nearest_two on seeded data (a near copy of a training point included), indices and squared distances as JSON,
# with every warning of the import and the call recorded
SCRIPT = """
import json, sys, warnings
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    import numpy as np
    import memlab
    assert memlab.__file__.startswith(sys.argv[1]), memlab.__file__
    rng = np.random.default_rng(int(sys.argv[2]))
    train = rng.standard_normal((9, 4))
    samples = np.vstack([rng.standard_normal((5, 4)), train[3] + 1e-9])
    search = memlab.nearest_two  # imports (and decorates) the kernels
    nt = search(samples, train) if sys.argv[3] == "search" else None
print(json.dumps({"index": None if nt is None else nt.index.tolist(),
                  "sq": None if nt is None else [nt.sq1.tolist(), nt.sq2.tolist()],
                  "warnings": [[w.category.__name__, str(w.message)] for w in caught]}))
"""


def _readonly_install(tmp_path: Path) -> tuple[Path, dict]:
    """A copy of the package's sources with no usable cache location, and the environment to run it."""
    site = tmp_path / "site"
    for name, src in LAYOUT.items():
        dst = site / name
        dst.mkdir(parents=True)
        for f in (ROOT / src).glob("*.py"):
            shutil.copy2(f, dst / f.name)
        (dst / "__pycache__").write_text("not a folder\n")
    for p in sorted(site.rglob("*"), reverse=True) + [site]:
        p.chmod(p.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    (tmp_path / "home").write_text("not a folder\n")
    env = {k: v for k, v in os.environ.items()
           if k not in ("NUMBA_CACHE_DIR", "XDG_CACHE_HOME", "PYTHONPATH", "NUMBA_DISABLE_JIT")}
    env.update(HOME=str(tmp_path / "home" / "user"), PYTHONPATH=str(site), PYTHONDONTWRITEBYTECODE="1",
               MPLBACKEND="Agg")
    return site, env


@pytest.fixture
def readonly(tmp_path):
    site, env = _readonly_install(tmp_path)
    yield site, env
    for p in [site] + list(site.rglob("*")):  # writable again, so that pytest can remove it
        p.chmod(p.stat().st_mode | stat.S_IWUSR)


def _run(site, env, *, seed=0, what="search"):
    r = subprocess.run([sys.executable, "-c", SCRIPT, str(site), str(seed), what], env=env, capture_output=True,
                       text=True, timeout=300, cwd=site.parent)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def _brute_force(seed):
    """The same data as SCRIPT, nearest two by float64 difference vectors (ties to the lower index)."""
    rng = np.random.default_rng(seed)
    train = rng.standard_normal((9, 4))
    samples = np.vstack([rng.standard_normal((5, 4)), train[3] + 1e-9])
    sq = ((samples[:, None, :] - train[None, :, :]) ** 2).sum(axis=2)
    order = np.argsort(sq, axis=1, kind="stable")[:, :2]
    return order, np.take_along_axis(sq, order, axis=1)


def _mstar_answers(site, env):
    r = subprocess.run([sys.executable, "-m", "memlab", "mstar", "--N", "200"], env=env, capture_output=True,
                       text=True, timeout=120, cwd=site.parent)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert r.stdout.startswith("M* = ") and "N=200" in r.stdout


def _check_search(out, seed):
    index, sq = _brute_force(seed)
    assert out["index"] == index.tolist()
    np.testing.assert_allclose(np.array(out["sq"]).T, sq, rtol=1e-12)
    assert out["index"][-1][0] == 3  # the near copy finds its original


@pytest.mark.skipif(UID is None, reason="the per-user folder is named by the POSIX uid")
def test_no_cache_folder_at_all_compiles_with_one_warning(readonly, tmp_path):
    """Fallback folder unusable (a regular file takes its name): the kernels compile uncached, the answer is
    exact and exactly one warning (a RuntimeWarning) says so; ``memlab mstar`` answers silently."""
    site, env = readonly
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    (tmp / f"memlab-numba-{UID}").write_text("squatter\n")
    env = {**env, "TMPDIR": str(tmp)}
    _mstar_answers(site, env)
    out = _run(site, env, seed=1)
    _check_search(out, 1)
    assert len(out["warnings"]) == 1, out["warnings"]
    category, message = out["warnings"][0]
    assert category == "RuntimeWarning" and WARNING_TEXT in message and "NUMBA_CACHE_DIR" in message
    assert str(tmp / f"memlab-numba-{UID}") in message and "not a folder" in message
    assert not any(site.rglob("*.nbi"))


@pytest.mark.skipif(UID is None, reason="the per-user folder is named by the POSIX uid")
def test_a_folder_others_can_write_is_not_trusted(readonly, tmp_path):
    """numba cache files are pickles: a fallback folder writable by others is refused (one warning, no cache)."""
    site, env = readonly
    tmp = tmp_path / "tmp"
    shared = tmp / f"memlab-numba-{UID}"
    shared.mkdir(parents=True)
    shared.chmod(0o777)
    out = _run(site, {**env, "TMPDIR": str(tmp)}, what="import")
    assert len(out["warnings"]) == 1 and "writable by group or others" in out["warnings"][0][1]
    assert list(shared.iterdir()) == []


@pytest.mark.skipif(UID is None, reason="the per-user folder is named by the POSIX uid")
def test_per_user_temp_folder_caches_silently(readonly, tmp_path):
    """A writable temp folder: kernels are cached there without any warning, and a second process loads them
    (the cache index files are not rewritten)."""
    site, env = readonly
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {**env, "TMPDIR": str(tmp)}
    _mstar_answers(site, env)
    out = _run(site, env, seed=2)
    _check_search(out, 2)
    assert out["warnings"] == []
    folder = tmp / f"memlab-numba-{UID}"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    index = {p: p.stat().st_mtime_ns for p in folder.rglob("*.nbi")}
    assert any("_nn_kernels.scan_block" in p.name for p in index)
    again = _run(site, env, seed=2)
    assert again == out
    assert {p: p.stat().st_mtime_ns for p in folder.rglob("*.nbi")} == index
