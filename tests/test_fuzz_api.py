"""Fuzz suite of the public API: every parameter of every entry point in ``memlab.__all__`` gets bad values.

The contract (memlab.theory.checks): a bad value raises a ``ValueError`` or ``TypeError`` whose message names the
parameter -- never another exception type, never numpy's ``ComplexWarning`` or raw conversion message, never a
returned result (a bad value that is silently accepted fails), never a hang (each call runs under a 20 s alarm
and every valid argument around the bad one is tiny).

Bad values come from hypothesis strategies per kind of parameter (sizes, seeds, reals, times, probabilities,
choices, booleans, thread counts, arrays of a given shape, objects of a given class): wrong types (strings,
bytes, None, complex numbers, booleans, lists, dicts), NaN and infinities, negative, zero, huge, non-whole,
complex and boolean arrays, strings in arrays, ragged nested lists, wrong shapes and empty arrays.  Result
dataclasses, constants and functions without parameters (``paper_grid``, ``cite``, ``derive_crossover``,
``derive_rf``) are not fuzzed.
"""

from __future__ import annotations

import math
import re
import signal
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import memlab
from memlab import RFModel

EXAMPLES = 50                    # hypothesis examples per (entry point, parameter)
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])
CALL_TIMEOUT_S = 20

NAN, INF = float("nan"), float("inf")

# ------------------------------------------------------------------------------------------ strategies
# values of the wrong type for any numeric parameter
WRONG_TYPE = st.one_of(
    st.none(), st.text(max_size=4), st.binary(min_size=1, max_size=3), st.booleans(),
    st.complex_numbers(max_magnitude=10, allow_nan=False, allow_infinity=False).filter(lambda z: z.imag != 0),
    st.sampled_from([[1], {}, {"a": 1}, (2, 3), object(), np.array([1.0, 2.0]), "1", "0.5", b"1"]),
)
NON_FINITE = st.sampled_from([NAN, INF, -INF, np.float64(NAN), np.float32(INF)])
NEGATIVE = st.one_of(st.integers(max_value=-1), st.floats(max_value=-1e-300, allow_nan=False, allow_infinity=False))
HUGE_FLOAT = st.sampled_from([1e300, 1e200, 1.7e308])


def sizes_bad(minimum=1, huge=True, beyond=True):
    """Bad values for an integer count >= ``minimum``: wrong types, non-finite, below the minimum, non-whole,
    beyond 2**53 (unless ``beyond`` is False: a cap such as a memory limit may be any large integer) and, with
    ``huge``, whole numbers whose arrays no machine holds."""
    parts = [WRONG_TYPE, NON_FINITE, st.integers(max_value=minimum - 1),
             st.floats(min_value=minimum + 0.01, max_value=1e6).filter(lambda x: not float(x).is_integer())]
    if beyond:
        parts.append(st.sampled_from([1e300, 10 ** 30, 2 ** 63, 2.0 ** 60]))
    if huge:
        parts.append(st.sampled_from([10 ** 15, 2 ** 52, 10 ** 14 + 3]))
    return st.one_of(*parts)


SEED_BAD = st.one_of(WRONG_TYPE, NON_FINITE, NEGATIVE, st.sampled_from([2 ** 64, 10 ** 30, 2.5, 1e300]))


def reals_bad(low=None, high=None, *, low_open=True, high_open=False, extra=()):
    """Bad values for a finite real in an interval: wrong types, non-finite, and numbers outside it."""
    parts = [WRONG_TYPE, NON_FINITE]
    if low is not None:
        parts.append(st.floats(max_value=low, allow_nan=False, allow_infinity=False).filter(
            lambda x: x < low or (low_open and x == low)))
    if high is not None:
        parts.append(st.floats(min_value=high, allow_nan=False, allow_infinity=False).filter(
            lambda x: x > high or (high_open and x == high)))
    if extra:
        parts.append(st.sampled_from(list(extra)))
    return st.one_of(*parts)


POSITIVE_BAD = reals_bad(0.0, extra=(0, 0.0, -0.0))
UNIT_TIME_BAD = reals_bad(0.0, 1.0, high_open=True, extra=(0, 1, 1.0))
OU_TIME_BAD = reals_bad(0.0, 50.0, extra=(0, 1e300, 51))


def _float_dtype_name(s) -> bool:
    """Whether numpy reads ``s`` as the name of float32 or float64 (``"d"``, ``"f8"``, ``"double"``, ...)."""
    try:
        return np.dtype(s) in (np.float32, np.float64)
    except Exception:  # noqa: BLE001 - numpy's dtype parser raises SyntaxError, TypeError, ValueError, ...
        return False


def choice_bad(options):
    return st.one_of(st.none(), st.integers(), st.floats(allow_nan=True), st.booleans(),
                     st.text(max_size=6).filter(lambda s: s not in options),
                     st.sampled_from([[options[0]], (options[0],), options[0].upper() + "x", " " + options[0]]))


BOOL_BAD = st.one_of(st.none(), st.integers(), st.floats(allow_nan=True), st.text(max_size=5),
                     st.sampled_from(["True", "False", "abc", "", [True], (False,), np.array([True, False])]))
THREADS_BAD = st.one_of(st.integers(max_value=0), st.integers(min_value=1025, max_value=10 ** 12), st.booleans(),
                        st.text(max_size=3), st.floats(allow_nan=True).filter(lambda x: not float(x).is_integer()),
                        st.sampled_from([1.5, NAN, INF, "2", [2], 1j]))


def objects_bad(cls_name):
    """Values that are not an instance of the expected class."""
    return st.one_of(st.none(), st.integers(), st.floats(allow_nan=True), st.text(max_size=5),
                     st.sampled_from([[1, 2], {}, np.zeros((3, 3)), object(), 1j, cls_name]))


@st.composite
def arrays_bad(draw, shape, *, allow_any_rows=True):
    """Bad arrays for a parameter of shape ``shape`` (``None`` = any length >= 1): complex, boolean, strings,
    ragged, wrong rank, wrong width, empty, NaN, inf, None, a bare string, a number."""
    dims = [draw(st.integers(1, 3)) if s is None else s for s in shape]
    good = np.asarray(draw(st.lists(st.floats(-3, 3), min_size=int(np.prod(dims)), max_size=int(np.prod(dims)))),
                      dtype=np.float64).reshape(dims)
    kind = draw(st.sampled_from(["complex", "bool", "strings", "ragged", "rank_up", "rank_down", "width", "empty",
                                 "nan", "inf", "none", "string", "object_none", "complex_list"]))
    if kind == "complex":
        return good + 1j * draw(st.floats(0.1, 2.0))
    if kind == "complex_list":
        return [complex(v, 1.0) for v in good.reshape(-1)]
    if kind == "bool":
        return good > 0
    if kind == "strings":
        return good.astype(str)
    if kind == "ragged":
        return [list(range(k + 1)) for k in range(3)]
    if kind == "rank_up":
        return good[..., None, None]
    if kind == "rank_down":   # a scalar for a 1-D parameter; a flat array that fits no (n, d) for a 2-D one
        return good.reshape(-1)[0] if good.ndim == 1 else good.reshape(-1)[:max(1, good.size - 1)]
    if kind == "width":
        if len(shape) >= 1 and shape[-1] is not None:
            return np.zeros(dims[:-1] + [dims[-1] + draw(st.integers(1, 3))])
        return good[..., None, None]
    if kind == "empty":
        return np.empty([0] + dims[1:])
    if kind in ("nan", "inf"):
        flat = good.reshape(-1).copy()
        flat[draw(st.integers(0, flat.size - 1))] = NAN if kind == "nan" else draw(st.sampled_from([INF, -INF]))
        return flat.reshape(good.shape)
    if kind == "none":
        return None
    if kind == "object_none":
        return [None] * dims[0]
    return "abc"


@st.composite
def times_bad(draw, *, allow_inf=False, low=0.0, strict_low=False, high=None):
    """Bad 1-D time sequences: negative/NaN entries (and infinite ones unless allowed), complex, strings,
    ragged, booleans, empty, 2-D, None."""
    base = draw(st.lists(st.floats(1.0, 100.0), min_size=1, max_size=3))
    kind = draw(st.sampled_from(["negative", "nan", "complex", "string", "strings", "ragged", "bool", "empty",
                                 "none", "2d", "dict"] + ([] if allow_inf else ["inf"])
                                + (["zero"] if strict_low else []) + (["high"] if high is not None else [])))
    if kind == "negative":
        return base + [draw(st.floats(max_value=low - 1e-9, min_value=-1e300))]
    if kind == "nan":
        return base + [NAN]
    if kind == "inf":
        return base + [INF]
    if kind == "zero":
        return base + [0.0]
    if kind == "high":
        return base + [high + draw(st.floats(0.0, 10.0))]
    if kind == "complex":
        return [complex(b, 1.0) for b in base]
    if kind == "string":
        return "1, 2"
    if kind == "strings":
        return [str(b) for b in base]
    if kind == "ragged":
        return [[1.0, 2.0], [3.0]]
    if kind == "bool":
        return [True, False]
    if kind == "empty":
        return []
    if kind == "none":
        return None
    if kind == "dict":
        return {"tau": 1.0}
    return [base, base]


# ------------------------------------------------------------------------------------------ the contract
class _CallTimeout(Exception):
    pass


def _alarm(signum, frame):
    raise _CallTimeout(f"no answer within {CALL_TIMEOUT_S} s")


def _has_nan(obj, depth=0) -> bool:
    """Whether a returned result holds a NaN (in arrays, floats or dataclass fields)."""
    if depth > 3:
        return False
    if isinstance(obj, float):
        return math.isnan(obj)
    if isinstance(obj, np.ndarray) and obj.dtype.kind == "f":
        return bool(np.isnan(obj).any())
    if hasattr(obj, "__dataclass_fields__"):
        return any(_has_nan(getattr(obj, f), depth + 1) for f in obj.__dataclass_fields__ if f != "diagnostics")
    return False


def assert_clear_error(call, param, value):
    """``call()`` must raise a ValueError/TypeError that names ``param`` (or one of a tuple of names); anything
    else fails."""
    names = param if isinstance(param, tuple) else (param,)
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, CALL_TIMEOUT_S)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            warnings.simplefilter("error", np.exceptions.ComplexWarning)
            result = call()
    except (ValueError, TypeError) as exc:
        msg = str(exc)
        assert any(re.search(rf"(?<![A-Za-z0-9_]){re.escape(p)}(?![A-Za-z0-9_])", msg) for p in names), (
            f"{type(exc).__name__} for {param}={value!r} does not name {param!r}: {msg}")
        for raw in ("could not convert string to float", "setting an array element with a sequence",
                    "Casting complex values"):
            assert raw not in msg, f"raw numpy message for {param}={value!r}: {msg}"
        return
    except _CallTimeout:
        pytest.fail(f"{param}={value!r}: no answer within {CALL_TIMEOUT_S} s")
    except Exception as exc:  # noqa: BLE001 - the point of the test
        pytest.fail(f"{param}={value!r} raised {type(exc).__name__} (not ValueError/TypeError): {exc}")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    assert not _has_nan(result), f"{param}={value!r} returned NaN in {type(result).__name__}"
    pytest.fail(f"{param}={value!r} was accepted (returned {type(result).__name__})")


# ------------------------------------------------------------------------------------------ tiny valid inputs
RNG = np.random.default_rng(0)
TRAIN = RNG.standard_normal((6, 3)) * 2.0
SAMPLES = RNG.standard_normal((4, 3)) * 2.0
MEANS = RNG.standard_normal((3, 3))
DATA = memlab.sample_gmm(6, 3, 2, n_heldout=2, seed=0)
DEN = memlab.memorizing_denoiser(TRAIN)
MODEL = RFModel(psi_p=4, psi_n=2, t=0.1, d=5)


@pytest.fixture(scope="module")
def curves():
    return memlab.rf_learning_curves(MODEL, [0.0, 1.0, 10.0, 100.0, INF])


@pytest.fixture(scope="module")
def mats():
    with warnings.catch_warnings():  # the Mehler series of a d = 5 model: a validity warning, not under test here
        warnings.simplefilter("ignore", memlab.MemlabValidityWarning)
        return memlab.true_feature_matrices(MODEL)


def _rf_test_loss():
    """The asymptotic test-loss entry points (through memlab when exported there)."""
    from memlab.numerics import rf_test_loss
    return memlab if hasattr(memlab, "asymptotic_losses") else rf_test_loss


def _measure(size):
    return min(1.0, 2.0 / size)


# (entry point, parameter, strategy, call(bad_value)); fixtures are passed as ``ctx``
CASES = [
    # capacity crossover
    ("predict_mstar", "N", sizes_bad(huge=False), lambda v, c: memlab.predict_mstar(v)),
    ("predict_mstar", "C", POSITIVE_BAD, lambda v, c: memlab.predict_mstar(10, C=v)),
    ("predict_mstar", "sigma2", POSITIVE_BAD, lambda v, c: memlab.predict_mstar(10, sigma2=v)),
    ("predict_mstar", "weighting", st.one_of(choice_bad(("paper", "uniform", "noise")).filter(
        lambda v: not isinstance(v, (list, tuple))), arrays_bad((26,))),
     lambda v, c: memlab.predict_mstar(10, weighting=v)),
    ("predict_mstar", "times", st.one_of(times_bad(high=1.0, strict_low=True).filter(lambda v: v is not None),
                                         st.sampled_from(["grid", "cont"])),
     lambda v, c: memlab.predict_mstar(10, times=v, weighting="uniform")),
    ("predict_mstar", "d", sizes_bad(huge=False).filter(lambda v: v is not None),
     lambda v, c: memlab.predict_mstar(10, d=v)),
    ("predict_mstar", "K", sizes_bad(huge=False).filter(lambda v: v is not None),
     lambda v, c: memlab.predict_mstar(10, d=5, K=v)),
    # GMM laboratory
    ("sample_gmm", "N", sizes_bad(), lambda v, c: memlab.sample_gmm(v, 3, 2, n_heldout=2)),
    ("sample_gmm", "d", sizes_bad(), lambda v, c: memlab.sample_gmm(6, v, 2, n_heldout=2)),
    ("sample_gmm", "K", sizes_bad(), lambda v, c: memlab.sample_gmm(6, 3, v, n_heldout=2)),
    ("sample_gmm", "sigma2", POSITIVE_BAD, lambda v, c: memlab.sample_gmm(6, 3, 2, sigma2=v, n_heldout=2)),
    ("sample_gmm", "n_heldout", sizes_bad(), lambda v, c: memlab.sample_gmm(6, 3, 2, n_heldout=v)),
    ("sample_gmm", "seed", SEED_BAD, lambda v, c: memlab.sample_gmm(6, 3, 2, n_heldout=2, seed=v)),
    ("gmm_excess_losses", "N", sizes_bad(), lambda v, c: memlab.gmm_excess_losses(v, 3, 2, 0.3, [1], n_noise=2)),
    ("gmm_excess_losses", "d", sizes_bad(), lambda v, c: memlab.gmm_excess_losses(6, v, 2, 0.3, [1], n_noise=2)),
    ("gmm_excess_losses", "K", sizes_bad(), lambda v, c: memlab.gmm_excess_losses(6, 3, v, 0.3, [1], n_noise=2)),
    ("gmm_excess_losses", "t", UNIT_TIME_BAD, lambda v, c: memlab.gmm_excess_losses(6, 3, 2, v, [1], n_noise=2)),
    ("gmm_excess_losses", "Ms", st.one_of(st.lists(sizes_bad(huge=False), min_size=1, max_size=2),
                                          st.sampled_from([[], None, "abc", [7], [[1, 2]], [[1, 2], [3]], 7])),
     lambda v, c: memlab.gmm_excess_losses(6, 3, 2, 0.3, v, n_noise=2)),
    ("gmm_excess_losses", "sigma2", POSITIVE_BAD,
     lambda v, c: memlab.gmm_excess_losses(6, 3, 2, 0.3, [1], sigma2=v, n_noise=2)),
    ("gmm_excess_losses", "n_noise", sizes_bad(minimum=2),
     lambda v, c: memlab.gmm_excess_losses(6, 3, 2, 0.3, [1], n_noise=v)),
    ("gmm_excess_losses", "seed", SEED_BAD, lambda v, c: memlab.gmm_excess_losses(6, 3, 2, 0.3, [1], n_noise=2, seed=v)),
    ("gmm_excess_losses", "subset", choice_bad(("first", "random")),
     lambda v, c: memlab.gmm_excess_losses(6, 3, 2, 0.3, [1], n_noise=2, subset=v)),
    ("gmm_excess_losses", "threads", THREADS_BAD,
     lambda v, c: memlab.gmm_excess_losses(6, 3, 2, 0.3, [1], n_noise=2, threads=v)),
    ("training_loss", "denoiser", objects_bad("GMMDenoiser"), lambda v, c: memlab.training_loss(v, TRAIN, 0.3, n_noise=2)),
    ("training_loss", "points", arrays_bad((None, 3)), lambda v, c: memlab.training_loss(DEN, v, 0.3, n_noise=2)),
    ("training_loss", "t", UNIT_TIME_BAD, lambda v, c: memlab.training_loss(DEN, TRAIN, v, n_noise=2)),
    ("training_loss", "n_noise", sizes_bad(minimum=2), lambda v, c: memlab.training_loss(DEN, TRAIN, 0.3, n_noise=v)),
    ("training_loss", "seed", SEED_BAD, lambda v, c: memlab.training_loss(DEN, TRAIN, 0.3, n_noise=2, seed=v)),
    ("training_loss", "threads", THREADS_BAD, lambda v, c: memlab.training_loss(DEN, TRAIN, 0.3, n_noise=2, threads=v)),
    ("GMMDenoiser", "means", arrays_bad((None, None)), lambda v, c: memlab.GMMDenoiser(v)),
    ("GMMDenoiser", "sigma2", reals_bad(0.0, low_open=False), lambda v, c: memlab.GMMDenoiser(MEANS, v)),
    ("GMMDenoiser", "name", st.one_of(st.none(), st.integers(), st.sampled_from([b"x", ["a"], 1.5])),
     lambda v, c: memlab.GMMDenoiser(MEANS, 0.0, v)),
    ("GMMDenoiser", "schedule", choice_bad(("gmm", "ou", "edm", "vp")), lambda v, c: memlab.GMMDenoiser(MEANS, 0.0, "x", v)),
    ("GMMDenoiser.predict", "t", UNIT_TIME_BAD, lambda v, c: DEN.predict(v, SAMPLES)),
    ("GMMDenoiser.predict", "x", arrays_bad((None, 3)).filter(lambda v: not (isinstance(v, np.ndarray) and v.size == 0)),
     lambda v, c: DEN.predict(0.3, v)),
    ("GMMDenoiser.score", "t", UNIT_TIME_BAD, lambda v, c: DEN.score(v, SAMPLES)),
    ("gmm_denoiser", "means", arrays_bad((None, None)), lambda v, c: memlab.gmm_denoiser(v, 0.5)),
    ("gmm_denoiser", "sigma2", reals_bad(0.0, low_open=False), lambda v, c: memlab.gmm_denoiser(MEANS, v)),
    ("generalizing_denoiser", "data", objects_bad("GMMData"), lambda v, c: memlab.generalizing_denoiser(v)),
    ("memorizing_denoiser", "train", arrays_bad((None, None)), lambda v, c: memlab.memorizing_denoiser(train=v)),
    ("pmem_denoiser", "train", arrays_bad((None, None)), lambda v, c: memlab.pmem_denoiser(v, 1)),
    ("pmem_denoiser", "M", st.one_of(sizes_bad(huge=False), st.just(7)), lambda v, c: memlab.pmem_denoiser(TRAIN, v)),
    ("pmem_denoiser", "subset", choice_bad(("first", "random")), lambda v, c: memlab.pmem_denoiser(TRAIN, 2, subset=v)),
    ("pmem_denoiser", "seed", SEED_BAD.filter(lambda v: v is not None),
     lambda v, c: memlab.pmem_denoiser(TRAIN, 2, subset="random", seed=v)),
    ("optimal_denoiser", "train", arrays_bad((None, None)), lambda v, c: memlab.optimal_denoiser(v)),
    ("optimal_denoiser", "schedule", choice_bad(("gmm", "ou", "edm", "vp")), lambda v, c: memlab.optimal_denoiser(TRAIN, v)),
    ("ddim_sample", "denoiser", objects_bad("GMMDenoiser"), lambda v, c: memlab.ddim_sample(v, 2, n_steps=3)),
    ("ddim_sample", "n_samples", sizes_bad(), lambda v, c: memlab.ddim_sample(DEN, v, n_steps=3)),
    ("ddim_sample", "times", st.one_of(times_bad(high=1.0).filter(lambda v: v is not None),
                                       st.sampled_from([[0.5], [0.2, 0.5], [0.5, 0.5]])),
     lambda v, c: memlab.ddim_sample(DEN, 2, times=v)),
    ("ddim_sample", "n_steps", sizes_bad().filter(lambda v: v is not None), lambda v, c: memlab.ddim_sample(DEN, 2, n_steps=v)),
    ("ddim_sample", "seed", SEED_BAD, lambda v, c: memlab.ddim_sample(DEN, 2, n_steps=3, seed=v)),
    ("sample_optimal", "train", arrays_bad((None, None)), lambda v, c: memlab.sample_optimal(v, 2, n_steps=3)),
    ("sample_optimal", "n_samples", sizes_bad(), lambda v, c: memlab.sample_optimal(TRAIN, v, n_steps=3)),
    ("sample_optimal", "schedule", choice_bad(("gmm", "ou", "edm", "vp")),
     lambda v, c: memlab.sample_optimal(TRAIN, 2, schedule=v, n_steps=3)),
    ("sample_optimal", "times", st.one_of(times_bad(high=1.0).filter(lambda v: v is not None),
                                          st.sampled_from([[0.5], [0.2, 0.5]])),
     lambda v, c: memlab.sample_optimal(TRAIN, 2, times=v)),
    ("sample_optimal", "n_steps", sizes_bad().filter(lambda v: v is not None), lambda v, c: memlab.sample_optimal(TRAIN, 2, n_steps=v)),
    ("sample_optimal", "seed", SEED_BAD, lambda v, c: memlab.sample_optimal(TRAIN, 2, n_steps=3, seed=v)),
    # random features
    ("RFModel", "psi_p", st.one_of(POSITIVE_BAD, HUGE_FLOAT), lambda v, c: RFModel(v, 2, 0.1, d=5)),
    ("RFModel", "psi_n", st.one_of(POSITIVE_BAD, HUGE_FLOAT), lambda v, c: RFModel(4, v, 0.1, d=5)),
    ("RFModel", "t", OU_TIME_BAD, lambda v, c: RFModel(4, 2, v, d=5)),
    ("RFModel", "d", sizes_bad(huge=False), lambda v, c: RFModel(4, 2, 0.1, d=v)),
    ("RFModel", "activation", st.one_of(st.none(), st.integers(), st.text(max_size=5).filter(
        lambda s: s not in ("tanh", "erf", "relu", "gelu")),
        st.sampled_from([lambda x: x * NAN, lambda x: "a", lambda x: x[:1], lambda x: 1 / 0])),
     lambda v, c: RFModel(4, 2, 0.1, d=5, activation=v)),
    ("RFModel", "sigma_x", reals_bad(1e-8, 1e8, low_open=False, extra=(0, -1.0, 1e300)).filter(lambda v: v is not None),
     lambda v, c: RFModel(4, 2, 0.1, d=5, sigma_x=v)),
    ("RFModel", "center", BOOL_BAD, lambda v, c: RFModel(4, 2, 0.1, d=5, center=v)),
    ("RFModel", "seed", SEED_BAD.filter(lambda v: v is not None), lambda v, c: RFModel(4, 2, 0.1, d=5, seed=v)),
    ("RFModel", "covariance", st.one_of(st.sampled_from([(1.0,), "ab", 3, ([1.0], [1.0], [1.0])]),
                                        st.tuples(arrays_bad((2,)), st.just([0.5, 0.5]))),
     lambda v, c: RFModel(4, 2, 0.1, d=4, covariance=v)),
    ("RFModel.from_sizes", "n", sizes_bad(huge=False), lambda v, c: RFModel.from_sizes(v, 20, 5, 0.1)),
    ("RFModel.from_sizes", "p", sizes_bad(huge=False), lambda v, c: RFModel.from_sizes(10, v, 5, 0.1)),
    ("gep_matrices", "psi_p", st.sampled_from([1e12, 1e15, 2.0 ** 52]),
     lambda v, c: memlab.gep_matrices(RFModel(v, 2, 0.1, d=5), dense=False)),
    ("true_feature_matrices", "psi_n", st.sampled_from([1e12, 1e15, 2.0 ** 52]),
     lambda v, c: memlab.true_feature_matrices(RFModel(4, v, 0.1, d=5))),
    ("gep_constants", "t", OU_TIME_BAD, lambda v, c: memlab.gep_constants(v)),
    ("gep_constants", "activation", st.one_of(st.none(), st.integers(), st.text(max_size=4).filter(
        lambda s: s not in ("tanh", "erf", "relu", "gelu"))), lambda v, c: memlab.gep_constants(0.1, activation=v)),
    ("gep_constants", "sigma_x", reals_bad(1e-8, 1e8, low_open=False, extra=(0, 1e300)),
     lambda v, c: memlab.gep_constants(0.1, sigma_x=v)),
    ("gep_constants", "center", BOOL_BAD, lambda v, c: memlab.gep_constants(0.1, center=v)),
    ("gep_constants", "n_nodes", sizes_bad(minimum=20).filter(lambda v: v is not None), lambda v, c: memlab.gep_constants(0.1, n_nodes=v)),
    ("gep_matrices", "model", objects_bad("RFModel"), lambda v, c: memlab.gep_matrices(v)),
    ("gep_matrices", "dense", BOOL_BAD, lambda v, c: memlab.gep_matrices(MODEL, dense=v)),
    ("gep_matrices", "p", st.sampled_from([2.0 ** 40, 1e9, 3e7]),
     lambda v, c: memlab.gep_matrices(RFModel(v / 5, 2, 0.1, d=5))),
    ("true_feature_matrices", "model", objects_bad("RFModel"), lambda v, c: memlab.true_feature_matrices(v)),
    ("true_feature_matrices", "method", choice_bad(("mehler", "monte_carlo")),
     lambda v, c: memlab.true_feature_matrices(MODEL, method=v)),
    ("true_feature_matrices", "n_noise", sizes_bad(),
     lambda v, c: memlab.true_feature_matrices(MODEL, method="monte_carlo", n_noise=v)),
    ("true_feature_matrices", "k_max", sizes_bad(), lambda v, c: memlab.true_feature_matrices(MODEL, k_max=v)),
    ("true_feature_matrices", "n_nodes", sizes_bad(minimum=8), lambda v, c: memlab.true_feature_matrices(MODEL, n_nodes=v)),
    ("true_feature_matrices", "tol", POSITIVE_BAD, lambda v, c: memlab.true_feature_matrices(MODEL, tol=v)),
    ("true_feature_matrices", "n_noise", st.integers(1, 999), lambda v, c: memlab.true_feature_matrices(MODEL, n_noise=v)),
    ("rf_learning_curves", "model", objects_bad("RFModel"), lambda v, c: memlab.rf_learning_curves(v, [1.0])),
    ("rf_learning_curves", "tau", times_bad(allow_inf=True), lambda v, c: memlab.rf_learning_curves(MODEL, v)),
    ("rf_learning_curves", "method", choice_bad(("gep", "features", "asymptotic", "gd")),
     lambda v, c: memlab.rf_learning_curves(MODEL, [1.0], method=v)),
    ("rf_learning_curves", "delta_tau", st.one_of(POSITIVE_BAD.filter(lambda v: v is not None), st.floats(1e-3, 1.0)),
     lambda v, c: memlab.rf_learning_curves(MODEL, [1.0], delta_tau=v)),
    ("rf_learning_curves", "noise", st.one_of(choice_bad(("exact", "fresh")), st.just("fresh")),
     lambda v, c: memlab.rf_learning_curves(MODEL, [1.0], noise=v)),
    ("rf_learning_curves", "threads", THREADS_BAD, lambda v, c: memlab.rf_learning_curves(MODEL, [1.0], threads=v)),
    # asymptotic test loss (numerics/rf_test_loss.py; docs/theory/random_features.md §9)
    ("asymptotic_losses", "model", st.one_of(objects_bad("RFModel"), st.just(RFModel(4, 2, 0.1, covariance=(
        [0.5, 1.5], [0.5, 0.5])))), lambda v, c: _rf_test_loss().asymptotic_losses(v, [1.0])),
    ("asymptotic_losses", "tau", times_bad(allow_inf=True), lambda v, c: _rf_test_loss().asymptotic_losses(MODEL, v)),
    ("asymptotic_losses", "n_nodes", sizes_bad(minimum=8, huge=False),
     lambda v, c: _rf_test_loss().asymptotic_losses(MODEL, [1.0], n_nodes=v)),
    ("asymptotic_losses", "tol", POSITIVE_BAD, lambda v, c: _rf_test_loss().asymptotic_losses(MODEL, [1.0], tol=v)),
    ("asymptotic_losses", "max_doublings", sizes_bad(minimum=0, huge=False),
     lambda v, c: _rf_test_loss().asymptotic_losses(MODEL, [1.0], max_doublings=v)),
    ("two_point_trace", "model", objects_bad("RFModel"), lambda v, c: _rf_test_loss().two_point_trace(v, 1j, 1j)),
    ("two_point_trace", "z1", st.one_of(WRONG_TYPE.filter(lambda v: not isinstance(v, (complex, np.ndarray))),
                                        NON_FINITE, st.sampled_from([[], [1j, "a"], [[1j], [1j, 2j]], 1.0, [0.5, 1j]])),
     lambda v, c: _rf_test_loss().two_point_trace(MODEL, v, 1j)),
    ("two_point_trace", "z2", st.one_of(WRONG_TYPE.filter(lambda v: not isinstance(v, (complex, np.ndarray))),
                                        NON_FINITE, st.sampled_from([[], [1j, "a"], 1.0, [0.5, 1j]])),
     lambda v, c: _rf_test_loss().two_point_trace(MODEL, 1j, v)),
    ("rf_learning_curves(gd)", "tau", st.one_of(times_bad(), st.sampled_from([[1.0, 1e300], [1e15], [0.5, 1e12]])),
     lambda v, c: memlab.rf_learning_curves(MODEL, v, method="gd")),
    ("rf_learning_curves(gd)", "delta_tau", st.one_of(POSITIVE_BAD.filter(lambda v: v is not None),
                                                      st.sampled_from([1e3, 1e6, 1e300])),
     lambda v, c: memlab.rf_learning_curves(MODEL, [1.0], method="gd", delta_tau=v)),
    ("rf_phase_diagram", "model", objects_bad("RFModel"),
     lambda v, c: memlab.rf_phase_diagram(v, [10.0], psi_p_grid=[4], psi_n_grid=[2])),
    ("rf_phase_diagram", "tau", times_bad(allow_inf=True),
     lambda v, c: memlab.rf_phase_diagram(MODEL, v, psi_p_grid=[4], psi_n_grid=[2])),
    ("rf_phase_diagram", "psi_p_grid", st.one_of(times_bad(strict_low=True), st.just([1e300])),
     lambda v, c: memlab.rf_phase_diagram(MODEL, [10.0], psi_p_grid=v, psi_n_grid=[2])),
    ("rf_phase_diagram", "psi_n_grid", st.one_of(times_bad(strict_low=True), st.just([1e300])),
     lambda v, c: memlab.rf_phase_diagram(MODEL, [10.0], psi_p_grid=[4], psi_n_grid=v)),
    ("read_off_timescales", "curves", objects_bad("LearningCurves"), lambda v, c: memlab.read_off_timescales(v)),
    ("read_off_timescales", "mem_fraction", UNIT_TIME_BAD,
     lambda v, c: memlab.read_off_timescales(c["curves"], mem_fraction=v)),
    ("simulate_gd", "mats", objects_bad("TrueFeatureMatrices"), lambda v, c: memlab.simulate_gd(v, [1.0])),
    ("simulate_gd", "tau", st.one_of(times_bad(strict_low=True), st.sampled_from([[1e300], [1e15]])),
     lambda v, c: memlab.simulate_gd(c["mats"], v)),
    ("simulate_gd", "delta_tau", st.one_of(POSITIVE_BAD.filter(lambda v: v is not None), st.just(1e6)),
     lambda v, c: memlab.simulate_gd(c["mats"], [1.0], delta_tau=v)),
    ("simulate_gd", "noise", choice_bad(("exact", "fresh")), lambda v, c: memlab.simulate_gd(c["mats"], [1.0], noise=v)),
    ("simulate_gd", "seed", SEED_BAD.filter(lambda v: v is not None),
     lambda v, c: memlab.simulate_gd(c["mats"], [1.0], seed=v)),
    ("simulate_gd", "checkpoint", st.one_of(st.integers(), st.floats(), st.sampled_from([[1], b"\x00", object()])),
     lambda v, c: memlab.simulate_gd(c["mats"], [1.0], checkpoint=v)),
    ("simulate_gd", "checkpoint_every_s", reals_bad(0.0, low_open=False),
     lambda v, c: memlab.simulate_gd(c["mats"], [1.0], checkpoint_every_s=v)),
    ("simulate_gd", "threads", THREADS_BAD, lambda v, c: memlab.simulate_gd(c["mats"], [1.0], threads=v)),
    ("thread_budget", "threads", THREADS_BAD, lambda v, c: memlab.thread_budget(v)),
    # random features: spectrum and timescales (numerics/rf_spectrum.py, numerics/timescales.py)
    ("rf_spectrum", "model", objects_bad("RFModel"), lambda v, c: memlab.rf_spectrum(v)),
    ("rf_spectrum", "lambdas", st.one_of(arrays_bad((None,)).filter(
        lambda v: v is not None and not isinstance(v, (int, float, np.number))),
                                         times_bad(strict_low=True).filter(lambda v: v is not None)),
     lambda v, c: memlab.rf_spectrum(MODEL, lambdas=v)),
    ("rf_spectrum", "n_grid", sizes_bad(), lambda v, c: memlab.rf_spectrum(MODEL, n_grid=v)),
    ("rf_spectrum", "n_mass", sizes_bad(), lambda v, c: memlab.rf_spectrum(MODEL, n_mass=v)),
    ("rf_spectrum", "eps_rel", st.one_of(POSITIVE_BAD, st.sampled_from([1.0, 1e-20, 0.5])),
     lambda v, c: memlab.rf_spectrum(MODEL, eps_rel=v)),
    ("rf_spectrum", "threads", THREADS_BAD, lambda v, c: memlab.rf_spectrum(MODEL, threads=v)),
    ("rf_spectrum", "engine", choice_bad(("numba", "python")), lambda v, c: memlab.rf_spectrum(MODEL, engine=v)),
    ("rf_spectrum", "check", BOOL_BAD, lambda v, c: memlab.rf_spectrum(MODEL, check=v)),
    ("predict_timescales", "model", objects_bad("RFModel"), lambda v, c: memlab.predict_timescales(v)),
    ("predict_timescales", "numeric", BOOL_BAD, lambda v, c: memlab.predict_timescales(MODEL, numeric=v)),
    ("predict_timescales", "engine", choice_bad(("numba", "python")),
     lambda v, c: memlab.predict_timescales(MODEL, engine=v)),
    # memorization metrics (numerics/memorization.py) and file input (memlab/io.py)
    ("memorization_fraction", "samples", arrays_bad((None, 3)), lambda v, c: memlab.memorization_fraction(v, TRAIN, n_boot=10)),
    ("memorization_fraction", "train", arrays_bad((None, 3)), lambda v, c: memlab.memorization_fraction(SAMPLES, v, n_boot=10)),
    ("memorization_fraction", "k", st.one_of(POSITIVE_BAD, st.sampled_from([1.5, 2.0, 1e300])),
     lambda v, c: memlab.memorization_fraction(SAMPLES, TRAIN, k=v, n_boot=10)),
    ("memorization_fraction", "n_boot", sizes_bad(minimum=0), lambda v, c: memlab.memorization_fraction(SAMPLES, TRAIN, n_boot=v)),
    ("memorization_fraction", "seed", SEED_BAD, lambda v, c: memlab.memorization_fraction(SAMPLES, TRAIN, n_boot=10, seed=v)),
    ("memorization_fraction", "level", UNIT_TIME_BAD,
     lambda v, c: memlab.memorization_fraction(SAMPLES, TRAIN, n_boot=10, level=v)),
    ("memorization_fraction", "dedupe", BOOL_BAD,
     lambda v, c: memlab.memorization_fraction(SAMPLES, TRAIN, n_boot=10, dedupe=v)),
    ("memorization_fraction", "dtype", st.one_of(st.integers(), st.text(max_size=5).filter(
        lambda s: not _float_dtype_name(s)), st.sampled_from([np.int32, "complex128", 1j])),
     lambda v, c: memlab.memorization_fraction(SAMPLES, TRAIN, n_boot=10, dtype=v)),
    ("memorization_fraction", "memory_limit", sizes_bad(huge=False, beyond=False),
     lambda v, c: memlab.memorization_fraction(SAMPLES, TRAIN, n_boot=10, memory_limit=v)),
    ("memorization_fraction", "threads", THREADS_BAD,
     lambda v, c: memlab.memorization_fraction(SAMPLES, TRAIN, n_boot=10, threads=v)),
    ("nearest_two", "samples", arrays_bad((None, 3)), lambda v, c: memlab.nearest_two(v, TRAIN)),
    ("nearest_two", "train", arrays_bad((None, 3)), lambda v, c: memlab.nearest_two(SAMPLES, v)),
    ("nearest_two", "dtype", st.one_of(st.integers(), st.text(max_size=5).filter(
        lambda s: not _float_dtype_name(s))), lambda v, c: memlab.nearest_two(SAMPLES, TRAIN, dtype=v)),
    ("nearest_two", "memory_limit", sizes_bad(huge=False, beyond=False), lambda v, c: memlab.nearest_two(SAMPLES, TRAIN, memory_limit=v)),
    ("nearest_two", "threads", THREADS_BAD, lambda v, c: memlab.nearest_two(SAMPLES, TRAIN, threads=v)),
    ("estimate_emm", "measure", objects_bad("callable").filter(lambda v: not callable(v)),
     lambda v, c: memlab.estimate_emm(v, [2, 4])),
    ("estimate_emm", "sizes", st.one_of(st.lists(sizes_bad(huge=False), min_size=1, max_size=2),
                                        st.sampled_from([[], None, "abc", [2, 2], [[1, 2], [3]]])),
     lambda v, c: memlab.estimate_emm(_measure, v)),
    ("estimate_emm", "threshold", reals_bad(0.0, 1.0, extra=(0, 1.5)),
     lambda v, c: memlab.estimate_emm(_measure, [2, 4], threshold=v)),
    ("estimate_emm", "refine", BOOL_BAD, lambda v, c: memlab.estimate_emm(_measure, [2, 4], refine=v)),
    ("estimate_emm", "max_refine", sizes_bad(minimum=0, huge=False, beyond=False), lambda v, c: memlab.estimate_emm(_measure, [2, 4], max_refine=v)),
    ("estimate_emm", "measure", st.sampled_from([lambda s: NAN, lambda s: "x", lambda s: 1j, lambda s: -1.0,
                                                 lambda s: 2.0, lambda s: None]),
     lambda v, c: memlab.estimate_emm(v, [2, 4])),
    ("load_points", "path", st.one_of(st.none(), st.integers(), st.floats(), st.sampled_from(
        ["", "/nonexistent/x.npy", "\x00", "/dev/null", "a" * 5000, ["x.npy"]])),
     lambda v, c: memlab.load_points(v)),
    ("load_points", "name", st.one_of(st.none(), st.integers(), st.sampled_from([b"x", ["a"], 1.5])),
     lambda v, c: memlab.load_points("/nonexistent/x.npy", name=v)),
    ("load_points", "key", st.one_of(st.integers(), st.sampled_from([b"x", ["a"], 1.5, "missing"])),
     lambda v, c: memlab.load_points(c["npz"], key=v)),
]

IDS = [f"{name}-{param}-{i}" for i, (name, param, _, _) in enumerate(CASES)]


@pytest.fixture(scope="module")
def ctx(curves, mats, tmp_path_factory):
    npz = tmp_path_factory.mktemp("fuzz") / "points.npz"
    np.savez(npz, points=TRAIN, other=SAMPLES)
    return {"curves": curves, "mats": mats, "npz": str(npz)}


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_bad_value_gets_a_clear_error(case, ctx):
    name, param, strategy, call = case

    @FUZZ
    @given(value=strategy)
    def check(value):
        assert_clear_error(lambda: call(value, ctx), ("path", "points") if name == "load_points" and param == "path"
                           else param, value)

    check()


def test_every_public_entry_point_with_parameters_is_fuzzed():
    """A new public function or class with parameters must get its cases here."""
    import inspect

    skipped = {"MemlabValidityWarning", "cite", "paper_grid", "derive_crossover", "derive_rf", "WEIGHTINGS",
               "__version__"}
    results = {n for n in memlab.__all__ if n[0].isupper() and n not in ("RFModel", "GMMDenoiser")}
    fuzzed = {name.split(".")[0].split("(")[0] for name, *_ in CASES}
    missing = []
    for n in memlab.__all__:
        if n in skipped or n in results:
            continue
        obj = getattr(memlab, n)
        if callable(obj) and inspect.signature(obj).parameters and n not in fuzzed:
            missing.append(n)
    assert not missing, f"public entry points without fuzz cases: {missing}"
    # every parameter of every fuzzed function has at least one case
    for n in fuzzed & set(memlab.__all__):
        params = set(inspect.signature(getattr(memlab, n)).parameters)
        have = {p for name, p, *_ in CASES if name.split(".")[0].split("(")[0] == n}
        assert params <= have, f"{n}: parameters without fuzz cases: {sorted(params - have)}"


def test_issue_examples_have_clear_errors():
    """The API examples of the hardening issue, each with the error it now gives."""
    m = RFModel(psi_p=4, psi_n=2, t=0.1, d=5)
    cases = [
        (lambda: memlab.rf_learning_curves(m, [1, 10, 1e300], method="gd"), ValueError, r"tau must be at most"),
        (lambda: memlab.rf_learning_curves(m, [1, 10], noise="foo"), ValueError, r"noise must be one of"),
        (lambda: memlab.rf_learning_curves(m, [1, 10], delta_tau=NAN), ValueError, r"delta_tau"),
        (lambda: memlab.rf_learning_curves(m, [1, 10], delta_tau=0.1), ValueError, r"delta_tau=0\.1 is not used"),
        (lambda: memlab.memorizing_denoiser(TRAIN + 1j), TypeError, r"train .*not complex"),
        (lambda: DEN.x0(0.3, SAMPLES + 1j), TypeError, r"x .*not complex"),
        (lambda: memlab.training_loss(DEN, TRAIN + 1j, 0.36), TypeError, r"points .*not complex"),
        (lambda: memlab.sample_optimal(TRAIN + 1j, 3), TypeError, r"train .*not complex"),
        (lambda: memlab.training_loss(DEN, np.empty((0, 3)), 0.36), ValueError, r"points must have shape"),
        (lambda: memlab.sample_gmm(1e300, 2, 2), ValueError, r"N must be an integer in \[1, 2\*\*53\]"),
        (lambda: memlab.gep_constants(1e300), ValueError, r"t must be a finite real number in \(0, 50\]"),
        (lambda: memlab.memorizing_denoiser(train=[[1.0, 2.0], [3.0]]), ValueError, r"^train must be a rectangular"),
        (lambda: memlab.memorizing_denoiser(train=np.empty((0, 3))), ValueError, r"^train must have shape"),
        (lambda: memlab.memorizing_denoiser(train=["a", "b"]), TypeError, r"^train must be an array of real"),
    ]
    for call, exc, pattern in cases:
        with warnings.catch_warnings():
            warnings.simplefilter("error", np.exceptions.ComplexWarning)
            with pytest.raises(exc, match=pattern):
                call()


# ------------------------------------------------------------------------------------------ the vocabulary itself
from memlab.theory import checks  # noqa: E402


@settings(max_examples=60, deadline=None)
@given(value=st.integers(1, checks.MAX_INT), as_float=st.booleans())
def test_positive_int_returns_the_same_integer(value, as_float):
    """Whole numbers within [1, 2**53] come back unchanged, as int, also when given as exact floats."""
    v = float(value) if as_float and value < 2 ** 52 else value
    out = checks.positive_int("n", v)
    assert type(out) is int and out == value


@settings(max_examples=60, deadline=None)
@given(value=st.integers(min_value=checks.MAX_INT + 1, max_value=2 ** 80) | st.integers(max_value=0))
def test_positive_int_rejects_out_of_range_naming_the_range(value):
    with pytest.raises(ValueError, match=r"^n must be an integer in \[1, 2\*\*53\]"):
        checks.positive_int("n", value)


@settings(max_examples=60, deadline=None)
@given(low=st.floats(-1e6, 1e6), width=st.floats(1e-3, 1e6), frac=st.floats(0.0, 1.0))
def test_real_accepts_exactly_the_interval(low, width, frac):
    """Inside the closed interval: returned unchanged; its open ends and anything outside: ValueError."""
    high = low + width
    x = low + frac * width
    assert checks.real("x", x, low=low, high=high) == x
    with pytest.raises(ValueError, match="^x must"):
        checks.real("x", low - width, low=low, high=high)
    with pytest.raises(ValueError, match="^x must"):
        checks.real("x", high, low=low, high=high, high_open=True)


@settings(max_examples=40, deadline=None)
@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=3), seed=st.integers(0, 2 ** 32 - 1))
def test_real_array_keeps_real_values_and_refuses_complex_and_booleans(shape, seed):
    x = np.random.default_rng(seed).standard_normal(shape)
    for given_ in (x, x.tolist(), x.astype(np.float32), (x * 100).astype(np.int64)):
        out = checks.real_array("x", given_)
        assert out.dtype == np.float64 and out.shape == x.shape
        np.testing.assert_array_equal(out, np.asarray(given_, dtype=np.float64))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for bad in (x + 1j, x > 0, x.astype(str), (x + 0j).tolist()):
            with pytest.raises(TypeError, match="^x must be an array of real numbers"):
                checks.real_array("x", bad)


def test_shape_choice_boolean_ignored_and_memory():
    assert checks.real_array("x", np.zeros((2, 3)), shape=(None, 3)).shape == (2, 3)
    with pytest.raises(ValueError, match=r"x must have shape \(\*, 4\) \(got shape \(2, 3\)\)"):
        checks.real_array("x", np.zeros((2, 3)), shape=(None, 4))
    assert checks.choice("m", "b", ("a", "b")) == "b"
    with pytest.raises(ValueError, match="m must be one of 'a', 'b'"):
        checks.choice("m", "c", ("a", "b"))
    with pytest.raises(TypeError, match="m must be one of"):
        checks.choice("m", 1, ("a", "b"))
    assert checks.boolean("flag", np.bool_(True)) is True
    for bad in ("abc", 1, 0, None, "False"):
        with pytest.raises(TypeError, match="^flag must be True or False"):
            checks.boolean("flag", bad)
    checks.ignored("opt", None, None, reason="r")
    checks.ignored("opt", "exact", "exact", reason="r")
    checks.ignored("opt", 1000, 10 ** 3, reason="r")
    with pytest.raises(ValueError, match=r"^opt=2 is not used here: r"):
        checks.ignored("opt", 2, 1, reason="r")
    checks.memory("small", 8)
    with pytest.raises(ValueError, match="^huge needs"):
        checks.memory("huge", 2.0 * checks.memory_limit_bytes())


def test_options_a_method_ignores_are_rejected(mats):
    with pytest.raises(ValueError, match="^seed=3 is not used here: noise='exact' draws no noise"):
        memlab.simulate_gd(mats, [1.0], seed=3)
    with pytest.raises(ValueError, match="^checkpoint_every_s=5.0 is not used here"):
        memlab.simulate_gd(mats, [1.0], checkpoint_every_s=5)
    tiny = RFModel(psi_p=2, psi_n=1, t=0.1, d=4)
    for kw in (dict(noise="fresh"), dict(delta_tau=0.01)):
        with pytest.raises(ValueError, match="is not used here: only method='gd'"):
            memlab.rf_learning_curves(tiny, [1.0], **kw)
    gd = memlab.rf_learning_curves(tiny, [1.0], method="gd", noise="fresh", delta_tau=0.01)
    assert np.all(np.isfinite(gd.train)) and gd.diagnostics["noise"] == "fresh"
    with pytest.raises(ValueError, match="^n_noise=5 is not used here"):
        memlab.true_feature_matrices(tiny, n_noise=5)
    with pytest.raises(ValueError, match="^k_max=5 is not used here"):
        memlab.true_feature_matrices(tiny, method="monte_carlo", k_max=5)
    with pytest.raises(ValueError, match="^n_steps=3 is not used here"):
        memlab.ddim_sample(DEN, 2, times=[0.5, 0.1], n_steps=3)
    with pytest.raises(ValueError, match="seed=3 is not used with subset='first'"):
        memlab.pmem_denoiser(TRAIN, 2, seed=3)
    # the same seed with subset='random' picks a seeded subset of the training points
    den = memlab.pmem_denoiser(TRAIN, 2, subset="random", seed=3)
    assert all(any(np.array_equal(m, x) for x in TRAIN) for m in den.means)
