"""SalesforceSource: the sync's VendorSource for Salesforce: SOQL pages of changed records, deleted ones included.

Each pull is one SOQL query on queryAll (so recycle-bin records come back with IsDeleted = true and the sync can
honour deletions), filtered on `SystemModstamp >= since` and ordered by SystemModstamp then Id, so the sync can
checkpoint its cursor after every page and resume without gaps. SystemModstamp rather than LastModifiedDate: it
also moves on system changes (workflow, cascades), which is what Salesforce recommends for replication.

Which fields are selected comes from the mapping files (every `from`, `id`, `updated`, `deleted`, `account` and
`when` they name, relationship paths such as Owner.Email included), so an admin who maps a new field changes the
query without a code change. Without mappings for an object, the fields its describe lists are selected.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from connectors.errors import VendorError
from connectors.salesforce.client import SalesforceClient
from connectors.source import PullStats
from mappings import DEFAULT_DIR as SHIPPED_MAPPINGS

if TYPE_CHECKING:  # the mapping package loads pandas, which the web process must not import
    from connectors.mapping import Mapping as FieldMapping

DEFAULT_MAPPINGS_DIR = SHIPPED_MAPPINGS / "salesforce"
DEFAULT_OBJECTS: tuple[str, ...] = ("Account", "Contact", "Opportunity", "Case", "Task")
CURSOR_FIELD = "SystemModstamp"
ALWAYS: tuple[str, ...] = ("Id", CURSOR_FIELD, "IsDeleted")
# Tasks our own write-back created carry a dedupe key; they are not customer activity, so the pull skips them.
DEFAULT_FILTERS: dict[str, str] = {"Task": "CSE_Dedupe_Key__c = null"}
_FILTER_FIELDS: dict[str, str] = {"Task": "CSE_Dedupe_Key__c"}  # dropped (once) where the org lacks the field
# A record id is 15 or 18 letters and digits; anything else a webhook names never reaches a query.
RECORD_ID = re.compile(r"[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?")
FETCH_IDS_PER_QUERY = 200  # keeps the SOQL text far below its 100,000-character limit


def soql_datetime(value: datetime) -> str:
    """A SOQL datetime literal (unquoted, UTC, whole seconds rounded down so `>=` never skips a record)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def fields_from_mappings(mappings: Iterable[FieldMapping]) -> dict[str, list[str]]:
    """Source fields each Salesforce object must select so every given (validated) pull mapping can be applied:
    every path the mapping reads (`source_paths()`: id, cursor, deleted flag, account, `when` and field sources)."""
    wanted: dict[str, list[str]] = {}
    for mapping in mappings:
        if mapping.vendor != "salesforce" or mapping.direction != "pull":
            continue
        names = wanted.setdefault(mapping.object, list(ALWAYS))
        for _, path, _ in mapping.source_paths():
            if path.lower() not in {n.lower() for n in names}:
                names.append(path)
    return wanted


def load_mapping_files(directory: Path = DEFAULT_MAPPINGS_DIR) -> list[FieldMapping]:
    """The validated mappings in `directory` (a source built without the sync's active mappings)."""
    from connectors.mapping import load_mapping_dir

    return load_mapping_dir(directory)


class SalesforceSource:
    """VendorSource for Salesforce (see connectors/source.py)."""

    vendor = "salesforce"

    def __init__(
        self,
        client: SalesforceClient,
        fields: Mapping[str, Sequence[str]] | None = None,
        objects: Sequence[str] = DEFAULT_OBJECTS,
        filters: Mapping[str, str] | None = None,
    ) -> None:
        self.client = client
        self.stats: PullStats = client.stats
        self._fields = {obj: list(names) for obj, names in (fields or {}).items()}
        self._objects = tuple(objects)
        self._filters = dict(DEFAULT_FILTERS if filters is None else filters)
        self._describes: dict[str, dict[str, Any]] = {}

    @classmethod
    def from_settings(
        cls, settings: Any, mappings: Iterable[FieldMapping] | None = None, **kwargs: Any
    ) -> SalesforceSource:
        """A source whose selected fields follow `mappings` (default: the files in mappings/salesforce)."""
        mappings = load_mapping_files() if mappings is None else mappings
        return cls(SalesforceClient.from_settings(settings), fields=fields_from_mappings(mappings), **kwargs)

    def objects(self) -> tuple[str, ...]:
        return self._objects

    # -- metadata -------------------------------------------------------------------------------------------
    def describe(self, obj: str) -> dict[str, Any]:
        """The object's describe, fetched once per source (mapping validation and field defaults use it)."""
        if obj not in self._describes:
            self._describes[obj] = self.client.describe(obj)
        return self._describes[obj]

    def field_names(self, obj: str) -> set[str]:
        """Field names the org has on `obj`: what a mapping may name (relationship paths aside)."""
        return {f["name"] for f in self.describe(obj)["fields"]}

    def fields_for(self, obj: str) -> list[str]:
        if obj in self._fields:
            return self._fields[obj]
        names = [f["name"] for f in self.describe(obj)["fields"] if f.get("type") not in {"address", "location"}]
        self._fields[obj] = names
        return names

    def soql(self, obj: str, since: datetime | None, ids: Sequence[str] = ()) -> str:
        clauses = []
        extra = self._filters.get(obj)
        if extra:
            clauses.append(f"({extra})")
        if since is not None:
            clauses.append(f"{CURSOR_FIELD} >= {soql_datetime(since)}")
        if ids:
            invalid = [i for i in ids if not RECORD_ID.fullmatch(i)]
            if invalid:
                raise ValueError(f"not Salesforce record ids: {invalid[:3]}")
            quoted = ", ".join(f"'{i}'" for i in ids)
            clauses.append(f"Id IN ({quoted})")
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        return f"SELECT {', '.join(self.fields_for(obj))} FROM {obj}{where} ORDER BY {CURSOR_FIELD} ASC, Id ASC"

    # -- pulling --------------------------------------------------------------------------------------------
    def pull(self, obj: str, since: datetime | None) -> Iterator[list[dict[str, Any]]]:
        """Pages of `obj` records changed at or after `since`, deleted ones included (IsDeleted = true)."""
        return self._query(obj, since, ())

    def fetch(self, obj: str, ids: list[str], since: datetime | None = None) -> list[dict[str, Any]]:
        """Just the named records (deleted ones flagged), in the shape `pull` gives: what a webhook needs.

        One query per 200 ids; ids that are not Salesforce record ids are dropped. `since` is ignored: every object
        here is a record with its current state.
        """
        valid = sorted({i for i in ids if RECORD_ID.fullmatch(i)})
        chunks = [valid[start : start + FETCH_IDS_PER_QUERY] for start in range(0, len(valid), FETCH_IDS_PER_QUERY)]
        return [record for chunk in chunks for page in self._query(obj, None, chunk) for record in page]

    def _query(self, obj: str, since: datetime | None, ids: Sequence[str]) -> Iterator[list[dict[str, Any]]]:
        pages = self.client.query_pages(self.soql(obj, since, ids), include_deleted=True)
        first = True
        while True:
            try:
                page = next(pages)
            except StopIteration:
                return
            except VendorError as error:
                # The filter is optimistic (no describe call first): an org without our field has no tasks of
                # ours to skip, so the query runs again without it.
                if not (first and obj in _FILTER_FIELDS and error.code == "INVALID_FIELD"):
                    raise
                self._filters.pop(obj, None)
                pages = self.client.query_pages(self.soql(obj, since, ids), include_deleted=True)
                continue
            first = False
            self.stats.records += len(page)
            self.stats.by_object[obj] = self.stats.by_object.get(obj, 0) + len(page)
            yield page
