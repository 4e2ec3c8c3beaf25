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
        # Each account's latest row of the day by a window over the day's rows: one scan and a sort, where
        # `id IN (max(id) … GROUP BY account_id)` probed the history once per account (7 s at a million accounts,
        # up to 25 s right after a run, whose rows the planner's statistics do not know yet; this 1.2 s).
        ranked = select(
            Score.churn_probability,
            Score.risk_drivers,
            Score.risk,
            func.row_number().over(partition_by=Score.account_id, order_by=Score.id.desc()).label("rank"),
        ).where(Score.as_of == day)
        latest = ranked.subquery()
        counts = conn.execute(
            select(
                func.count(),
                func.count(latest.c.churn_probability),
                func.count(latest.c.risk_drivers),
                func.count(latest.c.risk),
            ).where(latest.c.rank == 1)
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
