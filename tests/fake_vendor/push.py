"""Acme's write-back: batched company field updates and one task per dedupe key; Acme has no in-app messages."""

from __future__ import annotations

from connectors.errors import VendorError
from connectors.push import PushResult, PushRow
from tests.fake_vendor.client import VENDOR, AcmeClient


class AcmePusher:
    vendor = VENDOR
    batch_limits = {"update_fields": 20, "create_task": 1}
    idempotent = {"update_fields", "create_task"}  # updates set values; tasks are deduplicated by key

    def __init__(self, client: AcmeClient) -> None:
        self.client = client

    def update_fields(self, rows: list[PushRow]) -> list[PushResult]:
        updates = [{"id": row.payload["external_id"], "fields": row.payload["fields"]} for row in rows]
        body = self.client.request("POST", "companies/batch-update", json={"updates": updates})
        outcome = {result["id"]: result for result in body["results"]}
        results = []
        for row in rows:
            result = outcome[row.payload["external_id"]]
            # A refusal names the record (gone, or a field Acme lacks): sending it again cannot help.
            results.append(PushResult(row.row_id, result["ok"], external_id=result["id"], error=result.get("error"),
                                      retryable=False))  # fmt: skip
        return results

    def create_tasks(self, rows: list[PushRow]) -> list[PushResult]:
        results = []
        for row in rows:
            try:
                task = self.client.request("POST", "tasks", json=row.payload)
            except VendorError as error:
                results.append(PushResult(row.row_id, False, error=str(error), retryable=error.retryable))
                continue
            results.append(PushResult(row.row_id, True, external_id=task["id"]))
        return results

    def send_messages(self, rows: list[PushRow]) -> list[PushResult]:
        return [PushResult(row.row_id, False, error="Acme sends no in-app messages", retryable=False) for row in rows]
