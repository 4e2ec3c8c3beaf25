"""The one risk scale: churn probability within the configured horizon, in percent (0-100).

Everything that speaks of "risk" (the retention programs' tiers 40-60 / 60-80 / 80-100, the cards, the CRM fields)
reads this one number, so a tier means the same thing whether a churn model is loaded or not:

- with a churn model, risk is its calibrated probability x 100 (``risk_source`` = ``model``);
- without one, risk is the health score mapped to a churn probability by a ``HealthRiskCalibration``
  (``risk_source`` = ``health``): an isotonic (monotone, decreasing) fit of "churned within the horizon" on
  point-in-time health over the store's history, or, before the store has any labelled history, the documented
  ``PRIOR`` below.

Both are calibrated against the same outcome, so adding a model moves accounts between tiers only by what it
knows better, not because the scale changed (tests/test_risk_scale.py measures it against the calibration error).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from engine.learning.evaluate import calibration_table

__all__ = [
    "DEFAULT_HORIZON_DAYS",
    "PRIOR",
    "RISK_SOURCES",
    "HealthRiskCalibration",
    "calibration_error",
    "fit_health_calibration",
    "risk_scale",
]

RISK_SOURCES = ("model", "health")


@dataclass(frozen=True)
class HealthRiskCalibration:
    """Health (increasing breakpoints) -> churn probability within ``horizon_days`` (non-increasing), linear between.

    ``fitted_on`` is ``history`` (rows of point-in-time health with their labels) or ``prior``; ``error`` is the
    expected calibration error measured on the fit's held-out dates (NaN for the prior: nothing to measure on).
    """

    health: tuple[float, ...]
    probability: tuple[float, ...]
    horizon_days: int | None
    fitted_on: str
    rows: int = 0
    error: float = float("nan")

    def __post_init__(self) -> None:
        if len(self.health) != len(self.probability) or not self.health:
            raise ValueError("health and probability breakpoints must be non-empty and as long as each other")
        if any(b <= a for a, b in zip(self.health, self.health[1:], strict=False)):
            raise ValueError("health breakpoints must be strictly increasing")
        if any(b > a for a, b in zip(self.probability, self.probability[1:], strict=False)):
            raise ValueError("churn probability must not rise with health")
        if not all(0.0 <= p <= 1.0 for p in self.probability):
            raise ValueError("churn probabilities must be within 0-1")

    def churn_probability(self, health: np.ndarray) -> np.ndarray:
        """Probability per health value (clamped at the ends); NaN health gives NaN."""
        h = np.asarray(health, dtype=np.float64)
        return np.where(np.isnan(h), np.nan, np.interp(h, self.health, self.probability))

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "health": list(self.health), "probability": list(self.probability)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HealthRiskCalibration:
        return cls(
            health=tuple(float(v) for v in data["health"]),
            probability=tuple(float(v) for v in data["probability"]),
            horizon_days=None if data.get("horizon_days") is None else int(data["horizon_days"]),
            fitted_on=str(data["fitted_on"]),
            rows=int(data.get("rows", 0)),
            error=float("nan") if data.get("error") is None else float(data["error"]),  # JSON keeps NaN as null
        )


# The horizon the prior is stated for when nothing says otherwise (the default CSE_CHURN_HORIZON_DAYS); scoring
# restates it at the configured horizon (app/ml/auto.py, scoring_calibration).
DEFAULT_HORIZON_DAYS = 30

# Before the store holds labelled history: a churn probability per health level, chosen so each band keeps its
# sense on the risk scale (churning, below 40, is risk 45-90: retention tiers 40-100; critical 40-59 is risk
# 15-45; at risk 60-79 is 4-15; healthy is below 4). Replaced by the fitted calibration as soon as history allows.
PRIOR = HealthRiskCalibration(
    health=(0.0, 20.0, 40.0, 60.0, 80.0, 100.0),
    probability=(0.9, 0.7, 0.45, 0.15, 0.04, 0.01),
    horizon_days=DEFAULT_HORIZON_DAYS,
    fitted_on="prior",
)


def calibration_error(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error: the row-weighted mean gap between predicted and observed rates per decile."""
    table = calibration_table(np.asarray(y), np.asarray(p), bins)
    if table.empty:
        return float("nan")
    gaps = (table["mean_predicted"] - table["observed_rate"]).abs()
    return float((gaps * table["rows"]).sum() / table["rows"].sum())


def fit_health_calibration(
    health: np.ndarray | pd.Series,
    churned: np.ndarray | pd.Series,
    horizon_days: int,
    holdout: np.ndarray | None = None,
) -> HealthRiskCalibration:
    """Isotonic fit of churn within the horizon on health (lower health, no lower churn rate).

    ``holdout`` (boolean per row) marks later rows kept out of the fit to measure ``error``; the calibration is
    then refitted on every row. Rows without health are ignored.
    """
    from sklearn.isotonic import IsotonicRegression

    h = np.asarray(health, dtype=np.float64)
    y = np.asarray(churned, dtype=np.float64)
    keep = ~np.isnan(h)
    if not keep.any():
        raise ValueError("no row has a health score to calibrate on")

    def fit(rows: np.ndarray) -> IsotonicRegression:
        return IsotonicRegression(increasing=False, y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(h[rows], y[rows])

    error = float("nan")
    if holdout is not None:
        test = keep & np.asarray(holdout, dtype=bool)
        train = keep & ~np.asarray(holdout, dtype=bool)
        if train.any() and test.any():
            error = calibration_error(y[test], fit(train).predict(h[test]))
    model = fit(keep)
    xs, ys = np.asarray(model.X_thresholds_, dtype=float), np.asarray(model.y_thresholds_, dtype=float)
    xs, first = np.unique(xs, return_index=True)
    return HealthRiskCalibration(
        health=tuple(xs.tolist()),
        probability=tuple(np.minimum.accumulate(ys[first]).tolist()),
        horizon_days=int(horizon_days),
        fitted_on="history",
        rows=int(keep.sum()),
        error=error,
    )


def risk_scale(
    health: np.ndarray | pd.Series,
    churn_probability: np.ndarray | pd.Series | None,
    calibration: HealthRiskCalibration,
) -> tuple[np.ndarray, np.ndarray]:
    """(risk 0-100 rounded to 0.1, risk_source) per account: the model's probability where there is one, else the
    calibrated health. Source is None where neither exists (no health, no model)."""
    h = np.asarray(health, dtype=np.float64)
    model = np.full(h.shape, np.nan) if churn_probability is None else np.asarray(churn_probability, dtype=np.float64)
    from_model = ~np.isnan(model)
    p = np.where(from_model, model, calibration.churn_probability(h))
    source = np.where(from_model, "model", np.where(np.isnan(p), None, "health")).astype(object)
    return np.round(100.0 * p, 1), source
