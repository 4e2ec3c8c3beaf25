"""Saabas path attribution for sklearn's HistGradientBoosting trees: per-leaf credits, leaves found by sklearn.

Along the path from a tree's root to a leaf, every split's change in the node's expected value (the cover-weighted
mean of the leaf values below it, from the training counts the tree keeps) is credited to the feature the node
splits on. Per account the credits add up exactly to its raw score minus the trees' expected score, so they are
the model's own arithmetic along the account's paths (Saabas' method; unlike TreeSHAP it does not average over
feature orderings, so an interaction is credited to the feature split on lower down).

A leaf's credits depend only on its path, so they are summed once per leaf when the table is built (one vector
per leaf, `leaf_credit`). Explaining an account is then: find its leaf in every tree, and add those leaves'
vectors. The leaves are found by the estimator's own compiled predictor (each tree copied with its leaf values
replaced by the leaf's row number), so the walk is sklearn's, in C, and a missing value goes where it does when
the model predicts; the sum over trees is one sparse (accounts x leaves) by dense (leaves x columns) product.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import sparse
from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor

# Accounts explained per step: the (rows x trees) leaf index and its sparse matrix stay ~100 MB at 300 trees.
ROWS_PER_BATCH = 20_000


@dataclass(frozen=True)
class TreeTable:
    expected: np.ndarray  # per node (global ids, tree after tree): cover-weighted mean of the leaf values under it
    roots: np.ndarray  # global id of every tree's root
    leaf_credit: np.ndarray  # (leaves x columns): the credits along the path to each leaf
    finders: tuple[TreePredictor, ...]  # per tree, a copy that predicts the row of leaf_credit an account lands in
    known_categories: Any  # what TreePredictor.predict needs besides X (from the estimator's bin mapper)
    feature_map: Any


def supports(estimator) -> bool:
    """Whether `estimator` is a fitted binary HistGradientBoosting model with numeric splits only."""
    predictors = getattr(estimator, "_predictors", None)
    if not predictors or len(predictors[0]) != 1:
        return False
    return not any(tree.nodes["is_categorical"].any() for (tree,) in predictors)


def _expected_values(nodes: np.ndarray) -> np.ndarray:
    """Per node, the cover-weighted mean of the leaf values below it (children before parents)."""
    leaf = nodes["is_leaf"].astype(bool)
    expected = nodes["value"].astype("float64").copy()
    count = nodes["count"].astype("float64")
    for node in np.argsort(-nodes["depth"], kind="stable"):
        if not leaf[node]:
            lo, hi = nodes["left"][node], nodes["right"][node]
            weight = count[lo] + count[hi]
            expected[node] = (count[lo] * expected[lo] + count[hi] * expected[hi]) / weight if weight else 0.0
    return expected


def _path_credits(nodes: np.ndarray, expected: np.ndarray, width: int) -> np.ndarray:
    """Per node, the credits (one per column) accumulated on the way down from the root (parents first)."""
    credit = np.zeros((len(nodes), width))
    for node in np.argsort(nodes["depth"], kind="stable"):
        if not nodes["is_leaf"][node]:
            feature = nodes["feature_idx"][node]
            for child in (nodes["left"][node], nodes["right"][node]):
                credit[child] = credit[node]
                credit[child, feature] += expected[child] - expected[node]
    return credit


def tree_table(estimator) -> TreeTable:
    """The estimator's trees as expected values per node, credits per leaf, and one leaf finder per tree."""
    width = estimator.n_features_in_
    expected, roots, credits, finders, offset, leaves = [], [], [], [], 0, 0
    for (tree,) in estimator._predictors:
        nodes = tree.nodes
        values = _expected_values(nodes)
        leaf = nodes["is_leaf"].astype(bool)
        credits.append(_path_credits(nodes, values, width)[leaf])
        finder_nodes = nodes.copy()
        finder_nodes["value"][leaf] = np.arange(leaves, leaves + leaf.sum())
        finders.append(TreePredictor(finder_nodes, tree.binned_left_cat_bitsets, tree.raw_left_cat_bitsets))
        expected.append(values)
        roots.append(offset)
        offset += len(nodes)
        leaves += int(leaf.sum())
    known_categories, feature_map = estimator._bin_mapper.make_known_categories_bitsets()
    return TreeTable(np.concatenate(expected), np.array(roots, dtype=np.int64), np.concatenate(credits),
                     tuple(finders), known_categories, feature_map)  # fmt: skip


def path_contributions(table: TreeTable, X: np.ndarray, n_threads: int = 1) -> np.ndarray:  # noqa: N803
    """Per row of X (the matrix the estimator sees) and column: the raw score credited to that column."""
    X = np.asarray(X, dtype=np.float64)  # noqa: N806 - any layout: the predictor reads it through strides
    n, trees = len(X), len(table.finders)
    out = np.empty((n, table.leaf_credit.shape[1]))
    ones = np.ones(min(n, ROWS_PER_BATCH) * trees)
    for start in range(0, n, ROWS_PER_BATCH):
        rows = X[start : start + ROWS_PER_BATCH]
        leaf = np.empty((len(rows), trees), dtype=np.int64)
        for t, finder in enumerate(table.finders):
            leaf[:, t] = finder.predict(rows, table.known_categories, table.feature_map, n_threads)
        hits = sparse.csr_matrix(
            (ones[: leaf.size], leaf.ravel(), np.arange(0, leaf.size + 1, trees)),
            shape=(len(rows), len(table.leaf_credit)),
        )
        out[start : start + len(rows)] = hits @ table.leaf_credit
    return out
