"""The webhook event log keeps settled events for the retention window, processed events' ids (the deduplication
keys) for longer, and waiting events until they are done."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from sqlalchemy import select, update

from app.jobs import prune_webhook_events_job
from app.store.models import WebhookEvent
from app.webhook_events.retention import prune_webhook_events
from app.webhook_events.store import record_events, record_refusal
from connectors.webhook_common import VendorEvent

NOW = datetime(2026, 11, 27, 12, 0)


def _event(event_id: str) -> VendorEvent:
    payload = json.dumps({"eventId": event_id})
    return VendorEvent(event_id, "42", "company", "501", "company.propertyChange", payload=payload)


def _age(store, event_ids: list[str], status: str, days: int) -> None:
    table = WebhookEvent.__table__
    with store.begin() as conn:
        conn.execute(
            update(table)
            .where(table.c.event_id.in_(event_ids))
            .values(status=status, received_at=NOW - timedelta(days=days))
        )


def _left(store) -> list[str]:
    with store.connect() as conn:
        return sorted(conn.scalars(select(WebhookEvent.event_id)))


def _with_payload(store) -> list[str]:
    with store.connect() as conn:
        return sorted(conn.scalars(select(WebhookEvent.event_id).where(WebhookEvent.payload.is_not(None))))


def test_settled_events_past_the_window_lose_their_body_and_waiting_ones_stay(store):
    record_events(store, "hubspot", [_event(f"old-{n}") for n in range(5)])
    record_events(store, "hubspot", [_event("recent"), _event("old-waiting"), _event("old-claimed")])
    _age(store, [f"old-{n}" for n in range(5)], "processed", days=40)
    _age(store, ["recent"], "processed", days=3)
    _age(store, ["old-waiting"], "received", days=90)
    _age(store, ["old-claimed"], "processing", days=90)
    record_refusal(store, "intercom", "rejected", "signature does not match", b"{}", "203.0.113.9")
    with store.begin() as conn:  # the refusal is old too
        conn.execute(update(WebhookEvent.__table__).where(WebhookEvent.status == "rejected")
                     .values(received_at=NOW - timedelta(days=31)))  # fmt: skip

    assert prune_webhook_events(store, NOW - timedelta(days=30), chunk=2) == 6
    # The refusal went; the old processed events keep their ids, so a replay of them is still a replay.
    assert _left(store) == sorted(["old-claimed", "old-waiting", "recent", *(f"old-{n}" for n in range(5))])
    assert _with_payload(store) == ["old-claimed", "old-waiting", "recent"]
    assert prune_webhook_events(store, NOW - timedelta(days=30)) == 0
    assert record_events(store, "hubspot", [_event("old-3")]).duplicates == ["old-3"]
    # Past the longer window the ids go too.
    assert prune_webhook_events(store, NOW - timedelta(days=30), keys_before=NOW - timedelta(days=35)) == 5
    assert _left(store) == ["old-claimed", "old-waiting", "recent"]


def test_failed_events_past_the_window_lose_their_body_and_keep_their_reason(store):
    record_events(store, "hubspot", [_event("failed-old"), _event("failed-recent")])
    _age(store, ["failed-old"], "failed", days=40)
    _age(store, ["failed-recent"], "failed", days=3)
    with store.begin() as conn:
        conn.execute(update(WebhookEvent.__table__).values(reason="vendor refused"))
    assert prune_webhook_events(store, NOW - timedelta(days=30), keys_before=NOW - timedelta(days=35)) == 1
    assert _left(store) == ["failed-old", "failed-recent"] and _with_payload(store) == ["failed-recent"]
    with store.connect() as conn:
        assert set(conn.scalars(select(WebhookEvent.reason))) == {"vendor refused"}


def test_the_nightly_job_honours_the_setting(store, monkeypatch):
    url = store.url.render_as_string(hide_password=False)
    record_events(store, "hubspot", [_event("a"), _event("b")])
    _age(store, ["a"], "processed", days=400)
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("CSE_WEBHOOK_RETENTION_DAYS", "0")
    assert prune_webhook_events_job() == 0 and _left(store) == ["a", "b"]
    monkeypatch.setenv("CSE_WEBHOOK_RETENTION_DAYS", "30")
    assert prune_webhook_events_job() == 1 and _left(store) == ["b"]


def test_deduplication_keys_outlive_the_bodies_by_default(store, monkeypatch):
    url = store.url.render_as_string(hide_password=False)
    record_events(store, "hubspot", [_event("45-days"), _event("70-days")])
    _age(store, ["45-days"], "processed", days=45)
    _age(store, ["70-days"], "processed", days=70)
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("CSE_WEBHOOK_RETENTION_DAYS", "30")  # ids kept twice as long unless CSE_WEBHOOK_DEDUPE_DAYS
    assert prune_webhook_events_job() == 2
    assert _left(store) == ["45-days"] and _with_payload(store) == []
    monkeypatch.setenv("CSE_WEBHOOK_DEDUPE_DAYS", "40")
    assert prune_webhook_events_job() == 1 and _left(store) == []
