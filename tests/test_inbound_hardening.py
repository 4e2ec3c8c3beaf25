"""Issue 16's inbound findings, each as a request an attacker or a careless sender could make (see test_webhooks)."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import replace

import pytest
from sqlalchemy import event as sa_event

from app.settings import Settings
from app.web import create_app
from connectors.salesforce import webhooks as salesforce
from connectors.salesforce.client import SalesforceConfig
from tests.test_webhooks import (
    ORG_ID,
    OUTBOUND,
    PORTAL,
    SETTINGS,
    _events,
    flow_headers,
    hubspot_v3_headers,
    intercom_body,
    intercom_headers,
)
from tests.web_support import sign_in


@pytest.fixture
def client(store):
    return create_app(replace(SETTINGS, webhook_max_bytes=4 << 20), engine=store).test_client()


def outbound_messages(count: int) -> bytes:
    notifications = "".join(
        f'<Notification><Id>04l{n:012d}</Id><sObject xsi:type="sf:Case" '
        f'xmlns:sf="urn:sobject.enterprise.soap.sforce.com"><sf:Id>500{n:012d}</sf:Id></sObject></Notification>'
        for n in range(count)
    )
    return (
        f'<soapenv:Envelope xmlns:soapenv="{salesforce.SOAP_NS}" xmlns:xsi="{salesforce.XSI_NS}"><soapenv:Body>'
        f'<notifications xmlns="{salesforce.OUTBOUND_NS}"><OrganizationId>{ORG_ID}</OrganizationId>{notifications}'
        "</notifications></soapenv:Body></soapenv:Envelope>"
    ).encode()


def _refusals_hold_no_body(store) -> None:
    for row in _events(store):
        if row.status in ("rejected", "malformed", "ignored"):
            assert row.payload is None and row.body_sha256 and row.body_bytes is not None


# ---- item 2: Salesforce Outbound Messages ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/webhooks/salesforce", "/webhooks/salesforce/not-the-token"])
def test_an_outbound_message_without_the_url_token_is_refused_before_it_is_parsed(client, store, path, monkeypatch):
    def parse(*args):
        raise AssertionError("an unauthenticated body was parsed")

    monkeypatch.setattr(salesforce, "parse_outbound", parse)
    body = outbound_messages(7000)
    response = client.post(path, data=body, content_type="text/xml")
    assert response.status_code == 401 and b"<faultcode>soapenv:Client</faultcode>" in response.data
    [row] = _events(store)
    assert (row.status, row.payload, row.body_bytes) == ("rejected", None, len(body))
    assert row.body_sha256 == hashlib.sha256(body).hexdigest() and row.source == "127.0.0.1"


def test_outbound_messages_need_a_configured_token(store):
    unconfigured = create_app(replace(SETTINGS, salesforce_outbound_token=None), engine=store).test_client()
    assert unconfigured.post("/webhooks/salesforce/anything", data=outbound_messages(1)).status_code == 401
    assert _events(store, "received") == []


def test_an_authenticated_message_of_more_than_100_notifications_is_refused(client, store):
    response = client.post(OUTBOUND, data=outbound_messages(101), content_type="text/xml")
    assert response.status_code == 400 and b"at most 100" in response.data and b"soapenv:Fault" in response.data
    assert _events(store, "received") == []
    _refusals_hold_no_body(store)


def test_a_message_of_100_notifications_stores_each_notification_once(client, store):
    body = outbound_messages(100)
    assert client.post(OUTBOUND, data=body, content_type="text/xml").status_code == 200
    rows = _events(store, "received")
    assert len(rows) == 100
    # Each row holds its own notification (with its namespace declarations), not the request: storage grows with the
    # body, not with the body times the notification count.
    assert sum(len(r.payload) for r in rows) < 2 * len(body)
    assert all(r.event_id in r.payload and r.object_id in r.payload for r in rows)
    assert rows[0].event_id not in rows[1].payload


# ---- item 4 (replays) and item 10/11: bad input is a 4xx with a reason -------------------------------------------


def _hubspot(client, events) -> tuple[int, bytes]:
    body = json.dumps(events).encode() if not isinstance(events, bytes) else events
    response = client.post("/webhooks/hubspot", data=body, headers=hubspot_v3_headers(body))
    return response.status_code, response.data


@pytest.mark.parametrize("object_id", [None, [1], {"a": 1}, 1.5, "17", True, float("nan")],
                         ids=["null", "list", "object", "float", "string", "bool", "nan"])  # fmt: skip
def test_hubspot_junk_object_ids_are_refused(client, store, object_id):
    event = {"eventId": 1, "portalId": int(PORTAL), "subscriptionType": "company.creation", "objectId": object_id}
    status, answer = _hubspot(client, [event])
    assert status == 400 and (b"objectId" in answer or b"NaN is not JSON" in answer)
    assert _events(store, "received") == []
    _refusals_hold_no_body(store)


def test_more_than_100_hubspot_events_are_refused(client, store):
    events = [{"eventId": n, "portalId": int(PORTAL), "subscriptionType": "company.creation", "objectId": n}
              for n in range(101)]  # fmt: skip
    assert _hubspot(client, events)[0] == 400 and _events(store, "received") == []


def _intercom(client, payload: dict | bytes) -> int:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return client.post("/webhooks/intercom", data=body, headers=intercom_headers(body)).status_code


@pytest.mark.parametrize(
    "change",
    [
        lambda p: p.update(id={"a": 1}),
        lambda p: p.update(id=float("nan")),
        lambda p: p.update(id=12),
        lambda p: p.update(data=[1, 2]),
        lambda p: p["data"].update(item="contact"),
        lambda p: p["data"]["item"].update(id={"a": 1}),
        lambda p: p["data"]["item"].update(companies=[{"id": "x"}]),
        lambda p: p["data"]["item"]["companies"].update(data=[{"id": None}]),
        lambda p: p.update(topic=["contact.created"]),
    ],
    ids=["id-object", "id-nan", "id-number", "data-list", "item-string", "item-id-object", "companies-list",
         "company-id-null", "topic-list"],
)  # fmt: skip
def test_signed_intercom_notifications_of_the_wrong_shape_are_refused(client, store, change):
    payload = json.loads(intercom_body())
    change(payload)
    assert _intercom(client, payload) == 400
    assert _events(store, "received") == []


@pytest.mark.parametrize("path", ["/webhooks/hubspot", "/webhooks/intercom", "/webhooks/salesforce/flow"])
def test_deeply_nested_json_is_a_400(client, store, path):
    body = b"[" * 100_000 + b"]" * 100_000
    headers = {"/webhooks/hubspot": hubspot_v3_headers, "/webhooks/intercom": intercom_headers,
               "/webhooks/salesforce/flow": flow_headers}[path](body)  # fmt: skip
    response = client.post(path, data=body, headers=headers)
    assert response.status_code == 400 and b"nested too deeply" in response.data


def test_flow_timestamps_must_be_ascii_digits(client, store):
    body = json.dumps({"orgId": ORG_ID, "events": []}).encode()
    for digits in ("\u00b9\u00b2\u00b3", "\u0661\u0667\u0666\u0667\u0662\u0662\u0665\u0666\u0660\u0660"):  # ¹²³, ١٧٦٧…
        headers = {**flow_headers(body), "X-CSE-Timestamp": digits}
        response = client.post("/webhooks/salesforce/flow", data=body, headers=headers)
        assert response.status_code == 401 and b"invalid X-CSE-Timestamp" in response.data


def test_admin_bad_input_is_a_400_or_a_sign_in(client, store):
    creds = "Basic " + base64.b64encode("ädmin:pässword".encode()).decode()
    refused = client.get("/admin/events", headers={"Authorization": creds})
    assert refused.status_code == 302 and refused.headers["Location"].startswith("/login")
    sign_in(client, store)
    for query in ("limit=abc", "limit=-1", "limit=0", "limit=" + "9" * 5000, "limit=\u0663", "vendor=hub%00spot"):
        response = client.get(f"/admin/events?{query}")
        assert response.status_code == 400 and response.data, query
    assert client.get("/admin/events?limit=5").status_code == 200


# ---- item 5: refused requests cost a digest, within a budget per source --------------------------------------------


def test_refused_requests_are_logged_without_their_body_and_throttled_per_source(store):
    client = create_app(replace(SETTINGS, webhook_refusals_per_minute=3), engine=store).test_client()
    junk = b"x" * 50_000
    answers = [client.post("/webhooks/intercom", data=junk).status_code for _ in range(5)]
    assert answers == [401, 401, 401, 429, 429]
    over = client.post("/webhooks/intercom", data=junk)
    assert over.status_code == 429 and int(over.headers["Retry-After"]) >= 1
    rows = _events(store)
    assert len(rows) == 3 and {r.payload for r in rows} == {None} and {r.body_bytes for r in rows} == {50_000}
    # Another source has its own budget, and a verified request from the throttled source still goes through.
    other = client.post("/webhooks/intercom", data=junk, environ_base={"REMOTE_ADDR": "198.51.100.7"})
    assert other.status_code == 401 and _events(store)[-1].source == "198.51.100.7"
    body = intercom_body()
    assert client.post("/webhooks/intercom", data=body, headers=intercom_headers(body)).status_code == 204


def test_the_refusal_budget_is_one_for_all_web_workers_through_redis(store, throwaway_redis_url):
    settings = replace(SETTINGS, webhook_refusals_per_minute=4, redis_url=throwaway_redis_url)
    workers = [create_app(settings, engine=store).test_client() for _ in range(2)]  # two gunicorn workers' apps
    answers = [workers[i % 2].post("/webhooks/intercom", data=b"junk").status_code for i in range(6)]
    assert answers == [401, 401, 401, 401, 429, 429], "four refusals logged between them, not four each"
    assert len(_events(store)) == 4


def test_without_an_answering_redis_each_worker_still_throttles_on_its_own(store):
    from sandbox.redis_server import free_port

    gone = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    client = create_app(replace(SETTINGS, webhook_refusals_per_minute=2, redis_url=gone), engine=store).test_client()
    assert [client.post("/webhooks/intercom", data=b"junk").status_code for _ in range(3)] == [401, 401, 429]


# ---- item 12: secrets in reprs -----------------------------------------------------------------------------------


def test_settings_repr_masks_passwords_in_urls():
    settings = Settings.from_env({"DATABASE_URL": "postgresql://cse:db-s3cret@db:5432/cse",
                                  "REDIS_URL": "redis://:redis-s3cret@cache:6379/0",
                                  "SALESFORCE_OUTBOUND_TOKEN": "url-t0ken", "CSE_SECRET_KEY": "adm1n"})  # fmt: skip
    shown = repr(settings)
    for secret in ("db-s3cret", "redis-s3cret", "url-t0ken", "adm1n"):
        assert secret not in shown
    assert "postgresql+psycopg://cse:***@db:5432/cse" in shown and "redis://:***@cache:6379/0" in shown


def test_salesforce_config_repr_hides_credentials():
    config = SalesforceConfig(username="u@example.com", password="pw-s3cret", security_token="tok-s3cret",
                              session_id="sess-s3cret", private_key="-----BEGIN PRIVATE KEY-----s3cret")  # fmt: skip
    shown = repr(config)
    assert "u@example.com" in shown and "s3cret" not in shown


# ---- item 13: the admin log reads no payloads; security headers everywhere ---------------------------------------


def test_the_admin_log_does_not_read_payloads(client, store):
    body = outbound_messages(3)
    client.post(OUTBOUND, data=body, content_type="text/xml")
    statements: list[str] = []

    def record(conn, cursor, statement, *args):
        statements.append(statement)

    sign_in(client, store)
    sa_event.listen(store, "before_cursor_execute", record)
    try:
        listed = client.get("/admin/events?format=json").get_json()["events"]
    finally:
        sa_event.remove(store, "before_cursor_execute", record)
    assert len(listed) == 3 and "payload" not in listed[0]
    assert statements and not any("payload" in s for s in statements)


@pytest.mark.parametrize("path", ["/healthz", "/admin/events", "/webhooks/hubspot", "/nowhere"])
def test_every_response_carries_the_security_headers(client, path):
    response = client.get(path)
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert "Strict-Transport-Security" not in response.headers
    assert "max-age" in client.get(path, base_url="https://cse.example.com").headers["Strict-Transport-Security"]


def test_forwarded_proto_counts_only_behind_a_configured_proxy(store):
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.5"}
    direct = create_app(SETTINGS, engine=store).test_client()
    assert "Strict-Transport-Security" not in direct.get("/healthz", headers=forwarded).headers
    proxied = create_app(replace(SETTINGS, proxy_hops=1), engine=store).test_client()
    assert "Strict-Transport-Security" in proxied.get("/healthz", headers=forwarded).headers
    proxied.post("/webhooks/intercom", data=b"{}", headers=forwarded)
    assert _events(store)[-1].source == "203.0.113.5"


def test_the_event_log_page_needs_no_inline_style(client, store):
    sign_in(client, store)
    page = client.get("/admin/events")
    inline_scripts = re.findall(rb"<script(?![^>]*\bsrc=)", page.data)  # our own script files are fine
    assert page.status_code == 200 and b"<style" not in page.data and b" style=" not in page.data
    assert inline_scripts == [] and b'<script src="/static/' in page.data
    assert client.get("/static/app.css").status_code == 200
