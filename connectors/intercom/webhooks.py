"""Intercom webhook notifications: X-Hub-Signature (sha1=HMAC-SHA1 of the raw body with the client secret)."""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictStr, TypeAdapter

from connectors.webhook_common import VendorEvent, WebhookRejected, load_json, same_signature, validated

PING_TOPIC = "ping"
# Intercom's ids are strings: 24 hex characters for contacts and companies, digits for conversations,
# `notif_<uuid>` for notifications. Numbers, objects, null or NaN in their place are not Intercom's.
IntercomId = Annotated[StrictStr, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")]


class _Model(BaseModel):
    model_config = ConfigDict(strict=True, extra="allow")


class CompanyRef(_Model):
    id: IntercomId


class CompanyList(_Model):
    data: list[CompanyRef] | None = None
    companies: list[CompanyRef] | None = None


class Item(_Model):
    type: StrictStr | None = None
    id: IntercomId | None = None
    email: StrictStr | None = None
    companies: CompanyList | None = None


class Data(_Model):
    item: Item | None = None


class Notification(_Model):
    type: Literal["notification_event"]
    id: IntercomId
    topic: Annotated[StrictStr, Field(pattern=r"^[a-z_]+(\.[a-z_]+)*$", max_length=64)]
    app_id: IntercomId | None = None
    data: Data | None = None


NOTIFICATION = TypeAdapter(Notification)


def signature(secret: str, body: bytes) -> str:
    return "sha1=" + hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()


def verify(secret: str, body: bytes, headers) -> None:
    given = headers.get("X-Hub-Signature")
    if given is None:
        raise WebhookRejected("no X-Hub-Signature header")
    if not same_signature(signature(secret, body), given):
        raise WebhookRejected("X-Hub-Signature does not match")


def _company_ids(item: Item) -> list[str]:
    """Intercom ids of the companies a notification's item belongs to (itself, or a contact's companies)."""
    if item.type == "company":
        return [item.id] if item.id else []
    listed = (item.companies.data or item.companies.companies or []) if item.companies else []
    return [c.id for c in listed]


def parse(body: bytes) -> VendorEvent:
    """One notification, checked against the shape Intercom documents."""
    notification: Notification = validated(NOTIFICATION, load_json(body), "Intercom notification")
    item = (notification.data.item if notification.data else None) or Item()
    return VendorEvent(
        event_id=notification.id,
        tenant=notification.app_id or "",
        object=item.type or notification.topic.split(".", 1)[0],
        object_id=item.id or "",
        kind=notification.topic,
        extra={"company_ids": _company_ids(item), "email": item.email},
        payload=body.decode("utf-8", "replace"),
    )
