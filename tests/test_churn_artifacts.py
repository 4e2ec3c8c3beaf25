"""Versioned model files: a saved model loads back identical, is verified, and drives predict_churn."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pickle

import numpy as np
import pytest

from app.ml.artifacts import ArtifactError, latest_version, list_artifacts, load_artifact, save_artifact
from app.ml.scorer import load_scoring_artifact
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


class _RunsCode:
    """Unpickling this runs a shell command: what a planted model file would do."""

    def __init__(self, marker) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _plant(folder, marker, version: str = "churn-store-planted") -> None:
    """A version folder as the old loader accepted it: a code-running pickle and its matching plain checksum."""
    folder.mkdir(parents=True)
    payload = pickle.dumps(_RunsCode(marker))
    (folder / "model.joblib").write_bytes(payload)
    meta = {"version": version, "kind": "store", "sha256": hashlib.sha256(payload).hexdigest()}
    (folder / "meta.json").write_text(json.dumps(meta))


def test_a_planted_model_with_a_matching_checksum_is_not_unpickled(tmp_path, bundle):
    save_artifact(tmp_path, bundle, {})  # a key exists: only the signature is missing
    marker = tmp_path / "ran"
    _plant(tmp_path / "models" / "churn-store-planted", marker)
    (tmp_path / "models" / "latest-store").write_text("churn-store-planted\n")
    with pytest.raises(ArtifactError, match="incomplete"):
        load_artifact(tmp_path)
    (tmp_path / "models" / "churn-store-planted" / "signature").write_text("0" * 64 + "\n")
    with pytest.raises(ArtifactError, match="not signed with this service's model key"):
        load_artifact(tmp_path)
    assert load_scoring_artifact(tmp_path) is None  # scoring carries on without it
    assert not marker.exists()


def test_a_model_signed_with_another_key_or_with_edited_metadata_is_refused(tmp_path, bundle):
    saved = save_artifact(tmp_path, bundle, {}, key=b"another service's key 0123456789")
    with pytest.raises(ArtifactError, match="not signed"):
        load_artifact(tmp_path, saved.version)
    mine = save_artifact(tmp_path, dataclasses.replace(bundle, version=None), {})
    meta = json.loads((mine.path / "meta.json").read_text())
    (mine.path / "meta.json").write_text(json.dumps({**meta, "threshold": 0.0}, indent=2, sort_keys=True))
    with pytest.raises(ArtifactError, match="not signed"):
        load_artifact(tmp_path, mine.version)


@pytest.mark.parametrize("pointer", ["absolute", "dotdot", "symlink"])
def test_a_latest_pointer_leading_outside_the_models_directory_is_refused(tmp_path, pointer):
    data_dir, elsewhere, marker = tmp_path / "data", tmp_path / "elsewhere", tmp_path / "ran"
    _plant(elsewhere / "churn-store-planted", marker)
    models = data_dir / "models"
    models.mkdir(parents=True)
    if pointer == "absolute":
        (models / "latest-store").write_text(f"{elsewhere / 'churn-store-planted'}\n")
    elif pointer == "dotdot":
        (models / "latest-store").write_text("../../elsewhere/churn-store-planted\n")
    else:
        (models / "churn-store-planted").symlink_to(elsewhere / "churn-store-planted")
        (models / "latest-store").write_text("churn-store-planted\n")
    refusal = "resolves outside" if pointer == "symlink" else "not a plain model folder name"
    with pytest.raises(ArtifactError, match=refusal):
        load_artifact(data_dir, key=b"k" * 32)
    with pytest.raises(ArtifactError, match="not a plain model folder name"):  # nor as an explicit version
        load_artifact(data_dir, str(elsewhere / "churn-store-planted"), key=b"k" * 32)
    assert not marker.exists()


def test_the_key_is_created_by_training_outside_the_data_dir_and_never_by_loading(tmp_path, monkeypatch, bundle):
    key_file = tmp_path / "config" / "cse" / "model.key"
    monkeypatch.setenv("CSE_MODEL_KEY_FILE", str(key_file))
    saved = save_artifact(tmp_path / "data", bundle, {})
    assert key_file.stat().st_mode & 0o777 == 0o600 and len(key_file.read_bytes().strip()) == 64
    assert load_artifact(tmp_path / "data").version == saved.version
    monkeypatch.setenv("CSE_MODEL_KEY_FILE", str(tmp_path / "other-host" / "model.key"))
    with pytest.raises(ArtifactError, match="no model signing key"):
        load_artifact(tmp_path / "data")
    assert not (tmp_path / "other-host" / "model.key").exists()
    monkeypatch.setenv("CSE_MODEL_KEY_FILE", str(key_file))
    monkeypatch.setenv("CSE_MODEL_KEY", "a shared secret for every host")  # the setting wins over the file
    with pytest.raises(ArtifactError, match="not signed"):
        load_artifact(tmp_path / "data")
    monkeypatch.setenv("CSE_MODEL_KEY", "short")
    with pytest.raises(ArtifactError, match="too short"):
        load_artifact(tmp_path / "data")
    monkeypatch.delenv("CSE_MODEL_KEY")
    monkeypatch.setenv("CSE_MODEL_KEY_FILE", str(tmp_path / "data" / "model.key"))
    with pytest.raises(ArtifactError, match="inside the data directory"):
        save_artifact(tmp_path / "data", bundle, {})


def test_the_early_warning_flag_is_the_warning_model_at_its_threshold(tmp_path, bundle):
    data = synthetic(300, seed=4)
    warned = dataclasses.replace(bundle, warning=bundle.churn, warning_horizon_days=90, warning_threshold=0.4)
    loaded = load_artifact(tmp_path, save_artifact(tmp_path, warned, {"source": "test"}).version)
    out = predict_churn(loaded, data)
    expected = bundle.churn.predict_proba(data) >= 0.4
    assert out["early_warning"].tolist() == expected.tolist() and 0 < expected.sum() < len(data)
    assert (out["warning_horizon_days"] == 90).all()
    assert predict_churn(bundle, data)["early_warning"].isna().all(), "no warning model, no flag"
