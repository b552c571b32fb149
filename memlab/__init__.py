"""memlab: when does a diffusion model memorize its training data instead of generalizing?

Public facade.  The layers live in :mod:`memlab.theory` (sympy derivations, closed forms),
:mod:`memlab.numerics` (numba evaluation and simulation) and :mod:`memlab.validation` (PyTorch;
optional, imported lazily).  ``import memlab`` never imports torch.
"""

from .numerics import (ExcessLosses, GMMData, GMMDenoiser, LossResult, SampleResult, ddim_sample,
                       generalizing_denoiser, gmm_denoiser, gmm_excess_losses, memorizing_denoiser,
                       pmem_denoiser, sample_gmm, training_loss)
from .theory import paper_grid

__version__ = "0.1.0"
