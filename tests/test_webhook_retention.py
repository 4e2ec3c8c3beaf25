"""The webhook event log keeps settled events for the retention window and waiting events until they are done."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select, update

from app.jobs import prune_webhook_events_job
from app.store.models import WebhookEvent
from app.webhook_events.retention import prune_webhook_events
from app.webhook_events.store import record_events, record_refusal
from connectors.webhook_common import VendorEvent

NOW = datetime(2026, 11, 27, 12, 0)


def _event(event_id: str) -> VendorEvent:
    return VendorEvent(event_id, "42", "company", "501", "company.propertyChange")


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


def test_settled_events_past_the_window_go_and_waiting_ones_stay(store):
    record_events(store, "hubspot", [_event(f"old-{n}") for n in range(5)], b"[]")
    record_events(store, "hubspot", [_event("recent"), _event("old-waiting"), _event("old-claimed")], b"[]")
    _age(store, [f"old-{n}" for n in range(5)], "processed", days=40)
    _age(store, ["recent"], "processed", days=3)
    _age(store, ["old-waiting"], "received", days=90)
    _age(store, ["old-claimed"], "processing", days=90)
    record_refusal(store, "intercom", "rejected", "signature does not match", b"{}")
    with store.begin() as conn:  # the refusal is old too
        conn.execute(update(WebhookEvent.__table__).where(WebhookEvent.status == "rejected")
                     .values(received_at=NOW - timedelta(days=31)))  # fmt: skip

    assert prune_webhook_events(store, NOW - timedelta(days=30), chunk=2) == 6
    assert _left(store) == ["old-claimed", "old-waiting", "recent"]
    assert prune_webhook_events(store, NOW - timedelta(days=30)) == 0


def test_the_nightly_job_honours_the_setting(store, monkeypatch):
    url = store.url.render_as_string(hide_password=False)
    record_events(store, "hubspot", [_event("a"), _event("b")], b"[]")
    _age(store, ["a"], "processed", days=400)
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("CSE_WEBHOOK_RETENTION_DAYS", "0")
    assert prune_webhook_events_job() == 0 and _left(store) == ["a", "b"]
    monkeypatch.setenv("CSE_WEBHOOK_RETENTION_DAYS", "30")
    assert prune_webhook_events_job() == 1 and _left(store) == ["b"]
