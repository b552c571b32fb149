"""memlab.numerics: numba-accelerated evaluation of the theory (no torch here)."""

from .gmm import (GMMData, GMMDenoiser, eps_to_x0, generalizing_denoiser, gmm_denoiser, memorizing_denoiser,
                  optimal_denoiser, pmem_denoiser, sample_gmm, x0_to_eps)
from .losses import ExcessLosses, LossResult, gmm_excess_losses, per_draw_losses, training_loss
from .memorization import (EMMResult, MemorizationResult, NearestTwo, bootstrap_ci, estimate_emm,
                           find_duplicates, memorization_fraction, memorized_mask, nearest_two)
from .sampler import SampleResult, ddim_sample, sample_optimal

__all__ = ["GMMData", "GMMDenoiser", "eps_to_x0", "generalizing_denoiser", "gmm_denoiser",
           "memorizing_denoiser", "optimal_denoiser", "pmem_denoiser", "sample_gmm", "x0_to_eps", "ExcessLosses",
           "LossResult", "gmm_excess_losses", "per_draw_losses", "training_loss", "SampleResult",
           "ddim_sample", "sample_optimal", "EMMResult", "MemorizationResult", "NearestTwo", "bootstrap_ci",
           "estimate_emm", "find_duplicates", "memorization_fraction", "memorized_mask", "nearest_two"]
