"""Write-back to Intercom: company custom attributes (one call per company) and admin-initiated in-app messages.

Intercom has no batch endpoint for either, so a batch's records go out over a bounded pool of threads
(`INTERCOM_PUSH_CONCURRENCY`, default 8) sharing the connector's client: its retry loop and rate-limit awareness
(X-RateLimit-Remaining/-Reset, 429s waiting for the window's reset) pace every thread, so more threads use the
window sooner but never exceed it.

Intercom's message API has no idempotency key and no way to look a sent message up, so messages are delivered
at most once: the outbox marks a message `sending` before the call, and a message whose worker died mid-call is
parked for an admin rather than sent a second time (see app.writeback.deliver).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import cached_property
from threading import Lock
from typing import Any
from urllib.parse import quote

from connectors.errors import VendorError
from connectors.intercom.client import IntercomClient
from connectors.push import PushResult, PushRow


def _failure(row: PushRow, error: Exception) -> PushResult:
    """A failed record: parked only when Intercom refused the record itself (see IntercomClient.classify)."""
    if isinstance(error, VendorError):
        return PushResult(row.row_id, False, error=f"{error.code or error.status}: {error}", retryable=error.retryable)
    return PushResult(row.row_id, False, error=f"{type(error).__name__}: {error}")


DEFAULT_CONCURRENCY = 8


class IntercomPusher:
    vendor = "intercom"
    # One API call per record; a job carries this many records, sent `concurrency` at a time.
    batch_limits = {"update_fields": 50, "send_message": 50}
    idempotent = {"update_fields"}

    def __init__(self, client: IntercomClient, admin_id: str | None = None,
                 concurrency: int = DEFAULT_CONCURRENCY) -> None:  # fmt: skip
        if concurrency < 1:
            raise ValueError("INTERCOM_PUSH_CONCURRENCY must be at least 1")
        self.client = client
        self._admin_id = admin_id
        self.concurrency = concurrency
        self._admin_lock = Lock()

    @classmethod
    def from_settings(cls, client: IntercomClient, settings: Any) -> IntercomPusher:
        """The pusher with the concurrency the settings ask for (`INTERCOM_PUSH_CONCURRENCY`)."""
        return cls(client, concurrency=int(settings.value("intercom_push_concurrency") or DEFAULT_CONCURRENCY))

    @property
    def admin_id(self) -> str:
        """The admin messages are sent as: the configured one, else the workspace's first admin (looked up once,
        not by every thread of the first batch)."""
        with self._admin_lock:
            return self._workspace_admin

    @cached_property
    def _workspace_admin(self) -> str:
        if self._admin_id:
            return self._admin_id
        admins, _ = self.client.call(lambda: self.client.sdk.admins.list())
        return str(admins.admins[0].id)

    def _each(self, rows: list[PushRow], push: Callable[[PushRow], PushResult]) -> list[PushResult]:
        """`push` every row, `concurrency` at a time; a row's failure is its own result, the others go on."""

        def one(row: PushRow) -> PushResult:
            try:
                return push(row)
            except Exception as error:  # noqa: BLE001 - reported per record; the rest of the batch goes on
                return _failure(row, error)

        if self.concurrency == 1 or len(rows) < 2:
            return [one(row) for row in rows]
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(rows)), thread_name_prefix="intercom") as pool:
            return list(pool.map(one, rows))

    def update_fields(self, rows: list[PushRow]) -> list[PushResult]:
        return self._each(rows, self._update_company)

    def _update_company(self, row: PushRow) -> PushResult:
        """PUT /companies/{id} through the SDK's HTTP client without its response model: the typed
        `sdk.companies.update` builds a Company by type introspection: 1.25-1.30 ms of client CPU a call against
        0.68-0.90 ms this way (`python -m bench.intercom_push`), for an answer the write-back does not read. The
        pull's bulk reads go the same way (IntercomClient.request)."""
        company, attributes = row.payload["external_id"], row.payload["fields"]
        self.client.request("PUT", f"companies/{quote(company, safe='')}", json_body={"custom_attributes": attributes})
        return PushResult(row.row_id, True, external_id=company)

    def _contact_id(self, email: str) -> str | None:
        query = {"query": {"field": "email", "operator": "=", "value": email}}
        body = self.client.request("POST", "contacts/search", json_body=query)
        found = (body or {}).get("data") or []
        return str(found[0]["id"]) if found else None

    def send_messages(self, rows: list[PushRow]) -> list[PushResult]:
        return self._each(rows, self._send_message)

    def _send_message(self, row: PushRow) -> PushResult:
        contact = self._contact_id(row.payload["email"])
        if contact is None:
            return PushResult(row.row_id, False, error="no Intercom contact with this email", retryable=False)
        message = self._message(row, contact)
        sent, _ = self.client.call(lambda: self.client.sdk.messages.create(request=message))
        return PushResult(row.row_id, True, external_id=str(sent.id))

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
