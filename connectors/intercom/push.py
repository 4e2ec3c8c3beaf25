"""Write-back to Intercom: company custom attributes (one call per company) and admin-initiated in-app messages.

Intercom's message API has no idempotency key and no way to look a sent message up, so messages are delivered
at most once: the outbox marks a message `sending` before the call, and a message whose worker died mid-call is
parked for an admin rather than sent a second time (see app.writeback.deliver).
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from connectors.errors import VendorError
from connectors.intercom.client import IntercomClient
from connectors.push import PushResult, PushRow


def _failure(row: PushRow, error: Exception) -> PushResult:
    """A failed record: parked only when Intercom refused the record itself (see IntercomClient.classify)."""
    if isinstance(error, VendorError):
        return PushResult(row.row_id, False, error=f"{error.code or error.status}: {error}", retryable=error.retryable)
    return PushResult(row.row_id, False, error=f"{type(error).__name__}: {error}")


class IntercomPusher:
    vendor = "intercom"
    # One API call per record; a job carries this many records, paced by the client's rate-limit awareness.
    batch_limits = {"update_fields": 50, "send_message": 50}
    idempotent = {"update_fields"}

    def __init__(self, client: IntercomClient, admin_id: str | None = None) -> None:
        self.client = client
        self._admin_id = admin_id

    @cached_property
    def admin_id(self) -> str:
        """The admin messages are sent as: the configured one, else the workspace's first admin."""
        if self._admin_id:
            return self._admin_id
        admins, _ = self.client.call(lambda: self.client.sdk.admins.list())
        return str(admins.admins[0].id)

    def update_fields(self, rows: list[PushRow]) -> list[PushResult]:
        results = []
        for row in rows:
            attributes = row.payload["fields"]
            try:
                self.client.call(lambda r=row, a=attributes: self.client.sdk.companies.update(
                    r.payload["external_id"], request={"custom_attributes": a}))  # fmt: skip
            except Exception as error:  # noqa: BLE001 - reported per record; the rest of the batch goes on
                results.append(_failure(row, error))
                continue
            results.append(PushResult(row.row_id, True, external_id=row.payload["external_id"]))
        return results

    def _contact_id(self, email: str) -> str | None:
        query = {"query": {"field": "email", "operator": "=", "value": email}}
        body = self.client.request("POST", "contacts/search", json_body=query)
        found = (body or {}).get("data") or []
        return str(found[0]["id"]) if found else None

    def send_messages(self, rows: list[PushRow]) -> list[PushResult]:
        results = []
        for row in rows:
            try:
                contact = self._contact_id(row.payload["email"])
                if contact is None:
                    results.append(PushResult(row.row_id, False, error="no Intercom contact with this email",
                                              retryable=False))  # fmt: skip
                    continue
                message = self._message(row, contact)
                sent, _ = self.client.call(lambda m=message: self.client.sdk.messages.create(request=m))
            except Exception as error:  # noqa: BLE001
                results.append(_failure(row, error))
                continue
            results.append(PushResult(row.row_id, True, external_id=str(sent.id)))
        return results

    def _message(self, row: PushRow, contact_id: str) -> dict[str, Any]:
        """What the customer reads: the step's customer-facing title and body (a program step's body is
        personalized), never the CSM's internal reason; a program step sent by email goes as Intercom's email
        message, with the title as its subject."""
        message = {
            "message_type": "inapp", "body": row.payload.get("body") or row.payload["title"],
            "from": {"type": "admin", "id": self.admin_id}, "to": {"type": "user", "id": contact_id},
        }  # fmt: skip
        if row.payload.get("channel") == "email":
            message.update(message_type="email", subject=row.payload["title"], template="plain")
        return message

    def create_tasks(self, rows: list[PushRow]) -> list[PushResult]:
        return [PushResult(row.row_id, False, error="Intercom has no CSM tasks", retryable=False) for row in rows]
