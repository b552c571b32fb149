"""Figures (matplotlib, Agg backend).  Functions take result objects and an optional ``ax``, return
the ``Axes`` and never call ``plt.show()``; :func:`save_figure` writes PNG and PDF."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

if os.environ.get("MPLBACKEND") is None:
    matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .numerics.losses import ExcessLosses  # noqa: E402
from .theory import crossover  # noqa: E402

__all__ = ["plot_gmm_losses", "save_figure"]


def save_figure(fig, out_dir, stem: str) -> list[Path]:
    """Save ``fig`` as ``out_dir/stem.png`` (150 dpi) and ``out_dir/stem.pdf``; return the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{stem}.png", out / f"{stem}.pdf"]
    fig.savefig(paths[0], dpi=150, bbox_inches="tight")
    fig.savefig(paths[1], bbox_inches="tight")
    return paths


def plot_gmm_losses(res: ExcessLosses, *, C_values=(1.0, 2.0), ax=None):
    """Monte Carlo excess losses against M/N with the Thm 3.1 / 3.2 approximations (Fig. 1 analogue).

    Markers with error bars (2 standard errors): the partially memorizing denoisers' excess
    ``L_{N,t}(pmem_M) - L_{N,t}(mem)`` and the generalizing denoiser's (placed at M/N = K/N).  Lines:
    ``C (1 - M/N) d sigma_*^2`` for each C and the generalizing level ``d sigma_*^2/(psi_t sigma_*^2+1)``;
    dotted verticals mark where they cross (single-time crossover).  Log y axis; M = N (excess
    exactly 0 by construction) is not drawn.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 4.6))
    keep = res.M < res.N
    x = res.M[keep] / res.N
    ax.errorbar(x, res.pmem[keep], yerr=2 * res.pmem_se[keep], fmt="o", ms=4, capsize=2,
                color="C0", label=r"Monte Carlo: partially memorizing $\bar x_{\mathrm{pmem},M}$ ($\pm$2 SE)")
    ax.errorbar([res.K / res.N], [res.generalizing], yerr=[2 * res.generalizing_se], fmt="s", ms=6,
                capsize=3, color="C3", label=r"Monte Carlo: generalizing $\bar x_\star$ (at $M=K$)")
    grid_x = np.linspace(0.0, 1.0, 400)[:-1]
    gen_level = res.theory_generalizing
    ax.axhline(gen_level, color="C3", lw=1.5, ls="--",
               label=rf"Thm 3.1: $d\sigma_\star^2/(\psi_t\sigma_\star^2+1)$ = {gen_level:.3g}")
    styles = {0: ("C1", ":"), 1: ("C2", "-"), 2: ("C4", "-.")}
    for j, C in enumerate(C_values):
        color, ls = styles.get(j, ("0.4", "--"))
        y = crossover.pmem_excess_value(grid_x * res.N, res.N, C, res.d, res.sigma2)
        ax.plot(grid_x, y, color=color, lw=1.5, ls=ls,
                label=rf"Thm 3.2: $C(1-M/N)d\sigma_\star^2$, C = {C:g}")
        xc = float(crossover.single_time_ratio(res.t, C, res.sigma2))
        if 0 < xc < 1:
            ax.axvline(xc, color=color, lw=0.8, ls=":")
            ax.text(xc - 0.01, gen_level * (0.55 ** (j + 1)), f"crossover C={C:g}:\nM/N = {xc:.3f}",
                    ha="right", va="top", fontsize=7, color=color)
    ax.set_yscale("log")
    positive = res.pmem[keep][res.pmem[keep] > 0]
    if positive.size:
        ax.set_ylim(bottom=0.3 * min(positive.min(), gen_level * 0.55 ** (len(C_values) + 1)))
    ax.set_xlim(0, 1)
    ax.set_xlabel(r"$M/N$ (fraction of training points memorized, dimensionless)")
    ax.set_ylabel(r"excess loss over $\bar x_{\mathrm{mem}}$ [x0 units, summed over $d$]")
    ax.set_title(f"N={res.N}, d={res.d}, K={res.K}, t={res.t:.5g} ($\\psi_t$={res.psi:.4g}), "
                 f"{res.n_noise} noise draws", fontsize=9)
    ax.legend(fontsize=7, loc="lower left")
    ax.grid(True, which="both", alpha=0.25)
    return ax
