"""`cse import`: turn a company's tabular export into a training table through a mapping file.

Where CRM history is thin, a company often still has an export: one row per customer with attributes and a churn
flag, sometimes with an activity log. A mapping file (mappings/import/*.yaml, format in mappings/import/README.md)
says which file holds the customers, which column is the id, the label and (optionally) the survival time, which
columns are features and of what type, which other tables to aggregate per customer, and which timestamped
tables form an activity log. The result is saved under settings.data_dir/imports/<name>/ as data.csv plus
schema.json, and `cse train --data <name>` trains on it. A mapping with a `history:` section goes into
the store instead (app/history/).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from app.ml.import_mapping import ImportMapping, ImportMappingError, load_mapping, resolve_mapping_path
from app.ml.import_tables import ImportedDataset, build_dataset, table_paths
from engine.learning.models import FeatureSpec

IMPORTS_DIR = "imports"
DATA_FILE = "data.csv"
SCHEMA_FILE = "schema.json"


def imports_dir(data_dir: Path) -> Path:
    """Where imported training tables live: <data_dir>/imports."""
    return Path(data_dir) / IMPORTS_DIR


def save_dataset(data_dir: Path, dataset: ImportedDataset, mapping_path: Path) -> Path:
    """Write data.csv and schema.json under imports/<name>/ (replacing an earlier import of the same name)."""
    folder = imports_dir(data_dir) / dataset.name
    folder.mkdir(parents=True, exist_ok=True)
    dataset.frame.to_csv(folder / DATA_FILE)
    meta = {
        **dataset.meta,
        "mapping": str(mapping_path),
        "imported_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    (folder / SCHEMA_FILE).write_text(json.dumps(meta, indent=2))
    return folder


def load_dataset(data_dir: Path, name: str) -> ImportedDataset:
    """Read an imported training table back with its column types."""
    folder = imports_dir(data_dir) / name
    if not (folder / SCHEMA_FILE).exists():
        raise FileNotFoundError(f"no import named {name!r} in {imports_dir(data_dir)}; run `cse import` first")
    meta = json.loads((folder / SCHEMA_FILE).read_text())
    spec = FeatureSpec.from_dict(meta["features"])
    dtypes = {name: str for name in spec.categorical}
    frame = pd.read_csv(folder / DATA_FILE, index_col="id", dtype=dtypes, keep_default_na=True)
    return ImportedDataset(name, frame, spec, meta)


def history_meta(data_dir: Path, name: str) -> dict[str, Any] | None:
    """The schema.json of a history import (loaded into the store), None for a flat one or none at all."""
    file = imports_dir(data_dir) / name / SCHEMA_FILE
    meta = json.loads(file.read_text()) if file.exists() else None
    return meta if meta and meta.get("kind") == "history" else None


def import_history_file(parsed: ImportMapping, path: Path, data_dir: Path, engine, progress=None) -> dict[str, Any]:
    """Load a history mapping's events and terms into the store (app/history/load.py) and record the import."""
    from app.history.load import import_history

    assert parsed.history is not None
    folder = imports_dir(data_dir) / parsed.name
    folder.mkdir(parents=True, exist_ok=True)
    result = import_history(engine, parsed.history, parsed.name, table_paths(parsed, path.parent), folder, progress)
    meta = {"name": parsed.name, "kind": "history", "description": parsed.description, "mapping": str(path),
            "imported_at": datetime.now(UTC).isoformat(timespec="seconds"), **result.as_dict()}  # fmt: skip
    (folder / SCHEMA_FILE).write_text(json.dumps(meta, indent=2))
    return meta


def import_file(mapping: str | Path, data_dir: Path, engine=None, progress=None) -> ImportedDataset | dict[str, Any]:
    """Resolve, validate, build and save: what `cse import` does. A history mapping loads into the store
    (`engine`) and returns the import's summary; a flat one returns the training table."""
    path = resolve_mapping_path(mapping)
    parsed = load_mapping(path)
    if parsed.history is not None:
        if engine is None:
            raise ImportMappingError(f"{parsed.name}: a history import needs the store")
        return import_history_file(parsed, path, data_dir, engine, progress)
    dataset = build_dataset(parsed, path.parent)
    save_dataset(data_dir, dataset, path)
    return dataset
