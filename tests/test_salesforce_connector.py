"""What only Salesforce does, through the real SDK over loopback: auth modes and session re-login, mapping-driven
SOQL and its whole-second cursor, queryMore paging, sObject Collections and the seeded book's cases and tasks.

The sandbox is seeded from a small generated book, so "the pull returns the same accounts, contacts and cases"
is checked against the book itself, not against what the connector happened to send. What every vendor promises
(exactly-once pulls, incremental changes and deletions, retries and their budget) is in test_connector_contract.py.
"""

from __future__ import annotations

import math
import time
import warnings
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from types import SimpleNamespace

import pandas as pd
import pytest

from app.demo.book import Book, generate_book
from app.demo.spec import BookSpec
from app.settings import Settings
from connectors.errors import VendorError
from connectors.retry import RetryPolicy
from connectors.salesforce import (
    SalesforceClient,
    SalesforceConfig,
    SalesforceSource,
    fields_from_mappings,
    load_mapping_files,
)
from connectors.salesforce.source import soql_datetime
from connectors.source import VendorSource
from sandbox.salesforce import SalesforceSandbox, start_sandbox

MAPPINGS = load_mapping_files()
FAST = RetryPolicy(attempts=6, base_delay=0.01, max_delay=0.05)


@pytest.fixture(scope="module")
def book() -> Book:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the generator's numpy warnings on a tiny book are not ours to judge
        return generate_book(BookSpec(active_accounts=30, days=60))


@pytest.fixture(scope="module")
def server() -> Iterator[SalesforceSandbox]:
    with start_sandbox() as running:
        yield running


@pytest.fixture
def sandbox(server: SalesforceSandbox, book: Book) -> SalesforceSandbox:
    server.reset(book, batch_size=25)
    return server


def config_for(sandbox: SalesforceSandbox, **overrides) -> SalesforceConfig:
    org = sandbox.org
    values = {
        "username": org.username,
        "password": org.password,
        "security_token": org.security_token,
        "base_url": sandbox.base_url,
    }
    return SalesforceConfig(**{**values, **overrides})


def client_for(sandbox: SalesforceSandbox, retry: RetryPolicy = FAST, **overrides) -> SalesforceClient:
    return SalesforceClient(config_for(sandbox, **overrides), retry=retry)


def source_for(sandbox: SalesforceSandbox, **overrides) -> SalesforceSource:
    return SalesforceSource(client_for(sandbox, **overrides), fields=fields_from_mappings(MAPPINGS))


def pull_all(source: SalesforceSource, obj: str, since: datetime | None = None) -> list[dict]:
    return [r for page in source.pull(obj, since) for r in page]


def salesforce_part(book: Book) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    accounts = book.accounts[book.accounts["crm"] == "salesforce"]
    keys = set(accounts["key"])
    return (
        accounts,
        book.contacts[book.contacts["account_key"].isin(keys)],
        book.events[book.events["account_key"].isin(keys) & (book.events["source"] == "salesforce")],
    )


def test_config_from_settings_picks_the_auth_mode():
    settings = Settings(salesforce_username="u@x.com", salesforce_password="pw", salesforce_security_token="tok")
    assert SalesforceConfig.from_settings(settings).auth_mode == "password"
    session = Settings(salesforce_session_id="00D!x", salesforce_instance_url="https://acme.my.salesforce.com")
    assert SalesforceConfig.from_settings(session).auth_mode == "session"
    jwt = SimpleNamespace(
        salesforce_username="u@x.com",
        salesforce_consumer_key="3MVG",
        salesforce_private_key="k",
        salesforce_base_url="http://127.0.0.1:1",
    )
    config = SalesforceConfig.from_settings(jwt)
    assert config.auth_mode == "jwt" and config.base_url == "http://127.0.0.1:1"


def test_source_is_a_vendor_source_with_mapping_driven_soql(sandbox):
    source: VendorSource = source_for(sandbox)  # statically checked against the protocol
    assert isinstance(source, SalesforceSource) and source.objects()[0] == "Account"
    since = datetime(2026, 10, 1, 12, 30, 15, 999000)  # naive: read as UTC, rounded down to the second
    query = source.soql("Account", since)
    assert query.startswith("SELECT Id, SystemModstamp, IsDeleted, Name, Website")
    assert "Owner.Email" in query
    assert query.endswith(
        "FROM Account WHERE SystemModstamp >= 2026-10-01T12:30:15Z ORDER BY SystemModstamp ASC, Id ASC"
    )
    assert "(CSE_Dedupe_Key__c = null)" in source.soql("Task", None)
    assert soql_datetime(datetime(2026, 1, 1, 1, tzinfo=UTC)) == "2026-01-01T01:00:00Z"


def test_mapping_fields_exist_in_the_orgs_describe(sandbox):
    source = source_for(sandbox)
    for obj, names in fields_from_mappings(MAPPINGS).items():
        described = {f["name"]: f for f in source.describe(obj)["fields"]}
        relationships = {f["relationshipName"] for f in described.values() if f["relationshipName"]}
        for name in names:
            head = name.split(".")[0]
            assert (head in relationships) if "." in name else (name in described), f"{obj}.{name}"


def test_pull_of_a_seeded_book_returns_its_accounts_contacts_and_cases(sandbox, book):
    accounts, contacts, events = salesforce_part(book)
    source = source_for(sandbox)
    pulled = {obj: pull_all(source, obj) for obj in source.objects()}

    rows = {r["Name"]: r for r in pulled["Account"]}
    assert set(rows) == set(accounts["name"])
    for account in accounts.to_dict("records"):
        row = rows[account["name"]]
        assert row["Website"] == f"https://www.{account['domain']}"
        assert row["Owner"] == {"Email": account["owner"]}
        assert row["Plan__c"].lower() == account["plan"] and row["AnnualRevenue"] == pytest.approx(account["arr"])
        assert row["IsDeleted"] is False

    assert sorted(r["Email"] for r in pulled["Contact"]) == sorted(contacts["email"])
    champions = {r["Email"] for r in pulled["Contact"] if r["Champion__c"]}
    assert champions == set(contacts.loc[contacts["is_champion"], "email"])

    cases = pulled["Case"]
    opened = events[events["kind"] == "ticket_opened"]
    closed = events[events["kind"] == "ticket_closed"]
    assert len(cases) == int(opened["count"].sum())
    assert sum(c["IsClosed"] for c in cases) == int(closed["count"].sum())
    hours = sorted(c["Resolution_Hours__c"] for c in cases if c["IsClosed"])
    assert hours == pytest.approx(sorted(closed["value"]), abs=0.11)
    assert Counter(c["Contact"]["Email"] for c in cases if c["Contact"]) == Counter(opened["contact_email"].dropna())

    seat_events = events[events["kind"] == "seat_change"]
    assert sum(o["Seat_Change__c"] or 0 for o in pulled["Opportunity"]) == seat_events["value"].sum()
    touches = events[
        events["kind"].isin(["outreach", "email_replied", "meeting", "cancellation_inquiry", "competitor_mention"])
    ]
    assert len(pulled["Task"]) == len(touches)

    for obj, records in pulled.items():
        stamps = [r["SystemModstamp"] for r in records]
        assert stamps == sorted(stamps), obj  # oldest change first, so the sync can checkpoint per page
        assert len({r["Id"] for r in records}) == len(records), obj
    total = sum(len(r) for r in pulled.values())
    pages = sum(max(math.ceil(len(r) / 25), 1) for r in pulled.values())
    assert source.stats.records == total
    assert source.stats.api_calls == pages  # one call per page: the Task filter needs no describe first
    assert source.client.stats.logins == 1


def test_incremental_soql_rereads_the_cursors_whole_second_and_sees_sdk_writes(sandbox):
    source = source_for(sandbox)
    accounts = pull_all(source, "Account")
    contacts = pull_all(source, "Contact")
    cursor = max(datetime.fromisoformat(r["SystemModstamp"]) for r in accounts + contacts)
    latest = max(a["SystemModstamp"] for a in accounts)
    # `>=` on whole seconds re-reads the cursor's own second (the sync dedupes), and never skips anything newer.
    assert pull_all(source, "Account", cursor) == [r for r in accounts if r["SystemModstamp"] == latest]

    client = source.client  # changes made through the SDK (write-back's path), not the org directly
    time.sleep(0.002)
    mark = sandbox.org.now()
    client.update("Account", accounts[3]["Id"], {"AnnualRevenue": 99_000})
    client.call(lambda sf: sf.Contact.delete(contacts[5]["Id"]))
    changed = pull_all(source, "Account", mark)
    assert [(r["Id"], r["AnnualRevenue"]) for r in changed] == [(accounts[3]["Id"], 99_000.0)]
    gone = pull_all(source, "Contact", mark)
    assert [(r["Id"], r["IsDeleted"]) for r in gone] == [(contacts[5]["Id"], True)]


def test_paging_uses_the_cursor_and_counts_calls(sandbox):
    sandbox.org.batch_size = 10
    source = source_for(sandbox)
    pages = list(source.pull("Contact", None))
    total = len(sandbox.org.live("Contact"))
    assert [len(p) for p in pages[:-1]] == [10] * (len(pages) - 1) and len(pages) == math.ceil(total / 10)
    assert len({r["Id"] for p in pages for r in p}) == total
    assert source.stats.api_calls == len(pages) and source.stats.by_object == {"Contact": total}


def test_request_limit_and_server_errors_mid_query_are_retried_without_repeating_a_page(sandbox):
    sandbox.org.batch_size = 10
    source = source_for(sandbox)
    pages = source.pull("Contact", None)
    first = next(pages)
    sandbox.org.faults.rate_limited = 2  # REQUEST_LIMIT_EXCEEDED (403) on the next two calls
    sandbox.org.faults.server_errors = 2  # then two 503s
    rest = [r for page in pages for r in page]
    ids = [r["Id"] for r in first + rest]
    assert len(ids) == len(set(ids)) == len(sandbox.org.live("Contact"))  # a retried page is not handed over twice
    assert source.stats.retries == 4 and source.client.stats.retries == 4


def test_expired_session_is_reauthenticated_once(sandbox):
    source = source_for(sandbox)
    pages = source.pull("Contact", None)
    next(pages)
    sandbox.org.faults.expired_sessions = 1
    assert sum(len(p) for p in pages) > 0
    assert sandbox.org.logins == 2  # the SDK logged in again by itself (password auth), exactly once

    # A bare session id (e.g. handed over by an OAuth flow) plus credentials: we log in once when it expires.
    sid = sandbox.org.open_session()
    client = client_for(sandbox, session_id=sid)
    assert client.describe("Account")["name"] == "Account" and client.stats.logins == 0
    sandbox.org.expire_all_sessions()
    assert client.describe("Contact")["name"] == "Contact"
    assert client.stats.relogins == 1 and client.stats.logins == 1

    only_session = SalesforceClient(
        SalesforceConfig(session_id=sandbox.org.open_session(), base_url=sandbox.base_url), retry=FAST
    )
    sandbox.org.expire_all_sessions()
    with pytest.raises(VendorError, match="expired"):
        only_session.describe("Account")

    # Never renewable: the SDK re-logs in 3 times per query, then we re-log in once more, then give up.
    # (Its SFType calls, e.g. describe, retry a 401 without a bound: a known simple-salesforce quirk.)
    sandbox.org.faults.expired_sessions = 100
    with pytest.raises(VendorError, match="expired"):
        client.call(lambda sf: sf.query("SELECT Id FROM Account LIMIT 1"))
    assert client.stats.relogins == 2
    sandbox.org.faults.reset()


def test_client_collections_chunk_at_200_and_upsert_idempotently(sandbox):
    client = client_for(sandbox)
    account = sandbox.org.live("Account")[0]["Id"]
    tasks = [{"CSE_Dedupe_Key__c": f"score:{i}", "Subject": f"Call {i}", "WhatId": account} for i in range(450)]
    before = client.stats.api_calls
    results = client.upsert_many("Task", "CSE_Dedupe_Key__c", tasks)
    assert client.stats.api_calls - before == 3 and all(r["created"] for r in results)
    again = client.upsert_many("Task", "CSE_Dedupe_Key__c", tasks)
    assert not any(r["created"] for r in again) and [r["id"] for r in again] == [r["id"] for r in results]

    updates = [
        {"attributes": {"type": "Account"}, "id": r["Id"], "CSE_Health_Score__c": 70}
        for r in sandbox.org.live("Account")
    ]
    assert all(r["success"] for r in client.collection("PATCH", updates))
    assert {r["CSE_Health_Score__c"] for r in sandbox.org.live("Account")} == {70}


def test_jwt_settings_log_in_through_the_sdk(sandbox):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    sandbox.org.consumer_key = "3MVG9-cse"
    sandbox.org.jwt_public_key = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    client = SalesforceClient(
        SalesforceConfig(
            username=sandbox.org.username, consumer_key="3MVG9-cse", private_key=pem, base_url=sandbox.base_url
        )
    )
    assert client.describe("Account")["name"] == "Account" and client.stats.logins == 1
