"""What `cse score` / `cse demo` report about the risk scale: which source produced it, how many accounts have a
churn probability and drivers, and the early-warning figures of the last automatic training."""

from __future__ import annotations

from typing import Any

from app.band_totals import BandTotals
from app.ml.auto import ScoringModels

EARLY_WARNING_KEYS = ("lead_days_median", "flagged_churners_share", "false_alarm_share", "threshold", "horizon_days")


def risk_summary(totals: BandTotals, models: ScoringModels) -> dict[str, Any]:
    """``risk`` (source, model version, accounts scored, with a churn probability, with drivers, with a risk) and
    ``early_warning``. The counts are the run's own, added up as it scored: the score history cannot give them,
    since an account whose score did not move gets no row that day."""
    state = models.state
    calibration = models.calibration
    warning = state.get("early_warning") or {}
    return {
        "risk": {
            "source": "model" if models.artifact is not None else "health",
            "model_version": models.artifact.version if models.artifact is not None else None,
            "model_note": state.get("reason"),
            "health_calibration": calibration.fitted_on if calibration is not None else "prior",
            "accounts": totals.accounts,
            **totals.risk,
        },
        "early_warning": {k: warning.get(k) for k in EARLY_WARNING_KEYS} if warning else None,
    }
