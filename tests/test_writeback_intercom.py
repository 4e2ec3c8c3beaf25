"""Write-back to Intercom through the real python-intercom SDK against the sandbox, with the real store."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select, update

from app.store.models import Action, ExternalId, OutboxRow, Score
from app.sync import active_mapping
from app.writeback.deliver import INTERRUPTED, deliver_rows, sweep
from app.writeback.jobs import enqueue_deliveries, pusher_for
from connectors.intercom.fields import install_fields, missing_fields
from tests.writeback_support import AS_OF, rescore_book


def _statuses(store, operation: str) -> dict[str, int]:
    with store.connect() as conn:
        query = (
            select(OutboxRow.status, func.count())
            .where(OutboxRow.vendor == "intercom", OutboxRow.operation == operation)
            .group_by(OutboxRow.status)
        )
        return dict(conn.execute(query).all())


def test_company_attributes_and_in_app_messages_land_once(intercom_linked):
    store, state, settings = intercom_linked
    with store.connect() as conn:
        mapping = active_mapping(conn, "intercom", "push_companies")
    client = pusher_for(settings, "intercom").client
    assert install_fields(client, mapping) and missing_fields(client, mapping) == {}
    rescore_book(store)
    enqueue_deliveries(settings, store, vendors=("intercom",))
    assert set(_statuses(store, "update_fields")) == {"done"}
    assert set(_statuses(store, "send_message")) <= {"done", "parked"}
    assert _statuses(store, "send_message").get("done", 0) > 0

    with store.connect() as conn:
        links = dict(conn.execute(select(ExternalId.account_id, ExternalId.external_id).where(
            ExternalId.vendor == "intercom", ExternalId.object == "companies")).all())  # fmt: skip
        health = dict(conn.execute(select(Score.account_id, Score.health).where(Score.as_of == AS_OF)).all())
        sent = conn.execute(select(Action.__table__).where(Action.kind.in_(("inapp_message", "email")),
                                                           Action.status == "done")).all()  # fmt: skip
    companies = state.workspace.companies
    checked = [a for a in links if a in health]
    assert checked
    for account_id in checked:
        assert companies[links[account_id]]["custom_attributes"]["cse_health_score"] == health[account_id]
    messages = state.workspace.messages
    assert len(messages) == len(sent)
    assert {m["body"] for m in messages} <= {a.payload["body"] for a in sent}
    reasons = {a.payload["reason"] for a in sent}
    assert not any(m["body"] in reasons for m in messages), "customers never see the CSM's internal reason"

    # Rerunning the same rows sends nothing twice.
    with store.connect() as conn:
        ids = list(conn.execute(select(OutboxRow.id).where(OutboxRow.operation == "send_message")).scalars())
    deliver_rows(store, pusher_for(settings, "intercom"), mapping, ids)
    assert len(state.workspace.messages) == len(messages)


def test_a_message_interrupted_mid_call_is_parked_not_resent(intercom_linked):
    store, state, settings = intercom_linked
    rescore_book(store)
    with store.begin() as conn:  # a worker died while the call to Intercom was in flight
        row_id = conn.scalar(select(func.min(OutboxRow.id)).where(OutboxRow.operation == "send_message"))
        conn.execute(update(OutboxRow).where(OutboxRow.id == row_id).values(status="sending", job_id="lost"))
    assert sweep(store, lambda job_id: False, stale_after=timedelta(0)) >= 1
    with store.connect() as conn:
        status, error = conn.execute(select(OutboxRow.status, OutboxRow.last_error).where(OutboxRow.id == row_id)).one()
    assert (status, error) == ("parked", INTERRUPTED)
    enqueue_deliveries(settings, store, vendors=("intercom",))
    with store.connect() as conn:
        assert conn.scalar(select(OutboxRow.status).where(OutboxRow.id == row_id)) == "parked"
    assert len(state.workspace.messages) == _statuses(store, "send_message")["done"], "one message per delivered row"
