"""The sandbox org: records, sessions, the daily API budget and query cursors, with Salesforce's rules for writes.

Everything HTTP-independent lives here so the Flask layer (app.py) only translates requests and errors, and tests
or the seeder can drive the org directly. All public methods take one re-entrant lock: the sandbox is served by a
threaded WSGI server and a sync may page through a cursor while a write-back job updates records.
"""

from __future__ import annotations

import itertools
import secrets
import threading
import time
from collections import OrderedDict
from datetime import UTC, datetime, timedelta
from typing import Any

from sandbox.faults import Faults
from sandbox.salesforce.coerce import FieldValues
from sandbox.salesforce.ids import ID_RE, ApiError, make_id, to_id18
from sandbox.salesforce.queries import Cursor, Queries
from sandbox.salesforce.schema import CLOSED_CASE_STATUSES, CLOSED_TASK_STATUSES, build_schema
from sandbox.salesforce.sobjects import ObjectDef

API_VERSION = "59.0"
DEFAULT_BATCH_SIZE = 2000  # records per query page unless Sforce-Query-Options asks for fewer
MAX_COLLECTION = 200  # sObject Collections: records per create/update/upsert/delete call
MAX_OPEN_CURSORS = 10  # open query cursors per user; the oldest is dropped beyond that


class SalesforceOrg(FieldValues, Queries):
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
            if not ID_RE.match(record_id or ""):
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
        if not isinstance(record_id, str) or not ID_RE.match(record_id):
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
