"""`cse sync` end to end: the official SDKs against the three vendor sandboxes over loopback, into a real store.

tests/test_sync.py pins the sync's own promises with an in-memory source; the connector tests pin each SDK pull on
its own. These tests put the pieces together the way production runs them: Salesforce (simple-salesforce),
HubSpot (hubspot-api-client) and Intercom (python-intercom), seeded from one demo book in which every company
lives in its CRM (Salesforce or HubSpot) and in Intercom, pulled through the default mappings into SQLite and
PostgreSQL. What must hold, and is checked here:

- a full sync makes every company of the book exactly one account, whichever vendors hold it, with its contacts
  and its events (the store's events add up to the book's, kind by kind);
- an incremental sync reads only what changed, lands it, honours deletions and archiving, and a rerun that finds
  nothing new changes nothing;
- a run killed midway, or a vendor failing partway, is finished by the next run, and the store then equals a clean
  full sync of the same vendors: no duplicates, no gaps;
- 429 storms and 5xx answers are retried with backoff, every attempt is counted, and the result is the same;
- malformed records are quarantined with a reason while the rest of their page lands, and a fix at the vendor
  takes them out of quarantine.
One strict xfail pins a known gap: a field two vendors map takes whichever record was loaded last, not the newest
change (test_a_crm_rename_survives_an_unrelated_intercom_change).

The book is small (a few dozen companies, five weeks): Intercom lists data events per contact, one API call
each, so the contact count sets the pace. Vendor clocks are moved forward between rounds of changes, as if an
hour passed between two syncs, so that what a round changes is outside the previous run's overlap window and
"only the changed records are read" can be checked exactly.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import Engine, func, select

from app.book_loader import load_book
from app.demo.book import Book, BookSpec, generate_book
from app.demo.crm_loop import link_companies
from app.settings import Settings
from app.sources import build_sources
from app.store.db import make_engine, upgrade_schema
from app.store.models import (
    Account,
    AccountDay,
    ActivityEvent,
    Contact,
    ExternalId,
    QuarantinedRecord,
    RecordLink,
    SyncCursor,
)
from app.sync import SyncLog, read_cursor, run_sync
from connectors.hubspot.source import HubSpotSource
from connectors.intercom.source import IntercomSource
from connectors.retry import RetryPolicy
from connectors.salesforce.client import SalesforceClient
from connectors.salesforce.source import SalesforceSource, fields_from_mappings, load_mapping_files
from connectors.source import VendorSource
from sandbox.hubspot import HubSpotSandbox, HubSpotState
from sandbox.hubspot import start_sandbox as start_hubspot
from sandbox.intercom import IntercomSandbox
from sandbox.intercom import start_sandbox as start_intercom
from sandbox.salesforce import SalesforceSandbox
from sandbox.salesforce import start_sandbox as start_salesforce
from tests.conftest import _drop_schema, _postgres_engine

# Yesterday: the whole book lies in the past, and inside the 90 days Intercom lists data events for.
AS_OF = date.today() - timedelta(days=1)
SPEC = BookSpec(seed=11, active_accounts=30, days=31, as_of=AS_OF)
HOUR = timedelta(hours=1)
# The HubSpot portal holds tickets and deals; CSM touches and escalations would be engagements, not seeded there.
HUBSPOT_KINDS = {"ticket_opened", "ticket_closed", "seat_change", "plan_change"}
CRM_OBJECT = {"salesforce": "Account", "hubspot": "companies"}
ATTEMPTS = 12  # retries enough to outlast every burst these tests inject


class Killed(BaseException):
    """The process dying mid-run: a BaseException, so the sync's per-object error handling cannot catch it."""


# --------------------------------------------------------------------------------------------------------------------
# The vendors
# --------------------------------------------------------------------------------------------------------------------


@dataclass
class Stack:
    """The three sandboxes seeded from one book, and the settings that point the connectors at them."""

    book: Book
    salesforce: SalesforceSandbox
    hubspot_sandbox: HubSpotSandbox
    intercom: IntercomSandbox
    settings: Settings
    log_dir: Path

    @property
    def hubspot(self) -> HubSpotState:
        return self.hubspot_sandbox.state

    def advance_clocks(self, delta: timedelta = HOUR) -> None:
        """Move every vendor clock forward, as if `delta` passed between two syncs: what is changed next is newer
        than everything already read, and outside the overlap window the next run re-reads."""
        org = self.salesforce.org
        org.set_clock(org.now() + delta)
        hubspot_clock = self.hubspot.clock
        self.hubspot.clock = lambda: hubspot_clock() + delta
        workspace = self.intercom.workspace
        intercom_clock = workspace.clock
        workspace.clock = lambda: intercom_clock() + delta.total_seconds()

    def stop(self) -> None:
        for sandbox in (self.salesforce, self.hubspot_sandbox, self.intercom):
            sandbox.stop()


def start_stack(book: Book, log_dir: Path, salesforce_page: int | None = None) -> Stack:
    """Serve the three sandboxes on loopback ports; `salesforce_page` shrinks Salesforce's query pages (default
    2,000) so a small book still spans several pages."""
    options = {"batch_size": salesforce_page} if salesforce_page else {}
    salesforce = start_salesforce(book, **options)
    hubspot = start_hubspot(book)
    intercom = start_intercom(book)
    settings = Settings.from_env(
        {**salesforce.settings_env(), **hubspot.settings_env(), **intercom.settings_env(), "CSE_DATA_DIR": str(log_dir)}
    )
    return Stack(book, salesforce, hubspot, intercom, settings, log_dir)


@pytest.fixture(scope="module")
def sync_book() -> Book:
    return generate_book(SPEC)


@pytest.fixture
def stack(sync_book, tmp_path) -> Iterator[Stack]:
    running = start_stack(sync_book, tmp_path / "sync-logs")
    try:
        yield running
    finally:
        running.stop()


# --------------------------------------------------------------------------------------------------------------------
# Sources and runs
# --------------------------------------------------------------------------------------------------------------------


@dataclass
class Waits:
    """Backoff waits the clients asked for, by vendor. Recorded, not slept: the sandboxes'
    fault switches count requests, not seconds, so the schedule is checked without slowing the suite."""

    by_vendor: dict[str, list[float]] = field(default_factory=dict)

    def recorder(self, vendor: str) -> Callable[[float], None]:
        return self.by_vendor.setdefault(vendor, []).append


VENDORS = ("salesforce", "hubspot", "intercom")


def retrying_sources(
    settings: Settings, waits: Waits | None = None, vendors: tuple[str, ...] = VENDORS
) -> list[VendorSource]:
    """The sources as `cse sync` builds them (default mappings), but with more attempts, so injected fault bursts
    are outlasted. With `waits`, the clients report their waits there instead of sleeping them: only for full
    pulls, since an incremental HubSpot pull paces its search calls with the same sleep and would otherwise run
    into the portal's real per-second limit; without, backoff is shrunk to milliseconds and slept."""

    def retry(vendor: str) -> RetryPolicy:
        if waits is not None:
            return RetryPolicy(attempts=ATTEMPTS, sleep=waits.recorder(vendor))
        return RetryPolicy(attempts=ATTEMPTS, base_delay=0.005, max_delay=0.02)

    factories: dict[str, Callable[[], VendorSource]] = {
        "salesforce": lambda: SalesforceSource(
            SalesforceClient.from_settings(settings, retry=retry("salesforce")),
            fields=fields_from_mappings(load_mapping_files()),
        ),
        "hubspot": lambda: HubSpotSource.from_settings(settings, retry=retry("hubspot")),
        "intercom": lambda: IntercomSource.from_settings(settings, retry=retry("intercom")),
    }
    return [factories[vendor]() for vendor in vendors]


class Tripwire:
    """A VendorSource passing another's pages through, which calls `trip` when the sync asks for more after
    `after` pages of `obj`: to switch faults on mid-pull, or to raise Killed as if the process died there."""

    def __init__(self, source: VendorSource, obj: str, after: int, trip: Callable[[], None]) -> None:
        self.source = source
        self.vendor = source.vendor
        self.stats = source.stats
        self.obj, self.after, self.trip = obj, after, trip
        self.tripped = False

    def objects(self) -> tuple[str, ...]:
        return self.source.objects()

    def pull(self, obj: str, since: datetime | None) -> Iterator[list[dict]]:
        for number, page in enumerate(self.source.pull(obj, since), start=1):
            yield page
            if obj == self.obj and number == self.after and not self.tripped:
                self.tripped = True
                self.trip()


class Subset:
    """Only some objects of a source: a test about accounts need not pay for Intercom's per-contact events."""

    def __init__(self, source: VendorSource, *objects: str) -> None:
        self.source, self.vendor, self.stats = source, source.vendor, source.stats
        self.only = objects

    def objects(self) -> tuple[str, ...]:
        return tuple(o for o in self.source.objects() if o in self.only)

    def pull(self, obj: str, since: datetime | None) -> Iterator[list[dict]]:
        return self.source.pull(obj, since)


def kill() -> None:
    raise Killed


def wired(sources: list[VendorSource], vendor: str, obj: str, after: int, trip: Callable[[], None]) -> Tripwire:
    """Replace `vendor`'s source in `sources` by a Tripwire around it (in place) and return the tripwire."""
    index = next(i for i, s in enumerate(sources) if str(s.vendor) == vendor)
    sources[index] = wire = Tripwire(sources[index], obj, after, trip)
    return wire


def sync(stack: Stack, engine: Engine, sources: list[VendorSource] | None = None, **options: Any) -> SyncLog:
    """One `cse sync` run (every vendor, incremental unless full=True) into `engine`."""
    if sources is None:
        sources = build_sources(stack.settings, None, engine)
    return run_sync(engine, sources, log_dir=stack.log_dir, **options)


@contextmanager
def store_like(engine: Engine, tmp_path: Path, name: str) -> Iterator[Engine]:
    """A second, empty store on the same database as `engine` (a fresh schema on PostgreSQL), for a reference
    sync to compare with: the same database sums, rounds and compares the same way."""
    if engine.dialect.name == "postgresql":
        other, schema = _postgres_engine()
        try:
            upgrade_schema(other)
            yield other
        finally:
            other.dispose()
            _drop_schema(schema)
        return
    other = make_engine(f"sqlite:///{tmp_path / f'{name}.db'}")
    try:
        upgrade_schema(other)
        yield other
    finally:
        other.dispose()


def clean_full_sync(
    stack: Stack, like: Engine, tmp_path: Path, vendors: tuple[str, ...] = VENDORS
) -> tuple[SyncLog, dict[str, list[tuple]]]:
    """What one uninterrupted full sync of the vendors as they are now puts in an empty store."""
    with store_like(like, tmp_path, "reference") as engine:
        log = sync(stack, engine, retrying_sources(stack.settings, vendors=vendors))
        assert log.ok, log.to_dict()
        return log, snapshot(engine)


# --------------------------------------------------------------------------------------------------------------------
# Reading the store
# --------------------------------------------------------------------------------------------------------------------

SNAPSHOT_TABLES = (Account, ExternalId, RecordLink, Contact, ActivityEvent, AccountDay, QuarantinedRecord)
# Surrogate ids, write times and the quarantined record's raw copy say how and when a row was written, not what.
BOOKKEEPING = {"id", "updated_at", "created_at", "payload"}


def _comparable(value: Any) -> Any:
    """Floats rounded (sums may add up in another order), dicts as sorted item tuples (JSON properties)."""
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, dict):
        return tuple(sorted((k, _comparable(v)) for k, v in value.items()))
    return value


def snapshot(engine: Engine) -> dict[str, list[tuple]]:
    """Every row a sync writes, surrogate ids replaced by natural keys (account key, contact email) and
    bookkeeping left out: two stores built by different runs compare equal exactly when their data does."""
    out: dict[str, list[tuple]] = {}
    with engine.connect() as conn:
        account_key = dict(conn.execute(select(Account.id, Account.key)).all())
        contact_email = dict(conn.execute(select(Contact.id, Contact.email)).all())
        for model in SNAPSHOT_TABLES:
            columns = [c for c in model.__table__.columns if c.name not in BOOKKEEPING]
            rows = []
            for row in conn.execute(select(*columns)).mappings():
                values = dict(row)
                if "account_id" in values:
                    values["account_id"] = account_key[values["account_id"]]
                if values.get("contact_id") is not None:
                    values["contact_id"] = contact_email[values["contact_id"]]
                rows.append(tuple(_comparable(values[c.name]) for c in columns))
            out[model.__tablename__] = sorted(rows, key=repr)
    return out


ROLLUPS = {  # AccountDay column -> (event kind, event column it sums)
    "logins": ("login", "count"), "api_calls": ("api_call", "count"), "tickets_opened": ("ticket_opened", "count"),
    "tickets_closed": ("ticket_closed", "count"), "outreach": ("outreach", "count"),
    "seat_delta": ("seat_change", "value"), "plan_delta": ("plan_change", "value"),
}  # fmt: skip


def assert_rollups_add_up(engine: Engine) -> None:
    """Day rollups agree, account by account, with the events they are built from. (This caught events at exactly
    midnight falling out of SQLite rollups when bulk loads stored datetimes without microseconds.)"""
    with engine.connect() as conn:
        events = pd.DataFrame(
            conn.execute(select(ActivityEvent.account_id, ActivityEvent.kind, ActivityEvent.count,
                                ActivityEvent.value)).all(), columns=["account_id", "kind", "count", "value"],
        )  # fmt: skip
        days = pd.DataFrame(conn.execute(select(AccountDay.account_id, *[AccountDay.__table__.c[c] for c in ROLLUPS])))
    wrong = {}
    for column, (kind, measure) in ROLLUPS.items():
        from_events = events[events["kind"] == kind].groupby("account_id")[measure].sum().round(6)
        from_days = days.groupby("account_id")[column].sum().round(6)
        from_days = from_days[from_days != 0]
        if not from_events[from_events != 0].sort_index().equals(from_days.sort_index().astype(from_events.dtype)):
            wrong[column] = (float(from_events.sum()), float(from_days.sum()))
    assert not wrong, f"events vs rollups (totals): {wrong}"


def assert_same_store(engine: Engine, reference: dict[str, list[tuple]]) -> None:
    """The store holds exactly the reference's data, table by table (one table at a time, for a readable diff)."""
    state = snapshot(engine)
    assert list(state) == list(reference)
    for table, rows in reference.items():
        assert state[table] == rows, f"{table} differs"


def count(engine: Engine, model: Any, *where: Any) -> int:
    with engine.connect() as conn:
        return conn.scalar(select(func.count()).select_from(model).where(*where))


def links(engine: Engine) -> dict[tuple[str, str, str], int]:
    """(vendor, object, external id) -> account id."""
    with engine.connect() as conn:
        rows = conn.execute(select(ExternalId.vendor, ExternalId.object, ExternalId.external_id, ExternalId.account_id))
        return {(v, o, e): a for v, o, e, a in rows}


def account(engine: Engine, account_id: int) -> dict:
    with engine.connect() as conn:
        return dict(conn.execute(select(Account).where(Account.id == account_id)).mappings().one())


def event_ids(engine: Engine, source: str | None = None) -> list[str]:
    query = select(ActivityEvent.external_id)
    if source:
        query = query.where(ActivityEvent.source == source)
    with engine.connect() as conn:
        return list(conn.execute(query).scalars())


def task_events(engine: Engine) -> list[str]:
    return [e for e in event_ids(engine, "salesforce") if e.startswith("salesforce:task:")]


def quarantined(engine: Engine) -> dict[tuple[str, str, str], str]:
    """(vendor, object, external id) -> reason."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(QuarantinedRecord.vendor, QuarantinedRecord.object, QuarantinedRecord.external_id,
                   QuarantinedRecord.reason)
        )  # fmt: skip
        return {(v, o, e): r for v, o, e, r in rows}


def records_read(log: SyncLog) -> dict[tuple[str, str], int]:
    return {(o.vendor, o.object): o.records for o in log.objects}


# --------------------------------------------------------------------------------------------------------------------
# What the book says the store must hold
# --------------------------------------------------------------------------------------------------------------------


def vendor_ids(stack: Stack, key: str) -> dict[tuple[str, str], str]:
    """The vendor records of one book company: its CRM record and its Intercom company, by (vendor, object)."""
    crm = stack.book.accounts.set_index("key").at[key, "crm"]
    if crm == "salesforce":
        crm_id = stack.salesforce.seeded.account_ids[key]
    else:
        crm_id = stack.hubspot.find_by_property("companies", "product_account_id", key).id
    intercom_id = stack.intercom.workspace.company_by_key(key)["id"]
    return {(crm, CRM_OBJECT[crm]): crm_id, ("intercom", "companies"): intercom_id}


def expected_events(book: Book) -> pd.DataFrame:
    """Events per (source, kind) the default mappings pull: number of rows and total count."""
    events = book.events[(book.events["source"] != "hubspot") | book.events["kind"].isin(HUBSPOT_KINDS)]
    return events.groupby(["source", "kind"])["count"].agg(rows="size", total="sum").sort_index()


def stored_events(engine: Engine) -> pd.DataFrame:
    with engine.connect() as conn:
        rows = conn.execute(select(ActivityEvent.source, ActivityEvent.kind, ActivityEvent.count)).all()
    frame = pd.DataFrame(rows, columns=["source", "kind", "count"])
    return frame.groupby(["source", "kind"])["count"].agg(rows="size", total="sum").sort_index()


def assert_book_landed(stack: Stack, engine: Engine) -> None:
    """Every company of the book is one account linked to its CRM record and its Intercom company (and to
    nothing else); every contact sits on its company's account; the events add up to the book's, kind by kind."""
    book = stack.book
    linked = links(engine)
    account_of: dict[str, int] = {}
    for row in book.accounts.to_dict("records"):
        ids = vendor_ids(stack, row["key"])
        owners = {linked.get((vendor, obj, rid)) for (vendor, obj), rid in ids.items()}
        assert len(owners) == 1 and None not in owners, f"{row['key']} resolved to {owners}"
        account_of[row["key"]] = owners.pop()
        stored = account(engine, account_of[row["key"]])
        assert (stored["name"], stored["domain"]) == (row["name"], row["domain"])
    assert count(engine, Account) == len(book.accounts) == len(set(account_of.values()))
    per_account = pd.Series(list(linked.values())).value_counts()
    assert (per_account == 2).all(), "every account has exactly its CRM link and its Intercom link"

    with engine.connect() as conn:
        contacts = dict(conn.execute(select(Contact.email, Contact.account_id)).all())
    pairs = zip(book.contacts["email"], book.contacts["account_key"], strict=True)
    expected = {email.lower(): account_of[key] for email, key in pairs}
    assert contacts == expected
    pd.testing.assert_frame_equal(stored_events(engine), expected_events(book), check_dtype=False)


# --------------------------------------------------------------------------------------------------------------------
# Full sync and identity resolution
# --------------------------------------------------------------------------------------------------------------------


def test_full_sync_of_three_vendors_makes_each_company_one_account(store, stack):
    log = sync(stack, store)

    assert log.ok, log.to_dict()
    assert log.quarantined == 0 and count(store, QuarantinedRecord) == 0
    assert_book_landed(stack, store)
    # Salesforce companies are matched by domain (the Account holds no product id; its Website is www.-prefixed,
    # Intercom's is not), HubSpot ones by the product account id both vendors carry.
    sf_key = stack.book.accounts.query("crm == 'salesforce'")["key"].iloc[0]
    sf_id = stack.salesforce.seeded.account_ids[sf_key]
    assert account(store, links(store)[("salesforce", "Account", sf_id)])["key"] == f"salesforce-{sf_id}"
    hs_key = stack.book.accounts.query("crm == 'hubspot'")["key"].iloc[0]
    hs_id = vendor_ids(stack, hs_key)[("hubspot", "companies")]
    assert account(store, links(store)[("hubspot", "companies", hs_id)])["key"] == hs_key
    with store.connect() as conn:
        cursors = {(c.vendor, c.object) for c in conn.execute(select(SyncCursor))}
    assert cursors == {(o.vendor, o.object) for o in log.objects}  # every finished full pull set its cursor
    assert_rollups_add_up(store)


def test_the_demo_link_adds_links_and_changes_no_account_value(store, stack):
    """`cse demo` refreshes its models while it links the CRMs: that they learn the same either way rests on the
    sandboxes holding the book's records exactly. Intercom keeps a monthly spend in whole dollars, so a book ARR
    in cents was once rewritten for nearly every account (1002.08 became 1008.0), and the models' `log_arr` with it."""
    book = stack.book
    load_book(store, book.accounts, book.contacts, book.events)
    as_loaded = accounts_table(store)

    linked = link_companies(store, stack.settings, stack.log_dir)

    assert linked == {
        "salesforce": (book.accounts["crm"] == "salesforce").sum(),
        "hubspot": (book.accounts["crm"] == "hubspot").sum(),
        "intercom": len(book.accounts),
    }
    assert len(links(store)) == 2 * len(book.accounts)
    pd.testing.assert_frame_equal(accounts_table(store).drop(columns="updated_at"),
                                  as_loaded.drop(columns="updated_at"))  # fmt: skip


def accounts_table(engine: Engine) -> pd.DataFrame:
    with engine.connect() as conn:
        return pd.DataFrame(conn.execute(select(Account).order_by(Account.id)).mappings().all())


# --------------------------------------------------------------------------------------------------------------------
# Incremental sync: changes, deletions, no duplicates
# --------------------------------------------------------------------------------------------------------------------


@dataclass
class Touched:
    """Records changed at the vendors in one round, by (vendor, object): what the next run must read."""

    ids: dict[tuple[str, str], set[str]] = field(default_factory=dict)

    def add(self, vendor: str, obj: str, record_id: str) -> str:
        self.ids.setdefault((vendor, obj), set()).add(record_id)
        return record_id

    def reads(self, *rounds: Touched) -> dict[tuple[str, str], int]:
        merged: dict[tuple[str, str], set[str]] = {}
        for touched in (self, *rounds):
            for key, ids in touched.ids.items():
                merged.setdefault(key, set()).update(ids)
        return {key: len(ids) for key, ids in merged.items()}


def first_of(book: Book, crm: str) -> str:
    return book.accounts.query("crm == @crm and status == 'active'")["key"].iloc[0]


def test_incremental_sync_reads_only_changes_and_honours_deletions(store, stack):
    book, org, hubspot, workspace = stack.book, stack.salesforce.org, stack.hubspot, stack.intercom.workspace
    assert sync(stack, store).ok
    sf_ids = stack.salesforce.seeded.account_ids
    sf_keys = book.accounts.query("crm == 'salesforce' and status == 'active'")["key"].tolist()
    hs_keys = book.accounts.query("crm == 'hubspot' and status == 'active'")["key"].tolist()
    closed_case = next(c for c in org.live("Case") if c["IsClosed"] and c["AccountId"] != sf_ids[sf_keys[0]])
    sf_a, sf_b = sf_ids[sf_keys[0]], closed_case["AccountId"]
    hs_a, hs_b = (vendor_ids(stack, k)[("hubspot", "companies")] for k in hs_keys[:2])
    # Intercom's changes go to other companies than Salesforce's rename: see test_a_crm_rename_... for why.
    sf_b_key = next(k for k, v in sf_ids.items() if v == sf_b)
    ic_a, ic_b = (workspace.company_by_key(k)["id"] for k in [k for k in sf_keys if k != sf_b_key][:2])

    # Round 1, an hour later: edits, a new Contact and Case in Salesforce, a new company and an archived ticket
    # in HubSpot, new seat and login figures in Intercom.
    stack.advance_clocks()
    one = Touched()
    org.update("Account", one.add("salesforce", "Account", sf_a), {"Renewal_Date__c": "2031-01-31"})
    new_contact = org.insert("Contact", {"AccountId": sf_a, "LastName": "Newhire", "Email": "newhire@example.org"})
    one.add("salesforce", "Contact", new_contact)
    new_case = org.insert("Case", {"AccountId": sf_a, "Subject": "Cannot log in", "Status": "New", "Origin": "Web"})
    one.add("salesforce", "Case", new_case)
    hubspot.update("companies", one.add("hubspot", "companies", hs_a), {"customer_segment": "Enterprise"})
    newco = hubspot.create("companies", {"name": "Newco", "domain": "newco.example", "product_account_id": "newco"})
    one.add("hubspot", "companies", newco.id)
    ticket = next(t for t in hubspot.live("tickets") if t.properties.get("closed_date"))
    hubspot.archive("tickets", one.add("hubspot", "tickets", ticket.id))
    workspace.update_company(one.add("intercom", "companies", ic_a), {"custom_attributes": {"active_seats": 3}})
    intercom_contact = next(c for c in workspace.contacts.values() if ic_a in c.get("_companies", []))
    seen = int(stack.intercom.workspace.now())
    workspace.update_contact(one.add("intercom", "contacts", intercom_contact["id"]), {"last_seen_at": seen})

    first = sync(stack, store)
    assert first.ok, first.to_dict()
    linked = links(store)
    assert account(store, linked[("salesforce", "Account", sf_a)])["renewal_date"] == date(2031, 1, 31)
    assert account(store, linked[("hubspot", "companies", hs_a)])["segment"] == "enterprise"
    assert account(store, linked[("intercom", "companies", ic_a)])["seats_active"] == 3
    assert account(store, linked[("hubspot", "companies", newco.id)])["key"] == "newco"
    with store.connect() as conn:
        newhire = conn.execute(select(Contact).where(Contact.email == "newhire@example.org")).mappings().one()
        last_seen = conn.scalar(select(Contact.last_seen).where(Contact.email == intercom_contact["email"]))
    assert newhire["account_id"] == linked[("salesforce", "Account", sf_a)]
    assert last_seen == datetime.fromtimestamp(seen, UTC).replace(tzinfo=None)
    assert f"salesforce:case_opened:{new_case}" in event_ids(store, "salesforce")
    assert not [e for e in event_ids(store, "hubspot") if e.endswith(f":{ticket.id}")]  # both ticket events gone

    # Round 2, another hour on: a rename, deletions and archiving.
    stack.advance_clocks()
    two = Touched()
    org.update("Account", two.add("salesforce", "Account", sf_b), {"Name": "Renamed Industries"})
    org.delete("Contact", two.add("salesforce", "Contact", new_contact))
    org.delete("Case", two.add("salesforce", "Case", closed_case["Id"]))
    hubspot.archive("companies", two.add("hubspot", "companies", newco.id))  # only in HubSpot: account deleted
    hubspot.archive("companies", two.add("hubspot", "companies", hs_b))  # also in Intercom: account stays
    workspace.update_company(two.add("intercom", "companies", ic_b), {"custom_attributes": {"api_used": 1234}})

    log = sync(stack, store)
    assert log.ok, log.to_dict()
    # Only what changed is read: this round's records, plus the previous round's, which sit inside the overlap
    # window below the cursor and are re-read on purpose (clock skew). An object nobody touched re-reads just the
    # few records at its cursor, the same ones every run.
    touched = two.reads(one)
    reads, earlier = records_read(log), records_read(first)
    assert {key: n for key, n in reads.items() if key in touched} == touched
    untouched = {key: n for key, n in reads.items() if key not in touched}
    assert untouched == {key: n for key, n in earlier.items() if key not in touched}
    assert sum(untouched.values()) <= 10, untouched
    salesforce_calls = len([o for o in log.objects if o.vendor == "salesforce"])  # one query each
    assert log.api_calls["salesforce"] == salesforce_calls
    assert log.api_calls["hubspot"] <= 3 * 4  # per object: the archived list, one search page, associations
    contacts = len(workspace.contacts)
    assert log.object("intercom", "events").api_calls == contacts + math.ceil(contacts / 150)  # Intercom's floor
    assert log.api_calls["intercom"] - log.object("intercom", "events").api_calls <= 6

    linked = links(store)
    assert account(store, linked[("salesforce", "Account", sf_b)])["name"] == "Renamed Industries"
    assert account(store, linked[("intercom", "companies", ic_b)])["api_used"] == 1234
    assert count(store, Contact, Contact.email == "newhire@example.org") == 0
    assert not [e for e in event_ids(store, "salesforce") if e.endswith(f":{closed_case['Id']}")]
    assert ("hubspot", "companies", newco.id) not in linked and ("hubspot", "companies", hs_b) not in linked
    with store.connect() as conn:
        statuses = dict(conn.execute(select(Account.key, Account.status)).all())
    assert statuses["newco"] == "deleted" and statuses[hs_keys[1]] == "active"
    assert ("intercom", "companies", workspace.company_by_key(hs_keys[1])["id"]) in linked

    # A rerun with nothing new: the overlap is re-read, and nothing changes, nothing is duplicated.
    before = snapshot(store)
    log = sync(stack, store)
    assert log.ok
    assert_same_store(store, before)
    assert len(event_ids(store)) == len(set(event_ids(store)))


def test_a_crm_rename_survives_an_unrelated_intercom_change(store, stack):
    sources = [Subset(build_sources(stack.settings, "salesforce")[0], "Account"),
               Subset(build_sources(stack.settings, "intercom")[0], "companies")]  # fmt: skip
    assert sync(stack, store, sources).ok
    stack.advance_clocks()
    key = first_of(stack.book, "salesforce")
    stack.salesforce.org.update("Account", stack.salesforce.seeded.account_ids[key], {"Name": "Renamed Industries"})
    intercom_id = stack.intercom.workspace.company_by_key(key)["id"]
    stack.intercom.workspace.update_company(intercom_id, {"custom_attributes": {"api_used": 4321}})

    assert sync(stack, store, sources).ok
    renamed = account(store, links(store)[("intercom", "companies", intercom_id)])
    assert renamed["api_used"] == 4321
    assert renamed["name"] == "Renamed Industries"


# --------------------------------------------------------------------------------------------------------------------
# Resume after a run killed midway or a vendor failing partway
# --------------------------------------------------------------------------------------------------------------------


def test_a_full_sync_killed_midway_is_finished_by_the_next_run(store, stack, tmp_path):
    # The first sync dies after one page (of two) of Intercom contacts: Salesforce, HubSpot and the Intercom
    # companies are in; Intercom conversations and events never started.
    sources = retrying_sources(stack.settings)
    wired(sources, "intercom", "contacts", after=1, trip=kill)
    with pytest.raises(Killed):
        sync(stack, store, sources)
    intercom_contacts = len(stack.intercom.workspace.contacts)
    assert 0 < count(store, RecordLink, RecordLink.vendor == "intercom") < intercom_contacts
    assert count(store, ActivityEvent, ActivityEvent.source == "intercom") == 0
    with store.connect() as conn:
        assert read_cursor(conn, "intercom", "companies") is not None
        assert read_cursor(conn, "intercom", "contacts") is None  # a full pull is redone, never half-trusted

    log = sync(stack, store, retrying_sources(stack.settings))
    assert log.ok, log.to_dict()
    assert_book_landed(stack, store)
    assert_same_store(store, clean_full_sync(stack, store, tmp_path)[1])


def test_an_incremental_sync_failing_midway_is_finished_by_the_next_run(store, sync_book, tmp_path):
    # Salesforce serves pages of 20 here, so a few dozen changes span several pages. Intercom is left out: this is
    # about Salesforce checkpoints, and HubSpot is enough to show the rest of the run carrying on.
    vendors = ("salesforce", "hubspot")
    stack = start_stack(sync_book, tmp_path / "sync-logs", salesforce_page=20)
    try:
        org = stack.salesforce.org
        assert sync(stack, store, retrying_sources(stack.settings, vendors=vendors)).ok
        before = len(task_events(store))
        # An hour later the CSMs log 50 calls in Salesforce, one a minute: three pages of changed Tasks.
        stack.advance_clocks()
        accounts = list(stack.salesforce.seeded.account_ids.values())
        calls = []
        for n in range(50):
            org.set_clock(org.now() + timedelta(minutes=1))
            calls.append(org.insert("Task", {"WhatId": accounts[n % len(accounts)], "Subject": f"Call {n}",
                                             "Status": "Completed", "Type": "Call", "Priority": "Normal"}))  # fmt: skip

        # After the first page Salesforce answers 503 to exactly as many attempts as the client makes: that page
        # request fails for good, the Task pull stops there, and the rest of the run carries on.
        def outage() -> None:
            org.faults.server_errors = ATTEMPTS

        sources = retrying_sources(stack.settings, vendors=vendors)
        wired(sources, "salesforce", "Task", after=1, trip=outage)
        log = sync(stack, store, sources)
        tasks = log.object("salesforce", "Task")
        assert "SalesforceGeneralError" in tasks.error and tasks.pages == 1
        assert [o.object for o in log.objects if o.error] == ["Task"]
        assert [o.object for o in log.objects if o.vendor == "hubspot"] == ["companies", "contacts", "deals", "tickets"]
        landed = len(task_events(store)) - before
        assert 0 < landed < 50  # the first page's, checkpointed together with their data
        with store.connect() as conn:
            checkpoint = read_cursor(conn, "salesforce", "Task")
        assert checkpoint == org.get("Task", calls[landed - 1])["SystemModstamp"]

        log = sync(stack, store, retrying_sources(stack.settings, vendors=vendors))
        assert log.ok, log.to_dict()
        resumed = log.object("salesforce", "Task")
        since = checkpoint - timedelta(minutes=5)  # from the checkpoint (minus the overlap), not from the start
        assert resumed.since == since.isoformat()
        stamps = [org.get("Task", c)["SystemModstamp"] for c in calls]
        floor = since.replace(microsecond=0)  # SOQL datetimes are whole seconds, rounded down
        assert resumed.records == sum(stamp >= floor for stamp in stamps) < 50
        assert len(task_events(store)) == before + 50
        assert_same_store(store, clean_full_sync(stack, store, tmp_path, vendors)[1])
    finally:
        stack.stop()


# --------------------------------------------------------------------------------------------------------------------
# 429 storms and 5xx
# --------------------------------------------------------------------------------------------------------------------


def grows(waits: list[float], run: int) -> bool:
    """Some `run` consecutive waits each at least 1.25 times the one before: exponential backoff at work (it doubles,
    and ±20 % jitter leaves at least 2 × 0.8 / 1.2 ≈ 1.33 between neighbours)."""
    windows = [waits[start : start + run] for start in range(len(waits) - run + 1)]
    return any(all(later >= 1.25 * earlier > 0 for earlier, later in pairwise(window)) for window in windows)


def test_rate_limit_storms_and_server_errors_are_retried_with_backoff(store, stack, tmp_path):
    clean_log, reference = clean_full_sync(stack, store, tmp_path)

    # Each vendor: a trickle of 5xx all along (every 7th request); once its companies are in, four 5xx in a row;
    # once its contacts start arriving, a storm of six 429s.
    faults = {"salesforce": stack.salesforce.org.faults, "hubspot": stack.hubspot.faults,
              "intercom": stack.intercom.faults}  # fmt: skip
    for switch in faults.values():
        switch.fail_every = 7
        switch.retry_after_seconds = 1

    def outage(vendor: str) -> Callable[[], None]:
        return lambda: setattr(faults[vendor], "server_errors", 4)

    def storm(vendor: str) -> Callable[[], None]:
        return lambda: setattr(faults[vendor], "rate_limited", 6)

    waits = Waits()
    sources = retrying_sources(stack.settings, waits)
    for vendor, companies, contacts in (("salesforce", "Account", "Contact"), ("hubspot", "companies", "contacts"),
                                        ("intercom", "companies", "contacts")):  # fmt: skip
        wired(sources, vendor, companies, after=1, trip=outage(vendor))
        wired(sources, vendor, contacts, after=1, trip=storm(vendor))
    log = sync(stack, store, sources)

    assert log.ok, log.to_dict()
    for source in sources:
        vendor = str(source.vendor)
        assert source.stats.retries >= 4 + 6, vendor  # the 5xx run and the storm (the trickle lands where it may)
        # Every attempt is an API call in the log: the clean run's calls plus one per retry, no more.
        assert log.api_calls[vendor] == clean_log.api_calls[vendor] + source.stats.retries, vendor
    # Backoff (HubSpot and Intercom report their waits): a 429 waits for the window the vendor names (HubSpot's
    # Retry-After, Intercom's X-RateLimit-Reset), consecutive 5xx wait longer each time.
    for vendor, source in (("hubspot", sources[1]), ("intercom", sources[2])):
        recorded = waits.by_vendor[vendor]
        assert len(recorded) == source.stats.retries, vendor
        assert sum(0.9 <= w <= 2.0 for w in recorded) >= 6, vendor
        assert grows(recorded, 4), (vendor, recorded)
    assert_same_store(store, reference)  # and the same result as without a single fault


# --------------------------------------------------------------------------------------------------------------------
# Malformed records
# --------------------------------------------------------------------------------------------------------------------


def test_malformed_records_are_quarantined_and_the_rest_lands(store, stack):
    org, hubspot, workspace = stack.salesforce.org, stack.hubspot, stack.intercom.workspace
    sf_account = stack.salesforce.seeded.account_ids[first_of(stack.book, "salesforce")]
    hs_company = vendor_ids(stack, first_of(stack.book, "hubspot"))[("hubspot", "companies")]
    ic_company = workspace.company_by_key(first_of(stack.book, "hubspot"))["id"]

    # What vendors really hold: contacts without an email, a website that is no domain, a status our mapping
    # does not know, and values a portal's own validation refuses today but an old import left behind.
    bad_sf_contact = org.insert("Contact", {"AccountId": sf_account, "LastName": "Nomail"})
    bad_sf_account = org.insert("Account", {"Name": "Website Unknown Ltd", "Website": "n/a (ask sales)"})
    bad_hs_company = hubspot.create("companies", {"name": "Imported Ltd", "domain": "imported.example"})
    with hubspot.lock:
        bad_hs_company.properties.update(renewal_date="sometime in Q3", annualrevenue="about 2M")
    bad_hs_contact = hubspot.create("contacts", {"firstname": "No", "lastname": "Email",
                                                 "associatedcompanyid": hs_company})  # fmt: skip
    bad_ic_company = workspace.add_company({"company_id": "paused-1", "name": "Paused Co",
                                            "custom_attributes": {"status": "paused"}})  # fmt: skip
    bad_ic_contact = workspace.add_contact({"external_id": "anon-1", "name": "Anonymous"})
    workspace.attach_company(bad_ic_contact["id"], ic_company)

    log = sync(stack, store)
    assert log.ok and log.quarantined == 6
    reasons = quarantined(store)
    assert set(reasons) == {
        ("salesforce", "Contact", bad_sf_contact),
        ("salesforce", "Account", bad_sf_account),
        ("hubspot", "companies", bad_hs_company.id),
        ("hubspot", "contacts", bad_hs_contact.id),
        ("intercom", "companies", bad_ic_company["id"]),
        ("intercom", "contacts", bad_ic_contact["id"]),
    }
    assert "email: required but missing" in reasons[("salesforce", "Contact", bad_sf_contact)]
    assert "domain: expected a domain, got 'n/a (ask sales)'" in reasons[("salesforce", "Account", bad_sf_account)]
    assert "arr: expected a number, got 'about 2M'" in reasons[("hubspot", "companies", bad_hs_company.id)]
    assert "email: required but missing" in reasons[("hubspot", "contacts", bad_hs_contact.id)]
    assert "'paused' is not one of the mapped values" in reasons[("intercom", "companies", bad_ic_company["id"])]
    assert "email: required but missing" in reasons[("intercom", "contacts", bad_ic_contact["id"])]
    assert_book_landed(stack, store)  # everything else on those pages landed

    # Fixed at the vendor, they come out of quarantine on the next incremental run.
    org.update("Contact", bad_sf_contact, {"Email": "nomail@example.org"})
    org.update("Account", bad_sf_account, {"Website": "https://website-unknown.example"})
    hubspot.update("companies", bad_hs_company.id, {"renewal_date": "2027-03-31", "annualrevenue": "2000000"})
    hubspot.update("contacts", bad_hs_contact.id, {"email": "no.email@example.org"})
    workspace.update_company(bad_ic_company["id"], {"custom_attributes": {"status": "active"}})
    workspace.update_contact(bad_ic_contact["id"], {"email": "anonymous@example.org"})
    log = sync(stack, store)
    assert log.ok and log.quarantined == 0 and count(store, QuarantinedRecord) == 0
    linked = links(store)
    assert account(store, linked[("hubspot", "companies", bad_hs_company.id)])["arr"] == 2_000_000
    assert account(store, linked[("intercom", "companies", bad_ic_company["id"])])["key"] == "paused-1"
    with store.connect() as conn:
        emails = set(conn.execute(select(Contact.email)).scalars())
    assert {"nomail@example.org", "no.email@example.org", "anonymous@example.org"} <= emails
