"""Salesforce's wire vocabulary in the sandbox: its error shape, record ids (15 and 18 characters, case-safe
suffix) and how field values are rendered in JSON."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sandbox.salesforce.sobjects import NUMERIC_TYPES, FieldDef

_SUFFIX_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
ID_RE = re.compile(r"^[a-zA-Z0-9]{15}(?:[A-Z0-5]{3})?$")


class ApiError(Exception):
    """A refusal in Salesforce's shape: HTTP status, errorCode, message and the fields at fault."""

    def __init__(self, status: int, code: str, message: str, fields: Iterable[str] = ()) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.fields = list(fields)

    def body(self) -> list[dict[str, Any]]:
        """The REST error body: a JSON list of {message, errorCode[, fields]}."""
        error: dict[str, Any] = {"message": self.message, "errorCode": self.code}
        if self.fields:
            error["fields"] = self.fields
        return [error]

    def save_error(self) -> dict[str, Any]:
        """The per-record error inside a SaveResult of sObject Collections."""
        return {"statusCode": self.code, "message": self.message, "fields": self.fields}


def id_suffix(id15: str) -> str:
    """The 3-character case-safe suffix that turns a 15-character id into its 18-character form."""
    suffix = ""
    for chunk in range(3):
        bits = sum(1 << i for i, c in enumerate(id15[chunk * 5 : chunk * 5 + 5]) if "A" <= c <= "Z")
        suffix += _SUFFIX_ALPHABET[bits]
    return suffix


def to_id18(value: str) -> str:
    return value if len(value) == 18 else value + id_suffix(value)


def make_id(prefix: str, number: int) -> str:
    """An 18-character id: key prefix, pod '5g', a reserved '0', a base-62 counter, and the case-safe suffix."""
    digits = ""
    while True:
        number, rem = divmod(number, 62)
        digits = _BASE62[rem] + digits
        if number == 0:
            break
    return to_id18(f"{prefix}5g0{digits.rjust(9, '0')}")


def format_datetime(value: datetime) -> str:
    """Salesforce's REST datetime format: milliseconds and a +0000 zone."""
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}+0000"


def json_value(f: FieldDef, value: Any) -> Any:
    if value is None:
        return None
    if f.type == "datetime":
        return format_datetime(value)
    if f.type == "date":
        return value.isoformat()
    if f.type == "int":
        return int(value)
    if f.type in NUMERIC_TYPES:
        return float(value)
    return value
