"""memlab: when does a diffusion model memorize its training data instead of generalizing?

Public facade.  The layers live in :mod:`memlab.theory` (sympy derivations, closed forms),
:mod:`memlab.numerics` (numba evaluation and simulation) and :mod:`memlab.validation` (PyTorch;
optional, imported lazily).  ``import memlab`` never imports torch.
"""

from .io import load_points
from .numerics import (ExcessLosses, GMMData, GMMDenoiser, LossResult, SampleResult, ddim_sample,
                       generalizing_denoiser, gmm_denoiser, gmm_excess_losses, memorizing_denoiser,
                       optimal_denoiser, pmem_denoiser, sample_gmm, sample_optimal, training_loss)
from .numerics.memorization import (EMMResult, MemorizationResult, NearestTwo, estimate_emm,
                                    memorization_fraction, nearest_two)
from .numerics.rf_curves import CurveReadOff, LearningCurves, read_off_timescales
from .numerics.rf_gd import GDResult, simulate_gd
from .numerics.rf_learning import PhaseDiagram, rf_learning_curves, rf_phase_diagram
from .numerics.rf_matrices import GEPMatrices, TrueFeatureMatrices, gep_matrices, true_feature_matrices
from .numerics.rf_spectrum import SpectrumResult, rf_spectrum
from .numerics.timescales import TimescalesResult, predict_timescales
from .theory import paper_grid
from .theory.checks import MemlabValidityWarning
from .theory.crossover import WEIGHTINGS, MStarResult, derive_crossover, predict_mstar
from .theory.gep import GEPConstants, gep_constants
from .theory.rf_model import RFModel
from .theory.rf_symbolic import derive_rf

__version__ = "0.1.0"

__all__ = ["predict_mstar", "MStarResult", "derive_crossover", "WEIGHTINGS", "gmm_excess_losses",
           "ExcessLosses", "training_loss", "LossResult", "sample_gmm", "GMMData", "GMMDenoiser", "gmm_denoiser",
           "generalizing_denoiser", "memorizing_denoiser", "pmem_denoiser", "optimal_denoiser", "ddim_sample",
           "sample_optimal", "SampleResult", "paper_grid", "RFModel", "rf_spectrum", "SpectrumResult",
           "predict_timescales", "TimescalesResult", "gep_constants", "GEPConstants", "gep_matrices", "GEPMatrices",
           "true_feature_matrices", "TrueFeatureMatrices", "derive_rf", "rf_learning_curves", "LearningCurves",
           "rf_phase_diagram", "PhaseDiagram", "read_off_timescales", "CurveReadOff", "simulate_gd", "GDResult",
           "MemlabValidityWarning", "cite", "memorization_fraction", "MemorizationResult", "nearest_two",
           "NearestTwo", "estimate_emm", "EMMResult", "load_points", "__version__"]

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
