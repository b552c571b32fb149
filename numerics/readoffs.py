"""Time read-offs from logged curves, shared by the random-features learning curves and the DDPM study.

One implementation of each rule (docs/theory/random_features.md §6, docs/theory/validation.md §4):

* :func:`argmin_log_parabola`: the time of a minimum, refined by a parabola in ``log tau`` through the
  minimum and its two neighbours (``tau_gen_score_min``, ``tau_gen_quality_min``);
* :func:`first_crossing_log`: the first time a curve reaches a level, interpolated linearly in ``log tau``
  between the two logged points around the crossing (``tau_mem_half_rise``, ``tau_mem_onset``);
* :func:`fit_power_law`: ``tau = a n`` through the origin and ``tau = c n^gamma`` in log-log.
"""

from __future__ import annotations

import math

import numpy as np

from ..theory import checks

__all__ = ["argmin_log_parabola", "first_crossing_log", "fit_power_law"]


def _pair(tau, y, what):
    s = checks.real_array("tau", tau, finite=False).reshape(-1)
    v = checks.real_array(what, y, finite=False).reshape(-1)
    if s.size == 0 or s.size != v.size:
        raise ValueError(f"tau and {what} must be non-empty and of equal length (got {s.size} and {v.size})")
    if np.any(~np.isfinite(s)) or np.any(s <= 0):
        raise ValueError("tau must hold finite times > 0 (log-spaced read-offs)")
    return s, v


def argmin_log_parabola(tau, y) -> float:
    """Time of the minimum of ``y``: the argmin over the logged times, refined by the vertex of the parabola in
    ``log tau`` through the minimum and its two neighbours, kept inside the neighbours' interval.

    An end-point minimum, a minimum next to a non-finite value or a non-convex parabola returns the logged
    time itself.  Non-finite ``y`` values are ignored; all non-finite raises ``ValueError``.

    Examples
    --------
    >>> tau = np.geomspace(1, 1e4, 9)
    >>> round(argmin_log_parabola(tau, (np.log(tau) - np.log(300.0)) ** 2), 6)
    300.0
    """
    s, q = _pair(tau, y, "values")
    ok = np.isfinite(q)
    if not np.any(ok):
        raise ValueError("the curve has no finite value to take a minimum of")
    i = int(np.nanargmin(np.where(ok, q, np.nan)))
    if i == 0 or i == s.size - 1 or not (ok[i - 1] and ok[i + 1]):
        return float(s[i])
    x = np.log(s[i - 1:i + 2])
    c2, c1, _ = np.polyfit(x, q[i - 1:i + 2], 2)
    if c2 <= 0:
        return float(s[i])
    return float(math.exp(float(np.clip(-c1 / (2.0 * c2), x[0], x[2]))))


def first_crossing_log(tau, y, level: float, *, after: float | None = None) -> float | None:
    """First time with ``y >= level`` (and ``tau > after``, when given), interpolated linearly in ``log tau``
    from the previous logged point when that one is below the level.

    ``None`` when the level is never reached; the logged time itself when it is reached at the first point or
    the previous point is already at the level (possible only with ``after``).

    Examples
    --------
    >>> round(first_crossing_log([1.0, 10.0, 100.0], [0.0, 0.2, 0.6], 0.4), 6)   # halfway between 10 and 100 in log
    31.622777
    """
    s, f = _pair(tau, y, "values")
    level = checks.real("level", level)
    if after is not None:
        after = checks.real("after", after)
    ok = f >= level
    if after is not None:
        ok &= s > after
    hit = np.flatnonzero(ok)
    if hit.size == 0:
        return None
    j = int(hit[0])
    if j == 0 or not f[j - 1] < level:
        return float(s[j])
    w = (level - f[j - 1]) / (f[j] - f[j - 1])
    return float(math.exp(math.log(s[j - 1]) + w * (math.log(s[j]) - math.log(s[j - 1]))))


def fit_power_law(ns, taus) -> dict:
    """``tau = a n`` by least squares through the origin (``a``; ``r2`` = 1 - SS_res/SS_tot about the mean) and
    ``tau = c n^gamma`` by least squares in log-log (``gamma``, ``c``, ``r2_log``).  Fewer than two points: all
    ``None``; ``r2``/``r2_log`` are ``None`` when the times (log times) do not vary."""
    n = checks.real_array("ns", ns, ndim=1)
    t = checks.real_array("taus", taus, shape=(n.size,))
    if np.any(n <= 0) or np.any(t <= 0):
        raise ValueError(f"ns and taus must be > 0 (a power law in log-log; got ns={checks.show(ns)}, "
                         f"taus={checks.show(taus)})")
    if n.size < 2:
        return {"a": None, "r2": None, "gamma": None, "c": None, "r2_log": None, "n_points": int(n.size)}
    a = float(n @ t / (n @ n))
    ss_tot = float(np.sum((t - t.mean()) ** 2))
    r2 = 1.0 - float(np.sum((t - a * n) ** 2)) / ss_tot if ss_tot > 0 else None
    g, lc = np.polyfit(np.log(n), np.log(t), 1)
    res = np.log(t) - (g * np.log(n) + lc)
    ss_log = float(np.sum((np.log(t) - np.log(t).mean()) ** 2))
    r2l = 1.0 - float(np.sum(res ** 2)) / ss_log if ss_log > 0 else None
    return {"a": a, "r2": r2, "gamma": float(g), "c": float(math.exp(lc)), "r2_log": r2l, "n_points": int(n.size)}
