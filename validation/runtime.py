"""The trainer runtime shared by the GMM, random-features and DDPM trainers (docs/theory/validation.md §1).

One home for what every trainer needs around its training loop:

* files: :func:`atomic_save` (torch checkpoints), :func:`write_json_atomic` and :func:`write_text_atomic` (CSV)
  write a temporary file in the target folder, fsync it and rename it, so a killed run never leaves a
  half-written file; :class:`JsonLines` appends whole lines to a metrics log; :func:`load_checkpoint` checks
  that a checkpoint belongs to the run that resumes it;
* output folders: :func:`run_lock` holds a folder for one run at a time (a lock file with the owner's pid,
  host and start time; a second run gets :class:`OutputFolderBusy` at once; the lock of a dead owner is taken
  over with a warning);
* settings: :func:`resolve_device`, :func:`torch_dtype`, :func:`threads` (torch and BLAS thread counts,
  restored on exit), :func:`progress` (a tqdm bar only on a terminal);
* executors: :func:`executor_for` (a local process pool whose workers exit with their parent,
  :func:`exit_with_parent`, or a Dask executor) and :func:`map_tasks`, which runs
  independent tasks on one and falls back to this process, with a ``RuntimeWarning`` that says why, when the
  pool's worker processes cannot start because they cannot re-import the caller's main module.

Importing this module does not import torch (the JSON writer and the executors work without it).
"""

from __future__ import annotations

import contextlib
import errno
import inspect
import json
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
import warnings
import weakref
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import numpy as np

from ..io import atomic_write
from ..numerics.threads import thread_budget
from ..theory import checks

__all__ = ["atomic_save", "load_checkpoint", "write_json_atomic", "write_text_atomic", "JsonLines", "run_lock",
           "lock_owner", "OutputFolderBusy", "LOCK_NAME", "progress", "torch_dtype", "resolve_device",
           "threads", "format_seconds", "executor_for", "map_tasks", "usable_executor", "main_module_problem",
           "guard_worker_start", "exit_with_parent"]


# ------------------------------------------------------------------------------------------------- files
def atomic_save(obj, path) -> Path:
    """``torch.save(obj)`` to ``path`` atomically: a temporary file in the same folder, fsync, then ``os.replace``.

    The parent folder is created.  Trainers call this function through the module
    (``runtime.atomic_save``), so a test can replace it to simulate a run killed after some checkpoints.
    """
    import torch

    return atomic_write(path, lambda f: torch.save(obj, f), parents=True)


def write_text_atomic(path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically (temporary file in the same folder, fsync, ``os.replace``):
    a reader, or a run killed while writing, sees the old file or the new one, never a mix.  The parent folder
    is created.  CSV tables and rewritten JSON-lines logs go through it."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str (got {type(text).__name__})")
    return atomic_write(path, lambda f: f.write(text.encode("utf-8")), parents=True)


class JsonLines:
    """An append-only JSON-lines log (one JSON object per line) that survives a kill.

    Opening it keeps the complete, parseable records of an existing file for which ``keep(record)`` is true
    (default: none) and rewrites the file atomically with them (:func:`write_text_atomic`), so a resumed run
    continues a clean log; a line cut short by a kill is dropped there.  :meth:`write` then appends each record
    as one whole line with a single ``os.write`` on a file opened with ``O_APPEND``.  One writer per file: the
    output folder's :func:`run_lock` makes sure of that across runs.  Use as a context manager or call
    :meth:`close`.
    """

    def __init__(self, path, keep=None):
        self.path = Path(path)
        kept = []
        if keep is not None and self.path.exists():
            for line in self.path.read_text(encoding="utf-8", errors="replace").splitlines():
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                if isinstance(rec, dict) and keep(rec):
                    kept.append(line + "\n")
        write_text_atomic(self.path, "".join(kept))
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | getattr(os, "O_BINARY", 0))

    def write(self, record: dict) -> None:
        """Append ``record`` as one line (numpy values as numbers, as :func:`write_json_atomic` does)."""
        data = (json.dumps(record, default=_json_default) + "\n").encode("utf-8")
        while data:
            data = data[os.write(self._fd, data):]

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


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
        diffs = _differences(state["fingerprint"], fingerprint)
        shown = "; ".join(diffs[:3]) + (f"; and {len(diffs) - 3} more" if len(diffs) > 3 else "")
        raise ValueError(f"checkpoint {str(path)!r} belongs to a different run ({shown}); delete it to start "
                         f"afresh, or use another path / output folder")
    return state


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _differences(old, new, where: str = "") -> list:
    """``"key: saved X, this run Y"`` for each leaf where two nested fingerprints differ."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for k in list(old) + [k for k in new if k not in old]:
            sub = f"{where}.{k}" if where else str(k)
            if k not in old or k not in new:
                out.append(f"{sub}: only in {'this run' if k in new else 'the checkpoint'}")
            elif old[k] != new[k]:
                out.extend(_differences(old[k], new[k], sub))
        return out
    return [f"{where or 'fingerprint'}: saved {_short(old)}, this run {_short(new)}"]


def _json_default(obj):
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def write_json_atomic(path, obj) -> Path:
    """Write ``obj`` as indented JSON to ``path`` atomically (temporary file in the same folder, fsync, then
    ``os.replace``); numpy arrays and scalars are written as lists and numbers.  The parent folder is created."""
    return write_text_atomic(path, json.dumps(obj, indent=1, default=_json_default))



def training_sizes(name: str, values, *, minimum: int = 2, allow_empty: bool = False) -> list[int]:
    """``values`` as a sorted list of distinct training-set sizes ``>= minimum`` (a ``TypeError``/``ValueError``
    naming ``name`` otherwise); empty only with ``allow_empty``."""
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise TypeError(f"{name} must be a sequence of training-set sizes (got {values!r})")
    out = [checks.positive_int(name, v, minimum=minimum) for v in values]
    if not out and not allow_empty:
        raise ValueError(f"{name} must hold at least one training-set size >= {minimum} (got an empty list)")
    if len(set(out)) != len(out):
        raise ValueError(f"{name} must not repeat a size (got {list(values)})")
    return sorted(out)

# ---------------------------------------------------------------------------------------- output folders
LOCK_NAME = "memlab.lock"

try:  # POSIX advisory locks: the kernel drops them when the holder dies, SIGKILL included
    import fcntl
except ImportError:  # pragma: no cover - Windows: exclusive creation and a pid check instead
    fcntl = None


class OutputFolderBusy(OSError):
    """The output folder is held by another running memlab run (:func:`run_lock`).  The message names the
    folder, the owner's pid, host and start time, and the lock file."""


_HELD: dict = {}                 # (pid, real path of a folder) -> [depth, fd or None, lock path]
_HELD_LOCK = threading.Lock()


def _proc_start(pid: int):
    """Start time of process ``pid`` in clock ticks since boot (Linux ``/proc``), or ``None``."""
    try:
        with open(f"/proc/{int(pid)}/stat", "rb") as f:
            stat = f.read().decode("ascii", "replace")
        return int(stat[stat.rindex(")") + 2:].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def _pid_running(pid, start=None):
    """``True`` / ``False`` whether process ``pid`` (of this host) runs, with start time ``start`` when given
    and known; ``None`` when it cannot be told (no ``os.kill(pid, 0)`` check on Windows)."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    if sys.platform == "win32":  # pragma: no cover - os.kill would terminate the process there
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError as exc:
        if exc.errno != errno.EPERM:               # EPERM: it runs, under another user
            return None
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read().decode("ascii", "replace")
        if stat[stat.rindex(")") + 2:].split()[0] in ("Z", "X"):       # a zombie has finished
            return False
    except (OSError, ValueError):
        pass
    now = _proc_start(pid)
    return not (start is not None and now is not None and now != start)   # pid reused by another process


def _owner_record() -> dict:
    return {"pid": os.getpid(), "host": socket.gethostname(), "pid_start": _proc_start(os.getpid()),
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "command": " ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(sys.argv))[:300]}


def _read_owner(fd) -> dict | None:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        raw = b""
        while chunk := os.read(fd, 65536):
            raw += chunk
        rec = json.loads(raw.decode("utf-8")) if raw.strip() else None
    except (OSError, ValueError):
        return None
    return rec if isinstance(rec, dict) else None


def _owner_text(rec: dict | None) -> str:
    if not rec:
        return "an unknown owner"
    txt = f"pid {rec.get('pid')} on {rec.get('host')}, started {rec.get('started')}"
    return txt + (f": {rec['command']}" if rec.get("command") else "")


def _busy(folder: Path, lock: Path, rec) -> OutputFolderBusy:
    return OutputFolderBusy(f"output folder {str(folder)!r} is in use by another memlab run ({_owner_text(rec)}); "
                            f"wait for it to end or choose another output folder (lock file {str(lock)!r})")


def _stale_note(folder: Path, rec: dict) -> None:
    warnings.warn(f"output folder {str(folder)!r}: the run that held it ({_owner_text(rec)}) is no longer "
                  f"running; taking its lock over (what it finished is kept, its checkpoints resume)", RuntimeWarning,
                  stacklevel=4)


def _write_owner(fd) -> None:
    data = json.dumps(_owner_record()).encode("utf-8")
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    while data:
        data = data[os.write(fd, data):]
    os.fsync(fd)


def _same_file(fd, path: Path) -> bool:
    try:
        a, b = os.fstat(fd), os.stat(path)
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _acquire_flock(folder: Path, lock: Path) -> int:
    for _ in range(20):
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            rec = _read_owner(fd)
            for _ in range(50):                 # the owner writes its record just after taking the lock
                if rec is not None:
                    break
                time.sleep(0.02)
                rec = _read_owner(fd)
            os.close(fd)
            if isinstance(exc, BlockingIOError) or exc.errno in (errno.EACCES, errno.EAGAIN):
                raise _busy(folder, lock, rec) from None
            raise
        if not _same_file(fd, lock):          # the holder removed the file as we opened it: try the new one
            os.close(fd)
            continue
        rec = _read_owner(fd)
        if rec is not None:
            mine = rec.get("pid") == os.getpid() and rec.get("host") == socket.gethostname()
            if (not mine and rec.get("host") == socket.gethostname()
                    and _pid_running(rec.get("pid"), rec.get("pid_start")) is not False):
                os.close(fd)                    # a live owner without an OS lock (a file system without flock)
                raise _busy(folder, lock, rec)
            if not mine:
                _stale_note(folder, rec)
        try:
            _write_owner(fd)
        except BaseException:
            os.close(fd)
            raise
        return fd
    raise OutputFolderBusy(f"output folder {str(folder)!r}: its lock file {str(lock)!r} keeps being replaced by "
                           f"other runs; try again")


def _acquire_exclusive(folder: Path, lock: Path) -> None:  # pragma: no cover - platforms without fcntl
    for _ in range(20):
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            try:
                fd = os.open(lock, os.O_RDONLY)
            except FileNotFoundError:
                continue
            rec = _read_owner(fd)
            os.close(fd)
            if (rec is None or rec.get("host") != socket.gethostname()
                    or _pid_running(rec.get("pid"), rec.get("pid_start")) is not False):
                raise _busy(folder, lock, rec) from None
            _stale_note(folder, rec)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(lock)
            continue
        try:
            _write_owner(fd)
        finally:
            os.close(fd)
        return
    raise OutputFolderBusy(f"output folder {str(folder)!r}: could not take its lock file {str(lock)!r}; try again")


def _folder_error(exc: OSError, what: str) -> OSError:
    """``exc``'s type with a message that names the folder and the option (one line, no ``[Errno n]``)."""
    err = type(exc)(f"{what} ({exc.strerror or exc}); choose a writable folder")
    err.errno = exc.errno
    return err


@contextlib.contextmanager
def run_lock(folder, *, name: str = "out"):
    """Hold the output folder ``folder`` for this run: one memlab run per output folder at a time.

    The folder is created (an ``OSError`` naming ``name`` and the folder when it cannot be written), then the
    lock file ``folder/memlab.lock`` is taken with an exclusive OS lock (``flock``; two runs that start at the
    same moment cannot both get it) and records the owner's pid, host, start time and command.  Another run
    that tries the same folder gets :class:`OutputFolderBusy` at once, naming the folder and the owner.  The
    OS releases the lock when its holder dies (even by ``SIGKILL``); the file left behind is then taken over
    with a ``RuntimeWarning`` that names the former owner.  On exit, also by an exception or a
    ``KeyboardInterrupt``, the file is removed and the lock released.  Nested calls of one process on the same
    folder (the command line around a sweep, a sweep around its models) share one lock.  A folder this call
    created is removed again when it is still empty at the end.

    Where ``fcntl`` is missing (Windows) the file is created exclusively (``O_CREAT | O_EXCL``) and a file
    left by a process no longer running on this host is taken over.

    Yields
    ------
    pathlib.Path
        The lock file.
    """
    if not isinstance(folder, (str, os.PathLike)):
        raise TypeError(f"{name} must be a folder path (str or os.PathLike; got {type(folder).__name__})")
    folder = Path(folder)
    created = not folder.exists()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _folder_error(exc, f"{name}: cannot create the output folder {str(folder)!r}") from None
    lock = folder / LOCK_NAME
    key = (os.getpid(), os.path.realpath(folder))   # a forked child does not inherit the hold
    with _HELD_LOCK:
        held = _HELD.get(key)
        if held is not None:
            held[0] += 1
        else:
            try:
                fd = _acquire_flock(folder, lock) if fcntl is not None else _acquire_exclusive(folder, lock)
            except OutputFolderBusy:
                raise
            except OSError as exc:
                raise _folder_error(exc, f"{name}: cannot write in the output folder {str(folder)!r}") from None
            held = _HELD[key] = [1, fd, lock]
    try:
        yield held[2]
    finally:
        with _HELD_LOCK:
            held[0] -= 1
            if held[0] == 0:
                del _HELD[key]
                fd, path = held[1], held[2]
                if fd is None or _same_file(fd, path):
                    with contextlib.suppress(OSError):
                        os.unlink(path)
                if fd is not None:
                    os.close(fd)
                if created:                      # nothing written (e.g. refused input): leave no empty folder
                    with contextlib.suppress(OSError):
                        folder.rmdir()


def lock_owner(folder) -> dict | None:
    """The owner record (``pid``, ``host``, ``started``, ``command``) in ``folder``'s lock file, or ``None``
    when there is none (the lock may be stale: :func:`run_lock` tells)."""
    try:
        rec = json.loads((Path(folder) / LOCK_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return rec if isinstance(rec, dict) else None


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
    share of :func:`memlab.numerics.threads.thread_budget`, the package's one thread policy.  Thread counts are
    global to the process: blocks that overlap (nested, or tasks of a thread-based executor such as an
    in-process Dask cluster) share the setting, and the values from before the first block are restored when
    the last one ends.
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


PARENT_POLL_S = 0.5


def _end_now() -> None:
    """End this process at once, without cleanup (SIGKILL itself; TerminateProcess on Windows)."""
    os.kill(os.getpid(), getattr(signal, "SIGKILL", signal.SIGTERM))


def exit_with_parent(parent_pid: int, poll_s: float = PARENT_POLL_S) -> None:
    """Make this (worker) process exit when process ``parent_pid`` is gone.

    The initializer of :func:`executor_for`'s process pools: a daemon thread checks every ``poll_s`` seconds
    that the worker's parent is still ``parent_pid`` (when the parent dies, even by ``SIGKILL``, the worker is
    re-parented and ``os.getppid()`` changes) and otherwise ends the worker at once (it sends itself
    ``SIGKILL``), so killing a sweep's main process stops its workers within about ``poll_s`` seconds instead
    of leaving them training and writing into the output folder.  A file being written when that happens is a
    temporary file (:func:`atomic_save`, :func:`write_json_atomic`) or one whole line (:class:`JsonLines`).
    Linux's ``PR_SET_PDEATHSIG`` is not used: it fires when the *thread* that started the worker ends, which
    in a process pool need not be the main thread.
    """
    if not isinstance(parent_pid, int) or parent_pid <= 0:
        raise ValueError(f"parent_pid must be a process id >= 1 (got {parent_pid!r})")

    def watch():
        while True:
            if os.getppid() != parent_pid:
                _end_now()
            time.sleep(poll_s)

    if os.getppid() != parent_pid:
        _end_now()
    threading.Thread(target=watch, name="memlab-exit-with-parent", daemon=True).start()


def executor_for(scheduler: str | None = None, *, max_workers: int | None = None) -> Executor:
    """A local process pool (``scheduler=None``; ``spawn`` start method, ``max_workers`` default all cores; its
    workers exit when this process dies, :func:`exit_with_parent`) or the Dask executor of
    ``distributed.Client(scheduler)`` (needs ``dask.distributed``)."""
    guard_worker_start()
    if scheduler is None:
        if max_workers is not None and (isinstance(max_workers, bool) or not isinstance(max_workers, int)
                                        or max_workers < 1):
            raise ValueError(f"max_workers must be None or an integer >= 1 (got {max_workers!r})")
        return ProcessPoolExecutor(max_workers=max_workers or thread_budget().n,
                                   mp_context=multiprocessing.get_context("spawn"),
                                   initializer=exit_with_parent, initargs=(os.getpid(),))
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
