"""The early-warning model: churn within the warning horizon (60 or 90 days), flagged from a threshold chosen for a
target precision, and judged by how long before churning it flagged churners and how many survivors it flagged.

The 30-day churn model behind the risk scale says who is leaving *now*; a CSM needs to hear about it a quarter
ahead, while there is still time to act. The warning model is trained on the same point-in-time panel, labelled
for its own horizon, and evaluated on a time split laid out along the store's history:

    [90-day lookback][training dates ... T0 - H][gap: H days][T0 ........ evaluation dates ........ data end]

* training labels look at most H days ahead, so none of them knows anything from T0 on;
* the evaluation dates run from T0 to the end of the data (scoring a date needs no label);
* churners are those churning from T0 + W (the lead window, = H) to the end, each observed over a full window
  before churning; leads are capped at W; churners younger than W when they left are reported apart;
* survivors (no churn by the end) count as false alarms when flagged on a date up to the end minus H.

So the history must span 90 + H + W + CHURN_WINDOW_DAYS days plus a few training dates: about a year for H = 90.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from engine.learning.evaluate import early_warning
from engine.learning.features import LOOKBACK_DAYS
from engine.learning.models import BinaryModel, FeatureSpec, TrainConfig, train_classifier

WARNING_HORIZONS = (30, 60, 90)  # the horizons `cse evaluate` reports the early warning for
CHURN_WINDOW_DAYS = 56  # how long a stretch of churn dates the evaluation counts (after the lead window)
MIN_TRAIN_DATES = 2


def with_horizon(frame: pd.DataFrame, horizon_days: int, data_end: date) -> pd.DataFrame:
    """The panel rows whose churn label over ``horizon_days`` is known by ``data_end``, labelled for it."""
    as_of = pd.to_datetime(frame["as_of"])
    known = (as_of <= pd.Timestamp(data_end) - pd.Timedelta(days=horizon_days)).to_numpy()
    out = frame[known].copy()
    churned_at = pd.to_datetime(out["churned_at"])
    ahead = pd.to_datetime(out["as_of"]) + pd.Timedelta(days=horizon_days)
    out["churned"] = ((churned_at > out["as_of"]) & (churned_at <= ahead)).astype("int64").to_numpy()
    return out


@dataclass(frozen=True)
class WarningSplit:
    """Where the early-warning time split falls (see the module docstring)."""

    train_dates: list[pd.Timestamp]
    first_test: pd.Timestamp
    survivors_until: pd.Timestamp
    lead_window_days: int


def warning_split(dates: np.ndarray | list, data_end: date, horizon_days: int) -> WarningSplit:
    """The split for ``horizon_days``; ValueError (saying how much history is needed) when there is too little."""
    end = pd.Timestamp(data_end)
    first_test = end - pd.Timedelta(days=horizon_days + CHURN_WINDOW_DAYS)
    ordered = sorted(pd.Timestamp(d) for d in dates)
    train = [d for d in ordered if d <= first_test - pd.Timedelta(days=horizon_days)]
    if len(train) < MIN_TRAIN_DATES:
        need = LOOKBACK_DAYS + 3 * horizon_days + CHURN_WINDOW_DAYS + 14
        raise ValueError(
            f"the {horizon_days}-day early warning needs about {need} days of history for its time split "
            f"(only {len(train)} training date(s)); try cse demo --days 365 or a smaller warning horizon"
        )
    return WarningSplit(train, first_test, end - pd.Timedelta(days=horizon_days), horizon_days)


def fit_warning_model(
    frame: pd.DataFrame, horizon_days: int, data_end: date, spec: FeatureSpec, config: TrainConfig, precision: float
) -> tuple[BinaryModel, float]:
    """The churn-within-``horizon_days`` model on the labelled rows and its flag threshold for ``precision``.

    An account is flagged once its calibrated probability of churning within the horizon reaches ``precision``,
    so every warning is expected to come true at least that often (the flagged accounts as a whole, more often:
    the evaluation reports the observed ``precision``). The threshold is the target itself, not fitted to outcomes.
    """
    rows = with_horizon(frame, horizon_days, data_end)
    if rows.empty or rows["churned"].sum() == 0:
        raise ValueError(f"no account churned within {horizon_days} days of any observation date")
    config = replace(config, gap_days=horizon_days)  # its own validation split keeps the horizon's gap too
    model = train_classifier(rows, rows["churned"], spec, config, dates=rows["as_of"], groups=rows["account_id"])
    return model, float(precision)


def evaluate_warning(
    frame: pd.DataFrame, data_end: date, horizon_days: int, spec: FeatureSpec, config: TrainConfig, precision: float
) -> dict[str, Any]:
    """Train on the dates before the split, flag on the dates after it: lead time and false alarms (see above)."""
    split = warning_split(frame["as_of"].unique(), data_end, horizon_days)
    past = frame[frame["as_of"].isin(split.train_dates)]
    model, threshold = fit_warning_model(past, horizon_days, data_end, spec, config, precision)
    later = frame[frame["as_of"] >= split.first_test]
    scores = later[["account_id", "as_of"]].assign(p=model.predict_proba(later))
    accounts = frame.groupby("account_id")
    since = (frame["as_of"] - pd.to_timedelta(frame["tenure_days"], unit="D")).groupby(frame["account_id"]).min()
    report = early_warning(
        scores, accounts["churned_at"].first(), threshold, lead_window_days=split.lead_window_days,
        survivors_until=split.survivors_until, customer_since=since, horizon_days=horizon_days,
    )  # fmt: skip
    return {
        "horizon_days": horizon_days,
        "target_precision": precision,
        "model": model.name,
        "train_first_observation": split.train_dates[0].date().isoformat(),
        "train_last_observation": split.train_dates[-1].date().isoformat(),
        "test_first_observation": split.first_test.date().isoformat(),
        **report,
    }
