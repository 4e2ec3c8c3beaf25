"""HubSpot webhook requests: signature v3 (v2/v1 only when explicitly allowed) and the events array.

v3: base64(HMAC-SHA256(client secret, method + URI + body + timestamp)), timestamp in ms within 5 minutes of now.
v2: hex(SHA-256(client secret + method + URI + body)); v1: hex(SHA-256(client secret + body)). Neither carries a
timestamp, so a captured request replays forever once its event id is forgotten: they are refused unless the
caller allows them (HUBSPOT_ALLOW_LEGACY_SIGNATURES, for apps HubSpot still signs the old way).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Annotated
from urllib.parse import unquote

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, TypeAdapter

from connectors.webhook_common import (
    VendorEvent,
    WebhookMalformed,
    WebhookRejected,
    ascii_digits,
    load_json,
    same_signature,
    validated,
)

MAX_AGE_MS = 5 * 60 * 1000
MAX_EVENTS = 100  # HubSpot batches up to 100 events per request


class HubSpotEvent(BaseModel):
    """One subscription event as HubSpot documents it: ids are JSON integers, never strings, floats or null."""

    model_config = ConfigDict(strict=True, extra="allow")

    eventId: Annotated[StrictInt, Field(ge=0)]
    portalId: Annotated[StrictInt, Field(ge=0)]
    objectId: Annotated[StrictInt, Field(ge=0)]
    subscriptionType: Annotated[StrictStr, Field(min_length=1, max_length=64)]
    propertyName: StrictStr | None = None
    propertyValue: StrictStr | None = None
    occurredAt: StrictInt | None = None


EVENTS = TypeAdapter(Annotated[list[HubSpotEvent], Field(max_length=MAX_EVENTS)])


def signature_v3(secret: str, method: str, uri: str, body: bytes, timestamp: str) -> str:
    source = f"{method.upper()}{unquote(uri)}".encode() + body + timestamp.encode()
    return base64.b64encode(hmac.new(secret.encode(), source, hashlib.sha256).digest()).decode()


def signature_v2(secret: str, method: str, uri: str, body: bytes) -> str:
    return hashlib.sha256(f"{secret}{method.upper()}{uri}".encode() + body).hexdigest()


def signature_v1(secret: str, body: bytes) -> str:
    return hashlib.sha256(secret.encode() + body).hexdigest()


def verify(secret: str, method: str, uri: str, body: bytes, headers, now_ms: int | None = None,
           allow_legacy: bool = False) -> str:  # fmt: skip
    """Check the request's signature; returns the version that matched, raises WebhookRejected otherwise.

    v3 is used whenever HubSpot sends it; the older versions only when it does not.
    """
    if headers.get("X-HubSpot-Signature-v3") is not None:
        verify_v3(secret, method, uri, body, headers, now_ms)
        return "v3"
    if not allow_legacy:
        raise WebhookRejected("no X-HubSpot-Signature-v3 header (v1/v2 signatures are not accepted)")
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
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    if abs(now_ms - ascii_digits(timestamp, "X-HubSpot-Request-Timestamp")) > MAX_AGE_MS:
        raise WebhookRejected("timestamp more than 5 minutes from now")
    if not same_signature(signature_v3(secret, method, uri, body, timestamp), given):
        raise WebhookRejected("signature v3 does not match")


def parse(body: bytes) -> list[VendorEvent]:
    """The JSON array of subscription events, checked against HubSpot's event schema."""
    raw = load_json(body)
    if not isinstance(raw, list):
        raise WebhookMalformed("expected a JSON array of events")
    events = validated(EVENTS, raw, "HubSpot events")
    return [
        VendorEvent(
            event_id=str(event.eventId),
            tenant=str(event.portalId),
            object=event.subscriptionType.split(".", 1)[0],
            object_id=str(event.objectId),
            kind=event.subscriptionType,
            extra={k: item[k] for k in ("propertyName", "propertyValue", "occurredAt") if k in item},
            payload=json.dumps(item),
        )
        for event, item in zip(events, raw, strict=True)
    ]
