"""The M search of the capacity sweep (arXiv:2508.17689v1 App. H.1; docs/theory/capacity_crossover.md §7).

Pure functions of measured memorization ratios (no torch), so the rules can be tested on synthetic
curves.  Thresholds: ratio >= 0.1 the transition has started, >= 0.5 memorizing on average (M_pt),
>= 0.9 the transition has ended (docs/theory/capacity_crossover.md §6-§7).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..theory import checks

__all__ = ["coarse_ms", "TransitionBounds", "transition_bounds", "refine_ms", "m_pt"]

START, MIDDLE, END = 0.1, 0.5, 0.9


def coarse_ms(N: int) -> list[int]:
    """The coarse pass of the M search: ``M_j = j floor(N/10)``, j = 1..10, plus N when ``10 floor(N/10) < N``
    (package choice); for N < 10 (floor(N/10) = 0) the coarse set is 1..N.

    Parameters
    ----------
    N : int
        Training-set size, >= 1.

    Returns
    -------
    list of int

    References
    ----------
    arXiv:2508.17689v1 App. H.1; docs/theory/capacity_crossover.md §7 step 1.

    Examples
    --------
    >>> coarse_ms(155)[-3:]
    [135, 150, 155]
    """
    N = checks.positive_int("N", N)
    step = N // 10
    if step == 0:
        return list(range(1, N + 1))
    ms = [j * step for j in range(1, 11)]
    if ms[-1] < N:
        ms.append(N)
    return ms


@dataclass(frozen=True)
class TransitionBounds:
    """Start and end of the transition on the coarse pass, with flags for the edge cases
    (docs/theory/capacity_crossover.md §7)."""

    start: int | None
    end: int | None
    flags: list = field(default_factory=list)

    @property
    def found(self) -> bool:
        return self.start is not None


def transition_bounds(ms, ratios) -> TransitionBounds:
    """Start and end of the memorization transition on the coarse pass.

    Start = the coarse M before the first ratio >= 0.1 (M_1 if it is the first, flagged); end = the
    first coarse M with ratio >= 0.9 (else the largest, flagged "incomplete"); no ratio >= 0.1 ->
    "no transition for M <= N".

    Parameters
    ----------
    ms : sequence of int
        Coarse M values, increasing.
    ratios : sequence of float
        Memorization ratio measured at each M.

    Returns
    -------
    TransitionBounds

    References
    ----------
    arXiv:2508.17689v1 App. H.1; docs/theory/capacity_crossover.md §7 step 2.
    """
    ms = [int(m) for m in ms]
    r = np.asarray(ratios, dtype=float)
    if len(ms) != r.size or not ms:
        raise ValueError(f"ms and ratios must have the same non-zero length (got {len(ms)} and {r.size})")
    hit = np.flatnonzero(r >= START)
    if hit.size == 0:
        return TransitionBounds(None, None, ["no transition for M <= N"])
    flags = []
    j0 = int(hit[0])
    if j0 == 0:
        start = ms[0]
        flags.append("transition already started at the smallest coarse M")
    else:
        start = ms[j0 - 1]
    ends = np.flatnonzero(r >= END)
    if ends.size == 0:
        end = ms[-1]
        flags.append("incomplete: no coarse M reaches ratio 0.9")
    else:
        end = ms[int(ends[0])]
    return TransitionBounds(start, end, flags)


def refine_ms(start: int, end: int) -> list[int]:
    """The refinement of the M search: ``{start + k Delta <= end}`` with ``Delta = max(floor((end - start)/10), 1)``.

    Parameters
    ----------
    start, end : int
        Transition bounds (``1 <= start <= end``).

    Returns
    -------
    list of int

    References
    ----------
    arXiv:2508.17689v1 App. H.1; docs/theory/capacity_crossover.md §7 step 3.

    Examples
    --------
    >>> refine_ms(140, 180)
    [140, 144, 148, 152, 156, 160, 164, 168, 172, 176, 180]
    """
    start = checks.positive_int("start", start)
    end = checks.positive_int("end", end)
    if end < start:
        raise ValueError(f"end must be >= start (got start={start}, end={end})")
    delta = max((end - start) // 10, 1)
    return list(range(start, end + 1, delta))


def m_pt(ms, ratios):
    """The transition point ``M_pt``: the first M (in increasing order) with ratio >= 0.5; None when there is
    none.  The ratio is not assumed monotone.

    Parameters
    ----------
    ms : sequence of int
    ratios : sequence of float

    Returns
    -------
    int or None

    References
    ----------
    arXiv:2508.17689v1 App. H.1; docs/theory/capacity_crossover.md §7 step 4.
    """
    pairs = sorted(zip((int(m) for m in ms), (float(x) for x in ratios)))
    for m, x in pairs:
        if x >= MIDDLE:
            return m
    return None
