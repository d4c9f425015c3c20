import numpy as np
from scipy.sparse.csgraph import minimum_spanning_tree

from bkind_model.pose.skeleton import spanning_tree


def test_the_smallest_tree_is_scipys_and_the_largest_takes_the_strongest_first():
    rng = np.random.default_rng(0)
    weights = rng.uniform(1, 10, (6, 6))
    weights = (weights + weights.T) / 2
    edges = spanning_tree(weights)
    assert len(edges) == 5 and all(i < j for i, j in edges)
    reference = minimum_spanning_tree(np.triu(weights, 1)).tocoo()
    assert sorted(edges) == sorted(
        (min(i, j), max(i, j)) for i, j in zip(reference.row, reference.col, strict=True)
    )
    assert [weights[e] for e in edges] == sorted(weights[e] for e in edges)
    strongest = spanning_tree(weights, largest=True)
    assert strongest[0] == np.unravel_index(np.argmax(np.triu(weights, 1)), weights.shape)
    total = sum(weights[e] for e in strongest)
    assert total >= sum(weights[e] for e in edges)


def test_pairs_never_seen_together_are_no_edge():
    weights = np.array([[0, 1, np.nan], [1, 0, np.nan], [np.nan, np.nan, 0]])
    assert spanning_tree(weights) == [(0, 1)]
