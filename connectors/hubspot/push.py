"""Write-back to HubSpot: company score properties (batch update, 100 per call) and CSM tasks, each task once.

A task carries our dedupe key in the unique `cse_dedupe_key` property; before creating a batch we search for the
keys that already exist, so a retry after a lost response or a killed worker finds its task instead of making a
second one. HubSpot answers partial failures with 207 and an `errors` list naming the failed ids.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from hubspot.crm.companies import (
    BatchInputSimplePublicObjectBatchInput,
    BatchReadInputSimplePublicObjectId,
    SimplePublicObjectBatchInput,
    SimplePublicObjectId,
)
from hubspot.crm.objects.tasks import (
    AssociationSpec,
    BatchInputSimplePublicObjectBatchInputForCreate,
    Filter,
    FilterGroup,
    PublicAssociationsForObject,
    PublicObjectId,
    PublicObjectSearchRequest,
    SimplePublicObjectBatchInputForCreate,
)

from connectors.hubspot.client import HubSpotClient
from connectors.push import PushResult, PushRow

BATCH_LIMIT = 100
TASK_DEDUPE_PROPERTY = "cse_dedupe_key"
TASK_TO_COMPANY = 192  # HUBSPOT_DEFINED association type: task → company
PRIORITIES = {"urgent": "HIGH", "high": "HIGH", "normal": "MEDIUM", "low": "LOW"}
PERMANENT_CATEGORIES = {"OBJECT_NOT_FOUND", "VALIDATION_ERROR", "INVALID_PROPERTY", "PROPERTY_DOESNT_EXIST"}


def _text(value: Any) -> str:
    """HubSpot property values travel as strings; an empty string clears a property."""
    return "" if value is None else str(value)


def _chunks(rows: list[PushRow]) -> list[list[PushRow]]:
    """HubSpot takes at most 100 inputs per batch call (and 100 values per IN filter)."""
    return [rows[i : i + BATCH_LIMIT] for i in range(0, len(rows), BATCH_LIMIT)]


def _errors_by_key(response: Any, key: str) -> dict[str, tuple[str, bool]]:
    """Failed id (or trace id) → (message, retryable) from a 207 multi-status response."""
    failed: dict[str, tuple[str, bool]] = {}
    for error in getattr(response, "errors", None) or []:
        context = error.context or {}
        retryable = error.category not in PERMANENT_CATEGORIES
        for item in context.get(key) or []:
            failed[str(item)] = (f"{error.category}: {error.message}", retryable)
    return failed


class HubSpotPusher:
    vendor = "hubspot"
    batch_limits = {"update_fields": BATCH_LIMIT, "create_task": BATCH_LIMIT}
    idempotent = {"update_fields", "create_task"}  # safe to resend after a crash

    def __init__(self, client: HubSpotClient) -> None:
        self.client = client

    def update_fields(self, rows: list[PushRow]) -> list[PushResult]:
        return [result for chunk in _chunks(rows) for result in self._update_batch(chunk)]

    def _update_batch(self, rows: list[PushRow]) -> list[PushResult]:
        inputs = [
            SimplePublicObjectBatchInput(
                id=row.payload["external_id"], properties={k: _text(v) for k, v in row.payload["fields"].items()}
            )
            for row in rows
        ]
        api = self.client.api("crm.companies.batch_api")
        response = self.client.call(api.update, BatchInputSimplePublicObjectBatchInput(inputs=inputs))
        updated = {str(r.id) for r in response.results or []}
        failed = _errors_by_key(response, "ids")
        return [self._outcome(row, row.payload["external_id"], updated, failed) for row in rows]

    @staticmethod
    def _outcome(row: PushRow, key: str, ok: dict | set, failed: dict) -> PushResult:
        if key in ok:
            return PushResult(row.row_id, True, external_id=ok[key] if isinstance(ok, dict) else key)
        message, retryable = failed.get(key, ("no result for this record", True))
        return PushResult(row.row_id, False, error=message, retryable=retryable)

    def _existing_tasks(self, keys: list[str]) -> dict[str, str]:
        search = PublicObjectSearchRequest(
            filter_groups=[FilterGroup(filters=[Filter(property_name=TASK_DEDUPE_PROPERTY, operator="IN",
                                                       values=keys)])],
            properties=[TASK_DEDUPE_PROPERTY], limit=BATCH_LIMIT,
        )  # fmt: skip
        found = self.client.call(self.client.api("crm.objects.tasks.search_api").do_search, search, search=True)
        return {r.properties[TASK_DEDUPE_PROPERTY]: str(r.id) for r in found.results or []}

    def _owners(self, company_ids: list[str]) -> dict[str, str]:
        request = BatchReadInputSimplePublicObjectId(
            inputs=[SimplePublicObjectId(id=c) for c in sorted(set(company_ids))], properties=["hubspot_owner_id"]
        )
        response = self.client.call(self.client.api("crm.companies.batch_api").read, request)
        return {str(r.id): r.properties.get("hubspot_owner_id") for r in response.results or [] if r.properties}

    def create_tasks(self, rows: list[PushRow]) -> list[PushResult]:
        return [result for chunk in _chunks(rows) for result in self._create_batch(chunk)]

    def _create_batch(self, rows: list[PushRow]) -> list[PushResult]:
        """At most 100 tasks: one search for those that exist, one batch create for the rest."""
        keys = [row.payload["dedupe_key"] for row in rows]
        existing = self._existing_tasks(keys)
        todo = [row for row in rows if row.payload["dedupe_key"] not in existing]
        created: dict[str, str] = {}
        failed: dict[str, tuple[str, bool]] = {}
        if todo:
            owners = self._owners([row.payload["company_id"] for row in todo])
            inputs = [self._task(row, owners.get(row.payload["company_id"])) for row in todo]
            api = self.client.api("crm.objects.tasks.batch_api")
            response = self.client.call(api.create, BatchInputSimplePublicObjectBatchInputForCreate(inputs=inputs))
            created = {r.properties.get(TASK_DEDUPE_PROPERTY): str(r.id) for r in response.results or []}
            failed = _errors_by_key(response, "objectWriteTraceId")
        done = {**existing, **created}
        results = []
        for row in rows:
            key = row.payload["dedupe_key"]
            if key in done:
                results.append(PushResult(row.row_id, True, external_id=done[key]))
            else:
                message, retryable = failed.get(str(row.row_id), ("no result for this task", True))
                results.append(PushResult(row.row_id, False, error=message, retryable=retryable))
        return results

    @staticmethod
    def _task(row: PushRow, owner: str | None) -> SimplePublicObjectBatchInputForCreate:
        p = row.payload
        due = datetime.fromisoformat(p["due"]) if p.get("due") else datetime.now()
        properties = {
            "hs_task_subject": p["title"][:255], "hs_task_body": p["reason"],
            "hs_timestamp": due.strftime("%Y-%m-%dT%H:%M:%S.000Z"), "hs_task_status": "NOT_STARTED",
            "hs_task_priority": PRIORITIES.get(p["priority"], "MEDIUM"), TASK_DEDUPE_PROPERTY: p["dedupe_key"],
        }  # fmt: skip
        if owner:
            properties["hubspot_owner_id"] = owner
        association = PublicAssociationsForObject(
            to=PublicObjectId(id=p["company_id"]),
            types=[AssociationSpec(association_category="HUBSPOT_DEFINED", association_type_id=TASK_TO_COMPANY)],
        )
        return SimplePublicObjectBatchInputForCreate(
            properties=properties, associations=[association], object_write_trace_id=str(row.row_id)
        )

    def send_messages(self, rows: list[PushRow]) -> list[PushResult]:
        return [PushResult(row.row_id, False, error="HubSpot does not send in-app messages", retryable=False)
                for row in rows]  # fmt: skip
