"""Denoisers, Monte Carlo losses and the DDIM sampler of the GMM laboratory (docs/theory/capacity_crossover.md §2-§6)."""

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memlab.numerics.gmm import (GMMDenoiser, eps_to_x0, exp_nonpositive, generalizing_denoiser, gmm_denoiser,
                                 memorizing_denoiser, pmem_denoiser, sample_gmm, x0_to_eps)
from memlab.numerics.losses import gmm_excess_losses, per_draw_losses, standard_normal_draws, training_loss
from memlab.numerics.sampler import ddim_sample
from memlab.theory import grid

T16 = float(grid.paper_grid()[16])


def mp_denoiser(t, x, mu, sigma2, dps=50):
    """50-digit reference of Eq. 14 and its residual-form epsilon output."""
    with mpmath.workdps(dps):
        t = mpmath.mpf(t)
        a = mpmath.sqrt(1 - t * t)
        s2 = mpmath.mpf(sigma2)
        D = a * a * s2 + t * t
        xs = [mpmath.mpf(v) for v in x]
        w = []
        for m in mu:
            w.append(-sum((xi - a * mpmath.mpf(mi)) ** 2 for xi, mi in zip(xs, m)) / (2 * D))
        wmax = max(w)
        e = [mpmath.exp(wi - wmax) for wi in w]
        Z = sum(e)
        p = [ei / Z for ei in e]
        d = len(xs)
        x0 = [sum(p[i] * (mpmath.mpf(mu[i][k]) + a * s2 / D * (xs[k] - a * mpmath.mpf(mu[i][k])))
                  for i in range(len(mu))) for k in range(d)]
        eps = [t / D * sum(p[i] * (xs[k] - a * mpmath.mpf(mu[i][k])) for i in range(len(mu)))
               for k in range(d)]
        return np.array([float(v) for v in x0]), np.array([float(v) for v in eps])


@pytest.mark.parametrize("t", [0.001, 0.05, T16, 0.8, 0.999])
@pytest.mark.parametrize("sigma2", [0.0, 0.7])
def test_denoiser_matches_mpmath(t, sigma2):
    rng = np.random.default_rng(int(t * 1e4) + int(10 * sigma2))
    d, M = 6, 7
    mu = rng.standard_normal((M, d)) * np.sqrt(d)
    # points near a mean (huge exponents at small t), between means, and far away
    a, s = np.sqrt(1 - t * t), t
    xs = np.vstack([a * mu[2] + s * rng.standard_normal(d), a * (mu[0] + mu[1]) / 2,
                    a * mu[3] + 5 * rng.standard_normal(d)])
    den = gmm_denoiser(mu, sigma2)
    x0, eps = den.predict(t, xs)
    for b in range(xs.shape[0]):
        rx0, reps = mp_denoiser(t, xs[b], mu.tolist(), sigma2)
        np.testing.assert_allclose(x0[b], rx0, rtol=1e-11, atol=1e-11 * np.abs(rx0).max())
        # the residual sum cancels where x is equidistant from several means: scale by its terms
        D = a * a * sigma2 + s * s
        term_scale = s / D * np.abs(xs[b] - a * mu).max()
        np.testing.assert_allclose(eps[b], reps, rtol=1e-10, atol=1e-13 * term_scale)


def test_stable_where_naive_exp_fails():
    rng = np.random.default_rng(3)
    train = rng.standard_normal((20, 50)) * 1.0
    t = 0.001
    a = np.sqrt(1 - t * t)
    x = a * train[4] + 0.05 * rng.standard_normal(50)  # exponents ~ -1e3 .. -1e8 for every point
    with np.errstate(all="ignore"):
        w = -((x - a * train) ** 2).sum(1) / (2 * t * t)
        naive = np.exp(w) / np.exp(w).sum()
    assert np.isnan(naive).all()  # the naive softmax gives 0/0
    out = memorizing_denoiser(train).x0(t, x)
    assert np.all(np.isfinite(out))
    np.testing.assert_array_equal(out, train[4])
    x17 = a * train[4] + t * rng.standard_normal(50)  # check 17: mem(alpha x^j + sigma z) = x^j
    np.testing.assert_array_equal(memorizing_denoiser(train).x0(t, x17), train[4])


def test_fast_exp_within_one_ulp_of_mpmath():
    rng = np.random.default_rng(0)
    xs = np.concatenate([-rng.random(3000) * 707.9, -rng.random(500) * 1e-8, [0.0, -1e-300, -707.99]])
    out = exp_nonpositive(xs)
    with mpmath.workdps(40):
        ref = np.array([float(mpmath.exp(mpmath.mpf(v))) for v in xs])
    ulps = np.abs(out - ref) / np.spacing(ref)
    assert ulps.max() <= 1.0
    below = np.array([-708.5, -1000.0, -np.inf])
    assert np.all(exp_nonpositive(below) == 0.0)
    with pytest.raises(ValueError, match="x must be <= 0"):
        exp_nonpositive([0.5])


def test_pmem_with_all_points_is_mem_and_permutation_invariant():
    rng = np.random.default_rng(1)
    train = rng.standard_normal((15, 8)) * 2
    x = rng.standard_normal((30, 8))
    for t in (0.001, T16, 0.999):
        mem = memorizing_denoiser(train).predict(t, x)
        pm = pmem_denoiser(train, 15).predict(t, x)
        np.testing.assert_array_equal(mem[0], pm[0])
        perm = rng.permutation(15)
        mp = memorizing_denoiser(train[perm]).predict(t, x)
        np.testing.assert_allclose(mp[0], mem[0], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(mp[1], mem[1], rtol=1e-10, atol=1e-10)


def test_k1_generalizing_is_wiener_filter():
    data = sample_gmm(10, 7, 1, sigma2=0.6, seed=2)
    x = np.random.default_rng(0).standard_normal((5, 7)) * 3
    for t in (0.001, T16, 0.999):
        a = np.sqrt(1 - t * t)
        D = a * a * 0.6 + t * t
        closed = (a * 0.6 * x + t * t * data.means[0]) / D
        np.testing.assert_allclose(generalizing_denoiser(data).x0(t, x), closed, rtol=1e-12, atol=1e-12)


@settings(deadline=None, max_examples=30)
@given(st.floats(0.001, 0.999), st.integers(0, 10_000), st.integers(2, 12))
def test_mem_output_in_convex_hull_and_eps_identity(t, seed, M):
    rng = np.random.default_rng(seed)
    d = 5
    train = rng.standard_normal((M, d)) * 3
    x0 = train[rng.integers(M)]
    eps = rng.standard_normal(d)
    a = np.sqrt(1 - t * t)
    xt = a * x0 + t * eps
    den = pmem_denoiser(train, M)
    xbar, eps_hat = den.predict(t, xt)
    for v in rng.standard_normal((20, d)):  # support-function test of the convex hull
        assert v @ xbar <= (train @ v).max() + 1e-9 * (1 + np.abs(train @ v).max())
    psi = (1 - t * t) / (t * t)
    lhs = np.sum((eps_hat - eps) ** 2)
    rhs = psi * np.sum((xbar - x0) ** 2)
    assert lhs == pytest.approx(rhs, rel=1e-6, abs=1e-9 * (1 + psi))
    np.testing.assert_allclose(eps_to_x0(t, xt, eps_hat), xbar, rtol=1e-6, atol=1e-8 / a)
    if t > 0.05:
        np.testing.assert_allclose(x0_to_eps(t, xt, xbar), eps_hat, rtol=1e-8, atol=1e-8)


@pytest.mark.parametrize("t", [0.001, 0.04092, T16, 0.75948, 0.999])
def test_gemm_loss_kernel_matches_direct_route(t):
    data = sample_gmm(60, 20, 3, seed=5)
    prefixes = [7, 30, 45, 60]
    (v_fast,) = per_draw_losses(data.train, t, [memorizing_denoiser(data.train)], n_noise=6, seed=9,
                                prefixes=[prefixes])
    z = np.random.default_rng(9).standard_normal((60, 6, 20))
    a = np.sqrt(1 - t * t)
    xt = (a * data.train[:, None, :] + t * z).reshape(-1, 20)
    target = np.repeat(data.train, 6, axis=0)
    for j, m in enumerate(prefixes):
        direct = ((pmem_denoiser(data.train, m).x0(t, xt) - target) ** 2).sum(1)
        np.testing.assert_allclose(v_fast[j].ravel(), direct, rtol=1e-9, atol=1e-9)
    gen = generalizing_denoiser(data)
    (v_gen,) = per_draw_losses(data.train, t, [gen], n_noise=6, seed=9)
    direct = ((gen.x0(t, xt) - target) ** 2).sum(1)
    np.testing.assert_allclose(v_gen[0].ravel(), direct, rtol=1e-9, atol=1e-9)


def test_orthogonal_decomposition_eq16_and_nonnegative_excess():
    data = sample_gmm(80, 10, 3, seed=11)
    t = 0.91916  # low SNR: L(mem) is far from zero
    R = 200
    z = np.random.default_rng(4).standard_normal((80, R, 10))
    a = np.sqrt(1 - t * t)
    xt = (a * data.train[:, None, :] + t * z).reshape(-1, 10)
    target = np.repeat(data.train, R, axis=0)
    mem = memorizing_denoiser(data.train).x0(t, xt)
    for den in (generalizing_denoiser(data), pmem_denoiser(data.train, 30),
                gmm_denoiser(data.train[:40] + 0.3, 0.2)):
        out = den.x0(t, xt)
        lhs = ((out - target) ** 2).sum(1)
        rhs = ((out - mem) ** 2).sum(1) + ((mem - target) ** 2).sum(1)
        diff = (lhs - rhs).reshape(80, R)  # the cross term, zero on average over (i, Z)
        se = diff.mean(1).std(ddof=1) / np.sqrt(80)
        assert abs(diff.mean()) < 4 * se + 1e-12
        assert lhs.mean() - ((mem - target) ** 2).sum(1).mean() > 0  # excess over mem >= 0


def test_mem_loss_numerically_zero_at_high_snr():
    data = sample_gmm(100, 30, 4, seed=2)
    for t in grid.paper_grid()[15:]:  # psi_t >= 5.2
        assert training_loss(memorizing_denoiser(data.train), data.train, t, n_noise=20).value < 1e-20


def test_k1_generalizing_loss_is_exact_at_every_grid_time():
    data = sample_gmm(300, 20, 1, seed=7)
    gen = generalizing_denoiser(data)
    for t in grid.paper_grid():
        (v,) = per_draw_losses(data.train, t, [gen], n_noise=30, seed=3)
        per_point = v[0].mean(axis=1)
        se_total = per_point.std(ddof=1) / np.sqrt(per_point.size)  # noise and data variability
        theory = 20 / (grid.psi(t) + 1)
        assert abs(per_point.mean() - theory) < 4 * se_total


def test_generalizing_excess_matches_theorem_31_in_window():
    res = gmm_excess_losses(150, 120, 6, T16, [150], n_noise=60, seed=3)
    assert res.in_window
    assert abs(res.generalizing - res.theory_generalizing) <= 3 * res.generalizing_se + 0.02 * res.theory_generalizing


def test_pmem_excess_constant_between_one_and_two():
    res = gmm_excess_losses(200, 100, 2, T16, [60, 100, 150], n_noise=30, seed=4)
    assert res.M.min() > res.coupon_bound
    c_eff = res.pmem / ((1 - res.M / res.N) * res.d * res.sigma2)
    assert np.all(c_eff > 0.95) and np.all(c_eff < 2.05)


def test_ddim_with_memorizing_denoiser_lands_on_training_points():
    data = sample_gmm(40, 20, 3, seed=8)
    s1 = ddim_sample(memorizing_denoiser(data.train), 30, seed=5).samples
    s2 = ddim_sample(memorizing_denoiser(data.train), 30, seed=5).samples
    np.testing.assert_array_equal(s1, s2)  # deterministic given the seed
    dist = np.linalg.norm(s1[:, None, :] - data.train[None], axis=2)
    d_sorted = np.sort(dist, axis=1)
    assert np.all(d_sorted[:, 0] < 0.002 * np.sqrt(20))
    assert np.all(d_sorted[:, 0] ** 2 < d_sorted[:, 1] ** 2 / 9)  # memorized by the 1/3 rule
    pm = ddim_sample(pmem_denoiser(data.train, 10), 30, seed=5).samples
    near = np.argmin(np.linalg.norm(pm[:, None, :] - data.train[None], axis=2), axis=1)
    assert np.all(near < 10)
    fresh = sample_gmm(30, 20, 3, seed=8).heldout[:30]  # fresh draws: not memorized
    df = np.sort(np.linalg.norm(fresh[:, None, :] - data.train[None], axis=2), axis=1)
    assert np.all(df[:, 0] ** 2 >= df[:, 1] ** 2 / 9)


def test_sample_gmm_geometry_and_seed():
    a = sample_gmm(50, 30, 5, seed=1)
    b = sample_gmm(50, 30, 5, seed=1)
    np.testing.assert_array_equal(a.train, b.train)
    np.testing.assert_allclose(np.linalg.norm(a.means, axis=1), np.sqrt(30), rtol=1e-12)
    resid = a.train - a.means[a.labels]
    assert resid.var() == pytest.approx(1.0, rel=0.1)


BAD = [
    (dict(N=0), "N"), (dict(N=2.5), "N"), (dict(d=-1), "d"), (dict(K=0), "K"), (dict(K=1.5), "K"),
    (dict(Ms=[0]), "M"), (dict(Ms=[300]), "M"), (dict(Ms=[2.5]), "M"), (dict(n_noise=0), "n_noise"),
    (dict(n_noise=1.5), "n_noise"), (dict(sigma2=0.0), "sigma2"), (dict(sigma2=-1.0), "sigma2"),
    (dict(t=0.0), "t"), (dict(t=1.0), "t"), (dict(t=float("nan")), "t"), (dict(Ms=[]), "Ms"),
]


@pytest.mark.parametrize("kw,name", BAD)
def test_excess_losses_bad_input(kw, name):
    args = dict(N=200, d=10, K=3, t=0.3, Ms=[10], n_noise=4)
    args.update(kw)
    with pytest.raises((ValueError, TypeError), match=name):
        gmm_excess_losses(args.pop("N"), args.pop("d"), args.pop("K"), args.pop("t"), args.pop("Ms"),
                          **args)


def test_denoiser_bad_input():
    with pytest.raises(ValueError, match="sigma2"):
        GMMDenoiser(np.zeros((2, 3)), -1.0)
    with pytest.raises(ValueError, match="means"):
        GMMDenoiser(np.full((2, 3), np.nan), 0.0)
    with pytest.raises(ValueError, match="x must have shape"):
        memorizing_denoiser(np.zeros((2, 3))).x0(0.5, np.zeros(4))
    with pytest.raises(ValueError, match="M must satisfy"):
        pmem_denoiser(np.zeros((3, 2)), 4)


def test_docstring_examples_run():
    import doctest

    from memlab.numerics import gmm, losses, sampler

    for mod in (gmm, losses, sampler, grid):
        res = doctest.testmod(mod, optionflags=doctest.NORMALIZE_WHITESPACE)
        assert res.attempted >= 1 and res.failed == 0, mod.__name__


def test_losses_reject_a_denoiser_of_another_schedule():
    """The laboratory's losses noise with the 'gmm' schedule; an EDM optimal denoiser would be evaluated at the
    wrong alpha_t, so it is refused by name instead of giving a silently wrong loss."""
    from memlab.numerics.gmm import optimal_denoiser

    data = sample_gmm(20, 4, 2, seed=0)
    with pytest.raises(ValueError, match="schedule 'edm'"):
        training_loss(optimal_denoiser(data.train, "edm"), data.train, 0.3)
    assert training_loss(optimal_denoiser(data.train), data.train, 0.3).value == \
        training_loss(memorizing_denoiser(data.train), data.train, 0.3).value


# ----------------------------------------------------------------------------------- parallel paths, threads=
def _numpy_losses(x0, z, mu, t, sigma2):
    """Independent reference: difference-vector distances, max-shifted softmax (numpy, float64)."""
    a = np.sqrt(1 - t * t)
    D = a * a * sigma2 + t * t
    X = (a * x0[:, None, :] + t * z).reshape(-1, x0.shape[1])
    d2 = ((X[:, None, :] - a * mu[None]) ** 2).sum(axis=2)
    w = -d2 / (2 * D)
    p = np.exp(w - w.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    xbar = a * sigma2 / D * X + t * t / D * (p @ mu)
    return ((xbar - np.repeat(x0, z.shape[1], axis=0)) ** 2).sum(axis=1)


@pytest.mark.parametrize("t", [0.001, 0.2, 0.36028, 0.52, 0.72, 0.999])
def test_parallel_losses_equal_serial_and_numpy(t):
    """threads=1 and threads=2, 3 give the same bits (each row block is computed the same way on any thread);
    both match the numpy reference on the same draws, prefix segments included."""
    data = sample_gmm(90, 24, 3, seed=21)
    mem = memorizing_denoiser(data.train)
    gen = generalizing_denoiser(data)
    pre = [5, 40, 63, 90]
    kw = dict(n_noise=12, seed=17, prefixes=[pre, [3]])  # 1080 rows: several row blocks per thread
    v1 = per_draw_losses(data.train, t, [mem, gen], threads=1, **kw)
    for threads in (2, 3):
        vp = per_draw_losses(data.train, t, [mem, gen], threads=threads, **kw)
        for a, b in zip(v1, vp):
            np.testing.assert_array_equal(a, b)
    z = np.random.default_rng(17).standard_normal((90, 12, 24))
    scale = (data.train ** 2).sum(axis=1).max()  # ||x0||^2: the losses' natural scale (tiny ones are rounding)
    for j, m in enumerate(pre):
        ref = _numpy_losses(data.train, z, data.train[:m], t, 0.0)
        np.testing.assert_allclose(v1[0][j].ravel(), ref, rtol=1e-11, atol=1e-13 * scale)
    ref = _numpy_losses(data.train, z, data.means, t, data.sigma2)
    np.testing.assert_allclose(v1[1][0].ravel(), ref, rtol=1e-11, atol=1e-13 * scale)


def test_threads_argument_of_the_loss_functions():
    data = sample_gmm(60, 10, 2, seed=3)
    mem = memorizing_denoiser(data.train)
    a = training_loss(mem, data.train, 0.6, n_noise=20, threads=1)
    b = training_loss(mem, data.train, 0.6, n_noise=20, threads=2)
    assert a == b
    e1 = gmm_excess_losses(60, 10, 2, T16, [20, 60], n_noise=10, threads=1)
    e2 = gmm_excess_losses(60, 10, 2, T16, [20, 60], n_noise=10, threads=2)
    np.testing.assert_array_equal(e1.pmem, e2.pmem)
    assert e1.generalizing == e2.generalizing
    for bad, exc in ((0, ValueError), (-2, ValueError), (1.5, TypeError), (True, TypeError)):
        with pytest.raises(exc, match="threads"):
            per_draw_losses(data.train, 0.6, [mem], threads=bad)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_standard_normal_draws_are_numpys(threads):
    """Bit for bit numpy's ``Generator(PCG64).standard_normal``, for every size and thread count; a Generator
    advances exactly as numpy's call advances it (successive calls continue the stream)."""
    for seed in (0, 1, 12345):
        for size in (0, 1, 63, 64, 1000, (7, 9, 11), 70_001, 300_000):
            ours = standard_normal_draws(seed, size, threads=threads)
            ref = np.random.default_rng(seed).standard_normal(size)
            assert ours.shape == ref.shape
            np.testing.assert_array_equal(ours, ref)
    g_ours, g_ref = np.random.default_rng(99), np.random.default_rng(99)
    for size in (100_000, 5, (300, 7), 2_200_000, 64):
        np.testing.assert_array_equal(standard_normal_draws(g_ours, size, threads=threads), g_ref.standard_normal(size))
        assert g_ours.bit_generator.state == g_ref.bit_generator.state
    assert g_ours.random() == g_ref.random()


def _pcg64_with_next_output(u: int, hi: int, base: np.random.PCG64) -> np.random.Generator:
    """A PCG64 Generator whose next 64-bit output is ``u`` (its state after that draw is (hi, lo) with
    rotr(hi ^ lo, hi >> 58) = u); ``hi`` varies the draws that follow."""
    mask = (1 << 64) - 1
    rot = hi >> 58
    lo = (((u << rot) | (u >> (64 - rot))) & mask if rot else u) ^ hi
    inc = base.state["state"]["inc"]
    mult = (2549297995355413924 << 64) + 4865540595714422341
    prev = ((((hi << 64) | lo) - inc) * pow(mult, -1, 1 << 128)) % (1 << 128)
    state = base.state
    state["state"]["state"] = prev
    bg = np.random.PCG64()
    bg.state = state
    assert bg.random_raw() == u
    bg.state = state
    return np.random.Generator(bg)


def test_standard_normal_draws_rejection_and_tail_branches():
    """Force numpy's ziggurat off its fast path: first draws with mantissas at the top of every strip (above its
    fast-acceptance bound: wedge tests accepted and rejected) and in the tail strip 0 (exponential proposals,
    some rejected and redrawn); the values and the end state must still be numpy's."""
    base = np.random.PCG64(5)
    rng = np.random.default_rng(0)
    top = (1 << 52) - 1
    for idx in range(256):
        for sign in (0, 1):
            n_cases = 40 if idx == 0 else 4
            mantissas = [top] + [top - int(v) for v in rng.integers(0, 1 << 48, size=n_cases - 1)]
            for rabs in mantissas:
                u = (rabs << 9) | (sign << 8) | idx
                hi = int(rng.integers(0, 2**63))
                g1 = _pcg64_with_next_output(u, hi, base)
                g2 = _pcg64_with_next_output(u, hi, base)
                np.testing.assert_array_equal(standard_normal_draws(g1, 64, threads=1), g2.standard_normal(64))
                assert g1.bit_generator.state == g2.bit_generator.state


def test_standard_normal_draws_ranges_meet_after_a_multi_draw_normal():
    """The parallel parse cuts the stream into ranges of 65,536 draws; 2.2% of stream positions are not the first
    draw of a normal, so over these 200 seeds (two cuts each) a few cuts fall inside a multi-draw normal and the
    next range meets the true parse one or more normals late.  The values must still be numpy's."""
    for seed in range(200):
        ours = standard_normal_draws(seed, 190_000, threads=1 + seed % 2)
        np.testing.assert_array_equal(ours, np.random.default_rng(seed).standard_normal(190_000))


@settings(max_examples=12, deadline=None)
@given(t=st.sampled_from([0.01, T16, 0.9]), shift=st.integers(-2 ** 30, 2 ** 30), axis_seed=st.integers(0, 2 ** 16),
       n_means=st.sampled_from([1, 7, 40]))
def test_losses_are_translation_invariant_far_from_the_origin(t, shift, axis_seed, n_means):
    """Shifting the clean points and the means by one vector leaves every per-draw loss unchanged (x_t - alpha mu
    and xbar - x0 do not move).  The data are multiples of 2^-20 and the shift an integer below 2^30, so the
    shifted inputs are exact in float64; the losses must then agree to rounding, also where the GEMM expansion
    of the distances cancels (|x|^2 ~ 1e18 against distances ~ 1)."""
    rng = np.random.default_rng(axis_seed)
    q = 2.0 ** -20
    train = np.round(rng.standard_normal((40, 5)) * 2 / q) * q
    points = np.round(rng.standard_normal((6, 5)) * 2 / q) * q
    c = rng.integers(-abs(shift), abs(shift) + 1, size=5).astype(np.float64)
    near = per_draw_losses(points, t, [memorizing_denoiser(train[:n_means])], n_noise=4, seed=1)[0]
    far = per_draw_losses(points + c, t, [memorizing_denoiser(train[:n_means] + c)], n_noise=4, seed=1)[0]
    assert np.all(np.isfinite(far))
    np.testing.assert_allclose(far, near, rtol=1e-9, atol=1e-9 * float(np.max(near)))


@pytest.mark.parametrize("scale", [1e75, 1e200])
def test_data_too_large_for_float64_distances_is_a_clear_error(scale):
    train = np.random.default_rng(0).standard_normal((5, 3)) * scale
    with pytest.raises(ValueError, match="must have entries of magnitude"):
        training_loss(memorizing_denoiser(train / scale), train, 0.3)
    if scale > 1e150:
        with pytest.raises(ValueError, match="^train must have entries of magnitude"):
            memorizing_denoiser(train)
