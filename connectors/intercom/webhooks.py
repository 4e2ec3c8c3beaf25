"""Intercom webhook notifications: X-Hub-Signature (sha1=HMAC-SHA1 of the raw body with the client secret)."""

from __future__ import annotations

import hashlib
import hmac
import json

from connectors.webhook_common import VendorEvent, WebhookMalformed, WebhookRejected, same_signature

PING_TOPIC = "ping"


def signature(secret: str, body: bytes) -> str:
    return "sha1=" + hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()


def verify(secret: str, body: bytes, headers) -> None:
    given = headers.get("X-Hub-Signature")
    if given is None:
        raise WebhookRejected("no X-Hub-Signature header")
    if not same_signature(signature(secret, body), given):
        raise WebhookRejected("X-Hub-Signature does not match")


def _company_ids(item: dict) -> list[str]:
    """Intercom ids of the companies a notification's item belongs to (itself, or a contact's companies)."""
    if item.get("type") == "company":
        return [str(item["id"])] if item.get("id") else []
    companies = item.get("companies") or {}
    listed = companies.get("data") or companies.get("companies") or []
    return [str(c["id"]) for c in listed if isinstance(c, dict) and c.get("id")]


def parse(body: bytes) -> VendorEvent:
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise WebhookMalformed(f"body is not JSON: {error}") from error
    if not isinstance(payload, dict) or payload.get("type") != "notification_event":
        raise WebhookMalformed("expected an Intercom notification_event object")
    topic = payload.get("topic")
    if not isinstance(topic, str) or not payload.get("id"):
        raise WebhookMalformed("notification has no id or topic")
    item = ((payload.get("data") or {}).get("item")) or {}
    if not isinstance(item, dict):
        raise WebhookMalformed("data.item is not an object")
    return VendorEvent(
        event_id=str(payload["id"]),
        tenant=str(payload.get("app_id") or ""),
        object=str(item.get("type") or topic.split(".", 1)[0]),
        object_id=str(item.get("id") or ""),
        kind=topic,
        extra={"company_ids": _company_ids(item), "email": item.get("email")},
    )
