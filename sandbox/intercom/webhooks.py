"""Intercom's webhooks, as the sandbox sends them: notification_event JSON signed with X-Hub-Signature.

Intercom signs the raw body with HMAC-SHA1 under the app's client secret and posts it to every subscribed URL for
the topic; a test or the demo subscribes our endpoint and then changes the workspace.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

import requests

from sandbox.intercom.values import APP_ID
from sandbox.intercom.workspace import Workspace


@dataclass
class Subscription:
    url: str
    client_secret: str
    topics: set[str] = field(default_factory=lambda: {"contact.user.updated", "company.updated"})


@dataclass
class WebhookSender:
    workspace: Workspace
    subscriptions: list[Subscription] = field(default_factory=list)
    delivered: list[tuple[str, int]] = field(default_factory=list)  # (notification id, HTTP status)

    def notify(self, topic: str, item: dict[str, Any]) -> list[int]:
        """Post one notification to every subscription for `topic`; returns the HTTP statuses."""
        now = self.workspace.now()
        notification_id = f"notif_{uuid.uuid4()}"
        payload = {
            "type": "notification_event", "app_id": APP_ID, "id": notification_id, "topic": topic,
            "data": {"type": "notification_event_data", "item": item}, "links": {}, "delegated": False,
            "created_at": now, "delivery_attempts": 1, "first_sent_at": now,
        }  # fmt: skip
        body = json.dumps(payload).encode()
        statuses = []
        for subscription in self.subscriptions:
            if topic not in subscription.topics:
                continue
            signature = "sha1=" + hmac.new(subscription.client_secret.encode(), body, hashlib.sha1).hexdigest()
            headers = {"Content-Type": "application/json", "X-Hub-Signature": signature}
            status = requests.post(subscription.url, data=body, headers=headers, timeout=10).status_code
            self.delivered.append((notification_id, status))
            statuses.append(status)
        return statuses

    def usage_drop(self, contact_id: str, active_seats: int = 1) -> list[int]:
        """The contact stops using the product and gives up the champion role; its company's active seats fall."""
        workspace = self.workspace
        contact = workspace.update_contact(
            contact_id, {"last_seen_at": workspace.now() - 45 * 86400, "custom_attributes": {"champion": False}}
        )
        for company_id in workspace.contact_companies(contact_id):
            workspace.update_company(company_id, {"custom_attributes": {"active_seats": active_seats}})
        return self.notify("contact.user.updated", workspace.render_contact(contact))
