"""The trainer runtime (docs/theory/validation.md §1): atomic files, checkpoints, settings restored afterwards,
executors that explain themselves when worker processes cannot start."""

from __future__ import annotations

import doctest
import json
import os
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the validation layer needs torch (installed by the test extra)")

from memlab.validation import ddpm_torch, gmm_torch, runtime, search  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

# A tiny capacity sweep on the default process pool (3 models of 2 steps; docs/theory/capacity_crossover.md §7).
SWEEP = textwrap.dedent("""\
    from memlab.validation.gmm_sweep import sweep_capacity
    sw = sweep_capacity(3, 2, 1, protocol="cpu-quick", steps=2, n_noise=2, n_samples=8, log=lambda *a: None)
    print("sweep done:", [int(m) for m in sw.M], sw.settings["protocol"])
    """)


def _python(args, cwd, stdin=None):
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONWARNINGS="default")
    return subprocess.run([sys.executable, *args], input=stdin, capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=600)


# --------------------------------------------------------------------------------- pools that explain themselves
def test_sweep_piped_to_python_stdin_falls_back_with_a_warning(tmp_path):
    """``python -`` (script on standard input): spawn workers would look for a file '<stdin>' and die, so the pool
    is not used; the sweep runs in-process and says why and what to do (before: a bare BrokenProcessPool)."""
    r = _python(["-"], tmp_path, stdin=SWEEP)
    assert r.returncode == 0, r.stderr
    assert "sweep done: [1, 2, 3] cpu-quick+steps=2+n_noise=2" in r.stdout
    assert "BrokenProcessPool" not in r.stderr
    assert "RuntimeWarning: memlab: worker processes cannot re-import the main module '<stdin>'" in r.stderr
    assert "running the tasks one after another in this process" in r.stderr
    assert 'if __name__ == "__main__":' in r.stderr and "pass an executor" in r.stderr


def test_sweep_from_python_c_runs_on_the_pool(tmp_path):
    """``python -c``: spawn workers do not re-import a main module there, so the default pool works as it is
    (no fallback, no warning)."""
    r = _python(["-c", SWEEP], tmp_path)
    assert r.returncode == 0, r.stderr
    assert "sweep done: [1, 2, 3]" in r.stdout
    assert "BrokenProcessPool" not in r.stderr and "RuntimeWarning" not in r.stderr


def test_unguarded_script_falls_back_with_a_warning(tmp_path):
    """A script file without ``if __name__ == "__main__":`` re-runs its sweep in every spawned worker; the worker
    stops at once, and the parent runs the sweep in-process with a warning naming the script."""
    script = tmp_path / "unguarded.py"
    script.write_text(SWEEP)
    r = _python([str(script)], tmp_path)
    assert r.returncode == 0, r.stderr
    assert "sweep done: [1, 2, 3]" in r.stdout
    assert "the process pool's workers died on start-up while re-importing the main module" in r.stderr
    assert str(script) in r.stderr and "running the tasks one after another in this process" in r.stderr


def test_map_tasks_in_process_lazily_and_on_executors():
    seen = []

    def square(x):
        seen.append(x)
        return x * x

    it = runtime.map_tasks(square, [3, 1, 2])
    assert seen == []                                          # nothing runs before a result is asked for
    assert next(it) == 9 and seen == [3]
    assert list(it) == [1, 4]
    with ThreadPoolExecutor(2) as ex:
        assert list(runtime.map_tasks(square, range(6), ex)) == [x * x for x in range(6)]
    with runtime.executor_for(max_workers=1) as ex:            # a process pool: results in task order
        assert list(runtime.map_tasks(abs, [-3, 2, -1], ex)) == [3, 2, 1]
    assert runtime.main_module_problem() is None               # pytest's main module can be re-imported
    runtime.guard_worker_start()                               # not inside a worker's re-import: no error
    with pytest.raises(ValueError, match="max_workers"):
        runtime.executor_for(max_workers=0)


# ------------------------------------------------------------------------------------------------- settings
def test_threads_restored_after_the_block_and_after_errors():
    before = torch.get_num_threads()
    target = 1 if before != 1 else 2
    with runtime.threads(target):
        assert torch.get_num_threads() == target
        with runtime.threads(target):                          # nested blocks share the setting
            pass
        assert torch.get_num_threads() == target
    assert torch.get_num_threads() == before
    with pytest.raises(ZeroDivisionError):
        with runtime.threads(target):
            1 / 0
    assert torch.get_num_threads() == before
    with runtime.threads(None):
        assert torch.get_num_threads() == before
    with pytest.raises(ValueError, match="threads"):
        with runtime.threads(0):
            pass


def test_sweep_task_restores_threads(tmp_path):
    """The GMM sweep's task sets the thread count it is given and restores the caller's afterwards."""
    from memlab.validation.gmm_sweep import sweep_capacity

    before = torch.get_num_threads()
    target = 1 if before != 1 else 2
    with ThreadPoolExecutor(1) as ex:
        sweep_capacity(3, 2, 1, protocol="cpu-quick", steps=2, n_noise=2, n_samples=8, executor=ex, threads=target,
                       log=lambda *a: None)
    assert torch.get_num_threads() == before


def test_device_and_dtype():
    assert runtime.resolve_device("cpu").type == "cpu"
    assert runtime.resolve_device(None).type == runtime.resolve_device("auto").type
    assert runtime.torch_dtype("float64") is torch.float64 and runtime.torch_dtype(torch.float32) is torch.float32
    with pytest.raises(ValueError, match="dtype"):
        runtime.torch_dtype("float16")
    with pytest.raises(ValueError, match="device"):
        runtime.resolve_device("tpu")
    with pytest.raises(TypeError, match="device"):
        runtime.resolve_device(3)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            runtime.resolve_device("cuda")
    assert runtime.progress(10, 0, quiet=True) is None
    assert [runtime.format_seconds(s) for s in (12, 600, 4.9e4, 2e5)] == ["12 s", "10 min", "13.6 h", "2.3 days"]


# ----------------------------------------------------------------------------------------------------- files
def test_atomic_files_and_checkpoint_checks(tmp_path):
    ck = runtime.atomic_save({"fingerprint": {"a": 1}, "x": torch.arange(3)}, tmp_path / "sub" / "ck.pt")
    state = runtime.load_checkpoint(ck, {"a": 1}, "test")
    assert torch.equal(state["x"], torch.arange(3))
    with pytest.raises(ValueError, match=r"different run \(a: saved 1, this run 2\); delete it to start afresh"):
        runtime.load_checkpoint(ck, {"a": 2}, "test")
    big = {"cfg": {"steps": 10 ** 6, "times": list(np.linspace(0, 1, 26))}, "N": 20}
    ck2 = runtime.atomic_save({"fingerprint": big}, tmp_path / "big.pt")
    with pytest.raises(ValueError) as info:                     # names what differs, briefly, on one line
        runtime.load_checkpoint(ck2, {"cfg": {**big["cfg"], "steps": 2}, "N": 20, "K": 3}, "test")
    msg = str(info.value)
    assert "cfg.steps: saved 1000000, this run 2" in msg and "K: only in this run" in msg
    assert "times" not in msg and len(msg) < 300
    runtime.atomic_save({"no": "fingerprint"}, tmp_path / "foreign.pt")
    with pytest.raises(ValueError, match="not a memlab test checkpoint"):
        runtime.load_checkpoint(tmp_path / "foreign.pt", {"a": 1}, "test")
    (tmp_path / "bad.pt").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="unreadable"):
        runtime.load_checkpoint(tmp_path / "bad.pt", {"a": 1}, "test")
    p = runtime.write_json_atomic(tmp_path / "j" / "out.json", {"a": np.arange(3), "b": np.float64(0.5), "c": None})
    assert json.loads(p.read_text()) == {"a": [0, 1, 2], "b": 0.5, "c": None}
    assert not list(tmp_path.rglob("*.tmp*"))


def test_readoffs_need_no_torch():
    """study_from_json re-reads a saved study without torch (the read-offs live in memlab.numerics.readoffs)."""
    code = ("import sys; sys.modules['torch'] = None\n"
            "from memlab.validation.timescales import study_from_json\n"
            f"st = study_from_json({str(ROOT / 'docs/figures/timescales_study_cpu_n32-512.json')!r})\n"
            "print(round(st.fit['a']), round(st.fit['gamma'], 2))\n")
    r = _python(["-c", code], ROOT)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["302", "1.03"]


def test_doctests():
    for mod in (gmm_torch, search, ddpm_torch):
        res = doctest.testmod(mod, optionflags=doctest.NORMALIZE_WHITESPACE)
        assert res.failed == 0 and res.attempted > 0, mod.__name__
