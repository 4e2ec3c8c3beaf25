"""Association endpoints: v4 (labelled, batch, labels) and the v3 batch/default forms write-back still uses."""

from __future__ import annotations

from flask import Flask, Response, jsonify, request

from sandbox.hubspot import schema
from sandbox.hubspot.http import (
    batch_error,
    batch_inputs,
    batch_request,
    batch_response,
    int_arg,
    json_body,
    record_json,
    type_or_error,
    with_associations,
)
from sandbox.hubspot.schema import OBJECT_TYPES
from sandbox.hubspot.state import BatchOutcome, HubSpotState, InputError


def _v4_types(from_type: str, to_type: str, types: set[int]) -> list[dict]:
    unlabeled, primary = schema.ASSOCIATION_TYPES[(from_type, to_type)]
    return [
        {"category": "HUBSPOT_DEFINED", "typeId": t, "label": "Primary" if t == primary and t != unlabeled else None}
        for t in sorted(types)
    ]


def _pair(from_name: str, to_name: str) -> tuple[str, str]:
    from_type, to_type = type_or_error(from_name), type_or_error(to_name)
    if (from_type, to_type) not in schema.ASSOCIATION_TYPES:
        raise InputError(f"Associations from {from_type} to {to_type} are not supported")
    return from_type, to_type


def _linked_or_error(
    state: HubSpotState,
    outcome: BatchOutcome,
    from_type: str,
    to_type: str,
    key: str,
    context: dict,
    sub_category: str | None = None,
) -> dict[str, set[int]]:
    """The records `key` is associated with; none records HubSpot's batch error, whose context differs by version."""
    linked = state.associated(from_type, key, to_type) if state.get(from_type, key) else {}
    if not linked:
        outcome.errors.append(
            batch_error(
                f"No {OBJECT_TYPES[to_type].singular} is associated with {OBJECT_TYPES[from_type].singular} {key}.",
                "OBJECT_NOT_FOUND",
                context,
                sub_category,
            )
        )
    return linked


def register(app: Flask, state: HubSpotState) -> None:
    @app.get("/crm/v4/objects/<object_type>/<object_id>/associations/<to_object_type>")
    def v4_list(object_type: str, object_id: str, to_object_type: str):
        from_type, to_type = _pair(object_type, to_object_type)
        limit = int_arg("limit", schema.ASSOCIATION_PAGE_MAX, schema.ASSOCIATION_PAGE_MAX)
        after = request.args.get("after")
        with state.lock:
            linked = list(state.associated(from_type, object_id, to_type).items())
        if after:
            linked = [(k, v) for k, v in linked if int(k) >= int(after)]
        page, rest = linked[:limit], linked[limit:]
        body: dict = {
            "results": [
                {"toObjectId": int(to_id), "associationTypes": _v4_types(from_type, to_type, types)}
                for to_id, types in page
            ]
        }
        if rest:
            body["paging"] = {"next": {"after": rest[0][0]}}
        return jsonify(body)

    @app.put("/crm/v4/objects/<object_type>/<object_id>/associations/default/<to_object_type>/<to_object_id>")
    def v4_create_default(object_type: str, object_id: str, to_object_type: str, to_object_id: str):
        from_type, to_type = _pair(object_type, to_object_type)
        started = state.now()
        state.associate(from_type, object_id, to_type, to_object_id)
        return batch_response(
            BatchOutcome(results=[_default_result(from_type, object_id, to_type, to_object_id)]), started, 200
        )

    @app.put("/crm/v4/objects/<object_type>/<object_id>/associations/<to_object_type>/<to_object_id>")
    def v4_create_labelled(object_type: str, object_id: str, to_object_type: str, to_object_id: str):
        from_type, to_type = _pair(object_type, to_object_type)
        specs = json_body()
        if not isinstance(specs, list) or not specs:
            raise InputError("The body must be a list of association specs")
        for spec in specs:
            state.associate(from_type, object_id, to_type, to_object_id, int(spec.get("associationTypeId", 0)))
        types = state.associated(from_type, object_id, to_type).get(to_object_id, set())
        response = jsonify(
            {
                "fromObjectTypeId": OBJECT_TYPES[from_type].type_id,
                "fromObjectId": object_id,
                "toObjectTypeId": OBJECT_TYPES[to_type].type_id,
                "toObjectId": to_object_id,
                "labels": [t["label"] for t in _v4_types(from_type, to_type, types) if t["label"]],
            }
        )
        response.status_code = 201
        return response

    @app.delete("/crm/v4/objects/<object_type>/<object_id>/associations/<to_object_type>/<to_object_id>")
    def v4_archive(object_type: str, object_id: str, to_object_type: str, to_object_id: str):
        from_type, to_type = _pair(object_type, to_object_type)
        state.unassociate(from_type, object_id, to_type, to_object_id)
        return Response(status=204)

    @app.post("/crm/v4/associations/<from_object_type>/<to_object_type>/batch/read")
    def v4_batch_read(from_object_type: str, to_object_type: str):
        from_type, to_type = _pair(from_object_type, to_object_type)
        inputs, started, outcome = batch_request(state, schema.ASSOCIATION_BATCH_MAX_INPUTS)
        with state.lock:
            for item in inputs:
                key = str(item.get("id", ""))
                context = {"fromObjectId": [key]}
                no_links = "crm.associations.NO_ASSOCIATIONS_FOUND"
                linked = _linked_or_error(state, outcome, from_type, to_type, key, context, no_links)
                if not linked:
                    continue
                outcome.results.append(
                    {
                        "from": {"id": key},
                        "to": [
                            {"toObjectId": int(to_id), "associationTypes": _v4_types(from_type, to_type, types)}
                            for to_id, types in linked.items()
                        ],
                    }
                )
        return batch_response(outcome, started, 200)

    @app.post("/crm/v4/associations/<from_object_type>/<to_object_type>/batch/associate/default")
    def v4_batch_default(from_object_type: str, to_object_type: str):
        from_type, to_type = _pair(from_object_type, to_object_type)
        inputs, started, outcome = batch_request(state, schema.ASSOCIATION_BATCH_MAX_INPUTS)
        for item in inputs:
            a, b = str(item["from"]["id"]), str(item["to"]["id"])
            try:
                state.associate(from_type, a, to_type, b)
            except InputError as exc:
                outcome.errors.append(batch_error(exc.message, exc.category, {"fromObjectId": [a]}))
                continue
            outcome.results.extend(_default_result(from_type, a, to_type, b)["results"])
        return batch_response(outcome, started, 200)

    @app.post("/crm/v4/associations/<from_object_type>/<to_object_type>/batch/create")
    def v4_batch_create(from_object_type: str, to_object_type: str):
        from_type, to_type = _pair(from_object_type, to_object_type)
        inputs, started, outcome = batch_request(state, schema.ASSOCIATION_BATCH_MAX_INPUTS)
        for item in inputs:
            a, b = str(item["from"]["id"]), str(item["to"]["id"])
            try:
                for spec in item.get("types") or [{}]:
                    type_id = spec.get("associationTypeId")
                    state.associate(from_type, a, to_type, b, int(type_id) if type_id is not None else None)
            except InputError as exc:
                outcome.errors.append(batch_error(exc.message, exc.category, {"fromObjectId": [a]}))
                continue
            types = state.associated(from_type, a, to_type).get(b, set())
            outcome.results.append(
                {
                    "fromObjectTypeId": OBJECT_TYPES[from_type].type_id,
                    "fromObjectId": a,
                    "toObjectTypeId": OBJECT_TYPES[to_type].type_id,
                    "toObjectId": b,
                    "labels": [t["label"] for t in _v4_types(from_type, to_type, types) if t["label"]],
                }
            )
        return batch_response(outcome, started, 201)

    @app.post("/crm/v4/associations/<from_object_type>/<to_object_type>/batch/archive")
    def v4_batch_archive(from_object_type: str, to_object_type: str):
        from_type, to_type = _pair(from_object_type, to_object_type)
        body = json_body()
        if not isinstance(body, dict):
            raise InputError("The batch request must be a JSON object")
        for item in batch_inputs(body, state, schema.ASSOCIATION_BATCH_MAX_INPUTS):
            for target in item.get("to") or []:
                state.unassociate(from_type, str(item["from"]["id"]), to_type, str(target["id"]))
        return Response(status=204)

    @app.get("/crm/v4/associations/<from_object_type>/<to_object_type>/labels")
    def v4_labels(from_object_type: str, to_object_type: str):
        from_type, to_type = _pair(from_object_type, to_object_type)
        unlabeled, primary = schema.ASSOCIATION_TYPES[(from_type, to_type)]
        results = [{"category": "HUBSPOT_DEFINED", "typeId": unlabeled, "label": None}]
        if primary is not None:
            results.insert(0, {"category": "HUBSPOT_DEFINED", "typeId": primary, "label": "Primary"})
        return jsonify({"results": results})

    @app.post("/crm/v3/associations/<from_object_type>/<to_object_type>/batch/read")
    def v3_batch_read(from_object_type: str, to_object_type: str):
        from_type, to_type = _pair(from_object_type, to_object_type)
        inputs, started, outcome = batch_request(state)
        with state.lock:
            for item in inputs:
                key = str(item.get("id", ""))
                linked = _linked_or_error(state, outcome, from_type, to_type, key, {"ids": [key]})
                if not linked:
                    continue
                to = [
                    {"id": to_id, "type": schema.association_type_name(from_type, to_type, t)}
                    for to_id, types in linked.items()
                    for t in sorted(types)
                ]
                outcome.results.append({"from": {"id": key}, "to": to})
        return batch_response(outcome, started, 200)

    @app.post("/crm/v3/associations/<from_object_type>/<to_object_type>/batch/create")
    def v3_batch_create(from_object_type: str, to_object_type: str):
        from_type, to_type = _pair(from_object_type, to_object_type)
        inputs, started, outcome = batch_request(state)
        for item in inputs:
            a, b = str(item["from"]["id"]), str(item["to"]["id"])
            name = str(item.get("type", ""))
            unlabeled, primary = schema.ASSOCIATION_TYPES[(from_type, to_type)]
            type_id = (
                primary
                if primary is not None and name == schema.association_type_name(from_type, to_type, primary)
                else unlabeled
            )
            try:
                state.associate(from_type, a, to_type, b, type_id)
            except InputError as exc:
                outcome.errors.append(batch_error(exc.message, exc.category, {"ids": [a]}))
                continue
            outcome.results.append(
                {
                    "from": {"id": a},
                    "to": {"id": b},
                    "type": name or schema.association_type_name(from_type, to_type, type_id),
                }
            )
        return batch_response(outcome, started, 201)

    @app.put(
        "/crm/v3/objects/<object_type>/<object_id>/associations/<to_object_type>/<to_object_id>/<association_type>"
    )
    def v3_associate(object_type: str, object_id: str, to_object_type: str, to_object_id: str, association_type: str):
        from_type, to_type = _pair(object_type, to_object_type)
        type_id = int(association_type) if association_type.isdigit() else None
        if type_id is None:
            unlabeled, primary = schema.ASSOCIATION_TYPES[(from_type, to_type)]
            is_primary = primary is not None and association_type == schema.association_type_name(
                from_type, to_type, primary
            )
            type_id = primary if is_primary else unlabeled
        state.associate(from_type, object_id, to_type, to_object_id, type_id)
        with state.lock:
            record = state.get(from_type, object_id)
            assert record is not None
            body = with_associations(
                state, from_type, record, record_json(state, from_type, record, None), [to_object_type]
            )
        return jsonify(body)


def _default_result(from_type: str, from_id: str, to_type: str, to_id: str) -> dict:
    unlabeled, _ = schema.ASSOCIATION_TYPES[(from_type, to_type)]
    back_unlabeled, _ = schema.ASSOCIATION_TYPES[(to_type, from_type)]
    return {
        "results": [
            {
                "from": {"id": from_id},
                "to": {"id": to_id},
                "associationSpec": {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": unlabeled},
            },
            {
                "from": {"id": to_id},
                "to": {"id": from_id},
                "associationSpec": {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": back_unlabeled},
            },
        ]
    }


# --------------------------------------------------------------------------------------------------- properties
