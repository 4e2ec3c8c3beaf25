"""How the sandbox org checks a request body's field values and converts them to its Python values, refusing what
Salesforce refuses with its error codes (unknown or read-only fields, bad types, over-long strings, bad emails,
restricted picklists, references to missing records). Mixed into `SalesforceOrg`, whose records it reads."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any

from sandbox.salesforce.ids import ID_RE, ApiError, to_id18
from sandbox.salesforce.sobjects import NUMERIC_TYPES, FieldDef, ObjectDef

_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class FieldValues:
    def _coerce(self, sobject: ObjectDef, values: dict[str, Any], *, creating: bool, raw: bool) -> dict[str, Any]:
        """Check every field of a request body and convert JSON values to the org's Python values."""
        clean: dict[str, Any] = {}
        for name, value in values.items():
            if name == "attributes":
                continue
            f = sobject.field(name)
            if f is None:
                raise ApiError(400, "INVALID_FIELD", f"No such column '{name}' on sobject of type {sobject.name}")
            writable = f.createable if creating else f.updateable
            if not raw and (not writable or f.calculated):
                raise ApiError(
                    400,
                    "INVALID_FIELD_FOR_INSERT_UPDATE",
                    f"Unable to create/update fields: {f.name}. Please check the security settings of this field and "
                    "verify that it is read/write for your profile or permission set.",
                    [f.name],
                )
            clean[f.name] = self._value(sobject, f, value, raw=raw)
        return clean

    def _value(self, sobject: ObjectDef, f: FieldDef, value: Any, *, raw: bool) -> Any:
        label = f.label or f.name
        if value is None:
            return None
        if raw and isinstance(value, datetime | date) and f.type in {"date", "datetime"}:
            if f.type == "date":
                return value.date() if isinstance(value, datetime) else value
            return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
        kind = f.type
        if kind == "boolean":
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in {"true", "false"}:
                return value.lower() == "true"
            raise self._parse_error("boolean", value)
        if kind in NUMERIC_TYPES:
            if isinstance(value, bool):
                raise self._parse_error("double", value)
            try:
                number = float(value)
            except (TypeError, ValueError):
                raise self._parse_error("double", value) from None
            if kind == "int":
                if number != int(number):
                    raise self._parse_error("int", value)
                return int(number)
            return number
        if kind == "date":
            try:
                if len(str(value)) != 10:
                    raise ValueError(value)
                return date.fromisoformat(str(value))
            except ValueError:
                raise self._parse_error("date", value) from None
        if kind == "datetime":
            try:
                parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
            except ValueError:
                raise self._parse_error("datetime", value) from None
            return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
        if kind in {"reference", "id"}:
            return self._reference(f, value, label)
        if isinstance(value, dict | list):
            raise self._parse_error("String", value)
        text = str(value)
        if f.length and len(text) > f.length:
            raise ApiError(
                400, "STRING_TOO_LONG", f"{label}: data value too large: {text[:40]} (max length={f.length})", [f.name]
            )
        if kind == "email" and not _EMAIL_RE.match(text):
            raise ApiError(400, "INVALID_EMAIL_ADDRESS", f"{label}: invalid email address: {text}", [f.name])
        if kind == "picklist" and f.restricted and text not in f.picklist:
            raise ApiError(
                400,
                "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                f"{label}: bad value for restricted picklist field: {text}",
                [f.name],
            )
        return text

    def _reference(self, f: FieldDef, value: Any, label: str) -> str:
        if not isinstance(value, str) or not ID_RE.match(value):
            raise ApiError(400, "MALFORMED_ID", f"{label}: id value of incorrect type: {value}", [f.name])
        target_type = self.object_for_id(value)
        if target_type not in f.reference_to:
            raise ApiError(400, "FIELD_INTEGRITY_EXCEPTION", f"{label}: id value of incorrect type: {value}", [f.name])
        target = self.records[target_type].get(to_id18(value))
        if target is None or target["IsDeleted"]:
            raise ApiError(400, "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [f.name])
        return target["Id"]

    @staticmethod
    def _parse_error(type_name: str, value: Any) -> ApiError:
        return ApiError(
            400,
            "JSON_PARSER_ERROR",
            f"Cannot deserialize instance of {type_name} from VALUE_STRING value {value} or request may be missing a "
            "required field",
        )
