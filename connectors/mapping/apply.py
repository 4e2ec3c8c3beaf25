"""Applying a pull mapping to a page of raw vendor records: canonical rows for the good ones, reasons for the rest.

A malformed record never stops a sync: it is set aside with the first-class reason an admin needs to fix it at the
source (which field, what was wrong), and every valid record of the same page still lands.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import pandas as pd

from connectors.mapping.convert import (
    CONVERTERS,
    ConversionError,
    convert_numbers,
    is_missing,
    to_boolean,
    to_email,
    to_string,
)
from connectors.mapping.model import Condition, FieldSpec, Mapping, get_path


@dataclass(frozen=True)
class Quarantined:
    """A record the mapping could not turn into a canonical row, with why."""

    record: dict
    reason: str
    record_id: str | None


@dataclass
class MappedBatch:
    """The result of one mapping over one page.

    `frame` has `record_id` (the vendor id), `account_ref` (the owning company's vendor id, when the mapping names
    `account`) and one column per mapped canonical field. `deleted` lists records the vendor flags deleted or
    archived (`record_id`, `account_ref` and, for contacts, `email` when readable); `skipped_ids` are records that
    exist but do not meet the mapping's `when` (an open ticket for a "ticket closed" mapping). `raw` keeps the
    vendor record behind each row, for quarantining what a later step (identity resolution) still refuses.
    """

    mapping: Mapping
    frame: pd.DataFrame
    quarantined: list[Quarantined] = field(default_factory=list)
    deleted: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["record_id", "account_ref"]))
    skipped_ids: list[str] = field(default_factory=list)
    raw: dict[str, dict] = field(default_factory=dict)  # the raw record behind each frame row, by record_id


def record_id(value: Any) -> str | None:
    """Vendor ids as text: HubSpot sends numeric strings, Intercom strings, some SDKs ints."""
    if is_missing(value) or isinstance(value, dict | list | bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def reference_id(value: Any) -> str | None:
    """A company reference: an id, the first of a list of ids, or an object with an `id` (as SDKs nest them)."""
    if isinstance(value, list | tuple):
        value = value[0] if value else None
    if isinstance(value, dict):
        value = value.get("id")
    return record_id(value)


def is_deleted(value: Any) -> bool:
    """A `deleted` field is true, or holds any other non-false value (a deletion timestamp, say)."""
    if is_missing(value):
        return False
    try:
        return to_boolean(value)
    except ConversionError:
        return True


def _matches(record: dict, condition: Condition) -> bool:
    value = get_path(record, condition.path)
    if condition.op == "present":
        return (not is_missing(value)) == condition.arg
    if condition.op == "truthy":
        return _truthy(value) == condition.arg
    hit = _condition_text(value) in {_condition_text(v) for v in condition.arg}
    return hit if condition.op == "in" else not hit


def _truthy(value: Any) -> bool:
    """True, a non-zero number, or text that is not empty and not a false word ("false", "no", "0", ...)."""
    if is_missing(value):
        return False
    try:
        return to_boolean(value)
    except ConversionError:
        pass
    if isinstance(value, int | float):
        return value != 0
    return bool(value)


def _condition_text(value: Any) -> str | None:
    """Compare condition values as text, so `in: [true, 1]` matches what JSON or a CRM sends either way."""
    if is_missing(value):
        return None
    try:
        return to_string(value).casefold()
    except ConversionError:
        return None


def _to_kind(value: Any, kind: str) -> Any:
    """Dates and datetimes feed each other; everything else already has the canonical kind."""
    if kind == "date" and isinstance(value, datetime):
        return value.date()
    if kind == "datetime" and isinstance(value, date) and not isinstance(value, datetime):
        return datetime(value.year, value.month, value.day)
    return value


def _convert_scalars(raw: list[Any], convert: Callable[[Any], Any]) -> tuple[list[Any], dict[int, str]]:
    out: list[Any] = [None] * len(raw)
    errors: dict[int, str] = {}
    cache: dict[Any, Any] = {}
    for i, value in enumerate(raw):
        if is_missing(value):
            continue
        key = (type(value), value) if isinstance(value, str | int | float) else None
        if key is not None and key in cache:
            result = cache[key]
        else:
            try:
                result = convert(value)
            except ConversionError as error:
                result = error
            if key is not None:
                cache[key] = result
        if isinstance(result, ConversionError):
            errors[i] = str(result)
        else:
            out[i] = result
    return out, errors


def convert_field(spec: FieldSpec, records: list[dict]) -> tuple[list[Any], dict[int, str]]:
    """One canonical column for these records, and the error per record index where a value is malformed."""
    if spec.has_value:
        return [spec.value] * len(records), {}
    raw = [get_path(r, spec.source) for r in records] if spec.source else [None] * len(records)
    if spec.type in ("number", "integer"):
        values, errors = convert_numbers(raw, spec.type == "integer")
        if spec.scale is not None:
            values = [
                None if v is None else (round(v * spec.scale) if spec.type == "integer" else v * spec.scale)
                for v in values
            ]
    elif spec.type == "enum":
        enum = spec.enum
        assert enum is not None
        values, errors = _convert_scalars(raw, enum.lookup)
        if spec.default is not None:  # the default also catches values the table does not map
            for i in list(errors):
                values[i] = spec.default
                del errors[i]
    else:
        values, errors = _convert_scalars(raw, CONVERTERS[spec.type])
    for i, value in enumerate(values):
        if i in errors:
            continue
        if value is None:
            if spec.default is not None:
                values[i] = spec.default
            elif spec.required:
                where = f" (source field '{spec.source}')" if spec.source else ""
                errors[i] = f"required but missing{where}"
            continue
        value = _to_kind(value, spec.kind)
        if spec.choices is not None and value not in spec.choices:
            errors[i] = f"{value!r} is not one of {', '.join(spec.choices)}"
            value = None
        values[i] = value
    return values, {i: f"{spec.name}: {message}" for i, message in errors.items()}


def apply_mapping(mapping: Mapping, records: list[dict]) -> MappedBatch:
    """Turn raw vendor records into canonical rows; malformed records are quarantined with a reason.

    Deleted/archived records are reported apart (they are not validated: a vendor may send a bare tombstone).
    When a page holds the same record twice, the later one (the newer change) wins.
    """
    if mapping.direction != "pull":
        raise ValueError(f"{mapping.name} is a {mapping.direction} mapping; only pull mappings apply to records")
    quarantined: list[Quarantined] = []
    live: list[tuple[str, dict]] = []
    deleted_rows: list[dict] = []
    skipped: list[str] = []
    for record in records:
        rid = record_id(get_path(record, mapping.id)) if isinstance(record, dict) else None
        if not isinstance(record, dict):
            quarantined.append(Quarantined({"value": repr(record)}, "not a record (expected an object)", None))
        elif rid is None:
            quarantined.append(Quarantined(record, f"missing record id (source field '{mapping.id}')", None))
        elif mapping.deleted and is_deleted(get_path(record, mapping.deleted)):
            deleted_rows.append(_tombstone(mapping, record, rid))
        elif not all(_matches(record, c) for c in mapping.when):
            skipped.append(rid)
        else:
            live.append((rid, record))

    # The last occurrence of an id is the newest change.
    latest = {rid: i for i, (rid, _) in enumerate(live)}
    live = [item for i, item in enumerate(live) if latest[item[0]] == i]

    rows = [record for _, record in live]
    columns: dict[str, list[Any]] = {"record_id": [rid for rid, _ in live]}
    if mapping.account:
        columns["account_ref"] = [reference_id(get_path(r, mapping.account)) for r in rows]
    errors: dict[int, list[str]] = {}
    for spec in mapping.fields.values():
        values, field_errors = convert_field(spec, rows)
        columns[spec.name] = values
        for i, message in field_errors.items():
            errors.setdefault(i, []).append(message)
    frame = pd.DataFrame({name: pd.Series(values, dtype=object) for name, values in columns.items()})
    if errors:
        for i, messages in sorted(errors.items()):
            quarantined.append(Quarantined(rows[i], "; ".join(messages), live[i][0]))
        frame = frame.drop(index=list(errors)).reset_index(drop=True)
    deleted = pd.DataFrame(deleted_rows, columns=["record_id", "account_ref", "email"], dtype=object)
    return MappedBatch(mapping, frame, quarantined, deleted, skipped, dict(live))


def _tombstone(mapping: Mapping, record: dict, rid: str) -> dict:
    email = None
    spec = mapping.fields.get("email")
    if spec is not None and spec.source:
        try:
            email = to_email(get_path(record, spec.source))
        except ConversionError:
            email = None
    account = reference_id(get_path(record, mapping.account)) if mapping.account else None
    return {"record_id": rid, "account_ref": account, "email": email}


def cursor_values(mapping: Mapping, records: list[dict]) -> list[datetime]:
    """The parsed `updated` times of these records (unparseable ones left out), for checkpointing the cursor."""
    if not mapping.updated:
        return []
    out = []
    for record in records:
        if not isinstance(record, dict):
            continue
        try:
            value = get_path(record, mapping.updated)
            if not is_missing(value):
                out.append(CONVERTERS["datetime"](value))
        except ConversionError:
            continue
    return out
