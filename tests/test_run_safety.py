"""Output folders (docs/theory/validation.md §1): one run per folder at a time (a lock file with the owner's pid,
stale locks taken over), atomic writes, process-pool workers that stop when their parent dies, and a
random-features run that resumes from its checkpoint to the same numbers."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch", reason="the validation layer needs torch (installed by the test extra)")

from memlab.theory.crossover import predict_mstar  # noqa: E402
from memlab.theory.rf_model import RFModel  # noqa: E402
from memlab.validation import runtime  # noqa: E402
from memlab.validation.gmm_sweep import CapacitySweep, save_sweep  # noqa: E402
from memlab.validation.rf_torch import RFTrainConfig, train_rf  # noqa: E402

LINUX_PROC = Path("/proc/self/stat").exists()


def _env():
    return dict(os.environ, MPLBACKEND="Agg", PYTHONWARNINGS="default")


def _gone(pid: int) -> bool:
    """Whether process ``pid`` has ended (a zombie waiting for its reaper counts as ended)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat[stat.rindex(")") + 2] in "ZX"


def _children(pid: int) -> list[int]:
    kids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rindex(")") + 2:].split()[1]) == pid:
                kids.append(int(d.name))
    return kids


def _wait(cond, timeout, what):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


# ------------------------------------------------------------------------------------------------- the lock
def test_lock_records_owner_is_reentrant_and_released_on_interrupt(tmp_path):
    folder = tmp_path / "new" / "out"
    with pytest.raises(KeyboardInterrupt):
        with runtime.run_lock(folder) as lock:
            owner = json.loads(lock.read_text())
            assert owner["pid"] == os.getpid() and owner["host"] and owner["started"].endswith("Z")
            assert runtime.lock_owner(folder) == owner
            with runtime.run_lock(folder):          # the same process nests (a CLI around a sweep)
                assert lock.exists()
            assert lock.exists()                    # still held by the outer block
            raise KeyboardInterrupt
    assert not (folder / runtime.LOCK_NAME).exists()
    assert not folder.exists()                      # created by the lock and still empty: removed again
    with runtime.run_lock(folder) as lock:          # free again
        (folder / "result.txt").write_text("x")
    assert not lock.exists() and (folder / "result.txt").exists()
    with pytest.raises(TypeError, match="out must be a folder path"):
        with runtime.run_lock(3.5):
            pass


def test_stale_lock_of_a_dead_process_is_taken_over_with_a_note(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    rec = {"pid": dead.pid, "host": socket.gethostname(), "started": "then", "command": "memlab validate gmm"}
    tmp_path.joinpath(runtime.LOCK_NAME).write_text(json.dumps(rec))
    with pytest.warns(RuntimeWarning, match=rf"pid {dead.pid} on .* no longer running; taking its lock over"):
        with runtime.run_lock(tmp_path) as lock:
            assert json.loads(lock.read_text())["pid"] == os.getpid()
    # a live process of this host named in the file keeps the folder even without an OS lock (a file system
    # without flock): refused, naming that pid
    rec["pid"] = os.getppid()
    tmp_path.joinpath(runtime.LOCK_NAME).write_text(json.dumps(rec))
    with pytest.raises(runtime.OutputFolderBusy, match=rf"in use by another memlab run \(pid {os.getppid()} "):
        with runtime.run_lock(tmp_path):
            pass


RACER = textwrap.dedent("""\
    import sys, time
    from memlab.validation import runtime
    start = float(sys.argv[2])
    while time.time() < start:
        time.sleep(0.002)
    try:
        with runtime.run_lock(sys.argv[1]):
            print("won", flush=True)
            time.sleep(2.0)
    except runtime.OutputFolderBusy as exc:
        print("busy:", exc, flush=True)
    """)


def test_racing_starts_have_exactly_one_winner(tmp_path):
    """Four processes try the same folder at the same instant: one holds it, the others are refused at once
    with the folder and the winner's pid in the message."""
    script = tmp_path / "racer.py"
    script.write_text(RACER)
    out = tmp_path / "out"
    start = time.time() + 1.5
    procs = [subprocess.Popen([sys.executable, str(script), str(out), str(start)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=_env()) for _ in range(4)]
    res = [(p.pid,) + p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [r[2] for r in res]
    winners = [pid for pid, so, _ in res if so.startswith("won")]
    assert len(winners) == 1, res
    for pid, so, _ in res:
        if pid != winners[0]:
            assert so.startswith(f"busy: output folder {str(out)!r} is in use by another memlab run "
                                 f"(pid {winners[0]} on "), so


# ------------------------------------------------------------------------------------ workers and refusals
SWEEP = textwrap.dedent("""\
    import sys
    from memlab.validation import runtime
    from memlab.validation.gmm_sweep import sweep_capacity

    if __name__ == "__main__":
        with runtime.executor_for(None, max_workers=2) as ex:
            sweep_capacity(20, 2, 1, protocol="cpu-quick", steps=10 ** 6, n_noise=2, n_samples=8, out=sys.argv[1],
                           executor=ex, threads=1, checkpoint_every=10 ** 6, log=lambda *a: print(*a, flush=True))
    """)


@pytest.mark.skipif(not LINUX_PROC, reason="finds the worker processes through /proc (Linux)")
def test_killed_main_takes_its_workers_and_a_second_run_is_refused(tmp_path, capsys):
    """A sweep on two pool workers: a second run on its folder (the command line) is refused at once, naming the
    owner's pid; SIGKILL of the main process ends both workers within a few seconds; the next run takes the
    stale lock over with a note."""
    from memlab.cli import main as cli_main

    script = tmp_path / "sweep.py"
    script.write_text(SWEEP)
    out = tmp_path / "out"
    main = subprocess.Popen([sys.executable, str(script), str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=_env())
    try:
        def training():               # both workers have written their first metrics line
            logs = list((out / "checkpoints").glob("M*.jsonl")) if out.exists() else []
            return len([p for p in logs if p.stat().st_size > 0]) >= 2 or main.poll() is not None
        _wait(training, 240, "two workers training")
        assert main.poll() is None, main.communicate()
        workers = [pid for pid in _children(main.pid)
                   if "multiprocessing" in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
                   and "spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")]
        assert len(workers) == 2, workers
        capsys.readouterr()
        t0 = time.monotonic()
        rc = cli_main(["validate", "gmm", "--N", "20", "--d", "2", "--K", "1", "--protocol", "cpu-quick", "--steps",
                       "2", "--out", str(out)])
        refused_in = time.monotonic() - t0
        r = capsys.readouterr()
        assert rc == 2 and r.out == "", (r.out, r.err)
        lines = r.err.splitlines()
        assert len(lines) == 1 and "Traceback" not in r.err, r.err
        assert lines[0].startswith(f"memlab: error: output folder {str(out)!r} is in use by another memlab run "
                                   f"(pid {main.pid} on "), lines[0]
        assert refused_in < 30                      # at once: no time estimate, no training
        main.send_signal(signal.SIGKILL)
        main.wait(timeout=30)
        _wait(lambda: all(_gone(p) for p in workers), 10, f"workers {workers} to exit after their parent died")
    finally:
        if main.poll() is None:
            main.kill()
            main.communicate()
    with pytest.warns(RuntimeWarning, match=rf"pid {main.pid} on .* no longer running"):
        with runtime.run_lock(out):
            pass


def test_exit_with_parent_rejects_bad_pid():
    with pytest.raises(ValueError, match="parent_pid must be a process id >= 1"):
        runtime.exit_with_parent(0)


# -------------------------------------------------------------------------------------------- atomic files
def test_atomic_text_write_keeps_the_old_file_when_interrupted(tmp_path, monkeypatch):
    path = tmp_path / "table.csv"
    runtime.write_text_atomic(path, "old\n")

    def killed(fd):
        raise KeyboardInterrupt("killed while writing")

    with monkeypatch.context() as mp:
        mp.setattr(runtime.os, "fsync", killed)
        with pytest.raises(KeyboardInterrupt):
            runtime.write_text_atomic(path, "new, but never complete\n")
    assert path.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["table.csv"]        # no temporary file left
    with pytest.raises(TypeError, match="text must be a str"):
        runtime.write_text_atomic(path, b"bytes")


def test_sweep_csv_is_written_atomically(tmp_path, monkeypatch):
    results = [dict(M=m, fraction=m / 20, ci_low=0.0, ci_high=1.0, sigma2=0.1, train_loss=1.0, test_loss=2.0,
                    dist_train=0.5, dist_true=0.6, phase="coarse", steps=10, wall_s=0.1) for m in (2, 4, 6)]
    sweep = CapacitySweep(N=20, d=2, K=1, M=np.array([2, 4, 6]), results=results, start=2, end=6, m_pt=4,
                          ratio_pt=0.2, mstar=predict_mstar(20), settings={"protocol": "cpu-quick"})
    save_sweep(sweep, tmp_path)
    before = (tmp_path / "sweep.csv").read_text()
    rows = list(csv.reader(io.StringIO(before)))
    assert rows[0][6] == "fraction" and [float(r[6]) for r in rows[1:]] == [r["fraction"] for r in results]
    changed = CapacitySweep(**{**sweep.__dict__, "results": [dict(r, fraction=0.99) for r in results]})
    real_replace = os.replace

    def fail_on_csv(src, dst):
        if str(dst).endswith("sweep.csv"):
            raise KeyboardInterrupt("killed at the rename")
        real_replace(src, dst)

    with monkeypatch.context() as mp:
        mp.setattr(runtime.os, "replace", fail_on_csv)
        with pytest.raises(KeyboardInterrupt):
            save_sweep(changed, tmp_path)
    assert (tmp_path / "sweep.csv").read_text() == before                     # the old table, whole
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_json_lines_log_drops_a_cut_line_and_appends_whole_lines(tmp_path):
    path = tmp_path / "M00004.jsonl"
    path.write_text('{"step": 0, "loss": 1.0}\n{"step": 50, "loss": 0.5}\n{"step": 100, "loss": 0.2}\n{"step": 15')
    with runtime.JsonLines(path, keep=lambda rec: rec["step"] < 100) as log:
        threads = [threading.Thread(target=lambda k=k: [log.write({"step": 100 + k, "i": i}) for i in range(50)])
                   for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    recs = [json.loads(ln) for ln in path.read_text().splitlines()]           # every line parses
    assert [r["step"] for r in recs[:2]] == [0, 50] and len(recs) == 2 + 4 * 50
    with runtime.JsonLines(path) as log:                                       # a fresh run: an empty log
        pass
    assert path.read_text() == ""


@settings(max_examples=40, deadline=None)
@given(steps=st.lists(st.integers(0, 10 ** 6), min_size=0, max_size=12), cut=st.integers(0, 30),
       resume=st.integers(0, 10 ** 6))
def test_json_lines_resume_keeps_exactly_the_complete_records_before_the_step(steps, cut, resume):
    """Property: after a kill that cut the last line anywhere, reopening for a resume at step ``resume`` keeps
    exactly the complete records with ``step < resume``, in order, and the file then parses line by line."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "log.jsonl"
        lines = [json.dumps({"step": s, "loss": 1.0 / (1 + s)}) for s in steps]
        text = "".join(ln + "\n" for ln in lines[:-1]) + (lines[-1][:cut] if lines else "")
        path.write_text(text)
        complete = steps[:-1] + ([steps[-1]] if lines and cut >= len(lines[-1]) else [])
        with runtime.JsonLines(path, keep=lambda rec: rec["step"] < resume) as log:
            log.write({"step": resume, "loss": 0.0})
        got = [json.loads(ln)["step"] for ln in path.read_text().splitlines()]
        assert got == [s for s in complete if s < resume] + [resume]


# ------------------------------------------------------------------------------- random-features checkpoints
@pytest.mark.parametrize("optimizer, k", [("gd", 7), ("adam", 12)])
def test_rf_killed_mid_interval_resumes_bit_identically(tmp_path, monkeypatch, optimizer, k,
                                                       kill_after_saves):
    """Checkpoints between logging times (here after every step): a run killed after the k-th one, inside a
    logging interval, resumes there and ends with exactly the numbers of an uninterrupted run."""
    model = RFModel(psi_p=4, psi_n=1, t=0.1, d=4, seed=3)
    cfg = (RFTrainConfig(tau=[2.0, 5.0, 9.0], n_eval_noise=10, n_score=200) if optimizer == "gd" else
           RFTrainConfig(tau=[0.05, 0.1, 0.2], optimizer="adam", lr=1e-2, n_eval_noise=10, n_score=200))
    full = train_rf(model, cfg, quiet=True)
    ck = tmp_path / "rf.pt"
    with monkeypatch.context() as mp:
        kill_after_saves(mp, k)
        with pytest.raises(KeyboardInterrupt):
            train_rf(model, cfg, quiet=True, checkpoint=ck, checkpoint_every_s=0)
    again = train_rf(model, cfg, quiet=True, checkpoint=ck, checkpoint_every_s=0)
    resumed = again.diagnostics["resumed_from"]
    assert 0 < resumed < full.steps[-1] and resumed not in full.steps        # inside an interval
    for key in ("train_mc", "test_mc", "score_mc", "train_exact", "test_exact", "score_mc_se"):
        np.testing.assert_array_equal(getattr(again, key), getattr(full, key), err_msg=key)
    with pytest.raises(ValueError, match="checkpoint_every_s"):
        train_rf(model, cfg, quiet=True, checkpoint_every_s=-1)


def test_cli_rf_interrupted_run_resumes_and_releases_its_folder(tmp_path, monkeypatch, capsys,
                                                               kill_after_saves):
    from memlab.cli import main

    argv = ["validate", "rf", "--d", "4", "--psi-p", "4", "--psi-n", "1", "--tau-max", "20", "--n-taus", "4",
            "--device", "cpu", "--json"]
    plain = train_rf(RFModel(psi_p=4, psi_n=1, t=0.1, d=4), RFTrainConfig(tau=np.geomspace(1, 20, 4)), quiet=True,
                     device="cpu")                # the same run, uninterrupted, through the API
    out = tmp_path / "killed"
    with monkeypatch.context() as mp:
        kill_after_saves(mp, 2)
        assert main(argv + ["--out", str(out)]) == 130             # Ctrl-C: one line, exit 130, no traceback
    assert (out / "rf_checkpoint.pt").exists() and not (out / runtime.LOCK_NAME).exists()
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["memlab: interrupted (runs that checkpoint resume when the same command is run again)"]
    assert main(argv + ["--out", str(out)]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["diagnostics"]["resumed_from"] > 0
    assert again["agreement"] == plain.agreement
    assert not (out / "rf_checkpoint.pt").exists()                            # results written: checkpoint gone
    saved = json.loads((out / "rf_training.json").read_text())
    for key in ("train_mc", "test_mc", "score_mc", "train_exact", "test_exact"):
        assert saved[key] == getattr(plain, key).tolist(), key


def test_cli_validate_refuses_a_held_folder_before_any_work(tmp_path, capsys):
    from memlab.cli import main

    holder = subprocess.Popen([sys.executable, "-c", "import sys, time\nfrom memlab.validation import runtime\n"
                               "with runtime.run_lock(sys.argv[1]):\n    print('held', flush=True)\n"
                               "    time.sleep(60)\n", str(tmp_path)], stdout=subprocess.PIPE, text=True, env=_env())
    try:
        assert holder.stdout.readline().strip() == "held"
        for argv in (["rf", "--d", "4"], ["timescales", "--n", "8", "16", "--steps", "160", "--n-checkpoints", "6"]):
            t0 = time.perf_counter()
            rc = main(["validate", *argv, "--out", str(tmp_path)])
            err = capsys.readouterr().err
            assert rc == 2 and err.count("\n") == 1, err
            assert err.startswith(f"memlab: error: output folder {str(tmp_path)!r} is in use by another memlab run "
                                  f"(pid {holder.pid} on "), err
            assert time.perf_counter() - t0 < 30                               # at once, not after training
        assert not (tmp_path / "rf_checkpoint.pt").exists() and not list(tmp_path.glob("ckpt_n*.pt"))
    finally:
        holder.kill()
        holder.wait()


def test_cli_diverged_training_is_one_line(tmp_path, capsys):
    from memlab.cli import main

    rc = main(["validate", "timescales", "--n", "8", "--steps", "200", "--n-checkpoints", "4", "--n-gen", "16",
               "--sample-steps", "20", "--width", "16", "--lr", "2.5", "--device", "cpu", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith("memlab: error: training diverged: DDPM training loss became nan") and "lower lr" in err
    assert not (tmp_path / runtime.LOCK_NAME).exists()
