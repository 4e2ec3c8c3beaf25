"""The error the HubSpot sandbox raises for a write HubSpot would refuse, and HubSpot's shape for refused values."""

from __future__ import annotations

import json


class InputError(Exception):
    """A write HubSpot would refuse; carries the HTTP status, category and the per-property error list."""

    def __init__(
        self,
        message: str,
        category: str = "VALIDATION_ERROR",
        status: int = 400,
        errors: list[dict] | None = None,
        context: dict | None = None,
        sub_category: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.category = category
        self.status = status
        self.errors = errors or []
        self.context = context or {}
        self.sub_category = sub_category


def property_error(name: str, message: str, code: str) -> dict:
    return {"isValid": False, "message": message, "error": code, "name": name, "localizedErrorMessage": message}


def invalid_properties(errors: list[dict]) -> InputError:
    """HubSpot's body for refused property values: the JSON list of per-property verdicts inside the message."""
    return InputError(
        f"Property values were not valid: {json.dumps(errors)}",
        errors=[
            {"message": e["message"], "code": e["error"], "context": {"propertyName": [e["name"]]}} for e in errors
        ],
        context={"propertyName": [e["name"] for e in errors]},
    )
