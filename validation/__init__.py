"""memlab.validation: checks of the theory against trained models (PyTorch backend; docs/theory/validation.md).

This layer is the only one allowed to import torch, and it does so lazily, so
``import memlab`` and ``import memlab.validation`` work without torch installed.
Install with ``pip install -e ".[torch]"`` (CPU: ``pip install torch==2.13.0``).

Every trainer has the shape ``train_x(data, config, *, device=None, checkpoint=None, quiet=False, ...)``:

* :mod:`memlab.validation.runtime`: the trainer runtime (atomic checkpoints, JSON and CSV, one run per output
  folder (``run_lock``), pool workers that exit with their parent, checkpoint loading,
  device, dtype, thread settings, progress bar, executors with an in-process fallback);
* :mod:`memlab.validation.gmm_torch`: the PyTorch GMM-denoiser trainer, ``train_gmm(train, GMMTrainConfig(M,
  protocol))``, the named protocols ``PROTOCOLS`` ("paper", "cpu-quick") and ``estimate_sweep_seconds``;
* :mod:`memlab.validation.gmm_sweep`: ``sweep_capacity`` / ``sweep_grid`` over executors, ``evaluate_gmm``;
* :mod:`memlab.validation.search`: the M-search rules (no torch);
* :mod:`memlab.validation.rf_torch`: the random-features score model trained in PyTorch,
  ``train_rf(RFModel, RFTrainConfig(tau))``;
* :mod:`memlab.validation.ddpm_torch`: the residual-MLP DDPM on the 2-mode mixture, ``train_ddpm(n, DDPMConfig())``;
* :mod:`memlab.validation.timescales`: the n ladder with the read-offs ``tau_gen_quality_min``,
  ``tau_gen_score_min``, ``tau_gen_plateau``, ``tau_mem_onset`` (``timescale_study``);
* :mod:`memlab.validation.forecast`: forecasting memorization for your own model and data
  (``forecast_memorization``, ``forecast_from_json``; docs/theory/validation.md §5).
"""

_LAZY = {
    "sweep_capacity": "gmm_sweep", "sweep_grid": "gmm_sweep", "evaluate_gmm": "gmm_sweep",
    "train_gmm": "gmm_torch", "GMMTrainConfig": "gmm_torch", "GMMProtocol": "gmm_torch", "PROTOCOLS": "gmm_torch",
    "estimate_sweep_seconds": "gmm_torch",
    "train_rf": "rf_torch", "RFTrainConfig": "rf_torch",
    "train_ddpm": "ddpm_torch", "DDPMConfig": "ddpm_torch",
    "timescale_study": "timescales", "study_from_json": "timescales",
    "forecast_memorization": "forecast", "forecast_from_json": "forecast", "ForecastConfig": "forecast",
    "MemorizationForecast": "forecast", "load_forecast_data": "forecast",
}

__all__ = list(_LAZY)


def __getattr__(name):  # lazy: importing memlab.validation does not import torch
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'memlab.validation' has no attribute {name!r}")
