"""Versioned model files under settings.data_dir/models/: one folder per training run.

    models/<version>/model.joblib   the ModelBundle (fitted pipelines, calibration, survival, expansion)
    models/<version>/meta.json      metrics, training window, features, seed, library versions, file checksum
    models/latest-<kind>            the version the scorer loads by default (kind: store | tabular)

Why a folder per version and a pointer file: a retrain never overwrites the model the scorer is using, a bad model
is rolled back by pointing `latest-store` at an older folder, and Score.model_version names the folder, so every
score can be traced to the exact model and its metrics. The checksum in meta.json catches a truncated or swapped
model file before it is unpickled; model files are pickles, so only load folders this service wrote.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import sklearn

from engine.learning.predict import ModelBundle

MODELS_DIR = "models"
MODEL_FILE = "model.joblib"
META_FILE = "meta.json"


class ArtifactError(RuntimeError):
    """A model folder is missing, incomplete or does not match its checksum."""


@dataclass
class Artifact:
    """A loaded (or just saved) version folder: the bundle the scorer uses and its metadata."""

    version: str
    path: Path
    bundle: ModelBundle
    meta: dict[str, Any]


def models_dir(data_dir: Path) -> Path:
    """Where version folders live: <data_dir>/models."""
    return Path(data_dir) / MODELS_DIR


def new_version(kind: str) -> str:
    """`churn-<kind>-<UTC timestamp>-<random>`: sortable by time, unique, and short enough for Score.model_version."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    return f"churn-{kind}-{stamp}-{secrets.token_hex(3)}"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _json_ready(value: Any) -> Any:
    """Metrics and numpy scalars as plain JSON (NaN as null)."""
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    if isinstance(value, np.ndarray):
        return [_json_ready(v) for v in value.tolist()]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if not np.isfinite(value) else float(value)
    if isinstance(value, (pd.Timestamp, datetime)):
        return value.isoformat()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def save_artifact(data_dir: Path, bundle: ModelBundle, meta: dict[str, Any], make_latest: bool = True) -> Artifact:
    """Write the bundle and its metadata to a new version folder and (by default) point latest-<kind> at it."""
    root = models_dir(data_dir)
    version = bundle.version or new_version(bundle.kind)
    bundle.version = version
    folder = root / version
    folder.mkdir(parents=True, exist_ok=False)
    model_path = folder / MODEL_FILE
    joblib.dump(bundle, model_path, compress=3)
    full_meta = {
        "version": version,
        "kind": bundle.kind,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "horizon_days": bundle.horizon_days,
        "model": bundle.churn.name,
        "threshold": bundle.churn.threshold,
        "features": bundle.churn.spec.to_dict(),
        "candidates": bundle.churn.candidates,
        "validation": bundle.churn.validation,
        "rows": bundle.churn.rows,
        "positives": bundle.churn.positives,
        "survival": bundle.survival is not None,
        "expansion_model": bundle.expansion is not None,
        "libraries": {
            "python": platform.python_version(),
            "scikit-learn": sklearn.__version__,
            "numpy": np.__version__,
            "pandas": pd.__version__,
        },
        **meta,
        "sha256": _sha256(model_path),
    }
    _write_atomic(folder / META_FILE, json.dumps(_json_ready(full_meta), indent=2, sort_keys=True))
    if make_latest:
        _write_atomic(root / f"latest-{bundle.kind}", version + "\n")
    return Artifact(version, folder, bundle, full_meta)


def latest_version(data_dir: Path, kind: str = "store") -> str | None:
    """The version latest-<kind> points at (None before the first training of that kind)."""
    pointer = models_dir(data_dir) / f"latest-{kind}"
    return pointer.read_text().strip() if pointer.exists() else None


def load_artifact(data_dir: Path, version: str | None = None, kind: str = "store") -> Artifact:
    """Load a version folder (default: the latest of `kind`), verifying the model file against its checksum."""
    version = version or latest_version(data_dir, kind)
    if not version:
        raise ArtifactError(f"no {kind} model in {models_dir(data_dir)}; run `cse train` first")
    folder = Path(version) if Path(version).is_dir() else models_dir(data_dir) / version
    meta_path, model_path = folder / META_FILE, folder / MODEL_FILE
    if not meta_path.exists() or not model_path.exists():
        raise ArtifactError(f"model folder {folder} is incomplete (needs {META_FILE} and {MODEL_FILE})")
    meta = json.loads(meta_path.read_text())
    if meta.get("sha256") != _sha256(model_path):
        raise ArtifactError(f"{model_path} does not match the checksum in {meta_path}; refusing to load it")
    bundle = joblib.load(model_path)
    if not isinstance(bundle, ModelBundle):
        raise ArtifactError(f"{model_path} does not hold a ModelBundle")
    return Artifact(meta["version"], folder, bundle, meta)


def list_artifacts(data_dir: Path) -> list[dict[str, Any]]:
    """Metadata of every version folder, newest first."""
    root = models_dir(data_dir)
    if not root.exists():
        return []
    metas = []
    for meta_path in root.glob(f"*/{META_FILE}"):
        try:
            metas.append(json.loads(meta_path.read_text()))
        except (OSError, json.JSONDecodeError):
            continue
    return sorted(metas, key=lambda m: m.get("created_at", ""), reverse=True)
