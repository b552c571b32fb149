"""Finite-size random-features matrices (docs/theory/random_features.md §3-§4): GEP structure, true features, bulk
counts."""

import math

import numpy as np
import pytest

from memlab.numerics.rf_matrices import (GEPMatrices, eigenvalues, gep_eigenvalues, gep_matrices,
                                         true_feature_matrices)
from memlab.numerics.rf_spectrum import count_per_bulk, rf_spectrum
from memlab.theory.rf_model import RFModel


def test_same_seed_same_draws_and_gep_structure():
    model = RFModel.from_sizes(30, 90, 12, 0.2, seed=4)
    g = gep_matrices(model)
    a = true_feature_matrices(model, method="monte_carlo", n_noise=2)
    assert np.array_equal(g.W_bar, a.W_bar) and np.array_equal(g.X, a.X)
    assert not np.array_equal(g.W_bar, gep_matrices(model.replace(seed=5)).W_bar)
    c = g.constants
    # U = G G^T / n + b^2 K + s^2 I with G = e^{-t} a_t W_bar X + v_t Omega (Lemma C.1)
    G = math.exp(-0.2) * c.a_t * g.W_bar @ g.X + math.sqrt(c.v_t2) * g.Omega
    assert np.allclose(g.U, G @ G.T / 30 + c.b_t ** 2 * g.W_bar @ g.W_bar.T + c.s_t2 * np.eye(90), atol=1e-14)
    assert np.allclose(g.U_tilde, c.mu1 ** 2 * g.K + c.mustar2 * np.eye(90), atol=1e-14)   # Sigma = I
    assert np.array_equal(g.V, c.b_t * g.W_bar) and np.array_equal(g.V, g.V_tilde)


@pytest.mark.parametrize("n,p,d", [(40, 300, 20), (200, 150, 30), (10, 25, 20)])
def test_gram_trick_equals_dense_eigenvalues(n, p, d):
    model = RFModel.from_sizes(n, p, d, 0.05, seed=1)
    g = gep_matrices(model)
    ev = gep_eigenvalues(g)
    assert ev.shape == (p,)
    assert np.allclose(ev, eigenvalues(g.U), atol=1e-11)
    assert np.allclose(ev, gep_eigenvalues(gep_matrices(model, dense=False)), atol=0)


def test_delta_peak_is_exact_by_rank():
    """p - n - d eigenvalues sit exactly at s_t^2 (docs/theory/random_features.md §4) and the others strictly above."""
    g = gep_matrices(RFModel.from_sizes(50, 400, 25, 0.1, seed=2))
    ev = eigenvalues(g.U)
    s2 = g.constants.s_t2
    at = np.abs(ev - s2) < 1e-10
    assert at.sum() == 400 - 50 - 25
    assert np.all(ev[~at] > s2 + 1e-6)


def test_finite_size_counts_and_edges_match_theory():
    """Fig. 4 setting (psi_p = 64, psi_n = 8, t = 0.01, d = 100): eigenvalue counts per part equal
    p * mass exactly up to +-1, and the empirical bulk edges agree with the theory edges.

    Tolerance for the edges: the extreme eigenvalue of a bulk holding N eigenvalues fluctuates
    (Tracy-Widom) and is shifted by finite-size corrections, both of relative order N^{-2/3} of the bulk
    width; we allow 3 * width * N^{-2/3} (1.6 for rho_2 with N = 100, 0.006 for rho_1 with N = 700).
    """
    spec = rf_spectrum(RFModel(64, 8, 0.01))
    assert len(spec.bulks) == 3
    p = 6400
    for seed in (0, 1):
        ev = gep_eigenvalues(gep_matrices(RFModel.from_sizes(800, p, 100, 0.01, seed=seed), dense=False))
        n_delta, counts = count_per_bulk(spec, ev)
        assert n_delta == p - 800 - 100
        assert abs(n_delta - p * spec.delta_weight) <= 1
        for cnt, (lo, hi, mass) in zip(counts, spec.bulks):
            assert abs(cnt - p * mass) <= 1
        rest = ev[n_delta:]
        start = 0
        for cnt, (lo, hi, mass) in zip(counts, spec.bulks):
            part = rest[start:start + cnt]
            start += cnt
            tol = 3 * (hi - lo) * cnt ** (-2 / 3)
            assert abs(part[0] - lo) < tol and abs(part[-1] - hi) < tol
        # density vs histogram inside rho_1: Kolmogorov distance of the normalised CDFs
        lo1, hi1, m1 = spec.bulks[1]
        part = rest[counts[0]:counts[0] + counts[1]]
        theory_cdf = (spec.cumulative_mass(part) - spec.cumulative_mass(lo1 * 0.999)) / m1
        emp_cdf = (np.arange(1, part.size + 1) - 0.5) / part.size
        assert np.max(np.abs(theory_cdf - emp_cdf)) < 0.03


def _bivariate_quad(f, mean_i, mean_j, cov, n=120):
    z, w = np.polynomial.hermite_e.hermegauss(n)
    w = w / w.sum()
    L = np.linalg.cholesky(cov)
    Z1, Z2 = np.meshgrid(z, z, indexing="ij")
    h1 = mean_i + L[0, 0] * Z1
    h2 = mean_j + L[1, 0] * Z1 + L[1, 1] * Z2
    return float((np.outer(w, w) * f(h1) * f(h2)).sum())


@pytest.mark.parametrize("activation,center", [("tanh", False), ("erf", False)])
def test_true_features_mehler_against_bivariate_quadrature(activation, center):
    n, p, d, t = 12, 30, 8, 0.3
    a = true_feature_matrices(RFModel.from_sizes(n, p, d, t, activation=activation, center=center, seed=7), k_max=150,
                              n_nodes=200, tol=1e-13)
    f = a.constants.activation_function()
    K = a.W_bar @ a.W_bar.T
    delta = -math.expm1(-2 * t)
    means = math.exp(-t) * a.W_bar @ a.X
    C = K * (math.exp(-2 * t) + delta)
    rng = np.random.default_rng(0)
    for i, j in rng.integers(0, p, size=(6, 2)):
        if i == j:
            continue
        cov = delta * K[np.ix_([i, j], [i, j])]
        ref = np.mean([_bivariate_quad(f, means[i, nu], means[j, nu], cov) for nu in range(n)])
        assert abs(a.U[i, j] - ref) < 1e-9
        ref_t = _bivariate_quad(f, 0.0, 0.0, C[np.ix_([i, j], [i, j])])
        assert abs(a.U_tilde[i, j] - ref_t) < 1e-9


def test_true_features_mehler_against_monte_carlo():
    """Exact noise average vs Monte Carlo over xi (relu, centred; kink split in the Hermite table)."""
    model = RFModel.from_sizes(40, 80, 20, 0.1, activation="relu", center=True, seed=3)
    a = true_feature_matrices(model, k_max=80, n_nodes=100)
    b = true_feature_matrices(model, method="monte_carlo", n_noise=3000)
    m2 = a.constants.norm2
    n_samples = 40 * 3000
    for name, var in (("U", m2 ** 2), ("U_tilde", m2 ** 2), ("V", m2), ("V_tilde", m2)):
        A, B = getattr(a, name), getattr(b, name)
        # Monte Carlo standard error of the Frobenius norm: sqrt(entries * Var(entry sample) / samples)
        # with Var(phi_i phi_j) ~ ||sigma||^4 and Var(phi_i xi_k) ~ ||sigma||^2
        expected = math.sqrt(A.size * var / n_samples)
        assert np.linalg.norm(A - B) < 2.5 * expected, name
        assert np.linalg.norm(A - B) < 0.05 * np.linalg.norm(A), name


def test_gaussian_equivalence_at_moderate_d():
    """True tanh features vs the GEP at d = 60 (Lemma C.1): same trace, same rho_2 (count and top
    eigenvalues) and the bottom p - n - d eigenvalues spread around s_t^2."""
    n, p, d, t = 240, 960, 60, 0.1
    model = RFModel.from_sizes(n, p, d, t, seed=1)
    a = true_feature_matrices(model)
    g = gep_matrices(model)
    ea, eg = eigenvalues(a.U), gep_eigenvalues(g)
    assert abs(np.trace(a.U) - np.trace(g.U)) / np.trace(g.U) < 0.01
    assert np.allclose(ea[-d:].sum(), eg[-d:].sum(), rtol=0.02)
    assert abs(ea[-1] - eg[-1]) / eg[-1] < 0.03
    spec = rf_spectrum(model)
    assert count_per_bulk(spec, ea)[1][-1] == d          # the population bulk holds d eigenvalues
    s2 = g.constants.s_t2
    # finite-d corrections to the delta-peak are O(d^{-1/2}) (about 10% at d = 60)
    assert abs(np.mean(ea[:p - n - d]) - s2) < 0.2 * s2
    assert np.linalg.norm(a.V - g.V) / np.linalg.norm(g.V) < 0.1


@pytest.mark.parametrize("call,err,name", [
    (lambda: gep_matrices(RFModel.from_sizes(0, 10, 5, 0.1)), ValueError, "n"),
    (lambda: gep_matrices(RFModel.from_sizes(10, -1, 5, 0.1)), ValueError, "p"),
    (lambda: gep_matrices(RFModel.from_sizes(10, 10, 2.5, 0.1)), ValueError, "d"),
    (lambda: gep_matrices(RFModel.from_sizes(10, 10, 5, 0.0)), ValueError, "t"),
    (lambda: gep_matrices(RFModel.from_sizes(10, 10, 5, 0.1, seed=-1)), ValueError, "seed"),
    (lambda: gep_matrices(RFModel(2, 2, 0.1, d=5, covariance=([1.0, 2.0], [0.5, 0.5]))), ValueError, "covariance"),
    (lambda: RFModel(5, 5, 0.1, d=2, covariance=([1.0, 2.0], [0.5, 0.5]), sigma_x=3.0), ValueError, "sigma_x"),
    (lambda: gep_matrices(RFModel.from_sizes(10, 10, 5, 0.1, activation="relu")), ValueError, "center"),
    (lambda: gep_matrices((10, 10, 5, 0.1)), TypeError, "RFModel"),
    (lambda: true_feature_matrices(RFModel.from_sizes(10, 10, 5, 0.1), method="exact"), ValueError, "method"),
    (lambda: true_feature_matrices(RFModel.from_sizes(10, 10, 5, 0.1), k_max=40, n_nodes=40), ValueError, "n_nodes"),
    (lambda: gep_eigenvalues(np.eye(3)), TypeError, "mats"),
    (lambda: eigenvalues(np.ones((2, 3))), ValueError, "U"),
])
def test_bad_input(call, err, name):
    with pytest.raises(err, match=name):
        call()


def test_covariance_eigs_enter_sigma_x():
    g = gep_matrices(RFModel.from_sizes(20, 60, 4, 0.1, covariance=([0.5, 1.5], [0.5, 0.5]), seed=0))
    assert isinstance(g, GEPMatrices) and abs(g.constants.sigma_x - 1.0) < 1e-15
    assert np.allclose(g.X.var(axis=1)[:2].mean() * 3, g.X.var(axis=1)[2:].mean(), rtol=0.6)
