"""The import mapping file (mappings/import/*.yaml; format in mappings/import/README.md): its schema, checked with
file, line and key when it is read, and where a mapping named on the command line is found.
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from app.history.mapping import HistorySpec
from connectors.mapping import IMPORT_KIND, MappingError, Problem, line_of, read_yaml
from mappings import DEFAULT_DIR as SHIPPED_MAPPINGS

MAPPINGS_DIR = SHIPPED_MAPPINGS / IMPORT_KIND
ColumnType = Literal["number", "integer", "boolean", "category", "days_since"]
Aggregation = Literal["count", "sum", "mean", "min", "max", "first", "last", "nunique"]


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
