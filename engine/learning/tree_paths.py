"""Saabas path attribution for sklearn's HistGradientBoosting trees, vectorized over accounts and trees at once.

Each tree is walked from the root to the account's leaf; at every split the change in the node's expected value
(the cover-weighted mean of the leaf values below it, from the training counts the tree keeps) is credited to the
feature the node splits on. Per account the credits add up exactly to its raw score minus the trees' expected
score, so they are the model's own arithmetic along the account's paths (Saabas' method; unlike TreeSHAP it
does not average over feature orderings, so an interaction is credited to the feature split on lower down).

All trees sit in one flat node table (leaves point to themselves), so a walk is `max depth` steps of array
operations over (accounts x trees), and the credits of a step are summed per (account, column) with one bincount.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Accounts walked per step: (rows x trees) temporaries stay around 100 MB for a few hundred trees.
ROWS_PER_BATCH = 20_000


@dataclass(frozen=True)
class TreeTable:
    feature: np.ndarray  # column split on (0 at leaves, where nothing is credited)
    threshold: np.ndarray  # go left when value <= threshold
    missing_left: np.ndarray  # where a missing value goes
    left: np.ndarray  # global child ids; a leaf's children are itself
    right: np.ndarray
    expected: np.ndarray  # cover-weighted mean of the leaf values under the node
    roots: np.ndarray
    depth: int


def supports(estimator) -> bool:
    """Whether `estimator` is a fitted binary HistGradientBoosting model with numeric splits only."""
    predictors = getattr(estimator, "_predictors", None)
    if not predictors or len(predictors[0]) != 1:
        return False
    return not any(tree.nodes["is_categorical"].any() for (tree,) in predictors)


def tree_table(estimator) -> TreeTable:
    """The estimator's trees as one node table with global ids and expected values."""
    parts, roots, offset = [], [], 0
    for (tree,) in estimator._predictors:
        nodes = tree.nodes
        ids = np.arange(len(nodes)) + offset
        leaf = nodes["is_leaf"].astype(bool)
        expected = nodes["value"].astype("float64").copy()
        count = nodes["count"].astype("float64")
        for node in np.argsort(-nodes["depth"], kind="stable"):  # children before parents
            if not leaf[node]:
                lo, hi = nodes["left"][node], nodes["right"][node]
                weight = count[lo] + count[hi]
                expected[node] = (count[lo] * expected[lo] + count[hi] * expected[hi]) / weight if weight else 0.0
        parts.append((
            np.where(leaf, 0, nodes["feature_idx"]), nodes["num_threshold"], nodes["missing_go_to_left"].astype(bool),
            np.where(leaf, ids, nodes["left"].astype(np.int64) + offset),
            np.where(leaf, ids, nodes["right"].astype(np.int64) + offset), expected,
        ))  # fmt: skip
        roots.append(offset)
        offset += len(nodes)
    columns = [np.concatenate(c) for c in zip(*parts, strict=True)]
    depth = max(int(tree.nodes["depth"].max()) for (tree,) in estimator._predictors)
    return TreeTable(*columns, roots=np.array(roots, dtype=np.int64), depth=depth)


def path_contributions(table: TreeTable, X: np.ndarray) -> np.ndarray:  # noqa: N803
    """Per row of X (the matrix the estimator sees) and column: the raw score credited to that column."""
    n, width = X.shape
    out = np.zeros((n, width))
    for start in range(0, n, ROWS_PER_BATCH):
        rows = X[start : start + ROWS_PER_BATCH]
        m = len(rows)
        node = np.broadcast_to(table.roots, (m, len(table.roots))).copy()
        row_of = np.arange(m)[:, None]
        flat = np.empty_like(node)
        credit = np.zeros(m * width)
        for _ in range(table.depth):
            feature = table.feature[node]
            value = rows[row_of, feature]
            go_left = np.where(np.isnan(value), table.missing_left[node], value <= table.threshold[node])
            child = np.where(go_left, table.left[node], table.right[node])
            np.multiply(row_of, width, out=flat)
            flat += feature
            credit += np.bincount(flat.ravel(), weights=(table.expected[child] - table.expected[node]).ravel(),
                                  minlength=m * width)  # fmt: skip
            node = child
        out[start : start + m] = credit.reshape(m, width)
    return out
