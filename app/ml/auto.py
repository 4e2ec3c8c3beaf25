"""A model by default: scoring keeps the churn/expansion models and the health-risk calibration fresh by itself.

`scoring_models` is what every scoring entry point (`cse score`, `cse demo`, the nightly and webhook rescoring,
the shards) calls instead of only loading the latest model. When the last check is older than
`CSE_MODEL_REFRESH_DAYS` (0 turns this off) it rebuilds the store's point-in-time history once and:

1. fits the health -> churn-within-horizon calibration (engine/learning/risk.py) on it, so `risk` is a calibrated
   probability even without a model (before any labelled history, the documented prior is used);
2. trains the churn and expansion models behind the same time-split guard as `cse evaluate` (training dates end
   a horizon before the held-out dates) and keeps them only when the churn model ranks the held-out dates better
   than the health score does (ROC-AUC); a worse model is refused and the reason recorded;
3. evaluates and trains the early-warning model (app/ml/early_warning.py) on the same snapshots, which run to the
   end of the data: the later ones have no known label yet but are what the warning is judged on.

What happened is kept in `models/auto.json` (when, the held-out comparison, the early-warning figures, why a model
was refused); the calibration in `models/health_risk.json`. Both are plain JSON: nothing there is executed.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from threadpoolctl import threadpool_limits

from app.ml.artifacts import Artifact, models_dir, save_artifact
from app.ml.report import json_ready
from app.ml.scorer import load_scoring_artifact
from app.ml.train import (
    StoreOptions,
    capped,
    health_auc,
    holdout_fit,
    labelled,
    load_panel,
    start_store_bundle,
    training_window,
    warning_report,
)
from app.ml.workers import model_workers, pool_or_here
from app.settings import Settings
from engine.health_config import HealthConfig
from engine.learning.evaluate import classification_metrics
from engine.learning.risk import PRIOR, HealthRiskCalibration, calibration_error, fit_health_calibration

log = logging.getLogger(__name__)

STATE_FILE = "auto.json"
# Observation dates every two weeks: a year of history is ~20 point-in-time snapshots instead of ~40 weekly. Every
# three weeks cut the demo's refresh CPU by a third, but left the early-warning model four training dates: on the
# 1,000-account demo book of 2026-12-05 its model choice then flipped to logistic regression and the median lead
# fell to 58.5 days (every two weeks: boosting, 77 days, false alarms 15.5 %). `cse evaluate` keeps its weekly default.
AUTO_EVERY_DAYS = 14
CALIBRATION_FILE = "health_risk.json"


@dataclass(frozen=True)
class ScoringModels:
    """What a scoring run uses: the churn model (None: risk comes from calibrated health) and the calibration."""

    artifact: Artifact | None
    calibration: HealthRiskCalibration | None
    state: dict[str, Any]


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(json_ready(data), indent=2, sort_keys=True))
    os.replace(tmp, path)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def load_health_calibration(data_dir: Path) -> HealthRiskCalibration | None:
    """The store's fitted health-risk calibration, or None (scoring then uses the documented prior)."""
    data = _read_json(models_dir(data_dir) / CALIBRATION_FILE)
    if data is None:
        return None
    try:
        return HealthRiskCalibration.from_dict(data)
    except (KeyError, TypeError, ValueError) as error:
        log.warning("ignoring %s: %s", CALIBRATION_FILE, error)
        return None


def scoring_calibration(data_dir: Path, horizon_days: int) -> HealthRiskCalibration:
    """The calibration scoring reads when no model speaks for an account: the store's fitted one, else the
    documented prior stated at the configured horizon (so a churn probability always comes with its horizon)."""
    return load_health_calibration(data_dir) or replace(PRIOR, horizon_days=horizon_days)


def _due(state: dict[str, Any] | None, refresh_days: int, now: datetime) -> bool:
    if refresh_days <= 0:
        return False
    if not state or "checked_at" not in state:
        return True
    return datetime.fromisoformat(state["checked_at"]) <= now - timedelta(days=refresh_days)


def models_for(settings: Settings, engine: Engine, config: HealthConfig) -> ScoringModels:
    """``scoring_models`` with the settings' horizons, refresh period and early-warning precision."""
    options = StoreOptions(
        horizon_days=settings.churn_horizon_days,
        every_days=AUTO_EVERY_DAYS,
        warning_horizon_days=settings.warning_horizon_days,
        warning_precision=settings.warning_precision,
        workers=settings.model_workers,
    )
    models = scoring_models(engine, config, settings.data_dir, options, settings.model_refresh_days)
    prior = replace(PRIOR, horizon_days=settings.churn_horizon_days)  # no fitted calibration: the documented prior
    return replace(models, calibration=models.calibration or prior)


def scoring_models(
    engine: Engine, config: HealthConfig, data_dir: Path, options: StoreOptions, refresh_days: int
) -> ScoringModels:
    """The models to score with, refreshed first when due (see the module docstring)."""
    state = _read_json(models_dir(data_dir) / STATE_FILE)
    now = datetime.now(UTC)
    if _due(state, refresh_days, now):
        state = refresh_models(engine, config, data_dir, options, now)
    return ScoringModels(load_scoring_artifact(data_dir), load_health_calibration(data_dir), state or {})


def refresh_models(
    engine: Engine, config: HealthConfig, data_dir: Path, options: StoreOptions, now: datetime | None = None
) -> dict[str, Any]:
    """Fit the calibration and (guarded) the models on the store's history; returns and records what happened."""
    state: dict[str, Any] = {
        "checked_at": (now or datetime.now(UTC)).isoformat(timespec="seconds"),
        "horizon_days": options.horizon_days,
    }
    try:
        # The classifiers and the Cox fit cap their own threads; this also covers the predictions and the Platt and
        # calibration fits between them, whose BLAS/OpenMP threads otherwise wait for a busy core.
        with threadpool_limits(limits=options.threads):
            state.update(_refresh(engine, config, data_dir, options))
    finally:
        _write_json(models_dir(data_dir) / STATE_FILE, state)
    return state


def _refresh(engine: Engine, config: HealthConfig, data_dir: Path, options: StoreOptions) -> dict[str, Any]:
    with model_workers(options.workers) as pool:
        later = load_panel(engine, config, options, through_end=True, pool=pool)  # one build serves every horizon
        panel = labelled(later)
        frame = panel.frame
        if frame.empty or frame["churned"].sum() == 0:
            return {"model": None, "reason": "no labelled history yet (risk uses the prior health calibration)"}
        # Every fit is independent of the others, so on workers they all start at once: the bundle's fits, the
        # held-out churn fit and the early-warning evaluation. The bundle is kept only when the held-out fit
        # accepts it; when that refuses, its fits were work done for nothing (same models either way).
        pending = start_store_bundle(frame, options, later, pool) if pool is not None else None
        held_out = pool_or_here(pool).submit(capped, options.threads, holdout_fit, frame,
                                             replace(options, survival=False, expansion=False))  # fmt: skip
        evaluating = pool_or_here(pool).submit(capped, options.threads, warning_report, later, options)
        try:
            held = held_out.result()
        except ValueError as error:  # too few dates for the time-split guard: calibrate on everything, train nothing
            calibration = fit_health_calibration(frame["health"], frame["churned"], options.horizon_days)
            _write_json(models_dir(data_dir) / CALIBRATION_FILE, calibration.to_dict())
            return {"model": None, "reason": str(error), "calibration_rows": calibration.rows}
        holdout = frame["as_of"].isin(held.test_dates).to_numpy()
        calibration = fit_health_calibration(frame["health"], frame["churned"], options.horizon_days, holdout)
        _write_json(models_dir(data_dir) / CALIBRATION_FILE, calibration.to_dict())
        y = held.test["churned"].to_numpy()
        comparison = {
            "model_roc_auc": classification_metrics(y, held.p)["roc_auc"],
            "health_roc_auc": health_auc(held.test),
            "model_calibration_error": calibration_error(y, held.p),
            "test_first_observation": held.test_dates[0].date().isoformat(),
            "test_rows": len(held.test),
        }
        accepted = comparison["model_roc_auc"] > comparison["health_roc_auc"]
        bundle = (pending or start_store_bundle(frame, options, later)).result() if accepted else None
        warning = evaluating.result()
    result: dict[str, Any] = {"holdout": comparison, "early_warning": warning, "calibration_error": calibration.error}
    if bundle is None:
        return {**result, "model": None, "reason": "refused: the model ranks held-out dates no better than health"}
    meta = {
        "source": "store",
        "trained_by": "scoring (automatic)",
        "seed": options.seed,
        "every_days": options.every_days,
        "training_window": training_window(panel, frame),
        "holdout": comparison,
        "early_warning": {k: v for k, v in warning.items() if k != "lead_days"},
        "warning_horizon_days": bundle.warning_horizon_days,
        "warning_threshold": bundle.warning_threshold,
        "expansion_validation": bundle.expansion.validation if bundle.expansion else None,
        "survival_validation": bundle.extra.get("survival_validation"),
    }
    artifact = save_artifact(data_dir, bundle, meta)
    return {**result, "model": artifact.version}
