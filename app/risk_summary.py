"""What `cse score` / `cse demo` report about the risk scale: which source produced it, how many accounts have a
churn probability and drivers, and the early-warning figures of the last automatic training."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import Engine, func, select

from app.ml.auto import ScoringModels
from app.store.models import Score

EARLY_WARNING_KEYS = ("lead_days_median", "flagged_churners_share", "false_alarm_share", "threshold", "horizon_days")


def risk_summary(engine: Engine, day: date, models: ScoringModels) -> dict[str, Any]:
    """``risk`` (source, model version, accounts with a churn probability and with drivers) and ``early_warning``."""
    with engine.connect() as conn:
        latest = select(func.max(Score.id)).where(Score.as_of == day).group_by(Score.account_id).subquery()
        counts = conn.execute(
            select(
                func.count(),
                func.count(Score.churn_probability),
                func.count(Score.risk_drivers),
                func.count(Score.risk),
            ).where(Score.id.in_(select(latest)))
        ).one()
    state = models.state
    calibration = models.calibration
    warning = state.get("early_warning") or {}
    return {
        "risk": {
            "source": "model" if models.artifact is not None else "health",
            "model_version": models.artifact.version if models.artifact is not None else None,
            "model_note": state.get("reason"),
            "health_calibration": calibration.fitted_on if calibration is not None else "prior",
            "accounts": counts[0],
            "with_churn_probability": counts[1],
            "with_risk_drivers": counts[2],
            "with_risk": counts[3],
        },
        "early_warning": {k: warning.get(k) for k in EARLY_WARNING_KEYS} if warning else None,
    }
