"""Figures (matplotlib, Agg backend).  Functions take result objects and an optional ``ax``, return
the ``Axes`` and never call ``plt.show()``; :func:`save_figure` writes PNG and PDF."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import matplotlib

if os.environ.get("MPLBACKEND") is None:
    matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .io import atomic_write  # noqa: E402
from .numerics.losses import ExcessLosses  # noqa: E402
from .theory import crossover  # noqa: E402

__all__ = ["plot_gmm_losses", "plot_rf_spectrum", "plot_rf_curves", "plot_rf_phase", "plot_memorization",
           "plot_capacity_sweep", "plot_sweep_grid", "plot_rf_training", "plot_timescale_study", "plot_rf_theory",
           "plot_score_exponent", "save_figure"]


def save_figure(fig, out_dir, stem: str) -> list[Path]:
    """Save ``fig`` as ``out_dir/stem.png`` (150 dpi) and ``out_dir/stem.pdf``, each written atomically
    (:func:`memlab.io.atomic_write`); return the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{stem}.png", out / f"{stem}.pdf"]
    for path, kw in zip(paths, ({"dpi": 150}, {})):
        atomic_write(path, lambda f, fmt=path.suffix[1:], kw=kw: fig.savefig(f, format=fmt, bbox_inches="tight", **kw))
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


def plot_rf_spectrum(spec, eigenvalues=None, *, d=None, ax=None, bins_per_decade=12):
    """Theory density of ``U`` on a log-lambda axis over a finite-size eigenvalue histogram (Fig. 4 analogue).

    Line: the Theorem 3.1 density per decade, ``ln(10) lambda rho(lambda)``, continuous part; the
    delta peak at ``s_t^2`` is a vertical bar labelled with its weight.  Markers with error bars:
    the eigenvalues of a finite-size ``U`` (e.g. the Gaussian-equivalent one) per decade, with Poisson
    (1 SD) errors; eigenvalues equal to ``s_t^2`` (the delta peak) are counted separately in the label.
    Bulk edges from the solver are shaded.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(7.0, 4.4))
    s2 = spec.delta_location
    lam = spec.lambdas
    keep = lam > s2 * (1 + 1e-6)
    ax.plot(lam[keep], np.log(10) * lam[keep] * spec.density[keep], color="C0", lw=1.6,
            label=r"theory (Thm 3.1): $\ln 10\,\lambda\,\rho(\lambda)$")
    for a, b, m in spec.bulks:
        ax.axvspan(a, b, color="C0", alpha=0.07, lw=0)
        ax.text(np.sqrt(a * b), 0.0, f"{m:.4f}", ha="center", va="bottom", fontsize=7, color="C0",
                transform=ax.get_xaxis_transform())
    w = spec.delta_weight
    if w > 0:
        ax.axvline(s2, color="C3", lw=2.0, label=rf"$\delta$-peak at $s_t^2$ = {s2:.3g}, weight {w:.4f}")
    if eigenvalues is not None:
        ev = np.asarray(eigenvalues, dtype=float)
        p = ev.size
        at_peak = np.abs(ev - s2) <= 1e-9 * max(1.0, s2)
        rest = ev[~at_peak]
        lo = np.log10(max(rest.min(), s2 * (1 + 1e-6))) if rest.size else np.log10(s2)
        hi = np.log10(rest.max()) if rest.size else lo + 1
        nb = max(5, int(np.ceil((hi - lo) * bins_per_decade)))
        edges = np.logspace(lo - 1e-9, hi + 1e-9, nb + 1)
        counts, _ = np.histogram(rest, bins=edges)
        width = np.diff(np.log10(edges))
        centers = np.sqrt(edges[:-1] * edges[1:])
        nz = counts > 0
        dd = f", d = {d}" if d is not None else ""
        ax.errorbar(centers[nz], counts[nz] / (p * width[nz]), yerr=np.sqrt(counts[nz]) / (p * width[nz]),
                    fmt="o", ms=3.5, capsize=2, color="k",
                    label=f"finite-size U eigenvalues (p = {p}{dd}; {int(at_peak.sum())} at $s_t^2$, "
                          f"fraction {at_peak.mean():.4f})")
    ax.set_xscale("log")
    ax.set_yscale("log")
    top = np.log(10) * lam[keep] * spec.density[keep]
    if np.any(top > 0):
        # room above the densities for the legend; a decade and a half below the lowest bulk maximum
        ax.set_ylim(max(top[top > 0].min(), top.max() * 1e-3), top.max() * 30)
    ax.set_xlabel(r"eigenvalue $\lambda$ of $U$ (dimensionless; loss units per $d$)")
    ax.set_ylabel(r"eigenvalue density per decade, $dN/(p\,d\log_{10}\lambda)$")
    m = spec.model
    ax.set_title(rf"$\psi_p$ = {m.psi_p:g}, $\psi_n$ = {m.psi_n:g}, t = {m.t:g}, "
                 f"{m.activation.name}, $\\sigma_x$ = {m.sigma_x:g}", fontsize=9)
    ax.legend(fontsize=7, loc="upper center", ncol=1, framealpha=0.9)
    ax.grid(True, which="both", alpha=0.25)
    return ax


def _tau_mem_formula(model):
    from .theory import timescales as ts

    k = model.constants
    return float(ts.tau_mem_formula(k.s_t2, k.v_t2, model.psi_p, model.psi_n, k.delta_t))


def _gen_inf(c):
    inf = ~np.isfinite(c.tau)
    return float(c.gen[inf][0]) if np.any(inf) else float(c.gen[-1])


def _curve_lines(axes, c, col, read_off, *, panel_c):
    """One learning curve as lines on the four panels of :func:`plot_rf_curves` / :func:`plot_rf_theory`: (A) score
    error, (B) train (solid) and test (dashed), (C) the losses against ``tau / tau_mem_formula`` (``panel_c="scaled"``)
    or ``L_gen`` against ``tau`` (``"gen"``), (D) ``L_gen / L_gen(inf)`` against ``tau / tau_mem_formula``; the
    read-off markers when given.  Returns ``tau_mem_formula``."""
    fin = np.isfinite(c.tau) & (c.tau > 0)
    tm = _tau_mem_formula(c.model)
    lab = rf"$\psi_n$ = {c.model.psi_n:g}"
    axes[0].plot(c.tau[fin], c.score_error[fin], color=col, lw=1.6, label=lab)
    axes[1].plot(c.tau[fin], c.train[fin], color=col, lw=1.6, label=lab)
    axes[1].plot(c.tau[fin], c.test[fin], color=col, lw=1.6, ls="--")
    if panel_c == "scaled":
        axes[2].plot(c.tau[fin] / tm, c.train[fin], color=col, lw=1.6, label=lab)
        axes[2].plot(c.tau[fin] / tm, c.test[fin], color=col, lw=1.6, ls="--")
    else:
        axes[2].plot(c.tau[fin], c.gen[fin], color=col, lw=1.6, label=lab)
    axes[3].plot(c.tau[fin] / tm, c.gen[fin] / _gen_inf(c), color=col, lw=1.6, label=lab)
    if read_off is not None:
        axes[0].plot([read_off.tau_gen_score_min], [read_off.score_min], "x", ms=8, mew=2, color=col)
        if read_off.tau_mem_half_rise is not None:
            axes[3].plot([read_off.tau_mem_half_rise / tm], [read_off.mem_fraction], "D", ms=6, color=col, mec="k",
                         mew=0.5)
    return tm


def plot_rf_curves(curves, gd=None, *, gd_theory=None, read_offs=None, axes=None):
    """Learning curves of the random-features score model (arXiv:2505.17638 Fig. 5 / Fig. 11 analogue).

    Panels: (A) score error against ``tau``; (B) train (solid) and test (dashed) losses against ``tau``;
    (C) the losses against ``tau / tau_mem_formula``; (D) ``L_gen / L_gen(inf)`` against
    ``tau / tau_mem_formula`` (the collapse).  ``tau_mem_formula = psi_p/(Delta_t lambda_min_formula)``
    (arXiv:2505.17638 MT §3; docs/theory/random_features.md §5).

    Parameters
    ----------
    curves : list of LearningCurves
        Theory curves (thick lines), one per ``psi_n``; ``tau = inf`` entries are dropped from the log
        axis (``L_gen(inf)`` normalises panel D).
    gd : list of LearningCurves, optional
        GD simulations (markers: circles train / score error, squares test), matched to ``curves`` by
        ``psi_n``.
    gd_theory : list of LearningCurves, optional
        Closed form at the GD runs' own ``d`` (thin dotted lines under the markers), matched by ``psi_n``:
        GD at small ``d`` differs from the large-``d`` curves by finite-size effects, not by the method.
    read_offs : list of CurveReadOff, optional
        One per curve: ``tau_gen_score_min`` is marked on panel A (crosses), ``tau_mem_half_rise`` on
        panel D (diamonds); the dash-dotted line on panel A is ``tau_gen_formula``
        (docs/theory/random_features.md §5-§6).
    axes : sequence of 4 Axes, optional

    Returns
    -------
    ndarray of Axes
    """
    from .theory import timescales as ts

    if axes is None:
        fig, axes = plt.subplots(2, 2, figsize=(12.0, 8.6))
    axes = np.asarray(axes).ravel()
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for k, c in enumerate(curves):
        col = colors[k % len(colors)]
        _curve_lines(axes, c, col, None if read_offs is None else read_offs[k], panel_c="scaled")
        for th in gd_theory or []:
            if th.model.psi_n != c.model.psi_n:
                continue
            tf = np.isfinite(th.tau) & (th.tau > 0)
            kw = dict(color=col, lw=0.9, ls=":")
            axes[0].plot(th.tau[tf], th.score_error[tf], **kw)
            axes[1].plot(th.tau[tf], th.train[tf], **kw)
            axes[1].plot(th.tau[tf], th.test[tf], **kw)
        for g in gd or []:
            if g.model.psi_n != c.model.psi_n:
                continue
            gf = g.tau > 0
            kw = dict(ms=4, ls="none", color=col, mec="k", mew=0.5)
            axes[0].plot(g.tau[gf], g.score_error[gf], "o", **kw)
            axes[1].plot(g.tau[gf], g.train[gf], "o", **kw)
            axes[1].plot(g.tau[gf], g.test[gf], "s", **kw)
    c0 = curves[0]
    m0, k0 = c0.model, c0.constants
    if read_offs is not None:                       # legend entries of the read-off markers (black proxies)
        axes[0].plot([], [], "x", ms=8, mew=2, color="k", label="tau_gen_score_min (read-off)")
        axes[3].plot([], [], "D", ms=6, color="w", mec="k", mew=0.8,
                     label=f"tau_mem_half_rise (read-off, L_gen = {read_offs[0].mem_fraction:g} L_gen(inf))")
        tg = float(ts.tau_gen_formula(k0.mu1, k0.norm2, m0.psi_p, k0.delta_t))
        axes[0].axvline(tg, color="0.3", lw=1.0, ls="-.", label=f"tau_gen_formula = {tg:.4g}")
    for ax in axes[1:3]:
        ax.axhline(c0.bayes_floor, color="0.4", lw=0.8, ls=(0, (1, 3)), label=f"Bayes floor {c0.bayes_floor:.3f}")
    axes[0].set_ylabel(r"score error $\mathcal{E}_{\rm score}$ (per $d$)")
    axes[1].set_ylabel(r"loss per $d$: train (solid), test (dashed)")
    axes[2].set_ylabel(r"loss per $d$: train (solid), test (dashed)")
    axes[3].set_ylabel(r"$\mathcal{L}_{\rm gen}(\tau)\,/\,\mathcal{L}_{\rm gen}(\infty)$")
    for ax in axes[:2]:
        ax.set_xlabel(r"training time $\tau = k\eta/d^2$")
    for ax in axes[2:]:
        ax.set_xlabel(r"$\tau$ / tau_mem_formula  (tau_mem_formula = $\psi_p/(\Delta_t\lambda_{\min})$, "
                      "arXiv:2505.17638 MT §3)")
    axes[0].set_yscale("log")
    for ax in axes:
        ax.set_xscale("log")
        ax.grid(True, which="major", alpha=0.3)
    gd_d = sorted({g.model.d for g in gd or []})
    gd_txt = (f"; markers: GD on real {m0.activation.name} features at d = {', '.join(map(str, gd_d))} "
              "(m = inf), dotted: closed form at that d" if gd_d else "")
    axes[0].figure.suptitle(f"$\\psi_p$ = {m0.psi_p:g}, t = {m0.t:g}, {m0.activation.name}; lines: gradient-flow "
                            f"closed form (GEP, d = {m0.d}){gd_txt}", fontsize=9)
    axes[0].set_title("(A) score error", fontsize=9)
    axes[1].set_title("(B) train and test losses", fontsize=9)
    axes[2].set_title(r"(C) losses against $\tau$ / tau_mem_formula", fontsize=9)
    axes[3].set_title(r"(D) collapse of $\mathcal{L}_{\rm gen}$ under $\tau$ / tau_mem_formula", fontsize=9)
    axes[0].legend(fontsize=7)
    axes[1].legend(fontsize=7, loc="lower left")
    axes[3].legend(fontsize=7, loc="upper left")
    return axes


def plot_rf_theory(theory, finite=None, *, read_offs=None, n_markers=14, axes=None):
    """Learning curves drawn entirely from the ``d -> infinity`` theory (docs/theory/random_features.md §9), with
    finite-``d`` closed-form markers (arXiv:2505.17638 Fig. 5 analogue).

    Panels: (A) score error, with ``tau_gen_score_min`` (crosses) and ``tau_gen_formula`` (dash-dotted);
    (B) train (solid, circles) and test (dashed, squares) losses; (C) ``L_gen``; (D) ``L_gen / L_gen(inf)``
    against ``tau / tau_mem_formula`` with ``tau_mem_half_rise`` (diamonds).

    Parameters
    ----------
    theory : list of LearningCurves
        ``method="asymptotic"`` curves (lines), one per ``psi_n``.
    finite : list of LearningCurves, optional
        Finite-``d`` closed forms (``method="gep"``), matched by ``psi_n``; ``n_markers`` of their times are drawn.
    read_offs : list of CurveReadOff, optional
        Read-offs of the theory curves.
    axes : sequence of 4 Axes, optional

    Returns
    -------
    ndarray of Axes
    """
    from .theory import timescales as ts

    if axes is None:
        fig, axes = plt.subplots(2, 2, figsize=(12.0, 8.6))
    axes = np.asarray(axes).ravel()
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for k, c in enumerate(theory):
        col = colors[k % len(colors)]
        tm = _curve_lines(axes, c, col, None if read_offs is None else read_offs[k], panel_c="gen")
        for g in finite or []:
            if g.model.psi_n != c.model.psi_n:
                continue
            gf = np.flatnonzero(np.isfinite(g.tau) & (g.tau > 0))
            gf = gf[np.unique(np.linspace(0, gf.size - 1, n_markers).round().astype(int))]
            kw = dict(ms=4.5, ls="none", color=col, mec="k", mew=0.5)
            axes[0].plot(g.tau[gf], g.score_error[gf], "o", **kw)
            axes[1].plot(g.tau[gf], g.train[gf], "o", **kw)
            axes[1].plot(g.tau[gf], g.test[gf], "s", **kw)
            axes[2].plot(g.tau[gf], g.gen[gf], "o", **kw)
            axes[3].plot(g.tau[gf] / tm, g.gen[gf] / _gen_inf(g), "o", **kw)
    c0 = theory[0]
    m0, k0 = c0.model, c0.constants
    if read_offs is not None:
        axes[0].plot([], [], "x", ms=8, mew=2, color="k", label="tau_gen_score_min (theory read-off)")
        axes[3].plot([], [], "D", ms=6, color="w", mec="k", mew=0.8, label="tau_mem_half_rise (theory read-off)")
    tg = float(ts.tau_gen_formula(k0.mu1, k0.norm2, m0.psi_p, k0.delta_t))
    axes[0].axvline(tg, color="0.3", lw=1.0, ls="-.", label=f"tau_gen_formula = {tg:.4g}")
    axes[1].axhline(c0.bayes_floor, color="0.4", lw=0.8, ls=(0, (1, 3)), label=f"Bayes floor {c0.bayes_floor:.3f}")
    if finite:
        axes[1].plot([], [], "o", ms=4.5, color="w", mec="k", label=f"closed form, d = {finite[0].model.d} "
                     "(train o, test s)")
    axes[0].set_ylabel(r"score error $\mathcal{E}_{\rm score}$ (per $d$)")
    axes[1].set_ylabel(r"loss per $d$: train (solid), test (dashed)")
    axes[2].set_ylabel(r"$\mathcal{L}_{\rm gen} = \mathcal{L}_{\rm test} - \mathcal{L}_{\rm train}$")
    axes[3].set_ylabel(r"$\mathcal{L}_{\rm gen}(\tau)\,/\,\mathcal{L}_{\rm gen}(\infty)$")
    for ax in axes[:3]:
        ax.set_xlabel(r"training time $\tau = k\eta/d^2$")
    axes[3].set_xlabel(r"$\tau$ / tau_mem_formula")
    axes[0].set_yscale("log")
    axes[2].set_yscale("log")
    for ax in axes:
        ax.set_xscale("log")
        ax.grid(True, which="major", alpha=0.3)
    axes[0].figure.suptitle(f"$\\psi_p$ = {m0.psi_p:g}, t = {m0.t:g}, {m0.activation.name}; lines: d → ∞ theory "
                            "(docs/theory/random_features.md §9); markers: finite-d closed form", fontsize=9)
    for ax, title in zip(axes, ("(A) score error", "(B) train and test losses", "(C) generalization gap",
                                r"(D) collapse of $\mathcal{L}_{\rm gen}$ under $\tau$ / tau_mem_formula")):
        ax.set_title(title, fontsize=9)
    axes[0].legend(fontsize=7)
    axes[1].legend(fontsize=7, loc="lower left")
    axes[3].legend(fontsize=7, loc="upper left")
    return axes


def plot_score_exponent(res, *, ax=None):
    """Minimum score error over training time against ``psi_n`` (log-log), theory line and finite-``d`` markers,
    with the fitted power laws (a :class:`memlab.figures.ScoreExponentFigure`-like object with ``psi_n``,
    ``score_min``, ``psi_n_finite``, ``score_min_finite`` (seeds x psi_n), ``fit``, ``fit_finite``, ``model``,
    ``finite_d``)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 4.6))
    g = res.fit["gamma"]
    ax.loglog(res.psi_n, res.score_min, "-", color="C0", lw=1.8,
              label=f"theory (d → ∞): $\\propto\\psi_n^{{{g:.3f}}}$")
    if res.score_min_finite is not None:
        mf = np.mean(res.score_min_finite, axis=0)
        sd = np.std(res.score_min_finite, axis=0)
        ax.errorbar(res.psi_n_finite, mf, yerr=sd, fmt="o", color="C1", mec="k", ms=5, capsize=2,
                    label=f"closed form d = {res.finite_d} ({res.score_min_finite.shape[0]} seeds): "
                          f"$\\propto\\psi_n^{{{res.fit_finite['gamma']:.3f}}}$")
    m = res.model
    ax.set_xlabel(r"$\psi_n = n/d$")
    ax.set_ylabel(r"$\min_\tau \mathcal{E}_{\rm score}(\tau)$ (per $d$)")
    ax.set_title(f"minimum score error, $\\psi_p$ = {m.psi_p:g}, t = {m.t:g}, {m.activation.name}", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return ax


def plot_rf_phase(pd, *, axes=None):
    """Heat maps of ``L_gen`` over ``(psi_n, psi_p)`` at each training time of a :class:`PhaseDiagram`,
    with the ``n* = p`` line and the ``tau_mem_formula = tau`` / ``tau_gen_formula = tau`` boundaries
    (arXiv:2505.17638 Fig. 5C analogue; docs/theory/random_features.md §5)."""
    nt = pd.tau.size
    if axes is None:
        fig, axes = plt.subplots(1, nt, figsize=(5.2 * nt, 4.3), squeeze=False)
    axes = np.asarray(axes).ravel()
    vmax = float(np.max(pd.gen))
    vmin = min(0.0, float(np.min(pd.gen)))
    for k, ax in enumerate(axes[:nt]):
        im = ax.pcolormesh(pd.psi_n, pd.psi_p, pd.gen[k], shading="nearest", cmap="magma", vmin=vmin, vmax=vmax)
        lo, hi = min(pd.psi_n.min(), pd.psi_p.min()), max(pd.psi_n.max(), pd.psi_p.max())
        ax.plot([lo, hi], [lo, hi], color="w", lw=1.5, ls="--", label=r"$n^* = p$ ($\psi_n = \psi_p$)")
        mem = [(x, y) for x, y in zip(pd.psi_n_mem[k], pd.psi_p) if x is not None]
        if mem:
            xm, ym = zip(*mem)
            ax.plot(xm, ym, color="c", lw=1.5, label=r"tau_mem_formula$(\psi_p,\psi_n) = \tau$")
        below = pd.psi_p[pd.tau_gen_formula > pd.tau[k]]
        if below.size:
            ax.axhline(below.max(), color="y", lw=1.2, label=r"tau_gen_formula$(\psi_p) = \tau$")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(pd.psi_n.min() / 1.2, pd.psi_n.max() * 1.2)
        ax.set_ylim(pd.psi_p.min() / 1.2, pd.psi_p.max() * 1.2)
        ax.set_xlabel(r"$\psi_n = n/d$")
        ax.set_ylabel(r"$\psi_p = p/d$")
        ax.set_title(rf"$\mathcal{{L}}_{{\rm gen}}$ at $\tau$ = {pd.tau[k]:g} (t = {pd.model.t:g}, d = {pd.model.d})",
                     fontsize=9)
        ax.legend(fontsize=7, loc="lower right")
        plt.colorbar(im, ax=ax, label=r"$\mathcal{L}_{\rm gen}$ (per $d$)")
    return axes


def plot_memorization(results, *, axes=None):
    """Nearest / second-nearest distance ratios and memorization fractions (Gu et al. 1/3 rule).

    Left: histogram of ``log10(d1/d2)`` per sample set with the threshold ``k`` as a vertical line
    (samples left of it are memorized).  Right: the memorization fraction of each set as a marker with
    its confidence interval (``ci_low``, ``ci_high``; ``ci_method`` says which) as error bars.

    Parameters
    ----------
    results : MemorizationResult or mapping of label -> MemorizationResult
    axes : pair of Axes, optional
    """
    if not isinstance(results, dict):
        results = {"samples": results}
    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(10.5, 4.0), gridspec_kw={"width_ratios": [1.6, 1]})
    ax, bx = axes
    floor = 1e-6
    ratios = {}
    n_exact = 0
    for lab, r in results.items():
        x = np.where(r.d2 > 0, r.d1 / np.where(r.d2 > 0, r.d2, 1.0), 1.0)  # d2 = 0: duplicates, ratio 1
        n_exact += int(np.sum(x < floor))
        ratios[lab] = np.clip(x, floor, 1.0)
    lmin = min(float(np.log10(min(x.min() for x in ratios.values()))), float(np.log10(min(r.k for r in results.values()))))
    bins = np.linspace(np.floor(lmin) - 0.5, 0.0, 61)
    for i, (lab, x) in enumerate(ratios.items()):
        ax.hist(np.log10(x), bins=bins, histtype="step", lw=1.5, color=f"C{i}",
                label=f"{lab}: S = {x.size}, fraction {results[lab].fraction:.3g}")
    if n_exact:
        ax.text(0.01, 0.97, f"{n_exact} sample(s) with d1/d2 < 1e-6 drawn at 1e-6", transform=ax.transAxes,
                fontsize=7, va="top")
    ks = sorted({r.k for r in results.values()})
    for kk in ks:
        ax.axvline(np.log10(kk), color="k", ls="--", lw=1.2, label=f"threshold k = {kk:.3g} (memorized to the left)")
    ax.set_xlabel(r"$\log_{10}(d_1/d_2)$ (nearest / second-nearest training distance, dimensionless)")
    ax.set_ylabel("number of samples")
    ax.legend(fontsize=7)
    labels = list(results)
    f = np.array([results[lab].fraction for lab in labels])
    lo_ci = np.array([results[lab].ci_low if results[lab].ci_low is not None else results[lab].fraction
                      for lab in labels])
    hi_ci = np.array([results[lab].ci_high if results[lab].ci_high is not None else results[lab].fraction
                      for lab in labels])
    xs = np.arange(len(labels))
    how = getattr(next(iter(results.values())), "ci_method", "bootstrap").replace("clopper-pearson", "Clopper-Pearson")
    bx.errorbar(xs, f, yerr=[f - lo_ci, hi_ci - f], fmt="o", color="C3", capsize=4,
                label=f"measured ({how} CI)")
    bx.set_xticks(xs)
    bx.set_xticklabels(labels, rotation=15, fontsize=8)
    bx.set_ylim(-0.05, 1.05)
    bx.set_xlim(-0.6, len(labels) - 0.4)
    bx.set_ylabel("memorization fraction (dimensionless)")
    lvl = next(iter(results.values())).level
    bx.set_title(f"fraction memorized, {100 * lvl:g}% {how} CI", fontsize=9)
    bx.legend(fontsize=7, loc="center right")
    return axes


def plot_capacity_sweep(sweep, *, axes=None):
    """A capacity sweep (arXiv:2508.17689v1 Fig. 2 analogue; docs/theory/capacity_crossover.md §7).

    (a) memorization fraction vs ``M/N`` (markers with 95% Clopper-Pearson error bars) with the predicted ``M*/N`` line
    (the capacity crossover, arXiv:2508.17689v1 Eq. 21) and the measured transition band; (b) train and test
    loss at ``t_16`` (x0 units) vs ``M/N`` with the Thm 3.1 level; (c) learned ``sigma^2`` vs ``M/N``.  The
    titles name the training protocol; the figure's caption is ``sweep.prediction_note`` (which prediction is
    drawn and for which protocol it holds: the ``paper`` weighting is defined on the full 26-point grid).
    """
    from .theory.grid import psi

    if axes is None:
        fig, axes = plt.subplots(1, 3, figsize=(15, 4.4))
    a, b, c = axes
    st = sweep.settings
    x = sweep.M / sweep.N
    f = sweep.fractions
    lo = np.array([r["ci_low"] if r["ci_low"] is not None else r["fraction"] for r in sweep.results])
    hi = np.array([r["ci_high"] if r["ci_high"] is not None else r["fraction"] for r in sweep.results])
    a.errorbar(x, f, yerr=[f - lo, hi - f], fmt="o", ms=4, capsize=2, color="C0",
               label=f"measured ({st.get('n_samples', 50)} DDIM samples, 95% Clopper-Pearson CI)")
    m = sweep.mstar
    if m.ratio is not None:
        a.axvline(m.ratio, color="C3", lw=2, label=f"predicted $M^*/N$ = {m.ratio:.3f} ({m.weighting} weighting, "
                  f"C = {m.C:g}, full grid)")
    if sweep.start is not None:
        a.axvspan(sweep.start / sweep.N, sweep.end / sweep.N, color="C1", alpha=0.15,
                  label="transition band (start-end)")
    if sweep.m_pt is not None:
        a.axvline(sweep.m_pt / sweep.N, color="C0", ls="--",
                  label=f"measured $M_{{pt}}/N$ = {sweep.m_pt / sweep.N:.3f}")
    a.set_xlabel("M/N (components per training point, dimensionless)")
    a.set_ylabel("memorization fraction (dimensionless)")
    a.set_ylim(-0.05, 1.05)
    a.legend(fontsize=7, loc="upper left")
    a.set_title("(a) memorization transition", fontsize=9)
    tr = np.array([r["train_loss"] for r in sweep.results])
    te = np.array([r["test_loss"] for r in sweep.results])
    b.plot(x, tr, "o", ms=4, color="C0", label="train loss")
    b.plot(x, te, "s", ms=4, color="C1", label="test loss (100 held-out points)")
    t16 = sweep.results[0]["loss_t"]
    b.axhline(sweep.d / (float(psi(t16)) + 1), color="k", lw=1, label=r"Thm 3.1: $d\sigma_*^2/(\psi_t\sigma_*^2+1)$")
    b.set_xlabel("M/N (dimensionless)")
    b.set_ylabel(f"loss at t = {t16:.4g} (x0 units, summed over d)")
    b.legend(fontsize=7)
    b.set_title(r"(b) losses at $t_{16}$", fontsize=9)
    s2 = np.array([r["sigma2"] for r in sweep.results])
    c.plot(x, s2, "o", ms=4, color="C2", label=r"learned $\sigma^2$")
    c.axhline(1.0, color="k", lw=1, label=r"$\sigma_*^2$ = 1 (generalizing)")
    c.set_yscale("log")
    c.set_xlabel("M/N (dimensionless)")
    c.set_ylabel(r"learned $\sigma^2$ (data units squared)")
    c.legend(fontsize=7)
    c.set_title(r"(c) learned variance", fontsize=9)
    n_times = len(st.get("times") or ())
    a.figure.suptitle(f"N = {sweep.N}, d = {sweep.d}, K = {sweep.K}; protocol {st.get('protocol')}: {st.get('steps')} "
                      f"Adam steps, {st.get('n_noise')} noise draws, peak lr {st.get('peak_lr', 0):g}, {n_times} grid "
                      "times" + (f" (t >= {st['t_min']:g})" if st.get("t_min") is not None else ""), fontsize=10)
    a.figure.text(0.5, -0.02, sweep.prediction_note, ha="center", va="top", fontsize=8)
    return axes


def plot_sweep_grid(sweeps, *, ax=None):
    """Measured ``M_pt/N`` per configuration against the predicted ``M*/N`` (markers; prediction line); the title
    is the first sweep's ``prediction_note`` (the prediction drawn and the protocol the models were trained with)."""
    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 4.5))
    xs = np.array([np.nan if s.mstar.ratio is None else s.mstar.ratio for s in sweeps])
    ys = np.array([np.nan if s.ratio_pt is None else s.ratio_pt for s in sweeps])
    err = np.array([0.0 if s.m_pt is None else max(1, (s.end - s.start) // 10) / s.N for s in sweeps])
    idx = np.arange(len(sweeps))
    m = sweeps[0].mstar
    ax.errorbar(idx, ys, yerr=err, fmt="o", capsize=3, color="C0", label=r"measured $M_{pt}/N$ (refinement step)")
    ax.plot(idx, xs, "-", color="C3", lw=2,
            label=rf"predicted $M^*/N$ ({m.weighting} weighting, C = {m.C:g}, full grid)")
    ax.set_xticks(idx)
    ax.set_xticklabels([f"N{s.N} d{s.d} K{s.K}" for s in sweeps], rotation=60, fontsize=6)
    ax.set_xlabel("configuration (N, d, K)")
    ax.set_ylabel("transition M/N (dimensionless)")
    ax.set_ylim(0, 1.05)
    ax.set_title(textwrap.fill(sweeps[0].prediction_note, 95), fontsize=7)
    ax.legend(fontsize=8)
    return ax


def plot_rf_training(res, *, axes=None):
    """PyTorch random-features training against the closed form on the same ``W`` and data
    (docs/theory/validation.md §3).

    Left: train (C0) and test (C1) loss; lines = closed form (discrete GD, docs/theory/random_features.md §2),
    markers = Monte Carlo losses of the trained ``B`` (error bars 2 SE), open markers = exact ``m = infinity``
    losses of the same ``B``.  Right: score error, closed form vs Monte Carlo.  ``tau`` in the paper's unit
    ``k eta / d^2``.
    """
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(12, 4.4))
    a0, a1 = axes
    m, opt = res.model, res.config.optimizer
    for key, col, lab in (("train", "C0", "train"), ("test", "C1", "test")):
        a0.plot(res.tau, getattr(res, f"closed_{key}"), "-", color=col, lw=1.6, label=f"closed form: {lab}")
        a0.errorbar(res.tau, getattr(res, f"{key}_mc"), yerr=2 * getattr(res, f"{key}_mc_se"), fmt="o", ms=3.5,
                    color=col, capsize=2, label=f"PyTorch {opt.upper()}: {lab} (Monte Carlo, $\\pm$2 SE)")
        a0.plot(res.tau, getattr(res, f"{key}_exact"), "o", mfc="none", ms=6, color=col, alpha=0.7,
                label=f"PyTorch: {lab}, exact loss of trained $B$")
    a0.axhline(res.diagnostics["bayes_floor"], color="0.5", ls=":", lw=1, label=r"Bayes floor $e^{-2t}$")
    a0.set_xscale("log")
    a0.set_xlabel(r"training time $\tau = k\eta/d^2$ (paper units)")
    a0.set_ylabel("DSM loss per dimension (dimensionless)")
    ag = res.agreement
    a0.set_title(f"RF model, d={m.d}, p={m.p}, n={m.n}, t={m.t:g}, {m.activation.name}: max rel. diff "
                 f"{100 * ag['max_rel_train']:.1f}% (train), {100 * ag['max_rel_test']:.1f}% (test)", fontsize=9)
    a0.legend(fontsize=7)
    a1.plot(res.tau, res.closed_score, "-", color="C2", lw=1.6, label="closed form (DSM identity)")
    a1.errorbar(res.tau, res.score_mc, yerr=2 * res.score_mc_se, fmt="o", ms=3.5, color="C2", capsize=2,
                label=r"PyTorch, Monte Carlo on $P_t$ ($\pm$2 SE)")
    a1.plot(res.tau, res.score_exact, "o", mfc="none", ms=6, color="C2", alpha=0.7,
            label="PyTorch: exact score error of trained $B$ (gap to the line = SGD noise)")
    a1.set_xscale("log")
    a1.set_yscale("log")
    a1.set_xlabel(r"training time $\tau = k\eta/d^2$ (paper units)")
    a1.set_ylabel(r"score error $\mathcal{E}_{\rm score}$ per dimension")
    a1.legend(fontsize=8, loc="upper left")
    return axes


def plot_timescale_study(study, *, axes=None):
    """The ``n`` ladder of small DDPMs (docs/theory/validation.md §4; arXiv:2505.17638 Fig. 2 analogue), six panels:

    (a) memorization fraction vs training steps (markers with 95% Clopper-Pearson CIs; dotted: ``fthr``; dashed:
    ``tau_mem_onset``); (b) ``f_mem / f_mem(max)`` vs ``tau / n`` (collapse); (c) sample-quality proxy (KL
    estimate, log) vs ``tau`` with ``tau_gen_quality_min`` marked; (d) score error at the fixed diffusion step vs
    ``tau``; (e) ``tau_mem_onset`` and the ``tau_gen_*`` read-offs vs ``n`` with the fitted line
    ``tau_mem_onset = a n``; (f) training loss vs ``tau``.
    """
    if axes is None:
        _, axes = plt.subplots(2, 3, figsize=(16, 9))
    ax = np.asarray(axes).ravel()
    cmap = plt.get_cmap("viridis")
    ns = list(study.ns)
    for i, (n, r) in enumerate(zip(ns, study.runs)):
        col = cmap(i / max(1, len(ns) - 1) * 0.9)
        s = np.asarray(r["steps"], dtype=float)
        f = np.asarray(r["fraction"])
        err = np.vstack([f - np.asarray(r["ci_low"]), np.asarray(r["ci_high"]) - f])
        ax[0].errorbar(s, f, yerr=err, fmt="o-", ms=3, lw=0.8, capsize=1.5, color=col, label=f"n = {n}")
        fm = f.max()
        if fm > 0:
            ax[1].errorbar(s / n, f / fm, yerr=err / fm, fmt="o-", ms=3, lw=0.8, capsize=1.5, color=col, label=f"n = {n}")
        ax[2].plot(s, r["quality"], "o-", ms=3, lw=0.8, color=col, label=f"n = {n}")
        ax[2].axvline(study.tau_gen_quality_min[i], color=col, ls=":", lw=1)
        ax[3].plot(s, r["score_error"], "o-", ms=3, lw=0.8, color=col, label=f"n = {n}")
        ax[5].plot(s, r["train_loss"], "o-", ms=2.5, lw=0.6, color=col, label=f"n = {n}")
        if np.isfinite(study.tau_mem_onset[i]):
            ax[0].axvline(study.tau_mem_onset[i], color=col, ls="--", lw=0.8)
    ax[0].axhline(study.fthr, color="0.4", ls=":", lw=1, label=f"threshold {study.fthr:g}")
    ax[0].plot([], [], color="0.3", ls="--", lw=0.8, label="tau_mem_onset (dashed, one per n)")
    ax[2].plot([], [], color="0.3", ls=":", lw=1, label="tau_gen_quality_min (dotted, one per n)")
    floor = study.runs[0]["diagnostics"].get("quality_floor")
    if floor is not None:
        ax[2].axhline(floor, color="0.4", ls=":", lw=1, label="proxy on exact $P_0$ samples")
    for a in (ax[0], ax[2], ax[3], ax[5]):
        a.set_xscale("log")
        a.set_xlabel(r"training time $\tau$ (optimizer updates)")
    ax[1].set_xscale("log")
    ax[1].set_xlabel(r"$\tau / n$ (updates per training point)")
    ax[0].set_ylabel(r"memorization fraction $f_{\rm mem}$ (1/3 rule)")
    ax[1].set_ylabel(r"$f_{\rm mem}(\tau) / f_{\rm mem}(\tau_{\max})$")
    ax[2].set_yscale("log")
    ax[2].set_ylabel(r"quality proxy: $\widehat{KL}(P_\theta \| P_0)$ (nats)")
    ax[3].set_yscale("log")
    t_sc = study.runs[0]["diagnostics"].get("score_t", float("nan"))
    ax[3].set_ylabel(f"score error per dim at t = {t_sc:.3g} (OU time)")
    ax[5].set_yscale("log")
    ax[5].set_ylabel("DDPM training loss (per dim)")
    n_arr = np.asarray(ns, dtype=float)
    ok = np.isfinite(study.tau_mem_onset)
    ax[4].plot(n_arr[ok], study.tau_mem_onset[ok], "o", ms=7, color="C3", label=f"tau_mem_onset (f >= {study.fthr:g})")
    for key, mk in (("0.01", "v"), ("0.1", "^")):
        tm = study.sensitivity.get(key, {}).get("tau_mem_onset")
        if tm is not None and float(key) != study.fthr:
            v = np.array([np.nan if x is None else x for x in tm], dtype=float)
            ax[4].plot(n_arr, v, mk, ms=5, mfc="none", color="C3", alpha=0.7, label=f"tau_mem_onset at f >= {key}")
    ax[4].plot(n_arr, study.tau_gen_quality_min, "s", ms=6, color="C0", label="tau_gen_quality_min")
    ax[4].plot(n_arr, study.tau_gen_score_min, "D", ms=5, mfc="none", color="C0", label="tau_gen_score_min")
    ax[4].plot(n_arr, study.tau_gen_plateau, "P", ms=7, color="C9",
               label=rf"tau_gen_plateau ($\leq$1.5 x min quality; spread {study.tau_gen_plateau_spread:.2f})")
    fit = study.fit
    if fit.get("a") is not None:
        xx = np.geomspace(n_arr.min() / 1.5, n_arr.max() * 1.5, 50)
        ax[4].plot(xx, fit["a"] * xx, "-", color="C3", lw=1.2,
                   label=rf"fit tau_mem_onset $= {fit['a']:.3g}\,n$ ($R^2$ = "
                         + ("-" if fit["r2"] is None else f"{fit['r2']:.3f}") + "; "
                         rf"$\gamma$ = {fit['gamma']:.2f})")
    ax[4].set_xscale("log")
    ax[4].set_yscale("log")
    ax[4].set_xticks(n_arr)
    ax[4].xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax[4].set_xticklabels([str(int(v)) for v in n_arr])
    ax[4].set_xlabel("training-set size n (points)")
    ax[4].set_ylabel(r"time (optimizer updates)")
    ax[4].set_title(f"tau_gen_quality_min spread max/min = {study.tau_gen_quality_spread:.2f}", fontsize=9)
    for a in ax:
        if a.get_legend_handles_labels()[0]:
            a.legend(fontsize=7, loc="upper left" if a is ax[4] else "best")
    ax[0].figure.tight_layout()
    return axes
