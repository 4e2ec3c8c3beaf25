"""Backtest of the six-factor health score against later churn, and weights fitted to a company's history.

The health score (engine.health) is a weighted mean of the factor scores present, renormalized over them. Here
the same formula is evaluated for any weights, and weights are searched that make low health predict churn
best: a logistic fit of churn on the health score, with the weights kept on the simplex (non-negative, summing
to 1) through a softmax, so the result is a drop-in `weights:` block for health.yaml. A factor without data in
the history cannot be fitted; it keeps its current weight share and is reported as not measured.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from sklearn.metrics import roc_auc_score

MIN_COVERAGE = 0.05  # a factor present in fewer rows than this is "not measured"


def weighted_health(factors: pd.DataFrame, weights: Mapping[str, float]) -> np.ndarray:
    """Health 0-100 per row: weighted mean of the present factors (NaN = no data), as engine.health computes it."""
    num = np.zeros(len(factors))
    den = np.zeros(len(factors))
    for name, weight in weights.items():
        if name not in factors or weight <= 0:
            continue
        values = factors[name].to_numpy(dtype="float64", na_value=np.nan)
        present = ~np.isnan(values)
        num += np.where(present, values, 0.0) * weight
        den += present * weight
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / den, np.nan)


def risk_auc(y: np.ndarray, health: np.ndarray) -> float:
    """ROC-AUC of −health for the label (rows without a health score are left out); 0.5 = no ranking power."""
    y = np.asarray(y)
    keep = ~np.isnan(health)
    if keep.sum() < 2 or not (0 < y[keep].sum() < keep.sum()):
        return float("nan")
    return float(roc_auc_score(y[keep], -health[keep]))


def factor_report(factors: pd.DataFrame, y: np.ndarray) -> pd.DataFrame:
    """Per factor: share of rows with data and the ROC-AUC of −factor for the rows that have it."""
    rows = []
    for name in factors.columns:
        values = factors[name].to_numpy(dtype="float64", na_value=np.nan)
        rows.append({"factor": name, "coverage": float((~np.isnan(values)).mean()), "auc": risk_auc(y, values)})
    return pd.DataFrame(rows)


def fit_weights(
    factors: pd.DataFrame, y: np.ndarray, current: Mapping[str, float], l2: float = 0.001
) -> dict[str, float]:
    """Weights (summing to 1) that make low health predict the label best; unmeasured factors keep their share.

    The softmax parameters start from the current weights and a small ridge pulls towards them, so with little
    history the proposal stays close to what the admins chose.
    """
    y = np.asarray(y, dtype="float64")
    total = sum(current.values()) or 1.0
    share = {k: v / total for k, v in current.items()}
    coverage = {k: float(factors[k].notna().mean()) if k in factors else 0.0 for k in current}
    fitted = [k for k in current if coverage[k] >= MIN_COVERAGE]
    fixed = [k for k in current if k not in fitted]
    fixed_share = sum(share[k] for k in fixed)
    if not fitted:
        return dict(share)
    start = np.log(np.array([max(share[k], 1e-3) for k in fitted]))
    start = start - start.mean()

    def weights_of(theta: np.ndarray) -> dict[str, float]:
        soft = np.exp(theta - theta.max())
        soft = soft / soft.sum() * (1.0 - fixed_share)
        return {**dict(zip(fitted, soft, strict=True)), **{k: share[k] for k in fixed}}

    def loss(params: np.ndarray) -> float:
        theta, a, b = params[:-2], params[-2], params[-1]
        h = weighted_health(factors, weights_of(theta))
        keep = ~np.isnan(h)
        z = a + b * (h[keep] - 50.0) / 25.0
        ll = np.logaddexp(0.0, z) - y[keep] * z
        return float(ll.mean() + l2 * np.sum((theta - start) ** 2))

    params0 = np.r_[start, np.log(y.mean() / (1 - y.mean())) if 0 < y.mean() < 1 else 0.0, -1.0]
    result = minimize(loss, params0, method="Powell", options={"maxiter": 4000, "xtol": 1e-4, "ftol": 1e-7})
    return weights_of(result.x[:-2])


def backtest(
    factors: pd.DataFrame,
    y: np.ndarray,
    current: Mapping[str, float],
    train: np.ndarray | None = None,
    test: np.ndarray | None = None,
) -> dict[str, object]:
    """Current vs fitted weights: AUC of −health on all rows and, given a time split, on the later rows only.

    Weights are fitted on `train` rows (all rows without a split) and judged on `test` rows, so the improvement
    reported is out of sample.
    """
    y = np.asarray(y, dtype="int64")
    train = np.arange(len(y)) if train is None else train
    proposed = fit_weights(factors.iloc[train], y[train], current)
    total = sum(current.values()) or 1.0
    report = factor_report(factors, y)
    report["current_weight"] = [current.get(f, 0.0) / total for f in report["factor"]]
    report["proposed_weight"] = [proposed.get(f, 0.0) for f in report["factor"]]
    report["measured"] = report["coverage"] >= MIN_COVERAGE
    out: dict[str, object] = {
        "rows": int(len(y)),
        "positives": int(y.sum()),
        "auc_current": risk_auc(y, weighted_health(factors, current)),
        "auc_proposed_in_sample": risk_auc(y[train], weighted_health(factors.iloc[train], proposed)),
        "factors": report,
        "current_weights": {k: v / total for k, v in current.items()},
        "proposed_weights": proposed,
    }
    if test is not None and len(test):
        out["test_rows"] = int(len(test))
        out["auc_current_test"] = risk_auc(y[test], weighted_health(factors.iloc[test], current))
        out["auc_proposed_test"] = risk_auc(y[test], weighted_health(factors.iloc[test], proposed))
    return out
