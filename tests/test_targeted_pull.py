"""A webhook's pull: only the records it names, through the same mappings, in a handful of API calls."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select

from app.demo.book import BookSpec, generate_book
from app.settings import Settings
from app.store.models import Account, Contact
from app.sync import run_sync, sync_records
from connectors.intercom.source import IntercomSource
from sandbox.intercom import DEFAULT_TOKEN, start_intercom_sandbox


def test_fetching_named_intercom_records_updates_them_in_a_few_calls(store, tmp_path):
    book = generate_book(BookSpec(seed=9, active_accounts=30, days=40, as_of=date(2026, 6, 30)))
    running, state = start_intercom_sandbox(book)
    try:
        settings = Settings.from_env({"INTERCOM_ACCESS_TOKEN": DEFAULT_TOKEN, "INTERCOM_BASE_URL": running.base_url})
        run_sync(store, [IntercomSource.from_settings(settings)], log_dir=tmp_path)
        workspace = state.workspace
        contact = next(c for c in workspace.contacts.values() if c.get("custom_attributes", {}).get("champion"))
        [company_id] = workspace.contact_companies(contact["id"])
        workspace.update_contact(contact["id"], {"custom_attributes": {"champion": False}})
        workspace.update_company(company_id, {"custom_attributes": {"active_seats": 1}})

        source = IntercomSource.from_settings(settings)
        wanted = {"contacts": [contact["id"]], "events": [contact["id"]], "companies": [company_id]}
        log = sync_records(store, source, wanted)
    finally:
        running.stop()
    assert log.api_calls["intercom"] <= 4, log.api_calls
    assert not [entry.error for entry in log.objects if entry.error]
    with store.connect() as conn:
        assert conn.scalar(select(Contact.is_champion).where(Contact.email == contact["email"])) is False
        seats = conn.scalar(select(Account.seats_active).where(Account.name == workspace.companies[company_id]["name"]))
    assert seats == 1
