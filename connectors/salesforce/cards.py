"""Requests from our Lightning component's Apex class (CseCardController, through the `CSE_Backend` Named
Credential): JSON signed like our Flow callouts (`X-CSE-Signature`, `X-CSE-Timestamp`; see webhooks.verify_flow).

Body: `{"orgId": "00D…", "accountId": "001…", "user": "name@org", "action": {...} | null}`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from connectors.salesforce.webhooks import same_org
from connectors.webhook_common import WebhookMalformed, WebhookRejected

SALESFORCE_ID = re.compile(r"^[a-zA-Z0-9]{15}(?:[a-zA-Z0-9]{3})?$")


@dataclass(frozen=True)
class CardRequest:
    org_id: str
    account_id: str
    user: str
    action: dict | None


def parse(body: bytes, org_id: str) -> CardRequest:
    """The record and action of a signed callout; WebhookRejected when it names another org."""
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise WebhookMalformed(f"body is not JSON: {error}") from error
    if not isinstance(payload, dict):
        raise WebhookMalformed("expected a JSON object")
    if not same_org(org_id, str(payload.get("orgId") or "")):
        raise WebhookRejected(f"organization {str(payload.get('orgId'))[:20]!r} is not the connected org")
    account_id = str(payload.get("accountId") or "")
    if not SALESFORCE_ID.match(account_id):
        raise WebhookMalformed("accountId must be a 15- or 18-character Salesforce id")
    action = payload.get("action")
    if action is not None and not isinstance(action, dict):
        raise WebhookMalformed("action must be an object or null")
    return CardRequest(str(payload["orgId"]), account_id, str(payload.get("user") or "salesforce user")[:255], action)
