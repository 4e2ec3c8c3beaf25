"""Versioned model files under settings.data_dir/models/: one folder per training run.

    models/<version>/model.joblib   the ModelBundle (fitted pipelines, calibration, survival, expansion)
    models/<version>/meta.json      metrics, training window, features, seed, library versions, file checksum
    models/<version>/signature      HMAC-SHA256 of meta.json under the model key (app/ml/model_key.py)
    models/latest-<kind>            the version the scorer loads by default (kind: store | tabular)

Why a folder per version and a pointer file: a retrain never overwrites the model the scorer is using, a bad model
is rolled back by pointing `latest-store` at an older folder, and Score.model_version names the folder, so every
score can be traced to the exact model and its metrics.

Model files are pickles, and unpickling runs code, so nothing is unpickled before it is proven to be ours: the
signature (an HMAC keyed outside the data directory, compared in constant time) authenticates meta.json, whose
checksum authenticates the model bytes, which are read once and unpickled from memory. A version is a folder name,
never a path: a name with `/` or `..`, or a folder or file resolving outside the models directory (a symlink
out), is refused before anything is read.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import os
import platform
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import sklearn

from app.ml.model_key import ModelKeyError, model_key
from app.settings import Settings
from engine.learning.predict import ModelBundle

MODELS_DIR = "models"
MODEL_FILE = "model.joblib"
META_FILE = "meta.json"
SIGNATURE_FILE = "signature"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")  # a version or kind: a plain folder name, never a path
_SIGNED = b"cse-model-meta/1\n"  # domain separation: this key signs nothing else


class ArtifactError(RuntimeError):
    """A model folder is missing, incomplete, outside the models directory, unsigned or does not match."""


class NoModelError(ArtifactError):
    """No model of the requested kind has been trained yet."""


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


def _sign(key: bytes, meta_bytes: bytes) -> str:
    return hmac.new(key, _SIGNED + meta_bytes, hashlib.sha256).hexdigest()


def _key(data_dir: Path, key: bytes | None, create: bool) -> bytes:
    """The given key, else the configured one (see app/ml/model_key.py)."""
    if key is not None:
        return key
    try:
        return model_key(Settings.from_env(), data_dir, create=create)
    except ModelKeyError as error:
        raise ArtifactError(str(error)) from error


def _name(value: str, what: str) -> str:
    if not _NAME.fullmatch(value) or ".." in value:
        raise ArtifactError(f"{what} {value!r} is not a plain model folder name; refusing it")
    return value


def _inside(root: Path, path: Path) -> Path:
    """`path`, provided it exists and resolves (symlinks followed) inside `root`."""
    if not path.exists():
        raise ArtifactError(
            f"model folder {path.parent} is incomplete (needs {META_FILE}, {MODEL_FILE}, {SIGNATURE_FILE})"
        )
    if not path.resolve().is_relative_to(root.resolve()):
        raise ArtifactError(f"{path} resolves outside {root}; refusing to load it")
    return path


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


def save_artifact(
    data_dir: Path, bundle: ModelBundle, meta: dict[str, Any], make_latest: bool = True, key: bytes | None = None
) -> Artifact:
    """Write the bundle, its metadata and their signature to a new version folder; point latest-<kind> at it.

    `key` defaults to the configured model key, created on first use when it is a key file.
    """
    signing_key = _key(data_dir, key, create=True)
    root = models_dir(data_dir)
    version = _name(bundle.version or new_version(bundle.kind), "model version")
    bundle.version = version
    folder = root / version
    folder.mkdir(parents=True, exist_ok=False)
    model_path = folder / MODEL_FILE
    joblib.dump(bundle, model_path, compress=3)
    digest = hashlib.sha256(model_path.read_bytes()).hexdigest()
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
        "sha256": digest,
    }
    meta_text = json.dumps(_json_ready(full_meta), indent=2, sort_keys=True)
    _write_atomic(folder / META_FILE, meta_text)
    _write_atomic(folder / SIGNATURE_FILE, _sign(signing_key, meta_text.encode()) + "\n")
    if make_latest:
        _write_atomic(root / f"latest-{bundle.kind}", version + "\n")
    return Artifact(version, folder, bundle, full_meta)


def latest_version(data_dir: Path, kind: str = "store") -> str | None:
    """The version latest-<kind> names (None before the first training of that kind); a path there is refused."""
    pointer = models_dir(data_dir) / f"latest-{_name(kind, 'model kind')}"
    if not pointer.exists():
        return None
    return _name(pointer.read_text().strip(), f"{pointer} names")


def load_artifact(
    data_dir: Path, version: str | None = None, kind: str = "store", key: bytes | None = None
) -> Artifact:
    """Load a version folder (default: the latest of `kind`) after checking its signature and checksum.

    Refused (ArtifactError) before anything is unpickled: a version that is a path, a file resolving outside the
    models directory, a missing or wrong signature, a model file that does not match the signed checksum, and a
    latest-<kind> pointer naming a model of another kind. `key` defaults to the configured model key (never
    created here).
    """
    root = models_dir(data_dir)
    wanted_kind = None if version else kind  # an explicit version may be of any kind
    version = _name(version, "model version") if version else latest_version(data_dir, kind)
    if not version:
        raise NoModelError(f"no {kind} model in {root}; run `cse train` first")
    folder = root / version
    meta_path, model_path, signature_path = (_inside(root, folder / n) for n in (META_FILE, MODEL_FILE, SIGNATURE_FILE))
    meta_bytes = meta_path.read_bytes()
    expected = _sign(_key(data_dir, key, create=False), meta_bytes)
    if not hmac.compare_digest(signature_path.read_bytes().strip(), expected.encode()):
        raise ArtifactError(
            f"{meta_path} is not signed with this service's model key; refusing to load {version} "
            "(retrain with `cse train`, or set CSE_MODEL_KEY to the key it was trained with)"
        )
    meta = json.loads(meta_bytes)
    if meta.get("version") != version or wanted_kind not in (None, meta.get("kind")):
        described = f"{meta.get('kind')} model {meta.get('version')}"
        raise ArtifactError(f"{meta_path} describes {described}, not {wanted_kind or 'a'} model {version}")
    model_bytes = model_path.read_bytes()  # read once: the bytes checked are the bytes unpickled
    if not hmac.compare_digest(hashlib.sha256(model_bytes).hexdigest(), str(meta.get("sha256"))):
        raise ArtifactError(f"{model_path} does not match the checksum in {meta_path}; refusing to load it")
    bundle = joblib.load(io.BytesIO(model_bytes))
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
