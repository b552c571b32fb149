"""memlab.numerics: numba-accelerated evaluation of the theory (no torch here).

The public names below are imported on first use (PEP 562): importing one module of this layer does
not load the others (numba kernels, scipy) it does not need.
"""

import importlib

_LAZY = {
    **dict.fromkeys(["GMMData", "GMMDenoiser", "eps_to_x0", "generalizing_denoiser", "gmm_denoiser",
                     "memorizing_denoiser", "optimal_denoiser", "pmem_denoiser", "sample_gmm", "x0_to_eps"],
                    ".gmm"),
    **dict.fromkeys(["ExcessLosses", "LossResult", "gmm_excess_losses", "per_draw_losses", "training_loss"],
                    ".losses"),
    **dict.fromkeys(["EMMResult", "MemorizationResult", "NearestTwo", "bootstrap_ci", "clopper_pearson_ci",
                     "estimate_emm", "find_duplicates", "memorization_fraction", "memorized_mask", "nearest_two"],
                    ".memorization"),
    **dict.fromkeys(["AsymptoticLosses", "TwoPointConvergenceError", "asymptotic_losses", "two_point_trace"],
                    ".rf_test_loss"),
    **dict.fromkeys(["SampleResult", "ddim_sample", "sample_optimal"], ".sampler"),
    **dict.fromkeys(["ThreadBudget", "thread_budget"], ".threads"),
}

__all__ = list(_LAZY)


def __getattr__(name):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
