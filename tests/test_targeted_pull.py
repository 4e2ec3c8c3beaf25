"""A webhook's pull: only the records it names, through the same mappings, in a handful of API calls."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select

from app.demo.book import BookSpec, generate_book
from app.settings import Settings
from app.store.models import Account, Contact
from app.sync import run_sync, sync_records
from connectors.hubspot import HubSpotSource
from connectors.intercom.source import IntercomSource
from connectors.salesforce.source import SalesforceSource
from sandbox.hubspot import start_sandbox as start_hubspot_sandbox
from sandbox.intercom import start_sandbox as start_intercom_sandbox
from sandbox.salesforce import start_sandbox as start_salesforce_sandbox


def test_fetching_named_intercom_records_updates_them_in_a_few_calls(store, tmp_path):
    book = generate_book(BookSpec(seed=9, active_accounts=30, days=40, as_of=date(2026, 6, 30)))
    with start_intercom_sandbox(book) as sandbox:
        settings = Settings.from_env(sandbox.settings_env())
        run_sync(store, [IntercomSource.from_settings(settings)], log_dir=tmp_path)
        workspace = sandbox.workspace
        contact = next(c for c in workspace.contacts.values() if c.get("custom_attributes", {}).get("champion"))
        [company_id] = workspace.contact_companies(contact["id"])
        workspace.update_contact(contact["id"], {"custom_attributes": {"champion": False}})
        workspace.update_company(company_id, {"custom_attributes": {"active_seats": 1}})

        source = IntercomSource.from_settings(settings)
        wanted = {"contacts": [contact["id"]], "events": [contact["id"]], "companies": [company_id]}
        log = sync_records(store, source, wanted)
    assert log.api_calls["intercom"] <= 4, log.api_calls
    assert not [entry.error for entry in log.objects if entry.error]
    with store.connect() as conn:
        assert conn.scalar(select(Contact.is_champion).where(Contact.email == contact["email"])) is False
        seats = conn.scalar(select(Account.seats_active).where(Account.name == workspace.companies[company_id]["name"]))
    assert seats == 1


def test_fetching_named_hubspot_records_updates_them_and_sees_deletions(store, tmp_path):
    book = generate_book(BookSpec(seed=9, active_accounts=30, days=40, as_of=date(2026, 6, 30)))
    with start_hubspot_sandbox(book) as sandbox:
        state = sandbox.state
        settings = Settings.from_env(sandbox.settings_env())
        run_sync(store, [HubSpotSource.from_settings(settings)], log_dir=tmp_path)
        company = next(c for c in state.live("companies") if state.associated("companies", c.id, "contacts"))
        contact_id = sorted(state.associated("companies", company.id, "contacts"))[0]
        contact = state.get("contacts", contact_id)
        state.update("companies", company.id, {"seats_active": "3", "annualrevenue": "12345"})
        state.archive("contacts", contact_id)
        unknown = "999999999"

        calls_before = state.api_calls()
        source = HubSpotSource.from_settings(settings)
        log = sync_records(store, source, {"companies": [company.id, unknown], "contacts": [contact_id]})
        calls = state.api_calls() - calls_before
    assert not [entry.error for entry in log.objects if entry.error]
    # companies: live read, archived read for the unknown id; contacts: live read, archived read, associations
    assert calls <= 6, calls
    with store.connect() as conn:
        seats, arr = conn.execute(
            select(Account.seats_active, Account.arr).where(Account.name == company.properties["name"])
        ).one()
        still_there = conn.scalar(select(Contact.id).where(Contact.email == contact.properties["email"]))
    assert (seats, arr) == (3, 12345)
    assert still_there is None  # the archived contact is removed, as a sync removes a deleted contact


def test_fetching_named_salesforce_records_updates_them_and_sees_deletions(store, tmp_path):
    book = generate_book(BookSpec(seed=9, active_accounts=30, days=40, as_of=date(2026, 6, 30)))
    with start_salesforce_sandbox(book) as sandbox:
        settings = Settings.from_env(sandbox.settings_env())
        run_sync(store, [SalesforceSource.from_settings(settings)], log_dir=tmp_path)
        org = sandbox.org
        contact = next(c for c in org.live("Contact") if c.get("AccountId"))
        account = org.get("Account", contact["AccountId"])
        org.update("Account", account["Id"], {"AnnualRevenue": 54321, "Seats_Purchased__c": 7})
        org.delete("Contact", contact["Id"])

        source = SalesforceSource.from_settings(settings)
        wanted = {"Account": [account["Id"], "'; DELETE"], "Contact": [contact["Id"]]}
        log = sync_records(store, source, wanted)
    assert not [entry.error for entry in log.objects if entry.error]
    assert log.api_calls["salesforce"] <= 2, log.api_calls  # one query per object
    with store.connect() as conn:
        arr, seats = conn.execute(
            select(Account.arr, Account.seats_purchased).where(Account.name == account["Name"])
        ).one()
        still_there = conn.scalar(select(Contact.id).where(Contact.email == contact["Email"]))
    assert (arr, seats) == (54321, 7)
    assert still_there is None  # the deleted contact is removed, as a sync removes a deleted contact
