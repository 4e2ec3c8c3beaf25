"""Leakage guards: features that give the label away, and scores too good to be honest.

A model that sees its own label (a column listed by mistake), a stand-in for it (an end date, a refund), or data
from after the observation date scores near-perfectly in evaluation and is useless in production. These checks
run before a fit and after an evaluation, and name the feature at fault.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from engine.learning.models import FeatureSpec

NEAR_DETERMINING_AUC = 0.98  # one feature alone ranking the label this well is a leak, not a signal
SUSPICIOUS_AUC = 0.98  # a whole model scoring this well on held-out data is flagged


class LeakageError(ValueError):
    """A feature that gives the label away; the message names it."""


def _single_feature_auc(values: pd.Series, y: np.ndarray) -> float:
    x = pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64")
    known = ~np.isnan(x)
    if known.sum() < 2 or len(np.unique(y[known])) < 2 or len(np.unique(x[known])) < 2:
        return 0.5
    auc = roc_auc_score(y[known], x[known])
    return max(auc, 1.0 - auc)


def leaking_features(frame: pd.DataFrame, y: np.ndarray | pd.Series, spec: FeatureSpec) -> list[tuple[str, str]]:
    """(feature, why) for each feature equal to the label or ranking it near-perfectly on its own."""
    y = np.asarray(y, dtype="int64")
    found = []
    if len(np.unique(y)) < 2:
        return found
    for name in spec.numeric:
        if name not in frame:
            continue
        values = pd.to_numeric(frame[name], errors="coerce")
        if values.notna().all() and np.array_equal(values.to_numpy(dtype="float64"), y.astype("float64")):
            found.append((name, "equals the label"))
            continue
        auc = _single_feature_auc(values, y)
        if auc > NEAR_DETERMINING_AUC:
            found.append((name, f"alone ranks the label with ROC-AUC {auc:.3f}"))
    for name in spec.categorical:
        if name not in frame:
            continue
        rate = pd.Series(y).groupby(frame[name].astype(str).to_numpy()).transform("mean")
        if _single_feature_auc(rate, y) > NEAR_DETERMINING_AUC and frame[name].nunique() < len(frame):
            found.append((name, "its categories alone determine the label"))
    return found


def refuse_leaks(frame: pd.DataFrame, y: np.ndarray | pd.Series, spec: FeatureSpec) -> None:
    """Raise LeakageError naming every feature that gives the label away."""
    found = leaking_features(frame, y, spec)
    if found:
        listed = "; ".join(f"{name} {why}" for name, why in found)
        raise LeakageError(f"refused, label leakage: {listed}. Remove the feature(s) from the mapping.")


def suspicious_score(metrics: dict[str, float], what: str) -> str | None:
    """A warning when a held-out ROC-AUC is too good to be true (else None)."""
    auc = metrics.get("roc_auc", float("nan"))
    if auc == auc and auc > SUSPICIOUS_AUC:
        return (f"{what}: ROC-AUC {auc:.3f} on held-out data is suspiciously perfect; look for a feature computed "
                "from the outcome or from after the observation date")  # fmt: skip
    return None
