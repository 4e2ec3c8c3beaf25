"""The intake's held database connection: a connection the database dropped costs a retry, never an event."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, select, text

from app import webhook_intake
from app.store.models import WebhookEvent
from app.webhook_intake import record_events
from connectors.webhook_common import VendorEvent


def _event(event_id: str) -> VendorEvent:
    return VendorEvent(event_id, "42", "company", "501", "company.propertyChange")


def _lose_the_held_connection(store: Engine) -> None:
    """What a database restart does to an idle connection: the server ends it (or, for SQLite, it is closed)."""
    held = webhook_intake._held.connection
    if store.dialect.name == "sqlite":
        held.close()
        return
    with store.connect() as conn:
        assert conn.scalar(text("SELECT pg_terminate_backend(:pid)"), {"pid": held.info.backend_pid})


def _stored(store: Engine) -> list[str]:
    with store.connect() as conn:
        return list(conn.scalars(select(WebhookEvent.event_id).order_by(WebhookEvent.id)))


def test_an_event_arriving_on_a_dropped_connection_is_stored_on_a_new_one(store):
    assert record_events(store, "hubspot", [_event("1")], b"[]").new == ["1"]
    _lose_the_held_connection(store)
    assert record_events(store, "hubspot", [_event("2"), _event("1")], b"[]").new == ["2"]
    assert _stored(store) == ["1", "2"]


def test_a_failed_request_leaves_nothing_behind_and_the_next_one_works(store):
    broken = VendorEvent("3", "42", "company", "501", "company.creation", {"not": {"json", "able"}})
    with pytest.raises(TypeError):
        record_events(store, "hubspot", [_event("2"), broken], b"[]")
    assert _stored(store) == []  # the whole request rolled back: the sender's retry brings both again
    assert record_events(store, "hubspot", [_event("2")], b"[]").new == ["2"]
