"""The Segment-compatible intake: write-key auth, single calls and batches stored before the answer, messageId
dedupe, and processing that lands track calls in the activity table through the import mapping's event types."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app.history.mapping import EventType
from app.history.segment import ingest_segment_events, segment_types
from app.settings import Settings
from app.store.models import Account, ActivityEvent, WebhookEvent
from app.web import create_app
from app.webhook_events import store as intake_store
from engine.canonical import EventKind

KEY = "segment-write-key-123"
MAPPING = str(Path(__file__).parent / "fixtures" / "history" / "saas.yaml")
SETTINGS = Settings.from_env({"CSE_SEGMENT_WRITE_KEY": KEY, "CSE_WEBHOOK_COALESCE_SECONDS": "3600"})


def auth(key: str = KEY) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def track(message_id: str, event: str = "post", group: str | None = "acme", user: str = "u1") -> dict:
    message = {"type": "track", "messageId": message_id, "event": event, "userId": user,
               "timestamp": "2026-11-30T10:00:00Z", "properties": {}}  # fmt: skip
    if group:
        message["context"] = {"groupId": group}
    return message


@pytest.fixture
def client(store):
    app = create_app(SETTINGS, engine=store)
    app.testing = True
    return app.test_client()


def _rows(store, status: str | None = None) -> list:
    table = WebhookEvent.__table__
    query = select(table).where(table.c.vendor == "segment").order_by(table.c.id)
    if status:
        query = query.where(table.c.status == status)
    with store.connect() as conn:
        return conn.execute(query).all()


def test_write_key_is_required_and_checked(client, store) -> None:
    body = json.dumps(track("m1"))
    assert client.post("/v1/track", data=body, content_type="application/json").status_code == 401
    assert (
        client.post("/v1/track", data=body, headers=auth("wrong"), content_type="application/json").status_code == 401
    )
    assert [r.status for r in _rows(store)] == ["rejected", "rejected"]  # logged by digest, never stored as events
    closed = create_app(Settings.from_env({}), engine=store).test_client()
    assert closed.post("/v1/track", data=body, headers=auth(), content_type="application/json").status_code == 401
    ok = client.post("/v1/track", data=body, headers=auth(), content_type="application/json")
    assert ok.status_code == 200 and ok.get_json() == {"success": True}
    assert [r.event_id for r in _rows(store, "received")] == ["m1"]


def test_batch_and_single_calls_are_stored_and_deduplicated_by_message_id(client, store) -> None:
    batch = {"batch": [track("b1"), track("b2", "like"), {"type": "group", "messageId": "g1", "userId": "u9",
                                                          "groupId": "globex", "traits": {"name": "Globex"}},
                       {"type": "identify", "messageId": "i1", "userId": "u9", "traits": {}}]}  # fmt: skip
    assert client.post("/v1/batch", json=batch, headers=auth()).status_code == 200
    assert client.post("/v1/batch", json=batch, headers=auth()).status_code == 200  # the sender retried
    assert client.post("/v1/group", json=batch["batch"][2], headers=auth()).status_code == 200
    rows = _rows(store)
    assert sorted(r.event_id for r in rows) == ["b1", "b2", "g1", "i1"]
    assert {r.event_id: r.duplicates for r in rows} == {"b1": 1, "b2": 1, "g1": 2, "i1": 1}
    assert {r.event_id: r.object for r in rows} == {"b1": "track", "b2": "track", "g1": "group", "i1": "identify"}


@pytest.mark.parametrize(
    "body",
    [b"not json", json.dumps({"batch": "x"}).encode(), json.dumps({"batch": [{"type": "alias", "messageId": "a"}]}),
     json.dumps({"batch": [{"type": "track", "event": "post"}]})],
)  # fmt: skip
def test_malformed_requests_get_400_and_store_nothing(client, store, body) -> None:
    response = client.post("/v1/batch", data=body, headers=auth(), content_type="application/json")
    assert response.status_code == 400
    assert [r.status for r in _rows(store)] == ["malformed"]


def test_nothing_is_acknowledged_before_it_is_committed(client, store, monkeypatch) -> None:
    """A failing commit answers 500, so Segment retries; an answered message is already readable elsewhere."""

    def broken(*args, **kwargs):
        raise RuntimeError("database down")

    monkeypatch.setattr(intake_store._writer, "_insert", broken)
    client.application.testing = False
    assert client.post("/v1/track", json=track("lost?"), headers=auth()).status_code == 500
    monkeypatch.undo()
    assert client.post("/v1/track", json=track("kept"), headers=auth()).status_code == 200
    with store.connect() as conn:  # another connection sees it: committed before the answer
        stored = conn.execute(select(WebhookEvent.event_id).where(WebhookEvent.vendor == "segment")).scalars().all()
    assert stored == ["kept"]


def test_processing_maps_track_calls_through_the_event_types(client, store) -> None:
    batch = {"batch": [
        {"type": "group", "messageId": "g1", "userId": "u2", "groupId": "globex"},
        track("t1", "post", "acme", "u1"), track("t2", "post", "acme", "u1"), track("t3", "like", None, "u2"),
        track("t4", "not-a-type", "acme"), track("t5", "post", None, "stranger"),
    ]}  # fmt: skip
    assert client.post("/v1/batch", json=batch, headers=auth()).status_code == 200
    result = ingest_segment_events(store, segment_types(MAPPING))
    assert result.messages == 6 and result.skipped == 2
    with store.connect() as conn:
        keys = dict(conn.execute(select(Account.id, Account.key)).all())
        events = conn.execute(
            select(ActivityEvent.account_id, ActivityEvent.kind, ActivityEvent.feature, ActivityEvent.count)
            .where(ActivityEvent.source == "segment").order_by(ActivityEvent.external_id)
        ).all()  # fmt: skip
        waiting = conn.execute(select(func.count()).where(WebhookEvent.status != "processed",
                                                          WebhookEvent.vendor == "segment")).scalar()  # fmt: skip
    named = sorted((keys[a], k, f) for a, k, f, _ in events)
    # two posts at acme, a like at globex through the user's group call, and one active user-day per account
    assert named == [("acme", "feature_used", "post"), ("acme", "feature_used", "post"),
                     ("acme", "login", "active_users"), ("globex", "feature_used", "like"),
                     ("globex", "login", "active_users")]  # fmt: skip
    assert waiting == 0
    reasons = {r.event_id: r.reason for r in _rows(store)}
    assert "not in the mapping" in reasons["t4"] and "no groupId" in reasons["t5"] and reasons["t1"] is None
    assert ingest_segment_events(store, segment_types(MAPPING)).messages == 0  # nothing taken twice


def test_page_and_screen_calls_are_usage_mapped_by_name_or_by_call(client, store) -> None:
    def view(call: str, message_id: str, name: str | None, group: str = "acme") -> dict:
        message = {"type": call, "messageId": message_id, "userId": "u1", "context": {"groupId": group},
                   "timestamp": "2026-11-30T10:00:00Z", "properties": {"path": "/x"}}  # fmt: skip
        return {**message, "name": name} if name else message

    assert client.post("/v1/page", json=view("page", "p1", "like"), headers=auth()).status_code == 200
    assert client.post("/v1/screen", json=view("screen", "s1", "Settings"), headers=auth()).status_code == 200
    older = {**view("page", "p2", None), "properties": {"name": "post"}}  # the name inside properties
    batch = {"batch": [older, view("page", "p3", "Pricing"), view("screen", "s2", None, "globex")]}
    assert client.post("/v1/batch", json=batch, headers=auth()).status_code == 200
    assert {r.event_id: (r.object, r.kind) for r in _rows(store)} == {
        "p1": ("page", "like"), "s1": ("screen", "Settings"), "p2": ("page", "post"), "p3": ("page", "Pricing"),
        "s2": ("screen", "screen")}  # fmt: skip
    # pages named after a mapped type count as that type; every screen counts as "screen_view"; other pages skip
    types = {**segment_types(MAPPING), "screen": EventType(kind=EventKind.FEATURE_USED, feature="screen_view")}
    result = ingest_segment_events(store, types)
    assert result.messages == 5 and result.skipped == 1
    with store.connect() as conn:
        keys = dict(conn.execute(select(Account.id, Account.key)).all())
        used = (ActivityEvent.source == "segment") & (ActivityEvent.kind == "feature_used")
        events = conn.execute(select(ActivityEvent.account_id, ActivityEvent.feature).where(used)).all()
    assert sorted((keys[a], f) for a, f in events) == [("acme", "like"), ("acme", "post"), ("acme", "screen_view"),
                                                       ("globex", "screen_view")]  # fmt: skip
    assert "not in the mapping" in {r.event_id: r.reason for r in _rows(store)}["p3"]
