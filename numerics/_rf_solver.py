"""numba kernels: complex Newton with epsilon-continuation for Theorem 3.1 (arXiv:2505.17638), and the bulk edges.

Unknowns ``x = (q, r, s)`` at ``z = lambda + i eps``; residuals ``F1 = s - sum_k w_k T_k``,
``F2 = r - sum_k w_k theta_k T_k``, ``F3 = E3 q^2 L`` with the atom term ``T`` and ``E3 q^2 L`` and
their analytic derivatives generated from the sympy derivation (``_rf_generated.py``).

* :func:`solve_range` (serial) solves a sorted run of points, each warm-started from its left neighbour
  with a tangent predictor (of ``1/x``: exact at large ``|z|`` and at the delta peak's pole) and one Newton
  solve, accepted only if Newton's correction is small against the predicted move (so it cannot jump branch);
  otherwise the short local epsilon ladder from ``|d lambda|``, then the full ladder from ``eps0``.
  :func:`solve_serial` runs it over fixed chunks, :func:`solve_parallel` runs the same chunks in a numba
  parallel region: both give identical numbers.
* :func:`fold_edges` finds bulk edges as folds of the real branch: ``F(x, lambda) = 0`` and
  ``det dF/dx = 0`` in real arithmetic (docs/theory/random_features.md §4), Newton in ``(q, r, s, lambda)``
  with the derivatives of the determinant by complex steps (the kernels are holomorphic).

Status codes per point: 0 converged; 1 Newton did not converge; 2 Herglotz/branch check failed;
3 non-finite values; 4 spurious root ``q = 0``.
"""

from __future__ import annotations

import numpy as np
from numba import literal_unroll, prange

from ._jit import njit
from ._rf_generated import atom_term, e3_cleared, e3_terms

OK, NO_CONV, BRANCH, NONFINITE, SPURIOUS = 0, 1, 2, 3, 4
#: points per chunk of :func:`solve_serial` / :func:`solve_parallel` (each chunk starts with a full ladder)
CHUNK = 256
#: a warm-started Newton solve is accepted only if its correction is below KAPPA times the predicted move
KAPPA = 0.25


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
    prev = np.inf
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
        # converged: the step is at rounding level, or quadratic convergence puts the remaining error near
        # step^2 / prev^2 * step <= step^2 < 1e-16; or Newton stalls at the rounding floor
        if step < 1e-15 or (step < 1e-8 and step <= prev * prev) or (step < 1e-7 and step > 0.5 * prev):
            break
        prev = step
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
def z_derivative(q, r, s, z, thetas, omegas, pp, pn, aE, b2, v2, s2):
    """``dx/dz`` along the solution: ``J dx/dz = -dF/dz``.

    F1 and F2 do not depend on ``z`` and the cleared F3 is affine in ``z`` (E3 is linear in ``z``; the
    clearing factor ``q^2 L`` is not), so ``dF3/dz = F3(z + 1) - F3(z)`` at the same ``(q, r, s)``.
    """
    F1, F2, F3, a, b, d, e, g, h, i = system(q, r, s, z, thetas, omegas, pp, pn, aE, b2, v2, s2)
    fz = e3_cleared(q, r, s, z + 1.0, pp, pn, aE, b2, v2, s2)[0] - F3
    det = a * (e * i) - b * (d * i) + (d * h - e * g)
    if det == 0:
        return 0j, 0j, 0j
    R3 = -fz
    dq = -e * R3 / det
    dr = d * R3 / det
    ds = (a * e - b * d) * R3 / det
    return dq, dr, ds


@njit(cache=True, error_model="numpy")
def _moved(q, r, s, q0, r0, s0):
    """Largest relative change between two triples (relative to the first)."""
    return max(abs(q - q0) / (abs(q) + 1e-300), abs(r - r0) / (abs(r) + 1e-300),
               abs(s - s0) / (abs(s) + 1e-300))


@njit(cache=True, error_model="numpy")
def _predict(x, dx, dz):
    """Predictor for one unknown over a step ``dz``: the tangent of ``1/x``, ``x / (1 - (x'/x) dz)``.

    Exact for ``x ~ -1/z`` (large ``|z|``, where the epsilon ladder starts) and for a simple pole
    ``x ~ w/(s_t^2 - z)`` (the delta peak), equal to the tangent ``x + x' dz`` to first order; the plain
    tangent is used if the denominator vanishes.
    """
    den = x - dx * dz
    if abs(den) < 1e-300:
        return x + dx * dz
    out = x * x / den
    if not (np.isfinite(out.real) and np.isfinite(out.imag)):
        return x + dx * dz
    return out


@njit(cache=True, error_model="numpy")
def _ladder(lam, eps_start, eps_min, q, r, s, thetas, omegas, pp, pn, aE, b2, v2, s2, sx2,
            factor0, max_iter, tol, max_steps):
    """Continue from the solution ``(q, r, s)`` at ``lam + i eps_start`` down to ``eps_min``.

    Each step predicts the next solution (:func:`_predict`) and corrects it by Newton; a step is accepted if
    Newton converged, passed the Herglotz test and moved the prediction by less than ``KAPPA`` times the
    predicted change.  The ladder is adaptive: a failed step is retried closer (factor -> sqrt(factor)), a
    successful one lengthens the next (factor -> factor^1.5, at most ``factor0``).
    Returns (q, r, s, status, total_newton_iterations, residual, steps).
    """
    eps = eps_start
    factor = factor0
    total = 0
    steps = 0
    res = 0.0
    st = OK
    dq, dr, ds = z_derivative(q, r, s, complex(lam, eps), thetas, omegas, pp, pn, aE, b2, v2, s2)
    total += 1
    while eps > eps_min * (1.0 + 1e-12):
        if steps >= max_steps:
            return q, r, s, NO_CONV, total, res, steps
        e_next = max(eps * factor, eps_min)
        z1 = complex(lam, e_next)
        dz = complex(0.0, e_next - eps)
        qp = _predict(q, dq, dz)
        rp = _predict(r, dr, dz)
        sp = _predict(s, ds, dz)
        q1, r1, s1, st, it, res = _newton(qp, rp, sp, z1, thetas, omegas, pp, pn, aE, b2, v2, s2, sx2,
                                          max_iter, tol)
        total += it
        steps += 1
        if st == OK and _moved(q1, r1, s1, qp, rp, sp) > KAPPA * _moved(qp, rp, sp, q, r, s) + 1e-10:
            st = BRANCH
        if st == OK:
            q, r, s = q1, r1, s1
            eps = e_next
            factor = max(factor ** 1.5, factor0)
            dq, dr, ds = z_derivative(q, r, s, z1, thetas, omegas, pp, pn, aE, b2, v2, s2)
            total += 1
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


@njit(cache=True, error_model="numpy")
def solve_range(lams, eps_mins, lo, hi, eps0, thetas, omegas, pp, pn, aE, b2, v2, s2, sx2, factor0, max_iter,
                tol, max_steps, warm, Q, Rr, Ss, DQ, status, iters, resid, full):
    """Solve the points ``lo .. hi-1`` of the sorted ``lams`` in order, writing into the output arrays.

    The first point takes the full ladder from ``eps0``.  Each later one (``warm=True``) is first predicted
    from its left neighbour (:func:`_predict`, the tangent of ``1/x``) and corrected by Newton at its own ``eps``;
    the result is kept only if Newton converged, passed the Herglotz test and corrected the prediction by
    less than ``KAPPA`` times the predicted move (a larger correction means the prediction left the
    neighbour's branch, e.g. across a bulk edge).  Otherwise the short local ladder from
    ``eps = |d lambda|`` starting at the neighbour's solution, then the full ladder.  ``DQ`` receives ``dq/dz``.
    """
    have_prev = False
    qp = 0j
    rp = 0j
    sp = 0j
    dqp = 0j
    drp = 0j
    dsp = 0j
    for j in range(lo, hi):
        st = NO_CONV
        tot = 0
        res = np.inf
        q = 0j
        r = 0j
        s = 0j
        zj = complex(lams[j], eps_mins[j])
        if warm and have_prev:
            dz = zj - complex(lams[j - 1], eps_mins[j - 1])
            q0 = _predict(qp, dqp, dz)
            r0 = _predict(rp, drp, dz)
            s0 = _predict(sp, dsp, dz)
            q, r, s, st, it, res = _newton(q0, r0, s0, zj, thetas, omegas, pp, pn, aE, b2, v2, s2, sx2,
                                           max_iter, tol)
            tot += it
            if st == OK and _moved(q, r, s, q0, r0, s0) > KAPPA * _moved(q0, r0, s0, qp, rp, sp) + 1e-10:
                st = BRANCH
            if st != OK:
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
        dq, dr, ds = z_derivative(q, r, s, zj, thetas, omegas, pp, pn, aE, b2, v2, s2)
        Q[j] = q
        Rr[j] = r
        Ss[j] = s
        DQ[j] = dq
        status[j] = st
        iters[j] = tot + 1
        resid[j] = res
        have_prev = st == OK
        qp, rp, sp = q, r, s
        dqp, drp, dsp = dq, dr, ds


@njit(cache=True, error_model="numpy")
def _outputs(n):
    return (np.empty(n, dtype=np.complex128), np.empty(n, dtype=np.complex128),
            np.empty(n, dtype=np.complex128), np.empty(n, dtype=np.complex128),
            np.empty(n, dtype=np.int64), np.empty(n, dtype=np.int64), np.empty(n, dtype=np.float64),
            np.zeros(n, dtype=np.bool_))


@njit(cache=True, error_model="numpy")
def solve_serial(lams, eps_mins, eps0, thetas, omegas, pp, pn, aE, b2, v2, s2, sx2, factor0, max_iter,
                 tol, max_steps, chunk, warm):
    """Solve at every ``lams[j] + i eps_mins[j]`` (``lams`` sorted), chunk by chunk, on the calling thread.

    Returns ``(q, r, s, dq/dz, status, newton_iterations, residual, full_ladder)``.
    """
    n = lams.shape[0]
    Q, Rr, Ss, DQ, status, iters, resid, full = _outputs(n)
    for lo in range(0, n, chunk):
        solve_range(lams, eps_mins, lo, min(n, lo + chunk), eps0, thetas, omegas, pp, pn, aE, b2, v2, s2,
                    sx2, factor0, max_iter, tol, max_steps, warm, Q, Rr, Ss, DQ, status, iters, resid, full)
    return Q, Rr, Ss, DQ, status, iters, resid, full


@njit(cache=True, parallel=True, error_model="numpy")
def solve_parallel(lams, eps_mins, eps0, thetas, omegas, pp, pn, aE, b2, v2, s2, sx2, factor0, max_iter,
                   tol, max_steps, chunk, warm):
    """:func:`solve_serial` with the chunks spread over numba's threads (the same chunks: the same numbers)."""
    n = lams.shape[0]
    Q, Rr, Ss, DQ, status, iters, resid, full = _outputs(n)
    n_chunks = (n + chunk - 1) // chunk
    for c in prange(n_chunks):
        lo = c * chunk
        solve_range(lams, eps_mins, lo, min(n, lo + chunk), eps0, thetas, omegas, pp, pn, aE, b2, v2, s2,
                    sx2, factor0, max_iter, tol, max_steps, warm, Q, Rr, Ss, DQ, status, iters, resid, full)
    return Q, Rr, Ss, DQ, status, iters, resid, full


# ------------------------------------------------------------------------------ bulk edges -------

@njit(cache=True, error_model="numpy")
def _det_j(q, r, s, z, thetas, omegas, pp, pn, aE, b2, v2, s2):
    """``det dF/d(q, r, s)`` and the residuals (holomorphic in every argument)."""
    F1, F2, F3, a, b, d, e, g, h, i = system(q, r, s, z, thetas, omegas, pp, pn, aE, b2, v2, s2)
    return a * (e * i) - b * (d * i) + (d * h - e * g), F1, F2, F3, a, b, d, e, g, h, i


@njit(cache=True, error_model="numpy")
def _solve4(A, y):
    """Solve the real 4x4 system ``A x = y`` (rows equilibrated, partial pivoting); ``ok`` False if singular."""
    M = A.copy()
    v = y.copy()
    for k in range(4):
        sc = np.max(np.abs(M[k]))
        if sc == 0.0 or not np.isfinite(sc):
            return v, False
        M[k] /= sc
        v[k] /= sc
    for k in range(4):
        p = k + np.argmax(np.abs(M[k:, k]))
        if M[p, k] == 0.0:
            return v, False
        if p != k:
            for c in range(4):
                M[k, c], M[p, c] = M[p, c], M[k, c]
            v[k], v[p] = v[p], v[k]
        for m in range(k + 1, 4):
            f = M[m, k] / M[k, k]
            for c in range(k, 4):
                M[m, c] -= f * M[k, c]
            v[m] -= f * v[k]
    x = np.empty(4)
    for k in range(3, -1, -1):
        acc = v[k]
        for c in range(k + 1, 4):
            acc -= M[k, c] * x[c]
        x[k] = acc / M[k, k]
    return x, np.all(np.isfinite(x))


@njit(cache=True, error_model="numpy")
def fold_edges(lam0, q0, r0, s0, lo, hi, thetas, omegas, pp, pn, aE, b2, v2, s2, max_iter):
    """Bulk edges as folds of the real solution branch, one per starting point.

    For each ``k``, Newton on the real unknowns ``u = (q, r, s, lambda)`` of ``F(q, r, s, lambda) = 0``,
    ``D = det dF/d(q, r, s) = 0``, from ``(Re q0, Re r0, Re s0, lam0)`` (a point of the real branch outside the
    support, next to the edge).  ``dF3/dlambda`` is exact (F3 is affine in ``z``); the derivatives of ``D``
    are complex steps of relative size 1e-7 (the kernels are holomorphic; the step's error is of order
    1e-14 and only slows Newton's last iteration, the residuals themselves are exact).  An edge is accepted
    if Newton converged and the fold lies in ``[lo, hi]`` (widened by ``1e-9 |hi - lo|``).

    Returns ``(lam, q, r, s, ok, n_iter)`` per edge.
    """
    n = lam0.shape[0]
    lam_out = np.empty(n)
    qo = np.empty(n)
    ro = np.empty(n)
    so = np.empty(n)
    ok = np.zeros(n, dtype=np.bool_)
    n_it = np.zeros(n, dtype=np.int64)
    A = np.empty((4, 4))
    y = np.empty(4)
    for k in range(n):
        u = np.array([q0[k].real, r0[k].real, s0[k].real, lam0[k]])
        a_lo = min(lo[k], hi[k])
        a_hi = max(lo[k], hi[k])
        width = a_hi - a_lo
        conv = False
        it = 0
        for it in range(1, max_iter + 1):
            q, r, s, lam = u[0], u[1], u[2], u[3]
            D, F1, F2, F3, a, b, d, e, g, h, i = _det_j(q + 0j, r + 0j, s + 0j, lam + 0j, thetas, omegas,
                                                        pp, pn, aE, b2, v2, s2)
            y[0], y[1], y[2], y[3] = -F1.real, -F2.real, -F3.real, -D.real
            A[0, 0], A[0, 1], A[0, 2] = a.real, b.real, 1.0
            A[1, 0], A[1, 1], A[1, 2] = d.real, e.real, 0.0
            A[2, 0], A[2, 1], A[2, 2] = g.real, h.real, i.real
            # dF3/dlambda: F3 is affine in z; dD/du by complex steps of relative size 1e-7 (the
            # generated kernels raise complex numbers to integer powers through exp/log, which leaves
            # rounding noise of relative size 1e-16 in the imaginary part: a smaller step would amplify it)
            A[0, 3] = 0.0
            A[1, 3] = 0.0
            A[2, 3] = (e3_cleared(q + 0j, r + 0j, s + 0j, lam + 1.0 + 0j, pp, pn, aE, b2, v2, s2)[0] - F3).real
            for c in range(4):
                hc = 1e-7 * max(abs(u[c]), 1e-200)
                dq = 1j * hc if c == 0 else 0j
                dr = 1j * hc if c == 1 else 0j
                ds = 1j * hc if c == 2 else 0j
                dz = 1j * hc if c == 3 else 0j
                Dc = _det_j(q + dq, r + dr, s + ds, lam + dz, thetas, omegas, pp, pn, aE, b2, v2, s2)[0]
                A[3, c] = Dc.imag / hc
            du, good = _solve4(A, y)
            if not good:
                break
            # damping: never step further than the bracket's width in lambda
            lim = 2.0 * width
            if abs(du[3]) > lim:
                du *= lim / abs(du[3])
            u += du
            if not np.all(np.isfinite(u)):
                break
            rel = max(abs(du[0]) / (abs(u[0]) + 1e-300), abs(du[1]) / (abs(u[1]) + 1e-300),
                      abs(du[2]) / (abs(u[2]) + 1e-300))
            if abs(du[3]) <= 1e-15 * abs(u[3]) and rel < 1e-10:
                conv = True
                break
        lam_out[k] = u[3]
        qo[k] = u[0]
        ro[k] = u[1]
        so[k] = u[2]
        n_it[k] = it
        tolw = 1e-9 * width + 1e-14 * abs(u[3])
        ok[k] = conv and (a_lo - tolw <= u[3] <= a_hi + tolw)
    return lam_out, qo, ro, so, ok, n_it
