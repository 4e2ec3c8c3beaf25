"""Scoring run: read metrics from the store, score with the engine, write one score row per account."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd
from sqlalchemy import Connection, func, select

from app.cards.overrides import apply_band_overrides
from app.ml.artifacts import Artifact
from app.ml.scorer import model_scores
from app.store.bulk import staged_insert
from app.store.metrics import account_metrics
from app.store.models import Score
from app.store.scope import AccountScope, scope_filter
from engine.canonical import FACTORS
from engine.expansion import score_expansion
from engine.health import score_health
from engine.health_config import HealthConfig
from engine.learning.risk import PRIOR, HealthRiskCalibration, risk_scale

TREND_LOOKBACKS = {"health_7d_ago": 7, "health_30d_ago": 30}
# A score counts as "7 days ago" if it was computed for a day within this many days before that target.
TREND_TOLERANCE_DAYS = 7
SCORE_COLUMNS = (
    "account_id", "as_of", "computed_at", "health", "band", "band_computed", *(f"f_{f}" for f in FACTORS), "coverage",
    "trend_7d", "trend_30d", "drivers", "recommended_action", "expansion_score", "expansion_type",
    "revenue_potential", "churn_probability", "churn_horizon_days", "days_to_churn", "risk_drivers", "model_version",
    "risk", "risk_source",
)  # fmt: skip
JSON_COLUMNS = ("drivers", "risk_drivers")
MODEL_COLUMNS = ("churn_probability", "churn_horizon_days", "days_to_churn", "risk_drivers", "model_version")


def previous_health(conn: Connection, as_of: date, account_ids: AccountScope = None) -> pd.DataFrame:
    """Latest health per account at 7 and 30 days before `as_of` (within a tolerance), for the trends."""
    frames = {}
    for column, days in TREND_LOOKBACKS.items():
        target = as_of - timedelta(days=days)
        ranked = select(
            Score.account_id,
            Score.health,
            func.row_number()
            .over(partition_by=Score.account_id, order_by=(Score.as_of.desc(), Score.id.desc()))
            .label("rank"),
        ).where(Score.as_of <= target, Score.as_of > target - timedelta(days=TREND_TOLERANCE_DAYS))
        if account_ids is not None:
            ranked = ranked.where(scope_filter(Score.account_id, account_ids))
        sub = ranked.subquery()
        rows = conn.execute(select(sub.c.account_id, sub.c.health).where(sub.c.rank == 1)).all()
        frames[column] = pd.Series(dict(rows), dtype="float64")
    return pd.DataFrame(frames)


def compute_scores(
    conn: Connection,
    as_of: date,
    config: HealthConfig,
    account_ids: AccountScope = None,
    artifact: Artifact | None = None,
    calibration: HealthRiskCalibration | None = None,
) -> pd.DataFrame:
    """Health and expansion for every account active on `as_of` (or the given ones), with metrics and attributes.

    The metrics ride along because the playbooks and the reports read them next to the scores. `risk` is the one
    risk scale (engine/learning/risk.py): the model's churn probability x 100 with `artifact`, else health through
    `calibration` (the store's fitted one, or the documented prior when None); `risk_source` says which.
    """
    metrics = account_metrics(conn, as_of, config.core_features, config.features, account_ids)
    if metrics.empty:
        return metrics
    health = score_health(metrics, config, previous_health(conn, as_of, account_ids))
    expansion = score_expansion(metrics, health["health"])
    scored = health.join(expansion).join(metrics)
    if artifact is not None:  # the trained model adds churn risk and refines expansion with learned propensity
        learned = model_scores(conn, as_of, config, metrics, expansion, artifact, account_ids)
        for column in learned.columns:
            scored[column] = learned[column]
    for column in MODEL_COLUMNS:
        if column not in scored:
            scored[column] = None if column in ("risk_drivers", "model_version") else np.nan
    scored["risk"], scored["risk_source"] = risk_scale(
        scored["health"], scored["churn_probability"], calibration or PRIOR
    )
    scored["days_to_renewal"] = (pd.to_datetime(scored["renewal_date"]) - pd.Timestamp(as_of)).dt.days
    return scored


def _drivers_json(scored: pd.DataFrame) -> list[str]:
    columns = [c for c in scored.columns if c.startswith("driver_")]
    values = scored[columns].astype(object).where(scored[columns].notna(), None).to_numpy()
    return [json.dumps([d for d in row if d is not None]) for row in values]


def _json_or_null(values: pd.Series) -> list[str | None]:
    return [None if v is None or (isinstance(v, float) and np.isnan(v)) else json.dumps(v) for v in values]


def write_scores(conn: Connection, as_of: date, scored: pd.DataFrame) -> int:
    """Append one Score row per account in one bulk statement (COPY on PostgreSQL)."""
    if scored.empty:
        return 0
    out = scored.reset_index(names="account_id")
    out["as_of"] = as_of
    out["computed_at"] = datetime.now()
    out["band"] = out["band"].astype(object)
    out["recommended_action"] = out["recommended_action"].astype(object)
    out["drivers"] = _drivers_json(scored)
    out["risk_drivers"] = _json_or_null(out["risk_drivers"])
    out = out.replace([np.inf, -np.inf], np.nan)
    staged_insert(conn, Score.__table__, out, SCORE_COLUMNS, json_columns=JSON_COLUMNS)
    return len(out)


def score_and_store(
    conn: Connection,
    as_of: date,
    config: HealthConfig,
    account_ids: AccountScope = None,
    artifact: Artifact | None = None,
    calibration: HealthRiskCalibration | None = None,
) -> pd.DataFrame:
    scored = compute_scores(conn, as_of, config, account_ids, artifact, calibration)
    scored = apply_band_overrides(conn, scored, as_of)
    write_scores(conn, as_of, scored)
    return scored
