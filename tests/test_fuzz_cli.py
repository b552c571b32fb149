"""Fuzz of the command line: bad values of every option of every command except ``memlab validate ...``.

The contract (README "Command line"): a bad value exits with status 2 and exactly one stderr line,
``memlab: error: ...``, that names the option (``--psi-p``) or the API parameter it becomes (``psi_p``); nothing
on stdout, no traceback, nothing written.  Commands run in-process (``memlab.cli.main(argv)`` returns the exit
status) so that hundreds of command lines take seconds; a few run as real subprocesses.  The bad values are drawn
by hypothesis per option from the option's allowed range: NaN and infinities, zero, negatives, values past the
upper bound, non-integral numbers for integers, non-numeric and empty text, unknown choices, missing,
unreadable or wrong-format files, and output folders that cannot be created or written.  Every command line
fails while parsing or validating, before any computation, so the slow commands (``demo``, ``plot``) only see
values that fail fast.

Cases per command: one hypothesis test per option, ``EXAMPLES`` = 20 draws each (57 options, 1,140 command
lines): mstar 6 options (120), timescales 7 (140), spectrum 8 (160), plot gmm-losses 8 (160), plot rf-curves 11
(220), plot rf-phase 9 (180), memorization 7 (140, plus 15 wrong-format files as --samples and as --train and a
--quantize case), demo 1 (--out, 20); plus 6 combinations refused by the library, 4 refusals by argparse itself,
and 5 real subprocess runs.  ``test_catalogue_covers_every_option`` fails when an option is added without bad values.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import re
import subprocess
import sys
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import memlab
from memlab.cli import MAX_SIZE, main
from memlab.theory.activations import BUILTIN_ACTIVATIONS
from memlab.theory.checks import MAX_OU_TIME, MAX_SEED
from memlab.theory.crossover import WEIGHTINGS

EXAMPLES = 20  # hypothesis draws per option


def cli(argv):
    """``memlab argv`` in-process: (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main([str(a) for a in argv])
    return rc, out.getvalue(), err.getvalue()


def named(line, name):
    """``name`` (``--psi-p`` or ``psi_p``) appears in ``line`` as a word of its own ("t" not inside "must")."""
    return re.search(rf"(^|[^\w-]){re.escape(name)}(?![\w-])", line) is not None


def assert_refused(argv, *names):
    rc, out, err = cli(argv)
    lines = err.splitlines()
    assert rc == 2, (argv, rc, err)
    assert len(lines) == 1 and lines[0].startswith("memlab: error: "), (argv, err)
    assert "Traceback" not in err and out == "", (argv, out)
    assert any(named(lines[0], n) for n in names), (argv, lines[0], names)
    return lines[0]


# ---------------------------------------------------------------------------------------------- bad values
def _is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


_TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12)
NON_NUMERIC = st.one_of(st.just(""), st.just(" "), st.just("1,5"), st.just("2x"), st.just("0x10"),
                        _TEXT.filter(lambda s: not _is_number(s)))
NON_FINITE = st.sampled_from(["nan", "NaN", "-nan", "inf", "-inf", "+inf", "Infinity", "-Infinity", "1e999",
                              "-1e999"])


def _float_text(lo=None, hi=None, **kw):
    return st.floats(min_value=lo, max_value=hi, allow_nan=False, **kw).map(repr)


def _non_integral():
    return st.floats(allow_nan=False, allow_infinity=False).filter(lambda x: not x.is_integer()).map(repr)


def bad_int(lo, hi):
    """Integers outside [lo, hi], non-integral and non-finite numbers, text."""
    return st.one_of(st.integers(max_value=lo - 1).map(str), st.integers(min_value=hi + 1, max_value=10 ** 40).map(str),
                     _non_integral(), NON_FINITE, NON_NUMERIC)


def bad_real(lo=None, hi=None, *, lo_open=False, hi_open=False):
    """Reals outside the interval (inf and -inf always: only finite values are allowed), NaN, text."""
    parts = [NON_FINITE, NON_NUMERIC]
    if lo is not None:
        parts.append(_float_text(hi=lo, exclude_max=not lo_open))
    if hi is not None:
        parts.append(_float_text(lo=hi, exclude_min=not hi_open))
    return st.one_of(parts)


def bad_choice(choices):
    return st.one_of(st.sampled_from([c.upper() for c in choices] + [c + " " for c in choices] + [""]),
                     _TEXT.filter(lambda s: s not in choices))


SIZE = bad_int(1, MAX_SIZE)
SEED = bad_int(0, MAX_SEED)
POSITIVE = bad_real(0.0, lo_open=True)
TAU = st.one_of(_float_text(hi=0.0, exclude_max=True), st.sampled_from(["nan", "-inf", "-1e999"]),
                NON_NUMERIC.filter(lambda s: not _is_number(s)))
KINDS = {
    "size": SIZE, "seed": SEED, "positive": POSITIVE, "tau": TAU,
    "size0": bad_int(0, MAX_SIZE), "n_boot": bad_int(0, 10 ** 6),
    "ou_time": bad_real(0.0, MAX_OU_TIME, lo_open=True),
    "unit": bad_real(0.0, 1.0, lo_open=True, hi_open=True),
    "gd_tau_max": bad_real(1.0, lo_open=True),
    "mib": bad_real(1.0, 1e9),
    "activation": bad_choice(BUILTIN_ACTIVATIONS), "weighting": bad_choice(WEIGHTINGS),
    "engine": bad_choice(("python", "numba")),
}


# ---------------------------------------------------------------------------------------------- the commands
@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Valid inputs, an output folder that must never be created, and the wrong-format files."""
    d = tmp_path_factory.mktemp("fuzz_cli")
    rng = np.random.default_rng(0)
    np.save(d / "train.npy", rng.standard_normal((30, 4)))
    np.save(d / "samples.npy", rng.standard_normal((6, 4)))
    (d / "regular_file").write_text("x")
    bad = d / "bad"
    bad.mkdir()
    np.save(bad / "scalar.npy", np.float64(3.0))
    np.save(bad / "strings.npy", np.array(["a", "b"]))
    np.save(bad / "objects.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    np.save(bad / "complex.npy", np.ones((5, 4), dtype=complex))
    np.save(bad / "nan.npy", np.full((5, 4), np.nan))
    np.save(bad / "inf.npy", np.full((5, 4), np.inf))
    np.save(bad / "empty.npy", np.zeros((0, 4)))
    np.save(bad / "other_dim.npy", np.zeros((5, 7)))
    np.save(bad / "three_d_other_dim.npy", np.zeros((5, 2, 3)))
    np.savez(bad / "two.npz", a=np.zeros((3, 4)), b=np.zeros((3, 4)))
    (bad / "broken.npy").write_bytes(b"\x93NUMPY garbage")
    (bad / "text.txt").write_text("1 2 3\n")
    (bad / "no_png").mkdir()
    (bad / "no_png" / "a.jpg").write_bytes(b"")
    (bad / "broken_png").mkdir()
    (bad / "broken_png" / "a.png").write_bytes(b"not a png")
    if hasattr(os, "mkfifo"):
        os.mkfifo(bad / "fifo.npy")  # reading it would block forever: refused as not a regular file
    return d


def _bases(f):
    out = f / "never_created"
    return {
        "mstar": ["mstar", "--N", "200", "--d", "50"],
        "timescales": ["timescales", "--n", "800", "--p", "6400", "--d", "100", "--t", "0.1", "--no-numeric"],
        "spectrum": ["spectrum", "--psi-p", "16", "--psi-n", "4", "--t", "0.05", "--d", "10", "--out", out],
        "gmm-losses": ["plot", "gmm-losses", "--N", "20", "--d", "5", "--K", "2", "--n-noise", "2", "--n-m", "2",
                       "--out", out],
        "rf-curves": ["plot", "rf-curves", "--psi-p", "8", "--psi-n", "2", "--d", "5", "--gd-d", "0", "--out", out],
        "rf-phase": ["plot", "rf-phase", "--psi-p", "4", "--psi-n", "1", "--tau", "10", "--d", "4", "--out", out],
        "rf-theory": ["plot", "rf-theory", "--psi-p", "4", "--psi-n", "2", "--d", "4", "--out", out],
        "memorization": ["memorization", "--samples", f / "samples.npy", "--train", f / "train.npy", "--n-boot", "10"],
        "demo": ["demo", "--out", out],
    }


_RF = [("--d", "size"), ("--t", "ou_time"), ("--activation", "activation"), ("--sigma-x", "positive")]
OPTIONS = {
    "mstar": [("--N", "size"), ("--C", "positive"), ("--sigma2", "positive"), ("--d", "size"), ("--K", "size"),
              ("--weighting", "weighting")],
    "timescales": [("--n", "size"), ("--p", "size"), ("--engine", "engine")] + _RF,
    "spectrum": [("--psi-p", "positive"), ("--psi-n", "positive"), ("--seed", "seed"), ("--out", "out")] + _RF,
    "gmm-losses": [("--N", "size"), ("--d", "size"), ("--K", "size"), ("--n-noise", "size"), ("--n-m", "size"),
                   ("--seed", "seed"), ("--t", "unit"), ("--out", "out")],
    "rf-curves": [("--psi-n", "positive"), ("--gd-psi-n", "positive"), ("--psi-p", "positive"), ("--gd-d", "size0"),
                  ("--gd-tau-max", "gd_tau_max"), ("--seed", "seed"), ("--out", "out")] + _RF,
    "rf-phase": [("--psi-p", "positive"), ("--psi-n", "positive"), ("--tau", "tau"), ("--seed", "seed"),
                 ("--out", "out")] + _RF,
    "rf-theory": [("--psi-n", "positive"), ("--psi-p", "positive"), ("--seed", "seed"), ("--out", "out")] + _RF,
    "memorization": [("--samples", "input"), ("--train", "input"), ("--k", "unit"), ("--seed", "seed"),
                     ("--n-boot", "n_boot"), ("--memory-limit-mb", "mib"), ("--out", "out")],
    "demo": [("--out", "out")],
}
CASES = [(cmd, opt, kind) for cmd, opts in OPTIONS.items() for opt, kind in opts]
MULTI = {("rf-curves", "--psi-n"), ("rf-curves", "--gd-psi-n"), ("rf-phase", "--psi-p"), ("rf-phase", "--psi-n"),
         ("rf-phase", "--tau"), ("rf-theory", "--psi-n")}


def _path_strategy(kind, f):
    name = st.text(st.characters(whitelist_categories=("Ll", "Lu", "Nd")), min_size=1, max_size=8)
    if kind == "out":   # a path through a regular file, /dev/null, a read-only or virtual file system, empty text
        virtual = [name.map(lambda s: f"/proc/{s}/x")] if os.path.isdir("/proc/self") else []   # Linux
        return st.one_of(name.map(lambda s: str(f / "regular_file" / s)), st.just(str(f / "regular_file")),
                         name.map(lambda s: f"/dev/null/{s}"), *virtual, st.sampled_from(["", " "]))
    return st.one_of(name.map(lambda s: str(f / "missing" / f"{s}.npy")), st.just(""))   # input: missing


def _argv(base, cmd, opt, value, inline):
    argv = [str(a) for a in base]
    if opt in argv:                                   # drop the valid value of the option (and its list)
        i = argv.index(opt)
        j = i + 1
        while j < len(argv) and not argv[j].startswith("--"):
            j += 1
        del argv[i:j]
    if inline or (cmd, opt) not in MULTI:
        argv += [f"{opt}={value}"] if inline else [opt, value]
    else:                                             # a bad entry after a good one in a list
        argv += [opt, "2", value]
    return argv


@pytest.mark.parametrize("cmd", list(OPTIONS))
def test_catalogue_covers_every_option(files, cmd):
    """Every option that takes a value (as ``--help`` lists it) has its bad values here: none is forgotten when an
    option is added.  65 (command, option) pairs in all."""
    argv = _bases(files)[cmd]
    rc, out, _ = cli(argv[:2 if argv[0] == "plot" else 1] + ["--help"])
    takes_value = set(re.findall(r"^  (--[\w-]+) [A-Z{[]", out, flags=re.M))
    assert rc == 0 and takes_value == {o for o, _ in OPTIONS[cmd]}
    assert len(CASES) == 65


@pytest.mark.parametrize("cmd,opt,kind", CASES, ids=[f"{c}{o}" for c, o, _ in CASES])
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_bad_value_is_refused_on_one_line(files, cmd, opt, kind, data):
    strategy = _path_strategy(kind, files) if kind in ("out", "input") else KINDS[kind]
    value = data.draw(strategy, label="value")
    inline = data.draw(st.booleans(), label="inline")
    argv = _argv(_bases(files)[cmd], cmd, opt, value, inline)
    names = [opt, opt.lstrip("-").replace("-", "_")]
    if (cmd, opt) in MULTI and not inline and value.startswith("-"):
        names.append(value)     # "--psi-n 2 -nan": argparse ends the list at "-nan" and names that token
    assert_refused(argv, *names)
    assert not (files / "never_created").exists()    # checked, not created


@pytest.mark.parametrize("name,names", [
    ("scalar.npy", ["samples"]), ("strings.npy", ["samples"]), ("objects.npy", ["samples"]),
    ("complex.npy", ["samples"]), ("nan.npy", ["samples"]), ("inf.npy", ["samples"]), ("empty.npy", ["samples"]),
    ("other_dim.npy", ["samples", "train"]), ("three_d_other_dim.npy", ["samples", "train"]),
    ("two.npz", ["samples"]), ("broken.npy", ["samples"]), ("text.txt", ["samples"]), ("no_png", ["samples"]),
    ("broken_png", ["samples"]), ("fifo.npy", ["samples"]),
])
@pytest.mark.parametrize("role", ["--samples", "--train"])
def test_wrong_format_file_is_refused(files, name, names, role):
    if name == "fifo.npy" and not hasattr(os, "mkfifo"):
        pytest.skip("no named pipes on this platform")
    argv = _bases(files)["memorization"]
    argv[argv.index(role) + 1] = files / "bad" / name
    names = [n if role == "--samples" or n != "samples" else "train" for n in names]
    assert_refused(argv + ["--out", files / "never_created"], role, *names)
    assert not (files / "never_created").exists()


def test_quantize_refuses_non_finite_samples(files):
    argv = _bases(files)["memorization"]
    argv[argv.index("--samples") + 1] = files / "bad" / "nan.npy"
    assert_refused(argv + ["--quantize"], "samples", "--samples")


@pytest.mark.parametrize("argv,names", [
    (["mstar", "--N", "200", "--K", "12"], ["--K", "--d"]),                       # --K without --d
    (["spectrum", "--psi-p", "1e6", "--psi-n", "1e6", "--t", "0.1", "--d", "1000"], ["psi_p", "d"]),   # memory
    (["plot", "rf-curves", "--psi-p", "0.01", "--d", "10", "--gd-d", "0"], ["d"]),  # p rounds to 0
    (["plot", "rf-phase", "--d", "1", "--psi-p", "0.1", "--tau", "1"], ["d"]),
    (["timescales", "--n", "10", "--p", "100", "--d", "10", "--t", "0.1", "--activation", "relu"], ["center"]),
    (["plot", "rf-curves", "--psi-p", "8", "--psi-n", "2", "--d", "5", "--gd-d", "10", "--gd-psi-n", "0.01"], ["d"]),
])
def test_values_refused_by_the_library_on_one_line(tmp_path, argv, names):
    """Each value is valid alone; together they reach the library, whose error names its parameter."""
    if argv[0] in ("spectrum", "plot"):
        argv = argv + ["--out", tmp_path / "o"]
    assert_refused(argv, *names)


def test_no_command_and_unknown_option(files):
    assert_refused([], "command")
    assert_refused(["mstar", "--N", "200", "--bogus", "1"], "--bogus")
    assert_refused(["mstar", "--N", "200", "extra\nline"], "extra")   # one line even for a value with a newline
    assert_refused(["mstar", "--N"], "--N")


# ---------------------------------------------------------------------------------------------- output folders
def test_output_dir_checks_without_creating(tmp_path):
    from memlab.io import output_dir

    (tmp_path / "file").write_text("x")
    new = tmp_path / "a" / "b" / "c"
    assert output_dir(new) == new and not (tmp_path / "a").exists()   # creatable: accepted, nothing made
    assert output_dir(str(tmp_path)) == tmp_path
    for bad in (tmp_path / "file", tmp_path / "file" / "sub", "", "   "):
        with pytest.raises(ValueError, match=r"^out\b"):
            output_dir(bad)
    with pytest.raises(TypeError, match="out must be a folder path"):
        output_dir(3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_atomic_write_replaces_whole_or_not_at_all(tmp_path):
    from memlab.io import atomic_write

    target = tmp_path / "f.bin"
    atomic_write(target, lambda f: f.write(b"old"))

    def half(f):
        f.write(b"new, half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, half)
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["f.bin"]


def test_figure_builders_and_demo_refuse_an_unwritable_out_before_any_work(tmp_path, monkeypatch):
    import memlab.figures as figures
    from memlab.demo import run_demo

    (tmp_path / "file").write_text("x")
    bad = tmp_path / "file" / "out"

    def no_work(*a, **k):
        raise AssertionError("computed before checking out")

    for name in ("gmm_excess_losses", "rf_spectrum", "rf_learning_curves", "rf_phase_diagram", "memorization_fraction",
                 "sample_gmm"):
        monkeypatch.setattr(figures, name, no_work)
    model = memlab.RFModel(8, 2, 0.1, d=8)
    calls = [lambda: figures.gmm_losses_figure(20, 5, 2, out=bad), lambda: figures.rf_spectrum_figure(model, out=bad),
             lambda: figures.rf_curves_figure(model, out=bad),
             lambda: figures.rf_phase_figure(model, [10.0], psi_p_grid=[4], psi_n_grid=[1], out=bad),
             lambda: figures.memorization_figure(np.zeros((2, 3)), np.eye(3), out=bad),
             lambda: figures.gmm_memorization_figure(20, 5, 2, out=bad)]
    for call in calls:
        with pytest.raises(ValueError, match="cannot be an output folder"):
            call()
    printed = []
    with pytest.raises(ValueError, match="cannot be an output folder"):
        run_demo(bad, print=printed.append)
    assert printed == []


# ---------------------------------------------------------------------------------------------- warnings
def test_warnings_are_one_line_each(files, monkeypatch):
    """A warning with a line break, raised inside or outside the library call, prints as one line."""
    import memlab.io as mio

    real = mio.load_points

    def noisy(*a, **k):
        warnings.warn("first line\n  second line", UserWarning)
        return real(*a, **k)

    monkeypatch.setattr(mio, "load_points", noisy)
    rc, out, err = cli(_bases(files)["memorization"] + ["--json"])
    assert rc == 0, err
    lines = err.splitlines()
    assert lines and all(ln.startswith("memlab: warning: ") for ln in lines), err
    assert "memlab: warning: first line second line" in lines
    rc, out, err = cli(["timescales", "--n", "1000", "--p", "500", "--d", "100", "--t", "0.1", "--no-numeric"])
    assert rc == 0 and err.splitlines() and all(ln.startswith("memlab: warning: ") for ln in err.splitlines())


# ---------------------------------------------------------------------------------------------- accepted shapes
@given(shape=st.sampled_from([(6,), (1, 6), (4, 6), (4, 2, 3), (2, 3, 1, 2)]), seed=st.integers(0, 2 ** 16))
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_memorization_accepts_what_the_api_accepts(tmp_path_factory, shape, seed):
    """A 1-D array is one sample and 3-D or more are flattened per row, as memorization_fraction reads them."""
    d = tmp_path_factory.mktemp("shapes")
    rng = np.random.default_rng(seed)
    train = rng.standard_normal((40, 6))
    rows = rng.standard_normal((int(np.prod(shape)) // 6, 6))
    rows[0] = train[seed % 40] + 1e-6                 # one memorized sample, the others (almost surely) not
    np.save(d / "s.npy", rows.reshape(shape))
    np.save(d / "t.npy", train)
    rc, out, err = cli(["memorization", "--samples", d / "s.npy", "--train", d / "t.npy", "--n-boot", "20", "--json"])
    assert rc == 0, err
    api = memlab.memorization_fraction(rows.reshape(shape) if len(shape) < 3 else rows, train, n_boot=20)
    res = json.loads(out)
    assert res["n_samples"] == api.n_samples == len(rows) and res["fraction"] == api.fraction
    assert (res["ci_low"], res["ci_high"]) == (api.ci_low, api.ci_high) and res["n_memorized"] >= 1


# ---------------------------------------------------------------------------------------------- real processes
def _run(*args, cwd=None):
    env = {"MPLBACKEND": "Agg", "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    return subprocess.run([sys.executable, "-m", "memlab", *map(str, args)], capture_output=True, text=True,
                          timeout=300, env=env, cwd=cwd)


@pytest.mark.parametrize("args,name", [
    (["spectrum", "--psi-p", "inf", "--psi-n", "8", "--t", "0.01"], "--psi-p"),
    (["spectrum", "--psi-p", "nan", "--psi-n", "8", "--t", "0.01"], "--psi-p"),
    (["plot", "gmm-losses", "--n-m", "-1"], "--n-m"),
    (["mstar", "--N", "200", "--K", "12"], "--K"),
])
def test_issue_examples_in_a_real_process(tmp_path, args, name):
    r = _run(*args, cwd=tmp_path)
    lines = r.stderr.splitlines()
    assert r.returncode == 2 and len(lines) == 1 and lines[0].startswith("memlab: error: "), r.stderr
    assert named(lines[0], name) and r.stdout == "" and list(tmp_path.iterdir()) == []


def test_memorization_memory_limit_inf_and_1d_in_a_real_process(files, tmp_path):
    np.save(tmp_path / "one.npy", np.load(files / "train.npy")[3] + 1e-9)   # one sample, a copy of a training point
    r = _run("memorization", "--samples", files / "samples.npy", "--train", files / "train.npy",
             "--memory-limit-mb", "inf")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and named(r.stderr, "--memory-limit-mb"), r.stderr
    r = _run("memorization", "--samples", tmp_path / "one.npy", "--train", files / "train.npy", "--json")
    assert r.returncode == 0, r.stderr
    api = memlab.memorization_fraction(np.load(tmp_path / "one.npy"), np.load(files / "train.npy"))
    out = json.loads(r.stdout)
    assert out["n_samples"] == 1 and out["fraction"] == api.fraction == 1.0 and not math.isnan(out["fraction"])
