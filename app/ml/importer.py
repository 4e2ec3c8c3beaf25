"""`cse import`: turn a company's tabular export into a training table through a mapping file.

Where CRM history is thin, a company often still has an export: one row per customer with attributes and a churn
flag, sometimes with an activity log. A mapping file (mappings/import/*.yaml, format in mappings/import/README.md)
says which file holds the customers, which column is the id, the label and (optionally) the survival time, which
columns are features and of what type, which other tables to aggregate per customer, and which timestamped
tables form an activity log. The result is saved under settings.data_dir/imports/<name>/ as data.csv plus
schema.json, and `cse train --data <name>` trains on it.

Only the columns the mapping lists become features: an export's id, label and outcome-derived columns (refunds,
churn reasons, end dates) must never reach the model, and listing features explicitly makes that a reviewable
decision instead of a default.
"""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from app.history.mapping import HistorySpec
from connectors.mapping import IMPORT_KIND, MappingError, Problem, line_of, read_yaml
from engine.learning.features import relative_change
from engine.learning.models import FeatureSpec
from mappings import DEFAULT_DIR as SHIPPED_MAPPINGS

IMPORTS_DIR = "imports"
DATA_FILE = "data.csv"
SCHEMA_FILE = "schema.json"
REPO_ROOT = Path(__file__).resolve().parents[2]
MAPPINGS_DIR = SHIPPED_MAPPINGS / IMPORT_KIND
ColumnType = Literal["number", "integer", "boolean", "category", "days_since"]
Aggregation = Literal["count", "sum", "mean", "min", "max", "first", "last", "nunique"]
TRUE_STRINGS = {"yes", "true", "1", "y", "t", "1.0"}
FALSE_STRINGS = {"no", "false", "0", "n", "f", "0.0"}


def shared_data_root() -> Path:
    """Where the public datasets live: $CSE_SHARED_DATA, else ../shared/data next to the repository."""
    return Path(os.environ.get("CSE_SHARED_DATA") or REPO_ROOT.parent / "shared" / "data")


class ImportMappingError(ValueError):
    """A mapping file that cannot be used; the message names the file and the key at fault, and `problems` (when
    the file itself is invalid) each with file, line and field, as vendor mappings report them."""

    def __init__(self, message: str | None = None, problems: list[Problem] | None = None) -> None:
        self.problems = list(problems or [])
        super().__init__(message or "\n".join(str(p) for p in self.problems))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TableSpec(_Strict):
    """One CSV file of the export."""

    path: str
    sep: str = ","


class ColumnSpec(_Strict):
    """A feature read from the base table."""

    type: ColumnType
    source: str | None = Field(default=None, alias="from")  # source column; default: the feature's own name
    true_values: list[str] | None = None  # boolean: the strings meaning true (default yes/true/1)
    map: dict[str, Any] | None = None  # recode values before typing (e.g. {"No internet service": "No"})


class LabelSpec(_Strict):
    """The churn flag column and, optionally, the strings that mean true."""

    source: str = Field(alias="from")
    true_values: list[str] | None = None


class DurationSpec(_Strict):
    """The survival time column (time to churn, or to the end of observation when not churned)."""

    source: str = Field(alias="from")
    unit: str = "periods"


class AggregateFeature(_Strict):
    """One aggregate of another table, per customer."""

    agg: Aggregation
    column: str | None = None  # not needed for count
    order_by: str | None = None  # first/last: the column that orders rows (a date)
    equals: str | None = None  # compare the column with this value first (mean of equals = share)


class KeyVia(_Strict):
    """Reach the customer id through another table (e.g. usage -> subscription -> account)."""

    via: str  # another table that maps this table's key to the base id
    source: str = Field(alias="from")  # the key column in this table (and in `via`)
    to: str  # the base-id column in `via`


class AggregateSpec(_Strict):
    """A table aggregated per customer into the features listed."""

    table: str
    key: str  # column holding the base id
    features: dict[str, AggregateFeature]


class LogSpec(_Strict):
    """One table read as timestamped activity events of one kind."""

    table: str
    time: str
    key: str | KeyVia
    kind: str  # a name for the event kind (e.g. an engine.canonical.EventKind value)
    count: str | None = None  # column with a count per row (default 1)
    value: str | None = None  # column with a value to average (e.g. a survey score)
    feature: str | None = None  # column naming the feature used (distinct count per window)
    where: dict[str, Any] | None = None  # keep only rows whose columns equal these values


class ActivitySpec(_Strict):
    """The activity log: its tables, the snapshot date and the windows of the point-in-time features."""

    as_of: date | None = None  # the snapshot date (default: the latest timestamp in the logs)
    windows: list[Annotated[int, Field(gt=0)]] = [30, 90]
    logs: list[LogSpec]


class ImportMapping(_Strict):
    """A whole mapping file (format: mappings/import/README.md)."""

    kind: Literal["import"] = IMPORT_KIND  # tells this file from a vendor mapping (mappings/README.md)
    name: str
    description: str = ""
    tables: dict[str, TableSpec]
    base: str | None = None  # a flat import's table of one row per customer
    id: str | None = None  # None: the file has no id column and rows are numbered
    label: LabelSpec | None = None
    duration: DurationSpec | None = None
    columns: dict[str, ColumnType | ColumnSpec] = {}
    aggregates: list[AggregateSpec] = []
    activity: ActivitySpec | None = None
    history: HistorySpec | None = None  # product events and subscription terms loaded into the store

    @model_validator(mode="after")
    def _flat_or_history(self) -> ImportMapping:
        if self.history is None and (self.base is None or self.label is None):
            raise ValueError("a flat import needs base and label (or give a history section)")
        return self

    @field_validator("name")
    @classmethod
    def _safe_name(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", v):
            raise ValueError("expected letters, digits, '_', '.' or '-' (it names a folder)")
        return v


def _column_spec(name: str, spec: str | ColumnSpec) -> ColumnSpec:
    return ColumnSpec(type=spec) if isinstance(spec, str) else spec


def resolve_mapping_path(name_or_path: str | Path) -> Path:
    """A path as given, or a bare name looked up as mappings/import/<name>.yaml."""
    path = Path(name_or_path)
    if path.exists():
        return path
    candidate = MAPPINGS_DIR / f"{name_or_path}.yaml"
    if candidate.exists():
        return candidate
    raise ImportMappingError(f"{name_or_path}: no such mapping file (nor {candidate})")


def load_mapping(path: Path) -> ImportMapping:
    """Parse and validate a mapping file; every problem names the file, line and key path at fault."""
    file = str(path)
    try:
        root = read_yaml(path.read_text(encoding="utf-8"), file)
    except (OSError, UnicodeDecodeError) as error:
        raise ImportMappingError(problems=[Problem(file, None, "file", f"cannot read: {error}")]) from error
    except MappingError as error:
        raise ImportMappingError(problems=error.problems) from error
    try:
        mapping = ImportMapping.model_validate(root)
    except ValidationError as error:
        problems = [_problem(file, root, e["loc"], e["msg"]) for e in error.errors()]
        raise ImportMappingError(problems=problems) from error
    unknown = [(("base",), mapping.base)] if mapping.base and mapping.base not in mapping.tables else []
    unknown += [(loc, table) for loc, table in _table_references(mapping) if table not in mapping.tables]
    if unknown:
        problems = [_problem(file, root, loc, f"table {table!r} is not listed under tables") for loc, table in unknown]
        raise ImportMappingError(problems=problems)
    return mapping


def validate_import_files(files: list[Path]) -> tuple[list[ImportMapping], list[Problem]]:
    """Validate import mapping files (what `cse mappings validate` does for mappings/import/)."""
    valid, problems = [], []
    for file in files:
        try:
            valid.append(load_mapping(file))
        except ImportMappingError as error:
            problems.extend(error.problems)
    return valid, problems


def _problem(file: str, root: Any, loc: tuple, message: str) -> Problem:
    return Problem(file, line_of(root, loc), ".".join(map(str, loc)) or "mapping", message)


def _table_references(mapping: ImportMapping) -> list[tuple[tuple, str]]:
    """(location, table name) of every table the mapping names outside `tables`."""
    refs: list[tuple[tuple, str]] = [(("aggregates", i, "table"), a.table) for i, a in enumerate(mapping.aggregates)]
    for i, log in enumerate(mapping.activity.logs if mapping.activity else []):
        refs.append((("activity", "logs", i, "table"), log.table))
        if isinstance(log.key, KeyVia):
            refs.append((("activity", "logs", i, "key", "via"), log.key.via))
    history = mapping.history
    if history and history.events:
        refs.append((("history", "events", "table"), history.events.table))
        if history.events.type_names:
            refs.append((("history", "events", "type_names", "table"), history.events.type_names.table))
    if history and history.subscriptions:
        refs.append((("history", "subscriptions", "table"), history.subscriptions.table))
    return refs


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
