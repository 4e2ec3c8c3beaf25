"""Issue 16 items 6–8: a failed pull is retried with a backoff then marked failed, one bad event or vendor fails
alone, a run holds its events while it lives and settles only the events it still holds, and a run that dies has
used its events' attempt, so an event that kills every run taking it ends `failed` (CRM and Segment events alike).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select, update

from app.history.segment import ingest_segment_events
from app.store.load import load_accounts
from app.store.models import ExternalId, WebhookEvent
from app.web import create_app
from app.webhook_events.claims import claim_events
from app.webhook_events.processing import CRM_EVENTS, RetryPolicy, process_received
from app.webhook_events.store import record_events
from connectors.webhook_common import VendorEvent
from tests.factories import accounts_frame
from tests.test_webhooks import SETTINGS
from tests.web_support import sign_in

POLICY = RetryPolicy(max_attempts=3, backoff=timedelta(minutes=1))


def _link(store, n: int = 3) -> dict[str, int]:
    """Accounts A0000… linked to HubSpot companies 500… and Intercom companies ic-0…"""
    with store.begin() as conn:
        ids = load_accounts(conn, accounts_frame(n))
        conn.execute(ExternalId.__table__.insert(), [
            {"account_id": ids[f"A{i:04d}"], "vendor": vendor, "object": "companies", "external_id": external}
            for i in range(n) for vendor, external in (("hubspot", f"50{i}"), ("intercom", f"ic-{i}"))
        ])  # fmt: skip
    return ids


def _rows(store) -> dict[str, object]:
    with store.connect() as conn:
        return {r.event_id: r for r in conn.execute(select(WebhookEvent.__table__)).all()}


def _company_events(vendor: str, ids: list[str]) -> list[VendorEvent]:
    return [VendorEvent(f"{vendor}-{i}", "t", "company", i, "company.change") for i in ids]


def _failing_for(bad: set[str], calls: list | None = None):
    """A pull that fails whenever the records it is asked for include one of `bad` (vendor records)."""

    def pull(wanted):
        if calls is not None:
            calls.append(wanted)
        asked = {f"{v}:{i}" for v, objects in wanted.items() for ids in objects.values() for i in ids}
        if asked & bad:
            raise RuntimeError(f"vendor refused {sorted(asked & bad)}")

    return pull


def test_a_failed_pull_keeps_its_events_for_retry_then_marks_them_failed(store):
    _link(store, 1)
    record_events(store, "hubspot", _company_events("hubspot", ["500"]))
    pull = _failing_for({"hubspot:500"})
    result = process_received(store, pull, lambda accounts: None, policy=POLICY)
    row = _rows(store)["hubspot-500"]
    assert result.retrying == 1 and result.completed == 0
    assert row.status == "received" and row.attempts == 1, "not processed: waiting for a retry"
    assert "vendor refused" in row.reason and row.next_attempt_at > datetime.now()
    assert process_received(store, pull, lambda accounts: None, policy=POLICY).events == 0, "not before its backoff"
    for attempt in (2, 3):
        with store.begin() as conn:  # the backoff has passed
            conn.execute(update(WebhookEvent.__table__).values(next_attempt_at=datetime.now() - timedelta(seconds=1)))
        process_received(store, pull, lambda accounts: None, policy=POLICY)
        assert _rows(store)["hubspot-500"].attempts == attempt
    row = _rows(store)["hubspot-500"]
    assert row.status == "failed" and "vendor refused" in row.reason and row.next_attempt_at is None


def test_the_backoff_doubles_up_to_its_cap():
    policy = RetryPolicy(backoff=timedelta(seconds=10), backoff_cap=timedelta(seconds=45))
    assert [policy.delay(n).total_seconds() for n in (1, 2, 3, 4)] == [10, 20, 40, 45]


def test_one_bad_event_fails_alone_and_other_vendors_go_on(store):
    ids = _link(store, 3)
    record_events(store, "hubspot", _company_events("hubspot", ["500", "501", "502"]))
    record_events(store, "intercom", _company_events("intercom", ["ic-0", "ic-1"]))
    rescored: list[list[int]] = []
    result = process_received(store, _failing_for({"hubspot:501"}), rescored.append, policy=POLICY)
    rows = _rows(store)
    assert rows["hubspot-501"].status == "received" and rows["hubspot-501"].attempts == 1
    assert {k: r.status for k, r in rows.items() if k != "hubspot-501"} == dict.fromkeys(
        ["hubspot-500", "hubspot-502", "intercom-ic-0", "intercom-ic-1"], "processed")  # fmt: skip
    assert rescored == [sorted([ids["A0000"], ids["A0001"], ids["A0002"]])], "the good events' accounts, once"
    assert result.completed == 4 and result.retrying == 1


def test_a_vendor_that_is_down_holds_back_only_its_own_events(store):
    _link(store, 2)
    record_events(store, "hubspot", _company_events("hubspot", ["500", "501"]))
    record_events(store, "intercom", _company_events("intercom", ["ic-0"]))
    result = process_received(store, _failing_for({"hubspot:500", "hubspot:501"}), lambda a: None, policy=POLICY)
    rows = _rows(store)
    assert rows["intercom-ic-0"].status == "processed"
    assert {rows[k].status for k in ("hubspot-500", "hubspot-501")} == {"received"}
    assert result.completed == 1 and result.retrying == 2


def test_a_failed_rescoring_retries_the_events_instead_of_marking_them_processed(store):
    _link(store, 1)
    record_events(store, "hubspot", _company_events("hubspot", ["500"]))

    def rescore(accounts):
        raise RuntimeError("scoring broke")

    result = process_received(store, lambda wanted: None, rescore, policy=POLICY)
    row = _rows(store)["hubspot-500"]
    assert row.status == "received" and row.attempts == 1 and "scoring broke" in row.reason
    assert result.completed == 0


def test_a_long_run_keeps_its_lease_while_it_lives(store):
    _link(store, 1)
    record_events(store, "hubspot", _company_events("hubspot", ["500"]))
    short = RetryPolicy(lease=timedelta(seconds=0.4))
    second: list = []

    def slow_pull(wanted):
        import time

        time.sleep(1.5)  # far past the lease: only the heartbeat keeps the events this run's
        second.append(process_received(store, lambda w: None, lambda a: None, policy=short))

    first = process_received(store, slow_pull, lambda a: None, policy=short)
    assert second[0].events == 0, "a live run's events are not taken by another run"
    assert first.completed == 1


def test_a_run_that_lost_its_events_settles_nothing(store):
    """A run frozen past its lease (or killed): another run takes and settles its events; when the first one
    finishes after all, it changes nothing, so no event is processed twice."""
    _link(store, 2)
    record_events(store, "hubspot", _company_events("hubspot", ["500", "501"]))
    rescores: list[list[int]] = []
    taken_over: list = []

    def pull_then_freeze(wanted):
        with store.begin() as conn:  # the lease lapses while this run is stuck
            conn.execute(update(WebhookEvent.__table__).values(processed_at=datetime.now() - timedelta(hours=1)))
        taken_over.append(process_received(store, lambda w: None, rescores.append, policy=POLICY))

    stale = process_received(store, pull_then_freeze, rescores.append, policy=POLICY)
    assert taken_over[0].completed == 2
    assert stale.completed == 0, "the stale run marks nothing processed a second time"
    rows = _rows(store)
    assert {r.status for r in rows.values()} == {"processed"} and {r.claim for r in rows.values()} == {None}


def test_the_admin_log_shows_events_waiting_for_a_retry_and_failed_ones(store):
    _link(store, 1)
    record_events(store, "hubspot", _company_events("hubspot", ["500"]))
    process_received(store, _failing_for({"hubspot:500"}), lambda a: None, policy=RetryPolicy(max_attempts=1))
    client = create_app(SETTINGS, engine=store).test_client()
    sign_in(client, store)
    answer = client.get("/admin/events?format=json&status=failed").get_json()
    assert answer["summary"]["counts"] == {"failed": 1}
    assert [(e["event_id"], e["attempts"]) for e in answer["events"]] == [("hubspot-500", 1)]
    page = client.get("/admin/events?status=failed").get_data(as_text=True)
    assert "vendor refused" in page and 'class="failed"' in page


def test_the_scheduler_runs_the_incremental_sync_at_the_configured_interval(monkeypatch):
    import importlib

    import app.jobs

    monkeypatch.setenv("CSE_SYNC_INTERVAL_SECONDS", "321")
    jobs = importlib.reload(app.jobs)
    try:
        entry = next(e for e in jobs.SCHEDULE if e[0].__name__ == "incremental_sync_job")
        assert entry[2] == 321
    finally:
        monkeypatch.delenv("CSE_SYNC_INTERVAL_SECONDS")
        importlib.reload(app.jobs)


def test_settings_bound_the_processing_retries():
    from app.settings import Settings

    settings = Settings.from_env({"CSE_WEBHOOK_MAX_ATTEMPTS": "7", "CSE_WEBHOOK_RETRY_SECONDS": "30",
                                  "CSE_WEBHOOK_LEASE_SECONDS": "90"})  # fmt: skip
    policy = RetryPolicy.from_settings(settings)
    assert (policy.max_attempts, policy.backoff, policy.lease) == (7, timedelta(seconds=30), timedelta(seconds=90))


class Crash(BaseException):
    """What a dying worker leaves: the run stops where it was, nothing of it catches this, nothing is settled."""


def _lease_lapses(store) -> None:
    with store.begin() as conn:
        conn.execute(update(WebhookEvent.__table__).where(WebhookEvent.__table__.c.status == "processing")
                     .values(processed_at=datetime.now() - timedelta(hours=1)))  # fmt: skip


def _runs_until_settled(store, run, limit: int = 10) -> int:
    """Run `run` again and again, each crash followed by its lease lapsing, until nothing is left to take."""
    for runs in range(1, limit + 1):
        try:
            run()
        except Crash:
            _lease_lapses(store)
            continue
        if not any(r.status in {"received", "processing"} for r in _rows(store).values()):
            return runs
    raise AssertionError(f"still unsettled after {limit} runs: {_rows(store)}")


def test_an_event_that_kills_every_run_ends_failed_and_its_batch_mate_is_processed(store):
    _link(store, 2)
    record_events(store, "hubspot", _company_events("hubspot", ["500", "501"]))

    def pull(wanted):
        if "500" in wanted["hubspot"].get("companies", []):
            raise Crash("the vendor SDK segfaults on record 500")

    runs = _runs_until_settled(store, lambda: process_received(store, pull, lambda a: None, policy=POLICY))
    rows = _rows(store)
    poison, mate = rows["hubspot-500"], rows["hubspot-501"]
    assert poison.status == "failed" and poison.attempts == POLICY.max_attempts and poison.claim is None
    assert "crashed or was killed" in poison.reason
    assert mate.status == "processed", "taken alone once its batch had died twice, it went through"
    assert runs == 4, "two crashes together, one alone, then the poison is failed and its mate processed"


def test_a_run_that_dies_once_costs_one_attempt_and_its_events_are_taken_again_together(store):
    _link(store, 2)
    record_events(store, "hubspot", _company_events("hubspot", ["500", "501"]))
    with pytest.raises(Crash):
        process_received(store, _crash_once(), lambda a: None, policy=POLICY)
    assert {r.attempts for r in _rows(store).values()} == {1}, "the attempt counted at claim time"
    _lease_lapses(store)
    calls: list = []
    result = process_received(store, _failing_for(set(), calls), lambda a: None, policy=POLICY)
    assert result.completed == 2 and len(calls) == 1, "one run for both: a single death is no suspicion"
    assert {(r.status, r.attempts) for r in _rows(store).values()} == {("processed", 2)}


def _crash_once():
    crashed: list[bool] = []

    def pull(wanted):
        if not crashed:
            crashed.append(True)
            raise Crash("kill -9")

    return pull


def test_segment_messages_are_claimed_held_and_failed_the_same_way(store, monkeypatch):
    import app.history.segment as segment

    record_events(store, "segment", [VendorEvent("m1", "", "track", "u1", "post")])
    record_events(store, "hubspot", _company_events("hubspot", ["500"]))

    def crash(*args):
        raise Crash("out of memory")

    monkeypatch.setattr(segment, "_activity", crash)
    for _ in range(POLICY.max_attempts):
        with pytest.raises(Crash):
            ingest_segment_events(store, {}, policy=POLICY)
        _lease_lapses(store)
    assert ingest_segment_events(store, {}, policy=POLICY).messages == 0, "failed instead of taken again"
    rows = _rows(store)
    assert rows["m1"].status == "failed" and "crashed or was killed" in rows["m1"].reason
    assert (rows["hubspot-500"].status, rows["hubspot-500"].attempts) == ("received", 0), "not Segment's to take"
    assert [r.event_id for r in claim_events(store, POLICY, 10, CRM_EVENTS).rows] == ["hubspot-500"]
