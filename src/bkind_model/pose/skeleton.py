"""A skeleton for keypoints that have none: the spanning tree of their pairwise weights."""

from __future__ import annotations

import numpy as np


def spanning_tree(weights: np.ndarray, *, largest: bool = False) -> list[tuple[int, int]]:
    """The edges of a minimum (or maximum) spanning tree of keypoint pairs (Kruskal).

    Parameters
    ----------
    weights : ndarray
        ``(K, K)`` symmetric weights of the pairs; only the upper triangle ``i < j`` is
        read, and a NaN there means "no edge" (two keypoints never seen together).
    largest : bool
        Take the largest weights first (a maximum spanning tree, e.g. of how rigidly two
        keypoints move together) instead of the smallest (e.g. of their distance).

    Returns
    -------
    list of (int, int)
        Edges ``(i, j)`` with ``i < j`` in the order they were taken (best first): K - 1
        of them when the pairs connect every keypoint, fewer otherwise.
    """
    weights = np.asarray(weights, dtype=np.float64)
    i, j = np.triu_indices(weights.shape[0], 1)
    pair_weights = weights[i, j]
    usable = np.flatnonzero(np.isfinite(pair_weights))
    order = usable[
        np.argsort(-pair_weights[usable] if largest else pair_weights[usable], kind="stable")
    ]
    parent = list(range(weights.shape[0]))

    def root(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    edges = []
    for e in order:
        a, b = root(int(i[e])), root(int(j[e]))
        if a != b:
            parent[a] = b
            edges.append((int(i[e]), int(j[e])))
    return edges
