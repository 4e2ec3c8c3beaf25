"""IntercomSource: companies, contacts, conversations and usage (data) events of one Intercom workspace.

What Intercom's API allows shapes each pull, and it is the fewest calls the API permits for each object:

* **companies**: no endpoint filters companies by change time, so every pull scrolls the whole set (100 per
  page, the scroll API's batch) and keeps those with `updated_at >= since`. The scroll is read to its empty last
  page, which closes it: Intercom allows one open scroll per app for a minute, and a dangling one would refuse
  the next sync. If a scroll is already open (a killed run), the pull falls back to the paged list endpoint.
* **contacts**: `POST /contacts/search`, 150 per page (the maximum). Contacts search matches timestamps by
  calendar day in the workspace's timezone and refuses `>=` on dates, so the query asks for
  `updated_at > since - 1 day` (whose day starts no later than `since` in any timezone) and the exact cut is
  made here.
* **conversations**: `POST /conversations/search` with `updated_at > since` (inclusive there), 150 per page.
* **events**: Intercom lists data events only per contact (`GET /events?type=user&intercom_user_id=…`, newest
  first, 100 per page here, `since` in milliseconds for the increment, and only the last 90 days). So an
  events pull costs one call per contact (more for a contact with over 100 new events) plus the contact listing,
  which a full contacts pull in the same run already paid for.

There is no server-side sort on any of these, so each pull collects the changed records, orders them by change
time (then id) and hands them over in pages, oldest change first, as VendorSource promises.
Records are the API's own JSON, plus `company: {id}` (the Intercom id of the owning company, for the mapping's
`account`) and, on conversations and events, `contact: {id, email}`; events also get a stable `id` (Intercom
gives them none: it is derived from the contact, name, second and metadata, Intercom's own identity for an event).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlparse

from connectors.errors import VendorError
from connectors.intercom.client import IntercomClient
from connectors.source import PullStats

OBJECTS: tuple[str, ...] = ("companies", "contacts", "conversations", "events")
DAY = 86_400
SCROLL_PAGE = 100  # companies per scroll call (fixed by Intercom)
LIST_PAGE = 60  # companies per list call (Intercom's maximum per_page)
SEARCH_PAGE = 150  # contacts / conversations per search call (Intercom's maximum)
EVENTS_PAGE = 100  # data events per list call
YIELD_PAGE = {"companies": 100, "contacts": 150, "conversations": 150, "events": 500}
EVENT_CURSOR_PARAMS = ("before", "since")  # what the next-page link of GET /events carries for paging


@dataclass(frozen=True)
class ContactRef:
    """What other objects need to know about a contact: its email and its (first) company."""

    id: str
    email: str | None
    external_id: str | None
    company_id: str | None  # Intercom id of the company, as the companies mapping's `id`


def epoch(value: datetime | None) -> int | None:
    """UNIX seconds of a cursor; a naive datetime is taken as UTC (the store keeps UTC)."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp())


def event_id(event: dict[str, Any]) -> str:
    """A stable id for a data event: Intercom identifies one by contact, name and second (plus metadata here)."""
    key = json.dumps(
        [event.get("intercom_user_id"), event.get("event_name"), event.get("created_at"), event.get("metadata")],
        sort_keys=True,
        default=str,
    )
    return "ev_" + hashlib.sha1(key.encode()).hexdigest()[:24]


class IntercomSource:
    """VendorSource for Intercom. `calls_by_object` splits `stats.api_calls` by the object pulled."""

    vendor = "intercom"

    def __init__(self, client: IntercomClient) -> None:
        self.client = client
        self.stats: PullStats = client.stats
        self.calls_by_object: dict[str, int] = {}
        self._contacts: dict[str, ContactRef] = {}
        self._contacts_complete = False  # a full contact listing happened in this run

    @classmethod
    def from_settings(cls, settings: Any, mappings: Any = None, **client_options: Any) -> IntercomSource:
        """Intercom's API returns whole records, so the mappings (what the registry hands every source) do not
        change what is requested."""
        return cls(IntercomClient.from_settings(settings, **client_options))

    def objects(self) -> tuple[str, ...]:
        return OBJECTS

    def pull(self, obj: str, since: datetime | None) -> Iterator[list[dict]]:
        if obj not in OBJECTS:
            raise ValueError(f"Intercom has no object {obj!r}; known: {', '.join(OBJECTS)}")
        before = self.stats.api_calls
        try:
            records = getattr(self, f"_pull_{obj}")(epoch(since))
        finally:
            self.calls_by_object[obj] = self.calls_by_object.get(obj, 0) + self.stats.api_calls - before
        updated = "created_at" if obj == "events" else "updated_at"
        records.sort(key=lambda r: (r.get(updated) or 0, str(r.get("id"))))
        size = YIELD_PAGE[obj]
        for start in range(0, len(records), size):
            page = records[start : start + size]
            self.stats.records += len(page)
            self.stats.by_object[obj] = self.stats.by_object.get(obj, 0) + len(page)
            yield page

    # --- companies ---------------------------------------------------------------------------------------------

    def _pull_companies(self, cutoff: int | None) -> list[dict]:
        try:
            companies = self._scroll_companies()
        except VendorError as error:
            if error.code != "scroll_exists" and (error.status or 0) < 500:
                raise
            companies = self._list_companies()  # a scroll is still open, or it broke mid-way: page the list
        return [c for c in companies if cutoff is None or (c.get("updated_at") or 0) >= cutoff]

    def _scroll_companies(self) -> list[dict]:
        seen: dict[str, dict] = {}
        param: str | None = None
        while True:
            body = self.client.request("GET", "companies/scroll", params={"scroll_param": param})
            data = (body or {}).get("data") or []
            for company in data:
                seen[company["id"]] = company
            param = (body or {}).get("scroll_param")
            if not data or not param:
                return list(seen.values())

    def _list_companies(self) -> list[dict]:
        """Fallback: the list endpoint (10,000 companies at most, and only companies that have users)."""
        seen: dict[str, dict] = {}
        page = 1
        while True:
            params = {"page": page, "per_page": LIST_PAGE, "order": "asc"}
            body = self.client.request("POST", "companies/list", params=params)
            data = (body or {}).get("data") or []
            for company in data:
                seen[company["id"]] = company
            total_pages = ((body or {}).get("pages") or {}).get("total_pages") or 0
            if not data or page >= total_pages:
                return list(seen.values())
            page += 1

    # --- contacts ----------------------------------------------------------------------------------------------

    def _pull_contacts(self, cutoff: int | None) -> list[dict]:
        users = {"field": "role", "operator": "=", "value": "user"}
        if cutoff is None:
            query: dict[str, Any] = users
        else:
            changed = {"field": "updated_at", "operator": ">", "value": cutoff - DAY}
            query = {"operator": "AND", "value": [users, changed]}
        contacts = self._search("contacts", query)
        for contact in contacts:
            self._remember(contact)
        if cutoff is None:
            self._contacts_complete = True
        return [
            {**c, "company": self._company_of(c)}
            for c in contacts
            if cutoff is None or (c.get("updated_at") or 0) >= cutoff
        ]

    def _remember(self, contact: dict) -> ContactRef:
        ref = ContactRef(contact["id"], contact.get("email"), contact.get("external_id"), self._first_company(contact))
        self._contacts[ref.id] = ref
        return ref

    @staticmethod
    def _first_company(contact: dict) -> str | None:
        data = (contact.get("companies") or {}).get("data") or []
        return data[0]["id"] if data else None

    def _company_of(self, contact: dict) -> dict | None:
        company = self._first_company(contact)
        return {"id": company} if company else None

    def _all_contacts(self) -> list[ContactRef]:
        if not self._contacts_complete:
            for contact in self._search("contacts", {"field": "role", "operator": "=", "value": "user"}):
                self._remember(contact)
            self._contacts_complete = True
        return sorted(self._contacts.values(), key=lambda r: r.id)

    def _resolve(self, ids: set[str]) -> None:
        """Look up contacts not seen in this run, 150 per search call."""
        missing = sorted(i for i in ids if i not in self._contacts)
        if not missing or self._contacts_complete:
            return
        for start in range(0, len(missing), SEARCH_PAGE):
            chunk = missing[start : start + SEARCH_PAGE]
            for contact in self._search("contacts", {"field": "id", "operator": "IN", "value": chunk}):
                self._remember(contact)

    def _search(self, what: str, query: dict) -> list[dict]:
        """Every hit of a contacts / conversations search, following the starting_after cursor."""
        key = "data" if what == "contacts" else "conversations"
        hits: dict[str, dict] = {}
        cursor: str | None = None
        while True:
            pagination: dict[str, Any] = {"per_page": SEARCH_PAGE}
            if cursor:
                pagination["starting_after"] = cursor
            body = self.client.request("POST", f"{what}/search", json_body={"query": query, "pagination": pagination})
            for record in (body or {}).get(key) or []:
                hits[record["id"]] = record
            cursor = (((body or {}).get("pages") or {}).get("next") or {}).get("starting_after")
            if not cursor:
                return list(hits.values())

    # --- conversations -----------------------------------------------------------------------------------------

    def _pull_conversations(self, cutoff: int | None) -> list[dict]:
        query = {"field": "updated_at", "operator": ">", "value": cutoff or 0}  # inclusive on this endpoint
        conversations = [
            c for c in self._search("conversations", query) if cutoff is None or (c.get("updated_at") or 0) >= cutoff
        ]
        firsts = {c["id"]: self._first_contact(c) for c in conversations}
        self._resolve({i for i in firsts.values() if i})
        out = []
        for conversation in conversations:
            ref = self._contacts.get(firsts[conversation["id"]] or "")
            out.append(
                {
                    **conversation,
                    "contact": {"id": ref.id, "email": ref.email} if ref else None,
                    "company": {"id": ref.company_id} if ref and ref.company_id else None,
                }
            )
        return out

    @staticmethod
    def _first_contact(conversation: dict) -> str | None:
        contacts = (conversation.get("contacts") or {}).get("contacts") or []
        return contacts[0]["id"] if contacts else None

    # --- data events -------------------------------------------------------------------------------------------

    def fetch(self, obj: str, ids: list[str], since: datetime | None = None) -> list[dict]:
        """Just the named records, in the shape `pull` gives: what a webhook about them needs, at a few calls.

        Companies and contacts by id; `events` takes contact ids and lists those people's events since `since`.
        """
        before = self.stats.api_calls
        try:
            if obj == "companies":
                return [self.client.request("GET", f"companies/{company_id}") for company_id in ids]
            if obj == "contacts":
                found = self._search("contacts", {"field": "id", "operator": "IN", "value": sorted(ids)})
                for contact in found:
                    self._remember(contact)
                return [{**c, "company": self._company_of(c)} for c in found]
            if obj == "events":
                self._resolve(set(ids))
                return self._events_for([self._contacts[i] for i in ids if i in self._contacts], epoch(since))
            raise ValueError(f"Intercom records of {obj!r} cannot be fetched by id")
        finally:
            self.calls_by_object[obj] = self.calls_by_object.get(obj, 0) + self.stats.api_calls - before

    def _pull_events(self, cutoff: int | None) -> list[dict]:
        return self._events_for(self._all_contacts(), cutoff)

    def _events_for(self, refs: list[ContactRef], cutoff: int | None) -> list[dict]:
        base = {} if cutoff is None else {"since": str(cutoff * 1000 - 1)}  # ms; `since` is exclusive
        out: list[dict] = []
        for ref in refs:
            # One contact / company dict per person, shared by all its events (a full pull holds them all).
            contact = {"id": ref.id, "email": ref.email}
            company = {"id": ref.company_id} if ref.company_id else None
            params = dict(base)
            while True:
                query = {"type": "user", "intercom_user_id": ref.id, "per_page": EVENTS_PAGE, **params}
                body = self.client.request("GET", "events", params=query)
                for event in (body or {}).get("events") or []:
                    if cutoff is not None and (event.get("created_at") or 0) < cutoff:
                        continue
                    out.append(
                        {
                            **event,
                            "id": event_id(event),
                            "contact": contact,
                            "company": company,
                        }
                    )
                link = ((body or {}).get("pages") or {}).get("next")
                if not link:
                    break
                following = {k: v for k, v in parse_qsl(urlparse(link).query) if k in EVENT_CURSOR_PARAMS}
                params = {**base, **following}
        return out
