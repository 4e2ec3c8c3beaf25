"""The Intercom sandbox, held to the vendor: the official SDK talks to it over loopback, and every response it
receives is validated against Intercom's own OpenAPI description (sandbox/intercom/specs, API 2.11)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import httpx
import pytest
from intercom import Intercom
from intercom.core.api_error import ApiError
from intercom.errors.unauthorized_error import UnauthorizedError

from app.demo.book import Book, generate_book
from app.demo.spec import BookSpec
from sandbox.intercom import DEFAULT_TOKEN, IntercomState, RateLimiter, Workspace, create_app
from sandbox.intercom.openapi import ERRATA, SPEC_2_11, ResponseChecker
from sandbox.intercom.values import CONVERSATION_TOPICS, EVENTS_MAX_PER_PAGE
from sandbox.server import RunningServer, serving

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


@pytest.fixture(scope="module")
def book() -> Book:
    return generate_book(BookSpec(seed=3, active_accounts=12, days=40))


@pytest.fixture
def state(book: Book) -> IntercomState:
    return IntercomState(workspace=Workspace.from_book(book, event_list_days=None))


@pytest.fixture
def server(state: IntercomState) -> Iterator[RunningServer]:
    with serving(create_app(state)) as running:
        yield running


@pytest.fixture
def checker() -> ResponseChecker:
    if not SPEC_2_11.exists():
        message = f"Intercom's OpenAPI description is missing at {SPEC_2_11}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return ResponseChecker()


def sdk(server: RunningServer, checker: ResponseChecker | None = None, token: str = DEFAULT_TOKEN) -> Intercom:
    """The official SDK pinned to 2.11; with a checker, every response is validated as it arrives."""
    hooks = {"response": [checker.check]} if checker else {}
    return Intercom(
        token=token,
        base_url=server.base_url,
        headers={"Intercom-Version": "2.11"},
        httpx_client=httpx.Client(event_hooks=hooks),
    )


def raw(server: RunningServer, checker: ResponseChecker | None = None, **headers: str) -> httpx.Client:
    """Plain HTTP for what the SDK does not send (no auth, a bad version, GET /contacts paging)."""
    hooks = {"response": [checker.check]} if checker else {}
    return httpx.Client(base_url=server.base_url, headers=headers, event_hooks=hooks)


AUTH = {"Authorization": f"Bearer {DEFAULT_TOKEN}", "Intercom-Version": "2.11"}


def test_seeded_from_the_book(book: Book, state: IntercomState) -> None:
    ws = state.workspace
    assert sorted(c["company_id"] for c in ws.companies.values()) == sorted(book.accounts["key"])
    assert sorted(c["email"] for c in ws.contacts.values()) == sorted(book.contacts["email"])
    intercom = book.events[book.events["source"] == "intercom"]
    talk = intercom["kind"].isin(list(CONVERSATION_TOPICS))
    assert len(ws.conversations) == int(talk.sum())
    assert len(ws.events) == int((~talk).sum())
    assert ws.unplaced_events == 0
    # Every contact is attached to its account's company.
    for row in book.contacts.itertuples():
        contact = ws.contacts[ws._contact_by_email[row.email.lower()]]
        assert [ws.companies[c]["company_id"] for c in contact["_companies"]] == [row.account_key]


def test_every_endpoint_we_use_answers_what_the_spec_describes(
    server: RunningServer, state: IntercomState, checker: ResponseChecker
) -> None:
    client = sdk(server, checker)
    now = int(time.time())

    # Companies: scroll to the end, list, find by company_id, create/update, fetch.
    pager = client.companies.scroll()
    scrolled = list(pager)
    assert len(scrolled) == len(state.workspace.companies) and scrolled[0].company_id
    listed = client.companies.list(page=1, per_page=5, order="asc")
    assert listed.response.total_count > 0 and len(listed.items) == 5
    key = scrolled[0].company_id
    found = client.companies.retrieve(company_id=key)
    assert found is not None
    created = client.companies.create_or_update(request={"company_id": "NEW-1", "name": "New Co", "plan": "team"})
    assert created.company_id == "NEW-1" and created.plan.name == "team"
    attribute = client.data_attributes.create(
        request={"name": "health_score", "model": "company", "data_type": "float"}
    )
    assert attribute.full_name == "custom_attributes.health_score"
    updated = client.companies.update(created.id, request={"custom_attributes": {"health_score": 71.5}})
    assert updated.custom_attributes == {"health_score": 71.5}
    assert client.companies.find(created.id).name == "New Co"

    # Contacts: search (paged), fetch, create, update, attach to a company.
    hits = client.contacts.search(
        query={"field": "updated_at", "operator": ">", "value": 0}, pagination={"per_page": 20}
    )
    first = next(iter(hits))
    assert first.email and first.companies.data
    assert client.contacts.find(first.id).id == first.id
    person = client.contacts.create(request={"email": "new.person@newco.example", "name": "New Person"})
    client.contacts.update(person.id, custom_attributes={"champion": True})
    client.companies.attach_contact(person.id, company_id=created.id)
    with raw(server, checker, **AUTH) as http:
        assert http.get("/contacts", params={"per_page": 5}).status_code == 200

    # Conversations: search, and one started by a contact.
    talk = client.conversations.search(query={"field": "updated_at", "operator": ">", "value": 0})
    assert talk.response.total_count == len(state.workspace.conversations)
    with raw(server, checker, **AUTH) as http:
        started = http.post("/conversations", json={"from": {"type": "user", "id": person.id}, "body": "help"})
        assert started.status_code == 200

    # Data attributes, events, messages, admins.
    for model in ("company", "contact", "conversation"):
        assert client.data_attributes.list(model=model).data
    client.events.create(request={"event_name": "login", "created_at": now, "id": person.id, "metadata": {"count": 2}})
    listing = client.events.list(type="user", intercom_user_id=first.id, per_page=5)
    assert listing.type == "event.list"
    summary = client.events.list(type="user", intercom_user_id=first.id, summary=True)
    assert summary.type == "event.summary" and all(item.count for item in summary.events)
    admin = client.admins.identify()
    assert client.admins.list().admins[0].id == admin.id
    message = client.messages.create(
        request={
            "message_type": "inapp",
            "body": "Your health score dipped; can we help?",
            "from": {"type": "admin", "id": int(admin.id)},
            "to": {"type": "user", "id": first.id},
        }
    )
    assert message.message_type == "inapp" and state.workspace.messages[-1]["to"] == first.id

    # Errors answer Intercom's error list, with the statuses the spec declares or the error schema.
    with pytest.raises(UnauthorizedError):
        sdk(server, checker, token="wrong").companies.scroll()
    with pytest.raises(ApiError) as missing:
        client.companies.find("6a00000000000000deadbeef")
    assert missing.value.status_code == 404
    with pytest.raises(ApiError) as bad:
        client.contacts.search(query={"field": "updated_at", "operator": ">=", "value": now})
    assert bad.value.status_code == 400
    state.faults.rate_limited, state.faults.server_errors = 1, 1
    for status in (429, 503):
        with pytest.raises(ApiError) as failed:
            client.admins.list()
        assert failed.value.status_code == status

    used = {(method, template) for method, template, _ in checker.checked}
    assert {
        ("GET", "/companies/scroll"), ("POST", "/companies/list"), ("GET", "/companies"), ("POST", "/companies"),
        ("PUT", "/companies/{company_id}"), ("GET", "/companies/{company_id}"), ("POST", "/contacts/search"),
        ("GET", "/contacts"), ("GET", "/contacts/{contact_id}"), ("POST", "/contacts"),
        ("PUT", "/contacts/{contact_id}"), ("POST", "/contacts/{contact_id}/companies"),
        ("POST", "/conversations/search"), ("POST", "/conversations"), ("GET", "/data_attributes"),
        ("POST", "/data_attributes"), ("POST", "/events"), ("GET", "/events"), ("POST", "/messages"),
        ("GET", "/me"), ("GET", "/admins"),
    } <= used  # fmt: skip
    assert len(ERRATA) == 6  # the corrections to 2.11 are few and listed; see sandbox/intercom/openapi.py


def test_auth_version_and_rate_limit_headers(server: RunningServer, state: IntercomState) -> None:
    state.limiter = RateLimiter(limit=3)  # the app reads the limiter through its state on every request
    with raw(server) as http:
        unauthorized = http.get("/admins")
        assert unauthorized.status_code == 401
        assert unauthorized.json()["errors"] == [{"code": "unauthorized", "message": "Access Token Invalid"}]
        wrong_version = http.get("/admins", headers={**AUTH, "Intercom-Version": "9.9"})
        assert wrong_version.status_code == 400
        assert wrong_version.json()["errors"][0]["code"] == "intercom_version_invalid"
    assert not state.workspace.versions_seen  # refused requests never reached a version

    client = sdk(server)
    remaining = []
    for _ in range(3):
        response = client.admins.with_raw_response.list()
        remaining.append(int(response.headers["x-ratelimit-remaining"]))
        assert response.headers["x-ratelimit-limit"] == "3"
        assert int(response.headers["x-ratelimit-reset"]) > time.time() - 1
    assert remaining == [2, 1, 0]
    with pytest.raises(ApiError) as limited:
        client.admins.list()
    assert limited.value.status_code == 429
    assert limited.value.headers["x-ratelimit-remaining"] == "0"
    assert limited.value.body["errors"][0]["code"] == "rate_limit_exceeded"
    assert state.workspace.versions_seen["2.11"] == 4


def test_search_cursor_returns_every_record_once(server: RunningServer, state: IntercomState) -> None:
    client = sdk(server)
    ids: list[str] = []
    cursor = None
    pages = 0
    while True:
        pagination = {"per_page": 7, **({"starting_after": cursor} if cursor else {})}
        page = client.contacts.search(query={"field": "role", "operator": "=", "value": "user"}, pagination=pagination)
        ids += [c.id for c in page.items]
        pages += 1
        cursor = page.response.pages.next.starting_after if page.response.pages.next else None
        if not cursor:
            break
    assert sorted(ids) == sorted(state.workspace.contacts) and len(ids) == len(set(ids))
    assert pages == -(-len(ids) // 7)
    # A cursor whose snapshot the server no longer holds still continues where it left off.
    first = client.contacts.search(
        query={"field": "role", "operator": "=", "value": "user"}, pagination={"per_page": 7}
    )
    state.workspace._snapshots.clear()
    cursor = first.response.pages.next.starting_after
    rest = client.contacts.search(
        query={"field": "role", "operator": "=", "value": "user"},
        pagination={"per_page": 150, "starting_after": cursor},
    )
    assert [c.id for c in first.items] + [c.id for c in rest.items] == ids
    # python-intercom 5.0.1's search pager re-sends the first request instead of passing `starting_after`, so
    # iterating it never ends; the connector follows the cursor itself, as above.
    pager = client.contacts.search(
        query={"field": "role", "operator": "=", "value": "user"}, pagination={"per_page": 9}
    )
    second = pager.next_page()
    assert second is not None and [c.id for c in second.items] == [c.id for c in pager.items]
    with pytest.raises(ApiError) as too_big:
        client.contacts.search(query={"field": "role", "operator": "=", "value": "user"}, pagination={"per_page": 151})
    assert too_big.value.status_code == 400


def test_company_scroll_pages_and_rules(server: RunningServer, state: IntercomState) -> None:
    ws = state.workspace
    for i in range(230 - len(ws.companies)):
        ws.add_company({"company_id": f"EXTRA-{i}", "name": f"Extra {i}"})
    client = sdk(server)
    first = client.companies.scroll()
    assert len(first.items) == 100
    with pytest.raises(ApiError) as exists:  # one open scroll per app
        client.companies.scroll()
    assert exists.value.status_code == 400 and exists.value.body["errors"][0]["code"] == "scroll_exists"
    ids = [c.id for page in first.iter_pages() for c in page.items]
    assert len(ids) == 230 == len(set(ids))
    second = client.companies.scroll()  # the empty last page closed the scroll, so a new one may start
    with pytest.raises(ApiError) as gone:  # ...and the old parameter has expired
        client.companies.scroll(scroll_param=first.response.scroll_param)
    assert gone.value.status_code == 404
    ws.scroll_ttl_seconds = 0.0
    time.sleep(0.01)
    assert len(client.companies.scroll().items) == 100  # an unused scroll expires
    assert second.response.scroll_param


def test_search_date_semantics(server: RunningServer, state: IntercomState) -> None:
    """Contacts search matches dates by calendar day and refuses >=; conversations compare exactly, inclusive."""
    ws = state.workspace
    client = sdk(server)
    noon = 1_790_000_000 - 1_790_000_000 % 86_400 + 12 * 3600
    contact = next(iter(ws.contacts.values()))
    contact["updated_at"] = noon

    def contact_hits(operator: str, value: int) -> set[str]:
        query = {"field": "updated_at", "operator": operator, "value": value}
        return {c.id for c in client.contacts.search(query=query, pagination={"per_page": 150})}

    assert contact["id"] in contact_hits("=", noon - 11 * 3600)  # the same day
    assert contact["id"] not in contact_hits(">", noon - 3600)  # > starts at the next day
    assert contact["id"] in contact_hits(">", noon - 86_400)
    assert contact["id"] not in contact_hits("<", noon + 3600)  # < ends before that day
    for operator in (">=", "<=", "!="):
        with pytest.raises(ApiError):
            contact_hits(operator, noon)

    conversation = ws.add_conversation(contact["id"], "<p>How do I export?</p>", created_at=noon)

    def conversation_hits(operator: str, value: int) -> set[str]:
        query = {"field": "updated_at", "operator": operator, "value": value}
        return {c.id for c in client.conversations.search(query=query, pagination={"per_page": 150})}

    assert conversation["id"] in conversation_hits(">", noon)  # inclusive
    assert conversation["id"] not in conversation_hits(">", noon + 1)
    assert conversation["id"] in conversation_hits("<", noon)
    with pytest.raises(ApiError):
        conversation_hits(">=", noon)


def test_custom_attributes_must_exist_and_match_their_type(server: RunningServer, state: IntercomState) -> None:
    client = sdk(server)
    company = next(iter(state.workspace.companies.values()))
    with pytest.raises(ApiError) as unknown:
        client.companies.update(company["id"], request={"custom_attributes": {"cse_health": 80}})
    assert unknown.value.body["errors"][0]["code"] == "parameter_not_found"
    client.data_attributes.create(request={"name": "cse_health", "model": "company", "data_type": "integer"})
    with pytest.raises(ApiError) as duplicate:
        client.data_attributes.create(request={"name": "cse_health", "model": "company", "data_type": "integer"})
    assert duplicate.value.status_code == 400
    with pytest.raises(ApiError) as wrong_type:
        client.companies.update(company["id"], request={"custom_attributes": {"cse_health": "high"}})
    assert wrong_type.value.body["errors"][0]["code"] == "parameter_invalid"
    before = company["updated_at"] = int(time.time()) - 60
    result = client.companies.update(company["id"], request={"custom_attributes": {"cse_health": 80}})
    assert result.custom_attributes["cse_health"] == 80 and result.updated_at > before


def test_events_paging_dedupe_and_ninety_day_window(server: RunningServer, state: IntercomState) -> None:
    ws = state.workspace
    client = sdk(server)
    contact = max(ws.contacts, key=lambda c: len(ws.events.for_contact(ws._contact_index[c])))
    stored = ws.events.for_contact(ws._contact_index[contact])
    assert len(stored) > 5

    seen, params = [], None
    while True:
        options = {"additional_query_parameters": params} if params else None
        page = client.events.list(type="user", intercom_user_id=contact, per_page=5, request_options=options)
        seen += page.events
        next_link = (page.pages or {}).get("next")
        if not next_link:
            break
        params = dict(httpx.URL(next_link).params)
        params.pop("type"), params.pop("intercom_user_id"), params.pop("per_page")
    assert len(seen) == len(stored)
    assert [e.created_at for e in seen] == sorted((e.created_at for e in stored), reverse=True)  # newest first

    now = int(time.time())
    client.events.create(request={"event_name": "login", "created_at": now, "id": contact})
    client.events.create(request={"event_name": "login", "created_at": now, "id": contact})  # a duplicate
    newest = client.events.list(type="user", intercom_user_id=contact, per_page=5)
    since = dict(httpx.URL(newest.pages["since"]).params)["since"]
    assert sum(1 for e in ws.events.for_contact(ws._contact_index[contact]) if e.created_at == now) == 1
    again = client.events.list(
        type="user", intercom_user_id=contact, request_options={"additional_query_parameters": {"since": since}}
    )
    assert again.events == []  # nothing newer than the newest one listed

    ws.event_list_days = 90
    ws.clock = lambda: stored[-1].created_at + 91 * 86_400
    visible = client.events.list(type="user", intercom_user_id=contact, per_page=EVENTS_MAX_PER_PAGE).events
    assert [e.created_at for e in visible] == [now]  # only what is younger than 90 days can be listed
    summary = client.events.list(type="user", intercom_user_id=contact, summary=True)
    assert sum(item.count for item in summary.events) == len(stored) + 1  # summaries still count old events


def test_messages_and_per_record_failures(server: RunningServer, state: IntercomState) -> None:
    client = sdk(server)
    admin = client.admins.identify()
    contact_id = next(iter(state.workspace.contacts))
    request = {
        "message_type": "inapp",
        "body": "Hello",
        "from": {"type": "admin", "id": int(admin.id)},
        "to": {"type": "user", "id": contact_id},
    }
    client.messages.create(request=request)
    with pytest.raises(ApiError) as unknown:
        client.messages.create(request={**request, "to": {"type": "user", "id": "5c00000000000000000fffff"}})
    assert unknown.value.status_code == 404
    state.faults.partial_failure_ids.add(contact_id)
    with pytest.raises(ApiError) as failed:
        client.messages.create(request=request)
    assert failed.value.status_code == 422
    assert len(state.workspace.messages) == 1
