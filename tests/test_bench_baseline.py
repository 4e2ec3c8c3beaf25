"""bench/churn_baseline.py's intervals: a ROC-AUC measured on a few dozen churners is reported with its noise."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score

from bench.churn_baseline import auc_interval, resolved


def test_the_interval_matches_a_bootstrap_and_narrows_with_more_positives() -> None:
    rng = np.random.default_rng(0)
    y = (rng.random(3000) < 0.02).astype(int)
    score = y * 0.6 + rng.normal(size=len(y))
    auc = roc_auc_score(y, score)
    low, high = auc_interval(auc, int(y.sum()), int(len(y) - y.sum()))
    resampled = []
    for _ in range(300):
        rows = rng.integers(0, len(y), len(y))
        resampled.append(roc_auc_score(y[rows], score[rows]))
    boot_low, boot_high = np.percentile(resampled, [2.5, 97.5])
    assert low < auc < high
    assert abs(low - boot_low) < 0.03 and abs(high - boot_high) < 0.03
    wide, narrow = auc_interval(0.67, 27, 1500), auc_interval(0.67, 2700, 150_000)
    assert wide[1] - wide[0] > 0.2 and narrow[1] - narrow[0] < 0.03


def test_overlapping_intervals_are_not_a_result_and_no_positives_give_none() -> None:
    # the 600-customer ChurnSim measurement: cse 0.638 vs baseline 0.668 on 27 test churners
    assert resolved(auc_interval(0.638, 27, 1507), auc_interval(0.668, 27, 1507)) is False
    assert resolved(auc_interval(0.90, 2000, 60_000), auc_interval(0.82, 2000, 60_000)) is True
    assert auc_interval(None, 0, 100) is None and resolved(None, auc_interval(0.7, 30, 900)) is None
