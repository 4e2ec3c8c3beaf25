"""`cse train|evaluate|score --data NAME` on a history import: the monthly panel, a time split, leakage guards.

Evaluation trains on the earlier observation dates and tests on the later ones (app.ml.train.split_dates: training
labels end before the test period). Churn and upsell models read the store's point-in-time features plus the
import's plan state and per-event-type usage. Before any fit a feature that gives the label away is refused by name
(engine/learning/leakage.py); a held-out ROC-AUC above 0.98 is reported as a warning.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine, select

from app.history.panel import history_columns, history_panel
from app.ml.artifacts import Artifact, load_artifact, save_artifact
from app.ml.dataset import Panel
from app.ml.train import StoreOptions, backtest_panel, split_dates, store_spec, training_window
from app.store.models import Account
from engine.health_config import HealthConfig
from engine.learning.evaluate import classification_metrics, lead_time
from engine.learning.leakage import refuse_leaks, suspicious_score
from engine.learning.models import LOGREG_C_GRID, BinaryModel, FeatureSpec, TrainConfig, train_classifier
from engine.learning.predict import ModelBundle

KIND = "history"
TARGETS = {"churn": "churned", "upsell": "upsold"}


@dataclass(frozen=True)
class HistoryOptions:
    name: str
    horizon_days: int = 30
    every_days: int = 30
    seed: int = 0
    threads: int | None = 1
    test_share: float = 0.3


def history_spec(frame: pd.DataFrame) -> FeatureSpec:
    """The store's model features plus the import's plan-state and event-type columns."""
    base = store_spec()
    numeric, categorical = history_columns(frame)
    return FeatureSpec((*base.numeric, *numeric), (*base.categorical, *categorical), dict(base.labels))


def load_history_panel(engine: Engine, config: HealthConfig, options: HistoryOptions) -> Panel:
    with engine.connect() as conn:
        panel = history_panel(conn, config, options.name, options.horizon_days, options.every_days)
    if panel.frame.empty:
        raise ValueError(
            f"import {options.name!r} gives no observation dates: the panel needs 60 days of history before the "
            f"first date and {options.horizon_days} days after the last (try a smaller --horizon)"
        )
    if panel.frame["churned"].sum() == 0:
        raise ValueError(f"no account of {options.name!r} churned within {options.horizon_days} days of any date")
    return panel


def backtest_history(engine: Engine, config: HealthConfig, options: HistoryOptions) -> dict[str, Any]:
    """The health backtest (app.ml.train.backtest_panel) on the import's monthly panel."""
    panel = load_history_panel(engine, config, options)
    store_options = StoreOptions(horizon_days=options.horizon_days, every_days=options.every_days,
                                 test_share=options.test_share)  # fmt: skip
    return {"source": f"import:{options.name}", **backtest_panel(panel, config, store_options)}


def _fit(frame: pd.DataFrame, label: str, spec: FeatureSpec, options: HistoryOptions) -> BinaryModel | None:
    y = frame[label].to_numpy(dtype="int64")
    if y.sum() < 2 or y.sum() == len(y):
        return None
    refuse_leaks(frame, y, spec)
    # A wide panel (per-type usage in many views): the logistic regression's penalty is chosen on grouped folds.
    config = TrainConfig(
        seed=options.seed, gap_days=options.horizon_days, threads=options.threads, logreg_c_grid=LOGREG_C_GRID
    )
    return train_classifier(frame, y, spec, config, dates=frame["as_of"], groups=frame["account_id"])


def train_history(engine: Engine, config: HealthConfig, data_dir: Path, options: HistoryOptions) -> Artifact:
    """Churn and upsell models on every labelled observation date of the import, saved as a `history` model."""
    panel = load_history_panel(engine, config, options)
    spec = history_spec(panel.frame)
    churn = _fit(panel.frame, "churned", spec, options)
    assert churn is not None
    upsell = _fit(panel.frame, "upsold", spec, options)
    bundle = ModelBundle(churn=churn, horizon_days=options.horizon_days, expansion=upsell, kind=KIND)
    meta = {"source": f"import:{options.name}", "import": options.name, "seed": options.seed,
            "every_days": options.every_days, "training_window": training_window(panel, panel.frame),
            "upsell_validation": upsell.validation if upsell else None}  # fmt: skip
    return save_artifact(data_dir, bundle, meta)


def write_test_scores(engine: Engine, test: pd.DataFrame, p: np.ndarray, path: Path) -> None:
    """The test rows' churn probabilities and labels as CSV, keyed by the export's account id (the account key),
    so a model built outside cse can be compared with cse's on the very same rows."""
    with engine.connect() as conn:
        keys = dict(conn.execute(select(Account.id, Account.key)).all())
    rows = pd.DataFrame({"account": test["account_id"].map(keys), "as_of": pd.to_datetime(test["as_of"]).dt.date,
                         "churned": test["churned"].astype("int64"), "churn_probability": p})  # fmt: skip
    rows.to_csv(path, index=False)


def evaluate_history(
    engine: Engine, config: HealthConfig, options: HistoryOptions, scores_path: Path | None = None
) -> dict[str, Any]:
    """Time split: fit churn and upsell on the earlier dates, measure on the later ones; lead time of churners.
    With `scores_path`, the test rows' churn probabilities are written there (write_test_scores)."""
    panel = load_history_panel(engine, config, options)
    frame = panel.frame
    train_dates, test_dates = split_dates(frame["as_of"].unique(), options.test_share, options.horizon_days)
    if not train_dates:
        raise ValueError(
            f"no observation date of {options.name!r} lies {options.horizon_days} days before the test period; "
            "a longer history or a smaller --horizon is needed"
        )
    train = frame[frame["as_of"].isin(train_dates)].reset_index(drop=True)
    test = frame[frame["as_of"].isin(test_dates)].reset_index(drop=True)
    spec = history_spec(frame)
    report: dict[str, Any] = {
        "source": f"import:{options.name}", "horizon_days": options.horizon_days, "every_days": options.every_days,
        "split": "time", "train_window": training_window(panel, train),
        "test_window": {"first_observation": test_dates[0].date().isoformat(),
                        "last_observation": test_dates[-1].date().isoformat(), "observation_dates": len(test_dates)},
        "train_rows": len(train), "test_rows": len(test), "warnings": [],
    }  # fmt: skip
    for target, label in TARGETS.items():
        model = _fit(train, label, spec, options)
        if model is None:
            report[target] = {"model": None, "reason": f"fewer than 2 {label} rows in the training period"}
            continue
        p = model.predict_proba(test)
        metrics = classification_metrics(test[label].to_numpy(), p)
        report[target] = {"model": model.name, **metrics}
        warning = suspicious_score(metrics, target)
        if warning:
            report["warnings"].append(warning)
        if target == "churn":
            churned_at = frame.groupby("account_id")["churned_at"].first()
            scores = test[["account_id", "as_of"]].assign(p=p)
            report["lead_time"] = lead_time(scores, churned_at, model.threshold)
            if scores_path is not None:
                write_test_scores(engine, test, p, scores_path)
    return report


def score_history(
    engine: Engine, config: HealthConfig, data_dir: Path, options: HistoryOptions, version: str | None = None
) -> pd.DataFrame:
    """Churn (and upsell) probability of each account of the import on its last observation date, with a
    `history` model trained on this or another import (same horizon, or refused)."""
    artifact = load_artifact(data_dir, version, kind=KIND)
    bundle = artifact.bundle
    if bundle.horizon_days != options.horizon_days:
        raise ValueError(f"model {artifact.version} predicts {bundle.horizon_days} days ahead, not "
                         f"{options.horizon_days} (pass --horizon {bundle.horizon_days} or train one)")  # fmt: skip
    with engine.connect() as conn:
        panel = history_panel(conn, config, options.name, bundle.horizon_days, options.every_days, through_end=True)
    if panel.frame.empty:
        raise ValueError(f"import {options.name!r} has no observation date to score")
    last = panel.frame[panel.frame["as_of"] == panel.frame["as_of"].max()].reset_index(drop=True)
    out = last[["account_id", "as_of"]].assign(churn_probability=bundle.churn.predict_proba(last))
    if bundle.expansion is not None:
        out["upsell_probability"] = bundle.expansion.predict_proba(last)
    return out.sort_values("churn_probability", ascending=False, kind="stable").reset_index(drop=True)
