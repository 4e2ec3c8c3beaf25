"""CRM v3 batch endpoints (read/create/update/upsert/archive): size limits, per-input 207 errors, idProperty."""

from __future__ import annotations

from flask import Flask, Response

from sandbox.hubspot.http import (
    batch_error,
    batch_inputs,
    batch_request,
    batch_response,
    bool_arg,
    fault_error,
    fault_for,
    json_body,
    record_json,
    type_or_error,
)
from sandbox.hubspot.routes.objects import lookup
from sandbox.hubspot.schema import OBJECT_TYPES
from sandbox.hubspot.state import BatchOutcome, HubSpotState, InputError, Record


def register(app: Flask, state: HubSpotState) -> None:
    @app.post("/crm/v3/objects/<object_type>/batch/read")
    def batch_read(object_type: str):
        kind = type_or_error(object_type)
        body = json_body()
        if not isinstance(body, dict):
            raise InputError("The batch request must be a JSON object")
        inputs = batch_inputs(body, state)
        started = state.now()
        archived = bool_arg("archived")
        id_property = body.get("idProperty")
        names = body.get("properties") or None
        outcome = BatchOutcome()
        with state.lock:
            for item in inputs:
                key = str(item.get("id", ""))
                if fault_for(state, key):
                    outcome.errors.append(fault_error(state, key))
                    continue
                record = lookup(state, kind, key, id_property, archived)
                if record is None:
                    outcome.errors.append(
                        batch_error(
                            f"Could not get some {OBJECT_TYPES[kind].singular.upper()} objects, they may be deleted "
                            "or not exist. Check that ids are valid.",
                            "OBJECT_NOT_FOUND",
                            {"ids": [key]},
                        )
                    )
                    continue
                outcome.results.append(record_json(state, kind, record, names))
        return batch_response(outcome, started, 200)

    @app.post("/crm/v3/objects/<object_type>/batch/create")
    def batch_create(object_type: str):
        kind = type_or_error(object_type)
        body = json_body()
        if not isinstance(body, dict):
            raise InputError("The batch request must be a JSON object")
        inputs = batch_inputs(body, state)
        started = state.now()
        multi_status = bool(inputs) and all(item.get("objectWriteTraceId") for item in inputs)
        outcome = BatchOutcome()
        with state.lock:
            if not multi_status:
                # Without objectWriteTraceId HubSpot's batch create is all-or-nothing: validate everything first.
                for item in inputs:
                    trace = item.get("objectWriteTraceId")
                    if fault_for(state, trace, *(item.get("properties") or {}).values()):
                        raise InputError(
                            "Injected failure for one input of the batch", state.config.partial_failure_category
                        )
                    state.normalize(kind, item.get("properties") or {}, creating=True)
            for item in inputs:
                trace = item.get("objectWriteTraceId")
                values = item.get("properties") or {}
                if fault_for(state, trace, *values.values()):
                    outcome.errors.append(fault_error(state, str(trace)))
                    continue
                try:
                    record = state.create(kind, values, item.get("associations") or [])
                except InputError as exc:
                    if not multi_status:
                        raise
                    context = {"objectWriteTraceId": [str(trace)], **exc.context}
                    outcome.errors.append(batch_error(exc.message, exc.category, context))
                    continue
                result = record_json(state, kind, record, list(values))
                if trace:
                    result["objectWriteTraceId"] = trace
                outcome.results.append(result)
        return batch_response(outcome, started, 201)

    @app.post("/crm/v3/objects/<object_type>/batch/update")
    def batch_update(object_type: str):
        kind = type_or_error(object_type)
        inputs, started, outcome = batch_request(state)
        with state.lock:
            for item in inputs:
                key = str(item.get("id", ""))
                values = item.get("properties") or {}
                if fault_for(state, key, item.get("objectWriteTraceId")):
                    outcome.errors.append(fault_error(state, key))
                    continue
                record = lookup(state, kind, key, item.get("idProperty"), False)
                if record is None:
                    outcome.errors.append(
                        batch_error(
                            f"Could not update {OBJECT_TYPES[kind].singular} {key}: it does not exist",
                            "OBJECT_NOT_FOUND",
                            {"ids": [key]},
                        )
                    )
                    continue
                try:
                    record = state.update(kind, record.id, values)
                except InputError as exc:
                    outcome.errors.append(batch_error(exc.message, exc.category, {"ids": [key], **exc.context}))
                    continue
                outcome.results.append(record_json(state, kind, record, list(values)))
        return batch_response(outcome, started, 200)

    @app.post("/crm/v3/objects/<object_type>/batch/upsert")
    def batch_upsert(object_type: str):
        kind = type_or_error(object_type)
        inputs, started, outcome = batch_request(state)
        with state.lock:
            for item in inputs:
                key = str(item.get("id", ""))
                id_property = item.get("idProperty") or "hs_object_id"
                values = dict(item.get("properties") or {})
                if fault_for(state, key, item.get("objectWriteTraceId")):
                    outcome.errors.append(fault_error(state, key))
                    continue
                try:
                    record, new = _upsert_one(state, kind, key, id_property, values)
                except InputError as exc:
                    outcome.errors.append(batch_error(exc.message, exc.category, {"ids": [key], **exc.context}))
                    continue
                result = record_json(state, kind, record, list(values))
                result["new"] = new
                outcome.results.append(result)
        return batch_response(outcome, started, 200)

    @app.post("/crm/v3/objects/<object_type>/batch/archive")
    def batch_archive(object_type: str):
        kind = type_or_error(object_type)
        body = json_body()
        if not isinstance(body, dict):
            raise InputError("The batch request must be a JSON object")
        for item in batch_inputs(body, state):
            state.archive(kind, str(item.get("id", "")))
        return Response(status=204)


def _upsert_one(state: HubSpotState, kind: str, key: str, id_property: str, values: dict) -> tuple[Record, bool]:
    if id_property == "hs_object_id":
        record = state.get(kind, key)
        if record is None:
            raise InputError(f"No {OBJECT_TYPES[kind].singular} with id {key} exists", category="OBJECT_NOT_FOUND")
        return state.update(kind, key, values), False
    definition = state.prop(kind, id_property)
    if definition is None or not definition.unique:
        raise InputError(f"{id_property} is not a unique identifier property of {kind}; upsert needs one")
    existing = state.find_by_property(kind, id_property, key)
    if existing is not None:
        return state.update(kind, existing.id, values), False
    values[id_property] = key
    return state.create(kind, values), True
