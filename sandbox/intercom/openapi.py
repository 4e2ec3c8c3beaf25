"""Check HTTP responses against Intercom's own OpenAPI description (sandbox/intercom/specs/, API 2.11).

This is how the sandbox is held to the vendor rather than to our connector: tests hang `ResponseChecker.check`
on the httpx client the official SDK uses, so every response the SDK receives is validated against the response
schema Intercom publishes for that operation and status ($refs resolved, OpenAPI 3.0 `nullable` honoured).

The 2.11 file has a few errors of its own. They are corrected here, each one on the evidence of the same spec
or the official SDK, and nothing else is relaxed:

* `custom_attributes` (conversation custom attributes) is referenced but never defined in 2.11; the definition
  is taken from the 2.16 file.
* Company `custom_attributes` is typed as string-valued, but the spec's own example carries numbers and
  booleans (`paid_subscriber: true`, `monthly_spend: 155.5`) and the SDK types the field `Dict[str, Any]`.
* Data event `metadata` is typed as string-valued, but POST /events documents Number, Date, Link, Rich Link and
  Monetary Amount metadata.
* Data attribute `model` lists only contact and company, while GET /data_attributes takes `model=conversation`
  and so answers conversation attributes.
* GET /events declares only `data_event_summary` (what `summary=true` returns); a plain listing answers with
  the spec's own `data_event_list` component (`type: event.list`), so that schema is used for it.
"""

from __future__ import annotations

import copy
import json
import os
import re
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import yaml

# Intercom's own descriptions, copied with their licence into specs/; CSE_INTERCOM_SPECS points elsewhere.
SPEC_DIR = Path(os.environ.get("CSE_INTERCOM_SPECS") or Path(__file__).resolve().parent / "specs")
SPEC_2_11 = SPEC_DIR / "intercom-api-2.11.yaml"
SPEC_2_16 = SPEC_DIR / "intercom-api-2.16.yaml"
ERRATA = (
    "components.schemas.custom_attributes: missing in 2.11, taken from 2.16",
    "company.custom_attributes: values may be any JSON scalar (spec example, SDK Dict[str, Any])",
    "data_event.metadata: values may be numbers or objects (POST /events documents them)",
    "data_attribute.model: also 'conversation' (GET /data_attributes accepts model=conversation)",
    "GET /events without summary=true: validated against data_event_list",
    "submit_request.current_canvas: a canvas_object, as in configure_request",
)


class SpecViolation(AssertionError):
    """A response that does not match Intercom's published schema."""


@lru_cache(maxsize=4)
def _load(path: Path) -> dict:
    with open(path, encoding="utf-8") as handle:
        return yaml.load(handle, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def _refs(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, Mapping):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
            found.add(ref.rsplit("/", 1)[1])
        for value in node.values():
            found |= _refs(value)
    elif isinstance(node, list):
        for value in node:
            found |= _refs(value)
    return found


@lru_cache(maxsize=2)
def corrected_spec(path: Path = SPEC_2_11) -> dict:
    """The spec with the errata above applied (a deep copy; the cached original stays untouched)."""
    spec = copy.deepcopy(_load(path))
    schemas = spec["components"]["schemas"]
    if "custom_attributes" not in schemas:
        newer = _load(SPEC_2_16)["components"]["schemas"]
        pending = ["custom_attributes"]
        while pending:
            name = pending.pop()
            if name in schemas:
                continue
            schemas[name] = copy.deepcopy(newer[name])
            pending.extend(_refs(newer[name]))
    schemas["company"]["properties"]["custom_attributes"].pop("additionalProperties", None)
    schemas["data_event"]["properties"]["metadata"].pop("additionalProperties", None)
    models = schemas["data_attribute"]["properties"]["model"]["enum"]
    if "conversation" not in models:
        models.append("conversation")
    schemas["submit_request"]["properties"]["current_canvas"] = {"$ref": "#/components/schemas/canvas_object"}
    return spec


class ResponseChecker:
    """Validates responses by method, path and status against the (corrected) spec; records what it checked."""

    def __init__(self, spec_path: Path = SPEC_2_11) -> None:
        from openapi_schema_validator import OAS30ReadValidator, oas30_format_checker

        self.spec = corrected_spec(spec_path)
        self._validator_cls = OAS30ReadValidator
        self._format_checker = oas30_format_checker
        self._routes = [
            (re.compile("^" + re.sub(r"\{[^/]+\}", "[^/]+", template) + "$"), template)
            for template in sorted(self.spec["paths"], key=lambda t: (t.count("{"), -len(t)))
        ]
        self.checked: list[tuple[str, str, int]] = []  # (method, path template, status) of every check

    def template(self, path: str) -> str:
        for pattern, template in self._routes:
            if pattern.match(path):
                return template
        raise SpecViolation(f"{path} is not a path of the Intercom API")

    def schema_for(self, method: str, template: str, status: int, body: Any) -> dict | None:
        """The response schema the spec gives (None: the spec declares no body for this status)."""
        operation = self.spec["paths"][template].get(method.lower())
        if operation is None:
            raise SpecViolation(f"{method} {template} is not an operation of the Intercom API")
        listing = isinstance(body, Mapping) and body.get("type") == "event.list"
        if template == "/events" and method.upper() == "GET" and listing:
            return {"$ref": "#/components/schemas/data_event_list"}
        responses = operation.get("responses", {})
        response = responses.get(str(status)) or responses.get("default")
        if response is None:
            if status >= 400:  # undeclared error statuses (429, 5xx) still answer Intercom's error list
                return {"$ref": "#/components/schemas/error"}
            raise SpecViolation(f"{method} {template} does not declare status {status}")
        content = response.get("content")
        if not content:
            return None
        return content.get("application/json", {}).get("schema")

    def validate(self, method: str, path: str, status: int, body: Any) -> str:
        """Raise SpecViolation unless `body` matches; returns the path template it was checked against."""
        template = self.template(path)
        schema = self.schema_for(method, template, status, body)
        self.checked.append((method.upper(), template, status))
        if schema is None:
            if body not in (None, b"", ""):
                raise SpecViolation(f"{method} {template} {status} declares no body, got {body!r:.200}")
            return template
        self._check(schema, body, f"{method} {template} {status}")
        return template

    def validate_object(self, name: str, body: Any) -> None:
        """Raise SpecViolation unless `body` matches the spec's component schema `name` (e.g. Canvas Kit's
        initialize_request or submit_response, which are not operations of the REST API)."""
        self._check({"$ref": f"#/components/schemas/{name}"}, body, name)

    def _check(self, schema: dict, body: Any, what: str) -> None:
        root = {"components": self.spec["components"], "allOf": [schema]}
        validator = self._validator_cls(root, format_checker=self._format_checker)
        errors = sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path))
        if errors:
            details = "; ".join(
                f"at {'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message[:300]}" for e in errors[:5]
            )
            raise SpecViolation(f"{what}: {details}")

    def check(self, response: Any) -> None:
        """httpx response hook: validate one response (the body is read first)."""
        response.read()
        text = response.text
        body = json.loads(text) if text.strip() else None
        self.validate(response.request.method, urlparse(str(response.request.url)).path, response.status_code, body)
