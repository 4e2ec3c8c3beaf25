"""Flask app speaking Salesforce's REST (and SOAP login) protocol over the in-memory org.

Only translation lives here: routes, headers, fault injection and the JSON error bodies; logging in (the SOAP
envelope, the OAuth token answer) is login.py's and the sObject Collections' per-record handling composite.py's.
The rules (validation, cursors, budget) are the org's (org.py). Paths and shapes follow the
REST API developer guide: `/services/data/vXX.X/query?q=`, `/queryAll`, `nextRecordsUrl` cursors,
`/sobjects[/<type>[/describe|/<id>|/<extIdField>/<value>]]`, `/composite/sobjects` (at most 200 records),
`Sforce-Limit-Info: api-usage=n/limit` on every REST response.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, cast

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from sandbox.salesforce.composite import (
    check_collection_size,
    collection_body,
    create_one,
    delete_one,
    external_id_field,
    match_external,
    run_collection,
    update_one,
    upsert_one,
)
from sandbox.salesforce.ids import ApiError, format_datetime
from sandbox.salesforce.login import register_login
from sandbox.salesforce.org import MAX_COLLECTION, SalesforceOrg

_BATCH_SIZE = re.compile(r"batchSize\s*=\s*(\d+)")


def _bearer() -> str | None:
    header = request.headers.get("Authorization", "")
    for scheme in ("Bearer ", "OAuth "):
        if header.startswith(scheme):
            return header[len(scheme) :].strip()
    return None


def _json_body() -> Any:
    try:
        return request.get_json(force=True, silent=False)
    except Exception:  # noqa: BLE001 - any parse failure is the same error to the client
        raise ApiError(400, "JSON_PARSER_ERROR", "The request body is not valid JSON") from None


class _CurrentOrg:
    """Reads through to `app.config["SALESFORCE_ORG"]`, so a running sandbox can be handed a fresh org (tests
    reuse one server instead of paying a server start and stop per test)."""

    def __init__(self, app: Flask) -> None:
        self._app = app

    def __getattr__(self, name: str) -> Any:
        return getattr(self._app.config["SALESFORCE_ORG"], name)


def create_app(org: SalesforceOrg) -> Flask:
    """A WSGI app serving `org`; run it with sandbox.server.start_server (or `serving`) on a loopback port.

    Swap the org later with `app.config["SALESFORCE_ORG"] = other` (SalesforceSandbox.reset does).
    """
    app = Flask("sandbox.salesforce")
    app.json.sort_keys = False  # type: ignore[attr-defined]  # records keep the SELECT order, as Salesforce does
    app.config["SALESFORCE_ORG"] = org
    org = cast(SalesforceOrg, _CurrentOrg(app))
    data = "/services/data/v<version>"

    def api_path() -> bool:
        return request.path.startswith("/services/data/v") and request.path.rstrip("/") != "/services/data"

    @app.before_request
    def guard() -> Response | tuple[Any, int] | None:
        """Faults first (a test asked for them), then the session, then the daily budget, as a real org orders it."""
        if not api_path():
            return None
        org.request_log.append((request.method, request.full_path.rstrip("?")))
        sid = _bearer()
        fault = org.faults.next_fault()
        if fault == "expired_session":
            org.revoke_session(sid)
            raise ApiError(401, "INVALID_SESSION_ID", "Session expired or invalid")
        if fault == "rate_limited":
            raise ApiError(403, "REQUEST_LIMIT_EXCEEDED", "ConcurrentPerOrgLongTxn Limit exceeded.")
        if fault == "server_error":
            status = org.faults.server_error_status
            if status == 503:
                raise ApiError(503, "SERVER_UNAVAILABLE", "Server temporarily unavailable, please try again later.")
            raise ApiError(
                status,
                "UNKNOWN_EXCEPTION",
                "An unexpected error occurred. Please include this ErrorId "
                "if you contact support: 1234567890-12345 (-1234567890)",
            )
        if org.session_user(sid) is None:
            raise ApiError(401, "INVALID_SESSION_ID", "Session expired or invalid")
        org.charge()
        return None

    @app.after_request
    def limit_header(response: Response) -> Response:
        if api_path():
            response.headers["Sforce-Limit-Info"] = org.limit_info()
        return response

    @app.errorhandler(ApiError)
    def api_error(error: ApiError) -> tuple[Response, int]:
        return jsonify(error.body()), error.status

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> tuple[Response, int]:
        status = error.code or 500
        if status == 405:
            body = [
                {
                    "errorCode": "METHOD_NOT_ALLOWED",
                    "message": f"HTTP Method '{request.method}' not allowed. Allowed are "
                    f"{','.join(sorted(getattr(error, 'valid_methods', None) or []))}",
                }
            ]
        elif status == 404:
            body = [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}]
        else:
            body = [{"errorCode": "UNKNOWN_EXCEPTION", "message": error.description or "error"}]
        return jsonify(body), status

    register_login(app, org)

    # -- discovery ------------------------------------------------------------------------------------------
    @app.get("/services/data")
    @app.get("/services/data/")
    def versions() -> Response:
        return jsonify([{"label": "Winter '24", "url": "/services/data/v59.0", "version": "59.0"}])

    @app.get(data)
    @app.get(f"{data}/")
    def resources(version: str) -> Response:
        base = f"/services/data/v{version}"
        return jsonify({name: f"{base}/{name}" for name in ("sobjects", "query", "queryAll", "limits", "composite")})

    @app.get(f"{data}/limits")
    @app.get(f"{data}/limits/")
    def limits(version: str) -> Response:
        return jsonify({"DailyApiRequests": {"Max": org.api_limit, "Remaining": max(org.api_limit - org.api_used, 0)}})

    @app.get(f"{data}/sobjects")
    @app.get(f"{data}/sobjects/")
    def describe_global(version: str) -> Response:
        return jsonify(
            {
                "encoding": "UTF-8",
                "maxBatchSize": MAX_COLLECTION,
                "sobjects": [o.summary(version) for o in org.schema.values()],
            }
        )

    @app.get(f"{data}/sobjects/<name>/describe")
    @app.get(f"{data}/sobjects/<name>/describe/")
    def describe(version: str, name: str) -> Response:
        return jsonify(org.sobject(name).describe(version))

    # -- records --------------------------------------------------------------------------------------------
    @app.route(f"{data}/sobjects/<name>", methods=["GET", "POST"])
    @app.route(f"{data}/sobjects/<name>/", methods=["GET", "POST"])
    def sobject_root(version: str, name: str) -> tuple[Response, int]:
        obj = org.sobject(name)
        if request.method == "GET":
            recent = [org.record_json(obj, r, [], version) | {"Id": r["Id"]} for r in org.live(obj.name)[-5:]]
            return jsonify({"objectDescribe": obj.summary(version), "recentItems": recent}), 200
        body = _json_body()
        if not isinstance(body, dict):
            raise ApiError(400, "JSON_PARSER_ERROR", "Expected a JSON object")
        record_id = org.insert(obj.name, body, user_id=org.session_user(_bearer()))
        return jsonify({"id": record_id, "success": True, "errors": []}), 201

    @app.get(f"{data}/sobjects/<name>/deleted/")
    @app.get(f"{data}/sobjects/<name>/deleted")
    def deleted(version: str, name: str) -> Response:
        obj = org.sobject(name)
        start, end = _window()
        rows = [
            {"deletedDate": format_datetime(r["SystemModstamp"]), "id": r["Id"]}
            for r in org.records[obj.name].values()
            if r["IsDeleted"] and start <= r["SystemModstamp"] <= end
        ]
        return jsonify(
            {
                "deletedRecords": rows,
                "earliestDateAvailable": format_datetime(start),
                "latestDateCovered": format_datetime(end),
            }
        )

    @app.get(f"{data}/sobjects/<name>/updated/")
    @app.get(f"{data}/sobjects/<name>/updated")
    def updated(version: str, name: str) -> Response:
        obj = org.sobject(name)
        start, end = _window()
        ids = [r["Id"] for r in org.live(obj.name) if start <= r["SystemModstamp"] <= end]
        return jsonify({"ids": ids, "latestDateCovered": format_datetime(end)})

    @app.route(f"{data}/sobjects/<name>/<record_id>", methods=["GET", "PATCH", "DELETE"])
    def record(version: str, name: str, record_id: str) -> tuple[Response, int] | Response:
        obj = org.sobject(name)
        if request.method == "GET":
            found = org.get(obj.name, record_id)
            if found is None:
                raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
            return jsonify(org.record_json(obj, found, _field_paths(org, obj.name), version)), 200
        if request.method == "DELETE":
            org.delete(obj.name, record_id)
            return Response(status=204)
        body = _json_body()
        if not isinstance(body, dict):
            raise ApiError(400, "JSON_PARSER_ERROR", "Expected a JSON object")
        org.update(obj.name, record_id, body)
        return Response(status=204)

    @app.route(f"{data}/sobjects/<name>/<field_name>/<path:value>", methods=["GET", "PATCH", "DELETE"])
    def by_external_id(version: str, name: str, field_name: str, value: str) -> tuple[Response, int] | Response:
        obj = org.sobject(name)
        f = external_id_field(org, obj.name, field_name)
        if request.method == "PATCH":
            body = _json_body()
            if not isinstance(body, dict):
                raise ApiError(400, "JSON_PARSER_ERROR", "Expected a JSON object")
            with org.lock:
                result = upsert_one(org, obj.name, f, value, body)
            return jsonify(result), 201 if result["created"] else 200
        matches = match_external(org, obj.name, f, value)
        if not matches:
            raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
        if len(matches) > 1:
            urls = [f"/services/data/v{version}/sobjects/{obj.name}/{r['Id']}" for r in matches]
            return jsonify(urls), 300
        if request.method == "DELETE":
            org.delete(obj.name, matches[0]["Id"])
            return Response(status=204)
        return jsonify(org.record_json(obj, matches[0], None, version)), 200

    # -- queries --------------------------------------------------------------------------------------------
    def run_query(version: str, include_deleted: bool) -> Response:
        text = request.args.get("q")
        if not text:
            raise ApiError(400, "MALFORMED_QUERY", "A query string has to be specified")
        options = _BATCH_SIZE.search(request.headers.get("Sforce-Query-Options", ""))
        batch = max(200, min(int(options.group(1)), 2000)) if options else None
        return jsonify(org.query(text, include_deleted=include_deleted, version=version, batch_size=batch))

    def more(version: str, locator: str) -> Response:
        head, _, offset = locator.rpartition("-")
        if not head or not offset.isdigit():
            raise ApiError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        return jsonify(org.query_more(head, int(offset), version))

    @app.get(f"{data}/query")
    @app.get(f"{data}/query/")
    def query(version: str) -> Response:
        return run_query(version, include_deleted=False)

    @app.get(f"{data}/queryAll")
    @app.get(f"{data}/queryAll/")
    def query_all(version: str) -> Response:
        return run_query(version, include_deleted=True)

    @app.get(f"{data}/query/<locator>")
    @app.get(f"{data}/queryAll/<locator>")
    def query_more(version: str, locator: str) -> Response:
        return more(version, locator)

    # -- sObject Collections --------------------------------------------------------------------------------
    @app.route(f"{data}/composite/sobjects", methods=["POST", "PATCH", "DELETE"])
    @app.route(f"{data}/composite/sobjects/", methods=["POST", "PATCH", "DELETE"])
    def collections(version: str) -> Response:
        if request.method == "DELETE":
            ids = [i for i in request.args.get("ids", "").split(",") if i]
            all_or_none = request.args.get("allOrNone", "false").lower() == "true"
            check_collection_size(len(ids))
            return jsonify(run_collection(org, ids, all_or_none, lambda i: delete_one(org, i)))
        body = _json_body()
        records, all_or_none = collection_body(body)
        if request.method == "POST":
            return jsonify(run_collection(org, records, all_or_none, lambda r: create_one(org, r)))
        return jsonify(run_collection(org, records, all_or_none, lambda r: update_one(org, r)))

    @app.get(f"{data}/composite/sobjects/<name>")
    def collections_get(version: str, name: str) -> Response:
        obj = org.sobject(name)
        ids = [i for i in request.args.get("ids", "").split(",") if i]
        if len(ids) > 2000:
            raise ApiError(400, "EXCEEDED_ID_LIMIT", "record limit reached. cannot submit more than 2000 records")
        paths = _field_paths(org, obj.name)
        out = []
        for record_id in ids:
            found = org.get(obj.name, record_id)
            out.append(None if found is None else org.record_json(obj, found, paths, version))
        return jsonify(out)

    @app.patch(f"{data}/composite/sobjects/<name>/<field_name>")
    def collections_upsert(version: str, name: str, field_name: str) -> Response:
        obj = org.sobject(name)
        f = external_id_field(org, obj.name, field_name)
        records, all_or_none = collection_body(_json_body())

        def upsert(item: Any) -> dict[str, Any]:
            if not isinstance(item, dict):
                raise ApiError(400, "JSON_PARSER_ERROR", "Expected a JSON object")
            kind = (item.get("attributes") or {}).get("type")
            if kind is not None and kind.lower() != obj.name.lower():
                raise ApiError(400, "INVALID_TYPE", f"sObject type mismatch: expected {obj.name}, got {kind}")
            value = item.get(f.name)
            if value is None:
                raise ApiError(400, "MISSING_ARGUMENT", f"{f.name} not specified", [f.name])
            return upsert_one(org, obj.name, f, str(value), {k: v for k, v in item.items() if k != f.name})

        return jsonify(run_collection(org, records, all_or_none, upsert))

    return app


def _window() -> tuple[datetime, datetime]:
    try:
        start = datetime.fromisoformat(request.args["start"].replace("Z", "+00:00")).astimezone(UTC)
        end = datetime.fromisoformat(request.args["end"].replace("Z", "+00:00")).astimezone(UTC)
    except (KeyError, ValueError):
        raise ApiError(400, "INVALID_REPLICATION_DATE", "start and end must be valid dateTime values") from None
    return start, end


def _field_paths(org: SalesforceOrg, obj: str) -> list | None:
    """`?fields=a,b` on a record GET: validated through the SOQL resolver so errors match a query's."""
    wanted = request.args.get("fields")
    if not wanted:
        return None
    from sandbox.salesforce import soql

    try:
        return soql.parse(f"SELECT {wanted} FROM {obj}", org.schema).fields
    except soql.SoqlError as error:
        raise ApiError(400, error.code, error.message) from error
