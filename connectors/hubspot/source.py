"""Pull HubSpot companies, contacts, deals and tickets as flat records, through the official SDK.

Two read paths, because HubSpot offers no single one that does everything:

* full (`since=None`): the list API, live records then archived ones (`archived=true` returns only archived
  records, flagged `archived: true`). 100 per page, associations inline, no total cap, but in id order, not change
  order: the sync should move its cursor only once a full pull has finished.
* incremental: the search API filtered on the last-modified property (`hs_lastmodifieddate`; `lastmodifieddate`
  for contacts, where HubSpot's search ignores the other), sorted ascending, 200 per page. Paging re-anchors the
  filter on the last timestamp seen on every page instead of using the `after` offset: offsets drift when a record
  changes mid-pull (every later record shifts back one and one is skipped for good) and stop at 10,000 results,
  while a moving anchor does neither. Records sharing the anchor timestamp are deduplicated by id; if a whole page
  shares one timestamp, the pull walks that timestamp by `hs_object_id` before moving on. Search never returns
  archived records, so those come from the archived list, filtered on their change time and merged into the pages
  in timestamp order, which keeps every page's records oldest change first for the sync's checkpoints.

By id (`fetch`, what a webhook needs): the batch read API, 100 ids per call, then the archived batch read for the
ids not found live, so a deletion webhook sees its record archived.

Search and batch results carry no associations; the owning company of deals and tickets comes from one v4
association batch read per up to 1,000 records. Records are flat: the record fields (`id`, `createdAt`,
`updatedAt`, `archived`, `archivedAt`), every requested property under its own name, `associations.companies` (the
primary company's id) and `owner` (id, email, firstName, lastName of the record owner) when a mapping asks for them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hubspot.crm.objects.models import (
    BatchReadInputSimplePublicObjectId,
    Filter,
    FilterGroup,
    PublicObjectSearchRequest,
    SimplePublicObjectId,
)

from connectors.hubspot.client import HubSpotClient
from connectors.hubspot.enrichment import RECORD_FIELDS, Enrichment, ObjectNeeds, needs_from_mappings
from connectors.source import PullStats
from mappings import DEFAULT_DIR as SHIPPED_MAPPINGS

OBJECTS: tuple[str, ...] = ("companies", "contacts", "deals", "tickets")
if TYPE_CHECKING:  # the mapping package loads pandas, which the web process must not import
    from connectors.mapping import Mapping as FieldMapping

DEFAULT_CURSOR_PROPERTY = "hs_lastmodifieddate"
CURSOR_PROPERTIES: dict[str, str] = {"contacts": "lastmodifieddate"}
DEFAULT_MAPPINGS = SHIPPED_MAPPINGS / "hubspot"
LIST_PAGE_SIZE = 100  # documented maximum of GET /crm/v3/objects/{type}
SEARCH_PAGE_SIZE = 200  # documented maximum of POST /crm/v3/objects/{type}/search
ASSOCIATION_BATCH_SIZE = 1000  # documented maximum of POST /crm/v4/associations/{from}/{to}/batch/read
BATCH_READ_SIZE = 100  # documented maximum of POST /crm/v3/objects/{type}/batch/read
_CLIENT_OPTIONS = frozenset({"stats", "retry", "search_requests_per_second", "timeout"})


def load_mapping_files(directory: Path = DEFAULT_MAPPINGS) -> list[FieldMapping]:
    """The validated mappings in `directory` (a source built without the sync's active mappings)."""
    from connectors.mapping import load_mapping_dir

    return load_mapping_dir(directory)


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    moment = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _ms(moment: datetime) -> int:
    moment = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    return int(round(moment.timestamp() * 1000))


def _parse_ms(value: str | None) -> int | None:
    if not value:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        return int(text)
    try:
        return _ms(datetime.fromisoformat(text.replace("Z", "+00:00")))
    except ValueError:
        return None


class HubSpotSource(Enrichment):
    """VendorSource for HubSpot. Build it with `from_mappings` (or `from_mapping_dir`) so it requests exactly the
    properties the mappings read; `stats` is the client's, so retries and API calls land in the same log."""

    vendor = "hubspot"

    def __init__(
        self,
        client: HubSpotClient,
        needs: Mapping[str, ObjectNeeds] | None = None,
        *,
        cursor_properties: Mapping[str, str] | None = None,
        list_page_size: int = LIST_PAGE_SIZE,
        search_page_size: int = SEARCH_PAGE_SIZE,
        association_batch_size: int = ASSOCIATION_BATCH_SIZE,
    ) -> None:
        self.client = client
        self.stats: PullStats = client.stats
        self.needs: dict[str, ObjectNeeds] = (
            dict(needs) if needs is not None else needs_from_mappings(load_mapping_files())
        )
        self.cursor_properties = {**CURSOR_PROPERTIES, **(cursor_properties or {})}
        self.list_page_size = list_page_size
        self.search_page_size = search_page_size
        self.association_batch_size = association_batch_size
        self._owners: dict[str, dict] | None = None

    @classmethod
    def from_mappings(cls, client: HubSpotClient, mappings: Iterable[FieldMapping], **kwargs: Any) -> HubSpotSource:
        """Requests follow the mappings; a mapping's `updated` names the search cursor property of its object."""
        mappings = list(mappings)
        cursors = {
            m.object: m.updated for m in mappings if m.vendor == "hubspot" and m.updated and "." not in m.updated
        }
        return cls(
            client,
            needs_from_mappings(mappings),
            cursor_properties={**cursors, **kwargs.pop("cursor_properties", {})},
            **kwargs,
        )

    @classmethod
    def from_settings(
        cls, settings: Any, mappings: Iterable[FieldMapping] | None = None, **kwargs: Any
    ) -> HubSpotSource:
        """What the sync calls: a client from settings, requests shaped by the active mappings (stored versions
        included) or, without them, by the default files in mappings/hubspot."""
        client_options = {k: kwargs.pop(k) for k in list(kwargs) if k in _CLIENT_OPTIONS}
        client = HubSpotClient.from_settings(settings, **client_options)
        return cls.from_mappings(client, load_mapping_files() if mappings is None else mappings, **kwargs)

    @classmethod
    def from_mapping_dir(
        cls, client: HubSpotClient, directory: Path = DEFAULT_MAPPINGS, **kwargs: Any
    ) -> HubSpotSource:
        return cls.from_mappings(client, load_mapping_files(directory), **kwargs)

    def objects(self) -> tuple[str, ...]:
        return tuple(o for o in OBJECTS if o in self.needs) or OBJECTS

    def cursor_property(self, obj: str) -> str:
        return self.cursor_properties.get(obj, DEFAULT_CURSOR_PROPERTY)

    # ------------------------------------------------------------------------------------------------- pulling

    def pull(self, obj: str, since: datetime | None) -> Iterator[list[dict]]:
        """Pages of flat records of `obj` changed at or after `since`; everything (live, then archived) if None."""
        if obj not in OBJECTS:
            raise ValueError(f"HubSpotSource cannot pull {obj!r}; it pulls {', '.join(OBJECTS)}")
        pages = self._pull_all(obj) if since is None else self._pull_changed(obj, since)
        for page in pages:
            if not page:
                continue
            self.stats.records += len(page)
            self.stats.by_object[obj] = self.stats.by_object.get(obj, 0) + len(page)
            yield page

    def fetch(self, obj: str, ids: list[str], since: datetime | None = None) -> list[dict]:
        """Just the named records, in the shape `pull` gives: what a webhook about them needs, at a few calls.

        One batch read per 100 ids, a second for the ids not found live (a deletion webhook names a record that is
        archived by now), and the association batch read when a mapping wants the owning company. `since` is
        ignored: HubSpot objects are records with their current state, not a stream of events.
        """
        if obj not in OBJECTS:
            raise ValueError(f"HubSpotSource cannot fetch {obj!r}; it fetches {', '.join(OBJECTS)}")
        records = self._batch_read(obj, ids, archived=False)
        found = {r["id"] for r in records}
        missing = [i for i in ids if i not in found]
        if missing:
            records += self._batch_read(obj, missing, archived=True)
        self.stats.records += len(records)
        self.stats.by_object[obj] = self.stats.by_object.get(obj, 0) + len(records)
        return self._enrich(obj, records, self.needs.get(obj, ObjectNeeds()), have_companies=False)

    def _batch_read(self, obj: str, ids: Sequence[str], archived: bool) -> list[dict]:
        """Ids HubSpot does not know come back as errors of a 207 answer, not as failures: they are just absent."""
        batch = self.client.api("crm.objects.batch_api")
        records: list[dict] = []
        for start in range(0, len(ids), BATCH_READ_SIZE):
            body = BatchReadInputSimplePublicObjectId(
                properties=self._properties(obj),
                inputs=[SimplePublicObjectId(id=i) for i in ids[start : start + BATCH_READ_SIZE]],
            )
            response = self.client.call(batch.read, obj, body, archived=archived)
            records += [self._flatten(r, inline_companies=False) for r in response.results or []]
        return records

    def _properties(self, obj: str) -> list[str]:
        needs = self.needs.get(obj, ObjectNeeds())
        return sorted(needs.properties | {self.cursor_property(obj)})

    def _pull_all(self, obj: str) -> Iterator[list[dict]]:
        needs = self.needs.get(obj, ObjectNeeds())
        for archived in (False, True):
            for page in self._list_pages(obj, archived):
                yield self._enrich(obj, page, needs, have_companies=True)

    def _list_pages(self, obj: str, archived: bool) -> Iterator[list[dict]]:
        needs = self.needs.get(obj, ObjectNeeds())
        basic = self.client.api("crm.objects.basic_api")
        after: str | None = None
        while True:
            kwargs: dict[str, Any] = {
                "limit": self.list_page_size,
                "properties": self._properties(obj),
                "archived": archived,
            }
            if after:
                kwargs["after"] = after
            if needs.company:
                kwargs["associations"] = ["companies"]
            page = self.client.call(basic.get_page, obj, **kwargs)
            yield [self._flatten(r, inline_companies=needs.company) for r in page.results]
            if page.paging is None or page.paging.next is None or not page.paging.next.after:
                return
            after = page.paging.next.after

    def _pull_changed(self, obj: str, since: datetime) -> Iterator[list[dict]]:
        needs = self.needs.get(obj, ObjectNeeds())
        since_ms = _ms(since)
        archived = sorted(
            (r for page in self._list_pages(obj, archived=True) for r in page if self._changed_ms(obj, r) >= since_ms),
            key=lambda r: (self._changed_ms(obj, r), int(r["id"])),
        )
        if archived:
            archived = self._enrich(obj, archived, needs, have_companies=True)
        pending = iter(archived)
        held = next(pending, None)
        for page in self._enriched_search_pages(obj, since_ms, needs):
            upto = self._changed_ms(obj, page[-1])
            merged = list(page)
            while held is not None and self._changed_ms(obj, held) <= upto:
                merged.append(held)
                held = next(pending, None)
            merged.sort(key=lambda r: (self._changed_ms(obj, r), int(r["id"])))
            yield merged
        rest = [held, *pending] if held is not None else []
        for start in range(0, len(rest), self.list_page_size):
            yield rest[start : start + self.list_page_size]

    def _enriched_search_pages(self, obj: str, since_ms: int, needs: ObjectNeeds) -> Iterator[list[dict]]:
        """Search pages, buffered until one association batch read can serve them all."""
        buffer: list[list[dict]] = []
        size = 0
        for page in self._search_pages(obj, since_ms):
            buffer.append(page)
            size += len(page)
            if not needs.company or size + self.search_page_size > self.association_batch_size:
                yield from self._flush(obj, buffer, needs)
                buffer, size = [], 0
        yield from self._flush(obj, buffer, needs)

    def _flush(self, obj: str, pages: list[list[dict]], needs: ObjectNeeds) -> Iterator[list[dict]]:
        if not pages:
            return
        records = [r for page in pages for r in page]
        self._enrich(obj, records, needs, have_companies=False)
        yield from pages

    def _search_pages(self, obj: str, since_ms: int) -> Iterator[list[dict]]:
        """Keyset paging over the search API: re-anchor on the newest timestamp seen after every page."""
        prop = self.cursor_property(obj)
        search = self.client.api("crm.objects.search_api")
        properties = self._properties(obj)
        anchor = since_ms
        strict = False  # GT instead of GTE: set after walking a crowded timestamp to its end
        seen: set[str] = set()  # ids already yielded whose timestamp equals the anchor
        tie_last_id: int | None = None  # walking the anchor timestamp by id when one page cannot hold it
        limit = self.search_page_size
        while True:
            if tie_last_id is None:
                filters = [Filter(property_name=prop, operator="GT" if strict else "GTE", value=str(anchor))]
                sort = {"propertyName": prop, "direction": "ASCENDING"}
            else:
                filters = [
                    Filter(property_name=prop, operator="EQ", value=str(anchor)),
                    Filter(property_name="hs_object_id", operator="GT", value=str(tie_last_id)),
                ]
                sort = {"propertyName": "hs_object_id", "direction": "ASCENDING"}
            request = PublicObjectSearchRequest(
                filter_groups=[FilterGroup(filters=filters)], sorts=[sort], properties=properties, limit=limit
            )
            response = self.client.call(search.do_search, obj, request, search=True)
            results = [self._flatten(r, inline_companies=False) for r in response.results]
            full = len(results) >= limit
            if tie_last_id is not None:
                fresh = [r for r in results if r["id"] not in seen]
                if fresh:
                    yield fresh
                if full:
                    tie_last_id = int(results[-1]["id"])
                    continue
                tie_last_id, strict, seen = None, True, set()
                continue
            fresh = [r for r in results if r["id"] not in seen]
            if fresh:
                yield fresh
            if not full:
                return
            newest = self._changed_ms(obj, results[-1])
            if newest == anchor and not strict:
                # A whole page at one timestamp: a moving anchor cannot get past it, so walk it by id.
                seen.update(r["id"] for r in results)
                tie_last_id = 0
                continue
            seen = {r["id"] for r in results if self._changed_ms(obj, r) == newest}
            anchor, strict = newest, False

    # ------------------------------------------------------------------------------------------------- records

    def _changed_ms(self, obj: str, record: dict) -> int:
        stamp = _parse_ms(record.get(self.cursor_property(obj)))
        if stamp is None:
            stamp = _parse_ms(record.get("archivedAt")) or _parse_ms(record.get("updatedAt")) or 0
        archived_at = _parse_ms(record.get("archivedAt"))
        return max(stamp, archived_at or 0)

    def _flatten(self, model: Any, inline_companies: bool) -> dict:
        record: dict[str, Any] = {
            "id": str(model.id),
            "createdAt": _iso(model.created_at),
            "updatedAt": _iso(model.updated_at),
            "archived": bool(model.archived),
            "archivedAt": _iso(model.archived_at),
        }
        for name, value in (model.properties or {}).items():
            if name not in RECORD_FIELDS:
                record[name] = value
        if inline_companies:
            linked = (getattr(model, "associations", None) or {}).get("companies")
            results = linked.results if linked is not None else []
            primary = [a.id for a in results if not str(a.type).endswith("_unlabeled")]
            chosen = primary[0] if primary else (results[0].id if results else None)
            record["associations"] = {"companies": str(chosen) if chosen else None}
        return record
