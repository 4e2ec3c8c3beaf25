"""Write-back to HubSpot through the real hubspot-api-client against the sandbox, with the real store."""

from __future__ import annotations

from sqlalchemy import func, select, update

from app.store.models import Action, ExternalId, OutboxRow, Score
from app.sync import active_mapping
from app.writeback.deliver import deliver_rows
from app.writeback.jobs import enqueue_deliveries, pusher_for
from connectors.hubspot.fields import install_fields, missing_fields
from connectors.hubspot.push import TASK_DEDUPE_PROPERTY
from tests.writeback_support import AS_OF, rescore_book


def _statuses(store) -> dict[str, int]:
    with store.connect() as conn:
        query = select(OutboxRow.status, func.count()).where(OutboxRow.vendor == "hubspot").group_by(OutboxRow.status)
        return dict(conn.execute(query).all())


def _install(store, settings):
    with store.connect() as conn:
        mapping = active_mapping(conn, "hubspot", "push_companies")
    client = pusher_for(settings, "hubspot").client
    assert missing_fields(client, mapping), "a fresh portal lacks our properties"
    created = install_fields(client, mapping)
    assert "companies.cse_health_score" in created and f"tasks.{TASK_DEDUPE_PROPERTY}" in created
    assert install_fields(client, mapping) == [], "installing twice creates nothing"
    assert missing_fields(client, mapping) == {}


def test_scores_and_tasks_land_once_in_hubspot(hubspot_linked):
    store, state, settings = hubspot_linked
    _install(store, settings)
    result = rescore_book(store)
    assert result.field_writes > 20
    enqueue_deliveries(settings, store, vendors=("hubspot",))
    with store.connect() as conn:
        errors = set(conn.execute(select(OutboxRow.last_error).where(OutboxRow.status != "done")).scalars())
    assert set(_statuses(store)) == {"done"}, errors

    with store.connect() as conn:
        links = dict(conn.execute(select(ExternalId.account_id, ExternalId.external_id).where(
            ExternalId.vendor == "hubspot", ExternalId.object == "companies")).all())  # fmt: skip
        health = dict(conn.execute(select(Score.account_id, Score.health).where(Score.as_of == AS_OF)).all())
        done = conn.execute(select(Action.__table__).where(Action.status == "done")).all()
    checked = 0
    for account_id, company_id in links.items():
        if account_id in health:
            assert float(state.get("companies", company_id).properties["cse_health_score"]) == health[account_id]
            checked += 1
    assert checked > 20
    tasks = [t for t in state.live("tasks") if t.properties.get(TASK_DEDUPE_PROPERTY)]
    assert len(tasks) == len(done) > 0
    task = next(t for t in tasks if t.id == done[0].external_id)
    assert task.properties["hs_task_subject"] == done[0].payload["title"]
    company_id = links[done[0].account_id]
    assert state.associated("tasks", task.id, "companies").keys() == {company_id}
    assert task.properties.get("hubspot_owner_id") == state.get("companies", company_id).properties.get(
        "hubspot_owner_id"
    )

    # Rows whose worker died after HubSpot created the tasks run again: the tasks are found, not duplicated.
    with store.begin() as conn:
        conn.execute(update(OutboxRow).where(OutboxRow.operation == "create_task").values(status="enqueued"))
        ids = list(conn.execute(select(OutboxRow.id).where(OutboxRow.operation == "create_task")).scalars())
    with store.connect() as conn:
        mapping = active_mapping(conn, "hubspot", "push_companies")
    deliver_rows(store, pusher_for(settings, "hubspot"), mapping, ids)
    assert len([t for t in state.live("tasks") if t.properties.get(TASK_DEDUPE_PROPERTY)]) == len(tasks)
    with store.connect() as conn:
        errors = set(conn.execute(select(OutboxRow.last_error).where(OutboxRow.status != "done")).scalars())
    assert set(_statuses(store)) == {"done"}, errors


def test_partial_batch_failures_and_429_storms_end_delivered_or_parked(hubspot_linked):
    store, state, settings = hubspot_linked
    _install(store, settings)
    rescore_book(store)
    with store.connect() as conn:
        rows = conn.execute(select(OutboxRow.id, OutboxRow.payload).where(
            OutboxRow.vendor == "hubspot", OutboxRow.operation == "update_fields")).all()  # fmt: skip
    flaky = {row.payload["external_id"] for row in rows[:3]}
    state.faults.partial_failure_ids.update(flaky)
    state.faults.rate_limited = 3  # the first calls meet a 429 with Retry-After
    with store.connect() as conn:
        mapping = active_mapping(conn, "hubspot", "push_companies")
    ids = [row.id for row in rows]
    for _ in range(5):  # each round is what the dispatcher does once a row's backoff has passed
        with store.begin() as conn:
            conn.execute(update(OutboxRow).where(OutboxRow.id.in_(ids), OutboxRow.status == "pending")
                         .values(status="enqueued", available_at=None))  # fmt: skip
        deliver_rows(store, pusher_for(settings, "hubspot"), mapping, ids, max_attempts=3)
    with store.connect() as conn:
        outcome = dict(conn.execute(select(OutboxRow.payload["external_id"].as_string(), OutboxRow.status).where(
            OutboxRow.id.in_(ids))).all())  # fmt: skip
        errors = list(conn.execute(select(OutboxRow.last_error).where(OutboxRow.status == "parked")).scalars())
    assert {outcome[c] for c in flaky} == {"parked"}
    assert all(status == "done" for c, status in outcome.items() if c not in flaky)
    assert len(errors) == 3 and all(errors)
    assert pusher_for(settings, "hubspot").client.stats.retries >= 3
