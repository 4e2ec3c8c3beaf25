"""The HubSpot sandbox's HTTP surface: a Flask app serving the CRM v3/v4 endpoints we use, as HubSpot shapes them.

Request pipeline (every `/crm/` call): fault injection (sandbox.faults) -> Bearer token check (401 with HubSpot's
INVALID_AUTHENTICATION body) -> rate limits (search: per second; everything else: a rolling 10-second budget with
the X-HubSpot-RateLimit-* headers, 429 with HubSpot's RATE_LIMIT body when spent) -> the endpoint. Bodies follow
HubSpot's documented shapes closely enough that the official SDK (`hubspot-api-client`), which validates required
fields, parses every one of them.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from flask import Flask, Response, g, jsonify, request

from sandbox.hubspot import schema
from sandbox.hubspot.schema import OBJECT_TYPES, resolve_type
from sandbox.hubspot.search import run_search
from sandbox.hubspot.state import BatchOutcome, HubSpotState, InputError, Record, RequestLogEntry
from sandbox.hubspot.values import iso_ms

# ------------------------------------------------------------------------------------------------------ bodies


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


def _input_error(exc: InputError) -> Response:
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


def _requested(values: list[str] | None) -> list[str] | None:
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


def _type_or_error(name: str) -> str:
    object_type = resolve_type(name)
    if object_type is None:
        raise InputError(f"Unable to infer object type from: {name}", category="VALIDATION_ERROR")
    return object_type


def _json_body() -> dict | list:
    body = request.get_json(silent=True)
    if body is None:
        raise InputError("Invalid input JSON: the request body must be a JSON document", category="VALIDATION_ERROR")
    return body


def _bool_arg(name: str) -> bool:
    return request.args.get(name, "false").lower() == "true"


def _int_arg(name: str, default: int, maximum: int) -> int:
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


def _batch_request(state: HubSpotState, maximum: int | None = None) -> tuple[list, datetime, BatchOutcome]:
    """What every batch endpoint starts with: the JSON object, its checked `inputs`, the time, an empty outcome."""
    body = _json_body()
    if not isinstance(body, dict):
        raise InputError("The batch request must be a JSON object")
    return _inputs(body, state, maximum), state.now(), BatchOutcome()


def _inputs(body: dict, state: HubSpotState, maximum: int | None = None) -> list:
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


def _fault_for(state: HubSpotState, *keys: object) -> bool:
    """True when a batch input is listed in Faults.partial_failure_ids (by id, trace id or idProperty value)."""
    wanted = state.faults.partial_failure_ids
    return any(k is not None and str(k) in wanted for k in keys)


def _fault_error(state: HubSpotState, key: str) -> dict:
    return batch_error(f"Injected failure for input {key}", state.config.partial_failure_category, {"ids": [key]})


# ------------------------------------------------------------------------------------------------------ the app


def create_app(state: HubSpotState) -> Flask:
    """A Flask app serving `state` as a HubSpot portal (start it with sandbox.server.start_server)."""
    app = Flask("hubspot-sandbox")
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.config["HUBSPOT_STATE"] = state

    @app.before_request
    def gate():
        g.search = request.path.endswith("/search")
        g.rate_remaining = None
        if not request.path.startswith("/crm/"):
            return None
        fault = state.faults.next_fault()
        if fault == "expired_session":
            return error_response(
                401,
                "The OAuth token used to make this call expired 1 second(s) ago.",
                "EXPIRED_AUTHENTICATION",
            )
        header = request.headers.get("Authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else None
        if token is None:
            return error_response(
                401,
                "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find "
                "more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview",
                "INVALID_AUTHENTICATION",
            )
        if token not in state.config.access_tokens:
            return error_response(
                401,
                "The access token provided is invalid or has been revoked.",
                "INVALID_AUTHENTICATION",
                subCategory="INVALID_TOKEN",
            )
        if fault == "rate_limited":
            return _rate_limited(state, "TEN_SECONDLY_ROLLING", retry_after=state.faults.retry_after_seconds)
        if fault == "server_error":
            return error_response(
                state.faults.server_error_status,
                "Internal error, please try again later.",
                "INTERNAL_ERROR" if state.faults.server_error_status == 500 else "SERVICE_UNAVAILABLE",
            )
        if g.search:
            window = state.search_secondly
            if window is not None and not window.admit()[0]:
                return _rate_limited(state, "SECONDLY", retry_after=None)
            return None
        window = state.ten_secondly
        if window is not None:
            admitted, remaining = window.admit()
            if not admitted:
                return _rate_limited(state, "TEN_SECONDLY_ROLLING", retry_after=None)
            g.rate_remaining = remaining
        return None

    @app.after_request
    def rate_headers(response: Response) -> Response:
        if request.path.startswith("/crm/"):
            state.request_log.append(RequestLogEntry(request.method, request.path, response.status_code))
            window = state.ten_secondly
            if (
                window is not None
                and not getattr(g, "search", False)
                and "X-HubSpot-RateLimit-Max" not in response.headers
            ):
                remaining = g.rate_remaining if getattr(g, "rate_remaining", None) is not None else window.remaining()
                response.headers["X-HubSpot-RateLimit-Max"] = str(window.limit)
                response.headers["X-HubSpot-RateLimit-Remaining"] = str(remaining)
                response.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] = str(state.config.rate_limit_interval_ms)
                response.headers["X-HubSpot-RateLimit-Daily"] = str(schema.DAILY_LIMIT)
                response.headers["X-HubSpot-RateLimit-Daily-Remaining"] = str(
                    max(0, schema.DAILY_LIMIT - len(state.request_log))
                )
        return response

    @app.errorhandler(InputError)
    def on_input_error(exc: InputError):
        return _input_error(exc)

    @app.errorhandler(404)
    def on_not_found(_exc):
        return error_response(404, "resource not found", "OBJECT_NOT_FOUND")

    @app.errorhandler(405)
    def on_bad_method(_exc):
        return error_response(405, f"Method {request.method} is not allowed on {request.path}", "VALIDATION_ERROR")

    _object_routes(app, state)
    _association_routes(app, state)
    _property_routes(app, state)
    _owner_routes(app, state)
    return app


def _rate_limited(state: HubSpotState, policy: str, retry_after: int | None) -> Response:
    """HubSpot's 429: RATE_LIMIT body naming the policy; the ten-secondly one carries the window headers."""
    message = {
        "TEN_SECONDLY_ROLLING": "You have reached your ten_secondly_rolling limit.",
        "SECONDLY": "You have reached your secondly limit.",
    }[policy]
    headers: dict[str, str] = {}
    if policy == "TEN_SECONDLY_ROLLING":
        headers = {
            "X-HubSpot-RateLimit-Max": str(state.config.rate_limit_max or 0),
            "X-HubSpot-RateLimit-Remaining": "0",
            "X-HubSpot-RateLimit-Interval-Milliseconds": str(state.config.rate_limit_interval_ms),
        }
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    response = jsonify(
        {
            "status": "error",
            "message": message,
            "errorType": "RATE_LIMIT",
            "correlationId": str(uuid.uuid4()),
            "policyName": policy,
            "category": "RATE_LIMITS",
        }
    )
    response.status_code = 429
    response.headers.update(headers)
    return response


# ----------------------------------------------------------------------------------------------------- objects


def _object_routes(app: Flask, state: HubSpotState) -> None:
    @app.get("/crm/v3/objects/<object_type>")
    def list_objects(object_type: str):
        kind = _type_or_error(object_type)
        limit = _int_arg("limit", 10, state.config.list_max_limit)
        archived = _bool_arg("archived")
        names = _requested(request.args.getlist("properties"))
        assoc = _requested(request.args.getlist("associations"))
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
        kind = _type_or_error(object_type)
        names = _requested(request.args.getlist("properties"))
        assoc = _requested(request.args.getlist("associations"))
        id_property = request.args.get("idProperty")
        with state.lock:
            record = _lookup(state, kind, object_id, id_property, _bool_arg("archived"))
            if record is None:
                raise InputError("resource not found", category="OBJECT_NOT_FOUND", status=404)
            return jsonify(with_associations(state, kind, record, record_json(state, kind, record, names), assoc))

    @app.post("/crm/v3/objects/<object_type>")
    def create_object(object_type: str):
        kind = _type_or_error(object_type)
        body = _json_body()
        if not isinstance(body, dict) or not isinstance(body.get("properties"), dict):
            raise InputError("`properties` must be an object")
        record = state.create(kind, body["properties"], body.get("associations") or [])
        response = jsonify(record_json(state, kind, record, list(body["properties"])))
        response.status_code = 201
        return response

    @app.patch("/crm/v3/objects/<object_type>/<object_id>")
    def update_object(object_type: str, object_id: str):
        kind = _type_or_error(object_type)
        body = _json_body()
        if not isinstance(body, dict) or not isinstance(body.get("properties"), dict):
            raise InputError("`properties` must be an object")
        id_property = request.args.get("idProperty")
        with state.lock:
            record = _lookup(state, kind, object_id, id_property, False)
            if record is None:
                raise InputError("resource not found", category="OBJECT_NOT_FOUND", status=404)
            record = state.update(kind, record.id, body["properties"])
            return jsonify(record_json(state, kind, record, list(body["properties"])))

    @app.delete("/crm/v3/objects/<object_type>/<object_id>")
    def archive_object(object_type: str, object_id: str):
        kind = _type_or_error(object_type)
        state.archive(kind, object_id)
        return Response(status=204)

    @app.post("/crm/v3/objects/<object_type>/search")
    def search_objects(object_type: str):
        kind = _type_or_error(object_type)
        body = _json_body()
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

    @app.post("/crm/v3/objects/<object_type>/batch/read")
    def batch_read(object_type: str):
        kind = _type_or_error(object_type)
        body = _json_body()
        if not isinstance(body, dict):
            raise InputError("The batch request must be a JSON object")
        inputs = _inputs(body, state)
        started = state.now()
        archived = _bool_arg("archived")
        id_property = body.get("idProperty")
        names = body.get("properties") or None
        outcome = BatchOutcome()
        with state.lock:
            for item in inputs:
                key = str(item.get("id", ""))
                if _fault_for(state, key):
                    outcome.errors.append(_fault_error(state, key))
                    continue
                record = _lookup(state, kind, key, id_property, archived)
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
        kind = _type_or_error(object_type)
        body = _json_body()
        if not isinstance(body, dict):
            raise InputError("The batch request must be a JSON object")
        inputs = _inputs(body, state)
        started = state.now()
        multi_status = bool(inputs) and all(item.get("objectWriteTraceId") for item in inputs)
        outcome = BatchOutcome()
        with state.lock:
            if not multi_status:
                # Without objectWriteTraceId HubSpot's batch create is all-or-nothing: validate everything first.
                for item in inputs:
                    trace = item.get("objectWriteTraceId")
                    if _fault_for(state, trace, *(item.get("properties") or {}).values()):
                        raise InputError(
                            "Injected failure for one input of the batch", state.config.partial_failure_category
                        )
                    state.normalize(kind, item.get("properties") or {}, creating=True)
            for item in inputs:
                trace = item.get("objectWriteTraceId")
                values = item.get("properties") or {}
                if _fault_for(state, trace, *values.values()):
                    outcome.errors.append(_fault_error(state, str(trace)))
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
        kind = _type_or_error(object_type)
        inputs, started, outcome = _batch_request(state)
        with state.lock:
            for item in inputs:
                key = str(item.get("id", ""))
                values = item.get("properties") or {}
                if _fault_for(state, key, item.get("objectWriteTraceId")):
                    outcome.errors.append(_fault_error(state, key))
                    continue
                record = _lookup(state, kind, key, item.get("idProperty"), False)
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
        kind = _type_or_error(object_type)
        inputs, started, outcome = _batch_request(state)
        with state.lock:
            for item in inputs:
                key = str(item.get("id", ""))
                id_property = item.get("idProperty") or "hs_object_id"
                values = dict(item.get("properties") or {})
                if _fault_for(state, key, item.get("objectWriteTraceId")):
                    outcome.errors.append(_fault_error(state, key))
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
        kind = _type_or_error(object_type)
        body = _json_body()
        if not isinstance(body, dict):
            raise InputError("The batch request must be a JSON object")
        for item in _inputs(body, state):
            state.archive(kind, str(item.get("id", "")))
        return Response(status=204)


def _lookup(state: HubSpotState, kind: str, key: str, id_property: str | None, archived: bool) -> Record | None:
    """Find a record by id, or by the value of a unique property when `idProperty` names one."""
    if not id_property or id_property == "hs_object_id":
        return state.get(kind, key, archived)
    definition = state.prop(kind, id_property)
    if definition is None or not definition.unique:
        raise InputError(f"{id_property} is not a unique identifier property of {kind}")
    record = state.find_by_property(kind, id_property, key)
    return record if record is not None and record.archived == archived else None


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


# ------------------------------------------------------------------------------------------------ associations


def _v4_types(from_type: str, to_type: str, types: set[int]) -> list[dict]:
    unlabeled, primary = schema.ASSOCIATION_TYPES[(from_type, to_type)]
    return [
        {"category": "HUBSPOT_DEFINED", "typeId": t, "label": "Primary" if t == primary and t != unlabeled else None}
        for t in sorted(types)
    ]


def _pair(from_name: str, to_name: str) -> tuple[str, str]:
    from_type, to_type = _type_or_error(from_name), _type_or_error(to_name)
    if (from_type, to_type) not in schema.ASSOCIATION_TYPES:
        raise InputError(f"Associations from {from_type} to {to_type} are not supported")
    return from_type, to_type


def _association_routes(app: Flask, state: HubSpotState) -> None:
    @app.get("/crm/v4/objects/<object_type>/<object_id>/associations/<to_object_type>")
    def v4_list(object_type: str, object_id: str, to_object_type: str):
        from_type, to_type = _pair(object_type, to_object_type)
        limit = _int_arg("limit", schema.ASSOCIATION_PAGE_MAX, schema.ASSOCIATION_PAGE_MAX)
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
        specs = _json_body()
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
        inputs, started, outcome = _batch_request(state, schema.ASSOCIATION_BATCH_MAX_INPUTS)
        with state.lock:
            for item in inputs:
                key = str(item.get("id", ""))
                linked = state.associated(from_type, key, to_type) if state.get(from_type, key) else {}
                if not linked:
                    outcome.errors.append(
                        batch_error(
                            f"No {OBJECT_TYPES[to_type].singular} is associated with "
                            f"{OBJECT_TYPES[from_type].singular} {key}.",
                            "OBJECT_NOT_FOUND",
                            {"fromObjectId": [key]},
                            sub_category="crm.associations.NO_ASSOCIATIONS_FOUND",
                        )
                    )
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
        inputs, started, outcome = _batch_request(state, schema.ASSOCIATION_BATCH_MAX_INPUTS)
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
        inputs, started, outcome = _batch_request(state, schema.ASSOCIATION_BATCH_MAX_INPUTS)
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
        body = _json_body()
        if not isinstance(body, dict):
            raise InputError("The batch request must be a JSON object")
        for item in _inputs(body, state, schema.ASSOCIATION_BATCH_MAX_INPUTS):
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
        inputs, started, outcome = _batch_request(state)
        with state.lock:
            for item in inputs:
                key = str(item.get("id", ""))
                linked = state.associated(from_type, key, to_type) if state.get(from_type, key) else {}
                if not linked:
                    outcome.errors.append(
                        batch_error(
                            f"No {OBJECT_TYPES[to_type].singular} is associated with "
                            f"{OBJECT_TYPES[from_type].singular} {key}.",
                            "OBJECT_NOT_FOUND",
                            {"ids": [key]},
                        )
                    )
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
        inputs, started, outcome = _batch_request(state)
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


def _property_routes(app: Flask, state: HubSpotState) -> None:
    @app.get("/crm/v3/properties/<object_type>")
    def list_properties(object_type: str):
        kind = _type_or_error(object_type)
        archived = _bool_arg("archived")
        with state.lock:
            results = [p.to_api() for p in state.properties[kind].values() if p.archived == archived]
        return jsonify({"results": results})

    @app.post("/crm/v3/properties/<object_type>")
    def create_property(object_type: str):
        kind = _type_or_error(object_type)
        body = _json_body()
        if not isinstance(body, dict):
            raise InputError("The property definition must be a JSON object")
        response = jsonify(state.create_property(kind, body).to_api())
        response.status_code = 201
        return response

    @app.post("/crm/v3/properties/<object_type>/batch/create")
    def batch_create_properties(object_type: str):
        kind = _type_or_error(object_type)
        body = _json_body()
        if not isinstance(body, dict):
            raise InputError("The batch request must be a JSON object")
        started = state.now()
        outcome = BatchOutcome()
        for item in _inputs(body, state):
            try:
                outcome.results.append(state.create_property(kind, item).to_api())
            except InputError as exc:
                outcome.errors.append(batch_error(exc.message, exc.category, {"name": [str(item.get("name"))]}))
        return batch_response(outcome, started, 201)

    @app.post("/crm/v3/properties/<object_type>/batch/read")
    def batch_read_properties(object_type: str):
        kind = _type_or_error(object_type)
        body = _json_body()
        if not isinstance(body, dict):
            raise InputError("The batch request must be a JSON object")
        started = state.now()
        outcome = BatchOutcome()
        archived = bool(body.get("archived", False))
        for item in _inputs(body, state):
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
        kind = _type_or_error(object_type)
        body = _json_body()
        if not isinstance(body, dict):
            raise InputError("The batch request must be a JSON object")
        for item in _inputs(body, state):
            state.archive_property(kind, str(item.get("name", "")))
        return Response(status=204)

    @app.get("/crm/v3/properties/<object_type>/groups")
    def list_groups(object_type: str):
        kind = _type_or_error(object_type)
        with state.lock:
            return jsonify({"results": [dict(gr) for gr in state.groups[kind].values() if not gr["archived"]]})

    @app.post("/crm/v3/properties/<object_type>/groups")
    def create_group(object_type: str):
        kind = _type_or_error(object_type)
        body = _json_body()
        if not isinstance(body, dict):
            raise InputError("The group definition must be a JSON object")
        response = jsonify(state.create_group(kind, body))
        response.status_code = 201
        return response

    @app.get("/crm/v3/properties/<object_type>/groups/<group_name>")
    def get_group(object_type: str, group_name: str):
        kind = _type_or_error(object_type)
        group = state.groups[kind].get(group_name)
        if group is None or group["archived"]:
            raise InputError(f"Unable to find property group {group_name}", category="OBJECT_NOT_FOUND", status=404)
        return jsonify(group)

    @app.patch("/crm/v3/properties/<object_type>/groups/<group_name>")
    def update_group(object_type: str, group_name: str):
        kind = _type_or_error(object_type)
        body = _json_body()
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
        kind = _type_or_error(object_type)
        group = state.groups[kind].get(group_name)
        if group is None or group["archived"]:
            raise InputError(f"Unable to find property group {group_name}", category="OBJECT_NOT_FOUND", status=404)
        group["archived"] = True
        return Response(status=204)

    @app.get("/crm/v3/properties/<object_type>/<property_name>")
    def get_property(object_type: str, property_name: str):
        kind = _type_or_error(object_type)
        definition = state.properties[kind].get(property_name)
        if definition is None or definition.archived != _bool_arg("archived"):
            raise InputError(f"Unable to find property {property_name}", category="OBJECT_NOT_FOUND", status=404)
        return jsonify(definition.to_api())

    @app.patch("/crm/v3/properties/<object_type>/<property_name>")
    def update_property(object_type: str, property_name: str):
        kind = _type_or_error(object_type)
        body = _json_body()
        if not isinstance(body, dict):
            raise InputError("The property update must be a JSON object")
        return jsonify(state.update_property(kind, property_name, body).to_api())

    @app.delete("/crm/v3/properties/<object_type>/<property_name>")
    def archive_property(object_type: str, property_name: str):
        kind = _type_or_error(object_type)
        state.archive_property(kind, property_name)
        return Response(status=204)


# ------------------------------------------------------------------------------------------------------- owners


def _owner_routes(app: Flask, state: HubSpotState) -> None:
    @app.get("/crm/v3/owners")
    @app.get("/crm/v3/owners/")
    def list_owners():
        limit = _int_arg("limit", 100, schema.OWNERS_MAX_LIMIT)
        archived = _bool_arg("archived")
        email = request.args.get("email")
        after = request.args.get("after")
        with state.lock:
            owners = sorted((o for o in state.owners.values() if o["archived"] == archived), key=lambda o: int(o["id"]))
        if email:
            owners = [o for o in owners if o["email"].lower() == email.lower()]
        if after:
            owners = [o for o in owners if int(o["id"]) >= int(after)]
        page, rest = owners[:limit], owners[limit:]
        body: dict = {"results": page}
        if rest:
            body["paging"] = {"next": {"after": rest[0]["id"]}}
        return jsonify(body)

    @app.get("/crm/v3/owners/<owner_id>")
    def get_owner(owner_id: str):
        owner = state.owners.get(owner_id)
        if owner is None:
            raise InputError("resource not found", category="OBJECT_NOT_FOUND", status=404)
        return jsonify(owner)
