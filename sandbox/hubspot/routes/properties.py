"""CRM v3 property and property-group endpoints: the schema our field installer creates and reads."""

from __future__ import annotations

from flask import Flask, Response, jsonify

from sandbox.hubspot.http import (
    batch_body,
    batch_error,
    batch_inputs,
    batch_request,
    batch_response,
    bool_arg,
    json_body,
    type_or_error,
)
from sandbox.hubspot.state import BatchOutcome, HubSpotState, InputError


def register(app: Flask, state: HubSpotState) -> None:
    @app.get("/crm/v3/properties/<object_type>")
    def list_properties(object_type: str):
        kind = type_or_error(object_type)
        archived = bool_arg("archived")
        with state.lock:
            results = [p.to_api() for p in state.properties[kind].values() if p.archived == archived]
        return jsonify({"results": results})

    @app.post("/crm/v3/properties/<object_type>")
    def create_property(object_type: str):
        kind = type_or_error(object_type)
        body = json_body()
        if not isinstance(body, dict):
            raise InputError("The property definition must be a JSON object")
        response = jsonify(state.create_property(kind, body).to_api())
        response.status_code = 201
        return response

    @app.post("/crm/v3/properties/<object_type>/batch/create")
    def batch_create_properties(object_type: str):
        kind = type_or_error(object_type)
        inputs, started, outcome = batch_request(state)
        for item in inputs:
            try:
                outcome.results.append(state.create_property(kind, item).to_api())
            except InputError as exc:
                outcome.errors.append(batch_error(exc.message, exc.category, {"name": [str(item.get("name"))]}))
        return batch_response(outcome, started, 201)

    @app.post("/crm/v3/properties/<object_type>/batch/read")
    def batch_read_properties(object_type: str):
        kind = type_or_error(object_type)
        body = batch_body()
        started = state.now()
        outcome = BatchOutcome()
        archived = bool(body.get("archived", False))
        for item in batch_inputs(body, state):
            name = str(item.get("name", ""))
            definition = state.properties[kind].get(name)
            if definition is None or definition.archived != archived:
                outcome.errors.append(
                    batch_error(f"Unable to find property {name}", "OBJECT_NOT_FOUND", {"name": [name]})
                )
            else:
                outcome.results.append(definition.to_api())
        return batch_response(outcome, started, 200)

    @app.post("/crm/v3/properties/<object_type>/batch/archive")
    def batch_archive_properties(object_type: str):
        kind = type_or_error(object_type)
        body = json_body()
        if not isinstance(body, dict):
            raise InputError("The batch request must be a JSON object")
        for item in batch_inputs(body, state):
            state.archive_property(kind, str(item.get("name", "")))
        return Response(status=204)

    @app.get("/crm/v3/properties/<object_type>/groups")
    def list_groups(object_type: str):
        kind = type_or_error(object_type)
        with state.lock:
            return jsonify({"results": [dict(gr) for gr in state.groups[kind].values() if not gr["archived"]]})

    @app.post("/crm/v3/properties/<object_type>/groups")
    def create_group(object_type: str):
        kind = type_or_error(object_type)
        body = json_body()
        if not isinstance(body, dict):
            raise InputError("The group definition must be a JSON object")
        response = jsonify(state.create_group(kind, body))
        response.status_code = 201
        return response

    @app.get("/crm/v3/properties/<object_type>/groups/<group_name>")
    def get_group(object_type: str, group_name: str):
        kind = type_or_error(object_type)
        group = state.groups[kind].get(group_name)
        if group is None or group["archived"]:
            raise InputError(f"Unable to find property group {group_name}", category="OBJECT_NOT_FOUND", status=404)
        return jsonify(group)

    @app.patch("/crm/v3/properties/<object_type>/groups/<group_name>")
    def update_group(object_type: str, group_name: str):
        kind = type_or_error(object_type)
        body = json_body()
        group = state.groups[kind].get(group_name)
        if group is None or group["archived"] or not isinstance(body, dict):
            raise InputError(f"Unable to find property group {group_name}", category="OBJECT_NOT_FOUND", status=404)
        if "label" in body:
            group["label"] = str(body["label"])
        if "displayOrder" in body:
            group["displayOrder"] = int(body["displayOrder"])
        return jsonify(group)

    @app.delete("/crm/v3/properties/<object_type>/groups/<group_name>")
    def archive_group(object_type: str, group_name: str):
        kind = type_or_error(object_type)
        group = state.groups[kind].get(group_name)
        if group is None or group["archived"]:
            raise InputError(f"Unable to find property group {group_name}", category="OBJECT_NOT_FOUND", status=404)
        group["archived"] = True
        return Response(status=204)

    @app.get("/crm/v3/properties/<object_type>/<property_name>")
    def get_property(object_type: str, property_name: str):
        kind = type_or_error(object_type)
        definition = state.properties[kind].get(property_name)
        if definition is None or definition.archived != bool_arg("archived"):
            raise InputError(f"Unable to find property {property_name}", category="OBJECT_NOT_FOUND", status=404)
        return jsonify(definition.to_api())

    @app.patch("/crm/v3/properties/<object_type>/<property_name>")
    def update_property(object_type: str, property_name: str):
        kind = type_or_error(object_type)
        body = json_body()
        if not isinstance(body, dict):
            raise InputError("The property update must be a JSON object")
        return jsonify(state.update_property(kind, property_name, body).to_api())

    @app.delete("/crm/v3/properties/<object_type>/<property_name>")
    def archive_property(object_type: str, property_name: str):
        kind = type_or_error(object_type)
        state.archive_property(kind, property_name)
        return Response(status=204)
