"""Salesforce callbacks: Outbound Messages (SOAP) and Flow HTTP callouts signed with a shared secret.

An Outbound Message carries the sending org's id, which must be the connected org's; Salesforce resends until it
receives the `Ack` response below. Flow callouts are ours to define: JSON signed as
`X-CSE-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>` with `X-CSE-Timestamp` in seconds.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from xml.etree.ElementTree import ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from connectors.webhook_common import VendorEvent, WebhookMalformed, WebhookRejected, same_signature

OUTBOUND_NS = "http://soap.sforce.com/2005/09/outbound"
SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
ACK = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    f'<soapenv:Envelope xmlns:soapenv="{SOAP_NS}"><soapenv:Body>'
    f'<notificationsResponse xmlns="{OUTBOUND_NS}"><Ack>true</Ack></notificationsResponse>'
    "</soapenv:Body></soapenv:Envelope>"
)
MAX_AGE_SECONDS = 300
# Fields of a notified sObject that point at the account it belongs to.
ACCOUNT_REFERENCES = ("AccountId", "WhatId")


def same_org(expected: str, given: str) -> bool:
    """Org ids come as 15 or 18 characters; the first 15 identify the org."""
    return bool(expected) and expected[:15] == given[:15]


def parse_outbound(body: bytes, org_id: str) -> list[VendorEvent]:
    """Notifications of an Outbound Message from the connected org; WebhookRejected for another org."""
    try:
        root = fromstring(body)  # defused: no entity expansion bombs, no external entities
    except (ParseError, DefusedXmlException) as error:
        raise WebhookMalformed(f"body is not acceptable XML: {error}") from error
    notifications = root.find(f"{{{SOAP_NS}}}Body/{{{OUTBOUND_NS}}}notifications")
    if notifications is None:
        raise WebhookMalformed("no soapenv:Body/notifications element")
    sender = (notifications.findtext(f"{{{OUTBOUND_NS}}}OrganizationId") or "").strip()
    if not same_org(org_id, sender):
        raise WebhookRejected(f"organization {sender or '(none)'} is not the connected org")
    events = []
    for notification in notifications.findall(f"{{{OUTBOUND_NS}}}Notification"):
        notification_id = notification.findtext(f"{{{OUTBOUND_NS}}}Id")
        sobject = notification.find(f"{{{OUTBOUND_NS}}}sObject")
        if not notification_id or sobject is None:
            raise WebhookMalformed("a Notification has no Id or sObject")
        kind = (sobject.get(f"{{{XSI_NS}}}type") or "").split(":")[-1]
        fields = {child.tag.split("}")[-1]: (child.text or "") for child in sobject}
        if "Id" not in fields:
            raise WebhookMalformed("a notified sObject has no Id")
        refs = {k: fields[k] for k in ACCOUNT_REFERENCES if fields.get(k)}
        events.append(VendorEvent(notification_id, sender, kind, fields["Id"], f"outbound.{kind}", refs))
    if not events:
        raise WebhookMalformed("the message holds no Notification")
    return events


def flow_signature(secret: str, timestamp: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def verify_flow(secret: str, body: bytes, headers, now: float | None = None) -> None:
    timestamp = headers.get("X-CSE-Timestamp")
    if not timestamp or not timestamp.isdigit():
        raise WebhookRejected("missing or invalid X-CSE-Timestamp")
    if abs((time.time() if now is None else now) - int(timestamp)) > MAX_AGE_SECONDS:
        raise WebhookRejected("timestamp older than 5 minutes")
    if not same_signature(flow_signature(secret, timestamp, body), headers.get("X-CSE-Signature")):
        raise WebhookRejected("X-CSE-Signature does not match")


def parse_flow(body: bytes, org_id: str) -> list[VendorEvent]:
    """`{"orgId": "...", "events": [{"id": ..., "object": "Account", "recordId": ..., "accountId": ...}]}`."""
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise WebhookMalformed(f"body is not JSON: {error}") from error
    if not isinstance(payload, dict) or not isinstance(payload.get("events"), list):
        raise WebhookMalformed("expected an object with an events array")
    if not same_org(org_id, str(payload.get("orgId") or "")):
        raise WebhookRejected(f"organization {payload.get('orgId')!r} is not the connected org")
    events = []
    for index, event in enumerate(payload["events"]):
        if not isinstance(event, dict) or not event.get("id") or not event.get("recordId"):
            raise WebhookMalformed(f"event {index} needs id and recordId")
        refs = {"AccountId": str(event["accountId"])} if event.get("accountId") else {}
        obj = str(event.get("object") or "Account")
        events.append(VendorEvent(str(event["id"]), str(payload["orgId"]), obj, str(event["recordId"]), f"flow.{obj}",
                                  refs))  # fmt: skip
    return events
