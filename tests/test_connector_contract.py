"""What every CRM connector promises a sync, checked once for all vendors against their sandboxes.

Each test runs the vendor's official SDK over loopback (tests/connector_rigs.py holds how each vendor is spoken
to). What only one vendor does — Salesforce's session re-login and SOQL, HubSpot's 10,000-result search cap and
207s, Intercom's version header and company scroll — is tested in that vendor's own test_<vendor>_connector.py.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from datetime import timedelta

import pytest

from app.demo.book import Book, generate_book
from app.demo.spec import BookSpec
from app.settings import Settings
from connectors.errors import ConnectorConfigError
from tests.connector_rigs import RIGS, VENDORS, Rig


@pytest.fixture(scope="module")
def book() -> Book:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the generator's numpy warnings on a small book are not ours to judge
        return generate_book(BookSpec(seed=5, active_accounts=24, days=40))


@pytest.fixture(params=VENDORS)
def rig(request, book: Book) -> Iterator[Rig]:
    with RIGS[request.param](book) as running:
        yield running


def pull_all(source, obj: str, since=None) -> list[dict]:
    return [record for page in source.pull(obj, since) for record in page]


def test_settings_env_points_the_connector_at_the_sandbox_and_no_credentials_are_refused(rig: Rig) -> None:
    settings = Settings.from_env(rig.sandbox.settings_env())
    source_class = type(rig.source())
    source = source_class.from_settings(settings)
    assert {r[rig.name_field] for r in pull_all(source, rig.companies)} == set(rig.book_accounts["name"])
    assert rig.credential in rig.sandbox.settings_env()
    with pytest.raises(ConnectorConfigError, match=rig.credential):
        source_class.from_settings(Settings()).pull(rig.companies, None)


def test_a_full_pull_returns_every_record_exactly_once_and_counts_every_call(rig: Rig) -> None:
    source = rig.source()
    served_before = rig.served()
    pulled = {obj: pull_all(source, obj) for obj in (rig.companies, rig.contacts)}
    for obj, records in pulled.items():
        ids = [rig.record_id(r) for r in records]
        assert len(ids) == len(set(ids)), obj
    assert sorted(r[rig.name_field] for r in pulled[rig.companies]) == sorted(rig.book_accounts["name"])
    emails = sorted(str(r[rig.email_field]).lower() for r in pulled[rig.contacts])
    assert emails == sorted(rig.book_contacts["email"].str.lower())
    assert source.stats.records == sum(len(r) for r in pulled.values())
    assert source.stats.api_calls == rig.served() - served_before  # every HTTP request counted, no more


def test_an_incremental_pull_returns_only_what_changed_since_the_cursor(rig: Rig) -> None:
    source = rig.source()
    companies = pull_all(source, rig.companies)
    contacts = pull_all(source, rig.contacts)
    since = rig.advance(timedelta(hours=1)) - timedelta(seconds=1)
    assert pull_all(source, rig.companies, since) == []
    rig.rename(companies[3], "Renamed Industries")
    changed = pull_all(source, rig.companies, since)
    assert [(rig.record_id(r), r[rig.name_field]) for r in changed] == [
        (rig.record_id(companies[3]), "Renamed Industries")
    ]
    try:
        rig.delete_contact(contacts[5])
    except NotImplementedError as reason:
        pytest.skip(str(reason))
    gone = pull_all(source, rig.contacts, since)
    assert [(rig.record_id(r), rig.is_deleted(r)) for r in gone] == [(rig.record_id(contacts[5]), True)]


def test_rate_limits_and_server_errors_are_retried_and_the_result_is_unchanged(rig: Rig) -> None:
    clean = sorted(rig.record_id(r) for r in pull_all(rig.source(), rig.contacts))
    rig.sandbox.faults.retry_after_seconds = 1
    rig.sandbox.faults.rate_limited = 2
    rig.sandbox.faults.server_errors = 2
    source = rig.source()
    pages = source.pull(rig.contacts, None)
    ids = [rig.record_id(r) for page in pages for r in page]
    assert len(ids) == len(set(ids)) and sorted(ids) == clean  # a retried page is not handed over twice
    assert rig.calls_and_retries(source)[1] == 4 and source.stats.retries == 4


def test_persistent_server_errors_give_up_after_the_retry_budget(rig: Rig) -> None:
    rig.sandbox.faults.server_error_status = 500
    rig.sandbox.faults.server_errors = 100
    source = rig.source(attempts=3)
    with pytest.raises(Exception) as failed:
        pull_all(source, rig.contacts)
    assert rig.status(failed.value) == 500
    assert rig.calls_and_retries(source) == (3, 2)


def test_rejected_credentials_are_not_retried(rig: Rig) -> None:
    source = rig.source()
    rig.refuse_auth()
    with pytest.raises(Exception) as refused:
        pull_all(source, rig.contacts)
    assert rig.status(refused.value) == 401
    assert rig.calls_and_retries(source) == (1, 0)  # the refused call (a login or a request), not retried


def test_the_sdk_keeps_its_connection_alive_across_calls(rig: Rig) -> None:
    """The vendors' APIs keep connections alive and so must their sandboxes: a pull's calls share a connection or
    two (a login may use its own), where a server answering `Connection: close` costs one per call."""
    stats = rig.sandbox.server.server.stats  # cheroot's counters: `Accepts` counts the connections it accepted
    stats["Enabled"] = True
    source = rig.source()
    accepted = stats["Accepts"]
    for obj in (rig.companies, rig.contacts) * 2:
        pull_all(source, obj)
    assert source.stats.api_calls >= 6, "enough calls to tell one connection per call from a kept one"
    assert stats["Accepts"] - accepted <= 2, (stats["Accepts"] - accepted, source.stats.api_calls)
