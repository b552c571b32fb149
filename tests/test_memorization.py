"""Memorization metrics: nearest-two search against brute force, the 1/3 rule and its edge cases,
the bootstrap interval's coverage, the optimal denoiser's samplers and the EMM estimator."""

import math
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.special import logsumexp

import memlab
from memlab.numerics.gmm import GMMDenoiser, memorizing_denoiser, optimal_denoiser
from memlab.numerics.sampler import ddim_sample, sample_optimal
from memlab.numerics.memorization import (bootstrap_ci, clopper_pearson_ci, estimate_emm, find_duplicates,
                                          memorization_fraction, memorized_mask, nearest_two)
from memlab.theory.schedules import SCHEDULES, default_sampling_times, schedule_alpha_sigma


def brute_two(X, Y):
    """Reference: all squared distances from difference vectors in float64, stable argsort (ties -> low index)."""
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    idx = np.empty((X.shape[0], 2), dtype=np.int64)
    q = np.empty((X.shape[0], 2))
    for s in range(0, X.shape[0], 64):
        d2 = ((X[s:s + 64, None, :] - Y[None, :, :]) ** 2).sum(-1)
        o = np.argsort(d2, axis=1, kind="stable")[:, :2]
        idx[s:s + 64] = o
        q[s:s + 64] = np.take_along_axis(d2, o, axis=1)
    return idx, q


# ------------------------------------------------------------------------------------------------
# nearest two vs brute force
# ------------------------------------------------------------------------------------------------

@st.composite
def lattice_case(draw):
    """Integer data (all distances exact in float64, so ties are exact ties) far from the origin, with
    samples that are near-duplicates of training points: the GEMM expansion cancels catastrophically
    in float32 (|x|^2 ~ 1e13 against d1^2 ~ 1)."""
    D = draw(st.integers(1, 24))
    N = draw(st.integers(2, 40))
    S = draw(st.integers(1, 30))
    seed = draw(st.integers(0, 2 ** 31))
    base = draw(st.sampled_from([0, 1000, 10 ** 6]))
    rng = np.random.default_rng(seed)
    Y = base + rng.integers(-3, 4, size=(N, D)) * draw(st.sampled_from([1, 50]))
    if draw(st.booleans()):  # exact duplicate training rows
        Y[rng.integers(0, N, size=N // 4)] = Y[0]
    pick = rng.integers(0, N, size=S)
    X = Y[pick] + rng.integers(-1, 2, size=(S, D)) * rng.integers(0, 2, size=(S, 1))
    return X.astype(np.float64), Y.astype(np.float64)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=lattice_case(), dtype=st.sampled_from(["float32", "float64"]))
def test_nearest_two_equals_brute_force_on_lattice_with_near_duplicates(case, dtype):
    X, Y = case
    nt = nearest_two(X, Y, dtype=dtype)
    idx, q = brute_two(X, Y)
    np.testing.assert_array_equal(nt.index, idx)
    np.testing.assert_array_equal(nt.sq1, q[:, 0])  # exact data: bit-identical squared distances
    np.testing.assert_array_equal(nt.sq2, q[:, 1])


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2 ** 31), D=st.integers(1, 64), scale=st.sampled_from([1e-3, 1.0, 1e4]),
       offset=st.sampled_from([0.0, 10.0, 1e5]), eps=st.sampled_from([1e-2, 1e-5, 1e-8]),
       dtype=st.sampled_from(["float32", "float64"]), in32=st.booleans())
def test_nearest_two_equals_brute_force_on_continuous_data(seed, D, scale, offset, eps, dtype, in32):
    rng = np.random.default_rng(seed)
    Y = offset + scale * rng.standard_normal((50, D))
    X = np.vstack([Y[rng.integers(0, 50, 20)] + eps * scale * rng.standard_normal((20, D)),
                   offset + scale * rng.standard_normal((10, D))])
    if in32:
        X, Y = X.astype(np.float32), Y.astype(np.float32)
    nt = nearest_two(X, Y, dtype=dtype)
    idx, q = brute_two(X, Y)
    np.testing.assert_array_equal(nt.index, idx)
    np.testing.assert_allclose(nt.d1, np.sqrt(q[:, 0]), rtol=1e-6, atol=0)
    np.testing.assert_allclose(nt.d2, np.sqrt(q[:, 1]), rtol=1e-6, atol=0)


def test_nearest_two_blocked_under_a_small_memory_limit():
    """1 MiB forces many row and column blocks; the result must not depend on the blocking."""
    rng = np.random.default_rng(3)
    Y = rng.standard_normal((10000, 6)).astype(np.float32) + 300.0
    X = np.vstack([Y[rng.integers(0, 10000, 150)] + 1e-3, rng.standard_normal((150, 6)).astype(np.float32) + 300])
    small = nearest_two(X, Y, memory_limit=2 ** 20)
    b, c = small.diagnostics["block"]
    assert c < 10000 and b < 300, small.diagnostics["block"]
    assert small.diagnostics["working_bytes"] <= 2 ** 20
    idx, q = brute_two(X, Y)
    np.testing.assert_array_equal(small.index, idx)
    np.testing.assert_allclose(small.sq1, q[:, 0], rtol=1e-12, atol=0)
    big = nearest_two(X, Y)
    np.testing.assert_array_equal(big.index, small.index)
    np.testing.assert_array_equal(big.sq2, small.sq2)


def test_exact_recomputations_stay_few():
    """The certified bound prunes: a handful of exact recomputations per sample, not N."""
    rng = np.random.default_rng(0)
    Y = rng.random((5000, 256), dtype=np.float32) * 255
    X = np.vstack([Y[:100] + rng.standard_normal((100, 256)).astype(np.float32), rng.random((100, 256),
                                                                                             dtype=np.float32) * 255])
    nt = nearest_two(X, Y)
    assert nt.dtype == "float32"
    assert nt.diagnostics["exact_per_sample"] < 20


def test_integer_images_use_float32_and_stay_exact():
    rng = np.random.default_rng(1)
    Y = rng.integers(0, 256, size=(300, 192), dtype=np.uint8)
    X = Y[rng.integers(0, 300, 40)].copy()
    X[:, :5] = np.minimum(X[:, :5].astype(int) + 1, 255).astype(np.uint8)
    nt = nearest_two(X, Y)
    assert nt.dtype == "float32"
    idx, q = brute_two(X, Y)
    np.testing.assert_array_equal(nt.index, idx)
    np.testing.assert_array_equal(nt.sq1, q[:, 0])


# ------------------------------------------------------------------------------------------------
# the rule
# ------------------------------------------------------------------------------------------------

def test_rule_is_strict_and_matches_ratio_form():
    # d1 = 1, d2 = 3 exactly: 1 < 3 k is false at k = 1/3 in exact arithmetic (strict)
    train = np.array([[1.0, 0.0], [-3.0, 0.0], [50.0, 50.0]])
    r = memorization_fraction([[0.0, 0.0]], train, n_boot=0)
    assert r.d1[0] == 1.0 and r.d2[0] == 3.0
    assert not r.memorized[0]
    assert memorization_fraction([[0.0, 0.0]], train, k=0.34, n_boot=0).memorized[0]
    rng = np.random.default_rng(5)
    q1, q2 = rng.random(1000), rng.random(1000) + 0.5
    with np.errstate(divide="ignore"):
        np.testing.assert_array_equal(memorized_mask(q1, q2, 0.4), np.sqrt(q1) / np.sqrt(q2) < 0.4)


def test_duplicates_not_memorized_warned_and_dedupe_option():
    rng = np.random.default_rng(2)
    train = rng.standard_normal((30, 25))
    train[7] = train[3]  # exact duplicate
    samples = np.vstack([train[3] + 1e-6, train[10] + 1e-6])
    with pytest.warns(UserWarning, match="1 exact duplicate"):
        r = memorization_fraction(samples, train, n_boot=0)
    assert r.n_duplicates == 1
    assert r.nn_index[0].tolist() == [3, 7] and r.d1[0] == r.d2[0]
    assert r.memorized.tolist() == [False, True]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rd = memorization_fraction(samples, train, n_boot=0, dedupe=True)
    assert rd.memorized.tolist() == [True, True]
    assert rd.nn_index[0, 0] == 3 and rd.nn_index[0, 1] != 7  # indices refer to the original rows
    # a sample exactly on a duplicated point: d1 = d2 = 0 -> 0 < 0 is false
    with pytest.warns(UserWarning):
        r0 = memorization_fraction(train[3:4], train, n_boot=0)
    assert r0.d1[0] == 0.0 and r0.d2[0] == 0.0 and not r0.memorized[0]


def test_find_duplicates_matches_numpy_unique():
    rng = np.random.default_rng(4)
    Y = rng.integers(0, 3, size=(400, 5)).astype(float)  # many repeats
    dup = find_duplicates(Y)
    _, first = np.unique(Y, axis=0, return_index=True)
    expect = np.setdiff1d(np.arange(400), first)
    np.testing.assert_array_equal(dup, expect)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2 ** 31), shift=st.floats(-100, 100), scale=st.floats(0.01, 100))
def test_rule_invariant_under_translation_scaling_rotation(seed, shift, scale):
    rng = np.random.default_rng(seed)
    train = rng.standard_normal((40, 6))
    samples = np.vstack([train[:10] + 10 ** rng.uniform(-3, 0, (10, 1)) * rng.standard_normal((10, 6)),
                         rng.standard_normal((10, 6))])
    Q, _ = np.linalg.qr(rng.standard_normal((6, 6)))
    base = memorization_fraction(samples, train, n_boot=0)
    moved = memorization_fraction(scale * samples @ Q + shift, scale * train @ Q + shift, n_boot=0)
    r0, r1 = base.ratio, moved.ratio
    clear = np.abs(r0 - 1 / 3) > 1e-6  # away from the threshold, rounding cannot flip the rule
    np.testing.assert_array_equal(base.memorized[clear], moved.memorized[clear])
    np.testing.assert_allclose(r1, r0, rtol=1e-6)


# ------------------------------------------------------------------------------------------------
# fraction: samplers, fresh draws, bootstrap
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("schedule", SCHEDULES)
def test_optimal_denoiser_sampler_memorizes_everything(schedule):
    data = memlab.sample_gmm(150, 20, 5, seed=1)
    s = sample_optimal(data.train, 60, schedule=schedule, seed=2).samples
    r = memorization_fraction(s, data.train)
    assert r.fraction == 1.0 and r.bootstrap_low == r.bootstrap_high == 1.0  # the percentile bootstrap collapses
    # the exact interval does not: [(alpha/2)^(1/S), 1]
    assert r.ci_method == "clopper-pearson" and r.ci_high == 1.0
    assert r.ci_low == pytest.approx(0.025 ** (1 / 60), rel=1e-12) and r.ci_low < 1.0


def test_gmm_lab_samplers_and_fresh_draws():
    data = memlab.sample_gmm(200, 20, 6, n_heldout=300, seed=0)
    mem = memlab.ddim_sample(memlab.memorizing_denoiser(data.train), 50, seed=1).samples
    pmem = memlab.ddim_sample(memlab.pmem_denoiser(data.train, 80), 50, seed=1).samples
    assert memorization_fraction(mem, data.train).fraction == 1.0
    assert memorization_fraction(pmem, data.train).fraction == 1.0
    fresh = memorization_fraction(data.heldout, data.train)
    assert fresh.ci_low <= 0.0 <= fresh.ci_high
    assert fresh.bootstrap_low <= 0.0 <= fresh.bootstrap_high
    if fresh.fraction == 0.0:  # none memorized: the exact interval keeps a width 1 - (alpha/2)^(1/S)
        assert fresh.ci_high == pytest.approx(1 - 0.025 ** (1 / 300), rel=1e-12) and fresh.bootstrap_high == 0.0
    assert fresh.fraction <= 1 / 300  # chance level k^d = 3^-20 ~ 3e-10
    tiny = memorization_fraction(data.train[:100] + 1e-4 * np.random.default_rng(0).standard_normal((100, 20)),
                                 data.train)
    assert tiny.fraction == 1.0


def test_bootstrap_interval_coverage():
    """Seeded Monte Carlo: samples memorized with probability p = 0.3 (copies of training points with
    tiny noise vs fresh draws in d = 20); the 95% percentile interval must cover p about 95% of the time."""
    rng = np.random.default_rng(11)
    train = rng.standard_normal((100, 20))
    p, S, trials = 0.3, 200, 400
    cover = cover_exact = 0
    for trial in range(trials):
        is_mem = rng.random(S) < p
        x = rng.standard_normal((S, 20))
        j = rng.integers(0, 100, S)
        x[is_mem] = train[j[is_mem]] + 1e-3 * rng.standard_normal((is_mem.sum(), 20))
        r = memorization_fraction(x, train, n_boot=1000, seed=trial)
        assert r.memorized.sum() == is_mem.sum()
        cover += r.bootstrap_low <= p <= r.bootstrap_high
        cover_exact += r.ci_low <= p <= r.ci_high
    rate = cover / trials
    # binomial SE of the rate ~ 0.011; the percentile interval is slightly liberal at n = 200
    assert 0.91 <= rate <= 0.98, rate
    assert cover_exact >= cover and cover_exact / trials >= 0.93  # Clopper-Pearson: conservative, wider


def test_bootstrap_is_seeded_and_matches_explicit_resampling():
    flags = np.random.default_rng(0).random(300) < 0.2
    a = bootstrap_ci(flags, n_boot=2000, seed=4)
    assert a == bootstrap_ci(flags, n_boot=2000, seed=4)
    rng = np.random.default_rng(9)
    means = flags[rng.integers(0, 300, size=(4000, 300))].mean(axis=1)
    lo, hi = np.quantile(means, [0.025, 0.975])
    assert abs(a[0] - lo) <= 0.012 and abs(a[1] - hi) <= 0.012


def _flags(x, n):
    return np.arange(n) < x


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 120), p=st.floats(0.0, 1.0), level=st.sampled_from([0.5, 0.8, 0.9, 0.95, 0.99]))
def test_exact_interval_covers_at_least_its_level(n, p, level):
    """Coverage of the Clopper-Pearson interval by exact enumeration of Binomial(n, p): sum over x of
    P(x) 1[low(x) <= p <= high(x)] >= level for every (n, p), and each bound equals scipy's exact
    binomtest interval."""
    from scipy.stats import binomtest

    bounds = np.array([clopper_pearson_ci(_flags(x, n), level=level) for x in range(n + 1)])
    covered = (bounds[:, 0] <= p) & (p <= bounds[:, 1])
    pmf = [math.comb(n, x) * p ** x * (1.0 - p) ** (n - x) for x in range(n + 1)]
    assert math.fsum(pmf) == pytest.approx(1.0, abs=1e-12)
    assert math.fsum(q for q, c in zip(pmf, covered) if c) >= level - 1e-12
    assert np.all(bounds[:, 0] < bounds[:, 1])  # never degenerate, also at x = 0 and x = n
    assert np.all(np.diff(bounds, axis=0) > 0)  # both ends increase with the count
    for x in {0, n // 3, n}:
        ref = binomtest(x, n).proportion_ci(confidence_level=level, method="exact")
        np.testing.assert_allclose(bounds[x], [ref.low, ref.high], rtol=1e-10, atol=1e-14)


@given(n=st.integers(1, 10 ** 6), level=st.floats(0.5, 0.999))
@settings(max_examples=40, deadline=None)
def test_exact_interval_at_none_and_all_memorized(n, level):
    """x = 0: [0, 1 - a^(1/n)]; x = n: [a^(1/n), 1] with a = (1 - level)/2 (the Beta quantiles in closed form);
    the percentile bootstrap gives [0, 0] and [1, 1] there."""
    a = (1 - level) / 2
    none = clopper_pearson_ci(np.zeros(n, dtype=bool), level=level)
    every = clopper_pearson_ci(np.ones(n, dtype=np.int8), level=level)
    assert none[0] == 0.0 and none[1] == pytest.approx(-math.expm1(math.log(a) / n), rel=1e-9)
    assert every[1] == 1.0 and every[0] == pytest.approx(math.exp(math.log(a) / n), rel=1e-12)
    assert 0.0 < none[1] and every[0] < 1.0
    assert bootstrap_ci(np.zeros(min(n, 1000), dtype=bool), n_boot=50) == (0.0, 0.0)


def test_both_intervals_in_the_result():
    rng = np.random.default_rng(8)
    train = rng.standard_normal((60, 10))
    samples = np.vstack([train[:7] + 1e-4, rng.standard_normal((13, 10))])
    r = memorization_fraction(samples, train, n_boot=500, seed=3, level=0.9)
    assert r.n_memorized == 7 and r.ci_method == "clopper-pearson"
    assert (r.ci_low, r.ci_high) == clopper_pearson_ci(r.memorized, level=0.9)
    assert (r.bootstrap_low, r.bootstrap_high) == bootstrap_ci(r.memorized, n_boot=500, level=0.9, seed=3)
    r0 = memorization_fraction(samples, train, n_boot=0, level=0.9)
    assert r0.bootstrap_low is None and r0.bootstrap_high is None and (r0.ci_low, r0.ci_high) == (r.ci_low, r.ci_high)


# ------------------------------------------------------------------------------------------------
# optimal denoiser and schedules
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("schedule,t", [("gmm", 0.001), ("gmm", 0.5), ("ou", 1e-4), ("ou", 2.0),
                                        ("edm", 0.002), ("edm", 30.0), ("vp", 1e-3), ("vp", 0.7)])
def test_optimal_denoiser_matches_logsumexp_and_score_gradient(schedule, t):
    rng = np.random.default_rng(0)
    train = 3 * rng.standard_normal((40, 5))
    den = optimal_denoiser(train, schedule)
    a, s = (float(v) for v in schedule_alpha_sigma(schedule, t))
    x = a * train[:6] + s * rng.standard_normal((6, 5))
    logw = -((x[:, None, :] - a * train[None]) ** 2).sum(-1) / (2 * s * s)
    w = np.exp(logw - logsumexp(logw, axis=1, keepdims=True))
    np.testing.assert_allclose(den.x0(t, x), w @ train, rtol=1e-9, atol=1e-9 * np.abs(train).max())
    assert np.all(np.isfinite(den.x0(t, x)))

    def logp(y):  # log of the empirical P_t density up to a constant
        return logsumexp(-((y - a * train) ** 2).sum(-1) / (2 * s * s))

    y = x[0]
    h = 1e-5 * s
    grad = np.array([(logp(y + h * e) - logp(y - h * e)) / (2 * h) for e in np.eye(5)])
    np.testing.assert_allclose(den.score(t, y), grad, rtol=1e-4, atol=1e-6 / s)


def test_one_denoiser_class_for_the_lab_and_the_optimal_denoiser():
    """optimal_denoiser is the GMM denoiser with the training points as means and sigma^2 = 0, under any schedule:
    on the laboratory schedule it is the memorizing denoiser, and ddim_sample drives both the same way."""
    rng = np.random.default_rng(4)
    train = 2 * rng.standard_normal((25, 6))
    opt, mem = optimal_denoiser(train, "gmm"), memorizing_denoiser(train)
    assert isinstance(opt, GMMDenoiser) and opt.sigma2 == 0.0 and opt.schedule == "gmm"
    x = rng.standard_normal((7, 6))
    for t in (0.001, 0.3, 0.9):
        np.testing.assert_array_equal(opt.predict(t, x)[0], mem.predict(t, x)[0])
    np.testing.assert_array_equal(sample_optimal(train, 8, seed=5).samples, ddim_sample(mem, 8, seed=5).samples)
    edm = optimal_denoiser(train, "edm")
    np.testing.assert_array_equal(sample_optimal(train, 8, schedule="edm", seed=5).samples,
                                  ddim_sample(edm, 8, seed=5).samples)


def test_schedules_and_default_times():
    t = np.linspace(0, 0.99, 50)
    for sch in ("gmm", "ou", "vp"):
        a, s = schedule_alpha_sigma(sch, t)
        np.testing.assert_allclose(a ** 2 + s ** 2, 1.0, rtol=1e-14)  # variance preserving
    a, s = schedule_alpha_sigma("ou", 0.3)
    assert a == pytest.approx(math.exp(-0.3)) and s ** 2 == pytest.approx(1 - math.exp(-0.6))
    for sch in SCHEDULES:
        ts = default_sampling_times(sch)
        assert np.all(np.diff(ts) < 0) and ts[-1] > 0
    np.testing.assert_allclose(default_sampling_times("gmm"), memlab.paper_grid(), atol=1e-15)
    with pytest.raises(ValueError, match="schedule"):
        schedule_alpha_sigma("cosine", 0.1)
    with pytest.raises(ValueError, match="t must lie"):
        schedule_alpha_sigma("gmm", 1.0)


def test_sampler_is_deterministic_and_may_end_at_zero():
    train = np.random.default_rng(0).standard_normal((30, 4))
    a = sample_optimal(train, 10, schedule="edm", seed=3).samples
    np.testing.assert_array_equal(a, sample_optimal(train, 10, schedule="edm", seed=3).samples)
    ts = np.append(default_sampling_times("edm"), 0.0)
    z = sample_optimal(train, 10, schedule="edm", times=ts, seed=3).samples
    # the final step at sigma = 0 returns D* itself: (numerically) a training point
    assert np.min(np.linalg.norm(z[:, None] - train[None], axis=2), axis=1).max() < 1e-8


# ------------------------------------------------------------------------------------------------
# EMM
# ------------------------------------------------------------------------------------------------

def logistic(n0, w):
    return lambda n: 1.0 / (1.0 + math.exp((n - n0) / w))


def test_emm_recovers_known_crossing():
    n0, w, thr = 3000.0, 300.0, 0.9
    R = logistic(n0, w)
    n_star = n0 + w * math.log((1 - thr) / thr)  # R(n*) = 0.9, n* = 2340.8
    grid = [500, 1000, 2000, 4000, 8000]
    calls = []
    res = estimate_emm(lambda n: calls.append(n) or R(n), grid, threshold=thr)
    assert res.status == "ok" and not res.non_monotone
    assert res.grid_emm == 2000
    g_cross = 2000 + (R(2000) - thr) / (R(2000) - R(4000)) * 2000
    assert res.grid_crossing == pytest.approx(g_cross, rel=1e-12)
    assert res.emm == math.floor(n_star)  # refined: largest integer with R >= 0.9
    assert abs(res.crossing - n_star) < 1.0
    assert len(calls) == len(set(calls)) == res.n_evals  # each size measured once
    plain = estimate_emm(R, grid, threshold=thr, refine=False)
    assert plain.emm == 2000 and plain.crossing == pytest.approx(g_cross, rel=1e-12) and plain.n_evals == 5


def test_emm_edge_cases():
    below = estimate_emm(lambda n: 0.5, [100, 200])
    assert below.status == "below_smallest" and below.emm is None and "below the smallest" in below.message
    above = estimate_emm(lambda n: 0.95, [100, 200])
    assert above.status == "at_least_largest" and above.emm == 200 and above.crossing is None
    vals = {100: 0.95, 200: 0.85, 400: 0.92, 800: 0.3}
    nm = estimate_emm(lambda n: vals.get(n, 0.9 if n < 600 else 0.5), [100, 200, 400, 800], refine=False)
    assert nm.non_monotone and nm.grid_emm == 400 and 400 < nm.crossing < 800 and "non-monotone" in nm.message
    # measure may return a MemorizationResult
    train = np.random.default_rng(0).standard_normal((50, 20))
    res = estimate_emm(lambda n: memorization_fraction(train[:10] + (1e-3 if n < 300 else 1.0), train, n_boot=0),
                       [100, 200, 400], refine=False)
    assert res.grid_emm == 200


@pytest.mark.parametrize("kwargs,match", [
    (dict(measure=lambda n: 1.5, sizes=[10]), "measure"),
    (dict(measure=lambda n: float("nan"), sizes=[10]), "measure"),
    (dict(measure=lambda n: 0.5, sizes=[]), "sizes"),
    (dict(measure=lambda n: 0.5, sizes=[10, 10]), "sizes"),
    (dict(measure=lambda n: 0.5, sizes=[0, 10]), "sizes"),
    (dict(measure=lambda n: 0.5, sizes=[10], threshold=1.5), "threshold"),
])
def test_emm_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        estimate_emm(**kwargs)
    with pytest.raises(TypeError, match="measure"):
        estimate_emm(42, [10])


# ------------------------------------------------------------------------------------------------
# bad input
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("samples,train,kwargs,exc,match", [
    (np.zeros((3, 4)), np.zeros((5, 5)), {}, ValueError, "feature dimension"),
    (np.zeros((3, 4)), np.zeros((1, 4)), {}, ValueError, "at least 2 training points"),
    (np.zeros((0, 4)), np.ones((5, 4)), {}, ValueError, "samples is empty"),
    (np.full((3, 4), np.nan), np.ones((5, 4)), {}, ValueError, "samples must contain only finite"),
    (np.ones((3, 4)), np.full((5, 4), np.inf), {}, ValueError, "train must contain only finite"),
    (np.ones((3, 4)), np.ones((5, 4)), {"k": 1.0}, ValueError, "k must lie"),
    (np.ones((3, 4)), np.ones((5, 4)), {"k": 0.0}, ValueError, "k must lie"),
    (np.ones((3, 4)), np.ones((5, 4)), {"n_boot": -1}, ValueError, "n_boot"),
    (np.ones((3, 4)), np.arange(20.0).reshape(5, 4), {"dtype": "float16"}, ValueError, "dtype"),
    (np.ones((3, 4)), np.arange(20.0).reshape(5, 4), {"memory_limit": 1000}, ValueError, "memory_limit"),
    (np.array([["a", "b"]]), np.ones((5, 2)), {}, TypeError, "samples"),
    ("samples.npy", np.ones((5, 2)), {}, TypeError, "samples"),
    (np.ones((2, 3, 4)), np.ones((5, 12)), {}, ValueError, "samples must have shape"),
])
def test_memorization_bad_input(samples, train, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        memorization_fraction(samples, train, **kwargs)


X3, Y5 = np.arange(12.0).reshape(3, 4), np.arange(20.0).reshape(5, 4)
#: (call, parameter the error must name) for every array argument of the module's public functions
ARRAY_ARGS = [
    (lambda v: nearest_two(v, Y5), "samples"), (lambda v: nearest_two(X3, v), "train"),
    (lambda v: memorization_fraction(v, Y5), "samples"), (lambda v: memorization_fraction(X3, v), "train"),
    (lambda v: find_duplicates(v), "train"), (lambda v: memorized_mask(v, np.ones(3)), "sq1"),
    (lambda v: memorized_mask(np.ones(3), v), "sq2"), (lambda v: bootstrap_ci(v), "memorized"),
    (lambda v: clopper_pearson_ci(v), "memorized"),
]
BAD_TYPES = [X3 + 1j, X3.astype(np.complex64), np.array([["a", "b"], ["c", "d"]]), None,
             np.array([[1.0, None]], dtype=object), {"a": 1}, "samples.npy"]


@pytest.mark.parametrize("call,name", ARRAY_ARGS)
@pytest.mark.parametrize("bad", BAD_TYPES, ids=["complex128", "complex64", "strings", "None", "object", "dict", "path"])
def test_complex_and_non_numeric_arrays_name_the_parameter(call, name, bad):
    with pytest.raises(TypeError, match=name), warnings.catch_warnings():
        warnings.simplefilter("error")  # no ComplexWarning on the way
        call(bad)


@pytest.mark.parametrize("call,name", ARRAY_ARGS[:5])
def test_boolean_points_are_refused(call, name):
    """Points are real numbers (the package's vocabulary); binary data pass as uint8.  (Flags, by contrast, are
    booleans: ``memorized`` accepts them.)"""
    with pytest.raises(TypeError, match=f"{name}.*astype"):
        call(np.arange(12).reshape(3, 4) % 2 == 0)
    assert bootstrap_ci(np.arange(12) % 2 == 0, n_boot=10) == bootstrap_ci((np.arange(12) % 2 == 0).astype(int),
                                                                             n_boot=10)


@pytest.mark.parametrize("call,name", ARRAY_ARGS)
def test_ragged_arrays_name_the_parameter(call, name):
    with pytest.raises(ValueError, match=name):
        call([[1.0, 2.0], [3.0]])


def test_options_are_not_read_by_truthiness():
    """``dedupe="abc"`` and ``refine="abc"`` were once taken as True."""
    for bad in ("abc", 1, 0, None, np.array([True])):
        with pytest.raises(TypeError, match="dedupe"):
            memorization_fraction(X3, Y5, dedupe=bad)
        with pytest.raises(TypeError, match="refine"):
            estimate_emm(lambda n: 0.5, [10, 20], refine=bad)
    assert memorization_fraction(X3, Y5, dedupe=np.True_, n_boot=0).diagnostics["deduped"] is False  # no dups
    assert estimate_emm(lambda n: 1.0 - n / 100, [5, 40], refine=np.False_).n_evals == 2


@pytest.mark.parametrize("kwargs,exc,name", [
    ({"level": "abc"}, TypeError, "level"), ({"level": 1.0}, ValueError, "level"),
    ({"level": float("nan")}, ValueError, "level"), ({"n_boot": 10 ** 15}, ValueError, "n_boot"),
    ({"n_boot": 2.5}, ValueError, "n_boot"), ({"seed": -1}, ValueError, "seed"), ({"seed": "0"}, TypeError, "seed"),
    ({"k": "1/3"}, TypeError, "k"), ({"memory_limit": 2.0 ** 30}, TypeError, "memory_limit"),
])
def test_scalar_options_name_the_parameter(kwargs, exc, name):
    with pytest.raises(exc, match=name):
        memorization_fraction(X3, Y5, **kwargs)


def test_mask_and_flags_refuse_nonsense():
    with pytest.raises(ValueError, match="sq1"):
        memorized_mask([np.nan], [1.0])
    with pytest.raises(ValueError, match="sq2"):
        memorized_mask([1.0], [-1.0])
    with pytest.raises(ValueError, match="same shape"):
        memorized_mask([1.0, 2.0], [1.0, 2.0, 3.0])
    assert memorized_mask([1.0, 1.0], [np.inf, 9.0]).tolist() == [True, False]
    for bad in ([0.5, 1.0], [2, 0]):
        with pytest.raises(ValueError, match="memorized"):
            clopper_pearson_ci(bad)
    with pytest.raises(ValueError, match="memorized"):
        bootstrap_ci(np.array([], dtype=bool))
    with pytest.raises(ValueError, match="n_boot"):
        bootstrap_ci([True, False], n_boot=10 ** 15)


def test_float32_overflow_switches_or_raises():
    Y = np.full((3, 4), 1e19)
    Y[1] *= 2
    Y[2] *= 3
    X = Y[:1] * 1.0000001
    assert nearest_two(X, Y).dtype == "float64"  # automatic choice avoids the overflow
    with pytest.raises(ValueError, match="overflow"):
        nearest_two(X, Y, dtype="float32")


def test_docstring_examples():
    import doctest

    from memlab.numerics import gmm, memorization, sampler

    for mod in (memorization, gmm, sampler):
        res = doctest.testmod(mod, optionflags=doctest.NORMALIZE_WHITESPACE)
        assert res.attempted > 0 and res.failed == 0, (mod.__name__, res)


# ------------------------------------------------------------------------------------------------
# offsets, wide integers, threads (the shift before the GEMM must never change the result)
# ------------------------------------------------------------------------------------------------

def brute_two_exact(X, Y):
    """Reference for integer data: exact squared distances in Python integers, stable order (ties -> low index)."""
    Xo = np.asarray(X).astype(object)
    Yo = np.asarray(Y).astype(object)
    idx = np.empty((Xo.shape[0], 2), dtype=np.int64)
    q = []
    for s in range(Xo.shape[0]):
        d2 = [sum(int(a - b) ** 2 for a, b in zip(Xo[s], Yo[j])) for j in range(Yo.shape[0])]
        o = sorted(range(len(d2)), key=lambda j: (d2[j], j))[:2]
        idx[s] = o
        q.append((d2[o[0]], d2[o[1]]))
    return idx, q


def dyadic_offset_case(rng, offset, dtype, S=40, N=300, D=48, bits=8):
    """Values ``offset + k / 2^bits`` (k < 2^bits): exactly representable, every difference and every sum of
    squares exact in float64, so any correct summation order gives bit-identical squared distances.
    Half the samples are training points moved by one grid step in a few coordinates (near-duplicates
    far from the origin: the unshifted float32 expansion cancels completely)."""
    Y = offset + rng.integers(0, 2 ** bits, size=(N, D)) / 2 ** bits
    X = Y[rng.integers(0, N, S)] + rng.integers(-1, 2, size=(S, D)) * (rng.random((S, D)) < 0.1) / 2 ** bits
    X[S // 2:] = offset + rng.integers(0, 2 ** bits, size=(S - S // 2, D)) / 2 ** bits
    return X.astype(dtype), Y.astype(dtype)


@pytest.mark.parametrize("offset", [300.0, -4096.0, 1e5])
@pytest.mark.parametrize("dtype,gemm", [(np.float32, None), (np.float64, None), (np.float64, "float32")])
def test_offset_data_bit_identical_to_brute_force(offset, dtype, gemm):
    X, Y = dyadic_offset_case(np.random.default_rng(7), offset, dtype)
    nt = nearest_two(X, Y, dtype=gemm)
    idx, q = brute_two(X, Y)
    np.testing.assert_array_equal(nt.index, idx)
    np.testing.assert_array_equal(nt.sq1, q[:, 0])
    np.testing.assert_array_equal(nt.sq2, q[:, 1])
    # the shifted expansion prunes: without the shift every entry would be recomputed at offset 1e5
    assert nt.diagnostics["shift"].startswith("training mean")
    assert nt.diagnostics["exact_per_sample"] < 30, nt.diagnostics
    # without an offset there is nothing to gain: the data go to the GEMM as they are
    centred = nearest_two(X - dtype(offset), Y - dtype(offset), dtype=gemm)
    assert centred.diagnostics["shift"].startswith("none")
    np.testing.assert_array_equal(centred.index, nt.index)
    np.testing.assert_array_equal(centred.sq1, nt.sq1)


def test_offset_case_of_the_benchmark_needs_few_recomputations():
    """train = 300 + U(0, 1) in D = 3072 (float32): the unshifted bound gamma ||x||^2 ~ 1e5 dwarfs the
    distances (~500) and every entry was recomputed; centred, a few per sample remain."""
    rng = np.random.default_rng(0)
    Y = (300 + rng.random((1000, 3072))).astype(np.float32)
    X = np.vstack([Y[:25] + np.float32(0.01) * rng.standard_normal((25, 3072), dtype=np.float32),
                   (300 + rng.random((25, 3072))).astype(np.float32)])
    nt = nearest_two(X, Y)
    centred = nearest_two(X - np.float32(300), Y - np.float32(300))  # exact in float32 (Sterbenz)
    assert nt.dtype == "float32" and nt.diagnostics["exact_per_sample"] < 10, nt.diagnostics
    np.testing.assert_array_equal(nt.index, centred.index)
    np.testing.assert_array_equal(nt.index[:25, 0], np.arange(25))
    idx, q = brute_two(X, Y)
    np.testing.assert_array_equal(nt.index, idx)
    np.testing.assert_allclose(nt.sq1, q[:, 0], rtol=1e-12, atol=0)


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint8, np.uint64])
def test_integer_offset_data_exact(dtype):
    rng = np.random.default_rng(3)
    base = {np.int64: -(2 ** 62) + 17, np.int32: 2 ** 30, np.uint8: 100, np.uint64: 2 ** 63 + 2 ** 40}[dtype]
    Y = rng.integers(0, 9, size=(120, 10))
    X = np.vstack([Y[rng.integers(0, 120, 15)] + (rng.random((15, 10)) < 0.2), rng.integers(0, 9, size=(10, 10))])
    Yo = (np.array(Y, dtype=object) + base)
    Xo = (np.array(X, dtype=object) + base)
    Yd, Xd = Yo.astype(dtype), Xo.astype(dtype)
    nt = nearest_two(Xd, Yd)
    idx, q = brute_two_exact(Xo, Yo)
    np.testing.assert_array_equal(nt.index, idx)
    assert nt.sq1.tolist() == [float(a) for a, _ in q] and nt.sq2.tolist() == [float(b) for _, b in q]
    assert nt.diagnostics["arithmetic"].endswith("(exact: squared distances below 2^53)")


def test_int64_beyond_2_53_is_exact():
    """2^60 against 2^60 + 1 .. 2^60 + 100: float64 would see every point at distance 0."""
    big = 2 ** 60
    train = np.array([[big + k] for k in range(100, 0, -1)], dtype=np.int64)  # nearest (+1) is the last row
    nt = nearest_two(np.array([[big]], dtype=np.int64), train)
    assert nt.index.tolist() == [[99, 98]]
    assert nt.sq1.tolist() == [1.0] and nt.sq2.tolist() == [4.0]
    # d1 = 1 < 0.6 d2 = 1.2: memorized (float64 data would give d1 = d2 = 0: not memorized)
    assert memorization_fraction(np.array([[big]]), train, k=0.6, n_boot=0).memorized.tolist() == [True]


def test_int64_squared_distances_beyond_2_53_compared_exactly():
    """Squared distances m^2 + 1 and m^2 (m^2 ~ 2^54: float64 rounds both to the same value): the exact
    int64 pass still puts the smaller first; the report is the correctly rounded float64."""
    m = 2 ** 27 + 3
    train = np.array([[m, 1], [m, 0], [m, 2]], dtype=np.int64)
    nt = nearest_two(np.array([[0, 0]], dtype=np.int64), train)
    assert float(m * m + 1) == float(m * m)  # a float64 brute force would call it a tie (index 0 first)
    assert nt.index.tolist() == [[1, 0]]
    assert nt.sq1.tolist() == [float(m * m)] and nt.sq2.tolist() == [float(m * m + 1)]
    assert nt.diagnostics["arithmetic"] == "int64 (exact)"


def test_wide_integers_fall_back_to_float64_on_exact_differences():
    """Spread too wide for int64 squared distances: the exact int64 differences are squared in float64."""
    rng = np.random.default_rng(5)
    base = 2 ** 61
    Y = base + rng.integers(-(2 ** 40), 2 ** 40, size=(60, 5))
    X = np.vstack([Y[:10] + rng.integers(-3, 4, size=(10, 5)), base + rng.integers(-(2 ** 40), 2 ** 40, size=(10, 5))])
    nt = nearest_two(X, Y)
    assert nt.diagnostics["arithmetic"] == "float64 on int64 differences"
    assert nt.diagnostics["shift"] == "integer midpoint of each training feature's range"
    idx, q = brute_two_exact(X, Y)
    np.testing.assert_array_equal(nt.index, idx)
    np.testing.assert_allclose(nt.sq1, np.array([a for a, _ in q], dtype=float), rtol=1e-15, atol=0)
    np.testing.assert_allclose(nt.sq2, np.array([b for _, b in q], dtype=float), rtol=1e-15, atol=0)


def test_integers_that_cannot_be_compared_exactly_are_refused():
    big = 2 ** 60
    with pytest.raises(ValueError, match=r"train holds integers .* beyond 2\^53"):
        nearest_two(np.array([[1.5]]), np.array([[big], [big + 1]], dtype=np.int64))
    with pytest.raises(ValueError, match=r"samples holds integers .* beyond 2\^53"):
        nearest_two(np.array([[big]], dtype=np.int64), np.array([[1.5], [2.5]]))
    spread = np.array([[-(2 ** 62)], [2 ** 62]], dtype=np.int64)
    with pytest.raises(ValueError, match=r"samples and train: integer feature 0 spans .* below 2\^63"):
        nearest_two(np.array([[0]], dtype=np.int64), spread)
    # within 2^53 mixing integers and floats is fine (every integer is a float64)
    nt = nearest_two(np.array([[0.5]]), np.array([[2 ** 53], [1]], dtype=np.int64))
    assert nt.index.tolist() == [[1, 0]]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2 ** 31), D=st.integers(1, 40), exponent=st.integers(-3, 16),
       sign=st.sampled_from([-1, 1]), bits=st.integers(1, 7), f32=st.booleans(),
       gemm=st.sampled_from([None, "float32", "float64"]))
def test_translation_by_exact_offsets_changes_nothing(seed, D, exponent, sign, bits, f32, gemm):
    """Dyadic data translated by an exactly representable offset (2^-3 .. 2^16, either sign): every
    difference is unchanged, so indices and squared distances must be bit-identical to the untranslated
    search and to brute force."""
    rng = np.random.default_rng(seed)
    X, Y = dyadic_offset_case(rng, 0.0, np.float64, S=12, N=40, D=D, bits=bits)
    t = sign * 2.0 ** exponent
    dt = np.float32 if f32 and exponent + bits <= 22 else np.float64
    X, Y = X.astype(dt), Y.astype(dt)
    Xt, Yt = (X + dt(t)).astype(dt), (Y + dt(t)).astype(dt)
    assert np.array_equal(Xt - dt(t), X) and np.array_equal(Yt - dt(t), Y)  # the translation is exact
    a, b = nearest_two(X, Y, dtype=gemm), nearest_two(Xt, Yt, dtype=gemm)
    idx, q = brute_two(X, Y)
    for r in (a, b):
        np.testing.assert_array_equal(r.index, idx)
        np.testing.assert_array_equal(r.sq1, q[:, 0])
        np.testing.assert_array_equal(r.sq2, q[:, 1])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2 ** 31), D=st.integers(1, 12), offset=st.integers(-(2 ** 62), 2 ** 62),
       spread=st.sampled_from([1, 3, 1000, 2 ** 20]))
def test_integer_offsets_and_spreads_exact(seed, D, offset, spread):
    rng = np.random.default_rng(seed)
    Y = rng.integers(-spread, spread + 1, size=(30, D))
    X = np.vstack([Y[rng.integers(0, 30, 6)] + rng.integers(-1, 2, size=(6, D)), rng.integers(-spread, spread + 1,
                                                                                              size=(4, D))])
    Xo, Yo = np.array(X, dtype=object) + offset, np.array(Y, dtype=object) + offset
    nt = nearest_two(Xo.astype(np.int64), Yo.astype(np.int64))
    idx, q = brute_two_exact(Xo, Yo)
    np.testing.assert_array_equal(nt.index, idx)
    assert nt.sq1.tolist() == [float(a) for a, _ in q] and nt.sq2.tolist() == [float(b) for _, b in q]


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2 ** 31), D=st.integers(1, 32), offset=st.sampled_from([0.0, 1.0, -300.0, 1e4, 3e6]),
       scale=st.sampled_from([1e-2, 1.0, 1e3]), eps=st.sampled_from([1e-3, 1e-6]), f32=st.booleans())
def test_offset_continuous_data_matches_float64_brute_force(seed, D, offset, scale, eps, f32):
    rng = np.random.default_rng(seed)
    Y = offset + scale * rng.random((60, D))
    X = np.vstack([Y[rng.integers(0, 60, 15)] + eps * scale * rng.standard_normal((15, D)),
                   offset + scale * rng.random((10, D))])
    if f32:
        X, Y = X.astype(np.float32), Y.astype(np.float32)
    nt = nearest_two(X, Y)
    idx, q = brute_two(X, Y)
    d = np.sqrt(((np.asarray(X, float)[:, None, :] - np.asarray(Y, float)[None]) ** 2).sum(-1))
    ds = np.sort(d, axis=1)
    clear = ds[:, 2] - ds[:, 1] > 1e-9 * ds[:, 2]  # no near-tie for the second place: the pair is defined
    np.testing.assert_array_equal(nt.index[clear], idx[clear])
    np.testing.assert_allclose(nt.sq1, q[:, 0], rtol=1e-12, atol=0)
    np.testing.assert_allclose(nt.sq2, q[:, 1], rtol=1e-12, atol=0)


@pytest.mark.parametrize("kind", ["float32", "float64", "int64"])
def test_threads_do_not_change_the_result(kind):
    rng = np.random.default_rng(8)
    Y = 300 + rng.random((1500, 64)) * 10
    X = np.vstack([Y[:300] + 1e-3, 300 + rng.random((300, 64)) * 10])
    if kind == "int64":
        X, Y = (X * 1000).astype(np.int64), (Y * 1000).astype(np.int64)
    else:
        X, Y = X.astype(kind), Y.astype(kind)
    one = nearest_two(X, Y, threads=1)
    two = nearest_two(X, Y, threads=2)
    assert one.diagnostics["threads"] == 1 and two.diagnostics["threads"] == 2
    np.testing.assert_array_equal(one.index, two.index)
    np.testing.assert_array_equal(one.sq1, two.sq1)
    np.testing.assert_array_equal(one.sq2, two.sq2)
    small = nearest_two(X, Y, threads=2, memory_limit=2 ** 20)  # many blocks, samples shifted per block
    assert small.diagnostics["block"][0] < 600
    np.testing.assert_array_equal(small.index, one.index)
    np.testing.assert_array_equal(small.sq2, one.sq2)
    # more samples than training points: the workers split the samples instead of the training set
    r1, r2 = nearest_two(Y, X, threads=1), nearest_two(Y, X, threads=2)
    np.testing.assert_array_equal(r1.index, r2.index)
    np.testing.assert_array_equal(r1.sq1, r2.sq1)
    np.testing.assert_array_equal(r1.sq2, r2.sq2)
    f1 = memorization_fraction(X, Y, n_boot=0, threads=1)
    f2 = memorization_fraction(X, Y, n_boot=0, threads=2)
    assert f1.fraction == f2.fraction == 0.5
    np.testing.assert_array_equal(f1.nn_index, f2.nn_index)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2 ** 31), D=st.integers(1, 12), power=st.integers(-980, 980),
       offset=st.sampled_from([0.0, 3.0, -1e3]), f32=st.booleans())
def test_any_magnitude_gives_the_neighbours_of_the_unit_problem(seed, D, power, offset, f32):
    """Data = Z * 2^power (exact): the neighbours are those of Z (float64 brute force), the squared distances
    those of the search on Z times 4^power / scale^2 and the distances those times 2^power, bit for bit, from
    2^-980 to 2^980 (squared distances far beyond float64 at either end)."""
    rng = np.random.default_rng(seed)
    Z = offset + rng.standard_normal((30, D))
    W = np.vstack([Z[rng.integers(0, 30, 8)] + 1e-6 * rng.standard_normal((8, D)), offset + rng.standard_normal((4, D))])
    if f32 and abs(power) <= 100:
        Z, W = Z.astype(np.float32), W.astype(np.float32)
    X, Y = np.ldexp(W, power), np.ldexp(Z, power)
    assert np.array_equal(np.ldexp(X, -power), W)  # the test data themselves are exact
    nt = nearest_two(X, Y)
    idx, q = brute_two(W, Z)
    np.testing.assert_array_equal(nt.index, idx)
    scale_exp = math.frexp(nt.scale)[1] - 1
    assert nt.scale == 2.0 ** scale_exp and nt.diagnostics["scale"] == nt.scale
    assert (nt.scale == 1.0) == (2.0 ** -100 <= np.ptp(np.vstack([X, Y]).astype(np.float64), axis=0).max() <= 2.0 ** 100)
    unit = nearest_two(W, Z)
    assert unit.scale == 1.0
    np.testing.assert_array_equal(nt.sq1, np.ldexp(unit.sq1, 2 * (power - scale_exp)))
    np.testing.assert_array_equal(nt.sq2, np.ldexp(unit.sq2, 2 * (power - scale_exp)))
    np.testing.assert_array_equal(nt.d2, np.ldexp(unit.d2, power))
    np.testing.assert_allclose(unit.sq1, q[:, 0], rtol=1e-13, atol=0)
    mf = memorization_fraction(X, Y, n_boot=0)
    np.testing.assert_array_equal(mf.memorized, memorized_mask(q[:, 0], q[:, 1]))


@pytest.mark.parametrize("magnitude", [1e154, 1e200, 1e300, 1e-160, 1e-300])
def test_extreme_magnitudes_match_a_rescaled_brute_force(magnitude):
    """The issue's cases: data around 1e154 (once "internal error, a sample has no second neighbour") and
    1e-160 (squared distances subnormal): the neighbour indices are bit-identical to a float64 brute force on
    the data divided by the reported power-of-two scale."""
    rng = np.random.default_rng(0)
    Y = magnitude * (1.0 + rng.standard_normal((40, 5)))
    X = np.vstack([Y[:6] + 1e-4 * magnitude * rng.standard_normal((6, 5)), magnitude * rng.standard_normal((6, 5))])
    nt = nearest_two(X, Y)
    assert nt.scale != 1.0
    idx, q = brute_two(X / nt.scale, Y / nt.scale)
    np.testing.assert_array_equal(nt.index, idx)
    np.testing.assert_allclose(nt.sq1, q[:, 0], rtol=1e-13, atol=0)
    np.testing.assert_allclose(nt.d1, np.sqrt(q[:, 0]) * nt.scale, rtol=1e-13, atol=0)
    assert np.all(np.isfinite(nt.d2)) and np.all(nt.index[:6, 0] == np.arange(6))
    # one feature, opposite signs: every squared distance beyond float64 (the "no second neighbour" case)
    nt1 = nearest_two([[1e154], [-1e154]], [[-1.1e154], [1.2e154], [0.0]])
    assert nt1.index.tolist() == [[1, 2], [0, 2]]
    assert nt1.d1.tolist() == [abs(1e154 - 1.2e154), abs(-1e154 + 1.1e154)]  # sqrt(fl(a^2)) = |a|


def test_distances_beyond_float64_are_refused_and_offsets_are_not_rescaled():
    with pytest.raises(ValueError, match="exceeds float64's range"):
        nearest_two([[1.7e308, 1.7e308]], [[-1.7e308, -1.7e308], [1.7e308, -1.7e308]])
    # a constant feature at 1e306 is an offset, not a spread: no rescaling; its training sum overflows and the
    # shift falls back to the range's midpoint
    rng = np.random.default_rng(0)
    Y = np.hstack([np.full((300, 1), 1e306), rng.standard_normal((300, 3))])
    X = Y[:5] + [0.0, 1e-3, 0.0, 0.0]
    for dtype in (None, "float32"):
        nt = nearest_two(X, Y, dtype=dtype)
        assert nt.dtype == (dtype or "float64") and nt.scale == 1.0  # centred, the data fit float32
        np.testing.assert_array_equal(nt.index[:, 0], np.arange(5))


@pytest.mark.parametrize("values", [[-1.7e308, 1.7e308, 1e300], [1e-320, -5e-324, 3e-310]])
def test_find_duplicates_at_extreme_magnitudes(values):
    Y = np.random.default_rng(3).choice(values, size=(60, 6))
    _, first = np.unique(Y, axis=0, return_index=True)
    np.testing.assert_array_equal(find_duplicates(Y), np.setdiff1d(np.arange(60), first))


def test_float32_gemm_is_limited_to_the_features_it_certifies():
    """Beyond 2^20 features the float32 rounding bound is void: explicit float32 is refused, the automatic
    choice uses float64 and stays exact."""
    D = 2 ** 20 + 1
    rng = np.random.default_rng(1)
    Y = rng.standard_normal((2, D)).astype(np.float32)
    X = (Y[1] + np.float32(1e-3)).reshape(1, -1)
    with pytest.raises(ValueError, match="dtype='float32'.*D = 1048577"):
        nearest_two(X, Y, dtype="float32")
    nt = nearest_two(X, Y)
    assert nt.dtype == "float64" and nt.index.tolist() == [[1, 0]]
    assert nt.sq1[0] == pytest.approx(float(((X[0].astype(np.float64) - Y[1]) ** 2).sum()), rel=1e-12)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_ties_across_workers_go_to_the_lowest_index(threads):
    """Exact duplicates in different workers' shares of the training set: the merge keeps index order."""
    rng = np.random.default_rng(2)
    Y = rng.integers(0, 50, size=(3000, 16)).astype(np.float32)
    Y[2900] = Y[1700] = Y[40]
    X = np.vstack([Y[40], Y[1700] + 0.5, rng.integers(0, 50, size=(2, 16))]).astype(np.float32)
    nt = nearest_two(X, Y, threads=threads)
    assert nt.index[0].tolist() == [40, 1700] and nt.sq1[0] == nt.sq2[0] == 0.0
    assert nt.index[1].tolist() == [40, 1700] and nt.sq1[1] == nt.sq2[1] == 16 * 0.25
    idx, q = brute_two(X, Y)
    np.testing.assert_array_equal(nt.index, idx)
    np.testing.assert_array_equal(nt.sq2, q[:, 1])


def test_threads_argument_checked():
    X, Y = np.zeros((2, 3)), np.arange(12.0).reshape(4, 3)
    with pytest.raises(ValueError, match="threads"):
        nearest_two(X, Y, threads=0)
    with pytest.raises(TypeError, match="threads"):
        nearest_two(X, Y, threads=1.5)
    with pytest.raises(ValueError, match="threads"):
        memorization_fraction(X, Y, threads=-1)
