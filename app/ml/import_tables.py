"""A flat import: the mapped tables read, typed and aggregated into one training row per customer.

Only the columns the mapping lists become features: an export's id, label and outcome-derived columns (refunds,
churn reasons, end dates) must never reach the model, and listing features explicitly makes that a reviewable
decision instead of a default.
"""

from __future__ import annotations

import os
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from app.ml.import_mapping import (
    AggregateSpec,
    ColumnSpec,
    ImportMapping,
    ImportMappingError,
    KeyVia,
    LogSpec,
    _column_spec,
)
from engine.learning.features import relative_change
from engine.learning.models import FeatureSpec

REPO_ROOT = Path(__file__).resolve().parents[2]
TRUE_STRINGS = {"yes", "true", "1", "y", "t", "1.0"}
FALSE_STRINGS = {"no", "false", "0", "n", "f", "0.0"}


def shared_data_root() -> Path:
    """Where the public datasets live: $CSE_SHARED_DATA, else ../shared/data next to the repository."""
    return Path(os.environ.get("CSE_SHARED_DATA") or REPO_ROOT.parent / "shared" / "data")


def _expand(path: str, mapping_dir: Path) -> Path:
    """`${CSE_SHARED_DATA}` and other environment variables expanded; relative paths from the mapping's folder."""

    def variable(match: re.Match[str]) -> str:
        name = match.group(1)
        if name == "CSE_SHARED_DATA":
            return str(shared_data_root())
        if name not in os.environ:
            raise ImportMappingError(f"environment variable {name} is not set (used in path {path!r})")
        return os.environ[name]

    expanded = Path(re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", variable, path))
    return expanded if expanded.is_absolute() else (mapping_dir / expanded)


def table_paths(mapping: ImportMapping, mapping_dir: Path) -> dict[str, tuple[Path, str]]:
    """Each table's file (variables expanded, checked to exist) and separator."""
    paths = {}
    for name, spec in mapping.tables.items():
        path = _expand(spec.path, mapping_dir)
        if not path.exists():
            raise FileNotFoundError(f"table {name!r}: {path} does not exist")
        paths[name] = (path, spec.sep)
    return paths


def _read_tables(mapping: ImportMapping, mapping_dir: Path) -> dict[str, pd.DataFrame]:
    return {name: pd.read_csv(path, sep=sep, low_memory=False)
            for name, (path, sep) in table_paths(mapping, mapping_dir).items()}  # fmt: skip


def _require_columns(table: pd.DataFrame, columns: list[str | None], where: str) -> None:
    missing = [c for c in columns if c is not None and c not in table.columns]
    if missing:
        raise ImportMappingError(f"{where}: column(s) {', '.join(missing)} not in the file")


def _to_bool(values: pd.Series, true_values: list[str] | None) -> pd.Series:
    """1.0 / 0.0 / NaN from booleans, numbers or strings such as Yes/No, True/False."""
    if pd.api.types.is_bool_dtype(values):
        return values.astype("float64")
    if pd.api.types.is_numeric_dtype(values):
        return (values.astype("float64") != 0).astype("float64").where(values.notna())
    text = values.astype("string").str.strip().str.lower()
    if true_values is not None:
        truthy = {v.lower() for v in true_values}
        return text.isin(truthy).astype("float64").where(text.notna())
    out = pd.Series(np.nan, index=values.index)
    out[text.isin(TRUE_STRINGS).fillna(False).to_numpy(bool)] = 1.0
    out[text.isin(FALSE_STRINGS).fillna(False).to_numpy(bool)] = 0.0
    return out


def _looks_boolean(values: pd.Series) -> bool:
    """Booleans, or text that is only true/false words (CSV exports write True/False, Yes/No)."""
    if pd.api.types.is_bool_dtype(values):
        return True
    if pd.api.types.is_numeric_dtype(values):
        return False
    text = values.dropna().astype(str).str.strip().str.lower()
    return len(text) > 0 and bool(text.isin(TRUE_STRINGS | FALSE_STRINGS).all())


def _typed(values: pd.Series, spec: ColumnSpec, as_of: pd.Timestamp) -> pd.Series:
    if spec.map:
        values = values.map(lambda v: spec.map.get(v, v) if isinstance(v, str) else v)  # type: ignore[union-attr]
    if spec.type in ("number", "integer"):
        return pd.to_numeric(values, errors="coerce").astype("float64")
    if spec.type == "boolean":
        return _to_bool(values, spec.true_values)
    if spec.type == "days_since":
        return (as_of - pd.to_datetime(values, errors="coerce")).dt.days.astype("float64")
    text = values.astype(object)
    return text.where(values.notna(), None).map(lambda v: None if v is None else str(v).strip())


def _aggregate(table: pd.DataFrame, spec: AggregateSpec, index: pd.Index) -> pd.DataFrame:
    _require_columns(table, [spec.key], f"aggregates[{spec.table}].key")
    out = {}
    groups = table.groupby(spec.key, sort=False)
    for name, feature in spec.features.items():
        if feature.agg == "count":
            series = groups.size().astype("float64")
        else:
            _require_columns(table, [feature.column, feature.order_by], f"aggregates[{spec.table}].{name}")
            column = table[feature.column]
            if feature.equals is not None:
                column = (column.astype(str) == feature.equals).astype("float64")
            elif _looks_boolean(column):
                column = _to_bool(column, None)
            if feature.agg in ("first", "last"):
                ordered = table.assign(_v=column).sort_values(feature.order_by or spec.key, kind="stable")
                grouped = ordered.groupby(spec.key, sort=False)["_v"]
                series = grouped.first() if feature.agg == "first" else grouped.last()
            else:
                series = column.groupby(table[spec.key], sort=False).agg(feature.agg)
            if pd.api.types.is_numeric_dtype(series):
                series = series.astype("float64")
        out[name] = series.reindex(index)
    frame = pd.DataFrame(out, index=index)
    counts = [n for n, f in spec.features.items() if f.agg in ("count", "sum", "nunique")]
    frame[counts] = frame[counts].fillna(0.0)  # no rows = zero of them
    return frame


def _log_events(tables: dict[str, pd.DataFrame], log: LogSpec) -> pd.DataFrame:
    """One log's rows as (base id, time, kind, count, value, feature)."""
    table = tables[log.table]
    if log.where:
        _require_columns(table, list(log.where), f"activity.logs[{log.table}].where")
        keep = np.ones(len(table), dtype=bool)
        for column, wanted in log.where.items():
            values = table[column]
            if isinstance(wanted, bool):
                keep &= (_to_bool(values, None) == float(wanted)).to_numpy()
            else:
                keep &= (values.astype(str) == str(wanted)).to_numpy()
        table = table[keep]
    key_column = log.key if isinstance(log.key, str) else log.key.source
    _require_columns(table, [log.time, key_column, log.count, log.value, log.feature], f"activity.logs[{log.table}]")
    if isinstance(log.key, KeyVia):
        via = tables[log.key.via]
        _require_columns(via, [log.key.source, log.key.to], f"activity.logs[{log.table}].key.via")
        lookup = via.drop_duplicates(log.key.source).set_index(log.key.source)[log.key.to]
        ids = table[key_column].map(lookup)
    else:
        ids = table[key_column]
    return pd.DataFrame(
        {
            "id": ids.to_numpy(),
            "time": pd.to_datetime(table[log.time], errors="coerce").to_numpy(),
            "kind": log.kind,
            "count": pd.to_numeric(table[log.count], errors="coerce").fillna(0).to_numpy() if log.count else 1.0,
            "value": pd.to_numeric(table[log.value], errors="coerce").to_numpy() if log.value else np.nan,
            "feature": table[log.feature].astype(str).to_numpy() if log.feature else None,
        }
    )


def activity_features(events: pd.DataFrame, index: pd.Index, as_of: pd.Timestamp, windows: list[int]) -> pd.DataFrame:
    """Point-in-time aggregates of an activity log as of `as_of`: events after it are ignored.

    Per kind and window: count (`<kind>_<w>d`), mean value where the log has one (`<kind>_avg_<w>d`), distinct
    features where it names them (`<kind>_distinct_<w>d`); per kind: change of the last 30 days vs the 30 before
    (`<kind>_change_30d`) and days since the last event (`days_since_<kind>`, NaN if none).
    """
    events = events[events["time"].notna() & (events["time"] <= as_of) & events["id"].isin(index)]
    out: dict[str, pd.Series] = {}
    age = (as_of - events["time"]).dt.days
    for kind, rows in events.groupby("kind", sort=True):
        rows_age = age.loc[rows.index]
        for w in sorted(windows):
            recent = rows[rows_age < w]
            out[f"{kind}_{w}d"] = recent.groupby("id")["count"].sum().reindex(index).fillna(0.0)
            if rows["value"].notna().any():
                out[f"{kind}_avg_{w}d"] = recent.groupby("id")["value"].mean().reindex(index)
            if rows["feature"].notna().any():
                out[f"{kind}_distinct_{w}d"] = recent.groupby("id")["feature"].nunique().reindex(index).fillna(0.0)
        last30 = rows[rows_age < 30].groupby("id")["count"].sum().reindex(index).fillna(0.0)
        prev30 = rows[(rows_age >= 30) & (rows_age < 60)].groupby("id")["count"].sum().reindex(index).fillna(0.0)
        out[f"{kind}_change_30d"] = pd.Series(relative_change(last30, prev30), index=index)
        out[f"days_since_{kind}"] = rows_age.groupby(rows["id"]).min().reindex(index).astype("float64")
    return pd.DataFrame(out, index=index)


class ImportedDataset:
    """A training table: features, label, optional duration, and the spec saying which columns are which."""

    def __init__(self, name: str, frame: pd.DataFrame, spec: FeatureSpec, meta: dict[str, Any]) -> None:
        self.name = name
        self.frame = frame
        self.spec = spec
        self.meta = meta

    @property
    def label(self) -> np.ndarray:
        return self.frame["__label__"].to_numpy(dtype="int64")

    @property
    def durations(self) -> np.ndarray | None:
        return self.frame["__duration__"].to_numpy(dtype="float64") if "__duration__" in self.frame else None


def build_dataset(mapping: ImportMapping, mapping_dir: Path) -> ImportedDataset:
    """Read the mapped tables and build the training table (one row per base id)."""
    if mapping.base is None or mapping.label is None:
        raise ImportMappingError(f"{mapping.name}: a history import goes into the store, not a training table")
    tables = _read_tables(mapping, mapping_dir)
    base = tables[mapping.base]
    _require_columns(base, [mapping.id, mapping.label.source], "id/label")
    if mapping.id is None:
        base = base.set_axis(pd.Index([f"row{i}" for i in range(1, len(base) + 1)]), axis=0)
    elif base[mapping.id].duplicated().any():
        raise ImportMappingError(f"id: column {mapping.id!r} has duplicate values in table {mapping.base!r}")
    else:
        base = base.set_index(mapping.id, drop=False)
    events = None
    if mapping.activity:
        events = pd.concat([_log_events(tables, log) for log in mapping.activity.logs], ignore_index=True)
    as_of = pd.Timestamp(
        mapping.activity.as_of
        if mapping.activity and mapping.activity.as_of
        else (events["time"].max() if events is not None and events["time"].notna().any() else datetime.now().date())
    )
    columns: dict[str, pd.Series] = {}
    numeric: list[str] = []
    categorical: list[str] = []
    for name, raw in mapping.columns.items():
        spec = _column_spec(name, raw)
        source = spec.source or name
        _require_columns(base, [source], f"columns.{name}")
        columns[name] = _typed(base[source], spec, as_of)
        if spec.type == "days_since" and (columns[name] < 0).any():
            raise ImportMappingError(
                f"columns.{name}: {int((columns[name] < 0).sum())} date(s) in {source!r} fall after the snapshot date "
                f"{as_of.date()}: a feature from after the observation date leaks the outcome"
            )
        (categorical if spec.type == "category" else numeric).append(name)
    frame = pd.DataFrame(columns, index=base.index)
    for aggregate in mapping.aggregates:
        part = _aggregate(tables[aggregate.table], aggregate, base.index)
        for name in part.columns:
            if pd.api.types.is_numeric_dtype(part[name]):
                numeric.append(name)
            else:
                categorical.append(name)
        frame = frame.join(part)
    if events is not None and mapping.activity:
        part = activity_features(events, base.index, as_of, mapping.activity.windows)
        numeric += list(part.columns)
        frame = frame.join(part)
    label = _to_bool(base[mapping.label.source], mapping.label.true_values)
    if label.isna().any():
        bad = base.loc[label.isna(), mapping.label.source].astype(str).unique()[:5]
        raise ImportMappingError(f"label: values {list(bad)} are neither true nor false (set label.true_values)")
    frame["__label__"] = label.astype("int64")
    if mapping.duration:
        _require_columns(base, [mapping.duration.source], "duration")
        frame["__duration__"] = pd.to_numeric(base[mapping.duration.source], errors="coerce").astype("float64")
    frame.index.name = "id"
    spec = FeatureSpec(tuple(numeric), tuple(categorical))
    meta = {
        "name": mapping.name,
        "description": mapping.description,
        "rows": len(frame),
        "positives": int(frame["__label__"].sum()),
        "features": spec.to_dict(),
        "duration_unit": mapping.duration.unit if mapping.duration else None,
        "as_of": as_of.date().isoformat(),
        "has_activity": events is not None,
        "activity_events": int(len(events)) if events is not None else 0,
    }
    return ImportedDataset(mapping.name, frame, spec, meta)
