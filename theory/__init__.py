"""memlab.theory: symbolic derivations (sympy) and closed-form predictions.

Nothing in this layer imports numba or torch.
"""

from .grid import (PAPER_LAMBDA, alpha, coupon_collector_bound, paper_grid, psi, sigma,
                   validity_psi_min, varsigma)

__all__ = ["PAPER_LAMBDA", "alpha", "coupon_collector_bound", "paper_grid", "psi", "sigma",
           "validity_psi_min", "varsigma"]
