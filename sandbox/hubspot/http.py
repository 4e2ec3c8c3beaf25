"""What every HubSpot sandbox endpoint shares: HubSpot's error and batch bodies, record JSON, request parsing.

Bodies follow HubSpot's documented shapes closely enough that the official SDK (`hubspot-api-client`), which
validates required fields, parses every one of them.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from flask import Response, jsonify, request

from sandbox.hubspot import schema
from sandbox.hubspot.schema import OBJECT_TYPES, resolve_type
from sandbox.hubspot.state import BatchOutcome, HubSpotState, InputError, Record
from sandbox.hubspot.values import iso_ms


def error_body(message: str, category: str, **extra) -> dict:
    body = {"status": "error", "message": message, "correlationId": str(uuid.uuid4()), "category": category}
    body.update({k: v for k, v in extra.items() if v})
    return body


def error_response(status: int, message: str, category: str, headers: dict | None = None, **extra) -> Response:
    response = jsonify(error_body(message, category, **extra))
    response.status_code = status
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def input_error_response(exc: InputError) -> Response:
    extra = {"errors": exc.errors, "context": exc.context, "subCategory": exc.sub_category}
    return error_response(exc.status, exc.message, exc.category, **extra)


def batch_error(message: str, category: str, context: dict, sub_category: str | None = None) -> dict:
    """One entry of a 207 response's `errors`; the SDK's StandardError requires every one of these keys."""
    body = {"status": "error", "category": category, "message": message, "context": context, "errors": [], "links": {}}
    if sub_category:
        body["subCategory"] = sub_category
    return body


def batch_response(outcome: BatchOutcome, started: datetime, ok_status: int) -> Response:
    body: dict = {
        "status": "COMPLETE",
        "results": outcome.results,
        "startedAt": iso_ms(started),
        "completedAt": iso_ms(max(started, datetime.now(UTC))),
    }
    status = ok_status
    if outcome.errors:
        body["numErrors"] = len(outcome.errors)
        body["errors"] = outcome.errors
        status = 207
    response = jsonify(body)
    response.status_code = status
    return response


def requested(values: list[str] | None) -> list[str] | None:
    """Query lists arrive repeated (`properties=a&properties=b`, the SDK's form) or comma separated."""
    if not values:
        return None
    names = [n.strip() for v in values for n in v.split(",") if n.strip()]
    return names or None


def record_json(state: HubSpotState, object_type: str, record: Record, names: list[str] | None) -> dict:
    """A SimplePublicObject: requested properties that exist (null when unset) plus the always-returned ones."""
    meta = OBJECT_TYPES[object_type]
    if names is None:
        chosen = list(meta.default_properties)
    else:
        always = ["hs_object_id", meta.created_property, meta.modified_properties[0]]
        chosen = list(dict.fromkeys([*names, *always]))
    props = {n: record.properties.get(n) for n in chosen if state.prop(object_type, n) is not None}
    body = {
        "id": record.id,
        "properties": props,
        "createdAt": iso_ms(record.created_at),
        "updatedAt": iso_ms(record.updated_at),
        "archived": record.archived,
    }
    if record.archived and record.archived_at:
        body["archivedAt"] = iso_ms(record.archived_at)
    return body


def with_associations(
    state: HubSpotState, object_type: str, record: Record, body: dict, assoc: list[str] | None
) -> dict:
    """v3 inline associations: {"companies": {"results": [{"id", "type": "contact_to_company"}, ...]}}."""
    if not assoc:
        return body
    out: dict = {}
    for name in assoc:
        to_type = resolve_type(name)
        if to_type is None or (object_type, to_type) not in schema.ASSOCIATION_TYPES:
            continue
        results = [
            {"id": to_id, "type": schema.association_type_name(object_type, to_type, type_id)}
            for to_id, types in state.associated(object_type, record.id, to_type).items()
            for type_id in sorted(types)
        ]
        if results:
            out[name] = {"results": results}
    if out:
        body["associations"] = out
    return body


def type_or_error(name: str) -> str:
    object_type = resolve_type(name)
    if object_type is None:
        raise InputError(f"Unable to infer object type from: {name}", category="VALIDATION_ERROR")
    return object_type


def json_body() -> dict | list:
    body = request.get_json(silent=True)
    if body is None:
        raise InputError("Invalid input JSON: the request body must be a JSON document", category="VALIDATION_ERROR")
    return body


def bool_arg(name: str) -> bool:
    return request.args.get(name, "false").lower() == "true"


def int_arg(name: str, default: int, maximum: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InputError(f"{name} must be an integer, got {raw!r}") from None
    if value < 1 or value > maximum:
        raise InputError(f"{name} must be between 1 and {maximum}, got {value}")
    return value


def batch_body() -> dict:
    body = json_body()
    if not isinstance(body, dict):
        raise InputError("The batch request must be a JSON object")
    return body


def batch_request(state: HubSpotState, maximum: int | None = None) -> tuple[list, datetime, BatchOutcome]:
    """What every batch endpoint starts with: the JSON object, its checked `inputs`, the time, an empty outcome."""
    return batch_inputs(batch_body(), state, maximum), state.now(), BatchOutcome()


def batch_inputs(body: dict, state: HubSpotState, maximum: int | None = None) -> list:
    inputs = body.get("inputs")
    if not isinstance(inputs, list):
        raise InputError("`inputs` must be a list")
    limit = maximum or state.config.batch_max_inputs
    if len(inputs) > limit:
        raise InputError(
            f"Batch input size {len(inputs)} exceeds the maximum of {limit} inputs per request",
            context={"limit": [str(limit)]},
        )
    return inputs


def fault_for(state: HubSpotState, *keys: object) -> bool:
    """True when a batch input is listed in Faults.partial_failure_ids (by id, trace id or idProperty value)."""
    wanted = state.faults.partial_failure_ids
    return any(k is not None and str(k) in wanted for k in keys)


def fault_error(state: HubSpotState, key: str) -> dict:
    return batch_error(f"Injected failure for input {key}", state.config.partial_failure_category, {"ids": [key]})


# ------------------------------------------------------------------------------------------------------ the app
