"""Pareto dominance, non-dominated sorting, crowding distance and hypervolume (minimization).

Small pure numpy functions shared by the multi-objective searchers, the study's
``best_trials`` and the benchmarks. Every objective is minimized: a point ``a`` dominates
``b`` when ``a <= b`` in every objective and ``a < b`` in at least one.

Constraints follow Deb's constraint domination (NSGA-II, Deb et al. 2002): a feasible point
(total violation 0) beats every infeasible one, and of two infeasible points the one with the
smaller total violation wins; feasible points compare by Pareto dominance.

Hypervolume is exact: a sweep in 2-D, and for more objectives the slicing recursion (HSO,
While et al. 2006) down to the 2-D sweep, which is fast for the front sizes of a search
(hundreds of points in 3-D); it is exponential in the number of objectives, so fronts of many
objectives and many points are slow.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def _as_points(points: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
    y = np.asarray(points, dtype=float)
    if y.ndim == 1:
        y = y.reshape(-1, 1) if y.size else y.reshape(0, 1)
    if y.ndim != 2:
        raise ValueError(f"points must be a 2-D array (n points x m objectives), got shape {y.shape}")
    return y


def dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    """Whether ``a`` Pareto-dominates ``b`` (both minimized)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return bool(np.all(a <= b) and np.any(a < b))


def violation(constraints: Sequence[float] | None) -> float:
    """Total constraint violation: the sum of the positive parts (0 for a feasible point)."""
    if constraints is None:
        return 0.0
    c = np.asarray(list(constraints), dtype=float)
    return float(np.sum(np.maximum(c, 0.0))) if c.size else 0.0


def _domination_matrix(y: np.ndarray) -> np.ndarray:
    """``d[i, j]``: point i dominates point j."""
    le = np.all(y[:, None, :] <= y[None, :, :], axis=2)
    lt = np.any(y[:, None, :] < y[None, :, :], axis=2)
    return le & lt


def non_dominated_sort(points: np.ndarray | Sequence[Sequence[float]],
                       violations: Sequence[float] | None = None) -> list[np.ndarray]:
    """Fronts of ``points`` (n x m, minimized), best first, as arrays of row indices.

    Without ``violations``, front 0 is the Pareto front, front 1 the front of the rest, and so
    on (fast non-dominated sorting, Deb et al. 2002). With ``violations`` (total violation per
    point, 0 = feasible) the feasible points are sorted that way first, then the infeasible ones
    follow, one front per distinct violation, smallest first (constraint domination).

    Example:
        >>> non_dominated_sort([[1, 2], [2, 1], [2, 2]])
        [array([0, 1]), array([2])]
    """
    y = _as_points(points)
    n = len(y)
    if violations is None:
        feasible = np.arange(n)
        infeasible = np.arange(0)
        viol = np.zeros(n)
    else:
        viol = np.asarray(violations, dtype=float)
        if viol.shape != (n,):
            raise ValueError(f"violations has shape {viol.shape}, but must be ({n},)")
        feasible = np.flatnonzero(viol <= 0.0)
        infeasible = np.flatnonzero(viol > 0.0)
    fronts: list[np.ndarray] = []
    if len(feasible):
        dom = _domination_matrix(y[feasible])
        count = dom.sum(axis=0)  # how many points dominate each point
        current = np.flatnonzero(count == 0)
        while len(current):
            fronts.append(feasible[current])
            count = count - dom[current].sum(axis=0)
            count[current] = -1  # assigned
            current = np.flatnonzero(count == 0)
    if len(infeasible):
        levels = np.unique(viol[infeasible])
        for level in levels:
            fronts.append(infeasible[viol[infeasible] == level])
    return fronts


def pareto_mask(points: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
    """Boolean mask of the non-dominated rows of ``points`` (duplicates are all kept)."""
    y = _as_points(points)
    mask = np.zeros(len(y), dtype=bool)
    if len(y):
        mask[non_dominated_sort(y)[0]] = True
    return mask


def crowding_distance(points: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
    """NSGA-II's crowding distance of each point within one front.

    Per objective the points are sorted, the two extremes get infinity and each other point
    adds the gap between its neighbours divided by the objective's range. Objectives where
    every point has the same value add nothing.
    """
    y = _as_points(points)
    n, m = y.shape
    dist = np.zeros(n)
    if n <= 2:
        dist[:] = np.inf
        return dist
    for k in range(m):
        order = np.argsort(y[:, k], kind="stable")
        col = y[order, k]
        span = col[-1] - col[0]
        dist[order[0]] = dist[order[-1]] = np.inf
        if span <= 0:
            continue
        dist[order[1:-1]] += (col[2:] - col[:-2]) / span
    return dist


def _hv2d(y: np.ndarray, ref: np.ndarray) -> float:
    """Exact 2-D hypervolume of points no worse than ``ref`` (dominated points add nothing).

    Sorted by the first objective, each point adds the strip between its second objective and
    the best one before it, as wide as its distance to the reference in the first objective.
    """
    order = np.lexsort((y[:, 1], y[:, 0]))
    x, z = y[order, 0], y[order, 1]
    best_before = np.minimum.accumulate(np.concatenate(([ref[1]], z)))[:-1]
    return float(np.sum((ref[0] - x) * np.maximum(best_before - z, 0.0)))


def _hv(y: np.ndarray, ref: np.ndarray) -> float:
    m = y.shape[1]
    if len(y) == 0:
        return 0.0
    if m == 1:
        return float(ref[0] - y[:, 0].min())
    if m == 2:
        return _hv2d(y, ref)
    # slice along the last objective: between consecutive values z_i < z_{i+1}, the covered
    # region is the (m-1)-D hypervolume of the points with last objective <= z_i
    order = np.argsort(y[:, -1], kind="stable")
    y = y[order]
    z = np.append(y[:, -1], ref[-1])
    total = 0.0
    for i in range(len(y)):
        depth = z[i + 1] - z[i]
        if depth <= 0:
            continue
        head = y[: i + 1, :-1]
        if m > 3:  # fewer points for the deeper recursion (the 2-D sweep needs no filter)
            head = head[pareto_mask(head)]
        total += depth * _hv(head, ref[:-1])
    return total


def hypervolume(points: np.ndarray | Sequence[Sequence[float]], reference: Sequence[float]) -> float:
    """Exact hypervolume dominated by ``points`` (minimized) and bounded by ``reference``.

    Points that do not strictly dominate the reference point in every objective add nothing.

    Example:
        >>> hypervolume([[1, 2], [2, 1]], [3, 3])
        3.0
    """
    y = _as_points(points)
    ref = np.asarray(reference, dtype=float)
    if ref.ndim != 1 or (len(y) and y.shape[1] != len(ref)):
        raise ValueError(f"reference has {ref.size} values, but the points have {y.shape[1]} objectives")
    y = y[np.all(y < ref, axis=1)]
    if len(y) == 0:
        return 0.0
    y = np.unique(y[pareto_mask(y)], axis=0)
    return float(_hv(y, ref))


def hypervolume_contributions(points: np.ndarray | Sequence[Sequence[float]],
                              reference: Sequence[float]) -> np.ndarray:
    """Each point's exclusive hypervolume: what the set loses without it (0 for a dominated
    point or a duplicate)."""
    y = _as_points(points)
    ref = np.asarray(reference, dtype=float)
    out = np.zeros(len(y))
    for i in range(len(y)):
        if not np.all(y[i] < ref):
            continue
        # what the others cover of point i's box [y_i, ref]: the hypervolume of the others
        # clipped to that box (most of them become dominated there, so this stays small)
        clipped = np.maximum(np.delete(y, i, axis=0), y[i])
        covered = hypervolume(clipped, ref) if len(clipped) else 0.0
        out[i] = float(np.prod(ref - y[i])) - covered
    return np.maximum(out, 0.0)


__all__ = ["dominates", "violation", "non_dominated_sort", "pareto_mask", "crowding_distance",
           "hypervolume", "hypervolume_contributions"]
