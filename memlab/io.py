"""Reading points from files: ``.npy``, ``.npz`` or a folder of PNG images (for ``memlab memorization`` and
notebooks), and checking an output folder before any work is done.  File reading lives here, in the facade,
not in the numerics layer."""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import os
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np

__all__ = ["load_points", "output_dir", "atomic_write", "to_jsonable", "to_json"]


def load_points(path, *, name: str = "points", key: str | None = None) -> np.ndarray:
    """Load points as an (n, D) array from ``.npy``, ``.npz`` or a folder of PNG images.

    * ``.npy``: one array of real numbers; 2-D or more is flattened per row, and a 1-D array is one point of
      ``D`` features (as :func:`memlab.memorization_fraction` reads it), returned with shape ``(1, D)``.
    * ``.npz``: the array under ``key``, else under ``name``, else the only array in the file.
    * a folder: every ``*.png`` in it (sorted by name), read with matplotlib and put on the raw 0-255
      scale as uint8 (Gu et al. compare uint8 pixels), each image flattened; all must have the same shape.
      A fully opaque alpha channel is dropped (RGBA and RGB files of the same pixels then agree).

    Raises ``ValueError`` naming ``name`` and the path for a missing, unreadable, ambiguous or non-numeric input
    (a device or a named pipe is refused, so reading never blocks).
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"name must be a non-empty str, the label used in messages (got {name!r})")
    if key is not None and (not isinstance(key, str) or not key):
        raise TypeError(f"key must be None or the name of an array in the .npz file (got {key!r})")
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{name} must be a path (str or os.PathLike; got {type(path).__name__})")
    p = Path(path)
    try:
        exists, is_dir, is_file = p.exists(), p.is_dir(), p.is_file()
    except (OSError, ValueError) as exc:  # a name too long, a NUL byte
        raise ValueError(f"{name}: cannot use {str(p)!r} as a path ({exc})") from None
    if str(path) == "" or not exists:
        raise ValueError(f"{name}: {str(p)!r} does not exist")
    if not (is_dir or is_file):
        raise ValueError(f"{name}: {str(p)!r} is not a regular file or a folder")
    if is_dir:
        files = sorted(f for f in p.iterdir() if f.suffix.lower() == ".png" and f.is_file())
        if not files:
            raise ValueError(f"{name}: folder {str(p)!r} contains no .png images")
        import matplotlib.image as mpimg

        rows = []
        shape0 = None
        for f in files:
            try:
                img = np.asarray(mpimg.imread(f))
            except Exception as exc:  # noqa: BLE001 - any decoder error is an unreadable file
                raise ValueError(f"{name}: cannot read image {str(f)!r} ({exc})") from None
            if img.dtype.kind == "f":  # matplotlib returns PNGs as floats in [0, 1]
                img = np.rint(np.clip(img, 0.0, 1.0) * 255.0)
            img = img.astype(np.uint8)
            if img.ndim == 3 and img.shape[2] in (2, 4) and np.all(img[..., -1] == 255):
                img = img[..., :-1]  # a fully opaque alpha channel carries no pixel information
            if shape0 is None:
                shape0 = img.shape
            elif img.shape != shape0:
                raise ValueError(f"{name}: image {f.name!r} has shape {img.shape}, the first image "
                                 f"{files[0].name!r} has {shape0}; all images must have the same size and channels")
            rows.append(img.reshape(-1))
        return np.stack(rows)
    suffix = p.suffix.lower()
    if suffix not in (".npy", ".npz"):
        raise ValueError(f"{name}: {str(p)!r} is not a .npy or .npz file or a folder of .png images")
    try:
        obj = np.load(p, allow_pickle=False)
    except Exception as exc:  # noqa: BLE001 - corrupt or pickled files
        raise ValueError(f"{name}: cannot read {str(p)!r} ({type(exc).__name__}: {exc})") from None
    if suffix == ".npz":
        with obj:
            keys = list(obj.keys())
            pick = key if key is not None else (name if name in keys else (keys[0] if len(keys) == 1 else None))
            if key is not None and key not in keys:
                raise ValueError(f"key {key!r} is not an array of {str(p)!r} (it holds {keys})")
            if pick is None or pick not in keys:
                raise ValueError(f"{name}: {str(p)!r} holds arrays {keys}; cannot tell which one to use "
                                 f"(store one array, or name it {name!r})")
            arr = obj[pick]
    else:
        arr = obj
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"{name}: {str(p)!r} holds an array of dtype {arr.dtype}; points must be real numbers")
    if arr.ndim == 0:
        raise ValueError(f"{name}: {str(p)!r} holds a scalar, not an array of points")
    if arr.ndim == 1:
        arr = arr.reshape(1, -1)
    elif arr.ndim > 2:
        arr = arr.reshape(arr.shape[0], -1)
    return arr


def output_dir(out, *, name: str = "out") -> Path:
    """Check, before any work, that ``out`` can become the output folder; return it as a ``Path``.

    ``out`` is a folder that exists or can be created: its nearest existing ancestor is a folder in which a
    (deleted at once) temporary file can be written, so a read-only file system is caught too.  Nothing is
    created.  Raises ``ValueError`` naming ``name`` and the path otherwise (``TypeError`` for a non-path).
    """
    if not isinstance(out, (str, os.PathLike)):
        raise TypeError(f"{name} must be a folder path (str or os.PathLike; got {type(out).__name__})")
    text = os.fspath(out)
    if not isinstance(text, str) or not text.strip() or "\0" in text:
        raise ValueError(f"{name} must be a non-empty folder path (got {text!r})")
    p = Path(text)
    probe = p
    try:
        while not probe.exists():
            if probe.is_symlink():
                raise ValueError(f"{name}: {text!r} goes through the broken link {str(probe)!r}")
            probe = probe.parent
        if not probe.is_dir():
            why = "is a file" if probe == p else f"lies under {str(probe)!r}, which is a file"
            raise ValueError(f"{name}: {text!r} cannot be an output folder: it {why}")
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as exc:
        raise ValueError(f"{name}: cannot write in {str(probe)!r} ({exc.strerror or exc})") from None
    return p


_TMP_COUNTER = itertools.count()


def _fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (POSIX); a no-op where folders cannot be opened (Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path, write, *, parents: bool = False) -> Path:
    """Write ``path`` atomically: ``write(f)`` fills a binary file object of a temporary file in the same folder,
    which is flushed, fsynced and then replaces ``path`` (``os.replace``; the folder is fsynced too), so a reader
    or a killed run sees the old file or the new one, never a half-written one.  The temporary file is removed
    if anything fails (a ``KeyboardInterrupt`` included); ``parents=True`` creates the parent folder.  The file
    gets the usual mode (``0o666`` less the umask).  The one atomic writer of the package: figures, the CLI's
    files and the validation layer's checkpoints, JSON and CSV all go through it.  Returns ``Path(path)``."""
    path = Path(path)
    if parents:
        path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{threading.get_ident()}-{next(_TMP_COUNTER)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_folder(path.parent)
    return path


def to_jsonable(obj):
    """Plain JSON-ready structure of a result (dataclasses, arrays, numpy scalars; activations and callables by
    name)."""
    activations = sys.modules.get("memlab.theory.activations")  # not imported: obj cannot be an Activation
    if activations is not None and isinstance(obj, activations.Activation):
        return obj.name
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)
                if not f.name.startswith("_") and f.name != "figure"}
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    if callable(obj):
        return getattr(obj, "__name__", repr(obj))
    return obj


def to_json(obj, **kw) -> str:
    """``json.dumps(to_jsonable(obj), indent=2)``."""
    return json.dumps(to_jsonable(obj), indent=kw.pop("indent", 2), **kw)
