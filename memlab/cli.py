"""Command-line interface: ``memlab mstar | timescales | spectrum | plot gmm-losses | demo | cite``.

Bad input prints one line (``memlab: error: ...``) and exits with status 2, without a traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

PRESETS = ("paper", "uniform", "noise")


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2
        self.exit(2, f"memlab: error: {message} (see `{self.prog} --help`)\n")


def _jsonable(obj):
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj) if not f.name.startswith("_")}
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if callable(obj):
        return getattr(obj, "__name__", repr(obj))
    return obj


def _emit_warnings(caught) -> list[str]:
    msgs = []
    for w in caught:
        msg = str(w.message)
        if msg not in msgs:
            msgs.append(msg)
            print(f"memlab: warning: {msg}", file=sys.stderr)
    return msgs


def _cmd_mstar(args) -> int:
    from .theory.crossover import predict_mstar

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = predict_mstar(args.N, C=args.C, weighting=args.weighting, sigma2=args.sigma2,
                            d=args.d, K=args.K)
    if args.json:
        print(json.dumps(_jsonable(res), indent=2))
        return 0
    _emit_warnings(caught)
    if res.crossover:
        print(f"M* = {res.m_star:.4f}  (M*/N = {res.ratio:.6f}, r = {res.r:.6f})  "
              f"for N={res.N}, C={res.C:g}, weighting={res.weighting}, sigma2={res.sigma2:g}")
    else:
        print(res.message)
    return 0


def _gmm_losses_figure(N, d, K, t, n_noise, seed, n_m, out):
    from .numerics.losses import gmm_excess_losses
    from .plot import plt, plot_gmm_losses, save_figure

    step = max(N // n_m, 1)
    Ms = sorted(set(list(range(step, N + 1, step)) + [N]))
    t0 = time.perf_counter()
    res = gmm_excess_losses(N, d, K, t, Ms, n_noise=n_noise, seed=seed)
    elapsed = time.perf_counter() - t0
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    plot_gmm_losses(res, ax=ax)
    paths = save_figure(fig, out, "gmm_losses")
    plt.close(fig)
    return res, paths, elapsed


def _rf_curves_figure(psi_p, psi_ns, t, d, gd_d, gd_psi_ns, gd_tau_max, activation, sigma_x, center, seed, out):
    from .numerics.rf_curves import read_off_timescales
    from .numerics.rf_learning import _sizes as check_sizes, rf_learning_curves
    from .plot import plot_rf_curves, plt, save_figure

    from .theory import _checks

    if gd_d < 0:
        raise ValueError(f"gd_d must be an integer >= 0 (0: no GD simulation; got {gd_d})")
    if gd_d:
        _checks.positive_float("gd_tau_max", gd_tau_max)
        if gd_tau_max <= 1.0:
            raise ValueError(f"gd_tau_max must be > 1 (GD is logged from tau = 1; got {gd_tau_max:g})")
        for pn in gd_psi_ns:                         # fail before the closed forms, not after them
            check_sizes(psi_p, pn, gd_d)
    taus = np.concatenate([np.geomspace(1e-1, 1e7, 400), [np.inf]])
    kw = dict(activation=activation, sigma_x=sigma_x, center=center, seed=seed)
    curves = [rf_learning_curves(psi_p, pn, t, taus, d=d, method="gep", **kw) for pn in psi_ns]
    gd, gd_theory = [], []
    if gd_d:
        tg = np.geomspace(1.0, gd_tau_max, 22)
        gd = [rf_learning_curves(psi_p, pn, t, tg, d=gd_d, method="gd", **kw) for pn in gd_psi_ns]
        tt = np.geomspace(1e-1, gd_tau_max, 200)
        gd_theory = [rf_learning_curves(psi_p, pn, t, tt, d=gd_d, method="features", **kw) for pn in gd_psi_ns]
    fig, axes = plt.subplots(2, 2, figsize=(12.0, 8.6))
    plot_rf_curves(curves, gd, gd_theory=gd_theory, axes=axes)
    fig.tight_layout()
    paths = save_figure(fig, out, f"rf_curves_psip{psi_p:g}_t{t:g}")
    plt.close(fig)
    reads = [read_off_timescales(c) for c in curves]
    return curves, gd, reads, paths


def _rf_curves_summary(curves, gd, reads) -> str:
    from .theory import timescales as ts

    lines = [f"{'psi_n':>6} {'tau_gen(read)':>13} {'tau_gen(pred)':>13} {'tau_mem(read)':>13} "
             f"{'tau_mem(pred)':>13} {'L_gen(inf)':>10} {'min E_score':>11}"]
    for c, r in zip(curves, reads):
        k, i = c.constants, c.inputs
        tg = ts.tau_gen(k.mu1, k.norm2, i["psi_p"], k.delta_t)
        tm = ts.tau_mem(k.s_t2, k.v_t2, i["psi_p"], i["psi_n"], k.delta_t)
        rm = f"{r.tau_mem:13.4g}" if r.tau_mem is not None else f"{'-':>13}"
        lines.append(f"{i['psi_n']:6g} {r.tau_gen:13.4g} {tg:13.4g} {rm} {tm:13.4g} {r.gen_final:10.4f} "
                     f"{r.score_min:11.4f}")
    lines.append("read-offs: tau_gen = argmin of the score error, tau_mem = first tau with L_gen >= 1/2 L_gen(inf); "
                 "pred: spec 5.1 formulas (units tau = k eta/d^2)")
    for g in gd:
        gi = g.inputs
        lines.append(f"GD (real {gi['activation']} features, d={gi['d']}, psi_n={gi['psi_n']:g}, m=inf, "
                     f"delta_tau={gi['delta_tau']:.3g}): {g.diagnostics['gd']['n_steps']} steps in "
                     f"{g.diagnostics['gd']['wall_s']:.1f} s")
    return "\n".join(lines)


def _rf_phase_figure(psi_ps, psi_ns, t, taus, d, activation, sigma_x, center, seed, out):
    from .numerics.rf_learning import rf_phase_diagram
    from .plot import plot_rf_phase, plt, save_figure

    pdg = rf_phase_diagram(psi_ps, psi_ns, t, taus, d=d, activation=activation, sigma_x=sigma_x, center=center,
                           seed=seed)
    fig, axes = plt.subplots(1, len(pdg.tau), figsize=(5.4 * len(pdg.tau), 4.4), squeeze=False)
    plot_rf_phase(pdg, axes=axes.ravel())
    fig.tight_layout()
    paths = save_figure(fig, out, f"rf_phase_t{t:g}")
    plt.close(fig)
    return pdg, paths


def _cmd_plot(args) -> int:
    if args.what == "rf-curves":
        curves, gd, reads, paths = _rf_curves_figure(args.psi_p, args.psi_n, args.t, args.d, args.gd_d,
                                                     args.gd_psi_n or args.psi_n[:2], args.gd_tau_max,
                                                     args.activation, args.sigma_x, args.center, args.seed,
                                                     args.out)
        if args.json:
            print(json.dumps({"curves": _jsonable(curves), "read_offs": _jsonable(reads),
                              "files": [str(p) for p in paths]}, indent=2))
            return 0
        print(_rf_curves_summary(curves, gd, reads))
        for p in paths:
            print(f"wrote {p}")
        return 0
    if args.what == "rf-phase":
        pdg, paths = _rf_phase_figure(args.psi_p, args.psi_n, args.t, args.tau, args.d, args.activation,
                                      args.sigma_x, args.center, args.seed, args.out)
        if args.json:
            print(json.dumps({"result": _jsonable(pdg), "files": [str(p) for p in paths]}, indent=2))
            return 0
        print(f"phase diagram: {pdg.psi_p.size} x {pdg.psi_n.size} GEP closed forms at d={pdg.d} in "
              f"{pdg.diagnostics['wall_s']:.1f} s; max L_gen {pdg.gen.max():.4f}")
        for p in paths:
            print(f"wrote {p}")
        return 0
    if args.what == "gmm-losses":
        res, paths, elapsed = _gmm_losses_figure(args.N, args.d, args.K, args.t, args.n_noise,
                                                 args.seed, args.n_m, args.out)
        if args.json:
            print(json.dumps({"result": _jsonable(res), "files": [str(p) for p in paths]}, indent=2))
        else:
            print(f"Monte Carlo excess losses ({elapsed:.1f} s): generalizing "
                  f"{res.generalizing:.4f} +- {res.generalizing_se:.4f} vs Thm 3.1 {res.theory_generalizing:.4f}")
            for p in paths:
                print(f"wrote {p}")
    return 0


def _cmd_demo(args) -> int:
    from .theory.crossover import predict_mstar
    from .theory.grid import paper_grid

    t_start = time.perf_counter()
    print("memlab demo: capacity crossover M* (mission Eq. 14 = arXiv:2508.17689v1 Eq. 21)")
    print("M* = N (1 - r/C), r = sum_l lam_l/(psi_l sigma*^2 + 1) / sum_l lam_l on the 26-point grid, sigma*^2 = 1\n")
    Ns = (50, 100, 150, 200)
    for C in (2.0, 1.0):
        header = f"{'weighting':>9} {'r':>9} {'M*/N':>8} " + " ".join(f"{'N=' + str(n):>9}" for n in Ns)
        print(f"C = {C:g}")
        print(header)
        for w in PRESETS:
            rows = [predict_mstar(n, C=C, weighting=w) for n in Ns]
            r0 = rows[0]
            print(f"{w:>9} {r0.r:9.5f} {r0.ratio:8.4f} " + " ".join(f"{x.m_star:9.2f}" for x in rows))
        print()
    print("'paper' is the fitted weighting of the paper (Fig. 3); 'noise' (lambda = psi_t) is the training "
          "objective, dominated by t = 0.001, and does not predict the transition.\n")
    t16 = float(paper_grid()[16])
    res, paths, elapsed = _gmm_losses_figure(200, 50, 12, t16, 100, 0, 20, args.out)
    print(f"Monte Carlo excess losses, N=200, d=50, K=12, t={t16:.5f}, 100 draws ({elapsed:.1f} s):")
    print(f"  generalizing: {res.generalizing:.3f} +- {res.generalizing_se:.3f}  (Thm 3.1: {res.theory_generalizing:.3f})")
    lo, hi = res.theory_pmem(1.0), res.theory_pmem(2.0)
    for j, (m, v, s) in enumerate(zip(res.M, res.pmem, res.pmem_se)):
        if m in (40, 100, 160):
            print(f"  pmem M={m:3d}:  {v:.3f} +- {s:.3f}  (Thm 3.2, C=1..2: {lo[j]:.1f} .. {hi[j]:.1f})")
    for p in paths:
        print(f"wrote {p}")

    _demo_memorization(args.out)

    from .numerics.timescales import predict_timescales

    print("\nrandom-features timescales (arXiv:2505.17638 MT 3): p = 6400, d = 100, t = 0.1, tanh")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rows = [predict_timescales(n, 6400, 100, 0.1) for n in (200, 400, 800, 1600, 3200, 12800)]
    print(_timescales_table(rows))
    print("tau_gen does not depend on n; tau_mem grows linearly with n, so the early-stopping window "
          "tau_mem/tau_gen widens with n; for n > p (regime II) there is no memorization phase.\n")
    spec, eigs, paths, _ = _spectrum_figure(64.0, 8.0, 0.01, 100, 0, "tanh", 1.0, False, args.out)
    print(_spectrum_summary(spec, eigs))
    for p in paths:
        print(f"wrote {p}")
    print("\nrandom-features learning curves (Fig. 5 analogue): psi_p = 64, t = 0.1; closed form at d = 100, "
          "GD on real tanh features at d = 10 (kept small so the demo stays under 2 minutes)")
    curves, gd, reads, paths = _rf_curves_figure(64.0, [4.0, 8.0, 16.0, 32.0], 0.1, 100, 10, [4.0, 8.0], 3e4,
                                                 "tanh", 1.0, False, 0, args.out)
    print(_rf_curves_summary(curves, gd, reads))
    for p in paths:
        print(f"wrote {p}")
    pdg, paths = _rf_phase_figure([4, 8, 16, 32, 64, 128], [1, 2, 4, 8, 16, 32, 64, 128], 0.1, [1e3, 1e4], 16,
                                  "tanh", 1.0, False, 0, args.out)
    print(f"phase diagram of L_gen (Fig. 5C analogue): 6 x 8 GEP closed forms at d = 16 in "
          f"{pdg.diagnostics['wall_s']:.1f} s")
    for p in paths:
        print(f"wrote {p}")
    print(f"demo finished in {time.perf_counter() - t_start:.1f} s")
    return 0


def _cmd_memorization(args) -> int:
    from .numerics.memorization import load_points, memorization_fraction

    if not (0.0 < args.k < 1.0):
        raise ValueError(f"k must lie in the open interval (0, 1) (got {args.k:g})")
    if args.memory_limit_mb < 1:
        raise ValueError(f"memory_limit_mb must be >= 1 (got {args.memory_limit_mb:g})")
    samples = load_points(args.samples, name="samples")
    train = load_points(args.train, name="train")
    if args.quantize:
        samples = np.clip(np.rint(np.asarray(samples, dtype=np.float64)), 0, 255).astype(np.uint8)
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = memorization_fraction(samples, train, k=args.k, n_boot=args.n_boot, seed=args.seed,
                                    dedupe=args.dedupe, memory_limit=int(args.memory_limit_mb * 2 ** 20))
    elapsed = time.perf_counter() - t0
    paths = []
    if args.out:
        from .plot import plot_memorization, plt, save_figure

        fig, axes = plt.subplots(1, 2, figsize=(10.5, 4.0), gridspec_kw={"width_ratios": [1.6, 1]})
        plot_memorization({Path(args.samples).name: res}, axes=axes)
        paths = save_figure(fig, args.out, "memorization")
        plt.close(fig)
        per = Path(args.out) / "memorization_per_sample.npz"
        np.savez(per, memorized=res.memorized, d1=res.d1, d2=res.d2, nn_index=res.nn_index)
        paths.append(per)
    if args.json:
        out = {k: v for k, v in _jsonable(res).items() if k not in ("memorized", "d1", "d2", "nn_index")}
        out.update({"n_memorized": res.n_memorized, "samples": str(args.samples), "train": str(args.train),
                    "wall_s": elapsed, "warnings": [str(w.message) for w in caught],
                    "files": [str(p) for p in paths]})
        print(json.dumps(out, indent=2))
        return 0
    _emit_warnings(caught)
    ci = "" if res.ci_low is None else f", {100 * res.level:g}% bootstrap CI [{res.ci_low:.4f}, {res.ci_high:.4f}]"
    print(f"memorization fraction {res.fraction:.4f}{ci}: {res.n_memorized} of {res.n_samples} samples have "
          f"d1 < {res.k:.4g} d2 against N = {res.n_train} training points in D = {samples.shape[1]} "
          f"({elapsed:.2f} s)")
    for p in paths:
        print(f"wrote {p}")
    return 0


def _demo_memorization(out):
    from .numerics.empirical import sample_optimal
    from .numerics.gmm import generalizing_denoiser, memorizing_denoiser, pmem_denoiser, sample_gmm
    from .numerics.memorization import memorization_fraction
    from .numerics.sampler import ddim_sample
    from .plot import plot_memorization, plt, save_figure

    data = sample_gmm(200, 50, 12, seed=0)
    sets = {"mem (N=200)": ddim_sample(memorizing_denoiser(data.train), 200, seed=1).samples,
            "pmem (M=100)": ddim_sample(pmem_denoiser(data.train, 100), 200, seed=1).samples,
            "generalizing": ddim_sample(generalizing_denoiser(data), 200, seed=1).samples,
            "optimal, EDM": sample_optimal(data.train, 200, schedule="edm", seed=1).samples,
            "fresh draws": sample_gmm(200, 50, 12, n_heldout=200, seed=0).heldout}
    print("\nmemorization fraction (1/3 rule, 95% bootstrap CI) of 200 DDIM samples, GMM lab N=200, d=50, K=12:")
    res = {}
    for lab, x in sets.items():
        r = memorization_fraction(x, data.train)
        res[lab] = r
        print(f"  {lab:>14}: {r.fraction:.3f}  [{r.ci_low:.3f}, {r.ci_high:.3f}]  median d1/d2 = "
              f"{np.median(r.ratio):.2e}")
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.0), gridspec_kw={"width_ratios": [1.6, 1]})
    plot_memorization(res, axes=axes)
    paths = save_figure(fig, out, "memorization_gmm")
    plt.close(fig)
    for p in paths:
        print(f"wrote {p}")


def _validation_kwargs(args):
    for name in ("steps", "n_noise", "n_samples"):
        v = getattr(args, name)
        if v < 1:
            raise ValueError(f"{name} must be an integer >= 1 (got {v})")
    times = None
    if args.t_min is not None:
        from .theory.grid import paper_grid

        g = paper_grid()
        times = g[g >= args.t_min]
        if times.size < 2:
            raise ValueError(f"t_min must leave at least two grid times (got {args.t_min:g})")
    return dict(steps=args.steps, n_noise=args.n_noise, peak_lr=args.peak_lr, seed=args.seed, device=args.device,
                dtype=args.dtype, times=times, n_samples=args.n_samples, threads=args.threads,
                ema=None if args.no_ema else 0.99)


def _executor(args):
    if args.scheduler:
        from .validation.gmm_sweep import executor_for

        return executor_for(args.scheduler)
    if args.workers is not None:
        if args.workers < 1:
            raise ValueError(f"workers must be an integer >= 1 (got {args.workers})")
        from .validation.gmm_sweep import executor_for

        return executor_for(None, max_workers=args.workers)
    return None


def _cmd_validate(args) -> int:
    _need_torch()
    from .plot import plot_capacity_sweep, plot_sweep_grid, plt, save_figure
    from .validation.gmm_sweep import sweep_capacity, sweep_grid

    kw = _validation_kwargs(args)
    if kw["device"] is not None:
        from .validation.gmm_torch import resolve_device

        resolve_device(kw["device"])
    ex = _executor(args)
    log = (lambda *a, **k: None) if args.json else print
    out = Path(args.out)
    if args.what == "gmm":
        for name in ("N", "d", "K"):
            if getattr(args, name) < 1:
                raise ValueError(f"{name} must be an integer >= 1 (got {getattr(args, name)})")
        try:
            sw = sweep_capacity(args.N, args.d, args.K, executor=ex, out=out, log=log, **kw)
        finally:
            if ex is not None:
                ex.shutdown()
        fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
        plot_capacity_sweep(sw, axes=axes)
        paths = save_figure(fig, out, f"gmm_validation_N{sw.N}_d{sw.d}_K{sw.K}")
        plt.close(fig)
        if args.json:
            print(json.dumps({"N": sw.N, "d": sw.d, "K": sw.K, "m_pt": sw.m_pt, "ratio_pt": sw.ratio_pt,
                              "start": sw.start, "end": sw.end, "predicted_ratio": sw.mstar.ratio,
                              "flags": sw.flags, "results": sw.results, "files": [str(p) for p in paths]}, indent=2))
            return 0
        pt = "none (no M with fraction >= 0.5)" if sw.m_pt is None else f"{sw.m_pt} (M_pt/N = {sw.ratio_pt:.3f})"
        print(f"measured transition M_pt = {pt}; band {sw.start}..{sw.end}; predicted M*/N = {sw.mstar.ratio:.3f} "
              f"({sw.mstar.weighting}, C = {sw.mstar.C:g})" + (f"; flags: {'; '.join(sw.flags)}" if sw.flags else ""))
        for p in paths + [out / "sweep.json", out / "sweep.csv"]:
            print(f"wrote {p}")
        return 0
    try:
        sweeps = sweep_grid(args.N, args.d, args.K, executor=ex, out=out, log=log, **kw)
    finally:
        if ex is not None:
            ex.shutdown()
    fig, ax = plt.subplots(figsize=(max(6, 0.3 * len(sweeps) + 3), 4.5))
    plot_sweep_grid(sweeps, ax=ax)
    paths = save_figure(fig, out, "gmm_sweep_grid")
    plt.close(fig)
    rows = [{"N": s.N, "d": s.d, "K": s.K, "m_pt": s.m_pt, "ratio_pt": s.ratio_pt, "predicted_ratio": s.mstar.ratio,
             "flags": s.flags} for s in sweeps]
    if args.json:
        print(json.dumps({"configurations": rows, "files": [str(p) for p in paths]}, indent=2))
        return 0
    for r in rows:
        rp = "-" if r["ratio_pt"] is None else f"{r['ratio_pt']:.3f}"
        print(f"N={r['N']:4d} d={r['d']:3d} K={r['K']:3d}: M_pt/N = {rp}  predicted {r['predicted_ratio']:.3f}")
    for p in paths:
        print(f"wrote {p}")
    return 0


def _need_torch():
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        raise ValueError("memlab validate needs PyTorch: pip install 'memlab[torch]' (CPU: pip install torch==2.13.0)")


def _cmd_validate_timescales(args) -> int:
    _need_torch()
    from .plot import plot_timescale_study, plt, save_figure
    from .validation.timescales import timescale_study

    ex = _executor(args)   # every other argument is validated by timescale_study before any work starts
    out = Path(args.out)
    try:
        st = timescale_study(args.n, steps=args.steps, width=args.width, device=args.device, seed=args.seed,
                             scale_steps=not args.same_steps, optimizer=args.optimizer, lr=args.lr,
                             momentum=args.momentum, n_checkpoints=args.n_checkpoints, n_gen=args.n_gen,
                             sample_steps=args.sample_steps, fthr=args.fthr, out=out, executor=ex,
                             threads=args.threads, quiet=args.json)
    finally:
        if ex is not None:
            ex.shutdown()
    fig, axes = plt.subplots(2, 3, figsize=(16, 9))
    plot_timescale_study(st, axes=axes)
    paths = save_figure(fig, out, "timescales_study")
    plt.close(fig)
    if args.json:
        d = st.to_dict()
        d.pop("runs")
        d["files"] = [str(p) for p in paths] + [str(out / "study.json")]
        print(json.dumps(d, indent=2))
        return 0
    print(f"{'n':>6} {'tau_gen':>10} {'(score)':>10} {'(plateau)':>10} {'tau_mem':>10} {'tau_mem/n':>10}")
    for n, tg, tgs, tgp, tm in zip(st.ns, st.tau_gen, st.tau_gen_score, st.tau_gen_plateau, st.tau_mem):
        tms = "-" if not np.isfinite(tm) else f"{tm:10.4g}"
        rat = "-" if not np.isfinite(tm) else f"{tm / n:10.4g}"
        print(f"{n:6d} {tg:10.4g} {tgs:10.4g} {tgp:10.4g} {tms:>10} {rat:>10}")
    f = st.fit
    if f["a"] is not None:
        print(f"fit tau_mem = a n: a = {f['a']:.4g} updates per point, R^2 = {f['r2']:.4f}; "
              f"tau_mem ~ n^{f['gamma']:.3f} (R^2 log = {f['r2_log']:.4f}); tau_gen spread max/min = "
              f"{st.tau_gen_spread:.3f} (plateau entry: {st.tau_gen_plateau_spread:.3f})")
    else:
        print(f"tau_mem reached (f >= {st.fthr:g}) for fewer than two n: no fit; train longer (--steps)")
    for p in paths + [out / "study.json"]:
        print(f"wrote {p}")
    return 0


def _cmd_validate_rf(args) -> int:
    _need_torch()
    from .plot import plot_rf_training, plt, save_figure
    from .validation.rf_torch import train_rf

    if args.n_taus < 2:
        raise ValueError(f"n_taus must be an integer >= 2 (got {args.n_taus})")
    if not (args.tau_max > 0 and np.isfinite(args.tau_max)):
        raise ValueError(f"tau_max must be a finite number > 0 (got {args.tau_max})")
    taus = np.geomspace(min(1.0, args.tau_max), args.tau_max, args.n_taus)
    r = train_rf(args.psi_p, args.psi_n, args.t, taus, d=args.d, optimizer=args.optimizer,
                 delta_tau=args.delta_tau, lr=args.lr, seed=args.seed, device=args.device, quiet=args.json)
    out = Path(args.out)
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.6))
    plot_rf_training(r, axes=axes)
    paths = save_figure(fig, out, f"rf_training_d{r.inputs['d']}_p{r.inputs['p']}_n{r.inputs['n']}")
    plt.close(fig)
    (out / "rf_training.json").write_text(json.dumps(r.to_dict(), indent=1))
    if args.json:
        print(json.dumps({"agreement": r.agreement, "inputs": r.inputs, "diagnostics": r.diagnostics,
                          "files": [str(p) for p in paths] + [str(out / "rf_training.json")]}, indent=2))
        return 0
    a = r.agreement
    print(f"PyTorch {r.inputs['optimizer']} vs closed form (d={r.inputs['d']}, p={r.inputs['p']}, n={r.inputs['n']}, "
          f"t={r.inputs['t']:g}, {int(r.steps[-1])} steps, {r.diagnostics['steps_per_s']:.0f} steps/s on "
          f"{r.diagnostics['device']}): max rel. diff train {100 * a['max_rel_train']:.2f}%, test "
          f"{100 * a['max_rel_test']:.2f}% (exact loss of trained B); Monte Carlo {100 * a['max_rel_train_mc']:.2f}%, "
          f"{100 * a['max_rel_test_mc']:.2f}%")
    for p in paths + [out / "rf_training.json"]:
        print(f"wrote {p}")
    return 0


def _cmd_timescales(args) -> int:
    from .numerics.timescales import predict_timescales

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = predict_timescales(args.n, args.p, args.d, args.t, activation=args.activation,
                                 sigma_x=args.sigma_x, center=args.center, numeric=not args.no_numeric)
    if args.json:
        print(json.dumps(_jsonable(res), indent=2))
        return 0
    _emit_warnings(caught)
    print(_timescales_table([res]))
    return 0


def _timescales_table(rows) -> str:
    head = (f"{'n':>7} {'p':>7} {'d':>5} {'t':>7} {'regime':>9} {'tau_gen':>10} {'tau_mem':>11} "
            f"{'tau_mem_num':>11} {'window':>9} {'n*':>7}")
    lines = [head]
    for r in rows:
        i = r.inputs
        num = f"{r.tau_mem_numeric:11.5g}" if r.tau_mem_numeric is not None else f"{'-':>11}"
        lines.append(f"{i['n']:7d} {i['p']:7d} {i['d']:5d} {i['t']:7.4g} {r.regime:>9} {r.tau_gen:10.5g} "
                     f"{r.tau_mem:11.5g} {num} {r.window:9.4g} {r.n_star:7d}")
    lines.append(f"units: {rows[0].units}; tau_mem = psi_p/(Delta_t lambda_min) (arXiv:2505.17638 MT 3), "
                 "tau_mem_num from the solved spectrum, tau_gen = psi_p/(Delta_t mean(rho_2))")
    return "\n".join(lines)


def _spectrum_figure(psi_p, psi_n, t, d, seed, activation, sigma_x, center, out):
    from .numerics.rf_matrices import gep_eigenvalues, gep_matrices
    from .numerics.rf_spectrum import rf_spectrum
    from .plot import plot_rf_spectrum, plt, save_figure

    p, n = int(round(psi_p * d)), int(round(psi_n * d))
    if p < 1 or n < 1:
        raise ValueError(f"d={d} is too small for psi_p={psi_p:g}, psi_n={psi_n:g}: need p = psi_p*d >= 1 "
                         "and n = psi_n*d >= 1")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        spec = rf_spectrum(psi_p, psi_n, t, activation=activation, sigma_x=sigma_x, center=center)
    mats = gep_matrices(n, p, d, t, activation=activation, sigma_x=sigma_x, center=center, seed=seed,
                        dense=False)
    eigs = gep_eigenvalues(mats)
    fig, ax = plt.subplots(figsize=(7.0, 4.4))
    plot_rf_spectrum(spec, eigs, d=d, ax=ax)
    paths = save_figure(fig, out, f"rf_spectrum_psip{psi_p:g}_psin{psi_n:g}_t{t:g}")
    plt.close(fig)
    return spec, eigs, paths, caught


def _cmd_spectrum(args) -> int:
    spec, eigs, paths, caught = _spectrum_figure(args.psi_p, args.psi_n, args.t, args.d, args.seed,
                                                 args.activation, args.sigma_x, args.center, args.out)
    if args.json:
        print(json.dumps({"bulks": spec.bulks, "delta_weight": spec.delta_weight,
                          "delta_location": spec.delta_location, "diagnostics": _jsonable(spec.diagnostics),
                          "files": [str(p) for p in paths]}, indent=2))
        return 0
    _emit_warnings(caught)
    print(_spectrum_summary(spec, eigs))
    for p in paths:
        print(f"wrote {p}")
    return 0


def _spectrum_summary(spec, eigs) -> str:
    lines = [f"spectrum of U (Thm 3.1), psi_p={spec.psi_p:g}, psi_n={spec.psi_n:g}, t={spec.t:g}: "
             f"delta peak at s_t^2={spec.delta_location:.4g}, weight {spec.delta_weight:.5f} "
             f"(theory {spec.diagnostics['theory_masses']['delta']:.5f})"]
    from .numerics.rf_spectrum import count_per_bulk

    p = eigs.size
    n_delta, counts = count_per_bulk(spec, eigs)
    lines.append(f"  delta peak: p*weight = {p * spec.delta_weight:.1f}; finite-size count {n_delta}")
    for (a, b, m), cnt in zip(spec.bulks, counts):
        lines.append(f"  bulk [{a:.5g}, {b:.5g}]  mass {m:.5f}  (p*mass = {p * m:.1f}; finite-size count {cnt})")
    return "\n".join(lines)


def _cmd_cite(args) -> int:
    from . import cite

    print(cite())
    return 0


def _rf_options(sp):
    sp.add_argument("--activation", default="tanh", help="tanh, erf, relu or gelu (relu/gelu need --center)")
    sp.add_argument("--sigma-x", type=float, default=1.0, help="data standard deviation (> 0)")
    sp.add_argument("--center", action="store_true", help="use sigma(h) - mu0(t) (spec 1.3)")


def _add_run_args(parser, out_default, workers_default):
    """--device --workers --threads --scheduler --out --json of the validation commands."""
    parser.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: CUDA when available)")
    parser.add_argument("--workers", type=int, default=None, help=f"local worker processes (default: {workers_default})")
    parser.add_argument("--threads", type=int, default=None, help="torch threads per worker")
    parser.add_argument("--scheduler", default=None, help="Dask scheduler address (needs memlab[dask])")
    parser.add_argument("--out", default=out_default, help="output directory (checkpoints: resumable)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="memlab", description="Memorization vs generalization in diffusion models: "
                "capacity crossover M*, Monte Carlo losses of the GMM laboratory, figures.")
    sub = p.add_subparsers(dest="cmd", required=True, parser_class=_Parser)

    m = sub.add_parser("mstar", help="predicted capacity crossover M* (mission Eq. 14 = arXiv:2508.17689v1 Eq. 21)",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    m.add_argument("--N", type=int, required=True, help="training-set size (>= 1)")
    m.add_argument("--C", type=float, default=2.0, help="Thm 3.2 constant (> 0; the paper uses 2)")
    m.add_argument("--weighting", choices=PRESETS, default="paper", help="time weighting preset")
    m.add_argument("--sigma2", type=float, default=1.0, help="component variance sigma*^2 (> 0)")
    m.add_argument("--d", type=int, default=None, help="data dimension (enables validity diagnostics)")
    m.add_argument("--K", type=int, default=None, help="number of components (coupon-collector check; needs --d)")
    m.add_argument("--json", action="store_true", help="machine-readable output")
    m.set_defaults(func=_cmd_mstar)

    pl = sub.add_parser("plot", help="figures")
    psub = pl.add_subparsers(dest="what", required=True, parser_class=_Parser)
    g = psub.add_parser("gmm-losses", help="Monte Carlo excess losses vs M/N with the theory lines",
                        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    g.add_argument("--N", type=int, default=200, help="training-set size")
    g.add_argument("--d", type=int, default=50, help="data dimension")
    g.add_argument("--K", type=int, default=12, help="number of mixture components")
    g.add_argument("--t", type=float, default=0.36028, help="diffusion time in (0, 1)")
    g.add_argument("--n-noise", type=int, default=100, help="noise draws per training point (>= 2)")
    g.add_argument("--n-m", type=int, default=20, help="number of M values (M = k * N // n_m)")
    g.add_argument("--seed", type=int, default=0, help="data seed")
    g.add_argument("--out", default="memlab_out", help="output directory")
    g.add_argument("--json", action="store_true", help="print the result as JSON")
    g.set_defaults(func=_cmd_plot)

    rc = psub.add_parser("rf-curves", help="random-features learning curves vs tau and tau/tau_mem (Fig. 5 analogue)",
                         formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    rc.add_argument("--psi-p", type=float, default=64.0, help="p/d (> 0)")
    rc.add_argument("--psi-n", type=float, nargs="+", default=[4.0, 8.0, 16.0, 32.0], help="n/d values (> 0)")
    rc.add_argument("--t", type=float, default=0.1, help="OU diffusion time (> 0)")
    rc.add_argument("--d", type=int, default=100, help="dimension of the closed-form (GEP) curves")
    rc.add_argument("--gd-d", type=int, default=10, help="dimension of the GD simulations (0: none)")
    rc.add_argument("--gd-psi-n", type=float, nargs="*", default=None, help="psi_n values simulated by GD "
                    "(default: the first two of --psi-n)")
    rc.add_argument("--gd-tau-max", type=float, default=3e4, help="last GD time (units k eta/d^2)")
    rc.add_argument("--seed", type=int, default=0, help="seed of W, X, Omega")
    _rf_options(rc)
    rc.add_argument("--out", default="memlab_out", help="output directory")
    rc.add_argument("--json", action="store_true", help="machine-readable output")
    rc.set_defaults(func=_cmd_plot)
    rp = psub.add_parser("rf-phase", help="heat map of L_gen over (psi_n, psi_p) at fixed tau (Fig. 5C analogue)",
                         formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    rp.add_argument("--psi-p", type=float, nargs="+", default=[4, 8, 16, 32, 64, 128], help="p/d grid")
    rp.add_argument("--psi-n", type=float, nargs="+", default=[1, 2, 4, 8, 16, 32, 64, 128], help="n/d grid")
    rp.add_argument("--t", type=float, default=0.1, help="OU diffusion time (> 0)")
    rp.add_argument("--tau", type=float, nargs="+", default=[1e3, 1e4], help="training times (>= 0)")
    rp.add_argument("--d", type=int, default=16, help="dimension of the finite-size GEP models")
    rp.add_argument("--seed", type=int, default=0, help="seed of W, X, Omega")
    _rf_options(rp)
    rp.add_argument("--out", default="memlab_out", help="output directory")
    rp.add_argument("--json", action="store_true", help="machine-readable output")
    rp.set_defaults(func=_cmd_plot)

    dm = sub.add_parser("demo", help="M* tables, the gmm-losses figure, RF timescales table and spectrum "
                        "figure (under 2 minutes on 2 cores)")
    dm.add_argument("--out", default="memlab_out", help="output directory for figures")
    dm.set_defaults(func=_cmd_demo)

    tsp = sub.add_parser("timescales", help="tau_gen, tau_mem, window and n* = p of a random-features score "
                         "model (arXiv:2505.17638 MT 3)", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    tsp.add_argument("--n", type=int, required=True, help="training-set size (>= 1)")
    tsp.add_argument("--p", type=int, required=True, help="number of random features (>= 1)")
    tsp.add_argument("--d", type=int, required=True, help="data dimension (>= 1)")
    tsp.add_argument("--t", type=float, required=True, help="OU diffusion time (> 0)")
    _rf_options(tsp)
    tsp.add_argument("--no-numeric", action="store_true", help="skip the solved spectrum (tau_mem_numeric)")
    tsp.add_argument("--json", action="store_true", help="machine-readable output")
    tsp.set_defaults(func=_cmd_timescales)

    spp = sub.add_parser("spectrum", help="theory density of U over a finite-size eigenvalue histogram "
                         "(Fig. 4 analogue)", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    spp.add_argument("--psi-p", type=float, required=True, help="p/d (> 0)")
    spp.add_argument("--psi-n", type=float, required=True, help="n/d (> 0)")
    spp.add_argument("--t", type=float, required=True, help="OU diffusion time (> 0)")
    spp.add_argument("--d", type=int, default=100, help="dimension of the finite-size Gaussian-equivalent U")
    spp.add_argument("--seed", type=int, default=0, help="seed of W, X, Omega")
    _rf_options(spp)
    spp.add_argument("--out", default="memlab_out", help="output directory")
    spp.add_argument("--json", action="store_true", help="machine-readable output")
    spp.set_defaults(func=_cmd_spectrum)

    mm = sub.add_parser("memorization", help="memorization fraction of generated samples: nearest / "
                        "second-nearest rule d1 < k d2 (Gu et al.) with a bootstrap CI",
                        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    mm.add_argument("--samples", required=True, help="generated samples: .npy, .npz or a folder of .png images")
    mm.add_argument("--train", required=True, help="training set: .npy, .npz or a folder of .png images")
    mm.add_argument("--k", type=float, default=1.0 / 3.0, help="ratio threshold in (0, 1) (strict)")
    mm.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples (0: no interval)")
    mm.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    mm.add_argument("--dedupe", action="store_true", help="drop exact duplicate training rows first")
    mm.add_argument("--quantize", action="store_true", help="round and clip samples to uint8 0..255 (images)")
    mm.add_argument("--memory-limit-mb", type=float, default=1024.0, help="working-memory bound of the search")
    mm.add_argument("--out", default=None, help="directory for the ratio figure and per-sample results")
    mm.add_argument("--json", action="store_true", help="machine-readable output")
    mm.set_defaults(func=_cmd_memorization)

    va = sub.add_parser("validate", help="validation against trained models (PyTorch)")
    vsub = va.add_subparsers(dest="what", required=True, parser_class=_Parser)
    for name, hlp in (("gmm", "train GMM denoisers over M, measure the memorization transition vs M* (Fig. 2 "
                       "analogue)"), ("gmm-sweep", "the (N, d, K) configuration sweep: M_pt/N vs predicted M*/N")):
        vp = vsub.add_parser(name, help=hlp, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
        if name == "gmm":
            vp.add_argument("--N", type=int, default=200, help="training-set size")
            vp.add_argument("--d", type=int, default=50, help="data dimension")
            vp.add_argument("--K", type=int, default=12, help="number of mixture components")
        else:
            vp.add_argument("--N", type=int, nargs="+", default=[50, 100, 150, 200], help="training-set sizes")
            vp.add_argument("--d", type=int, nargs="+", default=[30, 40, 50, 60], help="dimensions")
            vp.add_argument("--K", type=int, nargs="+", default=[3, 6, 9, 12], help="numbers of components")
        vp.add_argument("--steps", type=int, default=50000, help="Adam steps per model")
        vp.add_argument("--n-noise", type=int, default=100, help="noise draws per point per step")
        vp.add_argument("--peak-lr", type=float, default=1e-3, help="peak learning rate")
        vp.add_argument("--no-ema", action="store_true", help="disable the EMA of updates")
        vp.add_argument("--t-min", type=float, default=None, help="train on grid times >= t_min only "
                        "(reduced protocol; default: all 26)")
        vp.add_argument("--n-samples", type=int, default=50, help="DDIM samples per model")
        vp.add_argument("--seed", type=int, default=0, help="seed of data, initialisation, draws and sampler")
        vp.add_argument("--dtype", choices=("float32", "float64"), default="float32")
        _add_run_args(vp, "memlab_validation", "all cores")
        vp.set_defaults(func=_cmd_validate)

    ts = vsub.add_parser("timescales", help="tau_gen and tau_mem of a small DDPM on a 2-mode Gaussian mixture (d = 8) "
                         "across training-set sizes n (BUBM Fig. 2 / SM B analogue)",
                         formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ts.add_argument("--n", type=int, nargs="+", default=[16, 32, 64, 128], help="training-set sizes")
    ts.add_argument("--steps", type=int, default=None, help="training horizon of the largest n (optimizer "
                    "updates), about 3 tau_mem(n_max); default 1000 n_max (SGD) or 100 n_max (Adam)")
    ts.add_argument("--same-steps", action="store_true", help="train every n for --steps (default: horizon "
                    "proportional to n on one checkpoint grid)")
    ts.add_argument("--width", type=int, default=128, help="residual-MLP width W")
    ts.add_argument("--optimizer", choices=("sgd", "adam"), default="sgd")
    ts.add_argument("--lr", type=float, default=None, help="learning rate (default 6e-3 SGD, 1e-3 Adam)")
    ts.add_argument("--momentum", type=float, default=0.95, help="SGD momentum")
    ts.add_argument("--n-checkpoints", type=int, default=30, help="log-spaced checkpoints up to --steps")
    ts.add_argument("--n-gen", type=int, default=1000, help="generated samples per checkpoint")
    ts.add_argument("--sample-steps", type=int, default=1000, help="ancestral sampling steps (<= T = 1000)")
    ts.add_argument("--fthr", type=float, default=0.05, help="memorization-fraction level of tau_mem")
    ts.add_argument("--seed", type=int, default=0, help="initialisation and training-noise seed")
    _add_run_args(ts, "memlab_timescales", "sequential")
    ts.set_defaults(func=_cmd_validate_timescales)
    rv = vsub.add_parser("rf", help="random-features score model trained in PyTorch vs the closed-form learning "
                         "curves on the same W and data", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    rv.add_argument("--psi-p", type=float, default=8.0, help="p/d")
    rv.add_argument("--psi-n", type=float, default=2.0, help="n/d")
    rv.add_argument("--t", type=float, default=0.1, help="diffusion time")
    rv.add_argument("--d", type=int, default=20, help="dimension")
    rv.add_argument("--tau-max", type=float, default=2e4, help="last logged time (paper units k eta/d^2)")
    rv.add_argument("--n-taus", type=int, default=30, help="log-spaced logging times")
    rv.add_argument("--optimizer", choices=("gd", "adam"), default="gd")
    rv.add_argument("--delta-tau", type=float, default=None, help="GD step in tau units (default 1e-2 psi_p/Delta_t)")
    rv.add_argument("--lr", type=float, default=None, help="Adam learning rate (default 1e-3)")
    rv.add_argument("--seed", type=int, default=0)
    rv.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: CUDA when available)")
    rv.add_argument("--out", default="memlab_rf_training", help="output directory")
    rv.add_argument("--json", action="store_true", help="machine-readable output")
    rv.set_defaults(func=_cmd_validate_rf)

    c = sub.add_parser("cite", help="print the references")
    c.set_defaults(func=_cmd_cite)
    return p


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, TypeError) as exc:
        msg = " ".join(str(exc).split())
        print(f"memlab: error: {msg}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"memlab: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
