"""numba kernels: complex Newton with epsilon-continuation for Theorem 3.1 (arXiv:2505.17638).

Unknowns ``x = (q, r, s)`` at ``z = lambda + i eps``; residuals ``F1 = s - sum_k w_k T_k``,
``F2 = r - sum_k w_k theta_k T_k``, ``F3 = E3 q^2 L`` with the atom term ``T`` and ``E3 q^2 L`` and
their analytic derivatives generated from the sympy derivation (``_rf_generated.py``).

Status codes per point: 0 converged; 1 Newton did not converge; 2 Herglotz/branch check failed;
3 non-finite values; 4 spurious root ``q = 0``.
"""

from __future__ import annotations

import numpy as np
from numba import literal_unroll, njit, prange

from ._rf_generated import atom_term, e3_cleared, e3_terms

OK, NO_CONV, BRANCH, NONFINITE, SPURIOUS = 0, 1, 2, 3, 4


@njit(cache=True, error_model="numpy")
def system(q, r, s, z, thetas, omegas, pp, pn, aE, b2, v2, s2):
    F1 = s + 0j
    F2 = r + 0j
    j1q = 0j
    j1r = 0j
    j2q = 0j
    j2r = 1.0 + 0j
    for k in range(thetas.shape[0]):
        th = thetas[k]
        om = omegas[k]
        T, Tq, Tr = atom_term(q, r, th, pp, pn, aE, b2, v2)
        F1 -= om * T
        F2 -= om * th * T
        j1q -= om * Tq
        j1r -= om * Tr
        j2q -= om * th * Tq
        j2r -= om * th * Tr
    F3, f3q, f3r, f3s = e3_cleared(q, r, s, z, pp, pn, aE, b2, v2, s2)
    return F1, F2, F3, j1q, j1r, j2q, j2r, f3q, f3r, f3s


@njit(cache=True, error_model="numpy")
def rel_residual(q, r, s, z, thetas, omegas, pp, pn, aE, b2, v2, s2):
    """Max relative residual of the *uncleared* equations E1, E2, E3 (each over its largest term)."""
    a1 = abs(s)
    a2 = abs(r)
    t1 = s + 0j
    t2 = r + 0j
    for k in range(thetas.shape[0]):
        T = atom_term(q, r, thetas[k], pp, pn, aE, b2, v2)[0]
        t1 -= omegas[k] * T
        t2 -= omegas[k] * thetas[k] * T
        a1 = max(a1, abs(omegas[k] * T))
        a2 = max(a2, abs(omegas[k] * thetas[k] * T))
    terms = e3_terms(q, r, s, z, pp, pn, aE, b2, v2, s2)
    tot = 0j
    a3 = 0.0
    for x in literal_unroll(terms):
        tot += x
        a3 = max(a3, abs(x))
    return max(abs(t1) / a1, abs(t2) / a2, abs(tot) / a3)


@njit(cache=True, error_model="numpy")
def _newton(q, r, s, z, thetas, omegas, pp, pn, aE, b2, v2, s2, sx2, max_iter, tol):
    """Newton from (q, r, s); returns (q, r, s, status, n_iter, rel_residual)."""
    eps = z.imag
    it = 0
    for it in range(1, max_iter + 1):
        F1, F2, F3, a, b, d, e, g, h, i = system(q, r, s, z, thetas, omegas, pp, pn, aE, b2, v2, s2)
        # J = [[a, b, 1], [d, e, 0], [g, h, i]];  solve J dx = -F by Cramer's rule
        det = a * (e * i) - b * (d * i) + (d * h - e * g)
        if det == 0:
            return q, r, s, NO_CONV, it, np.inf
        R1, R2, R3 = -F1, -F2, -F3
        dq = (R1 * (e * i) - b * (R2 * i) + (R2 * h - e * R3)) / det
        dr = (a * (R2 * i) - R1 * (d * i) + (d * R3 - R2 * g)) / det
        ds = (a * (e * R3 - R2 * h) - b * (d * R3 - R2 * g) + R1 * (d * h - e * g)) / det
        q += dq
        r += dr
        s += ds
        if not (np.isfinite(q.real) and np.isfinite(q.imag) and np.isfinite(r.real)
                and np.isfinite(r.imag) and np.isfinite(s.real) and np.isfinite(s.imag)):
            return q, r, s, NONFINITE, it, np.inf
        if abs(q) < 1e-100:   # spurious q -> 0 branch; q**2 would underflow near 1e-154
            return q, r, s, SPURIOUS, it, np.inf
        step = max(abs(dq) / (abs(q) + 1e-300), abs(dr) / (abs(r) + 1e-300), abs(ds) / (abs(s) + 1e-300))
        if step < 1e-15:
            break
    res = rel_residual(q, r, s, z, thetas, omegas, pp, pn, aE, b2, v2, s2)
    if not res < tol:
        return q, r, s, NO_CONV, it, res
    # Herglotz with the Cauchy-Schwarz bound: Im q >= eps |q|^2 (mass 1), same for s, and r (mass sx2)
    slack = 1.0 - 1e-7
    if (q.imag < slack * eps * abs(q) ** 2 - 1e-13 * abs(q)
            or s.imag < slack * eps * abs(s) ** 2 - 1e-13 * abs(s)
            or r.imag < slack * eps * abs(r) ** 2 / sx2 - 1e-13 * abs(r)):
        return q, r, s, BRANCH, it, res
    return q, r, s, OK, it, res


@njit(cache=True, error_model="numpy")
def _ladder(lam, eps_start, eps_min, q, r, s, thetas, omegas, pp, pn, aE, b2, v2, s2, sx2,
            factor0, max_iter, tol, max_steps):
    """Continue from the solution ``(q, r, s)`` at ``lam + i eps_start`` down to ``eps_min``.

    The ladder is adaptive: a failed step is retried closer (factor -> sqrt(factor)), a
    successful one lengthens the next (factor -> factor^1.5, at most factor0).
    Returns (q, r, s, status, total_newton_iterations, residual, steps).
    """
    eps = eps_start
    factor = factor0
    total = 0
    steps = 0
    res = 0.0
    st = OK
    while eps > eps_min * (1.0 + 1e-12):
        if steps >= max_steps:
            return q, r, s, NO_CONV, total, res, steps
        e_next = max(eps * factor, eps_min)
        q1, r1, s1, st, it, res = _newton(q, r, s, complex(lam, e_next), thetas, omegas, pp, pn, aE,
                                          b2, v2, s2, sx2, max_iter, tol)
        total += it
        steps += 1
        if st == OK:
            q, r, s = q1, r1, s1
            eps = e_next
            factor = max(factor ** 1.5, factor0)
        else:
            factor = np.sqrt(factor)
            if factor > 0.999:
                return q, r, s, st, total, res, steps
    return q, r, s, st, total, res, steps


@njit(cache=True, error_model="numpy")
def _solve_one_full(lam, eps0, eps_min, thetas, omegas, pp, pn, aE, b2, v2, s2, sx2, factor0,
                    max_iter, tol, max_steps):
    z0 = complex(lam, eps0)
    q0 = -1.0 / z0
    q, r, s, st, it, res = _newton(q0, sx2 * q0, q0, z0, thetas, omegas, pp, pn, aE, b2, v2, s2, sx2,
                                   max_iter, tol)
    if st != OK:
        return q, r, s, st, it, res, 1
    q, r, s, st, it2, res, steps = _ladder(lam, eps0, eps_min, q, r, s, thetas, omegas, pp, pn, aE, b2,
                                           v2, s2, sx2, factor0, max_iter, tol, max_steps)
    return q, r, s, st, it + it2, res, steps + 1


@njit(cache=True, parallel=True, error_model="numpy")
def solve_grid(lams, eps_mins, eps0, thetas, omegas, pp, pn, aE, b2, v2, s2, sx2, factor0, max_iter,
               tol, max_steps, n_chunks, warm):
    """Solve at every ``lams[j] + i eps_mins[j]`` (``lams`` sorted ascending).

    The grid is split into ``n_chunks`` contiguous chunks solved in parallel.  Inside a chunk each
    point starts from its left neighbour's solution through a short local epsilon ladder
    (``warm=True``) and falls back to the full ladder from ``eps0`` on failure.
    """
    n = lams.shape[0]
    Q = np.empty(n, dtype=np.complex128)
    Rr = np.empty(n, dtype=np.complex128)
    Ss = np.empty(n, dtype=np.complex128)
    status = np.empty(n, dtype=np.int64)
    iters = np.empty(n, dtype=np.int64)
    resid = np.empty(n, dtype=np.float64)
    full = np.zeros(n, dtype=np.bool_)
    size = (n + n_chunks - 1) // n_chunks
    for c in prange(n_chunks):
        lo = c * size
        hi = min(n, lo + size)
        have_prev = False
        qp = 0j
        rp = 0j
        sp = 0j
        for j in range(lo, hi):
            st = NO_CONV
            tot = 0
            res = np.inf
            q = 0j
            r = 0j
            s = 0j
            if warm and have_prev:
                e_start = max(eps_mins[j], abs(lams[j] - lams[j - 1]))
                q, r, s, st, it, res = _newton(qp, rp, sp, complex(lams[j], e_start), thetas, omegas,
                                               pp, pn, aE, b2, v2, s2, sx2, max_iter, tol)
                tot += it
                if st == OK and e_start > eps_mins[j]:
                    q, r, s, st, it, res, _ = _ladder(lams[j], e_start, eps_mins[j], q, r, s, thetas,
                                                      omegas, pp, pn, aE, b2, v2, s2, sx2, factor0,
                                                      max_iter, tol, max_steps)
                    tot += it
            if st != OK:
                q, r, s, st, it, res, _ = _solve_one_full(lams[j], eps0, eps_mins[j], thetas, omegas, pp,
                                                          pn, aE, b2, v2, s2, sx2, factor0, max_iter,
                                                          tol, max_steps)
                tot += it
                full[j] = True
            Q[j] = q
            Rr[j] = r
            Ss[j] = s
            status[j] = st
            iters[j] = tot
            resid[j] = res
            have_prev = st == OK
            qp, rp, sp = q, r, s
    return Q, Rr, Ss, status, iters, resid, full
