"""Requests from our HubSpot app card (`hubspot.fetch()` in the React extension under connectors/hubspot/app/).

HubSpot signs each one like a webhook (signature v3 over method + full URI + body + timestamp, 5-minute window)
and appends `userId`, `portalId`, `userEmail` and `appId` to the query string, so the portal is covered by the
signature. The card itself adds `companyId` (GET: read the card) or posts `{"companyId", "action"}` (POST: act).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from connectors.webhook_common import WebhookMalformed

MAX_RESPONSE_BYTES = 1_000_000  # hubspot.fetch refuses bigger payloads


@dataclass(frozen=True)
class CardRequest:
    portal_id: str
    company_id: str
    user_email: str
    action: dict | None


def _digits(value: object, name: str) -> str:
    text = str(value or "").strip()
    if not (text.isascii() and text.isdigit()):
        raise WebhookMalformed(f"{name} must be a HubSpot id (digits), got {text[:40]!r}")
    return text


def parse_fetch(method: str, query: Mapping[str, str], body: bytes) -> CardRequest:
    """The portal, company, user and (for POST) the action of a signed hubspot.fetch request."""
    payload: dict = {}
    if method.upper() == "POST":
        try:
            payload = json.loads(body or b"{}")
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise WebhookMalformed(f"body is not JSON: {error}") from error
        if not isinstance(payload, dict) or not isinstance(payload.get("action"), dict):
            raise WebhookMalformed('expected {"companyId": ..., "action": {...}}')
    return CardRequest(
        portal_id=_digits(query.get("portalId"), "portalId"),
        company_id=_digits(payload.get("companyId", query.get("companyId")), "companyId"),
        user_email=str(query.get("userEmail") or query.get("userId") or "hubspot user")[:255],
        action=payload.get("action"),
    )
