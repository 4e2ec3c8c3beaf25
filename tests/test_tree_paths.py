"""Tree paths find every account's leaves in NumPy: checked against sklearn's own walk of the same trees."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier

from engine.learning import tree_paths


def _world(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Rows with missing values (some columns always present, so splits send missing values either way)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(0.0, 1.0, (n, 5))  # noqa: N806
    X[rng.random((n, 5)) < 0.15 * np.array([1, 1, 0, 0, 1])] = np.nan
    z = np.nan_to_num(X[:, 0], nan=2.0) * np.nan_to_num(X[:, 1], nan=-1.0) + X[:, 2] - (X[:, 3] > 0.5)
    return X, (rng.random(n) < 1.0 / (1.0 + np.exp(-z))).astype(int)


@pytest.fixture(scope="module")
def boosted():
    X, y = _world(4000)  # noqa: N806
    return HistGradientBoostingClassifier(max_leaf_nodes=15, max_iter=40, random_state=0).fit(X, y)


def test_raw_score_is_the_estimators_bit_for_bit(boosted):
    """Every leaf found is the one sklearn's predictor reaches: the leaf values add up to decision_function
    exactly, on rows with missing values, infinities and values equal to a split threshold."""
    X, _ = _world(3000, seed=1)  # noqa: N806
    splits = np.concatenate([tree.nodes[tree.nodes["is_leaf"] == 0] for (tree,) in boosted._predictors])[:40]
    X[np.arange(len(splits)), splits["feature_idx"]] = splits["num_threshold"]  # exactly on the split: goes left
    X[40:50] = np.inf
    X[50:60] = -np.inf
    X[60:70] = np.nan
    table = tree_paths.tree_table(boosted)
    _, raw = tree_paths.path_contributions(table, X)
    np.testing.assert_array_equal(raw, boosted.decision_function(X))


def test_credits_add_up_to_the_raw_score_minus_the_expected_score(boosted):
    X, _ = _world(500, seed=2)  # noqa: N806
    table = tree_paths.tree_table(boosted)
    credits, raw = tree_paths.path_contributions(table, X)
    expected = table.baseline + table.expected[table.roots].sum()
    np.testing.assert_allclose(credits.sum(axis=1), raw - expected, atol=1e-9)


def test_projection_maps_columns_before_the_sum(boosted):
    X, _ = _world(300, seed=3)  # noqa: N806
    table = tree_paths.tree_table(boosted)
    projection = np.random.default_rng(0).normal(size=(X.shape[1], 2))
    credits, _ = tree_paths.path_contributions(table, X)
    projected, _ = tree_paths.path_contributions(table, X, projection)
    np.testing.assert_allclose(projected, credits @ projection, atol=1e-12)


def test_the_table_is_built_once_per_fitted_estimator(boosted):
    assert tree_paths.tree_table(boosted) is tree_paths.tree_table(boosted)
    X, y = _world(800, seed=4)  # noqa: N806
    refitted = HistGradientBoostingClassifier(max_leaf_nodes=15, max_iter=5, random_state=0).fit(X, y)
    first = tree_paths.tree_table(refitted)
    refitted.fit(X[::-1], y[::-1])
    assert tree_paths.tree_table(refitted) is not first


def test_trees_too_large_for_leaf_tables_are_not_supported():
    X, y = _world(3000, seed=5)  # noqa: N806
    large = HistGradientBoostingClassifier(max_leaf_nodes=tree_paths.MAX_SPLITS + 2, max_iter=5,
                                           min_samples_leaf=5, random_state=0).fit(X, y)  # fmt: skip
    splits = max((~tree.nodes["is_leaf"].astype(bool)).sum() for (tree,) in large._predictors)
    assert splits > tree_paths.MAX_SPLITS
    assert not tree_paths.supports(large)
