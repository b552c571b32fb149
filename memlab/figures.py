"""Figure builders: compute through the public API, draw with :mod:`memlab.plot`, save PNG and PDF.

Each function returns a frozen dataclass holding the figure, the results it drew and the written paths,
so a notebook gets the same figure and numbers as ``memlab plot ...``, ``memlab spectrum``, ``memlab
validate ...`` and ``memlab demo`` (which call these functions).  ``out=None`` draws without saving;
otherwise ``out/<stem>.png`` (150 dpi) and ``out/<stem>.pdf`` are written.  Figures are made with
``matplotlib.pyplot``; call ``.close()`` on the result when done (the CLI does).

Arguments are validated by the library functions they are passed to (``ValueError``/``TypeError`` naming
the parameter); ``out`` is checked (:func:`memlab.io.output_dir`: a folder that exists or can be created, and
is writable) before any work, so an unwritable folder fails at once, not after the computation.  The
PyTorch-backed builders (:func:`capacity_sweep_figure`, :func:`sweep_grid_figure`, :func:`rf_training_figure`,
:func:`timescale_study_figure`) import :mod:`memlab.validation` only when called.

Examples
--------
>>> from memlab import RFModel
>>> from memlab.figures import rf_phase_figure
>>> fig = rf_phase_figure(RFModel(8, 2, 0.1, d=8), [100.0], psi_p_grid=[4, 8], psi_n_grid=[1, 2])
>>> fig.phase.gen.shape, fig.paths
((1, 2, 2), ())
>>> fig.close()
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import plot
from .numerics.gmm import generalizing_denoiser, memorizing_denoiser, pmem_denoiser, sample_gmm
from .numerics.losses import ExcessLosses, gmm_excess_losses
from .numerics.memorization import memorization_fraction
from .numerics.rf_curves import read_off_timescales
from .numerics.rf_learning import rf_learning_curves, rf_phase_diagram
from .numerics.rf_matrices import gep_eigenvalues, gep_matrices
from .numerics.rf_spectrum import SpectrumResult, count_per_bulk, rf_spectrum
from .numerics.readoffs import fit_power_law
from .numerics.sampler import ddim_sample, sample_optimal
from .numerics.timescales import predict_timescales
from .theory import checks
from .theory.grid import paper_grid
from .theory.rf_model import RFModel
from .io import output_dir, to_json, to_jsonable  # noqa: F401  (re-exported: figures.to_jsonable)

__all__ = ["FigureResult", "GMMLossesFigure", "SpectrumFigure", "RFCurvesFigure", "PhaseFigure", "MemorizationFigure",
           "CapacitySweepFigure", "SweepGridFigure", "RFTrainingFigure", "TimescaleStudyFigure",
           "gmm_losses_figure", "rf_spectrum_figure", "rf_curves_figure", "rf_phase_figure", "memorization_figure",
           "gmm_memorization_figure", "capacity_sweep_figure", "sweep_grid_figure", "rf_training_figure",
           "timescale_study_figure", "DEFAULT_RF_TAU", "to_jsonable", "to_json", "RFTheoryFigure", "rf_theory_figure",
           "ScoreExponentFigure", "score_exponent_figure", "score_minimum"]

#: Training times of the closed-form curves of :func:`rf_curves_figure`: 400 log-spaced in [0.1, 1e7], then inf.
DEFAULT_RF_TAU = np.concatenate([np.geomspace(1e-1, 1e7, 400), [np.inf]])


@dataclass(frozen=True)
class FigureResult:
    """Base of every figure result: the matplotlib ``figure`` and the written ``paths`` (empty if not saved)."""

    figure: object
    paths: tuple

    def close(self):
        """Release the figure from pyplot (it can still be saved with ``figure.savefig``)."""
        plot.plt.close(self.figure)


def _check_out(out) -> None:
    """Fail before any work when ``out`` cannot become the output folder."""
    if out is not None:
        output_dir(out)


def _finish(fig, out, stem) -> tuple:
    return tuple(plot.save_figure(fig, out, stem)) if out is not None else ()


# ---------------------------------------------------------------------------------------------- GMM losses
@dataclass(frozen=True)
class GMMLossesFigure(FigureResult):
    """:func:`gmm_losses_figure`: ``losses`` (:class:`~memlab.numerics.losses.ExcessLosses`) and its wall time."""

    losses: ExcessLosses
    wall_s: float

    def summary(self, Ms=None) -> str:
        """Text block: the generalizing excess and the pmem excess at ``Ms`` (default: the M nearest 0.2 N,
        0.5 N and 0.8 N) against Thms 3.1 and 3.2 (C = 1..2)."""
        r = self.losses
        if Ms is None:
            Ms = sorted({int(r.M[np.argmin(np.abs(r.M - f * r.N))]) for f in (0.2, 0.5, 0.8)})
        lines = [f"Monte Carlo excess losses, N={r.N}, d={r.d}, K={r.K}, t={r.t:.5f}, {r.n_noise} draws "
                 f"({self.wall_s:.1f} s):",
                 f"  generalizing: {r.generalizing:.3f} +- {r.generalizing_se:.3f}  "
                 f"(Thm 3.1: {r.theory_generalizing:.3f})"]
        lo, hi = r.theory_pmem(1.0), r.theory_pmem(2.0)
        for j, (m, v, s) in enumerate(zip(r.M, r.pmem, r.pmem_se)):
            if m in Ms:
                lines.append(f"  pmem M={m:3d}:  {v:.3f} +- {s:.3f}  (Thm 3.2, C=1..2: {lo[j]:.1f} .. {hi[j]:.1f})")
        return "\n".join(lines)


def gmm_losses_figure(N: int = 200, d: int = 50, K: int = 12, t: float = float(paper_grid()[16]), *, n_m: int = 20,
                      n_noise: int = 100, sigma2: float = 1.0, seed: int = 0, C_values=(1.0, 2.0),
                      out=None) -> GMMLossesFigure:
    """Monte Carlo excess losses of the GMM laboratory against ``M/N`` with the Thm 3.1/3.2 lines
    (arXiv:2508.17689v1 Fig. 1 analogue; docs/theory/capacity_crossover.md §3-§4).

    ``M`` runs over ``k max(N // n_m, 1) <= N`` and ``N``; the losses are
    :func:`memlab.gmm_excess_losses` ``(N, d, K, t, Ms, sigma2=sigma2, n_noise=n_noise, seed=seed)``.
    The default ``t`` is the grid time ``t_16 = 0.36028``.  Saved as ``gmm_losses``.
    """
    _check_out(out)
    step = max(checks.positive_int("N", N) // checks.positive_int("n_m", n_m), 1)
    Ms = sorted(set(range(step, N + 1, step)) | {N})
    t0 = time.perf_counter()
    res = gmm_excess_losses(N, d, K, t, Ms, sigma2=sigma2, n_noise=n_noise, seed=seed)
    wall = time.perf_counter() - t0
    fig, ax = plot.plt.subplots(figsize=(6.4, 4.6))
    plot.plot_gmm_losses(res, C_values=C_values, ax=ax)
    return GMMLossesFigure(figure=fig, paths=_finish(fig, out, "gmm_losses"), losses=res, wall_s=wall)


# ---------------------------------------------------------------------------------------------- RF spectrum
@dataclass(frozen=True)
class SpectrumFigure(FigureResult):
    """:func:`rf_spectrum_figure`: the Theorem 3.1 ``spectrum``, the finite-size ``eigenvalues`` of ``U_GEP``
    and their counts in the delta peak (``delta_count``) and per bulk (``bulk_counts``)."""

    spectrum: SpectrumResult
    eigenvalues: np.ndarray
    delta_count: int
    bulk_counts: tuple

    def summary(self) -> str:
        """Delta peak and bulks (edges, masses, ``p`` times mass) against the finite-size counts."""
        s, m = self.spectrum, self.spectrum.model
        p = self.eigenvalues.size
        lines = [f"spectrum of U (Thm 3.1), psi_p={m.psi_p:g}, psi_n={m.psi_n:g}, t={m.t:g}: delta peak at "
                 f"s_t^2={s.delta_location:.4g}, weight {s.delta_weight:.5f} "
                 f"(theory {s.diagnostics['theory_masses']['delta']:.5f})",
                 f"  delta peak: p*weight = {p * s.delta_weight:.1f}; finite-size count {self.delta_count}"]
        for (a, b, mass), cnt in zip(s.bulks, self.bulk_counts):
            lines.append(f"  bulk [{a:.5g}, {b:.5g}]  mass {mass:.5f}  (p*mass = {p * mass:.1f}; "
                         f"finite-size count {cnt})")
        return "\n".join(lines)


def rf_spectrum_figure(model: RFModel, *, out=None) -> SpectrumFigure:
    """Theorem 3.1 density of ``U`` over the eigenvalue histogram of one seeded Gaussian-equivalent ``U`` at
    ``model.d`` (arXiv:2505.17638 Fig. 4 analogue; docs/theory/random_features.md §4).

    Computes :func:`memlab.rf_spectrum` ``(model)`` and :func:`~memlab.numerics.rf_matrices.gep_eigenvalues` of
    :func:`memlab.gep_matrices` ``(model, dense=False)``.  Saved as ``rf_spectrum_psip{psi_p}_psin{psi_n}_t{t}``.
    """
    if not isinstance(model, RFModel):
        raise TypeError(f"model must be an RFModel (got {type(model).__name__})")
    _check_out(out)
    model.sizes()                                   # a d too small for the ratios fails before the solver
    spec = rf_spectrum(model)
    eigs = gep_eigenvalues(gep_matrices(model, dense=False))
    n_delta, counts = count_per_bulk(spec, eigs)
    fig, ax = plot.plt.subplots(figsize=(7.0, 4.4))
    plot.plot_rf_spectrum(spec, eigs, d=model.d, ax=ax)
    stem = f"rf_spectrum_psip{model.psi_p:g}_psin{model.psi_n:g}_t{model.t:g}"
    return SpectrumFigure(figure=fig, paths=_finish(fig, out, stem), spectrum=spec, eigenvalues=eigs,
                          delta_count=n_delta, bulk_counts=tuple(counts))


# ---------------------------------------------------------------------------------------------- RF curves
@dataclass(frozen=True)
class RFCurvesFigure(FigureResult):
    """:func:`rf_curves_figure`: closed-form ``curves`` (one per ``psi_n``), their ``read_offs``
    (:class:`~memlab.numerics.rf_curves.CurveReadOff`), the formula ``predictions``
    (:class:`~memlab.numerics.timescales.TimescalesResult`, ``numeric=False``), the ``gd`` simulations and
    the closed form at the GD dimension (``gd_theory``)."""

    curves: tuple
    read_offs: tuple
    predictions: tuple
    gd: tuple
    gd_theory: tuple

    def table(self) -> str:
        """One row per ``psi_n``: read-offs and formulas (estimator names of docs/theory/random_features.md §5)."""
        w = 17
        lines = [f"{'psi_n':>6} {'tau_gen_score_min':>{w}} {'tau_gen_formula':>{w}} {'tau_mem_half_rise':>{w}} "
                 f"{'tau_mem_formula':>{w}} {'L_gen(inf)':>10} {'min E_score':>11}"]
        for c, r, pr in zip(self.curves, self.read_offs, self.predictions):
            rm = f"{r.tau_mem_half_rise:{w}.4g}" if r.tau_mem_half_rise is not None else f"{'-':>{w}}"
            lines.append(f"{c.model.psi_n:6g} {r.tau_gen_score_min:{w}.4g} {pr.tau_gen_formula:{w}.4g} {rm} "
                         f"{pr.tau_mem_formula:{w}.4g} {r.gen_final:10.4f} {r.score_min:11.4f}")
        lines.append("read-offs (docs/theory/random_features.md §6): tau_gen_score_min = argmin of the score error, "
                     "tau_mem_half_rise = first tau with L_gen >= 1/2 L_gen(inf); formulas: arXiv:2505.17638 MT §3 "
                     "(units tau = k eta/d^2)")
        for g in self.gd:
            m, dg = g.model, g.diagnostics
            lines.append(f"GD (real {m.activation.name} features, d={m.d}, psi_n={m.psi_n:g}, m=inf, "
                         f"delta_tau={dg['delta_tau']:.3g}): {dg['gd']['n_steps']} steps in {dg['gd']['wall_s']:.1f} s")
        return "\n".join(lines)


def rf_curves_figure(model: RFModel, psi_ns=None, *, tau=None, gd_d: int = 10, gd_psi_ns=None,
                     gd_tau_max: float = 3e4, out=None) -> RFCurvesFigure:
    """Random-features learning curves against ``tau`` and ``tau / tau_mem_formula`` (arXiv:2505.17638 Fig. 5
    analogue; docs/theory/random_features.md §2, §5-§6).

    Parameters
    ----------
    model : RFModel
        ``psi_p``, ``t``, ``d`` (of the closed-form curves), activation, ``sigma_x``, ``center``, ``seed``.
    psi_ns : sequence of float, optional
        The ``psi_n`` of the curves (``model.replace(psi_n=...)``); default ``[model.psi_n]``.
    tau : array_like, optional
        Times of the closed-form (``method="gep"``) curves; default :data:`DEFAULT_RF_TAU`.
    gd_d : int, default 10
        Dimension of the GD simulations on the real features (``method="gd"``, 22 log-spaced times in
        ``[1, gd_tau_max]``) and of their ``method="features"`` closed form; 0: no simulation.
    gd_psi_ns : sequence of float, optional
        The ``psi_n`` simulated by GD; default the first two of ``psi_ns``.
    gd_tau_max : float, default 3e4
        Last GD time (> 1; units ``k eta / d^2``).

    Saved as ``rf_curves_psip{psi_p}_t{t}``.
    """
    if not isinstance(model, RFModel):
        raise TypeError(f"model must be an RFModel (got {type(model).__name__})")
    _check_out(out)
    models = [model.replace(psi_n=x) for x in (psi_ns if psi_ns is not None else [model.psi_n])]
    gd_d = checks.positive_int("gd_d", gd_d, minimum=0)
    gd_models = []
    if gd_d:
        if checks.positive_float("gd_tau_max", gd_tau_max) <= 1.0:
            raise ValueError(f"gd_tau_max must be > 1 (GD is logged from tau = 1; got {gd_tau_max:g})")
        gd_models = [model.replace(psi_n=x, d=gd_d) for x in (gd_psi_ns if gd_psi_ns is not None
                                                              else [m.psi_n for m in models[:2]])]
    for m in models + gd_models:                    # a d too small for the ratios fails before any work
        m.sizes()
    tau = DEFAULT_RF_TAU if tau is None else tau
    curves = [rf_learning_curves(m, tau, method="gep") for m in models]
    gd = [rf_learning_curves(m, np.geomspace(1.0, gd_tau_max, 22), method="gd") for m in gd_models]
    gd_theory = [rf_learning_curves(m, np.geomspace(1e-1, gd_tau_max, 200), method="features") for m in gd_models]
    reads = [read_off_timescales(c) for c in curves]
    preds = [predict_timescales(m, numeric=False) for m in models]
    fig, axes = plot.plt.subplots(2, 2, figsize=(12.0, 8.6))
    plot.plot_rf_curves(curves, gd, gd_theory=gd_theory, read_offs=reads, axes=axes)
    fig.tight_layout()
    return RFCurvesFigure(figure=fig, paths=_finish(fig, out, f"rf_curves_psip{model.psi_p:g}_t{model.t:g}"),
                          curves=tuple(curves), read_offs=tuple(reads), predictions=tuple(preds), gd=tuple(gd),
                          gd_theory=tuple(gd_theory))


# ---------------------------------------------------------------------------------------------- RF theory
@dataclass(frozen=True)
class RFTheoryFigure(FigureResult):
    """:func:`rf_theory_figure`: asymptotic ``curves`` (``method="asymptotic"``, one per ``psi_n``), their
    ``read_offs``, the finite-``d`` closed forms ``finite`` (``method="gep"``, same times) with ``finite_read_offs``,
    and the formula ``predictions`` (:class:`~memlab.numerics.timescales.TimescalesResult`, ``numeric=False``)."""

    curves: tuple
    read_offs: tuple
    finite: tuple
    finite_read_offs: tuple
    predictions: tuple

    def table(self) -> str:
        """Read-offs of the theory curves and of the finite-``d`` closed forms next to the formulas."""
        w = 12
        d = self.finite[0].model.d if self.finite else None
        lines = [f"{'psi_n':>6} | {'tau_gen_score_min':^29} | {'tau_mem_half_rise':^29} | {'L_gen(inf)':>10} "
                 f"{'min E_score':>11}",
                 f"{'':>6} | {'theory':>8} {f'd={d}':>8} {'formula':>{w - 1}} | {'theory':>8} {f'd={d}':>8} "
                 f"{'formula':>{w - 1}} | {'theory':>10} {'theory':>11}"]
        for k, (c, r, pr) in enumerate(zip(self.curves, self.read_offs, self.predictions)):
            fr = self.finite_read_offs[k] if self.finite_read_offs else None

            def v(x):
                return f"{x:8.4g}" if x is not None else f"{'-':>8}"
            lines.append(f"{c.model.psi_n:6g} | {v(r.tau_gen_score_min)} {v(fr.tau_gen_score_min if fr else None)} "
                         f"{pr.tau_gen_formula:{w - 1}.4g} | {v(r.tau_mem_half_rise)} "
                         f"{v(fr.tau_mem_half_rise if fr else None)} {pr.tau_mem_formula:{w - 1}.4g} | "
                         f"{r.gen_final:10.4f} {r.score_min:11.4f}")
        lines.append("theory: d -> infinity curves (docs/theory/random_features.md §9); read-offs §6; formulas "
                     "arXiv:2505.17638 MT §3 (units tau = k eta/d^2)")
        return "\n".join(lines)


def rf_theory_figure(model: RFModel, psi_ns=None, *, tau=None, marker_d: int = 100, out=None) -> RFTheoryFigure:
    """Learning curves from the ``d -> infinity`` theory alone, with finite-``d`` closed-form markers
    (arXiv:2505.17638 Fig. 5 analogue; docs/theory/random_features.md §9, §5-§6).

    Parameters
    ----------
    model : RFModel
        ``psi_p``, ``t``, activation, ``sigma_x``, ``center`` and ``seed`` (of the markers); isotropic data.
    psi_ns : sequence of float, optional
        The ``psi_n`` of the curves; default ``[model.psi_n]``.
    tau : array_like, optional
        Times; default :data:`DEFAULT_RF_TAU`.
    marker_d : int, default 100
        Dimension of the ``method="gep"`` closed forms drawn as markers (0: none).

    Saved as ``rf_theory_psip{psi_p}_t{t}``.
    """
    if not isinstance(model, RFModel):
        raise TypeError(f"model must be an RFModel (got {type(model).__name__})")
    _check_out(out)
    marker_d = checks.positive_int("marker_d", marker_d, minimum=0)
    models = [model.replace(psi_n=x) for x in (psi_ns if psi_ns is not None else [model.psi_n])]
    finite_models = [m.replace(d=marker_d) for m in models] if marker_d else []
    for m in finite_models:
        m.sizes()
    tau = DEFAULT_RF_TAU if tau is None else tau
    curves = [rf_learning_curves(m, tau, method="asymptotic") for m in models]
    reads = [read_off_timescales(c) for c in curves]
    finite = [rf_learning_curves(m, tau, method="gep") for m in finite_models]
    freads = [read_off_timescales(c) for c in finite]
    preds = [predict_timescales(m, numeric=False) for m in models]
    fig, axes = plot.plt.subplots(2, 2, figsize=(12.0, 8.6))
    plot.plot_rf_theory(curves, finite, read_offs=reads, axes=axes)
    fig.tight_layout()
    return RFTheoryFigure(figure=fig, paths=_finish(fig, out, f"rf_theory_psip{model.psi_p:g}_t{model.t:g}"),
                          curves=tuple(curves), read_offs=tuple(reads), finite=tuple(finite),
                          finite_read_offs=tuple(freads), predictions=tuple(preds))


def score_minimum(model: RFModel, *, method="asymptotic", tau=None) -> tuple:
    """``(min_tau E_score, argmin)`` of one model: the curve on ``tau`` (default 300 log-spaced times in
    ``[1e-1, 1e5]``), then 201 times between the neighbours of the grid minimum."""
    tau = np.geomspace(1e-1, 1e5, 300) if tau is None else np.asarray(tau, float)
    c = rf_learning_curves(model, tau, method=method)
    k = int(np.argmin(c.score_error))
    lo, hi = tau[max(k - 1, 0)], tau[min(k + 1, tau.size - 1)]
    fine = np.geomspace(lo, hi, 201)
    cf = rf_learning_curves(model, fine, method=method)
    j = int(np.argmin(cf.score_error))
    return float(cf.score_error[j]), float(fine[j])


@dataclass(frozen=True)
class ScoreExponentFigure(FigureResult):
    """:func:`score_exponent_figure`: the minimum score error over training time against ``psi_n`` from the theory
    (``score_min``, at ``tau_min``) and from finite-``d`` closed forms (``score_min_finite``: seeds x psi_n), with
    the power-law fits (:func:`memlab.numerics.readoffs.fit_power_law`: ``gamma`` is the exponent)."""

    model: RFModel
    psi_n: np.ndarray
    score_min: np.ndarray
    tau_min: np.ndarray
    fit: dict
    psi_n_finite: np.ndarray
    score_min_finite: np.ndarray | None
    fit_finite: dict | None
    finite_d: int

    def summary(self) -> str:
        m = self.model
        loc = np.diff(np.log(self.score_min)) / np.diff(np.log(self.psi_n))
        line = (f"min_tau E_score over psi_n = {self.psi_n[0]:g}..{self.psi_n[-1]:g} at psi_p = {m.psi_p:g}, t = {m.t:g}: "
                f"theory exponent {self.fit['gamma']:.4f} (R^2_log {self.fit['r2_log']:.5f}; local slope "
                f"{loc[0]:.3f} at the low end, {loc[-1]:.3f} at the high end)")
        if self.fit_finite is not None:
            line += (f"; closed form d = {self.finite_d}, {self.score_min_finite.shape[0]} seeds: "
                     f"{self.fit_finite['gamma']:.4f} (R^2_log {self.fit_finite['r2_log']:.5f})")
        return line


def score_exponent_figure(model: RFModel, psi_ns=None, *, finite_d: int = 100, seeds: int = 3,
                          finite_psi_ns=None, out=None) -> ScoreExponentFigure:
    """Minimum score error over training time against ``psi_n`` (log-log) and its decay exponent, from the
    ``d -> infinity`` theory (docs/theory/random_features.md §9) and from finite-``d`` closed forms.

    Parameters
    ----------
    model : RFModel
        ``psi_p``, ``t``, activation (its ``psi_n`` is replaced by the grid).
    psi_ns : sequence of float, optional
        Theory grid; default 13 values from 4 to 16 (log-spaced).
    finite_d : int, default 100
        Dimension of the closed forms (0: none); ``seeds`` seeds each, at ``finite_psi_ns`` (default 4, 6, 8, 12, 16).

    Saved as ``score_exponent_psip{psi_p}_t{t}``.
    """
    if not isinstance(model, RFModel):
        raise TypeError(f"model must be an RFModel (got {type(model).__name__})")
    _check_out(out)
    finite_d = checks.positive_int("finite_d", finite_d, minimum=0)
    seeds = checks.positive_int("seeds", seeds)
    pn = np.geomspace(4, 16, 13) if psi_ns is None else np.asarray(psi_ns, float)
    mins = np.array([score_minimum(model.replace(psi_n=float(x))) for x in pn])
    fit = fit_power_law(pn, mins[:, 0])
    pnf = np.array([4.0, 6.0, 8.0, 12.0, 16.0]) if finite_psi_ns is None else np.asarray(finite_psi_ns, float)
    fin, fitf = None, None
    if finite_d:
        fin = np.array([[score_minimum(model.replace(psi_n=float(x), d=finite_d, seed=s), method="gep")[0]
                         for x in pnf] for s in range(seeds)])
        fitf = fit_power_law(pnf, fin.mean(axis=0))
    res = dict(model=model, psi_n=pn, score_min=mins[:, 0], tau_min=mins[:, 1], fit=fit, psi_n_finite=pnf,
               score_min_finite=fin, fit_finite=fitf, finite_d=finite_d)
    fig, ax = plot.plt.subplots(figsize=(6.4, 4.6))
    tmp = ScoreExponentFigure(figure=fig, paths=(), **res)
    plot.plot_score_exponent(tmp, ax=ax)
    fig.tight_layout()
    return ScoreExponentFigure(figure=fig, paths=_finish(fig, out, f"score_exponent_psip{model.psi_p:g}_t{model.t:g}"),
                               **res)


# ---------------------------------------------------------------------------------------------- RF phase
@dataclass(frozen=True)
class PhaseFigure(FigureResult):
    """:func:`rf_phase_figure`: the :class:`~memlab.numerics.rf_learning.PhaseDiagram` drawn."""

    phase: object

    def summary(self) -> str:
        """Grid size, dimension, wall time and the largest ``L_gen``."""
        pdg = self.phase
        return (f"phase diagram of L_gen: {pdg.psi_p.size} x {pdg.psi_n.size} GEP closed forms at d = {pdg.model.d} in "
                f"{pdg.diagnostics['wall_s']:.1f} s; max L_gen {pdg.gen.max():.4f}")


def rf_phase_figure(model: RFModel, tau, *, psi_p_grid, psi_n_grid, out=None) -> PhaseFigure:
    """Heat maps of ``L_gen`` over ``(psi_n, psi_p)`` at the training times ``tau`` (arXiv:2505.17638 Fig. 5C
    analogue): :func:`memlab.rf_phase_diagram` ``(model, tau, psi_p_grid=..., psi_n_grid=...)``, one panel per
    ``tau``.  Saved as ``rf_phase_t{t}``."""
    _check_out(out)
    pdg = rf_phase_diagram(model, tau, psi_p_grid=psi_p_grid, psi_n_grid=psi_n_grid)
    fig, axes = plot.plt.subplots(1, len(pdg.tau), figsize=(5.4 * len(pdg.tau), 4.4), squeeze=False)
    plot.plot_rf_phase(pdg, axes=axes.ravel())
    fig.tight_layout()
    return PhaseFigure(figure=fig, paths=_finish(fig, out, f"rf_phase_t{model.t:g}"), phase=pdg)


# ---------------------------------------------------------------------------------------------- memorization
@dataclass(frozen=True)
class MemorizationFigure(FigureResult):
    """:func:`memorization_figure`: ``results``, a dict label ->
    :class:`~memlab.numerics.memorization.MemorizationResult`."""

    results: dict

    def table(self) -> str:
        """One line per sample set: fraction, confidence interval (``ci_low``, ``ci_high``), median ``d1/d2``."""
        lines = []
        for lab, r in self.results.items():
            ci = "" if r.ci_low is None else f"  [{r.ci_low:.3f}, {r.ci_high:.3f}]"
            lines.append(f"  {lab:>14}: {r.fraction:.3f}{ci}  median d1/d2 = {np.nanmedian(r.ratio):.2e}")
        return "\n".join(lines)

    def summary(self) -> str:
        """Per set: fraction with its confidence interval (and how it was computed), memorized count, threshold
        and sizes."""
        lines = []
        for lab, r in self.results.items():
            how = getattr(r, "ci_method", "bootstrap").replace("clopper-pearson", "Clopper-Pearson")
            ci = "" if r.ci_low is None else f", {100 * r.level:g}% {how} CI [{r.ci_low:.4f}, {r.ci_high:.4f}]"
            lines.append(f"{lab}: memorization fraction {r.fraction:.4f}{ci}: {r.n_memorized} of {r.n_samples} "
                         f"samples have d1 < {r.k:.4g} d2 against N = {r.n_train} training points")
        return "\n".join(lines)


def memorization_figure(samples, train, *, k: float = 1.0 / 3.0, n_boot: int = 1000, seed: int = 0,
                        dedupe: bool = False, memory_limit: int | None = None, out=None,
                        stem: str = "memorization") -> MemorizationFigure:
    """Memorization fractions (1/3 rule with a confidence interval) and the ``d1/d2`` histograms of one or
    several sample sets against one training set (docs/theory/memorization_metrics.md §1-§3).

    ``samples`` is an ``(S, D)`` array or a mapping label -> array (e.g. from :func:`memlab.load_points`);
    each goes through :func:`memlab.memorization_fraction` ``(x, train, k=k, n_boot=n_boot, seed=seed,
    dedupe=dedupe, memory_limit=memory_limit)`` (``memory_limit=None``: its default).  Saved as ``stem``.
    """
    _check_out(out)
    sets = dict(samples) if isinstance(samples, dict) else {"samples": samples}
    kw = {} if memory_limit is None else {"memory_limit": memory_limit}
    res = {lab: memorization_fraction(x, train, k=k, n_boot=n_boot, seed=seed, dedupe=dedupe, **kw)
           for lab, x in sets.items()}
    fig, axes = plot.plt.subplots(1, 2, figsize=(11, 4.0), gridspec_kw={"width_ratios": [1.6, 1]})
    plot.plot_memorization(res, axes=axes)
    return MemorizationFigure(figure=fig, paths=_finish(fig, out, stem), results=res)


def gmm_memorization_figure(N: int = 200, d: int = 50, K: int = 12, *, M: int = 100, n_samples: int = 200,
                            seed: int = 0, sample_seed: int = 1, out=None) -> MemorizationFigure:
    """Memorization fractions of DDIM samples from the laboratory's closed-form denoisers
    (docs/theory/capacity_crossover.md §2, §6; docs/theory/memorization_metrics.md §5).

    Five sets of ``n_samples`` against the training set of ``sample_gmm(N, d, K, seed=seed)``: DDIM samples
    (seed ``sample_seed``) of the memorizing, the partially memorizing (``M`` points) and the generalizing
    denoiser, of the optimal empirical denoiser under the EDM schedule, and fresh draws of the mixture.
    Saved as ``memorization_gmm``.
    """
    _check_out(out)
    data = sample_gmm(N, d, K, seed=seed)
    sets = {f"mem (N={N})": ddim_sample(memorizing_denoiser(data.train), n_samples, seed=sample_seed).samples,
            f"pmem (M={M})": ddim_sample(pmem_denoiser(data.train, M), n_samples, seed=sample_seed).samples,
            "generalizing": ddim_sample(generalizing_denoiser(data), n_samples, seed=sample_seed).samples,
            "optimal, EDM": sample_optimal(data.train, n_samples, schedule="edm", seed=sample_seed).samples,
            "fresh draws": sample_gmm(N, d, K, n_heldout=n_samples, seed=seed).heldout}
    return memorization_figure(sets, data.train, out=out, stem="memorization_gmm")


# ---------------------------------------------------------------------------------------------- validation (torch)
@dataclass(frozen=True)
class CapacitySweepFigure(FigureResult):
    """:func:`capacity_sweep_figure`: the :class:`~memlab.validation.gmm_sweep.CapacitySweep` drawn."""

    sweep: object

    def summary(self) -> str:
        """Measured transition against the prediction, with the protocol and the prediction note."""
        return _sweep_summary([self.sweep])


def _sweep_summary(sweeps) -> str:
    lines = []
    for s in sweeps:
        rp = "-" if s.ratio_pt is None else f"{s.ratio_pt:.3f}"
        lines.append(f"N={s.N} d={s.d} K={s.K}: measured M_pt = {s.m_pt} (M_pt/N = {rp}), band {s.start}..{s.end}; "
                     f"predicted M*/N = {s.mstar.ratio:.3f}" + (f"; flags: {'; '.join(s.flags)}" if s.flags else ""))
    lines.append(sweeps[0].prediction_note)
    return "\n".join(lines)


def capacity_sweep_figure(N: int, d: int, K: int, *, protocol="paper", out=None,
                          **sweep_options) -> CapacitySweepFigure:
    """Train GMM denoisers over ``M`` and draw the memorization transition against the predicted ``M*/N``
    (arXiv:2508.17689v1 Fig. 2 analogue; docs/theory/capacity_crossover.md §7, docs/theory/validation.md §2).

    Runs :func:`memlab.validation.gmm_sweep.sweep_capacity` ``(N, d, K, protocol=protocol, out=out,
    **sweep_options)`` (needs PyTorch; it logs the estimated time before training, resumes from ``out``).
    Saved as ``gmm_validation_N{N}_d{d}_K{K}`` next to the sweep's ``sweep.json`` and ``sweep.csv``.
    """
    from .validation.gmm_sweep import sweep_capacity

    _check_out(out)

    sw = sweep_capacity(N, d, K, protocol=protocol, out=out, **sweep_options)
    fig, axes = plot.plt.subplots(1, 3, figsize=(15, 4.4))
    plot.plot_capacity_sweep(sw, axes=axes)
    return CapacitySweepFigure(figure=fig, paths=_finish(fig, out, f"gmm_validation_N{sw.N}_d{sw.d}_K{sw.K}"), sweep=sw)


@dataclass(frozen=True)
class SweepGridFigure(FigureResult):
    """:func:`sweep_grid_figure`: the list of :class:`~memlab.validation.gmm_sweep.CapacitySweep` drawn."""

    sweeps: tuple

    def summary(self) -> str:
        """One line per configuration: measured ``M_pt/N`` against the predicted ``M*/N``."""
        return _sweep_summary(self.sweeps)


def sweep_grid_figure(Ns, ds, Ks, *, protocol="paper", out=None, **sweep_options) -> SweepGridFigure:
    """Measured ``M_pt/N`` per ``(N, d, K)`` configuration against the predicted ``M*/N``
    (docs/theory/capacity_crossover.md §5, §7): :func:`memlab.validation.gmm_sweep.sweep_grid`
    ``(Ns, ds, Ks, protocol=protocol, out=out, **sweep_options)``.  Saved as ``gmm_sweep_grid``."""
    from .validation.gmm_sweep import sweep_grid

    _check_out(out)

    sweeps = sweep_grid(Ns, ds, Ks, protocol=protocol, out=out, **sweep_options)
    fig, ax = plot.plt.subplots(figsize=(max(6, 0.3 * len(sweeps) + 3), 4.5))
    plot.plot_sweep_grid(sweeps, ax=ax)
    return SweepGridFigure(figure=fig, paths=_finish(fig, out, "gmm_sweep_grid"), sweeps=tuple(sweeps))


@dataclass(frozen=True)
class RFTrainingFigure(FigureResult):
    """:func:`rf_training_figure`: the :class:`~memlab.validation.rf_torch.RFTrainResult` drawn."""

    result: object

    def summary(self) -> str:
        """Largest relative differences between the trained model and the closed form."""
        r, m = self.result, self.result.model
        ag, dg = r.agreement, r.diagnostics
        return (f"PyTorch {r.config.optimizer} vs closed form (d={m.d}, p={m.p}, n={m.n}, t={m.t:g}, "
                f"{int(r.steps[-1])} steps, {dg['steps_per_s']:.0f} steps/s on {dg['device']}): max rel. diff train "
                f"{100 * ag['max_rel_train']:.2f}%, test {100 * ag['max_rel_test']:.2f}% (exact loss of trained B); "
                f"Monte Carlo {100 * ag['max_rel_train_mc']:.2f}%, {100 * ag['max_rel_test_mc']:.2f}%")


def rf_training_figure(model: RFModel, config, *, device=None, checkpoint=None, quiet: bool = False,
                       out=None) -> RFTrainingFigure:
    """A random-features model trained in PyTorch against the closed form on the same ``W`` and data
    (docs/theory/validation.md §3): :func:`memlab.validation.rf_torch.train_rf` ``(model, config, device=...,
    checkpoint=..., quiet=...)``.  Saved as ``rf_training_d{d}_p{p}_n{n}`` with the run as ``rf_training.json``."""
    from .validation.rf_torch import train_rf
    from .validation.runtime import write_json_atomic

    _check_out(out)
    res = train_rf(model, config, device=device, checkpoint=checkpoint, quiet=quiet)
    fig, axes = plot.plt.subplots(1, 2, figsize=(13, 4.6))
    plot.plot_rf_training(res, axes=axes)
    m = res.model
    paths = _finish(fig, out, f"rf_training_d{m.d}_p{m.p}_n{m.n}")
    if out is not None:
        write_json_atomic(Path(out) / "rf_training.json", res.to_dict())
        paths += (Path(out) / "rf_training.json",)
    return RFTrainingFigure(figure=fig, paths=paths, result=res)


@dataclass(frozen=True)
class TimescaleStudyFigure(FigureResult):
    """:func:`timescale_study_figure`: the :class:`~memlab.validation.timescales.TimescaleStudy` drawn."""

    study: object

    def table(self) -> str:
        """One row per ``n``: the read-offs of docs/theory/validation.md §4, then the fit of ``tau_mem_onset``."""
        st = self.study
        names = ("tau_gen_quality_min", "tau_gen_score_min", "tau_gen_plateau", "tau_mem_onset")
        lines = [f"{'n':>6} " + " ".join(f"{x:>19}" for x in names) + f" {'tau_mem_onset/n':>15}"]
        for i, n in enumerate(st.ns):
            vals = [float(getattr(st, x)[i]) for x in names]
            cells = [f"{v:19.4g}" if np.isfinite(v) else f"{'-':>19}" for v in vals]
            cells.append(f"{vals[3] / n:15.4g}" if np.isfinite(vals[3]) else f"{'-':>15}")
            lines.append(f"{int(n):6d} " + " ".join(cells))
        f = st.fit
        if f.get("a") is not None:
            r2, r2l = (("-" if f[k] is None else f"{f[k]:.4f}") for k in ("r2", "r2_log"))  # None: times all equal
            lines.append(f"fit tau_mem_onset = a n: a = {f['a']:.4g} updates per point, R^2 = {r2}; "
                         f"tau_mem_onset ~ n^{f['gamma']:.3f} (R^2 log = {r2l}); tau_gen_quality_min "
                         f"spread max/min = {st.tau_gen_quality_spread:.3f} (tau_gen_plateau: "
                         f"{st.tau_gen_plateau_spread:.3f})")
        else:
            lines.append(f"tau_mem_onset (f >= {st.fthr:g}) reached for fewer than two n: no fit; train longer "
                         "(more steps)")
        return "\n".join(lines)


def timescale_study_figure(ns, config=None, *, out=None, **study_options) -> TimescaleStudyFigure:
    """The DDPM ``n`` ladder: memorization onset and generalization time against ``n`` (arXiv:2505.17638 Fig. 2
    analogue; docs/theory/validation.md §4): :func:`memlab.validation.timescales.timescale_study` ``(ns, config,
    out=out, **study_options)``.  Saved as ``timescales_study`` next to the study's ``study.json``."""
    from .validation.timescales import timescale_study

    _check_out(out)

    st = timescale_study(ns, config, out=out, **study_options)
    fig, axes = plot.plt.subplots(2, 3, figsize=(16, 9))
    plot.plot_timescale_study(st, axes=axes)
    paths = _finish(fig, out, "timescales_study")
    if out is not None:
        paths += (Path(out) / "study.json",)
    return TimescaleStudyFigure(figure=fig, paths=paths, study=st)


