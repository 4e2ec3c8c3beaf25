"""Canonical score values → the CRM's field names and value forms, through the vendor's push mapping."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from connectors.mapping import Mapping
from connectors.mapping.convert import to_boolean


def _crm_value(value: Any, kind: str, enum_out: dict | None) -> Any:
    if value is None:
        return None
    if kind == "enum":
        return (enum_out or {}).get(value, value)
    if kind in ("number", "integer"):
        return round(float(value)) if kind == "integer" else float(value)
    if kind == "boolean":  # a checkbox takes true/false, not the text "True"
        return to_boolean(value)
    if kind == "date":
        return date.fromisoformat(str(value)[:10]).isoformat()
    if kind == "datetime":
        return datetime.fromisoformat(str(value)).strftime("%Y-%m-%dT%H:%M:%S.000+0000")
    return str(value)


def to_crm_fields(mapping: Mapping, fields: dict[str, Any]) -> dict[str, Any]:
    """CRM field name → value for every canonical field the push mapping names (others are not written)."""
    return {
        spec.to: _crm_value(fields.get(name), spec.type, spec.enum_out)
        for name, spec in mapping.fields.items()
        if name in fields
    }
