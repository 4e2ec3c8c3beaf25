"""CRM v3 object endpoints: list, read, create, update, archive and search one object type."""

from __future__ import annotations

from flask import Flask, Response, jsonify, request

from sandbox.hubspot.http import (
    bool_arg,
    int_arg,
    json_body,
    record_json,
    requested,
    type_or_error,
    with_associations,
)
from sandbox.hubspot.search import run_search
from sandbox.hubspot.state import HubSpotState, InputError, Record


def register(app: Flask, state: HubSpotState) -> None:
    @app.get("/crm/v3/objects/<object_type>")
    def list_objects(object_type: str):
        kind = type_or_error(object_type)
        limit = int_arg("limit", 10, state.config.list_max_limit)
        archived = bool_arg("archived")
        names = requested(request.args.getlist("properties"))
        assoc = requested(request.args.getlist("associations"))
        after = request.args.get("after")
        with state.lock:
            rows = sorted((r for r in state.records[kind].values() if r.archived == archived), key=lambda r: int(r.id))
            if after:
                try:
                    start = int(after)
                except ValueError:
                    raise InputError(f"Invalid paging cursor {after!r}") from None
                rows = [r for r in rows if int(r.id) >= start]
            page, rest = rows[:limit], rows[limit:]
            results = [with_associations(state, kind, r, record_json(state, kind, r, names), assoc) for r in page]
        body: dict = {"results": results}
        if rest:
            next_after = rest[0].id
            link = f"{request.host_url}crm/v3/objects/{object_type}?limit={limit}&after={next_after}"
            body["paging"] = {"next": {"after": next_after, "link": link}}
        return jsonify(body)

    @app.get("/crm/v3/objects/<object_type>/<object_id>")
    def get_object(object_type: str, object_id: str):
        kind = type_or_error(object_type)
        names = requested(request.args.getlist("properties"))
        assoc = requested(request.args.getlist("associations"))
        id_property = request.args.get("idProperty")
        with state.lock:
            record = lookup(state, kind, object_id, id_property, bool_arg("archived"))
            if record is None:
                raise InputError("resource not found", category="OBJECT_NOT_FOUND", status=404)
            return jsonify(with_associations(state, kind, record, record_json(state, kind, record, names), assoc))

    @app.post("/crm/v3/objects/<object_type>")
    def create_object(object_type: str):
        kind = type_or_error(object_type)
        body = json_body()
        if not isinstance(body, dict) or not isinstance(body.get("properties"), dict):
            raise InputError("`properties` must be an object")
        record = state.create(kind, body["properties"], body.get("associations") or [])
        response = jsonify(record_json(state, kind, record, list(body["properties"])))
        response.status_code = 201
        return response

    @app.patch("/crm/v3/objects/<object_type>/<object_id>")
    def update_object(object_type: str, object_id: str):
        kind = type_or_error(object_type)
        body = json_body()
        if not isinstance(body, dict) or not isinstance(body.get("properties"), dict):
            raise InputError("`properties` must be an object")
        id_property = request.args.get("idProperty")
        with state.lock:
            record = lookup(state, kind, object_id, id_property, False)
            if record is None:
                raise InputError("resource not found", category="OBJECT_NOT_FOUND", status=404)
            record = state.update(kind, record.id, body["properties"])
            return jsonify(record_json(state, kind, record, list(body["properties"])))

    @app.delete("/crm/v3/objects/<object_type>/<object_id>")
    def archive_object(object_type: str, object_id: str):
        kind = type_or_error(object_type)
        state.archive(kind, object_id)
        return Response(status=204)

    @app.post("/crm/v3/objects/<object_type>/search")
    def search_objects(object_type: str):
        kind = type_or_error(object_type)
        body = json_body()
        if not isinstance(body, dict):
            raise InputError("The search request must be a JSON object")
        page = run_search(state, kind, body)
        names = body.get("properties") or None
        with state.lock:
            results = [record_json(state, kind, r, names) for r in page.records]
        out: dict = {"total": page.total, "results": results}
        if page.next_after is not None:
            out["paging"] = {"next": {"after": page.next_after}}
        return jsonify(out)


def lookup(state: HubSpotState, kind: str, key: str, id_property: str | None, archived: bool) -> Record | None:
    """Find a record by id, or by the value of a unique property when `idProperty` names one."""
    if not id_property or id_property == "hs_object_id":
        return state.get(kind, key, archived)
    definition = state.prop(kind, id_property)
    if definition is None or not definition.unique:
        raise InputError(f"{id_property} is not a unique identifier property of {kind}")
    record = state.find_by_property(kind, id_property, key)
    return record if record is not None and record.archived == archived else None
