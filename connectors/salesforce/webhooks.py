"""Salesforce callbacks: Outbound Messages (SOAP) and Flow HTTP callouts signed with a shared secret.

An Outbound Message carries no signature: the endpoint URL holds a secret token (checked by the web app before the
body is read) and the message the sending org's id, which must be the connected org's; Salesforce resends until it
receives the `Ack` response below, and sends at most 100 notifications in one message. Flow callouts are ours to
define: JSON signed as `X-CSE-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>` with
`X-CSE-Timestamp` in seconds.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Annotated
from xml.etree.ElementTree import ParseError, tostring

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring
from pydantic import BaseModel, ConfigDict, Field, StrictStr, TypeAdapter

from connectors.webhook_common import (
    VendorEvent,
    WebhookMalformed,
    WebhookRejected,
    ascii_digits,
    load_json,
    same_signature,
    validated,
)

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
MAX_NOTIFICATIONS = 100  # Salesforce's documented maximum per Outbound Message
SalesforceId = Annotated[StrictStr, Field(pattern=r"^[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?$")]
SALESFORCE_ID = TypeAdapter(SalesforceId)
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
    listed = notifications.findall(f"{{{OUTBOUND_NS}}}Notification")
    if len(listed) > MAX_NOTIFICATIONS:
        raise WebhookMalformed(f"{len(listed)} notifications; Salesforce sends at most {MAX_NOTIFICATIONS} a message")
    events = []
    for notification in listed:
        notification_id = notification.findtext(f"{{{OUTBOUND_NS}}}Id")
        sobject = notification.find(f"{{{OUTBOUND_NS}}}sObject")
        if not notification_id or sobject is None:
            raise WebhookMalformed("a Notification has no Id or sObject")
        kind = (sobject.get(f"{{{XSI_NS}}}type") or "").split(":")[-1]
        fields = {child.tag.split("}")[-1]: (child.text or "").strip() for child in sobject}
        if "Id" not in fields:
            raise WebhookMalformed("a notified sObject has no Id")
        refs = {k: fields[k] for k in ACCOUNT_REFERENCES if fields.get(k)}
        for value in (notification_id.strip(), fields["Id"], *refs.values()):
            validated(SALESFORCE_ID, value, "Outbound Message")
        events.append(VendorEvent(notification_id.strip(), sender, kind, fields["Id"], f"outbound.{kind}", refs,
                                  tostring(notification, encoding="unicode")))  # fmt: skip
    if not events:
        raise WebhookMalformed("the message holds no Notification")
    return events


def flow_signature(secret: str, timestamp: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def verify_flow(secret: str, body: bytes, headers, now: float | None = None) -> None:
    timestamp = headers.get("X-CSE-Timestamp")
    if abs((time.time() if now is None else now) - ascii_digits(timestamp, "X-CSE-Timestamp")) > MAX_AGE_SECONDS:
        raise WebhookRejected("timestamp more than 5 minutes from now")
    if not same_signature(flow_signature(secret, timestamp, body), headers.get("X-CSE-Signature")):
        raise WebhookRejected("X-CSE-Signature does not match")


class FlowEvent(BaseModel):
    model_config = ConfigDict(strict=True, extra="allow")

    id: Annotated[StrictStr, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")]
    object: Annotated[StrictStr, Field(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,31}$")] = "Account"
    recordId: SalesforceId
    accountId: SalesforceId | None = None


class FlowCallout(BaseModel):
    model_config = ConfigDict(strict=True, extra="allow")

    orgId: SalesforceId
    events: list[FlowEvent]


FLOW_CALLOUT = TypeAdapter(FlowCallout)


def parse_flow(body: bytes, org_id: str) -> list[VendorEvent]:
    """`{"orgId": "...", "events": [{"id": ..., "object": "Account", "recordId": ..., "accountId": ...}]}`."""
    raw = load_json(body)
    callout: FlowCallout = validated(FLOW_CALLOUT, raw, "Flow callout")
    if not same_org(org_id, callout.orgId):
        raise WebhookRejected(f"organization {callout.orgId!r} is not the connected org")
    return [
        VendorEvent(event.id, callout.orgId, event.object, event.recordId, f"flow.{event.object}",
                    {"AccountId": event.accountId} if event.accountId else {}, json.dumps(item))
        for event, item in zip(callout.events, raw["events"], strict=True)
    ]  # fmt: skip
