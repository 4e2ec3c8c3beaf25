"""Processing waiting webhook events: each touched account is resolved through the store and rescored once."""

from __future__ import annotations

from sqlalchemy import select

from app.store.load import load_accounts
from app.store.models import ExternalId, RecordLink, WebhookEvent
from app.webhook_events.processing import process_received
from app.webhook_events.store import record_events
from connectors.webhook_common import VendorEvent
from tests.factories import accounts_frame


def test_events_resolve_to_accounts_and_each_account_is_rescored_once(store):
    with store.begin() as conn:
        ids = load_accounts(conn, accounts_frame(3))
        conn.execute(ExternalId.__table__.insert(), [
            {"account_id": ids["A0000"], "vendor": "hubspot", "object": "companies", "external_id": "501"},
            {"account_id": ids["A0001"], "vendor": "salesforce", "object": "Account", "external_id": "001X"},
            {"account_id": ids["A0002"], "vendor": "intercom", "object": "companies", "external_id": "ic-9"},
        ])  # fmt: skip
        conn.execute(RecordLink.__table__.insert(), [
            {"account_id": ids["A0000"], "vendor": "hubspot", "object": "contacts", "external_id": "77"},
        ])  # fmt: skip
    record_events(store, "hubspot", [
        VendorEvent("1", "42", "company", "501", "company.propertyChange"),
        VendorEvent("2", "42", "contact", "77", "contact.propertyChange"),  # the same account, through its contact
        VendorEvent("3", "42", "deal", "999", "deal.creation"),  # unknown to the store
    ])  # fmt: skip
    record_events(store, "salesforce", [VendorEvent("n1", "00D", "Case", "500Z", "outbound.Case",
                                                    {"AccountId": "001X"})])  # fmt: skip
    record_events(store, "intercom", [VendorEvent("notif", "app", "contact", "c1", "contact.user.updated",
                                                  {"company_ids": ["ic-9"]})])  # fmt: skip
    pulled, rescored = [], []
    result = process_received(store, pulled.append, rescored.append)
    assert pulled == [
        {
            "hubspot": {"companies": ["501"], "contacts": ["77"], "deals": ["999"]},
            "salesforce": {"Case": ["500Z"], "Account": ["001X"]},
            "intercom": {"contacts": ["c1"], "events": ["c1"], "companies": ["ic-9"]},
        }
    ], "each event's own record, the company it names, and a person's events"
    assert rescored == [sorted(ids.values())], "one rescoring, every touched account once"
    assert result.events == 5 and result.unresolved == 1
    with store.connect() as conn:
        rows = {r.event_id: r for r in conn.execute(select(WebhookEvent.__table__)).all()}
    assert {r.status for r in rows.values()} == {"processed"}
    assert rows["2"].account_ids == [ids["A0000"]]
    assert rows["3"].account_ids == [] and "no account" in rows["3"].reason
    assert process_received(store, pulled.append, rescored.append).events == 0, "processed events are not redone"
