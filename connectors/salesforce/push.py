"""Write-back to Salesforce: Account score fields and CSM Tasks through sObject Collections (200 per call).

Tasks are upserted on the CSE_Dedupe_Key__c external id, so a retried or re-run delivery updates the task it
created before instead of creating a second one.
"""

from __future__ import annotations

from typing import Any

from connectors.push import PushResult, PushRow
from connectors.salesforce.client import MAX_COLLECTION, SalesforceClient

TASK_DEDUPE_FIELD = "CSE_Dedupe_Key__c"
PRIORITIES = {"urgent": "High", "high": "High", "normal": "Normal", "low": "Low"}
# Salesforce error codes that no retry will fix: the record itself is refused.
PERMANENT_ERRORS = {
    "INVALID_FIELD", "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", "ENTITY_IS_DELETED", "INVALID_CROSS_REFERENCE_KEY",
    "MALFORMED_ID", "REQUIRED_FIELD_MISSING", "STRING_TOO_LONG", "INVALID_TYPE", "NOT_FOUND",
    "FIELD_INTEGRITY_EXCEPTION", "INVALID_ID_FIELD", "INVALID_FIELD_FOR_INSERT_UPDATE", "DUPLICATE_VALUE",
}  # fmt: skip


def _result(row: PushRow, outcome: dict[str, Any]) -> PushResult:
    if outcome.get("success"):
        return PushResult(row.row_id, True, external_id=outcome.get("id"))
    errors = outcome.get("errors") or [{"statusCode": "UNKNOWN", "message": "no result"}]
    codes = {e.get("statusCode") for e in errors}
    text = "; ".join(f"{e.get('statusCode')}: {e.get('message')}" for e in errors)
    return PushResult(row.row_id, False, error=text, retryable=not codes <= PERMANENT_ERRORS)


class SalesforcePusher:
    vendor = "salesforce"
    batch_limits = {"update_fields": MAX_COLLECTION, "create_task": MAX_COLLECTION}
    idempotent = {"update_fields", "create_task"}  # safe to resend after a crash

    def __init__(self, client: SalesforceClient) -> None:
        self.client = client

    def update_fields(self, rows: list[PushRow]) -> list[PushResult]:
        records = [
            {"attributes": {"type": row.payload["object"]}, "Id": row.payload["external_id"], **row.payload["fields"]}
            for row in rows
        ]
        outcomes = self.client.collection("PATCH", records)
        return [_result(row, outcome) for row, outcome in zip(rows, outcomes, strict=True)]

    def _owners(self, account_ids: list[str]) -> dict[str, str]:
        """Account Id → OwnerId, so each task is assigned to the account's owner (the CSM)."""
        quoted = ", ".join(f"'{a}'" for a in sorted(set(account_ids)) if a.isalnum())
        if not quoted:
            return {}
        owners: dict[str, str] = {}
        for page in self.client.query_pages(f"SELECT Id, OwnerId FROM Account WHERE Id IN ({quoted})"):
            owners.update({r["Id"]: r["OwnerId"] for r in page})
        return owners

    def create_tasks(self, rows: list[PushRow]) -> list[PushResult]:
        owners = self._owners([row.payload["company_id"] for row in rows])
        records = []
        for row in rows:
            p = row.payload
            task = {
                "WhatId": p["company_id"], "Subject": p["title"][:255], "Description": p["reason"],
                "ActivityDate": (p.get("due") or "")[:10] or None, "Priority": PRIORITIES.get(p["priority"], "Normal"),
                "Status": "Not Started", TASK_DEDUPE_FIELD: p["dedupe_key"][:80],
            }  # fmt: skip
            if p["company_id"] in owners:
                task["OwnerId"] = owners[p["company_id"]]
            records.append(task)
        outcomes = self.client.upsert_many("Task", TASK_DEDUPE_FIELD, records)
        return [_result(row, outcome) for row, outcome in zip(rows, outcomes, strict=True)]

    def send_messages(self, rows: list[PushRow]) -> list[PushResult]:
        return [PushResult(row.row_id, False, error="Salesforce does not send in-app messages", retryable=False)
                for row in rows]  # fmt: skip
