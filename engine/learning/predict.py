"""The trained models as one object, and the scoring function the nightly run calls with it.

`predict_churn` turns a frame of features (engine.learning.features, one row per account) into the Score columns
waiting for it: churn probability and its horizon, the at-risk flag, the top risk drivers, the survival
model's median time to churn, and the early-warning flag of the longer-horizon warning
model. `predict_expansion` does the same for the learned expansion propensity.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from engine.learning.expansion_model import combine_expansion
from engine.learning.explain import contributions, top_drivers
from engine.learning.models import BinaryModel
from engine.learning.survival import SurvivalModel

PREDICTION_COLUMNS = (
    "churn_probability", "churn_horizon_days", "churn_flag", "churn_percentile", "days_to_churn", "risk_drivers",
    "early_warning", "warning_horizon_days",
)  # fmt: skip


@dataclass
class ModelBundle:
    """Everything one training run produced. `kind` is "store" (features of engine.learning.features, usable by
    the scorer) or "tabular" (an imported export's own columns, usable only on data shaped like it)."""

    churn: BinaryModel
    horizon_days: int | None
    survival: SurvivalModel | None = None
    expansion: BinaryModel | None = None
    kind: str = "store"
    version: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    # The early-warning model (churn within warning_horizon_days) and the probability from which it flags.
    warning: BinaryModel | None = None
    warning_horizon_days: int | None = None
    warning_threshold: float | None = None


def _bundle(artifact: Any) -> ModelBundle:
    """Accept an app.ml.artifacts.Artifact (which carries a bundle) or a bare ModelBundle."""
    return artifact if isinstance(artifact, ModelBundle) else artifact.bundle


def predict_churn(artifact: Any, features: pd.DataFrame, drivers: int = 3, explain: bool = True) -> pd.DataFrame:
    """Churn columns per account (same index as `features`); see PREDICTION_COLUMNS.

    `risk_drivers` holds a list of driver dicts per account (engine.learning.explain.top_drivers), empty when
    nothing raises the risk above a typical account; `days_to_churn` is NaN when the survival curve does not
    reach 50 % within the follow-up the model was trained on. `explain=False` skips the drivers (faster).
    """
    bundle = _bundle(artifact)
    model = bundle.churn
    out = pd.DataFrame(index=features.index)
    if features.empty:
        for column in PREDICTION_COLUMNS:
            out[column] = pd.Series(dtype=object)
        return out
    p = model.predict_proba(features)
    out["churn_probability"] = np.round(p, 4)
    out["churn_horizon_days"] = bundle.horizon_days
    out["churn_flag"] = p >= model.threshold
    out["churn_percentile"] = np.round(100.0 * model.percentile(p), 1)
    if bundle.survival is not None:
        out["days_to_churn"] = bundle.survival.median_time(features)
    else:
        out["days_to_churn"] = np.nan
    if explain:
        contrib = contributions(model, features)
        out["risk_drivers"] = top_drivers(model, features, contrib, drivers, probability=p)
    else:
        out["risk_drivers"] = [[] for _ in range(len(out))]
    warning = getattr(bundle, "warning", None)  # artifacts saved before the warning model have none
    if warning is not None:
        out["early_warning"] = warning.predict_proba(features) >= bundle.warning_threshold
        out["warning_horizon_days"] = bundle.warning_horizon_days
    else:
        out["early_warning"] = None
        out["warning_horizon_days"] = np.nan
    return out


def predict_expansion(artifact: Any, features: pd.DataFrame, heuristic: pd.DataFrame, arr: pd.Series) -> pd.DataFrame:
    """Expansion score blended with the learned propensity when the bundle has an expansion model."""
    bundle = _bundle(artifact)
    if bundle.expansion is None or features.empty:
        return combine_expansion(heuristic, arr, None)
    p = bundle.expansion.predict_proba(features.reindex(heuristic.index))
    return combine_expansion(heuristic, arr, bundle.expansion.percentile(p))
