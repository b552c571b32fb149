"""memlab.validation: checks of the theory against trained models (PyTorch backend).

This layer is the only one allowed to import torch, and it does so lazily, so
``import memlab`` and ``import memlab.validation`` work without torch installed.
Install with ``pip install -e ".[torch]"`` (CPU: ``pip install torch==2.13.0``).

* :mod:`memlab.validation.gmm_torch`: the PyTorch GMM-denoiser trainer (``train_gmm``);
* :mod:`memlab.validation.gmm_sweep`: ``sweep_capacity`` / ``sweep_grid`` over executors, ``evaluate_gmm``;
* :mod:`memlab.validation.search`: the M-search rules (no torch).
"""

__all__ = ["sweep_capacity", "sweep_grid", "evaluate_gmm", "train_gmm"]


def __getattr__(name):  # lazy: importing memlab.validation does not import torch
    if name in ("sweep_capacity", "sweep_grid", "evaluate_gmm"):
        from . import gmm_sweep

        return getattr(gmm_sweep, name)
    if name == "train_gmm":
        from .gmm_torch import train_gmm

        return train_gmm
    raise AttributeError(f"module 'memlab.validation' has no attribute {name!r}")
