"""The model half of a scoring run: churn probability, horizon, risk drivers, time to churn, learned expansion.

Called by app/scoring.py after the health score, with the metrics it already read (no second metrics query):

    artifact = load_scoring_artifact(settings.data_dir)          # once per run; None until `cse train` has run
    if artifact is not None:
        scored = scored.join(model_scores(conn, as_of, config, metrics, expansion, artifact, account_ids),
                             rsuffix="_model")  # or overwrite the heuristic expansion columns with these

The returned columns carry the Score column names, so write_scores can stage them like the others (risk_drivers
is a list per account: JSON-encode it as the health drivers are).
"""

from __future__ import annotations

import logging
from datetime import date
from pathlib import Path

import pandas as pd
from sqlalchemy import Connection
from threadpoolctl import threadpool_limits

from app.ml.artifacts import Artifact, ArtifactError, NoModelError, load_artifact
from app.ml.dataset import snapshot_features
from app.store.scope import AccountScope
from engine.health_config import HealthConfig
from engine.learning.predict import predict_churn, predict_expansion

log = logging.getLogger(__name__)

# The predictions and drivers run their OpenMP/BLAS code on one thread, as the model refresh does
# (app.ml.train.StoreOptions.threads): on a shared 2-core machine a second thread mostly waits for a busy core. The
# demo's churn predictions for today took 0.09-0.3 s of CPU that way, 0.04 s on one thread.
SCORING_THREADS = 1

MODEL_SCORE_COLUMNS = (
    "churn_probability", "churn_horizon_days", "risk_drivers", "days_to_churn", "early_warning",
    "warning_horizon_days", "expansion_score", "expansion_type", "revenue_potential", "model_version",
)  # fmt: skip


def load_scoring_artifact(data_dir: Path, version: str | None = None) -> Artifact | None:
    """The store model the scorer should use, or None when none has been trained (scoring then skips the model)."""
    try:
        artifact = load_artifact(data_dir, version, kind="store")
    except NoModelError:
        return None
    except ArtifactError as error:
        if version:
            raise
        # Scoring goes on without the model (the health score and heuristics still hold); say why, loudly.
        log.warning("not using the latest churn model: %s", error)
        return None
    if artifact.bundle.kind != "store":
        raise ArtifactError(f"model {artifact.version} was trained on an import, not on the store's features")
    return artifact


def model_scores(
    conn: Connection,
    as_of: date,
    config: HealthConfig,
    metrics: pd.DataFrame,
    heuristic_expansion: pd.DataFrame,
    artifact: Artifact,
    account_ids: AccountScope = None,
) -> pd.DataFrame:
    """MODEL_SCORE_COLUMNS for the accounts in `metrics` (account_metrics as of `as_of`), same index.

    `heuristic_expansion` is engine.expansion.score_expansion's output; it is blended with the learned propensity
    when the artifact has an expansion model and returned unchanged otherwise.
    """
    features = snapshot_features(conn, as_of, config, account_ids, metrics=metrics).reindex(metrics.index)
    with threadpool_limits(limits=SCORING_THREADS):
        churn = predict_churn(artifact, features)
        expansion = predict_expansion(artifact, features, heuristic_expansion.reindex(metrics.index), metrics["arr"])
    out = churn[[c for c in MODEL_SCORE_COLUMNS if c in churn.columns]].join(
        expansion[["expansion_score", "expansion_type", "revenue_potential"]]
    )
    out["model_version"] = artifact.version
    return out
