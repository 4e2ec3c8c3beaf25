"""Evaluation metrics of engine.learning.evaluate and the health-weights backtest of engine.learning.weights."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine.learning.evaluate import (
    calibration_table,
    classification_metrics,
    lead_time,
    lift_table,
    top_fraction_lift,
)
from engine.learning.weights import backtest, fit_weights, weighted_health


def test_top_decile_lift_and_tables():
    y = np.array([1] * 10 + [0] * 90)
    p = np.linspace(1, 0, 100)  # perfectly ranked
    assert top_fraction_lift(y, p, 0.1) == pytest.approx(10.0)
    metrics = classification_metrics(y, p)
    assert metrics["roc_auc"] == 1.0 and metrics["top_decile_lift"] == pytest.approx(10.0)
    lift = lift_table(y, p)
    assert lift["churn_rate"].iloc[0] == 1.0 and lift["cumulative_capture"].iloc[0] == 1.0
    table = calibration_table(y, p, bins=4)
    assert table["rows"].sum() == 100 and (table["mean_predicted"].diff().dropna() > 0).all()


def test_metrics_survive_a_single_class():
    metrics = classification_metrics(np.zeros(5), np.full(5, 0.1))
    assert np.isnan(metrics["roc_auc"]) and metrics["brier"] == pytest.approx(0.01)


def test_lead_time_counts_the_last_unbroken_run_of_flags():
    day = pd.Timestamp("2026-03-01")
    rows = []
    # Account 1 churns on day 70: flagged on days 0 (false alarm), 42, 49, 56, 63 -> lead 70 - 42 = 28.
    for d, p in [(0, 0.9), (7, 0.1), (35, 0.2), (42, 0.6), (49, 0.7), (56, 0.8), (63, 0.9)]:
        rows.append({"account_id": 1, "as_of": day + pd.Timedelta(days=d), "p": p})
    # Account 2 churns on day 30, never flagged. Account 3 never churns.
    rows += [{"account_id": 2, "as_of": day + pd.Timedelta(days=d), "p": 0.1} for d in (0, 7, 14, 21, 28)]
    rows += [{"account_id": 3, "as_of": day + pd.Timedelta(days=d), "p": 0.9} for d in (0, 7)]
    churned = pd.Series({1: day + pd.Timedelta(days=70), 2: day + pd.Timedelta(days=30), 3: pd.NaT})
    result = lead_time(pd.DataFrame(rows), churned, threshold=0.5)
    assert result["churners"] == 2 and result["flagged"] == 1
    assert result["days"] == [28] and result["flagged_share"] == 0.5


def test_fitted_weights_favour_the_factor_that_predicts_churn():
    rng = np.random.default_rng(0)
    n = 4000
    factors = pd.DataFrame(
        {
            "adoption": rng.uniform(0, 100, n),
            "engagement": rng.uniform(0, 100, n),
            "support": rng.uniform(0, 100, n),
            "outcomes": np.nan,  # never measured
        }
    )
    y = (rng.random(n) < 1 / (1 + np.exp(-(2.0 - factors["engagement"] / 15)))).astype(int)
    current = {"adoption": 40.0, "engagement": 20.0, "support": 20.0, "outcomes": 20.0}
    proposed = fit_weights(factors, y, current)
    assert proposed["engagement"] > 0.5 and proposed["outcomes"] == pytest.approx(0.2)
    assert sum(proposed.values()) == pytest.approx(1.0)
    result = backtest(factors, y, current, np.arange(3000), np.arange(3000, n))
    assert result["auc_proposed_test"] > result["auc_current_test"] + 0.05
    row = result["factors"].set_index("factor").loc["outcomes"]
    assert not row["measured"] and np.isnan(row["auc"])


def test_weighted_health_renormalizes_over_present_factors():
    factors = pd.DataFrame({"a": [80.0, np.nan, np.nan], "b": [40.0, 60.0, np.nan]})
    health = weighted_health(factors, {"a": 3.0, "b": 1.0})
    assert health[0] == pytest.approx(70.0) and health[1] == 60.0 and np.isnan(health[2])
