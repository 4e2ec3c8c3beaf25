"""The intake's writer: concurrent requests share commits, and a dropped connection costs a retry, never an event."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import Engine, select, text

from app.store.models import WebhookEvent
from app.webhook_events import store as webhook_store
from app.webhook_events.store import Intake, record_events
from connectors.webhook_common import VendorEvent


def _event(event_id: str) -> VendorEvent:
    return VendorEvent(event_id, "42", "company", "501", "company.propertyChange")


def _lose_the_held_connection(store: Engine) -> None:
    """What a database restart does to an idle connection: the server ends it (or, for SQLite, it is closed)."""
    held = webhook_store._writer._connection
    if store.dialect.name == "sqlite":
        held.close()
        return
    with store.connect() as conn:
        assert conn.scalar(text("SELECT pg_terminate_backend(:pid)"), {"pid": held.info.backend_pid})


def _stored(store: Engine) -> list[str]:
    with store.connect() as conn:
        return list(conn.scalars(select(WebhookEvent.event_id).order_by(WebhookEvent.id)))


def test_an_event_arriving_on_a_dropped_connection_is_stored_on_a_new_one(store):
    assert record_events(store, "hubspot", [_event("1")]).new == ["1"]
    _lose_the_held_connection(store)
    assert record_events(store, "hubspot", [_event("2"), _event("1")]).new == ["2"]
    assert _stored(store) == ["1", "2"]


def test_a_failed_request_leaves_nothing_behind_and_the_next_one_works(store):
    broken = VendorEvent("3", "42", "company", "501", "company.creation", {"not": {"json", "able"}})
    with pytest.raises(TypeError):
        record_events(store, "hubspot", [_event("2"), broken])
    assert _stored(store) == []  # the whole request rolled back: the sender's retry brings both again
    assert record_events(store, "hubspot", [_event("2")]).new == ["2"]


def test_concurrent_requests_share_commits_and_each_gets_its_own_answer(store, monkeypatch):
    """Threaded workers: requests committed together still learn which of their events were new."""
    record_events(store, "hubspot", [_event("seen-before")])
    batches, insert = [], webhook_store._IntakeWriter._insert

    def slow_first_insert(engine, cursor, batch):  # the first writer dawdles, so the others queue behind it
        batches.append(len(batch))
        if len(batches) == 1:
            time.sleep(0.3)
        return insert(engine, cursor, batch)

    monkeypatch.setattr(webhook_store._IntakeWriter, "_insert", staticmethod(slow_first_insert))
    started = threading.Barrier(8)

    def mine(worker: int) -> list[str]:
        return [f"w{worker}-{n}" for n in range(worker % 3 + 1)]  # requests of different shapes

    def request(worker: int) -> Intake:
        started.wait()
        if worker:
            time.sleep(0.05)  # worker 0 writes first
        own = [_event(i) for i in mine(worker)]
        events = [_event("seen-before"), *own] if worker % 2 else [*own, _event("seen-before")]
        return record_events(store, "hubspot", [*events, own[0]])

    with ThreadPoolExecutor(8) as pool:
        intakes = list(pool.map(request, range(8)))
    assert sum(batches) == 8 and max(batches) > 1  # requests that waited were committed together
    for worker, intake in enumerate(intakes):
        assert intake.new == mine(worker)
        assert intake.duplicates == ["seen-before", f"w{worker}-0"]
    assert sorted(_stored(store)) == sorted(["seen-before", *(i for w in range(8) for i in mine(w))])
    with store.connect() as conn:
        replays = dict(conn.execute(select(WebhookEvent.event_id, WebhookEvent.duplicates)).all())
    assert replays["seen-before"] == 8 and all(replays[f"w{w}-0"] == 1 for w in range(8))
