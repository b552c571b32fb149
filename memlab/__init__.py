"""memlab: when does a diffusion model memorize its training data instead of generalizing?

Public facade.  The layers live in :mod:`memlab.theory` (sympy derivations, closed forms),
:mod:`memlab.numerics` (numba evaluation and simulation) and :mod:`memlab.validation` (PyTorch;
optional, imported lazily).  ``import memlab`` never imports torch.
"""

import importlib

# Every public name and the module it lives in.  They are imported on first use (PEP 562), so that
# ``import memlab`` and a one-off CLI answer pay only for what they call (sympy, scipy and numba load
# when a name that needs them is first touched).
_LAZY = {
    "load_points": ".io",
    **dict.fromkeys(["ExcessLosses", "LossResult", "gmm_excess_losses", "training_loss"], ".numerics.losses"),
    **dict.fromkeys(["GMMData", "GMMDenoiser", "generalizing_denoiser", "gmm_denoiser", "memorizing_denoiser",
                     "optimal_denoiser", "pmem_denoiser", "sample_gmm"], ".numerics.gmm"),
    **dict.fromkeys(["SampleResult", "ddim_sample", "sample_optimal"], ".numerics.sampler"),
    **dict.fromkeys(["EMMResult", "MemorizationResult", "NearestTwo", "estimate_emm", "memorization_fraction",
                     "nearest_two"], ".numerics.memorization"),
    **dict.fromkeys(["CurveReadOff", "LearningCurves", "read_off_timescales"], ".numerics.rf_curves"),
    **dict.fromkeys(["GDResult", "simulate_gd"], ".numerics.rf_gd"),
    **dict.fromkeys(["PhaseDiagram", "rf_learning_curves", "rf_phase_diagram"], ".numerics.rf_learning"),
    **dict.fromkeys(["GEPMatrices", "TrueFeatureMatrices", "gep_matrices", "true_feature_matrices"],
                    ".numerics.rf_matrices"),
    **dict.fromkeys(["SpectrumResult", "rf_spectrum"], ".numerics.rf_spectrum"),
    **dict.fromkeys(["AsymptoticLosses", "TwoPointConvergenceError", "asymptotic_losses", "two_point_trace"],
                    ".numerics.rf_test_loss"),
    **dict.fromkeys(["TimescalesResult", "predict_timescales"], ".numerics.timescales"),
    **dict.fromkeys(["ThreadBudget", "thread_budget"], ".numerics.threads"),
    "paper_grid": ".theory.grid",
    "MemlabValidityWarning": ".theory.checks",
    **dict.fromkeys(["WEIGHTINGS", "MStarResult", "derive_crossover", "predict_mstar"], ".theory.crossover"),
    **dict.fromkeys(["GEPConstants", "gep_constants"], ".theory.gep"),
    "RFModel": ".theory.rf_model",
    "derive_rf": ".theory.rf_symbolic",
    "derive_two_point": ".theory.rf_two_point",
}


def __getattr__(name):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'memlab' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


__version__ = "0.1.0"

__all__ = ["predict_mstar", "MStarResult", "derive_crossover", "WEIGHTINGS", "gmm_excess_losses",
           "ExcessLosses", "training_loss", "LossResult", "sample_gmm", "GMMData", "GMMDenoiser", "gmm_denoiser",
           "generalizing_denoiser", "memorizing_denoiser", "pmem_denoiser", "optimal_denoiser", "ddim_sample",
           "sample_optimal", "SampleResult", "paper_grid", "RFModel", "rf_spectrum", "SpectrumResult",
           "predict_timescales", "TimescalesResult", "gep_constants", "GEPConstants", "gep_matrices", "GEPMatrices",
           "true_feature_matrices", "TrueFeatureMatrices", "derive_rf", "rf_learning_curves", "LearningCurves",
           "rf_phase_diagram", "PhaseDiagram", "read_off_timescales", "CurveReadOff", "simulate_gd", "GDResult",
           "MemlabValidityWarning", "cite", "memorization_fraction", "MemorizationResult", "nearest_two",
           "NearestTwo", "estimate_emm", "EMMResult", "load_points", "thread_budget", "ThreadBudget",
           "asymptotic_losses", "AsymptoticLosses", "two_point_trace", "TwoPointConvergenceError", "derive_two_point",
           "__version__"]

_CITATIONS = """\
@article{buchanan2025edge,
  title   = {On the Edge of Memorization in Diffusion Models},
  author  = {Buchanan, Sam and Pai, Druv and Ma, Yi and De Bortoli, Valentin},
  journal = {arXiv preprint arXiv:2508.17689}, year = {2025}}
@article{bonnaire2025why,
  title   = {Why Diffusion Models Don't Memorize: The Role of Implicit Dynamical Regularization in Training},
  author  = {Bonnaire, Tony and Urfin, Rapha{\\"e}l and Biroli, Giulio and M{\\'e}zard, Marc},
  journal = {arXiv preprint arXiv:2505.17638}, year = {2025}}
@article{gu2023memorization,
  title   = {On Memorization in Diffusion Models},
  author  = {Gu, Xiangming and Du, Chao and Pang, Tianyu and Li, Chongxuan and Lin, Min and Wang, Ye},
  journal = {arXiv preprint arXiv:2310.02664}, year = {2023}}"""


def cite() -> str:
    """BibTeX entries of the papers memlab implements."""
    return _CITATIONS
