"""The thread policy (memlab.numerics.threads): who decides the thread count, and scoping that restores.

Each rule is checked against an independent source: the environment as set here, the affinity mask from
``os.sched_getaffinity``, a cgroup file written here, a real in-process Dask worker, and threadpoolctl's
own report of the BLAS thread count.
"""

from __future__ import annotations

import os
import sys
import types

import numba
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from threadpoolctl import threadpool_info

from memlab.numerics import threads as T


@pytest.fixture
def clean_env(monkeypatch):
    for name in T.ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def _blas_threads():
    return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]


def test_available_cpus_is_the_affinity_mask_or_less():
    n = T.available_cpus()
    assert 1 <= n <= len(os.sched_getaffinity(0))


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 10**6), st.integers(1, 10**6))
def test_cgroup_v2_quota_is_read_in_cpus(tmp_path_factory, quota, period):
    root = tmp_path_factory.mktemp("cg")
    (root / "cpu.max").write_text(f"{quota} {period}\n")
    assert T.cgroup_cpu_quota(str(root)) == pytest.approx(quota / period, rel=1e-15)


def test_cgroup_without_quota_and_v1_files(tmp_path):
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert T.cgroup_cpu_quota(str(tmp_path)) is None
    v1 = tmp_path / "v1"
    (v1 / "cpu").mkdir(parents=True)
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("150000\n")
    (v1 / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert T.cgroup_cpu_quota(str(v1)) == 1.5
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")  # v1's "no quota"
    assert T.cgroup_cpu_quota(str(v1)) is None


def test_order_of_the_rules(clean_env):
    cpus = T.available_cpus()
    b = T.thread_budget()
    assert (b.n, b.source, b.cpus) == (cpus, "cpus", cpus)
    clean_env.setenv("OPENBLAS_NUM_THREADS", "1")
    assert (T.thread_budget().n, T.thread_budget().source) == (1, "OPENBLAS_NUM_THREADS")
    clean_env.setenv("MEMLAB_NUM_THREADS", "7")                  # memlab's own variable overrides the others
    assert (T.thread_budget().n, T.thread_budget().source) == (7, "MEMLAB_NUM_THREADS")
    assert (T.thread_budget(3).n, T.thread_budget(3).source) == (3, "argument")  # an argument wins over all
    clean_env.delenv("MEMLAB_NUM_THREADS")
    clean_env.setenv("OMP_NUM_THREADS", "4,2")                   # nested OpenMP levels: the outer one counts
    assert T.thread_budget().n == 1                              # still the tightest limit (OPENBLAS = 1)


@settings(max_examples=25, deadline=None)
@given(st.dictionaries(st.sampled_from(T.ENV_VARS[1:]), st.integers(1, 64), max_size=4))
def test_budget_is_the_tightest_limit(env):
    saved = {k: os.environ.pop(k, None) for k in T.ENV_VARS}
    try:
        os.environ.update({k: str(v) for k, v in env.items()})
        b = T.thread_budget()
        assert b.n == min([T.available_cpus(), *env.values()])
        assert dict(b.limits)[b.source] == b.n
    finally:
        for k, v in saved.items():
            os.environ.pop(k, None)
            if v is not None:
                os.environ[k] = v


@pytest.mark.parametrize("bad", [0, -2])
def test_bad_arguments_and_environment(clean_env, bad):
    with pytest.raises(ValueError, match="threads must be None or an integer >= 1"):
        T.thread_budget(bad)
    with pytest.raises(TypeError, match="threads"):
        T.thread_budget(2.5)
    with pytest.raises(TypeError, match="threads"):
        T.thread_budget(True)
    clean_env.setenv("OMP_NUM_THREADS", str(bad))
    with pytest.raises(ValueError, match="OMP_NUM_THREADS must be a positive integer"):
        T.thread_budget()
    clean_env.setenv("OMP_NUM_THREADS", "lots")
    with pytest.raises(ValueError, match="OMP_NUM_THREADS"):
        T.thread_budget()


def test_dask_worker_share_with_a_fake_worker(clean_env, monkeypatch):
    fake = types.ModuleType("distributed")
    fake.get_worker = lambda: types.SimpleNamespace(state=types.SimpleNamespace(nthreads=4))
    monkeypatch.setitem(sys.modules, "distributed", fake)
    b = T.thread_budget()
    assert dict(b.limits)["dask-worker"] == max(1, T.available_cpus() // 4)
    assert b.n == min(T.available_cpus(), max(1, T.available_cpus() // 4))

    def outside():
        raise ValueError("No worker found")

    fake.get_worker = outside
    assert T.dask_worker_threads() is None


def test_dask_worker_share_in_a_real_worker(clean_env):
    """Inside a real (in-process) Dask worker running 2 tasks at once, a task gets cpus // 2."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as lc, \
            distributed.Client(lc) as client:
        b = client.submit(T.thread_budget, pure=False).result()
    assert dict(b.limits)["dask-worker"] == max(1, T.available_cpus() // 2)
    assert "dask-worker" not in dict(T.thread_budget().limits)       # outside the worker: no such limit


def test_threads_for_runs_small_work_serially(clean_env):
    clean_env.setenv("MEMLAB_NUM_THREADS", "8")
    assert T.threads_for(10, 100) == 1           # below two threads' worth
    assert T.threads_for(250, 100) == 2          # capped by the work
    assert T.threads_for(10**9, 100) == 8        # capped by the budget
    assert T.threads_for(10, 100, threads=3) == 3


def test_numba_region_pins_blas_to_one_thread_and_restores():
    # blas_threads loads scipy's BLAS (the one numba kernels call) before it lists the libraries: load it first
    # here too, so "before" sees the same libraries whether or not an earlier test imported scipy
    import scipy.linalg.cython_blas  # noqa: F401

    if not _blas_threads():
        pytest.skip("no BLAS library visible to threadpoolctl")  # numpy always links one; kept for exotic builds
    before_blas, before_numba = _blas_threads(), numba.get_num_threads()
    with T.numba_parallel(1) as n:
        assert n == 1 and numba.get_num_threads() == 1
        assert set(_blas_threads()) == {1}
    assert _blas_threads() == before_blas and numba.get_num_threads() == before_numba
    with pytest.raises(ZeroDivisionError):
        with T.numba_parallel(10**6) as n:       # capped at numba's launch-time maximum
            assert n == numba.config.NUMBA_NUM_THREADS
            1 / 0
    assert _blas_threads() == before_blas and numba.get_num_threads() == before_numba
    with T.blas_threads(1):
        assert set(_blas_threads()) == {1}
        a = np.ones((64, 64))
        assert np.array_equal(a @ a, np.full((64, 64), 64.0))
    assert _blas_threads() == before_blas
