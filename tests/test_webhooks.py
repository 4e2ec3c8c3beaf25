"""Webhook endpoints, with signatures computed as each vendor documents them, against the real store."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import replace

import pytest
from sqlalchemy import select

from app.settings import Settings
from app.store.models import WebhookEvent
from app.web import create_app
from tests.web_support import sign_in

HUBSPOT_SECRET = "hubspot-app-secret"
INTERCOM_SECRET = "intercom-client-secret"
CALLOUT_SECRET = "flow-shared-secret"
ORG_ID = "00D5g000004ABCDEAA"
PORTAL = "424242"
SETTINGS = Settings.from_env(
    {
        "HUBSPOT_CLIENT_SECRET": HUBSPOT_SECRET, "HUBSPOT_PORTAL_ID": PORTAL, "INTERCOM_CLIENT_SECRET": INTERCOM_SECRET,
        "INTERCOM_APP_ID": "app123", "SALESFORCE_ORG_ID": ORG_ID, "SALESFORCE_CALLOUT_SECRET": CALLOUT_SECRET,
        "CSE_WEBHOOK_MAX_BYTES": "65536", "CSE_WEBHOOK_COALESCE_SECONDS": "3600",
        "CSE_PUBLIC_URL": "https://cse.example.com", "SALESFORCE_OUTBOUND_TOKEN": "outbound-url-token",
    }
)  # fmt: skip
OUTBOUND = "/webhooks/salesforce/outbound-url-token"


@pytest.fixture
def client(store):
    app = create_app(SETTINGS, engine=store)
    app.testing = True
    return app.test_client()


def _events(store, status: str | None = None) -> list:
    table = WebhookEvent.__table__
    query = select(table).order_by(table.c.id)
    if status:
        query = query.where(table.c.status == status)
    with store.connect() as conn:
        return conn.execute(query).all()


# ---- HubSpot ------------------------------------------------------------------------------------------------------


def hubspot_body(*event_ids: int, portal: str = PORTAL) -> bytes:
    return json.dumps(
        [
            {"eventId": e, "subscriptionId": 7, "portalId": int(portal), "appId": 99, "occurredAt": 1767225600000,
             "subscriptionType": "company.propertyChange", "attemptNumber": 0, "objectId": 1000 + e,
             "propertyName": "annualrevenue", "propertyValue": "5000", "changeSource": "CRM"}
            for e in event_ids
        ]
    ).encode()  # fmt: skip


def hubspot_v3_headers(body: bytes, secret: str = HUBSPOT_SECRET, age_ms: int = 0, uri: str | None = None) -> dict:
    timestamp = str(int(time.time() * 1000) - age_ms)
    uri = uri or "https://cse.example.com/webhooks/hubspot"
    source = b"POST" + uri.encode() + body + timestamp.encode()
    signature = base64.b64encode(hmac.new(secret.encode(), source, hashlib.sha256).digest()).decode()
    return {"X-HubSpot-Signature-v3": signature, "X-HubSpot-Request-Timestamp": timestamp,
            "Content-Type": "application/json"}  # fmt: skip


def test_hubspot_v3_signed_events_are_stored_and_replays_deduplicated(client, store):
    body = hubspot_body(1, 2)
    assert client.post("/webhooks/hubspot", data=body, headers=hubspot_v3_headers(body)).status_code == 204
    assert [e.event_id for e in _events(store, "received")] == ["1", "2"]
    replay = hubspot_body(2, 3)
    assert client.post("/webhooks/hubspot", data=replay, headers=hubspot_v3_headers(replay)).status_code == 204
    rows = {e.event_id: e for e in _events(store)}
    assert sorted(rows) == ["1", "2", "3"]
    assert rows["2"].duplicates == 1 and rows["1"].duplicates == 0
    assert rows["3"].object == "company" and rows["3"].object_id == "1003"


@pytest.mark.parametrize(
    "tamper, reason",
    [
        (lambda body, h: (body, hubspot_v3_headers(body, secret="wrong")), "does not match"),
        (lambda body, h: (body.replace(b"5000", b"9000"), h), "does not match"),
        (lambda body, h: (body, hubspot_v3_headers(body, age_ms=6 * 60 * 1000)), "more than 5 minutes"),
        (lambda body, h: (body, hubspot_v3_headers(body, age_ms=-365 * 86400 * 1000)), "more than 5 minutes"),
        (lambda body, h: (body, {"Content-Type": "application/json"}), "no X-HubSpot-Signature-v3"),
        (lambda body, h: (body, {**h, "X-HubSpot-Request-Timestamp": "soon"}), "invalid X-HubSpot-Request-Timestamp"),
        # Superscript digits pass str.isdigit() but not int(): they were a 500.
        (lambda body, h: (body, {**h, "X-HubSpot-Request-Timestamp": "¹²³"}), "invalid X-HubSpot-Request"),
    ],
    ids=[
        "wrong-secret",
        "altered-body",
        "stale-timestamp",
        "future-timestamp",
        "missing-header",
        "bad-timestamp",
        "non-ascii-digits",
    ],
)
def test_hubspot_requests_that_fail_verification_are_rejected_with_401(client, store, tamper, reason):
    body = hubspot_body(5)
    sent_body, headers = tamper(body, hubspot_v3_headers(body))
    response = client.post("/webhooks/hubspot", data=sent_body, headers=headers)
    assert response.status_code == 401
    [logged] = _events(store)
    assert logged.status == "rejected" and reason in logged.reason


def _legacy_requests() -> list[tuple[bytes, dict]]:
    body = hubspot_body(11)
    v2 = hashlib.sha256(f"{HUBSPOT_SECRET}POSThttps://cse.example.com/webhooks/hubspot".encode() + body).hexdigest()
    first = (body, {"X-HubSpot-Signature": v2, "X-HubSpot-Signature-Version": "v2"})
    body = hubspot_body(12)
    v1 = hashlib.sha256(HUBSPOT_SECRET.encode() + body).hexdigest()
    return [first, (body, {"X-HubSpot-Signature": v1, "X-HubSpot-Signature-Version": "v1"})]


def test_hubspot_v2_and_v1_signatures_only_when_the_setting_allows_them(client, store):
    """Without a timestamp a captured request replays forever: v1/v2 are refused unless explicitly allowed."""
    for body, headers in _legacy_requests():
        response = client.post("/webhooks/hubspot", data=body, headers=headers)
        assert response.status_code == 401 and b"v1/v2 signatures are not accepted" in response.data
    legacy = create_app(replace(SETTINGS, hubspot_allow_legacy_signatures=True), engine=store).test_client()
    for body, headers in _legacy_requests():
        assert legacy.post("/webhooks/hubspot", data=body, headers=headers).status_code == 204
    assert [e.event_id for e in _events(store, "received")] == ["11", "12"]


def test_the_legacy_setting_is_read_from_the_environment():
    assert Settings.from_env({}).hubspot_allow_legacy_signatures is False
    assert Settings.from_env({"HUBSPOT_ALLOW_LEGACY_SIGNATURES": "true"}).hubspot_allow_legacy_signatures is True


def test_hubspot_malformed_oversized_and_foreign_portal(client, store):
    bad = b'[{"eventId": 1,'
    assert client.post("/webhooks/hubspot", data=bad, headers=hubspot_v3_headers(bad)).status_code == 400
    shape = b'{"eventId": 1}'
    assert client.post("/webhooks/hubspot", data=shape, headers=hubspot_v3_headers(shape)).status_code == 400
    big = b"[" + b" " * 70_000 + b"]"
    assert client.post("/webhooks/hubspot", data=big, headers=hubspot_v3_headers(big)).status_code == 413
    foreign = hubspot_body(21, portal="777")
    assert client.post("/webhooks/hubspot", data=foreign, headers=hubspot_v3_headers(foreign)).status_code == 204
    statuses = [e.status for e in _events(store)]
    assert statuses == ["malformed", "malformed", "ignored"]
    assert "unknown tenant 777" in _events(store, "ignored")[0].reason


# ---- Intercom -----------------------------------------------------------------------------------------------------


def intercom_body(notification_id: str = "notif_1", topic: str = "contact.user.updated") -> bytes:
    return json.dumps(
        {"type": "notification_event", "app_id": "app123", "id": notification_id, "topic": topic,
         "delivery_attempts": 1, "first_sent_at": 1767225600,
         "data": {"type": "notification_event_data", "item": {
             "type": "contact", "id": "c-77", "email": "pat@example.com",
             "companies": {"type": "list", "data": [{"type": "company", "id": "ic-5"}]}}}}
    ).encode()  # fmt: skip


def intercom_headers(body: bytes, secret: str = INTERCOM_SECRET) -> dict:
    return {"X-Hub-Signature": "sha1=" + hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()}


def test_intercom_notifications(client, store):
    body = intercom_body()
    assert client.post("/webhooks/intercom", data=body, headers=intercom_headers(body)).status_code == 204
    ping = intercom_body("notif_ping", topic="ping")
    assert client.post("/webhooks/intercom", data=ping, headers=intercom_headers(ping)).status_code == 204
    assert client.post("/webhooks/intercom", data=body, headers=intercom_headers(body, "nope")).status_code == 401
    assert client.post("/webhooks/intercom", data=body).status_code == 401
    altered = body.replace(b"pat@", b"eve@")
    assert client.post("/webhooks/intercom", data=altered, headers=intercom_headers(body)).status_code == 401
    junk = b"not json"
    assert client.post("/webhooks/intercom", data=junk, headers=intercom_headers(junk)).status_code == 400
    [received] = _events(store, "received")
    assert received.event_id == "notif_1" and received.refs["company_ids"] == ["ic-5"]
    assert [e.status for e in _events(store)].count("rejected") == 3


# ---- Salesforce ---------------------------------------------------------------------------------------------------


def outbound_message(org: str = ORG_ID, notification_id: str = "04l5g000000AAAA") -> bytes:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"
  xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
 <soapenv:Body>
  <notifications xmlns="http://soap.sforce.com/2005/09/outbound">
   <OrganizationId>{org}</OrganizationId>
   <ActionId>04k5g000000BBBB</ActionId>
   <SessionId xsi:nil="true"/>
   <EnterpriseUrl>https://example.my.salesforce.com/services/Soap/c/59.0/00D</EnterpriseUrl>
   <PartnerUrl>https://example.my.salesforce.com/services/Soap/u/59.0/00D</PartnerUrl>
   <Notification>
    <Id>{notification_id}</Id>
    <sObject xsi:type="sf:Case" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">
     <sf:Id>5005g000001CCCC</sf:Id>
     <sf:AccountId>0015g000002DDDD</sf:AccountId>
    </sObject>
   </Notification>
  </notifications>
 </soapenv:Body>
</soapenv:Envelope>""".encode()


def test_salesforce_outbound_messages_are_acknowledged(client, store):
    response = client.post(OUTBOUND, data=outbound_message(), content_type="text/xml")
    assert response.status_code == 200 and b"<Ack>true</Ack>" in response.data
    [event] = _events(store, "received")
    assert (event.object, event.object_id, event.refs) == ("Case", "5005g000001CCCC", {"AccountId": "0015g000002DDDD"})
    # The 15-character form of the same org id is the same org.
    same = client.post(OUTBOUND, data=outbound_message(ORG_ID[:15], "04l5g000000EEEE"))
    assert same.status_code == 200 and len(_events(store, "received")) == 2
    other = client.post(OUTBOUND, data=outbound_message("00D000000000OTHER"))
    assert other.status_code == 200 and b"<Ack>true</Ack>" in other.data  # acknowledged so it stops resending
    assert _events(store, "ignored")[0].reason.startswith("organization 00D000000000OTHER")
    assert client.post(OUTBOUND, data=b"<notxml").status_code == 400
    bomb = b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><l>&b;</l>'
    assert client.post(OUTBOUND, data=bomb).status_code == 400


def flow_headers(body: bytes, secret: str = CALLOUT_SECRET, age: int = 0) -> dict:
    timestamp = str(int(time.time()) - age)
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {"X-CSE-Timestamp": timestamp, "X-CSE-Signature": f"sha256={digest}", "Content-Type": "application/json"}


def test_salesforce_flow_callouts(client, store):
    body = json.dumps({"orgId": ORG_ID, "events": [{"id": "f-1", "object": "Account",
                                                   "recordId": "0015g000001AAAA"}]}).encode()  # fmt: skip
    assert client.post("/webhooks/salesforce/flow", data=body, headers=flow_headers(body)).status_code == 204
    assert client.post("/webhooks/salesforce/flow", data=body, headers=flow_headers(body, "x")).status_code == 401
    assert client.post("/webhooks/salesforce/flow", data=body, headers=flow_headers(body, age=600)).status_code == 401
    assert [e.event_id for e in _events(store, "received")] == ["f-1"]


def test_admins_see_the_event_log(client, store):
    body = hubspot_body(31)
    client.post("/webhooks/hubspot", data=body, headers=hubspot_v3_headers(body))
    client.post("/webhooks/hubspot", data=body, headers=hubspot_v3_headers(body, secret="bad"))
    assert client.get("/admin/events").status_code == 302
    sign_in(client, store)
    log = client.get("/admin/events?format=json").get_json()
    assert log["summary"]["counts"] == {"received": 1, "rejected": 1}
    page = client.get("/admin/events")
    assert page.status_code == 200 and b"signature v3 does not match" in page.data


def test_nul_characters_are_stored_not_refused(client, store):
    event = {
        "eventId": 7,
        "portalId": int(PORTAL),
        "subscriptionType": "company.propertyChange",
        "objectId": 12,
        "propertyName": "name",
        "propertyValue": "nul\u0000value",
    }
    body = json.dumps([event]).encode()
    assert client.post("/webhooks/hubspot", data=body, headers=hubspot_v3_headers(body)).status_code == 204
    assert client.post("/webhooks/hubspot", data=b"\x00", headers=hubspot_v3_headers(b"\x00")).status_code == 400
    [stored] = _events(store, "received")
    assert stored.refs["propertyValue"] == "nul\ufffdvalue" and json.loads(stored.payload)["objectId"] == 12
