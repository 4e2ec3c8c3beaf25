"""bench/churn_baseline.py's intervals: a ROC-AUC measured on a few dozen churners is reported with its noise."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from bench.churn_baseline import auc_interval, paired_difference, resolved


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


def test_the_paired_difference_joins_rows_by_account_and_date_and_sees_a_better_model() -> None:
    rng = np.random.default_rng(1)
    accounts, dates = 600, ["2020-05-01", "2020-05-31"]
    rows = pd.DataFrame({"account_id": np.tile(np.arange(accounts), 2), "as_of": np.repeat(pd.to_datetime(dates),
                         accounts)})  # fmt: skip
    rows["churned"] = (rng.random(len(rows)) < 0.1).astype(int)
    signal = rows["churned"] + rng.normal(size=len(rows))
    theirs = rows.assign(score=signal + 2 * rng.normal(size=len(rows)))  # the same signal, more noise
    ours = pd.DataFrame({"account": rows["account_id"].astype(str), "as_of": rows["as_of"].dt.strftime("%Y-%m-%d"),
                         "churned": rows["churned"], "churn_probability": signal})  # fmt: skip
    ours = ours.sample(frac=1.0, random_state=0)  # row order does not matter, the join does
    result = paired_difference(ours, theirs, draws=200)
    assert result is not None and result["rows"] == len(rows) and result["label_mismatches"] == 0
    expected = roc_auc_score(rows["churned"], signal) - roc_auc_score(rows["churned"], theirs["score"])
    assert abs(result["cse_minus_baseline"] - expected) < 1e-3
    assert 0 < result["95ci"][0] < expected < result["95ci"][1]
    assert paired_difference(ours, theirs.assign(account_id=theirs["account_id"] + 10_000)) is None  # no common rows
