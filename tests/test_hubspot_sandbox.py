"""The HubSpot sandbox against the official SDK over loopback: every response shape we rely on parses, and the
documented limits (page sizes, the 10,000 search cap, 100-input batches, rate limits) behave as HubSpot's do."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from hubspot import HubSpot
from hubspot.crm.associations.v4.models import (
    BatchInputPublicFetchAssociationsBatchRequest,
    PublicFetchAssociationsBatchRequest,
)
from hubspot.crm.companies import ApiException as CompaniesApiException
from hubspot.crm.companies.models import (
    BatchInputSimplePublicObjectBatchInput,
    BatchInputSimplePublicObjectBatchInputForCreate,
    BatchInputSimplePublicObjectBatchInputUpsert,
    BatchReadInputSimplePublicObjectId,
    BatchResponseSimplePublicObject,
    BatchResponseSimplePublicObjectWithErrors,
    Filter,
    FilterGroup,
    PublicObjectSearchRequest,
    SimplePublicObjectBatchInput,
    SimplePublicObjectBatchInputForCreate,
    SimplePublicObjectBatchInputUpsert,
    SimplePublicObjectId,
    SimplePublicObjectInput,
    SimplePublicObjectInputForCreate,
)
from hubspot.crm.properties.models import PropertyCreate, PropertyGroupCreate

from app.demo.book import generate_book
from app.demo.spec import BookSpec
from connectors.hubspot.client import NO_TRANSPORT_RETRIES
from sandbox.faults import Faults
from sandbox.hubspot import HubSpotState, SandboxConfig, create_app, seed_from_book
from sandbox.hubspot.values import iso_ms, to_ms
from sandbox.server import RunningServer
from tests.factories import accounts_frame, contacts_frame

TOKEN = "sandbox-token"
FAST = SandboxConfig(rate_limit_max=None, search_requests_per_second=None)


@dataclass
class Portal:
    state: HubSpotState
    server: RunningServer
    sdk: HubSpot


def sdk_for(base_url: str, token: str | None = TOKEN) -> HubSpot:
    """The SDK as our connector builds it: urllib3's hidden retries off, so every response reaches the test."""
    return HubSpot(access_token=token, host=base_url, retry=NO_TRANSPORT_RETRIES)


@pytest.fixture
def make_portal(loopback):
    def make(config: SandboxConfig = FAST, faults: Faults | None = None) -> Portal:
        running, dispatcher = loopback
        state = HubSpotState(config, faults)
        dispatcher.app = create_app(state)
        return Portal(state, running, sdk_for(running.base_url))

    return make


@pytest.fixture
def portal(make_portal) -> Portal:
    return make_portal()


def _body(exc: Exception) -> dict:
    return json.loads(exc.body)  # type: ignore[attr-defined]


def _make_companies(state: HubSpotState, n: int, start: datetime | None = None) -> list[str]:
    start = start or datetime(2026, 1, 1, tzinfo=UTC)
    ids = []
    for i in range(n):
        record = state.create(
            "companies",
            {"name": f"Company {i}", "domain": f"c{i}.example"},
            system=True,
            modified_at=start + timedelta(seconds=i),
        )
        ids.append(record.id)
    return ids


# ------------------------------------------------------------------------------------------------ auth & errors


def test_requests_without_a_valid_token_get_hubspots_401_body(portal: Portal) -> None:
    bad = sdk_for(portal.server.base_url, "not-the-token")
    with pytest.raises(CompaniesApiException) as caught:
        bad.crm.companies.basic_api.get_page(limit=1)
    assert caught.value.status == 401
    body = _body(caught.value)
    assert body["status"] == "error" and body["category"] == "INVALID_AUTHENTICATION" and body["correlationId"]

    anonymous = sdk_for(portal.server.base_url, None)
    with pytest.raises(CompaniesApiException) as caught:
        anonymous.crm.companies.basic_api.get_page(limit=1)
    assert caught.value.status == 401
    assert "Authentication credentials not found" in _body(caught.value)["message"]


def test_unknown_record_is_a_404_with_an_error_body(portal: Portal) -> None:
    with pytest.raises(CompaniesApiException) as caught:
        portal.sdk.crm.companies.basic_api.get_by_id("123")
    assert caught.value.status == 404
    assert _body(caught.value)["category"] == "OBJECT_NOT_FOUND"


# ----------------------------------------------------------------------------------------------------- objects


def test_create_read_update_archive_round_trip_through_the_sdk(portal: Portal) -> None:
    api = portal.sdk.crm.companies.basic_api
    created = api.create(SimplePublicObjectInputForCreate(properties={"name": "Acme", "domain": "acme.example"}))
    assert created.id and created.properties["name"] == "Acme"
    assert created.properties["hs_object_id"] == created.id
    first_modified = created.properties["hs_lastmodifieddate"]

    fetched = api.get_by_id(created.id, properties=["name", "domain", "annualrevenue", "no_such_property"])
    assert fetched.properties["domain"] == "acme.example"
    assert fetched.properties["annualrevenue"] is None  # requested, defined, unset: null
    assert "no_such_property" not in fetched.properties  # requested, undefined: ignored

    updated = api.update(created.id, SimplePublicObjectInput(properties={"annualrevenue": 125000}))
    assert updated.properties["annualrevenue"] == "125000"
    assert updated.properties["hs_lastmodifieddate"] >= first_modified
    assert updated.updated_at >= created.updated_at

    api.archive(created.id)
    with pytest.raises(CompaniesApiException) as caught:
        api.get_by_id(created.id)
    assert caught.value.status == 404
    archived = api.get_by_id(created.id, archived=True)
    assert archived.archived is True and archived.archived_at is not None
    listed = api.get_page(archived=True, limit=10)
    assert [r.id for r in listed.results] == [created.id]
    assert api.get_page(limit=10).results == []


def test_default_properties_when_none_are_requested(portal: Portal) -> None:
    portal.sdk.crm.contacts.basic_api.create(
        SimplePublicObjectInputForCreate(properties={"email": "Pat@Example.com", "firstname": "Pat", "jobtitle": "CTO"})
    )
    page = portal.sdk.crm.contacts.basic_api.get_page(limit=10)
    props = page.results[0].properties
    assert set(props) == {"createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname"}
    full = portal.sdk.crm.contacts.basic_api.get_page(limit=10, properties=["hs_full_name_or_email", "jobtitle"])
    assert full.results[0].properties["hs_full_name_or_email"] == "Pat"
    assert full.results[0].properties["jobtitle"] == "CTO"


def test_list_pages_return_every_record_exactly_once(portal: Portal) -> None:
    ids = set(_make_companies(portal.state, 250))
    api = portal.sdk.crm.companies.basic_api
    seen: list[str] = []
    after = None
    pages = 0
    while True:
        page = api.get_page(limit=100, after=after, properties=["name"])
        pages += 1
        seen += [r.id for r in page.results]
        if page.paging is None:
            break
        after = page.paging.next.after
    assert pages == 3
    assert sorted(seen) == sorted(ids) and len(seen) == len(set(seen))


def test_list_limit_above_100_is_refused(portal: Portal) -> None:
    with pytest.raises(CompaniesApiException) as caught:
        portal.sdk.crm.companies.basic_api.get_page(limit=101)
    assert caught.value.status == 400
    assert _body(caught.value)["category"] == "VALIDATION_ERROR"


def test_writes_are_validated_like_hubspot(portal: Portal) -> None:
    api = portal.sdk.crm.companies.basic_api
    cases = [
        ({"no_such_property": "x"}, "PROPERTY_DOESNT_EXIST"),
        ({"annualrevenue": "lots"}, "INVALID_NUMBER"),
        ({"lifecyclestage": "best_friend"}, "INVALID_OPTION"),
        ({"hs_lastmodifieddate": "2026-01-01T00:00:00Z"}, "READ_ONLY_VALUE"),
        ({"hubspot_owner_id": "999"}, "INVALID_OWNER_ID"),
    ]
    for properties, code in cases:
        with pytest.raises(CompaniesApiException) as caught:
            api.create(SimplePublicObjectInputForCreate(properties=properties))
        assert caught.value.status == 400, properties
        body = _body(caught.value)
        assert body["category"] == "VALIDATION_ERROR"
        assert code in body["message"], body["message"]


def test_contact_emails_are_unique(portal: Portal) -> None:
    api = portal.sdk.crm.contacts.basic_api
    first = api.create(SimplePublicObjectInputForCreate(properties={"email": "a@example.com"}))
    with pytest.raises(Exception) as caught:
        api.create(SimplePublicObjectInputForCreate(properties={"email": "A@example.com"}))
    assert caught.value.status == 409  # type: ignore[attr-defined]
    body = _body(caught.value)
    assert body["category"] == "CONFLICT" and f"Existing ID: {first.id}" in body["message"]
    api.archive(first.id)  # an archived contact frees its email
    assert api.create(SimplePublicObjectInputForCreate(properties={"email": "a@example.com"})).id != first.id


def test_last_modified_is_maintained_on_every_write_and_tickets_compute_time_to_close(portal: Portal) -> None:
    clock = [datetime(2026, 3, 1, 9, 0, tzinfo=UTC)]
    portal.state.clock = lambda: clock[0]
    tickets = portal.sdk.crm.tickets.basic_api
    ticket = tickets.create(
        SimplePublicObjectInputForCreate(properties={"subject": "Broken", "hs_pipeline": "0", "hs_pipeline_stage": "1"})
    )
    assert ticket.properties["hs_lastmodifieddate"] == "2026-03-01T09:00:00.000Z"
    clock[0] += timedelta(hours=5)
    closed = tickets.update(ticket.id, SimplePublicObjectInput(properties={"hs_pipeline_stage": "4"}))
    props = tickets.get_by_id(closed.id, properties=["closed_date", "time_to_close", "hs_lastmodifieddate"]).properties
    assert props["closed_date"] == "2026-03-01T14:00:00.000Z"
    assert props["time_to_close"] == str(5 * 3600 * 1000)
    assert props["hs_lastmodifieddate"] == "2026-03-01T14:00:00.000Z"

    contacts = portal.sdk.crm.contacts.basic_api
    contact = contacts.create(SimplePublicObjectInputForCreate(properties={"email": "c@example.com"}))
    clock[0] += timedelta(minutes=1)
    contacts.update(contact.id, SimplePublicObjectInput(properties={"firstname": "Cy"}))
    props = contacts.get_by_id(contact.id, properties=["lastmodifieddate", "hs_lastmodifieddate"]).properties
    assert props["lastmodifieddate"] == props["hs_lastmodifieddate"] == "2026-03-01T14:01:00.000Z"


def test_tasks_need_a_due_timestamp_and_associate_with_company_and_owner(portal: Portal) -> None:
    owner = portal.state.add_owner("csm@vendor.example", "Casey", "Smith")
    company = portal.sdk.crm.companies.basic_api.create(SimplePublicObjectInputForCreate(properties={"name": "Acme"}))
    tasks = portal.sdk.crm.objects.tasks.basic_api
    with pytest.raises(Exception) as caught:
        tasks.create(SimplePublicObjectInputForCreate(properties={"hs_task_subject": "Call"}))
    assert caught.value.status == 400  # type: ignore[attr-defined]
    assert "REQUIRED_PROPERTY" in _body(caught.value)["message"]
    task = tasks.create(
        SimplePublicObjectInputForCreate(
            properties={
                "hs_timestamp": "2026-12-01T09:00:00Z",
                "hs_task_subject": "Health dropped to 41: call the champion",
                "hs_task_priority": "HIGH",
                "hs_task_status": "NOT_STARTED",
                "hubspot_owner_id": owner["id"],
            },
            associations=[
                {
                    "to": {"id": company.id},
                    "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 192}],
                }
            ],
        )
    )
    assert task.properties["hs_timestamp"] == "2026-12-01T09:00:00.000Z"
    linked = portal.sdk.crm.associations.v4.basic_api.get_page("companies", company.id, "tasks")
    assert [r.to_object_id for r in linked.results] == [task.id]
    assert linked.results[0].association_types[0].type_id == 191


# ------------------------------------------------------------------------------------------------------ search


def _search(portal: Portal, **kwargs) -> object:
    return portal.sdk.crm.companies.search_api.do_search(PublicObjectSearchRequest(**kwargs))


def test_search_filters_on_last_modified_sorts_and_pages(portal: Portal) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    _make_companies(portal.state, 30, start)
    since = start + timedelta(seconds=12)
    seen: list[str] = []
    after = None
    while True:
        response = _search(
            portal,
            filter_groups=[
                FilterGroup(
                    filters=[Filter(property_name="hs_lastmodifieddate", operator="GTE", value=str(to_ms(since)))]
                )
            ],
            sorts=[{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}],
            properties=["name"],
            limit=7,
            after=after,
        )
        assert response.total == 18
        seen += [r.properties["hs_lastmodifieddate"] for r in response.results]
        if response.paging is None:
            break
        after = response.paging.next.after
    assert seen == sorted(seen) and len(seen) == 18
    assert seen[0] == iso_ms(since)

    iso = _search(
        portal,
        filter_groups=[
            FilterGroup(filters=[Filter(property_name="hs_lastmodifieddate", operator="GT", value=iso_ms(since))])
        ],
        limit=100,
    )
    assert iso.total == 17  # ISO values work as well as milliseconds

    names = _search(
        portal,
        filter_groups=[
            FilterGroup(filters=[Filter(property_name="name", operator="IN", values=["company 1", "company 2"])]),
            FilterGroup(filters=[Filter(property_name="domain", operator="EQ", value="c29.example")]),
        ],
        sorts=[{"propertyName": "name", "direction": "DESCENDING"}],
        properties=["name"],
        limit=10,
    )
    assert [r.properties["name"] for r in names.results] == ["Company 29", "Company 2", "Company 1"]


def test_search_never_returns_archived_records(portal: Portal) -> None:
    ids = _make_companies(portal.state, 3)
    portal.state.archive("companies", ids[0])
    response = _search(portal, limit=10)
    assert response.total == 2 and ids[0] not in {r.id for r in response.results}


def test_search_limits_are_enforced(portal: Portal) -> None:
    _make_companies(portal.state, 3)
    flt = Filter(property_name="name", operator="HAS_PROPERTY")
    bad_requests = [
        {"limit": 201},
        {"after": "10000", "limit": 10},
        {"filter_groups": [FilterGroup(filters=[flt]) for _ in range(6)]},
        {"filter_groups": [FilterGroup(filters=[flt] * 7)]},
        {"sorts": ["name", "domain"]},
    ]
    for kwargs in bad_requests:
        with pytest.raises(CompaniesApiException) as caught:
            _search(portal, **kwargs)
        assert caught.value.status == 400, kwargs
    assert _search(portal, limit=200).total == 3


def test_search_stops_at_the_total_cap_and_reports_the_real_total(make_portal) -> None:
    running = make_portal(SandboxConfig(rate_limit_max=None, search_requests_per_second=None, search_total_cap=30))
    _make_companies(running.state, 45)
    page = _search(running, limit=20, after="20")
    assert page.total == 45
    assert len(page.results) == 10  # results end at the cap ...
    assert page.paging.next.after == "30"  # ... and the next page is the one HubSpot refuses
    with pytest.raises(CompaniesApiException) as caught:
        _search(running, limit=20, after="30")
    assert caught.value.status == 400
    assert "limited to 30 total results" in _body(caught.value)["message"]


# ------------------------------------------------------------------------------------------------------- batch


def test_batch_endpoints_refuse_more_than_100_inputs(portal: Portal) -> None:
    batch = portal.sdk.crm.companies.batch_api
    ids = [SimplePublicObjectId(id=str(i)) for i in range(101)]
    calls = [
        lambda: batch.read(BatchReadInputSimplePublicObjectId(inputs=ids, properties=[], properties_with_history=[])),
        lambda: batch.create(
            BatchInputSimplePublicObjectBatchInputForCreate(
                inputs=[SimplePublicObjectBatchInputForCreate(properties={"name": "x"})] * 101
            )
        ),
        lambda: batch.update(
            BatchInputSimplePublicObjectBatchInput(
                inputs=[SimplePublicObjectBatchInput(id=str(i), properties={"name": "x"}) for i in range(101)]
            )
        ),
        lambda: batch.upsert(
            BatchInputSimplePublicObjectBatchInputUpsert(
                inputs=[SimplePublicObjectBatchInputUpsert(id=str(i), properties={"name": "x"}) for i in range(101)]
            )
        ),
    ]
    for call in calls:
        with pytest.raises(CompaniesApiException) as caught:
            call()
        assert caught.value.status == 400
        assert "exceeds the maximum of 100" in _body(caught.value)["message"]
    assert portal.state.live("companies") == []


def test_batch_partial_failures_come_back_as_207_with_errors(portal: Portal) -> None:
    ids = _make_companies(portal.state, 3)
    batch = portal.sdk.crm.companies.batch_api
    read = batch.read(
        BatchReadInputSimplePublicObjectId(
            inputs=[SimplePublicObjectId(id=ids[0]), SimplePublicObjectId(id="424242")],
            properties=["name"],
            properties_with_history=[],
        )
    )
    assert isinstance(read, BatchResponseSimplePublicObjectWithErrors)
    assert [r.id for r in read.results] == [ids[0]]
    assert read.num_errors == 1 and read.errors[0].category == "OBJECT_NOT_FOUND"
    assert read.errors[0].context == {"ids": ["424242"]}

    portal.state.faults.partial_failure_ids.add(ids[1])
    update = batch.update(
        BatchInputSimplePublicObjectBatchInput(
            inputs=[
                SimplePublicObjectBatchInput(id=ids[0], properties={"annualrevenue": "10"}),
                SimplePublicObjectBatchInput(id=ids[1], properties={"annualrevenue": "20"}),
                SimplePublicObjectBatchInput(id=ids[2], properties={"annualrevenue": "not a number"}),
            ]
        )
    )
    assert isinstance(update, BatchResponseSimplePublicObjectWithErrors)
    assert [r.id for r in update.results] == [ids[0]]
    assert {e.context["ids"][0] for e in update.errors} == {ids[1], ids[2]}
    assert portal.state.get("companies", ids[0]).properties["annualrevenue"] == "10"
    assert "annualrevenue" not in portal.state.get("companies", ids[1]).properties

    clean = batch.read(
        BatchReadInputSimplePublicObjectId(
            inputs=[SimplePublicObjectId(id=ids[0])], properties=["name"], properties_with_history=[]
        )
    )
    assert isinstance(clean, BatchResponseSimplePublicObject) and clean.status == "COMPLETE"


def test_batch_create_is_all_or_nothing_unless_inputs_carry_trace_ids(portal: Portal) -> None:
    batch = portal.sdk.crm.companies.batch_api
    inputs = [
        SimplePublicObjectBatchInputForCreate(properties={"name": "Good"}),
        SimplePublicObjectBatchInputForCreate(properties={"annualrevenue": "nope"}),
    ]
    with pytest.raises(CompaniesApiException) as caught:
        batch.create(BatchInputSimplePublicObjectBatchInputForCreate(inputs=inputs))
    assert caught.value.status == 400
    assert portal.state.live("companies") == []

    traced = [
        SimplePublicObjectBatchInputForCreate(properties={"name": "Good"}, object_write_trace_id="t1"),
        SimplePublicObjectBatchInputForCreate(properties={"annualrevenue": "nope"}, object_write_trace_id="t2"),
    ]
    response = batch.create(BatchInputSimplePublicObjectBatchInputForCreate(inputs=traced))
    assert isinstance(response, BatchResponseSimplePublicObjectWithErrors)
    assert [r.properties["name"] for r in response.results] == ["Good"]
    assert response.errors[0].context["objectWriteTraceId"] == ["t2"]


def test_batch_upsert_by_a_unique_property(portal: Portal) -> None:
    batch = portal.sdk.crm.contacts.batch_api
    existing = portal.state.create("contacts", {"email": "old@example.com"})
    response = batch.upsert(
        BatchInputSimplePublicObjectBatchInputUpsert(
            inputs=[
                SimplePublicObjectBatchInputUpsert(
                    id="old@example.com", id_property="email", properties={"firstname": "O"}
                ),
                SimplePublicObjectBatchInputUpsert(
                    id="new@example.com", id_property="email", properties={"firstname": "N"}
                ),
                SimplePublicObjectBatchInputUpsert(id="x", id_property="firstname", properties={"lastname": "bad"}),
            ]
        )
    )
    by_email = {r.properties.get("email") or r.id: r for r in response.results}
    assert {r.new for r in response.results} == {True, False}
    assert any(r.id == existing.id and not r.new for r in response.results)
    assert len(portal.state.live("contacts")) == 2 and "new@example.com" in str(by_email)
    assert response.errors[0].category == "VALIDATION_ERROR"  # firstname is not a unique property


# -------------------------------------------------------------------------------------- properties and groups


def test_property_groups_and_custom_properties(portal: Portal) -> None:
    groups = portal.sdk.crm.properties.groups_api
    core = portal.sdk.crm.properties.core_api
    group = groups.create("companies", PropertyGroupCreate(name="customer_success_engine", label="Customer Success"))
    assert group.name == "customer_success_engine" and group.archived is False
    with pytest.raises(Exception) as caught:
        groups.create("companies", PropertyGroupCreate(name="customer_success_engine", label="again"))
    assert caught.value.status == 409  # type: ignore[attr-defined]

    created = core.create(
        "companies",
        PropertyCreate(
            name="cse_health_band",
            label="Health band",
            type="enumeration",
            field_type="select",
            group_name="customer_success_engine",
            options=[{"label": "Healthy", "value": "healthy", "hidden": False, "displayOrder": 0}],
        ),
    )
    assert created.name == "cse_health_band" and created.hubspot_defined is False
    names = {p.name for p in core.get_all("companies").results}
    assert {"cse_health_band", "name", "hs_lastmodifieddate"} <= names
    assert "customer_success_engine" in {g.name for g in groups.get_all("companies").results}
    with pytest.raises(Exception) as caught:
        core.create(
            "companies",
            PropertyCreate(name="cse_x", label="x", type="string", field_type="text", group_name="nope"),
        )
    assert caught.value.status == 400  # type: ignore[attr-defined]

    company = portal.sdk.crm.companies.basic_api.create(
        SimplePublicObjectInputForCreate(properties={"name": "Acme", "cse_health_band": "healthy"})
    )
    assert company.properties["cse_health_band"] == "healthy"
    assert core.get_by_name("companies", "cse_health_band").options[0].value == "healthy"


# -------------------------------------------------------------------------------------------------- associations


def test_associations_v4_and_v3_and_inline(portal: Portal) -> None:
    company = portal.state.create("companies", {"name": "Acme"})
    other = portal.state.create("companies", {"name": "Other"})
    contact = portal.state.create("contacts", {"email": "p@acme.example", "associatedcompanyid": company.id})
    ticket = portal.state.create(
        "tickets",
        {"subject": "Help", "hs_pipeline": "0", "hs_pipeline_stage": "1"},
        [{"to": {"id": company.id}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 26}]}],
    )
    v4 = portal.sdk.crm.associations.v4
    v4.basic_api.create_default("tickets", ticket.id, "companies", other.id)
    read = v4.batch_api.get_page(
        "tickets",
        "companies",
        BatchInputPublicFetchAssociationsBatchRequest(
            inputs=[PublicFetchAssociationsBatchRequest(id=ticket.id), PublicFetchAssociationsBatchRequest(id="1")]
        ),
    )
    targets = {t.to_object_id: {a.label for a in t.association_types} for t in read.results[0].to}
    assert targets == {company.id: {"Primary", None}, other.id: {None}}
    assert read.errors[0].sub_category == "crm.associations.NO_ASSOCIATIONS_FOUND"  # input "1" has none

    v3 = portal.sdk.crm.associations.batch_api.read(
        "contacts", "companies", {"inputs": [{"id": contact.id}, {"id": "1"}]}
    )
    assert [(e.category, e.context) for e in v3.errors] == [("OBJECT_NOT_FOUND", {"ids": ["1"]})]
    assert {(t.id, t.type) for t in v3.results[0].to} == {
        (company.id, "contact_to_company"),
        (company.id, "contact_to_company_unlabeled"),
    }
    page = portal.sdk.crm.tickets.basic_api.get_page(limit=10, associations=["companies"])
    inline = {(a.id, a.type) for a in page.results[0].associations["companies"].results}
    assert (company.id, "ticket_to_company") in inline and (other.id, "ticket_to_company_unlabeled") in inline

    v4.basic_api.archive("tickets", ticket.id, "companies", other.id)
    assert list(portal.state.associated("tickets", ticket.id, "companies")) == [company.id]


# -------------------------------------------------------------------------------------------- rate limits & faults


def test_ten_secondly_budget_answers_429_with_rate_limit_headers(make_portal) -> None:
    running = make_portal(
        SandboxConfig(rate_limit_max=3, rate_limit_interval_ms=60_000, search_requests_per_second=None)
    )
    api = running.sdk.crm.companies.basic_api
    _, status, headers = api.get_page_with_http_info(limit=1)
    assert status == 200
    assert headers["X-HubSpot-RateLimit-Max"] == "3"
    assert headers["X-HubSpot-RateLimit-Remaining"] == "2"
    assert headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "60000"
    api.get_page(limit=1)
    api.get_page(limit=1)
    _search(running, limit=1)  # search is exempt from the ten-secondly budget
    with pytest.raises(CompaniesApiException) as caught:
        api.get_page(limit=1)
    assert caught.value.status == 429
    assert caught.value.headers["X-HubSpot-RateLimit-Remaining"] == "0"
    assert "Retry-After" not in caught.value.headers  # HubSpot signals the window through its own headers
    body = _body(caught.value)
    assert body["errorType"] == "RATE_LIMIT" and body["policyName"] == "TEN_SECONDLY_ROLLING"


def test_search_is_limited_per_second(make_portal) -> None:
    running = make_portal(SandboxConfig(rate_limit_max=None, search_requests_per_second=2))
    _search(running, limit=1)
    _search(running, limit=1)
    with pytest.raises(CompaniesApiException) as caught:
        _search(running, limit=1)
    assert caught.value.status == 429 and _body(caught.value)["policyName"] == "SECONDLY"


def test_injected_faults(portal: Portal) -> None:
    faults = portal.state.faults
    api = portal.sdk.crm.companies.basic_api
    faults.rate_limited, faults.retry_after_seconds = 1, 2
    with pytest.raises(CompaniesApiException) as caught:
        api.get_page(limit=1)
    assert caught.value.status == 429 and caught.value.headers["Retry-After"] == "2"

    faults.server_errors = 1
    with pytest.raises(CompaniesApiException) as caught:
        api.get_page(limit=1)
    assert caught.value.status == 503 and _body(caught.value)["status"] == "error"

    faults.expired_sessions = 1
    with pytest.raises(CompaniesApiException) as caught:
        api.get_page(limit=1)
    assert caught.value.status == 401 and _body(caught.value)["category"] == "EXPIRED_AUTHENTICATION"
    assert api.get_page(limit=1).results == []


# ------------------------------------------------------------------------------------------------------ owners


def test_owners_parse(portal: Portal) -> None:
    for i in range(3):
        portal.state.add_owner(f"csm{i}@vendor.example", "Csm", str(i))
    page = portal.sdk.crm.owners.owners_api.get_page(limit=2)
    assert [o.email for o in page.results] == ["csm0@vendor.example", "csm1@vendor.example"]
    rest = portal.sdk.crm.owners.owners_api.get_page(limit=2, after=page.paging.next.after)
    assert [o.email for o in rest.results] == ["csm2@vendor.example"] and rest.paging is None
    assert portal.sdk.crm.owners.owners_api.get_page(email="csm1@vendor.example").results[0].first_name == "Csm"


# -------------------------------------------------------------------------------------------------------- seeding


def test_seed_from_a_book_puts_only_hubspot_accounts_in_the_portal() -> None:
    accounts = accounts_frame(4)
    accounts["crm"] = ["hubspot", "salesforce", "hubspot", "hubspot"]
    contacts = contacts_frame(accounts)
    state = HubSpotState(FAST)
    seeded = seed_from_book(state, accounts, contacts)
    assert set(seeded.companies) == {"A0000", "A0002", "A0003"}
    assert len(state.live("contacts")) == 3
    company = state.get("companies", seeded.companies["A0002"])
    assert company.properties["product_account_id"] == "A0002"
    assert company.properties["customer_segment"] == "SMB" and company.properties["plan"] == "team"
    assert state.owners[company.properties["hubspot_owner_id"]]["email"] == "csm1@vendor.example"
    contact = state.find_by_property("contacts", "email", "champion@company2.example")
    assert contact.properties["associatedcompanyid"] == company.id
    assert contact.properties["is_champion"] == "true"


def test_seed_from_the_demo_book_parses_through_the_sdk(make_portal) -> None:
    book = generate_book(BookSpec(active_accounts=20, days=45))
    running = make_portal()
    seeded = seed_from_book(running.state, book.accounts, book.contacts, book.events)
    mine = book.accounts[book.accounts["crm"] == "hubspot"]
    assert set(seeded.companies) == set(mine["key"])
    for kind in ("companies", "contacts", "deals", "tickets"):
        api = getattr(running.sdk.crm, kind).basic_api
        page = api.get_page(limit=100, associations=["companies"] if kind in ("deals", "tickets") else None)
        assert len(page.results) == min(100, len(running.state.live(kind)))
    closed = [t for t in running.state.live("tickets") if t.properties.get("hs_pipeline_stage") == "4"]
    assert all(int(t.properties["time_to_close"]) >= 0 for t in closed)
