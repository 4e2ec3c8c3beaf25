"""sObject Collections in the sandbox (`/composite/sobjects`): creating, updating, upserting by external id and
deleting up to 200 records a call, one SaveResult per record, with allOrNone rolling every change back and the
partial-failure fault failing just the records a test named."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sandbox.salesforce.ids import ApiError, to_id18
from sandbox.salesforce.org import MAX_COLLECTION, SalesforceOrg


def external_id_field(org: SalesforceOrg, obj: str, name: str) -> Any:
    f = org.schema[obj].field(name)
    if f is None or not (f.external_id or f.type == "id"):
        raise ApiError(404, "NOT_FOUND", f"Provided external ID field does not exist or is not accessible: {name}")
    return f


def match_external(org: SalesforceOrg, obj: str, f: Any, value: str) -> list[dict[str, Any]]:
    if f.type == "id":
        found = org.get(obj, value)
        return [found] if found else []
    return org.find(obj, f.name, value)


def upsert_one(org: SalesforceOrg, obj: str, f: Any, value: str, body: dict[str, Any]) -> dict[str, Any]:
    """Create or update by external id; the result carries `created` as an UpsertResult does."""
    if "Id" in body or "id" in body:
        raise ApiError(400, "INVALID_FIELD", "Id is not allowed in an upsert request body", ["Id"])
    if f.name in body and str(body[f.name]) != value:
        raise ApiError(400, "INVALID_FIELD", f"{f.name} in the body does not match the URL", [f.name])
    _maybe_fail(org, value)
    matches = match_external(org, obj, f, value)
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


def collection_body(body: Any) -> tuple[list[Any], bool]:
    if not isinstance(body, dict) or not isinstance(body.get("records"), list):
        raise ApiError(400, "JSON_PARSER_ERROR", "The request body must be an object with a records list")
    check_collection_size(len(body["records"]))
    return body["records"], bool(body.get("allOrNone", False))


def check_collection_size(count: int) -> None:
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


def create_one(org: SalesforceOrg, item: Any) -> dict[str, Any]:
    obj = _record_type(org, item)
    for f in org.schema[obj].fields.values():
        if f.external_id and item.get(f.name) is not None:
            _maybe_fail(org, str(item[f.name]))
    return {"id": org.insert(obj, item), "success": True, "errors": []}


def update_one(org: SalesforceOrg, item: Any) -> dict[str, Any]:
    obj = _record_type(org, item)
    record_id = item.get("id") or item.get("Id")
    if not record_id:
        raise ApiError(400, "MISSING_ARGUMENT", "Id not specified in an update call", ["Id"])
    _maybe_fail(org, record_id)
    org.update(obj, record_id, {k: v for k, v in item.items() if k not in {"id", "Id"}})
    return {"id": to_id18(record_id), "success": True, "errors": []}


def delete_one(org: SalesforceOrg, record_id: str) -> dict[str, Any]:
    obj = org.object_for_id(record_id)
    if obj is None:
        raise ApiError(400, "MALFORMED_ID", f"malformed id {record_id}", [])
    _maybe_fail(org, record_id)
    org.delete(obj, record_id)
    return {"id": to_id18(record_id), "success": True, "errors": []}


def run_collection(
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
