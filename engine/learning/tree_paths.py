"""Saabas path attribution for sklearn's HistGradientBoosting trees, for every account and tree at once in NumPy.

Along the path from a tree's root to a leaf, every split's change in the node's expected value (the cover-weighted
mean of the leaf values below it, from the training counts the tree keeps) is credited to the feature the node
splits on. Per account the credits add up exactly to its raw score minus the trees' expected score, so they are
the model's own arithmetic along the account's paths (Saabas' method; unlike TreeSHAP it does not average over
feature orderings, so an interaction is credited to the feature split on lower down).

A leaf's credits depend only on its path, so they are summed once per leaf when the table is built (one vector
per leaf). Explaining an account is then: find its leaf in every tree, and add those leaves' vectors.

Finding the leaves is vectorized over accounts and trees rather than walking each tree per account:

1. every split of every tree is evaluated for all accounts at once (one comparison per split, the predictor's own
   rule: ``x <= threshold`` goes left, a missing value goes where the split sends missing values);
2. a tree's outcomes are packed into one small integer per account, bit k = "went left at the tree's k-th split";
3. that integer indexes a table, built once per tree by walking the tree for every possible bit pattern, which
   holds the leaf the pattern leads to (splits off the path are simply ignored by the walk).

The sum over trees is then one sparse (accounts x leaves) by dense (leaves x columns) product. The same product
adds up the leaf values, in the estimator's order (baseline first, then tree after tree), so the raw score comes
out equal to the estimator's decision_function bit for bit, without a second walk.

The table of a tree holds 2**splits entries, so trees of more than MAX_SPLITS splits (max_leaf_nodes > 17) are
not supported; the models trained here have at most 14.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np
from scipy import sparse

# A tree's leaf table has 2**splits entries: 16 splits keep it at 64k entries (256 KB) per tree.
MAX_SPLITS = 16
# Accounts explained per step: the split outcomes and leaf indices of a step stay a few MB at 150 trees.
ROWS_PER_BATCH = 20_000


@dataclass(frozen=True)
class TreeTable:
    expected: np.ndarray  # per node (global ids, tree after tree): cover-weighted mean of the leaf values under it
    roots: np.ndarray  # global id of every tree's root
    leaf_credit: np.ndarray  # (leaves x columns): the credits along the path to each leaf
    leaf_value: np.ndarray  # per leaf, the raw score it adds
    baseline: float  # the estimator's raw score before the first tree
    split_tree: np.ndarray  # per split (every internal node, tree after tree): its tree
    split_bit: np.ndarray  # its bit in the tree's pattern
    split_feature: np.ndarray  # the column it compares
    split_threshold: np.ndarray  # x <= threshold goes left
    split_missing_left: np.ndarray  # a missing value goes left
    lookup: np.ndarray  # concatenated per-tree tables: pattern -> leaf (row of leaf_credit)
    lookup_offset: np.ndarray  # where each tree's table starts in `lookup`


_TABLES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def supports(estimator) -> bool:
    """Whether `estimator` is a fitted binary HistGradientBoosting model with numeric splits only, and trees
    small enough for leaf tables (at most MAX_SPLITS splits each)."""
    predictors = getattr(estimator, "_predictors", None)
    if not predictors or len(predictors[0]) != 1:
        return False
    return not any(
        tree.nodes["is_categorical"].any() or (~tree.nodes["is_leaf"].astype(bool)).sum() > MAX_SPLITS
        for (tree,) in predictors
    )


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


def _leaf_lookup(nodes: np.ndarray, bit: np.ndarray, leaf_row: np.ndarray) -> np.ndarray:
    """Per bit pattern of the tree's splits (bit[node] = "went left there"), the row of the leaf it leads to.

    All patterns walk the tree together, one level per step; a pattern sitting on a leaf stays there.
    """
    is_leaf = nodes["is_leaf"].astype(bool)
    patterns = np.arange(1 << int((~is_leaf).sum()), dtype=np.int64)
    node = np.zeros(len(patterns), dtype=np.int64)
    left, right = nodes["left"].astype(np.int64), nodes["right"].astype(np.int64)
    for _ in range(int(nodes["depth"].max())):
        went_left = (patterns >> bit[node]) & 1
        node = np.where(is_leaf[node], node, np.where(went_left == 1, left[node], right[node]))
    return leaf_row[node]


def _build(estimator) -> TreeTable:
    width = estimator.n_features_in_
    parts: dict[str, list[np.ndarray]] = {key: [] for key in ("expected", "credit", "value", "tree", "bit", "node",
                                                                "lookup")}  # fmt: skip
    roots, offsets, node_offset, leaves, lookup_size = [], [], 0, 0, 0
    splits: list[np.ndarray] = []
    for t, (tree,) in enumerate(estimator._predictors):
        nodes = tree.nodes
        values = _expected_values(nodes)
        leaf = nodes["is_leaf"].astype(bool)
        internal = np.flatnonzero(~leaf)
        bit = np.zeros(len(nodes), dtype=np.int64)
        bit[internal] = np.arange(len(internal))
        leaf_row = np.full(len(nodes), -1, dtype=np.int64)
        leaf_row[leaf] = np.arange(leaves, leaves + leaf.sum()) + 1  # row 0 of the product is the baseline
        lookup = _leaf_lookup(nodes, bit, leaf_row)
        parts["expected"].append(values)
        parts["credit"].append(_path_credits(nodes, values, width)[leaf])
        parts["value"].append(nodes["value"][leaf].astype("float64"))
        parts["tree"].append(np.full(len(internal), t, dtype=np.int64))
        parts["bit"].append(bit[internal])
        parts["lookup"].append(lookup)
        splits.append(nodes[internal])
        roots.append(node_offset)
        offsets.append(lookup_size)
        node_offset += len(nodes)
        leaves += int(leaf.sum())
        lookup_size += len(lookup)
    split = np.concatenate(splits)
    return TreeTable(
        expected=np.concatenate(parts["expected"]),
        roots=np.array(roots, dtype=np.int64),
        leaf_credit=np.concatenate(parts["credit"]),
        leaf_value=np.concatenate(parts["value"]),
        baseline=float(np.ravel(estimator._baseline_prediction)[0]),
        split_tree=np.concatenate(parts["tree"]),
        split_bit=np.concatenate(parts["bit"]).astype(np.uint16),
        split_feature=split["feature_idx"].astype(np.int64),
        split_threshold=split["num_threshold"].astype("float64"),
        split_missing_left=split["missing_go_to_left"].astype(bool),
        lookup=np.concatenate(parts["lookup"]).astype(np.int32),
        lookup_offset=np.array(offsets, dtype=np.int64),
    )


def tree_table(estimator) -> TreeTable:
    """The estimator's trees as expected values per node, credits per leaf and leaf tables (built once per fitted
    estimator and kept while it lives: chunked scoring explains the same model many times)."""
    cached = _TABLES.get(estimator)
    if cached is not None and cached[0] is estimator._predictors:
        return cached[1]
    table = _build(estimator)
    _TABLES[estimator] = (estimator._predictors, table)
    return table


def _leaves(table: TreeTable, rows: np.ndarray) -> np.ndarray:
    """(rows x trees) row of the product (leaf + 1) every account lands in, in every tree."""
    trees = len(table.lookup_offset)
    pattern = np.zeros((trees, len(rows)), dtype=np.uint16)
    went_left = np.empty(len(rows), dtype=bool)
    shifted = np.empty(len(rows), dtype=np.uint16)
    has_missing = np.isnan(rows).any(axis=0)
    for tree, bit, feature, threshold, missing_left in zip(
        table.split_tree.tolist(), table.split_bit, table.split_feature.tolist(), table.split_threshold.tolist(),
        table.split_missing_left.tolist(), strict=True,
    ):  # fmt: skip  # one vectorized comparison per split (hundreds), never a loop per account
        column = rows[:, feature]
        np.less_equal(column, threshold, out=went_left)
        if missing_left and has_missing[feature]:
            went_left |= np.isnan(column)
        np.left_shift(went_left, bit, out=shifted, dtype=np.uint16)
        pattern[tree] |= shifted
    found = table.lookup[pattern + table.lookup_offset[:, None]]
    return np.ascontiguousarray(found.T)


def path_contributions(
    table: TreeTable,
    X: np.ndarray,  # noqa: N803
    projection: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Per row of X (the matrix the estimator sees): the raw score credited to each column, and the raw score.

    `projection` (columns x k), if given, maps the columns' credits to k outputs (e.g. model columns to the
    features they came from) before the sum over trees, which is cheaper than mapping the result. The raw score
    equals the estimator's decision_function bit for bit (same additions, same order).
    """
    X = np.asarray(X, dtype=np.float64)  # noqa: N806
    credit = table.leaf_credit if projection is None else table.leaf_credit @ projection
    rhs = np.zeros((len(credit) + 1, credit.shape[1] + 1))
    rhs[1:, :-1] = credit
    rhs[0, -1] = table.baseline
    rhs[1:, -1] = table.leaf_value
    n, trees = len(X), len(table.lookup_offset) + 1
    out = np.empty((n, rhs.shape[1]))
    ones = np.ones(min(n, ROWS_PER_BATCH) * trees)
    for start in range(0, n, ROWS_PER_BATCH):
        rows = X[start : start + ROWS_PER_BATCH]
        hit = np.zeros((len(rows), trees), dtype=np.int32)  # column 0: the baseline, added first
        hit[:, 1:] = _leaves(table, rows)
        hits = sparse.csr_matrix(
            (ones[: hit.size], hit.ravel(), np.arange(0, hit.size + 1, trees)), shape=(len(rows), len(rhs))
        )
        out[start : start + len(rows)] = hits @ rhs
    return out[:, :-1], out[:, -1]
