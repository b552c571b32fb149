"""memlab.validation: checks of the theory against trained models (PyTorch backend).

This layer is the only one allowed to import torch, and it does so lazily, so
``import memlab`` and ``import memlab.validation`` work without torch installed.
Install with ``pip install -e ".[torch]"`` (CPU: ``pip install torch==2.13.0``).

* :mod:`memlab.validation.gmm_torch`: the PyTorch GMM-denoiser trainer (``train_gmm``);
* :mod:`memlab.validation.gmm_sweep`: ``sweep_capacity`` / ``sweep_grid`` over executors, ``evaluate_gmm``;
* :mod:`memlab.validation.search`: the M-search rules (no torch);
* :mod:`memlab.validation.rf_torch`: the random-features score model trained in PyTorch (``train_rf``);
* :mod:`memlab.validation.ddpm_torch`: the residual-MLP DDPM on the 2-mode mixture (``train_ddpm``);
* :mod:`memlab.validation.timescales`: the n ladder, ``tau_gen`` / ``tau_mem`` read-offs (``timescale_study``).
"""

__all__ = ["sweep_capacity", "sweep_grid", "evaluate_gmm", "train_gmm", "train_rf", "train_ddpm", "timescale_study"]


def __getattr__(name):  # lazy: importing memlab.validation does not import torch
    if name in ("sweep_capacity", "sweep_grid", "evaluate_gmm"):
        from . import gmm_sweep

        return getattr(gmm_sweep, name)
    if name == "train_gmm":
        from .gmm_torch import train_gmm

        return train_gmm
    if name == "train_rf":
        from .rf_torch import train_rf

        return train_rf
    if name == "train_ddpm":
        from .ddpm_torch import train_ddpm

        return train_ddpm
    if name == "timescale_study":
        from .timescales import timescale_study

        return timescale_study
    raise AttributeError(f"module 'memlab.validation' has no attribute {name!r}")
