"""HubSpot webhook requests: signature v3 (and v2/v1 where HubSpot still sends them) and the events array.

v3: base64(HMAC-SHA256(client secret, method + URI + body + timestamp)), timestamp in ms no older than 5 minutes.
v2: hex(SHA-256(client secret + method + URI + body)); v1: hex(SHA-256(client secret + body)).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from urllib.parse import unquote

from connectors.webhook_common import VendorEvent, WebhookMalformed, WebhookRejected, same_signature

MAX_AGE_MS = 5 * 60 * 1000


def signature_v3(secret: str, method: str, uri: str, body: bytes, timestamp: str) -> str:
    source = f"{method.upper()}{unquote(uri)}".encode() + body + timestamp.encode()
    return base64.b64encode(hmac.new(secret.encode(), source, hashlib.sha256).digest()).decode()


def signature_v2(secret: str, method: str, uri: str, body: bytes) -> str:
    return hashlib.sha256(f"{secret}{method.upper()}{uri}".encode() + body).hexdigest()


def signature_v1(secret: str, body: bytes) -> str:
    return hashlib.sha256(secret.encode() + body).hexdigest()


def verify(secret: str, method: str, uri: str, body: bytes, headers, now_ms: int | None = None) -> str:
    """Check the request's signature; returns the version that matched, raises WebhookRejected otherwise.

    v3 is used whenever HubSpot sends it; the older versions only when it does not.
    """
    if headers.get("X-HubSpot-Signature-v3") is not None:
        verify_v3(secret, method, uri, body, headers, now_ms)
        return "v3"
    signature = headers.get("X-HubSpot-Signature")
    version = (headers.get("X-HubSpot-Signature-Version") or "v1").lower()
    if signature is None:
        raise WebhookRejected("no HubSpot signature header")
    expected = signature_v2(secret, method, uri, body) if version == "v2" else signature_v1(secret, body)
    if version not in ("v1", "v2") or not same_signature(expected, signature):
        raise WebhookRejected(f"signature {version} does not match")
    return version


def verify_v3(secret: str, method: str, uri: str, body: bytes, headers, now_ms: int | None = None) -> None:
    """Signature v3 and its 5-minute window; raises WebhookRejected. What app cards' hubspot.fetch calls carry."""
    given = headers.get("X-HubSpot-Signature-v3")
    if given is None:
        raise WebhookRejected("no X-HubSpot-Signature-v3 header")
    timestamp = headers.get("X-HubSpot-Request-Timestamp")
    if not timestamp or not timestamp.isdigit():
        raise WebhookRejected("missing or invalid X-HubSpot-Request-Timestamp")
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    if now_ms - int(timestamp) > MAX_AGE_MS:
        raise WebhookRejected("timestamp older than 5 minutes")
    if not same_signature(signature_v3(secret, method, uri, body, timestamp), given):
        raise WebhookRejected("signature v3 does not match")


def parse(body: bytes) -> list[VendorEvent]:
    """The JSON array of subscription events (HubSpot batches up to 100 per request)."""
    try:
        events = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise WebhookMalformed(f"body is not JSON: {error}") from error
    if not isinstance(events, list):
        raise WebhookMalformed("expected a JSON array of events")
    parsed = []
    for index, event in enumerate(events):
        if not isinstance(event, dict):
            raise WebhookMalformed(f"event {index} is not an object")
        try:
            kind = str(event["subscriptionType"])
            parsed.append(
                VendorEvent(
                    event_id=str(event["eventId"]),
                    tenant=str(event["portalId"]),
                    object=kind.split(".", 1)[0],
                    object_id=str(event["objectId"]),
                    kind=kind,
                    extra={k: event[k] for k in ("propertyName", "propertyValue", "occurredAt") if k in event},
                )
            )
        except KeyError as missing:
            raise WebhookMalformed(f"event {index} has no {missing.args[0]}") from None
    return parsed
