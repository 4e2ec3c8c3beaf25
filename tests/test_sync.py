"""The sync run against a real store (SQLite and PostgreSQL) with an in-memory vendor source.

The source here is a test double on purpose: the SDK-against-sandbox tests live with each connector; these tests
pin what the sync itself promises (cursors and overlap, resume without gaps or duplicates, deletions, identity
resolution, quarantine, mappings as data).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

import app.sync.records as sync
from app.store.models import (
    Account,
    AccountDay,
    ActivityEvent,
    Contact,
    ExternalId,
    MappingVersion,
    QuarantinedRecord,
    SyncCursor,
)
from app.sync import active_mapping, read_cursor, rollback_mapping, run_sync, save_mapping_version
from app.sync.samples import last_sample
from connectors.source import PullStats

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)

HUBSPOT = {
    "companies": """
vendor: hubspot
object: companies
direction: pull
entity: account
id: id
updated: updated
deleted: archived
fields:
  name: {from: properties.name, type: string, required: true}
  domain: {from: properties.domain, type: domain}
  arr: {from: properties.annualrevenue, type: number}
  segment: {from: properties.tier, type: enum, values: {SMB: smb, Mid-Market: mid_market, Enterprise: enterprise}}
  renewal_date: {from: properties.renewal, type: date}
""",
    "contacts": """
vendor: hubspot
object: contacts
direction: pull
entity: contact
id: id
updated: updated
deleted: archived
account: properties.associatedcompanyid
account_object: companies
fields:
  email: {from: properties.email, type: email}
  name: {from: properties.fullname, type: string}
  is_champion: {from: properties.champion, type: boolean}
""",
    "tickets_opened": """
vendor: hubspot
object: tickets
direction: pull
entity: event
id: id
updated: updated
deleted: archived
account: company_id
account_object: companies
fields:
  occurred_at: {from: createdate, type: datetime}
  kind: {value: ticket_opened}
  contact_email: {from: contact.email, type: email}
""",
    "tickets_closed": """
vendor: hubspot
object: tickets
direction: pull
entity: event
id: id
updated: updated
deleted: archived
account: company_id
account_object: companies
when:
  closed_date: {present: true}
fields:
  occurred_at: {from: closed_date, type: datetime}
  kind: {value: ticket_closed}
  value: {from: hours_open, type: number}
""",
}
INTERCOM = {
    "companies": """
vendor: intercom
object: companies
direction: pull
entity: account
id: id
updated: updated_at
fields:
  name: {from: name, type: string}
  domain: {from: website, type: domain}
  plan: {from: plan.name, type: string}
  seats_active: {from: custom_attributes.active_seats, type: integer}
""",
}


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


class FakeSource:
    """An in-memory vendor: pages oldest change first, counts API calls, can fail after some pages."""

    def __init__(self, vendor: str, data: dict[str, list[dict]], page_size: int = 2, updated: str = "updated"):
        self.vendor = vendor
        self.stats = PullStats()
        self.data = data
        self.page_size = page_size
        self.updated = updated
        self.fail: dict[str, int] = {}  # object -> raise after this many pages
        self.pulls: list[tuple[str, datetime | None]] = []

    def _time(self, record: dict) -> datetime:
        value = record[self.updated]
        if isinstance(value, int | float):
            return datetime.fromtimestamp(value, tz=UTC)
        return datetime.fromisoformat(value.replace("Z", "+00:00"))

    def objects(self) -> tuple[str, ...]:
        return tuple(self.data)

    def pull(self, obj: str, since: datetime | None) -> Iterator[list[dict]]:
        self.pulls.append((obj, since))
        records = sorted(
            (r for r in self.data[obj] if since is None or self._time(r) >= since), key=lambda r: self._time(r)
        )
        for page_no, start in enumerate(range(0, max(len(records), 1), self.page_size)):
            if obj in self.fail and page_no >= self.fail[obj]:
                raise ConnectionError(f"{self.vendor} went away after {page_no} pages of {obj}")
            self.stats.api_calls += 1
            page = copy.deepcopy(records[start : start + self.page_size])
            self.stats.records += len(page)
            yield page

    def upsert(self, obj: str, record: dict) -> None:
        self.data[obj] = [r for r in self.data[obj] if r["id"] != record["id"]] + [record]


def _write(folder: Path, vendor: str, files: dict[str, str]) -> None:
    (folder / vendor).mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / vendor / f"{name}.yaml").write_text(text.lstrip(), encoding="utf-8")


@pytest.fixture
def mappings_dir(tmp_path) -> Path:
    folder = tmp_path / "mappings"
    _write(folder, "hubspot", HUBSPOT)
    _write(folder, "intercom", INTERCOM)
    return folder


def company(cid: str, name: str, domain: str | None, at: datetime, **props) -> dict:
    return {
        "id": cid,
        "updated": _iso(at),
        "archived": False,
        "properties": {"name": name, "domain": domain, "annualrevenue": props.pop("arr", "12000"), **props},
    }


def contact(cid: str, email: str, company_id: str | None, at: datetime, **props) -> dict:
    return {
        "id": cid,
        "updated": _iso(at),
        "archived": False,
        "properties": {"email": email, "fullname": "Pat " + cid, "associatedcompanyid": company_id, **props},
    }


def ticket(tid: str, company_id: str, opened: datetime, at: datetime, closed: datetime | None = None) -> dict:
    return {
        "id": tid,
        "updated": _iso(at),
        "archived": False,
        "company_id": company_id,
        "createdate": _iso(opened),
        "closed_date": _iso(closed) if closed else None,
        "hours_open": (closed - opened).total_seconds() / 3600 if closed else None,
    }


def hubspot_book() -> dict[str, list[dict]]:
    companies = [
        company("101", "Acme", "https://www.acme.com/", T0, tier="Enterprise", renewal="2026-12-01"),
        company("102", "Globex", "globex.io", T0 + timedelta(minutes=1), tier="SMB"),
        company("103", "Initech", "initech.com", T0 + timedelta(minutes=2)),
        company("104", "Broken", "broken.example", T0 + timedelta(minutes=3), arr="lots"),
    ]
    contacts = [
        contact("201", "Ann@Acme.com", "101", T0, champion="true"),
        contact("202", "bob@globex.io", "102", T0 + timedelta(minutes=1)),
        contact("203", "not-an-email", "102", T0 + timedelta(minutes=2)),
        contact("204", "carl@nowhere.example", "999", T0 + timedelta(minutes=3)),
    ]
    tickets = [
        {
            **ticket("301", "101", T0 - timedelta(days=3), T0, closed=T0 - timedelta(days=2)),
            "contact": {"email": "ANN@acme.com"},
        },
        ticket("302", "101", T0 - timedelta(days=1), T0 + timedelta(minutes=1)),
        ticket("303", "102", T0 - timedelta(days=2), T0 + timedelta(minutes=2)),
        {**ticket("304", "102", T0, T0 + timedelta(minutes=3)), "createdate": "not a date"},
        ticket("305", "103", T0 - timedelta(days=5), T0 + timedelta(minutes=4), closed=T0 - timedelta(days=4)),
    ]
    return {"companies": companies, "contacts": contacts, "tickets": tickets}


def count(engine, model, *where) -> int:
    with engine.connect() as conn:
        return conn.scalar(select(func.count()).select_from(model).where(*where))


def accounts(engine) -> dict[str, dict]:
    with engine.connect() as conn:
        return {row["key"]: dict(row) for row in conn.execute(select(Account)).mappings()}


def events(engine) -> list[tuple[str, str]]:
    with engine.connect() as conn:
        return sorted(conn.execute(select(ActivityEvent.external_id, ActivityEvent.kind)).all())


def sync_once(store, sources, mappings_dir, tmp_path, **kwargs):
    return run_sync(store, sources, mappings_dir=mappings_dir, log_dir=tmp_path / "logs", **kwargs)


def test_full_sync_loads_resolves_and_quarantines(store, mappings_dir, tmp_path):
    source = FakeSource("hubspot", hubspot_book())
    seen = []
    log = sync_once(store, [source], mappings_dir, tmp_path, progress=lambda *a: seen.append(a))

    stored = accounts(store)
    assert set(stored) == {"hubspot-101", "hubspot-102", "hubspot-103"}
    acme = stored["hubspot-101"]
    assert (acme["name"], acme["domain"], acme["segment"], acme["arr"]) == ("Acme", "acme.com", "enterprise", 12000.0)
    assert acme["renewal_date"].isoformat() == "2026-12-01" and acme["status"] == "active"
    assert count(store, ExternalId, ExternalId.vendor == "hubspot") == 3
    with store.connect() as conn:
        ann = conn.execute(select(Contact).where(Contact.email == "ann@acme.com")).mappings().one()
    assert ann["is_champion"] is True and ann["account_id"] == acme["id"]
    assert count(store, Contact) == 2
    assert events(store) == [
        ("hubspot:tickets_closed:301", "ticket_closed"),
        ("hubspot:tickets_closed:305", "ticket_closed"),
        ("hubspot:tickets_opened:301", "ticket_opened"),
        ("hubspot:tickets_opened:302", "ticket_opened"),
        ("hubspot:tickets_opened:303", "ticket_opened"),
        ("hubspot:tickets_opened:305", "ticket_opened"),
    ]
    with store.connect() as conn:
        closed = conn.scalar(select(ActivityEvent.value).where(ActivityEvent.external_id.like("%closed:301")))
        opened = conn.scalar(select(func.sum(AccountDay.tickets_opened)).where(AccountDay.account_id == acme["id"]))
    assert closed == 24.0 and opened == 2
    with store.connect() as conn:
        who = conn.scalar(select(ActivityEvent.contact_id).where(ActivityEvent.external_id.like("%opened:301")))
    assert who == ann["id"]

    # Every malformed record is set aside with a reason naming the field; every valid one landed.
    with store.connect() as conn:
        quarantined = {
            (q["object"], q["external_id"]): q["reason"] for q in conn.execute(select(QuarantinedRecord)).mappings()
        }
    assert set(quarantined) == {("companies", "104"), ("contacts", "203"), ("contacts", "204"), ("tickets", "304")}
    assert "arr: expected a number, got 'lots'" in quarantined[("companies", "104")]
    assert "email: expected an email address" in quarantined[("contacts", "203")]
    assert "company 999 (hubspot companies) is not in the store" in quarantined[("contacts", "204")]
    assert "occurred_at: expected a date/time, got 'not a date'" in quarantined[("tickets", "304")]

    assert [o.object for o in log.objects] == ["companies", "contacts", "tickets"]
    assert log.ok and log.quarantined == 4
    tickets = log.object("hubspot", "tickets")
    assert (tickets.records, tickets.events, tickets.pages, tickets.api_calls) == (5, 6, 3, 3)
    assert log.api_calls == {"hubspot": 7}
    written = json.loads(Path(log.path).read_text())
    assert written["objects"][0]["quarantined"] == 1 and written["objects"][0]["reasons"][0]["external_id"] == "104"
    assert ("hubspot", "tickets", 0, True) in seen
    with store.connect() as conn:
        assert read_cursor(conn, "hubspot", "tickets") == T0 + timedelta(minutes=4)


def test_incremental_sync_rereads_the_overlap_without_duplicates(store, mappings_dir, tmp_path):
    source = FakeSource("hubspot", hubspot_book())
    sync_once(store, [source], mappings_dir, tmp_path)
    before_events = events(store)

    later = T0 + timedelta(hours=1)
    source.upsert("companies", company("102", "Globex Corp", "globex.io", later, tier="Mid-Market", arr="50000"))
    source.upsert("tickets", ticket("302", "101", T0 - timedelta(days=1), later, closed=T0))  # now closed
    source.upsert("tickets", ticket("306", "103", T0, later + timedelta(minutes=1)))
    source.pulls.clear()
    log = sync_once(store, [source], mappings_dir, tmp_path)

    # The cursor minus the 5-minute overlap: records changed within the overlap are re-read too.
    since = dict(source.pulls)
    assert since["companies"] == T0 + timedelta(minutes=3) - timedelta(minutes=5)
    assert since["tickets"] == T0 + timedelta(minutes=4) - timedelta(minutes=5)
    assert log.object("hubspot", "companies").records == 4  # 3 re-read in the overlap + the changed one
    globex = accounts(store)["hubspot-102"]
    assert (globex["name"], globex["segment"], globex["arr"]) == ("Globex Corp", "mid_market", 50000.0)
    after = events(store)
    assert len(after) == len(set(after)) == len(before_events) + 2
    assert ("hubspot:tickets_closed:302", "ticket_closed") in after
    assert ("hubspot:tickets_opened:306", "ticket_opened") in after
    assert count(store, Account) == 3 and count(store, ExternalId) == 3
    assert count(store, QuarantinedRecord) == 4  # re-read bad records replace their quarantine rows

    # Nothing changed: a third run re-reads only the overlap and changes nothing.
    sync_once(store, [source], mappings_dir, tmp_path)
    assert events(store) == after and count(store, QuarantinedRecord) == 4


def test_full_sync_ignores_the_cursor(store, mappings_dir, tmp_path):
    source = FakeSource("hubspot", hubspot_book())
    sync_once(store, [source], mappings_dir, tmp_path)
    source.pulls.clear()
    log = sync_once(store, [source], mappings_dir, tmp_path, full=True)
    assert all(since is None for _, since in source.pulls) and log.full
    assert len(events(store)) == 6 and count(store, Account) == 3


def test_deletions_are_honoured(store, mappings_dir, tmp_path):
    source = FakeSource("hubspot", hubspot_book())
    sync_once(store, [source], mappings_dir, tmp_path)
    acme_id = accounts(store)["hubspot-101"]["id"]
    later = T0 + timedelta(hours=2)
    source.upsert("companies", {**company("103", "Initech", "initech.com", later), "archived": True})
    source.upsert("contacts", {**contact("202", "bob@globex.io", "102", later), "archived": True})
    source.upsert("tickets", {**ticket("301", "101", T0, later), "archived": True})
    source.upsert("tickets", ticket("305", "103", T0 - timedelta(days=5), later))  # reopened: no longer closed

    log = sync_once(store, [source], mappings_dir, tmp_path)
    assert accounts(store)["hubspot-103"]["status"] == "deleted"
    assert count(store, ExternalId, ExternalId.external_id == "103") == 0
    assert count(store, Contact, Contact.email == "bob@globex.io") == 0
    remaining = [ext for ext, _ in events(store)]
    assert "hubspot:tickets_opened:301" not in remaining and "hubspot:tickets_closed:301" not in remaining
    assert "hubspot:tickets_closed:305" not in remaining and "hubspot:tickets_opened:305" in remaining
    with store.connect() as conn:  # the rollup of the day the deleted ticket was on is rebuilt
        opened = conn.scalar(select(func.sum(AccountDay.tickets_opened)).where(AccountDay.account_id == acme_id))
        closed = conn.scalar(select(func.sum(AccountDay.tickets_closed)).where(AccountDay.account_id == acme_id))
    assert (opened, closed or 0) == (1, 0)
    assert log.object("hubspot", "companies").deleted == 1 and log.object("hubspot", "tickets").deleted == 2

    # A restored company comes back as the same account.
    source.upsert("companies", company("103", "Initech", "initech.com", later + timedelta(hours=1)))
    sync_once(store, [source], mappings_dir, tmp_path)
    assert accounts(store)["hubspot-103"]["status"] == "active" and count(store, Account) == 3


def test_a_run_killed_midway_resumes_without_gaps_or_duplicates(store, mappings_dir, tmp_path, monkeypatch):
    source = FakeSource("hubspot", hubspot_book())
    sync_once(store, [source], mappings_dir, tmp_path)
    for i in range(12):
        source.upsert("tickets", ticket(f"4{i:02d}", "101", T0 - timedelta(hours=i), T0 + timedelta(minutes=10 + i)))

    # The vendor dies after 3 pages: 301-305 re-read in the overlap, then 400 (pages of 2, oldest change first).
    source.fail["tickets"] = 3
    log = sync_once(store, [source], mappings_dir, tmp_path)
    tickets = log.object("hubspot", "tickets")
    assert "ConnectionError" in tickets.error and tickets.pages == 3 and not log.ok
    assert log.object("hubspot", "contacts").error is None  # the other objects synced
    with store.connect() as conn:
        assert read_cursor(conn, "hubspot", "tickets") == T0 + timedelta(minutes=10)
    first = {ext for ext, _ in events(store)}
    assert "hubspot:tickets_opened:400" in first and "hubspot:tickets_opened:401" not in first

    # Now the store fails inside the third page: that page's data and its checkpoint roll back together.
    source.fail.clear()
    real_load_events, calls = sync.load_events, []

    def flaky_load_events(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("connection lost")
        return real_load_events(*args, **kwargs)

    monkeypatch.setattr(sync, "load_events", flaky_load_events)
    log = sync_once(store, [source], mappings_dir, tmp_path)
    assert "RuntimeError: connection lost" in log.object("hubspot", "tickets").error
    with store.connect() as conn:
        assert read_cursor(conn, "hubspot", "tickets") == T0 + timedelta(minutes=13)  # pages [400 401] [402 403]
    middle = {ext for ext, _ in events(store)}
    assert "hubspot:tickets_opened:403" in middle and "hubspot:tickets_opened:404" not in middle

    monkeypatch.setattr(sync, "load_events", real_load_events)
    assert sync_once(store, [source], mappings_dir, tmp_path).ok
    final = events(store)
    assert len(final) == len(set(final)) == 6 + 12  # every ticket once, none twice
    assert {f"hubspot:tickets_opened:4{i:02d}" for i in range(12)} <= {ext for ext, _ in final}
    assert count(store, ActivityEvent) == 18


def test_a_killed_full_pull_keeps_the_cursor_and_is_redone(store, mappings_dir, tmp_path):
    source = FakeSource("hubspot", hubspot_book())
    source.fail["tickets"] = 1
    sync_once(store, [source], mappings_dir, tmp_path)  # the very first pull of tickets dies after one page
    with store.connect() as conn:
        assert read_cursor(conn, "hubspot", "tickets") is None  # a full pull may be in id order: no checkpoint
        assert read_cursor(conn, "hubspot", "companies") == T0 + timedelta(minutes=3)
    source.fail.clear()
    assert sync_once(store, [source], mappings_dir, tmp_path).ok
    with store.connect() as conn:
        cursor = read_cursor(conn, "hubspot", "tickets")
    source.fail["tickets"] = 2
    assert not sync_once(store, [source], mappings_dir, tmp_path, full=True).ok
    with store.connect() as conn:
        assert read_cursor(conn, "hubspot", "tickets") == cursor
    assert len(events(store)) == len(set(events(store))) == 6


def intercom_companies() -> list[dict]:
    base = T0.timestamp()
    return [
        {"id": "ic-1", "updated_at": int(base), "name": "ACME Inc", "website": "http://WWW.ACME.com",
         "plan": {"name": "pro"}, "custom_attributes": {"active_seats": 42}},
        {"id": "ic-2", "updated_at": int(base) + 60, "name": "Umbrella", "website": "umbrella.example",
         "plan": {"name": "team"}, "custom_attributes": {"active_seats": "7"}},
        {"id": "ic-3", "updated_at": int(base) + 120, "name": None, "website": "nameless.example",
         "plan": None, "custom_attributes": {}},
    ]  # fmt: skip


def test_identity_resolution_across_vendors(store, mappings_dir, tmp_path):
    hubspot = FakeSource("hubspot", hubspot_book())
    intercom = FakeSource("intercom", {"companies": intercom_companies()}, updated="updated_at")
    log = sync_once(store, [hubspot, intercom], mappings_dir, tmp_path)

    stored = accounts(store)
    # ic-1 matched HubSpot's Acme by normalized domain; ic-2 is new; ic-3 has no name and is quarantined.
    assert set(stored) == {"hubspot-101", "hubspot-102", "hubspot-103", "intercom-ic-2"}
    acme = stored["hubspot-101"]
    assert (acme["name"], acme["plan"], acme["seats_active"], acme["arr"]) == ("ACME Inc", "pro", 42, 12000.0)
    with store.connect() as conn:
        links = conn.execute(
            select(ExternalId.vendor, ExternalId.external_id).where(ExternalId.account_id == acme["id"])
        )
        assert sorted(links.all()) == [("hubspot", "101"), ("intercom", "ic-1")]
    assert "name: required but missing" in log.object("intercom", "companies").reasons[0]["reason"]

    # External ids win over domains: Intercom changes the website, the link holds.
    intercom.data["companies"][0].update(website="acme-new.example", updated_at=int(T0.timestamp()) + 3600)
    sync_once(store, [hubspot, intercom], mappings_dir, tmp_path)
    assert accounts(store)["hubspot-101"]["domain"] == "acme-new.example" and count(store, Account) == 4

    # A vendor's empty value does not erase what the other vendor said; HubSpot deleting Acme does not delete
    # an account Intercom still has.
    hubspot.upsert("companies", {**company("101", "Acme", None, T0 + timedelta(hours=3), arr=None), "archived": True})
    sync_once(store, [hubspot, intercom], mappings_dir, tmp_path)
    acme = accounts(store)["hubspot-101"]
    assert acme["status"] == "active" and acme["arr"] == 12000.0


def test_a_mapping_edit_changes_what_lands_without_code(store, mappings_dir, tmp_path):
    source = FakeSource("hubspot", hubspot_book())
    for record in source.data["companies"]:
        record["properties"]["legal_name"] = record["properties"]["name"].upper()
        record["properties"]["mrr"] = "100"
    sync_once(store, [source], mappings_dir, tmp_path)
    assert accounts(store)["hubspot-101"]["name"] == "Acme"

    # An admin renames the source of `name` and adds a transform (MRR x 12 -> ARR), as a stored version.
    with store.begin() as conn:
        original = active_mapping(conn, "hubspot", "companies", mappings_dir)
        edited = original.content.replace("from: properties.name,", "from: properties.legal_name,").replace(
            "arr: {from: properties.annualrevenue, type: number}",
            "arr: {from: properties.mrr, type: number, scale: 12}",
        )
        save_mapping_version(conn, "hubspot", "companies", edited, author="admin@example.com")
    sync_once(store, [source], mappings_dir, tmp_path, full=True)
    acme = accounts(store)["hubspot-101"]
    assert (acme["name"], acme["arr"]) == ("ACME", 1200.0)
    assert count(store, QuarantinedRecord, QuarantinedRecord.object == "companies") == 0  # 'lots' is unused now

    with store.begin() as conn:
        rollback_mapping(conn, "hubspot", "companies", 0, author="admin@example.com", mappings_dir=mappings_dir)
    sync_once(store, [source], mappings_dir, tmp_path, full=True)
    assert accounts(store)["hubspot-101"]["name"] == "Acme"
    assert count(store, MappingVersion) == 2


def test_an_invalid_stored_mapping_is_reported_and_the_rest_syncs(store, mappings_dir, tmp_path):
    with store.begin() as conn:  # bypass validation, as a schema change could invalidate an old version
        conn.execute(
            MappingVersion.__table__.insert().values(
                vendor="hubspot", object="contacts", content="vendor: hubspot\nobject: contacts\n", author="x",
                created_at=datetime(2026, 1, 1),
            )
        )  # fmt: skip
    log = sync_once(store, [FakeSource("hubspot", hubspot_book())], mappings_dir, tmp_path)
    assert not log.ok and any("contacts" in e and "direction" in e for e in log.errors)
    assert count(store, Account) == 3 and count(store, Contact) == 0 and len(events(store)) == 6
    assert count(store, SyncCursor) == 2


DEALS = """
vendor: hubspot
object: deals
direction: pull
entity: account
id: id
updated: updated
account: company_id
account_object: companies
when:
  stage: {in: [closedwon]}
fields:
  renewal_date: {from: close_date, type: date}
  arr: {from: amount, type: number}
"""


def test_an_account_mapping_with_account_enriches_the_company(store, mappings_dir, tmp_path):
    _write(mappings_dir, "hubspot", {"deals": DEALS})
    book = hubspot_book()
    book["deals"] = [
        {"id": "d1", "updated": _iso(T0), "company_id": "102", "stage": "closedwon", "close_date": "2027-01-31",
         "amount": "99000"},
        {"id": "d2", "updated": _iso(T0), "company_id": "103", "stage": "open", "close_date": "2027-02-01",
         "amount": "5"},
        {"id": "d3", "updated": _iso(T0), "company_id": "555", "stage": "closedwon", "amount": "1"},
        {"id": "d4", "updated": _iso(T0), "company_id": "101", "stage": "closedwon", "close_date": None,
         "amount": None},
    ]  # fmt: skip
    log = sync_once(store, [FakeSource("hubspot", book)], mappings_dir, tmp_path)
    stored = accounts(store)
    assert stored["hubspot-102"]["renewal_date"].isoformat() == "2027-01-31" and stored["hubspot-102"]["arr"] == 99000
    assert stored["hubspot-103"]["arr"] == 12000.0  # an open deal does not match `when`
    assert stored["hubspot-101"]["renewal_date"].isoformat() == "2026-12-01"  # empty values never erase
    deals = log.object("hubspot", "deals")
    assert (deals.accounts, deals.skipped, deals.quarantined) == (1, 1, 1)
    assert "company 555 (hubspot companies) is not in the store" in deals.reasons[0]["reason"]
    assert [o.object for o in log.objects] == ["companies", "deals", "contacts", "tickets"]


def test_a_product_account_key_held_by_the_crm_joins_an_existing_account(store, mappings_dir, tmp_path):
    import pandas as pd

    from app.store.load import load_accounts

    with store.begin() as conn:
        load_accounts(conn, pd.DataFrame([{"key": "A0042", "name": "Acme (product)", "domain": "acme-app.example"}]))
        content = HUBSPOT["companies"].replace("fields:\n", "fields:\n  key: {from: properties.product_id}\n")
        save_mapping_version(conn, "hubspot", "companies", content, author="ann")
    book = hubspot_book()
    book["companies"][0]["properties"]["product_id"] = "A0042"  # Acme, whose domain differs in the CRM
    book["companies"][1]["properties"]["product_id"] = "A0777"  # a new account takes the CRM's key
    book["tickets"][0]["company_id"] = ["101", "102"]  # a list of associated companies: the first is primary
    sync_once(store, [FakeSource("hubspot", book)], mappings_dir, tmp_path)
    stored = accounts(store)
    assert set(stored) == {"A0042", "A0777", "hubspot-103"}
    assert (stored["A0042"]["name"], stored["A0042"]["domain"]) == ("Acme", "acme.com")
    with store.connect() as conn:
        owner = conn.scalar(
            select(ActivityEvent.account_id).where(ActivityEvent.external_id == "hubspot:tickets_opened:301")
        )
    assert owner == stored["A0042"]["id"]


def test_a_sync_keeps_its_first_raw_records_for_the_mapping_preview(store, mappings_dir, tmp_path):
    source = FakeSource("hubspot", hubspot_book(), page_size=3)
    sync_once(store, [source], mappings_dir, tmp_path)
    with store.connect() as conn:
        records, _ = last_sample(conn, "hubspot", "companies")
        assert last_sample(conn, "hubspot", "deals") is None
    assert records == json.loads(json.dumps(hubspot_book()["companies"][:3], default=str))  # as the vendor sent them

    renamed = hubspot_book()
    renamed["companies"][0]["properties"]["name"] = "Acme, renamed"
    sync_once(store, [FakeSource("hubspot", renamed, page_size=3)], mappings_dir, tmp_path, full=True)
    with store.connect() as conn:
        records, _ = last_sample(conn, "hubspot", "companies")
    assert [r["properties"]["name"] for r in records] == ["Acme, renamed", "Globex", "Initech"]  # the last sync's
