"""Flask app speaking Salesforce's REST (and SOAP login) protocol over the in-memory org.

Only translation lives here: routes, headers, the SOAP envelope, the OAuth token answer, fault injection and the
JSON error bodies. The rules (validation, cursors, budget) are the org's (org.py). Paths and shapes follow the
REST API developer guide: `/services/data/vXX.X/query?q=`, `/queryAll`, `nextRecordsUrl` cursors,
`/sobjects[/<type>[/describe|/<id>|/<extIdField>/<value>]]`, `/composite/sobjects` (at most 200 records),
`Sforce-Limit-Info: api-usage=n/limit` on every REST response.
"""

from __future__ import annotations

import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, cast
from xml.sax.saxutils import escape

import jwt
from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from sandbox.salesforce.ids import ApiError, format_datetime, to_id18
from sandbox.salesforce.org import MAX_COLLECTION, SalesforceOrg

SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"
LOGIN_FAULT = "Invalid username, password, security token; or user locked out."
_BATCH_SIZE = re.compile(r"batchSize\s*=\s*(\d+)")


def _soap_fault(code: str, message: str) -> Response:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<soapenv:Envelope xmlns:soapenv="{SOAP_NS}" xmlns:sf="urn:fault.partner.soap.sforce.com" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><soapenv:Fault>'
        f"<faultcode>sf:{code}</faultcode><faultstring>{code}: {escape(message)}</faultstring>"
        '<detail><sf:LoginFault xsi:type="sf:LoginFault">'
        f"<sf:exceptionCode>{code}</sf:exceptionCode><sf:exceptionMessage>{escape(message)}</sf:exceptionMessage>"
        "</sf:LoginFault></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>"
    )
    return Response(body, status=500, content_type="text/xml; charset=utf-8")


def _login_response(org: SalesforceOrg, sid: str, version: str, host: str) -> Response:
    user = org.records["User"][org.api_user_id]
    org15 = org.org_id[:15]
    info = {
        "accessibilityMode": "false",
        "currencySymbol": "$",
        "orgAttachmentFileSizeLimit": "5242880",
        "orgDefaultCurrencyIsoCode": "USD",
        "orgDisallowHtmlAttachments": "false",
        "orgHasPersonAccounts": "false",
        "organizationId": org.org_id,
        "organizationMultiCurrency": "false",
        "organizationName": "CSE Sandbox",
        "profileId": "00e5g000000AbCdAAK",
        "roleId": "",
        "sessionSecondsValid": "7200",
        "userDefaultCurrencyIsoCode": "",
        "userEmail": user["Email"],
        "userFullName": user["Name"],
        "userId": user["Id"],
        "userLanguage": "en_US",
        "userLocale": "en_US",
        "userName": user["Username"],
        "userTimeZone": "America/Los_Angeles",
        "userType": "Standard",
        "userUiSkin": "Theme3",
    }
    nil = ' xsi:nil="true"'
    user_info = "".join(f"<{k}{'' if v else nil}>{escape(v)}</{k}>" for k, v in info.items())
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<soapenv:Envelope xmlns:soapenv="{SOAP_NS}" xmlns="urn:partner.soap.sforce.com" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><loginResponse><result>'
        f"<metadataServerUrl>https://{escape(host)}/services/Soap/m/{version}/{org15}</metadataServerUrl>"
        "<passwordExpired>false</passwordExpired><sandbox>true</sandbox>"
        f"<serverUrl>https://{escape(host)}/services/Soap/u/{version}/{org15}</serverUrl>"
        f"<sessionId>{escape(sid)}</sessionId><userId>{user['Id']}</userId>"
        f"<userInfo>{user_info}</userInfo>"
        "</result></loginResponse></soapenv:Body></soapenv:Envelope>"
    )
    return Response(body, status=200, content_type="text/xml; charset=utf-8")


def _xml_values(payload: bytes) -> dict[str, str]:
    """Local name -> text of every element (the SDK's login envelopes use varying namespace prefixes)."""
    values = {}
    for element in ET.fromstring(payload).iter():
        values[element.tag.rsplit("}", 1)[-1]] = (element.text or "").strip()
    return values


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

    # -- authentication ------------------------------------------------------------------------------------
    @app.post("/services/Soap/u/<version>")
    def soap_login(version: str) -> Response:
        if org.faults.latency_seconds:
            time.sleep(org.faults.latency_seconds)
        try:
            values = _xml_values(request.get_data())
        except ET.ParseError:
            return _soap_fault("INVALID_LOGIN", LOGIN_FAULT)
        if not org.check_password(values.get("username", ""), values.get("password", "")):
            return _soap_fault("INVALID_LOGIN", LOGIN_FAULT)
        return _login_response(org, org.open_session(), version, request.host)

    @app.post("/services/oauth2/token")
    def oauth_token() -> tuple[Response, int]:
        """OAuth 2.0 JWT bearer flow (and the username-password flow) for a connected app."""
        grant = request.form.get("grant_type", "")
        if grant == "urn:ietf:params:oauth:grant-type:jwt-bearer":
            try:
                claims = _jwt_claims(org, request.form.get("assertion", ""))
            except jwt.PyJWTError:
                return jsonify({"error": "invalid_grant", "error_description": "invalid assertion"}), 400
            if org.consumer_key and claims.get("iss") != org.consumer_key:
                return jsonify({"error": "invalid_client_id", "error_description": "client identifier invalid"}), 400
            if claims.get("sub") != org.username:
                return jsonify(
                    {"error": "invalid_grant", "error_description": "user hasn't approved this consumer"}
                ), 400
        elif grant == "password":
            if org.consumer_key and request.form.get("client_id") != org.consumer_key:
                return jsonify({"error": "invalid_client_id", "error_description": "client identifier invalid"}), 400
            if not org.check_password(request.form.get("username", ""), request.form.get("password", "")):
                return jsonify({"error": "invalid_grant", "error_description": "authentication failure"}), 400
        else:
            return jsonify({"error": "unsupported_grant_type", "error_description": "grant type not supported"}), 400
        sid = org.open_session()
        return jsonify(
            {
                "access_token": sid,
                "scope": "api",
                "instance_url": f"https://{request.host}",
                "id": f"https://login.salesforce.com/id/{org.org_id}/{org.api_user_id}",
                "token_type": "Bearer",
                "issued_at": str(int(time.time() * 1000)),
            }
        ), 200

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
        f = _external_id_field(org, obj.name, field_name)
        if request.method == "PATCH":
            body = _json_body()
            if not isinstance(body, dict):
                raise ApiError(400, "JSON_PARSER_ERROR", "Expected a JSON object")
            with org.lock:
                result = _upsert_one(org, obj.name, f, value, body)
            return jsonify(result), 201 if result["created"] else 200
        matches = _match_external(org, obj.name, f, value)
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
            _check_collection_size(len(ids))
            return jsonify(_run_collection(org, ids, all_or_none, lambda i: _delete_one(org, i)))
        body = _json_body()
        records, all_or_none = _collection_body(body)
        if request.method == "POST":
            return jsonify(_run_collection(org, records, all_or_none, lambda r: _create_one(org, r)))
        return jsonify(_run_collection(org, records, all_or_none, lambda r: _update_one(org, r)))

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
        f = _external_id_field(org, obj.name, field_name)
        records, all_or_none = _collection_body(_json_body())

        def upsert(item: Any) -> dict[str, Any]:
            if not isinstance(item, dict):
                raise ApiError(400, "JSON_PARSER_ERROR", "Expected a JSON object")
            kind = (item.get("attributes") or {}).get("type")
            if kind is not None and kind.lower() != obj.name.lower():
                raise ApiError(400, "INVALID_TYPE", f"sObject type mismatch: expected {obj.name}, got {kind}")
            value = item.get(f.name)
            if value is None:
                raise ApiError(400, "MISSING_ARGUMENT", f"{f.name} not specified", [f.name])
            return _upsert_one(org, obj.name, f, str(value), {k: v for k, v in item.items() if k != f.name})

        return jsonify(_run_collection(org, records, all_or_none, upsert))

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


def _external_id_field(org: SalesforceOrg, obj: str, name: str) -> Any:
    f = org.schema[obj].field(name)
    if f is None or not (f.external_id or f.type == "id"):
        raise ApiError(404, "NOT_FOUND", f"Provided external ID field does not exist or is not accessible: {name}")
    return f


def _match_external(org: SalesforceOrg, obj: str, f: Any, value: str) -> list[dict[str, Any]]:
    if f.type == "id":
        found = org.get(obj, value)
        return [found] if found else []
    return org.find(obj, f.name, value)


def _upsert_one(org: SalesforceOrg, obj: str, f: Any, value: str, body: dict[str, Any]) -> dict[str, Any]:
    """Create or update by external id; the result carries `created` as an UpsertResult does."""
    if "Id" in body or "id" in body:
        raise ApiError(400, "INVALID_FIELD", "Id is not allowed in an upsert request body", ["Id"])
    if f.name in body and str(body[f.name]) != value:
        raise ApiError(400, "INVALID_FIELD", f"{f.name} in the body does not match the URL", [f.name])
    _maybe_fail(org, value)
    matches = _match_external(org, obj, f, value)
    if len(matches) > 1:
        raise ApiError(300, "DUPLICATE_EXTERNAL_ID", f"The external ID value {value} matches several records", [f.name])
    if matches:
        _maybe_fail(org, matches[0]["Id"])
        org.update(obj, matches[0]["Id"], body)
        return {"id": matches[0]["Id"], "success": True, "errors": [], "created": False}
    if f.type == "id":
        raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
    record_id = org.insert(obj, {**body, f.name: value})
    return {"id": record_id, "success": True, "errors": [], "created": True}


def _maybe_fail(org: SalesforceOrg, key: Any) -> None:
    """Partial-failure fault: a batch input a test named (by id or external id) fails alone, as a locked row does."""
    named = org.faults.partial_failure_ids
    if not named or not isinstance(key, str):
        return
    candidates = {key}
    if len(key) in {15, 18} and key.isalnum():
        candidates |= {to_id18(key), key[:15]}
    if candidates & named:
        raise ApiError(
            400, "UNABLE_TO_LOCK_ROW", f"unable to obtain exclusive access to this record or 1 records: {key}"
        )


def _collection_body(body: Any) -> tuple[list[Any], bool]:
    if not isinstance(body, dict) or not isinstance(body.get("records"), list):
        raise ApiError(400, "JSON_PARSER_ERROR", "The request body must be an object with a records list")
    _check_collection_size(len(body["records"]))
    return body["records"], bool(body.get("allOrNone", False))


def _check_collection_size(count: int) -> None:
    if count > MAX_COLLECTION:
        raise ApiError(
            400,
            "EXCEEDED_ID_LIMIT",
            f"record limit reached. cannot submit more than {MAX_COLLECTION} records into this call",
        )


def _record_type(org: SalesforceOrg, item: Any) -> str:
    if not isinstance(item, dict):
        raise ApiError(400, "JSON_PARSER_ERROR", "Expected a JSON object")
    kind = (item.get("attributes") or {}).get("type")
    if not kind:
        raise ApiError(400, "INVALID_TYPE", "Must send a concrete entity type.")
    try:
        return org.sobject(kind).name
    except ApiError:
        raise ApiError(400, "INVALID_TYPE", f"sObject type '{kind}' is not supported.") from None


def _create_one(org: SalesforceOrg, item: Any) -> dict[str, Any]:
    obj = _record_type(org, item)
    for f in org.schema[obj].fields.values():
        if f.external_id and item.get(f.name) is not None:
            _maybe_fail(org, str(item[f.name]))
    return {"id": org.insert(obj, item), "success": True, "errors": []}


def _update_one(org: SalesforceOrg, item: Any) -> dict[str, Any]:
    obj = _record_type(org, item)
    record_id = item.get("id") or item.get("Id")
    if not record_id:
        raise ApiError(400, "MISSING_ARGUMENT", "Id not specified in an update call", ["Id"])
    _maybe_fail(org, record_id)
    org.update(obj, record_id, {k: v for k, v in item.items() if k not in {"id", "Id"}})
    return {"id": to_id18(record_id), "success": True, "errors": []}


def _delete_one(org: SalesforceOrg, record_id: str) -> dict[str, Any]:
    obj = org.object_for_id(record_id)
    if obj is None:
        raise ApiError(400, "MALFORMED_ID", f"malformed id {record_id}", [])
    _maybe_fail(org, record_id)
    org.delete(obj, record_id)
    return {"id": to_id18(record_id), "success": True, "errors": []}


def _run_collection(
    org: SalesforceOrg, items: list[Any], all_or_none: bool, apply: Callable[[Any], dict[str, Any]]
) -> list[dict[str, Any]]:
    """Apply each item in order, one SaveResult per item; with allOrNone, any failure rolls every change back."""
    with org.lock:
        before = org.snapshot() if all_or_none else None
        results: list[dict[str, Any]] = []
        for item in items:
            try:
                results.append(apply(item))
            except ApiError as error:
                failed: dict[str, Any] = {"success": False, "errors": [error.save_error()]}
                if isinstance(item, dict) and (item.get("id") or item.get("Id")):
                    failed = {"id": item.get("id") or item.get("Id"), **failed}
                elif isinstance(item, str):
                    failed = {"id": item, **failed}
                results.append(failed)
        if all_or_none and not all(r["success"] for r in results):
            assert before is not None
            org.restore(before)
            rolled_back = {
                "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                "message": "Record rolled back because not all records were valid and the request was using AllOrNone "
                "header",
                "fields": [],
            }
            results = [
                r if not r["success"] else {"id": r["id"], "success": False, "errors": [rolled_back]} for r in results
            ]
        return results


def _jwt_claims(org: SalesforceOrg, assertion: str) -> dict[str, Any]:
    """Check the JWT bearer assertion: signature against the connected app's certificate when one is set."""
    if org.jwt_public_key:
        return jwt.decode(assertion, org.jwt_public_key, algorithms=["RS256"], options={"verify_aud": False})
    claims = jwt.decode(assertion, options={"verify_signature": False})
    if int(claims.get("exp", 0)) < time.time():
        raise jwt.ExpiredSignatureError("expired")
    return claims
