"""Write-back to Salesforce through the real simple-salesforce SDK against the sandbox, with the real store.

The store holds the book (usage and all); a sync links its accounts to the org's Accounts; rescoring then plans
field writes and tasks in the outbox, and delivery lands them in the org: once, and only what changed.
"""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app.store.models import Account, Action, ExternalId, OutboxRow, Score
from app.writeback.deliver import deliver_rows
from app.writeback.jobs import enqueue_deliveries, pusher_for
from tests.writeback_support import AS_OF, rescore_book


def test_scores_land_in_the_account_fields_once(linked):
    store, sandbox, settings = linked
    result = rescore_book(store)
    with store.connect() as conn:
        linked_ids = dict(
            conn.execute(
                select(ExternalId.account_id, ExternalId.external_id).where(
                    ExternalId.vendor == "salesforce", ExternalId.object == "Account"
                )
            ).all()
        )
    assert len(linked_ids) > 50
    with store.connect() as conn:
        scored_ids = set(conn.scalars(select(Score.account_id).where(Score.as_of == AS_OF)))
    assert result.field_writes == len(set(linked_ids) & scored_ids)

    jobs = enqueue_deliveries(settings, store, vendors=("salesforce",))
    assert jobs >= 1
    with store.connect() as conn:
        statuses = dict(
            conn.execute(
                select(OutboxRow.status, func.count())
                .where(OutboxRow.vendor == "salesforce")
                .group_by(OutboxRow.status)
            ).all()
        )
        health = dict(conn.execute(select(Score.account_id, Score.health).where(Score.as_of == AS_OF)).all())
    assert statuses.get("done", 0) > 0 and "pending" not in statuses and "parked" not in statuses, statuses
    for account_id, sf_id in linked_ids.items():
        if account_id not in health:
            continue
        record = sandbox.org.get("Account", sf_id)
        assert record["CSE_Health_Score__c"] == pytest.approx(health[account_id], abs=0.05)
        assert str(record["CSE_Last_Scored__c"]).startswith("2026-06-30")

    # A steady-state rescoring of the same day writes nothing more and creates no second task.
    tasks_before = len(sandbox.org.live("Task"))
    again = rescore_book(store)
    assert again.field_writes == 0
    assert enqueue_deliveries(settings, store, vendors=("salesforce",)) == 0
    assert len(sandbox.org.live("Task")) == tasks_before


def test_tasks_are_created_once_with_the_owner_and_the_reason(linked):
    store, sandbox, settings = linked
    rescore_book(store)
    enqueue_deliveries(settings, store, vendors=("salesforce",))
    with store.connect() as conn:
        done = conn.execute(select(Action.__table__).where(Action.status == "done")).all()
        owners = dict(conn.execute(select(Account.id, Account.owner)).all())
    assert done, "the programs send CSM tasks on a book with this much churn"
    ours = [t for t in sandbox.org.live("Task") if t.get("CSE_Dedupe_Key__c")]
    assert len(ours) == len({a.dedupe_key for a in done})
    task = next(t for t in ours if t["Id"] == done[0].external_id)
    assert task["Subject"] == done[0].payload["title"]
    assert task["Description"] == done[0].payload["reason"] and done[0].payload["body"] in task["Description"]
    owner = sandbox.org.get("User", task["OwnerId"])
    assert owner["Email"] == owners[done[0].account_id]

    # A worker that died after the vendor call but before recording it: the rows run again, no duplicate.
    with store.begin() as conn:
        conn.execute(OutboxRow.__table__.update().where(OutboxRow.operation == "create_task").values(status="enqueued"))
        ids = list(conn.execute(select(OutboxRow.id).where(OutboxRow.operation == "create_task")).scalars())
    deliver_rows(store, pusher_for(settings, "salesforce"), None, ids)
    assert len([t for t in sandbox.org.live("Task") if t.get("CSE_Dedupe_Key__c")]) == len(ours)
