"""What only HubSpot does, through the real SDK over loopback (no SDK mocks): list pages with archived records
merged, incremental search ordered by change time that survives crowded timestamps, mid-pull edits and HubSpot's
10,000-result search cap, per-second search pacing, Retry-After and the rolling rate budget, and a portal seeded
from a book that gives the book back.

What every vendor promises (exactly-once pulls, incremental changes and deletions, retries, the retry budget,
rejected credentials) is in test_connector_contract.py.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pandas as pd
import pytest

from app.demo.book import generate_book
from app.demo.spec import BookSpec
from app.settings import Settings
from connectors.hubspot import HubSpotClient, HubSpotSource
from connectors.hubspot.source import needs_from_mappings
from connectors.mapping import Condition, FieldSpec, Mapping
from connectors.retry import RetryPolicy
from sandbox.hubspot import HubSpotState, SandboxConfig, create_app, seed_from_book
from sandbox.hubspot.values import iso_ms
from tests.factories import AS_OF, accounts_frame, contacts_frame

TOKEN = "sandbox-token"
FAST = SandboxConfig(rate_limit_max=None, search_requests_per_second=None)
T0 = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class Sleeps:
    """Records the waits the client asks for instead of waiting, so backoff is checked without slowing tests; its
    clock moves only by those waits, so pacing is checked without depending on how fast the machine is."""

    waits: list[float] = field(default_factory=list)
    now: float = 1_000.0

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now

    def append_and_sleep(self, seconds: float) -> None:
        self(seconds)
        time.sleep(seconds)


@dataclass
class Rig:
    state: HubSpotState
    client: HubSpotClient
    source: HubSpotSource
    sleeps: Sleeps
    base_url: str

    def pull(self, obj: str, since: datetime | None = None) -> list[list[dict]]:
        return list(self.source.pull(obj, since))


@pytest.fixture
def rig(loopback):
    def make(config: SandboxConfig = FAST, *, real_sleep: bool = False, **source_kwargs) -> Rig:
        running, dispatcher = loopback
        state = HubSpotState(config)
        dispatcher.app = create_app(state)
        sleeps = Sleeps()
        client = HubSpotClient(
            TOKEN,
            running.base_url,
            search_requests_per_second=source_kwargs.pop("search_requests_per_second", None),
            retry=replace(
                source_kwargs.pop("retry", RetryPolicy()),
                **({} if real_sleep else {"sleep": sleeps, "clock": sleeps.clock}),
            ),
        )
        return Rig(state, client, HubSpotSource.from_mapping_dir(client, **source_kwargs), sleeps, running.base_url)

    return make


def _companies(state: HubSpotState, n: int, start: datetime = T0, step: timedelta = timedelta(seconds=1)) -> list[str]:
    return [
        state.create(
            "companies", {"name": f"Company {i}", "domain": f"c{i}.example"}, system=True, modified_at=start + i * step
        ).id
        for i in range(n)
    ]


def _ids(pages: list[list[dict]]) -> list[str]:
    return [r["id"] for page in pages for r in page]


def _served(state: HubSpotState, status: int | None = None, fragment: str = "") -> int:
    return sum(1 for e in state.request_log if fragment in e.path and (status is None or e.status == status))


# --------------------------------------------------------------------------------------------------- settings


def test_client_from_settings_uses_the_token_and_only_overrides_the_host_when_asked() -> None:
    production = HubSpotClient.from_settings(Settings(hubspot_access_token="pat-na1-123"))
    configuration = production.api("crm.objects.basic_api").api_client.configuration
    assert configuration.host == "https://api.hubapi.com"
    assert configuration.access_token == "pat-na1-123"
    sandbox = HubSpotClient.from_settings(
        SimpleNamespace(hubspot_access_token=TOKEN, hubspot_base_url="http://127.0.0.1:9/")
    )
    assert sandbox.api("crm.objects.basic_api").api_client.configuration.host == "http://127.0.0.1:9"


def test_mappings_decide_what_is_requested_and_the_cursor_property(rig) -> None:
    source = rig().source
    assert source.objects() == ("companies", "contacts", "deals", "tickets")
    assert source.cursor_property("contacts") == "lastmodifieddate"
    assert source.cursor_property("tickets") == "hs_lastmodifieddate"
    assert source.needs["companies"].owner and "hubspot_owner_id" in source.needs["companies"].properties
    assert (
        source.needs["tickets"].company
        and {"createdate", "closed_date", "time_to_close"} <= source.needs["tickets"].properties
    )
    deals = Mapping(
        name="deals", file="<test>", vendor="hubspot", object="deals", direction="pull", entity="event",
        fields={"value": FieldSpec("value", "event", "number", None, source="custom.nested"),
                "kind": FieldSpec("kind", "event", "string", None, value="seat_change", has_value=True)},
        account="x",
        when=(Condition("is_won", "truthy", True, None), Condition("stage", "in", ("closedwon",), None),
              Condition("pipeline", "in", ("default",), None)),
    )  # fmt: skip
    needs = needs_from_mappings([deals])
    assert needs["deals"].properties == {"custom", "x", "is_won", "stage", "pipeline"}


# ------------------------------------------------------------------------------------------------- full pulls


def test_full_pull_returns_every_record_once_and_archived_ones_flagged(rig) -> None:
    r = rig()
    ids = _companies(r.state, 250)
    for record_id in ids[:5]:
        r.state.archive("companies", record_id)
    pages = r.pull("companies")
    seen = _ids(pages)
    assert sorted(seen) == sorted(ids) and len(seen) == len(set(seen))
    assert [len(p) for p in pages] == [100, 100, 45, 5]
    archived = [rec for page in pages for rec in page if rec["archived"]]
    assert sorted(rec["id"] for rec in archived) == sorted(ids[:5])
    assert all(rec["archivedAt"] for rec in archived)
    assert r.client.stats.api_calls == r.state.api_calls()  # every HTTP request counted, owners included
    assert r.client.stats.by_object["companies"] == 250


def test_full_pull_reads_the_primary_company_inline(rig) -> None:
    r = rig()
    company, other = _companies(r.state, 2)
    ticket = r.state.create(
        "tickets",
        {"subject": "x", "hs_pipeline": "0", "hs_pipeline_stage": "1"},
        [{"to": {"id": other}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 339}]}],
    )
    r.state.associate("tickets", ticket.id, "companies", company, 26)
    (page,) = r.pull("tickets")
    assert page[0]["associations"] == {"companies": company}


# ------------------------------------------------------------------------------------------ incremental pulls


def test_incremental_pull_returns_changes_since_in_change_order_with_archivals_merged(rig) -> None:
    r = rig()
    ids = _companies(r.state, 20)
    since = T0 + timedelta(seconds=10)
    pages = r.pull("companies", since)
    stamps = [rec["hs_lastmodifieddate"] for page in pages for rec in page]
    assert _ids(pages) == ids[10:]
    assert stamps == sorted(stamps) and stamps[0] == iso_ms(since)

    clock = [T0 + timedelta(days=1)]
    r.state.clock = lambda: clock[0]
    r.state.update("companies", ids[2], {"name": "Renamed"})
    clock[0] += timedelta(seconds=1)
    r.state.archive("companies", ids[3])
    clock[0] += timedelta(seconds=1)
    r.state.update("companies", ids[4], {"name": "Renamed too"})
    pages = r.pull("companies", T0 + timedelta(hours=1))
    records = [rec for page in pages for rec in page]
    assert [rec["id"] for rec in records] == [ids[2], ids[3], ids[4]]  # the archival sits where it happened
    assert [rec["archived"] for rec in records] == [False, True, False]
    assert records[0]["name"] == "Renamed"


def test_more_changes_than_the_search_cap_are_pulled_without_hitting_it(rig) -> None:
    # The same mechanics as HubSpot's 10,000 cap, scaled down so the suite stays fast: 1,000 changes, cap 250.
    config = SandboxConfig(rate_limit_max=None, search_requests_per_second=None, search_total_cap=250)
    r = rig(config, search_page_size=100)
    ids = _companies(r.state, 1_000)
    pages = r.pull("companies", T0 - timedelta(days=1))
    seen = _ids(pages)
    assert len(seen) == len(set(seen)) == 1_000 and set(seen) == set(ids)
    assert _served(r.state, 400) == 0
    assert _served(r.state, 200, "/search") <= 1_000 // 99 + 2  # one request per page; each re-anchor repeats one


def test_a_timestamp_shared_by_more_records_than_a_page_holds_is_walked_by_id(rig) -> None:
    r = rig()
    same = T0 + timedelta(hours=3)
    for i in range(450):
        r.state.create("contacts", {"email": f"p{i}@example.com"}, system=True, modified_at=same)
    r.state.create("contacts", {"email": "later@example.com"}, system=True, modified_at=same + timedelta(seconds=1))
    pages = r.pull("contacts", T0)
    seen = _ids(pages)
    assert len(seen) == len(set(seen)) == 451
    assert seen[-1] == r.state.find_by_property("contacts", "email", "later@example.com").id


def test_a_record_changed_mid_pull_does_not_push_another_out_of_the_pull(rig) -> None:
    r = rig(search_page_size=50)
    ids = _companies(r.state, 120)
    pages = r.source.pull("companies", T0)
    first = next(pages)
    r.state.update("companies", first[0]["id"], {"name": "Edited while pulling"})  # moves to the end
    seen = [rec["id"] for rec in first] + _ids(list(pages))
    assert set(seen) == set(ids)  # an `after` offset would now skip the record that shifted into its place


def test_owning_companies_of_searched_tickets_come_from_one_association_read_per_1000(rig) -> None:
    r = rig()
    (company,) = _companies(r.state, 1)
    link = [{"to": {"id": company}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 26}]}]
    for i in range(450):
        r.state.create(
            "tickets",
            {"subject": f"t{i}", "hs_pipeline": "0", "hs_pipeline_stage": "1"},
            link,
            system=True,
            modified_at=T0 + timedelta(minutes=i),
        )
    pages = r.pull("tickets", T0)
    assert sum(len(p) for p in pages) == 450
    assert {rec["associations"]["companies"] for page in pages for rec in page} == {company}
    assert _served(r.state, None, "/crm/v4/associations/tickets/companies/batch/read") == 1


def test_search_calls_are_paced_to_hubspots_per_second_limit(rig) -> None:
    r = rig(search_requests_per_second=1)  # slow enough that request time never hides a wait
    _companies(r.state, 450)
    r.pull("companies", T0)
    searches = _served(r.state, None, "/search")
    assert searches == 3
    assert r.sleeps.waits == [1.0, 1.0]  # one slot a second: the second and third searches each wait one out


# ------------------------------------------------------------------------------------------- retries & limits


def test_429_bursts_are_retried_after_retry_after_and_counted(rig) -> None:
    r = rig()
    _companies(r.state, 150)
    r.state.faults.rate_limited = 3
    r.state.faults.retry_after_seconds = 1
    pages = r.pull("companies")
    assert sum(len(p) for p in pages) == 150
    assert r.sleeps.waits[:3] == [1.0, 1.0, 1.0]
    assert r.client.stats.retries == 3
    assert r.client.stats.api_calls == r.state.api_calls() == _served(r.state, 200) + 3


def test_server_errors_are_retried_with_growing_backoff(rig) -> None:
    r = rig()
    _companies(r.state, 10)
    r.state.faults.server_errors = 3
    r.state.faults.server_error_status = 502
    assert sum(len(p) for p in r.pull("companies")) == 10
    first, second, third = r.sleeps.waits[:3]
    assert 0.4 <= first <= 0.6 and 0.8 <= second <= 1.2 and 1.6 <= third <= 2.4
    assert r.client.stats.retries == 3 and _served(r.state, 502) == 3


def test_a_rolling_rate_budget_is_waited_out_for_real(rig) -> None:
    waited = Sleeps()
    r = rig(
        SandboxConfig(rate_limit_max=3, rate_limit_interval_ms=200, search_requests_per_second=None),
        real_sleep=True,
        retry=RetryPolicy(attempts=10, base_delay=0.1, sleep=waited.append_and_sleep),
    )
    _companies(r.state, 350)
    pages = r.pull("companies")
    assert sum(len(p) for p in pages) == 350
    assert r.client.stats.retries == _served(r.state, 429) > 0
    # Each wait is bounded by the window HubSpot names (200 ms here), never the growing backoff's seconds.
    assert waited.waits and max(waited.waits) <= 0.2 * 1.2


# ------------------------------------------------------------------------------------------- seeded round trip


def _small_book() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    accounts = accounts_frame(4)
    accounts["crm"] = ["hubspot", "salesforce", "hubspot", "hubspot"]
    accounts["owner"] = ["csm1@vendor.example", "csm1@vendor.example", "csm2@vendor.example", "csm1@vendor.example"]
    contacts = contacts_frame(accounts)
    day = datetime.combine(AS_OF - timedelta(days=10), datetime.min.time())
    rows = [
        ("A0000", "champion@company0.example", day + timedelta(hours=9), "ticket_opened", None),
        ("A0000", "champion@company0.example", day + timedelta(hours=14), "ticket_closed", 5.0),
        ("A0000", None, day + timedelta(days=2, hours=11), "ticket_opened", None),
        ("A0002", "champion@company2.example", day + timedelta(days=1, hours=8), "ticket_opened", None),
        ("A0002", "champion@company2.example", day + timedelta(days=3, hours=8), "ticket_closed", 48.0),
        ("A0001", "champion@company1.example", day, "ticket_opened", None),  # a Salesforce account: not here
    ]
    events = pd.DataFrame(
        [
            {
                "account_key": a,
                "contact_email": c,
                "occurred_at": t,
                "kind": k,
                "feature": None,
                "count": 1,
                "value": v,
                "source": "hubspot" if a != "A0001" else "salesforce",
                "external_id": f"e{i}",
            }
            for i, (a, c, t, k, v) in enumerate(rows)
        ]
    )
    return accounts, contacts, events


def test_pulling_a_portal_seeded_from_a_book_gives_the_book_back(rig) -> None:
    r = rig()
    accounts, contacts, events = _small_book()
    seed_from_book(r.state, accounts, contacts, events)
    mine = accounts[accounts["crm"] == "hubspot"].set_index("key")

    for since in (None, datetime(2000, 1, 1, tzinfo=UTC)):
        companies = [rec for page in r.pull("companies", since) for rec in page]
        by_key = {rec["product_account_id"]: rec for rec in companies}
        assert set(by_key) == set(mine.index)
        for key, rec in by_key.items():
            assert rec["name"] == mine.loc[key, "name"] and rec["domain"] == mine.loc[key, "domain"]
            assert rec["owner"]["email"] == mine.loc[key, "owner"]
            assert float(rec["annualrevenue"]) == mine.loc[key, "arr"]
            assert rec["customer_since"] == mine.loc[key, "customer_since"].isoformat()
        key_of = {rec["id"]: key for key, rec in by_key.items()}

        pulled_contacts = [rec for page in r.pull("contacts", since) for rec in page]
        expected = contacts[contacts["account_key"].isin(mine.index)]
        assert {(c["email"], key_of[c["associatedcompanyid"]]) for c in pulled_contacts} == set(
            zip(expected["email"], expected["account_key"], strict=True)
        )
        assert all(c["hs_full_name_or_email"] == "Pat Champion" and c["is_champion"] == "true" for c in pulled_contacts)

        tickets = sorted((rec for page in r.pull("tickets", since) for rec in page), key=lambda t: t["createdate"])
        got = [
            (key_of[t["associations"]["companies"]], t["createdate"], t["closed_date"], t["time_to_close"])
            for t in tickets
        ]
        hours = 3_600_000
        assert got == [
            ("A0000", iso_ms(rows_at(events, 0)), iso_ms(rows_at(events, 1)), str(5 * hours)),
            ("A0002", iso_ms(rows_at(events, 3)), iso_ms(rows_at(events, 4)), str(48 * hours)),
            ("A0000", iso_ms(rows_at(events, 2)), None, None),
        ]


def rows_at(events: pd.DataFrame, i: int) -> datetime:
    return events.loc[i, "occurred_at"].to_pydatetime().replace(tzinfo=UTC)


def test_pulling_a_portal_seeded_from_the_demo_book(rig) -> None:
    book = generate_book(BookSpec(active_accounts=30, days=45))
    r = rig()
    seeded = seed_from_book(r.state, book.accounts, book.contacts, book.events)
    keys = set(book.accounts.loc[book.accounts["crm"] == "hubspot", "key"])
    companies = [rec for page in r.pull("companies") for rec in page]
    assert {c["product_account_id"] for c in companies} == keys
    emails = {c["email"] for page in r.pull("contacts") for c in page}
    assert emails == set(book.contacts.loc[book.contacts["account_key"].isin(keys), "email"].str.lower())
    ticket_events = book.events[
        book.events["account_key"].isin(keys)
        & (book.events["source"] == "hubspot")
        & (book.events["kind"] == "ticket_opened")
    ]
    tickets = [t for page in r.pull("tickets") for t in page]
    assert len(tickets) == len(seeded.tickets) >= len(ticket_events)
    assert all(t["associations"]["companies"] in set(seeded.companies.values()) for t in tickets)
    deals = [d for page in r.pull("deals") for d in page]
    assert {d["subscription_change"] for d in deals} <= {"seats", "plan"} and len(deals) == len(seeded.deals)
