"""Command-line interface: parse the arguments, call the library (:mod:`memlab.figures`, :mod:`memlab.demo`,
...), print.  Every option's value is checked as it is parsed (argparse ``type=`` functions built on
:mod:`memlab.theory.checks`: finite reals in a range, sizes, seeds, probabilities, writable output folders,
existing input files), so a bad value names its option; the library's own ``ValueError``/``TypeError``, an
unreadable file, a failed solver check or a memory shortfall is printed on one line too: ``memlab: error: ...``,
exit status 2, no traceback.  Warnings go to stderr as ``memlab: warning: ...``, one line each.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import sys
import warnings
from pathlib import Path

import numpy as np

from . import cite
from .io import atomic_write, output_dir, to_jsonable
from .theory import checks
from .theory.activations import BUILTIN_ACTIVATIONS
from .theory.crossover import WEIGHTINGS, predict_mstar

#: Largest size or count the command line takes (N, d, K, n, p, n_noise, n_m); memory checks bind earlier.
MAX_SIZE = 10 ** 9


class _Figures:
    """:mod:`memlab.figures` imported on first use: a one-off answer (``mstar``, ``timescales``) does not
    pay for matplotlib."""

    def __getattr__(self, name):
        from . import figures as module

        return getattr(module, name)


figures = _Figures()


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    def _get_help_string(self, action):  # defaults shown unless None/False or the help already says it
        hide = action.default is None or action.default is False or "default" in (action.help or "")
        return action.help if hide else super()._get_help_string(action)


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2
        self.exit(2, f"memlab: error: {' '.join(str(message).split())} (see `{self.prog} --help`)\n")


def _number(text):
    for conv in (int, float):
        with contextlib.suppress(ValueError, OverflowError):
            return conv(text)
    return text  # the check then says what was expected


def _checked(check, number=True, **kw):
    """An argparse ``type=``: the text (as a number when ``number``) checked by ``check(name, value, **kw)``, one of
    :mod:`memlab.theory.checks`; argparse puts the option in front of the message (``argument --x: must be ...``)."""
    def parse(text):
        try:
            value = check("value", _number(text) if number else text, **kw)
        except (ValueError, TypeError) as exc:
            raise argparse.ArgumentTypeError(re.sub(r"^value:? | of type str(?=\))", "", str(exc))) from None
        return value if number else text
    return parse


def _tau(name, value):
    if isinstance(value, str) or not value >= 0:
        raise ValueError(f"{name} must be a training time >= 0 in units k eta/d^2, or inf (got {value!r})")
    return float(value)


def _input_path(name, text):
    if not text or not Path(text).exists():
        raise ValueError(f"{name}: no such file or folder: {text!r}")


SIZE, SEED = _checked(checks.positive_int, maximum=MAX_SIZE), _checked(checks.seed)
POSITIVE, OU_TIME, TAU = _checked(checks.positive_float), _checked(checks.ou_time), _checked(_tau)
OUT = _checked(lambda name, text: output_dir(text, name=name), number=False)
INPUT = _checked(_input_path, number=False)


def _call(fn, *args, **kw):
    """``fn(*args, **kw)`` with its warnings printed once each on stderr; returns (result, messages)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = fn(*args, **kw)
    msgs = list(dict.fromkeys(" ".join(str(w.message).split()) for w in caught))
    for m in msgs:
        print(f"memlab: warning: {m}", file=sys.stderr)
    return res, msgs


def _emit(a, fig, text, payload, more_files=()):
    """Print ``payload`` plus the written files as JSON (``--json``), else ``text`` and one line per file."""
    fig.close()
    files = [str(p) for p in fig.paths + tuple(more_files)]
    print(json.dumps({**to_jsonable(payload), "files": files}, indent=2) if a.json
          else "\n".join([text] + [f"wrote {p}" for p in files]))
    return 0


def _demo(out) -> int:
    from .demo import run_demo

    run_demo(out)
    return 0


def _rf_model(a, psi_p, psi_n):
    from .theory.rf_model import RFModel

    return RFModel(psi_p=psi_p, psi_n=psi_n, t=a.t, d=a.d, activation=a.activation, sigma_x=a.sigma_x,
                   center=a.center, seed=a.seed)


def _cmd_mstar(a) -> int:
    if a.K is not None and a.d is None:
        raise ValueError(f"--K {a.K} needs --d: the coupon-collector check of K uses the data dimension d "
                         "(M* itself depends on neither); pass --d too, or drop --K")
    res, _ = _call(predict_mstar, a.N, C=a.C, weighting=a.weighting, sigma2=a.sigma2, d=a.d, K=a.K)
    if a.json:
        print(json.dumps(to_jsonable(res), indent=2))
    elif res.crossover:
        print(f"M* = {res.m_star:.4f}  (M*/N = {res.ratio:.6f}, r = {res.r:.6f})  "
              f"for N={res.N}, C={res.C:g}, weighting={res.weighting}, sigma2={res.sigma2:g}")
    else:
        print(res.message)
    return 0


def _cmd_timescales(a) -> int:
    from .numerics.timescales import predict_timescales
    from .theory.rf_model import RFModel

    model = RFModel.from_sizes(a.n, a.p, a.d, a.t, activation=a.activation, sigma_x=a.sigma_x, center=a.center)
    res, _ = _call(predict_timescales, model, numeric=not a.no_numeric, engine=a.engine)
    from .demo import timescales_table

    print(json.dumps(to_jsonable(res), indent=2) if a.json else timescales_table([res]))
    return 0


def _cmd_spectrum(a) -> int:
    f, _ = _call(figures.rf_spectrum_figure, _rf_model(a, a.psi_p, a.psi_n), out=a.out)
    s = f.spectrum
    return _emit(a, f, f.summary(), dict(bulks=s.bulks, delta_weight=s.delta_weight, delta_location=s.delta_location,
                                         delta_count=f.delta_count, bulk_counts=f.bulk_counts,
                                         diagnostics=s.diagnostics))


def _cmd_plot(a) -> int:
    if a.what == "gmm-losses":
        f, _ = _call(figures.gmm_losses_figure, a.N, a.d, a.K, a.t, n_m=a.n_m, n_noise=a.n_noise, seed=a.seed,
                     out=a.out)
        return _emit(a, f, f.summary(), dict(result=f.losses, wall_s=f.wall_s))
    if a.what == "rf-curves":
        f, _ = _call(figures.rf_curves_figure, _rf_model(a, a.psi_p, a.psi_n[0]), a.psi_n, gd_d=a.gd_d,
                     gd_psi_ns=a.gd_psi_n, gd_tau_max=a.gd_tau_max, out=a.out)
        preds = [dict(psi_n=p.model.psi_n, tau_gen_formula=p.tau_gen_formula, tau_mem_formula=p.tau_mem_formula)
                 for p in f.predictions]
        return _emit(a, f, f.table(), dict(curves=f.curves, read_offs=f.read_offs, predictions=preds))
    if a.what == "rf-theory":
        f, _ = _call(figures.rf_theory_figure, _rf_model(a, a.psi_p, a.psi_n[0]), a.psi_n, marker_d=a.d, out=a.out)
        more, text, extra = (), f.table(), {}
        if a.exponent:
            e, _ = _call(figures.score_exponent_figure, _rf_model(a, a.psi_p, a.psi_n[0]), finite_d=a.d, out=a.out)
            more, text, extra = e.paths, text + "\n" + e.summary(), dict(exponent=dict(
                psi_n=e.psi_n, score_min=e.score_min, tau_min=e.tau_min, fit=e.fit, fit_finite=e.fit_finite))
            e.close()
        return _emit(a, f, text, dict(read_offs=f.read_offs, finite_read_offs=f.finite_read_offs, **extra),
                     more_files=more)
    # rf-phase: the grids replace the model's ratios, so the model is built at psi_p = psi_n = 1
    f, _ = _call(figures.rf_phase_figure, _rf_model(a, 1.0, 1.0), a.tau, psi_p_grid=a.psi_p, psi_n_grid=a.psi_n,
                 out=a.out)
    return _emit(a, f, f.summary(), dict(result=f.phase))


def _cmd_memorization(a) -> int:
    from .io import load_points

    samples, train = load_points(a.samples, name="samples"), load_points(a.train, name="train")
    if a.quantize:                                  # NaN/inf would become arbitrary bytes: refused first
        samples = checks.real_array("samples", samples, finite=True)
        samples = np.clip(np.rint(np.asarray(samples, dtype=np.float64)), 0, 255).astype(np.uint8)
    lab = Path(a.samples).name
    f, msgs = _call(figures.memorization_figure, {lab: samples}, train, k=a.k, n_boot=a.n_boot, seed=a.seed,
                    dedupe=a.dedupe, memory_limit=int(a.memory_limit_mb * 2 ** 20), out=a.out)
    r, more = f.results[lab], []
    if a.out is not None:
        more.append(Path(a.out) / "memorization_per_sample.npz")
        atomic_write(more[0], lambda fh: np.savez(fh, memorized=r.memorized, d1=r.d1, d2=r.d2, nn_index=r.nn_index))
    payload = {k: v for k, v in to_jsonable(r).items() if k not in ("memorized", "d1", "d2", "nn_index")}
    return _emit(a, f, f.summary(), {**payload, "n_memorized": r.n_memorized, "samples": a.samples, "train": a.train,
                                     "warnings": msgs}, more)


def _executor(a):
    if a.scheduler is None and a.workers is None:
        return contextlib.nullcontext()
    from .validation.runtime import executor_for

    return executor_for(a.scheduler, max_workers=a.workers)


def _log(a):
    """Progress and the time estimate: stdout, or stderr with ``--json`` (stdout is the JSON)."""
    return (lambda *x, **k: print(*x, file=sys.stderr, **k)) if a.json else print


def _cmd_validate_held(a, run):
    """``run()`` of a ``memlab validate`` command with its ``--out`` held (created, checked writable and locked
    before any training, :func:`memlab.validation.runtime.run_lock`: a second run on the same folder is refused
    at once, naming the owner's pid), every warning printed as one ``memlab: warning:`` line, and a training
    that diverged (``FloatingPointError``) reported as one ``memlab: error:`` line."""
    from .validation.runtime import run_lock

    try:
        with run_lock(a.out, name="--out"):
            return _call(run)[0]
    except FloatingPointError as exc:
        raise ValueError(f"training diverged: {exc}") from None


def _cmd_validate_gmm(a) -> int:
    over = {k: v for k, v in dict(steps=a.steps, n_noise=a.n_noise, peak_lr=a.peak_lr, t_min=a.t_min).items()
            if v is not None}
    if a.no_ema:
        over["ema"] = None
    kw = dict(protocol=a.protocol, seed=a.seed, device=a.device, dtype=a.dtype, n_samples=a.n_samples, C=a.C,
              weighting=a.weighting, threads=a.threads, workers=a.workers, log=_log(a), out=a.out, **over)

    def run():
        build = figures.capacity_sweep_figure if a.what == "gmm" else figures.sweep_grid_figure
        with _executor(a) as ex:
            return build(a.N, a.d, a.K, executor=ex, **kw)

    f = _cmd_validate_held(a, run)
    if a.what == "gmm":
        s = f.sweep
        return _emit(a, f, f.summary(), dict(N=s.N, d=s.d, K=s.K, m_pt=s.m_pt, ratio_pt=s.ratio_pt, start=s.start,
                                             end=s.end, predicted_ratio=s.mstar.ratio, flags=s.flags,
                                             prediction_note=s.prediction_note, settings=s.settings, results=s.results),
                     [Path(a.out) / "sweep.json", Path(a.out) / "sweep.csv"])
    rows = [dict(N=s.N, d=s.d, K=s.K, m_pt=s.m_pt, ratio_pt=s.ratio_pt, predicted_ratio=s.mstar.ratio, flags=s.flags)
            for s in f.sweeps]
    return _emit(a, f, f.summary(), dict(configurations=rows, settings=f.sweeps[0].settings))


def _cmd_validate_rf(a) -> int:
    from .validation.rf_torch import RFTrainConfig

    def run():  # the checkpoint resumes a killed run; removed once the results are written
        tau = (np.geomspace(min(1.0, a.tau_max), a.tau_max, a.n_taus) if a.tau_max > 0
               else np.full(a.n_taus, a.tau_max))
        config = RFTrainConfig(tau=tau, optimizer=a.optimizer, delta_tau=a.delta_tau, lr=a.lr)
        ck = Path(a.out) / "rf_checkpoint.pt"
        res = figures.rf_training_figure(_rf_model(a, a.psi_p, a.psi_n), config, device=a.device, quiet=a.json,
                                         checkpoint=ck, out=a.out)
        ck.unlink(missing_ok=True)
        return res

    f = _cmd_validate_held(a, run)
    r = f.result
    return _emit(a, f, f.summary(), dict(agreement=r.agreement, model=r.model, config=r.config,
                                         diagnostics=r.diagnostics))


def _cmd_validate_timescales(a) -> int:
    from .validation.ddpm_torch import DDPMConfig

    config = DDPMConfig(width=a.width, optimizer=a.optimizer, lr=a.lr, momentum=a.momentum, n_gen=a.n_gen,
                        n_checkpoints=a.n_checkpoints, sample_steps=a.sample_steps, seed=a.seed)

    def run():
        with _executor(a) as ex:
            return figures.timescale_study_figure(a.n, config, steps=a.steps, scale_steps=not a.same_steps, fthr=a.fthr,
                                                  out=a.out, executor=ex, threads=a.threads, device=a.device,
                                                  quiet=a.json)

    f = _cmd_validate_held(a, run)
    d = f.study.to_dict()
    d.pop("runs")
    return _emit(a, f, f.table(), d)


def _cmd_forecast(a) -> int:
    from .validation.forecast import DATASETS, ForecastConfig

    if a.data not in DATASETS and not Path(a.data).exists():
        raise ValueError(f"--data must be one of {list(DATASETS)}, a .npy/.npz file or a folder of .png images "
                         f"(got {a.data!r})")
    kw = {k: v for k, v in dict(width=a.width, channels=a.channels, lr=a.lr, n_checkpoints=a.n_checkpoints,
                                n_gen=a.n_gen, sample_steps=a.sample_steps, seed=a.seed, data_seed=a.data_seed).items()
          if v is not None}
    config = ForecastConfig(optimizer=a.optimizer, batch=a.batch or None, **kw)

    def run():
        from .forecast_plot import forecast_figure

        with _executor(a) as ex:
            return forecast_figure(a.data, a.ns, target_n=a.target_n, held_out=a.held_out or (), budget=a.budget,
                                   model=a.model, config=config, steps_per_point=a.steps_per_point, fthr=a.fthr,
                                   law=a.law, normalize=a.normalize, out=a.out, executor=ex, threads=a.threads,
                                   device=a.device, quiet=a.json)

    f = _cmd_validate_held(a, run)
    d = f.forecast.to_dict()
    d.pop("runs")
    return _emit(a, f, f.summary(), d)


def _sub(subs, name, func, help, **kw):
    sp = subs.add_parser(name, help=help, formatter_class=_HelpFormatter, **kw)
    sp.set_defaults(func=func)
    return sp


def _rf_args(sp, *, seed=True, ratios=None, d=100):
    if ratios == "one":
        sp.add_argument("--psi-p", type=POSITIVE, required=True, help="p/d")
        sp.add_argument("--psi-n", type=POSITIVE, required=True, help="n/d")
    if ratios != "sizes":
        sp.add_argument("--d", type=SIZE, default=d, help="dimension of the finite-size model")
    sp.add_argument("--t", type=OU_TIME, required=ratios is not None, default=None if ratios else 0.1,
                    help=f"OU diffusion time in (0, {checks.MAX_OU_TIME:g}]")
    if seed:
        sp.add_argument("--seed", type=SEED, default=0, help="seed of W, X, Omega")
    sp.add_argument("--activation", choices=BUILTIN_ACTIVATIONS, default="tanh", help="activation (relu and gelu "
                    "need --center)")
    sp.add_argument("--sigma-x", type=POSITIVE, default=1.0, help="data standard deviation")
    sp.add_argument("--center", action="store_true", help="use sigma(h) - mu0(t) (docs/theory/random_features.md §1)")


def _opts(sp, *specs):
    """Options from ``(flag, type, default, help)`` tuples."""
    for flag, typ, default, hlp in specs:
        sp.add_argument(flag, type=typ, default=default, help=hlp)


def _out(sp, default="memlab_out", what="output directory"):
    sp.add_argument("--out", type=OUT, default=default, help=what + " (checked before any work)")
    sp.add_argument("--json", action="store_true", help="machine-readable output")


def _run_args(sp, out_default):
    sp.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: CUDA when available)")
    sp.add_argument("--workers", type=_checked(checks.positive_int, maximum=1024), default=None, help="local worker "
                    "processes, >= 1 (default: gmm all cores, timescales and forecast in-process)")
    sp.add_argument("--threads", type=_checked(checks.positive_int, maximum=1024), default=None, help="torch threads "
                    "per worker, >= 1 (default: the cores shared among the workers; forecast in-process 1; restored "
                    "afterwards)")
    sp.add_argument("--scheduler", default=None, help="Dask scheduler address (needs memlab[dask])")
    _out(sp, out_default, "output directory (checkpoints: resumable)")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="memlab", description="Memorization vs generalization in diffusion models: capacity crossover "
                "M*, Monte Carlo losses of the GMM laboratory, random-features timescales, figures, validation.")
    sub = p.add_subparsers(dest="cmd", required=True, parser_class=_Parser, metavar="command")
    m = _sub(sub, "mstar", _cmd_mstar, "predicted capacity crossover M*", description="The capacity crossover M* "
             "(arXiv:2508.17689v1 Eq. 21, our users' \"Eq. 14\"): M* = N (1 - r/C), "
             "docs/theory/capacity_crossover.md §5.")
    m.add_argument("--N", type=SIZE, required=True, help="training-set size")
    m.add_argument("--weighting", choices=WEIGHTINGS, default="paper", help="time weighting")
    _opts(m, ("--C", POSITIVE, 2.0, "Thm 3.2 constant (the paper uses 2)"), ("--sigma2", POSITIVE, 1.0, "component "
          "variance sigma*^2"), ("--d", SIZE, None, "data dimension (enables validity diagnostics)"),
          ("--K", SIZE, None, "number of components (coupon-collector check; needs --d)"))
    m.add_argument("--json", action="store_true", help="machine-readable output")
    ts = _sub(sub, "timescales", _cmd_timescales, "tau_gen_formula, tau_mem_formula, tau_mem_spectrum, window and "
              "n* = p of a random-features score model (arXiv:2505.17638 MT §3)")
    for flag, hlp in (("--n", "training-set size"), ("--p", "number of random features"), ("--d", "data dimension")):
        ts.add_argument(flag, type=SIZE, required=True, help=hlp)
    _rf_args(ts, seed=False, ratios="sizes")
    ts.add_argument("--no-numeric", action="store_true", help="skip the solved spectrum (tau_mem_spectrum)")
    ts.add_argument("--engine", choices=("python", "numba"), default="python",
                    help="how the spectrum's kernels run: 'python' runs them uncompiled (a one-off answer: no numba "
                         "import or compiled-cache load, about 1 s), 'numba' compiled (faster per point); the two "
                         "agree to rounding")
    ts.add_argument("--json", action="store_true", help="machine-readable output")
    sp = _sub(sub, "spectrum", _cmd_spectrum, "Theorem 3.1 density of U over a finite-size eigenvalue histogram "
              "(arXiv:2505.17638 Fig. 4 analogue)")
    _rf_args(sp, ratios="one")
    _out(sp)
    pl = sub.add_parser("plot", help="figures").add_subparsers(dest="what", required=True, parser_class=_Parser,
                                                               metavar="figure")
    g = _sub(pl, "gmm-losses", _cmd_plot, "Monte Carlo excess losses vs M/N with the Thm 3.1/3.2 lines")
    for flag, v, hlp in (("--N", 200, "training-set size"), ("--d", 50, "data dimension"),
                         ("--K", 12, "mixture components"), ("--n-noise", 100, "noise draws per training point"),
                         ("--n-m", 20, "number of M values (M = k N // n_m)"), ("--seed", 0, "data seed")):
        g.add_argument(flag, type=SEED if flag == "--seed" else SIZE, default=v, help=hlp)
    g.add_argument("--t", type=_checked(checks.unit_time), default=0.36028, help="diffusion time in (0, 1) (grid "
                   "time t_16)")
    _out(g)
    rc = _sub(pl, "rf-curves", _cmd_plot, "random-features learning curves vs tau and tau/tau_mem_formula, read-offs "
              "tau_gen_score_min and tau_mem_half_rise (arXiv:2505.17638 Fig. 5 analogue)")
    rc.add_argument("--psi-n", type=POSITIVE, nargs="+", default=[4.0, 8.0, 16.0, 32.0], help="n/d values")
    rc.add_argument("--gd-psi-n", type=POSITIVE, nargs="*", default=None, help="psi_n simulated by GD (default: the "
                    "first two of --psi-n)")
    _opts(rc, ("--psi-p", POSITIVE, 64.0, "p/d"), ("--gd-d", _checked(checks.positive_int, minimum=0, maximum=MAX_SIZE),
          10, "dimension of the GD simulations (0: none)"), ("--gd-tau-max", _checked(checks.real, low=1.0,
          low_open=True), 3e4, "last GD time, > 1 (units k eta/d^2)"))
    _rf_args(rc)
    _out(rc)
    rt = _sub(pl, "rf-theory", _cmd_plot, "learning curves from the d -> infinity theory (test loss, gap, score error; "
              "docs/theory/random_features.md §9) with closed-form markers at --d (Fig. 5 analogue)")
    rt.add_argument("--psi-n", type=POSITIVE, nargs="+", default=[2.0, 4.0, 8.0, 16.0], help="n/d values")
    rt.add_argument("--psi-p", type=POSITIVE, default=64.0, help="p/d")
    rt.add_argument("--exponent", action="store_true", help="also the minimum score error against psi_n = 4..16 "
                    "and its decay exponent (theory and closed form at --d, 3 seeds)")
    _rf_args(rt)
    _out(rt)
    rp = _sub(pl, "rf-phase", _cmd_plot, "heat map of L_gen over (psi_n, psi_p) at fixed tau with the "
              "tau_mem_formula and tau_gen_formula boundaries (arXiv:2505.17638 Fig. 5C analogue)")
    rp.add_argument("--psi-p", type=POSITIVE, nargs="+", default=[4, 8, 16, 32, 64, 128], help="p/d grid")
    rp.add_argument("--psi-n", type=POSITIVE, nargs="+", default=[1, 2, 4, 8, 16, 32, 64, 128], help="n/d grid")
    rp.add_argument("--tau", type=TAU, nargs="+", default=[1e3, 1e4], help="training times >= 0 (units k eta/d^2; "
                    "inf: the end of training)")
    _rf_args(rp, d=16)
    _out(rp)
    mm = _sub(sub, "memorization", _cmd_memorization, "memorization fraction of generated samples: nearest / "
              "second-nearest rule d1 < k d2 (arXiv:2310.02664) with an exact (Clopper-Pearson) CI")
    mm.add_argument("--samples", type=INPUT, required=True, help="generated samples: .npy, .npz or a folder of .png "
                    "images (a 1-D array is one sample)")
    mm.add_argument("--train", type=INPUT, required=True, help="training set: .npy, .npz or a folder of .png images")
    _opts(mm, ("--k", _checked(checks.probability), 1.0 / 3.0, "ratio threshold in (0, 1) (strict)"),
          ("--seed", SEED, 0, "bootstrap seed"), ("--n-boot", _checked(checks.positive_int, minimum=0,
          maximum=10 ** 6), 1000, "resamples of the papers' percentile bootstrap, reported too (0: none)"),
          ("--memory-limit-mb", _checked(checks.real, low=1.0, high=1e9), 1024.0, "working-memory bound of the "
          "search (MiB)"))
    mm.add_argument("--dedupe", action="store_true", help="drop exact duplicate training rows first")
    mm.add_argument("--quantize", action="store_true", help="round and clip samples to uint8 0..255 (images)")
    _out(mm, None, "directory for the ratio figure and per-sample results")
    dm = _sub(sub, "demo", lambda a: _demo(a.out), "M* tables, GMM-laboratory figures, random-features "
              "timescales, spectrum, learning curves and phase diagram (about a minute on 2 cores)")
    dm.add_argument("--out", type=OUT, default="memlab_out", help="output directory for figures (checked first)")
    vsub = sub.add_parser("validate", help="validation against trained models (PyTorch)").add_subparsers(
        dest="what", required=True, parser_class=_Parser)
    for name, hlp in (("gmm", "train GMM denoisers over M, measure the memorization transition vs M* "
                       "(arXiv:2508.17689v1 Fig. 2 analogue)"),
                      ("gmm-sweep", "the (N, d, K) configuration sweep: M_pt/N vs predicted M*/N")):
        vp = _sub(vsub, name, _cmd_validate_gmm, hlp)
        many = dict(nargs="+") if name == "gmm-sweep" else {}
        for flag, one, grid, h in (("--N", 200, [50, 100, 150, 200], "training-set size"),
                                   ("--d", 50, [30, 40, 50, 60], "data dimension"),
                                   ("--K", 12, [3, 6, 9, 12], "mixture components")):
            vp.add_argument(flag, type=int, default=grid if many else one, help=h, **many)
        vp.add_argument("--protocol", choices=("paper", "cpu-quick"), default="paper", help="training protocol "
                        "(docs/theory/validation.md §2; default: paper); --steps, --n-noise, --peak-lr, --t-min and "
                        "--no-ema override its settings, which are their defaults")
        _opts(vp, ("--steps", int, None, "Adam steps per model"), ("--n-noise", int, None, "noise draws per point "
              "per step"), ("--peak-lr", float, None, "peak learning rate"), ("--t-min", float, None, "train on "
              "grid times >= t_min"), ("--C", float, 2.0, "Thm 3.2 constant of the drawn M* prediction"),
              ("--n-samples", int, 50, "DDIM samples per model"), ("--seed", int, 0, "seed of data, "
              "initialisation, draws and sampler"))
        vp.add_argument("--no-ema", action="store_true", help="disable the update EMA")
        vp.add_argument("--weighting", choices=WEIGHTINGS, default="paper", help="weighting of the drawn M* prediction")
        vp.add_argument("--dtype", choices=("float32", "float64"), default="float32", help="torch dtype")
        _run_args(vp, "memlab_validation")
    vt = _sub(vsub, "timescales", _cmd_validate_timescales, "tau_gen_* and tau_mem_onset of a small DDPM on a 2-mode "
              "Gaussian mixture (d = 8) across training-set sizes n (docs/theory/validation.md §4)")
    vt.add_argument("--n", type=int, nargs="+", default=[16, 32, 64, 128], help="training-set sizes")
    vt.add_argument("--steps", type=int, default=None, help="training horizon of the largest n (optimizer updates); "
                    "default 1000 n_max (SGD) or 100 n_max (Adam)")
    vt.add_argument("--same-steps", action="store_true", help="train every n for --steps (default: horizon "
                    "proportional to n on one checkpoint grid)")
    vt.add_argument("--optimizer", choices=("sgd", "adam"), default="sgd", help="full-batch SGD with momentum or Adam")
    _opts(vt, ("--width", int, 128, "residual-MLP width W"), ("--lr", float, None, "learning rate (default 6e-3 SGD, "
          "1e-3 Adam)"), ("--momentum", float, 0.95, "SGD momentum"), ("--n-checkpoints", int, 30, "log-spaced "
          "checkpoints up to --steps"), ("--n-gen", int, 1000, "generated samples per checkpoint"),
          ("--sample-steps", int, 1000, "ancestral sampling steps (<= T = 1000)"), ("--fthr", float, 0.05,
          "memorization-fraction level of tau_mem_onset"), ("--seed", int, 0, "initialisation and training-noise seed"))
    _run_args(vt, "memlab_timescales")
    rv = _sub(vsub, "rf", _cmd_validate_rf, "random-features score model trained in PyTorch vs the closed-form "
              "learning curves on the same W and data (docs/theory/validation.md §3)")
    _opts(rv, ("--psi-p", float, 8.0, "p/d"), ("--psi-n", float, 2.0, "n/d"), ("--tau-max", float, 2e4, "last logged "
          "time (units k eta/d^2)"), ("--n-taus", int, 30, "log-spaced logging times"), ("--delta-tau", float, None,
          "GD step in tau units (default 1e-2 psi_p/Delta_t)"), ("--lr", float, None, "Adam learning rate (default "
          "1e-3)"), ("--device", str, None, "cpu, cuda or cuda:N (default: CUDA when available)"))
    rv.add_argument("--optimizer", choices=("gd", "adam"), default="gd", help="full-batch GD or Adam")
    _rf_args(rv, d=20)
    _out(rv, "memlab_rf_training")
    fc = _sub(sub, "forecast", _cmd_forecast, "forecast memorization for your model and data: tau_mem on small "
              "nested training sets, the fit tau_mem = a n^gamma, the forecast at --target-n, the largest n "
              "memorizing within --budget (docs/theory/validation.md §5; PyTorch)")
    fc.add_argument("--data", required=True, help="bundled dataset name (digits: scikit-learn's 8x8 images, needs "
                    "memlab[digits]), a .npy/.npz file or a folder of .png images")
    fc.add_argument("--ns", type=_checked(checks.positive_int, minimum=2, maximum=MAX_SIZE), nargs="+", required=True,
                    help="small training-set sizes to train and fit")
    fc.add_argument("--target-n", type=_checked(checks.positive_int, minimum=2, maximum=MAX_SIZE), default=None,
                    help="size to forecast (default: the whole dataset)")
    fc.add_argument("--held-out", type=_checked(checks.positive_int, minimum=2, maximum=MAX_SIZE), nargs="*",
                    default=None, help="sizes to train and measure but not fit (a test of the forecast)")
    fc.add_argument("--budget", type=SIZE, default=None, help="training budget in optimizer steps")
    fc.add_argument("--model", choices=("mlp", "conv"), default="mlp", help="residual MLP or a small conv net (images)")
    fc.add_argument("--optimizer", choices=("adam", "sgd"), default="adam", help="Adam or SGD with momentum 0.9")
    fc.add_argument("--law", choices=("power", "linear", "rf"), default="power", help="tau_mem = a n^gamma, a n, or "
                    "the random-features shape a / (sqrt(n_c / n) - 1)^2 with n_c = p / D")
    fc.add_argument("--normalize", choices=("auto", "range", "standardize", "none"), default="auto",
                    help="data normalisation (auto: known range to [-1, 1] for images, else standardise)")
    _opts(fc, ("--lr", POSITIVE, None, "learning rate (default 4e-3 Adam, 6e-3 SGD)"),
          ("--batch", _checked(checks.positive_int, minimum=0, maximum=MAX_SIZE), None, "mini-batch size (default "
           "and 0: full batch)"),
          ("--width", SIZE, None, "residual-MLP width (default 128)"), ("--channels", SIZE, None, "conv channels "
           "(default 32)"), ("--steps-per-point", _checked(checks.positive_float, maximum=1e7), None, "horizon per "
           "training point (default 80 Adam, 800 SGD)"),
          ("--n-checkpoints", _checked(checks.positive_int, minimum=3, maximum=10_000), None, "log-spaced checkpoints "
           "(default 32)"), ("--n-gen", _checked(checks.positive_int, minimum=8, maximum=MAX_SIZE), None, "generated "
           "samples per checkpoint (default 500)"), ("--sample-steps", _checked(checks.positive_int, minimum=2,
           maximum=1000), None, "ancestral sampling steps (default 100)"),
          ("--fthr", _checked(checks.probability), 0.05, "memorization-fraction level of tau_mem"),
          ("--seed", SEED, None, "initialisation and training-noise seed (default 0)"),
          ("--data-seed", SEED, None, "seed of the data permutation (default 0)"))
    _run_args(fc, "memlab_forecast")
    _sub(sub, "cite", lambda a: print(cite()) or 0, "print the references")
    return p


def _warn(message, category, *args, **kw):  # a warning raised outside _call: one line too
    print(f"memlab: warning: {' '.join(str(message).split())}", file=sys.stderr)


def main(argv=None) -> int:
    """Run ``memlab`` with ``argv`` (default ``sys.argv[1:]``) and return the exit status (2: bad input)."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help (0), or a refused value whose one line argparse has printed (2)
        return 0 if exc.code is None else exc.code
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _warn
            return args.func(args)
    except (ValueError, TypeError, OSError, MemoryError) as exc:
        what = "not enough memory: " if isinstance(exc, MemoryError) else ""
        print(f"memlab: error: {what}{' '.join(str(exc).split())}", file=sys.stderr)
    except RuntimeError as exc:  # the library's checks of its own results (e.g. a spectrum solver that failed)
        if not type(exc).__module__.startswith("memlab."):
            raise
        print(f"memlab: error: {' '.join(str(exc).split())}", file=sys.stderr)
    except FloatingPointError as exc:  # numpy errstate(raise) in a computation that overflowed or diverged
        print(f"memlab: error: floating-point error: {' '.join(str(exc).split())}", file=sys.stderr)
    except ModuleNotFoundError as exc:  # pragma: no cover - the validation layer without PyTorch
        print(f"memlab: error: {exc}; memlab validate needs PyTorch: pip install 'memlab[torch]'", file=sys.stderr)
    except KeyboardInterrupt:
        print("memlab: interrupted (runs that checkpoint resume when the same command is run again)", file=sys.stderr)
        return 130
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
