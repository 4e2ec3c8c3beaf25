"""Expansion score that learns from the company's own expansion history when there is some (DESIGN §7).

engine/expansion.py scores the usage signals of §7 (seats nearly full, limits near, advanced features adopted,
ROI, seat growth) with fixed weights. Where the store has seen enough accounts add seats or upgrade, a
classifier (the same candidates and calibration as churn, on the same point-in-time features) learns which
accounts actually expanded within the horizon. The two are blended:

    score = (1 − w) × heuristic + w × 100 × percentile of the learned propensity

The propensity enters as its percentile among validation accounts so that the 0–100 tiers (80+ proposal, 60–79
nurture, 40–59 quarterly) keep their meaning whatever the base rate of expansion. Type stays the heuristic's
(seat, plan or feature pressure; "seat" when only the model sees expansion coming, the most common move), and the
revenue potential prices that move from ARR exactly as the heuristic does.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from engine.expansion import UPLIFT
from engine.learning.models import BinaryModel, FeatureSpec, TrainConfig, train_classifier

MIN_POSITIVES = 20  # fewer expansions than this and the heuristic stands alone
PROPENSITY_WEIGHT = 0.5


def train_expansion_model(
    frame: pd.DataFrame,
    expanded: np.ndarray | pd.Series,
    spec: FeatureSpec,
    config: TrainConfig = TrainConfig(),  # noqa: B008 - frozen dataclass
    dates: np.ndarray | pd.Series | None = None,
    groups: np.ndarray | pd.Series | None = None,
) -> BinaryModel | None:
    """A calibrated expansion propensity model, or None when the history holds too few expansions to learn from."""
    y = np.asarray(expanded, dtype="int64")
    if y.sum() < MIN_POSITIVES or (len(y) - y.sum()) < MIN_POSITIVES:
        return None
    try:
        return train_classifier(frame, y, spec, config, dates, groups)
    except ValueError:  # e.g. every expansion fell in one period: no honest validation split
        return None


def combine_expansion(
    heuristic: pd.DataFrame,
    arr: pd.Series,
    propensity_percentile: np.ndarray | pd.Series | None,
    weight: float = PROPENSITY_WEIGHT,
) -> pd.DataFrame:
    """Blend engine.expansion.score_expansion's output with a learned propensity percentile (0-1).

    Returns expansion_score (0-100), expansion_type, revenue_potential and expansion_propensity_pct (0-100 or NaN),
    indexed like `heuristic`. Without a propensity the heuristic is returned unchanged.
    """
    out = heuristic[["expansion_score", "expansion_type", "revenue_potential"]].copy()
    if propensity_percentile is None:
        out["expansion_propensity_pct"] = np.nan
        return out
    pct = np.clip(np.asarray(propensity_percentile, dtype="float64"), 0.0, 1.0)
    base = heuristic["expansion_score"].to_numpy(dtype="float64", na_value=0.0)
    score = np.round((1.0 - weight) * base + weight * 100.0 * pct, 1)
    kinds = heuristic["expansion_type"].astype(object).to_numpy().copy()
    kinds[pd.isna(kinds) & (score > 0)] = "seat"
    uplift = np.array([UPLIFT.get(k, 0.0) if isinstance(k, str) else 0.0 for k in kinds])
    arr_values = arr.reindex(heuristic.index).astype("float64").fillna(0.0).to_numpy()
    out["expansion_score"] = score
    out["expansion_type"] = kinds
    out["revenue_potential"] = np.round(arr_values * uplift * score / 100.0, 2)
    out["expansion_propensity_pct"] = np.round(100.0 * pct, 1)
    return out
