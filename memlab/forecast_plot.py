"""The memorization-forecast figure (docs/theory/validation.md §5): fraction against training steps for each
fitted size, the ``tau_mem = a n^gamma`` fit with its prediction band extrapolated to the target size (held-out
measurements as distinct markers), and the largest training set memorizing within a budget.

:func:`forecast_figure` runs :func:`memlab.validation.forecast.forecast_memorization` (PyTorch, imported when
called) and draws it; :func:`plot_forecast` draws a result that is already there (e.g. re-read from
``forecast.json`` with :func:`memlab.validation.forecast.forecast_from_json`, no torch needed).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import plot
from .figures import FigureResult
from .io import output_dir
from .numerics.forecast_fit import rf_shape

__all__ = ["ForecastFigure", "forecast_figure", "plot_forecast"]


@dataclass(frozen=True)
class ForecastFigure(FigureResult):
    """:func:`forecast_figure`'s result: the figure, the written paths and the
    :class:`memlab.validation.forecast.MemorizationForecast`."""

    forecast: object

    def summary(self) -> str:
        return self.forecast.summary()


def plot_forecast(res, *, axes=None):
    """Draw a :class:`~memlab.validation.forecast.MemorizationForecast` on three axes (created when ``None``):
    (a) memorization fraction vs training steps per size, with exact 95% CIs and the level ``fthr``;
    (b) ``tau_mem`` vs ``n``: measurements (markers, CI-derived intervals), the fitted law (line) and its
    prediction band to ``target_n``, the forecast, and held-out measurements (stars); (c) the largest training
    set that memorizes within a budget (effective model memorization) against the budget."""
    from .validation.forecast import law_text   # no torch: the forecast module imports it only when training

    plt = plot.plt
    if axes is None:
        _, axes = plt.subplots(1, 3, figsize=(17, 5.2))
    ax1, ax2, ax3 = axes
    fthr = res.settings["fthr"]
    fit = res.tau_fit()
    held = {h["n"] for h in res.held_out}
    cmap = plt.get_cmap("viridis")
    fitted = sorted(r["n"] for r in res.runs if r["n"] not in held)
    held_cols = dict(zip(sorted(held), ["tab:red", "tab:orange", "tab:brown", "tab:pink", "tab:olive"] * 4))
    for r in sorted(res.runs, key=lambda r: r["n"]):
        s = np.asarray(r["steps"], float)
        f = np.asarray(r["fraction"], float)
        lo, hi = np.asarray(r["ci_low"], float), np.asarray(r["ci_high"], float)
        col = (held_cols[r["n"]] if r["n"] in held
               else cmap(0.85 * fitted.index(r["n"]) / max(len(fitted) - 1, 1)))
        ax1.errorbar(s, f, yerr=[f - lo, hi - f], fmt="*" if r["n"] in held else "o", ms=5, color=col, lw=1,
                     capsize=2, label=f"n = {r['n']}" + (" (held out)" if r["n"] in held else ""))
        ax1.plot(s, f, "-", color=col, lw=0.8, alpha=0.6)
    ax1.axhline(fthr, color="k", ls=":", lw=1, label=f"level fthr = {fthr:g}")
    ax1.set_xscale("log")
    ax1.set_xlabel("training time tau (optimizer steps)")
    ax1.set_ylabel("memorization fraction (1/3 rule)")
    ax1.set_title("(a) memorization fraction vs training time")
    ax1.legend(fontsize=8)

    reads = [r for r in res.readoffs if not r["censored"]]
    n_fit = np.array([r["n"] for r in reads], float)
    t_fit = np.array([r["tau_mem"] for r in reads], float)
    lo_fit = np.array([r["tau_low"] for r in reads], float)
    hi_fit = np.array([r["tau_high"] for r in reads], float)
    top = np.where(np.isfinite(hi_fit), hi_fit, t_fit * 3)
    ax2.errorbar(n_fit, t_fit, yerr=[t_fit - lo_fit, top - t_fit], fmt="o", color="tab:blue", capsize=3,
                 label="measured, fitted (interval from the fraction's CI)")
    n_all = [*n_fit, res.target_n, *held]
    ng = np.geomspace(min(n_all) / 1.5, max(n_all) * 1.5, 200)
    c, blo, bhi = fit.predict(ng)
    ax2.plot(ng, c, "-", color="tab:blue", label=f"fit ({fit.law}): {law_text(res.fit)}")
    ax2.fill_between(ng, blo, bhi, color="tab:blue", alpha=0.15, label=f"{100 * fit.level:.0f}% prediction band")
    styles = {"power": ("tab:green", "--"), "linear": ("tab:orange", "-."), "rf": ("tab:purple", ":")}
    for lw, alt in res.alternatives.items():
        if lw == fit.law:
            continue
        col, ls = styles.get(lw, ("gray", "--"))
        a, g, n_c = alt["a"], alt["gamma"], alt["n_c"]
        with np.errstate(divide="ignore", invalid="ignore"):
            line = a * (rf_shape(ng, n_c) if lw == "rf" else ng ** g)
        ax2.plot(ng, line, ls, color=col, lw=1.3, label=f"law {lw} (line only)")
    fc = res.forecast
    ax2.errorbar([res.target_n], [fc["tau_mem"]], yerr=[[fc["tau_mem"] - fc["low"]], [fc["high"] - fc["tau_mem"]]],
                 fmt="s", mfc="none", color="k", capsize=3, label=f"forecast at n = {res.target_n}")
    for h in res.held_out:
        col = held_cols[h["n"]]
        if h["measured"] is None:
            ax2.plot([h["n"]], [h["horizon"]], "^", color=col, ms=10, mec="k",
                     label=f"held out n = {h['n']}: not memorized by step {h['horizon']:,} (tau_mem above)")
        else:
            up = h["measured_high"] if np.isfinite(h["measured_high"]) else h["measured"] * 3
            ax2.errorbar([h["n"]], [h["measured"]], yerr=[[h["measured"] - h["measured_low"]], [up - h["measured"]]],
                         fmt="*", ms=12, color=col, capsize=3, label=f"held out n = {h['n']} (measured)")
    ax2.set_xscale("log")
    ax2.set_yscale("log")
    ticks = sorted({int(v) for v in n_all})
    ax2.set_xticks(ticks, [str(v) for v in ticks])
    ax2.xaxis.set_minor_formatter(plt.NullFormatter())
    ax2.set_xlabel("training-set size n (points)")
    ax2.set_ylabel("tau_mem (optimizer steps)")
    ax2.set_title(f"(b) tau_mem fit and forecast (fthr = {fthr:g})")
    ax2.legend(fontsize=8)

    bmax = max(fc["high"], *(h["horizon"] for h in res.held_out)) if res.held_out else fc["high"]
    budgets = np.geomspace(max(min(t_fit.min(), fc["low"]) / 3, 1.0), bmax * 2, 120)
    em = None
    if fit.gamma > 0:
        em = np.array([fit.n_emm(b) for b in budgets])
        ax3.plot(budgets, em[:, 0], "-", color="tab:purple", label="largest n memorizing within the budget")
    ax3.plot(t_fit, n_fit, "o", color="tab:blue", label="measured tau_mem(n)")
    for h in res.held_out:
        if h["measured"] is not None:
            ax3.plot([h["measured"]], [h["n"]], "*", ms=12, color=held_cols[h["n"]])
        else:
            ax3.plot([h["horizon"]], [h["n"]], ">", ms=9, mec="k", color=held_cols[h["n"]],
                     label=f"held out n = {h['n']}: not memorized by step {h['horizon']:,}")
    if res.budget is not None:
        ax3.axvline(res.budget["steps"], color="k", ls=":", lw=1, label=f"budget {res.budget['steps']:,} steps")
    ax3.axhline(res.target_n, color="gray", ls="--", lw=0.8, label=f"target n = {res.target_n}")
    ax3.set_xscale("log")
    ax3.set_yscale("log")
    ax3.xaxis.set_minor_formatter(plt.NullFormatter())
    if em is not None:   # the band; an edge that never crosses the budget inside the grid runs off the axes
        bottom, top = ax3.get_ylim()
        ax3.fill_between(budgets, np.where(np.isfinite(em[:, 1]), em[:, 1], bottom),
                         np.where(np.isfinite(em[:, 2]), em[:, 2], top), color="tab:purple", alpha=0.15,
                         label=f"{100 * fit.level:.0f}% band")
        ax3.set_ylim(bottom, top)
    ax3.set_xlabel("training budget (optimizer steps)")
    ax3.set_ylabel("effective model memorization n_emm (points)")
    ax3.set_title("(c) EMM vs budget")
    ax3.legend(fontsize=8)
    fig = ax1.figure
    fig.suptitle(f"memorization forecast: {res.data['name']}, model {res.settings['model']} "
                 f"(p = {res.theory['n_params']:,}), {res.settings['optimizer']} lr {res.settings['lr']:g}", fontsize=11)
    fig.tight_layout()
    return axes


def forecast_figure(data, ns, *, out=None, **options) -> ForecastFigure:
    """Run :func:`memlab.validation.forecast.forecast_memorization` ``(data, ns, out=out, **options)`` and draw
    it (:func:`plot_forecast`); saved as ``forecast.png`` / ``forecast.pdf`` next to ``forecast.json`` and
    ``summary.txt``."""
    from .validation.forecast import forecast_memorization

    if out is not None:
        output_dir(out)
    res = forecast_memorization(data, ns, out=out, **options)
    return draw_forecast(res, out=out)


def draw_forecast(res, *, out=None) -> ForecastFigure:
    """Draw an existing forecast result and save it under ``out`` (``forecast.png``/``.pdf``)."""
    fig, axes = plot.plt.subplots(1, 3, figsize=(17, 5.2))
    plot_forecast(res, axes=axes)
    paths = tuple(plot.save_figure(fig, out, "forecast")) if out is not None else ()
    if out is not None:
        paths += (Path(out) / "forecast.json", Path(out) / "summary.txt")
    return ForecastFigure(figure=fig, paths=paths, forecast=res)
