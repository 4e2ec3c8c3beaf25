"""The sandbox org: records, sessions, the daily API budget and query cursors, with Salesforce's rules for writes.

Everything HTTP-independent lives here so the Flask layer (app.py) only translates requests and errors, and tests
or the seeder can drive the org directly. All public methods take one re-entrant lock: the sandbox is served by a
threaded WSGI server and a sync may page through a cursor while a write-back job updates records.
"""

from __future__ import annotations

import itertools
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sandbox.faults import Faults
from sandbox.salesforce import soql
from sandbox.salesforce.schema import (
    CLOSED_CASE_STATUSES,
    CLOSED_TASK_STATUSES,
    NUMERIC_TYPES,
    FieldDef,
    ObjectDef,
    build_schema,
)

API_VERSION = "59.0"
DEFAULT_BATCH_SIZE = 2000  # records per query page unless Sforce-Query-Options asks for fewer
MAX_COLLECTION = 200  # sObject Collections: records per create/update/upsert/delete call
MAX_OPEN_CURSORS = 10  # open query cursors per user; the oldest is dropped beyond that
_SUFFIX_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_ID_RE = re.compile(r"^[a-zA-Z0-9]{15}(?:[A-Z0-5]{3})?$")
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class ApiError(Exception):
    """A refusal in Salesforce's shape: HTTP status, errorCode, message and the fields at fault."""

    def __init__(self, status: int, code: str, message: str, fields: Iterable[str] = ()) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.fields = list(fields)

    def body(self) -> list[dict[str, Any]]:
        """The REST error body: a JSON list of {message, errorCode[, fields]}."""
        error: dict[str, Any] = {"message": self.message, "errorCode": self.code}
        if self.fields:
            error["fields"] = self.fields
        return [error]

    def save_error(self) -> dict[str, Any]:
        """The per-record error inside a SaveResult of sObject Collections."""
        return {"statusCode": self.code, "message": self.message, "fields": self.fields}


def id_suffix(id15: str) -> str:
    """The 3-character case-safe suffix that turns a 15-character id into its 18-character form."""
    suffix = ""
    for chunk in range(3):
        bits = sum(1 << i for i, c in enumerate(id15[chunk * 5 : chunk * 5 + 5]) if "A" <= c <= "Z")
        suffix += _SUFFIX_ALPHABET[bits]
    return suffix


def to_id18(value: str) -> str:
    return value if len(value) == 18 else value + id_suffix(value)


def make_id(prefix: str, number: int) -> str:
    """An 18-character id: key prefix, pod '5g', a reserved '0', a base-62 counter, and the case-safe suffix."""
    digits = ""
    while True:
        number, rem = divmod(number, 62)
        digits = _BASE62[rem] + digits
        if number == 0:
            break
    return to_id18(f"{prefix}5g0{digits.rjust(9, '0')}")


def format_datetime(value: datetime) -> str:
    """Salesforce's REST datetime format: milliseconds and a +0000 zone."""
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}+0000"


def json_value(f: FieldDef, value: Any) -> Any:
    if value is None:
        return None
    if f.type == "datetime":
        return format_datetime(value)
    if f.type == "date":
        return value.isoformat()
    if f.type == "int":
        return int(value)
    if f.type in NUMERIC_TYPES:
        return float(value)
    return value


@dataclass
class Cursor:
    """A query's result, snapshotted when the query ran, so paging never shows a record twice or skips one.

    Rows are the record dicts themselves: the org never mutates a stored record, it replaces it, so holding
    references is a snapshot without copying, and rows are rendered to JSON only when their page is fetched.
    """

    sobject: ObjectDef
    paths: list[soql.FieldPath]
    rows: list[dict[str, Any]]
    batch_size: int
    endpoint: str  # query or queryAll


class SalesforceOrg:
    """One in-memory org. Credentials, budget and page size are configurable; `faults` is shared with the app."""

    def __init__(
        self,
        *,
        username: str = "cse-integration@sandbox.example",
        password: str = "sandbox-password",
        security_token: str = "SANDBOXTOKEN",
        consumer_key: str | None = None,
        jwt_public_key: str | bytes | None = None,
        api_limit: int = 100_000,
        batch_size: int = DEFAULT_BATCH_SIZE,
        max_open_cursors: int = MAX_OPEN_CURSORS,
        cse_fields: bool = True,
        clock_start: datetime | None = None,
        faults: Faults | None = None,
        org_id: str = "00D5g000004SbxAEAS",
    ) -> None:
        self.username = username
        self.password = password
        self.security_token = security_token
        self.consumer_key = consumer_key
        self.jwt_public_key = jwt_public_key
        self.api_limit = api_limit
        self.api_used = 0
        self.batch_size = batch_size
        self.max_open_cursors = max_open_cursors
        self.org_id = org_id
        self.faults = faults or Faults()
        self.schema: dict[str, ObjectDef] = build_schema(cse_fields)
        self.records: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in self.schema}
        self.sessions: dict[str, str] = {}  # session id -> user id
        self.logins = 0
        self.request_log: list[tuple[str, str]] = []
        self._cursors: OrderedDict[str, Cursor] = OrderedDict()
        self._unique: dict[tuple[str, str], dict[Any, str]] = {}  # (object, unique field) -> value -> record id
        self._counters: dict[str, itertools.count] = {}
        self._case_numbers = itertools.count(1001)
        self._lock = threading.RLock()
        self.set_clock(clock_start)
        self.api_user_id = self.new_id("User")  # the integration user we log in as; it created itself
        self.insert(
            "User",
            {
                "Id": self.api_user_id,
                "Username": username,
                "FirstName": "CSE",
                "LastName": "Integration",
                "Email": username,
                "IsActive": True,
            },
            raw=True,
        )

    @property
    def lock(self) -> threading.RLock:
        """Held by multi-record operations (collections) that must be atomic against other requests."""
        return self._lock

    def snapshot(self) -> tuple[dict[str, dict[str, dict[str, Any]]], dict[tuple[str, str], dict[Any, str]]]:
        """Cheap copy of every table (records are never mutated in place), for allOrNone rollback."""
        with self._lock:
            return {n: dict(r) for n, r in self.records.items()}, {k: dict(v) for k, v in self._unique.items()}

    def restore(self, snap: tuple[dict[str, dict[str, dict[str, Any]]], dict[tuple[str, str], dict[Any, str]]]) -> None:
        with self._lock:
            records, unique = snap
            self.records.clear()
            self.records.update(records)
            self._unique.clear()
            self._unique.update(unique)

    # -- clock ----------------------------------------------------------------------------------------------
    def set_clock(self, start: datetime | None) -> None:
        """Run the org clock from `start` (book time) forward at real speed; None means the real time.

        A demo book lives in its own time (its as_of may be in the future); seeded stamps must stay before
        anything a test writes later, or an incremental pull would miss the edit.
        """
        if start is None:
            start = datetime.now(UTC)
        self._clock_start = start.astimezone(UTC) if start.tzinfo else start.replace(tzinfo=UTC)
        self._clock_t0 = time.monotonic()
        self._last_stamp = self._clock_start - timedelta(milliseconds=1)

    def now(self) -> datetime:
        """Strictly increasing stamps at millisecond precision, so every write sorts after the previous one."""
        with self._lock:
            stamp = self._clock_start + timedelta(seconds=time.monotonic() - self._clock_t0)
            stamp = stamp.replace(microsecond=stamp.microsecond // 1000 * 1000)
            if stamp <= self._last_stamp:
                stamp = self._last_stamp + timedelta(milliseconds=1)
            self._last_stamp = stamp
            return stamp

    # -- ids, sessions, budget ------------------------------------------------------------------------------
    def new_id(self, obj: str) -> str:
        prefix = self.schema[obj].key_prefix
        counter = self._counters.setdefault(prefix, itertools.count(1))
        return make_id(prefix, next(counter))

    def object_for_id(self, record_id: str) -> str | None:
        prefix = record_id[:3]
        return next((o.name for o in self.schema.values() if o.key_prefix == prefix), None)

    def check_password(self, username: str, password_and_token: str) -> bool:
        return username == self.username and password_and_token in {
            self.password + (self.security_token or ""),
            self.password,  # a trusted IP range needs no token
        }

    def open_session(self) -> str:
        with self._lock:
            sid = f"{self.org_id[:15]}!AQ{secrets.token_urlsafe(72)}"
            self.sessions[sid] = self.api_user_id
            self.logins += 1
            return sid

    def session_user(self, sid: str | None) -> str | None:
        with self._lock:
            return self.sessions.get(sid or "")

    def revoke_session(self, sid: str | None) -> None:
        with self._lock:
            self.sessions.pop(sid or "", None)

    def expire_all_sessions(self) -> None:
        """What a session timeout or an admin's 'revoke' does: every token now answers INVALID_SESSION_ID."""
        with self._lock:
            self.sessions.clear()

    def charge(self) -> None:
        """Count one API request against the daily budget; refuse it once the budget is used up."""
        with self._lock:
            if self.api_used >= self.api_limit:
                raise ApiError(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
            self.api_used += 1

    def limit_info(self) -> str:
        return f"api-usage={self.api_used}/{self.api_limit}"

    # -- reads ----------------------------------------------------------------------------------------------
    def sobject(self, name: str) -> ObjectDef:
        obj = self.schema.get(name) or next((o for o in self.schema.values() if o.name.lower() == name.lower()), None)
        if obj is None:
            raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
        return obj

    def get(self, obj: str, record_id: str, *, include_deleted: bool = False) -> dict[str, Any] | None:
        with self._lock:
            if not _ID_RE.match(record_id or ""):
                return None
            record = self.records[obj].get(to_id18(record_id))
            if record is None or (record["IsDeleted"] and not include_deleted):
                return None
            return record

    def find(self, obj: str, field_name: str, value: Any) -> list[dict[str, Any]]:
        """Live records whose field equals `value` (an index lookup for unique fields such as external ids)."""
        with self._lock:
            index = self._unique.get((obj, field_name))
            if index is not None:
                found = index.get(value)
                return [self.records[obj][found]] if found else []
            return [r for r in self.records[obj].values() if not r["IsDeleted"] and r.get(field_name) == value]

    def live(self, obj: str) -> list[dict[str, Any]]:
        with self._lock:
            return [r for r in self.records[obj].values() if not r["IsDeleted"]]

    def _lookup(self, record_id: Any) -> dict[str, Any] | None:
        if not isinstance(record_id, str):
            return None
        obj = self.object_for_id(record_id)
        return self.records[obj].get(to_id18(record_id)) if obj else None

    def _get_path(self, record: dict[str, Any], path: soql.FieldPath) -> Any:
        if path.relationship is None:
            return record.get(path.target.name)
        parent = self._lookup(record.get(path.relationship.name))
        return None if parent is None else parent.get(path.target.name)

    def record_json(
        self, obj: ObjectDef, record: dict[str, Any], paths: list[soql.FieldPath] | None, version: str
    ) -> dict[str, Any]:
        """A record as REST returns it: `attributes`, then the fields asked for (all fields when None)."""
        out: dict[str, Any] = {
            "attributes": {"type": obj.name, "url": f"/services/data/v{version}/sobjects/{obj.name}/{record['Id']}"}
        }
        if paths is None:
            for f in obj.fields.values():
                out[f.name] = json_value(f, record.get(f.name))
            return out
        for path in paths:
            if path.relationship is None:
                out[path.names[0]] = json_value(path.target, record.get(path.target.name))
                continue
            parent = self._lookup(record.get(path.relationship.name))
            if parent is None:
                out.setdefault(path.names[0], None)
                continue
            parent_type = self.object_for_id(parent["Id"]) or path.relationship.reference_to[0]
            nested = out.get(path.names[0]) or {
                "attributes": {
                    "type": parent_type,
                    "url": f"/services/data/v{version}/sobjects/{parent_type}/{parent['Id']}",
                }
            }
            nested[path.names[1]] = json_value(path.target, parent.get(path.target.name))
            out[path.names[0]] = nested
        return out

    # -- queries --------------------------------------------------------------------------------------------
    def query(self, text: str, *, include_deleted: bool, version: str, batch_size: int | None = None) -> dict:
        """Run SOQL and answer the first page; further pages wait in a cursor behind `nextRecordsUrl`."""
        with self._lock:
            try:
                query = soql.parse(text, self.schema)
            except soql.SoqlError as error:
                raise ApiError(400, error.code, error.message) from error
            rows = [
                r
                for r in self.records[query.sobject.name].values()
                if (include_deleted or not r["IsDeleted"]) and soql.matches(query.where, r, self._get_path)
            ]
            if query.order:
                soql.sort_records(rows, query.order, self._get_path)
            rows = rows[query.offset :]
            if query.limit is not None:
                rows = rows[: query.limit]
            if query.count_only:
                return {"totalSize": len(rows), "done": True, "records": []}
            size = min(batch_size or self.batch_size, self.batch_size)
            endpoint = "queryAll" if include_deleted else "query"
            return self._page(Cursor(query.sobject, query.fields, rows, size, endpoint), None, 0, version)

    def query_more(self, locator: str, offset: int, version: str) -> dict:
        with self._lock:
            cursor = self._cursors.get(locator)
            if cursor is None or offset > len(cursor.rows) or offset < 0:
                raise ApiError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
            self._cursors.move_to_end(locator)
            return self._page(cursor, locator, offset, version)

    def _page(self, cursor: Cursor, locator: str | None, offset: int, version: str) -> dict:
        end = offset + cursor.batch_size
        page: dict[str, Any] = {"totalSize": len(cursor.rows), "done": end >= len(cursor.rows)}
        if not page["done"]:
            if locator is None:
                locator = make_id("01g", secrets.randbelow(62**9))
                self._cursors[locator] = cursor
                while len(self._cursors) > self.max_open_cursors:
                    self._cursors.popitem(last=False)
            page["nextRecordsUrl"] = f"/services/data/v{version}/{cursor.endpoint}/{locator}-{end}"
        elif locator is not None:
            self._cursors.pop(locator, None)
        page["records"] = [self.record_json(cursor.sobject, r, cursor.paths, version) for r in cursor.rows[offset:end]]
        return page

    # -- writes ---------------------------------------------------------------------------------------------
    def insert(self, obj: str, values: dict[str, Any], *, raw: bool = False, user_id: str | None = None) -> str:
        """Create a record. `raw=True` (the seeder) may set audit fields and read-only fields directly."""
        with self._lock:
            record = self.prepare_create(obj, values, raw=raw, user_id=user_id)
            self.commit(obj, record)
            return record["Id"]

    def prepare_create(
        self, obj: str, values: dict[str, Any], *, raw: bool = False, user_id: str | None = None
    ) -> dict[str, Any]:
        """Validate a create and build the full record without storing it (collections commit all or none)."""
        with self._lock:
            sobject = self.schema[obj]
            if not raw and "Id" in {k for k in values if k != "attributes"}:
                raise ApiError(400, "INVALID_FIELD", "cannot specify Id in an insert call", ["Id"])
            given_id = values.get("Id") if raw else None
            clean = self._coerce(sobject, {k: v for k, v in values.items() if k != "Id"}, creating=True, raw=raw)
            now = self.now()
            user = user_id or self.api_user_id
            record: dict[str, Any] = {f.name: f.default if f.defaulted else None for f in sobject.fields.values()}
            record.update(
                {
                    "Id": given_id or self.new_id(obj),
                    "IsDeleted": False,
                    "CreatedDate": now,
                    "LastModifiedDate": now,
                    "SystemModstamp": now,
                    "CreatedById": user,
                    "LastModifiedById": user,
                }
            )
            if "OwnerId" in sobject.fields:
                record["OwnerId"] = user
            record.update(clean)
            missing = [f.name for f in sobject.fields.values() if f.required and record.get(f.name) is None]
            if missing:
                raise ApiError(
                    400, "REQUIRED_FIELD_MISSING", f"Required fields are missing: [{', '.join(missing)}]", missing
                )
            self._check_unique(sobject, record)
            self._derive(sobject, record, None, raw=raw)
            return record

    def prepare_update(self, obj: str, record_id: str, values: dict[str, Any], *, raw: bool = False) -> dict[str, Any]:
        with self._lock:
            sobject = self.schema[obj]
            current = self._existing(obj, record_id)
            clean = self._coerce(
                sobject, {k: v for k, v in values.items() if k not in {"Id", "id"}}, creating=False, raw=raw
            )
            record = {**current, **clean}
            missing = [f.name for f in sobject.fields.values() if f.required and record.get(f.name) is None]
            if missing:
                raise ApiError(
                    400, "REQUIRED_FIELD_MISSING", f"Required fields are missing: [{', '.join(missing)}]", missing
                )
            self._check_unique(sobject, record)
            now = self.now()
            record["LastModifiedDate"] = record["SystemModstamp"] = now
            record["LastModifiedById"] = self.api_user_id
            self._derive(sobject, record, current, raw=raw)
            return record

    def update(self, obj: str, record_id: str, values: dict[str, Any], *, raw: bool = False) -> None:
        with self._lock:
            self.commit(obj, self.prepare_update(obj, record_id, values, raw=raw))

    def commit(self, obj: str, record: dict[str, Any]) -> None:
        """Store a new version of a record (never mutate the old one: open cursors still hold it)."""
        with self._lock:
            old = self.records[obj].get(record["Id"])
            for f in self.schema[obj].fields.values():
                if not f.unique or f.type == "id":
                    continue
                index = self._unique.setdefault((obj, f.name), {})
                if old is not None and not old["IsDeleted"] and old.get(f.name) is not None:
                    index.pop(old[f.name], None)
                if not record["IsDeleted"] and record.get(f.name) is not None:
                    index[record[f.name]] = record["Id"]
            self.records[obj][record["Id"]] = record

    def delete(self, obj: str, record_id: str) -> None:
        """Move a record (and, as Salesforce cascades, its children) to the recycle bin: queryAll still sees it."""
        with self._lock:
            record = self._existing(obj, record_id)
            stamp = self.now()
            self._soft_delete(obj, record, stamp)
            if obj == "Account":
                for child in ("Contact", "Opportunity", "Case"):
                    for row in list(self.records[child].values()):
                        if row.get("AccountId") == record["Id"] and not row["IsDeleted"]:
                            self._soft_delete(child, row, stamp)
            for task in list(self.records["Task"].values()):
                if record["Id"] in {task.get("WhatId"), task.get("WhoId")} and not task["IsDeleted"]:
                    self._soft_delete("Task", task, stamp)

    def _soft_delete(self, obj: str, record: dict[str, Any], stamp: datetime) -> None:
        self.commit(obj, {**record, "IsDeleted": True, "LastModifiedDate": stamp, "SystemModstamp": stamp})

    def _existing(self, obj: str, record_id: str) -> dict[str, Any]:
        if not isinstance(record_id, str) or not _ID_RE.match(record_id):
            raise ApiError(400, "MALFORMED_ID", f"{obj} ID: id value of incorrect type: {record_id}", ["Id"])
        record = self.records[obj].get(to_id18(record_id))
        if record is None:
            if self.object_for_id(record_id) != obj:
                raise ApiError(400, "MALFORMED_ID", f"{obj} ID: id value of incorrect type: {record_id}", ["Id"])
            raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
        if record["IsDeleted"]:
            raise ApiError(404, "ENTITY_IS_DELETED", "entity is deleted", [])
        return record

    def _check_unique(self, sobject: ObjectDef, record: dict[str, Any]) -> None:
        for f in sobject.fields.values():
            value = record.get(f.name)
            if not f.unique or value is None or f.type == "id":
                continue
            other = self._unique.get((sobject.name, f.name), {}).get(value)
            if other is not None and other != record["Id"]:
                raise ApiError(
                    400,
                    "DUPLICATE_VALUE",
                    f"duplicate value found: {f.name} duplicates value on record with id: {other}",
                    [f.name],
                )

    def _coerce(self, sobject: ObjectDef, values: dict[str, Any], *, creating: bool, raw: bool) -> dict[str, Any]:
        """Check every field of a request body and convert JSON values to the org's Python values."""
        clean: dict[str, Any] = {}
        for name, value in values.items():
            if name == "attributes":
                continue
            f = sobject.field(name)
            if f is None:
                raise ApiError(400, "INVALID_FIELD", f"No such column '{name}' on sobject of type {sobject.name}")
            writable = f.createable if creating else f.updateable
            if not raw and (not writable or f.calculated):
                raise ApiError(
                    400,
                    "INVALID_FIELD_FOR_INSERT_UPDATE",
                    f"Unable to create/update fields: {f.name}. Please check the security settings of this field and "
                    "verify that it is read/write for your profile or permission set.",
                    [f.name],
                )
            clean[f.name] = self._value(sobject, f, value, raw=raw)
        return clean

    def _value(self, sobject: ObjectDef, f: FieldDef, value: Any, *, raw: bool) -> Any:
        label = f.label or f.name
        if value is None:
            return None
        if raw and isinstance(value, datetime | date) and f.type in {"date", "datetime"}:
            if f.type == "date":
                return value.date() if isinstance(value, datetime) else value
            return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
        kind = f.type
        if kind == "boolean":
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in {"true", "false"}:
                return value.lower() == "true"
            raise self._parse_error("boolean", value)
        if kind in NUMERIC_TYPES:
            if isinstance(value, bool):
                raise self._parse_error("double", value)
            try:
                number = float(value)
            except (TypeError, ValueError):
                raise self._parse_error("double", value) from None
            if kind == "int":
                if number != int(number):
                    raise self._parse_error("int", value)
                return int(number)
            return number
        if kind == "date":
            try:
                if len(str(value)) != 10:
                    raise ValueError(value)
                return date.fromisoformat(str(value))
            except ValueError:
                raise self._parse_error("date", value) from None
        if kind == "datetime":
            try:
                parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
            except ValueError:
                raise self._parse_error("datetime", value) from None
            return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
        if kind in {"reference", "id"}:
            return self._reference(f, value, label)
        if isinstance(value, dict | list):
            raise self._parse_error("String", value)
        text = str(value)
        if f.length and len(text) > f.length:
            raise ApiError(
                400, "STRING_TOO_LONG", f"{label}: data value too large: {text[:40]} (max length={f.length})", [f.name]
            )
        if kind == "email" and not _EMAIL_RE.match(text):
            raise ApiError(400, "INVALID_EMAIL_ADDRESS", f"{label}: invalid email address: {text}", [f.name])
        if kind == "picklist" and f.restricted and text not in f.picklist:
            raise ApiError(
                400,
                "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                f"{label}: bad value for restricted picklist field: {text}",
                [f.name],
            )
        return text

    def _reference(self, f: FieldDef, value: Any, label: str) -> str:
        if not isinstance(value, str) or not _ID_RE.match(value):
            raise ApiError(400, "MALFORMED_ID", f"{label}: id value of incorrect type: {value}", [f.name])
        target_type = self.object_for_id(value)
        if target_type not in f.reference_to:
            raise ApiError(400, "FIELD_INTEGRITY_EXCEPTION", f"{label}: id value of incorrect type: {value}", [f.name])
        target = self.records[target_type].get(to_id18(value))
        if target is None or target["IsDeleted"]:
            raise ApiError(400, "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [f.name])
        return target["Id"]

    @staticmethod
    def _parse_error(type_name: str, value: Any) -> ApiError:
        return ApiError(
            400,
            "JSON_PARSER_ERROR",
            f"Cannot deserialize instance of {type_name} from VALUE_STRING value {value} or request may be missing a "
            "required field",
        )

    def _derive(self, sobject: ObjectDef, record: dict[str, Any], before: dict[str, Any] | None, raw: bool) -> None:
        """Maintain calculated and system-set fields the way the org's standard logic and formulas would."""
        now = record["SystemModstamp"]
        if sobject.name in {"Contact", "User"}:
            record["Name"] = " ".join(p for p in (record.get("FirstName"), record.get("LastName")) if p)
        elif sobject.name == "Case":
            if before is None and record.get("CaseNumber") is None:
                record["CaseNumber"] = f"{next(self._case_numbers):08d}"
            closed = record.get("Status") in CLOSED_CASE_STATUSES
            if closed and record.get("ClosedDate") is None:
                record["ClosedDate"] = now
            if not closed and not raw:
                record["ClosedDate"] = None
            record["IsClosed"] = closed
            if closed and record.get("ClosedDate") and record.get("CreatedDate"):
                hours = (record["ClosedDate"] - record["CreatedDate"]).total_seconds() / 3600.0
                record["Resolution_Hours__c"] = round(hours, 1)
            else:
                record["Resolution_Hours__c"] = None
        elif sobject.name == "Opportunity":
            stage = record.get("StageName") or ""
            record["IsClosed"] = stage.startswith("Closed")
            record["IsWon"] = stage == "Closed Won"
        elif sobject.name == "Task":
            closed = record.get("Status") in CLOSED_TASK_STATUSES
            record["IsClosed"] = closed
            if closed and record.get("CompletedDateTime") is None:
                record["CompletedDateTime"] = now
            if not closed:
                record["CompletedDateTime"] = None
