"""Expansion score from the usage signals of DESIGN §7: who is outgrowing what they bought, and by how much.

Signal strengths are 0–1 ramps so that the score moves smoothly as an account approaches a limit; the type is the
strongest of seat, plan and feature pressure, and the revenue potential prices that move from the account's ARR.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

EXPANSION_TYPES = ("seat", "plan", "feature")

# (weight, ramp start, ramp end): a signal is 0 below the start and 1 above the end.
SIGNALS: dict[str, tuple[float, float, float]] = {
    "seat_utilization": (0.30, 0.60, 0.95),
    "limit_pressure": (0.25, 0.50, 0.90),
    "advanced_adoption": (0.20, 0.10, 0.50),
    "roi": (0.15, 100.0, 300.0),
    "seat_growth": (0.10, 0.0, 0.20),
}
# Share of current ARR that each expansion type typically adds.
UPLIFT = {"seat": 0.25, "plan": 0.50, "feature": 0.20}
# Unhealthy accounts rarely expand: the score is scaled by this ramp over health.
HEALTH_GATE = (30.0, 70.0)


def _ramp(values: pd.Series, start: float, end: float) -> np.ndarray:
    return np.clip((values.to_numpy(dtype="float64") - start) / (end - start), 0.0, 1.0)


def _signals(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    api = frame["api_used"] / frame["api_limit"].where(frame["api_limit"] > 0)
    storage = frame["storage_used_gb"] / frame["storage_limit_gb"].where(frame["storage_limit_gb"] > 0)
    sources = {
        "seat_utilization": frame["active_user_share"],
        "limit_pressure": pd.concat([api, storage], axis=1).max(axis=1),
        "advanced_adoption": frame["advanced_adoption"],
        "roi": frame["roi_pct"],
        "seat_growth": frame["seat_growth_90d"],
    }
    return {name: _ramp(sources[name].astype("float64"), start, end) for name, (_, start, end) in SIGNALS.items()}


def score_expansion(frame: pd.DataFrame, health: pd.Series | None = None) -> pd.DataFrame:
    """Score 0–100, type and revenue potential per account.

    `frame` holds the metrics of app.store.metrics.account_metrics (arr, utilizations, adoption, ROI, growth).
    Missing signals count as 0: an account with no usage data shows no expansion pressure.
    """
    signals = _signals(frame)
    weighted = sum(np.nan_to_num(signals[name]) * weight for name, (weight, _, _) in SIGNALS.items())
    if health is not None:
        gate = _ramp(health.reindex(frame.index).fillna(HEALTH_GATE[1]), *HEALTH_GATE)
        weighted = weighted * (0.25 + 0.75 * gate)
    score = np.round(100.0 * weighted, 1)

    pressure = np.column_stack(
        [
            np.nan_to_num(signals["seat_utilization"]),
            np.nan_to_num(signals["limit_pressure"]),
            np.nan_to_num(signals["advanced_adoption"]),
        ]
    )
    type_index = pressure.argmax(axis=1)
    kinds = np.array(EXPANSION_TYPES, dtype=object)[type_index]
    kinds[pressure.max(axis=1) == 0] = None
    uplift = np.array([UPLIFT[t] for t in EXPANSION_TYPES])[type_index]
    arr = frame["arr"].astype("float64").fillna(0.0).to_numpy()
    potential = np.where(kinds == None, 0.0, np.round(arr * uplift * score / 100.0, 2))  # noqa: E711
    return pd.DataFrame(
        {"expansion_score": score, "expansion_type": kinds, "revenue_potential": potential}, index=frame.index
    )
