"""Versioned model files: a saved model loads back identical, is verified, and drives predict_churn."""

from __future__ import annotations

import json

import numpy as np
import pytest

from app.ml.artifacts import ArtifactError, latest_version, list_artifacts, load_artifact, save_artifact
from engine.learning.models import TrainConfig, train_classifier
from engine.learning.predict import PREDICTION_COLUMNS, ModelBundle, predict_churn
from engine.learning.survival import fit_survival
from tests.test_churn_models import SPEC, synthetic


@pytest.fixture(scope="module")
def bundle() -> ModelBundle:
    data = synthetic(1200)
    data["duration"] = np.where(data["y"] == 1, 10 + data.index % 20, 60).astype(float)
    churn = train_classifier(data, data["y"], SPEC, TrainConfig(seed=1))
    survival = fit_survival(data, data["duration"], data["y"], SPEC)
    return ModelBundle(churn=churn, horizon_days=30, survival=survival, kind="store")


def test_round_trip_gives_identical_predictions(tmp_path, bundle):
    data = synthetic(300, seed=9)
    saved = save_artifact(tmp_path, bundle, {"source": "test", "training_window": {"first_observation": "2026-01-01"}})
    loaded = load_artifact(tmp_path)  # the latest store model
    assert loaded.version == saved.version == latest_version(tmp_path, "store")
    before, after = predict_churn(saved, data), predict_churn(loaded, data)
    assert list(after.columns) == list(PREDICTION_COLUMNS)
    np.testing.assert_array_equal(before["churn_probability"], after["churn_probability"])
    np.testing.assert_array_equal(before["days_to_churn"], after["days_to_churn"])
    assert before["risk_drivers"].tolist() == after["risk_drivers"].tolist()
    meta = json.loads((saved.path / "meta.json").read_text())
    assert meta["training_window"]["first_observation"] == "2026-01-01"
    assert meta["validation"]["roc_auc"] > 0.5 and meta["model"] in ("logreg", "hgb")
    assert [m["version"] for m in list_artifacts(tmp_path)] == [saved.version]
    assert len(saved.version) <= 64  # fits Score.model_version


def test_a_tampered_model_file_is_refused(tmp_path, bundle):
    saved = save_artifact(tmp_path, bundle, {})
    with (saved.path / "model.joblib").open("ab") as handle:
        handle.write(b"\0")
    with pytest.raises(ArtifactError, match="checksum"):
        load_artifact(tmp_path, saved.version)


def test_no_model_yet_is_a_clear_error(tmp_path):
    with pytest.raises(ArtifactError, match="cse train"):
        load_artifact(tmp_path)


def test_predictions_carry_horizon_flag_percentile_and_time_to_churn(bundle):
    data = synthetic(400, seed=5)
    out = predict_churn(bundle, data)
    assert out["churn_horizon_days"].eq(30).all()
    assert out["churn_probability"].between(0, 1).all()
    p = bundle.churn.predict_proba(data)
    np.testing.assert_array_equal(out["churn_flag"].to_numpy(), p >= bundle.churn.threshold)
    assert out["churn_percentile"].between(0, 100).all()
    risky = out["churn_probability"].idxmax()
    assert out.loc[risky, "risk_drivers"]  # the riskiest account has drivers
    assert predict_churn(bundle, data.head(0)).empty
